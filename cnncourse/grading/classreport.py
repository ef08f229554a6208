"""The instructor's view of a class: one report page, a similarity page, LMS exports, deltas.

:func:`write_class_view` runs after ``cnncourse grade`` (and ``cnncourse report``) and writes,
beside ``gradebook.csv``:

- ``class_report.html`` -- score distribution, per-task pass rates and mean points, the
  public cases most often failed and the hidden cases failed per task, the most frequent
  named mistakes, the students whose grading stopped (errors, time-outs) and why, and the
  grades that changed since the previous run;
- ``similarity.html`` -- pairs of submissions whose answers look alike
  (:mod:`cnncourse.grading.similarity`);
- ``canvas_grades.csv`` and ``moodle_grades.csv`` (:mod:`cnncourse.grading.lms`);
- ``regrade_changes.csv`` (:mod:`cnncourse.grading.deltas`).

Pages are rendered by Jinja2 with autoescaping from ``cnncourse/grading/templates``; plots
are inline PNG images with alt text that states what they show, so the page is one file
that works offline and reads well without the pictures.
"""

from __future__ import annotations

import base64
import io
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cnncourse.grading import deltas, lms, similarity
from cnncourse.grading.assignment import Assignment
from cnncourse.grading.grader import SubmissionResult
from cnncourse.grading.report import atomic_write

__all__ = ["ClassView", "class_summary", "render", "write_class_view"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
_NOT_ATTEMPTED = {"not implemented yet", "not run"}


def _environment():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context: object) -> str:
    """Render ``templates/<template>`` with ``context`` (autoescaped)."""
    return _environment().get_template(template).render(**context)


@dataclass
class ClassView:
    """The files written and the numbers the command line prints."""

    report: Path
    similarity: Path
    exports: list[Path]
    changes_csv: Path
    changes: list[deltas.Change] | None  # None on the first run (nothing to compare with)
    pairs: list[similarity.Pair] = field(default_factory=list)


