"""The student-version generator, and that exercises/ never drifts from solutions/."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from cnncourse.assign import AssignError, assign_all, make_student_notebook
from cnncourse.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["instructor_notes"] = "secret"
    nb.cells.extend(cells)
    return nb


def _task_cell(source: str, **meta) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["cnncourse"] = {"task": "ex00.f", "points": 3, **meta}
    cell.outputs = [nbformat.v4.new_output("stream", text="42\n")]
    cell.execution_count = 7
    return cell


SOURCE = '''def f(x: int) -> int:
    """Return twice x."""
    ### BEGIN SOLUTION
    y = 2 * x
    return y
    ### END SOLUTION
'''


def test_solution_block_becomes_stub_that_keeps_signature_and_docstring():
    nb = _notebook(_task_cell(SOURCE, hint="Multiply by two."))
    student = make_student_notebook(nb)
    src = student.cells[0].source
    assert src.startswith('def f(x: int) -> int:\n    """Return twice x."""\n')
    assert "    raise NotImplementedError('Multiply by two.')" in src
    assert "2 * x" not in src and "SOLUTION" not in src
    namespace: dict = {}
    exec(src, namespace)
    with pytest.raises(NotImplementedError, match="Multiply by two"):
        namespace["f"](1)


def test_task_metadata_kept_hint_and_outputs_dropped():
    student = make_student_notebook(_notebook(_task_cell(SOURCE, hint="h")))
    cell = student.cells[0]
    assert cell.metadata["cnncourse"] == {"task": "ex00.f", "points": 3}
    assert cell.outputs == [] and cell.execution_count is None
    assert "instructor_notes" not in student.metadata
    assert student.metadata["kernelspec"]["name"] == "python3"


def test_instructor_only_cells_are_removed():
    secret = nbformat.v4.new_markdown_cell("grading notes")
    secret.metadata["tags"] = ["instructor-only"]
    also_secret = nbformat.v4.new_code_cell("print('answer')")
    also_secret.metadata["cnncourse"] = {"instructor": True}
    kept = nbformat.v4.new_markdown_cell("Do the task.")
    student = make_student_notebook(_notebook(secret, kept, also_secret))
    assert [c.source for c in student.cells] == ["Do the task."]


def test_source_notebook_is_not_modified():
    nb = _notebook(_task_cell(SOURCE))
    make_student_notebook(nb)
    assert "2 * x" in nb.cells[0].source and nb.cells[0].outputs


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "never closed"),
        ("def f():\n    return 1\n    ### END SOLUTION\n", "without a"),
        ("def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n", "inside another"),
        ("def f():\n    return 1\n", "has no"),
    ],
)
def test_malformed_markers_raise_with_the_cell(source, message):
    with pytest.raises(AssignError, match=message) as info:
        make_student_notebook(_notebook(_task_cell(source)), name="ex00_demo.ipynb")
    assert "ex00_demo.ipynb, cell 0" in str(info.value)


def test_assign_all_writes_then_reports_up_to_date(tmp_path):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    solutions.mkdir()
    nbformat.write(_notebook(_task_cell(SOURCE)), solutions / "ex00_demo.ipynb")
    assert assign_all(solutions, exercises) == [exercises / "ex00_demo.ipynb"]
    assert assign_all(solutions, exercises, check=True) == []
    (exercises / "ex00_demo.ipynb").write_text("{}", encoding="utf-8")
    assert assign_all(solutions, exercises, check=True) == [exercises / "ex00_demo.ipynb"]
    (exercises / "ex07_orphan.ipynb").write_text("{}", encoding="utf-8")
    assert exercises / "ex07_orphan.ipynb" in assign_all(solutions, exercises, check=True)


def test_cli_check_exit_codes(tmp_path, capsys):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    solutions.mkdir()
    nbformat.write(_notebook(_task_cell(SOURCE)), solutions / "ex00_demo.ipynb")
    args = ["--solutions", str(solutions), "--exercises", str(exercises)]
    assert main(["assign", "--check", *args]) == 1
    assert main(["assign", *args]) == 0
    assert main(["assign", "--check", *args]) == 0
    assert "up to date" in capsys.readouterr().out


def test_committed_exercises_match_the_generator():
    solutions = sorted((ROOT / "solutions").glob("ex*.ipynb"))
    assert solutions, "no exercise sources in solutions/"
    stale = assign_all(ROOT / "solutions", ROOT / "exercises", check=True)
    assert stale == [], f"regenerate with `cnncourse assign`: {stale}"


def test_long_hints_are_wrapped_into_valid_short_lines():
    hint = "Slide the window over every output position, " * 4
    student = make_student_notebook(_notebook(_task_cell(SOURCE, hint=hint)))
    src = student.cells[0].source
    assert max(len(line) for line in src.splitlines()) <= 88
    namespace: dict = {}
    exec(src, namespace)
    with pytest.raises(NotImplementedError) as info:
        namespace["f"](1)
    assert str(info.value) == hint
