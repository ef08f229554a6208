"""Tests of cnncourse.backprop against independent implementations.

Gradients are compared with ``tf.GradientTape`` through ``tf.nn`` ops (float64), the
flipped-kernel form of the convolution gradient with ``scipy.signal``, batch normalization
with ``keras.layers.BatchNormalization`` (training and inference mode, running statistics),
and every backward pass with central finite differences.
"""

import doctest
import os

import numpy as np
import pytest
import scipy.signal

from cnncourse import backprop, ops
from cnncourse.backprop import (
    BatchNorm,
    avg_pool2d_backward,
    batchnorm_backward,
    batchnorm_forward,
    conv2d_backward_full,
    numeric_gradient,
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402


def test_doctests():
    failures, tried = doctest.testmod(backprop, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failures == 0


# --------------------------------------------------------------------------- convolution


def _tf_conv_grads(x, w, b, dout, padding):
    xt, wt, bt = (tf.Variable(v) for v in (x, w, b))
    with tf.GradientTape() as tape:
        xp = tf.pad(xt, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
        out = tf.nn.conv2d(xp, wt, strides=1, padding="VALID") + bt
        loss = tf.reduce_sum(out * dout)
    return [g.numpy() for g in tape.gradient(loss, [xt, wt, bt])]


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "padding"),
    [
        ((1, 4, 4, 1), (2, 2, 1, 1), 0),
        ((2, 5, 6, 3), (3, 3, 3, 4), 1),
        ((1, 6, 5, 2), (2, 3, 2, 3), 2),
    ],
)
def test_conv_backward_full_matches_tensorflow_and_im2col(x_shape, w_shape, padding):
    rng = np.random.default_rng(sum(x_shape))
    x, w, b = rng.normal(size=x_shape), rng.normal(size=w_shape), rng.normal(size=w_shape[3])
    out = ops.conv2d(x, w, b, padding=padding)
    dout = rng.normal(size=out.shape)
    dx, dw, db = conv2d_backward_full(dout, x, w, padding=padding)
    tf_dx, tf_dw, tf_db = _tf_conv_grads(x, w, b, dout, padding)
    np.testing.assert_allclose(dx, tf_dx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dw, tf_dw, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(db, tf_db, rtol=1e-10, atol=1e-12)
    im_dx, im_dw, im_db = ops.conv2d_backward(dout, x, w, b, padding=padding)
    np.testing.assert_allclose(dx, im_dx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dw, im_dw, rtol=1e-10, atol=1e-12)


def test_conv_dx_is_scipy_full_convolution_with_the_kernel():
    # One channel, one filter: dx = convolve2d(dout, w, "full"), i.e. the flipped kernel
    # slid over dout padded by k - 1; dw = correlate2d(x, dout, "valid").
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(1, 5, 6, 1)), rng.normal(size=(3, 2, 1, 1))
    dout = rng.normal(size=(1, 3, 5, 1))
    dx, dw, _ = conv2d_backward_full(dout, x, w)
    np.testing.assert_allclose(
        dx[0, :, :, 0], scipy.signal.convolve2d(dout[0, :, :, 0], w[:, :, 0, 0], mode="full")
    )
    np.testing.assert_allclose(
        dw[:, :, 0, 0], scipy.signal.correlate2d(x[0, :, :, 0], dout[0, :, :, 0], mode="valid")
    )


def test_conv_backward_full_passes_finite_differences_and_rejects_bad_shapes():
    rng = np.random.default_rng(2)
    x, w = rng.normal(size=(2, 4, 4, 2)), rng.normal(size=(3, 3, 2, 2))
    dout = rng.normal(size=(2, 4, 4, 2))
    dx, dw, _ = conv2d_backward_full(dout, x, w, padding=1)
    assert ops.grad_check(lambda v: np.sum(ops.conv2d(v, w, padding=1) * dout), x, dx).passed()
    assert ops.grad_check(lambda v: np.sum(ops.conv2d(x, v, padding=1) * dout), w, dw).passed()
    with pytest.raises(ValueError, match="dout must have the output shape"):
        conv2d_backward_full(dout[:, :3], x, w, padding=1)
    with pytest.raises(ValueError, match="padding"):
        conv2d_backward_full(dout, x, w, padding=-1)
    with pytest.raises(ValueError, match="input channels"):
        conv2d_backward_full(dout, x[..., :1], w, padding=1)


# --------------------------------------------------------------------------- pooling


@pytest.mark.parametrize(
    ("shape", "pool", "stride", "padding"),
    [
        ((1, 4, 4, 1), 2, None, "valid"),
        ((2, 5, 5, 3), 2, 2, "valid"),  # last row and column dropped
        ((1, 6, 7, 2), 3, 1, "valid"),  # overlapping windows
        ((2, 5, 7, 2), 3, 2, "same"),  # border windows average fewer values
        ((1, 6, 6, 1), 2, 3, "valid"),  # gaps between windows
    ],
)
def test_avg_pool_backward_matches_tensorflow(shape, pool, stride, padding):
    rng = np.random.default_rng(3)
    x = rng.normal(size=shape)
    dout = rng.normal(size=ops.avg_pool2d(x, pool, stride, padding).shape)
    xt = tf.Variable(x)
    with tf.GradientTape() as tape:
        out = tf.nn.avg_pool2d(xt, pool, stride or pool, padding.upper())
        loss = tf.reduce_sum(out * dout)
    expected = tape.gradient(loss, xt).numpy()
    np.testing.assert_allclose(
        avg_pool2d_backward(dout, x, pool, stride, padding), expected, rtol=1e-12, atol=1e-14
    )


def test_max_pool_backward_matches_tensorflow_with_overlap():
    # ops.max_pool2d_backward is the chapter's; checked here on the overlapping case it draws.
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 5, 5, 2))
    dout = rng.normal(size=(2, 3, 3, 2))
    xt = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.nn.max_pool2d(xt, 3, 1, "VALID") * dout)
    np.testing.assert_allclose(
        ops.max_pool2d_backward(dout, x, 3, 1), tape.gradient(loss, xt).numpy(), atol=1e-14
    )


