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

Task definitions live in :mod:`cnncourse.tasks`, one module per exercise.
"""

from __future__ import annotations

import math
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Case",
    "CaseResult",
    "Task",
    "TaskReport",
    "check",
    "compare",
    "run_task",
]

Comparator = Callable[[Any, Any], "str | None"]


@dataclass(frozen=True)
class Case:
    """One input of a task and the output it must produce.

    Inputs are plain data (numbers, strings, tuples, NumPy arrays) so that a grader can
    send them to another process without pickling.

    Parameters
    ----------
    name : str
        Short human description, shown in the report ("28x28 image, 100 units").
    args, kwargs :
        Positional and keyword arguments passed to the student's function.
    expected :
        The correct output.
    rtol, atol : float
        Tolerances for floating-point comparisons (as in :func:`numpy.allclose`).
    """

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    expected: Any = None
    rtol: float = 1e-6
    atol: float = 1e-8


@dataclass(frozen=True)
class Task:
    """A graded task: an id, its points and the cases that decide them.

    Parameters
    ----------
    id : str
        Stable id ``"exNN.name"``; the notebook cell metadata carries the same id.
    points : float
        Points for passing every case; partial credit is proportional to cases passed.
    title : str
        What the task asks, in a few words.
    public_cases : callable
        ``public_cases() -> list[Case]``: the cases a student runs in the notebook.
    hidden_cases : callable, optional
        ``hidden_cases(rng) -> list[Case]``: extra cases the grader draws at random at
        grading time, so that hard-coded answers fail.
    comparator : callable, optional
        ``comparator(expected, got) -> message or None``; defaults to :func:`compare`.
    """

    id: str
    points: float
    title: str
    public_cases: Callable[[], list[Case]]
    hidden_cases: Callable[[np.random.Generator], list[Case]] | None = None
    comparator: Comparator | None = None

    def compare(self, expected: Any, got: Any, case: Case) -> str | None:
        """Return ``None`` when ``got`` is right for ``case``, else what is wrong."""
        if self.comparator is not None:
            return self.comparator(expected, got)
        return compare(expected, got, rtol=case.rtol, atol=case.atol)


@dataclass(frozen=True)
class CaseResult:
    """The verdict on one case: passed or not, and why not."""

    name: str
    passed: bool
    message: str = ""


@dataclass(frozen=True)
class TaskReport:
    """All case verdicts of one task, and the points they earn."""

    task_id: str
    title: str
    max_points: float
    results: tuple[CaseResult, ...]
    not_implemented: bool = False

    @property
    def points(self) -> float:
        """Points earned: ``max_points`` times the fraction of cases passed."""
        if not self.results:
            return 0.0
        passed = sum(r.passed for r in self.results)
        return round(self.max_points * passed / len(self.results), 2)

    @property
    def passed(self) -> bool:
        """True when every case passed."""
        return bool(self.results) and all(r.passed for r in self.results)

    def to_text(self) -> str:
        """The report as a few lines of plain text (what :func:`check` prints)."""
        head = f"{self.task_id} ({self.title}): {_fmt_points(self.points)}/"
        head += f"{_fmt_points(self.max_points)} points"
        if self.not_implemented:
            return (
                head
                + "\n  - not implemented yet: replace `raise NotImplementedError` with your code."
            )
        lines = [head]
        for r in self.results:
            mark = "PASS" if r.passed else "FAIL"
            lines.append(f"  [{mark}] {r.name}" + ("" if r.passed else f": {r.message}"))
        if self.passed:
            lines.append(
                "  All public cases pass. The grader adds hidden cases with random inputs."
            )
        return "\n".join(lines)


def _fmt_points(p: float) -> str:
    return f"{p:g}"


# --------------------------------------------------------------------------- comparison


def _fmt_value(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return f"{float(v):.6g}"
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _fmt_index(idx: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(int(i)) for i in idx) + ("," if len(idx) == 1 else "") + ")"


def _compare_arrays(expected: np.ndarray, got: Any, rtol: float, atol: float) -> str | None:
    if isinstance(got, list | tuple):
        try:
            got = np.asarray(got)
        except (ValueError, TypeError):
            return f"expected an array of shape {expected.shape}, got a ragged {type(got).__name__}"
    if not isinstance(got, np.ndarray | np.generic):
        if hasattr(got, "numpy"):  # a TensorFlow tensor: accept, compare its values
            got = np.asarray(got.numpy())
        else:
            return f"expected a NumPy array of shape {expected.shape}, got {type(got).__name__}"
    got = np.asarray(got)
    if got.shape != expected.shape:
        return f"expected shape {expected.shape}, got shape {got.shape}"
    if expected.dtype.kind == "b":
        if got.dtype.kind != "b":
            return f"expected a boolean array, got dtype {got.dtype}"
        wrong = np.argwhere(got != expected)
        if len(wrong):
            i = tuple(wrong[0])
            return (
                f"{len(wrong)} of {expected.size} entries differ; first at index "
                f"{_fmt_index(i)}: expected {expected[i]}, got {got[i]}"
            )
        return None
    if got.dtype.kind not in "biuf":
        return f"expected numbers (dtype {expected.dtype}), got dtype {got.dtype}"
    if expected.dtype.kind in "iu" and got.dtype.kind == "f" and not np.all(np.isfinite(got)):
        return "expected integers, got NaN or infinity"
    if expected.size == 0:
        return None
    exp_f = expected.astype(np.float64)
    got_f = got.astype(np.float64)
    bad_finite = ~np.isfinite(got_f) & np.isfinite(exp_f)
    if bad_finite.any():
        i = tuple(np.argwhere(bad_finite)[0])
        return (
            f"got {got_f[i]} at index {_fmt_index(i)} where {exp_f[i]:.6g} was expected "
            "(overflow or division by zero?)"
        )
    with np.errstate(invalid="ignore"):
        ok = np.isclose(got_f, exp_f, rtol=rtol, atol=atol, equal_nan=True)
    if ok.all():
        return None
    err = np.where(ok, 0.0, np.abs(got_f - exp_f))
    i = np.unravel_index(int(np.nanargmax(err)), err.shape)
    n_bad = int((~ok).sum())
    return (
        f"{n_bad} of {expected.size} entries are off; the largest error is at index "
        f"{_fmt_index(i)}: expected {exp_f[i]:.6g}, got {got_f[i]:.6g} "
        f"(difference {err[i]:.3g})"
    )


def compare(expected: Any, got: Any, *, rtol: float = 1e-6, atol: float = 1e-8) -> str | None:
    """Compare a student's output with the expected one.

    Returns ``None`` when they match and otherwise a short message that says what is wrong
    in terms a student can act on. Arrays are compared by shape, then value with
    tolerances; integers exactly; floats with tolerances; tuples, lists and dicts entry by
    entry.

    Examples
    --------
    >>> import numpy as np
    >>> compare(np.zeros((2, 2)), np.zeros((3, 2)))
    'expected shape (2, 2), got shape (3, 2)'
    >>> compare(78500, 78500) is None
    True
    >>> compare(78500, 78400)
    'expected 78500, got 78400'
    """
    if isinstance(expected, np.ndarray):
        return _compare_arrays(expected, got, rtol, atol)
    if isinstance(expected, bool | np.bool_):
        if not isinstance(got, bool | np.bool_):
            return f"expected True or False, got {_fmt_value(got)} ({type(got).__name__})"
        return None if bool(got) == bool(expected) else f"expected {expected}, got {got}"
    if isinstance(expected, int | np.integer):
        if isinstance(got, bool) or not isinstance(got, int | np.integer | float | np.floating):
            return f"expected the integer {expected}, got {_fmt_value(got)} ({type(got).__name__})"
        if isinstance(got, float | np.floating) and not float(got).is_integer():
            return f"expected the integer {expected}, got {_fmt_value(got)}"
        return None if int(got) == int(expected) else f"expected {expected}, got {_fmt_value(got)}"
    if isinstance(expected, float | np.floating):
        if isinstance(got, np.ndarray) and got.shape == ():
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, int | float | np.integer | np.floating):
            return f"expected a number, got {_fmt_value(got)} ({type(got).__name__})"
        if math.isnan(float(expected)) and math.isnan(float(got)):
            return None
        if math.isclose(float(got), float(expected), rel_tol=rtol, abs_tol=atol):
            return None
        diff = abs(float(got) - float(expected))
        return f"expected {float(expected):.6g}, got {float(got):.6g} (difference {diff:.3g})"
    if isinstance(expected, tuple | list):
        if not isinstance(got, tuple | list):
            return (
                f"expected a {type(expected).__name__} of {len(expected)} items, "
                f"got {type(got).__name__}"
            )
        if len(got) != len(expected):
            return f"expected {len(expected)} items, got {len(got)}"
        for k, (e, g) in enumerate(zip(expected, got, strict=True)):
            msg = compare(e, g, rtol=rtol, atol=atol)
            if msg:
                return f"item {k}: {msg}"
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"expected a dict, got {type(got).__name__}"
        missing = sorted(set(expected) - set(got), key=str)
        if missing:
            return f"missing keys {missing}"
        for key in expected:
            msg = compare(expected[key], got[key], rtol=rtol, atol=atol)
            if msg:
                return f"key {key!r}: {msg}"
        return None
    return None if got == expected else f"expected {_fmt_value(expected)}, got {_fmt_value(got)}"


# --------------------------------------------------------------------------- running


def _describe_exception(exc: BaseException, fn: Callable) -> str:
    """Name the exception and, when it comes from the student's code, the line."""
    where = ""
    code = getattr(fn, "__code__", None)
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if code is not None and frame.filename == code.co_filename:
            where = f" (line {frame.lineno}: `{(frame.line or '').strip()}`)"
            break
    text = str(exc).strip()
    return f"your code raised {type(exc).__name__}" + (f": {text}" if text else "") + where


