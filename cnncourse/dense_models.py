"""Keras models for dense prediction and 1-D signals (chapter 10, "Beyond classification").

- :func:`tiny_unet`: a two-level U-Net-style segmenter {Ronneberger et al., 2015}: an encoder
  of convolutions and pooling, a decoder of transposed convolutions, skip connections that
  concatenate encoder maps into the decoder, and a 1x1 convolution that gives every pixel a
  softmax over the classes. It has no ``Dense`` and no ``Flatten`` layer, so it accepts
  images of any height and width divisible by 4.
- :func:`grid_detector` and :func:`grid_detection_loss`: a tiny single-stage detector in
  the spirit of YOLO {Redmon et al., 2016}: a fully convolutional network whose output grid
  has five numbers per cell, the format of :func:`cnncourse.dense.encode_grid`.
- :func:`signal_cnn`: a 1-D CNN that classifies signals of any length.

Builders return fresh, uncompiled models that start with ``keras.Input``.
"""

from __future__ import annotations

import keras
from keras import layers, ops

__all__ = ["grid_detection_loss", "grid_detector", "signal_cnn", "tiny_unet"]


def _positive(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def tiny_unet(num_classes: int, channels: int = 1, filters: tuple[int, int, int] = (16, 32, 48)):
    """A U-Net with two poolings for inputs of shape ``(None, None, channels)``.

    Parameters
    ----------
    num_classes : int
        Classes per pixel, including the background.
    channels : int
        Channels of the input images.
    filters : (int, int, int)
        Filters of the first level, the second level and the bottleneck.

    Returns
    -------
    keras.Model
        Maps ``(N, H, W, channels)`` to per-pixel class probabilities ``(N, H, W,
        num_classes)``; ``H`` and ``W`` must be divisible by 4.

    Examples
    --------
    >>> import numpy as np
    >>> model = tiny_unet(4)
    >>> model.output_shape
    (None, None, None, 4)
    >>> model(np.zeros((1, 32, 48, 1))).shape  # any size divisible by 4
    TensorShape([1, 32, 48, 4])
    """
    num_classes, channels = _positive(num_classes, "num_classes"), _positive(channels, "channels")
    f1, f2, f3 = (_positive(f, "filters") for f in filters)

    def conv(x, f, name):
        return layers.Conv2D(f, 3, padding="same", activation="relu", name=name)(x)

    inputs = keras.Input(shape=(None, None, channels), name="image")
    e1 = conv(inputs, f1, "enc1")
    e2 = conv(layers.MaxPooling2D(2, name="pool1")(e1), f2, "enc2")
    bottom = conv(layers.MaxPooling2D(2, name="pool2")(e2), f3, "bottleneck")
    u2 = layers.Conv2DTranspose(f2, 2, strides=2, name="up2")(bottom)
    d2 = conv(layers.Concatenate(name="skip2")([u2, e2]), f2, "dec2")
    u1 = layers.Conv2DTranspose(f1, 2, strides=2, name="up1")(d2)
    d1 = conv(layers.Concatenate(name="skip1")([u1, e1]), f1, "dec1")
    outputs = layers.Conv2D(num_classes, 1, activation="softmax", name="classes")(d1)
    return keras.Model(inputs, outputs, name="tiny_unet")


def grid_detector(channels: int = 1, filters: tuple[int, int, int] = (16, 32, 64)):
    """A fully convolutional detector: three conv + pool blocks, then 5 numbers per cell.

    Each pooling halves the grid, so an image of side ``8 g`` gives a ``g x g`` grid. The
    last layer is a 1x1 convolution with a sigmoid: objectness, the centre's offsets in the
    cell and the box's height and width as fractions of the image, all in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> grid_detector()(np.zeros((2, 48, 48, 1))).shape
    TensorShape([2, 6, 6, 5])
    """
    channels = _positive(channels, "channels")
    inputs = keras.Input(shape=(None, None, channels), name="image")
    x = inputs
    for k, f in enumerate(filters, start=1):
        x = layers.Conv2D(
            _positive(f, "filters"), 3, padding="same", activation="relu", name=f"conv{k}"
        )(x)
        x = layers.MaxPooling2D(2, name=f"pool{k}")(x)
    x = layers.Conv2D(filters[-1], 3, padding="same", activation="relu", name="head")(x)
    outputs = layers.Conv2D(5, 1, activation="sigmoid", name="grid")(x)
    return keras.Model(inputs, outputs, name="grid_detector")


def grid_detection_loss(y_true, y_pred, box_weight: float = 5.0):
    """Objectness cross-entropy on every cell plus box errors on the cells that hold an object.

    ``y_true`` is :func:`cnncourse.dense.encode_grid`'s encoding. The box part is the
    squared error of the four box numbers, counted only where ``y_true[..., 0] == 1`` and
    averaged over those cells, weighted by ``box_weight`` (YOLO weights it 5 too).

    Examples
    --------
    >>> import numpy as np
    >>> t = np.zeros((1, 2, 2, 5), "float32"); t[0, 0, 0] = [1, 0.5, 0.5, 0.2, 0.2]
    >>> float(grid_detection_loss(t, np.clip(t, 1e-7, 1 - 1e-7))) < 1e-5
    True
    """
    objectness = y_true[..., 0]
    bce = keras.losses.binary_crossentropy(y_true[..., :1], y_pred[..., :1])
    box = ops.sum(ops.square(y_true[..., 1:] - y_pred[..., 1:]), axis=-1) * objectness
    n_objects = ops.maximum(ops.sum(objectness), 1.0)
    return ops.mean(bce) + box_weight * ops.sum(box) / n_objects


def signal_cnn(num_classes: int, channels: int = 1, filters: tuple[int, int] = (16, 32)):
    """A 1-D CNN: two Conv1D + pooling blocks, global average pooling, a softmax.

    Global average pooling makes it accept signals of any length.

    Examples
    --------
    >>> import numpy as np
    >>> signal_cnn(3)(np.zeros((2, 100, 1))).shape
    TensorShape([2, 3])
    """
    num_classes, channels = _positive(num_classes, "num_classes"), _positive(channels, "channels")
    f1, f2 = (_positive(f, "filters") for f in filters)
    return keras.Sequential(
        [
            keras.Input(shape=(None, channels), name="signal"),
            layers.Conv1D(f1, 7, padding="same", activation="relu", name="conv1"),
            layers.MaxPooling1D(2, name="pool1"),
            layers.Conv1D(f2, 5, padding="same", activation="relu", name="conv2"),
            layers.GlobalAveragePooling1D(name="average"),
            layers.Dense(num_classes, activation="softmax", name="classes"),
        ],
        name="signal_cnn",
    )
