"""The self-check engine: messages a student can act on, and never an exception."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from cnncourse.checking import Case, Task, check, compare, run_task
from cnncourse.tasks import all_tasks, get_task, tasks_for


def test_compare_reports_shape_mismatch():
    assert compare(np.zeros((3, 3)), np.zeros((2, 3))) == "expected shape (3, 3), got shape (2, 3)"


def test_compare_locates_largest_numeric_error():
    expected = np.zeros((2, 3))
    got = expected.copy()
    got[1, 2] = 0.5
    got[0, 0] = 0.1
    msg = compare(expected, got)
    assert "2 of 6 entries are off" in msg
    assert "index (1, 2)" in msg and "0.5" in msg


def test_compare_accepts_values_within_tolerance():
    assert compare(np.ones(4), np.ones(4) + 1e-9) is None
    assert compare(1.0, 1.0 + 1e-9) is None


def test_compare_flags_nan_where_number_expected():
    msg = compare(np.array([1.0, 2.0]), np.array([1.0, np.nan]))
    assert msg is not None and "nan" in msg.lower() and "index (1,)" in msg


def test_compare_integers_exactly_and_rejects_wrong_types():
    assert compare(78500, 78500.0) is None
    assert compare(78500, 78501) == "expected 78500, got 78501"
    assert "integer" in compare(5, "5")
    assert "integer" in compare(5, True)


def test_compare_sequences_and_dicts_say_which_item():
    assert compare((1, 2), (1, 3)) == "item 1: expected 2, got 3"
    assert "missing keys ['b']" in compare({"a": 1, "b": 2}, {"a": 1})
    assert compare({"a": np.ones(2)}, {"a": np.ones(2)}) is None
    assert "expected 2 items, got 1" == compare([1, 2], [1])


def test_compare_non_array_output_for_array_task():
    msg = compare(np.zeros((2, 2)), None)
    assert "expected a NumPy array of shape (2, 2), got NoneType" == msg


def _double_task() -> Task:
    cases = [Case("two", (2,), expected=4), Case("three", (3,), expected=6)]
    return Task("ex99.double", 4, "double a number", lambda: cases)


def test_run_task_gives_partial_credit_in_proportion(monkeypatch):
    task = _double_task()
    monkeypatch.setattr("cnncourse.tasks.get_task", lambda task_id: task)
    report = run_task("ex99.double", lambda x: 4)
    assert [r.passed for r in report.results] == [True, False]
    assert report.points == 2
    assert not report.passed


def test_run_task_reports_not_implemented(monkeypatch):
    task = _double_task()
    monkeypatch.setattr("cnncourse.tasks.get_task", lambda task_id: task)

    def stub(x):
        raise NotImplementedError("write me")

    report = run_task("ex99.double", stub)
    assert report.not_implemented and report.points == 0
    assert "not implemented yet" in report.to_text()


def test_run_task_names_the_exception_and_line(monkeypatch):
    task = _double_task()
    monkeypatch.setattr("cnncourse.tasks.get_task", lambda task_id: task)

    def broken(x):
        return x / 0

    report = run_task("ex99.double", broken)
    msg = report.results[0].message
    assert "ZeroDivisionError" in msg and "return x / 0" in msg


def test_run_task_ignores_library_warnings(monkeypatch):
    task = _double_task()
    monkeypatch.setattr("cnncourse.tasks.get_task", lambda task_id: task)

    def noisy(x):
        warnings.warn("some library is unhappy", DeprecationWarning, stacklevel=1)
        return 2 * x

    assert run_task("ex99.double", noisy).points == 4


def test_run_task_does_not_let_the_student_mutate_the_expected_inputs(monkeypatch):
    x = np.ones(3)
    cases = [Case("a", (x,), expected=np.ones(3)), Case("b", (x,), expected=np.ones(3))]
    task = Task("ex99.same", 1, "identity", lambda: cases)
    monkeypatch.setattr("cnncourse.tasks.get_task", lambda task_id: task)

    def mutating(a):
        out = a.copy()
        a[:] = 0
        return out

    assert run_task("ex99.same", mutating).points == 1


def test_check_never_raises_and_prints(capsys):
    check("ex01.dense_params", lambda n, u: 1 / 0)
    check("ex01.no_such_task", lambda n, u: 0)
    check("ex42.nothing", lambda: 0)
    check("ex01.dense_params", "not a function")
    out = capsys.readouterr().out
    assert "ZeroDivisionError" in out
    assert "unknown task 'ex01.no_such_task'" in out
    assert "unknown exercise 'ex42'" in out
    assert "expected a function, got str" in out


def test_task_registry_ids_are_prefixed_by_their_exercise():
    tasks = all_tasks()
    assert tasks, "no tasks registered"
    for task_id, task in tasks.items():
        exercise, _, name = task_id.partition(".")
        assert name and task in tasks_for(exercise)
        assert task.points > 0
        assert task.public_cases(), f"{task_id} has no public cases"


def test_get_task_unknown_lists_known_ids():
    with pytest.raises(KeyError, match="ex01.dense_params"):
        get_task("ex01.typo")


def test_hidden_cases_change_with_the_seed():
    task = get_task("ex01.dense_params")
    a = task.hidden_cases(np.random.default_rng(1))
    b = task.hidden_cases(np.random.default_rng(2))
    assert [c.args for c in a] != [c.args for c in b]


# A bug costs points once, in the notebook too (issue 13, item 3): the self-check grades a
# task that calls a wrong earlier task with the reference in its place, as the grader does.

NOTEBOOK = """
import numpy as np

