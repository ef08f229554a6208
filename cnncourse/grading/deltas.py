"""Regrade deltas: which students' grades changed since the last class report, by how much, why.

Every time the class view is written (:func:`cnncourse.grading.classreport.write_class_view`,
called by ``cnncourse grade``), a snapshot of the grades goes to
``<out>/.classview/snapshot.json``: per student the total, the status, the points of each
task, the submission's hash, the assignment version and the fingerprint of the hidden-case
secret; per task a fingerprint of its definition (points, title, template cell, the source
of its case functions). The next run compares its results with that snapshot
(:func:`compare`) and writes ``regrade_changes.csv``: one row per student whose total, task
points or status changed, with the reasons found:

- ``new submission`` -- the file's bytes changed;
- ``assignment version changed`` -- the task module, the checker or the template changed;
- ``hidden-case secret changed`` -- the instructor's secret (its fingerprint) changed;
- ``task changed: <id>`` -- that task's definition changed and its points moved;
- ``regraded, nothing recorded changed`` -- none of the above: a ``--force`` run whose
  grade moved anyway (a time limit, a time-out on a busy machine, or the grader itself);
- ``first graded`` / ``no longer submitted`` -- a student who appeared or disappeared.

Those are exactly the students the instructor has to tell.

Examples
--------
>>> old = {"students": {"ana": {"total": 5.0, "status": "ok", "sha256": "a", "version": "1",
...        "secret": "", "tasks": {"ex01.f": 5.0}}}, "tasks": {"ex01.f": "x"}}
>>> new = {"students": {"ana": {"total": 7.0, "status": "ok", "sha256": "a", "version": "2",
...        "secret": "", "tasks": {"ex01.f": 7.0}}}, "tasks": {"ex01.f": "y"}}
>>> [(c.student, c.delta, c.reasons) for c in compare(old, new)]
[('ana', 2.0, ['assignment version changed', 'task changed: ex01.f'])]
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from cnncourse.grading.assignment import Assignment
from cnncourse.grading.grader import SubmissionResult
from cnncourse.grading.report import atomic_write

__all__ = [
    "Change",
    "compare",
    "load_snapshot",
    "snapshot",
    "task_fingerprints",
    "write_changes_csv",
    "SNAPSHOT",
]

SNAPSHOT = Path(".classview") / "snapshot.json"


@dataclass
class Change:
    """One student's grade change between two runs."""

    student: str
    old_total: float | None
    new_total: float | None
    old_status: str = ""
    new_status: str = ""
    tasks: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    @property
    def delta(self) -> float:
        """New total minus old total (a missing total counts as 0)."""
        return round((self.new_total or 0.0) - (self.old_total or 0.0), 2)

    def task_text(self) -> str:
        """The changed tasks as ``id old→new``, separated by semicolons."""
        return "; ".join(f"{t} {_fmt(a)}→{_fmt(b)}" for t, (a, b) in self.tasks.items())


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def _source(obj: object) -> str:
    """Source of a case function (or its repr when it has none, e.g. a lambda in a REPL)."""
    try:
        return inspect.getsource(obj)  # type: ignore[arg-type]
    except (OSError, TypeError):
        # A repr may hold a memory address ("<function f at 0x7f...>"): not part of the task.
        return re.sub(r" at 0x[0-9a-fA-F]+", "", repr(obj))


def task_fingerprints(assignment: Assignment) -> dict[str, str]:
    """A short hash per task of everything that decides its grade.

    Examples
    --------
    >>> from cnncourse.grading.assignment import load_assignment
    >>> fps = task_fingerprints(load_assignment("ex01"))
    >>> sorted(fps)[0], len(fps["ex01.dense_params"])
    ('ex01.conv_params', 12)
    """
    out = {}
    for t in assignment.tasks:
        task = t.task
        parts = [
            task.id,
            repr(task.points),
            task.title,
            t.function,
            t.template_source,
            _source(task.public_cases),
            _source(task.hidden_cases) if task.hidden_cases else "",
            _source(task.comparator) if task.comparator else "",
            repr(t.artifact),
        ]
        out[task.id] = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]
    return out


