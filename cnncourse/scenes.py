"""Synthetic scenes with per-pixel masks and boxes, and synthetic 1-D signals (chapter 10).

Segmentation and detection need labels that are expensive to draw by hand: a class for every
pixel, a box around every object. Generated data has them for free and exactly, runs
offline, and is small enough to train on in seconds on a CPU. Chapter 10 and exercise 11
use:

- :func:`make_scenes`: greyscale images with a few squares, discs and triangles on a noisy
  background, the label map (one class id per pixel), and a box and a class per object.
  Objects never overlap, so every box is the tight box around its object's pixels.
- :func:`make_signals`: noisy 1-D signals of three waveforms (sine, square, sawtooth) with
  random frequency and phase, for a 1-D CNN.

Shapes are drawn with :mod:`skimage.draw`. Every function takes a ``seed`` and returns the
same arrays for the same arguments on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage import draw

__all__ = ["SHAPE_CLASSES", "SIGNAL_CLASSES", "Scenes", "Signals", "make_scenes", "make_signals"]

#: Class ids of the label maps: 0 is the background, then one id per kind of shape.
SHAPE_CLASSES = ("background", "square", "disc", "triangle")

#: Class ids of :func:`make_signals`.
SIGNAL_CLASSES = ("sine", "square", "sawtooth")


@dataclass(frozen=True)
class Scenes:
    """Images of shapes with their label maps and boxes.

    Attributes
    ----------
    images : ndarray of float32, shape (N, size, size, 1)
        Pixel values in [0, 1].
    masks : ndarray of uint8, shape (N, size, size)
        Class id of every pixel (see :data:`SHAPE_CLASSES`).
    boxes : list of ndarray, each of shape (K, 4)
        Per image, one box ``(y_min, x_min, y_max, x_max)`` per object, in pixels.
    labels : list of ndarray of int
        Per image, the class id of every box.
    class_names : tuple of str
    """

    images: np.ndarray
    masks: np.ndarray
    boxes: list[np.ndarray]
    labels: list[np.ndarray]
    class_names: tuple[str, ...] = SHAPE_CLASSES


@dataclass(frozen=True)
class Signals:
    """Noisy 1-D signals and their waveform class.

    Attributes
    ----------
    x : ndarray of float32, shape (N, length, 1)
    y : ndarray of int64, shape (N,)
    class_names : tuple of str
    """

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...] = SIGNAL_CLASSES


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer of at least {minimum}, got {value!r}")
    return int(value)


def _shape_pixels(
    kind: int, top: int, left: int, side: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of one shape that fills the square box (top, left, side)."""
    if kind == 1:  # square
        return draw.rectangle((top, left), extent=(side, side), shape=(size, size))
    if kind == 2:  # disc
        radius = side / 2
        return draw.disk((top + radius - 0.5, left + radius - 0.5), radius, shape=(size, size))
    # triangle, pointing up: apex at the top centre, base along the bottom row
    rows = np.array([top, top + side - 1, top + side - 1], dtype=float)
    cols = np.array([left + (side - 1) / 2, left, left + side - 1], dtype=float)
    return draw.polygon(rows, cols, shape=(size, size))


