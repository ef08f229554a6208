"""Reference NumPy implementations of the operations inside a CNN.

Every operation the book explains -- convolution, pooling, activations, their gradients --
is written here twice when it matters:

- a *naive* version (``conv2d_naive``, ``max_pool2d_naive``) with explicit Python loops that
  reads like the formula on the page, and
- a *vectorized* version (``conv2d``, ``max_pool2d``, ...) with the same signature, built
  from strided window views and one matrix product, fast enough to run real batches.

The two versions test each other, and both are tested against TensorFlow and SciPy
(``tests/test_ops.py``). All arrays use the NHWC layout of Keras: ``(batch, height,
width, channels)``; convolution kernels are ``(kh, kw, in_channels, filters)`` like
``tf.nn.conv2d``. Like TensorFlow (and unlike the textbook definition), "convolution"
means cross-correlation: the kernel is not flipped.

Dtype rule (all functions): the result dtype is ``np.result_type`` of the inputs when that
is a floating type, so float32 inputs give float32 results and mixing in float64 gives
float64; integer or boolean inputs are computed in float64.

Bad input raises ``ValueError`` with a message that names the offending argument and says
what was expected.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = [
    "GradCheckResult",
    "avg_pool2d",
    "conv2d",
    "conv2d_backward",
    "conv2d_naive",
    "conv_output_size",
    "conv_param_count",
    "dense_param_count",
    "global_average_pool",
    "grad_check",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_naive",
    "relu",
    "same_padding",
    "sigmoid",
    "softmax",
    "softmax_naive",
    "zero_pad",
]

#: Padding per spatial axis: ``((top, bottom), (left, right))``.
Pads = tuple[tuple[int, int], tuple[int, int]]
#: What the ``padding`` arguments accept: a mode string, an int, ``(ph, pw)`` or ``Pads``.
Padding = str | int | tuple[int, int] | Pads

# The vectorized convolution builds its im2col matrix in slices of about this many bytes,
# so that each slice is still in cache when the matrix product reads it (see ``conv2d``).
_CHUNK_BYTES = 4 * 2**20
# Up to this many input channels the im2col matrix is laid out kernel-major (see ``conv2d``).
_KERNEL_MAJOR_MAX_CHANNELS = 3


# --------------------------------------------------------------------------------------
# Shared validation helpers (used by the naive and the vectorized versions alike)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Geometry:
    """Validated sizes of a sliding-window operation (convolution or pooling)."""

    kernel: tuple[int, int]
    strides: tuple[int, int]
    pads: Pads
    out_hw: tuple[int, int]


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _positive_int(value: Any, name: str) -> int:
    if not _is_int(value) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _non_negative_int(value: Any, name: str) -> int:
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _pair(value: Any, name: str) -> tuple[int, int]:
    """Read an ``int`` or an ``(h, w)`` pair of positive ints (strides, pool sizes)."""
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w), got {value!r}")
        return _positive_int(value[0], name), _positive_int(value[1], name)
    size = _positive_int(value, name)
    return size, size


def _explicit_pads(pad: Any, name: str) -> Pads:
    """Read ``p``, ``(ph, pw)`` or ``((top, bottom), (left, right))`` of non-negative ints."""
    expected = f"{name} must be an int, (ph, pw) or ((top, bottom), (left, right))"
    if _is_int(pad):
        p = _non_negative_int(pad, name)
        return (p, p), (p, p)
    if not isinstance(pad, tuple | list) or len(pad) != 2:
        raise ValueError(f"{expected}, got {pad!r}")
    if all(_is_int(p) for p in pad):
        ph, pw = (_non_negative_int(p, name) for p in pad)
        return (ph, ph), (pw, pw)
    if all(isinstance(p, tuple | list) and len(p) == 2 for p in pad):
        (top, bottom), (left, right) = ((_non_negative_int(v, name) for v in p) for p in pad)
        return (top, bottom), (left, right)
    raise ValueError(f"{expected}, got {pad!r}")


def _resolve_padding(
    padding: Any, size: tuple[int, int], kernel: tuple[int, int], strides: tuple[int, int]
) -> Pads:
    """Turn a ``padding`` argument into explicit ``((top, bottom), (left, right))`` pads."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return (0, 0), (0, 0)
        if mode == "same":
            return (
                same_padding(size[0], kernel[0], strides[0]),
                same_padding(size[1], kernel[1], strides[1]),
            )
        raise ValueError(
            "padding must be 'valid', 'same', an int or ((top, bottom), (left, right)), "
            f"got {padding!r}"
        )
    return _explicit_pads(padding, "padding")


def _output_hw(
    size: tuple[int, int],
    kernel: tuple[int, int],
    strides: tuple[int, int],
    pads: Pads,
    kernel_name: str,
) -> tuple[int, int]:
    padded = (size[0] + sum(pads[0]), size[1] + sum(pads[1]))
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        raise ValueError(
            f"{kernel_name} {kernel} is larger than the padded input {padded} "
            "(height, width); use a smaller kernel or more padding"
        )
    return (padded[0] - kernel[0]) // strides[0] + 1, (padded[1] - kernel[1]) // strides[1] + 1


def _as_4d(x: Any, name: str = "x") -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 4:
        raise ValueError(f"{name} must be 4-D (N, H, W, C), got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def _float_dtype(*arrays: Any) -> np.dtype:
    """The dtype rule of this module: promote, and use float64 unless that is floating."""
    dtype = np.result_type(*(a for a in arrays if a is not None))
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)


def _as_float_array(x: Any) -> np.ndarray:
    arr = np.asarray(x)
    return arr.astype(_float_dtype(arr), copy=False)


