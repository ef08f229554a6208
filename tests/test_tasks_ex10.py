"""Exercise 10's tasks: references pass, the classic mistakes and each planted bug fail.

The gradient tasks are checked with the package's references (themselves tested against
TensorFlow in tests/test_backprop.py); the training-script task with the solution's repaired
script and with variants that keep exactly one of the four planted bugs. The last test runs
the real grader on the solution notebook (full marks) and the generated student notebook
(zero).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import numpy as np
import pytest

from cnncourse import backprop, ops
from cnncourse.checking import run_task
from cnncourse.tasks import ex10, exercise, get_task, tasks_for

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "ex10_inside_training.ipynb"
EXERCISE_NB = ROOT / "exercises" / "ex10_inside_training.ipynb"

REFERENCE = {
    "ex10.max_pool2d_backward": ops.max_pool2d_backward,
    "ex10.batchnorm_forward": backprop.batchnorm_forward,
    "ex10.batchnorm_backward": backprop.batchnorm_backward,
}


def _cell_source(function: str) -> str:
    nb = nbformat.read(SOLUTION, as_version=4)
    return next(
        c.source for c in nb.cells if c.cell_type == "code" and f"def {function}(" in c.source
    )


def _define(source: str, name: str):
    namespace = {"np": np}
    exec(_cell_source("buggy_train_and_evaluate"), namespace)  # the given cell
    exec(source, namespace)
    return namespace[name]


@pytest.fixture(scope="module")
def fixed_script():
    return _define(_cell_source("train_and_evaluate"), "train_and_evaluate")


def _failures(task_id: str, fn) -> list:
    report = run_task(task_id, fn)
    assert not report.passed, f"{task_id}: a wrong answer passed every public case"
    return [r for r in report.results if not r.passed]


def test_the_exercise_declares_four_tasks_worth_twelve_points():
    tasks = tasks_for("ex10")
    assert [t.id for t in tasks] == [*REFERENCE, "ex10.fix_training_script"]
    assert sum(t.points for t in tasks) == 12
    assert exercise("ex10") is ex10.EXERCISE
    assert all(t.chapter.startswith("chapters/05c_inside_training.html#") for t in tasks)


@pytest.mark.parametrize("task_id", list(REFERENCE))
def test_references_pass_public_and_hidden_cases(task_id):
    task = get_task(task_id)
    assert run_task(task_id, REFERENCE[task_id]).passed
    for seed in range(3):
        hidden = task.hidden_cases(np.random.default_rng(seed))
        assert len(hidden) >= 10
        report = run_task(task_id, REFERENCE[task_id], cases=hidden)
        assert report.passed, report.to_text()


def test_finite_difference_cases_really_hold_finite_differences():
    # The expected value of a "finite differences" case is numeric, not the reference:
    # close to the analytic gradient, but not equal to it bit for bit.
    for task_id in ("ex10.max_pool2d_backward", "ex10.batchnorm_backward"):
        fd_cases = [c for c in get_task(task_id).public_cases() if "finite differences" in c.name]
        assert fd_cases
        for case in fd_cases:
            exact = REFERENCE[task_id](*case.args)
            numeric = case.expected
            pairs = (
                zip(exact, numeric, strict=True) if isinstance(exact, tuple) else [(exact, numeric)]
            )
            for a, n in pairs:
                np.testing.assert_allclose(n, a, rtol=1e-6, atol=1e-8)
                assert not np.array_equal(a, n)


@pytest.mark.parametrize("task_id", [*REFERENCE, "ex10.fix_training_script"])
def test_hidden_cases_are_reproducible_per_seed_and_differ_between_seeds(task_id):
    task = get_task(task_id)
    a = task.hidden_cases(np.random.default_rng(7))
    b = task.hidden_cases(np.random.default_rng(7))
    c = task.hidden_cases(np.random.default_rng(8))
    assert [x.name for x in a] == [x.name for x in b]
    for x, y in zip(a, b, strict=True):
        for u, v in zip(x.args, y.args, strict=True):
            np.testing.assert_array_equal(u, v)
    assert any(
        not np.array_equal(x.args[0], y.args[0]) or x.args[-1] != y.args[-1]
        if isinstance(x.args[-1], int)
        else not np.array_equal(x.args[0], y.args[0])
        for x, y in zip(a, c, strict=True)
    )


# --------------------------------------------------------------------------- classic mistakes


def test_max_pool_backward_that_assigns_instead_of_adding_is_named():
    failures = _failures("ex10.max_pool2d_backward", ex10._assigned_not_added)
    assert {r.mistake for r in failures} == {"assigned_not_added"}


def test_max_pool_backward_that_spreads_like_average_pooling_is_named():
    def spread(dout, x, pool_size=2, stride=None):
        return backprop.avg_pool2d_backward(dout, x, pool_size, stride)

    failures = _failures("ex10.max_pool2d_backward", spread)
    assert failures and all(r.mistake == "spread_like_average" for r in failures)


def test_batchnorm_forward_with_the_unbiased_variance_is_named():
    failures = _failures("ex10.batchnorm_forward", ex10._bn_unbiased)
    assert failures and all(r.mistake == "unbiased_variance" for r in failures)


def test_batchnorm_backward_treating_the_statistics_as_constants_fails_finite_differences():
    failures = _failures("ex10.batchnorm_backward", ex10._bn_direct_path_only)
    assert any("finite differences" in r.name for r in failures)
    assert all(r.mistake == "batch_statistics_treated_as_constants" for r in failures)
    assert {r.mistake for r in _failures("ex10.batchnorm_backward", ex10._bn_no_variance_path)} == {
        "variance_path_missing"
    }


# --------------------------------------------------------------------------- the planted bugs

#: Each planted bug, as an edit that puts it back into the repaired script.
BUGS = {
    "labels shuffled apart": (
        "x_train, y_train = x_train[order], y_train[order]",
        "x_train, y_train = x_train[order], y_train[rng.permutation(len(y_train))]",
        "labels the model trains on",
    ),
    "softmax twice": (
        "return softmax(x @ weights + bias)",
        "return softmax(softmax(x @ weights + bias))",
        "softmax applied to probabilities",
    ),
    "test data in training": (
        "mean, std = x_train.mean(), x_train.std()",
        "x_train = np.concatenate([x_train, x_test])\n"
        "    y_train = np.concatenate([y_train, y_test])\n"
        "    mean, std = x_train.mean(), x_train.std()",
        "the test data reached the training",
    ),
    "another normalisation at inference": (
        "predict_proba((x_test - mean) / std)",
        "predict_proba(x_test / 255.0)",
        "prepared exactly like training images",
    ),
}


def test_the_repaired_script_passes_public_and_hidden_cases(fixed_script):
    task = get_task("ex10.fix_training_script")
    assert run_task(task.id, fixed_script).passed
    report = run_task(task.id, fixed_script, cases=task.hidden_cases(np.random.default_rng(3)))
    assert report.passed, report.to_text()


@pytest.mark.parametrize("bug", list(BUGS))
def test_each_planted_bug_alone_fails_with_a_message_that_points_at_it(bug):
    old, new, words = BUGS[bug]
    source = _cell_source("train_and_evaluate")
    assert source.count(old) == 1
    with_bug = _define(source.replace(old, new), "train_and_evaluate")
    failures = _failures("ex10.fix_training_script", with_bug)
    assert any(words in r.message for r in failures), [r.message for r in failures]


def test_the_given_buggy_script_scores_zero():
    buggy = _define("", "buggy_train_and_evaluate")
    report = run_task("ex10.fix_training_script", buggy)
    assert report.points == 0, report.to_text()


def test_the_script_task_is_deterministic(fixed_script):
    case = get_task("ex10.fix_training_script").public_cases()[0]
    p1, a1 = fixed_script(*case.args)
    p2, a2 = fixed_script(*case.args)
    np.testing.assert_array_equal(p1, p2)
    assert a1 == a2


def test_the_script_runs_once_per_input_and_each_run_is_judged_on_both_aspects(fixed_script):
    """Twelve hidden cases cost six runs of the script (as the six whole-result cases did);
    each run is judged on the test accuracy and on the log loss."""
    task = get_task("ex10.fix_training_script")
    assert task.deterministic
    hidden = task.hidden_cases(np.random.default_rng(5))
    assert len(hidden) >= 10
    runs: dict[bytes, list[str]] = {}
    for case in hidden:
        key = b"".join(np.asarray(a).tobytes() for a in case.args)
        runs.setdefault(key, []).append(case.expected["aspect"])
    assert len(runs) == 6 and all(sorted(v) == sorted(ex10.SCRIPT_ASPECTS) for v in runs.values())
    assert sum(case.expected["shifted"] for case in hidden) == 6
    calls = []
    report = run_task(task.id, lambda *a: calls.append(1) or fixed_script(*a), cases=hidden)
    assert report.passed and len(calls) == 6, report.to_text()
    public = run_task(task.id, lambda *a: calls.append(1) or fixed_script(*a))
    assert public.passed and len(calls) == 8
    assert len(task.public_cases()[0].args) == 4, "the first run uses the default seed"


def _points(fn) -> float:
    from cnncourse.grading.grader import task_points

    task = get_task("ex10.fix_training_script")
    public = run_task(task.id, fn)
    hidden = run_task(task.id, fn, cases=task.hidden_cases(np.random.default_rng(6)))
    return task_points(
        task.points, [r.passed for r in public.results], [r.passed for r in hidden.results]
    )


@pytest.mark.parametrize(
    ("bug", "points"),
    [
        ("labels shuffled apart", 0.0),  # nothing is right
        ("another normalisation at inference", 0.0),  # accuracy and log loss both off
        ("softmax twice", 0.0),  # it also runs in training: about 78 %, near-uniform rows
        ("test data in training", 2.0),  # right with true test labels, wrong with shifted
    ],
)
def test_a_planted_bug_costs_the_aspects_and_runs_it_spoils(bug, points):
    old, new, _ = BUGS[bug]
    source = _cell_source("train_and_evaluate")
    assert _points(_define(source.replace(old, new), "train_and_evaluate")) == points


def test_a_wrong_reported_accuracy_costs_the_accuracy_cases_only(fixed_script):
    def misreported(*args):
        probabilities, accuracy = fixed_script(*args)
        return probabilities, accuracy / 2

    assert _points(misreported) == 2.0


def test_answers_that_ignore_the_training_earn_nothing(fixed_script):
    """Uniform probabilities with a consistent reported accuracy, and the public results
    looked up by input, pass no hidden case."""
    task = get_task("ex10.fix_training_script")

    def uniform(x_train, y_train, x_test, y_test, seed=0):
        p = np.full((len(x_test), 10), 0.1)
        return p, float(np.mean(p.argmax(axis=1) == y_test))

    known = {
        b"".join(np.asarray(a).tobytes() for a in c.args): fixed_script(*c.args)
        for c in task.public_cases()
    }

    def looked_up(*args):
        return known.get(b"".join(np.asarray(a).tobytes() for a in args), uniform(*args))

    assert run_task(task.id, looked_up).passed
    assert _points(uniform) == 0.0 and _points(looked_up) == 0.0


def test_the_notebook_states_the_numbers_the_grader_uses():
    text = SOLUTION.read_text(encoding="utf-8")
    assert f"{ex10.TARGET_ACCURACY:.0%}".replace("%", " %") in text
    assert f"at most {ex10.MAX_LOG_LOSS}" in text


# --------------------------------------------------------------------------- the real grader


@pytest.mark.slow
def test_the_grader_gives_the_solution_full_marks_and_the_template_zero(tmp_path):
    from cnncourse.grading.assignment import grading_limits, load_assignment
    from cnncourse.grading.grader import grade_file
    from cnncourse.grading.sandbox import Worker

    solved = tmp_path / "solved.ipynb"
    solved.write_bytes(SOLUTION.read_bytes())
    empty = tmp_path / "empty.ipynb"
    empty.write_bytes(EXERCISE_NB.read_bytes())
    assignment = load_assignment("ex10")
    with Worker(grading_limits("ex10")) as worker:
        results = {p.stem: grade_file(p, assignment, worker, seed=10) for p in (solved, empty)}
    assert results["solved"].status == "ok", results["solved"].reason
    assert [t.points for t in results["solved"].tasks] == [3, 2, 3, 4]
    assert results["solved"].total == 12
    assert results["empty"].total == 0
    assert all(c.message == "not implemented yet" for t in results["empty"].tasks for c in t.cases)
