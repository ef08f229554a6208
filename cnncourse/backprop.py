"""Backward passes, written the way chapter "Inside training" derives them.

:mod:`cnncourse.ops` holds the forward operations and the two gradients the earlier
chapters needed (``conv2d_backward`` through im2col, ``max_pool2d_backward``) and the
finite-difference checker ``grad_check``. This module adds what the chapter on training
derives by hand:

- :func:`conv2d_backward_full` -- the gradient of a stride-1 convolution written as two
  convolutions: ``dx`` is the *full* convolution of ``dout`` with the flipped kernel, and
  ``dw`` is the correlation of the input with ``dout``. It computes the same numbers as
  ``ops.conv2d_backward`` by a different route, which is why the two test each other;
- :func:`avg_pool2d_backward` -- average pooling spreads each gradient evenly over its
  window (max pooling routes it to the winner: ``ops.max_pool2d_backward``);
- :func:`batchnorm_forward` and :func:`batchnorm_backward` -- batch normalization in
  training mode, over every axis but the last (channels), as ``keras.layers.BatchNormalization``
  computes it, and :class:`BatchNorm`, which adds the running statistics used at inference;
- :func:`numeric_gradient` -- the full central-difference gradient of a scalar function,
  for the pictures and small checks of the chapter (``ops.grad_check`` compares a claimed
  gradient with it entry by entry).

Arrays follow the NHWC layout of Keras, as in :mod:`cnncourse.ops`; results are float64
unless every input is float32. Bad input raises ``ValueError`` naming the argument.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnncourse import ops

__all__ = [
    "BatchNorm",
    "avg_pool2d_backward",
    "batchnorm_backward",
    "batchnorm_forward",
    "conv2d_backward_full",
    "numeric_gradient",
]


def _float(*arrays: Any) -> np.dtype:
    dtype = np.result_type(*arrays)
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)


def _array(x: Any, name: str, ndim: int | None = None) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    return arr


# --------------------------------------------------------------------------------------
# Convolution: the gradient as two convolutions
# --------------------------------------------------------------------------------------


def conv2d_backward_full(
    dout: Any, x: Any, w: Any, padding: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of a stride-1 convolution, computed as two convolutions.

    For ``out = ops.conv2d(x, w, b, stride=1, padding=p)`` and ``xp`` the zero-padded
    input, the chain rule gives, for every image ``n``, filter ``f`` and channel ``c``:

    - ``dw[a, b, c, f] = sum_{n,i,j} xp[n, i + a, j + b, c] * dout[n, i, j, f]``: the
      *correlation* of the input with ``dout`` (``dout`` slides over the input like a
      kernel);
    - ``dxp[n, r, s, c] = sum_{f,a,b} dout[n, r - a, s - b, f] * w[a, b, c, f]``: a
      *full* convolution of ``dout`` with the kernel -- a correlation of ``dout``, padded
      by ``kh - 1`` and ``kw - 1``, with the kernel flipped in both spatial axes and its
      channel axes swapped; ``dx`` is ``dxp`` without the padding;
    - ``db[f]`` is ``dout`` summed over images and positions.

    Parameters
    ----------
    dout : array_like of shape (N, Ho, Wo, F)
        Upstream gradient.
    x : array_like of shape (N, H, W, C)
        Input of the forward pass.
    w : array_like of shape (kh, kw, C, F)
        Kernels of the forward pass.
    padding : int, default=0
        Zero padding ``p`` on every side used in the forward pass (stride is 1).

    Returns
    -------
    dx : ndarray of shape (N, H, W, C)
    dw : ndarray of shape (kh, kw, C, F)
    db : ndarray of shape (F,)

    See Also
    --------
    cnncourse.ops.conv2d_backward : The same gradients through im2col, any stride.

    Examples
    --------
    The 1-D picture in 2-D clothes: a 1x3 input, a 1x2 kernel ``[1, 2]``, ``dout = [1, 10]``.

    >>> import numpy as np
    >>> from cnncourse.backprop import conv2d_backward_full
    >>> x = np.array([3.0, 4.0, 5.0]).reshape(1, 1, 3, 1)
    >>> w = np.array([1.0, 2.0]).reshape(1, 2, 1, 1)
    >>> dx, dw, db = conv2d_backward_full(np.array([1.0, 10.0]).reshape(1, 1, 2, 1), x, w)
    >>> dx.ravel()  # full convolution of [1, 10] with the flipped kernel [2, 1]
    array([ 1., 12., 20.])
    >>> dw.ravel(), db  # [3*1 + 4*10, 4*1 + 5*10]
    (array([43., 54.]), array([11.]))
    """
    x = _array(x, "x", 4)
    w = _array(w, "w", 4)
    dout = _array(dout, "dout", 4)
    p = int(padding) if isinstance(padding, int | np.integer) else -1
    if p < 0 or isinstance(padding, bool):
        raise ValueError(f"padding must be a non-negative int, got {padding!r}")
    kh, kw, c_in, n_filters = w.shape
    if c_in != x.shape[3]:
        raise ValueError(f"w has {c_in} input channels but x has {x.shape[3]}; they must match")
    n, h, wd, _ = x.shape
    expected = (n, h + 2 * p - kh + 1, wd + 2 * p - kw + 1, n_filters)
    if dout.shape != expected:
        raise ValueError(f"dout must have the output shape {expected}, got {dout.shape}")
    dtype = _float(x, w, dout)
    x, w, dout = x.astype(dtype), w.astype(dtype), dout.astype(dtype)

    # dx: pad dout by k - 1, correlate with the flipped, channel-swapped kernel.
    w_flipped = w[::-1, ::-1].transpose(0, 1, 3, 2)  # (kh, kw, F, C)
    dxp = ops.conv2d(dout, w_flipped, padding=((kh - 1, kh - 1), (kw - 1, kw - 1)))
    dx = np.ascontiguousarray(dxp[:, p : p + h, p : p + wd])

    # dw: slide dout over the padded input; every window position is one kernel offset.
    xp = ops.zero_pad(x, p)
    windows = sliding_window_view(xp, dout.shape[1:3], axis=(1, 2))  # (N, kh, kw, C, Ho, Wo)
    dw = np.einsum("nabcij,nijf->abcf", windows, dout)
    db = dout.sum(axis=(0, 1, 2))
    return dx, dw, db


