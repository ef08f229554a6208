"""Tests of cnncourse.pipelines: splits, tf.data pipelines, augmenters, the flip detector."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest

from cnncourse import pipelines


@pytest.fixture(autouse=True, scope="module")
def _release_keras_state_at_the_end():
    yield
    keras.backend.clear_session()


def _gamma_shapes(n: int = 6, size: int = 28) -> np.ndarray:
    """Asymmetric test images: a vertical bar with a bar to its right at the top (a Γ)."""
    x = np.zeros((n, size, size), dtype=np.float32)
    for i in range(n):
        top, left = 6 + i % 3, 8 + i % 4
        x[i, top : top + 14, left : left + 3] = 1.0
        x[i, top : top + 3, left : left + 10] = 1.0
    return x


# --------------------------------------------------------------------------------------
# train_val_split
# --------------------------------------------------------------------------------------


def test_train_val_split_partitions_the_data_and_keeps_pairs():
    x = np.arange(50)[:, None] * np.ones((1, 3))
    y = np.arange(50)
    (xt, yt), (xv, yv) = pipelines.train_val_split(x, y, 10, seed=3)
    assert len(xt) == 40 and len(xv) == 10
    assert sorted(np.concatenate([yt, yv]).tolist()) == list(range(50))
    np.testing.assert_array_equal(xt[:, 0], yt)
    np.testing.assert_array_equal(xv[:, 0], yv)


def test_train_val_split_is_reproducible_per_seed_and_accepts_a_fraction():
    x, y = np.zeros((20, 2)), np.arange(20)
    a = pipelines.train_val_split(x, y, 0.25, seed=1)[1][1]
    b = pipelines.train_val_split(x, y, 0.25, seed=1)[1][1]
    c = pipelines.train_val_split(x, y, 0.25, seed=2)[1][1]
    assert len(a) == 5
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    ("x", "y", "val_size", "words"),
    [
        (np.zeros(5), np.zeros(4), 1, "same length"),
        (np.zeros(5), np.zeros(5), 5, "must leave training data"),
        (np.zeros(5), np.zeros(5), 1.5, "fraction"),
        (np.zeros(5), np.zeros(5), 0, "val_size"),
    ],
)
def test_train_val_split_rejects_bad_arguments(x, y, val_size, words):
    with pytest.raises(ValueError, match=words):
        pipelines.train_val_split(x, y, val_size)


# --------------------------------------------------------------------------------------
# make_dataset
# --------------------------------------------------------------------------------------


def test_make_dataset_batches_in_order_without_shuffle():
    x = np.arange(10, dtype=np.float32)[:, None]
    ds = pipelines.make_dataset(x, np.arange(10), batch_size=4)
    batches = [(xb.numpy()[:, 0], yb.numpy()) for xb, yb in ds]
    assert [len(yb) for _, yb in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in batches]), np.arange(10))


def test_make_dataset_shuffles_every_epoch_and_keeps_labels_with_images():
    x = np.arange(100, dtype=np.float32)[:, None]
    ds = pipelines.make_dataset(x, np.arange(100), batch_size=16, shuffle=True, seed=0)
    orders = []
    for _ in range(2):
        xs, ys = zip(*[(xb.numpy()[:, 0], yb.numpy()) for xb, yb in ds], strict=True)
        xs, ys = np.concatenate(xs), np.concatenate(ys)
        np.testing.assert_array_equal(xs, ys)  # pairs survive the shuffle
        assert sorted(ys.tolist()) == list(range(100))
        orders.append(ys)
    assert not np.array_equal(orders[0], np.arange(100))
    assert not np.array_equal(orders[0], orders[1])  # reshuffled each epoch


def test_make_dataset_applies_map_fn_to_batches_and_works_without_labels():
    x = np.ones((6, 2, 2, 1), dtype=np.float32)
    ds = pipelines.make_dataset(x, batch_size=4, map_fn=lambda b: b * 2.0, cache=False)
    out = np.concatenate([b.numpy() for b in ds])
    np.testing.assert_array_equal(out, 2.0 * x)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [({"batch_size": 0}, "batch_size"), ({"map_fn": 3}, "map_fn")],
)
def test_make_dataset_rejects_bad_arguments(kwargs, words):
    with pytest.raises(ValueError, match=words):
        pipelines.make_dataset(np.zeros((4, 2)), np.zeros(4), **kwargs)


# --------------------------------------------------------------------------------------
# augmenter_from_spec and digit_augmenter
# --------------------------------------------------------------------------------------


def test_augmenter_from_spec_builds_the_layers_in_order():
    spec = [
        ("RandomRotation", {"factor": 0.03, "fill_mode": "constant"}),
        ("RandomZoom", {"height_factor": (-0.1, 0.1)}),
    ]
    aug = pipelines.augmenter_from_spec(spec, input_shape=(28, 28, 1), seed=0)
    assert [type(layer).__name__ for layer in aug.layers] == ["RandomRotation", "RandomZoom"]
    assert aug.layers[1].height_factor == (-0.1, 0.1)


def test_augmenter_from_spec_is_reproducible_with_a_seed():
    spec = [("RandomTranslation", {"height_factor": 0.1, "width_factor": 0.1})]
    x = _gamma_shapes()[..., None]
    a = pipelines.augmenter_from_spec(spec, seed=5)(x, training=True)
    b = pipelines.augmenter_from_spec(spec, seed=5)(x, training=True)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("RandomFlip", "list of"),
        ([("Conv2D", {"filters": 3})], "allowed are"),
        ([("RandomRotation", 0.1)], "as a dict"),
        ([("RandomRotation",)], "pair"),
        ([("RandomRotation", {"factor": [[0.1]]})], "number"),
        ([("RandomRotation", {"factor": float("nan")})], "finite"),
        ([("RandomRotation", {"name": "x", "factor": 0.1})], "not allowed"),
        ([("RandomRotation", {"factor": 0.1, "no_such_argument": 1})], "failed"),
        ([("RandomRotation", {})] * 13, "at most"),
    ],
)
def test_augmenter_from_spec_rejects_anything_but_plain_layer_data(spec, words):
    with pytest.raises(ValueError, match=words):
        pipelines.augmenter_from_spec(spec)


def test_digit_augmenter_has_no_flip_and_is_identity_at_inference():
    aug = pipelines.digit_augmenter(seed=0)
    names = [type(layer).__name__ for layer in aug.layers]
    assert names == ["RandomRotation", "RandomTranslation", "RandomZoom"]
    x = _gamma_shapes()[..., None]
    np.testing.assert_array_equal(np.asarray(aug(x, training=False)), x)
    out = np.asarray(aug(x, training=True))
    assert out.shape == x.shape and not np.allclose(out, x)
    assert out.min() >= 0.0 and out.max() <= 1.0 + 1e-6
    scores = pipelines.orientation_scores(x, out)
    assert (scores.argmax(axis=1) == 0).all()  # every image still upright


def test_digit_augmenter_converts_degrees_and_pixels_to_keras_factors():
    aug = pipelines.digit_augmenter(rotation_deg=18, shift_px=7, zoom=0.2, image_size=28)
    rot, shift, zoom = aug.layers

    def largest(layer, key):  # Keras stores a factor f as f or as the range (-f, f)
        return float(np.abs(np.ravel(layer.get_config()[key])).max())

    assert largest(rot, "factor") == pytest.approx(18 / 360)  # a fraction of a full turn
    assert largest(shift, "height_factor") == pytest.approx(7 / 28)  # of the image side
    assert largest(shift, "width_factor") == pytest.approx(7 / 28)
    assert largest(zoom, "height_factor") == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"rotation_deg": 90}, "rotation_deg"),
        ({"shift_px": -1}, "shift_px"),
        ({"zoom": 0.5}, "zoom"),
        ({"image_size": 2}, "image_size"),
    ],
)
def test_digit_augmenter_rejects_bad_arguments(kwargs, words):
    with pytest.raises(ValueError, match=words):
        pipelines.digit_augmenter(**kwargs)


# --------------------------------------------------------------------------------------
# orientation_scores
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("transform", "column"),
    [
        (lambda x: x, 0),
        (lambda x: x[:, :, ::-1], 1),
        (lambda x: x[:, ::-1, :], 2),
        (lambda x: x[:, ::-1, ::-1], 3),
    ],
)
def test_orientation_scores_name_the_flip_that_was_applied(transform, column):
    x = _gamma_shapes()
    scores = pipelines.orientation_scores(x, transform(x))
    assert scores.shape == (len(x), 4)
    assert (scores.argmax(axis=1) == column).all()
    np.testing.assert_allclose(scores[:, column], 1.0, atol=1e-9)


def test_orientation_scores_forgive_small_shifts_but_not_flips():
    x = _gamma_shapes()
    shifted = np.roll(x, (2, -3), axis=(1, 2))
    scores = pipelines.orientation_scores(x, shifted, max_shift=4)
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-9)
    assert (scores[:, 1:] < 0.9).all()


def test_orientation_scores_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        pipelines.orientation_scores(np.zeros((2, 8, 8)), np.zeros((3, 8, 8)))


# --------------------------------------------------------------------------------------
# write_class_folders
# --------------------------------------------------------------------------------------


def test_write_class_folders_makes_the_layout_keras_reads(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 16, 16, 3), dtype=np.uint8)
    labels = np.array([0, 1, 1, 0, 1, 1, 1])
    counts = pipelines.write_class_folders(tmp_path, images, labels, ["cat", "dog"])
    assert counts == {"cat": 2, "dog": 5}
    ds = keras.utils.image_dataset_from_directory(
        tmp_path, image_size=(16, 16), batch_size=8, shuffle=False, verbose=False
    )
    assert ds.class_names == ["cat", "dog"]
    xb, yb = next(iter(ds))
    assert xb.shape == (7, 16, 16, 3)
    assert sorted(yb.numpy().tolist()) == sorted(labels.tolist())
    # PNG is lossless: the first "cat" file holds exactly the first cat image.
    np.testing.assert_array_equal(xb.numpy()[0].astype(np.uint8), images[0])


@pytest.mark.parametrize(
    ("images", "labels", "names", "words"),
    [
        (np.zeros((2, 4, 4), np.float32), [0, 1], ["a", "b"], "uint8"),
        (np.zeros((2, 4, 4), np.uint8), [0], ["a", "b"], "labels"),
        (np.zeros((2, 4, 4), np.uint8), [0, 2], ["a", "b"], "0..1"),
        (np.zeros((2, 4, 4), np.uint8), [0, 1], ["a", "../b"], "folder names"),
    ],
)
def test_write_class_folders_rejects_bad_arguments(tmp_path, images, labels, names, words):
    with pytest.raises(ValueError, match=words):
        pipelines.write_class_folders(tmp_path, images, labels, names)
