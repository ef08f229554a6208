"""Tasks of exercise 8, "Tuning" (chapter 8).

Students write ``build_model(hp)``, a KerasTuner hypermodel for a given search space. The
answer is graded on what a tuner would see: the search space it *declares* and the model it
*builds*.

How the grading works within the harness. A case's inputs must be plain data, but
``build_model`` takes a ``keras_tuner.HyperParameters`` object. So the task cell also holds
a short, given function ``describe_hypermodel(values)``, which the check call names: it
makes a fresh ``HyperParameters()``, fixes ``values`` in it (``None``: none, so every
hyperparameter takes its default, as when a tuner first builds the model; a dict: those
values, as for a trial), calls ``build_model(hp)`` and returns plain data::

    {"space": {name: {"type": "Choice" | "Int" | "Float" | ..., **its config}},
     "model": {"layers": [{"class", "output_shape", "params", "activation", "rate"}, ...],
               "params": int, "optimizer": str, "learning_rate": float, "loss": str}}

The grader compares that with the expected description in the parent process. The
expected descriptions are computed here *without* Keras, from the layer arithmetic
(``tests/test_tasks_ex08.py`` checks them against the solution's real Keras models), so
the grading parent never imports TensorFlow. Each case checks one thing: the declared
space, or the model for one set of values (the comparator only looks at the keys the
expected dict has), so a student with the right model but a slip in the space earns
partial credit, and vice versa.

Grading needs more than the NumPy defaults: the child imports TensorFlow, which does not
load under the default 1024 MB address-space limit and takes several seconds. Grade with
``--memory-mb 3072 --timeout 60`` (:data:`GRADING_LIMITS` records these values for a grader
that reads per-assignment limits).

A limitation, by design of the harness: ``describe_hypermodel`` runs in the student's child
process, so a student who edits it could report a description without building the model.
Such a fake must still produce the right description for random hidden values, which
takes the same understanding as the task itself. Building the model is only checked
*outside* the student's process if the model is sent back as a saved ``.keras`` file (the
``ARTIFACTS`` route), which cannot carry the declared search space.
"""

from __future__ import annotations

import math

import numpy as np

from cnncourse.exercise import Case, Exercise, Task, compare

INPUT_SIDE = 28
NUM_CLASSES = 10
FILTERS = (16, 32, 64)
UNITS = (32, 64, 96, 128)  # hp.Int("dense_units", 32, 128, step=32)
DROPOUTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)  # hp.Float("dropout", 0.0, 0.5, step=0.1)
LR_MIN, LR_MAX = 1e-4, 1e-2

#: The search space build_model must declare, as describe_hypermodel reports it.
SPACE = {
    "filters": {"type": "Choice", "values": list(FILTERS)},
    "dense_units": {
        "type": "Int",
        "min_value": 32,
        "max_value": 128,
        "step": 32,
        "sampling": "linear",
    },
    "dropout": {
        "type": "Float",
        "min_value": 0.0,
        "max_value": 0.5,
        "step": 0.1,
        "sampling": "linear",
    },
    "learning_rate": {
        "type": "Float",
        "min_value": LR_MIN,
        "max_value": LR_MAX,
        "step": None,
        "sampling": "log",
    },
}

#: Limits this task needs in the grader (TensorFlow in the child); see the module docstring.
GRADING_LIMITS = {"memory_mb": 3072, "timeout_s": 60.0, "nproc": 512}  # TF thread pools

#: What a fresh HyperParameters() gives: the first choice, the low end of every range.
DEFAULTS = {"filters": 16, "dense_units": 32, "dropout": 0.0, "learning_rate": LR_MIN}


def expected_model(filters: int, dense_units: int, dropout: float, learning_rate: float) -> dict:
    """The description of the model build_model must build for these values (no Keras).

    Conv2D(filters, 3, relu) on 28x28x1 -> 26x26; MaxPooling2D(2) -> 13x13; Flatten;
    Dense(dense_units, relu); Dropout(dropout); Dense(10, softmax); Adam(learning_rate);
    sparse categorical cross-entropy.
    """
    conv_side = INPUT_SIDE - 3 + 1
    pool_side = conv_side // 2
    flat = pool_side * pool_side * filters
    layers = [
        ("Conv2D", [None, conv_side, conv_side, filters], 3 * 3 * 1 * filters + filters, "relu"),
        ("MaxPooling2D", [None, pool_side, pool_side, filters], 0, None),
        ("Flatten", [None, flat], 0, None),
        ("Dense", [None, dense_units], flat * dense_units + dense_units, "relu"),
        ("Dropout", [None, dense_units], 0, None),
        ("Dense", [None, NUM_CLASSES], dense_units * NUM_CLASSES + NUM_CLASSES, "softmax"),
    ]
    described = [
        {
            "class": name,
            "output_shape": shape,
            "params": params,
            "activation": activation,
            "rate": float(dropout) if name == "Dropout" else None,
        }
        for name, shape, params, activation in layers
    ]
    return {
        "layers": described,
        "params": sum(layer["params"] for layer in described),
        "optimizer": "Adam",
        "learning_rate": float(learning_rate),
        "loss": "sparse_categorical_crossentropy",
    }


# --------------------------------------------------------------------------- comparison


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


