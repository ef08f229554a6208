"""Read a submitted notebook defensively and decide what of it the grader runs.

Anything can arrive: a huge file, bytes that are not UTF-8, broken JSON, a notebook of an
old format, a notebook whose cells were deleted, duplicated or stripped of metadata.
:func:`read_notebook` returns the notebook's cells or raises :class:`SubmissionError`
whose message is the reason the gradebook shows.

:func:`plan_submission` decides what runs: the notebook as the student ran it, code cells
in order up to each task's check cell, graded on the function that check cell saw (the
rule every exercise's introduction states). :func:`extract_answers` finds each task's own
cell (by the task id in its metadata, else by the function it defines); the similarity
check compares those.

Examples
--------
>>> cells = [{"cell_type": "code", "source": "def f(x):\\n    return x",
...           "metadata": {"cnncourse": {"task": "ex00.f"}}}]
>>> extract_answers(cells, {"ex00.f": "f"}).sources
{'ex00.f': 'def f(x):\\n    return x'}
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "SHIMS",
    "Answers",
    "Plan",
    "SubmissionError",
    "TaskPlan",
    "extract_answers",
    "file_digest",
    "graded_name",
    "plan_submission",
    "read_notebook",
]

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
    from cnncourse.notebook_format import task_id

    return task_id(cell)


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


# --------------------------------------------------------------------------- what runs


@dataclass
class TaskPlan:
    """What the grader runs for one task: a segment of the notebook, ending at its check.

    ``source`` is the Python the worker executes for the task: every code cell since the
    previous task's segment, in notebook order, ending with the cell whose check call
    decides what is graded. The task's own cell (the one that defines its function) is
    inlined verbatim, starting at line ``offset + 1`` of ``source``, so that the line
    numbers in error messages can be mapped back; every other cell is one line that runs
    it with the stand-ins of :data:`SHIMS`, ignoring its errors.
    """

    task: str
    function: str
    graded: str  # the name the worker calls: the function the check cell saw (wrapped)
    source: str = ""
    own: str | None = None  # the task's own cell (Python), None when the task is missing
    offset: int = 0
    cells: list[int] = field(default_factory=list)  # notebook code-cell numbers, 1-based
    without_own: str = ""  # the same segment without the task's own cell


@dataclass
class Plan:
    """The whole notebook as the grader runs it."""

    tasks: list[TaskPlan]
    notes: list[str] = field(default_factory=list)


def graded_name(task: str) -> str:
    """The worker-side name of the function graded for ``task``."""
    return "_cnncourse_graded_" + re.sub(r"\W", "_", task)


#: Stand-ins the grader defines before the student's cells: ``check`` remembers the
#: function each check cell saw, ``display`` and ``get_ipython()`` do what is harmless
#: (``%time`` runs its statement; shell commands and other magics do nothing).
SHIMS = """
def _cnncourse_shims():
    g = globals()
    checked = {}

    class Shell:
        def run_line_magic(self, name, line, *args, **kwargs):
            if name in ("time", "timeit", "capture", "prun"):
                exec(compile(line, "<magic>", "exec"), g)

        def run_cell_magic(self, name, line, cell, *args, **kwargs):
            if name in ("time", "timeit", "capture", "prun"):
                exec(compile(cell, "<magic>", "exec"), g)

        def system(self, *args, **kwargs):
            return None

        def getoutput(self, *args, **kwargs):
            return []

        def __getattr__(self, name):
            return lambda *args, **kwargs: None

    shell = Shell()

    def get_ipython():
        return shell

    def display(*args, **kwargs):
        return None

    def check(task_id, fn=None, *args, **kwargs):
        checked[str(task_id)] = fn

    def cell(name, source):
        try:
            exec(compile(source, name, "exec"), g)
        except BaseException as exc:
            if isinstance(exc, (SystemExit, KeyboardInterrupt)):
                raise
            # Jupyter would show the error and go on with the next cell on Run all; the
            # check cell's function decides the grade.

    def wrap(fn):
        import numpy

        def graded(*args, **kwargs):
            before = [numpy.copy(a) if isinstance(a, numpy.ndarray) else None for a in args]
            out = fn(*args, **kwargs)
            changed = False
            for a, b in zip(args, before):
                if b is not None and isinstance(a, numpy.ndarray):
                    if a.shape != b.shape or not numpy.array_equal(
                        a, b, equal_nan=b.dtype.kind in "fc"
                    ):
                        changed = True
            return {"__cnncourse_output__": out, "mutated": changed}

        return graded

    def pick(task_id, function, graded, wrapped):
        fn = checked[task_id] if task_id in checked else g.get(function)
        g[graded] = wrap(fn) if wrapped and callable(fn) else fn

    g.update(get_ipython=get_ipython, display=display, check=check)
    g["_cnncourse_cell"] = cell
    g["_cnncourse_pick"] = pick


