"""Exercise 7 (interpretation): right cases; typical mistakes fail with a useful message.

The Grad-CAM answer key comes from ``cnncourse.interpret``; here it is checked against a loop
written straight from the paper's equations. The precision/recall key comes from
scikit-learn; here it is checked against ``cnncourse.interpret.precision_recall``. Then each
typical wrong submission is run through the public cases a student sees.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnncourse import interpret
from cnncourse.checking import run_task
from cnncourse.tasks import get_task

SEEDS = (0, 1, 2)


def _all_cases(task_id: str) -> list:
    task = get_task(task_id)
    cases = list(task.public_cases())
    for seed in SEEDS:
        cases += task.hidden_cases(np.random.default_rng(seed))
    return cases


def _loop_grad_cam(feature_maps, gradients):
    """Grad-CAM with explicit loops: alpha_k = mean gradient, ReLU(sum_k alpha_k A_k), / max."""
    n, h, w, k = feature_maps.shape
    out = np.zeros((n, h, w))
    for i in range(n):
        alphas = [gradients[i, :, :, c].sum() / (h * w) for c in range(k)]
        cam = np.zeros((h, w))
        for c in range(k):
            cam += alphas[c] * feature_maps[i, :, :, c]
        cam = np.maximum(cam, 0)
        if cam.max() > 0:
            cam /= cam.max()
        out[i] = cam
    return out


def _loop_precision_recall(cm):
    k = len(cm)
    precision, recall = np.zeros(k), np.zeros(k)
    for c in range(k):
        column, row = sum(cm[r][c] for r in range(k)), sum(cm[c])
        precision[c] = cm[c][c] / column if column else 0.0
        recall[c] = cm[c][c] / row if row else 0.0
    return precision, recall


# --------------------------------------------------------------------------- the answer key


def test_grad_cam_expected_outputs_agree_with_the_loop_version():
    for case in _all_cases("ex07.grad_cam"):
        np.testing.assert_allclose(case.expected, _loop_grad_cam(*case.args), rtol=1e-12)


def test_grad_cam_worked_example_is_the_hand_computation():
    (case, *_) = get_task("ex07.grad_cam").public_cases()
    np.testing.assert_allclose(case.expected[0], [[0.75, 1.0], [0.0, 0.75]])


def test_grad_cam_cases_include_a_map_without_positive_evidence():
    cases = _all_cases("ex07.grad_cam")
    assert any(not heatmap.any() for case in cases for heatmap in case.expected)


def test_precision_recall_key_from_scikit_learn_agrees_with_interpret():
    cases = _all_cases("ex07.precision_recall")
    assert any((case.args[0].sum(axis=0) == 0).any() for case in cases)  # never predicted
    assert any((case.args[0].sum(axis=1) == 0).any() for case in cases)  # never present
    for case in cases:
        for expected, ours in zip(case.expected, interpret.precision_recall(case.args[0]),
                                  strict=True):
            np.testing.assert_allclose(expected, ours, rtol=1e-12)


def test_hidden_cases_differ_between_seeds_and_are_reproducible():
    for task_id in ("ex07.grad_cam", "ex07.precision_recall"):
        task = get_task(task_id)
        names = [[c.name for c in task.hidden_cases(np.random.default_rng(s))] for s in SEEDS]
        assert names[0] != names[1]
        assert [c.name for c in task.hidden_cases(np.random.default_rng(SEEDS[0]))] == names[0]


@pytest.mark.parametrize(
    "task_id, fn",
    [
        ("ex07.grad_cam", _loop_grad_cam),
        ("ex07.precision_recall", _loop_precision_recall),
        ("ex07.precision_recall", lambda cm: [list(v) for v in _loop_precision_recall(cm)]),
    ],
)
def test_an_independent_solution_earns_full_marks(task_id, fn):
    for seed in SEEDS:
        hidden = get_task(task_id).hidden_cases(np.random.default_rng(seed))
        assert run_task(task_id, fn, cases=hidden).passed
    assert run_task(task_id, fn).passed


# --------------------------------------------------------------------------- typical mistakes


def _fails_with(task_id: str, fn, *fragments: str) -> None:
    """The public cases catch the mistake, and a FAIL line says each of ``fragments``."""
    report = run_task(task_id, fn)
    assert not report.passed and report.points < report.max_points
    failed = "\n".join(f"{r.name}: {r.message}" for r in report.results if not r.passed)
    for fragment in fragments:
        assert fragment in failed, report.to_text()


def _vectorised(a, g, *, weights_axes=(1, 2), relu=True, per_image=True, nan_ok=False):
    alpha = g.mean(axis=weights_axes)
    if alpha.ndim == 1:  # averaged over channels by mistake: broadcast it
        alpha = alpha[:, np.newaxis]
    cam = np.einsum("nhwk,nk->nhw", a, np.broadcast_to(alpha, (a.shape[0], a.shape[3])))
    if relu:
        cam = np.maximum(cam, 0)
    else:  # a common stand-in: min-max scaling instead of the ReLU
        cam = cam - cam.min(axis=(1, 2), keepdims=True)
    peak = cam.max(axis=(1, 2), keepdims=True) if per_image else cam.max()
    if nan_ok:
        with np.errstate(invalid="ignore", divide="ignore"):
            return cam / peak
    return np.divide(cam, peak, out=np.zeros_like(cam), where=np.broadcast_to(peak, cam.shape) > 0)


def test_grad_cam_normalised_over_the_whole_batch_fails_on_the_bright_image_case():
    _fails_with(
        "ex07.grad_cam",
        lambda a, g: _vectorised(a, g, per_image=False),
        "20 times brighter",
        "entries are off",
    )


def test_grad_cam_without_relu_fails():
    _fails_with("ex07.grad_cam", lambda a, g: _vectorised(a, g, relu=False), "worked example")


def test_grad_cam_that_divides_zero_by_zero_fails_with_a_nan_message():
    _fails_with(
        "ex07.grad_cam",
        lambda a, g: _vectorised(a, g, nan_ok=True),
        "no positive evidence",
        "division by zero",
    )


def test_grad_cam_averaging_the_gradients_over_the_wrong_axes_fails():
    _fails_with("ex07.grad_cam", lambda a, g: _vectorised(a, g, weights_axes=(1, 3)), "4x6x3")


def test_grad_cam_weighting_each_position_by_its_own_gradient_fails():
    # "gradient x activation" without the global average pooling is not Grad-CAM.
    def pointwise(a, g):
        cam = np.maximum((a * g).sum(axis=-1), 0)
        peak = cam.max(axis=(1, 2), keepdims=True)
        return np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0)

    _fails_with("ex07.grad_cam", pointwise, "worked example")


def test_precision_and_recall_swapped_fails_naming_precision():
    _fails_with(
        "ex07.precision_recall",
        lambda cm: _loop_precision_recall(cm)[::-1],
        "asymmetric",
        "precision:",
    )


def test_precision_from_row_sums_fails():
    def rows_for_both(cm):
        cm = np.asarray(cm, dtype=float)
        recall = np.diag(cm) / np.maximum(cm.sum(axis=1), 1)
        return recall, recall

    _fails_with("ex07.precision_recall", rows_for_both, "precision:")


def test_precision_recall_with_nan_for_empty_classes_fails():
    def plain_division(cm):
        cm = np.asarray(cm, dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diag(cm) / cm.sum(axis=0), np.diag(cm) / cm.sum(axis=1)

    _fails_with("ex07.precision_recall", plain_division, "never predicted", "division by zero")


def test_precision_recall_returning_one_array_says_what_is_expected():
    _fails_with(
        "ex07.precision_recall",
        lambda cm: _loop_precision_recall(cm)[0],
        "expected a tuple (precision, recall)",
    )
