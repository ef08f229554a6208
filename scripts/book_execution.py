"""Sphinx extension: a notebook whose execution failed is never reported as built.

Enabled in ``_config.yml``::

    sphinx:
      local_extensions:
        book_execution: scripts/

Why it is needed (Jupyter Book 1, myst-nb 1.x, Sphinx 7): when a notebook's execution fails
or a cell times out, myst-nb logs a warning, leaves the notebook out of the execution cache
and renders the page with the outputs it has. Sphinx, however, records the document as
read. The next build finds the source unchanged, does not read it again, logs no warning,
and prints "build succeeded" over the broken page. Here:

1. **Failed notebooks are read again.** Before Sphinx decides what to read, every document
   whose last execution failed (myst-nb's execution record says so) is marked out of date,
   so the next build executes it again: it fails again or, if the cause was fixed or
   transient, it is built.
2. **The failure is named.** When a notebook's execution fails, an error names the notebook,
   the cell (its index, counting every cell from 1, and its first line) and the exception.
3. **The build fails.** At the end of the build, every notebook whose execution failed is
   listed again, and the exit status is non-zero even without ``-W``.

Tested by ``tests/test_book_execution.py`` (a tiny book with failing notebooks, built
twice).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _exec_data(env: Any, docname: str) -> dict | None:
    return getattr(env, "nb_metadata", {}).get(docname, {}).get("exec_data")


def failed_documents(env: Any) -> list[str]:
    """The documents whose last recorded notebook execution failed, sorted."""
    metadata = getattr(env, "nb_metadata", {})
    return sorted(
        name
        for name, data in metadata.items()
        if (data.get("exec_data") or {}).get("succeeded") is False
    )


def failing_cell(notebook: nbformat.NotebookNode) -> tuple[int, str] | None:
    """(1-based index among all cells, first source line) of the cell that stopped a run.

    nbclient runs the code cells in order and sets a cell's ``execution_count`` when the
    kernel starts it, so the last code cell with an ``execution_count`` is the one that
    raised or timed out. ``None`` when no cell started (the kernel did not start).
    """
    found = None
    for index, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type == "code" and cell.get("execution_count") is not None:
            found = index
    if found is None:
        return None
    lines = [line for line in notebook.cells[found - 1].source.splitlines() if line.strip()]
    return found, (lines[0].strip() if lines else "")


def describe_failure(app: Sphinx, docname: str) -> str:
    """One line: which notebook failed, in which cell, with which exception."""
    data = _exec_data(app.env, docname) or {}
    source = app.env.doc2path(docname, False)
    where = "before any cell ran"
    executed = Path(app.env.mystnb_config.output_folder) / f"{docname}.ipynb"
    if executed.is_file():
        cell = failing_cell(nbformat.read(executed, as_version=4))
        if cell is not None:
            where = f"in cell {cell[0]} ({cell[1][:70]!r})"
    return f"{source}: execution failed {where}: {data.get('error') or 'error'}"


def _read_failed_again(
    app: Sphinx, env: Any, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    again = [name for name in failed_documents(env) if name in env.found_docs]
    for name in again:
        logger.info(f"book_execution: {name} failed last time; executing it again")
    return again


def _name_failure(app: Sphinx, doctree: Any) -> None:
    docname = app.env.docname
    data = _exec_data(app.env, docname)
    if data and data.get("succeeded") is False:
        logger.error(describe_failure(app, docname), location=docname)


def _fail_build(app: Sphinx, exc: Exception | None) -> None:
    if exc is not None:
        return
    failed = failed_documents(app.env)
    if failed:
        lines = "\n".join(f"  - {describe_failure(app, name)}" for name in failed)
        logger.error(
            f"book_execution: {len(failed)} notebook(s) failed to execute; their pages are "
            f"not built and the next build executes them again:\n{lines}"
        )
        app.statuscode = 1


def setup(app: Sphinx) -> dict:
    app.setup_extension("myst_nb")
    app.connect("env-get-outdated", _read_failed_again)
    app.connect("doctree-read", _name_failure)
    app.connect("build-finished", _fail_build)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
