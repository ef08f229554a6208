"""Exercise 8's cases: the Keras-free expectations match real Keras models, the reference
solution passes, and the typical wrong hypermodels fail a public case with a message a
student can act on.

The answer cell (the student's ``build_model`` plus the given ``describe_hypermodel``) is
taken from ``solutions/ex08_tuning.ipynb``; mistakes are made by editing its source.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest

from cnncourse.checking import run_task
from cnncourse.describe import describe_tuner_model
from cnncourse.tasks import ex08, get_task, tasks_for

ROOT = Path(__file__).resolve().parent.parent
TASK = "ex08.build_hypermodel"


@pytest.fixture(scope="module")
def answer_source() -> str:
    nb = nbformat.read(ROOT / "solutions" / "ex08_tuning.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if c.metadata.get("cnncourse", {}).get("task") == TASK]
    return cell.source


@pytest.fixture(autouse=True, scope="module")
def _release_keras_state_at_the_end():
    yield
    keras.backend.clear_session()


def _describe(source: str, *replacements: tuple[str, str]):
    for old, new in replacements:
        assert old in source, f"the solution no longer contains {old!r}"
        source = source.replace(old, new)
    namespace: dict = {"np": np, "describe_tuner_model": describe_tuner_model}  # the setup cell's
    exec(compile(source, "ex08-answer", "exec"), namespace)
    return namespace["describe_hypermodel"]


def _failures(fn) -> dict[str, str]:
    report = run_task(TASK, fn)
    return {r.name: r.message for r in report.results if not r.passed}


def test_the_registry_has_one_task_worth_four_points():
    tasks = tasks_for("ex08")
    assert [t.id for t in tasks] == [TASK]
    assert tasks[0].points == 4


def test_keras_free_expectations_match_the_solutions_real_models(answer_source):
    describe = _describe(answer_source)
    got = describe(None)
    assert got["space"] == ex08.SPACE
    rng = np.random.default_rng(0)
    for values in [None] + [ex08._random_values(rng) for _ in range(4)]:
        model = describe(values)["model"]
        expected = ex08.expected_model(**(values or ex08.DEFAULTS))
        # Adam keeps its learning rate in float32: equal to about 7 significant digits.
        assert model.pop("learning_rate") == pytest.approx(expected.pop("learning_rate"), rel=1e-6)
        assert model == expected


def test_solution_passes_public_and_hidden_cases(answer_source):
    describe = _describe(answer_source)
    task = get_task(TASK)
    assert run_task(TASK, describe).passed
    for seed in range(3):
        report = run_task(TASK, describe, cases=task.hidden_cases(np.random.default_rng(seed)))
        assert report.passed, report.to_text()


def test_hidden_cases_are_reproducible_per_seed_and_differ_between_seeds():
    task = get_task(TASK)
    a = task.hidden_cases(np.random.default_rng(7))
    b = task.hidden_cases(np.random.default_rng(7))
    c = task.hidden_cases(np.random.default_rng(8))
    assert [x.args for x in a] == [x.args for x in b]
    assert [x.args for x in a] != [x.args for x in c]
    # Three rounds of one space case and three model cases: the public proportions.
    assert len(a) >= 10
    assert [set(x.expected) for x in a] == [{"space"}, {"model"}, {"model"}, {"model"}] * 3


def test_the_same_model_through_the_functional_api_passes(answer_source):
    functional = _describe(
        answer_source,
        (
            "    model = keras.Sequential(\n        [\n            keras.Input(shape=(28, 28, 1)),",
            "    inputs = keras.Input(shape=(28, 28, 1))\n    x = inputs\n    for layer in (\n"
            "        [",
        ),
        (
            "            keras.layers.Dense(10, activation=\"softmax\"),\n        ]\n    )",
            "            keras.layers.Dense(10, activation=\"softmax\"),\n        ]\n    ):\n"
            "        x = layer(x)\n    model = keras.Model(inputs, x)",
        ),
    )
    assert run_task(TASK, functional).passed


@pytest.mark.parametrize(
    "replacement, case, words",
    [
        (('hp.Choice("filters", [16, 32, 64])', 'hp.Int("filters", 16, 64, step=16)'),
         "the declared search space", ["'filters'", "hp.Int", "hp.Choice"]),
        (('hp.Int("dense_units", 32, 128, step=32)', 'hp.Int("units", 32, 128, step=32)'),
         "the declared search space", ["'dense_units'", "'units'"]),
        (('sampling="log"', 'sampling="linear"'),
         "the declared search space", ["'learning_rate'", "sampling", "'log'"]),
        (('hp.Float("dropout", 0.0, 0.5, step=0.1)', 'hp.Float("dropout", 0.0, 0.5)'),
         "the declared search space", ["'dropout'", "step", "0.1"]),
    ],
)
def test_a_wrong_declaration_fails_the_space_case_and_says_which(
    answer_source, replacement, case, words
):
    failures = _failures(_describe(answer_source, replacement))
    assert case in failures, failures
    assert all(w in failures[case] for w in words), failures[case]


def test_a_wrong_space_with_the_right_model_keeps_the_model_cases(answer_source):
    # sampling is the only mistake: every model case still passes (partial credit).
    report = run_task(TASK, _describe(answer_source, ('sampling="log"', 'sampling="linear"')))
    assert [r.passed for r in report.results] == [False, True, True, True]
    assert report.points == 3


TRIAL = "a trial's values: filters 64, dense_units 128, dropout 0.3, learning_rate 0.003"


@pytest.mark.parametrize(
    "replacement, words",
    [
        # The learning rate is declared but a fixed one is given to Adam.
        (("Adam(learning_rate=learning_rate)", "Adam(learning_rate=1e-3)"),
         ["learning rate", "0.003", "0.001"]),
        # "same" padding keeps 28x28: the first layer's output shape is wrong.
        (('Conv2D(filters, 3, activation="relu")',
          'Conv2D(filters, 3, padding="same", activation="relu")'),
         ["layer 1 (Conv2D)", "output shape", "26"]),
        # Filters hard-coded: the trial's 64 never reaches the layer.
        (('Conv2D(filters, 3, activation="relu")', 'Conv2D(16, 3, activation="relu")'),
         ["layer 1 (Conv2D)", "64", "16"]),
        # Dropout rate hard-coded.
        (("keras.layers.Dropout(dropout)", "keras.layers.Dropout(0.5)"),
         ["layer 5 (Dropout)", "dropout rate", "0.3", "0.5"]),
        # Softmax forgotten on the output layer.
        (('keras.layers.Dense(10, activation="softmax")', "keras.layers.Dense(10)"),
         ["layer 6 (Dense)", "activation", "softmax", "linear"]),
        # Average instead of max pooling.
        (("keras.layers.MaxPooling2D(2)", "keras.layers.AveragePooling2D(2)"),
         ["MaxPooling2D", "AveragePooling2D"]),
        # Never compiled.
        (("    model.compile(", "    (lambda **kwargs: None)("), ["Adam", "compile"]),
        # Categorical cross-entropy needs one-hot labels; the task uses integer labels.
        (('loss="sparse_categorical_crossentropy"', 'loss="categorical_crossentropy"'),
         ["loss", "sparse_categorical_crossentropy"]),
    ],
)
def test_a_wrong_model_fails_a_trial_case_with_an_actionable_message(
    answer_source, replacement, words
):
    failures = _failures(_describe(answer_source, replacement))
    assert TRIAL in failures, failures
    assert all(w in failures[TRIAL] for w in words), failures[TRIAL]


@pytest.mark.parametrize(
    "got",
    [None, [], {}, {"space": []}, {"model": {"layers": "x"}}, {"space": {"filters": 3}},
     {"model": {"layers": [1, 2]}}],
)
def test_the_comparator_turns_odd_outputs_into_messages(got):
    for case in get_task(TASK).public_cases():
        message = ex08.compare_hypermodel(case.expected, got)
        assert isinstance(message, str) and message
