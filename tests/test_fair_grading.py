"""Fair grading (issue 13): the grade is what the student's notebook does, every time.

A corpus of notebooks built from the solutions -- correct ones in unusual layouts (helpers in
their own cells, SciPy added to the setup cell, IPython magics, check calls inside task
cells, scratch copies, mislabelled cells) and ones with classic bugs -- is run twice:

- with ``nbclient`` as *Run all* runs it, collecting the points each check cell prints;
- with the batch grader, in its sandbox.

The invariant: the public-case points the check cells print equal the grader's public-case
points, task by task. Each case of the issue also has its own assertion.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from cnncourse import ops
from cnncourse.exercise import run_cases
from cnncourse.grading.assignment import load_assignment
from cnncourse.grading.grader import grade_file
from cnncourse.grading.sandbox import Limits, Worker
from cnncourse.grading.secret import task_rng
from cnncourse.tasks import get_task

ROOT = Path(__file__).resolve().parent.parent
LIMITS = Limits(timeout_s=30.0, memory_mb=1024)
SECRET = bytes(range(32))
PRINTED = re.compile(r"^(ex\d\d\.\w+) \(.*\): ([\d.]+)/([\d.]+) points", re.MULTILINE)


def _solution(name: str) -> nbformat.NotebookNode:
    path = next((ROOT / "solutions").glob(f"{name}_*.ipynb"))
    return nbformat.read(path, as_version=4)


def _index(nb, *, task: str | None = None, check: str | None = None) -> int:
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("cnncourse", {})
        if task is not None and meta.get("task") == task:
            return i
        if check is not None and meta.get("check") == check:
            return i
    raise KeyError(task or check)


def _code(source: str, **meta) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    if meta:
        cell.metadata["cnncourse"] = meta
    return cell


def _set(nb, task: str, source: str) -> None:
    nb.cells[_index(nb, task=task)].source = source


def _drop_demos(nb) -> None:
    """Remove the slow ungraded cells (the photo, the numeric gradient) to keep tests short."""
    nb.cells = [
        c
        for c in nb.cells
        if not (
            c.cell_type == "code" and ("sample_photo" in c.source or "numeric_gradient" in c.source)
        )
    ]


IM2COL = """def im2col(xp, kh, kw, stride, out_h, out_w):
    n, _, _, c = xp.shape
    cols = np.empty((n, out_h, out_w, kh * kw * c))
    for i in range(out_h):
        for j in range(out_w):
            top, left = i * stride, j * stride
            cols[:, i, j, :] = xp[:, top:top + kh, left:left + kw, :].reshape(n, -1)
    return cols
"""

CONV_IM2COL = """def conv2d(x, w, b, stride, pad):
    kh, kw, c, f = w.shape
    out_h = conv_output_size(x.shape[1], kh, stride, pad)
    out_w = conv_output_size(x.shape[2], kw, stride, pad)
    cols = im2col(zero_pad(x, pad), kh, kw, stride, out_h, out_w)
    return cols @ w.reshape(-1, f) + b
"""

CONV_SCIPY = """def conv2d(x, w, b, stride, pad):
    xp = zero_pad(x, pad)
    kh, kw, c, f = w.shape
    out_h = conv_output_size(x.shape[1], kh, stride, pad)
    out_w = conv_output_size(x.shape[2], kw, stride, pad)
    out = np.zeros((x.shape[0], out_h, out_w, f))
    for n in range(x.shape[0]):
        for k in range(f):
            full = sum(signal.correlate2d(xp[n, :, :, ch], w[:, :, ch, k], mode="valid")
                       for ch in range(c))
            out[n, :, :, k] = full[::stride, ::stride][:out_h, :out_w] + b[k]
    return out
