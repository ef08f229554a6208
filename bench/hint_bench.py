"""How often a classic mistake gets a specific hint (issue 13; the goal is at least 80 %).

A corpus of planted bugs -- each one a short, independently written wrong answer of the kind
students hand in (a flipped kernel, the wrong softmax axis, a missing ``+ 1``, an in-place
ReLU...) -- is run through the self-check on the public cases and on hidden cases drawn
from a fixed key, exactly as the grader judges them. A bug *gets a specific hint* when at
least one of its failing cases names a mistake (``CaseResult.mistake``); it *gets the right
hint* when that mistake is the one planted.

Run ``python bench/hint_bench.py``; it prints one line per bug and the two shares.
``tests/test_mistakes.py`` asserts that every bug gets the right hint.
"""

from __future__ import annotations

import functools
import sys
import textwrap

import numpy as np

#: (task id, the mistake planted, the wrong answer's source)
BUGS: list[tuple[str, str, str]] = [
    ("ex01.dense_params", "bias_missing", "def f(n, u):\n    return n * u"),
    ("ex01.dense_params", "bias_per_input", "def f(n, u):\n    return n * u + n"),
    ("ex01.conv_params", "bias_missing", "def f(k, c, n):\n    return k * k * c * n"),
    ("ex01.conv_params", "bias_per_input_channel", "def f(k, c, n):\n    return k * k * c * n + c"),
    ("ex01.conv_params", "kernel_side_not_squared", "def f(k, c, n):\n    return k * c * n + n"),
    ("ex01.conv_params", "channels_ignored", "def f(k, c, n):\n    return (k * k + 1) * n"),
    (
        "ex01.shift_images",
        "wrap_around",
        "def f(x, dx, dy):\n    return np.roll(np.roll(x, dy, axis=1), dx, axis=2)",
    ),
    (
        "ex01.shift_images",
        "dx_dy_swapped",
        """
        def f(x, dx, dy):
            out = np.zeros_like(x)
            h, w = x.shape[1:]
            for i in range(h):
                for j in range(w):
                    si, sj = i - dx, j - dy
                    if 0 <= si < h and 0 <= sj < w:
                        out[:, i, j] = x[:, si, sj]
            return out
        """,
    ),
    (
        "ex01.shift_images",
        "dtype_changed",
        """
        def f(x, dx, dy):
            out = np.zeros(x.shape)
            h, w = x.shape[1:]
            for i in range(h):
                for j in range(w):
                    si, sj = i - dy, j - dx
                    if 0 <= si < h and 0 <= sj < w:
                        out[:, i, j] = x[:, si, sj]
            return out
        """,
    ),
    (
        "ex01.shift_images",
        "in_place",
        """
        def f(x, dx, dy):
            shifted = np.zeros_like(x)
            h, w = x.shape[1:]
            for i in range(h):
                for j in range(w):
                    si, sj = i - dy, j - dx
                    if 0 <= si < h and 0 <= sj < w:
                        shifted[:, i, j] = x[:, si, sj]
            x[...] = shifted
            return x
        """,
    ),
    ("ex02.zero_pad", "padded_all_axes", "def f(x, pad):\n    return np.pad(x, pad)"),
    (
        "ex02.zero_pad",
        "layout",
        "def f(x, p):\n    return np.pad(x, [(0, 0), (0, 0), (p, p), (p, p)])",
    ),
    (
        "ex02.zero_pad",
        "padding_twice",
        "def f(x, p):\n    return np.pad(x, [(0, 0), (2 * p, 2 * p), (2 * p, 2 * p), (0, 0)])",
    ),
    ("ex02.conv_output_size", "off_by_one", "def f(n, k, s, p):\n    return (n + 2 * p - k) // s"),
    (
        "ex02.conv_output_size",
        "true_division",
        "def f(n, k, s, p):\n    return (n + 2 * p - k) / s + 1",
    ),
    (
        "ex02.conv_output_size",
        "padding_once",
        "def f(n, k, s, p):\n    return (n + p - k) // s + 1",
    ),
    ("ex02.conv_output_size", "stride_ignored", "def f(n, k, s, p):\n    return n + 2 * p - k + 1"),
    (
        "ex02.conv_output_size",
        "ceil_instead_of_floor",
        "import math\ndef f(n, k, s, p):\n    return math.ceil((n + 2 * p - k) / s) + 1",
    ),
    ("ex02.conv_single_step", "bias_missing", "def f(a, w, b):\n    return float((a * w).sum())"),
    (
        "ex02.conv_single_step",
        "flipped_kernel",
        "def f(a, w, b):\n    return float((a * np.flip(w, (0, 1))).sum() + b)",
    ),
]