def run_case(task: Task, case: Case, fn: Callable) -> CaseResult:
    """Call ``fn`` on one case and judge the result; never raises (bar KeyboardInterrupt)."""
    args = tuple(np.copy(a) if isinstance(a, np.ndarray) else a for a in case.args)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = fn(*args, **dict(case.kwargs))
    except NotImplementedError:
        return CaseResult(case.name, False, "not implemented yet")
    except Exception as exc:  # the student's exception is the message, not a crash
        return CaseResult(case.name, False, _describe_exception(exc, fn))
    try:
        message = task.compare(case.expected, got, case)
    except Exception as exc:  # an output so odd that comparing it failed
        message = f"could not compare your output ({type(exc).__name__}: {exc})"
    return CaseResult(case.name, message is None, message or "")


def run_task(task_id: str, fn: Callable, cases: Sequence[Case] | None = None) -> TaskReport:
    """Run a task's public cases (or the given ``cases``) against ``fn``; never raises."""
    from cnncourse.tasks import get_task

    task = get_task(task_id)
    if not callable(fn):
        result = CaseResult("your answer", False, f"expected a function, got {type(fn).__name__}")
        return TaskReport(task.id, task.title, task.points, (result,))
    cases = list(task.public_cases() if cases is None else cases)
    results = tuple(run_case(task, case, fn) for case in cases)
    not_impl = bool(results) and all(r.message == "not implemented yet" for r in results)
    return TaskReport(task.id, task.title, task.points, results, not_implemented=not_impl)


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