def _compare_space(expected: dict, got: object) -> str | None:
    if not isinstance(got, dict):
        return f"the search space should be a dict of hyperparameters, got {type(got).__name__}"
    missing = [name for name in expected if name not in got]
    extra = [name for name in got if name not in expected]
    if missing:
        hint = f" (declared instead: {', '.join(map(repr, extra))})" if extra else ""
        return (
            f"build_model does not declare {', '.join(map(repr, missing))}{hint}; use exactly "
            "the names of the task"
        )
    if extra:
        return f"build_model declares hyperparameters the task does not ask for: {extra}"
    for name, want in expected.items():
        have = got[name]
        if not isinstance(have, dict):
            return f"hyperparameter {name!r}: could not read its declaration"
        if have.get("type") != want["type"]:
            return (
                f"hyperparameter {name!r} is declared with hp.{have.get('type')}, expected "
                f"hp.{want['type']}"
            )
        for key, value in want.items():
            if key == "type":
                continue
            if key not in have:
                return f"hyperparameter {name!r}: its {key} is missing"
            if compare(value, have[key], rtol=1e-9, atol=1e-12) is not None:
                return (
                    f"hyperparameter {name!r}: {key} should be {_fmt(value)}, got {_fmt(have[key])}"
                )
    return None


_LAYER_KEYS = ("class", "output_shape", "params", "activation", "rate")


def _layer_text(layer: object) -> str:
    return layer.get("class", "?") if isinstance(layer, dict) else "?"


def _compare_model(expected: dict, got: object) -> str | None:
    if not isinstance(got, dict):
        return f"the model description should be a dict, got {type(got).__name__}"
    want_layers, have_layers = expected["layers"], got.get("layers")
    if not isinstance(have_layers, list | tuple):
        return "the model's layers could not be read"
    want_names = [layer["class"] for layer in want_layers]
    have_names = [_layer_text(layer) for layer in have_layers]
    if have_names != want_names:
        return (
            f"expected the layers {', '.join(want_names)} after the input, got "
            f"{', '.join(have_names) or 'none'}"
        )
    for k, (want, have) in enumerate(zip(want_layers, have_layers, strict=True), start=1):
        for key in _LAYER_KEYS[1:]:
            if key == "rate" and want[key] is None:
                continue
            value = have.get(key)
            if key == "output_shape" and isinstance(value, list | tuple):
                value = list(value)
            if compare(want[key], value, rtol=1e-6, atol=1e-9) is not None:
                what = {
                    "output_shape": "output shape",
                    "params": "parameter count",
                    "activation": "activation",
                    "rate": "dropout rate",
                }[key]
                return (
                    f"layer {k} ({want['class']}): {what} should be {_fmt(want[key])}, got "
                    f"{_fmt(value)}"
                )
    if got.get("optimizer") != expected["optimizer"]:
        return (
            f"the model should be compiled with the {expected['optimizer']} optimizer, got "
            f"{got.get('optimizer')!r} (did you call model.compile?)"
        )
    lr = got.get("learning_rate")
    if compare(expected["learning_rate"], lr, rtol=1e-5, atol=0.0) is not None:
        return (
            f"the optimizer's learning rate should be {_fmt(expected['learning_rate'])} (the "
            f"value of hp 'learning_rate'), got {_fmt(lr)}"
        )
    if got.get("loss") != expected["loss"]:
        return f"the loss should be {expected['loss']!r}, got {got.get('loss')!r}"
    return None


def compare_hypermodel(expected: dict, got: object) -> str | None:
    """Compare the parts of a description that ``expected`` names ("space" and/or "model")."""
    if not isinstance(got, dict):
        return f"describe_hypermodel should return a dict, got {type(got).__name__}"
    for part, check in (("space", _compare_space), ("model", _compare_model)):
        if part not in expected:
            continue
        if part not in got:
            return f"the description has no {part!r} entry (was describe_hypermodel edited?)"
        message = check(expected[part], got[part])
        if message:
            return message
    return None


# --------------------------------------------------------------------------- cases


def _values_text(values: dict) -> str:
    return (
        f"filters {values['filters']}, dense_units {values['dense_units']}, dropout "
        f"{values['dropout']:g}, learning_rate {values['learning_rate']:.3g}"
    )


def _model_case(name: str, values: dict | None) -> Case:
    chosen = DEFAULTS if values is None else values
    return Case(name, (values,), expected={"model": expected_model(**chosen)})


def _public_cases() -> list[Case]:
    trial = {"filters": 64, "dense_units": 128, "dropout": 0.3, "learning_rate": 0.003}
    upper = {"filters": 32, "dense_units": 64, "dropout": 0.5, "learning_rate": 0.01}
    return [
        Case("the declared search space", (None,), expected={"space": SPACE}),
        _model_case("the model at the defaults (a fresh HyperParameters())", None),
        _model_case(f"a trial's values: {_values_text(trial)}", trial),
        _model_case(f"a trial's values: {_values_text(upper)}", upper),
    ]


def _random_values(rng: np.random.Generator) -> dict:
    log_lr = rng.uniform(math.log10(LR_MIN), math.log10(LR_MAX))
    return {
        "filters": int(rng.choice(FILTERS)),
        "dense_units": int(rng.choice(UNITS)),
        "dropout": float(rng.choice(DROPOUTS)),
        "learning_rate": float(f"{10**log_lr:.4g}"),
    }


def _hidden_cases(rng: np.random.Generator) -> list[Case]:
    values = _random_values(rng)
    cases = [
        Case(
            f"the declared search space, with a trial's values {_values_text(values)}",
            (values,),
            expected={"space": SPACE},
        )
    ]
    for _ in range(3):
        values = _random_values(rng)
        cases.append(_model_case(f"a trial's values: {_values_text(values)}", values))
    return cases


TASKS = [
    Task(
        "ex08.build_hypermodel",
        4,
        "a KerasTuner hypermodel: its search space and the model it builds",
        _public_cases,
        _hidden_cases,
        comparator=compare_hypermodel,
        chapter="chapters/08_tuning.html#a-search-space-in-kerastuner",
        few_hidden="each case builds a Keras model in the grader, which takes seconds",
    ),
]


EXERCISE = Exercise("ex08", tuple(TASKS), limits=GRADING_LIMITS)
