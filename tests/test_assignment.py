"""The assignment's preamble: the course modules the grader provides inside its sandbox.

The sandbox hides the course package (it ships the reference solutions), yet exercises 4,
6 and 8 describe the student's model with ``cnncourse.describe``, which their setup cell
imports. The preamble the worker runs first defines exactly the imported names from that
module's own source. These tests pin that it does so without the course package, that only
the declared modules are provided, that the version follows the provided source, and that
a notebook which defines the describer itself (an old copy, or a broken one) is graded on
what its own code does, as in Jupyter, without breaking the batch.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import cnncourse.describe
from cnncourse.checking import run_task
from cnncourse.grading import assignment as assignment_module
from cnncourse.grading.assignment import (
    AssignmentError,
    grading_limits,
    load_assignment,
    sandbox_source,
)
from cnncourse.grading.grader import grade_file
from cnncourse.grading.sandbox import Worker, python_paths

ROOT = Path(__file__).resolve().parent.parent
PROVIDED = {
    "ex04": ["describe_model"],
    "ex06": ["describe_model", "describe_residual"],
    "ex08": ["describe_tuner_model"],
}


def _setup(source: str) -> list[dict]:
    """A template's cells: a setup cell with ``source``, then one task cell."""
    return [
        {"cell_type": "code", "metadata": {}, "source": source},
        {"cell_type": "code", "metadata": {"cnncourse": {"task": "ex00.f"}}, "source": ""},
    ]


# A plain interpreter: the standard library and site-packages only (what the sandbox
# shows), no site processing, so no editable install of the course can be found.
CHILD = r"""
import importlib.util, json, os, sys
sys.path[:] = json.loads(os.environ["HA_PATHS"])
assert importlib.util.find_spec("cnncourse") is None, "the course package is importable"
import keras

report = {}
for name, preamble in json.loads(os.environ["HA_PREAMBLES"]).items():
    namespace = {"__name__": "__main__"}
    exec(compile(preamble, "<setup>", "exec"), namespace)
    defined = sorted(k for k in namespace if k.startswith(("describe", "layer", "_cnncourse")))
    entry = {"defined": defined}
    if "describe_model" in namespace:
        model = keras.Sequential([keras.Input(shape=(6, 6, 2)),
                                  keras.layers.Conv2D(3, 3, activation="relu"),
                                  keras.layers.Flatten(), keras.layers.Dropout(0.25)])
        entry["rows"] = namespace["describe_model"](model)
    if "describe_residual" in namespace:
        def block(x, filters, stride):
            y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same")(x)
            return keras.layers.Add()([y, keras.layers.Conv2D(filters, 1, strides=stride)(x)])
        entry["residual"] = namespace["describe_residual"](block, (4, 4, 2), 3, 2)
    if "describe_tuner_model" in namespace:
        def build_model(hp):
            units = hp.Choice("units", [4, 8])
            return keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(units)])
        entry["tuner"] = namespace["describe_tuner_model"](build_model)
    report[name] = entry
print(json.dumps(report))
"""


def test_the_preamble_defines_the_describer_in_an_interpreter_without_the_course():
    preambles = {name: load_assignment(name).preamble for name in PROVIDED}
    for preamble in preambles.values():
        assert "def describe_layers(" in preamble  # the module's source travels inside
    env = {
        "HA_PATHS": json.dumps(python_paths()),
        "HA_PREAMBLES": json.dumps(preambles),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
    }
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", CHILD],
        env=env,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    row = cnncourse.describe.layer_row
    for name, names in PROVIDED.items():
        # Exactly the imported names: no helper, no other function of the module.
        assert report[name]["defined"] == names, report[name]
    assert report["ex04"]["rows"] == [
        row("Conv2D", [4, 4, 3], 3 * 3 * 2 * 3 + 3, "relu"),
        row("Flatten", [48], 0),
        row("Dropout", [48], 0, rate=0.25),
    ]
    assert report["ex06"]["rows"] == report["ex04"]["rows"]
    residual = report["ex06"]["residual"]
    assert residual["output_shape"] == [2, 2, 3] and residual["shortcut"] == "projection"
    assert residual["params"] == (9 * 2 * 3 + 3) + (2 * 3 + 3) and residual["skip"] is True
    tuner = report["ex08"]["tuner"]
    assert tuner["space"] == {"units": {"type": "Choice", "values": [4, 8]}}
    assert tuner["model"]["layers"] == [row("Dense", [4], 3 * 4 + 4, "linear")]


def test_only_declared_modules_and_their_exported_names_are_provided():
    # Other course modules stay out of the preamble, whatever is imported from them.
    text = assignment_module._preamble(_setup("from cnncourse.ops import conv2d\nimport scipy"))
    assert text.splitlines() == ["import numpy as np", "import scipy"]
    with pytest.raises(AssignmentError, match="exports"):
        assignment_module._preamble(_setup("from cnncourse.describe import nope"))
    with pytest.raises(AssignmentError, match="exports"):
        assignment_module._preamble(_setup("from cnncourse.describe import *"))
    with pytest.raises(AssignmentError, match="from cnncourse.describe import"):
        assignment_module._preamble(_setup("import cnncourse.describe"))
    with pytest.raises(AssignmentError, match="not provided"):
        sandbox_source("cnncourse.ops")
    # An alias binds the alias, as the import does in the kernel.
    namespace: dict = {}
    exec(
        assignment_module._preamble(_setup("from cnncourse.describe import layer_row as r")),
        namespace,
    )
    assert namespace["r"]("Flatten", (4,), 0) == cnncourse.describe.layer_row("Flatten", (4,), 0)
    assert "layer_row" not in namespace


