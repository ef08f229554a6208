"""Named mistakes, closed spec gaps and dtype-aware tolerances (issue 13, items 4 and 5)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from cnncourse import ops
from cnncourse.checking import check
from cnncourse.exercise import Case, run_cases
from cnncourse.grading.secret import task_rng
from cnncourse.tasks import get_task

ROOT = Path(__file__).resolve().parent.parent


def _bench():
    spec = importlib.util.spec_from_file_location("hint_bench", ROOT / "bench" / "hint_bench.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _bench()


@pytest.mark.parametrize(
    "task_id, planted, source", BENCH.BUGS, ids=[f"{t}-{m}" for t, m, _ in BENCH.BUGS]
)
def test_every_planted_bug_gets_the_hint_for_its_mistake(task_id, planted, source):
    assert planted in BENCH.diagnose(task_id, source)


def test_the_bench_meets_the_goal(capsys):
    assert BENCH.main() == 0
    assert "get a specific hint" in capsys.readouterr().out


def test_the_self_check_prints_the_hint_for_a_flipped_kernel(capsys):
    from numpy.lib.stride_tricks import sliding_window_view

    def conv2d(x, w, b, stride, pad):  # written with NumPy, as a student would
        xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        windows = sliding_window_view(xp, w.shape[:2], axis=(1, 2))[:, ::stride, ::stride]
        return np.einsum("nhwcij,ijcf->nhwf", windows, w[::-1, ::-1]) + b

    check("ex02.conv2d", conv2d)
    out = capsys.readouterr().out
    assert "Looks like a classic mistake: you flipped the kernel" in out
    assert "cross-correlation" in out


def test_a_hidden_failure_names_properties_not_values():
    task = get_task("ex02.conv2d")
    hidden = task.hidden_cases(task_rng(bytes(32), task.id))
    flipped = [
        task.hidden_message(c, ops.conv2d(c.args[0], c.args[1][::-1, ::-1], *c.args[2:]))
        for c in hidden
    ]
    for case, (message, mistake) in zip(hidden, flipped, strict=True):
        if case.args[1].shape[0] == 1 and case.args[1].shape[1] == 1:
            continue  # a 1x1 kernel flipped is the same kernel
        assert mistake == "flipped_kernel"
        assert case.name not in message and str(case.args[0].shape) not in message
        assert message.startswith("fails for an input with") or message.startswith("fails on")
    strided = [c for c in hidden if "stride > 1" in c.tags]
    assert strided, "the hidden cases cover stride > 1"
    wrong = ops.conv2d(
        strided[0].args[0],
        strided[0].args[1],
        strided[0].args[2],
        stride=1,
        padding=strided[0].args[4],
    )
    message, mistake = task.hidden_message(strided[0], wrong)
    assert "stride > 1" in message and mistake == "stride_ignored"


def test_float32_answers_are_accepted_with_float32_tolerances():
    task = get_task("ex03.softmax")
    report = run_cases(task, lambda z: ops.softmax(z.astype(np.float32)).astype(np.float32))
    assert report.passed, report.to_text()
    conv = get_task("ex02.conv2d")
    report = run_cases(
        conv,
        lambda x, w, b, s, p: ops.conv2d(
            x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), stride=s, padding=p
        ).astype(np.float32),
    )
    assert report.passed, report.to_text()
    half = run_cases(task, lambda z: ops.softmax(z).astype(np.float16))
    assert not half.passed


def test_integer_outputs_are_named_as_truncation():
    task = get_task("ex03.avg_pool2d")
    report = run_cases(task, lambda x, k=2, s=None: ops.avg_pool2d(x, k, s or k).astype(int))
    failed = [r for r in report.results if not r.passed]
    assert failed and all(r.mistake == "int_dtype" for r in failed)
    assert "truncated" in failed[0].message


def test_documented_defaults_are_exercised():
    for task_id in ("ex03.max_pool2d", "ex03.avg_pool2d"):
        task = get_task(task_id)
        public = task.public_cases()
        assert any(len(c.args) == 2 and not c.kwargs for c in public), task_id
        hidden = task.hidden_cases(task_rng(bytes(32), task_id))
        assert any("no stride given (the default)" in c.tags for c in hidden)

        def default_stride_one(x, pool_size=2, stride=None, _op=task_id):
            fn = ops.max_pool2d if _op.endswith("max_pool2d") else ops.avg_pool2d
            return fn(x, pool_size, 1 if stride is None else stride)

        assert not run_cases(task, default_stride_one).passed
    relu = get_task("ex03.relu")
    assert any(len(c.args) == 1 for c in relu.public_cases())


def test_modifying_an_input_fails_tasks_that_promise_not_to():
    def relu(x):
        np.maximum(x, 0, out=x)
        return x

    report = run_cases(get_task("ex03.relu"), relu)
    assert not report.passed
    assert {r.mistake for r in report.results if not r.passed} == {"in_place"}
    assert all(get_task(t).pure for t in ("ex03.relu", "ex02.conv2d", "ex01.shift_images"))


def test_shift_images_keeps_uint8():
    task = get_task("ex01.shift_images")
    assert any(c.dtype == "uint8" for c in task.public_cases())

    def float_shift(x, dx, dy):
        out = np.zeros(x.shape)
        h, w = x.shape[1:]
        src = x[:, max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
        if abs(dx) < w and abs(dy) < h:
            out[:, max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)] = src
        return out

    report = run_cases(task, float_shift)
    failed = [r for r in report.results if not r.passed]
    assert failed and {r.mistake for r in failed} == {"dtype_changed"}
    assert "uint8" in failed[0].message


def test_a_case_with_an_exact_dtype_accepts_only_that_dtype():
    task = get_task("ex01.shift_images")
    case = Case(
        "c",
        (np.zeros((1, 2, 2), np.uint8), 0, 0),
        expected=np.zeros((1, 2, 2), np.uint8),
        dtype="uint8",
    )
    assert task.judge(case, np.zeros((1, 2, 2), np.uint8)) == (None, "")
    assert task.judge(case, np.zeros((1, 2, 2)))[1] == "dtype_changed"


# Exercises 5, 7, 9 and 10: hidden failures name properties of the input, never its values.

HIDDEN_TAGGED = [
    "ex05.normalize",
    "ex05.standardize",
    "ex05.digit_augmentation",
    "ex05.make_batches",
    "ex09.check_image",
    "ex09.preprocess",
    "ex09.to_response",
    "ex07.grad_cam",
    "ex10.fix_training_script",
]


def _values(case) -> list[str]:
    """How a case's input values would look in a message: shapes, numbers, range ends."""
    out = []
    for value in case.args:
        if isinstance(value, np.ndarray):
            out.append(str(value.shape))
        elif isinstance(value, tuple) and all(isinstance(v, float) for v in value):
            out += [str(v) for v in value]
        elif isinstance(value, int | float) and not isinstance(value, bool) and value > 1:
            out.append(str(value))
    return out


