"""Chapter 6's architectures: the from-scratch VGG16 is keras.applications.VGG16, layer by layer.

The cost formulas are checked against what Keras counts (``count_params``) and against the
numbers the papers print, so that the chapter's tables rest on two independent sources.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest
from keras import layers

from cnncourse import architectures as arch
from cnncourse.ops import conv_param_count


def _layers(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def _config(layer: keras.layers.Layer) -> dict:
    """The parts of a layer's configuration that decide what it computes."""
    keys = ("filters", "kernel_size", "strides", "padding", "activation", "pool_size",
            "units", "use_bias", "data_format", "dilation_rate", "groups")
    config = layer.get_config()
    return {k: config[k] for k in keys if k in config}


@pytest.fixture(scope="module")
def vgg_pair() -> tuple[keras.Model, keras.Model]:
    keras.utils.set_random_seed(0)
    return arch.vgg16(), keras.applications.VGG16(weights=None)


# --------------------------------------------------------------------------- VGG16


def test_vgg16_matches_keras_applications_layer_by_layer(vgg_pair):
    ours, ref = vgg_pair
    ours_layers, ref_layers = _layers(ours), _layers(ref)
    assert [layer.name for layer in ours_layers] == [layer.name for layer in ref_layers]
    assert len(ours_layers) == len(ref_layers) == 22
    for a, b in zip(ours_layers, ref_layers, strict=True):
        assert type(a) is type(b), a.name
        assert a.output.shape == b.output.shape, a.name
        assert a.count_params() == b.count_params(), a.name
        assert _config(a) == _config(b), a.name
        assert [w.shape for w in a.weights] == [w.shape for w in b.weights], a.name
    assert ours.input_shape == ref.input_shape == (None, 224, 224, 3)
    assert arch.layer_table(ours) == arch.layer_table(ref)


def test_vgg16_has_the_papers_numbers(vgg_pair):
    ours, _ = vgg_pair
    assert ours.count_params() == 138_357_544
    convs = [layer for layer in ours.layers if isinstance(layer, layers.Conv2D)]
    assert len(convs) == 13
    assert {(c.kernel_size, c.strides, c.padding) for c in convs} == {((3, 3), (1, 1), "same")}
    pools = [layer for layer in ours.layers if isinstance(layer, layers.MaxPooling2D)]
    assert len(pools) == 5 and {(p.pool_size, p.strides) for p in pools} == {((2, 2), (2, 2))}
    dense = [layer.units for layer in ours.layers if isinstance(layer, layers.Dense)]
    assert dense == [4096, 4096, 1000]
    blocks = arch.block_table(ours)
    assert [r["output shape"] for r in blocks[:5]] == [
        (112, 112, 64), (56, 56, 128), (28, 28, 256), (14, 14, 512), (7, 7, 512)
    ]
    assert sum(r["params"] for r in blocks) == 138_357_544
    # 15.47 G multiply-adds, the figure usually quoted as "15.5 GFLOPs".
    assert arch.model_macs(ours) == 15_470_264_320


def test_vgg16_weights_transfer_by_name_and_give_the_same_outputs():
    keras.utils.set_random_seed(1)
    ref = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    ours = arch.vgg16(include_top=False, input_shape=(32, 32, 3))
    for layer in _layers(ours):
        layer.set_weights(ref.get_layer(layer.name).get_weights())
    x = np.random.default_rng(0).uniform(-1, 1, size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        ours.predict(x, verbose=0), ref.predict(x, verbose=0), rtol=1e-5, atol=1e-5
    )
    assert ours.count_params() == ref.count_params() == 14_714_688


def test_vgg16_top_follows_input_size_and_classes():
    model = arch.vgg16(input_shape=(64, 64, 3), classes=10)
    assert model.output_shape == (None, 10)
    assert model.get_layer("fc1").count_params() == 2 * 2 * 512 * 4096 + 4096


@pytest.mark.parametrize(
    "kwargs",
    [
        {"input_shape": (16, 16, 3)},
        {"input_shape": (224, 224)},
        {"classes": 0},
        {"include_top": 1},
    ],
)
def test_vgg16_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        arch.vgg16(**kwargs)


def test_alexnet_has_the_papers_sixty_million_parameters():
    model = arch.alexnet()
    assert model.count_params() == 60_965_224
    assert model.get_layer("conv1").output.shape == (None, 55, 55, 96)
    assert model.get_layer("pool5").output.shape == (None, 6, 6, 256)


# --------------------------------------------------------------------------- blocks


def test_vgg_block_shapes_names_and_params():
    inputs = keras.Input(shape=(15, 15, 8))
    y = arch.vgg_block(inputs, 16, 3, name="demo")
    model = keras.Model(inputs, y)
    assert y.shape == (None, 7, 7, 16)
    assert [r["layer"] for r in arch.layer_table(model)] == [
        "demo_conv1", "demo_conv2", "demo_conv3", "demo_pool"
    ]
    expected = conv_param_count(3, 3, 8, 16) + 2 * conv_param_count(3, 3, 16, 16)
    assert model.count_params() == expected


