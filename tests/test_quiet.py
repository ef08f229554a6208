"""TensorFlow loads without red log lines in every notebook (cnncourse.quiet, issue 15).

The JupyterLab end-to-end test (tests/e2e/test_jupyterlab.py) checks what the first cell of
a chapter and of an exercise prints in a real kernel; here, cheaply, that the helper
silences the start-up lines and nothing after them, and that every notebook calls it
before anything imports TensorFlow.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("chapters", "exercises", "solutions")
NOTEBOOKS = sorted(p for folder in FOLDERS for p in (ROOT / folder).glob("*.ipynb"))
CALL = "import_tensorflow()"


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT
    )


@pytest.mark.slow
def test_tensorflow_prints_start_up_lines_without_the_helper():
    # The reason the helper exists; if TensorFlow ever stops printing them, drop the helper.
    plain = run("import tensorflow")
    assert plain.returncode == 0, plain.stderr
    assert "absl::InitializeLog" in plain.stderr or "oneDNN" in plain.stderr, plain.stderr


@pytest.mark.slow
def test_import_tensorflow_silences_the_start_up_and_nothing_after_it():
    quiet = run(
        "import sys\n"
        "from cnncourse.quiet import import_tensorflow\n"
        "tf = import_tensorflow()\n"
        "import keras\n"
        "print(tf.__name__, import_tensorflow() is tf)\n"
        "print('stderr still works', file=sys.stderr)\n"
    )
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == "tensorflow True\n"
    assert quiet.stderr == "stderr still works\n"


def _first_statements(source: str) -> list[str]:
    tree = ast.parse(source)
    return [ast.get_source_segment(source, node) or "" for node in tree.body[:2]]


def _uses_tensorflow(path: Path) -> bool:
    """Chapters always load TensorFlow; an exercise when its code names Keras or TensorFlow."""
    if path.parent.name == "chapters":
        return True
    nb = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    return "keras" in code or "tensorflow" in code


@pytest.mark.parametrize(
    "path", [p for p in NOTEBOOKS if _uses_tensorflow(p)], ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_every_notebook_imports_tensorflow_quietly_first(path: Path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    first = _first_statements(code[0].source)
    assert first == ["from cnncourse.quiet import import_tensorflow", CALL], (
        f"the first code cell of {path.relative_to(ROOT)} must start with\n"
        f"    from cnncourse.quiet import import_tensorflow\n    {CALL}\n"
        "(before anything imports TensorFlow or Keras); scripts/quiet_first_cells.py does it"
    )
