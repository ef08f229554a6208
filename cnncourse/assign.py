"""Generate the student version of every exercise from its instructor source.

The source of exercise NN is ``solutions/exNN_<topic>.ipynb``. In it, each graded task is a
code cell with metadata ``{"cnncourse": {"task": "exNN.name", "points": P, "hint": "..."}}``
whose solution sits between the lines ``### BEGIN SOLUTION`` and ``### END SOLUTION``.
:func:`make_student_notebook` turns such a notebook into the student version:

- each solution block becomes one ``raise NotImplementedError("<hint>")`` line at the
  block's indentation, so the function keeps its signature and docstring;
- cells tagged ``instructor-only`` (or with ``"instructor": true`` in their ``cnncourse``
  metadata) are removed;
- outputs and execution counts are cleared; the task id and points stay in the metadata,
  everything else instructor-specific (the hint) is dropped.

Why generate instead of keeping two copies by hand: two copies drift. A test compares the
committed ``exercises/`` with what :func:`assign_all` produces and fails on any difference.

Examples
--------
>>> import nbformat
>>> nb = nbformat.v4.new_notebook()
>>> cell = nbformat.v4.new_code_cell(
...     "def f(x):\\n    ### BEGIN SOLUTION\\n    return 2 * x\\n    ### END SOLUTION")
>>> cell.metadata["cnncourse"] = {"task": "ex00.f", "points": 1, "hint": "Double it."}
>>> nb.cells.append(cell)
>>> print(make_student_notebook(nb).cells[0].source)
def f(x):
    raise NotImplementedError('Double it.')
"""

from __future__ import annotations

import copy
import re
import textwrap
from pathlib import Path

import nbformat

from cnncourse import notebook_format as fmt

__all__ = [
    "BEGIN",
    "END",
    "AssignError",
    "assign_all",
    "make_student_notebook",
    "student_path",
]

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
INSTRUCTOR_TAG = "instructor-only"
DEFAULT_HINT = "replace this line with your code"
_KEEP_TASK_KEYS = ("task", "points", "check")
_KEEP_NOTEBOOK_KEYS = ("kernelspec", "language_info")
_EXERCISE_NAME = re.compile(r"^ex\d{2}_[a-z0-9_]+\.ipynb$")


class AssignError(ValueError):
    """A source notebook that cannot be turned into a student version (says where)."""


def _is_instructor_only(cell: nbformat.NotebookNode) -> bool:
    return fmt.is_instructor_only(cell)


def _stub_lines(indent: str, hint: str, width: int = 88) -> list[str]:
    """``raise NotImplementedError(hint)``, wrapped so the student notebook stays lint-clean."""
    one_line = f"{indent}raise NotImplementedError({hint!r})"
    if len(one_line) <= width:
        return [one_line]
    pieces = textwrap.wrap(hint, width=max(20, width - len(indent) - 8), drop_whitespace=False)
    body = [f"{indent}    {piece!r}" for piece in pieces]
    return [f"{indent}raise NotImplementedError(", *body, f"{indent})"]


def _stub_source(source: str, hint: str, where: str) -> str:
    """Replace every BEGIN/END SOLUTION block of ``source`` with a NotImplementedError."""
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.splitlines(), start=1):
        marker = line.strip()
        if marker == BEGIN:
            if inside:
                raise AssignError(
                    f"{where}, line {number}: {BEGIN!r} inside another solution block"
                )
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(_stub_lines(indent, hint))
        elif marker == END:
            if not inside:
                raise AssignError(f"{where}, line {number}: {END!r} without a {BEGIN!r} before it")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise AssignError(f"{where}: {BEGIN!r} is never closed by {END!r}")
    return "\n".join(out)


def make_student_notebook(
    nb: nbformat.NotebookNode, name: str = "notebook"
) -> nbformat.NotebookNode:
    """Return the student version of the instructor notebook ``nb`` (which is not changed).

    Parameters
    ----------
    nb : NotebookNode
        The instructor source.
    name : str
        Used in error messages only.

    Raises
    ------
    AssignError
        When solution markers are unbalanced, or a task cell has no solution block.
    """
    student = copy.deepcopy(nb)
    student.metadata = {k: v for k, v in nb.metadata.items() if k in _KEEP_NOTEBOOK_KEYS}
    cells = []
    for index, cell in enumerate(student.cells):
        if _is_instructor_only(cell):
            continue
        where = f"{name}, cell {index}"
        task_meta = fmt.meta(cell)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            markers = {line.strip() for line in cell.source.splitlines()} & {BEGIN, END}
            if "task" in task_meta and not markers:
                raise AssignError(f"{where}: task {task_meta['task']!r} has no {BEGIN!r} block")
            if markers:
                cell.source = _stub_source(cell.source, task_meta.get("hint", DEFAULT_HINT), where)
        if task_meta:
            cell.metadata[fmt.KEY] = {
                k: task_meta[k] for k in _KEEP_TASK_KEYS if k in task_meta
            }
        cells.append(cell)
    student.cells = cells
    return student


def student_path(source: Path, exercises_dir: Path) -> Path:
    """Where the student version of ``source`` lives: the same file name in ``exercises_dir``."""
    return exercises_dir / source.name


def assign_all(
    solutions_dir: str | Path = "solutions",
    exercises_dir: str | Path = "exercises",
    *,
    check: bool = False,
) -> list[Path]:
    """Regenerate every ``exercises/exNN_*.ipynb`` from ``solutions/exNN_*.ipynb``.

    Parameters
    ----------
    solutions_dir, exercises_dir : path
        The instructor sources and where the student versions go.
    check : bool
        When true, write nothing: only report which student versions are out of date.

    Returns
    -------
    list of Path
        The student notebooks that were (or, with ``check=True``, would be) rewritten, and
        any stale ``exNN_*.ipynb`` in ``exercises_dir`` that has no source any more.
    """
    solutions_dir, exercises_dir = Path(solutions_dir), Path(exercises_dir)
    if not solutions_dir.is_dir():
        raise AssignError(f"solutions_dir {str(solutions_dir)!r} is not a directory")
    sources = sorted(p for p in solutions_dir.glob("ex*.ipynb") if _EXERCISE_NAME.match(p.name))
    changed: list[Path] = []
    for source in sources:
        nb = nbformat.read(source, as_version=4)
        text = nbformat.writes(make_student_notebook(nb, name=str(source))) + "\n"
        target = student_path(source, exercises_dir)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            changed.append(target)
            if not check:
                exercises_dir.mkdir(parents=True, exist_ok=True)
                tmp = target.with_suffix(".ipynb.tmp")
                tmp.write_text(text, encoding="utf-8")
                tmp.replace(target)
    wanted = {student_path(s, exercises_dir).name for s in sources}
    if exercises_dir.is_dir():
        changed += sorted(
            p
            for p in exercises_dir.glob("ex*.ipynb")
            if _EXERCISE_NAME.match(p.name) and p.name not in wanted
        )
    return changed