@pytest.mark.parametrize(
    ("shape", "filters", "stride", "projection"),
    [((28, 28, 16), 16, 1, False), ((28, 28, 16), 32, 2, True), ((7, 7, 8), 16, 1, True),
     ((9, 9, 4), 4, 2, True)],
)
def test_residual_block_shapes_and_shortcut(shape, filters, stride, projection):
    inputs = keras.Input(shape=shape)
    y = arch.residual_block(inputs, filters, stride, batch_norm=False, name="rb")
    model = keras.Model(inputs, y)
    out = -(-shape[0] // stride)
    assert y.shape == (None, out, out, filters)
    names = [layer.name for layer in model.layers]
    assert ("rb_proj" in names) is projection
    expected = conv_param_count(3, 3, shape[2], filters) + conv_param_count(3, 3, filters, filters)
    if projection:
        expected += conv_param_count(1, 1, shape[2], filters)
    assert model.count_params() == expected
    add = model.get_layer("rb_add")
    assert isinstance(add, layers.Add)


def test_residual_block_identity_passes_the_input_through_when_the_branch_is_zero():
    inputs = keras.Input(shape=(6, 6, 4))
    model = keras.Model(inputs, arch.residual_block(inputs, 4, batch_norm=False, name="z"))
    for layer in model.layers:
        if layer.weights:
            layer.set_weights([np.zeros(w.shape) for w in layer.weights])
    x = np.random.default_rng(0).uniform(0, 1, size=(1, 6, 6, 4)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), x)  # relu(0 + x) = x for x >= 0


def test_unnamed_blocks_get_unique_names():
    inputs = keras.Input(shape=(8, 8, 4))
    y = arch.residual_block(arch.residual_block(inputs, 4), 4)
    y = arch.depthwise_separable_conv(arch.depthwise_separable_conv(y, 8), 8)
    keras.Model(inputs, y)  # would raise on duplicate layer names


def test_inception_module_3a_and_what_the_bottlenecks_save():
    inputs = keras.Input(shape=(28, 28, 192))
    full = keras.Model(inputs, arch.inception_module(
        inputs, 64, 128, 32, f3_reduce=96, f5_reduce=16, pool_proj=32, name="i3a"))
    naive = keras.Model(inputs, arch.inception_module(inputs, 64, 128, 32, name="naive"))
    assert full.output_shape == (None, 28, 28, 256)
    assert naive.output_shape == (None, 28, 28, 64 + 128 + 32 + 192)
    expected = (conv_param_count(1, 1, 192, 64) + conv_param_count(1, 1, 192, 96)
                + conv_param_count(3, 3, 96, 128) + conv_param_count(1, 1, 192, 16)
                + conv_param_count(5, 5, 16, 32) + conv_param_count(1, 1, 192, 32))
    assert full.count_params() == expected == 163_696  # GoogLeNet's table: 159K (no biases)
    hw = 28 * 28
    assert arch.model_macs(full) == hw * (192 * 64 + 192 * 96 + 9 * 96 * 128 + 192 * 16
                                          + 25 * 16 * 32 + 192 * 32)
    assert arch.model_macs(naive) > 2 * arch.model_macs(full)


def test_depthwise_separable_conv_params_match_the_formula():
    inputs = keras.Input(shape=(14, 14, 512))
    model = keras.Model(inputs, arch.depthwise_separable_conv(inputs, 512, name="ds"))
    bn = 2 * 4 * 512  # two BatchNormalization layers, 4 numbers per channel
    assert model.count_params() == arch.separable_conv_params(3, 512, 512, use_bias=False) + bn
    assert arch.model_macs(model) == arch.separable_conv_macs(3, 512, 512, 14, 14)
    strided = arch.depthwise_separable_conv(keras.Input(shape=(15, 15, 3)), 8, stride=2)
    assert strided.shape == (None, 8, 8, 8)


@pytest.mark.parametrize("residual", [True, False])
def test_deep_cnn_depth_and_twins(residual):
    model = arch.deep_cnn((28, 28, 1), 10, blocks_per_stage=5, filters=(8, 16, 32),
                          residual=residual, stem_stride=2)
    convs = [layer for layer in model.layers
             if isinstance(layer, layers.Conv2D) and not layer.name.endswith("proj")]
    dense = [layer for layer in model.layers if isinstance(layer, layers.Dense)]
    assert len(convs) + len(dense) == 32
    assert model.output_shape == (None, 10)
    assert model.name == ("resnet32" if residual else "plain32")
    plain = arch.deep_cnn((28, 28, 1), 10, blocks_per_stage=5, filters=(8, 16, 32),
                          residual=False, stem_stride=2)
    projections = conv_param_count(1, 1, 8, 16, use_bias=False) + conv_param_count(
        1, 1, 16, 32, use_bias=False) + 4 * (16 + 32)
    assert model.count_params() - plain.count_params() == (projections if residual else 0)


