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

import types
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
    "course_dependency",
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

    When the task's function calls an earlier task's function (``conv2d`` calls
    ``conv_output_size``) and yours of that earlier task fails its own cases, the check runs
    again with a correct version in its place, exactly as the grader does: the points are
    the better of the two, and the report says which of your functions to fix first. So
    one bug costs points once, in the notebook as in the gradebook.

    Examples
    --------
    >>> def dense_params(n_inputs, units):
    ...     return n_inputs * units + units
    >>> check("ex01.dense_params", dense_params)  # doctest: +ELLIPSIS
    ex01.dense_params (...): 2/2 points
    ...

    A right ``preprocess`` that calls a ``check_image`` which refuses every float image:

    >>> import numpy as np
    >>> def check_image(image):
    ...     return "wrong dtype" if image.dtype.kind == "f" else None
    >>> def preprocess(image):
    ...     if check_image(image) is not None:
    ...         raise ValueError(check_image(image))
    ...     x = image.reshape(1, 28, 28, 1).astype(np.float32)
    ...     return x / np.float32(255) if image.dtype.kind in "ui" else x
    >>> check("ex09.preprocess", preprocess)  # doctest: +ELLIPSIS
    ex09.preprocess (...): 3/3 points
    ...
      Note: your preprocess is right, but it calls your check_image, which fails case ...
    ...
    """
    try:
        report = run_task(task_id, fn)
    except KeyError as exc:
        print(f"{task_id}: cannot check: {exc.args[0]}")
        return
    dependency = course_dependency(fn)
    if dependency is not None:
        # The grader's sandbox cannot import the course package: say so, with its points.
        print(f"{report.task_id} ({report.title}): 0/{report.max_points:g} points")
        print(
            f"  - your answer uses {dependency} from the course package (cnncourse), which "
            "ships the reference solutions: the grader cannot import it, so this answer "
            "gets 0 points there. Write it yourself."
        )
        print(_book_line(task_id))
        return
    note = ""
    if not report.passed:
        report, note = _with_correct_callees(task_id, fn, report)
    print(report.to_text())
    if note:
        print(f"  Note: {note}")
    print(_book_line(task_id))  # H7 (issue 14): where the book teaches this task


def course_dependency(fn: Callable) -> str | None:
    """The course-package object ``fn`` uses, directly or through the notebook's functions.

    The grader runs answers in a sandbox where the course package (which ships the reference
    solutions) cannot be imported, so an answer built on, say, ``cnncourse.ops.conv2d`` gets
    0 points there even though it passes its check here. This finds such a use from the
    names ``fn``'s code looks up (and those of the notebook's functions it calls), so that
    :func:`check` can say so. Allowed: :mod:`cnncourse.checking` and the modules the grader
    provides inside its sandbox (:data:`cnncourse.notebook_format.SANDBOX_MODULES`).

    Examples
    --------
    >>> import cnncourse.ops as ops
    >>> def relu(x):
    ...     return ops.relu(x)
    >>> course_dependency(relu)
    'cnncourse.ops'
    >>> def relu(x):
    ...     return x * (x > 0)
    >>> course_dependency(relu) is None
    True
    """
    from cnncourse.notebook_format import SANDBOX_MODULES

    allowed = {"cnncourse.checking", *SANDBOX_MODULES}

    def course_module(name: object) -> str | None:
        if not isinstance(name, str) or name.split(".")[0] != "cnncourse" or name in allowed:
            return None
        return name

    def names(code: types.CodeType) -> set[str]:
        found = set(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                found |= names(const)
        return found

    home = fn.__globals__ if isinstance(fn, types.FunctionType) else None
    seen: set[int] = set()
    todo = [fn]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, types.ModuleType):
            used = course_module(current.__name__)
        elif isinstance(current, types.FunctionType | types.BuiltinFunctionType | type):
            used = course_module(current.__module__)
            used = f"{used}.{current.__name__}" if used else None
        else:
            used = None
        if used:
            return used
        # Follow the notebook's own functions (those sharing fn's namespace), not libraries.
        if isinstance(current, types.FunctionType) and current.__globals__ is home:
            namespace = current.__globals__
            todo += [namespace[n] for n in names(current.__code__) if n in namespace]
            cells = current.__closure__ or ()
            todo += [c.cell_contents for c in cells if _filled(c)]
    return None


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018 -- an empty closure cell raises ValueError
    except ValueError:
        return False
    return True


def _with_correct_callees(task_id: str, fn: Callable, report: TaskReport) -> tuple[TaskReport, str]:
    """Check ``fn`` again with the reference of every wrong earlier task it calls.

    What the grader does (:mod:`cnncourse.grading.grader`): the earlier task's function is
    looked up under its name where ``fn`` looks it up (the notebook's namespace), checked on
    its own public cases, and when it fails them and the task has a reference, the
    reference takes its place while ``fn`` runs again. Returns the better report and a note
    (empty when nothing changed).
    """
    from cnncourse.tasks import get_task

    namespace = fn.__globals__ if isinstance(fn, types.FunctionType) else None
    if namespace is None:
        return report, ""
    wrong: list[tuple[str, Callable, TaskReport]] = []
    for callee_id in get_task(task_id).calls:
        callee = get_task(callee_id)
        name = _function_name(callee_id)
        mine = namespace.get(name)
        if callee.reference is None or not callable(mine) or mine is callee.reference:
            continue
        own = run_cases(callee, mine)
        if not own.passed:
            wrong.append((name, callee.reference, own))
    if not wrong:
        return report, ""
    saved = {name: namespace[name] for name, _, _ in wrong}
    try:
        namespace.update({name: reference for name, reference, _ in wrong})
        again = run_task(task_id, fn)
    finally:
        namespace.update(saved)
    if again.points <= report.points:
        return report, ""
    failures = ", ".join(
        f"your {name}, which fails case {_first_failure(own)!r}" for name, _, own in wrong
    )
    names = " and ".join(name for name, _, _ in wrong)
    this = _function_name(task_id)
    text = (
        f"your {this} is right, but it calls {failures}"
        if again.passed
        else f"your {this} calls {failures}"
    )
    return again, (
        f"{text}; these points are with a correct {names} in its place (as the grader "
        f"counts them, so that one mistake costs points once): fix {names} first"
    )


def _function_name(task_id: str) -> str:
    """The function a task asks for: the part of its id after the dot."""
    return task_id.partition(".")[2]


def _first_failure(report: TaskReport) -> str:
    return next((r.name for r in report.results if not r.passed), "its cases")


def _book_line(task_id: str) -> str:
    """The self-check's last line: the book section that teaches the task (H7, issue 14)."""
    from cnncourse.booklinks import book_link, section_title
    from cnncourse.tasks import get_task

    chapter = get_task(task_id).chapter
    link = book_link(task_id, chapter=chapter)
    if link is None:
        return ""
    return f"  In the book: {section_title(task_id, chapter)} -- {link}"
