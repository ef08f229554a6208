"""Classic CNN architectures, their building blocks and what they cost.

Chapter 6 ("Classic architectures") takes the landmark ImageNet networks apart. This module
holds what it builds and counts:

- builders: :func:`vgg16` written from scratch with the layer names of
  ``keras.applications.VGG16`` (so ImageNet weights can be copied into it layer by layer),
  :func:`alexnet` (the 2012 two-GPU layout, for counting only) and :func:`deep_cnn`, a
  CIFAR-style ResNet whose ``residual=False`` twin is the "plain" network of the
  degradation experiment;
- functional-API blocks: :func:`vgg_block`, :func:`residual_block`,
  :func:`inception_module` and :func:`depthwise_separable_conv`;
- pure-integer cost formulas -- :func:`conv_macs`, :func:`separable_conv_params`,
  :func:`separable_conv_macs`, :func:`receptive_field` -- and :func:`model_macs`,
  which adds up the multiply-adds of a whole Keras model, plus :func:`layer_table` and
  :func:`block_table` that turn a model into rows for a table.

Conventions. A *multiply-add* (MAC) is one multiplication followed by one addition; a
convolution with a ``kh x kw`` kernel, ``C_in`` input and ``C_out`` output channels costs
``H_out * W_out * kh * kw * C_in * C_out`` of them (biases, activations, pooling and
normalisation are left out, as in the papers). Papers that say "FLOPs" for these counts
usually mean multiply-adds; twice the number is the count of floating-point operations.

Defined in chapter 6.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import keras
from keras import layers

__all__ = [
    "VGG16_BLOCKS",
    "alexnet",
    "block_table",
    "conv_macs",
    "deep_cnn",
    "depthwise_separable_conv",
    "inception_module",
    "layer_table",
    "model_macs",
    "receptive_field",
    "residual_block",
    "separable_conv_macs",
    "separable_conv_params",
    "vgg16",
    "vgg_block",
]

#: VGG16's five blocks as ``(filters, convolutions)``: configuration "D" of Simonyan and
#: Zisserman (2014), 13 convolution layers in all.
VGG16_BLOCKS: tuple[tuple[int, int], ...] = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


#: Counters behind the default layer-name prefixes ("res1", "res2", ...), so that blocks
#: built without a name never clash inside one model.
_NAME_COUNTERS: defaultdict[str, itertools.count] = defaultdict(lambda: itertools.count(1))

# --------------------------------------------------------------------------------------
# Argument validation
# --------------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(value: object, name: str) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")
    return int(value)


def _kernel(value: object, name: str = "kernel_size") -> tuple[int, int]:
    """An int ``k`` or a pair ``(kh, kw)`` of positive ints, returned as a pair."""
    if _is_int(value):
        return _positive_int(value, name), int(value)
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and len(value) == 2
        and all(_is_int(v) and v > 0 for v in value)
    ):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name} must be a positive int or a pair (kh, kw) of them, got {value!r}.")


def _input_shape(value: object, *, min_size: int = 1) -> tuple[int, int, int]:
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) != 3
        or not all(_is_int(v) and v > 0 for v in value)
    ):
        raise ValueError(
            "input_shape must be a tuple (height, width, channels) of three positive ints, "
            f"got {value!r}."
        )
    height, width, channels = (int(v) for v in value)
    if height < min_size or width < min_size:
        raise ValueError(
            f"input_shape must be at least {min_size}x{min_size} pixels for this model, "
            f"got {height}x{width}."
        )
    return height, width, channels


def _bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}.")
    return value


def _prefix(name: str | None, default: str) -> str:
    if name is None:
        return f"{default}{next(_NAME_COUNTERS[default])}"
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string or None, got {name!r}.")
    return name


# --------------------------------------------------------------------------------------
# Cost formulas (pure integers)
# --------------------------------------------------------------------------------------


def conv_macs(kernel_size: int | tuple[int, int], c_in: int, c_out: int, out_h: int,
              out_w: int) -> int:
    """Multiply-adds of a standard convolution: ``out_h * out_w * kh * kw * c_in * c_out``.

    Every one of the ``out_h * out_w * c_out`` output values is a dot product of length
    ``kh * kw * c_in``. Biases are not counted.

    Parameters
    ----------
    kernel_size : int or (int, int)
    c_in, c_out : int
        Input and output channels.
    out_h, out_w : int
        Size of the output feature map.

    Returns
    -------
    int

    Examples
    --------
    VGG16's first layer, 3x3 from 3 to 64 channels on a 224x224 map:

    >>> conv_macs(3, 3, 64, 224, 224)
    86704128
    """
    kh, kw = _kernel(kernel_size)
    c_in = _positive_int(c_in, "c_in")
    c_out = _positive_int(c_out, "c_out")
    out_h = _positive_int(out_h, "out_h")
    out_w = _positive_int(out_w, "out_w")
    return out_h * out_w * kh * kw * c_in * c_out


def separable_conv_params(kernel_size: int | tuple[int, int], c_in: int, c_out: int,
                          use_bias: bool = True, depth_multiplier: int = 1) -> int:
    """Parameters of a depthwise-separable convolution (``keras.layers.SeparableConv2D``).

    A depthwise ``kh x kw`` kernel per input channel (``kh * kw * c_in * depth_multiplier``
    weights, no bias) followed by a pointwise 1x1 convolution from
    ``c_in * depth_multiplier`` to ``c_out`` channels, which carries the ``c_out`` biases
    when ``use_bias``. MobileNet uses ``use_bias=False`` (batch normalisation follows).

    Parameters
    ----------
    kernel_size : int or (int, int)
    c_in, c_out : int
    use_bias : bool, default=True
        As in Keras' ``SeparableConv2D``: one bias per output channel.
    depth_multiplier : int, default=1

    Returns
    -------
    int

    Examples
    --------
    >>> separable_conv_params(3, 512, 512, use_bias=False)  # 3*3*512 + 512*512
    266752
    """
    kh, kw = _kernel(kernel_size)
    c_in = _positive_int(c_in, "c_in")
    c_out = _positive_int(c_out, "c_out")
    use_bias = _bool(use_bias, "use_bias")
    dm = _positive_int(depth_multiplier, "depth_multiplier")
    return kh * kw * c_in * dm + c_in * dm * c_out + (c_out if use_bias else 0)


def separable_conv_macs(kernel_size: int | tuple[int, int], c_in: int, c_out: int, out_h: int,
                        out_w: int, depth_multiplier: int = 1) -> int:
    """Multiply-adds of a depthwise-separable convolution.

    ``out_h * out_w * (kh * kw * c_in * m + c_in * m * c_out)`` with ``m`` the depth
    multiplier: the depthwise step filters each channel on its own, the pointwise step
    mixes channels. Against :func:`conv_macs` the ratio is ``1 / c_out + 1 / (kh * kw)``
    (for ``m = 1``).

    Examples
    --------
    >>> round(separable_conv_macs(3, 512, 512, 14, 14) / conv_macs(3, 512, 512, 14, 14), 4)
    0.1131
    """
    kh, kw = _kernel(kernel_size)
    c_in = _positive_int(c_in, "c_in")
    c_out = _positive_int(c_out, "c_out")
    out_h = _positive_int(out_h, "out_h")
    out_w = _positive_int(out_w, "out_w")
    dm = _positive_int(depth_multiplier, "depth_multiplier")
    return out_h * out_w * (kh * kw * c_in * dm + c_in * dm * c_out)


def receptive_field(kernel_sizes: Sequence[int], strides: Sequence[int] | None = None) -> int:
    """Side of the input region that one output value of a stack of layers depends on.

    For layers ``i = 1..L`` with kernel ``k_i`` and stride ``s_i`` (convolutions or
    poolings), ``r = 1 + sum_i (k_i - 1) * s_1 * ... * s_(i-1)``: each layer widens the
    region by ``k_i - 1`` of its own input pixels, and a pixel of that input spans the
    product of the earlier strides.

    Parameters
    ----------
    kernel_sizes : sequence of int
        Kernel (or pooling window) of each layer, first layer first.
    strides : sequence of int, optional
        Stride of each layer; default all 1.

    Returns
    -------
    int

    Examples
    --------
    Two stacked 3x3 convolutions see 5x5 pixels, three see 7x7:

    >>> receptive_field([3, 3]), receptive_field([3, 3, 3])
    (5, 7)
    >>> receptive_field([3, 3, 2, 3], strides=[1, 1, 2, 1])  # conv, conv, pool, conv
    10
    """
    if isinstance(kernel_sizes, str) or not isinstance(kernel_sizes, Sequence) or not kernel_sizes:
        raise ValueError(
            f"kernel_sizes must be a non-empty sequence of ints, got {kernel_sizes!r}."
        )
    ks = [_positive_int(k, "kernel_sizes[i]") for k in kernel_sizes]
    if strides is None:
        ss = [1] * len(ks)
    else:
        if isinstance(strides, str) or not isinstance(strides, Sequence) or len(strides) != len(ks):
            raise ValueError(
                f"strides must be a sequence of {len(ks)} ints (one per layer), got {strides!r}."
            )
        ss = [_positive_int(s, "strides[i]") for s in strides]
    field, jump = 1, 1
    for k, s in zip(ks, ss, strict=True):
        field += (k - 1) * jump
        jump *= s
    return field


def _shape_of(tensor: Any) -> tuple[int, ...]:
    return tuple(int(d) if d is not None else -1 for d in tensor.shape)


def _layer_macs(layer: keras.layers.Layer) -> int:
    """Multiply-adds of one (non-nested) layer; 0 for layers without weights to multiply."""
    if isinstance(layer, layers.SeparableConv2D):
        out = _shape_of(layer.output)
        c_in = _shape_of(layer.input)[-1]
        kh, kw = layer.kernel_size
        return separable_conv_macs(
            (kh, kw), c_in, out[-1], out[1], out[2], depth_multiplier=layer.depth_multiplier
        )
    if isinstance(layer, layers.DepthwiseConv2D):
        out = _shape_of(layer.output)
        kh, kw = layer.kernel_size
        return out[1] * out[2] * kh * kw * out[-1]
    if isinstance(layer, layers.Conv2D):
        out = _shape_of(layer.output)
        c_in = _shape_of(layer.input)[-1]
        kh, kw = layer.kernel_size
        return out[1] * out[2] * kh * kw * (c_in // layer.groups) * out[-1]
    if isinstance(layer, layers.Dense):
        shape_in = _shape_of(layer.input)
        positions = math.prod(shape_in[1:-1])  # Dense on a (N, ..., D) tensor acts per position
        return positions * shape_in[-1] * layer.units
    return 0


def model_macs(model: keras.Model) -> int:
    """Multiply-adds of one forward pass of ``model`` for one image.

    Counts ``Conv2D`` (grouped too), ``DepthwiseConv2D``, ``SeparableConv2D`` and
    ``Dense`` layers, recursing into nested models; everything else (pooling, activations,
    batch normalisation, additions) counts as zero, the convention of the papers. The
    model must be built with a fixed input size.

    Parameters
    ----------
    model : keras.Model

    Returns
    -------
    int

    Examples
    --------
    >>> model_macs(vgg16(include_top=False, input_shape=(32, 32, 3)))
    313196544
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, got {type(model).__name__}.")
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += model_macs(layer)
            continue
        try:
            total += _layer_macs(layer)
        except (AttributeError, ValueError) as exc:  # a layer used twice has no single output
            raise ValueError(
                f"cannot count the multiply-adds of layer {layer.name!r} "
                f"({type(layer).__name__}): {exc}"
            ) from exc
    return int(total)


