"""The exercise contract and the shared task toolkit: cases, tasks, mistakes, comparison.

An exercise is one declared :class:`Exercise`: its tasks (each a :class:`Task` with an id,
points, a title, public cases, hidden cases, the earlier tasks it calls, the chapter
section that teaches it and the classic mistakes it recognises), the grading limits it
needs and the tasks whose answer is a saved object (artifacts). Every task module
``cnncourse/tasks/exNN.py`` declares one ``EXERCISE``; :mod:`cnncourse.checking` (the
self-check in the notebook) and :mod:`cnncourse.grading` (the batch grader) read the same
object, and neither is imported by this module, so there is no import cycle.

The judgement of one output is :meth:`Task.judge`: the comparison (:func:`compare`, with
tolerances that follow the output's dtype: float32 is accepted unless a case demands an
exact dtype), then, when the output is wrong, the task's *mistake detectors*: each
:class:`Mistake` computes what a classic bug would return for the same inputs, and when the
student's output equals it, the message names the mistake and says how to fix it.

Examples
--------
>>> def double(x):
...     return 2 * x
>>> task = Task("ex99.double", 2, "double a number",
...             lambda: [Case("two", (2,), expected=4)],
...             mistakes=(Mistake("squared", "you squared instead of doubling", lambda x: x * x),))
>>> task.judge(task.public_cases()[0], 4)
(None, '')
>>> task.judge(Case("three", (3,), expected=6), 9)
('expected 6, got 9. Looks like a classic mistake: you squared instead of doubling', 'squared')
"""

from __future__ import annotations

import math
import pickle
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ArtifactSpec",
    "Case",
    "CaseResult",
    "Exercise",
    "Mistake",
    "Task",
    "TaskReport",
    "compare",
    "mark_mistake",
    "run_case",
    "run_cases",
    "split_verdict",
]

Comparator = Callable[[Any, Any], "str | None"]

