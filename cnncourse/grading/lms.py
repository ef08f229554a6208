"""LMS-ready exports of the gradebook: Canvas and Moodle grade-import CSV files.

Both keep one column per task (so the LMS can show where points were lost) and a total.

**Canvas** (Grades > Import, "gradebook CSV"): the columns of a Canvas gradebook export --
``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section`` -- then one column per
graded item; the second row is ``Points Possible`` with each item's maximum. Canvas matches
a row to a student by ``ID`` (its own user id) or, when that is empty, by ``SIS User ID`` /
``SIS Login ID``; a column whose name matches no assignment becomes a new assignment. Without
a roster the student id (from the file name) goes into ``SIS Login ID``, which is what most
universities' logins are; with a roster (a Canvas gradebook export) the four identity columns
are copied from it.

**Moodle** (Grades > Import > CSV file): a header row, one identifier column and one column
per grade item; on import, "Map from" picks the identifier column and "Map to" the user
field (``username``, ``email`` or ``idnumber``), and each grade column is mapped to a grade
item or "new grade item". The identifier column is named after that field.

A *roster* is any CSV with a column holding the grader's student id (``student_id``,
``SIS Login ID``, ``username``, ``email`` or ``login``) and optionally ``Student`` / ``name``,
``ID``, ``SIS User ID``, ``Section``, ``email``, ``idnumber``.

Examples
--------
>>> from cnncourse.grading.grader import SubmissionResult, TaskOutcome
>>> r = SubmissionResult("ana", "ana.ipynb", "", "ex01", "v", "ok", "", 3.0, 4.0,
...     [TaskOutcome("ex01.f", "f", 1.0, 2.0), TaskOutcome("ex01.g", "g", 2.0, 2.0)])
>>> rows = canvas_rows([r], {"ex01.f": 2.0, "ex01.g": 2.0}, "ex01")
>>> rows[0][:6], rows[1][5:], rows[2][3:]
(['Student', 'ID', 'SIS User ID', 'SIS Login ID', 'Section', 'ex01.f'], \
['2', '2', '4'], ['ana', '', '1', '2', '3'])
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from cnncourse.grading.grader import SubmissionResult
from cnncourse.grading.report import atomic_write

__all__ = [
    "CANVAS_IDENTITY",
    "MOODLE_FIELDS",
    "RosterError",
    "canvas_rows",
    "load_roster",
    "moodle_rows",
    "to_csv",
    "write_exports",
]

CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_FIELDS = ("username", "email", "idnumber")
_KEYS = ("student_id", "sis login id", "username", "login", "email", "idnumber")


class RosterError(ValueError):
    """The roster file cannot be used (no id column, unreadable)."""


def _cell(text: str) -> str:
    """Neutralise spreadsheet formulas (CSV injection) in free text."""
    text = str(text).replace("\r", " ").replace("\n", " ")
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t") else text


def load_roster(path: str | Path) -> dict[str, dict[str, str]]:
    """Read a roster CSV into ``{student id: {column (lower case): value}}``.

    Raises
    ------
    RosterError
        When the file cannot be read or has no column that holds the student id.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise RosterError(f"cannot read the roster {path}: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    fields = {f.strip().lower(): f for f in reader.fieldnames or []}
    key = next((fields[k] for k in _KEYS if k in fields), None)
    if key is None:
        raise RosterError(
            f"the roster {path} needs a column with the student id: one of " + ", ".join(_KEYS)
        )
    roster = {}
    for row in reader:
        sid = (row.get(key) or "").strip()
        if sid and not sid.lower().startswith("points possible"):
            roster[sid] = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
    return roster


def _columns(max_points: dict[str, float], assignment: str) -> list[str]:
    return [*max_points, f"{assignment} total"]


def _points(result: SubmissionResult, task_ids: list[str]) -> list[str]:
    by_id = {t.id: t.points for t in result.tasks}
    return [f"{by_id.get(t, 0.0):g}" for t in task_ids] + [f"{result.total:g}"]


def canvas_rows(
    results: list[SubmissionResult],
    max_points: dict[str, float],
    assignment: str,
    roster: dict[str, dict[str, str]] | None = None,
) -> list[list[str]]:
    """Rows of a Canvas gradebook import: header, ``Points Possible``, one row per student."""
    roster = roster or {}
    items = _columns(max_points, assignment)
    rows = [[*CANVAS_IDENTITY, *items]]
    total = sum(max_points.values())
    rows.append(
        ["Points Possible", "", "", "", "", *[f"{p:g}" for p in max_points.values()], f"{total:g}"]
    )
    for r in sorted(results, key=lambda r: r.student):
        who = roster.get(r.student, {})
        rows.append(
            [
                _cell(who.get("student") or who.get("name") or r.student),
                _cell(who.get("id", "")),
                _cell(who.get("sis user id", "")),
                _cell(who.get("sis login id") or r.student),
                _cell(who.get("section", "")),
                *_points(r, list(max_points)),
            ]
        )
    return rows


def moodle_rows(
    results: list[SubmissionResult],
    max_points: dict[str, float],
    assignment: str,
    roster: dict[str, dict[str, str]] | None = None,
    field: str = "username",
) -> list[list[str]]:
    """Rows of a Moodle CSV grade import: the identifier column ``field``, one per grade item.

    Raises
    ------
    ValueError
        When ``field`` is not one of ``username``, ``email``, ``idnumber``.
    """
    if field not in MOODLE_FIELDS:
        raise ValueError(f"field must be one of {', '.join(MOODLE_FIELDS)}, got {field!r}")
    roster = roster or {}
    rows = [[field, *_columns(max_points, assignment)]]
    for r in sorted(results, key=lambda r: r.student):
        who = roster.get(r.student, {})
        rows.append([_cell(who.get(field) or r.student), *_points(r, list(max_points))])
    return rows


def to_csv(rows: list[list[str]]) -> str:
    """Rows as CSV text (comma-separated, quoted where needed, ``\\n`` line ends)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def write_exports(
    out: Path,
    results: list[SubmissionResult],
    max_points: dict[str, float],
    assignment: str,
    roster: dict[str, dict[str, str]] | None = None,
    moodle_field: str = "username",
) -> list[Path]:
    """Write ``canvas_grades.csv`` and ``moodle_grades.csv`` into ``out``; return their paths."""
    paths = [Path(out) / "canvas_grades.csv", Path(out) / "moodle_grades.csv"]
    moodle = moodle_rows(results, max_points, assignment, roster, moodle_field)
    atomic_write(paths[0], to_csv(canvas_rows(results, max_points, assignment, roster)))
    atomic_write(paths[1], to_csv(moodle))
    return paths