def snapshot(results: list[SubmissionResult], assignment: Assignment) -> dict:
    """What the next run compares with: grades and their causes, per student and task."""
    return {
        "assignment": assignment.name,
        "version": assignment.version,
        "tasks": task_fingerprints(assignment),
        "students": {
            r.student: {
                "total": r.total,
                "status": r.status,
                "sha256": r.sha256,
                "version": r.version,
                "secret": r.secret_fingerprint,
                "tasks": {t.id: t.points for t in r.tasks},
            }
            for r in results
        },
    }


def load_snapshot(out: Path) -> dict | None:
    """The snapshot of the previous run in ``out``, or ``None`` (first run, unreadable)."""
    try:
        data = json.loads((Path(out) / SNAPSHOT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("students"), dict):
        return None
    return data


def save_snapshot(out: Path, data: dict) -> None:
    """Write ``data`` as the snapshot the next run compares with."""
    atomic_write(Path(out) / SNAPSHOT, json.dumps(data, indent=1, sort_keys=True) + "\n")


def compare(old: dict, new: dict) -> list[Change]:
    """The students whose grades differ between snapshots ``old`` and ``new``, and why.

    A student is listed when the total, the status or the points of any task changed, or
    when they appear in only one of the two. Sorted by the size of the change (largest
    first), then by id.
    """
    changes = []
    old_students, new_students = old.get("students", {}), new.get("students", {})
    old_tasks, new_tasks = old.get("tasks", {}), new.get("tasks", {})
    for student in sorted(set(old_students) | set(new_students)):
        a, b = old_students.get(student), new_students.get(student)
        if a is None or b is None:
            known = a or b
            changes.append(
                Change(
                    student,
                    None if a is None else a["total"],
                    None if b is None else b["total"],
                    "" if a is None else a["status"],
                    "" if b is None else b["status"],
                    {
                        t: (None if a is None else p, None if b is None else p)
                        for t, p in known["tasks"].items()
                    },
                    ["first graded" if a is None else "no longer submitted"],
                )
            )
            continue
        moved = {
            t: (a["tasks"].get(t), b["tasks"].get(t))
            for t in dict.fromkeys([*a["tasks"], *b["tasks"]])
            if a["tasks"].get(t) != b["tasks"].get(t)
        }
        if not moved and a["total"] == b["total"] and a["status"] == b["status"]:
            continue
        reasons = []
        if a.get("sha256") != b.get("sha256"):
            reasons.append("new submission")
        if a.get("version") != b.get("version"):
            reasons.append("assignment version changed")
        if a.get("secret") != b.get("secret"):
            reasons.append("hidden-case secret changed")
        for t in moved:
            if old_tasks.get(t) != new_tasks.get(t):
                reasons.append(f"task changed: {t}")
        if a["status"] != b["status"]:
            reasons.append(f"status {a['status']} → {b['status']}")
        if not reasons or reasons == [f"status {a['status']} → {b['status']}"]:
            reasons.append("regraded, nothing recorded changed")
        changes.append(
            Change(student, a["total"], b["total"], a["status"], b["status"], moved, reasons)
        )
    changes.sort(key=lambda c: (-abs(c.delta), c.student))
    return changes


def _cell(text: str) -> str:
    """Neutralise spreadsheet formulas in free text (as the gradebook does)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t") else text


def changes_csv(changes: list[Change]) -> str:
    """``regrade_changes.csv``: student, old and new total, delta, status, tasks, reasons.

    Examples
    --------
    >>> print(changes_csv([Change("ana", 5.0, 7.0, "ok", "ok", {"ex01.f": (5.0, 7.0)},
    ...                           ["task changed: ex01.f"])]), end="")
    student_id,old_total,new_total,delta,old_status,new_status,tasks,reasons
    ana,5,7,+2,ok,ok,ex01.f 5→7,task changed: ex01.f
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "student_id",
            "old_total",
            "new_total",
            "delta",
            "old_status",
            "new_status",
            "tasks",
            "reasons",
        ]
    )
    for c in changes:
        writer.writerow(
            [
                _cell(c.student),
                "" if c.old_total is None else f"{c.old_total:g}",
                "" if c.new_total is None else f"{c.new_total:g}",
                f"{c.delta:+g}",
                c.old_status,
                c.new_status,
                c.task_text(),
                _cell("; ".join(c.reasons)),
            ]
        )
    return buffer.getvalue()


def write_changes_csv(path: Path, changes: list[Change]) -> None:
    """Write :func:`changes_csv` to ``path`` atomically."""
    atomic_write(path, changes_csv(changes))