_CONV = """
def f(x, w, b, stride, pad):
    xp = np.pad(x, [(0, 0), ({p}, {p}), ({p}, {p}), (0, 0)])
    kh, kw, c, nf = w.shape
    s = {s}
    oh = (x.shape[1] + 2 * pad - kh) // s + 1
    ow = (x.shape[2] + 2 * pad - kw) // s + 1
    oh, ow = min(oh, (xp.shape[1] - kh) // s + 1), min(ow, (xp.shape[2] - kw) // s + 1)
    out = np.zeros((x.shape[0], oh, ow, nf))
    k = {kernel}
    for i in range(oh):
        for j in range(ow):
            win = xp[:, i * s:i * s + kh, j * s:j * s + kw, :]
            out[:, i, j, :] = np.tensordot(win, k, axes=([1, 2, 3], [0, 1, 2])) {bias}
    return out{after}
"""


def _conv(p="pad", s="stride", kernel="w", bias="+ b", after=""):
    return _CONV.format(p=p, s=s, kernel=kernel, bias=bias, after=after)


BUGS += [
    ("ex02.conv2d", "flipped_kernel", _conv(kernel="w[::-1, ::-1]")),
    ("ex02.conv2d", "stride_ignored", _conv(s="1")),
    ("ex02.conv2d", "padding_twice", _conv(p="2 * pad")),
    ("ex02.conv2d", "padding_ignored", _conv(p="0")),
    ("ex02.conv2d", "bias_missing", _conv(bias="")),
    ("ex02.conv2d", "bias_per_input_channel", _conv(bias="+ b * c")),
    ("ex02.conv2d", "layout", _conv(after=".transpose(0, 3, 1, 2)")),
    (
        "ex02.conv2d_backward",
        "padding_not_removed",
        """
        def f(dout, x, w, stride, pad):
            xp = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
            dxp, dw = np.zeros(xp.shape), np.zeros(w.shape)
            kh, kw = w.shape[:2]
            for i in range(dout.shape[1]):
                for j in range(dout.shape[2]):
                    t, l = i * stride, j * stride
                    win = xp[:, t:t + kh, l:l + kw, :]
                    dw += np.einsum("nhwc,nf->hwcf", win, dout[:, i, j, :])
                    dxp[:, t:t + kh, l:l + kw, :] += np.einsum("hwcf,nf->nhwc", w, dout[:, i, j, :])
            return dxp, dw, dout.sum(axis=(0, 1, 2))
        """,
    ),
]

_POOL = """
def f(x, pool_size=2, stride=None):
    s = {default} if stride is None else {s}
    n, h, w, c = x.shape
    oh, ow = (h - pool_size) // s + 1 {trim}, (w - pool_size) // s + 1 {trim}
    out = np.zeros((n, oh, ow, c){dtype})
    for i in range(oh):
        for j in range(ow):
            win = x[:, i * s:i * s + pool_size, j * s:j * s + pool_size, :]
            out[:, i, j, :] = {reduce}
    return out
"""


def _pool(reduce, default="pool_size", s="stride", trim="", dtype=""):
    return _POOL.format(reduce=reduce, default=default, s=s, trim=trim, dtype=dtype)


MAX = "win.max(axis=(1, 2))"
MEAN = "win.mean(axis=(1, 2))"

