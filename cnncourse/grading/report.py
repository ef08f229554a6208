"""The grader's outputs: ``gradebook.csv``, Gradescope ``results.json``, HTML feedback.

- :func:`gradebook_rows` / :func:`write_gradebook`: one row per student -- id, points per
  task, total, maximum, status (``ok`` or ``error``), reason, ignored duplicate files --
  ready to import into an LMS. Cells that a spreadsheet would read as a formula are
  prefixed with ``'``.
- :func:`gradescope_json`: the schema of Gradescope's ``results.json`` (``score``,
  ``output``, ``tests`` with ``name``, ``score``, ``max_score``, ``output``,
  ``visibility``).
- :func:`feedback_html`: one self-contained page per student. Everything is escaped; public
  cases show their names and messages, hidden cases only "passed" or a generic message;
  no inputs of hidden cases, no solution code, no expected values beyond the public ones.

All files are written atomically (:func:`atomic_write`): a temporary file in the same
folder, flushed, then renamed over the target, so a kill never leaves half a file.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import tempfile
from pathlib import Path

from cnncourse.grading.grader import SubmissionResult

__all__ = [
    "atomic_write",
    "feedback_html",
    "gradebook_rows",
    "gradescope_json",
    "write_gradebook",
]


def atomic_write(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _fmt(points: float) -> str:
    return f"{points:g}"


def _cell(text: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection) in free text."""
    text = str(text).replace("\r", " ").replace("\n", " ")
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t") else text


def gradebook_rows(results: list[SubmissionResult], task_ids: list[str]) -> list[list[str]]:
    """Header and rows of the gradebook, sorted by student id."""
    rows = [["student_id", *task_ids, "total", "max", "status", "reason", "duplicates", "file"]]
    for r in sorted(results, key=lambda r: r.student):
        points = {t.id: t.points for t in r.tasks}
        rows.append(
            [
                _cell(r.student),
                *[_fmt(points.get(t, 0.0)) for t in task_ids],
                _fmt(r.total),
                _fmt(r.max_total),
                r.status,
                _cell(r.reason),
                _cell(" ".join(r.duplicates)),
                _cell(Path(r.file).name),
            ]
        )
    return rows


def write_gradebook(path: str | Path, results: list[SubmissionResult], task_ids: list[str]):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(gradebook_rows(results, task_ids))
    atomic_write(path, buffer.getvalue())


def _task_text(task) -> str:
    lines = [f"- {p}" for p in task.problems]
    for case in task.cases:
        mark = "PASS" if case.passed else "FAIL"
        lines.append(f"[{mark}] {case.name}" + ("" if case.passed else f": {case.message}"))
    return "\n".join(lines)


def gradescope_json(result: SubmissionResult) -> dict:
    """The result in Gradescope's ``results.json`` schema."""
    summary = f"{_fmt(result.total)}/{_fmt(result.max_total)} points"
    if result.status != "ok":
        summary += f". Problems: {result.reason}"
    return {
        "score": result.total,
        "output": summary,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [
            {
                "name": f"{t.id}: {t.title}",
                "score": t.points,
                "max_score": t.max_points,
                "output": _task_text(t),
                "visibility": "visible",
            }
            for t in result.tasks
        ],
    }


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem;
color:#222}table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}
td,th{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
.pass{color:#176f2c}.fail{color:#b00020}.problem{background:#fff4e5;padding:.5rem;
border-left:4px solid #e69500;margin:.5rem 0}code{white-space:pre-wrap}
"""


def feedback_html(result: SubmissionResult) -> str:
    """A readable, self-contained feedback page for one student (everything escaped)."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(result.assignment)} feedback: {e(result.student)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{e(result.assignment)}: {e(_fmt(result.total))} / {e(_fmt(result.max_total))}"
        " points</h1>",
        f"<p>Student: <strong>{e(result.student)}</strong>. File: {e(Path(result.file).name)}.</p>",
    ]
    if result.status != "ok" and not result.tasks:
        parts.append(f'<div class="problem">{e(result.reason)}</div>')
    for note in result.notes:
        parts.append(f'<p class="note">Note: {e(note)}</p>')
    for t in result.tasks:
        parts.append(
            f"<h2>{e(t.id)} &mdash; {e(t.title)}: {e(_fmt(t.points))} / "
            f"{e(_fmt(t.max_points))}</h2>"
        )
        for p in t.problems:
            parts.append(f'<div class="problem">{e(p)}</div>')
        if t.cases:
            parts.append("<table><tr><th>case</th><th>result</th></tr>")
            for c in t.cases:
                cls, word = ("pass", "passed") if c.passed else ("fail", "failed")
                msg = "" if c.passed or not c.message else f": <code>{e(c.message)}</code>"
                parts.append(f'<tr><td>{e(c.name)}</td><td class="{cls}">{word}{msg}</td></tr>')
            parts.append("</table>")
    parts.append(
        "<p>Hidden cases use inputs drawn at random when grading; their inputs are not "
        "shown. Re-run the notebook's check cells to see the public cases in detail.</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def result_json(result: SubmissionResult) -> str:
    return json.dumps(gradescope_json(result), indent=2, allow_nan=False) + "\n"


__all__ += ["result_json"]
