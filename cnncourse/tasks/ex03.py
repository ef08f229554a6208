"""Tasks of exercise 3, "Pooling and activations" (chapter 3).

Students write max and average pooling, global average pooling, ReLU and a numerically
stable softmax in NumPy. Every expected output comes from the reference implementations in
:mod:`cnncourse.ops`, which are themselves tested against TensorFlow.

The cases are chosen to catch the usual mistakes:

- pooling: overlapping windows (stride smaller than the pool), sizes that the stride does
  not divide (the last row/column is dropped with ``"valid"`` padding), all-negative
  feature maps (a running maximum started at 0 is wrong), several images and channels;
- softmax: logits around 1000 (``exp`` overflows without the max trick), rows of large
  negative numbers (``exp`` underflows to 0 and ``0 / 0`` is ``nan``), rows on very
  different scales (subtracting one global maximum instead of each row's own), and a 3-D
  input (the sum must run over the *last* axis).
"""

from __future__ import annotations

import numpy as np

from cnncourse import ops
from cnncourse.exercise import Case, Exercise, Mistake, Task


def _maps(rng: np.random.Generator, n: int, h: int, w: int, c: int) -> np.ndarray:
    return rng.normal(0.0, 1.0, size=(n, h, w, c))


def _ramp_4x4() -> np.ndarray:
    """The chapter's worked example: 1..16 in a 4x4 map, as a batch of one."""
    return np.arange(1.0, 17.0).reshape(1, 4, 4, 1)


# --------------------------------------------------------------------------- max pooling


def _max_pool_cases() -> list[Case]:
    rng = np.random.default_rng(3)
    x5 = np.arange(25.0).reshape(1, 5, 5, 1)
    batch = _maps(rng, 2, 6, 6, 3)
    negative = -np.abs(_maps(rng, 1, 4, 4, 2)) - 1.0
    return [
        Case(
            "chapter example 4x4, pool 2, stride 2",
            (_ramp_4x4(), 2, 2),
            expected=ops.max_pool2d(_ramp_4x4(), 2, 2),
        ),
        Case(
            "5x5 map, pool 2, stride 2 (the last row and column are dropped)",
            (x5, 2, 2),
            expected=ops.max_pool2d(x5, 2, 2),
        ),
        Case(
            "overlapping windows: 5x5 map, pool 3, stride 1",
            (x5, 3, 1),
            expected=ops.max_pool2d(x5, 3, 1),
        ),
        Case(
            "2 images, 3 channels, pool 2, stride 2 (each channel pooled separately)",
            (batch, 2, 2),
            expected=ops.max_pool2d(batch, 2, 2),
        ),
        Case(
            "all values negative (the maximum can be below 0)",
            (negative, 2, 2),
            expected=ops.max_pool2d(negative, 2, 2),
        ),
        Case(
            "stride larger than the pool: 6x6, pool 2, stride 3",
            (batch, 2, 3),
            expected=ops.max_pool2d(batch, 2, 3),
        ),
        Case(
            "max_pool2d(x, 3) without a stride: the stride defaults to the pool size",
            (batch, 3),
            expected=ops.max_pool2d(batch, 3, 3),
        ),
        Case(
            "max_pool2d(x) without arguments: pool 2, stride 2",
            (batch,),
            expected=ops.max_pool2d(batch, 2, 2),
        ),
    ]


def _pool_geometry(rng: np.random.Generator) -> tuple[np.ndarray, int, int]:
    pool = int(rng.integers(1, 5))
    stride = int(rng.integers(1, 5))
    h, w = (int(v) for v in rng.integers(pool, pool + 10, size=2))
    x = _maps(rng, int(rng.integers(1, 4)), h, w, int(rng.integers(1, 5))) * 10.0
    if rng.random() < 0.3:
        x = -np.abs(x) - 1.0
    return x, pool, stride


def _pool_tags(x: np.ndarray, pool: int, stride: int | None) -> tuple[str, ...]:
    s = pool if stride is None else stride
    found = [
        ("no stride given (the default)", stride is None),
        ("stride smaller than the pool (overlapping windows)", s < pool),
        ("stride larger than the pool", s > pool),
        ("a size the stride does not divide", (x.shape[1] - pool) % s != 0),
        ("all values negative", bool(np.all(x < 0))),
        ("several channels", x.shape[3] > 1),
        ("several images", x.shape[0] > 1),
    ]
    return tuple(t for t, on in found if on)