def _check_dout(dout: Any, expected: tuple[int, ...]) -> np.ndarray:
    dout = np.asarray(dout)
    if dout.shape != expected:
        raise ValueError(f"dout must have the output shape {expected}, got {dout.shape}")
    return dout


def _conv_setup(
    x: Any, w: Any, b: Any, stride: Any, padding: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, _Geometry, np.dtype]:
    """Validate the arguments shared by all convolution functions."""
    x = _as_4d(x, "x")
    w = np.asarray(w)
    if w.ndim != 4:
        raise ValueError(f"w must be 4-D (kh, kw, C, F), got shape {w.shape}")
    if w.dtype.kind not in "biuf":
        raise ValueError(f"w must hold real numbers, got dtype {w.dtype}")
    kh, kw, c_in, filters = w.shape
    if min(kh, kw, filters) == 0:
        raise ValueError(f"w must have a non-empty kernel and at least one filter, got {w.shape}")
    if c_in != x.shape[3]:
        raise ValueError(
            f"w has {c_in} input channels (w.shape[2]) but x has {x.shape[3]} (x.shape[3]); "
            "they must match"
        )
    if b is not None:
        b = np.asarray(b)
        if b.shape != (filters,):
            raise ValueError(f"b must have shape ({filters},), one bias per filter, got {b.shape}")
    strides = _pair(stride, "stride")
    pads = _resolve_padding(padding, (x.shape[1], x.shape[2]), (kh, kw), strides)
    out_hw = _output_hw((x.shape[1], x.shape[2]), (kh, kw), strides, pads, "w kernel (kh, kw)")
    return x, w, b, _Geometry((kh, kw), strides, pads, out_hw), _float_dtype(x, w, b)


def _pool_setup(x: Any, pool_size: Any, stride: Any, padding: Any) -> tuple[np.ndarray, _Geometry]:
    """Validate the arguments shared by all pooling functions."""
    x = _as_4d(x, "x")
    kernel = _pair(pool_size, "pool_size")
    strides = kernel if stride is None else _pair(stride, "stride")
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same' for pooling, got {padding!r}")
    pads = _resolve_padding(padding, (x.shape[1], x.shape[2]), kernel, strides)
    out_hw = _output_hw((x.shape[1], x.shape[2]), kernel, strides, pads, "pool_size")
    return x, _Geometry(kernel, strides, pads, out_hw)


def _pad(x: np.ndarray, pads: Pads, value: float = 0.0) -> np.ndarray:
    """Pad the two spatial axes of an NHWC array with ``value`` (no copy if nothing to pad)."""
    if pads == ((0, 0), (0, 0)):
        return x
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=value)


def _windows(xp: np.ndarray, geo: _Geometry) -> np.ndarray:
    """Read-only view ``(N, Ho, Wo, kh, kw, C)`` of all windows of a padded input.

    ``view[n, i, j]`` is the ``(kh, kw, C)`` patch that output pixel ``(i, j)`` sees.
    No data is copied: the view reuses ``xp``'s memory with different strides.
    """
    (kh, kw), (sh, sw), (ho, wo) = geo.kernel, geo.strides, geo.out_hw
    view = sliding_window_view(xp, (kh, kw), axis=(1, 2))  # (N, Hp-kh+1, Wp-kw+1, C, kh, kw)
    return view[:, : (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw].transpose(0, 1, 2, 4, 5, 3)


# --------------------------------------------------------------------------------------
# Sizes and padding
# --------------------------------------------------------------------------------------


def zero_pad(x: Any, pad: int | tuple[int, int] | Pads) -> np.ndarray:
    """Surround the images of a batch with zeros.

    Padding lets a convolution keep the spatial size of its input and lets the kernel
    centre on border pixels.

    Parameters
    ----------
    x : array_like of shape (N, H, W, C)
        Batch of images.
    pad : int or (ph, pw) or ((top, bottom), (left, right))
        Number of zero rows/columns added on each side, as in
        ``keras.layers.ZeroPadding2D``. Must be non-negative.

    Returns
    -------
    ndarray of shape (N, H + top + bottom, W + left + right, C)
        A new array with the same dtype as ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from cnncourse.ops import zero_pad
    >>> zero_pad(np.ones((1, 2, 2, 1)), 1)[0, :, :, 0]
    array([[0., 0., 0., 0.],
           [0., 1., 1., 0.],
           [0., 1., 1., 0.],
           [0., 0., 0., 0.]])
    >>> zero_pad(np.ones((1, 2, 2, 1)), ((0, 1), (2, 0))).shape
    (1, 3, 4, 1)
    """
    x = _as_4d(x, "x")
    pads = _explicit_pads(pad, "pad")
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))


