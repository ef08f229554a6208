"""Grade a whole class: find submissions, name students, grade in parallel, resume, report.

:func:`collect` turns files and folders into one :class:`Entry` per student (ids from file
names, or from ``--id-pattern``), reporting duplicates. :func:`grade_class` grades them with
a pool of pre-warmed workers and writes, for every student, ``results/<id>.json``
(Gradescope schema), ``feedback/<id>.html`` and a private state file
``.state/<id>.json`` (the full result, the content hash, the assignment version and the
random seed of the hidden cases). A rerun reuses the state of every submission whose bytes
and assignment version are unchanged, unless ``force``; so a killed run resumes where it
stopped. ``gradebook.csv`` is rewritten atomically as results come in.

Duplicate ids (two files for one student): the most recently modified file is graded (ties:
the last path in sorted order); the others are listed in the ``duplicates`` column and
printed as a warning.

Sharding: ``shard=(i, n)`` grades the students whose id hashes to ``i`` (1-based) modulo
``n`` -- stable whatever the order of the files -- so that ``n`` batch jobs can share one
output folder; a final run without ``--shard`` grades nothing new and writes the complete
gradebook.
"""

from __future__ import annotations

import hashlib
import json
import queue
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from cnncourse.grading.assignment import Assignment
from cnncourse.grading.grader import SubmissionResult, _error_result, grade_file
from cnncourse.grading.report import (
    atomic_write,
    clean_text,
    feedback_html,
    is_isolated,
    result_json,
    sanitized,
    write_gradebook,
)
from cnncourse.grading.sandbox import Limits, SandboxError, Worker
from cnncourse.grading.secret import KEY_NAME, fingerprint
from cnncourse.grading.secret import load_or_create as load_secret
from cnncourse.grading.submission import MAX_BYTES, SubmissionError, file_digest, read_bytes

__all__ = ["Entry", "collect", "grade_class", "in_shard", "student_id", "summary_table"]

#: Status of a submission the grader failed on (not the student's fault): never cached.
INFRASTRUCTURE = "infrastructure error"

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]+")


@dataclass
class Entry:
    """One student's submission (and the files ignored as duplicates)."""

    student: str
    path: Path
    duplicates: list[Path] = field(default_factory=list)
    problem: str | None = None


def student_id(path: Path, pattern: re.Pattern | None = None) -> str | None:
    """The student id of a file: its stem, or the ``id`` group of ``pattern``.

    Characters other than letters, digits and ``._@-`` become ``_`` (ids name files).

    Examples
    --------
    >>> student_id(Path("alice.ipynb"))
    'alice'
    >>> student_id(Path("alice_12345_ex02.ipynb"), re.compile(r"^(?P<id>[a-z]+)_\\d+"))
    'alice'
    """
    if pattern is None:
        raw = path.stem
    else:
        match = pattern.search(path.name)
        if match is None or not match.groupdict().get("id"):
            return None
        raw = match.group("id")
    return _UNSAFE.sub("_", raw).lstrip(".") or "_"


def _files(inputs: list[Path]) -> list[Path]:
    found = []
    for item in inputs:
        if item.is_dir():
            for p in sorted(item.rglob("*.ipynb")):
                parts = p.relative_to(item).parts
                if not any(part.startswith(".") for part in parts):
                    found.append(p)
        else:
            found.append(item)
    return list(dict.fromkeys(found))


def collect(inputs: list[Path], pattern: re.Pattern | None = None) -> tuple[list[Entry], list[str]]:
    """Entries (one per student id) and warnings (duplicates, names that do not match)."""
    warnings = []
    by_id: dict[str, list[Path]] = {}
    unmatched = []
    for path in _files(inputs):
        if not path.exists():
            warnings.append(f"{path}: no such file")
            continue
        sid = student_id(path, pattern)
        if sid is None:
            unmatched.append(path)
            continue
        by_id.setdefault(sid, []).append(path)
    entries = []
    for sid, paths in by_id.items():
        ordered = sorted(paths, key=lambda p: (p.stat().st_mtime, str(p)))
        entry = Entry(sid, ordered[-1], ordered[:-1])
        if entry.duplicates:
            warnings.append(
                f"duplicate student id {sid!r}: grading {entry.path}, ignoring "
                + ", ".join(str(p) for p in entry.duplicates)
            )
        entries.append(entry)
    for path in unmatched:
        sid = student_id(path)
        warnings.append(f"{path}: the file name does not match --id-pattern; graded as {sid!r}")
        entries.append(Entry(sid, path, problem="the file name does not match the id pattern"))
    return sorted(entries, key=lambda e: e.student), warnings


