"""Input pipelines and data augmentation: ``tf.data``, preprocessing layers, image folders.

Chapter 5 ("Data pipelines, augmentation and regularization") builds these by hand first;
later chapters call the helpers so that their own code stays about the model:

- :func:`make_dataset` -- arrays to a ``tf.data`` pipeline (cache, shuffle, batch,
  map, prefetch) in the order that chapter 5 argues for;
- :func:`train_val_split` -- a seeded validation split *of the training data* (never of
  the test set);
- :func:`augmenter_from_spec` and :func:`digit_augmenter` -- Keras preprocessing layers
  built from plain data, and a label-safe set of them for digits (no flips);
- :func:`orientation_scores` -- a flip detector: is an augmented image still upright, or
  mirrored or turned upside down?
- :func:`write_class_folders` -- write images into the ``root/<class>/<file>.png``
  layout that ``keras.utils.image_dataset_from_directory`` reads.

NumPy is the only import at module level: TensorFlow and Keras are imported inside the
functions that need them, so that the exercise grader can use the NumPy helpers cheaply.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "AUGMENTATION_LAYERS",
    "ORIENTATIONS",
    "augmenter_from_spec",
    "digit_augmenter",
    "make_dataset",
    "orientation_scores",
    "train_val_split",
    "write_class_folders",
]

#: Keras layers that :func:`augmenter_from_spec` may build: the random image layers of
#: ``keras.layers`` plus the two deterministic rescaling layers (which an augmenter should
#: *not* contain, but which a student may try, so the checks can say why).
AUGMENTATION_LAYERS: tuple[str, ...] = (
    "RandomBrightness",
    "RandomContrast",
    "RandomCrop",
    "RandomFlip",
    "RandomRotation",
    "RandomShear",
    "RandomTranslation",
    "RandomZoom",
    "GaussianNoise",
    "Rescaling",
    "Normalization",
)

#: The four orientations that :func:`orientation_scores` compares, in column order.
ORIENTATIONS: tuple[str, ...] = (
    "upright",
    "left-right mirror",
    "upside-down mirror",
    "rotated 180",
)

_MAX_SPEC_LAYERS = 12
_SPEC_STRINGS = 60


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return int(value)


def _check_images(x: object, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim not in (3, 4) or arr.dtype.kind not in "uif" or arr.dtype == bool:
        raise ValueError(
            f"{name} must be a numeric batch of images (N, H, W) or (N, H, W, C), got "
            f"dtype {arr.dtype} and shape {arr.shape}."
        )
    return arr


def _check_spec_value(value: object, where: str, depth: int = 0) -> object:
    """Accept only plain data in a layer's arguments: numbers, short strings, small tuples."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | np.integer):
        if abs(int(value)) > 10**6:
            raise ValueError(f"{where} must be a moderate number, got {value!r}.")
        return int(value)
    if isinstance(value, float | np.floating):
        if not math.isfinite(float(value)) or abs(float(value)) > 10**6:
            raise ValueError(f"{where} must be a finite, moderate number, got {value!r}.")
        return float(value)
    if isinstance(value, str):
        if len(value) > _SPEC_STRINGS:
            raise ValueError(f"{where} must be a short string, got {len(value)} characters.")
        return value
    if isinstance(value, tuple | list) and depth == 0 and len(value) <= 4:
        return tuple(_check_spec_value(v, where, depth + 1) for v in value)
    raise ValueError(
        f"{where} must be a number, a string, None or a short tuple of numbers, got "
        f"{type(value).__name__}."
    )


def _check_spec(spec: object) -> list[tuple[str, dict[str, object]]]:
    if isinstance(spec, str | bytes) or not isinstance(spec, Sequence):
        raise ValueError(
            "spec must be a list of (layer name, keyword arguments) pairs, e.g. "
            "[('RandomRotation', {'factor': 0.03})], got "
            f"{type(spec).__name__}."
        )
    if len(spec) > _MAX_SPEC_LAYERS:
        raise ValueError(f"spec may hold at most {_MAX_SPEC_LAYERS} layers, got {len(spec)}.")
    checked = []
    for k, item in enumerate(spec):
        if not isinstance(item, tuple | list) or len(item) != 2:
            raise ValueError(
                f"spec[{k}] must be a pair (layer name, keyword arguments), got {item!r:.80}."
            )
        name, kwargs = item
        if not isinstance(name, str) or name not in AUGMENTATION_LAYERS:
            raise ValueError(
                f"spec[{k}] names the layer {name!r:.60}; allowed are "
                f"{', '.join(AUGMENTATION_LAYERS)}."
            )
        if not isinstance(kwargs, Mapping):
            raise ValueError(
                f"spec[{k}] ({name}) must give its arguments as a dict, got "
                f"{type(kwargs).__name__}."
            )
        clean: dict[str, object] = {}
        for key, value in kwargs.items():
            if not isinstance(key, str) or not key.isidentifier() or key in ("name", "dtype"):
                raise ValueError(
                    f"spec[{k}] ({name}) has an argument name {key!r:.40} not allowed."
                )
            clean[key] = _check_spec_value(value, f"spec[{k}] ({name}) argument {key!r}")
        checked.append((name, clean))
    return checked


