"""Tests of cnncourse.ops: loop versions vs vectorized versions, and both vs TensorFlow/SciPy.

Comparisons with TensorFlow use float64 (tf.nn.conv2d and the pooling ops support it on
CPU), so the tolerances can be tight; one test checks the float32 path at 1e-5.
"""

import doctest
import os
import warnings

import numpy as np
import pytest
import scipy.signal
import scipy.special
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnncourse import ops
from cnncourse.ops import (
    GradCheckResult,
    avg_pool2d,
    conv2d,
    conv2d_backward,
    conv2d_naive,
    conv_output_size,
    conv_param_count,
    dense_param_count,
    global_average_pool,
    grad_check,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_naive,
    relu,
    same_padding,
    sigmoid,
    softmax,
    softmax_naive,
    zero_pad,
)

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

TIGHT = {"rtol": 1e-10, "atol": 1e-10}  # naive vs vectorized, both float64 NumPy
VS_TF = {"rtol": 1e-9, "atol": 1e-9}  # float64 NumPy vs float64 TensorFlow

HYPOTHESIS = settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def rand(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


def tf_padding(padding):
    """Our padding argument in the form tf.nn.conv2d accepts."""
    if isinstance(padding, str):
        return padding.upper()
    if isinstance(padding, int):
        padding = ((padding, padding), (padding, padding))
    (t, b), (left, right) = padding
    return [[0, 0], [t, b], [left, right], [0, 0]]


def t64(a):
    """A float64 tensor (some tf.nn functions would otherwise convert NumPy input to float32)."""
    return tf.constant(a, dtype=tf.float64)


def tf_conv(x, w, b, stride, padding):
    out = tf.nn.conv2d(t64(x), t64(w), strides=stride, padding=tf_padding(padding))
    if b is not None:
        out = tf.nn.bias_add(out, t64(b))
    return out.numpy()


@st.composite
def conv_cases(draw, max_size=9, max_channels=3):
    """Random (x, w, b, stride, padding) with a kernel that fits the padded input."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(1, 3))
    h, w = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    c, f = draw(st.integers(1, max_channels)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    kind = draw(st.sampled_from(["valid", "same", "int", "pairs"]))
    if kind == "int":
        p = draw(st.integers(0, 2))
        padding, pads = p, ((p, p), (p, p))
    elif kind == "pairs":
        pads = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(2))
        padding = pads
    else:
        padding, pads = kind, ((0, 0), (0, 0))
    if kind == "same":
        kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    else:
        kh = draw(st.integers(1, h + sum(pads[0])))
        kw = draw(st.integers(1, w + sum(pads[1])))
    b = rand(rng, f) if draw(st.booleans()) else None
    return rand(rng, n, h, w, c), rand(rng, kh, kw, c, f), b, stride, padding


# --------------------------------------------------------------------------------------
# Convolution forward
# --------------------------------------------------------------------------------------


@HYPOTHESIS
@given(conv_cases())
def test_conv2d_matches_tf(case):
    x, w, b, stride, padding = case
    np.testing.assert_allclose(conv2d(x, w, b, stride, padding), tf_conv(*case), **VS_TF)


@HYPOTHESIS
@given(conv_cases(max_size=7))
def test_conv2d_naive_matches_vectorized(case):
    np.testing.assert_allclose(conv2d_naive(*case), conv2d(*case), **TIGHT)


@pytest.mark.parametrize(
    ("hw", "kernel", "stride"),
    [
        ((6, 6), (2, 2), 1),  # even kernel: the extra padding goes bottom/right
        ((5, 7), (4, 4), 1),
        ((7, 7), (3, 3), 2),  # stride does not divide the size
        ((6, 5), (3, 2), (4, 3)),
        ((8, 8), (1, 1), 3),
        ((3, 3), (5, 5), 1),  # kernel bigger than the image
    ],
)
def test_conv2d_uneven_same_padding_matches_tf(hw, kernel, stride):
    rng = np.random.default_rng(1)
    x, w, b = rand(rng, 2, *hw, 3), rand(rng, *kernel, 3, 2), rand(rng, 2)
    expected = tf_conv(x, w, b, stride, "same")
    np.testing.assert_allclose(conv2d(x, w, b, stride, "same"), expected, **VS_TF)
    np.testing.assert_allclose(conv2d_naive(x, w, b, stride, "same"), expected, **VS_TF)


@pytest.mark.parametrize("seed", range(5))
def test_conv2d_single_channel_matches_scipy_correlate2d(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(3, 12, size=2)
    kh, kw = rng.integers(1, 4, size=2)
    image, kernel = rand(rng, h, w), rand(rng, kh, kw)
    expected = scipy.signal.correlate2d(image, kernel, mode="valid")
    out = conv2d(image[None, :, :, None], kernel[:, :, None, None])[0, :, :, 0]
    np.testing.assert_allclose(out, expected, **TIGHT)


def test_conv2d_hand_example():
    image = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=float).reshape(1, 3, 3, 1)
    kernel = np.array([[1, 0], [0, -1]], dtype=float).reshape(2, 2, 1, 1)
    for fn in (conv2d, conv2d_naive):
        out = fn(image, kernel)[0, :, :, 0]
        assert out[0, 0] == -4  # 1*1 + 5*(-1)
        np.testing.assert_array_equal(out, [[-4, -4], [-4, -4]])


def test_conv2d_5x5_image_3x3_kernel_gives_3x3():
    out = conv2d(np.ones((1, 5, 5, 1)), np.ones((3, 3, 1, 1)))
    assert out.shape == (1, 3, 3, 1)
    np.testing.assert_array_equal(out[0, :, :, 0], np.full((3, 3), 9.0))


@pytest.mark.parametrize("channels", [1, 3, 5])  # kernel-major and channels-last layouts
@pytest.mark.parametrize("chunk_bytes", [64, 4000, 10**9])  # row slices, image slices, one
def test_conv2d_chunking_does_not_change_the_result(monkeypatch, channels, chunk_bytes):
    monkeypatch.setattr(ops, "_CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(2)
    x, w, b = rand(rng, 3, 9, 8, channels), rand(rng, 3, 2, channels, 4), rand(rng, 4)
    for stride, padding in [(1, "same"), ((2, 3), ((1, 0), (2, 1)))]:
        np.testing.assert_allclose(
            conv2d(x, w, b, stride, padding), conv2d_naive(x, w, b, stride, padding), **TIGHT
        )


def test_conv2d_dtypes():
    rng = np.random.default_rng(3)
    x32 = rng.standard_normal((2, 10, 10, 4)).astype(np.float32)
    w32 = rng.standard_normal((3, 3, 4, 5)).astype(np.float32)
    out = conv2d(x32, w32, padding="same")
    assert out.dtype == np.float32
    expected = tf.nn.conv2d(x32, w32, strides=1, padding="SAME").numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert conv2d(x32, w32.astype(np.float64)).dtype == np.float64
    ints = conv2d(np.ones((1, 3, 3, 1), dtype=int), np.ones((2, 2, 1, 1), dtype=int))
    assert ints.dtype == np.float64
    np.testing.assert_array_equal(ints[0, :, :, 0], np.full((2, 2), 4.0))


def test_zero_pad():
    x = np.arange(4.0).reshape(1, 2, 2, 1)
    out = zero_pad(x, ((1, 0), (0, 2)))
    assert out.shape == (1, 3, 4, 1)
    np.testing.assert_array_equal(out[0, :, :, 0], [[0, 0, 0, 0], [0, 1, 0, 0], [2, 3, 0, 0]])
    assert zero_pad(x, 2).shape == (1, 6, 6, 1)
    assert zero_pad(x, (1, 2)).shape == (1, 4, 6, 1)
    assert zero_pad(x, 0) is not x


# --------------------------------------------------------------------------------------
# Sizes and parameter counts
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "k", "stride", "padding", "expected"),
    [
        (5, 3, 1, "valid", 3),
        (28, 3, 1, 1, 28),
        (32, 5, 1, "valid", 28),
        (32, 5, 1, 2, 32),
        (7, 3, 2, "valid", 3),
        (7, 3, 2, "same", 4),
        (6, 2, 2, "same", 3),
        (224, 7, 2, 3, 112),
        (4, 2, 2, "valid", 2),
        (3, 5, 1, "same", 3),
    ],
)
def test_conv_output_size_table(n, k, stride, padding, expected):
    assert conv_output_size(n, k, stride, padding) == expected


@pytest.mark.parametrize(
    ("n", "k", "stride", "expected"),
    [(5, 3, 1, (1, 1)), (4, 2, 1, (0, 1)), (6, 3, 2, (0, 1)), (7, 3, 2, (1, 1)), (2, 5, 1, (2, 2))],
)
def test_same_padding_table(n, k, stride, expected):
    assert same_padding(n, k, stride) == expected


@HYPOTHESIS
@given(conv_cases())
def test_conv_output_size_matches_conv2d_shape(case):
    x, w, b, stride, padding = case
    out = conv2d(x, w, b, stride, padding)
    if isinstance(padding, tuple):  # conv_output_size takes one symmetric int padding
        return
    assert out.shape[1] == conv_output_size(x.shape[1], w.shape[0], stride[0], padding)
    assert out.shape[2] == conv_output_size(x.shape[2], w.shape[1], stride[1], padding)


@pytest.mark.parametrize(
    ("kh", "kw", "c_in", "filters", "use_bias"),
    [(3, 3, 1, 32, True), (3, 3, 32, 64, True), (5, 3, 3, 7, False), (1, 1, 64, 16, True)],
)
def test_conv_param_count_matches_keras(kh, kw, c_in, filters, use_bias):
    layer = keras.layers.Conv2D(filters, (kh, kw), use_bias=use_bias)
    layer.build((None, 16, 16, c_in))
    assert conv_param_count(kh, kw, c_in, filters, use_bias) == layer.count_params()


@pytest.mark.parametrize(("n_in", "units", "use_bias"), [(784, 128, True), (10, 3, False)])
def test_dense_param_count_matches_keras(n_in, units, use_bias):
    layer = keras.layers.Dense(units, use_bias=use_bias)
    layer.build((None, n_in))
    assert dense_param_count(n_in, units, use_bias) == layer.count_params()


# --------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------


@st.composite
def pool_cases(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    padding = draw(st.sampled_from(["valid", "same"]))
    pool = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    low = pool if padding == "valid" else (1, 1)
    h, w = draw(st.integers(low[0], 9)), draw(st.integers(low[1], 9))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    x = rand(rng, draw(st.integers(1, 2)), h, w, draw(st.integers(1, 3)))
    return x, pool, stride, padding


def tf_pool_args(pool, stride, padding):
    return {
        "ksize": pool,
        "strides": pool if stride is None else stride,
        "padding": padding.upper(),
    }


@HYPOTHESIS
@given(pool_cases())
def test_max_pool2d_matches_tf_and_naive(case):
    x, pool, stride, padding = case
    expected = tf.nn.max_pool2d(t64(x), **tf_pool_args(pool, stride, padding)).numpy()
    np.testing.assert_array_equal(max_pool2d(x, pool, stride, padding), expected)
    np.testing.assert_array_equal(max_pool2d_naive(x, pool, stride, padding), expected)


@HYPOTHESIS
@given(pool_cases())
def test_avg_pool2d_matches_tf(case):
    x, pool, stride, padding = case
    expected = tf.nn.avg_pool2d(t64(x), **tf_pool_args(pool, stride, padding)).numpy()
    np.testing.assert_allclose(avg_pool2d(x, pool, stride, padding), expected, **VS_TF)


def test_pool_4x4_example():
    x = np.arange(1, 17).reshape(1, 4, 4, 1)
    np.testing.assert_array_equal(max_pool2d(x)[0, :, :, 0], [[6, 8], [14, 16]])
    np.testing.assert_array_equal(max_pool2d_naive(x)[0, :, :, 0], [[6, 8], [14, 16]])
    np.testing.assert_array_equal(avg_pool2d(x)[0, :, :, 0], [[3.5, 5.5], [11.5, 13.5]])


def test_same_pooling_ignores_padding():
    x = -np.ones((1, 3, 3, 1))  # all negative: a zero pad would win a max
    np.testing.assert_array_equal(max_pool2d(x, 2, padding="same"), -np.ones((1, 2, 2, 1)))
    np.testing.assert_array_equal(avg_pool2d(x, 2, padding="same"), -np.ones((1, 2, 2, 1)))


def test_global_average_pool():
    x = np.random.default_rng(4).standard_normal((2, 5, 4, 3))
    expected = keras.layers.GlobalAveragePooling2D(dtype="float64")(t64(x))
    np.testing.assert_allclose(global_average_pool(x), np.asarray(expected), **VS_TF)
    assert global_average_pool(x).shape == (2, 3)


# --------------------------------------------------------------------------------------
# Backward passes and gradient checking
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "bias"),
    [
        ((2, 6, 6, 3), (3, 3, 3, 4), 1, "valid", True),
        ((2, 7, 7, 2), (3, 3, 2, 3), 2, "same", True),
        ((1, 8, 7, 3), (2, 2, 3, 2), 2, "same", False),
        ((2, 9, 8, 1), (4, 3, 1, 2), (3, 2), "valid", True),
        ((1, 5, 6, 2), (3, 3, 2, 2), 2, ((1, 0), (2, 1)), False),
        ((1, 6, 6, 4), (5, 5, 4, 3), 1, "same", True),
    ],
)
def test_conv2d_backward_matches_gradient_tape(x_shape, w_shape, stride, padding, bias):
    rng = np.random.default_rng(5)
    x, w = rand(rng, *x_shape), rand(rng, *w_shape)
    b = rand(rng, w_shape[3]) if bias else None
    dout = rand(rng, *conv2d(x, w, b, stride, padding).shape)
    xt, wt = tf.Variable(x), tf.Variable(w)
    bt = tf.Variable(b) if bias else None
    with tf.GradientTape() as tape:
        out = tf.nn.conv2d(xt, wt, strides=stride, padding=tf_padding(padding))
        if bias:
            out = tf.nn.bias_add(out, bt)
        loss = tf.reduce_sum(out * dout)
    grads = tape.gradient(loss, [xt, wt] + ([bt] if bias else []))
    dx, dw, db = conv2d_backward(dout, x, w, b, stride, padding)
    np.testing.assert_allclose(dx, grads[0].numpy(), **VS_TF)
    np.testing.assert_allclose(dw, grads[1].numpy(), **VS_TF)
    if bias:
        np.testing.assert_allclose(db, grads[2].numpy(), **VS_TF)
    else:
        assert db is None


@pytest.mark.parametrize(
    ("shape", "pool", "stride", "padding"),
    [
        ((2, 4, 4, 3), 2, None, "valid"),
        ((2, 7, 6, 2), 3, 2, "same"),  # overlapping windows and padding
        ((1, 5, 5, 1), (2, 3), (1, 2), "valid"),
        ((1, 6, 5, 2), 3, 1, "same"),
    ],
)
def test_max_pool2d_backward_matches_gradient_tape(shape, pool, stride, padding):
    rng = np.random.default_rng(6)
    x = rand(rng, *shape)  # continuous values: no ties
    dout = rand(rng, *max_pool2d(x, pool, stride, padding).shape)
    xt = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.nn.max_pool2d(xt, **tf_pool_args(pool, stride, padding)) * dout)
    expected = tape.gradient(loss, xt).numpy()
    np.testing.assert_allclose(max_pool2d_backward(dout, x, pool, stride, padding), expected)


def test_max_pool2d_backward_ties_go_to_first_max_like_tf():
    x = np.array([[5.0, 5.0, 1.0, 2.0], [5.0, 0.0, 2.0, 2.0]]).reshape(1, 2, 4, 1)
    dx = max_pool2d_backward(np.ones((1, 1, 2, 1)), x)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[1, 0, 0, 1], [0, 0, 0, 0]])
    xt = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.nn.max_pool2d(xt, 2, 2, "VALID"))
    np.testing.assert_array_equal(dx, tape.gradient(loss, xt).numpy())


def _conv_loss_and_grads(seed, stride=2, padding="same"):
    rng = np.random.default_rng(seed)
    x, w, b = rand(rng, 2, 5, 5, 2), rand(rng, 3, 3, 2, 3), rand(rng, 3)
    r = rand(rng, *conv2d(x, w, b, stride, padding).shape)
    grads = conv2d_backward(r, x, w, b, stride, padding)
    return x, w, b, r, grads


def test_grad_check_accepts_correct_conv_gradients():
    x, w, b, r, (dx, dw, db) = _conv_loss_and_grads(7)
    res_x = grad_check(lambda v: np.sum(conv2d(v, w, b, 2, "same") * r), x, dx)
    res_w = grad_check(lambda v: np.sum(conv2d(x, v, b, 2, "same") * r), w, dw)
    res_b = grad_check(lambda v: np.sum(conv2d(x, w, v, 2, "same") * r), b, db)
    for res in (res_x, res_w, res_b):
        assert isinstance(res, GradCheckResult)
        assert res.passed(1e-6), res.max_rel_error
        assert res.max_rel_error < 1e-7


def test_grad_check_flags_wrong_gradients():
    x, w, b, r, (dx, dw, _) = _conv_loss_and_grads(8)
    loss = lambda v: np.sum(conv2d(v, w, b, 2, "same") * r)  # noqa: E731
    assert not grad_check(loss, x, 1.1 * dx).passed()
    assert not grad_check(loss, x, dx.transpose(0, 2, 1, 3)).passed()
    # A classic bug: forgetting the contribution of one kernel offset.
    wrong = conv2d_backward(r, x, w * (np.arange(9).reshape(3, 3, 1, 1) != 4), b, 2, "same")[0]
    assert grad_check(loss, x, wrong).max_rel_error > 1e-2


def test_grad_check_sampling_and_max_pool():
    rng = np.random.default_rng(9)
    x = rand(rng, 1, 6, 6, 2)
    r = rand(rng, 1, 3, 3, 2)
    dx = max_pool2d_backward(r, x, 3, 2, "same")
    res = grad_check(lambda v: np.sum(max_pool2d(v, 3, 2, "same") * r), x, dx, n_samples=20)
    assert res.passed()
    assert res.indices.shape == (20,) and len(set(res.indices.tolist())) == 20
    assert np.isnan(res.numeric_grad).sum() == x.size - 20
    same = grad_check(lambda v: np.sum(max_pool2d(v, 3, 2, "same") * r), x, dx, n_samples=20)
    np.testing.assert_array_equal(same.indices, res.indices)  # seeded


# --------------------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------------------


def test_softmax_sums_to_one_and_ignores_constant_shift():
    z = np.random.default_rng(10).standard_normal((5, 7)) * 10
    p = softmax(z)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(softmax(z + 123.4), p, rtol=1e-10)
    np.testing.assert_allclose(softmax(z, axis=0).sum(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(p, scipy.special.softmax(z, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(softmax_naive(z), p, rtol=1e-10)  # same math for small z


def test_softmax_does_not_overflow_but_naive_does():
    z = np.array([1000.0, 1001.0, 1002.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = softmax(z)
    np.testing.assert_allclose(p, softmax(np.array([0.0, 1.0, 2.0])), rtol=1e-12)
    with pytest.warns(RuntimeWarning):
        naive = softmax_naive(z)
    assert np.isnan(naive).all()


def test_sigmoid_is_stable_and_correct():
    z = np.array([-1000.0, -50.0, -1.0, 0.0, 2.0, 50.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = sigmoid(z)
    np.testing.assert_allclose(s, scipy.special.expit(z), rtol=1e-12, atol=0)
    assert s[0] == 0.0 and s[-1] == 1.0 and s[3] == 0.5
    assert sigmoid(np.float32([1.0, -1.0])).dtype == np.float32


def test_relu():
    np.testing.assert_array_equal(relu(np.array([-2.0, -0.0, 0.5, 3.0])), [0, 0, 0.5, 3])
    assert relu(np.ones(3, dtype=np.float32)).dtype == np.float32


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------

X = np.zeros((1, 5, 5, 2))
W = np.zeros((3, 3, 2, 4))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: conv2d(np.zeros((5, 5)), W), r"x must be 4-D \(N, H, W, C\), got shape \(5, 5\)"),
        (lambda: conv2d_naive(np.zeros((5, 5)), W), r"x must be 4-D"),
        (lambda: conv2d(X, np.zeros((3, 3, 2))), r"w must be 4-D"),
        (lambda: conv2d(X, np.zeros((3, 3, 3, 4))), r"w has 3 input channels .* x has 2"),
        (lambda: conv2d(X, np.zeros((7, 3, 2, 4))), r"w kernel .* larger than the padded input"),
        (lambda: conv2d(X, W, stride=0), r"stride must be a positive integer"),
        (lambda: conv2d(X, W, stride=(1, -2)), r"stride must be a positive integer"),
        (lambda: conv2d(X, W, stride=1.5), r"stride must be a positive integer"),
        (lambda: conv2d(X, W, padding="full"), r"padding must be 'valid', 'same'"),
        (lambda: conv2d(X, W, padding=-1), r"padding must be a non-negative integer"),
        (lambda: conv2d(X, W, padding=((1, -1), (0, 0))), r"padding must be a non-negative"),
        (lambda: conv2d(X, W, padding=(1, 2, 3)), r"padding must be an int"),
        (lambda: conv2d(X, W, b=np.zeros(3)), r"b must have shape \(4,\)"),
        (lambda: conv2d_backward(np.zeros((1, 2, 2, 4)), X, W), r"dout must have the output"),
        (lambda: zero_pad(X, -1), r"pad must be a non-negative integer"),
        (lambda: zero_pad(np.zeros(3), 1), r"x must be 4-D"),
        (lambda: max_pool2d(X, pool_size=0), r"pool_size must be a positive integer"),
        (lambda: max_pool2d(X, 2, stride=0), r"stride must be a positive integer"),
        (lambda: max_pool2d(X, 6), r"pool_size .* larger than the padded input"),
        (lambda: avg_pool2d(X, 2, padding="full"), r"padding must be 'valid' or 'same'"),
        (lambda: max_pool2d_naive(X, 2, padding=1), r"padding must be 'valid' or 'same'"),
        (lambda: max_pool2d_backward(np.zeros((1, 1, 1, 2)), X), r"dout must have the output"),
        (lambda: global_average_pool(np.zeros((2, 3))), r"x must be 4-D"),
        (lambda: conv_output_size(0, 3), r"n must be a positive integer"),
        (lambda: conv_output_size(5, 3, stride=0), r"stride must be a positive integer"),
        (lambda: conv_output_size(5, 3, padding="full"), r"padding must be 'valid', 'same'"),
        (lambda: conv_output_size(5, 3, padding=-1), r"padding must be a non-negative"),
        (lambda: conv_output_size(3, 7), r"k=7 is larger than the padded input"),
        (lambda: same_padding(5, 0, 1), r"k must be a positive integer"),
        (lambda: conv_param_count(3, 3, 0, 8), r"c_in must be a positive integer"),
        (lambda: dense_param_count(10, -1), r"units must be a positive integer"),
        (lambda: grad_check(np.sum, np.ones(3), np.ones(2)), r"analytic_grad must have"),
        (lambda: grad_check(np.sum, np.ones(3), np.ones(3), h=0), r"h must be a positive"),
        (lambda: grad_check(lambda v: v, np.ones(3), np.ones(3)), r"f must return a scalar"),
        (lambda: grad_check(np.sum, np.ones(3), np.ones(3), n_samples=0), r"n_samples must"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_docstring_examples_run():
    result = doctest.testmod(ops, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 20
    assert result.failed == 0