"""

CONV_FLIPPED = """def conv2d(x, w, b, stride, pad):
    xp = zero_pad(x, pad)
    kh, kw, c, f = w.shape
    out_h = conv_output_size(x.shape[1], kh, stride, pad)
    out_w = conv_output_size(x.shape[2], kw, stride, pad)
    out = np.zeros((x.shape[0], out_h, out_w, f))
    wf = w[::-1, ::-1]  # a true convolution
    for i in range(out_h):
        for j in range(out_w):
            win = xp[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            out[:, i, j, :] = np.tensordot(win, wf, axes=([1, 2, 3], [0, 1, 2])) + b
    return out
"""

POOL_HELPER = """def pool_forward(x, pool_size, stride, reduce):
    stride = pool_size if stride is None else stride
    n, h, w, c = x.shape
    out_h, out_w = (h - pool_size) // stride + 1, (w - pool_size) // stride + 1
    out = np.empty((n, out_h, out_w, c))
    for i in range(out_h):
        for j in range(out_w):
            win = x[:, i * stride:i * stride + pool_size, j * stride:j * stride + pool_size, :]
            out[:, i, j, :] = reduce(win, axis=(1, 2))
    return out
"""


COURSE_CONV = """def conv2d(x, w, b, stride, pad):
    return ops.conv2d(x, w, b, stride=stride, padding=pad)
"""

CONV_TF = """import tensorflow as tf

def conv2d(x, w, b, stride, pad):
    out = tf.nn.conv2d(zero_pad(x, pad), w, strides=stride, padding="VALID")
    return out.numpy() + b
"""

ZERO_PAD_ONES = """def zero_pad(x, pad):
    return np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=1)
"""

SIZE_WRONG_OFF_THE_PUBLIC_CASES = """def conv_output_size(n, k, stride, pad):
    size = (n + 2 * pad - k) // stride + 1
    return size + 1 if n == 6 or 10 <= n <= 200 else size
"""


def _ex02(variant: str) -> nbformat.NotebookNode:
    nb = _solution("ex02")
    if variant != "solution":
        _drop_demos(nb)
    conv = _index(nb, task="ex02.conv2d")
    if variant == "im2col_helper_cell":
        _set(nb, "ex02.conv2d", CONV_IM2COL)
        nb.cells.insert(conv, _code(IM2COL))
    elif variant == "helper_between_task_and_check":
        _set(nb, "ex02.conv2d", CONV_IM2COL)
        nb.cells.insert(conv + 1, _code(IM2COL))
    elif variant == "scipy_in_setup":
        nb.cells[1].source += "\nfrom scipy import signal"
        _set(nb, "ex02.conv2d", CONV_SCIPY)
    elif variant == "check_in_task_cell":
        nb.cells[conv].source += '\n\ncheck("ex02.conv2d", conv2d)'
        del nb.cells[_index(nb, check="ex02.conv2d")]
    elif variant == "imports_checking_in_task_cell":
        nb.cells[conv].source = "from cnncourse.checking import check\n\n" + nb.cells[conv].source
    elif variant == "ipython_syntax":
        nb.cells[conv].source = "%%time\n" + nb.cells[conv].source
        pad = _index(nb, task="ex02.zero_pad")
        nb.cells[
            pad
        ].source += "\n\n%time _ = zero_pad(np.zeros((1, 2, 2, 1)), 1)\ndisplay(zero_pad)"
        nb.cells.insert(pad, _code("!echo hello\n%matplotlib inline\nx_demo = np.ones(3)\nx_demo?"))
    elif variant == "scratch_copy_at_end":
        nb.cells.append(_code("def conv2d(x, w, b, stride, pad):\n    return None  # scratch"))
    elif variant == "cell_with_another_tasks_id":
        nb.cells[conv].metadata["cnncourse"]["task"] = "ex02.zero_pad"
    elif variant == "wrong_output_size":
        _set(
            nb,
            "ex02.conv_output_size",
            "def conv_output_size(n, k, stride, pad):\n    return (n + 2 * pad - k) // stride",
        )
    elif variant == "flipped_kernel":
        _set(nb, "ex02.conv2d", CONV_FLIPPED)
    elif variant == "conv2d_from_the_course_package":
        # The chapter used cnncourse.ops.conv2d; the grader cannot import it (0 points), and
        # the notebook's check says so instead of printing 4/4.
        nb.cells[1].source += "\nfrom cnncourse import ops"
        _set(nb, "ex02.conv2d", COURSE_CONV)
    elif variant == "conv2d_with_tensorflow":
        # A NumPy exercise graded with NumPy's limits could not import TensorFlow (about
        # 2 GB of address space): 0 points where the notebook printed 4/4.
        _set(nb, "ex02.conv2d", CONV_TF)
    elif variant == "one_public_and_one_hidden_wrong_callee":
        # zero_pad fails its public cases; conv_output_size passes its public cases, fails
        # hidden ones, and is wrong for the width 6 of one of conv2d's public cases. The
        # notebook's check can only replace zero_pad; the grader must print what it printed.
        _set(nb, "ex02.zero_pad", ZERO_PAD_ONES)
        _set(nb, "ex02.conv_output_size", SIZE_WRONG_OFF_THE_PUBLIC_CASES)
    else:
        assert variant == "solution", variant
    return nb


def _ex03(variant: str) -> nbformat.NotebookNode:
    nb = _solution("ex03")
    if variant == "pool_forward_helper":
        first = _index(nb, task="ex03.max_pool2d")
        nb.cells.insert(first, _code(POOL_HELPER))
        _set(
            nb,
            "ex03.max_pool2d",
            "def max_pool2d(x, pool_size=2, stride=None):\n"
            "    return pool_forward(x, pool_size, stride, np.max)",
        )
        _set(
            nb,
            "ex03.avg_pool2d",
            "def avg_pool2d(x, pool_size=2, stride=None):\n"
            "    return pool_forward(x, pool_size, stride, np.mean)",
        )
    elif variant == "softmax_axis0":
        _set(
            nb,
            "ex03.softmax",
            "def softmax(z):\n    e = np.exp(z - z.max(axis=0, keepdims=True))\n"
            "    return e / e.sum(axis=0, keepdims=True)",
        )
    elif variant == "relu_in_place":
        _set(nb, "ex03.relu", "def relu(x):\n    np.maximum(x, 0, out=x)\n    return x")
    elif variant == "default_stride_one":
        source = nb.cells[_index(nb, task="ex03.max_pool2d")].source
        nb.cells[_index(nb, task="ex03.max_pool2d")].source = source.replace(
            "stride = pool_size", "stride = 1"
        )
    return nb


CONV_PARAMS_WITH_PROD = """def conv_params(kernel_size, in_channels, filters):
    return prod((kernel_size, kernel_size, in_channels, filters)) + filters