def in_shard(student: str, shard: tuple[int, int] | None) -> bool:
    """Whether ``student`` belongs to shard ``(i, n)`` (1-based ``i``)."""
    if shard is None:
        return True
    i, n = shard
    h = int.from_bytes(hashlib.sha256(student.encode()).digest()[:8], "big")
    return h % n == i - 1


class _Progress:
    """A progress bar on stderr (a line per 10% when stderr is not a terminal)."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total, self.done, self.enabled = total, 0, enabled and total > 0
        self.tty = sys.stderr.isatty()
        self.start = time.monotonic()
        self.last_decile = -1

    def update(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        frac = self.done / self.total
        if self.tty:
            bar = "#" * int(30 * frac)
            sys.stderr.write(
                f"\r[{bar:<30}] {self.done}/{self.total} {elapsed:5.1f}s {label[:24]:<24}"
            )
            if self.done == self.total:
                sys.stderr.write("\n")
        elif int(frac * 10) > self.last_decile or self.done == self.total:
            self.last_decile = int(frac * 10)
            sys.stderr.write(f"graded {self.done}/{self.total} ({elapsed:.1f} s)\n")
        sys.stderr.flush()


def _state_path(out: Path, student: str) -> Path:
    return out / ".state" / f"{student}.json"


def load_state(out: Path, student: str) -> SubmissionResult | None:
    try:
        data = json.loads(_state_path(out, student).read_text(encoding="utf-8"))
        return SubmissionResult.from_dict(data)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _write_outputs(out: Path, result: SubmissionResult) -> str | None:
    """Write one student's files; what went wrong (``None`` when nothing did).

    A failure here concerns this student only: the caller marks the result as an
    infrastructure error (so it is regraded next time) and goes on with the class.
    """
    try:
        atomic_write(out / "results" / f"{result.student}.json", result_json(result))
        atomic_write(out / "feedback" / f"{result.student}.html", feedback_html(result))
        if result.status != INFRASTRUCTURE:  # never cached: a rerun grades it again
            state = json.dumps(sanitized(result).to_dict()) + "\n"
            atomic_write(_state_path(out, result.student), state)
    except Exception as exc:  # noqa: BLE001 - one student's files, whatever the reason
        return f"{type(exc).__name__}: {exc}"
    return None


def _infrastructure_result(entry: Entry, digest: str, assignment: Assignment, why: str):
    result = _error_result(
        entry.student,
        entry.path,
        digest,
        assignment,
        f"grader error (not your fault; the submission was not graded): {why}",
    )
    result.status = INFRASTRUCTURE
    return result


def grade_class(
    inputs: list[Path],
    assignment: Assignment,
    out: Path,
    *,
    jobs: int = 1,
    limits: Limits | None = None,
    force: bool = False,
    shard: tuple[int, int] | None = None,
    id_pattern: re.Pattern | None = None,
    progress: bool = True,
    max_bytes: int = MAX_BYTES,
    log: Callable[[str], None] | None = None,
    secret_path: Path | None = None,
    allow_unisolated: bool = False,
) -> tuple[list[SubmissionResult], dict]:
    """Grade every submission under ``inputs`` into ``out``; return results and run stats.

    The hidden cases come from the instructor's secret in ``secret_path`` (default
    ``out/.hidden-cases.key``), created on the first grading (see
    :mod:`cnncourse.grading.secret`).
    """
    log = log or (lambda message: print(message, file=sys.stderr))
    out.mkdir(parents=True, exist_ok=True)
    secret = load_secret(secret_path or out / KEY_NAME)
    secret_id = fingerprint(secret)
    entries, warnings = collect(inputs, id_pattern)
    for w in warnings:
        log(f"warning: {w}")
    mine = [e for e in entries if in_shard(e.student, shard)]
    results: dict[str, SubmissionResult] = {}
    todo: list[tuple[Entry, str]] = []
    for entry in mine:
        try:
            digest = file_digest(read_bytes(entry.path, max_bytes))
        except SubmissionError:
            digest = ""
        cached = None if force else load_state(out, entry.student)
        if (
            cached is not None
            and digest
            and cached.sha256 == digest
            and cached.version == assignment.version
            and cached.secret_fingerprint == secret_id
            and entry.problem is None
            and cached.status != INFRASTRUCTURE
            and (allow_unisolated or is_isolated(cached))
        ):
            cached.duplicates = [str(p.name) for p in entry.duplicates]
            cached.file = str(entry.path)
            results[entry.student] = cached
        else:
            todo.append((entry, digest))
    # Students of other shards that are already graded still belong in the gradebook.
    for entry in entries:
        if entry.student not in results and not any(e is entry for e, _ in todo):
            cached = load_state(out, entry.student)
            if cached is not None and cached.version == assignment.version:
                results[entry.student] = cached
    task_ids = [t.id for t in assignment.tasks]
    stats = {"graded": 0, "cached": len(mine) - len(todo), "seconds": 0.0, "warnings": warnings}
    bar = _Progress(len(todo), progress)
    hide = [str(out.resolve())] + sorted({str(e.path.resolve().parent) for e in entries})
    lock = threading.Lock()
    started = time.monotonic()
    if todo:
        pool: queue.Queue[Worker] = queue.Queue()
        isolation = "allow-none" if allow_unisolated else "require"
        workers = [
            Worker(limits, slot=k, hide=hide, isolation=isolation)
            for k in range(max(1, min(jobs, len(todo))))
        ]
        try:
            with ThreadPoolExecutor(len(workers)) as executor:
                list(executor.map(lambda w: w.start(), workers))
                for w in workers:
                    pool.put(w)

                def task(entry: Entry, digest: str) -> SubmissionResult:
                    worker = pool.get()
                    try:
                        return _grade_one(entry, digest, assignment, worker, max_bytes, secret)
                    except Exception as exc:  # noqa: BLE001 - a grader bug: this student only
                        why = f"{type(exc).__name__}: {exc}"
                        return _infrastructure_result(entry, digest, assignment, why)
                    finally:
                        pool.put(worker)

                futures = [executor.submit(task, e, d) for e, d in todo]
                for n, future in enumerate(as_completed(futures), start=1):
                    result = future.result()
                    with lock:
                        results[result.student] = result
                        failed = _write_outputs(out, result)
                        if failed is not None:
                            log(f"warning: {result.student}: outputs not written ({failed})")
                            result.status = INFRASTRUCTURE
                            result.reason = clean_text(
                                f"the grader could not write this student's files: {failed}"
                            )
                        stats["graded"] += 1
                        bar.update(result.student)
                        if n % 25 == 0:
                            write_gradebook(out / "gradebook.csv", list(results.values()), task_ids)
        finally:
            for w in workers:
                w.close()
    stats["seconds"] = time.monotonic() - started
    write_gradebook(out / "gradebook.csv", list(results.values()), task_ids)
    return sorted(results.values(), key=lambda r: r.student), stats


def _grade_one(
    entry: Entry,
    digest: str,
    assignment: Assignment,
    worker: Worker,
    max_bytes: int,
    secret: bytes | None = None,
) -> SubmissionResult:
    if entry.problem is not None:
        result = _error_result(entry.student, entry.path, digest, assignment, entry.problem)
    else:
        result = None
        for attempt in range(2):
            try:
                result = grade_file(
                    entry.path,
                    assignment,
                    worker,
                    entry.student,
                    max_bytes=max_bytes,
                    secret=secret,
                )
                break
            except SandboxError as exc:  # the worker broke down: restart it, try once more
                try:
                    worker.restart()
                except (SandboxError, OSError):
                    pass
                if attempt == 1:
                    result = _infrastructure_result(entry, digest, assignment, str(exc))
    assert result is not None
    if secret is not None and not result.secret_fingerprint:
        result.secret_fingerprint = fingerprint(secret)
    result.duplicates = [str(p.name) for p in entry.duplicates]
    return result


def summary_table(results: list[SubmissionResult], assignment: Assignment, stats: dict) -> str:
    """The end-of-run summary: counts, mean and median score, mean points per task."""
    lines = []
    totals = [r.total for r in results]
    n_err = sum(r.status != "ok" for r in results)
    lines.append(f"{'submissions':<28}{len(results):>10}")
    lines.append(f"{'  graded now':<28}{stats.get('graded', 0):>10}")
    lines.append(f"{'  unchanged (kept)':<28}{stats.get('cached', 0):>10}")
    lines.append(f"{'  with status error':<28}{n_err:>10}")
    if totals:
        lines.append(f"{'mean score':<28}{statistics.fmean(totals):>10.2f}")
        lines.append(f"{'median score':<28}{statistics.median(totals):>10.2f}")
    lines.append(f"{'maximum':<28}{assignment.max_points:>10g}")
    for t in assignment.tasks:
        pts = [p.points for r in results for p in r.tasks if p.id == t.id]
        mean = statistics.fmean(pts) if pts else 0.0
        lines.append(f"{'  ' + t.id:<28}{mean:>10.2f} / {t.task.points:g}")
    graded = stats.get("graded", 0)
    if graded:
        lines.append(f"{'seconds per submission':<28}{stats['seconds'] / graded:>10.3f}")
    width = max(len(line) for line in lines)
    return "\n".join(["-" * width, *lines, "-" * width])


__all__ += ["load_state"]