#: Tolerances for float32 outputs (about 1000 float32 ulps relative; absolute for values
#: near 0 scaled by the largest expected magnitude).
FLOAT32_RTOL = 2e-4
FLOAT32_ATOL = 2e-5


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
    tags : tuple of str
        Properties of the input ("stride > 1", "kernel not square"); a failed hidden case
        names these instead of showing its values.
    dtype : str, optional
        When set, the output must have exactly this dtype (a task that promises to keep
        ``uint8``); otherwise any float dtype of enough precision is accepted.
    """

    name: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    expected: Any = None
    rtol: float = 1e-6
    atol: float = 1e-8
    tags: tuple[str, ...] = ()
    dtype: str | None = None


@dataclass(frozen=True)
class Mistake:
    """A classic mistake a task recognises, and the hint that names it.

    Parameters
    ----------
    id : str
        Stable id ("flipped_kernel", "off_by_one", "wrong_axis"); the class report counts them.
    hint : str
        What went wrong and how to fix it, without any values of the case.
    wrong : callable, optional
        Called with the case's arguments; returns what code with this mistake returns.
        The mistake is recognised when the student's output equals it.
    seen : callable, optional
        ``seen(case, got) -> bool``, for tasks whose output is judged by its properties
        rather than compared with one right answer (a pipeline, a list of batches, a
        message): recognises the mistake from the output itself. Give ``wrong`` or ``seen``.
    """

    id: str
    hint: str
    wrong: Callable[..., Any] | None = None
    seen: Callable[[Case, Any], bool] | None = None


@dataclass(frozen=True)
class Task:
    """A graded task: an id, its points, the cases that decide them and its mistakes.

    Parameters
    ----------
    id : str
        Stable id ``"exNN.name"``; the notebook cell metadata carries the same id.
    points : float
        Points for passing every case.
    title : str
        What the task asks, in a few words.
    public_cases : callable
        ``public_cases() -> list[Case]``: the cases a student runs in the notebook.
    hidden_cases : callable, optional
        ``hidden_cases(rng) -> list[Case]``: at least 10 more cases, drawn by the grader
        from a generator seeded with the instructor's secret.
    comparator : callable, optional
        ``comparator(expected, got) -> message or None``; defaults to :func:`compare`.
    chapter : str
        Link target of the book section that teaches the task
        (``"chapters/02_convolution.html#padding"``).
    calls : tuple of str
        Ids of earlier tasks whose functions this task's function calls (as the notebook
        asks); when one of those is wrong, the grader grades this task with the reference
        in its place, so one bug costs points once.
    mistakes : tuple of Mistake
        The classic mistakes this task recognises.
    pure : bool
        The task promises not to modify its inputs; an answer that does fails the case.
    reference : callable, optional
        A self-contained reference implementation (its source must run on its own with
        ``numpy as np``): what the grader puts in place of a wrong answer of this task
        when a later task calls it.
    deterministic : bool
        The answer depends only on the inputs (a built model's description, a compile
        configuration, a seeded training): the grader and the self-check call the student's
        function once per distinct input and judge every case with those inputs on that one
        answer, which saves a model build per case where several cases check different
        aspects of one model.
    """

    id: str
    points: float
    title: str
    public_cases: Callable[[], list[Case]]
    hidden_cases: Callable[[np.random.Generator], list[Case]] | None = None
    comparator: Comparator | None = None
    chapter: str = ""
    calls: tuple[str, ...] = ()
    mistakes: tuple[Mistake, ...] = ()
    pure: bool = False
    reference: Callable[..., Any] | None = None
    deterministic: bool = False

    def compare(self, expected: Any, got: Any, case: Case) -> str | None:
        """Return ``None`` when ``got`` is right for ``case``, else what is wrong."""
        if self.comparator is not None:
            return self.comparator(expected, got)
        message = compare(expected, got, rtol=case.rtol, atol=case.atol)
        if message is None and case.dtype is not None:
            have = getattr(got, "dtype", None)
            if have is None or np.dtype(have) != np.dtype(case.dtype):
                return (
                    f"{_DTYPE_MESSAGE} {have or type(got).__name__}; "
                    f"the task keeps the input's dtype {np.dtype(case.dtype)}"
                )
        return message

    def detect(self, case: Case, got: Any) -> Mistake | None:
        """The classic mistake whose output ``got`` is, if any (first match wins)."""
        for mistake in (*self.mistakes, *_generic_mistakes(case, got)):
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    if mistake.seen is not None:
                        if mistake.seen(case, got):
                            return mistake
                        continue
                    if mistake.wrong is None:
                        continue
                    wrong = mistake.wrong(*_copies(case.args), **dict(case.kwargs))
                if wrong is _MATCH or _same(wrong, got, case):
                    return mistake
            except Exception:  # a detector that does not apply to this input
                continue
        return None

    def judge(self, case: Case, got: Any, *, mutated: bool = False) -> tuple[str | None, str]:
        """``(message, mistake id)``: ``(None, "")`` when ``got`` is right for ``case``."""
        if mutated and self.pure:
            return (
                "your function changed its input array in place; the task promises to leave "
                "it unchanged (compute a new array, e.g. np.maximum(x, 0), or work on x.copy())",
                "in_place",
            )
        try:
            message = self.compare(case.expected, got, case)
        except Exception as exc:  # an output so odd that comparing it failed
            return f"could not compare your output ({type(exc).__name__})", ""
        if message is None:
            return None, ""
        if message.startswith(_DTYPE_MESSAGE):
            return message, "dtype_changed"
        mistake = self.detect(case, got)
        if mistake is None:
            return message, ""
        return f"{message}. Looks like a classic mistake: {mistake.hint}", mistake.id

    def hidden_message(self, case: Case, got: Any, *, mutated: bool = False) -> tuple[str, str]:
        """A message for a failed hidden case that names its properties, never its values."""
        message, mistake_id = self.judge(case, got, mutated=mutated)
        where = "fails " + (
            f"for an input with {', '.join(case.tags)}" if case.tags else "on a random input"
        )
        if not mistake_id:
            return f"wrong output: {where}", ""
        hint = next(
            (m.hint for m in (*self.mistakes, *_generic_mistakes(case, got)) if m.id == mistake_id),
            message or "",
        )
        return f"{where}. Looks like a classic mistake: {hint}", mistake_id


@dataclass(frozen=True)
class ArtifactSpec:
    """How to receive and judge a task's saved object.

    Parameters
    ----------
    suffix : str
        File suffix the object is saved under (``".keras"``).
    evaluator : str
        ``"module:function"``; ``function(path, case) -> str | None`` runs in a new process.
    method : str
        Name of the method the worker calls on the returned object to save it.
    timeout_s : float
        Wall-clock limit of one evaluation.
    """

    suffix: str
    evaluator: str
    method: str = "save"
    timeout_s: float = 120.0

    def to_wire(self) -> dict:
        return {"suffix": self.suffix, "method": self.method}


_MARK = "[mistake:"


def mark_mistake(message: str, mistake: str) -> str:
    """An artifact evaluator's verdict: ``message``, naming the ``mistake`` it recognised.

    The evaluator runs in another process and answers with a string; a mistake it
    recognised (the id of one of the task's :class:`Mistake`) travels at its start, and
    :func:`split_verdict` takes it apart again.

    Examples
    --------
    >>> mark_mistake("mean IoU 0.02", "not_trained")
    '[mistake:not_trained] mean IoU 0.02'
    >>> split_verdict(mark_mistake("mean IoU 0.02", "not_trained"))
    ('mean IoU 0.02', 'not_trained')
    >>> split_verdict("mean IoU 0.02"), split_verdict(None)
    (('mean IoU 0.02', ''), (None, ''))
    """
    return f"{_MARK}{mistake}] {message}" if mistake else message


def split_verdict(verdict: str | None) -> tuple[str | None, str]:
    """``(message, mistake id)`` of a verdict made by :func:`mark_mistake`."""
    if verdict is None or not verdict.startswith(_MARK) or "] " not in verdict:
        return verdict, ""
    mistake, _, message = verdict[len(_MARK) :].partition("] ")
    return message, mistake


@dataclass(frozen=True)
class Exercise:
    """One exercise as declared by its task module: the whole contract in one object.

    Parameters
    ----------
    name : str
        ``"ex01"``: the module ``cnncourse/tasks/ex01.py`` and the notebooks
        ``solutions/ex01_*.ipynb`` / ``exercises/ex01_*.ipynb``.
    tasks : tuple of Task
        In notebook order.
    limits : mapping
        Grading limits above the NumPy defaults (fields of
        :class:`cnncourse.grading.sandbox.Limits`), for tasks that import TensorFlow.
    artifacts : mapping
        Task id -> :class:`ArtifactSpec`, for tasks whose answer is a saved object (a
        Keras model), judged by :mod:`cnncourse.grading.artifacts`.
    """

    name: str
    tasks: tuple[Task, ...]
    limits: Mapping[str, Any] = field(default_factory=dict)
    artifacts: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        ids = [t.id for t in self.tasks]
        for t in self.tasks:
            if not t.id.startswith(self.name + "."):
                raise ValueError(f"task {t.id} does not belong to exercise {self.name}")
            unknown = [c for c in t.calls if c not in ids[: ids.index(t.id)]]
            if unknown:
                raise ValueError(f"task {t.id} calls {unknown}, which are not earlier tasks")
        if len(set(ids)) != len(ids):
            raise ValueError(f"exercise {self.name} declares a task twice")

    def task(self, task_id: str) -> Task:
        """The task with id ``task_id``; ``KeyError`` naming the known ids otherwise."""
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise KeyError(
            f"unknown task {task_id!r}; tasks of {self.name}: {', '.join(t.id for t in self.tasks)}"
        )


_MATCH = object()
_DTYPE_MESSAGE = "the values are right but the dtype is"


def _copies(args: tuple) -> tuple:
    return tuple(np.copy(a) if isinstance(a, np.ndarray) else a for a in args)


def _same(wrong: Any, got: Any, case: Case) -> bool:
    """Does ``got`` equal what the mistaken code returns (same tolerance, float32 allowed)?"""
    if isinstance(wrong, np.ndarray) and wrong.dtype.kind == "f":
        if isinstance(got, np.ndarray) and got.dtype.kind in "iu":
            return False  # an integer output is the dtype mistake, handled generically
    return compare(wrong, got, rtol=max(case.rtol, 1e-6), atol=max(case.atol, 1e-8)) is None


def _generic_mistakes(case: Case, got: Any) -> list[Mistake]:
    """Mistakes any array task can show: integer dtype, axes in another order, off by one."""
    expected = case.expected
    if not isinstance(expected, np.ndarray) or not isinstance(got, np.ndarray):
        return []
    found = []
    if expected.dtype.kind == "f" and got.dtype.kind in "iub":
        found.append(
            Mistake(
                "int_dtype",
                f"your output has dtype {got.dtype}, so the values were truncated to integers; "
                "build the result as a float array (np.zeros(shape) or x.astype(float))",
                lambda *a, **k: _MATCH,
            )
        )
    if got.shape != expected.shape and got.ndim == expected.ndim:
        if sorted(got.shape) == sorted(expected.shape):
            found.append(
                Mistake(
                    "layout",
                    "your output has the right axes in another order; the course's layout is "
                    "(N, H, W, C) for images and (kh, kw, C, F) for kernels, not NCHW or "
                    "(F, C, kh, kw)",
                    lambda *a, **k: _MATCH,
                )
            )
        elif all(abs(g - e) <= 1 for g, e in zip(got.shape, expected.shape, strict=True)):
            found.append(
                Mistake(
                    "off_by_one",
                    "your output is one row or column too large or too small; check the "
                    "+ 1 in the size formula (n + 2*pad - k) // stride + 1 and your range() ends",
                    lambda *a, **k: _MATCH,
                )
            )
    if (
        expected.dtype.kind == "f"
        and got.dtype.kind == "f"
        and got.shape == expected.shape
        and not np.all(np.isfinite(got))
        and np.all(np.isfinite(expected))
    ):
        found.append(
            Mistake(
                "overflow",
                "your output has NaN or infinity where the answer is finite: an overflow "
                "(np.exp of a large number: subtract the maximum first) or a division 0 / 0",
                lambda *a, **k: _MATCH,
            )
        )
    return found


@dataclass(frozen=True)
class CaseResult:
    """The verdict on one case: passed or not, why not, and the mistake recognised."""

    name: str
    passed: bool
    message: str = ""
    mistake: str = ""


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


def _single_precision(got: Any) -> bool:
    """Whether ``got`` holds float32 (or float16) values, also when cast back to float64.

    An answer computed in float32 and returned as float64 (``tf.nn.conv2d(...).numpy()``
    then ``.astype(np.float64)``) has float32's precision: every value is exactly a float32
    number, which a float64 computation almost never produces for non-integers. Such an
    answer is compared with float32's tolerances, like one returned as float32.

    Examples
    --------
    >>> _single_precision(np.float32(0.1)), _single_precision(0.1)
    (True, False)
    >>> _single_precision(np.array([0.1, 0.2], dtype=np.float32).astype(np.float64))
    True
    """
    values = np.asarray(got)
    if values.dtype.kind != "f":
        return False
    if values.dtype.itemsize < 8:
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.array_equal(values.astype(np.float32), values, equal_nan=True))


def _float32_tolerances(expected: np.ndarray, rtol: float, atol: float) -> tuple[float, float]:
    """Tolerances for a float32 (or float16) answer to a float64 reference."""
    finite = np.abs(expected[np.isfinite(expected)]) if expected.size else np.zeros(0)
    scale = float(finite.max()) if finite.size else 1.0
    return max(rtol, FLOAT32_RTOL), max(atol, FLOAT32_ATOL * max(1.0, scale))


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
    if expected.dtype.itemsize >= 8 and _single_precision(got):
        rtol, atol = _float32_tolerances(expected, rtol, atol)
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
        if _single_precision(got):
            rtol, atol = _float32_tolerances(np.asarray(expected), rtol, atol)
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


def inputs_changed(before: Sequence[Any], after: Sequence[Any]) -> bool:
    """True when a NumPy array among ``after`` differs from its copy in ``before``."""
    for a, b in zip(before, after, strict=False):
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            if a.shape != b.shape or not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
                return True
    return False


def _call(case: Case, fn: Callable) -> tuple[Any, bool] | str:
    """``(output, inputs changed)`` of ``fn`` on a copy of the case's inputs, or the error."""
    args = _copies(case.args)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = fn(*args, **dict(case.kwargs))
    except NotImplementedError:
        return "not implemented yet"
    except Exception as exc:  # the student's exception is the message, not a crash
        return _describe_exception(exc, fn)
    return got, inputs_changed(case.args, args)


def run_case(task: Task, case: Case, fn: Callable) -> CaseResult:
    """Call ``fn`` on one case and judge the result; never raises (bar KeyboardInterrupt)."""
    return _judged(task, case, _call(case, fn))


def _judged(task: Task, case: Case, called: tuple[Any, bool] | str) -> CaseResult:
    if isinstance(called, str):
        return CaseResult(case.name, False, called)
    got, mutated = called
    message, mistake = task.judge(case, got, mutated=mutated)
    return CaseResult(case.name, message is None, message or "", mistake)


def _input_key(case: Case) -> bytes | int:
    """Equal for cases with equal inputs (a deterministic task then runs once for them)."""
    try:
        return pickle.dumps((case.args, sorted(case.kwargs.items())), protocol=4)
    except Exception:  # inputs that cannot be pickled: never shared
        return id(case)


def run_cases(task: Task, fn: Callable, cases: Sequence[Case] | None = None) -> TaskReport:
    """Run ``cases`` (by default the task's public cases) against ``fn``; never raises.

    For a ``deterministic`` task, ``fn`` runs once per distinct input and every case with
    that input judges the same answer, as in the grader.
    """
    if not callable(fn):
        result = CaseResult("your answer", False, f"expected a function, got {type(fn).__name__}")
        return TaskReport(task.id, task.title, task.points, (result,))
    cases = list(task.public_cases() if cases is None else cases)
    if task.deterministic:
        answers: dict[bytes | int, tuple[Any, bool] | str] = {}
        for case in cases:
            key = _input_key(case)
            if key not in answers:
                answers[key] = _call(case, fn)
        results = tuple(_judged(task, case, answers[_input_key(case)]) for case in cases)
    else:
        results = tuple(run_case(task, case, fn) for case in cases)
    not_impl = bool(results) and all(r.message == "not implemented yet" for r in results)
    return TaskReport(task.id, task.title, task.points, results, not_implemented=not_impl)