# --------------------------------------------------------------------------------------
# Splitting and tf.data
# --------------------------------------------------------------------------------------


def train_val_split(
    x: np.ndarray, y: np.ndarray, val_size: int | float, seed: int = 0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Hold out a random validation set from the *training* data.

    Model choices (epochs, learning rate, regularization) are tuned on the validation
    set, so that the test set is used exactly once, at the end. Tuning on the test set
    makes its accuracy an optimistic estimate.

    Defined in chapter 5.

    Parameters
    ----------
    x, y : ndarray
        Training images and labels, same length.
    val_size : int or float
        Number of validation examples (int >= 1) or a fraction in (0, 1).
    seed : int, default=0
        Seed of the random permutation: the same seed gives the same split.

    Returns
    -------
    (x_train, y_train), (x_val, y_val)

    Examples
    --------
    >>> (xt, yt), (xv, yv) = train_val_split(np.zeros((10, 2, 2)), np.arange(10), 0.2)
    >>> len(xt), len(xv)
    (8, 2)
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}.")
    n = len(x)
    if isinstance(val_size, float) and not isinstance(val_size, bool):
        if not 0 < val_size < 1:
            raise ValueError(f"val_size as a fraction must be in (0, 1), got {val_size}.")
        n_val = max(1, round(val_size * n))
    else:
        n_val = _check_positive_int(val_size, "val_size")
    if n_val >= n:
        raise ValueError(f"val_size ({n_val}) must leave training data; x has {n} examples.")
    order = np.random.default_rng(seed).permutation(n)
    val, train = order[:n_val], order[n_val:]
    return (x[train], y[train]), (x[val], y[val])


def make_dataset(
    x: np.ndarray,
    y: np.ndarray | None = None,
    *,
    batch_size: int = 128,
    shuffle: bool = False,
    seed: int = 0,
    cache: bool = True,
    map_fn: Callable | None = None,
    prefetch: bool = True,
):
    """Build a ``tf.data`` input pipeline from arrays.

    The steps run in the order chapter 5 explains::

        from_tensor_slices -> cache -> shuffle -> batch -> map(map_fn) -> prefetch

    ``cache`` keeps the decoded examples in memory after the first epoch; it comes
    *before* any random step, so that the cache does not freeze one random draw.
    ``shuffle`` uses a buffer as large as the data (a full shuffle, reshuffled every
    epoch) and comes before ``batch`` so that batches are mixed, not just reordered.
    ``map_fn`` (for example a random augmentation) runs on whole batches, which is much
    faster than image by image. ``prefetch`` prepares the next batch while the model
    trains on the current one.

    Defined in chapter 5.

    Parameters
    ----------
    x : ndarray
        Inputs, first axis = examples.
    y : ndarray, optional
        Labels; without them the dataset yields inputs only.
    batch_size : int, default=128
    shuffle : bool, default=False
        True for training data; validation and test data keep their order.
    seed : int, default=0
        Seed of the shuffle (the order differs per epoch but is reproducible).
    cache : bool, default=True
    map_fn : callable, optional
        Applied to each batch: ``map_fn(x)`` or ``map_fn(x, y)`` -> same structure.
    prefetch : bool, default=True

    Returns
    -------
    tf.data.Dataset

    Examples
    --------
    >>> ds = make_dataset(np.zeros((10, 4, 4, 1), "float32"), np.arange(10), batch_size=4)
    >>> [int(xb.shape[0]) for xb, yb in ds]
    [4, 4, 2]
    """
    import tensorflow as tf

    batch_size = _check_positive_int(batch_size, "batch_size")
    x = np.asarray(x)
    if y is not None:
        y = np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}.")
    if map_fn is not None and not callable(map_fn):
        raise ValueError(f"map_fn must be callable, got {type(map_fn).__name__}.")
    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(x), seed=int(seed), reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if map_fn is not None:
        ds = ds.map(map_fn, num_parallel_calls=tf.data.AUTOTUNE)
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds


# --------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------