def _pool_hidden(rng: np.random.Generator, op) -> list[Case]:
    cases = []
    for k in range(12):
        x, pool, stride = _pool_geometry(rng)
        if k % 4 == 0:  # the documented default: stride = pool_size
            args, given = (x, pool), None
        else:
            args, given = (x, pool, stride), stride
        cases.append(
            Case(
                f"{x.shape} maps, pool {pool}, stride {given}",
                args,
                expected=op(x, pool, pool if given is None else given),
                tags=_pool_tags(x, pool, given),
            )
        )
    return cases


def _max_pool_hidden(rng: np.random.Generator) -> list[Case]:
    return _pool_hidden(rng, ops.max_pool2d)


# --------------------------------------------------------------------------- average pooling


def _avg_pool_cases() -> list[Case]:
    rng = np.random.default_rng(4)
    x5 = np.arange(25.0).reshape(1, 5, 5, 1)
    batch = _maps(rng, 2, 6, 6, 3)
    return [
        Case(
            "chapter example 4x4, pool 2, stride 2",
            (_ramp_4x4(), 2, 2),
            expected=ops.avg_pool2d(_ramp_4x4(), 2, 2),
        ),
        Case(
            "5x5 map, pool 2, stride 2 (the last row and column are dropped)",
            (x5, 2, 2),
            expected=ops.avg_pool2d(x5, 2, 2),
        ),
        Case(
            "overlapping windows: 5x5 map, pool 3, stride 1",
            (x5, 3, 1),
            expected=ops.avg_pool2d(x5, 3, 1),
        ),
        Case(
            "2 images, 3 channels, pool 3, stride 3",
            (batch, 3, 3),
            expected=ops.avg_pool2d(batch, 3, 3),
        ),
        Case(
            "avg_pool2d(x, 3) without a stride: the stride defaults to the pool size",
            (batch, 3),
            expected=ops.avg_pool2d(batch, 3, 3),
        ),
        Case(
            "avg_pool2d(x) without arguments: pool 2, stride 2",
            (batch,),
            expected=ops.avg_pool2d(batch, 2, 2),
        ),
    ]


def _avg_pool_hidden(rng: np.random.Generator) -> list[Case]:
    return _pool_hidden(rng, ops.avg_pool2d)


# --------------------------------------------------------------------------- global pooling


def _gap_cases() -> list[Case]:
    rng = np.random.default_rng(5)
    x = np.arange(8.0).reshape(1, 2, 2, 2)
    batch = _maps(rng, 3, 7, 7, 4)
    return [
        Case("one 2x2 image, 2 channels", (x,), expected=ops.global_average_pool(x)),
        Case(
            "3 images of 7x7 with 4 channels -> shape (3, 4)",
            (batch,),
            expected=ops.global_average_pool(batch),
        ),
        Case(
            "a single pixel: the map itself",
            (batch[:, :1, :1, :],),
            expected=ops.global_average_pool(batch[:, :1, :1, :]),
        ),
    ]


def _gap_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(10):
        n, h, w, c = (int(v) for v in rng.integers(1, 9, size=4))
        x = _maps(rng, n, h, w, c) * 5.0
        tags = [("maps that are not square", h != w), ("several images", n > 1)]
        cases.append(
            Case(
                f"{x.shape} maps",
                (x,),
                expected=ops.global_average_pool(x),
                tags=tuple(t for t, on in tags if on),
            )
        )
    return cases


# --------------------------------------------------------------------------- ReLU


def _relu_cases() -> list[Case]:
    rng = np.random.default_rng(6)
    v = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])
    maps = _maps(rng, 2, 3, 3, 2)
    negative = -np.abs(maps) - 0.1
    return [
        Case("a vector with negatives, zero and positives", (v,), expected=ops.relu(v)),
        Case("a batch of feature maps (N, H, W, C)", (maps,), expected=ops.relu(maps)),
        Case("all negative -> all zero", (negative,), expected=ops.relu(negative)),
        Case(
            "the input is left unchanged (a new array is returned)",
            (maps.copy(),),
            expected=ops.relu(maps),
        ),
    ]


