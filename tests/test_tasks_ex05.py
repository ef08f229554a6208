"""Exercise 5's cases: a correct pipeline passes them, and the usual mistakes fail them.

The augmentation task is graded on behaviour, so these tests also pin the calibration of
its checks: the pipelines chapter 5 recommends (and somewhat stronger ones) must pass every
check for several seeds; flips, half-turns, huge rotations, contrast on the wrong value
range, an empty pipeline and a pipeline that rescales must each fail the check named for
that mistake.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

from cnncourse.checking import run_task
from cnncourse.tasks import ex05, get_task, tasks_for

CONSTANT = {"fill_mode": "constant"}


def normalize(x, value_range=(0.0, 1.0)):
    low, high = value_range
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., np.newaxis]
    return (low + (high - low) * x.astype(np.float64) / 255.0).astype(np.float32)


def standardize(x_train, x):
    mean = x_train.mean(axis=(0, 1, 2))
    std = x_train.std(axis=(0, 1, 2))
    return ((x - mean) / np.maximum(std, 1e-7)).astype(np.float32)


def spec(rotation_deg=10, shift_px=2, zoom=0.1):
    return [
        ("RandomRotation", {"factor": rotation_deg / 360, **CONSTANT}),
        (
            "RandomTranslation",
            {"height_factor": shift_px / 28, "width_factor": shift_px / 28, **CONSTANT},
        ),
        ("RandomZoom", {"height_factor": zoom, **CONSTANT}),
    ]


def digit_augmentation():
    return spec()


def make_batches(x, y, batch_size, seed):
    order = np.random.default_rng(seed).permutation(len(x))
    xs, ys = normalize(x[order]), y[order]
    return [(xs[i : i + batch_size], ys[i : i + batch_size]) for i in range(0, len(x), batch_size)]


REFERENCE = {
    "ex05.normalize": normalize,
    "ex05.standardize": standardize,
    "ex05.digit_augmentation": digit_augmentation,
    "ex05.make_batches": make_batches,
}


def _failures(task_id: str, fn) -> list[str]:
    with np.errstate(all="ignore"):
        report = run_task(task_id, fn)
    assert not report.passed, f"{task_id}: a wrong answer passed every public case"
    return [r.message for r in report.results if not r.passed]


def test_the_registry_has_four_tasks_worth_ten_points():
    tasks = tasks_for("ex05")
    assert [t.id for t in tasks] == list(REFERENCE)
    assert sum(t.points for t in tasks) == 10


@pytest.mark.parametrize("task_id", list(REFERENCE))
def test_reference_passes_public_and_hidden_cases(task_id):
    task = get_task(task_id)
    report = run_task(task_id, REFERENCE[task_id])
    assert report.passed, report.to_text()
    for seed in range(2):
        hidden = task.hidden_cases(np.random.default_rng(seed))
        report = run_task(task_id, REFERENCE[task_id], cases=hidden)
        assert report.passed, report.to_text()


@pytest.mark.parametrize("task_id", ["ex05.normalize", "ex05.standardize", "ex05.make_batches"])
def test_hidden_cases_are_reproducible_per_seed_and_differ_between_seeds(task_id):
    task = get_task(task_id)
    a, b, c = (task.hidden_cases(np.random.default_rng(s)) for s in (7, 7, 8))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.args[0], y.args[0])
    assert any(
        x.args[0].shape != y.args[0].shape or not np.array_equal(x.args[0], y.args[0])
        for x, y in zip(a, c, strict=True)
    )


# --------------------------------------------------------------------------- normalize


def test_normalize_without_the_channel_axis_fails_on_shape():
    messages = _failures("ex05.normalize", lambda x, r=(0, 1): np.squeeze(normalize(x, r), -1))
    assert any("expected shape" in m for m in messages)


def test_normalize_in_float64_fails_on_dtype():
    messages = _failures("ex05.normalize", lambda x, r=(0, 1): normalize(x, r).astype(np.float64))
    assert all("float32" in m for m in messages)


def test_normalize_that_ignores_the_range_fails_the_minus_one_cases():
    messages = _failures("ex05.normalize", lambda x, r=(0, 1): normalize(x))
    assert messages and all("entries are off" in m for m in messages)


# --------------------------------------------------------------------------- standardize


def test_standardize_with_the_statistics_of_x_fails_the_test_set_case():
    report = run_task("ex05.standardize", lambda x_train, x: standardize(x, x))
    failed = [r.name for r in report.results if not r.passed]
    assert failed == ["test images use the TRAINING mean and std, not their own"]


def test_standardize_with_one_global_mean_fails_the_rgb_cases():
    def global_stats(x_train, x):
        return ((x - x_train.mean()) / x_train.std()).astype(np.float32)

    report = run_task("ex05.standardize", global_stats)
    failed = {r.name for r in report.results if not r.passed}
    assert "3 channels: each channel with its own mean and std" in failed


def test_standardize_without_a_floor_fails_the_constant_channel():
    def no_floor(x_train, x):
        with np.errstate(all="ignore"):
            return ((x - x_train.mean((0, 1, 2))) / x_train.std((0, 1, 2))).astype(np.float32)

    report = run_task("ex05.standardize", no_floor)
    failed = [r.name for r in report.results if not r.passed]
    assert failed == ["a constant channel (std 0) is divided by 1e-7, not by 0"]


def test_standardize_with_the_sample_std_fails_the_hand_example():
    def sample_std(x_train, x):
        return ((x - x_train.mean((0, 1, 2))) / x_train.std((0, 1, 2), ddof=1)).astype(np.float32)

    with np.errstate(all="ignore"):
        report = run_task("ex05.standardize", sample_std)
    assert not report.results[0].passed


# --------------------------------------------------------------------------- augmentation


def _augmentation_failures(the_spec) -> dict[str, str]:
    report = run_task("ex05.digit_augmentation", lambda: the_spec)
    return {r.name.split(":")[0]: r.message for r in report.results if not r.passed}


@pytest.mark.slow
@pytest.mark.parametrize(
    "the_spec",
    [
        spec(10, 2, 0.1),
        spec(15, 3, 0.15),
        spec(20, 3, 0.2),
        [
            ("RandomRotation", {"factor": 0.04}),
            ("RandomTranslation", {"height_factor": 0.1, "width_factor": 0.1}),
        ],
        [
            ("RandomTranslation", {"height_factor": 0.1, "width_factor": 0.1, **CONSTANT}),
            ("RandomContrast", {"factor": 0.3, "value_range": (0, 1)}),
        ],
    ],
    ids=["recommended", "chapter-upper-limits", "rotation-20", "default-fill", "with-contrast"],
)
def test_reasonable_augmentations_pass_every_public_and_hidden_case(the_spec):
    task = get_task("ex05.digit_augmentation")
    assert run_task(task.id, lambda: the_spec).passed
    for seed in (0, 1):
        hidden = task.hidden_cases(np.random.default_rng(seed))
        report = run_task(task.id, lambda: the_spec, cases=hidden)
        assert report.passed, report.to_text()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("the_spec", "check"),
    [
        (spec() + [("RandomFlip", {"mode": "horizontal"})], "never flips"),
        ([("RandomFlip", {})], "never flips"),
        ([("RandomRotation", {"factor": 0.5, **CONSTANT})], "never flips"),
        (spec(45, 2, 0.1), "keeps every digit recognisable (small changes only)"),
        (spec() + [("RandomContrast", {"factor": 0.3})], "values stay in [0, 1]"),
        ([], "really augments"),
        ([("RandomContrast", {"factor": 0.3, "value_range": (0, 1)})], "really augments"),
        ([("Rescaling", {"scale": 1 / 255})] + spec(), "acts only in training"),
        (
            [("RandomCrop", {"height": 20, "width": 20})],
            "keeps the shape (N, 28, 28, 1) and dtype float32",
        ),
    ],
    ids=[
        "hflip",
        "default-flip",
        "half-turns",
        "rotation-45",
        "contrast-range",
        "empty",
        "contrast-only",
        "rescaling",
        "crop",
    ],
)
def test_each_mistake_fails_the_check_named_for_it(the_spec, check):
    failures = _augmentation_failures(the_spec)
    assert any(name.startswith(check) for name in failures), failures


def test_an_augmentation_that_is_not_plain_data_gets_a_helpful_message():
    failures = _augmentation_failures([("Conv2D", {"filters": 8})])
    assert len(failures) == 6
    assert all("allowed are" in m for m in failures.values())


def test_a_layer_argument_keras_rejects_is_reported_not_raised():
    failures = _augmentation_failures([("RandomZoom", {"height_factor": 5.0})])
    assert all("could not be built" in m for m in failures.values())


def test_the_hidden_cases_run_each_check_on_two_inputs_and_apply_the_pipeline_once(monkeypatch):
    """Twelve hidden cases, one check each, judge the pipeline applied once per input and
    mode: as cheap as two cases that ran every check."""
    task = get_task("ex05.digit_augmentation")
    hidden = task.hidden_cases(np.random.default_rng(3))
    assert len(hidden) >= 10 and task.deterministic
    checks = [c.expected["checks"] for c in hidden]
    assert all(len(c) == 1 for c in checks)
    inputs = {(c.expected["images"].tobytes(), c.expected["seed"]) for c in hidden}
    assert len(inputs) == 2
    for _, seed in inputs:
        ran = [c.expected["checks"][0] for c in hidden if c.expected["seed"] == seed]
        assert sorted(ran) == sorted(ex05._AUGMENTATION_CHECKS)
    applied = []
    augment = ex05._augment
    monkeypatch.setattr(ex05, "_augment", lambda *a, **k: applied.append(1) or augment(*a, **k))
    calls = []
    report = run_task(task.id, lambda: calls.append(1) or spec(), cases=hidden)
    assert report.passed, report.to_text()
    assert len(calls) == 1 and len(applied) == 4  # two inputs, training and inference


@pytest.mark.slow
def test_a_flip_costs_the_flip_cases_not_the_task():
    """A pipeline that flips fails the hidden flip checks (and may fail the size check,
    since a mirrored digit correlates poorly with its original), passes the others, and
    earns part of the points instead of none."""
    from cnncourse.grading.grader import task_points

    task = get_task("ex05.digit_augmentation")
    flips = spec() + [("RandomFlip", {"mode": "horizontal"})]
    hidden = task.hidden_cases(np.random.default_rng(4))
    public = run_task(task.id, lambda: flips)
    report = run_task(task.id, lambda: flips, cases=hidden)
    verdicts = list(zip(hidden, report.results, strict=True))
    failed = {c.expected["checks"][0] for c, r in verdicts if not r.passed}
    assert "no_flips" in failed and failed <= {"no_flips", "small"}, report.to_text()
    assert all(
        "RandomFlip mirrors digits" in r.message
        for c, r in verdicts
        if c.expected["checks"] == ("no_flips",)
    )
    points = task_points(
        task.points, [r.passed for r in public.results], [r.passed for r in report.results]
    )
    assert 0 < points < task.points


def test_test_strokes_are_asymmetric_digit_sized_images():
    strokes = ex05._stroke_patterns(np.random.default_rng(0), 10)
    assert strokes.shape == (10, 28, 28, 1) and strokes.dtype == np.float32
    assert strokes.min() >= 0 and strokes.max() <= 1
    assert strokes[:, :4].max() == 0 and strokes[:, -4:].max() == 0  # a 4-pixel margin
    from cnncourse.pipelines import orientation_scores

    self_scores = orientation_scores(strokes, strokes)
    assert (self_scores[:, 1:] < ex05.ASYMMETRY).all()


# --------------------------------------------------------------------------- make_batches


def test_batches_with_separately_shuffled_labels_fail_on_pairing():
    def unpaired(x, y, batch_size, seed):
        rng = np.random.default_rng(seed)
        xs, ys = normalize(x[rng.permutation(len(x))]), y[rng.permutation(len(y))]
        return [
            (xs[i : i + batch_size], ys[i : i + batch_size]) for i in range(0, len(x), batch_size)
        ]

    messages = _failures("ex05.make_batches", unpaired)
    assert all("SAME permutation" in m for m in messages)


def test_batches_without_shuffle_fail_on_order():
    def in_order(x, y, batch_size, seed):
        xs = normalize(x)
        return [
            (xs[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)
        ]

    messages = _failures("ex05.make_batches", in_order)
    assert any("original order" in m for m in messages)


def test_batches_that_drop_the_remainder_fail_on_the_count():
    def drop(x, y, batch_size, seed):
        return make_batches(x, y, batch_size, seed)[: len(x) // batch_size]

    messages = _failures("ex05.make_batches", drop)
    assert any("expected 4 batches" in m for m in messages)


def test_batches_of_raw_pixels_fail_on_dtype():
    def raw(x, y, batch_size, seed):
        return [(xb * 255.0, yb) for xb, yb in make_batches(x, y, batch_size, seed)]

    messages = _failures("ex05.make_batches", raw)
    assert any("float" in m or "[0, 1]" in m for m in messages)
