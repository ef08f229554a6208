"""Grade one submission: read it, check it, run it in the sandbox, compare in the parent.

The parent process (this module) never executes a student's code. What runs in the worker
is the student's notebook as *Run all* runs it (:func:`cnncourse.grading.submission.
plan_submission`): the code cells in order up to each task's check cell, and the function
that check cell saw is graded. The hidden cases come from the instructor's secret
(:mod:`cnncourse.grading.secret`), so the same code gets the same grade every time. Only
*inputs* go to the worker; each output that comes back is judged with
:meth:`cnncourse.exercise.Task.judge` -- the same comparison and mistake detectors as the
notebook's self-check. Points: see :func:`task_points`. When a task's function calls an
earlier task's function and that one is wrong, the task is graded again with the reference
in its place (:attr:`TaskOutcome.calls_wrong`), so one bug costs points once.

Every outcome is a :class:`SubmissionResult`; a broken file or a hostile answer gives a
result with a reason, never an exception.
"""

from __future__ import annotations

import base64
import builtins
import inspect
import json
import re
import secrets
import textwrap
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cnncourse.exercise import Case, split_verdict
from cnncourse.grading.artifacts import (
    VERDICT,
    Evaluator,
    evaluate_artifact,
    judge_saved_objects,
)
from cnncourse.grading.assignment import Assignment, GradedTask
from cnncourse.grading.sandbox import Limits, SandboxError, TaskJob, TaskRun, Worker
from cnncourse.grading.secret import fingerprint, task_rng
from cnncourse.grading.static import check_answer, imported_modules
from cnncourse.grading.submission import (
    MAX_BYTES,
    SHIMS,
    Plan,
    SubmissionError,
    TaskPlan,
    file_digest,
    plan_submission,
    read_bytes,
    read_notebook,
)
from cnncourse.grading.wire import Unsupported, WireError, decode, encode

__all__ = [
    "MIN_HIDDEN",
    "CaseOutcome",
    "SubmissionResult",
    "TaskOutcome",
    "grade_file",
    "task_points",
]

_BUILTIN_EXCEPTIONS = {
    name
    for name, obj in vars(builtins).items()
    if isinstance(obj, type) and issubclass(obj, BaseException)
}


@dataclass
class CaseOutcome:
    """One case's verdict, in words a student may see."""

    name: str
    passed: bool
    message: str = ""
    hidden: bool = False
    mistake: str = ""  # a stable id of a recognised classic mistake ("flipped_kernel"), or ""


@dataclass
class TaskOutcome:
    """One task's verdict."""

    id: str
    title: str
    points: float
    max_points: float
    cases: list[CaseOutcome] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why the task scored 0 or stopped
    seconds: float = 0.0
    calls_wrong: list[str] = field(default_factory=list)  # earlier tasks replaced by the reference
    chapter: str = ""  # the book section that teaches the task (a link target)
    public_points: float = 0.0  # what the notebook's check cell prints for the public cases
    notes: list[str] = field(default_factory=list)  # e.g. graded with a reference in place