def _relu_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(10):
        shape = tuple(int(v) for v in rng.integers(1, 6, size=int(rng.integers(1, 5))))
        x = rng.normal(0.0, 3.0, size=shape)
        cases.append(
            Case(
                f"array of shape {shape}",
                (x,),
                expected=ops.relu(x),
                tags=(f"{len(shape)}-D input",),
            )
        )
    return cases


# --------------------------------------------------------------------------- softmax


def _softmax_cases() -> list[Case]:
    small = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    large = np.array([[1000.0, 1001.0, 1002.0]])
    very_negative = np.array([[-1000.0, -1001.0, -1002.0], [-800.0, -800.0, -900.0]])
    mixed = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -999.0, -1001.0]])
    cube = np.arange(12.0).reshape(2, 2, 3) * 0.7 + np.array(
        [[[0.0], [500.0]], [[-500.0], [1000.0]]]
    )
    return [
        Case(
            "small logits; a row of equal logits gives equal probabilities",
            (small,),
            expected=ops.softmax(small),
        ),
        Case(
            "large logits [[1000, 1001, 1002]] (exp overflows without the max trick)",
            (large,),
            expected=ops.softmax(large),
        ),
        Case(
            "rows of large negative logits (exp underflows to 0 without the max trick)",
            (very_negative,),
            expected=ops.softmax(very_negative),
        ),
        Case(
            "rows on very different scales (subtract each row's own maximum)",
            (mixed,),
            expected=ops.softmax(mixed),
        ),
        Case(
            "3-D input (2, 2, 3): probabilities along the last axis",
            (cube,),
            expected=ops.softmax(cube),
        ),
    ]


def _softmax_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for scale in (1.0, 1.0, 5.0, 100.0, 100.0, 500.0, 2000.0, 2000.0):
        rows, classes = int(rng.integers(1, 6)), int(rng.integers(2, 11))
        offsets = rng.normal(0.0, 1000.0, size=(rows, 1))
        z = rng.normal(0.0, scale, size=(rows, classes)) + offsets
        cases.append(
            Case(
                f"{rows}x{classes} logits, spread {scale:g}, rows shifted by up to "
                f"{np.abs(offsets).max():.0f}",
                (z,),
                expected=ops.softmax(z),
                tags=("logits in the hundreds or thousands",)
                + (("several rows on different scales",) if rows > 1 else ()),
            )
        )
    for _ in range(3):
        z = rng.normal(0.0, 500.0, size=tuple(int(v) for v in rng.integers(2, 5, size=3)))
        cases.append(
            Case(f"{z.shape} logits", (z,), expected=ops.softmax(z), tags=("a 3-D input",))
        )
    return cases


def _softmax_no_shift(z):
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_axis(z, axis):
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _softmax_global_max(z):
    e = np.exp(z - np.max(z))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_whole(z):
    e = np.exp(z - np.max(z))
    return e / e.sum()


def _pool_with(op, *, stride=None, pool=None):
    def wrong(x, pool_size=2, given=None):
        s = pool_size if given is None else given
        return op(
            x,
            pool_size if pool is None else pool(pool_size),
            s if stride is None else stride(pool_size, given),
        )

    return wrong


def _pool_mistakes(op, name: str) -> tuple[Mistake, ...]:
    return (
        Mistake(
            "default_stride",
            f"{name}(x, k) without a stride must use stride = pool_size (the documented "
            "default); yours uses another stride when none is given",
            lambda x, pool_size=2, stride=None: op(x, pool_size, 1) if stride is None else np.nan,
        ),
        Mistake(
            "stride_ignored",
            "your windows move by one pixel whatever the stride: top = i * stride",
            _pool_with(op, stride=lambda p, s: 1),
        ),
        Mistake(
            "stride_is_pool",
            "your windows move by pool_size even when a stride is given: use the stride",
            _pool_with(op, stride=lambda p, s: p),
        ),
        Mistake(
            "off_by_one",
            "the number of windows is (h - pool_size) // stride + 1",
            lambda x, pool_size=2, stride=None: op(
                x, pool_size, pool_size if stride is None else stride
            )[:, :-1, :-1, :],
        ),
    )


