"""How often a classic mistake gets a specific hint (issue 13; the goal is at least 80 %).

A corpus of planted bugs -- each one a short, independently written wrong answer of the kind
students hand in (a flipped kernel, the wrong softmax axis, a missing ``+ 1``, an in-place
ReLU...) -- is run through the self-check on the public cases and on hidden cases drawn
from a fixed key, exactly as the grader judges them. A bug *gets a specific hint* when at
least one of its failing cases names a mistake (``CaseResult.mistake``); it *gets the right
hint* when that mistake is the one planted.

Run ``python bench/hint_bench.py``; it prints one line per bug and the two shares.
``tests/test_mistakes.py`` asserts that every bug gets the right hint.
"""

from __future__ import annotations

import sys
import textwrap

import numpy as np

#: (task id, the mistake planted, the wrong answer's source)
BUGS: list[tuple[str, str, str]] = [
    ("ex01.dense_params", "bias_missing", "def f(n, u):\n    return n * u"),
    ("ex01.dense_params", "bias_per_input", "def f(n, u):\n    return n * u + n"),
    ("ex01.conv_params", "bias_missing", "def f(k, c, n):\n    return k * k * c * n"),
    ("ex01.conv_params", "bias_per_input_channel", "def f(k, c, n):\n    return k * k * c * n + c"),
    ("ex01.conv_params", "kernel_side_not_squared", "def f(k, c, n):\n    return k * c * n + n"),
    ("ex01.conv_params", "channels_ignored", "def f(k, c, n):\n    return (k * k + 1) * n"),
    (
        "ex01.shift_images",
        "wrap_around",
        "def f(x, dx, dy):\n    return np.roll(np.roll(x, dy, axis=1), dx, axis=2)",
    ),
    (
        "ex01.shift_images",
        "dx_dy_swapped",
        """
        def f(x, dx, dy):
            out = np.zeros_like(x)
            h, w = x.shape[1:]
            for i in range(h):
                for j in range(w):
                    si, sj = i - dx, j - dy
                    if 0 <= si < h and 0 <= sj < w:
                        out[:, i, j] = x[:, si, sj]
            return out
        """,
    ),
    (
        "ex01.shift_images",
        "dtype_changed",
        """
        def f(x, dx, dy):
            out = np.zeros(x.shape)
            h, w = x.shape[1:]
            for i in range(h):
                for j in range(w):
                    si, sj = i - dy, j - dx
                    if 0 <= si < h and 0 <= sj < w:
                        out[:, i, j] = x[:, si, sj]
            return out
        """,
    ),
    (
        "ex01.shift_images",
        "in_place",
        """
        def f(x, dx, dy):
            shifted = np.zeros_like(x)
            h, w = x.shape[1:]
            for i in range(h):
                for j in range(w):
                    si, sj = i - dy, j - dx
                    if 0 <= si < h and 0 <= sj < w:
                        shifted[:, i, j] = x[:, si, sj]
            x[...] = shifted
            return x
        """,
    ),
    ("ex02.zero_pad", "padded_all_axes", "def f(x, pad):\n    return np.pad(x, pad)"),
    (
        "ex02.zero_pad",
        "layout",
        "def f(x, p):\n    return np.pad(x, [(0, 0), (0, 0), (p, p), (p, p)])",
    ),
    (
        "ex02.zero_pad",
        "padding_twice",
        "def f(x, p):\n    return np.pad(x, [(0, 0), (2 * p, 2 * p), (2 * p, 2 * p), (0, 0)])",
    ),
    ("ex02.conv_output_size", "off_by_one", "def f(n, k, s, p):\n    return (n + 2 * p - k) // s"),
    (
        "ex02.conv_output_size",
        "true_division",
        "def f(n, k, s, p):\n    return (n + 2 * p - k) / s + 1",
    ),
    (
        "ex02.conv_output_size",
        "padding_once",
        "def f(n, k, s, p):\n    return (n + p - k) // s + 1",
    ),
    ("ex02.conv_output_size", "stride_ignored", "def f(n, k, s, p):\n    return n + 2 * p - k + 1"),
    (
        "ex02.conv_output_size",
        "ceil_instead_of_floor",
        "import math\ndef f(n, k, s, p):\n    return math.ceil((n + 2 * p - k) / s) + 1",
    ),
    ("ex02.conv_single_step", "bias_missing", "def f(a, w, b):\n    return float((a * w).sum())"),
    (
        "ex02.conv_single_step",
        "flipped_kernel",
        "def f(a, w, b):\n    return float((a * np.flip(w, (0, 1))).sum() + b)",
    ),
]