# --------------------------------------------------------------------------- cost formulas


@pytest.mark.parametrize(
    ("k", "c_in", "c_out", "h", "w"),
    [(3, 3, 64, 224, 224), ((1, 7), 5, 6, 9, 4), (5, 16, 32, 28, 28), (1, 192, 64, 28, 28)],
)
def test_conv_and_separable_costs_match_keras(k, c_in, c_out, h, w):
    inputs = keras.Input(shape=(h, w, c_in))
    conv = keras.Model(inputs, layers.Conv2D(c_out, k, padding="same")(inputs))
    sep = keras.Model(inputs, layers.SeparableConv2D(c_out, k, padding="same")(inputs))
    kh, kw = (k, k) if isinstance(k, int) else k
    assert arch.model_macs(conv) == arch.conv_macs(k, c_in, c_out, h, w)
    assert arch.conv_macs(k, c_in, c_out, h, w) == h * w * kh * kw * c_in * c_out
    assert sep.count_params() == arch.separable_conv_params(k, c_in, c_out)
    assert arch.model_macs(sep) == arch.separable_conv_macs(k, c_in, c_out, h, w)
    ratio = arch.separable_conv_macs(k, c_in, c_out, h, w) / arch.conv_macs(k, c_in, c_out, h, w)
    assert ratio == pytest.approx(1 / c_out + 1 / (kh * kw))


def test_separable_params_with_depth_multiplier_and_no_bias():
    inputs = keras.Input(shape=(8, 8, 4))
    sep = layers.SeparableConv2D(6, 3, depth_multiplier=2, use_bias=False)
    keras.Model(inputs, sep(inputs))
    assert sep.count_params() == arch.separable_conv_params(
        3, 4, 6, use_bias=False, depth_multiplier=2
    )


def test_mobilenet_and_resnet50_multiply_adds_match_their_papers():
    mobilenet = keras.applications.MobileNet(weights=None)
    assert mobilenet.count_params() == 4_253_864
    assert round(arch.model_macs(mobilenet) / 1e6) == 569  # Howard et al. 2017, table 8


def test_receptive_field():
    assert arch.receptive_field([3]) == 3
    assert arch.receptive_field([3, 3]) == 5
    assert arch.receptive_field([3, 3, 3]) == 7
    assert arch.receptive_field([3, 3, 2, 3, 3], strides=[1, 1, 2, 1, 1]) == 14
    assert arch.receptive_field([11, 3], strides=[4, 2]) == 19


def test_receptive_field_is_what_the_gradient_sees():
    # The input pixels with a non-zero gradient for the centre output of two stacked 3x3
    # convolutions form a 5x5 square.
    import tensorflow as tf

    inputs = keras.Input(shape=(11, 11, 1))
    y = layers.Conv2D(1, 3, padding="same", kernel_initializer="ones")(inputs)
    y = layers.Conv2D(1, 3, padding="same", kernel_initializer="ones")(y)
    model = keras.Model(inputs, y)
    x = tf.Variable(np.ones((1, 11, 11, 1), dtype="float32"))
    with tf.GradientTape() as tape:
        centre = model(x)[0, 5, 5, 0]
    grad = tape.gradient(centre, x).numpy()[0, :, :, 0]
    rows, cols = np.nonzero(grad)
    assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (5, 5)


@pytest.mark.parametrize(
    ("fn", "args", "match"),
    [
        (arch.conv_macs, (0, 3, 3, 4, 4), "kernel_size"),
        (arch.conv_macs, (3, 3, 3, 4, 0), "out_w"),
        (arch.separable_conv_params, (3, 3, 3, 1), "use_bias"),
        (arch.separable_conv_macs, ((3, 3, 3), 3, 3, 4, 4), "kernel_size"),
        (arch.receptive_field, ([],), "kernel_sizes"),
        (arch.receptive_field, ([3, 3], [1]), "strides"),
        (arch.receptive_field, ([3, True],), "kernel_sizes"),
    ],
)
def test_cost_functions_reject_bad_arguments(fn, args, match):
    with pytest.raises(ValueError, match=match):
        fn(*args)


def test_model_macs_recurses_into_nested_models():
    inner = keras.Sequential([keras.Input(shape=(8, 8, 3)), layers.Conv2D(4, 3)])
    outer = keras.Sequential([keras.Input(shape=(8, 8, 3)), inner, layers.Flatten(),
                              layers.Dense(5)])
    assert arch.model_macs(outer) == 6 * 6 * 9 * 3 * 4 + 6 * 6 * 4 * 5
    with pytest.raises(ValueError, match="keras.Model"):
        arch.model_macs("vgg16")