_MAX_MISTAKES = (
    Mistake(
        "max_starts_at_zero",
        "your maximum never goes below 0: start from the window's own values "
        "(window.max(...)) or -inf, not from 0",
        lambda x, pool_size=2, stride=None: np.maximum(
            ops.max_pool2d(x, pool_size, pool_size if stride is None else stride), 0.0
        ),
    ),
    Mistake(
        "pooled_over_channels",
        "each channel is pooled on its own: take the maximum over axes (1, 2) only",
        lambda x, pool_size=2, stride=None: np.repeat(
            ops.max_pool2d(x, pool_size, pool_size if stride is None else stride).max(
                axis=3, keepdims=True
            ),
            x.shape[3],
            axis=3,
        ),
    ),
    *_pool_mistakes(ops.max_pool2d, "max_pool2d"),
)

_AVG_MISTAKES = _pool_mistakes(ops.avg_pool2d, "avg_pool2d")

_GAP_MISTAKES = (
    Mistake(
        "wrong_axis",
        "average over height and width, axes (1, 2), not over the batch or the channels",
        lambda x: x.mean(axis=(0, 1)),
    ),
    Mistake(
        "keepdims",
        "the result has shape (N, C): no keepdims=True",
        lambda x: x.mean(axis=(1, 2), keepdims=True),
    ),
)

_RELU_MISTAKES = (
    Mistake(
        "returns_mask",
        "you returned where x > 0 (a mask) instead of the values: np.maximum(x, 0)",
        lambda x: (x > 0).astype(x.dtype),
    ),
    Mistake(
        "abs_instead_of_relu",
        "negative values become 0, not their absolute value",
        lambda x: np.abs(x),
    ),
)

_SOFTMAX_MISTAKES = (
    Mistake(
        "wrong_axis",
        "the probabilities must sum to 1 along the last axis (axis=-1, keepdims=True), "
        "not along axis 0",
        lambda z: _softmax_axis(z, 0),
    ),
    Mistake(
        "normalised_whole_array",
        "you normalised the whole array at once; each row (last axis) is its own "
        "distribution: sum with axis=-1, keepdims=True",
        _softmax_whole,
    ),
    Mistake(
        "global_max_shift",
        "you subtracted one maximum for the whole array; subtract each row's own maximum "
        "(np.max(z, axis=-1, keepdims=True)), or rows far below it underflow to 0 / 0",
        _softmax_global_max,
    ),
    Mistake(
        "no_max_shift",
        "np.exp overflows (or underflows to 0 / 0) for large logits: subtract each row's "
        "maximum first, np.exp(z - np.max(z, axis=-1, keepdims=True))",
        _softmax_no_shift,
    ),
)


def _relu_reference(x):
    return np.maximum(x, 0.0)


_CHAPTER = "chapters/03_pooling_activations.html"

TASKS = [
    Task(
        "ex03.max_pool2d",
        3,
        "max pooling, valid padding",
        _max_pool_cases,
        _max_pool_hidden,
        chapter=f"{_CHAPTER}#pooling-one-number-per-window",
        mistakes=_MAX_MISTAKES,
        pure=True,
    ),
    Task(
        "ex03.avg_pool2d",
        2,
        "average pooling, valid padding",
        _avg_pool_cases,
        _avg_pool_hidden,
        chapter=f"{_CHAPTER}#pooling-one-number-per-window",
        mistakes=_AVG_MISTAKES,
        pure=True,
    ),
    Task(
        "ex03.global_average_pool",
        1,
        "global average pooling (N, H, W, C) -> (N, C)",
        _gap_cases,
        _gap_hidden,
        chapter=f"{_CHAPTER}#global-average-pooling",
        mistakes=_GAP_MISTAKES,
        pure=True,
    ),
    Task(
        "ex03.relu",
        1,
        "ReLU",
        _relu_cases,
        _relu_hidden,
        chapter=f"{_CHAPTER}#activation-functions-relu-sigmoid-and-softmax",
        mistakes=_RELU_MISTAKES,
        pure=True,
        reference=_relu_reference,
    ),
    Task(
        "ex03.softmax",
        3,
        "numerically stable softmax over the last axis",
        _softmax_cases,
        _softmax_hidden,
        chapter=f"{_CHAPTER}#why-softmax-subtracts-the-maximum",
        mistakes=_SOFTMAX_MISTAKES,
        pure=True,
    ),
]


EXERCISE = Exercise("ex03", tuple(TASKS))
