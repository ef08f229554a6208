"""The exercise notebook format, read in one place: cell metadata, check calls, IPython syntax.

An exercise notebook marks its graded cells with metadata under the key ``"cnncourse"``:

- a *task cell* carries ``{"task": "exNN.name", "points": P}`` (the solution version also
  a ``"hint"``);
- a *check cell* carries ``{"check": "exNN.name"}`` and calls
  ``check("exNN.name", function)``;
- a cell may carry ``{"instructor": true}`` (removed from the student version).

The *setup cell* (the code before the first task) holds the imports. The one course
module a task cell may use is ``cnncourse.checking``'s ``check``, which the grader
replaces by its own; a setup cell may also import names from the course modules of
:data:`SANDBOX_MODULES`, which the grader provides inside its sandbox.

Everything else that reads notebooks (the generator :mod:`cnncourse.assign`, the grader's
template and submission readers) goes through these functions, so the format is defined
once. :func:`to_python` turns a cell written for IPython (magics such as ``%time`` and
``%%time``, ``!`` shell lines, ``display(...)``) into plain Python with IPython's own
transformer, the way Jupyter runs it.

Examples
--------
>>> cell = {"cell_type": "code", "source": 'check("ex01.f", f)', "metadata": {}}
>>> check_calls(cell["source"])
[('ex01.f', 'f')]
>>> print(to_python("%%time\\nx = 1"))
<BLANKLINE>
x = 1
>>> print(strip_check_import("import numpy as np\\nfrom cnncourse.checking import check"))
import numpy as np
pass
"""

from __future__ import annotations

import ast
import re
from typing import Any

__all__ = [
    "CHECK_CALL",
    "KEY",
    "SANDBOX_MODULES",
    "binds",
    "check_calls",
    "check_id",
    "defines",
    "is_instructor_only",
    "meta",
    "strip_check_import",
    "task_id",
    "task_points",
    "to_python",
]

KEY = "cnncourse"
CHECK_CALL = re.compile(r"""check\(\s*["']([\w.]+)["']\s*,\s*([A-Za-z_]\w*)\s*\)""")
INSTRUCTOR_TAG = "instructor-only"
#: The course modules the grader provides inside its sandbox, where the course package
#: (which ships the reference solutions) is hidden. A notebook's setup cell may import
#: names from them, ``from cnncourse.describe import describe_model``, and the grader runs
#: the module's own source in the sandbox to define those names
#: (:mod:`cnncourse.grading.assignment`). Each is self-contained: it imports nothing from
#: the course and holds no solution.
SANDBOX_MODULES = ("cnncourse.describe",)
#: Cell magics whose body Jupyter runs as ordinary code (timing or capturing it).
_RUNNING_CELL_MAGICS = ("time", "timeit", "capture", "prun")


def meta(cell: Any) -> dict:
    """The cell's ``"cnncourse"`` metadata (an empty dict when absent or malformed)."""
    metadata = cell.get("metadata") if isinstance(cell, dict) else getattr(cell, "metadata", None)
    value = metadata.get(KEY) if isinstance(metadata, dict) else None
    return value if isinstance(value, dict) else {}


def task_id(cell: Any) -> str | None:
    """The task id of a task cell, else ``None``."""
    value = meta(cell).get("task")
    return value if isinstance(value, str) else None


def task_points(cell: Any) -> float | None:
    """The points a task cell declares, else ``None``."""
    value = meta(cell).get("points")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def check_id(cell: Any) -> str | None:
    """The task id a check cell's metadata names, else ``None``."""
    value = meta(cell).get("check")
    return value if isinstance(value, str) else None


def is_instructor_only(cell: Any) -> bool:
    """True for cells removed from the student version."""
    metadata = cell.get("metadata") if isinstance(cell, dict) else getattr(cell, "metadata", {})
    tags = metadata.get("tags", []) if isinstance(metadata, dict) else []
    return INSTRUCTOR_TAG in (tags or []) or bool(meta(cell).get("instructor"))


def check_calls(source: str) -> list[tuple[str, str]]:
    """``(task id, function name)`` of every literal ``check(...)`` call in ``source``."""
    return CHECK_CALL.findall(source)


def defines(source: str) -> list[str]:
    """Names of the top-level functions a cell defines, in order (empty if it does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def binds(source: str) -> list[str]:
    """Names a cell binds at the top level: functions, classes, assignments and imports.

    Examples
    --------
    >>> binds("import numpy as np\\nf = g = lambda x: x\\ndef h():\\n    pass")
    ['np', 'f', 'g', 'h']
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names += [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names += [(a.asname or a.name).split(".")[0] for a in node.names]
    return names


def to_python(source: str) -> str:
    """Plain Python for a cell written for IPython, line for line where possible.

    ``%%time``, ``%%timeit``, ``%%capture`` cells run their body (the magic line becomes a
    blank line, so line numbers stay); every other IPython construct goes through
    :class:`IPython.core.inputtransformer2.TransformerManager` and becomes a call to
    ``get_ipython()`` or ``display``, which the grader provides as harmless stand-ins.
    """
    first, _, rest = source.partition("\n")
    stripped = first.strip()
    if stripped.startswith("%%"):
        name = stripped[2:].split(maxsplit=1)[0] if stripped[2:].strip() else ""
        if name in _RUNNING_CELL_MAGICS:
            return "\n" + to_python(rest) if rest.strip() else "\n"
    if not any(mark in source for mark in ("%", "!", "?")):
        return source
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:  # IPython could not make sense of it: leave it, Python will say why
        return source


def strip_check_import(source: str) -> str:
    """Replace ``from cnncourse.checking import check`` statements by ``pass``.

    The grader provides its own ``check``; the student's import of the self-check is the
    one use of the course package an answer may contain.
    """
    if "cnncourse" not in source:
        return source
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return source
    lines = source.splitlines(keepends=True)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "cnncourse.checking"
            and node.level == 0
            and all(a.name == "check" and a.asname in (None, "check") for a in node.names)
        ):
            start, end = node.lineno - 1, (node.end_lineno or node.lineno) - 1
            tail = lines[end][node.end_col_offset or len(lines[end]) :]
            lines[start] = lines[start][: node.col_offset] + "pass" + (tail if end == start else "")
            if end > start:
                lines[start] += "\n"
                for k in range(start + 1, end):
                    lines[k] = "\n"
                lines[end] = (" " * 0) + tail.lstrip(" ") if tail.strip() else "\n"
    return "".join(lines)
