"""Exercises 4, 6 and 8 describe a built Keras model in one format, with one toolkit.

``cnncourse.describe`` describes the model (in the student's process, through the
notebook's given function; the notebooks import it in their setup cell and the grader
provides it in its sandbox) and ``cnncourse.tasks.keras_models`` compares it with the
expected description (in the grading parent). These tests pin that the three exercises
really share both halves: the same function describes their models, their Keras-free
expectations have the same keys, no notebook holds a copy of the describing code, the
describer is self-contained, and the same slip gets the same kind of message in each
exercise.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import ast
import re
import sys
from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest

import cnncourse.describe
from cnncourse.checking import run_task
from cnncourse.grading.static import check_answer
from cnncourse.notebook_format import SANDBOX_MODULES, to_python
from cnncourse.tasks import ex04, ex06, ex08, get_task, keras_models
from cnncourse.tasks.keras_models import (
    LAYER_KEYS,
    compare_layers,
    describe_block,
    describe_model,
    layer_row,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {
    "ex04.build_cnn": ("ex04_first_cnn", "describe_cnn"),
    "ex06.vgg_block": ("ex06_architectures", "describe_vgg_block"),
    "ex06.residual_block": ("ex06_architectures", "describe_residual_block"),
    "ex08.build_hypermodel": ("ex08_tuning", "describe_hypermodel"),
}


TOOLKIT = set(cnncourse.describe.__all__)
NOTEBOOK_FILES = sorted((ROOT / "solutions").glob("*.ipynb")) + sorted(
    (ROOT / "exercises").glob("*.ipynb")
)


def _notebook(folder: str, task_id: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / folder / f"{NOTEBOOKS[task_id][0]}.ipynb", as_version=4)


def _task_cell(folder: str, task_id: str) -> str:
    nb = _notebook(folder, task_id)
    (cell,) = [c for c in nb.cells if c.metadata.get("cnncourse", {}).get("task") == task_id]
    return cell.source


def _describer_imports(folder: str, task_id: str) -> list[ast.ImportFrom]:
    """The setup cell's imports of the describer (the code cell before the first task)."""
    setup = next(c for c in _notebook(folder, task_id).cells if c.cell_type == "code")
    return [
        node
        for node in ast.parse(setup.source).body
        if isinstance(node, ast.ImportFrom) and node.module == "cnncourse.describe"
    ]


def _given(task_id: str, *edits: tuple[str, str]):
    """The solution's setup imports of the describer and its task cell (with ``edits``) run
    as the kernel runs them; returns the notebook's describer."""
    source = _task_cell("solutions", task_id)
    for old, new in edits:
        assert old in source, f"the solution no longer contains {old!r}"
        source = source.replace(old, new)
    namespace: dict = {"np": np, "keras": keras}
    setup = ast.Module(body=_describer_imports("solutions", task_id), type_ignores=[])
    exec(compile(setup, "setup", "exec"), namespace)
    exec(compile(source, task_id, "exec"), namespace)
    return namespace[NOTEBOOKS[task_id][1]]


