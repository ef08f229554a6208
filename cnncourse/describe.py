"""Describe a built Keras model as plain data: one row per layer, the course's layer format.

Exercises 4, 6 and 8 grade a model the student *builds* by what it is, layer by layer. The
task cell's given ``describe_...`` function builds the student's model and hands it to
:func:`describe_model` (or :func:`describe_residual`, :func:`describe_tuner_model`), which
returns plain data that the check compares with the specification: after the input, one
dict per layer ::

    {"class": "Conv2D", "output_shape": [28, 28, 32], "params": 320,
     "activation": "relu", "rate": None}

``output_shape`` is without the batch axis; ``activation`` is the activation function's
name (``None`` for a layer without one); ``rate`` is a dropout rate, else ``None``.
:func:`layer_row` writes the same row down without Keras, which is how the expected
descriptions are computed.

This module is the half of the exercises' toolkit that runs in the *student's* process:
the notebooks import it in their setup cell (``from cnncourse.describe import
describe_model``). The grader's sandbox hides the course package, which ships the
reference solutions, so the grader provides this one module inside the sandbox instead:
it runs this file's source there (``cnncourse.notebook_format.SANDBOX_MODULES`` lists the
modules it may provide, ``cnncourse.grading.assignment`` inlines them). That is why the
module is self-contained: it imports only the standard library, NumPy and Keras (and
KerasTuner for :func:`describe_tuner_model`), each inside the function that needs it, and
nothing else from the course. The other half, which compares a description with the
expected one, is ``cnncourse.tasks.keras_models`` and runs in the grading parent.

Examples
--------
>>> import keras
>>> model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3, "softmax")])
>>> describe_model(model) == [layer_row("Dense", [3], 15, "softmax")]
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - only for type checkers
    import keras

__all__ = [
    "LAYER_KEYS",
    "describe_block",
    "describe_layers",
    "describe_model",
    "describe_residual",
    "describe_tuner_model",
    "layer_row",
]

#: The keys of one layer's description, in order.
LAYER_KEYS = ("class", "output_shape", "params", "activation", "rate")


def layer_row(
    cls: str,
    output_shape: Sequence[int],
    params: int,
    activation: str | None = None,
    rate: float | None = None,
) -> dict[str, Any]:
    """One layer's description, written down without Keras.

    Parameters
    ----------
    cls : str
        The layer's class name, e.g. ``"Conv2D"``.
    output_shape : sequence of int
        Its output shape without the batch axis.
    params : int
        Its number of parameters (weights and biases).
    activation : str, optional
        The name of its activation function; ``None`` for a layer without one.
    rate : float, optional
        The dropout rate of a ``Dropout`` layer.

    Returns
    -------
    dict
        The row, with the keys :data:`LAYER_KEYS` in that order.

    Examples
    --------
    >>> layer_row("Dropout", (100,), 0, rate=0.5)
    {'class': 'Dropout', 'output_shape': [100], 'params': 0, 'activation': None, 'rate': 0.5}
    """
    values = (
        str(cls),
        [int(v) for v in output_shape],
        int(params),
        activation,
        None if rate is None else float(rate),
    )
    return dict(zip(LAYER_KEYS, values, strict=True))


def describe_layers(layers: Sequence[keras.layers.Layer]) -> list[dict[str, Any]]:
    """Describe built Keras layers, one row each (:func:`layer_row`'s format).

    Input layers are skipped: the description starts after the input.

    Parameters
    ----------
    layers : sequence of keras.layers.Layer
        Layers of a built model, e.g. ``model.layers``.

    Returns
    -------
    list of dict
        One row per layer, with the keys :data:`LAYER_KEYS`.

    Examples
    --------
    >>> import keras
    >>> inputs = keras.Input(shape=(8, 8, 1))
    >>> model = keras.Model(inputs, keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    >>> describe_layers(model.layers)
    [{'class': 'Conv2D', 'output_shape': [6, 6, 4], 'params': 40, 'activation': 'relu', \
'rate': None}]
    """
    import keras

    rows = []
    for layer in layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        activation = getattr(layer, "activation", None)
        rate = getattr(layer, "rate", None)
        rows.append(
            {
                "class": type(layer).__name__,
                "output_shape": list(layer.output.shape[1:]),
                "params": int(layer.count_params()),
                "activation": getattr(activation, "__name__", None),
                "rate": None if rate is None else float(rate),
            }
        )
    return rows


def describe_model(model: keras.Model) -> list[dict[str, Any]]:
    """Describe a built Keras model: one row per layer after the input.

    Parameters
    ----------
    model : keras.Model
        A built model (one that starts with ``keras.Input``).

    Returns
    -------
    list of dict
        :func:`describe_layers` of its layers.

    Raises
    ------
    ValueError
        If the model is not built, so that its layers have no shapes yet.

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input(shape=(10,)), keras.layers.Dropout(0.25)])
    >>> describe_model(model) == [layer_row("Dropout", [10], 0, rate=0.25)]
    True
    >>> describe_model(keras.Sequential([keras.layers.Dense(2)]))
    Traceback (most recent call last):
    ...
    ValueError: the model has no input shape: start it with keras.Input(shape=...)
    """
    if not getattr(model, "built", False):
        raise ValueError("the model has no input shape: start it with keras.Input(shape=...)")
    return describe_layers(model.layers)


def describe_block(
    builder: Callable[..., Any], input_shape: Sequence[int], *args: Any
) -> list[dict[str, Any]]:
    """Wrap ``builder(inputs, *args)``, a functional-API block, in a model and describe it.

    Parameters
    ----------
    builder : callable
        Takes a Keras tensor (and ``args``) and returns the block's output tensor.
    input_shape : sequence of int
        The input's shape without the batch axis.
    *args
        Passed on to ``builder``.

    Returns
    -------
    list of dict
        :func:`describe_model` of the wrapped block.

    Examples
    --------
    >>> import keras
    >>> def block(x, filters):
    ...     return keras.layers.Conv2D(filters, 1)(x)
    >>> describe_block(block, (5, 5, 2), 3) == [layer_row("Conv2D", [5, 5, 3], 9, "linear")]
    True
    """
    import keras

    inputs = keras.Input(shape=tuple(input_shape))
    return describe_model(keras.Model(inputs, builder(inputs, *args)))


def describe_residual(
    builder: Callable[..., Any], input_shape: Sequence[int], filters: int, stride: int
) -> dict[str, Any]:
    """Wrap a residual block in a model; report its shape, parameters, convolutions, shortcut.

    Parameters
    ----------
    builder : callable
        ``builder(x, filters, stride)`` returns the block's output tensor for the tensor ``x``.
    input_shape : sequence of int
        The input's shape without the batch axis.
    filters, stride : int
        Passed on to ``builder``.

    Returns
    -------
    dict
        ``output_shape`` (without the batch axis) and ``params`` of the whole block;
        ``convs``, its ``Conv2D`` layers in the course's format, sorted by parameter count
        then shape (the order of the branches is the author's choice); ``shortcut``,
        ``"projection"`` if a 1x1 convolution is among them, else ``"identity"``; ``skip``:
        with every 3x3 kernel and bias zeroed and any 1x1 kernel set to ones, does a
        positive input still reach the output? Only a shortcut that is really added can
        carry it.

    Examples
    --------
    >>> import keras
    >>> def block(x, filters, stride):
    ...     y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same")(x)
    ...     return keras.layers.Add()([y, x])
    >>> report = describe_residual(block, (4, 4, 2), 2, 1)
    >>> report["output_shape"], report["params"], report["shortcut"], report["skip"]
    ([4, 4, 2], 38, 'identity', True)
    """
    import keras
    import numpy as np

    inputs = keras.Input(shape=tuple(input_shape))
    model = keras.Model(inputs, builder(inputs, filters, stride))
    convs = [la for la in model.layers if isinstance(la, keras.layers.Conv2D)]
    ones = [tuple(la.kernel_size) == (1, 1) for la in convs]
    report = {
        "output_shape": list(model.output.shape[1:]),
        "params": int(model.count_params()),
        "convs": sorted(describe_layers(convs), key=lambda r: (r["params"], r["output_shape"])),
        "shortcut": "projection" if any(ones) else "identity",
    }
    for layer, one in zip(convs, ones, strict=True):
        layer.set_weights(
            [
                np.ones(w.shape) if one and w.ndim == 4 else np.zeros(w.shape)
                for w in layer.get_weights()
            ]
        )
    x = np.random.default_rng(0).uniform(0.5, 1.0, size=(1, *tuple(input_shape)))
    out = keras.ops.convert_to_numpy(model(x.astype("float32")))
    report["skip"] = bool(np.all(out > 0))
    return report


def describe_tuner_model(
    build_model: Callable[[Any], keras.Model], values: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Call a KerasTuner ``build_model(hp)`` as a tuner does; describe its space and model.

    Parameters
    ----------
    build_model : callable
        Takes a ``keras_tuner.HyperParameters`` and returns a (compiled) Keras model.
    values : dict, optional
        ``None``: a fresh ``HyperParameters()``, so that every hyperparameter takes its
        default. A dict: those values are fixed first, as the tuner does for a trial.

    Returns
    -------
    dict
        ``space``: every declared hyperparameter by name, with its ``type`` (``"Choice"``,
        ``"Int"``, ``"Float"``...) and its configuration; ``model``: its ``layers``
        (:func:`describe_model`), ``params``, ``optimizer`` class name, ``learning_rate``
        and ``loss`` (``None`` where the model is not compiled).

    Examples
    --------
    >>> import keras
    >>> def build_model(hp):
    ...     units = hp.Int("units", 4, 8, step=4)
    ...     return keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(units)])
    >>> described = describe_tuner_model(build_model, {"units": 8})
    >>> described["space"]
    {'units': {'type': 'Int', 'min_value': 4, 'max_value': 8, 'step': 4, 'sampling': 'linear'}}
    >>> described["model"]["params"], described["model"]["optimizer"]
    (32, None)
    """
    import keras
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    hp.values.update(values or {})
    model = build_model(hp)
    space = {}
    for entry in hp.get_config()["space"]:
        config = dict(entry["config"])
        name = config.pop("name")
        for key in ("default", "conditions", "ordered"):
            config.pop(key, None)
        space[name] = {"type": entry["class_name"], **config}
    optimizer = getattr(model, "optimizer", None)
    loss = getattr(model, "loss", None)
    if loss is not None and not isinstance(loss, str):
        loss = getattr(loss, "name", getattr(loss, "__name__", type(loss).__name__))
    learning_rate = None
    if optimizer is not None:
        learning_rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    return {
        "space": space,
        "model": {
            "layers": describe_model(model),
            "params": int(model.count_params()),
            "optimizer": None if optimizer is None else type(optimizer).__name__,
            "learning_rate": learning_rate,
            "loss": loss,
        },
    }
