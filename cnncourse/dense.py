"""Dense prediction in NumPy: boxes, IoU, non-maximum suppression, Dice, transposed-conv sizes.

Chapter 10 ("Beyond classification") introduces these; exercise 11 asks students to write
:func:`iou`, :func:`non_max_suppression`, :func:`transposed_conv_output_size` and
:func:`dice` themselves, and grades them against the functions here, which
``tests/test_dense.py`` checks against independent implementations
(``tf.image.non_max_suppression``, the output shapes of ``keras.layers.Conv2DTranspose``,
scikit-learn's ``jaccard_score`` and ``f1_score``).

Conventions
-----------
A *box* is four numbers ``(y_min, x_min, y_max, x_max)`` in pixel coordinates, rows first
as in a NumPy image and as ``tf.image`` orders them. It covers the area
``[y_min, y_max) x [x_min, x_max)``, so a box around the pixels of rows 2..4 and columns
3..6 is ``(2, 3, 5, 7)``, with area 3 · 4 = 12. A *mask* is a boolean array, one entry
per pixel; a *label map* is an integer array with one class id per pixel.

The grid encoding (:func:`encode_grid` and :func:`decode_grid`) is the output format of
the chapter's tiny single-stage detector: the image is cut into ``grid x grid`` cells and
each cell predicts five numbers in [0, 1]: the probability that an object's centre lies in
the cell, the centre's position inside the cell (row, column) and the object's height and
width as fractions of the image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "decode_grid",
    "dice",
    "encode_grid",
    "iou",
    "mask_iou",
    "non_max_suppression",
    "pairwise_iou",
    "per_class_scores",
    "transposed_conv_coverage",
    "transposed_conv_output_size",
]


# --------------------------------------------------------------------------- validation


def _boxes(boxes: object, name: str) -> np.ndarray:
    """``boxes`` as a float64 array of shape (N, 4) with y_min <= y_max and x_min <= x_max."""
    array = np.asarray(boxes, dtype=np.float64)
    if array.ndim == 1:
        array = array[np.newaxis]
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(
            f"{name} must be boxes (y_min, x_min, y_max, x_max): an array of shape (N, 4) or "
            f"(4,), got shape {np.shape(boxes)}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinity")
    if np.any(array[:, 2] < array[:, 0]) or np.any(array[:, 3] < array[:, 1]):
        raise ValueError(f"{name}: every box needs y_min <= y_max and x_min <= x_max")
    return array


def _int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def _masks(a: object, b: object) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"the two masks must have the same shape, got {a.shape} and {b.shape}")
    return a.astype(bool), b.astype(bool)


# --------------------------------------------------------------------------- boxes


def pairwise_iou(boxes_a: object, boxes_b: object) -> np.ndarray:
    """Intersection over union of every box in ``boxes_a`` with every box in ``boxes_b``.

    Parameters
    ----------
    boxes_a : array_like, shape (N, 4) or (4,)
    boxes_b : array_like, shape (M, 4) or (4,)
        Boxes ``(y_min, x_min, y_max, x_max)``.

    Returns
    -------
    ndarray, shape (N, M)
        ``area(a ∩ b) / area(a ∪ b)``; 0 where the union is empty (two empty boxes).

    Examples
    --------
    >>> pairwise_iou([[0, 0, 2, 2], [0, 0, 4, 4]], [[1, 1, 3, 3]])
    array([[0.14285714],
           [0.25      ]])
    """
    a, b = _boxes(boxes_a, "boxes_a"), _boxes(boxes_b, "boxes_b")
    top = np.maximum(a[:, None, 0], b[None, :, 0])
    left = np.maximum(a[:, None, 1], b[None, :, 1])
    bottom = np.minimum(a[:, None, 2], b[None, :, 2])
    right = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(bottom - top, 0, None) * np.clip(right - left, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def iou(box_a: object, box_b: object) -> float:
    """Intersection over union of two boxes ``(y_min, x_min, y_max, x_max)``.

    Examples
    --------
    Two 2x2 boxes that overlap in one pixel: the union has 4 + 4 - 1 = 7 pixels.

    >>> round(iou((0, 0, 2, 2), (1, 1, 3, 3)), 4)
    0.1429
    >>> iou((0, 0, 2, 2), (5, 5, 6, 6))
    0.0
    """
    a, b = _boxes(box_a, "box_a"), _boxes(box_b, "box_b")
    if len(a) != 1 or len(b) != 1:
        raise ValueError("iou compares two single boxes; use pairwise_iou for many")
    return float(pairwise_iou(a, b)[0, 0])


def non_max_suppression(
    boxes: object,
    scores: object,
    iou_threshold: float = 0.5,
    *,
    score_threshold: float | None = None,
    max_output_size: int | None = None,
) -> np.ndarray:
    """Greedy non-maximum suppression: keep the best box, drop those that overlap it, repeat.

    Parameters
    ----------
    boxes : array_like, shape (N, 4)
        Candidate boxes ``(y_min, x_min, y_max, x_max)``.
    scores : array_like, shape (N,)
        One confidence per box.
    iou_threshold : float
        A box is dropped when its IoU with an already kept box is *greater* than this
        (as in ``tf.image.non_max_suppression``).
    score_threshold : float, optional
        Boxes whose score is not above it are never kept.
    max_output_size : int, optional
        Keep at most this many boxes.

    Returns
    -------
    ndarray of int64
        Indices into ``boxes`` of the kept boxes, best score first. Among equal scores the
        box with the smaller index comes first.

    Examples
    --------
    Boxes 0 and 1 overlap a lot (IoU 0.68); box 2 is elsewhere.

    >>> boxes = [[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]]
    >>> non_max_suppression(boxes, [0.9, 0.8, 0.7], iou_threshold=0.5)
    array([0, 2])
    >>> non_max_suppression(boxes, [0.9, 0.8, 0.7], iou_threshold=0.7)
    array([0, 1, 2])
    """
    b = _boxes(boxes, "boxes") if np.size(boxes) else np.zeros((0, 4))
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(s) != len(b):
        raise ValueError(f"boxes and scores must have the same length, got {len(b)} and {len(s)}")
    if not 0.0 <= float(iou_threshold) <= 1.0:
        raise ValueError(f"iou_threshold must lie in [0, 1], got {iou_threshold}")
    limit = len(b) if max_output_size is None else _int(max_output_size, "max_output_size", 0)
    order = np.argsort(-s, kind="stable")
    if score_threshold is not None:
        order = order[s[order] > float(score_threshold)]
    overlaps = pairwise_iou(b, b) if len(b) else np.zeros((0, 0))
    keep: list[int] = []
    suppressed = np.zeros(len(b), dtype=bool)
    for i in order:
        if len(keep) >= limit:
            break
        if suppressed[i]:
            continue
        keep.append(int(i))
        suppressed |= overlaps[i] > iou_threshold
    return np.asarray(keep, dtype=np.int64)


# --------------------------------------------------------------------------- transposed convolution


def transposed_conv_output_size(
    n: int,
    k: int,
    stride: int = 1,
    padding: int | str = 0,
    output_padding: int | None = 0,
) -> int:
    """Output length of a transposed convolution along one axis.

    With an integer ``padding`` ``p`` and ``output_padding`` ``a``::

        (n - 1) * stride - 2 * p + k + a

    the inverse of the convolution size formula ``(n + 2p - k) // stride + 1``: a
    convolution with the same ``k``, ``stride`` and ``p`` maps the result back to ``n``.
    ``padding="valid"`` or ``"same"`` follows Keras' ``Conv2DTranspose``: ``"valid"`` is
    ``p = 0``, ``"same"`` is ``p = k // 2``, and with ``output_padding=None`` Keras picks
    ``n * stride + max(k - stride, 0)`` ("valid") or ``n * stride`` ("same").

    Examples
    --------
    A 3x3 map upsampled by a 4x4 kernel with stride 2 and padding 1 doubles: (3-1)·2 - 2 + 4.

    >>> transposed_conv_output_size(3, 4, stride=2, padding=1)
    6
    >>> transposed_conv_output_size(3, 3, stride=2, padding="same", output_padding=None)
    6
    """
    n = _int(n, "n", 1)
    k = _int(k, "k", 1)
    stride = _int(stride, "stride", 1)
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise ValueError(f'padding must be an int, "valid" or "same", got {padding!r}')
        if output_padding is None:
            return n * stride + max(k - stride, 0) if padding == "valid" else n * stride
        pad = 0 if padding == "valid" else k // 2
    else:
        pad = _int(padding, "padding", 0)
        if output_padding is None:
            output_padding = 0
    extra = _int(output_padding, "output_padding", 0)
    if extra >= stride:
        raise ValueError(f"output_padding must be smaller than stride ({stride}), got {extra}")
    size = (n - 1) * stride - 2 * pad + k + extra
    if size < 1:
        raise ValueError(f"padding {pad} leaves no output (size {size})")
    return size


def transposed_conv_coverage(n: int, k: int, stride: int) -> np.ndarray:
    """How many (input pixel, kernel tap) pairs write each output position, along one axis.

    A transposed convolution (``padding="valid"``) pastes a copy of the kernel, scaled by
    each input value, every ``stride`` pixels of the output. Where copies overlap, outputs
    are sums of more terms. When ``k`` is not a multiple of ``stride`` this count alternates
    from pixel to pixel; in two dimensions the product of two such rows is the
    *checkerboard* pattern. ``np.outer`` of the rows gives the 2-D count.

    Examples
    --------
    >>> transposed_conv_coverage(4, 3, 2)
    array([1, 1, 2, 1, 2, 1, 2, 1, 1])
    >>> transposed_conv_coverage(4, 4, 2)
    array([1, 1, 2, 2, 2, 2, 2, 2, 1, 1])
    """
    n, k, stride = _int(n, "n", 1), _int(k, "k", 1), _int(stride, "stride", 1)
    counts = np.zeros(transposed_conv_output_size(n, k, stride, 0, 0), dtype=np.int64)
    for i in range(n):
        counts[i * stride : i * stride + k] += 1
    return counts


# --------------------------------------------------------------------------- masks


def dice(mask_true: object, mask_pred: object) -> float:
    """Dice coefficient ``2 |A ∩ B| / (|A| + |B|)`` of two boolean masks (1 when both are empty).

    Examples
    --------
    >>> a = [[1, 1, 0], [0, 0, 0]]
    >>> b = [[0, 1, 1], [0, 0, 0]]
    >>> dice(a, b)
    0.5
    >>> dice([[0, 0]], [[0, 0]])
    1.0
    """
    a, b = _masks(mask_true, mask_pred)
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def mask_iou(mask_true: object, mask_pred: object) -> float:
    """Intersection over union (Jaccard index) of two boolean masks (1 when both are empty).

    IoU and Dice rank predictions alike: ``dice = 2 iou / (1 + iou)``.

    Examples
    --------
    >>> round(mask_iou([[1, 1, 0]], [[0, 1, 1]]), 4)
    0.3333
    """
    a, b = _masks(mask_true, mask_pred)
    union = int((a | b).sum())
    return 1.0 if union == 0 else int((a & b).sum()) / union


def per_class_scores(
    labels_true: object, labels_pred: object, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """IoU and Dice of every class of two label maps, over all their pixels together.

    Parameters
    ----------
    labels_true, labels_pred : array_like of int
        Class ids, the same shape (any number of images and pixels).
    num_classes : int
        Classes are ``0 .. num_classes - 1``.

    Returns
    -------
    iou, dice : ndarray of float, shape (num_classes,)
        NaN for a class that occurs in neither map (no evidence either way).

    Examples
    --------
    >>> true = [[0, 0, 1, 1]]
    >>> pred = [[0, 1, 1, 1]]
    >>> iou, d = per_class_scores(true, pred, 3)
    >>> iou.round(3), d.round(3)
    (array([0.5  , 0.667,   nan]), array([0.667, 0.8  ,   nan]))
    """
    t, p = np.asarray(labels_true), np.asarray(labels_pred)
    if t.shape != p.shape:
        raise ValueError(f"the label maps must have the same shape, got {t.shape} and {p.shape}")
    num_classes = _int(num_classes, "num_classes", 1)
    for name, labels in (("labels_true", t), ("labels_pred", p)):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"{name} must hold class ids 0..{num_classes - 1}")
    confusion = np.bincount(
        t.reshape(-1).astype(np.int64) * num_classes + p.reshape(-1).astype(np.int64),
        minlength=num_classes * num_classes,
    ).reshape(num_classes, num_classes)
    inter = np.diag(confusion).astype(np.float64)
    size_true, size_pred = confusion.sum(axis=1), confusion.sum(axis=0)
    union = size_true + size_pred - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou_ = np.where(union > 0, inter / union, np.nan)
        dice_ = np.where(union > 0, 2 * inter / (size_true + size_pred), np.nan)
    return iou_, dice_


# --------------------------------------------------------------------------- grid detector


def encode_grid(boxes: Sequence[object], image_size: int, grid: int) -> np.ndarray:
    """Training targets of a grid detector: one ``(grid, grid, 5)`` array per image.

    Each box goes to the cell that contains its centre, which gets
    ``[1, row offset, column offset, height / image_size, width / image_size]``; the
    offsets say where in the cell (0 = top/left edge, 1 = bottom/right edge) the centre
    lies. Cells without a centre are all zero. Two centres in one cell: the later box wins.

    Examples
    --------
    A 4x6 box centred at (6, 5) in a 16-pixel image with a 2x2 grid (cells of 8 pixels):

    >>> t = encode_grid([[(4, 2, 8, 8)]], image_size=16, grid=2)
    >>> t.shape, t[0, 0, 0].tolist()
    ((1, 2, 2, 5), [1.0, 0.75, 0.625, 0.25, 0.375])
    """
    image_size, grid = _int(image_size, "image_size", 1), _int(grid, "grid", 1)
    cell = image_size / grid
    out = np.zeros((len(boxes), grid, grid, 5), dtype=np.float32)
    for n, image_boxes in enumerate(boxes):
        if np.size(image_boxes) == 0:
            continue
        for y0, x0, y1, x1 in _boxes(image_boxes, f"boxes[{n}]"):
            cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
            row = min(int(cy // cell), grid - 1)
            col = min(int(cx // cell), grid - 1)
            out[n, row, col] = (
                1.0,
                cy / cell - row,
                cx / cell - col,
                (y1 - y0) / image_size,
                (x1 - x0) / image_size,
            )
    return out


def decode_grid(
    output: object,
    image_size: int,
    *,
    score_threshold: float = 0.5,
    iou_threshold: float = 0.3,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Boxes and scores from a grid detector's output, after non-maximum suppression.

    Parameters
    ----------
    output : array_like, shape (N, grid, grid, 5)
        What :func:`encode_grid` encodes (or a model's prediction of it).
    image_size : int
        Side of the square images in pixels.
    score_threshold, iou_threshold : float
        Cells whose objectness is not above ``score_threshold`` are ignored; the rest go
        through :func:`non_max_suppression` with ``iou_threshold``.

    Returns
    -------
    list of (boxes, scores)
        Per image: boxes of shape (K, 4) and their scores, best first.

    Examples
    --------
    Decoding the targets gives the boxes back:

    >>> t = encode_grid([[(4, 2, 8, 8)]], image_size=16, grid=2)
    >>> boxes, scores = decode_grid(t, 16)[0]
    >>> boxes.tolist(), scores.tolist()
    ([[4.0, 2.0, 8.0, 8.0]], [1.0])
    """
    out = np.asarray(output, dtype=np.float64)
    if out.ndim != 4 or out.shape[-1] != 5 or out.shape[1] != out.shape[2]:
        raise ValueError(f"output must have shape (N, grid, grid, 5), got {out.shape}")
    image_size = _int(image_size, "image_size", 1)
    grid = out.shape[1]
    cell = image_size / grid
    rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    results = []
    for pred in out:
        score = pred[..., 0]
        cy = (rows + pred[..., 1]) * cell
        cx = (cols + pred[..., 2]) * cell
        h = np.clip(pred[..., 3], 0, None) * image_size
        w = np.clip(pred[..., 4], 0, None) * image_size
        boxes = np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1)
        keep = score > score_threshold
        boxes, scores = boxes[keep], score[keep]
        chosen = non_max_suppression(boxes, scores, iou_threshold)
        results.append((boxes[chosen], scores[chosen]))
    return results
