"""Grade one submission: read it, check it, run it in the sandbox, compare in the parent.

The parent process (this module) never executes a student's code. It draws the hidden
cases with a fresh random seed, sends only *inputs* to the worker, and compares each
output the worker sends back with :meth:`cnncourse.checking.Task.compare` -- the same
comparison as the notebook's self-check. Points follow the self-check's rule
(:attr:`cnncourse.checking.TaskReport.points`: the task's points times the fraction of
cases passed), applied to the public and the hidden cases separately; the lower of the two
counts, so hard-coded public answers earn nothing.

Every outcome is a :class:`SubmissionResult`; a broken file or a hostile answer gives a
result with a reason, never an exception.
"""

from __future__ import annotations

import base64
import builtins
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cnncourse.checking import Case, CaseResult, TaskReport
from cnncourse.grading.artifacts import evaluate_artifact
from cnncourse.grading.assignment import Assignment, GradedTask
from cnncourse.grading.sandbox import SandboxError, TaskJob, TaskRun, Worker
from cnncourse.grading.static import check_answer
from cnncourse.grading.submission import (
    MAX_BYTES,
    SubmissionError,
    extract_answers,
    file_digest,
    read_bytes,
    read_notebook,
)
from cnncourse.grading.wire import Unsupported, WireError, decode, encode

__all__ = ["CaseOutcome", "SubmissionResult", "TaskOutcome", "grade_file"]

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


def _points(task: GradedTask, cases: list[CaseOutcome]) -> float:
    """Points for a task: the weaker of the public and the hidden pass rates decides.

    Each set alone earns the task's points times its fraction of passed cases (the
    self-check's rule); the grade is the smaller of the two. A general, correct answer passes
    both; answers memorised for the visible public cases fail the randomly drawn hidden
    ones and so earn nothing.
    """
    scores = []
    for hidden in (False, True):
        part = tuple(CaseResult(c.name, c.passed, c.message) for c in cases if c.hidden == hidden)
        if part:
            scores.append(TaskReport(task.id, task.task.title, task.task.points, part).points)
    return min(scores, default=0.0)


def _hidden_message(event: dict, message: str | None) -> str:
    """A message for a failed hidden case that reveals nothing about its inputs."""
    if event.get("not_implemented"):
        return "not implemented yet"
    error = event.get("error")
    if isinstance(error, str):
        name = error.removeprefix("your code raised ").split(":")[0].split(" ")[0]
        if error.startswith("your code raised ") and name in _BUILTIN_EXCEPTIONS:
            return f"your code raised {name}"
        return "your code failed on this input"
    return "wrong output for this input"


def _judge(task: GradedTask, case: Case, event: dict | None) -> str | None:
    """``None`` when the output in ``event`` is right for ``case``, else the message."""
    if event is None:
        return "no result (the grading process stopped)"
    if event.get("not_implemented"):
        return "not implemented yet"
    if "error" in event:
        return str(event["error"])[:1000]
    if task.artifact is not None:
        data = event.get("artifact")
        if not isinstance(data, str):
            return "no saved object came back"
        try:
            raw = base64.b64decode(data, validate=True)
        except ValueError:
            return "the saved object was garbled"
        return evaluate_artifact(task.artifact, raw, case)
    try:
        got = decode(event.get("value"))
    except (WireError, RecursionError, ValueError, MemoryError):
        return "your output could not be read by the grader"
    if isinstance(got, Unsupported):
        return f"your function returned a {got.what}, which cannot be graded"
    try:
        return task.task.compare(case.expected, got, case)
    except Exception as exc:  # an output so odd that comparing it failed
        return f"could not compare your output ({type(exc).__name__})"


def _draw_cases(assignment: Assignment, seed: int) -> list[tuple[list[Case], list[Case]]]:
    rng = np.random.default_rng(seed)
    out = []
    for t in assignment.tasks:
        hidden = list(t.task.hidden_cases(rng)) if t.task.hidden_cases else []
        out.append((list(t.task.public_cases()), hidden))
    return out


