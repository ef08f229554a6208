"""Compare built Keras models with their specification: the grading half of the toolkit.

Exercises 4 (``build_cnn``), 6 (``vgg_block``, ``residual_block``) and 8
(``build_hypermodel``), whose answer is a Keras model the student *builds*, grade it
through one layer-description format: after the input, one dict per layer ::

    {"class": "Conv2D", "output_shape": [28, 28, 32], "params": 320,
     "activation": "relu", "rate": None}

The describing half runs in the student's process and is :mod:`cnncourse.describe`
(:func:`~cnncourse.describe.describe_model` computes a description from a real model,
:func:`~cnncourse.describe.layer_row` writes one down without Keras); it is self-contained
so that the grader can provide it inside its sandbox, and this module re-exports it. The
expected descriptions, computed by the task modules from the layer arithmetic
(:func:`conv_params`), never need TensorFlow in the grading parent.

:func:`compare_layers` compares a description with the expected one on *aspects* (the
layers in order with their dropout rates, the output shapes, the parameter counts, the
activations). It aligns the two lists first, as ``diff`` aligns lines, so a missing, extra
or misplaced layer costs the "layers" aspect only, and its messages say which layer, which
aspect, what was expected and what the model has::

    layer 1 (Conv2D): the output shape should be (28, 28, 32), got (26, 26, 32):
    padding="same" keeps the height and width of its input

A separate ``Activation``/``ReLU``/``Softmax`` layer is graded as the activation of the
layer before it, since it computes the same function.

Examples
--------
>>> want = [layer_row("Dense", [10], 110, "softmax")]
>>> compare_layers(want, [layer_row("Dense", [10], 110, "linear")])
"layer 1 (Dense): the activation should be 'softmax', got 'linear': the output layer \
needs softmax to give one probability per class"
>>> compare_layers(want, [layer_row("Dense", [10], 110), layer_row("Softmax", [10], 0)])
"""

from __future__ import annotations

from collections.abc import Sequence

from cnncourse.describe import (
    LAYER_KEYS,
    describe_block,
    describe_layers,
    describe_model,
    describe_residual,
    describe_tuner_model,
    layer_row,
)
from cnncourse.exercise import compare

__all__ = [
    "ASPECTS",
    "LAYER_KEYS",
    "compare_layers",
    "conv_params",
    "describe_block",
    "describe_layers",
    "describe_model",
    "describe_residual",
    "describe_tuner_model",
    "layer_row",
]

#: What :func:`compare_layers` can grade, one aspect per case if a task wants partial credit.
ASPECTS = ("layers", "shapes", "params", "activations")

#: What each aspect grades, in words (for case names).
ASPECT_TEXT = {
    "layers": "the layers in order, and the dropout rate",
    "shapes": "the output shapes",
    "params": "the parameter counts",
    "activations": "the activations",
}


# --------------------------------------------------------------------------- the format


def conv_params(k: int, c_in: int, c_out: int, bias: bool = True) -> int:
    """Parameters of a ``k x k`` convolution from ``c_in`` to ``c_out`` channels.

    Examples
    --------
    >>> conv_params(3, 1, 32)
    320
    """
    return k * k * c_in * c_out + (c_out if bias else 0)