def make_scenes(
    n: int,
    size: int = 32,
    *,
    max_objects: int = 3,
    min_side: int = 7,
    max_side: int = 13,
    noise: float = 0.08,
    seed: int = 0,
) -> Scenes:
    """Greyscale scenes of 1 to ``max_objects`` non-overlapping squares, discs and triangles.

    Each object is drawn inside a random square of side ``min_side .. max_side`` pixels at
    a random place, with a random brightness between 0.55 and 1 on a background between
    0 and 0.3; Gaussian noise of standard deviation ``noise`` is added and the result
    clipped to [0, 1]. An object is only placed where its box keeps one pixel of distance
    from the boxes already placed (a scene may end up with fewer objects when there is no
    room).

    Parameters
    ----------
    n : int
        Number of images.
    size : int
        Height and width in pixels.
    max_objects, min_side, max_side : int
        How many objects at most, and their size range.
    noise : float
        Standard deviation of the pixel noise.
    seed : int
        Seed of the generator.

    Returns
    -------
    Scenes

    Examples
    --------
    >>> s = make_scenes(2, size=32, seed=0)
    >>> s.images.shape, s.images.dtype, s.masks.shape
    ((2, 32, 32, 1), dtype('float32'), (2, 32, 32))
    >>> [len(b) for b in s.boxes] == [len(lab) for lab in s.labels]
    True
    """
    n = _check_int(n, "n", 0)
    size = _check_int(size, "size", 8)
    max_objects = _check_int(max_objects, "max_objects", 1)
    min_side = _check_int(min_side, "min_side", 3)
    max_side = _check_int(max_side, "max_side", min_side)
    if max_side > size:
        raise ValueError(f"max_side ({max_side}) must not exceed size ({size})")
    if not noise >= 0:
        raise ValueError(f"noise must be a standard deviation >= 0, got {noise!r}")
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size), dtype=np.float32)
    masks = np.zeros((n, size, size), dtype=np.uint8)
    all_boxes, all_labels = [], []
    for i in range(n):
        image = np.full((size, size), rng.uniform(0.0, 0.3))
        boxes, labels = [], []
        for _ in range(int(rng.integers(1, max_objects + 1))):
            for _attempt in range(20):
                side = int(rng.integers(min_side, max_side + 1))
                top, left = (int(v) for v in rng.integers(0, size - side + 1, size=2))
                box = (top, left, top + side, left + side)
                if all(
                    box[0] > b[2] or b[0] > box[2] or box[1] > b[3] or b[1] > box[3] for b in boxes
                ):
                    break
            else:
                continue  # no room left for another object
            kind = int(rng.integers(1, len(SHAPE_CLASSES)))
            rr, cc = _shape_pixels(kind, top, left, side, size)
            image[rr, cc] = rng.uniform(0.55, 1.0)
            masks[i, rr, cc] = kind
            boxes.append((rr.min(), cc.min(), rr.max() + 1, cc.max() + 1))
            labels.append(kind)
        image += rng.normal(0.0, noise, image.shape)
        images[i] = np.clip(image, 0.0, 1.0)
        all_boxes.append(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
        all_labels.append(np.asarray(labels, dtype=np.int64))
    return Scenes(images[..., np.newaxis], masks, all_boxes, all_labels)


def make_signals(n: int, length: int = 128, *, noise: float = 0.4, seed: int = 0) -> Signals:
    """Noisy sine, square and sawtooth waves with 2 to 6 cycles, random phase and amplitude.

    The classes are balanced (``y = arange(n) % 3``, shuffled). The noise is Gaussian with
    standard deviation ``noise`` relative to an amplitude between 0.5 and 1.5.

    Examples
    --------
    >>> s = make_signals(6, length=64)
    >>> s.x.shape, sorted(s.y.tolist())
    ((6, 64, 1), [0, 0, 1, 1, 2, 2])
    """
    n = _check_int(n, "n", 0)
    length = _check_int(length, "length", 8)
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(SIGNAL_CLASSES)).astype(np.int64)
    t = np.arange(length) / length
    cycles = rng.uniform(2.0, 6.0, size=(n, 1))
    phase = rng.uniform(0.0, 1.0, size=(n, 1))
    amplitude = rng.uniform(0.5, 1.5, size=(n, 1))
    position = cycles * t + phase  # in cycles
    waves = np.stack(
        [
            np.sin(2 * np.pi * position),
            np.where(np.mod(position, 1.0) < 0.5, 1.0, -1.0),
            2.0 * np.mod(position, 1.0) - 1.0,
        ]
    )
    x = amplitude * waves[y, np.arange(n)] + rng.normal(0.0, noise, size=(n, length))
    return Signals(x[..., np.newaxis].astype(np.float32), y)