def _error_result(student: str, path: Path, digest: str, assignment: Assignment, reason: str):
    tasks = [
        TaskOutcome(t.id, t.task.title, 0.0, float(t.task.points), problems=[reason])
        for t in assignment.tasks
    ]
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


def grade_file(
    path: str | Path,
    assignment: Assignment,
    worker: Worker,
    student: str | None = None,
    *,
    seed: int | None = None,
    max_bytes: int = MAX_BYTES,
) -> SubmissionResult:
    """Grade the submission at ``path``; never raises for anything in the file.

    Raises
    ------
    SandboxError
        Only when the worker itself breaks down (not because of the submission).
    """
    started = time.monotonic()
    path = Path(path)
    student = student or path.stem
    try:
        data = read_bytes(path, max_bytes)
    except SubmissionError as exc:
        return _error_result(student, path, "", assignment, str(exc))
    digest = file_digest(data)
    try:
        cells, notes = read_notebook(data)
    except SubmissionError as exc:
        return _error_result(student, path, digest, assignment, str(exc))
    answers = extract_answers(cells, assignment.functions)
    notes += answers.notes
    seed = secrets.randbits(64) if seed is None else seed
    cases = _draw_cases(assignment, seed)

    jobs: list[TaskJob] = []
    inputs: list[list[Any]] = []
    fatal: dict[int, list[str]] = {}
    for i, t in enumerate(assignment.tasks):
        source = answers.sources.get(t.id)
        problems = []
        if source is None:
            problems.append(f"task cell missing (no cell for {t.id} or defining {t.function})")
        else:
            problems += check_answer(source)
        if problems:
            fatal[i] = problems
        public, hidden = cases[i]
        inputs.append([encode((tuple(c.args), dict(c.kwargs))) for c in public + hidden])
        jobs.append(
            TaskJob(
                t.id,
                source if not problems else "",
                t.function,
                t.artifact.to_wire() if t.artifact else None,
                exec=not problems,
            )
        )
    if len(fatal) < len(jobs):
        run = worker.run(
            jobs, [[] if i in fatal else x for i, x in enumerate(inputs)], assignment.preamble
        )
        runs, protections = run.tasks, run.protections
        if run.setup_error:
            notes.append(f"the setup imports failed: {run.setup_error}")
    else:
        runs, protections = [TaskRun() for _ in jobs], list(worker.protections)

    outcomes = []
    reasons = []
    for i, t in enumerate(assignment.tasks):
        public, hidden = cases[i]
        outcome = TaskOutcome(t.id, t.task.title, 0.0, float(t.task.points))
        run = runs[i]
        problems = list(fatal.get(i, []))
        if not problems and run.cell_error:
            problems.append(f"running the cell failed: {run.cell_error}")
        problems += [f"{v}: the task scores 0" for v in run.violations]
        if run.problem:
            problems.append(run.problem)
        for k, case in enumerate(public + hidden):
            is_hidden = k >= len(public)
            name = f"hidden case {k - len(public) + 1}" if is_hidden else case.name
            if i in fatal or run.violations or (run.cell_error and not run.cases):
                outcome.cases.append(CaseOutcome(name, False, "not run", is_hidden))
                continue
            event = run.cases.get(k)
            if event is None and run.problem:
                message = run.problem if k == max(run.cases, default=-1) + 1 else "not run"
            else:
                message = _judge(t, case, event)
            if message is not None and is_hidden:
                message = _hidden_message(event or {}, message)
            outcome.cases.append(CaseOutcome(name, message is None, message or "", is_hidden))
        outcome.points = (
            0.0 if problems and (i in fatal or run.violations) else _points(t, outcome.cases)
        )
        outcome.problems = problems
        outcome.seconds = round(run.seconds, 3)
        reasons += [f"{t.id}: {p}" for p in problems]
        outcomes.append(outcome)
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
        seed=seed,
    )


__all__ += ["SandboxError"]
