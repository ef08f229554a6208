"""The grader's outputs: ``gradebook.csv``, Gradescope ``results.json``, HTML feedback.

- :func:`gradebook_rows` / :func:`write_gradebook`: one row per student -- id, points per
  task, total, maximum, status (``ok`` or ``error``), reason, ignored duplicate files --
  ready to import into an LMS. Cells that a spreadsheet would read as a formula are
  prefixed with ``'``.
- :func:`gradescope_json`: the schema of Gradescope's ``results.json`` (``score``,
  ``output``, ``tests`` with ``name``, ``score``, ``max_score``, ``output``,
  ``visibility``).
- :func:`feedback_html`: one self-contained page per student, rendered by Jinja2 with
  autoescaping from ``templates/feedback.html.j2``; public cases show their names and
  messages, hidden cases only "passed" or a generic message; no inputs of hidden cases, no
  solution code, no expected values beyond the public ones.

Every string that may come from a submission (messages, file names) goes through
:func:`clean_text` first (via :func:`sanitized`): lone surrogates -- from a ``"\\ud800"`` in
an exception message, or from a file name that is not UTF-8 -- become U+FFFD, so no output
format can fail to encode it. Rows and pages say when grading ran without isolation.

All files are written atomically (:func:`atomic_write`): a temporary file in the same
folder, flushed, then renamed over the target, so a kill never leaves half a file.
"""

from __future__ import annotations

import copy
import csv
import functools
import io
import json
import os
import re
import tempfile
from dataclasses import fields, is_dataclass
from pathlib import Path

from cnncourse.booklinks import book_link, section_title
from cnncourse.grading.grader import SubmissionResult
from cnncourse.grading.sandbox import NOT_ISOLATED

__all__ = [
    "atomic_write",
    "clean_text",
    "is_isolated",
    "sanitized",
    "feedback_html",
    "gradebook_rows",
    "gradescope_json",
    "write_gradebook",
]


def clean_text(text: object) -> str:
    """``text`` as a string that encodes to UTF-8 (lone surrogates become U+FFFD).

    Examples
    --------
    >>> clean_text("ok")
    'ok'
    >>> clean_text("bad \\ud800 char")
    'bad \\ufffd char'
    >>> clean_text(os.fsdecode(b"jos\\xe9.ipynb"))
    'jos\\ufffd.ipynb'
    """
    text = str(text)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _SURROGATES.sub("\ufffd", text)


_SURROGATES = re.compile("[\ud800-\udfff]")


def _clean(value):
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            setattr(value, f.name, _clean(getattr(value, f.name)))
    return value


def sanitized(result: SubmissionResult) -> SubmissionResult:
    """A copy of ``result`` whose every string is safe to write in any format."""
    return _clean(copy.deepcopy(result))


def is_isolated(result: SubmissionResult) -> bool:
    """Whether ``result`` was graded in the sandbox (not with ``--allow-unisolated``)."""
    return not any(str(p).startswith("NOT ISOLATED") for p in result.protections)


def atomic_write(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = clean_text(data).encode("utf-8") if isinstance(data, str) else data
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
    text = clean_text(text).replace("\r", " ").replace("\n", " ")
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t") else text


def gradebook_rows(results: list[SubmissionResult], task_ids: list[str]) -> list[list[str]]:
    """Header and rows of the gradebook, sorted by student id."""
    rows = [
        [
            "student_id",
            *task_ids,
            "total",
            "max",
            "status",
            "reason",
            "duplicates",
            "file",
            "isolation",
        ]
    ]
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
                "sandbox" if is_isolated(r) else "NONE (graded without isolation)",
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
    result = sanitized(result)
    summary = f"{_fmt(result.total)}/{_fmt(result.max_total)} points"
    if result.status != "ok":
        summary += f". Problems: {result.reason}"
    if not is_isolated(result):
        summary += f". {NOT_ISOLATED}"
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


@functools.cache
def _templates():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=FileSystemLoader(str(Path(__file__).resolve().parent / "templates")),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True),
        undefined=StrictUndefined,
    )


def feedback_html(result: SubmissionResult) -> str:
    """A readable, self-contained feedback page for one student (autoescaped)."""
    r = sanitized(result)
    note = next((p for p in r.protections if p.startswith("NOT ISOLATED")), NOT_ISOLATED)
    return (
        _templates()
        .get_template("feedback.html.j2")
        .render(
            r=r,
            file_name=Path(r.file).name,
            isolated=is_isolated(r),
            isolation_note=note,
            points=_fmt,
            link=lambda t: book_link(t.id, chapter=getattr(t, "chapter", "") or ""),
            link_title=lambda t: section_title(t.id, getattr(t, "chapter", "") or ""),
        )
    )


def result_json(result: SubmissionResult) -> str:
    return json.dumps(gradescope_json(result), indent=2, allow_nan=False) + "\n"


__all__ += ["result_json"]