_CONV = """
def f(x, w, b, stride, pad):
    xp = np.pad(x, [(0, 0), ({p}, {p}), ({p}, {p}), (0, 0)])
    kh, kw, c, nf = w.shape
    s = {s}
    oh = (x.shape[1] + 2 * pad - kh) // s + 1
    ow = (x.shape[2] + 2 * pad - kw) // s + 1
    oh, ow = min(oh, (xp.shape[1] - kh) // s + 1), min(ow, (xp.shape[2] - kw) // s + 1)
    out = np.zeros((x.shape[0], oh, ow, nf))
    k = {kernel}
    for i in range(oh):
        for j in range(ow):
            win = xp[:, i * s:i * s + kh, j * s:j * s + kw, :]
            out[:, i, j, :] = np.tensordot(win, k, axes=([1, 2, 3], [0, 1, 2])) {bias}
    return out{after}
"""


def _conv(p="pad", s="stride", kernel="w", bias="+ b", after=""):
    return _CONV.format(p=p, s=s, kernel=kernel, bias=bias, after=after)


BUGS += [
    ("ex02.conv2d", "flipped_kernel", _conv(kernel="w[::-1, ::-1]")),
    ("ex02.conv2d", "stride_ignored", _conv(s="1")),
    ("ex02.conv2d", "padding_twice", _conv(p="2 * pad")),
    ("ex02.conv2d", "padding_ignored", _conv(p="0")),
    ("ex02.conv2d", "bias_missing", _conv(bias="")),
    ("ex02.conv2d", "bias_per_input_channel", _conv(bias="+ b * c")),
    ("ex02.conv2d", "layout", _conv(after=".transpose(0, 3, 1, 2)")),
    (
        "ex02.conv2d_backward",
        "padding_not_removed",
        """
        def f(dout, x, w, stride, pad):
            xp = np.pad(x, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
            dxp, dw = np.zeros(xp.shape), np.zeros(w.shape)
            kh, kw = w.shape[:2]
            for i in range(dout.shape[1]):
                for j in range(dout.shape[2]):
                    t, l = i * stride, j * stride
                    win = xp[:, t:t + kh, l:l + kw, :]
                    dw += np.einsum("nhwc,nf->hwcf", win, dout[:, i, j, :])
                    dxp[:, t:t + kh, l:l + kw, :] += np.einsum("hwcf,nf->nhwc", w, dout[:, i, j, :])
            return dxp, dw, dout.sum(axis=(0, 1, 2))
        """,
    ),
]

_POOL = """
def f(x, pool_size=2, stride=None):
    s = {default} if stride is None else {s}
    n, h, w, c = x.shape
    oh, ow = (h - pool_size) // s + 1 {trim}, (w - pool_size) // s + 1 {trim}
    out = np.zeros((n, oh, ow, c){dtype})
    for i in range(oh):
        for j in range(ow):
            win = x[:, i * s:i * s + pool_size, j * s:j * s + pool_size, :]
            out[:, i, j, :] = {reduce}
    return out
"""


def _pool(reduce, default="pool_size", s="stride", trim="", dtype=""):
    return _POOL.format(reduce=reduce, default=default, s=s, trim=trim, dtype=dtype)


MAX = "win.max(axis=(1, 2))"
MEAN = "win.mean(axis=(1, 2))"