def conv_output_size(n, k, stride, pad):
    return (n + 2 * pad - k) // stride  # the + 1 is missing

def zero_pad(x, pad):
    return np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)])

def conv2d(x, w, b, stride, pad):
    xp = zero_pad(x, pad)
    kh, kw, c, f = w.shape
    oh = conv_output_size(x.shape[1], kh, stride, pad)
    ow = conv_output_size(x.shape[2], kw, stride, pad)
    out = np.zeros((x.shape[0], oh, ow, f))
    for i in range(oh):
        for j in range(ow):
            win = xp[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            out[:, i, j, :] = np.tensordot(win, w, axes=([1, 2, 3], [0, 1, 2])) + b
    return out
"""


def _notebook(source: str = NOTEBOOK) -> dict:
    """A namespace like a notebook kernel's: the functions look their helpers up in it."""
    namespace: dict = {"__name__": "__main__"}
    exec(compile(source, "<notebook cell>", "exec"), namespace)
    return namespace


def test_the_self_check_names_a_wrong_helper_and_counts_the_bug_once(capsys):
    ns = _notebook()
    wrong_helper = ns["conv_output_size"]
    check("ex02.conv2d", ns["conv2d"])
    out = capsys.readouterr().out
    assert out.startswith("ex02.conv2d (")
    assert ": 4/4 points" in out.splitlines()[0]
    first = get_task("ex02.conv_output_size").public_cases()[0].name
    assert (
        f"Note: your conv2d is right, but it calls your conv_output_size, which fails case "
        f"{first!r}" in out
    )
    assert "fix conv_output_size first" in out
    assert ns["conv_output_size"] is wrong_helper  # the notebook's own function is put back
    # Without the substitution the same code fails: the check did not just go easy on it.
    assert run_task("ex02.conv2d", ns["conv2d"]).points < 4


def test_the_self_check_says_calls_when_the_caller_is_wrong_too(capsys):
    ns = _notebook(NOTEBOOK.replace(") + b\n", ")\n"))  # and the bias is missing
    check("ex02.conv2d", ns["conv2d"])
    out = capsys.readouterr().out
    assert "Note: your conv2d calls your conv_output_size, which fails case" in out
    assert "is right" not in out
    assert ": 4/4 points" not in out.splitlines()[0]


def test_the_self_check_leaves_a_right_helper_alone(capsys):
    ns = _notebook(NOTEBOOK.replace("// stride  #", "// stride + 1  #"))
    check("ex02.conv2d", ns["conv2d"])
    out = capsys.readouterr().out
    assert ": 4/4 points" in out.splitlines()[0] and "Note:" not in out


def test_every_called_task_is_asked_for_under_the_name_of_its_id():
    """The self-check finds a callee under its id's name; the notebooks must agree."""
    from cnncourse.grading.assignment import load_assignment
    from cnncourse.tasks import exercise, exercise_names

    for name in exercise_names():
        declared = exercise(name)
        named = {i for t in declared.tasks if t.calls for i in (t.id, *t.calls)}
        if not named:
            continue
        functions = load_assignment(name).functions
        for task_id in named:
            assert functions[task_id] == task_id.partition(".")[2], (name, task_id)


def test_make_batches_is_checked_with_a_correct_normalize_when_yours_is_wrong(capsys):
    ns = _notebook(
        "import numpy as np\n\n"
        "def normalize(x, value_range=(0.0, 1.0)):\n"
        "    low, high = value_range\n"
        "    return (low + (high - low) * x / 255.0).astype(np.float32)  # no channel axis\n\n"
        "def make_batches(x, y, batch_size, seed):\n"
        "    order = np.random.default_rng(seed).permutation(len(x))\n"
        "    images, labels = normalize(x[order], (0.0, 1.0)), y[order]\n"
        "    return [(images[s:s + batch_size], labels[s:s + batch_size])\n"
        "            for s in range(0, len(x), batch_size)]\n"
    )
    check("ex05.make_batches", ns["make_batches"])
    out = capsys.readouterr().out
    assert ": 2/2 points" in out.splitlines()[0]
    assert "your make_batches is right, but it calls your normalize, which fails case" in out
