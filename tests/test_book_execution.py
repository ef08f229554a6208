"""A notebook whose execution failed is never reported as built (scripts/book_execution.py).

A tiny Jupyter Book with the course's ``book_execution`` extension, one good page and two
bad notebooks (one raises, one times out), is built twice with the execution cache, as
``./dev.sh book`` builds the course: both builds fail, naming each notebook and its cell.
Once the notebook is fixed, the next build executes it and succeeds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"

pytestmark = pytest.mark.slow

CONFIG = f"""\
title: failing book
only_build_toc_files: true
execute:
  execute_notebooks: cache
  timeout: 3
  allow_errors: false
sphinx:
  local_extensions:
    book_execution: {ROOT / "scripts"}
"""

TOC = """\
format: jb-book
root: intro
chapters:
  - file: good
  - file: raises
  - file: sleeps
"""


def notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A page")]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in sources]
    return nb


def build(book: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.run(
        [str(JUPYTER_BOOK), "build", str(book), "--keep-going", "--builder", "html"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.fixture
def book(tmp_path: Path) -> Path:
    (tmp_path / "_config.yml").write_text(CONFIG)
    (tmp_path / "_toc.yml").write_text(TOC)
    (tmp_path / "intro.md").write_text("# Intro\n\nA book.\n")
    nbformat.write(notebook("x = 1", "print(x + 1)"), tmp_path / "good.ipynb")
    nbformat.write(
        notebook("x = 1", "y = 2", "raise ValueError('the story changed')", "print('never')"),
        tmp_path / "raises.ipynb",
    )
    nbformat.write(
        notebook("import time", "time.sleep(60)  # longer than the timeout"),
        tmp_path / "sleeps.ipynb",
    )
    return tmp_path


def assert_fails_naming_both(result: subprocess.CompletedProcess) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert 'raises.ipynb: execution failed in cell 4 ("raise ValueError' in output, output
    assert "CellExecutionError" in output, output
    assert "sleeps.ipynb: execution failed in cell 3 ('time.sleep(60)" in output, output
    assert "CellTimeoutError" in output, output
    assert "2 notebook(s) failed to execute" in output, output
    assert "build succeeded" not in output, output


def test_a_failed_notebook_fails_every_build_until_fixed(book: Path):
    assert_fails_naming_both(build(book))
    # The second build must not trust Sphinx's record of the failed documents.
    second = build(book)
    assert_fails_naming_both(second)
    assert "raises failed last time; executing it again" in second.stdout + second.stderr

    # Fixed notebooks are executed again and the build succeeds.
    nbformat.write(notebook("x = 1", "print(x + 2)"), book / "raises.ipynb")
    nbformat.write(notebook("import time", "time.sleep(0.1)"), book / "sleeps.ipynb")
    third = build(book)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "failed to execute" not in third.stdout + third.stderr
