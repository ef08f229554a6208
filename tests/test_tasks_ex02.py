"""Exercise 2 (convolution): the cases are right, and typical mistakes fail with a useful message.

The expected outputs of ``cnncourse.tasks.ex02`` come from ``cnncourse.ops``; here they are
checked once more against SciPy, so a bug in the reference cannot silently become the answer
key. Then each typical wrong submission is run through the same public cases a student sees.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from cnncourse.checking import run_task
from cnncourse.tasks import get_task

SEEDS = (0, 1, 2)


def _all_cases(task_id: str) -> list:
    task = get_task(task_id)
    cases = list(task.public_cases())
    for seed in SEEDS:
        cases += task.hidden_cases(np.random.default_rng(seed))
    return cases


def _scipy_conv2d(x, w, b, stride, pad):
    """Independent forward pass: scipy's 2-D cross-correlation, channel by channel."""
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    n_images, n_filters = x.shape[0], w.shape[3]
    out = []
    for n in range(n_images):
        maps = []
        for f in range(n_filters):
            full = sum(
                signal.correlate2d(xp[n, :, :, c], w[:, :, c, f], mode="valid")
                for c in range(x.shape[3])
            )
            maps.append(full[::stride, ::stride] + b[f])
        out.append(np.stack(maps, axis=-1))
    return np.stack(out)


def _student_conv2d(*, flip=False, ignore_stride=False, pad_mode="constant", swap_axes=False):
    """A loop implementation like a student's, with one optional typical mistake."""

    def conv2d(x, w, b, stride, pad):
        if swap_axes:
            w = w.transpose(1, 0, 2, 3)
        if flip:
            w = w[::-1, ::-1]
        kh, kw, _, n_filters = w.shape
        xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode=pad_mode)
        out_h = (x.shape[1] + 2 * pad - kh) // stride + 1
        out_w = (x.shape[2] + 2 * pad - kw) // stride + 1
        step = 1 if ignore_stride else stride
        out = np.zeros((x.shape[0], out_h, out_w, n_filters))
        for n in range(x.shape[0]):
            for i in range(out_h):
                for j in range(out_w):
                    window = xp[n, i * step : i * step + kh, j * step : j * step + kw, :]
                    for f in range(n_filters):
                        out[n, i, j, f] = np.sum(window * w[:, :, :, f]) + b[f]
        return out

    return conv2d


def _student_backward(*, keep_padding=False):
    def conv2d_backward(dout, x, w, stride, pad):
        kh, kw, _, n_filters = w.shape
        xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        dxp, dw = np.zeros(xp.shape), np.zeros(w.shape)
        for n in range(dout.shape[0]):
            for i in range(dout.shape[1]):
                for j in range(dout.shape[2]):
                    rows = slice(i * stride, i * stride + kh)
                    cols = slice(j * stride, j * stride + kw)
                    for f in range(n_filters):
                        dw[:, :, :, f] += xp[n, rows, cols, :] * dout[n, i, j, f]
                        dxp[n, rows, cols, :] += w[:, :, :, f] * dout[n, i, j, f]
        dx = dxp if keep_padding else dxp[:, pad : pad + x.shape[1], pad : pad + x.shape[2]]
        return dx, dw, dout.sum(axis=(0, 1, 2))

    return conv2d_backward


# --------------------------------------------------------------------------- the answer key


def test_conv2d_expected_outputs_agree_with_scipy():
    for case in _all_cases("ex02.conv2d"):
        np.testing.assert_allclose(case.expected, _scipy_conv2d(*case.args), rtol=1e-10, atol=1e-12)


def test_output_size_cases_agree_with_a_real_convolution():
    for case in _all_cases("ex02.conv_output_size"):
        n, k, stride, pad = case.args
        length = _scipy_conv2d(np.zeros((1, n, 1, 1)), np.zeros((k, 1, 1, 1)), [0], stride, pad)
        assert case.expected == length.shape[1], case.name


def test_hidden_cases_differ_between_seeds_and_are_reproducible():
    task = get_task("ex02.conv2d")
    names = [[c.name for c in task.hidden_cases(np.random.default_rng(s))] for s in SEEDS]
    assert names[0] != names[1]
    again = [c.name for c in task.hidden_cases(np.random.default_rng(SEEDS[0]))]
    assert again == names[0]


@pytest.mark.parametrize(
    "task_id, fn",
    [
        ("ex02.conv2d", _student_conv2d()),
        ("ex02.conv2d_backward", _student_backward()),
    ],
)
def test_an_independent_loop_solution_earns_full_marks(task_id, fn):
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


def test_zero_pad_on_every_axis_fails_with_the_shapes():
    _fails_with("ex02.zero_pad", lambda x, pad: np.pad(x, pad), "expected shape (1, 5, 5, 1)")


def test_zero_pad_on_one_side_only_fails_on_the_values():
    def one_sided(x, pad):
        return np.pad(x, ((0, 0), (0, 2 * pad), (0, 2 * pad), (0, 0)))

    _fails_with("ex02.zero_pad", one_sided, "entries are off")


def test_output_size_without_floor_fails_naming_the_integer():
    _fails_with(
        "ex02.conv_output_size",
        lambda n, k, stride, pad: (n + 2 * pad - k) / stride + 1,
        "expected the integer 4, got 4.5",
    )


def test_output_size_without_padding_fails():
    _fails_with(
        "ex02.conv_output_size", lambda n, k, stride, pad: (n - k) // stride + 1, "expected 7"
    )


def test_single_step_without_bias_fails():
    _fails_with("ex02.conv_single_step", lambda window, w, b: float(np.sum(window * w)), "b=0.5")


def test_conv2d_without_padding_fails_with_the_shapes():
    def no_padding(x, w, b, stride, pad):
        return _student_conv2d()(x, w, b, stride, 0)

    _fails_with("ex02.conv2d", no_padding, "expected shape (2, 5, 5, 4), got shape (2, 3, 3, 4)")


def test_conv2d_that_ignores_the_stride_inside_the_loop_fails():
    _fails_with("ex02.conv2d", _student_conv2d(ignore_stride=True), "stride 2", "entries are off")


def test_conv2d_with_wrap_around_padding_fails():
    # np.roll-style thinking: the border is filled from the opposite side instead of zeros.
    _fails_with("ex02.conv2d", _student_conv2d(pad_mode="wrap"), "pad 1", "entries are off")


def test_conv2d_with_swapped_kernel_axes_fails():
    _fails_with("ex02.conv2d", _student_conv2d(swap_axes=True), "kernel not square")


def test_conv2d_that_flips_the_kernel_fails():
    _fails_with("ex02.conv2d", _student_conv2d(flip=True), "chapter's 3x3 example")


def test_backward_that_keeps_the_padding_names_dx_and_its_shape():
    _fails_with("ex02.conv2d_backward", _student_backward(keep_padding=True), "dx: expected shape")


def test_backward_returning_two_gradients_says_what_is_expected():
    def two(dout, x, w, stride, pad):
        return _student_backward()(dout, x, w, stride, pad)[:2]

    _fails_with("ex02.conv2d_backward", two, "expected a tuple (dx, dw, db)")
