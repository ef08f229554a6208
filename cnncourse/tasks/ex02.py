"""Tasks of exercise 2, "Convolution" (chapter 2): a convolution layer in NumPy.

The expected outputs come from the reference implementation :mod:`cnncourse.ops`, which is
itself tested against TensorFlow and SciPy. Inputs are float64 with a fixed seed (public
cases) or drawn from the grader's generator (hidden cases); kernels are asymmetric and, in
some cases, not square, so that a flipped kernel or swapped kernel axes cannot pass.
"""

from __future__ import annotations

import numpy as np

from cnncourse import ops
from cnncourse.exercise import Case, Exercise, Mistake, Task, compare


def _normal(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


# Self-contained references (the grader runs them in place of a wrong earlier answer when a
# later task calls it, so that one mistake costs points once).


def _zero_pad(x, pad):
    return np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="constant")


def _conv_output_size(n, k, stride, pad):
    return (n + 2 * pad - k) // stride + 1


def _conv_single_step(window, w, b):
    return float(np.sum(window * w) + b)


def _geometry_tags(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> tuple[str, ...]:
    """The properties of a convolution input that a hidden-case message may name."""
    found = [
        ("stride > 1", stride > 1),
        ("padding > 0", pad > 0),
        ("a kernel that is not square", w.shape[0] != w.shape[1]),
        ("an image that is not square", x.shape[1] != x.shape[2]),
        ("several input channels", w.shape[2] > 1),
        ("several filters", w.shape[3] > 1),
        ("several images", x.shape[0] > 1),
    ]
    return tuple(t for t, on in found if on)


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
    for _ in range(10):
        shape = (
            int(rng.integers(1, 4)),
            int(rng.integers(1, 8)),
            int(rng.integers(1, 8)),
            int(rng.integers(1, 5)),
        )
        pad = int(rng.integers(0, 4))
        case = _pad_case(f"x of shape {shape}, pad {pad}", _normal(rng, *shape), pad)
        tags = [("pad > 1", pad > 1), ("pad 0", pad == 0), ("several channels", shape[3] > 1)]
        cases.append(Case(**{**case.__dict__, "tags": tuple(t for t, on in tags if on)}))
    return cases


# --------------------------------------------------------------------------- conv_output_size


def _size_case(n: int, k: int, stride: int, pad: int) -> Case:
    tags = [
        ("stride > 1", stride > 1),
        ("padding > 0", pad > 0),
        ("a stride that does not divide n + 2*pad - k", (n + 2 * pad - k) % stride != 0),
    ]
    return Case(
        f"n={n}, k={k}, stride={stride}, pad={pad}",
        (n, k, stride, pad),
        expected=ops.conv_output_size(n, k, stride=stride, padding=pad),
        tags=tuple(t for t, on in tags if on),
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
    for _ in range(12):
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
    for _ in range(10):
        shape = (int(rng.integers(1, 6)), int(rng.integers(1, 6)), int(rng.integers(1, 5)))
        b = float(rng.standard_normal())
        case = _step_case(
            f"window {shape}, b={b:.3f}", _normal(rng, *shape), _normal(rng, *shape), b
        )
        tags = [
            ("a window that is not square", shape[0] != shape[1]),
            ("several channels", shape[2] > 1),
        ]
        cases.append(Case(**{**case.__dict__, "tags": tuple(t for t, on in tags if on)}))
    return cases


# --------------------------------------------------------------------------- conv2d


def _conv_case(
    name: str, x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int
) -> Case:
    expected = ops.conv2d(x, w, b, stride=stride, padding=pad)
    return Case(
        name, (x, w, b, stride, pad), expected=expected, tags=_geometry_tags(x, w, stride, pad)
    )


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
    for _ in range(10):
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
    return Case(
        name,
        (dout, x, w, stride, pad),
        expected=(dx, dw, db),
        tags=_geometry_tags(x, w, stride, pad),
    )


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
    for _ in range(10):
        x, w, _, stride, pad = _random_conv_args(rng, max_side=7)
        cases.append(
            _backward_case(
                f"x {x.shape}, w {w.shape}, stride {stride}, pad {pad}", rng, x, w, stride, pad
            )
        )
    return cases


def _pad_as(x, before_after):
    return np.pad(x, before_after, mode="constant")


_PAD_MISTAKES = (
    Mistake(
        "padded_all_axes",
        "np.pad(x, pad) pads every axis, the batch and the channels too; pad only height "
        "and width: ((0, 0), (pad, pad), (pad, pad), (0, 0))",
        lambda x, p: np.pad(x, p, mode="constant"),
    ),
    Mistake(
        "layout",
        "you padded axes 2 and 3 as if x were (N, C, H, W); the course's images are "
        "(N, H, W, C), so height and width are axes 1 and 2",
        lambda x, p: _pad_as(x, ((0, 0), (0, 0), (p, p), (p, p))),
    ),
    Mistake(
        "padding_twice",
        "you added 2 * pad zeros on each side; pad means pad zeros before and pad after",
        lambda x, p: _pad_as(x, ((0, 0), (2 * p, 2 * p), (2 * p, 2 * p), (0, 0))),
    ),
    Mistake(
        "padding_one_side",
        "you padded on one side only; pad zeros go before and after (top and bottom, "
        "left and right)",
        lambda x, p: _pad_as(x, ((0, 0), (0, 2 * p), (0, 2 * p), (0, 0))),
    ),
)

_SIZE_MISTAKES = (
    Mistake(
        "off_by_one",
        "the formula is (n + 2*pad - k) // stride + 1: the first window counts too (+ 1)",
        lambda n, k, s, p: (n + 2 * p - k) // s,
    ),
    Mistake(
        "true_division",
        "/ gives a float such as 3.5; sizes are whole numbers: use integer division //",
        lambda n, k, s, p: (n + 2 * p - k) / s + 1,
    ),
    Mistake(
        "padding_once",
        "the padding is added on both sides, so it counts twice: n + 2*pad",
        lambda n, k, s, p: (n + p - k) // s + 1,
    ),
    Mistake(
        "stride_ignored",
        "the stride divides the room the window can move: (n + 2*pad - k) // stride + 1",
        lambda n, k, s, p: n + 2 * p - k + 1,
    ),
    Mistake(
        "ceil_instead_of_floor",
        "a window that does not fit is dropped: round down (//), not up",
        lambda n, k, s, p: -(-(n + 2 * p - k) // s) + 1,
    ),
)

_STEP_MISTAKES = (
    Mistake("bias_missing", "add the bias b to the sum", lambda x, w, b: float(np.sum(x * w))),
    Mistake(
        "flipped_kernel",
        "you flipped the kernel (a true convolution); the course's convolution, like Keras', "
        "is a cross-correlation: multiply window[i, j] by w[i, j] without flipping",
        lambda x, w, b: float(np.sum(x * w[::-1, ::-1]) + b),
    ),
    Mistake(
        "dot_not_elementwise",
        "multiply element by element (window * w) and sum everything; not a matrix product",
        lambda x, w, b: float(np.sum(x @ w.T) + b) if x.ndim == 2 else np.nan,
    ),
)


def _conv_with(**change):
    def wrong(x, w, b, stride, pad):
        args = {"x": x, "w": w, "b": b, "stride": stride, "pad": pad}
        for key, fn in change.items():
            args[key] = fn(args)
        return ops.conv2d(
            args["x"], args["w"], args["b"], stride=args["stride"], padding=args["pad"]
        )

    return wrong


_CONV_MISTAKES = (
    Mistake(
        "flipped_kernel",
        "you flipped the kernel (a true convolution, as scipy.signal.convolve2d does); "
        "the course's conv2d, like Keras', is a cross-correlation: no flip",
        _conv_with(w=lambda a: a["w"][::-1, ::-1]),
    ),
    Mistake(
        "stride_ignored",
        "your output ignores the stride: move the window by `stride` pixels "
        "(top = i * stride) and size the output with conv_output_size",
        _conv_with(stride=lambda a: 1),
    ),
    Mistake(
        "padding_twice",
        "the input was padded twice (2 * pad on each side): pad once with zero_pad(x, pad)",
        _conv_with(pad=lambda a: 2 * a["pad"]),
    ),
    Mistake(
        "padding_twice",
        "the input was padded twice (2 * pad on each side): pad once with zero_pad(x, pad)",
        lambda x, w, b, stride, pad: ops.conv2d(x, w, b, stride=stride, padding=2 * pad)[
            :,
            : ops.conv_output_size(x.shape[1], w.shape[0], stride, pad),
            : ops.conv_output_size(x.shape[2], w.shape[1], stride, pad),
        ],
    ),
    Mistake(
        "padding_ignored",
        "your output ignores the padding: pad x with zero_pad(x, pad) first",
        _conv_with(pad=lambda a: 0),
    ),
    Mistake(
        "bias_missing",
        "the bias is missing: add b[f] to every output of filter f",
        _conv_with(b=lambda a: np.zeros_like(a["b"])),
    ),
    Mistake(
        "bias_per_input_channel",
        "the bias was added once per input channel; add b[f] once per output value, after "
        "summing over the channels",
        _conv_with(b=lambda a: a["b"] * a["x"].shape[3]),
    ),
    Mistake(
        "kernel_axes_swapped",
        "kernel height and width are swapped: w has shape (kh, kw, C, F)",
        _conv_with(w=lambda a: np.swapaxes(a["w"], 0, 1)),
    ),
)


_BACKWARD_MISTAKES = (
    Mistake(
        "padding_not_removed",
        "dx still has the padding: cut it off, dx_padded[:, pad:pad+H, pad:pad+W, :]",
        lambda dout, x, w, stride, pad: ops.conv2d_backward(
            dout, _zero_pad(x, pad), w, b=np.zeros(w.shape[3]), stride=stride, padding=0
        ),
    ),
)

_CHAPTER = "chapters/02_convolution.html"

TASKS = [
    Task(
        "ex02.zero_pad",
        2,
        "pad a batch of images with zeros",
        _zero_pad_cases,
        _zero_pad_hidden,
        chapter=f"{_CHAPTER}#padding-valid-and-same",
        mistakes=_PAD_MISTAKES,
        pure=True,
        reference=_zero_pad,
    ),
    Task(
        "ex02.conv_output_size",
        2,
        "output length of a convolution",
        _size_cases,
        _size_hidden,
        chapter=f"{_CHAPTER}#stride-and-the-output-size",
        mistakes=_SIZE_MISTAKES,
        reference=_conv_output_size,
    ),
    Task(
        "ex02.conv_single_step",
        2,
        "one window times one kernel, plus bias",
        _step_cases,
        _step_hidden,
        chapter=f"{_CHAPTER}#the-formula-and-a-calculation-by-hand",
        mistakes=_STEP_MISTAKES,
        pure=True,
        reference=_conv_single_step,
    ),
    Task(
        "ex02.conv2d",
        4,
        "forward pass of a convolution layer",
        _conv_cases,
        _conv_hidden,
        chapter=f"{_CHAPTER}#several-input-channels-and-several-filters",
        calls=("ex02.zero_pad", "ex02.conv_output_size", "ex02.conv_single_step"),
        mistakes=_CONV_MISTAKES,
        pure=True,
    ),
    Task(
        "ex02.conv2d_backward",
        3,
        "challenge: backward pass of a convolution layer",
        _backward_cases,
        _backward_hidden,
        comparator=_compare_grads,
        chapter=f"{_CHAPTER}#loops-versus-one-matrix-product",
        calls=("ex02.zero_pad",),
        mistakes=_BACKWARD_MISTAKES,
        pure=True,
    ),
]


EXERCISE = Exercise("ex02", tuple(TASKS))
