"""Task definitions of the exercises: one module per exercise (``ex01``, ``ex02``, ...).

Each module defines ``TASKS``, a list of :class:`cnncourse.checking.Task`. A task id is
``"<module>.<name>"`` and is the same string that the exercise notebook's cell metadata
(``{"cnncourse": {"task": ..., "points": ...}}``) and its ``check(...)`` call use.
"""

from __future__ import annotations

import importlib
import pkgutil

from cnncourse.checking import Task

__all__ = ["all_tasks", "get_task", "tasks_for"]


def tasks_for(exercise: str) -> list[Task]:
    """All tasks of one exercise, e.g. ``tasks_for("ex01")``.

    Raises
    ------
    KeyError
        When no exercise of that name exists; the message lists the ones that do.
    """
    names = _exercise_names()
    if exercise not in names:
        raise KeyError(f"unknown exercise {exercise!r}; known exercises: {', '.join(names)}")
    module = importlib.import_module(f"{__name__}.{exercise}")
    return list(module.TASKS)


def all_tasks() -> dict[str, Task]:
    """Every task of every exercise, keyed by task id."""
    return {t.id: t for name in _exercise_names() for t in tasks_for(name)}


def get_task(task_id: str) -> Task:
    """The task with id ``task_id`` (``"ex01.dense_params"``).

    Raises
    ------
    KeyError
        With a message that names the known task ids of that exercise.
    """
    exercise, _, _ = task_id.partition(".")
    tasks = {t.id: t for t in tasks_for(exercise)}
    if task_id not in tasks:
        raise KeyError(f"unknown task {task_id!r}; tasks of {exercise}: {', '.join(tasks)}")
    return tasks[task_id]


def _exercise_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name.startswith("ex"))
