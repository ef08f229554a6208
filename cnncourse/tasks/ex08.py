"""Tasks of exercise 8, "Tuning" (chapter 8).

Students write ``build_model(hp)``, a KerasTuner hypermodel for a given search space. The
answer is graded on what a tuner would see: the search space it *declares* and the model it
*builds*.

How the grading works within the harness. A case's inputs must be plain data, but
``build_model`` takes a ``keras_tuner.HyperParameters`` object. So the task cell also holds
a short, given function ``describe_hypermodel(values)``, which the check call names: it
makes a fresh ``HyperParameters()``, fixes ``values`` in it (``None``: none, so every
hyperparameter takes its default, as when a tuner first builds the model; a dict: those
values, as for a trial), calls ``build_model(hp)`` and returns plain data, computed by
:func:`cnncourse.tasks.keras_models.describe_tuner_model` (the layers in the format that
exercises 4 and 6 use too, without the batch axis)::

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

from cnncourse.exercise import Case, Exercise, Mistake, Task, compare
from cnncourse.tasks.keras_models import compare_layers, conv_params, layer_row

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
    sparse categorical cross-entropy. The layers are in the shared format of
    :mod:`cnncourse.tasks.keras_models`.

    Examples
    --------
    >>> [row["params"] for row in expected_model(16, 32, 0.0, 1e-4)["layers"]]
    [160, 0, 0, 86560, 0, 330]
    """
    layers = _layers(filters, dense_units, dropout)
    return {
        "layers": layers,
        "params": sum(layer["params"] for layer in layers),
        "optimizer": "Adam",
        "learning_rate": float(learning_rate),
        "loss": "sparse_categorical_crossentropy",
    }


def _layers(
    filters: int,
    dense_units: int,
    dropout: float,
    *,
    padding: str = "valid",
    output: str = "softmax",
    flatten: bool = True,
) -> list[dict]:
    """The layers of the specified model, or of a classic variation of it (a mistake)."""
    conv_side = INPUT_SIDE if padding == "same" else INPUT_SIDE - 3 + 1
    pool_side = conv_side // 2
    lead = [] if flatten else [pool_side, pool_side]
    width = pool_side * pool_side * filters if flatten else filters
    rows = [
        layer_row("Conv2D", [conv_side, conv_side, filters], conv_params(3, 1, filters), "relu"),
        layer_row("MaxPooling2D", [pool_side, pool_side, filters], 0),
    ]
    if flatten:
        rows.append(layer_row("Flatten", [width], 0))
    return rows + [
        layer_row("Dense", [*lead, dense_units], width * dense_units + dense_units, "relu"),
        layer_row("Dropout", [*lead, dense_units], 0, rate=dropout),
        layer_row("Dense", [*lead, NUM_CLASSES], conv_params(1, dense_units, NUM_CLASSES), output),
    ]


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


def _compare_model(expected: dict, got: object) -> str | None:
    if not isinstance(got, dict):
        return f"the model description should be a dict, got {type(got).__name__}"
    have_layers = got.get("layers")
    if not isinstance(have_layers, list | tuple):
        return "the model's layers could not be read"
    message = compare_layers(expected["layers"], have_layers)
    if message:
        return message
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
    """A model case; ``values=None`` calls ``describe_hypermodel()`` with its default."""
    chosen = DEFAULTS if values is None else values
    args = () if values is None else (values,)
    return Case(name, args, expected={"model": expected_model(**chosen)})


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


def _values_tags(values: dict) -> tuple[str, ...]:
    tags = [
        (f"filters other than {DEFAULTS['filters']}", values["filters"] != DEFAULTS["filters"]),
        ("a dropout rate above 0", values["dropout"] > 0),
        ("a learning rate other than the default", values["learning_rate"] != LR_MIN),
    ]
    return ("a trial's values", *(t for t, on in tags if on))


def _hidden_cases(rng: np.random.Generator) -> list[Case]:
    """Twelve cases in the public cases' proportions: three rounds of a space case and
    three model cases, each for a trial's random values."""
    cases = []
    for _ in range(3):
        values = _random_values(rng)
        cases.append(
            Case(
                f"the declared search space, with a trial's values {_values_text(values)}",
                (values,),
                expected={"space": SPACE},
                tags=("the declared search space checked",),
            )
        )
        for _ in range(3):
            values = _random_values(rng)
            case = _model_case(f"a trial's values: {_values_text(values)}", values)
            cases.append(
                Case(case.name, case.args, expected=case.expected, tags=_values_tags(values))
            )
    return cases


def _model_variant(**bug):
    def wrong(values: dict | None = None) -> dict:
        chosen = DEFAULTS if values is None else values
        return {"model": {"layers": _layers(**{k: chosen[k] for k in _LAYER_VALUES}, **bug)}}

    return wrong


_LAYER_VALUES = ("filters", "dense_units", "dropout")


def _model_part(**part):
    return lambda values=None: {"model": dict(part)}


def _lr_ignored(values: dict | None = None) -> dict:
    chosen = DEFAULTS if values is None else values
    if np.float32(chosen["learning_rate"]) == np.float32(1e-3):
        raise ValueError("Adam's default rate was asked for")  # the detector does not apply
    return {"model": {"learning_rate": float(np.float32(1e-3))}}


MISTAKES = (
    Mistake(
        "learning_rate_ignored",
        "the optimizer does not use the value of hp 'learning_rate': pass it to "
        "keras.optimizers.Adam(learning_rate=...)",
        _lr_ignored,
    ),
    Mistake(
        "same_padding",
        'the convolution uses padding="same"; the specified Conv2D(filters, 3) has the '
        'default "valid" padding, which trims a one-pixel border',
        _model_variant(padding="same"),
    ),
    Mistake(
        "softmax_missing",
        "the output layer has no activation, so it gives raw scores (logits), not "
        'probabilities: Dense(10, activation="softmax")',
        _model_variant(output="linear"),
    ),
    Mistake(
        "flatten_missing",
        "there is no Flatten before the dense layers: a Dense layer on a feature map works "
        "on every pixel separately; add keras.layers.Flatten() after the pooling",
        _model_variant(flatten=False),
    ),
    Mistake(
        "categorical_loss",
        "categorical_crossentropy expects one-hot labels, but the labels are integers: use "
        "sparse_categorical_crossentropy",
        _model_part(loss="categorical_crossentropy"),
    ),
    Mistake(
        "linear_sampling",
        "the learning rate is sampled linearly, so most trials land near the top of the "
        'range; declare it with sampling="log"',
        lambda values=None: {"space": {"learning_rate": {"sampling": "linear"}}},
    ),
)


TASKS = [
    Task(
        "ex08.build_hypermodel",
        4,
        "a KerasTuner hypermodel: its search space and the model it builds",
        _public_cases,
        _hidden_cases,
        comparator=compare_hypermodel,
        chapter="chapters/08_tuning.html#a-search-space-in-kerastuner",
        mistakes=MISTAKES,
    ),
]


EXERCISE = Exercise("ex08", tuple(TASKS), limits=GRADING_LIMITS)