def test_avg_pool_backward_rejects_bad_arguments():
    x = np.zeros((1, 4, 4, 1))
    with pytest.raises(ValueError, match="pool_size"):
        avg_pool2d_backward(np.zeros((1, 2, 2, 1)), x, 0)
    with pytest.raises(ValueError, match="stride"):
        avg_pool2d_backward(np.zeros((1, 2, 2, 1)), x, 2, 1.5)
    with pytest.raises(ValueError, match="output shape"):
        avg_pool2d_backward(np.zeros((1, 3, 3, 1)), x, 2)
    with pytest.raises(ValueError, match="padding"):
        avg_pool2d_backward(np.zeros((1, 2, 2, 1)), x, 2, padding="full")


# --------------------------------------------------------------------------- batch norm


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 3, 2)])
def test_batchnorm_forward_matches_keras_training_mode(shape):
    rng = np.random.default_rng(5)
    x = rng.normal(2.0, 3.0, size=shape).astype(np.float32)
    gamma, beta = rng.normal(size=shape[-1]), rng.normal(size=shape[-1])
    layer = keras.layers.BatchNormalization()
    layer.build(shape)
    layer.gamma.assign(gamma.astype(np.float32))
    layer.beta.assign(beta.astype(np.float32))
    expected = np.asarray(layer(x, training=True))
    out, mean, var = batchnorm_forward(x.astype(np.float64), gamma, beta)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    # Keras' moving statistics after one step: 0.99 * (0 or 1) + 0.01 * batch statistic
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.01 * mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.99 + 0.01 * var, rtol=1e-5)


def test_batchnorm_class_running_statistics_match_keras_inference_mode():
    rng = np.random.default_rng(6)
    layer = keras.layers.BatchNormalization(momentum=0.9)
    layer.build((None, 3))
    bn = BatchNorm(3, momentum=0.9)
    for step in range(5):
        batch = rng.normal(step, 1.0 + step, size=(16, 3)).astype(np.float32)
        np.testing.assert_allclose(
            bn(batch, training=True), np.asarray(layer(batch, training=True)), atol=1e-4
        )
    np.testing.assert_allclose(bn.running_mean, layer.moving_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var, layer.moving_variance.numpy(), rtol=1e-5)
    test = rng.normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_allclose(
        bn(test, training=False), np.asarray(layer(test, training=False)), atol=1e-5
    )
    # Inference mode does not look at the batch: one example gives the same answer alone.
    np.testing.assert_allclose(bn(test[:1]), bn(test)[:1])


@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 4, 2)])
def test_batchnorm_backward_matches_gradient_tape_and_finite_differences(shape):
    rng = np.random.default_rng(7)
    x = rng.normal(1.0, 2.0, size=shape)
    gamma, beta = rng.normal(size=shape[-1]), rng.normal(size=shape[-1])
    dout = rng.normal(size=shape)
    dx, dgamma, dbeta = batchnorm_backward(dout, x, gamma)

    xt, gt, bt = tf.Variable(x), tf.Variable(gamma), tf.Variable(beta)
    axes = list(range(len(shape) - 1))
    with tf.GradientTape() as tape:
        mean, var = tf.nn.moments(xt, axes=axes)
        out = tf.nn.batch_normalization(xt, mean, var, bt, gt, 1e-3)
        loss = tf.reduce_sum(out * dout)
    tdx, tdg, tdb = (g.numpy() for g in tape.gradient(loss, [xt, gt, bt]))
    np.testing.assert_allclose(dx, tdx, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(dgamma, tdg, rtol=1e-10)
    np.testing.assert_allclose(dbeta, tdb, rtol=1e-10)

    def loss_of(v):
        return np.sum(batchnorm_forward(v, gamma, beta)[0] * dout)

    assert ops.grad_check(loss_of, x, dx).passed(1e-6)
    num_gamma = numeric_gradient(lambda g: np.sum(batchnorm_forward(x, g, beta)[0] * dout), gamma)
    np.testing.assert_allclose(dgamma, num_gamma, rtol=1e-6)


def test_batchnorm_rejects_bad_input():
    x = np.ones((4, 3))
    with pytest.raises(ValueError, match="gamma must have shape"):
        batchnorm_forward(x, np.ones(2), np.zeros(3))
    with pytest.raises(ValueError, match="beta must have shape"):
        batchnorm_forward(x, np.ones(3), np.zeros(2))
    with pytest.raises(ValueError, match="eps"):
        batchnorm_forward(x, np.ones(3), np.zeros(3), eps=0.0)
    with pytest.raises(ValueError, match="dout must have the shape"):
        batchnorm_backward(np.ones((4, 2)), x, np.ones(3))
    with pytest.raises(ValueError, match="feature axis"):
        batchnorm_forward(np.ones(3), np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm(3, momentum=1.0)


def test_numeric_gradient_of_a_known_function():
    x = np.array([[0.5, -1.0], [2.0, 3.0]])
    np.testing.assert_allclose(
        numeric_gradient(lambda v: np.sum(np.sin(v)), x), np.cos(x), rtol=1e-8
    )