# --------------------------------------------------------------------------------------
# Average pooling
# --------------------------------------------------------------------------------------


def _counts(n: int, k: int, s: int, before: int, n_out: int) -> np.ndarray:
    start = np.arange(n_out) * s - before
    return np.minimum(start + k, n) - np.maximum(start, 0)


def avg_pool2d_backward(
    dout: Any,
    x: Any,
    pool_size: int = 2,
    stride: int | None = None,
    padding: str = "valid",
) -> np.ndarray:
    """Gradient of :func:`cnncourse.ops.avg_pool2d` with respect to its input.

    Every input of a window contributes ``1 / m`` of the window's mean (``m`` = the number
    of real, non-padded positions in the window), so each ``dout`` value is shared out in
    equal parts ``dout / m`` over its window. Where windows overlap, a position collects
    the shares of every window it belongs to. Compare max pooling, which hands the whole
    gradient to one winner.

    Parameters
    ----------
    dout : array_like of shape (N, Ho, Wo, C)
        Upstream gradient, shaped like the forward output.
    x : array_like of shape (N, H, W, C)
        Input of the forward pass (only its shape is used).
    pool_size : int, default=2
        Side of the square window.
    stride : int, optional
        Step between windows; ``None`` means ``pool_size``.
    padding : {"valid", "same"}, default="valid"
        As in the forward pass (TensorFlow's rule for ``"same"``).

    Returns
    -------
    dx : ndarray of shape (N, H, W, C)

    Examples
    --------
    >>> import numpy as np
    >>> from cnncourse.backprop import avg_pool2d_backward
    >>> dout = np.array([[4.0, 8.0]]).reshape(1, 1, 2, 1)
    >>> avg_pool2d_backward(dout, np.zeros((1, 2, 4, 1)))[0, :, :, 0]
    array([[1., 1., 2., 2.],
           [1., 1., 2., 2.]])
    """
    x = _array(x, "x", 4)
    for value, name in ((pool_size, "pool_size"), (stride, "stride")):
        if value is None and name == "stride":
            continue
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    k = int(pool_size)
    s = k if stride is None else int(stride)
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")
    n_images, h, w, c = x.shape
    # The forward pass validates the geometry and gives the output shape.
    out_shape = ops.avg_pool2d(np.zeros((1, h, w, 1)), k, s, padding).shape[1:3]
    pads = (
        ops.same_padding(h, k, s) if padding.lower() == "same" else (0, 0),
        ops.same_padding(w, k, s) if padding.lower() == "same" else (0, 0),
    )
    dout = _array(dout, "dout", 4)
    if dout.shape != (n_images, *out_shape, c):
        raise ValueError(
            f"dout must have the output shape {(n_images, *out_shape, c)}, got {dout.shape}"
        )
    ho, wo = out_shape
    dtype = _float(x, dout)
    counts = np.outer(_counts(h, k, s, pads[0][0], ho), _counts(w, k, s, pads[1][0], wo))
    share = dout.astype(dtype) / counts[None, :, :, None]
    dxp = np.zeros((n_images, h + sum(pads[0]), w + sum(pads[1]), c), dtype=dtype)
    for a in range(k):  # window offset (a, b) of output (i, j) is padded pixel (i*s+a, j*s+b)
        for b in range(k):
            dxp[:, a : a + (ho - 1) * s + 1 : s, b : b + (wo - 1) * s + 1 : s] += share
    return np.ascontiguousarray(dxp[:, pads[0][0] : pads[0][0] + h, pads[1][0] : pads[1][0] + w])