@pytest.mark.parametrize("task_id", HIDDEN_TAGGED)
def test_every_hidden_case_of_exercises_5_and_9_names_its_properties(task_id):
    task = get_task(task_id)
    for case in task.hidden_cases(task_rng(bytes(32), task_id)):
        assert case.tags, f"{task_id}: hidden case {case.name!r} has no tags"
        for value in _values(case):
            assert all(value not in tag for tag in case.tags), (task_id, value, case.tags)


def _first_bug(task_id: str):
    return next((m, BENCH.compile_bug(s)) for t, m, s in BENCH.BUGS if t == task_id)


@pytest.mark.parametrize("task_id", [t for t in HIDDEN_TAGGED if "augmentation" not in t])
def test_a_failed_hidden_case_of_exercises_5_and_9_hides_its_values(task_id):
    task = get_task(task_id)
    planted, bug = _first_bug(task_id)
    failed = 0
    for case in task.hidden_cases(task_rng(bytes(32), task_id)):
        got = bug(*[np.copy(a) if isinstance(a, np.ndarray) else a for a in case.args])
        if task.judge(case, got)[0] is None:
            continue
        failed += 1
        message, mistake = task.hidden_message(case, got)
        assert message.startswith("fails for an input with " + ", ".join(case.tags)), message
        assert mistake == planted and "Looks like a classic mistake: " in message
        assert case.name not in message
        assert all(value not in message for value in _values(case)), message
    assert failed, f"{task_id}: the planted {planted} fails no hidden case"


def test_the_self_check_names_the_augmentation_mistake(capsys):
    check("ex05.digit_augmentation", lambda: [("RandomRotation", {"factor": 15})])
    out = capsys.readouterr().out
    assert (
        "Looks like a classic mistake: RandomRotation's factor is a fraction of a full turn" in out
    )
