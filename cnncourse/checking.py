"""Self-checks for the exercises: one call per task, a friendly report, never an exception.

Every graded task of an exercise notebook has a stable id such as ``"ex01.dense_params"``
and a number of points. The task's *public cases* are plain data (inputs and the expected
output); a student runs them from the notebook with :func:`check`::

    from cnncourse.checking import check
    check("ex01.dense_params", dense_params)

and gets one line per case: what passed, and for what failed an actionable message --
expected against got shape, where the largest numeric error is and how big it is, the
exception their code raised, or "not implemented yet" while the stub is still in place.

Why a separate module rather than ``assert`` cells (as nbgrader does):

- ``check`` never raises, so "Run all" always completes and a student sees every task's
  state at once;
- warnings that libraries print are recorded and ignored, so a correct answer is never
  marked wrong because TensorFlow wrote to stderr;
- the comparison (:func:`compare`) is the same function the batch grader uses, so the
  notebook and the gradebook cannot disagree on a public case.

Task definitions live in :mod:`cnncourse.tasks`, one module per exercise; the contract they
follow (cases, tasks, mistakes, comparison) is :mod:`cnncourse.exercise`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cnncourse.exercise import (
    Case,
    CaseResult,
    Mistake,
    Task,
    TaskReport,
    compare,
    run_case,
    run_cases,
)

__all__ = [
    "Case",
    "CaseResult",
    "Mistake",
    "Task",
    "TaskReport",
    "check",
    "compare",
    "run_case",
    "run_task",
]


def run_task(task_id: str, fn: Callable, cases: Sequence[Case] | None = None) -> TaskReport:
    """Run a task's public cases (or the given ``cases``) against ``fn``; never raises."""
    from cnncourse.tasks import get_task

    return run_cases(get_task(task_id), fn, cases)


def check(task_id: str, fn: Callable) -> None:
    """Run the public cases of task ``task_id`` on ``fn`` and print a short report.

    This is the call at the end of each exercise cell. It never raises: an unknown task
    id, a stub that still raises ``NotImplementedError`` or an exception in your code all
    turn into a line of the report.

    Examples
    --------
    >>> def dense_params(n_inputs, units):
    ...     return n_inputs * units + units
    >>> check("ex01.dense_params", dense_params)  # doctest: +ELLIPSIS
    ex01.dense_params (...): 2/2 points
    ...
    """
    try:
        report = run_task(task_id, fn)
    except KeyError as exc:
        print(f"{task_id}: cannot check: {exc.args[0]}")
        return
    print(report.to_text())
    print(_book_line(task_id))  # H7 (issue 14): where the book teaches this task


def _book_line(task_id: str) -> str:
    """The self-check's last line: the book section that teaches the task (H7, issue 14)."""
    from cnncourse.booklinks import book_link, section_title
    from cnncourse.tasks import get_task

    chapter = get_task(task_id).chapter
    link = book_link(task_id, chapter=chapter)
    if link is None:
        return ""
    return f"  In the book: {section_title(task_id, chapter)} -- {link}"