def class_summary(results: list[SubmissionResult], assignment: Assignment) -> dict:
    """The numbers of the class report, as plain data (easy to test, easy to render).

    Examples
    --------
    >>> from cnncourse.grading.grader import CaseOutcome, TaskOutcome
    >>> from cnncourse.grading.assignment import load_assignment
    >>> a = load_assignment("ex01")
    >>> def result(name, passed):
    ...     tasks = [TaskOutcome(t.id, t.task.title, t.task.points if passed else 0.0,
    ...              t.task.points, [CaseOutcome("c1", passed, "" if passed else "off")])
    ...              for t in a.tasks]
    ...     return SubmissionResult(name, name, "", "ex01", a.version, "ok", "",
    ...                             sum(t.points for t in tasks), a.max_points, tasks)
    >>> s = class_summary([result("ana", True), result("ben", False)], a)
    >>> s["n"], s["mean"], s["tasks"][0]["pass_rate"], s["public_failed"][0]["failed"]
    (2, 3.5, 0.5, 1)
    """
    n = len(results)
    totals = [r.total for r in results]
    tasks = []
    public: Counter = Counter()
    public_messages: dict[tuple[str, str], Counter] = {}
    hidden = []
    mistakes: Counter = Counter()
    mistake_students: dict[tuple[str, str], set[str]] = {}
    for t in assignment.tasks:
        outcomes = [o for r in results for o in r.tasks if o.id == t.id]
        points = [o.points for o in outcomes]
        full = sum(o.points >= o.max_points - 1e-9 for o in outcomes)
        attempted = sum(
            bool(o.problems) or any(c.message not in _NOT_ATTEMPTED for c in o.cases)
            for o in outcomes
        )
        tasks.append(
            {
                "id": t.id,
                "title": t.task.title,
                "max": float(t.task.points),
                "mean": statistics.fmean(points) if points else 0.0,
                "pass_rate": full / n if n else 0.0,
                "attempted": attempted,
            }
        )
        hidden_fail = Counter()
        public_ok_hidden_fail = 0
        for r in results:
            o = next((o for o in r.tasks if o.id == t.id), None)
            if o is None:
                continue
            pub = [c for c in o.cases if not c.hidden]
            hid = [c for c in o.cases if c.hidden]
            for c in o.cases:
                if not c.passed and c.message not in _NOT_ATTEMPTED:
                    if not c.hidden:
                        public[(t.id, c.name)] += 1
                        public_messages.setdefault((t.id, c.name), Counter())[c.message] += 1
                    else:
                        hidden_fail[c.message] += 1
                m = c.mistake
                if m and not c.passed:
                    mistakes[(t.id, m)] += 1
                    mistake_students.setdefault((t.id, m), set()).add(r.student)
            if pub and all(c.passed for c in pub) and any(not c.passed for c in hid):
                public_ok_hidden_fail += 1
        if hidden_fail or public_ok_hidden_fail:
            hidden.append(
                {
                    "task": t.id,
                    "failed": sum(hidden_fail.values()),
                    "students_public_ok": public_ok_hidden_fail,
                    "messages": hidden_fail.most_common(3),
                }
            )
    public_failed = [
        {
            "task": task_id,
            "case": name,
            "failed": count,
            "message": public_messages[(task_id, name)].most_common(1)[0][0],
        }
        for (task_id, name), count in sorted(public.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    named = [
        {
            "task": task_id,
            "mistake": m,
            "cases": count,
            "students": len(mistake_students[(task_id, m)]),
        }
        for (task_id, m), count in sorted(mistakes.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    problems = [
        {
            "student": r.student,
            "status": r.status,
            "reason": r.reason,
            "timeout": "timed out" in r.reason or "time limit" in r.reason,
        }
        for r in sorted(results, key=lambda r: r.student)
        if r.status != "ok"
    ]
    return {
        "n": n,
        "max": assignment.max_points,
        "mean": round(statistics.fmean(totals), 2) if totals else 0.0,
        "median": statistics.median(totals) if totals else 0.0,
        "full_marks": sum(r.total >= r.max_total - 1e-9 for r in results),
        "totals": totals,
        "tasks": tasks,
        "public_failed": public_failed[:15],
        "hidden": hidden,
        "mistakes": named[:15],
        "problems": problems,
    }


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _plots(summary: dict) -> list[dict]:
    """The report's pictures, each with alt text that says what the numbers are."""
    from matplotlib.figure import Figure

    plots = []
    if summary["n"]:
        fig = Figure(figsize=(6, 2.8))
        ax = fig.subplots()
        top = summary["max"]
        bins = max(1, min(20, int(top) + 1))
        ax.hist(summary["totals"], bins=bins, range=(0, top), color="#4477aa", edgecolor="white")
        ax.axvline(summary["mean"], color="#cc3311", linestyle="--", label="mean")
        ax.set_xlabel(f"total points (of {top:g})")
        ax.set_ylabel("students")
        ax.legend(frameon=False)
        plots.append(
            {
                "src": _png(fig),
                "alt": (
                    f"Histogram of the total scores of {summary['n']} students out of "
                    f"{top:g} points: mean {summary['mean']:g}, median "
                    f"{summary['median']:g}, {summary['full_marks']} with full marks."
                ),
                "caption": "Score distribution (dashed line: the mean).",
            }
        )
    if summary["tasks"]:
        fig = Figure(figsize=(6, 0.5 + 0.4 * len(summary["tasks"])))
        ax = fig.subplots()
        ids = [t["id"] for t in summary["tasks"]][::-1]
        rates = [100 * t["pass_rate"] for t in summary["tasks"]][::-1]
        ax.barh(ids, rates, color="#228833")
        ax.set_xlim(0, 100)
        ax.set_xlabel("students with full points (%)")
        rates_text = ", ".join(f"{t['id']} {100 * t['pass_rate']:.0f}%" for t in summary["tasks"])
        plots.append(
            {
                "src": _png(fig),
                "alt": f"Bar chart of the share of students with full points per task: "
                f"{rates_text}.",
                "caption": "Share of students with full points, per task.",
            }
        )
    return plots


def write_class_view(
    out: Path,
    assignment: Assignment,
    results: list[SubmissionResult],
    *,
    roster: dict[str, dict[str, str]] | None = None,
    moodle_field: str = "username",
    similarity_options: dict | None = None,
    since: Path | None = None,
) -> ClassView:
    """Write the class report, the similarity page, the LMS exports and the regrade deltas.

    The grades are compared with the snapshot of the last report written in ``out``, or in
    ``since`` (another output folder: the previous merge of a sharded run, say).
    """
    out = Path(out)
    max_points = {t.id: float(t.task.points) for t in assignment.tasks}
    exports = lms.write_exports(out, results, max_points, assignment.name, roster, moodle_field)

    previous = deltas.load_snapshot(Path(since) if since is not None else out)
    current = deltas.snapshot(results, assignment)
    changes = deltas.compare(previous, current) if previous is not None else None
    changes_csv = out / "regrade_changes.csv"
    deltas.write_changes_csv(changes_csv, changes or [])

    docs = similarity.answer_documents(
        {r.student: Path(r.file) for r in results if r.sha256}, assignment
    )
    pairs = similarity.find_similar(
        docs, similarity.template_code(assignment), **(similarity_options or {})
    )
    similarity_page = out / "similarity.html"
    atomic_write(
        similarity_page,
        render(
            "similarity.html.j2",
            assignment=assignment.name,
            pairs=pairs,
            n=len(docs),
            options={
                "k": similarity.K,
                "threshold": similarity.THRESHOLD,
                "min_shared": similarity.MIN_SHARED,
                **(similarity_options or {}),
            },
        ),
    )

    summary = class_summary(results, assignment)
    report = out / "class_report.html"
    atomic_write(
        report,
        render(
            "class_report.html.j2",
            assignment=assignment.name,
            version=assignment.version,
            s=summary,
            plots=_plots(summary),
            changes=changes,
            pairs=pairs,
            feedback={r.student: f"feedback/{r.student}.html" for r in results},
            files={p.name: p.name for p in [*exports, changes_csv, similarity_page]},
        ),
    )
    deltas.save_snapshot(out, current)
    return ClassView(report, similarity_page, exports, changes_csv, changes, pairs)