# --------------------------------------------------------------------------------------
# Batch normalization
# --------------------------------------------------------------------------------------


def _bn_args(x: Any, gamma: Any, eps: float) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    x = _array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must have a batch axis and a feature axis, got shape {x.shape}")
    gamma = _array(gamma, "gamma")
    if gamma.shape != (x.shape[-1],):
        raise ValueError(
            f"gamma must have shape ({x.shape[-1]},), one value per feature, got {gamma.shape}"
        )
    if not (isinstance(eps, int | float | np.floating) and eps > 0):
        raise ValueError(f"eps must be a positive number, got {eps!r}")
    if x.size // x.shape[-1] < 1:
        raise ValueError("x must hold at least one example")
    return x, gamma, tuple(range(x.ndim - 1))


def batchnorm_forward(
    x: Any, gamma: Any, beta: Any, eps: float = 1e-3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch normalization in training mode: normalise with the batch's own statistics.

    For each feature (the last axis; for images, each channel over all images and
    positions) ``out = gamma * (x - mean) / sqrt(var + eps) + beta``, with the mean and the
    *biased* variance (divided by the count, not count - 1) of the batch -- what Keras
    computes. ``eps`` defaults to Keras' 1e-3.

    Parameters
    ----------
    x : array_like of shape (..., D)
        A batch: ``(N, D)`` activations or ``(N, H, W, C)`` feature maps.
    gamma, beta : array_like of shape (D,)
        Learned scale and shift.
    eps : float, default=1e-3
        Added to the variance so that a constant feature does not divide by zero.

    Returns
    -------
    out : ndarray, shape of x
    mean, var : ndarray of shape (D,)
        The batch statistics (the running averages are built from them).

    Examples
    --------
    >>> import numpy as np
    >>> from cnncourse.backprop import batchnorm_forward
    >>> x = np.array([[1.0, 10.0], [3.0, 10.0]])
    >>> out, mean, var = batchnorm_forward(x, np.ones(2), np.zeros(2), eps=1e-8)
    >>> out.round(6), mean, var
    (array([[-1.,  0.],
           [ 1.,  0.]]), array([ 2., 10.]), array([1., 0.]))
    """
    x, gamma, axes = _bn_args(x, gamma, eps)
    beta = _array(beta, "beta")
    if beta.shape != gamma.shape:
        raise ValueError(f"beta must have shape {gamma.shape} like gamma, got {beta.shape}")
    dtype = _float(x, gamma, beta)
    x = x.astype(dtype, copy=False)
    mean = x.mean(axis=axes)
    var = x.var(axis=axes)
    x_hat = (x - mean) / np.sqrt(var + eps)
    return gamma * x_hat + beta, mean, var


def batchnorm_backward(
    dout: Any, x: Any, gamma: Any, eps: float = 1e-3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`batchnorm_forward` (training mode) for ``x``, ``gamma``, ``beta``.

    The batch statistics depend on every example, so the gradient of one input collects
    three paths: directly through its own ``x_hat``, through the mean and through the
    variance. With ``m`` values per feature, ``x_hat = (x - mean) / sigma`` and
    ``g = dout * gamma``, they sum to the compact form

    ``dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sigma``

    (means over the ``m`` values of each feature): the gradient with its mean removed and
    its component along ``x_hat`` removed -- the two directions in which the normalised
    output cannot move. ``dgamma = sum(dout * x_hat)`` and ``dbeta = sum(dout)``.

    Parameters
    ----------
    dout : array_like, shape of x
        Upstream gradient.
    x, gamma, eps
        The arguments of the forward call (the statistics are recomputed from ``x``).

    Returns
    -------
    dx : ndarray, shape of x
    dgamma, dbeta : ndarray of shape (D,)

    Examples
    --------
    A constant upstream gradient cannot change the loss: shifting every input of a feature
    by the same amount changes nothing after normalisation.

    >>> import numpy as np
    >>> from cnncourse.backprop import batchnorm_backward
    >>> x = np.array([[1.0], [2.0], [4.0]])
    >>> dx, dgamma, dbeta = batchnorm_backward(np.ones((3, 1)), x, np.ones(1))
    >>> bool(np.allclose(dx, 0.0)), dbeta
    (True, array([3.]))
    """
    x, gamma, axes = _bn_args(x, gamma, eps)
    dout = _array(dout, "dout")
    if dout.shape != x.shape:
        raise ValueError(f"dout must have the shape of x {x.shape}, got {dout.shape}")
    dtype = _float(x, gamma, dout)
    x, dout = x.astype(dtype, copy=False), dout.astype(dtype, copy=False)
    sigma = np.sqrt(x.var(axis=axes) + eps)
    x_hat = (x - x.mean(axis=axes)) / sigma
    g = dout * gamma
    dx = (g - g.mean(axis=axes) - x_hat * (g * x_hat).mean(axis=axes)) / sigma
    return dx, (dout * x_hat).sum(axis=axes), dout.sum(axis=axes)


class BatchNorm:
    """Batch normalization with running statistics, like ``keras.layers.BatchNormalization``.

    In training mode a call normalises with the batch's statistics and updates the running
    averages ``running = momentum * running + (1 - momentum) * batch``; in inference mode it
    normalises with the running averages only, so a prediction does not depend on the other
    images of its batch. ``momentum=0.99`` and ``eps=1e-3`` are Keras' defaults; the
    running mean starts at 0 and the running variance at 1, as in Keras.

    Parameters
    ----------
    n_features : int
        Size of the last axis.
    momentum : float, default=0.99
        Weight of the old running value in each update, in [0, 1).
    eps : float, default=1e-3
        Added to the variance.

    Attributes
    ----------
    gamma, beta, running_mean, running_var : ndarray of shape (n_features,)

    Examples
    --------
    >>> import numpy as np
    >>> from cnncourse.backprop import BatchNorm
    >>> bn = BatchNorm(1, momentum=0.5)
    >>> _ = bn(np.array([[2.0], [4.0]]), training=True)  # batch mean 3, variance 1
    >>> bn.running_mean, bn.running_var
    (array([1.5]), array([1.]))
    >>> bn(np.array([[1.5]]), training=False).round(3)  # (1.5 - 1.5) / sqrt(1 + eps)
    array([[0.]])
    """

    def __init__(self, n_features: int, momentum: float = 0.99, eps: float = 1e-3) -> None:
        if not isinstance(n_features, int | np.integer) or n_features <= 0:
            raise ValueError(f"n_features must be a positive int, got {n_features!r}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps!r}")
        self.momentum, self.eps = float(momentum), float(eps)
        self.gamma, self.beta = np.ones(n_features), np.zeros(n_features)
        self.running_mean, self.running_var = np.zeros(n_features), np.ones(n_features)

    def __call__(self, x: Any, training: bool = False) -> np.ndarray:
        """Normalise ``x``: with its batch statistics when ``training``, else the running ones."""
        if training:
            out, mean, var = batchnorm_forward(x, self.gamma, self.beta, self.eps)
            m = self.momentum
            self.running_mean = m * self.running_mean + (1 - m) * mean
            self.running_var = m * self.running_var + (1 - m) * var
            return out
        x, _, _ = _bn_args(x, self.gamma, self.eps)
        scale = self.gamma / np.sqrt(self.running_var + self.eps)
        return (x - self.running_mean) * scale + self.beta


# --------------------------------------------------------------------------------------
# Numerical gradient
# --------------------------------------------------------------------------------------


def numeric_gradient(f: Callable[[np.ndarray], Any], x: Any, h: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of a scalar function at ``x``, every entry.

    ``grad[i] = (f(x + h e_i) - f(x - h e_i)) / (2 h)``, computed in float64; the error is
    of order ``h**2``. Two calls of ``f`` per entry: use it on small arrays.
    (``cnncourse.ops.grad_check`` compares a claimed gradient with this, and can sample
    entries of large arrays.)

    Parameters
    ----------
    f : callable
        ``f(x) -> scalar``; gets a perturbed float64 copy of ``x``.
    x : array_like
    h : float, default=1e-5

    Returns
    -------
    ndarray of the shape of x

    Examples
    --------
    >>> import numpy as np
    >>> from cnncourse.backprop import numeric_gradient
    >>> numeric_gradient(lambda v: np.sum(v ** 3), np.array([1.0, 2.0])).round(6)
    array([ 3., 12.])
    """
    x = np.asarray(x, dtype=np.float64)
    result = ops.grad_check(f, x, np.zeros_like(x), h=h)
    return result.numeric_grad
