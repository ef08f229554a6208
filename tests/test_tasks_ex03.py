"""Exercise 3's cases: the reference passes them, and the typical wrong answers fail them.

A case that every wrong answer also passes tests nothing; these tests pin that the
mistakes the chapter warns about (softmax without the max trick, a stride ignored, the
wrong axis) each fail a *public* case with a message a student can act on.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnncourse import ops
from cnncourse.checking import run_task
from cnncourse.tasks import get_task, tasks_for

REFERENCE = {
    "ex03.max_pool2d": ops.max_pool2d,
    "ex03.avg_pool2d": ops.avg_pool2d,
    "ex03.global_average_pool": ops.global_average_pool,
    "ex03.relu": ops.relu,
    "ex03.softmax": ops.softmax,
}


def _messages(task_id: str, fn) -> list[str]:
    with np.errstate(all="ignore"):
        report = run_task(task_id, fn)
    assert not report.passed, f"{task_id}: a wrong answer passed every public case"
    return [r.message for r in report.results if not r.passed]


def test_the_registry_has_the_five_tasks_worth_ten_points():
    tasks = tasks_for("ex03")
    assert [t.id for t in tasks] == list(REFERENCE)
    assert sum(t.points for t in tasks) == 10


@pytest.mark.parametrize("task_id", list(REFERENCE))
def test_reference_ops_pass_public_and_hidden_cases(task_id):
    task = get_task(task_id)
    assert run_task(task_id, REFERENCE[task_id]).passed
    for seed in range(5):
        hidden = task.hidden_cases(np.random.default_rng(seed))
        report = run_task(task_id, REFERENCE[task_id], cases=hidden)
        assert report.passed, report.to_text()


@pytest.mark.parametrize("task_id", list(REFERENCE))
def test_hidden_cases_are_reproducible_per_seed_and_differ_between_seeds(task_id):
    task = get_task(task_id)
    a = task.hidden_cases(np.random.default_rng(7))
    b = task.hidden_cases(np.random.default_rng(7))
    c = task.hidden_cases(np.random.default_rng(8))
    assert [x.name for x in a] == [x.name for x in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.args[0], y.args[0])
    assert any(
        x.args[0].shape != y.args[0].shape or not np.array_equal(x.args[0], y.args[0])
        for x, y in zip(a, c, strict=True)
    )


def test_naive_softmax_fails_on_large_logits_and_says_overflow():
    messages = _messages("ex03.softmax", lambda z: ops.softmax_naive(z))
    assert any("overflow" in m for m in messages), messages


def test_softmax_subtracting_one_global_maximum_fails():
    def global_max(z):
        e = np.exp(z - z.max())
        return e / e.sum(axis=-1, keepdims=True)

    assert _messages("ex03.softmax", global_max)


def test_softmax_over_the_wrong_axis_fails():
    assert _messages("ex03.softmax", lambda z: ops.softmax(z, axis=0))


def test_softmax_normalised_over_the_whole_array_fails():
    def whole(z):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum()

    assert _messages("ex03.softmax", whole)


def test_max_pool_that_ignores_the_stride_fails_with_a_shape_message():
    messages = _messages("ex03.max_pool2d", lambda x, pool, stride: ops.max_pool2d(x, pool))
    assert any("expected shape" in m for m in messages), messages


def test_max_pool_that_pads_instead_of_dropping_the_border_fails():
    def same(x, pool, stride):
        return ops.max_pool2d(x, pool, stride, padding="same")

    assert _messages("ex03.max_pool2d", same)


def test_max_pool_with_a_running_maximum_started_at_zero_fails():
    def from_zero(x, pool, stride):
        return np.maximum(ops.max_pool2d(x, pool, stride), 0.0)

    assert _messages("ex03.max_pool2d", from_zero)


def test_average_pooling_that_returns_the_maximum_fails():
    assert _messages("ex03.avg_pool2d", ops.max_pool2d)


def test_global_pool_that_keeps_the_spatial_axes_fails_with_a_shape_message():
    messages = _messages("ex03.global_average_pool", lambda x: x.mean(axis=(1, 2), keepdims=True))
    assert any("expected shape" in m for m in messages), messages


def test_relu_written_as_absolute_value_fails():
    assert _messages("ex03.relu", np.abs)