def augmenter_from_spec(
    spec: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    input_shape: tuple[int, int, int] | None = None,
    seed: int | None = None,
):
    """Build a ``keras.Sequential`` of preprocessing layers from plain data.

    A pipeline written as data -- ``[("RandomRotation", {"factor": 0.03}), ...]``, the
    same information as ``model.get_config()`` in short -- can be logged, compared and
    checked in another process. Exercise 5's grader uses this function to rebuild and
    test a student's augmentation.

    Defined in chapter 5.

    Parameters
    ----------
    spec : sequence of (str, dict)
        Layer class names from :data:`AUGMENTATION_LAYERS` with their keyword arguments
        (numbers, short strings, None or short tuples only).
    input_shape : tuple of int, optional
        When given, the model starts with ``keras.Input(shape=input_shape)``.
    seed : int, optional
        When given, layer ``k`` gets ``seed=seed + k`` (overriding any seed in ``spec``)
        so that the random draws are reproducible.

    Returns
    -------
    keras.Sequential
        Call it with ``training=True`` to augment; with ``training=False`` (what
        ``predict`` and ``evaluate`` use) the random layers pass images through unchanged.

    Examples
    --------
    >>> aug = augmenter_from_spec([("RandomRotation", {"factor": 0.03})], seed=0)
    >>> aug(np.zeros((2, 28, 28, 1), "float32"), training=True).shape
    TensorShape([2, 28, 28, 1])
    """
    import keras

    layers_spec = _check_spec(spec)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise ValueError(f"seed must be an int or None, got {seed!r}.")
    stack: list = []
    if input_shape is not None:
        stack.append(keras.Input(shape=tuple(input_shape)))
    for k, (name, kwargs) in enumerate(layers_spec):
        cls = getattr(keras.layers, name)
        kwargs = dict(kwargs)
        if seed is not None and name.startswith(("Random", "Gaussian")):
            kwargs["seed"] = int(seed) + k
        try:
            stack.append(cls(**kwargs))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"spec[{k}]: keras.layers.{name}(**{kwargs}) failed: {exc}") from exc
    return keras.Sequential(stack, name="augmenter")


def digit_augmenter(
    rotation_deg: float = 10.0,
    shift_px: float = 2.0,
    zoom: float = 0.1,
    *,
    image_size: int = 28,
    seed: int | None = None,
):
    """A label-safe augmentation for digits: small rotations, shifts and zooms, no flips.

    Keras factors are fractions, not pixels or degrees; this function converts:
    ``RandomRotation(rotation_deg / 360)`` (a fraction of a full turn),
    ``RandomTranslation(shift_px / image_size, shift_px / image_size)`` (a fraction of
    the image side) and ``RandomZoom(zoom)``. Empty pixels are filled with 0 (black
    background) instead of Keras' default reflection. There is no ``RandomFlip``: a
    mirrored 2 is not a 2, and a 6 turned upside down reads as a 9.

    Defined in chapter 5.

    Parameters
    ----------
    rotation_deg : float, default=10.0
        Largest rotation in degrees, in [0, 45].
    shift_px : float, default=2.0
        Largest shift in pixels, in [0, image_size / 4].
    zoom : float, default=0.1
        Largest zoom in or out as a fraction, in [0, 0.5).
    image_size : int, default=28
    seed : int, optional

    Returns
    -------
    keras.Sequential

    Examples
    --------
    >>> aug = digit_augmenter(seed=0)
    >>> [layer.__class__.__name__ for layer in aug.layers]
    ['RandomRotation', 'RandomTranslation', 'RandomZoom']
    """
    image_size = _check_positive_int(image_size, "image_size", minimum=4)
    checks = (
        ("rotation_deg", rotation_deg, 45.0),
        ("shift_px", shift_px, image_size / 4),
        ("zoom", zoom, 0.5),
    )
    for name, value, upper in checks:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= upper:
            raise ValueError(f"{name} must be a number in [0, {upper:g}], got {value!r}.")
    if zoom >= 0.5:
        raise ValueError(f"zoom must be below 0.5, got {zoom!r}.")
    fill = {"fill_mode": "constant", "fill_value": 0.0}
    spec: list[tuple[str, dict]] = []
    if rotation_deg:
        spec.append(("RandomRotation", {"factor": rotation_deg / 360, **fill}))
    if shift_px:
        f = shift_px / image_size
        spec.append(("RandomTranslation", {"height_factor": f, "width_factor": f, **fill}))
    if zoom:
        spec.append(("RandomZoom", {"height_factor": zoom, **fill}))
    return augmenter_from_spec(spec, seed=seed)


def _shifted(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Shift a batch (N, H, W) by (dy, dx) pixels with zero fill (no wrap-around)."""
    n, h, w = images.shape
    out = np.zeros_like(images)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[:, yd, xd] = images[:, ys, xs]
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Correlation of each image of a with the same image of b, over its pixels."""
    a = a.reshape(len(a), -1)
    b = b.reshape(len(b), -1)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=1) / den
    return np.where(den > 0, r, 0.0)


