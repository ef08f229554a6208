"""Tasks of exercise 5, "A normalization and augmentation pipeline for digits" (chapter 5).

Students write the pieces of an input pipeline and are graded on what the pieces *do*:

- ``normalize``: ``uint8`` digits -> ``float32`` in a requested range, with a channel axis;
- ``standardize``: per-channel standardization with the *training* set's statistics;
- ``digit_augmentation``: a Keras augmentation pipeline written as data (layer names and
  arguments). The grader rebuilds it with :func:`cnncourse.pipelines.augmenter_from_spec`
  in its own process and applies it to asymmetric digits: the shape and the [0, 1] range
  must survive, no image may come out mirrored or upside down (a flip detector built on
  :func:`cnncourse.pipelines.orientation_scores`), the ink must move in most images, the
  changes must stay small enough that a digit keeps its identity, and nothing may change
  at inference time. Each check is a case of its own: six public cases on fixed strokes,
  and twelve hidden ones, the six checks on new random strokes and on the public strokes,
  with new seeds; the pipeline runs once per input (the checks share its output);
- ``make_batches``: shuffle and batch normalized images in NumPy, what
  ``tf.data.Dataset.from_tensor_slices(...).shuffle(...).batch(...)`` does. Every test
  image carries its own index in two pixels, so the grader can tell whether each label
  still travels with its image after the shuffle.

Each task names its classic mistakes (``mistakes=``): a missing channel axis, no division by
255 or an integer division, the test set's own statistics, one mean for all channels, the
sample std; for the augmentation (recognised from the spec itself) a flip, a rotation
factor given in degrees, a translation in pixels, rescaling inside the augmentation (which
also runs at inference: the images get normalised twice), contrast without
``value_range=(0, 1)``; for the batches labels shuffled apart from their images, no shuffle,
batches shuffled instead of images, raw pixels, float64 and a dropped last batch.
``make_batches`` calls ``normalize`` (``calls=``): a wrong ``normalize`` costs its own points
only. Hidden cases carry tags ("a channel axis already there", "a smaller last batch") that
a failed hidden case names instead of its values.

Why the augmentation is data and not a Keras object: the grader runs a student's code in a
sandboxed child process with only NumPy (TensorFlow cannot be imported there), and only
plain data may come back from it. The checks that need Keras run in the grading process,
on that data.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from cnncourse.exercise import Case, Exercise, Mistake, Task, compare

# --------------------------------------------------------------------------- normalize


def _normalize_reference(x, value_range=(0.0, 1.0)):
    low, high = value_range
    out = low + (high - low) * (np.asarray(x).astype(np.float64) / 255.0)
    if out.ndim == 3:
        out = out[..., np.newaxis]
    return out.astype(np.float32)


def _float32_comparator(expected: np.ndarray, got: object, atol: float = 1e-6) -> str | None:
    """Values as usual, plus the dtype: Keras layers compute in float32."""
    if isinstance(got, np.ndarray) and got.shape == expected.shape and got.dtype != np.float32:
        return f"expected dtype float32 (what Keras computes in), got dtype {got.dtype}"
    return compare(expected, got, rtol=1e-5, atol=atol)


def _standardized_comparator(expected: np.ndarray, got: object) -> str | None:
    """Standardized values are of order 1; float32 means and stds differ from float64 by ~1e-6."""
    return _float32_comparator(expected, got, atol=1e-4)


def _random_digits(rng: np.random.Generator, n: int, h: int = 28, w: int = 28) -> np.ndarray:
    """uint8 images with dark background and bright blobs (enough to test arithmetic)."""
    x = rng.integers(0, 256, size=(n, h, w))
    x[rng.random((n, h, w)) < 0.6] = 0
    return x.astype(np.uint8)


def _normalize_case(name: str, x: np.ndarray, value_range: tuple[float, float]) -> Case:
    return Case(name, (x, value_range), expected=_normalize_reference(x, value_range))


def _normalize_cases() -> list[Case]:
    rng = np.random.default_rng(50501)
    three = np.array([[[0, 51, 255]]], dtype=np.uint8)
    digits = _random_digits(rng, 4)
    with_channel = _random_digits(rng, 3)[..., np.newaxis]
    return [
        _normalize_case("pixels [0, 51, 255] to (0, 1): [0, 0.2, 1]", three, (0.0, 1.0)),
        _normalize_case("pixels [0, 51, 255] to (-1, 1): [-1, -0.6, 1]", three, (-1.0, 1.0)),
        _normalize_case(
            "4 digits (4, 28, 28) to (0, 1): the channel axis is added", digits, (0.0, 1.0)
        ),
        _normalize_case(
            "3 digits already (3, 28, 28, 1) to (-1, 1): the shape stays",
            with_channel,
            (-1.0, 1.0),
        ),
        _normalize_case(
            "every value 0..255 to (-0.5, 2.0)",
            np.arange(256, dtype=np.uint8).reshape(1, 16, 16),
            (-0.5, 2.0),
        ),
        Case(
            "normalize(x) without a range: the default (0, 1)",
            (digits,),
            expected=_normalize_reference(digits, (0.0, 1.0)),
        ),
    ]


def _normalize_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(10):
        n, h, w = (int(v) for v in rng.integers([1, 2, 2], [6, 30, 30]))
        x = _random_digits(rng, n, h, w)
        if rng.random() < 0.5:
            x = x[..., np.newaxis]
        low = float(np.round(rng.uniform(-2.0, 0.5), 2))
        high = float(np.round(low + rng.uniform(0.5, 3.0), 2))
        case = _normalize_case(f"images {x.shape} to ({low}, {high})", x, (low, high))
        tags = (
            "a channel axis already there" if x.ndim == 4 else "no channel axis yet",
            "a range with a negative lower end" if low < 0 else "a range other than (0, 1)",
        )
        cases.append(Case(**{**case.__dict__, "tags": tags}))
    return cases


def _scaled(x: np.ndarray, value_range=(0.0, 1.0), divide=255.0, width=None) -> np.ndarray:
    """``low + width * x / divide`` in float64 (the building block of the wrong answers)."""
    low, high = value_range
    width = high - low if width is None else width
    return low + width * (np.asarray(x).astype(np.float64) / divide)


def _with_channel(out: np.ndarray) -> np.ndarray:
    return out[..., np.newaxis] if out.ndim == 3 else out


def _float64_right(case: Case, got: object) -> bool:
    """Right values in float64 (float32 was asked for)."""
    return (
        isinstance(got, np.ndarray)
        and got.dtype == np.float64
        and compare(case.expected, got, rtol=1e-5, atol=1e-4) is None
    )


_NORMALIZE_MISTAKES = (
    Mistake(
        "float64",
        "the values are right but the dtype is float64; Keras computes in float32, so "
        "finish with .astype(np.float32)",
        seen=_float64_right,
    ),
    Mistake(
        "no_channel_axis",
        "the values are right but the channel axis is missing: Keras' Conv2D takes "
        "(N, H, W, 1); add it with x[..., np.newaxis] when x has 3 axes",
        lambda x, r=(0.0, 1.0): _scaled(x, r),
    ),
    Mistake(
        "channel_axis_twice",
        "an image that already has its channel axis (N, H, W, 1) got a second one; add "
        "the axis only when x.ndim == 3",
        lambda x, r=(0.0, 1.0): _scaled(x, r)[..., np.newaxis],
    ),
    Mistake(
        "not_divided_by_255",
        "the pixels were not divided by 255: 0..255 must map onto the range, so use "
        "low + (high - low) * x / 255",
        lambda x, r=(0.0, 1.0): _with_channel(_scaled(x, r, divide=1.0)),
    ),
    Mistake(
        "integer_division",
        "x // 255 is an integer division: every pixel below 255 became 0; convert to float "
        "first and divide with /",
        lambda x, r=(0.0, 1.0): _with_channel(
            r[0] + (r[1] - r[0]) * (np.asarray(x) // 255).astype(np.float64)
        ),
    ),
    Mistake(
        "range_ignored",
        "the output is always in [0, 1]: the value_range argument was ignored; map 0 to "
        "its first and 255 to its second number",
        lambda x, r=(0.0, 1.0): _with_channel(_scaled(x)),
    ),
    Mistake(
        "scaled_by_high",
        "255 did not land on the upper end: multiply by the width of the range "
        "(high - low), not by high, before adding low",
        lambda x, r=(0.0, 1.0): _with_channel(_scaled(x, r, width=r[1])),
    ),
)


# --------------------------------------------------------------------------- standardize


def _standardize_reference(x_train: np.ndarray, x: np.ndarray) -> np.ndarray:
    mean = x_train.astype(np.float64).mean(axis=(0, 1, 2))
    std = x_train.astype(np.float64).std(axis=(0, 1, 2))
    return ((x - mean) / np.maximum(std, 1e-7)).astype(np.float32)


def _standardize_case(name: str, x_train: np.ndarray, x: np.ndarray) -> Case:
    return Case(name, (x_train, x), expected=_standardize_reference(x_train, x))


def _unit(rng: np.random.Generator, *shape: int, scale: float = 1.0, shift: float = 0.0):
    return np.clip(rng.random(shape) * scale + shift, 0.0, 1.0).astype(np.float32)


def _standardize_cases() -> list[Case]:
    rng = np.random.default_rng(50502)
    tiny = np.array([0.0, 0.5, 1.0, 0.5], dtype=np.float32).reshape(1, 2, 2, 1)
    gray = _unit(rng, 6, 5, 5, 1, scale=0.6)
    rgb = np.concatenate(
        [
            _unit(rng, 4, 5, 5, 1, scale=0.2),
            _unit(rng, 4, 5, 5, 1),
            _unit(rng, 4, 5, 5, 1, scale=0.3, shift=0.6),
        ],
        axis=-1,
    )
    test_rgb = _unit(rng, 3, 5, 5, 3, scale=0.5, shift=0.2)
    constant = np.concatenate([_unit(rng, 3, 4, 4, 1), np.full((3, 4, 4, 1), 0.5, np.float32)], -1)
    return [
        _standardize_case(
            "by hand: one image [[0, 0.5], [1, 0.5]], mean 0.5, std 0.354", tiny, tiny
        ),
        _standardize_case("gray images, x = x_train: mean 0 and std 1 come out", gray, gray),
        _standardize_case("3 channels: each channel with its own mean and std", rgb, rgb),
        _standardize_case(
            "test images use the TRAINING mean and std, not their own", rgb, test_rgb
        ),
        _standardize_case(
            "a constant channel (std 0) is divided by 1e-7, not by 0", constant, constant
        ),
    ]


def _standardize_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(10):
        n, h, w = (int(v) for v in rng.integers([2, 2, 2], [8, 10, 10]))
        c = int(rng.choice([1, 3]))
        x_train = _unit(rng, n, h, w, c, scale=float(rng.uniform(0.2, 1.0)))
        x = _unit(rng, int(rng.integers(1, 5)), h, w, c, scale=float(rng.uniform(0.2, 1.0)))
        case = _standardize_case(f"x_train {x_train.shape}, x {x.shape}", x_train, x)
        tags = ("3 channels" if c == 3 else "1 channel", "x other images than x_train")
        cases.append(Case(**{**case.__dict__, "tags": tags}))
    return cases


def _standardized(x_train, x, axis=(0, 1, 2), ddof=0, floor=1e-7, power=1.0, stats_of=None):
    """A standardization in float64 with the given choices (the wrong answers' template)."""
    source = np.asarray(x_train if stats_of is None else stats_of, dtype=np.float64)
    mean = source.mean(axis=axis, keepdims=axis != (0, 1, 2))
    std = source.std(axis=axis, ddof=ddof, keepdims=axis != (0, 1, 2))
    scale = np.maximum(std, floor) if floor else std
    return (np.asarray(x, dtype=np.float64) - mean) / scale**power


_STANDARDIZE_MISTAKES = (
    Mistake(
        "float64",
        "the values are right but the dtype is float64 (NumPy's mean and std are float64); "
        "finish with .astype(np.float32)",
        seen=_float64_right,
    ),
    Mistake(
        "statistics_of_x",
        "the mean and std came from x, not from x_train: validation and test images must be "
        "standardized with the TRAINING statistics (else the test set leaks into the model)",
        lambda x_train, x: _standardized(x, x),
    ),
    Mistake(
        "one_mean_for_all_channels",
        "one mean and one std over all channels; each channel needs its own: "
        "x_train.mean(axis=(0, 1, 2)) gives one value per channel",
        lambda x_train, x: _standardized(x_train, x, axis=None),
    ),
    Mistake(
        "per_image_statistics",
        "each image was standardized with its own statistics; use the statistics of the "
        "whole training set, over axes (0, 1, 2)",
        lambda x_train, x: _standardized(x, x, axis=(1, 2)),
    ),
    Mistake(
        "sample_std",
        "you used the sample standard deviation (ddof=1); the task (and Keras' "
        "Normalization) uses the population std, np.std's default ddof=0",
        lambda x_train, x: _standardized(x_train, x, ddof=1),
    ),
    Mistake(
        "divided_by_variance",
        "you divided by the variance; divide by the standard deviation (its square root)",
        lambda x_train, x: _standardized(x_train, x, power=2.0),
    ),
    Mistake(
        "no_std_floor",
        "a channel that never changes has std 0 and 0 / 0 gave NaN; divide by "
        "np.maximum(std, 1e-7) as Keras does",
        lambda x_train, x: _standardized(x_train, x, floor=0.0),
    ),
)


# --------------------------------------------------------------------------- augmentation

#: The grader's thresholds, calibrated on the test strokes (see tests/test_tasks_ex05.py):
#: rotations up to 20 degrees, shifts up to 4 pixels and zooms up to 30 % pass; flips,
#: half-turns and rotations of 45 degrees or more fail.
MAX_SHIFT_SEARCH = 4  # pixels of shift the flip detector forgives
FLIP_MARGIN = 0.2  # a digit counts as flipped when a flipped version matches this much better
MAX_FLIPPED = 3  # ... and the pipeline flips when more digits than this count as flipped
MIN_UPRIGHT_P10 = 0.65  # the 10 % most changed digits still correlate this well with originals
MOVED_BELOW = 0.98  # a digit "moved" when its unshifted correlation with the original is below
MIN_MOVED_FRACTION = 0.25  # ... and at least this fraction of the digits must have moved
ASYMMETRY = 0.5  # test strokes correlate at most this well with any flipped version of them


def _segment_distance(py, px, p0, p1):
    """Distance of every pixel centre (py, px) to the segments p0 -> p1 (one per image)."""
    d = p1 - p0
    length2 = np.maximum((d * d).sum(axis=-1), 1e-9)[:, None, None]
    t = (
        (py - p0[:, 0, None, None]) * d[:, 0, None, None]
        + (px - p0[:, 1, None, None]) * d[:, 1, None, None]
    ) / length2
    t = np.clip(t, 0.0, 1.0)
    return np.hypot(
        py - (p0[:, 0, None, None] + t * d[:, 0, None, None]),
        px - (p0[:, 1, None, None] + t * d[:, 1, None, None]),
    )


def _stroke_patterns(rng: np.random.Generator, n: int) -> np.ndarray:
    """n digit-like images: a random 3-segment pen stroke that no flip maps onto itself.

    Strokes stay inside the central 20x20 pixels, as MNIST digits do. A candidate is kept
    only when it correlates less than ``ASYMMETRY`` with every flipped or turned version of
    itself, so that the flip detector can tell a flip from a small rotation.
    """
    from cnncourse.pipelines import orientation_scores

    py, px = np.mgrid[0:28, 0:28].astype(np.float64)
    kept: list[np.ndarray] = []
    while sum(len(k) for k in kept) < n:
        points = rng.uniform(6.0, 22.0, size=(64, 4, 2))
        dist = np.min(
            [_segment_distance(py, px, points[:, k], points[:, k + 1]) for k in range(3)],
            axis=0,
        )
        images = np.clip(1.6 - dist / 1.2, 0.0, 1.0)
        self_scores = orientation_scores(images, images, max_shift=MAX_SHIFT_SEARCH)
        good = (self_scores[:, 1:].max(axis=1) < ASYMMETRY) & (images.sum(axis=(1, 2)) > 30)
        kept.append(images[good])
    return np.concatenate(kept)[:n, :, :, np.newaxis].astype(np.float32)


@functools.cache
def _public_strokes() -> np.ndarray:
    """The 64 fixed test strokes of the public cases (made once per process)."""
    images = _stroke_patterns(np.random.default_rng(50503), 64)
    images.flags.writeable = False
    return images


def _augment(spec: object, images: np.ndarray, seed: int, training: bool = True) -> np.ndarray:
    """Build the student's pipeline here (in the grading process) and apply it."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from cnncourse.pipelines import augmenter_from_spec

    augmenter = augmenter_from_spec(spec, seed=seed)
    out = augmenter(np.array(images), training=training)
    return np.asarray(out)


class _Augmented:
    """The student's pipeline applied to one case's images, once per mode, for every check.

    Building the pipeline and running it is the slow part of a check; the augmenter is
    rebuilt with the case's seed, so every check of a case would compute the same output.
    """

    def __init__(self, spec: object, images: np.ndarray, seed: int) -> None:
        self.spec, self.images, self.seed = spec, images, seed
        self._out: dict[bool, np.ndarray] = {}

    def __call__(self, training: bool = True) -> np.ndarray:
        if training not in self._out:
            self._out[training] = _augment(self.spec, self.images, self.seed, training)
        return self._out[training]


def _shape_changed(images: np.ndarray, out: np.ndarray) -> str | None:
    if out.shape != images.shape:
        return f"the output shape {out.shape} differs from the input shape {images.shape}"
    return None


def _check_shape(images: np.ndarray, augmented: _Augmented) -> str | None:
    out = augmented()
    if out.shape != images.shape:
        return (
            f"your pipeline turns a batch of shape {images.shape} into shape {out.shape}; "
            "augmentation must keep the image size"
        )
    if out.dtype != np.float32:
        return f"your pipeline returns dtype {out.dtype}, expected float32"
    return None


def _check_range(images: np.ndarray, augmented: _Augmented) -> str | None:
    out = augmented()
    lo, hi = float(out.min()), float(out.max())
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1e-5 or hi > 1 + 1e-5:
        return (
            f"values of the augmented images lie in [{lo:.3g}, {hi:.3g}], outside [0, 1]; "
            "layers such as RandomContrast and RandomBrightness need value_range=(0, 1) "
            "for inputs scaled to [0, 1]"
        )
    return None


def _check_no_flips(images: np.ndarray, augmented: _Augmented) -> str | None:
    from cnncourse.pipelines import ORIENTATIONS, orientation_scores

    out = augmented()
    if message := _shape_changed(images, out):
        return message
    scores = orientation_scores(images, out, max_shift=MAX_SHIFT_SEARCH)
    flipped = scores[:, 1:].max(axis=1) > scores[:, 0] + FLIP_MARGIN
    if flipped.sum() > MAX_FLIPPED:
        best = 1 + scores[flipped, 1:].argmax(axis=1)
        kinds = sorted({ORIENTATIONS[int(b)] for b in best})
        return (
            f"{int(flipped.sum())} of {len(images)} digits came out looking like a "
            f"{' / '.join(kinds)} of the original: a mirrored or upside-down digit is a "
            "different symbol (remove flips and half-turns)"
        )
    return None


def _check_moves_ink(images: np.ndarray, augmented: _Augmented) -> str | None:
    from cnncourse.pipelines import _pearson

    out = augmented()
    if message := _shape_changed(images, out):
        return message
    same_place = _pearson(images[..., 0].astype(np.float64), out[..., 0].astype(np.float64))
    fraction = float(np.mean(same_place < MOVED_BELOW))
    if fraction < MIN_MOVED_FRACTION:
        return (
            f"only {fraction:.0%} of the digits were rotated, shifted or zoomed noticeably, "
            f"at least {MIN_MOVED_FRACTION:.0%} should be (is the pipeline empty, does it "
            "only change contrast, or are the factors tiny?)"
        )
    return None


def _check_small(images: np.ndarray, augmented: _Augmented) -> str | None:
    from cnncourse.pipelines import orientation_scores

    out = augmented()
    if message := _shape_changed(images, out):
        return message
    upright = orientation_scores(images, out, max_shift=MAX_SHIFT_SEARCH)[:, 0]
    p10 = float(np.percentile(upright, 10))
    if p10 < MIN_UPRIGHT_P10:
        return (
            f"the changes are too large: the 10 % most changed digits correlate only {p10:.2f} "
            f"with their originals (at least {MIN_UPRIGHT_P10} expected); keep rotations "
            "within about 15 degrees, shifts within about 3 pixels, zooms within about 15 %"
        )
    return None


def _check_inference(images: np.ndarray, augmented: _Augmented) -> str | None:
    out = augmented(training=False)
    if out.shape != images.shape or not np.allclose(out, images, atol=1e-6):
        return (
            "with training=False (what predict and evaluate use) your pipeline still "
            "changes the images; use only random augmentation layers, and put scaling "
            "such as Rescaling or Normalization in the model or the input pipeline instead"
        )
    return None


_AUGMENTATION_CHECKS = {
    "shape": _check_shape,
    "range": _check_range,
    "no_flips": _check_no_flips,
    "moves_ink": _check_moves_ink,
    "small": _check_small,
    "inference": _check_inference,
}


#: The pipelines applied last: ``(spec, images digest, seed) -> _Augmented``, so that the
#: hidden cases that run different checks on one spec, images and seed apply it once.
_APPLIED: dict[tuple[str, str, int], _Augmented] = {}


def _applied(spec: object, images: np.ndarray, seed: int) -> _Augmented:
    """The case's :class:`_Augmented`, shared with the earlier cases of the same inputs."""
    import hashlib

    key = (repr(spec), hashlib.sha256(images.tobytes()).hexdigest(), seed)
    if key not in _APPLIED:
        if len(_APPLIED) >= 4:
            _APPLIED.clear()
        _APPLIED[key] = _Augmented(spec, images, seed)
    return _APPLIED[key]


def _augmentation_comparator(expected: dict, got: object) -> str | None:
    """Rebuild the student's pipeline from its spec and run the case's checks on it."""
    from cnncourse.pipelines import _check_spec

    try:
        _check_spec(got)
    except ValueError as exc:
        return str(exc)
    images = np.ascontiguousarray(expected["images"], dtype=np.float32)
    augmented = _applied(got, images, int(expected["seed"]))
    for name in expected["checks"]:
        try:
            message = _AUGMENTATION_CHECKS[name](images, augmented)
        except Exception as exc:  # a layer that cannot be built or applied: say which
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return (
                f"your pipeline could not be built or applied ({type(exc).__name__}: {text[:200]})"
            )
        if message:
            return message
    return None


def _layers(spec: object) -> list[tuple[str, dict]]:
    """The (name, kwargs) pairs of a spec, or [] when it is not one."""
    from cnncourse.pipelines import _check_spec

    try:
        return _check_spec(spec)
    except ValueError:
        return []


def _largest(value: object) -> float:
    """The largest magnitude of a factor given as a number or a (low, high) tuple."""
    values = value if isinstance(value, tuple) else (value,)
    return max((abs(float(v)) for v in values if isinstance(v, int | float)), default=0.0)


def _factor(spec: object, layer: str, *names: str) -> float:
    return max(
        (_largest(kw.get(n, 0.0)) for name, kw in _layers(spec) if name == layer for n in names),
        default=0.0,
    )


def _has(spec: object, *layers: str) -> bool:
    return any(name in layers for name, _ in _layers(spec))


_GEOMETRIC = ("RandomRotation", "RandomTranslation", "RandomZoom", "RandomShear", "RandomCrop")


def _moves_nothing(spec: object) -> bool:
    """A valid spec (maybe empty) without a layer that moves the ink."""
    empty = isinstance(spec, list | tuple) and len(spec) == 0
    return (empty or bool(_layers(spec))) and not _has(spec, *_GEOMETRIC)


def _when(checks: tuple[str, ...], predicate: Callable[[object], bool]):
    """A ``seen`` detector for the cases that run one of ``checks`` (all cases if empty)."""

    def seen(case: Case, got: object) -> bool:
        ran = case.expected["checks"]
        return (not checks or any(c in ran for c in checks)) and predicate(got)

    return seen


_AUGMENTATION_MISTAKES = (
    Mistake(
        "flip",
        "RandomFlip mirrors digits or turns them upside down, and a mirrored 2 or an "
        "upside-down 6 is another symbol (or none): a flip changes the label; remove it",
        seen=_when(("no_flips",), lambda got: _has(got, "RandomFlip")),
    ),
    Mistake(
        "rotation_in_degrees",
        "RandomRotation's factor is a fraction of a full turn, not degrees: factor=10 turns "
        "by up to 3600 degrees; 10 degrees is factor=10 / 360",
        seen=_when((), lambda got: _factor(got, "RandomRotation", "factor") >= 1.0),
    ),
    Mistake(
        "translation_in_pixels",
        "RandomTranslation's factors are fractions of the image size, not pixels: 2 pixels "
        "of a 28-pixel digit is height_factor=2 / 28",
        seen=_when(
            (), lambda got: _factor(got, "RandomTranslation", "height_factor", "width_factor") >= 1
        ),
    ),
    Mistake(
        "rescaling_in_augmentation",
        "Rescaling or Normalization in the augmentation also runs at inference, and the "
        "images are already in [0, 1]: they get normalised twice; scaling belongs in "
        "normalize (or the model's first layer), not among the random layers",
        seen=_when(("inference", "range"), lambda got: _has(got, "Rescaling", "Normalization")),
    ),
    Mistake(
        "crop_changes_size",
        "RandomCrop returns smaller images than it gets; to move the digit and keep 28x28, "
        "use RandomTranslation (or RandomZoom)",
        seen=_when(
            ("shape", "no_flips", "moves_ink", "small"), lambda got: _has(got, "RandomCrop")
        ),
    ),
    Mistake(
        "value_range_missing",
        "RandomContrast and RandomBrightness assume pixels in 0..255 unless told otherwise: "
        "pass value_range=(0, 1) for images in [0, 1]",
        seen=_when(
            ("range",),
            lambda got: any(
                name in ("RandomContrast", "RandomBrightness") and "value_range" not in kw
                for name, kw in _layers(got)
            ),
        ),
    ),
    Mistake(
        "rotation_too_large",
        "rotations of more than about 20 degrees turn a 6 toward a 9 and a 1 toward a 7; "
        "keep RandomRotation's factor within about 15 / 360",
        seen=_when(
            ("small", "no_flips"),
            lambda got: 20 / 360 < _factor(got, "RandomRotation", "factor") < 1.0,
        ),
    ),
    Mistake(
        "no_geometric_augmentation",
        "nothing in the pipeline moves the ink: contrast, brightness and noise alone do not "
        "teach the model that a digit may sit a little shifted or tilted; add "
        "RandomRotation, RandomTranslation or RandomZoom",
        seen=_when(("moves_ink",), _moves_nothing),
    ),
)


def _augmentation_case(name: str, checks: tuple[str, ...], images: np.ndarray, seed: int) -> Case:
    return Case(name, (), expected={"checks": checks, "images": images, "seed": seed})


def _augmentation_cases() -> list[Case]:
    digits = np.array(_public_strokes())
    n = len(digits)
    return [
        _augmentation_case(
            "keeps the shape (N, 28, 28, 1) and dtype float32", ("shape",), digits[:8], 0
        ),
        _augmentation_case("values stay in [0, 1]", ("range",), digits, 1),
        _augmentation_case(
            f"never flips: {n} asymmetric digits stay upright (not mirrored, not turned)",
            ("no_flips",),
            digits,
            2,
        ),
        _augmentation_case(
            f"really augments: rotates, shifts or zooms at least {MIN_MOVED_FRACTION:.0%} "
            "of the digits",
            ("moves_ink",),
            digits,
            3,
        ),
        _augmentation_case(
            "keeps every digit recognisable (small changes only)", ("small",), digits, 4
        ),
        _augmentation_case(
            "acts only in training: training=False returns the images unchanged",
            ("inference",),
            digits[:8],
            5,
        ),
    ]


_CHECK_TAGS = {
    "shape": "the shape and dtype checked",
    "range": "the value range checked",
    "no_flips": "flips checked",
    "moves_ink": "the movement of the ink checked",
    "small": "the size of the changes checked",
    "inference": "inference mode checked",
}


def _augmentation_hidden(rng: np.random.Generator) -> list[Case]:
    """Every check as a case of its own, on two inputs: 48 new random strokes, and the
    public strokes, each with a new random seed (12 cases).

    The spec is data without inputs, so every case judges the one answer (the task is
    ``deterministic``); the grading process applies the pipeline once per input and mode
    and runs each case's check on that output (:func:`_applied`).
    """
    inputs = [
        (_stroke_patterns(rng, 48), int(rng.integers(1000, 10**6)), "new random pen strokes"),
        (np.array(_public_strokes()), int(rng.integers(1000, 10**6)), "the public strokes"),
    ]
    return [
        Case(
            f"{label}, a new random seed: {check} check",
            (),
            expected={"checks": (check,), "images": images, "seed": seed},
            tags=(label, "a new random seed", _CHECK_TAGS[check]),
        )
        for images, seed, label in inputs
        for check in _AUGMENTATION_CHECKS
    ]


# --------------------------------------------------------------------------- make_batches


def _labelled_images(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images whose pixels (0, 0) and (0, 1) hold the image's index i (i % 256, i // 256)."""
    x = _random_digits(rng, n)
    ids = np.arange(n)
    x[:, 0, 0] = ids % 256
    x[:, 0, 1] = ids // 256
    y = rng.integers(0, 10, size=n).astype(np.uint8)
    return x, y


def _batches_comparator(expected: dict, got: object) -> str | None:
    x, y, batch_size = expected["x"], expected["y"], int(expected["batch_size"])
    n = len(x)
    sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    if not isinstance(got, list | tuple):
        return f"expected a list of (images, labels) pairs, got {type(got).__name__}"
    if len(got) != len(sizes):
        return (
            f"expected {len(sizes)} batches ({n} images in batches of {batch_size}, the "
            f"last one smaller if needed), got {len(got)}"
        )
    seen: list[np.ndarray] = []
    for k, (item, size) in enumerate(zip(got, sizes, strict=True)):
        if not isinstance(item, list | tuple) or len(item) != 2:
            return f"batch {k}: expected a pair (images, labels), got {type(item).__name__}"
        xb, yb = (np.asarray(v) if isinstance(v, np.ndarray) else v for v in item)
        if not isinstance(xb, np.ndarray) or not isinstance(yb, np.ndarray):
            return f"batch {k}: expected two NumPy arrays"
        if xb.shape != (size, 28, 28, 1):
            return f"batch {k}: expected images of shape {(size, 28, 28, 1)}, got {xb.shape}"
        if xb.dtype != np.float32:
            return f"batch {k}: expected float32 images (use your normalize), got {xb.dtype}"
        if yb.shape != (size,) or yb.dtype.kind not in "ui":
            return f"batch {k}: expected {size} integer labels, got shape {yb.shape} ({yb.dtype})"
        if not np.all(np.isfinite(xb)) or xb.min() < -1e-6 or xb.max() > 1 + 1e-6:
            return f"batch {k}: images must be scaled to [0, 1]"
        codes = np.rint(xb[:, 0, :2, 0].astype(np.float64) * 255).astype(np.int64)
        ids = codes[:, 0] + 256 * codes[:, 1]
        if ids.min() < 0 or ids.max() >= n:
            return f"batch {k}: holds images that are not in x"
        if not np.allclose(xb[..., 0], x[ids].astype(np.float64) / 255, atol=1e-6):
            return f"batch {k}: the images differ from x / 255 (are they normalized to [0, 1]?)"
        if not np.array_equal(yb, y[ids]):
            wrong = int((yb != y[ids]).sum())
            return (
                f"batch {k}: {wrong} of {size} labels no longer belong to their images; "
                "shuffle images and labels with the SAME permutation"
            )
        seen.append(ids)
    ids = np.concatenate(seen)
    if len(np.unique(ids)) != n:
        return f"some images appear twice and others never ({len(np.unique(ids))} of {n} distinct)"
    if _batches_in_order(seen) and not _starts_in_order(seen):
        return (
            "inside every batch the images are still in their original order: the batches "
            "were shuffled, not the images"
        )
    if n >= 20 and np.mean(ids[1:] > ids[:-1]) > 0.9:
        return "the images come out (almost) in their original order; shuffle them first"
    return None


def _starts_in_order(batches: list[np.ndarray]) -> bool:
    starts = [int(b[0]) for b in batches]
    return starts == sorted(starts)


def _batches_in_order(batches: list[np.ndarray]) -> bool:
    """Do the batches hold runs of consecutive images (shuffled after batching)?

    Within a batch, a real shuffle puts image i + 1 right after image i about once in n
    pairs; batches cut first and shuffled afterwards do it every time.
    """
    steps = np.concatenate([np.diff(b) for b in batches if len(b) > 1] or [np.zeros(0)])
    return len(steps) >= 10 and float(np.mean(steps == 1)) > 0.9


def _batch_parts(expected: dict, got: object) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """The (images, labels) arrays of a list of batches, or None when it is not one."""
    if not isinstance(got, list | tuple) or not got:
        return None
    parts = []
    for item in got:
        if not isinstance(item, list | tuple) or len(item) != 2:
            return None
        xb, yb = item
        if not isinstance(xb, np.ndarray) or not isinstance(yb, np.ndarray) or not len(xb):
            return None
        parts.append((xb, yb))
    return parts


def _ids(xb: np.ndarray, scale: float = 255.0) -> np.ndarray:
    """The index each image carries in pixels (0, 0) and (0, 1)."""
    first = xb.reshape(len(xb), -1)
    codes = np.rint(first[:, :2].astype(np.float64) * scale).astype(np.int64)
    return codes[:, 0] + 256 * codes[:, 1]


def _batches_seen(test: Callable[[dict, list[tuple[np.ndarray, np.ndarray]]], bool]):
    def seen(case: Case, got: object) -> bool:
        parts = _batch_parts(case.expected, got)
        return parts is not None and bool(test(case.expected, parts))

    return seen


def _labels_unpaired(expected: dict, parts) -> bool:
    x, y = expected["x"], expected["y"]
    ids = np.concatenate([_ids(xb) for xb, _ in parts])
    labels = np.concatenate([yb for _, yb in parts])
    if ids.min() < 0 or ids.max() >= len(x) or len(labels) != len(ids):
        return False
    return not np.array_equal(labels, y[ids]) and np.array_equal(np.sort(labels), np.sort(y))


def _images_unscaled(expected: dict, parts) -> bool:
    x = expected["x"]
    xb = parts[0][0]
    ids = _ids(xb, scale=1.0)
    return (
        float(xb.max()) > 1.5
        and ids.min() >= 0
        and ids.max() < len(x)
        and np.allclose(xb.reshape(len(xb), -1), x[ids].reshape(len(xb), -1))
    )


def _in_original_order(expected: dict, parts) -> bool:
    batches = [_ids(xb) for xb, _ in parts]
    ids = np.concatenate(batches)
    return len(ids) >= 20 and float(np.mean(ids[1:] > ids[:-1])) > 0.9 and _starts_in_order(batches)


def _shuffled_after_batching(expected: dict, parts) -> bool:
    batches = [_ids(xb) for xb, _ in parts]
    return _batches_in_order(batches) and not _starts_in_order(batches)


def _last_batch_dropped(expected: dict, parts) -> bool:
    n, size = len(expected["x"]), int(expected["batch_size"])
    return n % size != 0 and len(parts) == n // size and all(len(xb) == size for xb, _ in parts)


_BATCHES_MISTAKES = (
    Mistake(
        "labels_shuffled_separately",
        "images and labels were shuffled with two different orders, so every label now sits "
        "next to a random image and the network cannot learn; draw ONE permutation and index "
        "both x and y with it",
        seen=_batches_seen(_labels_unpaired),
    ),
    Mistake(
        "not_shuffled",
        "the images come out in their original order: shuffle (one permutation of "
        "range(len(x))) before cutting the batches",
        seen=_batches_seen(_in_original_order),
    ),
    Mistake(
        "shuffle_after_batch",
        "the batches were shuffled, not the images, so every batch holds the same neighbours "
        "each epoch; shuffle first, then batch (in tf.data: .shuffle(...) before .batch(...))",
        seen=_batches_seen(_shuffled_after_batching),
    ),
    Mistake(
        "not_normalized",
        "the images still hold raw pixels 0..255: scale them to [0, 1] with your normalize "
        "(x / 255 as float32)",
        seen=_batches_seen(_images_unscaled),
    ),
    Mistake(
        "no_channel_axis",
        "the images have no channel axis: Keras' Conv2D takes (batch, 28, 28, 1); your "
        "normalize adds it",
        seen=_batches_seen(lambda e, parts: parts[0][0].shape[1:] == (28, 28)),
    ),
    Mistake(
        "last_batch_dropped",
        "the last, smaller batch is missing: keep the remainder (tf.data's batch keeps it "
        "unless drop_remainder=True); range(0, len(x), batch_size) gives every start",
        seen=lambda case, got: (
            (isinstance(got, list) and not got and len(case.expected["x"]) < case.args[2])
            or _batches_seen(_last_batch_dropped)(case, got)
        ),
    ),
    Mistake(
        "float64",
        "the images are float64: x / 255 of uint8 pixels is float64; use your normalize, "
        "which returns float32",
        seen=_batches_seen(lambda e, parts: parts[0][0].dtype == np.float64),
    ),
)


def _batches_case(name: str, rng: np.random.Generator, n: int, batch_size: int, seed: int) -> Case:
    x, y = _labelled_images(rng, n)
    return Case(name, (x, y, batch_size, seed), expected={"x": x, "y": y, "batch_size": batch_size})


def _batches_cases() -> list[Case]:
    rng = np.random.default_rng(50504)
    return [
        _batches_case("100 digits in batches of 32 (the last batch holds 4)", rng, 100, 32, 0),
        _batches_case("64 digits in batches of 16, seed 7", rng, 64, 16, 7),
        _batches_case("one batch larger than the data: 10 digits, batch_size 32", rng, 10, 32, 1),
    ]


def _batches_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(10):
        n = int(rng.integers(20, 400))
        batch_size = int(rng.integers(1, 70))
        seed = int(rng.integers(0, 10**6))
        case = _batches_case(f"{n} digits, batch_size {batch_size}", rng, n, batch_size, seed)
        tags = (
            "batch_size 1"
            if batch_size == 1
            else "a smaller last batch"
            if n % batch_size
            else "batches of equal size",
        )
        cases.append(Case(**{**case.__dict__, "tags": tags}))
    return cases


TASKS = [
    Task(
        "ex05.normalize",
        2,
        "uint8 digits to float32 in a given range, with a channel axis",
        _normalize_cases,
        _normalize_hidden,
        comparator=_float32_comparator,
        chapter="chapters/05a_pipelines_augmentation.html#normalization-putting-the-pixels-on-a-sensible-scale",
        mistakes=_NORMALIZE_MISTAKES,
        pure=True,
        reference=_normalize_reference,
    ),
    Task(
        "ex05.standardize",
        2,
        "per-channel standardization with the training statistics",
        _standardize_cases,
        _standardize_hidden,
        comparator=_standardized_comparator,
        chapter="chapters/05a_pipelines_augmentation.html#normalization-putting-the-pixels-on-a-sensible-scale",
        mistakes=_STANDARDIZE_MISTAKES,
        pure=True,
    ),
    Task(
        "ex05.digit_augmentation",
        4,
        "a label-safe augmentation pipeline for digits",
        _augmentation_cases,
        _augmentation_hidden,
        comparator=_augmentation_comparator,
        chapter="chapters/05a_pipelines_augmentation.html#augmentations-that-change-the-label",
        mistakes=_AUGMENTATION_MISTAKES,
        deterministic=True,  # no inputs: every case judges the one spec
    ),
    Task(
        "ex05.make_batches",
        2,
        "shuffle and batch normalized digits, labels kept with their images",
        _batches_cases,
        _batches_hidden,
        comparator=_batches_comparator,
        chapter="chapters/05a_pipelines_augmentation.html#tf-data-feeding-the-model",
        calls=("ex05.normalize",),
        mistakes=_BATCHES_MISTAKES,
        pure=True,
    ),
]


EXERCISE = Exercise("ex05", tuple(TASKS))