"""


def _ex01(variant: str) -> nbformat.NotebookNode:
    nb = _solution("ex01")
    last_check = _index(nb, check="ex01.shift_images")
    nb.cells = nb.cells[: last_check + 1]  # the Keras experiment after it is slow
    if variant == "import_added_to_the_setup_cell":
        # ex01's setup cell imports the course (cnncourse.quiet): the grader used to skip the
        # whole cell, and with it the student's own import.
        assert "cnncourse.quiet" in nb.cells[1].source
        nb.cells[1].source += "\nfrom math import prod"
        _set(nb, "ex01.conv_params", CONV_PARAMS_WITH_PROD)
    if variant == "shift_returns_float64":
        cell = nb.cells[_index(nb, task="ex01.shift_images")]
        cell.source = cell.source.replace("np.zeros_like(x)", "np.zeros(x.shape)")
        assert "np.zeros(x.shape)" in cell.source
    return nb


def _ex09(variant: str) -> nbformat.NotebookNode:
    nb = _solution("ex09")
    nb.cells = nb.cells[: _index(nb, check="ex09.to_response") + 1]  # real digits: not graded
    if variant == "check_image_refuses_a_channel_axis":  # preprocess is right
        cell = nb.cells[_index(nb, task="ex09.check_image")]
        cell.source = cell.source.replace(
            "if image.shape not in ((28, 28), (28, 28, 1)):", "if image.shape != (28, 28):"
        )
        assert "!= (28, 28)" in cell.source
    return nb


def _ex05(variant: str) -> nbformat.NotebookNode:
    nb = _solution("ex05")
    nb.cells = nb.cells[: _index(nb, check="ex05.make_batches") + 1]  # Keras demos: not graded
    if variant == "normalize_without_channel_axis":  # make_batches is right
        cell = nb.cells[_index(nb, task="ex05.normalize")]
        cell.source = cell.source.replace("if x.ndim == 3:", "if False:")
        assert "if False:" in cell.source
    return nb


EVERY_LAYOUT = ("ex01", "ex03", "ex07", "ex09", "ex10")


def _every_layout(name: str) -> nbformat.NotebookNode:
    """The solution of ``name`` with every layout a student may use at once, all correct.

    Each task cell starts with ``%%time`` and an import of ``check``, and ends with its check
    call (the check cells are gone); a scratch copy of every function that returns nothing
    follows the last check. Exercise 10 also checks its buggy script before the task cell.
    """
    nb = _solution(name)
    cut = {"ex01": "ex01.shift_images", "ex09": "ex09.to_response"}  # slow, ungraded after
    if name in cut:
        nb.cells = nb.cells[: _index(nb, check=cut[name]) + 1]
    cells, scratch = [], []
    for cell in nb.cells:
        meta = cell.metadata.get("cnncourse", {}) if cell.cell_type == "code" else {}
        if "check" in meta:
            owner = cells[_index(nbformat.v4.new_notebook(cells=cells), task=meta["check"])]
            owner.source += "\n\n" + cell.source
            continue
        if "task" in meta:
            cell.source = "%%time\nfrom cnncourse.checking import check\n" + cell.source
            name_ = re.search(r"^def (\w+)\(", cell.source, re.MULTILINE).group(1)
            scratch.append(_code(f"def {name_}(*args, **kwargs):\n    return None  # scratch"))
        cells.append(cell)
    nb.cells = cells + scratch
    return nb


CORPUS = {
    **{
        ("ex02", v): _ex02
        for v in (
            "solution",
            "im2col_helper_cell",
            "helper_between_task_and_check",
            "scipy_in_setup",
            "check_in_task_cell",
            "imports_checking_in_task_cell",
            "ipython_syntax",
            "scratch_copy_at_end",
            "cell_with_another_tasks_id",
            "wrong_output_size",
            "flipped_kernel",
            "one_public_and_one_hidden_wrong_callee",
            "conv2d_with_tensorflow",
            "conv2d_from_the_course_package",
        )
    },
    **{
        ("ex03", v): _ex03
        for v in ("pool_forward_helper", "softmax_axis0", "relu_in_place", "default_stride_one")
    },
    ("ex01", "shift_returns_float64"): _ex01,
    ("ex01", "import_added_to_the_setup_cell"): _ex01,
    ("ex09", "check_image_refuses_a_channel_axis"): _ex09,
    ("ex05", "normalize_without_channel_axis"): _ex05,
    **{
        (name, "every_layout"): lambda _variant, name=name: _every_layout(name)
        for name in EVERY_LAYOUT
    },
}


class Printed(dict):
    """The points each check cell printed, by task id; ``text``: everything they printed."""

    text = ""


def _run_all(nb: nbformat.NotebookNode) -> Printed:
    """Execute like Run all; the points each check printed (the last print per task)."""
    from nbclient import NotebookClient

    nb = copy.deepcopy(nb)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    ).execute()
    printed = Printed()
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("name") == "stdout":
                printed.text += output.get("text", "")
                for task, points, _ in PRINTED.findall(output.get("text", "")):
                    printed[task] = float(points)
    return printed


@pytest.fixture(scope="module")
def worker():
    with Worker(LIMITS, hide=[str(ROOT / "tests")]) as w:
        yield w


_ASSIGNMENTS: dict[str, object] = {}


def _grade(name: str, nb: nbformat.NotebookNode, tmp_path: Path, worker):
    if name not in _ASSIGNMENTS:
        _ASSIGNMENTS[name] = load_assignment(name)
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, path)
    return grade_file(path, _ASSIGNMENTS[name], worker, "student", secret=SECRET)


@pytest.fixture(scope="module")
def graded(worker, tmp_path_factory):
    """Every corpus notebook: (notebook, what Run all printed, the grader's result)."""
    out = {}
    for (name, variant), build in CORPUS.items():
        nb = build(variant)
        out[(name, variant)] = (
            nb,
            _run_all(nb),
            _grade(name, nb, tmp_path_factory.mktemp(variant), worker),
        )
    return out


@pytest.mark.parametrize("key", list(CORPUS), ids=lambda k: f"{k[0]}-{k[1]}")
def test_printed_public_points_equal_the_graders(key, graded):
    nb, printed, result = graded[key]
    grader = {t.id: t.public_points for t in result.tasks}
    assert set(printed) == set(grader), (printed, grader)
    assert printed == grader, (result.notes, [(t.id, t.problems) for t in result.tasks])


CORRECT = [
    "solution",
    "im2col_helper_cell",
    "helper_between_task_and_check",
    "scipy_in_setup",
    "check_in_task_cell",
    "imports_checking_in_task_cell",
    "ipython_syntax",
    "scratch_copy_at_end",
    "cell_with_another_tasks_id",
    "conv2d_with_tensorflow",
]


@pytest.mark.parametrize("variant", CORRECT)
def test_correct_code_in_any_layout_gets_full_marks(variant, graded):
    _, _, result = graded[("ex02", variant)]
    assert result.status == "ok", result.reason
    assert result.total == result.max_total, [
        (t.id, t.points, t.cases) for t in result.tasks if t.points < t.max_points
    ]


def test_an_import_added_to_a_setup_cell_that_imports_the_course_runs(graded):
    _, printed, result = graded[("ex01", "import_added_to_the_setup_cell")]
    assert result.total == result.max_total and result.status == "ok", result.reason
    assert printed["ex01.conv_params"] == 2
    assert not any("was not run" in n for n in result.notes), result.notes


@pytest.mark.parametrize("name", EVERY_LAYOUT)
def test_every_layout_at_once_gets_full_marks(name, graded):
    _, _, result = graded[(name, "every_layout")]
    assert result.status == "ok", result.reason
    assert result.total == result.max_total, [
        (t.id, t.points, t.problems, [c.message for c in t.cases if not c.passed][:1])
        for t in result.tasks
        if t.points < t.max_points
    ]


def test_correct_helper_layout_in_exercise_3_gets_full_marks(graded):
    _, _, result = graded[("ex03", "pool_forward_helper")]
    assert result.total == result.max_total and result.status == "ok", result.reason


def test_a_wrong_helper_costs_points_once(graded):
    _, printed, result = graded[("ex02", "wrong_output_size")]
    tasks = {t.id: t for t in result.tasks}
    assert tasks["ex02.conv_output_size"].points < 2
    conv = tasks["ex02.conv2d"]
    # The notebook's check, like the grader, ran conv2d with a correct conv_output_size.
    assert printed["ex02.conv2d"] == 4 == conv.public_points
    assert conv.points == 4 and conv.calls_wrong == ["ex02.conv_output_size"]
    said = "conv2d is right, but it calls your conv_output_size, which fails case"
    assert any(said in n for n in conv.notes), conv.notes
    assert f"your {said} 'n=5, k=3, stride=1, pad=0'" in printed.text, printed.text
    assert "fix conv_output_size first" in printed.text


def test_a_callee_wrong_only_on_hidden_cases_beside_a_publicly_wrong_one(graded):
    """The check can replace only the publicly wrong callee; the grader replaces both.

    The grade counts conv2d right (both callees replaced), and the public points the grader
    records are the ones the notebook printed (only zero_pad replaced), which are lower
    because the notebook's conv_output_size is wrong for one of conv2d's public inputs.
    """
    _, printed, result = graded[("ex02", "one_public_and_one_hidden_wrong_callee")]
    tasks = {t.id: t for t in result.tasks}
    conv = tasks["ex02.conv2d"]
    assert conv.points == conv.max_points
    assert conv.calls_wrong == ["ex02.zero_pad", "ex02.conv_output_size"]
    assert printed["ex02.conv2d"] == conv.public_points < conv.max_points
    assert tasks["ex02.conv_output_size"].public_points == 2 > tasks["ex02.conv_output_size"].points
    assert "fix zero_pad first" in printed.text and "fix zero_pad and" not in printed.text


def test_an_answer_built_on_the_course_package_gets_zero_and_the_check_says_why(graded):
    nb, printed, result = graded[("ex02", "conv2d_from_the_course_package")]
    assert "from cnncourse import ops" in nb.cells[1].source
    conv = {t.id: t for t in result.tasks}["ex02.conv2d"]
    assert printed["ex02.conv2d"] == 0 == conv.points == conv.public_points
    assert "your answer uses cnncourse.ops from the course package" in printed.text
    assert printed["ex02.zero_pad"] == 2  # the other tasks are not affected


def test_the_self_check_and_the_grader_say_a_wrong_check_image_costs_points_once(graded):
    _, printed, result = graded[("ex09", "check_image_refuses_a_channel_axis")]
    tasks = {t.id: t for t in result.tasks}
    assert tasks["ex09.check_image"].points < 4
    pre = tasks["ex09.preprocess"]
    assert pre.points == 3 and pre.calls_wrong == ["ex09.check_image"]
    assert printed["ex09.preprocess"] == 3 == pre.public_points
    said = "preprocess is right, but it calls your check_image, which fails case"
    assert any(said in n for n in pre.notes), pre.notes
    assert f"your {said} 'valid: uint8 (28, 28, 1)'" in printed.text, printed.text


def _mistakes(result, task: str) -> set[str]:
    return {c.mistake for t in result.tasks if t.id == task for c in t.cases if not c.passed}


def test_a_flipped_kernel_is_named_in_public_and_hidden_cases(graded):
    _, _, result = graded[("ex02", "flipped_kernel")]
    conv = next(t for t in result.tasks if t.id == "ex02.conv2d")
    failed = [c for c in conv.cases if not c.passed]
    assert failed and all(c.mistake == "flipped_kernel" for c in failed), failed
    hidden = [c for c in failed if c.hidden]
    assert hidden and all("fails for an input with" in c.message for c in hidden)
    assert all("flip" in c.message for c in failed)


def test_exercise_3_mistakes_are_named(graded):
    assert _mistakes(graded[("ex03", "softmax_axis0")][2], "ex03.softmax") == {"wrong_axis"}
    assert _mistakes(graded[("ex03", "relu_in_place")][2], "ex03.relu") == {"in_place"}
    assert "default_stride" in _mistakes(
        graded[("ex03", "default_stride_one")][2], "ex03.max_pool2d"
    )


def test_shift_images_must_keep_the_dtype(graded):
    _, printed, result = graded[("ex01", "shift_returns_float64")]
    assert printed["ex01.shift_images"] < 3
    assert _mistakes(result, "ex01.shift_images") == {"dtype_changed"}


def test_the_same_notebook_gets_the_same_grade_on_a_regrading(graded, worker, tmp_path):
    nb, _, first = graded[("ex02", "flipped_kernel")]
    again = _grade("ex02", nb, tmp_path, worker)
    assert [(t.points, [c.passed for c in t.cases]) for t in again.tasks] == [
        (t.points, [c.passed for c in t.cases]) for t in first.tasks
    ]
    assert again.secret_fingerprint == first.secret_fingerprint


# ----------------------------------------------------------------- the partial-credit rule


def _right_on_fraction(p: float, salt: str):
    """A conv_output_size that is right on a pseudo-random fraction p of all inputs."""
    import hashlib

    def conv_output_size(n, k, stride, pad):
        right = (n + 2 * pad - k) // stride + 1
        digest = hashlib.sha256(f"{salt}:{n}:{k}:{stride}:{pad}".encode()).digest()
        return right if digest[0] < 256 * p else right + 1

    return conv_output_size


@pytest.mark.parametrize("p", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_an_answer_right_on_a_fraction_p_of_inputs_earns_about_p_times_the_points(p):
    from cnncourse.exercise import run_cases
    from cnncourse.grading.grader import task_points
    from cnncourse.grading.secret import task_rng
    from cnncourse.tasks import get_task

    task = get_task("ex02.conv_output_size")
    earned = []
    for k in range(60):  # 60 answers with different wrong inputs, 60 secrets
        fn = _right_on_fraction(p, f"answer {k}")
        public = run_cases(task, fn)
        hidden = run_cases(task, fn, task.hidden_cases(task_rng(bytes([k]) * 32, task.id)))
        earned.append(
            task_points(
                task.points, [r.passed for r in public.results], [r.passed for r in hidden.results]
            )
        )
    mean = sum(earned) / len(earned) / task.points
    assert abs(mean - p) <= 0.08, (p, mean)


def test_identical_verdicts_give_identical_points_and_hard_coding_earns_nothing():
    from cnncourse.grading.grader import task_points

    verdicts = ([True, False, True], [True] * 7 + [False] * 5)
    assert task_points(4, *verdicts) == task_points(4, *verdicts)
    assert task_points(4, [True] * 5, [False] * 12) == 0.0


def test_hard_coded_public_answers_earn_nothing(worker, tmp_path):
    from cnncourse.tasks import get_task

    answers = {c.args: c.expected for c in get_task("ex02.conv_output_size").public_cases()}
    nb = _ex02("scratch_copy_at_end")
    _set(
        nb,
        "ex02.conv_output_size",
        f"ANSWERS = {answers!r}\n\n\ndef conv_output_size(n, k, stride, pad):\n"
        "    return ANSWERS.get((n, k, stride, pad), 0)",
    )
    result = _grade("ex02", nb, tmp_path, worker)
    task = next(t for t in result.tasks if t.id == "ex02.conv_output_size")
    assert task.public_points == 2 and task.points == 0


def test_cli_keeps_the_key_with_the_instructor_and_regrades_identically(tmp_path, capsys):
    from cnncourse.cli import main

    nb = _ex02("flipped_kernel")
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(nb, subs / "alice.ipynb")
    key = tmp_path / "instructor" / "ex02.key"
    outs = []
    for run in ("a", "b"):
        out = tmp_path / run
        args = ["grade", str(subs), "-a", "ex02", "-o", str(out), "--no-progress"]
        assert main([*args, "--secret", str(key), "--allow-unisolated"]) == 0
        outs.append((out / "gradebook.csv").read_text())
    assert key.stat().st_mode & 0o777 == 0o600
    assert outs[0] == outs[1]
    default = tmp_path / "c"
    assert (
        main(
            [
                "grade",
                str(subs),
                "-a",
                "ex02",
                "-o",
                str(default),
                "--no-progress",
                "--allow-unisolated",
            ]
        )
        == 0
    )
    assert (default / ".hidden-cases.key").exists()
    key.write_text("not a key\n")
    assert (
        main(
            [
                "grade",
                str(subs),
                "-a",
                "ex02",
                "-o",
                str(tmp_path / "d"),
                "--no-progress",
                "--secret",
                str(key),
                "--allow-unisolated",
            ]
        )
        == 2
    )
    assert "not a hidden-case key" in capsys.readouterr().err


def test_a_wrong_normalize_costs_points_once_in_exercise_5(graded):
    _, printed, result = graded[("ex05", "normalize_without_channel_axis")]
    tasks = {t.id: t for t in result.tasks}
    assert tasks["ex05.normalize"].points < 2
    batches = tasks["ex05.make_batches"]
    assert batches.points == 2 and batches.calls_wrong == ["ex05.normalize"]
    assert printed["ex05.make_batches"] == 2 == batches.public_points
    assert "your make_batches is right, but it calls your normalize, which fails case" in (
        printed.text
    )


def _in_float32(fn, *, back_to_float64: bool):
    """``fn`` computed on float32 copies of its float arguments, its result maybe cast back."""

    def answer(*args):
        args = [a.astype(np.float32) if isinstance(a, np.ndarray) else a for a in args]
        out = fn(*args)
        outs = out if isinstance(out, tuple) else (out,)
        assert all(np.asarray(o).dtype == np.float32 for o in outs)  # computed in float32
        if back_to_float64:
            outs = tuple(np.asarray(o).astype(np.float64) for o in outs)
        return outs if isinstance(out, tuple) else outs[0]

    return answer


@pytest.mark.parametrize("back_to_float64", [False, True], ids=["float32", "cast-to-float64"])
@pytest.mark.parametrize(
    ("task_id", "fn"),
    [
        ("ex02.conv2d", lambda x, w, b, s, p: ops.conv2d(x, w, b, stride=s, padding=p)),
        (
            "ex02.conv2d_backward",
            lambda d, x, w, s, p: ops.conv2d_backward(
                d, x, w, b=np.zeros(w.shape[3], np.float32), stride=s, padding=p
            ),
        ),
        ("ex03.softmax", lambda z: ops.softmax(z)),
    ],
)
def test_an_answer_computed_in_float32_passes_every_case(task_id, fn, back_to_float64):
    """Float32 is accepted (issue 13 item 2), also when the answer is cast back to float64.

    Values cast back keep float32's precision; the comparison recognises them (every value
    is exactly a float32 number) instead of holding them to float64's tolerances.
    """
    task = get_task(task_id)
    cases = task.public_cases() + task.hidden_cases(task_rng(SECRET, task_id))
    report = run_cases(task, _in_float32(fn, back_to_float64=back_to_float64), cases)
    assert report.passed, report.to_text()


def test_a_float64_answer_is_still_held_to_float64_tolerances():
    task = get_task("ex02.conv2d_backward")
    (case,) = task.public_cases()[:1]
    dx, dw, db = case.expected
    nudged = (dx * (1 + 1e-5), dw, db)  # float64 values, off by 1e-5 relative
    assert task.compare(case.expected, nudged, case) is not None
    assert task.compare(case.expected, (dx.astype(np.float32), dw, db), case) is None
