"""Combine the output folders of sharded grading runs into one gradebook, or refuse.

A class graded on a cluster runs ``cnncourse grade --shard i/n --out OUT/shard-i`` once per
machine (``contrib/slurm``, ``contrib/kubernetes``). :func:`merge_shards` reads each shard's
private state (``.state/<id>.json``, the full results), checks that the shards can be put in
one gradebook, copies each student's ``results/<id>.json``, ``feedback/<id>.html`` and state
as they were written, and writes the combined ``gradebook.csv``.

It refuses (:class:`MergeError`, nothing written) when the shards disagree on what was
graded: another exercise, another assignment version (``SubmissionResult.version``: the
template, the task cases and the grader), another hidden-case secret
(``SubmissionResult.secret_fingerprint``, compared when present), or other gradebook columns;
when one student was graded differently in two shards; and, given the submissions, when a
student is missing from every shard (a shard that failed or never ran).

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> merge_shards([Path(tempfile.mkdtemp())], Path(tempfile.mkdtemp()) / "merged")
Traceback (most recent call last):
...
cnncourse.grading.merge.MergeError: ... is not a grading output folder (no gradebook.csv)
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cnncourse.grading.grader import SubmissionResult
from cnncourse.grading.report import write_gradebook

__all__ = ["MergeError", "MergeReport", "Shard", "merge_shards", "read_shard"]


class MergeError(ValueError):
    """The shard outputs cannot be merged; the message says which shards and why."""


@dataclass
class Shard:
    """One grading output folder: its task columns and its results by student."""

    folder: Path
    task_ids: list[str]
    results: dict[str, SubmissionResult] = field(default_factory=dict)


@dataclass
class MergeReport:
    """What a merge did."""

    out: Path
    students: int
    per_shard: dict[str, int]
    assignment: str
    version: str
    secret_fingerprint: str


def read_shard(folder: Path) -> Shard:
    """Read one grading output folder (``gradebook.csv`` and ``.state/*.json``)."""
    gradebook = folder / "gradebook.csv"
    if not gradebook.is_file():
        raise MergeError(f"{folder} is not a grading output folder (no gradebook.csv)")
    with gradebook.open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f), [])
    if header[:1] != ["student_id"] or "total" not in header:
        raise MergeError(f"{gradebook}: not a cnncourse gradebook (header {header})")
    shard = Shard(folder, header[1 : header.index("total")])  # the task columns
    for path in sorted((folder / ".state").glob("*.json")):
        try:
            result = SubmissionResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise MergeError(f"{path}: unreadable grading state ({exc})") from exc
        shard.results[result.student] = result
    return shard


def _one_value(shards: list[Shard], what: str, attr: str, skip_empty: bool = False) -> str:
    """The single value of ``attr`` over every result of every shard, or a MergeError."""
    seen: dict[str, set[str]] = {}
    for shard in shards:
        for result in shard.results.values():
            value = str(getattr(result, attr) or "")
            if value or not skip_empty:
                seen.setdefault(value, set()).add(str(shard.folder))
    if len(seen) > 1:
        detail = "; ".join(f"{v or '(none)'} in {', '.join(sorted(f))}" for v, f in seen.items())
        raise MergeError(f"the shards were graded with different {what}: {detail}")
    return next(iter(seen), "")


def merge_shards(
    folders: Sequence[Path],
    out: Path,
    expected_students: Sequence[str] | None = None,
) -> MergeReport:
    """Merge the grading output ``folders`` into ``out``; return what was merged.

    Parameters
    ----------
    folders : sequence of Path
        Output folders of ``cnncourse grade --shard i/n`` runs (or of any grading runs of the
        same assignment).
    out : Path
        Where the merged ``gradebook.csv``, ``results/``, ``feedback/`` and ``.state/`` go;
        must not exist or be empty.
    expected_students : sequence of str, optional
        Every student id of the class; a student no shard graded is an error.

    Returns
    -------
    MergeReport

    Raises
    ------
    MergeError
        When the shards disagree (see the module docstring) or ``out`` is in the way.
    """
    if not folders:
        raise MergeError("no shard folders to merge")
    out = Path(out)
    resolved = {Path(f).resolve() for f in folders}
    if out.resolve() in resolved:
        raise MergeError(f"{out} is one of the shards; merge into a new folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MergeError(f"{out} already exists and is not empty; merge into a new folder")
    shards = [read_shard(Path(f)) for f in folders]

    columns = {tuple(s.task_ids): str(s.folder) for s in shards}
    if len(columns) > 1:
        detail = "; ".join(f"{list(c)} in {f}" for c, f in columns.items())
        raise MergeError(f"the shards' gradebooks have different task columns: {detail}")
    assignment = _one_value(shards, "exercises", "assignment")
    version = _one_value(shards, "assignment versions", "version")
    fingerprint = _one_value(
        shards, "hidden-case secrets (secret fingerprints)", "secret_fingerprint", skip_empty=True
    )

    merged: dict[str, tuple[SubmissionResult, Shard]] = {}
    for shard in shards:
        for student, result in shard.results.items():
            if student in merged:
                other, where = merged[student]
                same = (other.sha256, other.total, other.status) == (
                    result.sha256,
                    result.total,
                    result.status,
                )
                if not same:
                    raise MergeError(
                        f"student {student!r} was graded differently in {where.folder} "
                        f"({other.total:g} points, file hash {other.sha256[:12]}) and in "
                        f"{shard.folder} ({result.total:g} points, file hash "
                        f"{result.sha256[:12]}); grade them once"
                    )
                continue
            merged[student] = (result, shard)
    if expected_students is not None:
        missing = sorted(set(expected_students) - set(merged))
        if missing:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise MergeError(
                f"{len(missing)} student(s) graded in no shard: {shown} "
                "(did a shard fail? rerun it, then merge again)"
            )

    for sub in ("results", "feedback", ".state"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for student, (_, shard) in merged.items():
        for sub, suffix in (("results", ".json"), ("feedback", ".html"), (".state", ".json")):
            source = shard.folder / sub / f"{student}{suffix}"
            if source.is_file():
                shutil.copy2(source, out / sub / source.name)
    results = [r for r, _ in merged.values()]
    write_gradebook(out / "gradebook.csv", results, shards[0].task_ids)
    per_shard = {
        str(s.folder): sum(1 for _, where in merged.values() if where is s) for s in shards
    }
    return MergeReport(out, len(results), per_shard, assignment, version, fingerprint)