BUGS += [
    ("ex03.max_pool2d", "default_stride", _pool(MAX, default="1")),
    ("ex03.max_pool2d", "stride_ignored", _pool(MAX, s="1")),
    ("ex03.max_pool2d", "max_starts_at_zero", _pool("np.maximum(win.max(axis=(1, 2)), 0)")),
    ("ex03.max_pool2d", "off_by_one", _pool(MAX, trim="- 1")),
    ("ex03.max_pool2d", "pooled_over_channels", _pool("win.max(axis=(1, 2, 3))[:, None]")),
    ("ex03.avg_pool2d", "int_dtype", _pool(MEAN, dtype=", dtype=int")),
    ("ex03.avg_pool2d", "stride_is_pool", _pool(MEAN, s="pool_size")),
    (
        "ex03.global_average_pool",
        "keepdims",
        "def f(x):\n    return x.mean(axis=(1, 2), keepdims=True)",
    ),
    ("ex03.global_average_pool", "layout", "def f(x):\n    return x.mean(axis=(1, 2)).T"),
    ("ex03.relu", "in_place", "def f(x):\n    x[x < 0] = 0\n    return x"),
    ("ex03.relu", "returns_mask", "def f(x):\n    return (x > 0) * 1.0"),
    ("ex03.relu", "abs_instead_of_relu", "def f(x):\n    return np.sqrt(x * x)"),
    (
        "ex03.softmax",
        "wrong_axis",
        "def f(z):\n    e = np.exp(z - z.max(axis=0))\n    return e / e.sum(axis=0)",
    ),
    (
        "ex03.softmax",
        "no_max_shift",
        "def f(z):\n    e = np.exp(z)\n    return e / np.sum(e, axis=-1, keepdims=True)",
    ),
    (
        "ex03.softmax",
        "global_max_shift",
        "def f(z):\n    e = np.exp(z - z.max())\n    return e / e.sum(-1, keepdims=True)",
    ),
    (
        "ex03.softmax",
        "normalised_whole_array",
        "def f(z):\n    e = np.exp(z - z.max())\n    return e / e.sum()",
    ),
]


_GRAD_CAM = """
def f(feature_maps, gradients):
    g = {gradients}
    weights = g.mean(axis={axes}, keepdims=True)
    cam = (weights * feature_maps).sum(axis=-1)
    cam = {relu}
    top = {top}
    return {result}
"""


def _grad_cam(
    gradients="gradients",
    axes="(1, 2)",
    relu="np.maximum(cam, 0)",
    top="cam.max(axis=(1, 2), keepdims=True)",
    result="np.divide(cam, top, out=np.zeros_like(cam), where=top > 0)",
):
    return _GRAD_CAM.format(gradients=gradients, axes=axes, relu=relu, top=top, result=result)


BUGS += [
    ("ex07.grad_cam", "one_maximum_for_the_batch", _grad_cam(top="cam.max()")),
    (
        "ex07.grad_cam",
        "relu_missing",
        _grad_cam(relu="cam", top="np.abs(cam).max(axis=(1, 2), keepdims=True)"),
    ),
    ("ex07.grad_cam", "gradients_rectified", _grad_cam(gradients="np.maximum(gradients, 0)")),
    ("ex07.grad_cam", "weights_over_wrong_axes", _grad_cam(axes="(0, 1, 2)")),
    ("ex07.grad_cam", "zero_division", _grad_cam(result="cam / top")),
]

BUGS += [
    (
        "ex07.precision_recall",
        "precision_recall_swapped",
        """
        def f(cm):
            tp = np.diag(cm).astype(float)
            rows, cols = cm.sum(axis=1), cm.sum(axis=0)
            recall = np.divide(tp, rows, out=np.zeros_like(tp), where=rows > 0)
            precision = np.divide(tp, cols, out=np.zeros_like(tp), where=cols > 0)
            return recall, precision
        """,
    ),
    (
        "ex07.precision_recall",
        "zero_division",
        "def f(cm):\n    tp = np.diag(cm)\n    return tp / cm.sum(0), tp / cm.sum(1)",
    ),
]


# Exercise 5: the input pipeline (the augmentation bugs are pipelines written as data).
_NORMALIZE = """
def f(x, value_range=(0.0, 1.0)):
    low, high = value_range
    x = np.asarray(x)
    {channel}
    return ({value}){cast}
"""


def _normalize(
    value="low + (high - low) * (x.astype(np.float64) / 255.0)",
    channel="x = x[..., np.newaxis] if x.ndim == 3 else x",
    cast=".astype(np.float32)",
):
    return _NORMALIZE.format(value=value, channel=channel, cast=cast)


_STANDARDIZE = """
def f(x_train, x):
    mean = {mean}
    std = {std}
    return ((x - mean) / {scale}){cast}
"""


def _standardize(
    mean="x_train.mean(axis=(0, 1, 2))",
    std="x_train.std(axis=(0, 1, 2))",
    scale="np.maximum(std, 1e-7)",
    cast=".astype(np.float32)",
):
    return _STANDARDIZE.format(mean=mean, std=std, scale=scale, cast=cast)


_BATCHES = """
def f(x, y, batch_size, seed):
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    images, labels = {images}, {labels}
    batches = [
        (images[start:start + batch_size], labels[start:start + batch_size])
        for start in range(0, {stop}, batch_size)
    ]
    return {result}
"""


