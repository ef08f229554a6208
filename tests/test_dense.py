"""cnncourse.dense, cnncourse.scenes and cnncourse.dense_models against independent code.

Non-maximum suppression is compared with ``tf.image.non_max_suppression``; transposed
convolution sizes and overlaps with what ``keras.layers.Conv2DTranspose`` and
``Conv1DTranspose`` really output; box IoU with the pixel count of rasterised boxes; mask
IoU and Dice with scikit-learn's ``jaccard_score`` and ``f1_score``; the scenes' boxes with
``scipy.ndimage.find_objects`` on their masks.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage
from sklearn.metrics import f1_score, jaccard_score

from cnncourse import dense, dense_models, scenes


def _random_boxes(rng: np.random.Generator, n: int, size: float = 40.0) -> np.ndarray:
    corners = rng.uniform(0, size, size=(n, 2))
    sides = rng.uniform(2, 15, size=(n, 2))
    return np.concatenate([corners, corners + sides], axis=1)


# --------------------------------------------------------------------------- IoU of boxes


def _raster(box, size=60) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    y0, x0, y1, x1 = (int(v) for v in box)
    mask[y0:y1, x0:x1] = True
    return mask


@pytest.mark.parametrize("seed", range(5))
def test_box_iou_is_the_pixel_iou_of_the_rasterised_boxes(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 30, size=(6, 2))
    boxes_a = np.concatenate([a, a + rng.integers(1, 20, size=(6, 2))], axis=1)
    b = rng.integers(0, 30, size=(5, 2))
    boxes_b = np.concatenate([b, b + rng.integers(1, 20, size=(5, 2))], axis=1)
    got = dense.pairwise_iou(boxes_a, boxes_b)
    for i, box_a in enumerate(boxes_a):
        for j, box_b in enumerate(boxes_b):
            expected = jaccard_score(_raster(box_a).ravel(), _raster(box_b).ravel())
            assert got[i, j] == pytest.approx(expected)
            assert dense.iou(box_a, box_b) == pytest.approx(expected)


def test_iou_is_symmetric_one_for_itself_and_zero_for_touching_boxes():
    assert dense.iou((0, 0, 4, 4), (0, 0, 4, 4)) == 1.0
    assert dense.iou((0, 0, 4, 4), (0, 4, 4, 8)) == 0.0  # they share an edge, no area
    assert dense.iou((1, 2, 5, 9), (3, 0, 8, 4)) == dense.iou((3, 0, 8, 4), (1, 2, 5, 9))
    assert dense.iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


@pytest.mark.parametrize(
    "boxes, words",
    [
        ([1, 2, 3], "shape (N, 4)"),
        ([[0, 0, 1, np.nan]], "NaN"),
        ([[5, 0, 1, 1]], "y_min <= y_max"),
    ],
)
def test_bad_boxes_get_a_clear_error(boxes, words):
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        dense.pairwise_iou(boxes, [[0, 0, 1, 1]])


# --------------------------------------------------------------------------- NMS


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("iou_threshold", [0.1, 0.3, 0.5, 0.7])
def test_nms_keeps_what_tensorflow_keeps(seed, iou_threshold):
    rng = np.random.default_rng(seed)
    boxes = _random_boxes(rng, 30)
    scores = rng.permutation(30) / 30 + 0.01  # distinct scores: no ties to break
    expected = tf.image.non_max_suppression(
        boxes.astype(np.float32), scores.astype(np.float32), 30, iou_threshold=iou_threshold
    ).numpy()
    got = dense.non_max_suppression(boxes, scores, iou_threshold)
    assert got.tolist() == expected.tolist()


def test_nms_with_score_threshold_and_max_output_size_matches_tensorflow():
    rng = np.random.default_rng(42)
    boxes = _random_boxes(rng, 40, size=20)
    scores = rng.permutation(40) / 40
    expected = tf.image.non_max_suppression(
        boxes.astype(np.float32), scores.astype(np.float32), 5, 0.4, score_threshold=0.3
    ).numpy()
    got = dense.non_max_suppression(boxes, scores, 0.4, score_threshold=0.3, max_output_size=5)
    assert got.tolist() == expected.tolist()


def test_nms_of_nothing_is_nothing_and_mismatched_lengths_are_refused():
    assert dense.non_max_suppression(np.zeros((0, 4)), np.zeros(0)).tolist() == []
    with pytest.raises(ValueError, match="same length"):
        dense.non_max_suppression([[0, 0, 1, 1]], [0.5, 0.4])
    with pytest.raises(ValueError, match="iou_threshold"):
        dense.non_max_suppression([[0, 0, 1, 1]], [0.5], iou_threshold=1.5)


# --------------------------------------------------------------------------- transposed convolution


def _keras_length(n, k, stride, padding, output_padding):
    """The length Keras gives: the layer's output when TensorFlow can compute it, else its
    declared output shape ("same" with an explicit output_padding can ask TensorFlow's
    oneDNN kernel for a padding it refuses to compute)."""
    layer = keras.layers.Conv1DTranspose(
        1, k, strides=stride, padding=padding, output_padding=output_padding
    )
    declared = layer.compute_output_shape((1, n, 1))[1]
    if padding == "valid" or output_padding is None:
        assert int(layer(np.zeros((1, n, 1), dtype="float32")).shape[1]) == declared
    return int(declared)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize(
    "n, k, stride",
    [(1, 1, 1), (3, 3, 2), (4, 2, 2), (5, 4, 2), (7, 3, 3), (6, 5, 1), (2, 1, 3), (9, 4, 4)],
)
def test_transposed_conv_size_matches_keras(n, k, stride, padding):
    for output_padding in [None, *range(stride)]:
        expected = _keras_length(n, k, stride, padding, output_padding)
        got = dense.transposed_conv_output_size(n, k, stride, padding, output_padding)
        assert got == expected, (n, k, stride, padding, output_padding)


def test_transposed_conv_size_2d_matches_conv2dtranspose_and_inverts_the_convolution():
    layer = keras.layers.Conv2DTranspose(2, (4, 3), strides=(2, 3), output_padding=(1, 0))
    out = layer(np.zeros((1, 5, 6, 1), dtype="float32")).shape
    assert out[1] == dense.transposed_conv_output_size(5, 4, 2, 0, 1)
    assert out[2] == dense.transposed_conv_output_size(6, 3, 3, 0, 0)
    from cnncourse.ops import conv_output_size

    for n, k, s, p in [(3, 4, 2, 1), (7, 3, 2, 1), (5, 5, 3, 2)]:
        up = dense.transposed_conv_output_size(n, k, s, p)
        assert conv_output_size(up, k, stride=s, padding=p) == n


@pytest.mark.parametrize(
    "args, words",
    [
        ((0, 3, 1), "n must be at least 1"),
        ((3, 3, 2, 0, 2), "smaller than stride"),
        ((3, 3, 1, "full"), "valid"),
        ((1, 1, 1, 1), "leaves no output"),
        ((3.5, 3, 1), "integer"),
    ],
)
def test_transposed_conv_size_refuses_bad_arguments(args, words):
    with pytest.raises(ValueError, match=words):
        dense.transposed_conv_output_size(*args)


@pytest.mark.parametrize("n, k, stride", [(4, 3, 2), (4, 4, 2), (5, 3, 1), (3, 5, 3), (6, 2, 2)])
def test_coverage_is_what_a_transposed_convolution_of_ones_outputs(n, k, stride):
    layer = keras.layers.Conv1DTranspose(
        1, k, strides=stride, use_bias=False, kernel_initializer="ones"
    )
    expected = layer(np.ones((1, n, 1), dtype="float32")).numpy()[0, :, 0]
    np.testing.assert_array_equal(dense.transposed_conv_coverage(n, k, stride), expected)


def test_coverage_is_even_when_the_kernel_is_a_multiple_of_the_stride():
    inner = dense.transposed_conv_coverage(6, 4, 2)[2:-2]
    assert len(set(inner.tolist())) == 1
    uneven = dense.transposed_conv_coverage(6, 3, 2)[1:-1]
    assert sorted(set(uneven.tolist())) == [1, 2]


# --------------------------------------------------------------------------- masks


@pytest.mark.parametrize("seed", range(5))
def test_mask_iou_and_dice_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    a = rng.random((12, 9)) < 0.4
    b = rng.random((12, 9)) < 0.5
    assert dense.mask_iou(a, b) == pytest.approx(jaccard_score(a.ravel(), b.ravel()))
    assert dense.dice(a, b) == pytest.approx(f1_score(a.ravel(), b.ravel()))
    iou = dense.mask_iou(a, b)
    assert dense.dice(a, b) == pytest.approx(2 * iou / (1 + iou))


def test_dice_and_iou_of_two_empty_masks_are_one_and_shapes_must_agree():
    empty = np.zeros((3, 3), bool)
    assert dense.dice(empty, empty) == dense.mask_iou(empty, empty) == 1.0
    assert dense.dice(empty, ~empty) == 0.0
    with pytest.raises(ValueError, match="same shape"):
        dense.dice(empty, np.zeros((3, 4), bool))


@pytest.mark.parametrize("seed", range(4))
def test_per_class_scores_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, 4, size=(3, 10, 10))
    pred = np.where(rng.random(true.shape) < 0.7, true, rng.integers(0, 4, size=true.shape))
    pred[pred == 3] = 2  # class 3 is never predicted: its IoU must still be 0, not NaN
    iou, dice = dense.per_class_scores(true, pred, 5)
    labels = [0, 1, 2, 3]
    np.testing.assert_allclose(
        iou[:4], jaccard_score(true.ravel(), pred.ravel(), labels=labels, average=None)
    )
    np.testing.assert_allclose(
        dice[:4], f1_score(true.ravel(), pred.ravel(), labels=labels, average=None)
    )
    assert iou[3] == 0.0 and np.isnan(iou[4]) and np.isnan(dice[4])


def test_per_class_scores_refuse_ids_outside_the_classes():
    with pytest.raises(ValueError, match="class ids 0..2"):
        dense.per_class_scores([[0, 3]], [[0, 1]], 3)


# --------------------------------------------------------------------------- grid encoding


def test_decoding_the_encoded_boxes_gives_them_back():
    data = scenes.make_scenes(20, 48, max_objects=4, seed=3)
    targets = dense.encode_grid(data.boxes, 48, 6)
    assert targets[..., 0].sum() == sum(len(b) for b in data.boxes)  # one cell per object
    for (boxes, scores), true in zip(dense.decode_grid(targets, 48), data.boxes, strict=True):
        assert len(boxes) == len(true) and np.all(scores == 1.0)
        order = np.lexsort(true.T[::-1])
        np.testing.assert_allclose(boxes[np.lexsort(boxes.T[::-1])], true[order], atol=1e-4)


def test_decode_grid_refuses_the_wrong_shape():
    with pytest.raises(ValueError, match=r"\(N, grid, grid, 5\)"):
        dense.decode_grid(np.zeros((1, 6, 6, 4)), 48)


# --------------------------------------------------------------------------- scenes


def test_scenes_boxes_are_the_tight_boxes_of_their_objects_pixels():
    data = scenes.make_scenes(40, 32, seed=5)
    for mask, boxes, labels in zip(data.masks, data.boxes, data.labels, strict=True):
        objects, count = ndimage.label(mask > 0)
        assert count == len(boxes)  # objects never touch
        found = sorted(
            (s[0].start, s[1].start, s[0].stop, s[1].stop) for s in ndimage.find_objects(objects)
        )
        assert found == sorted(tuple(int(v) for v in b) for b in boxes)
        for box, label in zip(boxes, labels, strict=True):
            y0, x0, y1, x1 = box.astype(int)
            assert set(np.unique(mask[y0:y1, x0:x1])) <= {0, int(label)}


def test_scenes_are_reproducible_and_shaped_as_documented():
    a = scenes.make_scenes(5, 40, seed=9)
    b = scenes.make_scenes(5, 40, seed=9)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert a.images.shape == (5, 40, 40, 1) and a.images.dtype == np.float32
    assert 0.0 <= a.images.min() and a.images.max() <= 1.0
    assert not np.array_equal(a.masks, scenes.make_scenes(5, 40, seed=10).masks)
    assert set(np.unique(scenes.make_scenes(50, seed=1).masks)) == {0, 1, 2, 3}


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"n": -1}, "n must"),
        ({"n": 2, "size": 10, "max_side": 13}, "must not exceed"),
        ({"n": 2, "noise": -0.1}, "noise"),
    ],
)
def test_scenes_refuse_bad_arguments(kwargs, words):
    with pytest.raises(ValueError, match=words):
        scenes.make_scenes(**kwargs)


def test_signals_are_balanced_and_their_classes_differ_in_shape():
    s = scenes.make_signals(300, length=128, noise=0.0, seed=2)
    assert np.bincount(s.y).tolist() == [100, 100, 100]
    # Without noise a square wave takes two values only; a sine and a sawtooth take many.
    distinct = [len(np.unique(np.round(x[:, 0] / np.abs(x).max(), 6))) for x in s.x]
    assert all(d == 2 for d, y in zip(distinct, s.y, strict=True) if y == 1)
    assert all(d > 10 for d, y in zip(distinct, s.y, strict=True) if y != 1)


# --------------------------------------------------------------------------- models


def test_the_unet_is_fully_convolutional_and_outputs_probabilities_per_pixel():
    model = dense_models.tiny_unet(4, filters=(4, 8, 8))
    assert not any(isinstance(la, keras.layers.Dense | keras.layers.Flatten) for la in model.layers)
    for h, w in [(32, 32), (48, 40)]:
        out = model(np.random.default_rng(0).random((2, h, w, 1)).astype("float32")).numpy()
        assert out.shape == (2, h, w, 4)
        np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-5)


def test_the_detector_grid_is_the_image_side_over_eight_and_the_loss_ignores_empty_boxes():
    model = dense_models.grid_detector(filters=(4, 4, 4))
    assert model(np.zeros((1, 64, 48, 1), "float32")).shape == (1, 8, 6, 5)
    target = np.zeros((1, 2, 2, 5), "float32")
    target[0, 0, 0] = [1, 0.5, 0.5, 0.2, 0.3]
    pred = np.full_like(target, 0.5)
    base = float(dense_models.grid_detection_loss(target, pred))
    pred_other = pred.copy()
    pred_other[0, 1, 1, 1:] = 0.9  # box numbers of an empty cell: not part of the loss
    assert float(dense_models.grid_detection_loss(target, pred_other)) == pytest.approx(base)
    pred_box = pred.copy()
    pred_box[0, 0, 0, 3] = 0.9  # the object's height is wrong: the loss grows
    assert float(dense_models.grid_detection_loss(target, pred_box)) > base


def test_the_signal_cnn_accepts_any_length():
    model = dense_models.signal_cnn(3, filters=(4, 4))
    for length in (64, 101):
        assert model(np.zeros((2, length, 1), "float32")).shape == (2, 3)