_cnncourse_shims()
del _cnncourse_shims
"""


def _normal(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def _setup_without_course(source: str) -> str:
    """A setup cell without what needs the course package, which the sandbox hides.

    Its ``cnncourse`` imports become blank lines (the preamble provides ``check`` and the
    names imported from :data:`~cnncourse.notebook_format.SANDBOX_MODULES`), and so do the
    statements that use a name another course import binds (``import_tensorflow()``); the
    rest runs, a student's ``from scipy import signal`` included.

    Examples
    --------
    >>> print(_setup_without_course(
    ...     "from cnncourse.quiet import import_tensorflow\\nimport_tensorflow()\\n"
    ...     "import numpy as np\\nfrom scipy import signal").strip())
    import numpy as np
    from scipy import signal
    """
    from cnncourse.notebook_format import SANDBOX_MODULES

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return source
    course: set[str] = set()  # names bound by course imports the grader does not provide
    dropped: list[ast.stmt] = []
    kept: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.Import) and any(
            a.name.split(".")[0] == "cnncourse" for a in node.names
        ):
            course.update((a.asname or a.name).split(".")[0] for a in node.names)
            dropped.append(node)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "cnncourse":
            if node.module not in (*SANDBOX_MODULES, "cnncourse.checking"):
                course.update(a.asname or a.name for a in node.names)
            dropped.append(node)
        elif any(isinstance(n, ast.Name) and n.id in course for n in ast.walk(node)):
            dropped.append(node)
        else:
            kept.update(range(node.lineno - 1, node.end_lineno or node.lineno))
    lines = source.splitlines(keepends=True)
    for node in dropped:
        for k in range(node.lineno - 1, node.end_lineno or node.lineno):
            if k not in kept:  # a line shared with a kept statement stays whole
                lines[k] = "\n"
    return "".join(lines)


def plan_submission(
    cells: list[dict],
    functions: dict[str, str],
    *,
    given: set[str] | None = None,
    wrapped: set[str] | None = None,
    forbidden: Any = None,
) -> Plan:
    """Decide what the grader runs for each task (``functions``: task id -> function name).

    Rules (the ones written in every exercise's introduction):

    - code cells run from the top, in order, up to the check cell of each task; cells
      after the last check cell do not run;
    - each task is graded on the function its check cell checked: the last cell whose
      metadata names the task as checked, else the first cell from the task's cell on that
      calls ``check("<task>", ...)`` (the first anywhere when none follows it); without a
      check cell, the task's own cell decides;
    - the task's own cell is the last cell up to there that defines its function (the
      task id in the metadata only breaks ties when no cell defines it);
    - skipped: the course's unchanged example cells (``given``: their normalised sources)
      after the first task, and cells for which ``forbidden(source)`` returns problems
      (cells that import the course package);
    - in the cells before the first task (the setup), imports of the course package and
      the statements that use what they import are left out, and the rest runs;
    - IPython syntax is turned into Python (:func:`cnncourse.notebook_format.to_python`)
      and ``from cnncourse.checking import check`` is replaced by the grader's ``check``.

    Examples
    --------
    >>> cells = [
    ...     {"cell_type": "code", "source": "def helper(x):\\n    return 2 * x", "metadata": {}},
    ...     {"cell_type": "code", "source": "def f(x):\\n    return helper(x)", "metadata": {}},
    ...     {"cell_type": "code", "source": 'check("ex00.f", f)', "metadata": {}},
    ...     {"cell_type": "code", "source": "def f(x):\\n    return 0  # scratch", "metadata": {}},
    ... ]
    >>> task = plan_submission(cells, {"ex00.f": "f"}).tasks[0]
    >>> task.cells, task.offset  # the scratch copy in cell 4 does not run
    ([1, 2, 3], 1)
    """
    from cnncourse.notebook_format import (
        binds,
        check_calls,
        check_id,
        defines,
        strip_check_import,
        task_id,
        to_python,
    )

    given = given or set()
    wrapped = set(functions) if wrapped is None else wrapped
    plan = Plan([])
    code = [c for c in cells if c.get("cell_type") == "code"]
    python = [strip_check_import(to_python(c["source"][:MAX_CELL_CHARS])) for c in code]
    first_task = next(
        (
            i
            for i, c in enumerate(code)
            if task_id(c) in functions or set(defines(python[i])) & set(functions.values())
        ),
        len(code),
    )
    for i in range(first_task):
        python[i] = _setup_without_course(python[i])
    skip: dict[int, str] = {}
    for i, c in enumerate(code):
        if i > first_task and task_id(c) is None and _normal(c["source"]) in given:
            skip[i] = "example"
        elif forbidden is not None and forbidden(python[i]):
            skip[i] = "forbidden"
    # Where each task's check happens.
    ends: dict[str, int] = {}
    for task in functions:
        by_meta = [i for i, c in enumerate(code) if check_id(c) == task]
        by_call = [i for i, src in enumerate(python) if any(t == task for t, _ in check_calls(src))]
        # The task's cell: tagged with its id, else the first cell defining its function.
        anchor = next(
            (i for i, c in enumerate(code) if task_id(c) == task),
            next((i for i, src in enumerate(python) if functions[task] in defines(src)), 0),
        )
        if by_meta:
            ends[task] = by_meta[-1]
        elif by_call:
            # The first call from the task's cell on: a course cell before the task may call
            # check on an example (exercise 10 checks the buggy script it gives).
            ends[task] = next((i for i in by_call if i >= anchor), by_call[0])
    done = -1
    for task, function in functions.items():
        tp = TaskPlan(task, function, graded_name(task))
        limit = ends.get(task)
        defining = [
            i
            for i in range(len(code))
            if (limit is None or i <= max(limit, done)) and function in binds(python[i])
        ]
        tagged = [i for i, c in enumerate(code) if task_id(c) == task]
        own = defining[-1] if defining else (tagged[-1] if tagged else None)
        if own is None and limit is None:
            plan.tasks.append(tp)
            continue
        end = max(done, limit if limit is not None else own)
        if own is not None:
            end = max(end, own)
            tp.own = python[own]
        lines: list[str] = []
        others: list[str] = []
        for i in range(done + 1, end + 1):
            if skip.get(i) == "forbidden" and i != own:
                plan.notes.append(f"cell {i + 1} imports the course package and was not run")
                continue
            if i in skip and i != own:
                continue
            tp.cells.append(i + 1)
            if i == own:
                tp.offset = len(lines)
                lines.append(python[i].rstrip("\n"))
            else:
                line = f"_cnncourse_cell({f'<cell {i + 1}>'!r}, {python[i]!r})"
                lines.append(line)
                others.append(line)
        pick = f"_cnncourse_pick({task!r}, {function!r}, {tp.graded!r}, {task in wrapped!r})"
        tp.source = "\n".join([*lines, pick]) + "\n"
        tp.without_own = "\n".join([*others, pick]) + "\n"
        done = end
        plan.tasks.append(tp)
    return plan