def _batches(
    images="(x[order] / 255.0).astype(np.float32)[..., np.newaxis]",
    labels="y[order]",
    stop="len(x)",
    result="batches",
):
    return _BATCHES.format(images=images, labels=labels, stop=stop, result=result)


_SAFE = (
    '("RandomRotation", {"factor": 10 / 360, "fill_mode": "constant"}), '
    '("RandomTranslation", {"height_factor": 0.07, "width_factor": 0.07, '
    '"fill_mode": "constant"})'
)


def _augmentation(*layers: str) -> str:
    return "def f():\n    return [" + ", ".join(layers) + "]"


BUGS += [
    ("ex05.normalize", "no_channel_axis", _normalize(channel="pass")),
    ("ex05.normalize", "channel_axis_twice", _normalize(channel="x = x[..., np.newaxis]")),
    ("ex05.normalize", "not_divided_by_255", _normalize(value="low + (high - low) * x")),
    (
        "ex05.normalize",
        "integer_division",
        _normalize(value="low + (high - low) * (x // 255).astype(np.float64)"),
    ),
    ("ex05.normalize", "range_ignored", _normalize(value="x / 255.0")),
    ("ex05.normalize", "scaled_by_high", _normalize(value="low + high * x / 255.0")),
    ("ex05.normalize", "float64", _normalize(cast="")),
    ("ex05.standardize", "statistics_of_x", _standardize("x.mean((0, 1, 2))", "x.std((0, 1, 2))")),
    (
        "ex05.standardize",
        "one_mean_for_all_channels",
        _standardize("x_train.mean()", "x_train.std()"),
    ),
    (
        "ex05.standardize",
        "per_image_statistics",
        _standardize("x.mean(axis=(1, 2), keepdims=True)", "x.std(axis=(1, 2), keepdims=True)"),
    ),
    ("ex05.standardize", "sample_std", _standardize(std="x_train.std(axis=(0, 1, 2), ddof=1)")),
    ("ex05.standardize", "divided_by_variance", _standardize(std="x_train.var(axis=(0, 1, 2))")),
    ("ex05.standardize", "no_std_floor", _standardize(scale="std")),
    (
        "ex05.standardize",
        "float64",
        _standardize(mean="x_train.mean(axis=(0, 1, 2), dtype=np.float64)", cast=""),
    ),
    (
        "ex05.digit_augmentation",
        "flip",
        _augmentation(_SAFE, '("RandomFlip", {"mode": "horizontal"})'),
    ),
    (
        "ex05.digit_augmentation",
        "rotation_in_degrees",
        _augmentation('("RandomRotation", {"factor": 10, "fill_mode": "constant"})'),
    ),
    (
        "ex05.digit_augmentation",
        "rescaling_in_augmentation",
        _augmentation('("Rescaling", {"scale": 1 / 255})', _SAFE),
    ),
    (
        "ex05.digit_augmentation",
        "value_range_missing",
        _augmentation(_SAFE, '("RandomContrast", {"factor": 0.3})'),
    ),
    (
        "ex05.digit_augmentation",
        "no_geometric_augmentation",
        _augmentation('("RandomContrast", {"factor": 0.2, "value_range": (0, 1)})'),
    ),
    (
        "ex05.make_batches",
        "labels_shuffled_separately",
        _batches(labels="y[rng.permutation(len(y))]"),
    ),
    (
        "ex05.make_batches",
        "not_shuffled",
        _batches(images="(x / 255.0).astype(np.float32)[..., np.newaxis]", labels="y"),
    ),
    (
        "ex05.make_batches",
        "shuffle_after_batch",
        _batches(
            images="(x / 255.0).astype(np.float32)[..., np.newaxis]",
            labels="y",
            result="[batches[i] for i in rng.permutation(len(batches))]",
        ),
    ),
    (
        "ex05.make_batches",
        "not_normalized",
        _batches(images="x[order][..., np.newaxis].astype(np.float32)"),
    ),
    (
        "ex05.make_batches",
        "no_channel_axis",
        _batches(images="(x[order] / 255.0).astype(np.float32)"),
    ),
    ("ex05.make_batches", "last_batch_dropped", _batches(stop="len(x) - batch_size + 1")),
    ("ex05.make_batches", "float64", _batches(images="x[order][..., np.newaxis] / 255.0")),
]

