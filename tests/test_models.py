"""Tests of cnncourse.models: architectures, parameter counts, outputs and validation."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from cnncourse import models


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(0)


@pytest.fixture(autouse=True, scope="module")
def _release_keras_state_at_the_end():
    # Once per module: clear_session() collects garbage and costs ~1 s per call.
    yield
    keras.backend.clear_session()


def _batch(shape, n=4, seed=0):
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


# --------------------------------------------------------------------------------------
# seed_cnn_3class
# --------------------------------------------------------------------------------------


def test_seed_cnn_3class_has_332819_parameters():
    assert models.seed_cnn_3class().count_params() == 332_819


def test_seed_cnn_3class_layer_parameter_counts_match_the_hand_count():
    model = models.seed_cnn_3class()
    counts = {layer.name: layer.count_params() for layer in model.layers}
    assert counts["conv1"] == 3 * 3 * 1 * 32 + 32 == 320
    assert counts["conv2"] == 3 * 3 * 32 * 64 + 64 == 18_496
    assert model.get_layer("flatten").output.shape[1] == 7 * 7 * 64
    assert counts["dense"] == 7 * 7 * 64 * 100 + 100 == 313_700
    assert counts["output"] == 100 * 3 + 3 == 303


def test_seed_cnn_3class_starts_with_an_input_not_input_shape():
    model = models.seed_cnn_3class()
    assert model.input_shape == (None, 28, 28, 1)
    assert all("input_shape" not in layer.get_config() for layer in model.layers)


@pytest.mark.parametrize(
    ("builder", "kwargs", "out"),
    [
        (models.seed_cnn_3class, {}, 3),
        (models.seed_cnn_3class, {"num_classes": 5}, 5),
        (models.mnist_cnn, {}, 10),
        (models.mnist_cnn, {"batch_norm": False, "augment": False}, 10),
        (models.fashion_cnn, {}, 10),
        (models.fashion_cnn, {"input_shape": (32, 32, 3), "num_classes": 4}, 4),
        (models.lenet5, {}, 10),
        (models.lenet5, {"input_shape": (28, 28, 1), "activation": "relu"}, 10),
        (models.small_vgg, {"input_shape": (28, 28, 1), "num_classes": 10}, 10),
        (
            models.small_vgg,
            {"input_shape": (32, 32, 3), "num_classes": 4, "blocks": (8, 16, 32)},
            4,
        ),
    ],
)
def test_builders_output_softmax_probabilities(builder, kwargs, out):
    model = builder(**kwargs)
    x = _batch(model.input_shape[1:])
    probs = np.asarray(model.predict(x, verbose=0))
    assert probs.shape == (4, out)
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_lenet5_has_the_classic_61706_parameters_and_pads_28x28_to_32x32():
    assert models.lenet5().count_params() == 61_706
    padded = models.lenet5((28, 28, 1))
    assert padded.count_params() == 61_706
    assert padded.get_layer("C1").output.shape[1:3] == (28, 28)
    assert padded.get_layer("C5").output.shape[1:] == (1, 1, 120)


def test_small_vgg_has_one_pool_per_block_and_the_requested_convs():
    model = models.small_vgg((32, 32, 1), 10, blocks=(8, 16, 32), convs_per_block=3)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    pools = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert len(convs) == 9 and len(pools) == 3
    assert all(c.kernel_size == (3, 3) and c.padding == "same" for c in convs)
    assert model.get_layer("flatten").output.shape[1] == 4 * 4 * 32


def test_fashion_cnn_keeps_14x14_maps_in_the_second_block_and_counts_its_parameters():
    model = models.fashion_cnn()
    assert model.get_layer("block2_conv").output.shape[1:] == (14, 14, 64)
    assert model.get_layer("flatten").output.shape[1] == 7 * 7 * 64
    # conv weights (no bias) + BN (4 per channel) + dense (no bias) + BN + output layer
    expected = (3 * 3 * 1 * 32 + 4 * 32) + (3 * 3 * 32 * 64 + 4 * 64)
    expected += 3136 * 128 + 4 * 128 + (128 * 10 + 10)
    assert model.count_params() == expected


def test_mnist_cnn_augmentation_is_only_active_in_training():
    model = models.mnist_cnn()
    x = _batch((28, 28, 1), n=2)
    aug = keras.Sequential(model.layers[:2])
    np.testing.assert_array_equal(np.asarray(aug(x, training=False)), x)
    assert not np.allclose(np.asarray(aug(x, training=True)), x)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


def test_compile_classifier_uses_adam_and_sparse_crossentropy():
    model = models.compile_classifier(models.seed_cnn_3class(), learning_rate=0.01)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(0.01)
    assert model.loss == "sparse_categorical_crossentropy"


def test_compile_classifier_with_decay_steps_uses_a_cosine_schedule():
    model = models.compile_classifier(models.seed_cnn_3class(), 2e-3, decay_steps=100)
    config = model.optimizer.get_config()["learning_rate"]
    assert config["class_name"] == "CosineDecay"
    assert config["config"]["initial_learning_rate"] == pytest.approx(2e-3)
    assert config["config"]["decay_steps"] == 100


def test_a_tiny_fit_on_random_data_runs_and_returns_finite_losses():
    rng = np.random.default_rng(0)
    x = rng.random((32, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, size=32)
    model = models.compile_classifier(models.mnist_cnn(filters=(4, 8), dense=8))
    history = model.fit(x, y, epochs=1, batch_size=16, validation_split=0.25, verbose=0)
    assert set(history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert np.all(np.isfinite(history.history["loss"]))


def test_model_round_trips_through_a_keras_file(tmp_path):
    model = models.seed_cnn_3class()
    path = tmp_path / "seed.keras"
    model.save(path)
    again = keras.saving.load_model(path)
    x = _batch((28, 28, 1))
    np.testing.assert_array_equal(model.predict(x, verbose=0), again.predict(x, verbose=0))


# --------------------------------------------------------------------------------------
# Argument validation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: models.seed_cnn_3class(input_shape=(28, 28)), "input_shape"),
        (lambda: models.seed_cnn_3class(input_shape=(2, 2, 1)), "input_shape"),
        (lambda: models.seed_cnn_3class(input_shape="28x28"), "input_shape"),
        (lambda: models.seed_cnn_3class(num_classes=1), "num_classes"),
        (lambda: models.seed_cnn_3class(num_classes=2.5), "num_classes"),
        (lambda: models.mnist_cnn(num_classes=True), "num_classes"),
        (lambda: models.mnist_cnn(filters=(32,)), "filters"),
        (lambda: models.mnist_cnn(filters=(32, 0)), "filters"),
        (lambda: models.mnist_cnn(dropout=1.0), "dropout"),
        (lambda: models.mnist_cnn(dense=0), "dense"),
        (lambda: models.mnist_cnn(batch_norm="yes"), "batch_norm"),
        (lambda: models.mnist_cnn(augment=1), "augment"),
        (lambda: models.mnist_cnn(input_shape=(8, 8, 1)), "input_shape"),
        (lambda: models.fashion_cnn(filters=(32, 64, 128)), "filters"),
        (lambda: models.fashion_cnn(dropout=1.5), "dropout"),
        (lambda: models.fashion_cnn(input_shape=(2, 2, 1)), "input_shape"),
        (lambda: models.lenet5(input_shape=(64, 64, 1)), "input_shape"),
        (lambda: models.lenet5(activation="sigmoid"), "activation"),
        (lambda: models.small_vgg((28, 28, 1), 10, blocks=()), "blocks"),
        (lambda: models.small_vgg((8, 8, 1), 10, blocks=(8, 8, 8, 8)), "input_shape"),
        (lambda: models.small_vgg((28, 28, 1), 10, convs_per_block=0), "convs_per_block"),
        (lambda: models.small_vgg((28, 28, 1), 10, dropout=-0.1), "dropout"),
        (lambda: models.compile_classifier("model"), "model"),
        (
            lambda: models.compile_classifier(models.seed_cnn_3class(), learning_rate=0),
            "learning_rate",
        ),
        (
            lambda: models.compile_classifier(models.seed_cnn_3class(), decay_steps=0),
            "decay_steps",
        ),
    ],
)
def test_builders_reject_bad_arguments_naming_them(call, name):
    with pytest.raises(ValueError, match=name):
        call()
