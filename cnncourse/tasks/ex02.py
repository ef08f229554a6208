"""Tasks of exercise 2, "Convolution" (chapter 2): a convolution layer in NumPy.

The expected outputs come from the reference implementation :mod:`cnncourse.ops`, which is
itself tested against TensorFlow and SciPy. Inputs are float64 with a fixed seed (public
cases) or drawn from the grader's generator (hidden cases); kernels are asymmetric and, in
some cases, not square, so that a flipped kernel or swapped kernel axes cannot pass.
"""

from __future__ import annotations

import numpy as np

from cnncourse import ops
from cnncourse.checking import Case, Task, compare


def _normal(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


# --------------------------------------------------------------------------- zero_pad


def _pad_case(name: str, x: np.ndarray, pad: int) -> Case:
    return Case(name, (x, pad), expected=ops.zero_pad(x, pad))


def _zero_pad_cases() -> list[Case]:
    rng = np.random.default_rng(20201)
    return [
        _pad_case("one 3x3 gray image, pad 1", np.arange(1.0, 10.0).reshape(1, 3, 3, 1), 1),
        _pad_case("batch (2, 4, 5, 3), pad 2", _normal(rng, 2, 4, 5, 3), 2),
        _pad_case("pad 0 returns the same values", _normal(rng, 1, 3, 2, 2), 0),
    ]


def _zero_pad_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(3):
        shape = (
            int(rng.integers(1, 4)),
            int(rng.integers(1, 8)),
            int(rng.integers(1, 8)),
            int(rng.integers(1, 5)),
        )
        pad = int(rng.integers(0, 4))
        cases.append(_pad_case(f"x of shape {shape}, pad {pad}", _normal(rng, *shape), pad))
    return cases


# --------------------------------------------------------------------------- conv_output_size


def _size_case(n: int, k: int, stride: int, pad: int) -> Case:
    return Case(
        f"n={n}, k={k}, stride={stride}, pad={pad}",
        (n, k, stride, pad),
        expected=ops.conv_output_size(n, k, stride=stride, padding=pad),
    )


def _size_cases() -> list[Case]:
    return [
        _size_case(5, 3, 1, 0),
        _size_case(7, 3, 1, 1),
        _size_case(7, 3, 2, 0),
        _size_case(8, 3, 2, 1),  # (8 + 2 - 3) / 2 = 3.5: the floor matters
        _size_case(224, 11, 4, 2),
    ]


def _size_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(5):
        n = int(rng.integers(1, 300))
        pad = int(rng.integers(0, 4))
        k = int(rng.integers(1, min(n + 2 * pad, 12) + 1))
        stride = int(rng.integers(1, 5))
        cases.append(_size_case(n, k, stride, pad))
    return cases


# --------------------------------------------------------------------------- conv_single_step


def _step_case(name: str, window: np.ndarray, w: np.ndarray, b: float) -> Case:
    # The reference: a one-position, one-filter convolution of the window itself.
    out = ops.conv2d(window[np.newaxis], w[..., np.newaxis], b=np.array([b]))
    return Case(name, (window, w, b), expected=float(out[0, 0, 0, 0]))


def _step_cases() -> list[Case]:
    rng = np.random.default_rng(20202)
    window = np.arange(1.0, 10.0).reshape(3, 3, 1)
    edge = np.array([[1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, -1.0]]).reshape(3, 3, 1)
    return [
        _step_case("3x3x1 window, vertical-edge kernel, b=0", window, edge, 0.0),
        _step_case("3x3x1 window, vertical-edge kernel, b=0.5", window, edge, 0.5),
        _step_case(
            "3x3x3 random window and kernel, b=-1",
            _normal(rng, 3, 3, 3),
            _normal(rng, 3, 3, 3),
            -1.0,
        ),
        _step_case(
            "2x4x2 window (kernels need not be square), b=0.25",
            _normal(rng, 2, 4, 2),
            _normal(rng, 2, 4, 2),
            0.25,
        ),
    ]


def _step_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(3):
        shape = (int(rng.integers(1, 6)), int(rng.integers(1, 6)), int(rng.integers(1, 5)))
        b = float(rng.standard_normal())
        cases.append(
            _step_case(f"window {shape}, b={b:.3f}", _normal(rng, *shape), _normal(rng, *shape), b)
        )
    return cases


# --------------------------------------------------------------------------- conv2d


def _conv_case(
    name: str, x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int
) -> Case:
    expected = ops.conv2d(x, w, b, stride=stride, padding=pad)
    return Case(name, (x, w, b, stride, pad), expected=expected)


def _conv_cases() -> list[Case]:
    rng = np.random.default_rng(20203)
    hand_x = np.arange(1.0, 10.0).reshape(1, 3, 3, 1)
    hand_w = np.array([[1.0, 0.0], [0.0, -1.0]]).reshape(2, 2, 1, 1)
    return [
        _conv_case("chapter's 3x3 example, 2x2 kernel", hand_x, hand_w, np.zeros(1), 1, 0),
        _conv_case(
            "x (2, 5, 5, 3), w (3, 3, 3, 4), stride 1, pad 1",
            _normal(rng, 2, 5, 5, 3),
            _normal(rng, 3, 3, 3, 4),
            _normal(rng, 4),
            1,
            1,
        ),
        _conv_case(
            "x (1, 7, 6, 2), w (3, 3, 2, 2), stride 2, pad 0",
            _normal(rng, 1, 7, 6, 2),
            _normal(rng, 3, 3, 2, 2),
            _normal(rng, 2),
            2,
            0,
        ),
        _conv_case(
            "x (1, 8, 8, 1), w (3, 3, 1, 1), stride 2, pad 1 (floor in the size)",
            _normal(rng, 1, 8, 8, 1),
            _normal(rng, 3, 3, 1, 1),
            _normal(rng, 1),
            2,
            1,
        ),
        _conv_case(
            "x (2, 6, 7, 2), w (2, 3, 2, 3): kernel not square",
            _normal(rng, 2, 6, 7, 2),
            _normal(rng, 2, 3, 2, 3),
            _normal(rng, 3),
            1,
            0,
        ),
    ]


def _random_conv_args(
    rng: np.random.Generator, max_side: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    n, c, f = (int(v) for v in rng.integers(1, [4, 4, 5]))
    h, w = (int(v) for v in rng.integers(3, max_side + 1, size=2))
    pad = int(rng.integers(0, 3))
    kh = int(rng.integers(1, min(5, h + 2 * pad) + 1))
    kw = int(rng.integers(1, min(5, w + 2 * pad) + 1))
    stride = int(rng.integers(1, 4))
    return (
        _normal(rng, n, h, w, c),
        _normal(rng, kh, kw, c, f),
        _normal(rng, f),
        stride,
        pad,
    )


def _conv_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(4):
        x, w, b, stride, pad = _random_conv_args(rng)
        name = f"x {x.shape}, w {w.shape}, stride {stride}, pad {pad}"
        cases.append(_conv_case(name, x, w, b, stride, pad))
    return cases


# --------------------------------------------------------------------------- conv2d_backward


def _backward_case(
    name: str, dout_rng: np.random.Generator, x: np.ndarray, w: np.ndarray, stride: int, pad: int
) -> Case:
    out_shape = ops.conv2d(x, w, stride=stride, padding=pad).shape
    dout = dout_rng.standard_normal(out_shape)
    dx, dw, db = ops.conv2d_backward(dout, x, w, b=np.zeros(w.shape[3]), stride=stride, padding=pad)
    return Case(name, (dout, x, w, stride, pad), expected=(dx, dw, db))


def _compare_grads(expected: tuple, got: object) -> str | None:
    """Name the gradient that is wrong (dx, dw or db) instead of "item 0"."""
    if not isinstance(got, tuple | list) or len(got) != 3:
        kind = type(got).__name__
        size = f" of {len(got)} items" if isinstance(got, tuple | list) else ""
        return f"expected a tuple (dx, dw, db), got a {kind}{size}"
    for label, e, g in zip(("dx", "dw", "db"), expected, got, strict=True):
        message = compare(e, g, rtol=1e-6, atol=1e-8)
        if message:
            return f"{label}: {message}"
    return None


def _backward_cases() -> list[Case]:
    rng = np.random.default_rng(20204)
    return [
        _backward_case(
            "x (1, 4, 4, 1), w (2, 2, 1, 1), stride 1, pad 0",
            rng,
            _normal(rng, 1, 4, 4, 1),
            _normal(rng, 2, 2, 1, 1),
            1,
            0,
        ),
        _backward_case(
            "x (2, 5, 5, 3), w (3, 3, 3, 2), stride 1, pad 1",
            rng,
            _normal(rng, 2, 5, 5, 3),
            _normal(rng, 3, 3, 3, 2),
            1,
            1,
        ),
        _backward_case(
            "x (1, 7, 6, 2), w (3, 2, 2, 3), stride 2, pad 1",
            rng,
            _normal(rng, 1, 7, 6, 2),
            _normal(rng, 3, 2, 2, 3),
            2,
            1,
        ),
    ]


def _backward_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(3):
        x, w, _, stride, pad = _random_conv_args(rng, max_side=7)
        cases.append(
            _backward_case(
                f"x {x.shape}, w {w.shape}, stride {stride}, pad {pad}", rng, x, w, stride, pad
            )
        )
    return cases


TASKS = [
    Task("ex02.zero_pad", 2, "pad a batch of images with zeros", _zero_pad_cases, _zero_pad_hidden),
    Task(
        "ex02.conv_output_size",
        2,
        "output length of a convolution",
        _size_cases,
        _size_hidden,
    ),
    Task(
        "ex02.conv_single_step",
        2,
        "one window times one kernel, plus bias",
        _step_cases,
        _step_hidden,
    ),
    Task("ex02.conv2d", 4, "forward pass of a convolution layer", _conv_cases, _conv_hidden),
    Task(
        "ex02.conv2d_backward",
        3,
        "challenge: backward pass of a convolution layer",
        _backward_cases,
        _backward_hidden,
        comparator=_compare_grads,
    ),
]