# Exercise 9: inference and serving.
_CHECK_IMAGE = """
def f(image):
    if {shape}:
        return f"wrong shape: {{image.shape}}"
    if {dtype}:
        return f"wrong dtype: {{image.dtype}}"
    if image.dtype.kind in "ui":
        return None if {int_ok} else "values out of range"
    return None if {float_ok} else "values out of range"
"""


def _check_image(
    shape="image.shape not in ((28, 28), (28, 28, 1))",
    dtype='image.dtype.kind not in "uif"',
    int_ok="image.min() >= 0 and image.max() <= 255",
    float_ok="np.isfinite(image).all() and image.min() >= 0 and image.max() <= 1",
):
    return _CHECK_IMAGE.format(shape=shape, dtype=dtype, int_ok=int_ok, float_ok=float_ok)


_PREPROCESS = """
def f(image):
    x = image.reshape({shape}).astype(np.float32)
    if {divide}:
        x = x / {by}
    return x{cast}
"""


def _preprocess(
    shape="1, 28, 28, 1", divide='image.dtype.kind in "ui"', by="np.float32(255)", cast=""
):
    return _PREPROCESS.format(shape=shape, divide=divide, by=by, cast=cast)


_RESPONSE = """
def f(probabilities, class_names):
    i = {index}
    return {{"label": {label}, "class_index": int(i), "confidence": {confidence}}}
"""


def _response(
    index="int(np.argmax(probabilities))",
    label="class_names[i]",
    confidence="float(probabilities[i])",
):
    return _RESPONSE.format(index=index, label=label, confidence=confidence)


BUGS += [
    ("ex09.check_image", "shape_too_loose", _check_image(shape="image.size != 784")),
    ("ex09.check_image", "channel_axis_refused", _check_image(shape="image.shape != (28, 28)")),
    ("ex09.check_image", "bool_accepted", _check_image(dtype="False")),
    (
        "ex09.check_image",
        "only_uint8",
        _check_image(dtype="image.dtype not in (np.uint8, np.float32, np.float64)"),
    ),
    (
        "ex09.check_image",
        "nan_accepted",
        _check_image(float_ok="not (image < 0).any() and not (image > 1).any()"),
    ),
    (
        "ex09.check_image",
        "floats_as_pixels",
        _check_image(float_ok="image.min() >= 0 and image.max() <= 255"),
    ),
    (
        "ex09.check_image",
        "edges_refused",
        _check_image(int_ok="image.min() > 0 and image.max() < 255"),
    ),
    ("ex09.check_image", "int_range_unchecked", _check_image(int_ok="True")),
    (
        "ex09.check_image",
        "wrong_order",
        """
        def f(image):
            if image.dtype.kind == "f" and image.size and not (np.nanmax(image) <= 1):
                return "values out of range"
            if image.shape not in ((28, 28), (28, 28, 1)):
                return "wrong shape"
            if image.dtype.kind not in "uif":
                return "wrong dtype"
            if image.dtype.kind in "ui":
                return None if image.min() >= 0 and image.max() <= 255 else "out of range"
            return None if np.isfinite(image).all() and image.min() >= 0 else "out of range"
        """,
    ),
    ("ex09.preprocess", "not_divided_by_255", _preprocess(divide="False")),
    ("ex09.preprocess", "floats_divided_again", _preprocess(divide="True")),
    ("ex09.preprocess", "no_batch_axis", _preprocess(shape="28, 28, 1")),
    ("ex09.preprocess", "no_channel_axis", _preprocess(shape="1, 28, 28")),
    ("ex09.preprocess", "channels_first", _preprocess(shape="1, 1, 28, 28")),
    ("ex09.preprocess", "float64", _preprocess(by="255.0", cast=".astype(np.float64)")),
    (
        "ex09.preprocess",
        "integer_division",
        """
        def f(image):
            x = image.reshape(1, 28, 28, 1)
            if image.dtype.kind in "ui":
                x = x // 255
            return x.astype(np.float32)
        """,
    ),
    (
        "ex09.to_response",
        "last_of_ties",
        _response(index="max(range(len(probabilities)), key=lambda k: (probabilities[k], k))"),
    ),
    ("ex09.to_response", "argmin", _response(index="int(np.argmin(probabilities))")),
    ("ex09.to_response", "label_is_index", _response(label="i")),
    (
        "ex09.to_response",
        "confidence_percent",
        _response(confidence="100 * float(probabilities[i])"),
    ),
    ("ex09.to_response", "probabilities_returned", _response(confidence="probabilities")),
]