def test_a_provided_module_that_imports_the_course_is_refused(monkeypatch):
    real = assignment_module.inspect.getsource

    def getsource(obj):
        text = real(obj)
        return text + "\nfrom cnncourse.ops import conv2d\n" if obj is cnncourse.describe else text

    monkeypatch.setattr(assignment_module.inspect, "getsource", getsource)
    with pytest.raises(AssignmentError, match="cannot run in the grader's sandbox"):
        sandbox_source("cnncourse.describe")


def test_the_version_follows_the_provided_source(monkeypatch):
    first = load_assignment("ex04").version
    assert load_assignment("ex04").version == first  # same code, same version
    real = assignment_module.sandbox_source
    monkeypatch.setattr(
        assignment_module, "sandbox_source", lambda module: real(module) + "\n# changed\n"
    )
    assert load_assignment("ex04").version != first
    # An exercise without the describer does not depend on it.
    monkeypatch.undo()
    plain = load_assignment("ex01").version
    monkeypatch.setattr(
        assignment_module, "sandbox_source", lambda module: real(module) + "\n# changed\n"
    )
    assert load_assignment("ex01").version == plain


# ----------------------------------------------------------------- graded for real


def _ex08(edit) -> nbformat.NotebookNode:
    nb = nbformat.read(ROOT / "solutions" / "ex08_tuning.ipynb", as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    setup = cells[0]
    (task,) = [c for c in cells if c.metadata.get("cnncourse", {}).get("task")]
    edit(setup, task)
    # Keep only what the grader runs up to the check (the search at the end is slow).
    last = next(i for i, c in enumerate(nb.cells) if c.metadata.get("cnncourse", {}).get("check"))
    nb.cells = nb.cells[: last + 1]
    return nb


def _old_notebook(setup, task) -> None:
    """The notebook as it was before the describer moved: the functions pasted, no import."""
    import inspect

    setup.source = setup.source.replace("from cnncourse.describe import describe_tuner_model", "")
    pasted = "\n\n".join(
        inspect.getsource(f)
        for f in (
            cnncourse.describe.describe_layers,
            cnncourse.describe.describe_model,
            cnncourse.describe.describe_tuner_model,
        )
    )
    head, tail = task.source.split("# ---- Given:")
    task.source = head + pasted + "\n\n# ---- Given:" + tail


def _broken_describer(setup, task) -> None:
    """A student who redefines the describer in the task cell, wrongly."""
    task.source += "\n\n\ndef describe_tuner_model(build_model, values=None):\n    return {}\n"


def _kernel_points(nb) -> float:
    """What the notebook's check cell prints, run as the kernel runs it."""
    namespace: dict = {}
    for cell in nb.cells:
        if cell.cell_type != "code" or cell.metadata.get("cnncourse", {}).get("check"):
            continue
        exec(compile(cell.source, "<cell>", "exec"), namespace)
    return run_task("ex08.build_hypermodel", namespace["describe_hypermodel"]).points


def test_a_notebook_that_defines_the_describer_itself_is_graded_on_its_own_code(tmp_path):
    assignment = load_assignment("ex08")
    notebooks = {"old": _ex08(_old_notebook), "broken": _ex08(_broken_describer)}
    for name, nb in notebooks.items():
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    limits = grading_limits("ex08", timeout_s=max(60.0, grading_limits("ex08").timeout_s))
    with Worker(limits, hide=[str(tmp_path)]) as worker:
        results = {
            name: grade_file(tmp_path / f"{name}.ipynb", assignment, worker, name, seed=1)
            for name in notebooks
        }
    old, broken = results["old"], results["broken"]
    assert old.status == "ok" and old.total == assignment.max_points, old.reason
    assert broken.status == "ok", broken.reason
    (task,) = broken.tasks
    assert task.points == 0 and task.cases and not any(c.passed for c in task.cases)
    assert all(c.message for c in task.cases), task.cases  # a reason, not a crash
    # The self-check in the kernel says the same on the public cases.
    for name, nb in notebooks.items():
        assert _kernel_points(nb) == results[name].tasks[0].public_points, name


def test_the_describer_import_is_in_each_setup_cell_that_needs_it():
    for name, names in PROVIDED.items():
        path = next((ROOT / "exercises").glob(f"{name}_*.ipynb"))
        setup = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        imported = [
            a.name
            for node in ast.parse(setup.source).body
            if isinstance(node, ast.ImportFrom) and node.module == "cnncourse.describe"
            for a in node.names
        ]
        assert imported == names, (name, imported)
