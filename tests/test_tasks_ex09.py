"""Exercise 9 (inference gate): the cases agree with cnncourse.inference, and mistakes fail.

The expected answers of ``cnncourse.tasks.ex09`` are checked against the package's own gate,
:class:`cnncourse.inference.ImageSpec`, so the exercise teaches exactly what chapter 9 uses.
Then typical wrong submissions are run through public and hidden cases.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnncourse.checking import run_task
from cnncourse.inference import ImageSpec, InvalidImageError
from cnncourse.tasks import get_task
from cnncourse.tasks.ex09 import reference_problem

SEEDS = (0, 1, 2, 3)


def _all_cases(task_id: str) -> list:
    task = get_task(task_id)
    cases = list(task.public_cases())
    for seed in SEEDS:
        cases += task.hidden_cases(np.random.default_rng(seed))
    return cases


def _score(task_id: str, fn) -> tuple[int, int]:
    report = run_task(task_id, fn, _all_cases(task_id))
    return sum(r.passed for r in report.results), len(report.results)


# --------------------------------------------------------------------------- reference


def test_problem_categories_match_what_the_package_refuses():
    spec = ImageSpec()
    for case in _all_cases("ex09.check_image"):
        (image,) = case.args
        try:
            spec.preprocess(image)
            refused = False
        except InvalidImageError:
            refused = True
        assert refused == (case.expected is not None), case.name
        assert case.expected == reference_problem(image)


def test_every_category_appears_in_public_and_hidden_cases():
    task = get_task("ex09.check_image")
    public = {c.expected for c in task.public_cases()}
    hidden = set()
    for seed in SEEDS:
        hidden |= {c.expected for c in task.hidden_cases(np.random.default_rng(seed))}
    assert public == hidden == {None, "shape", "dtype", "range"}


def test_preprocess_expected_is_the_training_preprocessing():
    from cnncourse.datasets import prepare_images

    for case in _all_cases("ex09.preprocess"):
        (image,) = case.args
        assert case.expected.dtype == np.float32 and case.expected.shape == (1, 28, 28, 1)
        if image.dtype.kind in "ui":
            batch = image.reshape(1, 28, 28).astype(np.uint8)
            np.testing.assert_array_equal(case.expected, prepare_images(batch))


def test_hidden_cases_differ_between_seeds():
    a = get_task("ex09.preprocess").hidden_cases(np.random.default_rng(0))
    b = get_task("ex09.preprocess").hidden_cases(np.random.default_rng(1))
    assert not np.array_equal(a[0].expected, b[0].expected)


# --------------------------------------------------------------------------- check_image


def _good_check(image):
    if image.shape not in ((28, 28), (28, 28, 1)):
        return f"bad shape {image.shape}"
    if image.dtype.kind not in "uif":
        return f"bad dtype {image.dtype}"
    if image.dtype.kind == "f":
        ok = np.isfinite(image).all() and image.min() >= 0 and image.max() <= 1
    else:
        ok = image.min() >= 0 and image.max() <= 255
    return None if ok else "out of range"


def test_a_correct_check_image_passes_everything():
    passed, total = _score("ex09.check_image", _good_check)
    assert passed == total


@pytest.mark.parametrize(
    "wrong",
    [
        lambda im: None if im.ndim in (2, 3) else "shape",  # only looks at ndim
        lambda im: _good_check(im if im.ndim != 3 else im[:, :, :1]),  # takes channel 0 of RGB
        lambda im: _good_check(im.astype(np.float64) / 255),  # treats every image as 0..255
        lambda im: _good_check(im) if im.dtype != bool else None,  # accepts boolean masks
        lambda im: _good_check(np.nan_to_num(im)),  # accepts NaN
        lambda im: _good_check(im) and "invalid image",  # no keyword in the message
        lambda im: "range" if im.dtype.kind == "f" and im.max() > 1 else _good_check(im),  # order
    ],
    ids=["ndim-only", "rgb-accepted", "all-scaled", "bool-accepted", "nan-accepted",
         "no-keyword", "range-before-shape"],
)
def test_typical_mistakes_in_check_image_fail(wrong):
    passed, total = _score("ex09.check_image", wrong)
    assert passed < total


def test_check_image_messages_say_what_is_wrong():
    report = run_task("ex09.check_image", lambda im: None)
    messages = [r.message for r in report.results if not r.passed]
    assert any("you returned None" in m for m in messages)
    report = run_task("ex09.check_image", lambda im: "problem")
    assert any("the image is valid, so expected None" in r.message for r in report.results)
    report = run_task("ex09.check_image", lambda im: _good_check(im) and "bad dtype")
    assert any("mentions 'dtype'" in r.message and "check shape, then dtype" in r.message
               for r in report.results)


# --------------------------------------------------------------------------- preprocess


def _good_preprocess(image):
    x = image.reshape(1, 28, 28, 1).astype(np.float32)
    return x / np.float32(255) if image.dtype.kind in "ui" else x


def test_a_correct_preprocess_passes_everything():
    passed, total = _score("ex09.preprocess", _good_preprocess)
    assert passed == total


@pytest.mark.parametrize(
    "wrong",
    [
        lambda im: _good_preprocess(im).astype(np.float64),  # float64
        lambda im: _good_preprocess(im)[0],  # no batch axis
        lambda im: _good_preprocess(im).reshape(1, 28, 28),  # no channel axis
        lambda im: im.reshape(1, 28, 28, 1).astype(np.float32) / 255,  # divides floats too
        lambda im: im.reshape(1, 28, 28, 1).astype(np.float32),  # never divides
    ],
    ids=["float64", "no-batch-axis", "no-channel-axis", "divides-floats", "never-divides"],
)
def test_typical_mistakes_in_preprocess_fail(wrong):
    passed, total = _score("ex09.preprocess", wrong)
    assert passed < total


def test_preprocess_dtype_message():
    report = run_task("ex09.preprocess", lambda im: _good_preprocess(im).astype(np.float64))
    assert "float32" in report.results[0].message


# --------------------------------------------------------------------------- to_response


def _good_response(p, names):
    i = int(np.argmax(p))
    return {"label": names[i], "class_index": i, "confidence": float(p[i])}


def test_a_correct_to_response_passes_everything():
    passed, total = _score("ex09.to_response", _good_response)
    assert passed == total


@pytest.mark.parametrize(
    "wrong",
    [
        lambda p, n: {**_good_response(p, n), "label": str(int(np.argmax(p)))},  # index as label
        lambda p, n: _good_response(p, n) | {"class_index": len(p) - 1 - int(np.argmax(p[::-1]))},
        lambda p, n: {k: v for k, v in _good_response(p, n).items() if k != "confidence"},
        lambda p, n: _good_response(p, n) | {"confidence": float(np.max(p) * 100)},  # percent
    ],
    ids=["index-as-label", "last-of-ties", "missing-key", "percent"],
)
def test_typical_mistakes_in_to_response_fail(wrong):
    passed, total = _score("ex09.to_response", wrong)
    assert passed < total