@pytest.fixture(autouse=True, scope="module")
def _release_keras_state_at_the_end():
    yield
    keras.backend.clear_session()


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_notebook_holds_a_copy_of_the_toolkit(path):
    """The describer is imported, never pasted: no code cell defines one of its functions."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        defined = {
            node.name
            for node in ast.walk(ast.parse(to_python(cell.source)))
            if isinstance(node, ast.FunctionDef | ast.ClassDef)
        }
        assert not defined & TOOLKIT, f"{path.name} defines {sorted(defined & TOOLKIT)}"


@pytest.mark.parametrize("folder", ["solutions", "exercises"])
@pytest.mark.parametrize("task_id", list(NOTEBOOKS))
def test_the_given_part_is_only_the_tasks_glue_and_the_setup_cell_imports_the_describer(
    folder, task_id
):
    source = _task_cell(folder, task_id)
    given = ast.parse(source[source.index("# ---- Given:") :])
    # One function, the one the check calls; it calls the describer the setup cell imports.
    assert [n.name for n in given.body if isinstance(n, ast.FunctionDef)] == [NOTEBOOKS[task_id][1]]
    called = {n.id for n in ast.walk(given) if isinstance(n, ast.Name)} & TOOLKIT
    imported = {a.asname or a.name for n in _describer_imports(folder, task_id) for a in n.names}
    assert called and called <= imported, (called, imported)
    assert check_answer(source) == []  # the task cell imports nothing of the course


@pytest.mark.parametrize("module", SANDBOX_MODULES)
def test_a_module_provided_in_the_sandbox_imports_nothing_from_the_course(module):
    """The grader runs its source where the course package is hidden: it must not need it."""
    source = Path(sys.modules[module].__file__).read_text(encoding="utf-8")
    allowed = set(sys.stdlib_module_names) | {"__future__", "numpy", "keras", "keras_tuner"}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            tops = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"line {node.lineno}: a relative import"
            tops = {(node.module or "").split(".")[0]}
        else:
            continue
        assert tops <= allowed, f"{module} line {node.lineno} imports {sorted(tops - allowed)}"
    assert check_answer(source) == []


def test_the_comparing_half_uses_the_describers_own_functions():
    assert keras_models.describe_model is cnncourse.describe.describe_model
    assert keras_models.layer_row is cnncourse.describe.layer_row
    assert keras_models.LAYER_KEYS is cnncourse.describe.LAYER_KEYS


def test_the_three_exercises_describe_layers_with_the_same_function_and_keys():
    rows = {
        "ex04": _given("ex04.build_cnn")((28, 28, 1), 10, (32, 64)),
        "ex06": _given("ex06.vgg_block")((8, 8, 3), 4, 2),
        "ex08": _given("ex08.build_hypermodel")(None)["model"]["layers"],
    }
    for name, described in rows.items():
        assert described and all(tuple(row) == LAYER_KEYS for row in described), name
    residual = _given("ex06.residual_block")((8, 8, 4), 8, 2)
    assert all(tuple(row) == LAYER_KEYS for row in residual["convs"])
    # The expectations, computed without Keras, are in the same format.
    expected = {
        "ex04": ex04.expected_layers(),
        "ex06": ex06._vgg_block_description((8, 8, 3), 4, 2),
        "ex08": ex08.expected_model(16, 32, 0.0, 1e-4)["layers"],
    }
    for name, layers in expected.items():
        assert all(tuple(row) == LAYER_KEYS for row in layers), name
    assert rows["ex04"] == expected["ex04"] and rows["ex06"] == expected["ex06"]
    assert rows["ex08"] == expected["ex08"]


def test_the_toolkit_describes_what_keras_builds():
    inputs = keras.Input(shape=(6, 6, 2))
    x = keras.layers.Conv2D(3, 3, activation="relu")(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dropout(0.25)(x)
    model = keras.Model(inputs, keras.layers.Dense(5, activation="softmax")(x))
    assert describe_model(model) == [
        layer_row("Conv2D", [4, 4, 3], 3 * 3 * 2 * 3 + 3, "relu"),
        layer_row("Flatten", [48], 0),
        layer_row("Dropout", [48], 0, rate=0.25),
        layer_row("Dense", [5], 48 * 5 + 5, "softmax"),
    ]
    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"keras\.Input"):
        describe_model(unbuilt)


NO_RELU = r"layer 1 \(Conv2D\): the activation should be 'relu', got 'linear'"
VALID = r"layer 1 \(Conv2D\): the output shape should be \(\d+, \d+, \d+\), got \(\d+, \d+, \d+\)"


@pytest.mark.parametrize(
    "task_id, edit, pattern",
    [
        (
            "ex04.build_cnn",
            (
                'Conv2D(filters[0], 3, padding="same", activation="relu")',
                'Conv2D(filters[0], 3, padding="same")',
            ),
            NO_RELU,
        ),
        (
            "ex06.vgg_block",
            ('padding="same", activation="relu"', 'padding="same"'),
            NO_RELU,
        ),
        (
            "ex08.build_hypermodel",
            ('Conv2D(filters, 3, activation="relu")', "Conv2D(filters, 3)"),
            NO_RELU,
        ),
        (
            "ex04.build_cnn",
            (
                'Conv2D(filters[0], 3, padding="same", activation="relu")',
                'Conv2D(filters[0], 3, padding="valid", activation="relu")',
            ),
            VALID,
        ),
        (
            "ex06.vgg_block",
            ('padding="same", activation="relu"', 'activation="relu"'),
            VALID,
        ),
        (
            "ex08.build_hypermodel",
            (
                'Conv2D(filters, 3, activation="relu")',
                'Conv2D(filters, 3, padding="same", activation="relu")',
            ),
            VALID,
        ),
    ],
)
def test_the_same_slip_gets_the_same_message_in_each_exercise(task_id, edit, pattern):
    report = run_task(task_id, _given(task_id, edit))
    messages = [r.message for r in report.results if not r.passed]
    assert messages, f"{task_id}: the slip passed"
    assert any(re.search(pattern, m) for m in messages), messages


def test_the_comparison_aligns_layers_around_a_missing_one():
    want = [
        layer_row("Conv2D", [8, 8, 4], 40, "relu"),
        layer_row("Flatten", [256], 0),
        layer_row("Dense", [3], 771, "softmax"),
    ]
    have = [want[0], layer_row("Dense", [8, 8, 3], 15, "softmax")]
    assert "missing: Flatten" in compare_layers(want, have, ["layers"])
    # The shapes are still compared between the layers that are there.
    message = compare_layers(want, have, ["shapes"])
    assert message.startswith("layer 3 (Dense): the output shape should be (3,), got (8, 8, 3)")
    assert "Flatten first" in message


def test_a_hidden_failure_names_the_mistake_and_properties_not_values():
    task = get_task("ex04.build_cnn")
    hidden = task.hidden_cases(np.random.default_rng(3))
    assert len(hidden) >= 10
    describe = _given("ex04.build_cnn", ('padding="same", ', ""))
    case = next(c for c in hidden if "the output shapes checked" in c.tags)
    got = describe(*case.args)
    message, mistake = task.hidden_message(case, got)
    assert mistake == "valid_padding" and "padding" in message
    assert message.startswith("fails for an input with")
    # The only numbers are the public specification's (the digits: 10 classes, filters
    # (32, 64); pooling twice divides by 4), never the hidden case's.
    assert set(re.findall(r"\d+", message)) <= {"4", "10", "32", "64"}, message


def test_describe_block_wraps_a_functional_block():
    def block(x, filters):
        return keras.layers.Conv2D(filters, 1)(x)

    assert describe_block(block, (5, 5, 2), 3) == [layer_row("Conv2D", [5, 5, 3], 9, "linear")]
