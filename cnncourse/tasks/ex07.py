"""Tasks of exercise 7, "What did the network learn?" (chapter 7).

Two tasks whose inputs are plain arrays, so a model never has to be sent to the grader:

- ``ex07.grad_cam``: the arithmetic of Grad-CAM, ``grad_cam_from_arrays(feature_maps,
  gradients)``, for a batch. Expected outputs come from
  :func:`cnncourse.interpret.grad_cam_from_arrays`, the function the chapter's
  :func:`~cnncourse.interpret.grad_cam` uses (and which is tested there against the closed
  form for a global-average-pooling network). The cases catch: normalising the whole batch
  by one maximum instead of each map by its own (the two images of a case differ in scale
  by a factor of 10 to 50), forgetting the ReLU or rectifying too early (gradients and
  activations of both signs), averaging the gradients over the wrong axes (maps are not
  square and have a different number of channels), and dividing 0 by 0 for a map with no
  positive evidence (the convention is an all-zero map).
- ``ex07.precision_recall``: per-class precision and recall from a confusion matrix. The
  expected values are computed by scikit-learn (``precision_score``/``recall_score`` with
  ``average=None`` and ``zero_division=0``) from labels that reproduce the matrix, so the
  answer key does not depend on the course's own implementation. Cases include classes
  that are never predicted (a zero column: precision 0/0) and classes that never occur (a
  zero row: recall 0/0), which are both reported as 0; and asymmetric matrices, so that
  swapping rows and columns fails.
"""

from __future__ import annotations

import numpy as np

from cnncourse.exercise import Case, Exercise, Mistake, Task, compare
from cnncourse.interpret import grad_cam_from_arrays

# --------------------------------------------------------------------------- grad_cam


def _cam_case(name: str, feature_maps: np.ndarray, gradients: np.ndarray) -> Case:
    return Case(
        name,
        (feature_maps, gradients),
        expected=grad_cam_from_arrays(feature_maps, gradients),
        rtol=1e-6,
        atol=1e-9,
    )


def _worked_example() -> tuple[np.ndarray, np.ndarray]:
    """The chapter's hand example: two 2x2 maps, one helps the class and one hurts it."""
    a = np.array([[[1.0, 0.0], [2.0, 1.0]], [[0.0, 3.0], [1.0, 0.0]]])  # (h=2, w=2, K=2)
    g = np.array([[[0.5, -0.2], [0.1, -0.4]], [[0.2, -0.2], [0.4, 0.0]]])
    return a[np.newaxis], g[np.newaxis]