def layer_table(model: keras.Model) -> list[dict[str, Any]]:
    """One row per layer: name, class, output shape (without the batch axis), parameters, MACs.

    The rows are plain dicts, ready for ``pandas.DataFrame(layer_table(model))``; the
    input layer of a functional model is left out (Keras' own ``summary`` shows it with
    0 parameters). ``MACs`` are the layer's multiply-adds for one image, counted as in
    :func:`model_macs`.

    Examples
    --------
    >>> rows = layer_table(vgg16(include_top=False, input_shape=(32, 32, 3)))
    >>> rows[0]["layer"], rows[0]["output shape"], rows[0]["params"], rows[0]["MACs"]
    ('block1_conv1', (32, 32, 64), 1792, 1769472)
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, got {type(model).__name__}.")
    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        macs = model_macs(layer) if isinstance(layer, keras.Model) else _layer_macs(layer)
        rows.append(
            {
                "layer": layer.name,
                "type": type(layer).__name__,
                "output shape": tuple(_shape_of(layer.output)[1:]),
                "params": int(layer.count_params()),
                "MACs": int(macs),
            }
        )
    return rows


def block_table(model: keras.Model) -> list[dict[str, Any]]:
    """Sum :func:`layer_table` over blocks: layers named ``blockN_...`` form block ``blockN``.

    Every other layer (``flatten``, ``fc1``, ...) is a row of its own. Each row has the
    block's name, its number of layers, the output shape of its last layer, its parameter
    count and its multiply-adds.

    Examples
    --------
    >>> [row["block"] for row in block_table(vgg16())]
    ['block1', 'block2', 'block3', 'block4', 'block5', 'flatten', 'fc1', 'fc2', 'predictions']
    """
    rows: list[dict[str, Any]] = []
    for row in layer_table(model):
        name = row["layer"]
        block = name.split("_")[0] if name.startswith("block") else name
        if rows and rows[-1]["block"] == block:
            rows[-1]["layers"] += 1
            rows[-1]["output shape"] = row["output shape"]
            rows[-1]["params"] += row["params"]
            rows[-1]["MACs"] += row["MACs"]
        else:
            rows.append(
                {
                    "block": block,
                    "layers": 1,
                    "output shape": row["output shape"],
                    "params": row["params"],
                    "MACs": row["MACs"],
                }
            )
    return rows


# --------------------------------------------------------------------------------------
# Building blocks (functional API: tensor in, tensor out)
# --------------------------------------------------------------------------------------


def vgg_block(x: Any, filters: int, n_convs: int, *, name: str = "block1") -> Any:
    """A VGG block: ``n_convs`` 3x3 convolutions (stride 1, "same", ReLU), then 2x2 max pooling.

    Layers are named ``{name}_conv1 ... {name}_conv{n_convs}`` and ``{name}_pool``, the
    names ``keras.applications.VGG16`` uses. "same" padding with a 3x3 kernel is a padding
    of 1 pixel, so the convolutions keep the size and only the pooling halves it.

    Parameters
    ----------
    x : Keras tensor of shape (N, H, W, C)
    filters : int
    n_convs : int
    name : str, default="block1"

    Returns
    -------
    Keras tensor of shape (N, H // 2, W // 2, filters)

    Examples
    --------
    >>> inputs = keras.Input(shape=(224, 224, 3))
    >>> vgg_block(inputs, 64, 2).shape
    (None, 112, 112, 64)
    """
    filters = _positive_int(filters, "filters")
    n_convs = _positive_int(n_convs, "n_convs")
    name = _prefix(name, "block")
    for i in range(1, n_convs + 1):
        x = layers.Conv2D(
            filters, (3, 3), strides=1, padding="same", activation="relu", name=f"{name}_conv{i}"
        )(x)
    return layers.MaxPooling2D((2, 2), strides=(2, 2), name=f"{name}_pool")(x)


def residual_block(
    x: Any,
    filters: int,
    stride: int = 1,
    *,
    batch_norm: bool = True,
    name: str | None = None,
) -> Any:
    """A basic residual block of He et al. (2016): ``relu(F(x) + shortcut(x))``.

    The residual branch ``F`` is Conv(3x3, ``stride``) -> [BN] -> ReLU -> Conv(3x3) ->
    [BN]. The shortcut is the input itself (*identity*) when the shapes already agree, and a
    1x1 convolution with the same stride (a *projection*, followed by BN) when ``stride > 1``
    or the number of channels changes. The two are added and passed through ReLU.

    With ``batch_norm`` the convolutions have no bias (the normalisation's shift replaces
    it). Batch normalisation uses ``momentum=0.9`` so that its running statistics settle
    within the few hundred steps of the chapter's short trainings; the Keras default 0.99
    needs thousands.

    Parameters
    ----------
    x : Keras tensor of shape (N, H, W, C)
    filters : int
        Output channels.
    stride : int, default=1
        Stride of the first convolution (and of the projection); 2 halves the map.
    batch_norm : bool, default=True
    name : str, optional
        Prefix of the layer names; a unique one by default.

    Returns
    -------
    Keras tensor of shape (N, ceil(H / stride), ceil(W / stride), filters)

    Examples
    --------
    >>> inputs = keras.Input(shape=(28, 28, 16))
    >>> residual_block(inputs, 32, stride=2).shape
    (None, 14, 14, 32)
    """
    filters = _positive_int(filters, "filters")
    stride = _positive_int(stride, "stride")
    batch_norm = _bool(batch_norm, "batch_norm")
    name = _prefix(name, "res")

    def conv(t: Any, k: int, s: int, suffix: str) -> Any:
        t = layers.Conv2D(filters, k, strides=s, padding="same", use_bias=not batch_norm,
                          name=f"{name}_{suffix}")(t)
        if batch_norm:
            t = layers.BatchNormalization(momentum=0.9, name=f"{name}_{suffix}_bn")(t)
        return t

    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = conv(x, 1, stride, "proj")
    y = conv(x, 3, stride, "conv1")
    y = layers.Activation("relu", name=f"{name}_relu1")(y)
    y = conv(y, 3, 1, "conv2")
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.Activation("relu", name=f"{name}_out")(y)


def inception_module(
    x: Any,
    f1: int,
    f3: int,
    f5: int,
    *,
    f3_reduce: int | None = None,
    f5_reduce: int | None = None,
    pool_proj: int | None = None,
    name: str | None = None,
) -> Any:
    """An Inception module (Szegedy et al., 2015): four parallel branches, concatenated.

    Branches: 1x1 conv (``f1``); [1x1 conv (``f3_reduce``) ->] 3x3 conv (``f3``);
    [1x1 conv (``f5_reduce``) ->] 5x5 conv (``f5``); 3x3 max pooling, stride 1
    [-> 1x1 conv (``pool_proj``)]. All use "same" padding and ReLU, so every branch keeps
    the spatial size and the outputs can be stacked along the channels.

    Leave the three optional 1x1 sizes at ``None`` to get the paper's *naive* module;
    give them to get the module GoogLeNet actually uses, whose 1x1 *bottlenecks* shrink the
    channels before the expensive 3x3 and 5x5 convolutions.

    Parameters
    ----------
    x : Keras tensor of shape (N, H, W, C)
    f1, f3, f5 : int
        Output channels of the 1x1, 3x3 and 5x5 branches.
    f3_reduce, f5_reduce, pool_proj : int, optional
        Channels of the 1x1 convolutions before the 3x3 and 5x5 and after the pooling.
    name : str, optional

    Returns
    -------
    Keras tensor of shape (N, H, W, f1 + f3 + f5 + (pool_proj or C))

    Examples
    --------
    GoogLeNet's module "3a":

    >>> inputs = keras.Input(shape=(28, 28, 192))
    >>> y = inception_module(inputs, 64, 128, 32, f3_reduce=96, f5_reduce=16, pool_proj=32)
    >>> y.shape
    (None, 28, 28, 256)
    """
    f1, f3, f5 = (_positive_int(v, n) for v, n in ((f1, "f1"), (f3, "f3"), (f5, "f5")))
    for value, label in ((f3_reduce, "f3_reduce"), (f5_reduce, "f5_reduce"),
                         (pool_proj, "pool_proj")):
        if value is not None:
            _positive_int(value, label)
    name = _prefix(name, "inception")

    def conv(t: Any, filters: int, k: int, suffix: str) -> Any:
        return layers.Conv2D(filters, k, padding="same", activation="relu",
                             name=f"{name}_{suffix}")(t)

    b1 = conv(x, f1, 1, "1x1")
    b3 = conv(x, f3_reduce, 1, "3x3_reduce") if f3_reduce else x
    b3 = conv(b3, f3, 3, "3x3")
    b5 = conv(x, f5_reduce, 1, "5x5_reduce") if f5_reduce else x
    b5 = conv(b5, f5, 5, "5x5")
    bp = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    if pool_proj:
        bp = conv(bp, pool_proj, 1, "pool_proj")
    return layers.Concatenate(axis=-1, name=f"{name}_concat")([b1, b3, b5, bp])


def depthwise_separable_conv(
    x: Any, filters: int, stride: int = 1, *, name: str | None = None
) -> Any:
    """MobileNet's building block: depthwise 3x3 -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU.

    The depthwise convolution filters every input channel with its own 3x3 kernel (no
    mixing of channels); the pointwise 1x1 convolution then mixes the channels. Neither has
    a bias (batch normalisation follows each). Howard et al. (2017), "MobileNets: Efficient
    Convolutional Neural Networks for Mobile Vision Applications", arXiv:1704.04861.

    Parameters
    ----------
    x : Keras tensor of shape (N, H, W, C)
    filters : int
        Output channels of the pointwise convolution.
    stride : int, default=1
        Stride of the depthwise convolution.
    name : str, optional

    Returns
    -------
    Keras tensor of shape (N, ceil(H / stride), ceil(W / stride), filters)

    Examples
    --------
    >>> inputs = keras.Input(shape=(14, 14, 512))
    >>> depthwise_separable_conv(inputs, 512).shape
    (None, 14, 14, 512)
    """
    filters = _positive_int(filters, "filters")
    stride = _positive_int(stride, "stride")
    name = _prefix(name, "dwsep")
    x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False,
                               name=f"{name}_dw")(x)
    x = layers.BatchNormalization(name=f"{name}_dw_bn")(x)
    x = layers.Activation("relu", name=f"{name}_dw_relu")(x)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_pw")(x)
    x = layers.BatchNormalization(name=f"{name}_pw_bn")(x)
    return layers.Activation("relu", name=f"{name}_pw_relu")(x)


# --------------------------------------------------------------------------------------
# Whole networks
# --------------------------------------------------------------------------------------


def vgg16(
    include_top: bool = True,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    classes: int = 1000,
) -> keras.Model:
    """VGG16 written from scratch, layer for layer the same as ``keras.applications.VGG16``.

    Five :func:`vgg_block` s with (64, 2), (128, 2), (256, 3), (512, 3), (512, 3) filters
    and convolutions -- 13 convolutions of 3x3 with stride 1 and padding 1 (Keras'
    "same"), each block ended by 2x2 max pooling with stride 2 -- then, with
    ``include_top``, Flatten -> fc1 Dense(4096, ReLU) -> fc2 Dense(4096, ReLU) ->
    predictions Dense(``classes``, softmax). Names, shapes and parameter counts match the
    Keras application, so its ImageNet weights can be copied over by layer name. On a
    224x224x3 input with 1000 classes the model has 138,357,544 parameters.

    The 2014 paper trained with dropout 0.5 after fc1 and fc2; like the Keras
    application, this model has no dropout layers (add them when training from scratch).

    Parameters
    ----------
    include_top : bool, default=True
        Add the three dense layers. Without them the output is block5's pooled map.
    input_shape : tuple of int, default=(224, 224, 3)
        ``(H, W, C)``, each side at least 32 pixels (five poolings must leave a map).
    classes : int, default=1000
        Units of the output layer (only with ``include_top``).

    Returns
    -------
    keras.Model
        Uncompiled functional model named ``"vgg16"``.

    Examples
    --------
    >>> vgg16().count_params()
    138357544
    >>> vgg16(include_top=False, input_shape=(32, 32, 3)).output_shape
    (None, 1, 1, 512)
    """
    include_top = _bool(include_top, "include_top")
    shape = _input_shape(input_shape, min_size=32)
    classes = _positive_int(classes, "classes")
    inputs = keras.Input(shape=shape)
    x = inputs
    for b, (filters, n_convs) in enumerate(VGG16_BLOCKS, start=1):
        x = vgg_block(x, filters, n_convs, name=f"block{b}")
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc1")(x)
        x = layers.Dense(4096, activation="relu", name="fc2")(x)
        x = layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name="vgg16")


def alexnet(input_shape: tuple[int, int, int] = (227, 227, 3), classes: int = 1000) -> keras.Model:
    """AlexNet (Krizhevsky et al., 2012) with the paper's two-GPU split as grouped convolutions.

    conv1 96@11x11/4 -> pool 3x3/2 -> conv2 256@5x5 (2 groups) -> pool -> conv3 384@3x3 ->
    conv4 384@3x3 (2 groups) -> conv5 256@3x3 (2 groups) -> pool -> fc6 4096 -> dropout ->
    fc7 4096 -> dropout -> fc8 ``classes``. Two groups reproduce the paper's layout, in
    which half of the kernels lived on each of two GPUs and conv2, conv4 and conv5 only saw
    the maps on their own GPU. Local response normalisation is left out (Keras has no such
    layer, and later work found it of little use). The paper says 224x224 inputs, but its
    layer sizes (55x55 after conv1) only work out for 227x227.

    With the defaults the model has 60,965,224 parameters -- the paper's "60 million".
    It is meant for counting: TensorFlow cannot run grouped convolutions on every CPU.

    Examples
    --------
    >>> alexnet().count_params()
    60965224
    """
    shape = _input_shape(input_shape, min_size=67)
    classes = _positive_int(classes, "classes")
    inputs = keras.Input(shape=shape)
    x = layers.Conv2D(96, 11, strides=4, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = layers.Conv2D(256, 5, padding="same", groups=2, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool2")(x)
    x = layers.Conv2D(384, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.Conv2D(384, 3, padding="same", groups=2, activation="relu", name="conv4")(x)
    x = layers.Conv2D(256, 3, padding="same", groups=2, activation="relu", name="conv5")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(4096, activation="relu", name="fc6")(x)
    x = layers.Dropout(0.5, name="drop6")(x)
    x = layers.Dense(4096, activation="relu", name="fc7")(x)
    x = layers.Dropout(0.5, name="drop7")(x)
    x = layers.Dense(classes, activation="softmax", name="fc8")(x)
    return keras.Model(inputs, x, name="alexnet")


def deep_cnn(
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    blocks_per_stage: int = 3,
    filters: tuple[int, int, int] = (16, 32, 64),
    residual: bool = True,
    stem_stride: int = 1,
) -> keras.Model:
    """A CIFAR-style ResNet (He et al., 2016, section 4.2), or its plain twin (``residual=False``).

    Stem Conv(3x3, ``filters[0]``, ``stem_stride``) -> BN -> ReLU, then three stages of
    ``blocks_per_stage`` :func:`residual_block` s each (the first block of stages 2 and 3
    halves the map), global average pooling and a softmax layer. That is
    ``6 * blocks_per_stage + 2`` layers with weights: 20 for 3 blocks, 32 for 5.

    With ``residual=False`` every block is the same two convolutions with batch
    normalisation but without the shortcut, so the two networks have the same depth and,
    apart from the two 1x1 projections, the same parameters.

    Parameters
    ----------
    input_shape : tuple of int
    num_classes : int
    blocks_per_stage : int, default=3
    filters : tuple of three ints, default=(16, 32, 64)
    residual : bool, default=True
    stem_stride : int, default=1
        2 halves the input first (cheaper on small machines).

    Returns
    -------
    keras.Model
        Uncompiled.

    Examples
    --------
    >>> plain = deep_cnn((28, 28, 1), 10, residual=False)
    >>> sum(isinstance(layer, keras.layers.Conv2D) for layer in plain.layers)
    19
    """
    shape = _input_shape(input_shape, min_size=4)
    num_classes = _positive_int(num_classes, "num_classes")
    n = _positive_int(blocks_per_stage, "blocks_per_stage")
    if (
        isinstance(filters, str)
        or not isinstance(filters, Sequence)
        or len(filters) != 3
        or not all(_is_int(f) and f > 0 for f in filters)
    ):
        raise ValueError(f"filters must be a tuple of three positive ints, got {filters!r}.")
    residual = _bool(residual, "residual")
    stem_stride = _positive_int(stem_stride, "stem_stride")
    kind = "res" if residual else "plain"

    inputs = keras.Input(shape=shape)
    x = layers.Conv2D(filters[0], 3, strides=stem_stride, padding="same", use_bias=False,
                      name="stem")(inputs)
    x = layers.BatchNormalization(momentum=0.9, name="stem_bn")(x)
    x = layers.Activation("relu", name="stem_relu")(x)
    for stage, f in enumerate(filters, start=1):
        for block in range(1, n + 1):
            stride = 2 if stage > 1 and block == 1 else 1
            name = f"stage{stage}_{kind}{block}"
            if residual:
                x = residual_block(x, f, stride, name=name)
            else:
                for i, s in ((1, stride), (2, 1)):
                    x = layers.Conv2D(f, 3, strides=s, padding="same", use_bias=False,
                                      name=f"{name}_conv{i}")(x)
                    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_conv{i}_bn")(x)
                    x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="output")(x)
    depth = 6 * n + 2
    return keras.Model(inputs, outputs, name=f"{'resnet' if residual else 'plain'}{depth}")