def conv_output_size(n: int, k: int, stride: int = 1, padding: str | int = "valid") -> int:
    """Length of a convolution or pooling output along one spatial axis.

    The formula ``floor((n + 2p - k) / s) + 1`` counts how many positions a window of
    length ``k`` can take, moving by ``s``, on an input of length ``n`` padded by ``p``
    on both sides.

    Parameters
    ----------
    n : int
        Input length (height or width).
    k : int
        Kernel (or pooling window) length.
    stride : int, default=1
        Step between windows.
    padding : {"valid", "same"} or int, default="valid"
        ``"valid"`` means ``p = 0``; an int is the padding ``p`` on each side; ``"same"``
        pads just enough (see :func:`same_padding`) for the output to have
        ``ceil(n / stride)`` positions whatever ``k`` is.

    Returns
    -------
    int

    Examples
    --------
    >>> from cnncourse.ops import conv_output_size
    >>> conv_output_size(5, 3)
    3
    >>> conv_output_size(28, 3, padding=1)
    28
    >>> conv_output_size(7, 3, stride=2, padding="same")
    4
    """
    n = _positive_int(n, "n")
    k = _positive_int(k, "k")
    s = _positive_int(stride, "stride")
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "same":
            return -(-n // s)
        if mode != "valid":
            raise ValueError(f"padding must be 'valid', 'same' or an int, got {padding!r}")
        p = 0
    else:
        p = _non_negative_int(padding, "padding")
    if k > n + 2 * p:
        raise ValueError(
            f"k={k} is larger than the padded input length n + 2*padding = {n + 2 * p}"
        )
    return (n + 2 * p - k) // s + 1


def same_padding(n: int, k: int, stride: int = 1) -> tuple[int, int]:
    """Padding ``(before, after)`` that TensorFlow and Keras use for ``padding="same"``.

    TensorFlow pads the least needed for ``ceil(n / stride)`` outputs:
    ``total = max((ceil(n / stride) - 1) * stride + k - n, 0)``, split as
    ``before = total // 2`` and ``after = total - before``. When ``total`` is odd the
    extra row/column goes at the bottom/right, which matters for even kernels and for
    strides that do not divide ``n``.

    Parameters
    ----------
    n : int
        Input length along the axis.
    k : int
        Kernel length along the axis.
    stride : int, default=1
        Stride along the axis.

    Returns
    -------
    tuple of int
        ``(before, after)`` -- top/bottom for the height axis, left/right for the width.

    Examples
    --------
    >>> from cnncourse.ops import same_padding
    >>> same_padding(5, 3, 1)
    (1, 1)
    >>> same_padding(4, 2, 1)
    (0, 1)
    >>> same_padding(6, 3, 2)
    (0, 1)
    """
    n = _positive_int(n, "n")
    k = _positive_int(k, "k")
    s = _positive_int(stride, "stride")
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def conv_param_count(kh: int, kw: int, c_in: int, filters: int, use_bias: bool = True) -> int:
    """Number of trainable parameters of a 2-D convolution layer.

    Each of the ``filters`` kernels has ``kh * kw * c_in`` weights (it spans all input
    channels) plus one bias; the count does not depend on the image size, which is why
    convolutions need far fewer parameters than dense layers.

    Parameters
    ----------
    kh, kw : int
        Kernel height and width.
    c_in : int
        Number of input channels.
    filters : int
        Number of filters (output channels).
    use_bias : bool, default=True
        Whether each filter has a bias.

    Returns
    -------
    int
        ``(kh * kw * c_in + use_bias) * filters``, like ``keras.layers.Conv2D.count_params()``.

    Examples
    --------
    >>> from cnncourse.ops import conv_param_count
    >>> conv_param_count(3, 3, 1, 32)
    320
    >>> conv_param_count(3, 3, 32, 64, use_bias=False)
    18432
    """
    kh, kw = _positive_int(kh, "kh"), _positive_int(kw, "kw")
    c_in, filters = _positive_int(c_in, "c_in"), _positive_int(filters, "filters")
    return (kh * kw * c_in + int(bool(use_bias))) * filters


def dense_param_count(n_in: int, units: int, use_bias: bool = True) -> int:
    """Number of trainable parameters of a fully connected (dense) layer.

    Every one of the ``units`` outputs has a weight for every input plus one bias.

    Parameters
    ----------
    n_in : int
        Number of inputs (for an image: ``H * W * C`` after flattening).
    units : int
        Number of outputs.
    use_bias : bool, default=True
        Whether each unit has a bias.

    Returns
    -------
    int
        ``(n_in + use_bias) * units``, like ``keras.layers.Dense.count_params()``.

    Examples
    --------
    >>> from cnncourse.ops import dense_param_count
    >>> dense_param_count(28 * 28, 128)
    100480
    """
    n_in, units = _positive_int(n_in, "n_in"), _positive_int(units, "units")
    return (n_in + int(bool(use_bias))) * units


# --------------------------------------------------------------------------------------
# Convolution
# --------------------------------------------------------------------------------------


def conv2d_naive(
    x: Any,
    w: Any,
    b: Any = None,
    stride: int | tuple[int, int] = 1,
    padding: Padding = "valid",
) -> np.ndarray:
    """2-D convolution (cross-correlation) with explicit loops -- the readable reference.

    Output pixel ``(i, j)`` of filter ``f`` is the sum of the elementwise product of the
    kernel ``w[:, :, :, f]`` with the input window under it, plus ``b[f]``. This version
    spells that out with four loops; it is slow (Python runs every multiply-add loop
    iteration) and exists to be read and to test :func:`conv2d`, which computes the same.

    Parameters
    ----------
    x : array_like of shape (N, H, W, C)
        Batch of input images (NHWC, like Keras).
    w : array_like of shape (kh, kw, C, F)
        ``F`` kernels, each spanning all ``C`` input channels (the layout of
        ``tf.nn.conv2d``).
    b : array_like of shape (F,), optional
        One bias per filter; ``None`` means no bias.
    stride : int or (sh, sw), default=1
        Step of the window; must be positive.
    padding : {"valid", "same"}, int, (ph, pw) or ((top, bottom), (left, right)), \
default="valid"
        ``"valid"``: no padding. ``"same"``: TensorFlow's rule (:func:`same_padding`), giving
        ``ceil(H / sh) x ceil(W / sw)`` outputs. Ints pad with zeros explicitly.

    Returns
    -------
    ndarray of shape (N, Ho, Wo, F)
        ``Ho = conv_output_size(H, kh, sh, ...)``, same for ``Wo``. The dtype follows the
        module rule: ``np.result_type(x, w, b)``, float64 for integer inputs.

    See Also
    --------
    conv2d : Vectorized version with the same signature and result.

    Examples
    --------
    >>> import numpy as np
    >>> from cnncourse.ops import conv2d_naive
    >>> image = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]]).reshape(1, 3, 3, 1)
    >>> kernel = np.array([[1, 0], [0, -1]]).reshape(2, 2, 1, 1)
    >>> conv2d_naive(image, kernel)[0, :, :, 0]
    array([[-4., -4.],
           [-4., -4.]])
    """
    x, w, b, geo, dtype = _conv_setup(x, w, b, stride, padding)
    (kh, kw), (sh, sw), (ho, wo) = geo.kernel, geo.strides, geo.out_hw
    xp = _pad(x.astype(dtype), geo.pads)
    w = w.astype(dtype)
    n_images, n_filters = x.shape[0], w.shape[3]
    out = np.zeros((n_images, ho, wo, n_filters), dtype=dtype)
    for n in range(n_images):
        for i in range(ho):
            for j in range(wo):
                top, left = i * sh, j * sw
                window = xp[n, top : top + kh, left : left + kw, :]  # (kh, kw, C)
                for f in range(n_filters):
                    out[n, i, j, f] = np.sum(window * w[:, :, :, f])
    if b is not None:
        out += b
    return out


def _im2col_matmul(windows: np.ndarray, w2: np.ndarray, out: np.ndarray) -> None:
    """Write ``windows`` (N, Ho, Wo, kh, kw, C) @ ``w2`` (kh*kw*C, F) into ``out``.

    The im2col matrix (one row per output pixel, one column per kernel weight) is built
    in slices of about ``_CHUNK_BYTES``: a whole batch's matrix can be far bigger than
    the CPU caches, and multiplying each slice right after copying it, while it is still
    in cache, is faster than one huge copy followed by one huge product (about 1.3x on
    the largest shape of ``bench/conv_bench.py``: the copy then costs almost nothing).
    """
    n, ho, wo, kh, kw, c = windows.shape
    k, f = w2.shape
    rows_per_chunk = max(1, _CHUNK_BYTES // (k * windows.itemsize))
    if ho * wo <= rows_per_chunk:  # slices of whole images
        step = min(n, rows_per_chunk // (ho * wo))
        blocks = [(slice(s, s + step), slice(0, ho)) for s in range(0, n, step)]
        max_rows = step * ho * wo
    else:  # slices of output rows of one image
        step = max(1, rows_per_chunk // wo)
        blocks = [
            (slice(m, m + 1), slice(s, s + step)) for m in range(n) for s in range(0, ho, step)
        ]
        max_rows = step * wo

    # With few channels, a row of the channels-last matrix is made of kh*kw tiny pieces
    # of C numbers each, which copy slowly. Kernel-major layout (one row per kernel
    # weight, one column per output pixel) copies whole image rows instead; BLAS reads it
    # transposed at no cost.
    kernel_major = c <= _KERNEL_MAJOR_MAX_CHANNELS
    buffer = np.empty(max_rows * k, dtype=windows.dtype)
    for images, rows in blocks:
        patch = windows[images, rows]  # (n', h', Wo, kh, kw, C), still a view
        m = patch.shape[0] * patch.shape[1] * wo
        target = out[images, rows].reshape(m, f)  # contiguous slice of out: a view
        if kernel_major:
            cols = buffer[: m * k].reshape(kh, kw, c, patch.shape[0], patch.shape[1], wo)
            np.copyto(cols, patch.transpose(3, 4, 5, 0, 1, 2))
            np.matmul(cols.reshape(k, m).T, w2, out=target)
        else:
            cols = buffer[: m * k].reshape(patch.shape)
            np.copyto(cols, patch)
            np.matmul(cols.reshape(m, k), w2, out=target)


def conv2d(
    x: Any,
    w: Any,
    b: Any = None,
    stride: int | tuple[int, int] = 1,
    padding: Padding = "valid",
) -> np.ndarray:
    """2-D convolution (cross-correlation), vectorized: im2col + one matrix product.

    Computes exactly what :func:`conv2d_naive` computes, and what ``tf.nn.conv2d`` computes
    for NHWC inputs, but fast: a strided *view* exposes every input window without copying
    (``sliding_window_view``), the windows are copied once into a matrix with one row per
    output pixel and ``kh * kw * C`` columns ("im2col"), and one BLAS matrix product with
    the ``(kh * kw * C, F)`` reshaped kernels gives all outputs (computed slice by slice,
    see Notes). This is how most deep-learning libraries ran convolutions on CPUs for years.

    Parameters
    ----------
    x : array_like of shape (N, H, W, C)
        Batch of input images (NHWC, like Keras).
    w : array_like of shape (kh, kw, C, F)
        ``F`` kernels, each spanning all ``C`` input channels.
    b : array_like of shape (F,), optional
        One bias per filter; ``None`` means no bias.
    stride : int or (sh, sw), default=1
        Step of the window; must be positive.
    padding : {"valid", "same"}, int, (ph, pw) or ((top, bottom), (left, right)), \
default="valid"
        ``"valid"``: no padding. ``"same"``: TensorFlow's rule (:func:`same_padding`), giving
        ``ceil(H / sh) x ceil(W / sw)`` outputs. Ints pad with zeros explicitly.

    Returns
    -------
    ndarray of shape (N, Ho, Wo, F)
        The dtype is ``np.result_type(x, w, b)`` (float64 for integer inputs): float32
        inputs stay float32, which is about twice as fast as float64.

    See Also
    --------
    conv2d_naive : The loop version; same signature, same result.
    conv2d_backward : Gradients of this function.

    Notes
    -----
    The im2col matrix is built in cache-sized slices, each multiplied right away, and for
    inputs with at most 3 channels it is stored kernel-major; both choices only change
    speed, not results (``bench/conv_bench.py`` measures them against ``tf.nn.conv2d``).

    Examples
    --------
    >>> import numpy as np
    >>> from cnncourse.ops import conv2d
    >>> x = np.arange(25.0).reshape(1, 5, 5, 1)
    >>> w = np.ones((3, 3, 1, 2))
    >>> conv2d(x, w).shape
    (1, 3, 3, 2)
    >>> conv2d(x, w, padding="same", stride=2).shape
    (1, 3, 3, 2)
    >>> conv2d(x, w)[0, 0, 0]
    array([54., 54.])
    """
    x, w, b, geo, dtype = _conv_setup(x, w, b, stride, padding)
    xp = _pad(x.astype(dtype, copy=False), geo.pads)
    windows = _windows(xp, geo)
    n_filters = w.shape[3]
    w2 = w.astype(dtype, copy=False).reshape(-1, n_filters)
    out = np.empty((x.shape[0], *geo.out_hw, n_filters), dtype=dtype)
    _im2col_matmul(windows, w2, out)
    if b is not None:
        out += b
    return out


def conv2d_backward(
    dout: Any,
    x: Any,
    w: Any,
    b: Any = None,
    stride: int | tuple[int, int] = 1,
    padding: Padding = "valid",
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Gradients of :func:`conv2d` with respect to its input, kernels and bias.

    Given ``dout = dL/d(out)`` for ``out = conv2d(x, w, b, stride, padding)``, backprop
    through the im2col formulation ``out = cols @ w2 + b``:

    - ``dw = cols.T @ dout`` -- each weight collects input values times the output
      gradients of every position it touched;
    - ``db = dout`` summed over batch and positions;
    - ``dx``: ``dcols = dout @ w2.T`` scattered back ("col2im") onto the input pixels
      each window came from, summing where windows overlap, then un-padded.

    Parameters
    ----------
    dout : array_like of shape (N, Ho, Wo, F)
        Upstream gradient, shaped like the forward output.
    x, w, b, stride, padding
        The arguments of the forward call; see :func:`conv2d`.

    Returns
    -------
    dx : ndarray of shape (N, H, W, C)
    dw : ndarray of shape (kh, kw, C, F)
    db : ndarray of shape (F,) or None
        ``None`` when ``b`` is ``None`` (there is no bias to differentiate).

    Examples
    --------
    >>> import numpy as np
    >>> from cnncourse.ops import conv2d_backward
    >>> x = np.ones((1, 3, 3, 1))
    >>> w = np.ones((2, 2, 1, 1))
    >>> dx, dw, db = conv2d_backward(np.ones((1, 2, 2, 1)), x, w, b=np.zeros(1))
    >>> dx[0, :, :, 0]  # how many windows cover each pixel
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    >>> dw[:, :, 0, 0], db
    (array([[4., 4.],
           [4., 4.]]), array([4.]))
    """
    x, w, b, geo, dtype = _conv_setup(x, w, b, stride, padding)
    (kh, kw), (sh, sw), (ho, wo) = geo.kernel, geo.strides, geo.out_hw
    n_images, height, width, c_in = x.shape
    n_filters = w.shape[3]
    dout = _check_dout(dout, (n_images, ho, wo, n_filters))
    dtype = _float_dtype(dtype, dout)

    xp = _pad(x.astype(dtype, copy=False), geo.pads)
    cols = _windows(xp, geo).reshape(-1, kh * kw * c_in)  # im2col (a copy)
    d2 = dout.astype(dtype, copy=False).reshape(-1, n_filters)
    w2 = w.astype(dtype, copy=False).reshape(-1, n_filters)

    dw = (cols.T @ d2).reshape(w.shape)
    db = d2.sum(axis=0) if b is not None else None

    dcols = (d2 @ w2.T).reshape(n_images, ho, wo, kh, kw, c_in)
    dxp = np.zeros(xp.shape, dtype=dtype)
    for i in range(kh):  # col2im: kernel offset (i, j) touched xp[:, i::sh, j::sw]
        for j in range(kw):
            dxp[:, i : i + (ho - 1) * sh + 1 : sh, j : j + (wo - 1) * sw + 1 : sw] += dcols[
                :, :, :, i, j
            ]
    top, left = geo.pads[0][0], geo.pads[1][0]
    dx = np.ascontiguousarray(dxp[:, top : top + height, left : left + width])
    return dx, dw, db


# --------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------


def max_pool2d_naive(
    x: Any,
    pool_size: int | tuple[int, int] = 2,
    stride: int | tuple[int, int] | None = None,
    padding: str = "valid",
) -> np.ndarray:
    """Max pooling with explicit loops -- the readable reference for :func:`max_pool2d`.

    Each output value is the largest input value in its window, channel by channel.

    Parameters
    ----------
    x, pool_size, stride, padding
        See :func:`max_pool2d`.

    Returns
    -------
    ndarray of shape (N, Ho, Wo, C)

    Examples
    --------
    >>> import numpy as np
    >>> from cnncourse.ops import max_pool2d_naive
    >>> x = np.arange(1, 17).reshape(1, 4, 4, 1)
    >>> max_pool2d_naive(x)[0, :, :, 0]
    array([[ 6.,  8.],
           [14., 16.]])
    """
    x, geo = _pool_setup(x, pool_size, stride, padding)
    (kh, kw), (sh, sw), (ho, wo) = geo.kernel, geo.strides, geo.out_hw
    xp = _pad(x.astype(_float_dtype(x)), geo.pads, value=-np.inf)
    n_images, channels = x.shape[0], x.shape[3]
    out = np.empty((n_images, ho, wo, channels), dtype=xp.dtype)
    for n in range(n_images):
        for i in range(ho):
            for j in range(wo):
                for c in range(channels):
                    window = xp[n, i * sh : i * sh + kh, j * sw : j * sw + kw, c]
                    out[n, i, j, c] = window.max()
    return out


def max_pool2d(
    x: Any,
    pool_size: int | tuple[int, int] = 2,
    stride: int | tuple[int, int] | None = None,
    padding: str = "valid",
) -> np.ndarray:
    """Max pooling over spatial windows, vectorized; like ``tf.nn.max_pool2d``.

    Keeps the strongest response of each window: the output is smaller and does not
    change when a feature moves by less than a window.

    Parameters
    ----------
    x : array_like of shape (N, H, W, C)
        Batch of feature maps.
    pool_size : int or (ph, pw), default=2
        Window size.
    stride : int or (sh, sw), optional
        Step between windows; ``None`` means ``pool_size`` (non-overlapping windows).
    padding : {"valid", "same"}, default="valid"
        ``"same"`` pads by TensorFlow's rule (:func:`same_padding`); padded positions count
        as ``-inf``, so they never win the max.

    Returns
    -------
    ndarray of shape (N, Ho, Wo, C)
        Same dtype as ``x`` if floating, else float64.

    See Also
    --------
    max_pool2d_naive : Loop version.
    max_pool2d_backward : Gradient.

    Examples
    --------
    >>> import numpy as np
    >>> from cnncourse.ops import max_pool2d
    >>> x = np.arange(1, 17).reshape(1, 4, 4, 1)
    >>> max_pool2d(x)[0, :, :, 0]
    array([[ 6.,  8.],
           [14., 16.]])
    >>> max_pool2d(np.ones((1, 5, 5, 3)), 2, padding="same").shape
    (1, 3, 3, 3)
    """
    x, geo = _pool_setup(x, pool_size, stride, padding)
    xp = _pad(x.astype(_float_dtype(x), copy=False), geo.pads, value=-np.inf)
    return _windows(xp, geo).max(axis=(3, 4))


def _valid_counts(n: int, k: int, s: int, before: int, n_out: int) -> np.ndarray:
    """How many real (non-padded) positions each of the ``n_out`` windows covers."""
    start = np.arange(n_out) * s - before
    return np.minimum(start + k, n) - np.maximum(start, 0)


def avg_pool2d(
    x: Any,
    pool_size: int | tuple[int, int] = 2,
    stride: int | tuple[int, int] | None = None,
    padding: str = "valid",
) -> np.ndarray:
    """Average pooling over spatial windows, vectorized; like ``tf.nn.avg_pool2d``.

    Parameters
    ----------
    x : array_like of shape (N, H, W, C)
        Batch of feature maps.
    pool_size : int or (ph, pw), default=2
        Window size.
    stride : int or (sh, sw), optional
        Step between windows; ``None`` means ``pool_size``.
    padding : {"valid", "same"}, default="valid"
        ``"same"`` pads by TensorFlow's rule, and -- like TensorFlow -- each average is
        taken over the real (non-padded) values of its window only, so border outputs are
        not pulled towards zero.

    Returns
    -------
    ndarray of shape (N, Ho, Wo, C)
        Same dtype as ``x`` if floating, else float64.

    Examples
    --------
    >>> import numpy as np
    >>> from cnncourse.ops import avg_pool2d
    >>> x = np.arange(1, 17).reshape(1, 4, 4, 1)
    >>> avg_pool2d(x)[0, :, :, 0]
    array([[ 3.5,  5.5],
           [11.5, 13.5]])
    >>> avg_pool2d(np.ones((1, 3, 3, 1)), 2, padding="same")[0, :, :, 0]
    array([[1., 1.],
           [1., 1.]])
    """
    x, geo = _pool_setup(x, pool_size, stride, padding)
    (kh, kw), (sh, sw), (ho, wo) = geo.kernel, geo.strides, geo.out_hw
    dtype = _float_dtype(x)
    xp = _pad(x.astype(dtype, copy=False), geo.pads)
    sums = _windows(xp, geo).sum(axis=(3, 4))
    rows = _valid_counts(x.shape[1], kh, sh, geo.pads[0][0], ho)
    cols = _valid_counts(x.shape[2], kw, sw, geo.pads[1][0], wo)
    counts = (rows[:, None] * cols[None, :]).astype(dtype)
    return sums / counts[None, :, :, None]


def max_pool2d_backward(
    dout: Any,
    x: Any,
    pool_size: int | tuple[int, int] = 2,
    stride: int | tuple[int, int] | None = None,
    padding: str = "valid",
) -> np.ndarray:
    """Gradient of :func:`max_pool2d` with respect to its input.

    Only the winner of each window influenced the output, so each ``dout`` value is
    routed to the position of its window's maximum; every other input gets zero. Where
    windows overlap (stride smaller than the pool) a position can win several windows
    and receives the sum.

    Ties: when several values share the maximum, the gradient goes to the first of them
    in row-major order within the window (top row first, then left to right) -- the same
    choice as TensorFlow's ``MaxPoolGrad``. (Mathematically the max is not differentiable
    there; any choice is a valid subgradient.)

    Parameters
    ----------
    dout : array_like of shape (N, Ho, Wo, C)
        Upstream gradient, shaped like the forward output.
    x, pool_size, stride, padding
        The arguments of the forward call; see :func:`max_pool2d`.

    Returns
    -------
    dx : ndarray of shape (N, H, W, C)

    Examples
    --------
    >>> import numpy as np
    >>> from cnncourse.ops import max_pool2d_backward
    >>> x = np.array([[1.0, 3.0], [2.0, 0.0]]).reshape(1, 2, 2, 1)
    >>> max_pool2d_backward(np.ones((1, 1, 1, 1)), x)[0, :, :, 0]
    array([[0., 1.],
           [0., 0.]])
    """
    x, geo = _pool_setup(x, pool_size, stride, padding)
    kw, (sh, sw), (ho, wo) = geo.kernel[1], geo.strides, geo.out_hw
    n_images, height, width, channels = x.shape
    dout = _check_dout(dout, (n_images, ho, wo, channels))
    dtype = _float_dtype(x, dout)
    xp = _pad(x.astype(dtype, copy=False), geo.pads, value=-np.inf)

    # Position of the (first) maximum inside each window, as offsets (di, dj).
    flat = _windows(xp, geo).transpose(0, 1, 2, 5, 3, 4).reshape(n_images, ho, wo, channels, -1)
    di, dj = np.divmod(flat.argmax(axis=-1), kw)
    # Absolute coordinates in the padded input, broadcast to (N, Ho, Wo, C).
    rows = np.arange(ho)[None, :, None, None] * sh + di
    cols = np.arange(wo)[None, None, :, None] * sw + dj
    images = np.arange(n_images)[:, None, None, None]
    chans = np.arange(channels)[None, None, None, :]

    dxp = np.zeros(xp.shape, dtype=dtype)
    np.add.at(dxp, (images, rows, cols, chans), dout)  # add.at sums repeated winners
    top, left = geo.pads[0][0], geo.pads[1][0]
    return np.ascontiguousarray(dxp[:, top : top + height, left : left + width])


def global_average_pool(x: Any) -> np.ndarray:
    """Average each feature map over all its positions: ``(N, H, W, C) -> (N, C)``.

    Used instead of flattening before the classifier: it has no parameters and works for
    any input size (``keras.layers.GlobalAveragePooling2D``).

    Parameters
    ----------
    x : array_like of shape (N, H, W, C)

    Returns
    -------
    ndarray of shape (N, C)
        Same dtype as ``x`` if floating, else float64.

    Examples
    --------
    >>> import numpy as np
    >>> from cnncourse.ops import global_average_pool
    >>> x = np.arange(8.0).reshape(1, 2, 2, 2)
    >>> global_average_pool(x)
    array([[3., 4.]])
    """
    x = _as_4d(x, "x")
    return x.mean(axis=(1, 2), dtype=_float_dtype(x))


# --------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------


def relu(x: Any) -> np.ndarray:
    """Rectified linear unit ``max(x, 0)``, elementwise.

    Parameters
    ----------
    x : array_like

    Returns
    -------
    ndarray
        Same shape and dtype as ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from cnncourse.ops import relu
    >>> relu(np.array([-2.0, 0.0, 3.0]))
    array([0., 0., 3.])
    """
    x = np.asarray(x)
    return np.maximum(x, np.zeros((), dtype=x.dtype))


def sigmoid(x: Any) -> np.ndarray:
    """Logistic function ``1 / (1 + exp(-x))``, computed without overflow.

    The textbook formula overflows in ``exp(-x)`` for ``x < -709`` (float64) and warns.
    This version only ever exponentiates ``-|x|``, which lies in ``(0, 1]``: for
    ``x >= 0`` it uses ``1 / (1 + e)``, for ``x < 0`` the equal ``e / (1 + e)``, with
    ``e = exp(-|x|)``.

    Parameters
    ----------
    x : array_like

    Returns
    -------
    ndarray
        Same shape as ``x``; same dtype if floating, else float64.

    Examples
    --------
    >>> import numpy as np
    >>> from cnncourse.ops import sigmoid
    >>> sigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([0. , 0.5, 1. ])
    """
    x = _as_float_array(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softmax(z: Any, axis: int = -1) -> np.ndarray:
    """Softmax ``exp(z) / sum(exp(z))`` along ``axis``, numerically stable.

    Softmax does not change when a constant is added to all scores, so this subtracts the
    maximum first: the largest exponent is then ``exp(0) = 1`` and nothing overflows.
    Compare :func:`softmax_naive`.

    Parameters
    ----------
    z : array_like
        Scores (logits).
    axis : int, default=-1
        Axis along which the probabilities sum to 1.

    Returns
    -------
    ndarray
        Same shape as ``z``; same dtype if floating, else float64.

    Examples
    --------
    >>> import numpy as np
    >>> from cnncourse.ops import softmax
    >>> p = softmax(np.array([1000.0, 1001.0, 1002.0]))
    >>> p.round(4)
    array([0.09  , 0.2447, 0.6652])
    >>> bool(np.isclose(p.sum(), 1.0))
    True
    """
    z = _as_float_array(z)
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax_naive(z: Any, axis: int = -1) -> np.ndarray:
    """Softmax straight from the formula, *without* the max-subtraction trick.

    Kept on purpose for the chapter that shows why :func:`softmax` subtracts the maximum:
    for scores above about 709 (float64) ``exp`` overflows to ``inf`` and ``inf / inf``
    gives ``nan``, with NumPy ``RuntimeWarning``\\ s ("overflow encountered in exp",
    "invalid value encountered in divide"). Do not use it in real code.

    Parameters
    ----------
    z : array_like
        Scores (logits).
    axis : int, default=-1
        Axis along which the probabilities sum to 1.

    Returns
    -------
    ndarray
        Same shape as ``z``; may contain ``nan`` for large scores.

    Examples
    --------
    >>> import numpy as np
    >>> from cnncourse.ops import softmax_naive
    >>> softmax_naive(np.array([1.0, 2.0, 3.0])).round(4)
    array([0.09  , 0.2447, 0.6652])
    >>> with np.errstate(over="ignore", invalid="ignore"):
    ...     softmax_naive(np.array([1000.0, 1001.0, 1002.0]))
    array([nan, nan, nan])
    """
    z = _as_float_array(z)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


# --------------------------------------------------------------------------------------
# Gradient checking
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GradCheckResult:
    """Outcome of :func:`grad_check`.

    Attributes
    ----------
    max_rel_error : float
        Largest relative error over the checked entries.
    rel_errors : ndarray of shape (n_checked,)
        Relative error ``|a - n| / max(1e-12, |a| + |n|)`` of each checked entry.
    indices : ndarray of shape (n_checked,)
        Flat indices (into ``x.ravel()``) of the checked entries.
    numeric_grad : ndarray, shape of x
        Central-difference gradient; ``nan`` at entries that were not checked.
    analytic_grad : ndarray, shape of x
        The gradient that was checked, as float64.
    """

    max_rel_error: float
    rel_errors: np.ndarray
    indices: np.ndarray
    numeric_grad: np.ndarray
    analytic_grad: np.ndarray

    def passed(self, tol: float = 1e-6) -> bool:
        """Whether every checked entry has a relative error of at most ``tol``."""
        return bool(self.max_rel_error <= tol)


def grad_check(
    f: Callable[[np.ndarray], Any],
    x: Any,
    analytic_grad: Any,
    h: float = 1e-5,
    n_samples: int | None = None,
    seed: int = 0,
) -> GradCheckResult:
    """Compare an analytic gradient with central finite differences.

    A backward pass is easy to get subtly wrong; the definition of the derivative is not.
    For each checked entry ``x[i]`` this evaluates
    ``(f(x + h e_i) - f(x - h e_i)) / (2 h)``, whose error is ``O(h**2)``, and compares it
    with ``analytic_grad[i]`` by the relative error ``|a - n| / max(1e-12, |a| + |n|)``.
    In float64 a correct gradient typically gives errors below ``1e-7``; a wrong one
    gives errors near 1.

    Parameters
    ----------
    f : callable
        ``f(x)`` returns a scalar (e.g. a loss). It receives a float64 copy of ``x`` with one
        entry perturbed and must not modify it.
    x : array_like
        Point at which to check; converted to a float64 copy (finite differences need the
        precision).
    analytic_grad : array_like
        Claimed gradient of ``f`` at ``x``; same shape as ``x``.
    h : float, default=1e-5
        Step of the finite differences; must be positive.
    n_samples : int, optional
        Check only this many entries, chosen at random without replacement (for large
        inputs: each entry costs two calls of ``f``). ``None`` checks all entries.
    seed : int, default=0
        Seed of the random choice of entries.

    Returns
    -------
    GradCheckResult
        Use ``result.passed(tol)`` or ``result.max_rel_error``.

    Examples
    --------
    >>> import numpy as np
    >>> from cnncourse.ops import grad_check
    >>> x = np.array([1.0, -2.0, 3.0])
    >>> good = grad_check(lambda v: np.sum(v**2), x, 2 * x)
    >>> good.passed()
    True
    >>> bad = grad_check(lambda v: np.sum(v**2), x, 3 * x)
    >>> bad.passed(), round(bad.max_rel_error, 2)
    (False, 0.2)
    """
    x = np.array(x, dtype=np.float64)  # a private copy that we perturb in place
    analytic = np.asarray(analytic_grad, dtype=np.float64)
    if analytic.shape != x.shape:
        raise ValueError(f"analytic_grad must have the shape of x {x.shape}, got {analytic.shape}")
    if not (isinstance(h, int | float | np.floating) and h > 0):
        raise ValueError(f"h must be a positive number, got {h!r}")
    if n_samples is None:
        indices = np.arange(x.size)
    else:
        n_samples = _positive_int(n_samples, "n_samples")
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(x.size, size=min(n_samples, x.size), replace=False))

    def value(point: np.ndarray) -> float:
        out = f(point)
        if np.ndim(out) != 0:
            raise ValueError(f"f must return a scalar, got shape {np.shape(out)}")
        return float(out)

    flat = x.reshape(-1)  # view: writing to flat perturbs x
    numeric = np.full(x.shape, np.nan)
    numeric_flat = numeric.reshape(-1)
    for i in indices:
        old = flat[i]
        flat[i] = old + h
        f_plus = value(x)
        flat[i] = old - h
        f_minus = value(x)
        flat[i] = old
        numeric_flat[i] = (f_plus - f_minus) / (2 * h)

    a, n = analytic.reshape(-1)[indices], numeric_flat[indices]
    rel_errors = np.abs(a - n) / np.maximum(1e-12, np.abs(a) + np.abs(n))
    max_rel = float(rel_errors.max()) if rel_errors.size else 0.0
    return GradCheckResult(max_rel, rel_errors, indices, numeric, analytic)