def _random_layer(
    rng: np.random.Generator, n: int, h: int, w: int, k: int, scales: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Post-ReLU feature maps (non-negative, some zeros) and signed gradients."""
    a = np.maximum(rng.standard_normal((n, h, w, k)) + 0.3, 0.0)
    if scales is not None:
        a *= scales[:, np.newaxis, np.newaxis, np.newaxis]
    g = rng.standard_normal((n, h, w, k)) * 0.1 + rng.standard_normal((n, 1, 1, k)) * 0.05
    return a, g


def _grad_cam_cases() -> list[Case]:
    rng = np.random.default_rng(2070)
    a, g = _worked_example()
    cases = [_cam_case("the chapter's worked example: 2x2 maps, 2 channels", a, g)]
    a, g = _random_layer(rng, 2, 4, 6, 3, scales=np.array([1.0, 20.0]))
    cases.append(
        _cam_case("2 images of 4x6x3, the second 20 times brighter (normalise each map)", a, g)
    )
    a = rng.standard_normal((1, 5, 3, 4))  # activations of both signs, e.g. before a ReLU
    g = rng.standard_normal((1, 5, 3, 4))
    cases.append(_cam_case("1 image of 5x3x4 with negative activations (ReLU at the end)", a, g))
    a, g = _random_layer(rng, 3, 7, 7, 8)
    g[1] = -np.abs(g[1]) - 0.01  # every channel hurts the class: no positive evidence
    a[1] = np.abs(a[1]) + 0.01
    cases.append(_cam_case("3 images of 7x7x8; image 1 has no positive evidence (all zeros)", a, g))
    a, g = _random_layer(rng, 1, 14, 14, 16)
    cases.append(_cam_case("1 image of 14x14x16, the size of a real layer", a, g))
    return cases


def _grad_cam_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(10):
        n, h, w, k = (int(v) for v in rng.integers([1, 2, 2, 1], [4, 9, 9, 10]))
        scales = rng.choice([1.0, 10.0, 50.0], size=n)
        a, g = _random_layer(rng, n, h, w, k, scales=scales)
        if n > 1 and rng.random() < 0.5:
            g[-1] = -np.abs(g[-1]) - 0.01
            a[-1] = np.abs(a[-1]) + 0.01
        case = _cam_case(f"maps of shape {a.shape}", a, g)
        tags = ["several images" if n > 1 else "one image"]
        if len(set(scales.tolist())) > 1:
            tags.append("images of different brightness")
        if n > 1 and not np.any(case.expected[-1]):
            tags.append("an image with no positive evidence")
        if h != w:
            tags.append("maps that are not square")
        cases.append(Case(**{**case.__dict__, "tags": tuple(tags)}))
    return cases


def _cam(a, g, *, weights_axes=(1, 2), relu="after", normalise="each", rectify_gradients=False):
    """Grad-CAM with the given choices, for (N, h, w, K) inputs (the wrong answers' template)."""
    a, g = np.asarray(a, dtype=np.float64), np.asarray(g, dtype=np.float64)
    if rectify_gradients:
        g = np.maximum(g, 0.0)
    weights = g.mean(axis=weights_axes, keepdims=True)
    cam = (weights * a).sum(axis=-1)
    if relu == "after":
        cam = np.maximum(cam, 0.0)
    if normalise == "batch":
        top = np.abs(cam).max()
        return cam / top if top > 0 else cam
    top = np.abs(cam).max(axis=(1, 2), keepdims=True)
    if normalise == "no_zero_guard":
        return cam / top
    return np.divide(cam, top, out=np.zeros_like(cam), where=top > 0)


_CAM_MISTAKES = (
    Mistake(
        "one_maximum_for_the_batch",
        "every map was divided by the largest value of the whole batch; divide each image's "
        "map by its own maximum (max over axes (1, 2), keepdims=True)",
        lambda a, g: _cam(a, g, normalise="batch"),
    ),
    Mistake(
        "relu_missing",
        "negative values are left in the map: Grad-CAM keeps only the positive evidence, "
        "np.maximum(weighted sum, 0), before dividing by the maximum",
        lambda a, g: _cam(a, g, relu="none"),
    ),
    Mistake(
        "gradients_rectified",
        "the ReLU was applied to the gradients (too early): average the signed gradients, "
        "weight the maps, sum over channels, THEN rectify the sum",
        lambda a, g: _cam(a, g, rectify_gradients=True),
    ),
    Mistake(
        "weights_over_wrong_axes",
        "the channel weights are averages over the wrong axes: average the gradients over "
        "the positions only, axes (1, 2), one weight per image and channel",
        lambda a, g: _cam(a, g, weights_axes=(0, 1, 2)),
    ),
    Mistake(
        "zero_division",
        "a map with no positive evidence is all zeros and 0 / 0 gave NaN; the convention is "
        "an all-zero map (divide only where the maximum is > 0)",
        lambda a, g: _cam(a, g, normalise="no_zero_guard"),
    ),
)


# --------------------------------------------------------------------------- precision_recall


def _sklearn_precision_recall(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's per-class precision and recall for the labels behind ``cm``."""
    from sklearn.metrics import precision_score, recall_score

    k = cm.shape[0]
    y_true = np.repeat(np.repeat(np.arange(k), k), cm.ravel())
    y_pred = np.repeat(np.tile(np.arange(k), k), cm.ravel())
    labels = np.arange(k)
    precision = precision_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    recall = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return np.asarray(precision, dtype=np.float64), np.asarray(recall, dtype=np.float64)


def _pr_case(name: str, cm: np.ndarray) -> Case:
    cm = np.asarray(cm, dtype=np.int64)
    return Case(name, (cm,), expected=_sklearn_precision_recall(cm), rtol=1e-9, atol=1e-12)


def _compare_pr(expected: tuple, got: object) -> str | None:
    """Say whether precision or recall is wrong instead of "item 0"/"item 1"."""
    if not isinstance(got, tuple | list) or len(got) != 2:
        kind = type(got).__name__
        size = f" of {len(got)} items" if isinstance(got, tuple | list) else ""
        return f"expected a tuple (precision, recall), got a {kind}{size}"
    for label, e, g in zip(("precision", "recall"), expected, got, strict=True):
        message = compare(e, g, rtol=1e-9, atol=1e-12)
        if message:
            return f"{label}: {message}"
    return None


def _pr_cases() -> list[Case]:
    rng = np.random.default_rng(2071)
    chapter = np.array([[8, 2, 0], [1, 6, 3], [0, 4, 6]])
    never_predicted = np.array([[5, 0, 1], [2, 0, 3], [0, 0, 4]])  # class 1 never predicted
    never_present = np.array([[7, 1, 0], [0, 0, 0], [2, 3, 5]])  # class 1 never occurs
    fashion_like = rng.integers(0, 30, size=(10, 10)) + np.diag(rng.integers(700, 980, size=10))
    return [
        _pr_case("3 classes, asymmetric counts", chapter),
        _pr_case("class 1 is never predicted (precision 0/0 -> 0)", never_predicted),
        _pr_case("class 1 never occurs (recall 0/0 -> 0)", never_present),
        _pr_case("2 classes, all correct", np.array([[4, 0], [0, 6]])),
        _pr_case("10 classes, Fashion-MNIST sized", fashion_like),
    ]


def _pr_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(10):
        cm = np.zeros((1, 1), dtype=np.int64)
        while cm.sum() == 0:  # a confusion matrix counts at least one image
            k = int(rng.integers(2, 11))
            cm = rng.integers(0, 25, size=(k, k))
            if rng.random() < 0.7:
                cm[:, rng.integers(k)] = 0
            if rng.random() < 0.5:
                cm[rng.integers(k), :] = 0
        case = _pr_case(f"{k} classes, {int(cm.sum())} images", cm)
        tags = [
            ("a class that is never predicted", bool((cm.sum(axis=0) == 0).any())),
            ("a class that never occurs", bool((cm.sum(axis=1) == 0).any())),
        ]
        cases.append(Case(**{**case.__dict__, "tags": tuple(t for t, on in tags if on)}))
    return cases


def _pr_without_zero_division(cm):
    cm = cm.astype(float)
    with np.errstate(all="ignore"):
        return np.diag(cm) / cm.sum(axis=0), np.diag(cm) / cm.sum(axis=1)


_PR_MISTAKES = (
    Mistake(
        "precision_recall_swapped",
        "precision divides by the column sums (everything predicted as the class) and recall "
        "by the row sums (everything that truly is the class); yours are the other way round",
        lambda cm: tuple(reversed(_sklearn_precision_recall(cm))),
    ),
    Mistake(
        "zero_division",
        "a class that is never predicted (or never occurs) gives 0 / 0: report 0 there, as "
        "scikit-learn does with zero_division=0, not NaN",
        _pr_without_zero_division,
    ),
)


TASKS = [
    Task(
        "ex07.grad_cam",
        4,
        "Grad-CAM from feature maps and gradients",
        _grad_cam_cases,
        _grad_cam_hidden,
        chapter="chapters/07_interpretation.html#grad-cam-where-is-the-evidence-for-a-class",
        mistakes=_CAM_MISTAKES,
        pure=True,
    ),
    Task(
        "ex07.precision_recall",
        3,
        "per-class precision and recall from a confusion matrix",
        _pr_cases,
        _pr_hidden,
        comparator=_compare_pr,
        mistakes=_PR_MISTAKES,
        chapter="chapters/07_interpretation.html#where-does-the-model-go-wrong",
        pure=True,
    ),
]


EXERCISE = Exercise("ex07", tuple(TASKS))