@dataclass
class SubmissionResult:
    """Everything the gradebook, the JSON and the feedback page need about one student."""

    student: str
    file: str
    sha256: str
    assignment: str
    version: str
    status: str  # "ok" or "error"
    reason: str
    total: float
    max_total: float
    tasks: list[TaskOutcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    protections: list[str] = field(default_factory=list)
    seconds: float = 0.0
    duplicates: list[str] = field(default_factory=list)
    seed: int | None = None  # private: never shown to students
    secret_fingerprint: str = ""  # short hash of the hidden-case secret (never the secret)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SubmissionResult:
        data = dict(data)
        tasks = []
        for t in data.pop("tasks", []):
            t = dict(t)
            cases = [CaseOutcome(**c) for c in t.pop("cases", [])]
            tasks.append(TaskOutcome(**t, cases=cases))
        return cls(**data, tasks=tasks)


MIN_HIDDEN = 10  # every task draws at least this many hidden cases


def task_points(points: float, public: list[bool], hidden: list[bool]) -> float:
    """A task's points from its public and hidden verdicts.

    With ``P`` and ``H`` the fractions of public and hidden cases passed, the task earns
    ``points * min(H, (P + H) / 2)``:

    - identical code gets identical points (the cases come from the instructor's secret);
    - answers hard-coded for the public cases pass no hidden case, so ``H = 0`` and they
      earn nothing;
    - an answer that is right on a fraction ``p`` of random inputs has ``H`` close to
      ``p`` and earns close to ``p * points`` (the public cases, a handful of edge cases,
      can only lower it, by half their shortfall).

    Examples
    --------
    >>> task_points(4, [True] * 5, [True] * 10)
    4.0
    >>> task_points(4, [True] * 5, [False] * 10)
    0.0
    >>> task_points(4, [True, False], [True] * 5 + [False] * 5)
    2.0
    """
    pub = sum(public) / len(public) if public else None
    hid = sum(hidden) / len(hidden) if hidden else None
    if hid is None:
        rate = pub or 0.0
    elif pub is None:
        rate = hid
    else:
        rate = min(hid, (pub + hid) / 2)
    return round(points * rate, 2)


def _public_points(points: float, cases: list[CaseOutcome]) -> float:
    """What the notebook's check prints: points times the fraction of public cases passed."""
    public = [c.passed for c in cases if not c.hidden]
    return round(points * sum(public) / len(public), 2) if public else 0.0


def _hidden_error(event: dict) -> str:
    """Name a hidden case's exception without its text (which may show the inputs)."""
    error = event.get("error")
    if isinstance(error, str):
        name = error.removeprefix("your code raised ").split(":")[0].split(" ")[0]
        if error.startswith("your code raised ") and name in _BUILTIN_EXCEPTIONS:
            return f"your code raised {name}"
    return "your code failed"


_LINE = re.compile(r"\(line (\d+)")


def _own_lines(message: str, offset: int) -> str:
    """Line numbers of the task's source, counted from its own cell's first line."""
    if not offset:
        return message
    return _LINE.sub(lambda m: f"(line {max(1, int(m.group(1)) - offset)}", message)


def _judge(
    task: GradedTask, case: Case, event: dict | None, hidden: bool
) -> tuple[str | None, str]:
    """``(None, "")`` when the output in ``event`` is right for ``case``, else (message, mistake).

    A hidden case's message names the properties of its input (its tags) and the mistake
    recognised, never its values.
    """
    where = f" for an input with {', '.join(case.tags)}" if case.tags else ""
    if event is None:
        return "no result (the grading process stopped)", ""
    if event.get("not_implemented"):
        return "not implemented yet", ""
    if "error" in event:
        if hidden:
            return _hidden_error(event) + where, ""
        return str(event["error"])[:1000], ""
    if task.artifact is not None:
        data = event.get("artifact")
        if not isinstance(data, str):
            return "no saved object came back", ""
        if VERDICT in event:  # decoded and judged with the submission's other saved objects
            message = event[VERDICT]
        else:
            try:
                raw = base64.b64decode(data, validate=True)
            except ValueError:
                return "the saved object was garbled", ""
            message = evaluate_artifact(task.artifact, raw, case)
        message, mistake = split_verdict(message)  # the evaluator may name a mistake
        hint = next((m.hint for m in task.task.mistakes if m.id == mistake), "")
        if message is not None and hidden:
            message = "wrong result" + (where or " on a hidden input")
        if message is None or not hint:
            return message, ""
        return f"{message}. Looks like a classic mistake: {hint}", mistake
    try:
        got = decode(event.get("value"))
    except (WireError, RecursionError, ValueError, MemoryError):
        return "your output could not be read by the grader", ""
    mutated = False
    if isinstance(got, dict) and "__cnncourse_output__" in got:  # the worker's wrapper
        mutated = got.get("mutated") is True
        got = got["__cnncourse_output__"]
    if isinstance(got, Unsupported):
        return f"your function returned a {got.what}, which cannot be graded", ""
    try:
        if hidden:
            message, mistake = task.task.judge(case, got, mutated=mutated)
            if message is None:
                return None, ""
            return task.task.hidden_message(case, got, mutated=mutated)
        return task.task.judge(case, got, mutated=mutated)
    except Exception as exc:  # an output so odd that judging it failed
        return f"could not compare your output ({type(exc).__name__})", ""


def _draw_cases(assignment: Assignment, secret: bytes) -> list[tuple[list[Case], list[Case]]]:
    """Public cases, and the hidden cases the instructor's ``secret`` gives each task."""
    out = []
    for t in assignment.tasks:
        hidden = []
        if t.task.hidden_cases:
            hidden = list(t.task.hidden_cases(task_rng(secret, t.id)))
        out.append((list(t.task.public_cases()), hidden))
    return out


def _error_result(student: str, path: Path, digest: str, assignment: Assignment, reason: str):
    tasks = [
        TaskOutcome(t.id, t.task.title, 0.0, float(t.task.points), problems=[reason])
        for t in assignment.tasks
    ]
    for outcome, t in zip(tasks, assignment.tasks, strict=True):
        outcome.chapter = t.task.chapter
    return SubmissionResult(
        student,
        str(path),
        digest,
        assignment.name,
        assignment.version,
        "error",
        reason,
        0.0,
        assignment.max_points,
        tasks,
    )


#: Deep-learning frameworks a notebook may import in any exercise, and the limits a run
#: gets when it does (the Keras exercises' limits): importing TensorFlow maps about 2 GB
#: of address space and takes seconds, more than a NumPy exercise allows. A conv2d built on
#: ``tf.nn.conv2d`` passes its check in the notebook, so the grader must be able to run it.
FRAMEWORKS = frozenset({"tensorflow", "keras"})
FRAMEWORK_LIMITS = {"memory_mb": 4096, "timeout_s": 60.0, "nproc": 512}


def run_limits(limits: Limits, cells: list[dict]) -> Limits:
    """The limits to run a notebook with: ``limits``, raised when it imports a framework.

    Examples
    --------
    >>> cell = {"cell_type": "code", "source": "%%time\\nimport tensorflow as tf"}
    >>> run_limits(Limits(), [cell]).memory_mb, run_limits(Limits(), []).memory_mb
    (4096, 1024)
    """
    from cnncourse.notebook_format import to_python

    if not any(
        imported_modules(to_python(c.get("source", ""))) & FRAMEWORKS
        for c in cells
        if c.get("cell_type") == "code"
    ):
        return limits
    now = asdict(limits)
    return replace(limits, **{k: max(v, now[k]) for k, v in FRAMEWORK_LIMITS.items()})


def _reference_cell(assignment: Assignment, task_id: str) -> str:
    """A line that puts the reference of ``task_id`` under the student's function name."""
    graded = next(t for t in assignment.tasks if t.id == task_id)
    ref = graded.task.reference
    if ref is None:
        return ""
    source = textwrap.dedent(inspect.getsource(ref)) + f"\n{graded.function} = {ref.__name__}\n"
    return f"_cnncourse_cell('<reference {task_id}>', {source!r})"


def _outcome(
    t: GradedTask,
    plan: TaskPlan,
    public: list[Case],
    hidden: list[Case],
    run: TaskRun,
    fatal: list[str],
) -> TaskOutcome:
    """One task's verdict from what the worker sent back for it."""
    outcome = TaskOutcome(t.id, t.task.title, 0.0, float(t.task.points), chapter=t.task.chapter)
    problems = list(fatal)
    if not problems and run.cell_error:
        problems.append(f"running the cell failed: {_own_lines(run.cell_error, plan.offset)}")
    problems += [f"{v}: the task scores 0" for v in run.violations]
    if run.problem:
        problems.append(run.problem)
    for k, case in enumerate(public + hidden):
        is_hidden = k >= len(public)
        name = f"hidden case {k - len(public) + 1}" if is_hidden else case.name
        if fatal or run.violations or (run.cell_error and not run.cases):
            outcome.cases.append(CaseOutcome(name, False, "not run", is_hidden))
            continue
        event = run.cases.get(k)
        mistake = ""
        if event is None and run.problem:
            message = run.problem if k == max(run.cases, default=-1) + 1 else "not run"
        else:
            message, mistake = _judge(t, case, event, is_hidden)
        if message is not None and not is_hidden:
            message = _own_lines(message, plan.offset)
        outcome.cases.append(
            CaseOutcome(name, message is None, message or "", is_hidden, mistake=mistake)
        )
    if fatal or run.violations:
        outcome.points = 0.0
    else:
        outcome.points = task_points(
            t.task.points,
            [c.passed for c in outcome.cases if not c.hidden],
            [c.passed for c in outcome.cases if c.hidden],
        )
    outcome.public_points = _public_points(t.task.points, outcome.cases)
    outcome.problems = problems
    outcome.seconds = round(run.seconds, 3)
    return outcome


def _first_failure(outcome: TaskOutcome) -> str:
    failed = next((c for c in outcome.cases if not c.passed), None)
    return "its cases" if failed is None else f"case {failed.name!r}"


def grade_file(
    path: str | Path,
    assignment: Assignment,
    worker: Worker,
    student: str | None = None,
    *,
    secret: bytes | None = None,
    seed: int | None = None,
    max_bytes: int = MAX_BYTES,
) -> SubmissionResult:
    """Grade the submission at ``path``; never raises for anything in the file.

    Parameters
    ----------
    secret : bytes, optional
        The instructor's hidden-case secret (:func:`cnncourse.grading.secret.load_or_create`);
        the same secret gives the same hidden cases, hence the same grade for the same
        code. Without one, a fresh random secret is used (a one-off grading).
    seed : int, optional
        Deprecated: derive the secret from an integer (tests).

    Raises
    ------
    SandboxError
        Only when the worker itself breaks down (not because of the submission).
    """
    started = time.monotonic()
    path = Path(path)
    student = student or path.stem
    if secret is None:
        secret = seed.to_bytes(32, "big") if seed is not None else secrets.token_bytes(32)
    try:
        data = read_bytes(path, max_bytes)
    except SubmissionError as exc:
        return _error_result(student, path, "", assignment, str(exc))
    digest = file_digest(data)
    try:
        cells, notes = read_notebook(data)
    except SubmissionError as exc:
        return _error_result(student, path, digest, assignment, str(exc))
    plan: Plan = plan_submission(
        cells,
        assignment.functions,
        given=set(assignment.given),
        wrapped={t.id for t in assignment.tasks if t.artifact is None},
        forbidden=check_answer,
    )
    notes += plan.notes
    cases = _draw_cases(assignment, secret)
    preamble = assignment.preamble + "\n" + SHIMS
    limits = run_limits(worker.limits, cells)

    jobs: list[TaskJob] = []
    inputs: list[list[Any]] = []
    owners: list[list[int] | None] = []
    fatal: dict[int, list[str]] = {}
    for i, t in enumerate(assignment.tasks):
        tp = plan.tasks[i]
        problems = []
        if tp.own is None:
            problems.append(f"task cell missing (no cell for {t.id} or defining {t.function})")
        else:
            problems += check_answer(tp.own)
        if problems:
            fatal[i] = problems
        public, hidden = cases[i]
        encoded = _encode_inputs(public + hidden)
        owner = None
        if t.artifact is not None or t.task.deterministic:  # equal inputs run once
            encoded, owner = _run_once(encoded)
        inputs.append(encoded)
        owners.append(owner)
        jobs.append(_job(t, tp, problems))
    if len(fatal) < len(jobs):
        specs = [
            t.artifact for i, t in enumerate(assignment.tasks) if t.artifact and i not in fatal
        ]
        evaluator = None
        if specs:
            # Saved models are judged in one sandboxed process per submission, started now
            # so that its imports (TensorFlow) overlap the student's job.
            if not worker.started:
                worker.start()
            evaluator = Evaluator(specs, slot=worker.slot, sandbox=worker.isolated)
            evaluator.start()
        try:
            run = worker.run(
                jobs, [[] if i in fatal else x for i, x in enumerate(inputs)], preamble, limits
            )
            runs, protections = run.tasks, run.protections
            for r, owner in zip(runs, owners, strict=True):
                _share_events(r, owner)
            judge_saved_objects(assignment.tasks, cases, runs, worker, evaluator)
        finally:
            if evaluator is not None:
                evaluator.close()
        if run.setup_error:
            notes.append(f"the setup imports failed: {run.setup_error}")
    else:
        runs, protections = [TaskRun() for _ in jobs], list(worker.protections)

    outcomes = []
    for i, t in enumerate(assignment.tasks):
        public, hidden = cases[i]
        outcomes.append(_outcome(t, plan.tasks[i], public, hidden, runs[i], fatal.get(i, [])))

    # A bug costs points once: grade a task again with the reference of a wrong callee.
    by_id = {o.id: o for o in outcomes}
    for i, t in enumerate(assignment.tasks):
        outcome = outcomes[i]
        wrong = [
            c
            for c in t.task.calls
            if c in by_id
            and not all(x.passed for x in by_id[c].cases)
            and _has_reference(assignment, c)
        ]
        if not wrong or i in fatal or all(c.passed for c in outcome.cases):
            continue

        def with_references(callees: list[str], i: int = i, t: GradedTask = t) -> TaskOutcome:
            refs = "\n".join(_reference_cell(assignment, c) for c in callees)
            again = [*jobs[:i], _job(t, plan.tasks[i], [], extra=refs)]
            run2 = worker.run(again, [[] for _ in range(i)] + [inputs[i]], preamble, limits)
            _share_events(run2.tasks[i], owners[i])
            public, hidden = cases[i]
            return _outcome(t, plan.tasks[i], public, hidden, run2.tasks[i], [])

        second = with_references(wrong)
        # The notebook's check (cnncourse.checking.check) sees only public cases: it runs the
        # task again with the reference of each callee that fails its *public* cases, and
        # prints the better points. Record what it printed, even when another callee fails
        # only hidden cases (the grader's second run replaced that one too).
        publicly = [c for c in wrong if not all(x.passed for x in by_id[c].cases if not x.hidden)]
        if publicly:
            seen = second if publicly == wrong else with_references(publicly)
            outcome.public_points = max(outcome.public_points, seen.public_points)
        if second.points <= outcome.points:
            continue
        second.public_points = outcome.public_points  # what the notebook printed
        second.calls_wrong = wrong
        names = [assignment.functions[c] for c in wrong]
        failures = ", ".join(
            f"your {n}, which fails {_first_failure(by_id[c])}"
            for n, c in zip(names, wrong, strict=True)
        )
        if all(c.passed for c in second.cases):
            text = f"{t.function} is right, but it calls {failures}"
        else:
            text = f"{t.function} calls {failures}"
        second.notes.append(
            f"{text}; graded with the reference {' and '.join(names)} in its place, "
            "so that one mistake costs points once"
        )
        outcomes[i] = second
        by_id[t.id] = second
        notes.append(f"{t.id}: {second.notes[-1]}")

    reasons = [f"{o.id}: {p}" for o in outcomes for p in o.problems]
    total = round(sum(o.points for o in outcomes), 2)
    return SubmissionResult(
        student=student,
        file=str(path),
        sha256=digest,
        assignment=assignment.name,
        version=assignment.version,
        status="error" if reasons else "ok",
        reason="; ".join(reasons),
        total=total,
        max_total=assignment.max_points,
        tasks=outcomes,
        notes=notes,
        protections=protections,
        seconds=round(time.monotonic() - started, 3),
        seed=None,
        secret_fingerprint=fingerprint(secret),
    )


def _run_once(encoded: list[Any]) -> tuple[list[Any], list[int]]:
    """The distinct inputs among ``encoded``, and the index of each case's input among them.

    A task judged on a saved object may judge one object in several ways (ex04 checks the
    architecture and the accuracy of the same trained model): cases with the same inputs
    then call the student's function once, and each judges its own copy of the result.

    Examples
    --------
    >>> _run_once([[1], [2], [1]])
    ([[1], [2]], [0, 1, 0])
    """
    distinct: dict[str, int] = {}
    once, owner = [], []
    keys: dict[int, str] = {}  # cases that share one input share its encoded object
    for value in encoded:
        key = keys.get(id(value))
        if key is None:
            key = keys[id(value)] = json.dumps(value, sort_keys=True)
        if key not in distinct:
            distinct[key] = len(once)
            once.append(value)
        owner.append(distinct[key])
    return once, owner


def _encode_inputs(cases: list[Case]) -> list[Any]:
    """Each case's inputs for the wire; cases that share one ``args`` tuple (aspects of one
    run: ex04's ten tenths of one training) share one encoding, made once."""
    done: dict[int, Any] = {}
    out = []
    for c in cases:
        if c.kwargs:  # keyword arguments: encoded case by case
            out.append(encode((tuple(c.args), dict(c.kwargs))))
            continue
        if id(c.args) not in done:
            done[id(c.args)] = encode((tuple(c.args), {}))
        out.append(done[id(c.args)])
    return out


def _share_events(run: TaskRun, owner: list[int] | None) -> None:
    """Give every case the event of the run that computed its input (see :func:`_run_once`)."""
    if owner is None:
        return
    events = run.cases
    run.cases = {k: dict(events[j]) for k, j in enumerate(owner) if j in events}


def _has_reference(assignment: Assignment, task_id: str) -> bool:
    return any(t.id == task_id and t.task.reference is not None for t in assignment.tasks)


def _job(t: GradedTask, tp: TaskPlan, problems: list[str], extra: str = "") -> TaskJob:
    """The worker job of one task: its notebook segment (without a fatal own cell)."""
    source = tp.source if not problems else tp.without_own
    if extra:
        source = source + extra + "\n"
    return TaskJob(
        t.id,
        source,
        tp.graded,
        t.artifact.to_wire() if t.artifact else None,
        exec=bool(source.strip()),
    )


__all__ += ["SandboxError"]