# Keras builder tasks (ex04, ex06, ex08): student code plus the notebook's given describer,
# the toolkit functions of cnncourse.tasks.keras_models (the notebooks hold them verbatim).
_CNN = """
import keras
from cnncourse.tasks.keras_models import describe_model

def f(input_shape, num_classes, filters):
    first, second = {filters}
    return describe_model(keras.Sequential([
        keras.Input(shape=tuple(input_shape)),
        keras.layers.Conv2D(first, {kernel}, padding="{padding}", activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(second, {kernel}, padding="{padding}", activation="relu"),
        keras.layers.MaxPooling2D(2),{flatten}
        {head}
        keras.layers.Dense(num_classes{output}),
    ]))
"""
_HEAD = 'keras.layers.Dense(100, activation="relu"), keras.layers.Dropout(0.5),'


def _cnn(filters="filters", kernel=3, padding="same", flatten=True, head=_HEAD, output="softmax"):
    return _CNN.format(
        filters=filters,
        kernel=kernel,
        padding=padding,
        flatten="\n        keras.layers.Flatten()," if flatten else "",
        head=head,
        output=f', activation="{output}"' if output else "",
    )


_COMPILE = """
import keras

def f(learning_rate):
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer={optimizer}, loss={loss}{metrics})
    return model.get_compile_config()
"""


def _compile(
    optimizer="keras.optimizers.Adam(learning_rate)",
    loss='"sparse_categorical_crossentropy"',
    metrics=', metrics=["accuracy"]',
):
    return _COMPILE.format(optimizer=optimizer, loss=loss, metrics=metrics)


BUGS += [
    ("ex04.build_cnn", "valid_padding", _cnn(padding="valid")),
    ("ex04.build_cnn", "kernel_size", _cnn(kernel=5)),
    ("ex04.build_cnn", "filters_swapped", _cnn(filters="filters[::-1]")),
    ("ex04.build_cnn", "softmax_missing", _cnn(output="")),
    ("ex04.build_cnn", "flatten_missing", _cnn(flatten=False)),
    (
        "ex04.build_cnn",
        "dropout_misplaced",
        _cnn(head='keras.layers.Dropout(0.5), keras.layers.Dense(100, activation="relu"),'),
    ),
    ("ex04.compile_cnn", "learning_rate_ignored", _compile(optimizer='"adam"')),
    ("ex04.compile_cnn", "optimizer_not_adam", _compile(optimizer="keras.optimizers.SGD()")),
    ("ex04.compile_cnn", "categorical_loss", _compile(loss='"categorical_crossentropy"')),
    (
        "ex04.compile_cnn",
        "categorical_loss",
        _compile(loss="keras.losses.CategoricalCrossentropy()"),
    ),
    (
        "ex04.compile_cnn",
        "from_logits",
        _compile(loss="keras.losses.SparseCategoricalCrossentropy(from_logits=True)"),
    ),
    ("ex04.compile_cnn", "metric_missing", _compile(metrics="")),
]

_VGG_BLOCK = """
import keras
from cnncourse.tasks.keras_models import describe_block

def block(x, filters, n_convs):
    for _ in range(n_convs):
        x = keras.layers.Conv2D(filters, 3, padding="{padding}"{activation})(x)
    return {pool}

def f(input_shape, filters, n_convs):
    return describe_block(block, input_shape, filters, n_convs)
"""


def _vgg_block(padding="same", activation="relu", pool="keras.layers.MaxPooling2D(2)(x)"):
    act = f', activation="{activation}"' if activation else ""
    return _VGG_BLOCK.format(padding=padding, activation=act, pool=pool)


_RESIDUAL = """
import keras
from cnncourse.tasks.keras_models import describe_residual

def block(x, filters, stride):
    y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", activation="relu")(x)
    y = keras.layers.Conv2D(filters, 3, padding="same")(y)
    {shortcut}
    return keras.layers.Activation("relu")({out})

def f(input_shape, filters, stride):
    return describe_residual(block, input_shape, filters, stride)
"""
_SHORTCUT = """shortcut = x
    if {condition}:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride)(x)"""