# --------------------------------------------------------------------------- comparison


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "(" + ", ".join(str(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


_FOLDED = {"ReLU": "relu", "Softmax": "softmax"}


def normalise_layers(got: object) -> tuple[list[dict] | None, str | None]:
    """Validate a description; fold separate activation layers into the layer before them.

    ``Conv2D(32, 3)`` followed by ``Activation("relu")`` (or ``ReLU()``) computes the same
    function as ``Conv2D(32, 3, activation="relu")``, so it is graded as that.
    """
    if not isinstance(got, list | tuple):
        return None, f"the description should be a list of layers, got {type(got).__name__}"
    layers: list[dict] = []
    for k, layer in enumerate(got, start=1):
        if not isinstance(layer, dict) or not isinstance(layer.get("class"), str):
            return None, f"layer {k} of the description could not be read"
        layer = dict(layer)
        shape = layer.get("output_shape")
        layer["output_shape"] = list(shape) if isinstance(shape, list | tuple) else shape
        name = layer["class"]
        if name in ("Activation", *_FOLDED) and layers:
            before = layers[-1]
            if before.get("activation") in (None, "linear") and before["class"] != "Activation":
                before["activation"] = _FOLDED.get(name, layer.get("activation"))
                continue
        layers.append(layer)
    return layers, None


def _occurrences(layers: list[dict]) -> list[tuple[str, int]]:
    """(class, how many of that class came before) for every layer."""
    seen: dict[str, int] = {}
    keys = []
    for layer in layers:
        name = layer["class"]
        keys.append((name, seen.get(name, 0)))
        seen[name] = seen.get(name, 0) + 1
    return keys


def _ordinal(k: int) -> str:
    return ("first", "second", "third", "fourth")[k] if k < 4 else f"number {k + 1}"


def _check_layers(want: list[dict], have: list[dict]) -> str | None:
    want_names = [layer["class"] for layer in want]
    have_names = [layer["class"] for layer in have]
    if have_names != want_names:
        expected, got = ", ".join(want_names), ", ".join(have_names) or "none"
        names = dict.fromkeys(want_names + have_names)
        missing = [n for n in names if have_names.count(n) < want_names.count(n)]
        extra = [n for n in names if have_names.count(n) > want_names.count(n)]
        parts = [
            f"{what}: {', '.join(found)}"
            for what, found in (("missing", missing), ("extra", extra))
            if found
        ]
        why = "; ".join(parts) or "the layers are all there but in another order"
        return f"expected the layers {expected} after the input, got {got} ({why})"
    for k, (w, h) in enumerate(zip(want, have, strict=True), start=1):
        if w["rate"] is not None and compare(w["rate"], h.get("rate"), rtol=1e-6) is not None:
            return (
                f"layer {k} (Dropout): the dropout rate should be {_fmt(w['rate'])}, got "
                f"{_fmt(h.get('rate'))}"
            )
    return None


def _similarity(want: dict, have: dict) -> int:
    """0 for layers of different classes; else 4, plus 1 per agreeing shape, count, activation."""
    if want["class"] != have["class"]:
        return 0
    same = 0
    for key in ("output_shape", "params", "activation"):
        try:
            same += bool(want[key] == have.get(key))
        except Exception:  # an odd value that cannot even be compared: not the same
            pass
    return 4 + same


def _align(want: list[dict], have: list[dict]) -> list[tuple[int, int]]:
    """Index pairs (i, j) that pair wanted layer i with the student's layer j.

    An alignment in order, as ``diff`` aligns lines: it pairs as many layers of the same
    class as possible and, among such pairings, prefers layers that agree in shape,
    parameters and activation. A missing, extra or misplaced layer is then left out, and
    the layers around it are still compared with their counterparts.
    """
    n, m = len(want), len(have)
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            pair = _similarity(want[i], have[j])
            best[i][j] = max(
                best[i + 1][j], best[i][j + 1], pair + best[i + 1][j + 1] if pair else 0
            )
    pairs = []
    i = j = 0
    while i < n and j < m:
        pair = _similarity(want[i], have[j])
        if pair and best[i][j] == pair + best[i + 1][j + 1]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif best[i][j] == best[i + 1][j]:
            i += 1
        else:
            j += 1
    return pairs


def _matched(want: list[dict], have: list[dict]):
    """(position, (class, occurrence), wanted layer, student's layer) of aligned layers."""
    keys = _occurrences(want)
    for i, j in _align(want, have):
        yield i + 1, keys[i], want[i], have[j]


def _last_dense(want: list[dict]) -> int:
    return max((k for k, w in enumerate(want, start=1) if w["class"] == "Dense"), default=0)


def _shape_hint(k: int, key: tuple[str, int], want: list, have: object, last: int) -> str:
    name, n = key
    if not isinstance(have, list) or len(have) != len(want):
        if name == "Dense" and isinstance(have, list) and len(have) > len(want):
            return ": a Dense layer on an image keeps its height and width; Flatten first"
        return ""
    if name == "Conv2D" and have[-1] == want[-1] and have[:2] != want[:2]:
        return ': padding="same" keeps the height and width of its input, "valid" shrinks them'
    if name == "Conv2D" and have[:2] == want[:2]:
        return f": the {_ordinal(n)} convolution has the wrong number of filters"
    if name == "MaxPooling2D" and have[-1] == want[-1]:
        return ": a 2x2 pooling with stride 2 halves height and width, rounding down"
    if name == "Dense" and k == last:
        return ": the output layer has one unit per class"
    return ""


def _check_shapes(want: list[dict], have: list[dict]) -> str | None:
    compared = 0
    last = _last_dense(want)
    for k, key, w, h in _matched(want, have):
        compared += 1
        have_shape = h.get("output_shape")
        if have_shape != w["output_shape"]:
            hint = _shape_hint(k, key, w["output_shape"], have_shape, last)
            return (
                f"layer {k} ({key[0]}): the output shape should be {_fmt(w['output_shape'])}, "
                f"got {_fmt(have_shape)}{hint}"
            )
    return None if compared else "none of the expected layers is in the model"


def _check_params(want: list[dict], have: list[dict]) -> str | None:
    compared = 0
    for k, key, w, h in _matched(want, have):
        compared += 1
        if compare(w["params"], h.get("params")) is not None:
            hint = ""
            if key[0] in ("Conv2D", "Dense"):
                hint = " (weights plus one bias per output; are the kernel size and filters right?)"
            return (
                f"layer {k} ({key[0]}): {w['params']:,} parameters expected, got "
                f"{_fmt(h.get('params'))}{hint}"
            )
    return None if compared else "none of the expected layers is in the model"


def _check_activations(want: list[dict], have: list[dict]) -> str | None:
    compared = 0
    last = _last_dense(want)
    for k, key, w, h in _matched(want, have):
        if w["activation"] is None:
            continue
        compared += 1
        if h.get("activation") != w["activation"]:
            hint = ""
            if k == last and w["activation"] == "softmax":
                hint = ": the output layer needs softmax to give one probability per class"
            elif w["activation"] == "relu":
                hint = ': give it activation="relu"'
            return (
                f"layer {k} ({key[0]}): the activation should be {w['activation']!r}, got "
                f"{h.get('activation')!r}{hint}"
            )
    return (
        None
        if compared or not any(w["activation"] for w in want)
        else ("none of the expected layers is in the model")
    )


_ASPECT_CHECKS = {
    "layers": _check_layers,
    "shapes": _check_shapes,
    "params": _check_params,
    "activations": _check_activations,
}


def compare_layers(want: list[dict], got: object, aspects: Sequence[str] = ASPECTS) -> str | None:
    """Compare a description ``got`` with the expected ``want`` on ``aspects``.

    Returns ``None`` when they agree, else the first problem found, aspect by aspect in
    the order given. The shapes, parameters and activations are compared between aligned
    layers (see :func:`_align`).

    Examples
    --------
    >>> want = [layer_row("Conv2D", [28, 28, 8], 80, "relu")]
    >>> compare_layers(want, [layer_row("Conv2D", [26, 26, 8], 80, "relu")], ["params"]) is None
    True
    >>> compare_layers(want, [])
    'expected the layers Conv2D after the input, got none (missing: Conv2D)'
    """
    have, problem = normalise_layers(got)
    if problem:
        return problem
    for aspect in aspects:
        message = _ASPECT_CHECKS[aspect](want, have)
        if message:
            return message
    return None