def orientation_scores(
    originals: np.ndarray, augmented: np.ndarray, max_shift: int = 4
) -> np.ndarray:
    """How much each augmented image looks like its original upright, mirrored or turned.

    For each pair, the correlation of ``augmented`` with four versions of ``original``
    (upright, mirrored left-right, mirrored upside-down, rotated 180 degrees), each
    maximised over shifts of up to ``max_shift`` pixels so that a small translation does
    not count as a change of orientation. A label-safe augmentation of an asymmetric
    image keeps the "upright" score the highest; a flip makes another column win.

    Defined in chapter 5 (the flip detector of exercise 5 uses it too).

    Parameters
    ----------
    originals, augmented : ndarray of shape (N, H, W) or (N, H, W, 1)
    max_shift : int, default=4

    Returns
    -------
    ndarray of shape (N, 4)
        Columns in the order of :data:`ORIENTATIONS`; values in [-1, 1].

    Examples
    --------
    >>> img = np.zeros((1, 8, 8)); img[0, 1:7, 2] = 1; img[0, 1, 2:6] = 1  # a Γ shape
    >>> scores = orientation_scores(img, img[:, :, ::-1], max_shift=1)
    >>> ORIENTATIONS[int(scores[0].argmax())]
    'left-right mirror'
    """
    a = _check_images(originals, "originals").astype(np.float64)
    b = _check_images(augmented, "augmented").astype(np.float64)
    if a.ndim == 4:
        if a.shape[-1] != 1:
            raise ValueError(f"originals must be grayscale (one channel), got shape {a.shape}.")
        a = a[..., 0]
    if b.ndim == 4:
        if b.shape[-1] != 1:
            raise ValueError(f"augmented must be grayscale (one channel), got shape {b.shape}.")
        b = b[..., 0]
    if a.shape != b.shape:
        raise ValueError(
            f"originals and augmented must have the same shape, got {a.shape} and {b.shape}."
        )
    max_shift = _check_positive_int(max_shift, "max_shift", minimum=0)
    versions = (a, a[:, :, ::-1], a[:, ::-1, :], a[:, ::-1, ::-1])
    scores = np.full((len(a), len(versions)), -1.0)
    for j, v in enumerate(versions):
        for dy in range(-max_shift, max_shift + 1):
            for dx in range(-max_shift, max_shift + 1):
                scores[:, j] = np.maximum(scores[:, j], _pearson(b, _shifted(v, dy, dx)))
    return scores


# --------------------------------------------------------------------------------------
# Image folders
# --------------------------------------------------------------------------------------


def write_class_folders(
    root: str | os.PathLike,
    images: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    prefix: str = "img",
) -> dict[str, int]:
    """Write images as PNG files into one subfolder per class: ``root/<class>/<prefix>_<i>.png``.

    That is the layout ``keras.utils.image_dataset_from_directory`` reads (and Keras 2's
    ``ImageDataGenerator.flow_from_directory`` read before it): the subfolder names are
    the class names, sorted alphabetically to give the label indices.

    Defined in chapter 5.

    Parameters
    ----------
    root : path
        Folder to write into (created if needed), e.g. ``data/train``.
    images : ndarray of uint8, shape (N, H, W) or (N, H, W, 3)
    labels : sequence of int, length N
        Indices into ``class_names``.
    class_names : sequence of str
        Folder names; each a plain name (no path separators).
    prefix : str, default="img"

    Returns
    -------
    dict
        Number of files written per class.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_class_folders(d, np.zeros((3, 8, 8), np.uint8), [0, 1, 1], ["cat", "dog"])
    {'cat': 1, 'dog': 2}
    """
    from PIL import Image

    x = np.asarray(images)
    if x.dtype != np.uint8 or not (x.ndim == 3 or (x.ndim == 4 and x.shape[-1] == 3)):
        raise ValueError(
            "images must be uint8 of shape (N, H, W) or (N, H, W, 3), got dtype "
            f"{x.dtype} and shape {x.shape}."
        )
    y = np.asarray(labels)
    if y.shape != (len(x),) or y.dtype.kind not in "ui":
        raise ValueError(f"labels must be {len(x)} integers, got shape {y.shape} ({y.dtype}).")
    names = [str(c) for c in class_names]
    if not names or any(not c or "/" in c or "\\" in c or c in (".", "..") for c in names):
        raise ValueError(f"class_names must be plain folder names, got {names!r}.")
    if y.size and (y.min() < 0 or y.max() >= len(names)):
        raise ValueError(f"labels must be in 0..{len(names) - 1}, got {y.min()}..{y.max()}.")
    root = Path(root)
    counts = dict.fromkeys(names, 0)
    for name in names:
        (root / name).mkdir(parents=True, exist_ok=True)
    for i, (img, label) in enumerate(zip(x, y, strict=True)):
        name = names[int(label)]
        Image.fromarray(img).save(root / name / f"{prefix}_{i:05d}.png")
        counts[name] += 1
    return counts
