"""Task definitions of the exercises: one module per exercise (``ex01``, ``ex02``, ...).

Each module declares ``EXERCISE``, one :class:`cnncourse.exercise.Exercise`: its tasks,
their points and cases, the earlier tasks each calls, its grading limits and artifacts. A
task id is ``"<module>.<name>"`` and is the same string that the exercise notebook's cell
metadata (``{"cnncourse": {"task": ..., "points": ...}}``) and its ``check(...)`` call use.
"""

from __future__ import annotations

import importlib
import pkgutil

from cnncourse.exercise import Exercise, Task

__all__ = ["all_tasks", "exercise", "exercise_names", "get_task", "tasks_for"]


def exercise(name: str) -> Exercise:
    """The declared exercise ``name`` (``"ex01"``).

    Raises
    ------
    KeyError
        When no exercise of that name exists; the message lists the ones that do.
    """
    names = _exercise_names()
    if name not in names:
        raise KeyError(f"unknown exercise {name!r}; known exercises: {', '.join(names)}")
    module = importlib.import_module(f"{__name__}.{name}")
    declared = module.EXERCISE
    if not isinstance(declared, Exercise) or declared.name != name:
        raise KeyError(f"cnncourse.tasks.{name} does not declare EXERCISE for {name!r}")
    return declared


def exercise_names() -> list[str]:
    """Every exercise the package declares, in order (``["ex01", "ex02", ...]``)."""
    return _exercise_names()


def tasks_for(exercise_name: str) -> list[Task]:
    """All tasks of one exercise, e.g. ``tasks_for("ex01")`` (``KeyError`` if unknown)."""
    return list(exercise(exercise_name).tasks)


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