BUGS += [
    ("ex06.vgg_block", "valid_padding", _vgg_block(padding="valid")),
    ("ex06.vgg_block", "relu_missing", _vgg_block(activation="")),
    (
        "ex06.vgg_block",
        "pool_rounds_up",
        _vgg_block(pool='keras.layers.MaxPooling2D(2, padding="same")(x)'),
    ),
    ("ex06.vgg_block", "pool_missing", _vgg_block(pool="x")),
    ("ex06.residual_block", "skip_missing", _RESIDUAL.format(shortcut="", out="y")),
    (
        "ex06.residual_block",
        "projection_always",
        _RESIDUAL.format(
            shortcut=_SHORTCUT.format(condition="True"), out="keras.layers.Add()([y, shortcut])"
        ),
    ),
]

_HYPERMODEL = """
import keras
import keras_tuner
from cnncourse.tasks.keras_models import describe_tuner_model

def build_model(hp):
    filters = hp.Choice("filters", [16, 32, 64])
    dense_units = hp.Int("dense_units", 32, 128, step=32)
    dropout = hp.Float("dropout", 0.0, 0.5, step=0.1)
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="{sampling}")
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(filters, 3, padding="{padding}", activation="relu"),
        keras.layers.MaxPooling2D(2),{flatten}
        keras.layers.Dense(dense_units, activation="relu"),
        keras.layers.Dropout(dropout),
        keras.layers.Dense(10{output}),
    ])
    model.compile(optimizer=keras.optimizers.Adam({lr}), loss="{loss}", metrics=["accuracy"])
    return model

def f(values=None):
    return describe_tuner_model(build_model, values)
"""


def _hypermodel(
    sampling="log",
    padding="valid",
    flatten=True,
    output="softmax",
    lr="learning_rate",
    loss="sparse_categorical_crossentropy",
):
    return _HYPERMODEL.format(
        sampling=sampling,
        padding=padding,
        flatten="\n        keras.layers.Flatten()," if flatten else "",
        output=f', activation="{output}"' if output else "",
        lr=lr,
        loss=loss,
    )


BUGS += [
    ("ex08.build_hypermodel", "learning_rate_ignored", _hypermodel(lr="")),
    ("ex08.build_hypermodel", "same_padding", _hypermodel(padding="same")),
    ("ex08.build_hypermodel", "softmax_missing", _hypermodel(output="")),
    ("ex08.build_hypermodel", "flatten_missing", _hypermodel(flatten=False)),
    ("ex08.build_hypermodel", "categorical_loss", _hypermodel(loss="categorical_crossentropy")),
    ("ex08.build_hypermodel", "linear_sampling", _hypermodel(sampling="linear")),
]


# Exercise 10: the training script, each planted bug left in alone.
_SCRIPT = """
def f(x_train, y_train, x_test, y_test, seed=0):
    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    rng = np.random.default_rng(seed)
    x_train = x_train.reshape(len(x_train), -1).astype(np.float64)
    x_test = x_test.reshape(len(x_test), -1).astype(np.float64)
    {train_on_test}
    mean, std = x_train.mean(), x_train.std()
    x_train = (x_train - mean) / std
    weights = np.zeros((x_train.shape[1], 10))
    bias = np.zeros(10)

    def predict_proba(x):
        return {predict}

    for _epoch in range(10):
        order = rng.permutation(len(x_train))
        x_train, y_train = x_train[order], y_train[{label_order}]
        for start in range(0, len(x_train), 50):
            xb, yb = x_train[start:start + 50], y_train[start:start + 50]
            grad = predict_proba(xb)
            grad[np.arange(len(yb)), yb] -= 1.0
            grad /= len(yb)
            weights -= 0.1 * xb.T @ grad
            bias -= 0.1 * grad.sum(axis=0)

    probabilities = predict_proba({test_input})
    accuracy = {accuracy}
    return probabilities, accuracy
"""


def _script(
    train_on_test="",
    predict="softmax(x @ weights + bias)",
    label_order="order",
    test_input="(x_test - mean) / std",
    accuracy="float(np.mean(probabilities.argmax(axis=1) == y_test))",
):
    return _SCRIPT.format(
        train_on_test=train_on_test,
        predict=predict,
        label_order=label_order,
        test_input=test_input,
        accuracy=accuracy,
    )


BUGS += [
    (
        "ex10.fix_training_script",
        "test_data_in_training",
        _script(
            train_on_test="x_train, y_train = np.concatenate([x_train, x_test]), "
            "np.concatenate([y_train, y_test])"
        ),
    ),
    (
        "ex10.fix_training_script",
        "labels_shuffled_separately",
        _script(label_order="rng.permutation(len(y_train))"),
    ),
    (
        "ex10.fix_training_script",
        "softmax_twice",
        _script(predict="softmax(softmax(x @ weights + bias))"),
    ),
    ("ex10.fix_training_script", "inference_preprocessing", _script(test_input="x_test / 255.0")),
    (
        "ex10.fix_training_script",
        "reported_accuracy",
        _script(accuracy="float(np.mean(probabilities.argmax(axis=0)[:1] == y_test[:1]))"),
    ),
]