BUGS += [
    ("ex03.max_pool2d", "default_stride", _pool(MAX, default="1")),
    ("ex03.max_pool2d", "stride_ignored", _pool(MAX, s="1")),
    ("ex03.max_pool2d", "max_starts_at_zero", _pool("np.maximum(win.max(axis=(1, 2)), 0)")),
    ("ex03.max_pool2d", "off_by_one", _pool(MAX, trim="- 1")),
    ("ex03.max_pool2d", "pooled_over_channels", _pool("win.max(axis=(1, 2, 3))[:, None]")),
    ("ex03.avg_pool2d", "int_dtype", _pool(MEAN, dtype=", dtype=int")),
    ("ex03.avg_pool2d", "stride_is_pool", _pool(MEAN, s="pool_size")),
    (
        "ex03.global_average_pool",
        "keepdims",
        "def f(x):\n    return x.mean(axis=(1, 2), keepdims=True)",
    ),
    ("ex03.global_average_pool", "layout", "def f(x):\n    return x.mean(axis=(1, 2)).T"),
    ("ex03.relu", "in_place", "def f(x):\n    x[x < 0] = 0\n    return x"),
    ("ex03.relu", "returns_mask", "def f(x):\n    return (x > 0) * 1.0"),
    ("ex03.relu", "abs_instead_of_relu", "def f(x):\n    return np.sqrt(x * x)"),
    (
        "ex03.softmax",
        "wrong_axis",
        "def f(z):\n    e = np.exp(z - z.max(axis=0))\n    return e / e.sum(axis=0)",
    ),
    (
        "ex03.softmax",
        "no_max_shift",
        "def f(z):\n    e = np.exp(z)\n    return e / np.sum(e, axis=-1, keepdims=True)",
    ),
    (
        "ex03.softmax",
        "global_max_shift",
        "def f(z):\n    e = np.exp(z - z.max())\n    return e / e.sum(-1, keepdims=True)",
    ),
    (
        "ex03.softmax",
        "normalised_whole_array",
        "def f(z):\n    e = np.exp(z - z.max())\n    return e / e.sum()",
    ),
]


BUGS += [
    (
        "ex07.precision_recall",
        "precision_recall_swapped",
        """
        def f(cm):
            tp = np.diag(cm).astype(float)
            rows, cols = cm.sum(axis=1), cm.sum(axis=0)
            recall = np.divide(tp, rows, out=np.zeros_like(tp), where=rows > 0)
            precision = np.divide(tp, cols, out=np.zeros_like(tp), where=cols > 0)
            return recall, precision
        """,
    ),
    (
        "ex07.precision_recall",
        "zero_division",
        "def f(cm):\n    tp = np.diag(cm)\n    return tp / cm.sum(0), tp / cm.sum(1)",
    ),
]


def compile_bug(source: str):
    """The function ``f`` a bug's source defines (namespace: ``np`` only)."""
    namespace: dict = {"np": np}
    exec(compile(textwrap.dedent(source), "<bug>", "exec"), namespace)
    return namespace["f"]


def diagnose(task_id: str, source: str, key: bytes = bytes(32)) -> set[str]:
    """The mistake ids named on the failing cases (public and hidden) of one bug."""
    from cnncourse.exercise import run_cases
    from cnncourse.grading.secret import task_rng
    from cnncourse.tasks import get_task

    task = get_task(task_id)
    fn = compile_bug(source)
    cases = list(task.public_cases()) + list(task.hidden_cases(task_rng(key, task_id)))
    report = run_cases(task, fn, cases)
    return {r.mistake for r in report.results if not r.passed and r.mistake}


def main() -> int:
    specific = right = 0
    for task_id, planted, source in BUGS:
        named = diagnose(task_id, source)
        specific += bool(named)
        right += planted in named
        mark = "right" if planted in named else ("other" if named else "none ")
        print(f"{mark}  {task_id:28} {planted:26} -> {', '.join(sorted(named)) or '-'}")
    n = len(BUGS)
    print(
        f"\n{n} planted bugs: {specific / n:.0%} get a specific hint, "
        f"{right / n:.0%} the hint for the mistake planted (goal: 80 %)"
    )
    return 0 if specific / n >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
