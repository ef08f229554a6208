"""Read a submitted notebook defensively and pull out the answer to each task.

Anything can arrive: a huge file, bytes that are not UTF-8, broken JSON, a notebook of an
old format, a notebook whose cells were deleted, duplicated or stripped of metadata.
:func:`read_notebook` returns the notebook's cells or raises :class:`SubmissionError`
whose message is the reason the gradebook shows; :func:`extract_answers` finds each task's
cell by the task id in its metadata and, when the metadata is gone, by the name of the
function the template's task cell defines. Only these answers are graded: they are put
back into the pristine template (:class:`cnncourse.grading.assignment.Assignment`), so
edited or deleted check cells and any other cell change nothing.

Examples
--------
>>> cells = [{"cell_type": "code", "source": "def f(x):\\n    return x",
...           "metadata": {"cnncourse": {"task": "ex00.f"}}}]
>>> extract_answers(cells, {"ex00.f": "f"}).sources
{'ex00.f': 'def f(x):\\n    return x'}
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Answers", "SubmissionError", "extract_answers", "file_digest", "read_notebook"]

MAX_BYTES = 20 * 2**20
MAX_CELL_CHARS = 2 * 2**20


class SubmissionError(ValueError):
    """A submission that cannot be graded at all; the message is the reason."""


@dataclass
class Answers:
    """The source of each task's answer, and what was unusual in finding it."""

    sources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def file_digest(data: bytes) -> str:
    """SHA-256 of a submission's bytes (the key that makes regrading resumable)."""
    return hashlib.sha256(data).hexdigest()


def read_bytes(path: Path, max_bytes: int = MAX_BYTES) -> bytes:
    """The file's bytes, refusing files over ``max_bytes`` before reading them."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise SubmissionError(
                f"file too large: {size / 2**20:.1f} MB (the limit is {max_bytes / 2**20:g} MB)"
            )
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise SubmissionError(f"cannot read the file: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise SubmissionError(f"file too large (the limit is {max_bytes / 2**20:g} MB)")
    return data


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "".join(value)
    return ""


def read_notebook(data: bytes) -> tuple[list[dict], list[str]]:
    """Parse a notebook's bytes into a list of cells (nbformat 4 shape) and notes.

    Raises
    ------
    SubmissionError
        With the reason: not a notebook, malformed JSON, an unsupported format version.
    """
    notes: list[str] = []
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8", errors="replace")
        notes.append(
            f"the file is not valid UTF-8 (first bad byte at offset {exc.start}); "
            "undecodable bytes were replaced"
        )
    if not text.strip():
        raise SubmissionError("malformed notebook: the file is empty")
    try:
        nb = json.loads(text)
    except RecursionError as exc:
        raise SubmissionError("malformed notebook: JSON nested too deeply") from exc
    except ValueError as exc:
        msg = getattr(exc, "msg", str(exc))
        where = f" (line {exc.lineno}, column {exc.colno})" if hasattr(exc, "lineno") else ""
        raise SubmissionError(f"malformed notebook: not valid JSON: {msg}{where}") from exc
    if not isinstance(nb, dict):
        raise SubmissionError("malformed notebook: the JSON is not an object")
    major = nb.get("nbformat")
    if major == 4 or (isinstance(major, int) and major > 4 and isinstance(nb.get("cells"), list)):
        cells = nb.get("cells")
    elif major in (1, 2, 3):
        cells = _upgrade(text)
        notes.append(f"notebook format {major} was upgraded to format 4")
    else:
        raise SubmissionError(f"malformed notebook: unsupported nbformat {str(major)[:20]!r}")
    if not isinstance(cells, list):
        raise SubmissionError("malformed notebook: it has no list of cells")
    clean = []
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        meta = cell.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        clean.append(
            {
                "cell_type": cell.get("cell_type"),
                "source": _text(cell.get("source")),
                "metadata": meta,
            }
        )
    return clean, notes


def _upgrade(text: str) -> list:
    import nbformat

    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises many kinds on odd input
        raise SubmissionError(
            f"malformed notebook: could not upgrade the old format ({type(exc).__name__})"
        ) from exc
    return [dict(cell) for cell in nb.get("cells", [])]


def _task_id(cell: dict) -> str | None:
    meta = cell["metadata"].get("cnncourse")
    if isinstance(meta, dict) and isinstance(meta.get("task"), str):
        return meta["task"]
    return None


def extract_answers(cells: list[dict], functions: dict[str, str]) -> Answers:
    """Find the answer cell of every task in ``functions`` (task id -> function name).

    Rules: a code cell whose metadata names the task wins (the last one when a cell was
    duplicated); otherwise the last code cell that defines ``def <function>(`` at the top
    level; otherwise the task is missing (absent from ``sources``).
    """
    answers = Answers()
    code = [c for c in cells if c["cell_type"] == "code"]
    by_id: dict[str, list[int]] = {}
    for index, cell in enumerate(code):
        task = _task_id(cell)
        if task in functions:
            by_id.setdefault(task, []).append(index)
    used = {indices[-1] for indices in by_id.values()}
    for task, function in functions.items():
        indices = by_id.get(task)
        if indices:
            if len(indices) > 1:
                answers.notes.append(f"{task}: {len(indices)} cells carry this task; the last one")
            chosen = indices[-1]
        else:
            pattern = re.compile(rf"^(async\s+)?def\s+{re.escape(function)}\s*\(", re.MULTILINE)
            found = [i for i, c in enumerate(code) if i not in used and pattern.search(c["source"])]
            if not found:
                continue
            chosen = found[-1]
            used.add(chosen)
            answers.notes.append(
                f"{task}: the task cell's metadata is missing; used the cell defining {function}"
            )
        source = code[chosen]["source"]
        if len(source) > MAX_CELL_CHARS:
            answers.notes.append(f"{task}: the answer cell is too long and was cut")
            source = source[:MAX_CELL_CHARS]
        answers.sources[task] = source
    return answers