# Exercise 11: train_segmenter, each bug one classic mistake of training a segmenter. A
# small two-convolution network (not the notebook's U-Net) keeps each training to a second or
# two; the mistakes are the ones the grader can see on the saved model.
_SEGMENTER = """
import keras
from keras import layers


def f(images, masks, epochs=10, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape={shape})
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    outputs = {head}
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate={lr}), loss={loss})
    {fit}
    return model
"""


def _segmenter(
    shape="(None, None, 1)",
    head='layers.Conv2D(4, 1, activation="softmax")(x)',
    lr="3e-3",
    loss='"sparse_categorical_crossentropy"',
    fit="model.fit(images, masks, epochs=epochs, batch_size=16, verbose=0)",
):
    return _SEGMENTER.format(shape=shape, head=head, lr=lr, loss=loss, fit=fit)


BUGS += [
    (
        "ex11.train_segmenter",
        "dense_head",
        _segmenter(
            shape="(24, 24, 1)",
            head="layers.Dense(24 * 24 * 4)(layers.Dense(64)(layers.Flatten()(x)))\n"
            "    outputs = layers.Softmax()(layers.Reshape((24, 24, 4))(outputs))",
        ),
    ),
    ("ex11.train_segmenter", "fixed_input_shape", _segmenter(shape="(24, 24, 1)")),
    (
        "ex11.train_segmenter",
        "wrong_channels",
        _segmenter(head='layers.Conv2D(5, 1, activation="softmax")(x)'),
    ),
    (
        "ex11.train_segmenter",
        "logits_output",
        _segmenter(
            head="layers.Conv2D(4, 1)(x)",
            loss="keras.losses.SparseCategoricalCrossentropy(from_logits=True)",
        ),
    ),
    (
        "ex11.train_segmenter",
        "sigmoid_output",
        _segmenter(head='layers.Conv2D(4, 1, activation="sigmoid")(x)'),
    ),
    (
        "ex11.train_segmenter",
        "softmax_axis",
        _segmenter(head="layers.Softmax(axis=1)(layers.Conv2D(4, 1)(x))"),
    ),
    ("ex11.train_segmenter", "not_trained", _segmenter(fit="pass")),
    (
        "ex11.train_segmenter",
        "too_few_steps",
        _segmenter(fit="model.fit(images, masks, epochs=1, batch_size=16, verbose=0)"),
    ),
    (
        "ex11.train_segmenter",
        "inputs_rescaled",
        _segmenter(fit="model.fit(images / 255.0, masks, epochs=epochs, batch_size=16, verbose=0)"),
    ),
]


def compile_bug(source: str):
    """The function ``f`` a bug's source defines (namespace: ``np`` only)."""
    namespace: dict = {"np": np}
    exec(compile(textwrap.dedent(source), "<bug>", "exec"), namespace)
    return namespace["f"]


@functools.cache  # the same bug, diagnosed again (by main() after the tests), costs nothing
def diagnose(task_id: str, source: str, key: bytes = bytes(32)) -> frozenset[str]:
    """The mistake ids named on the failing cases (public and hidden) of one bug."""
    from cnncourse.exercise import run_cases
    from cnncourse.grading.secret import task_rng
    from cnncourse.tasks import get_task

    task = get_task(task_id)
    fn = compile_bug(source)
    cases = list(task.public_cases()) + list(task.hidden_cases(task_rng(key, task_id)))
    report = run_cases(task, fn, cases)
    return frozenset(r.mistake for r in report.results if not r.passed and r.mistake)


def main() -> int:
    specific = right = 0
    for task_id, planted, source in BUGS:
        named = diagnose(task_id, source)
        specific += bool(named)
        right += planted in named
        mark = "right" if planted in named else ("other" if named else "none ")
        print(f"{mark}  {task_id:28} {planted:26} -> {', '.join(sorted(named)) or '-'}")
    n = len(BUGS)
    print(
        f"\n{n} planted bugs: {specific / n:.0%} get a specific hint, "
        f"{right / n:.0%} the hint for the mistake planted (goal: 80 %)"
    )
    return 0 if specific / n >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
