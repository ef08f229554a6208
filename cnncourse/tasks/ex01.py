"""Tasks of exercise 1, "Why CNNs?" (chapter 1): counting parameters and shifting digits."""

from __future__ import annotations

import numpy as np

from cnncourse.exercise import Case, Exercise, Mistake, Task


def _dense_params(n_inputs: int, units: int) -> int:
    return n_inputs * units + units


def _conv_params(kernel_size: int, in_channels: int, filters: int) -> int:
    return kernel_size * kernel_size * in_channels * filters + filters


def _shift_images(x: np.ndarray, dx: int, dy: int) -> np.ndarray:
    out = np.zeros_like(x)
    h, w = x.shape[1:3]
    if abs(dx) >= w or abs(dy) >= h:
        return out
    src_rows = slice(max(0, -dy), h - max(0, dy))
    dst_rows = slice(max(0, dy), h - max(0, -dy))
    src_cols = slice(max(0, -dx), w - max(0, dx))
    dst_cols = slice(max(0, dx), w - max(0, -dx))
    out[:, dst_rows, dst_cols] = x[:, src_rows, src_cols]
    return out


def _dense_cases() -> list[Case]:
    return [
        Case("28x28 image flattened, 100 units", (28 * 28, 100), expected=78_500),
        Case("784 inputs, 10 units", (784, 10), expected=7_850),
        Case(
            "224x224x3 image flattened, 100 units",
            (224 * 224 * 3, 100),
            expected=_dense_params(224 * 224 * 3, 100),
        ),
    ]


def _dense_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(10):
        n, u = int(rng.integers(1, 5000)), int(rng.integers(1, 500))
        cases.append(Case(f"{n} inputs, {u} units", (n, u), expected=_dense_params(n, u)))
    return cases


def _conv_cases() -> list[Case]:
    return [
        Case("3x3 kernel, 1 channel, 32 filters", (3, 1, 32), expected=320),
        Case("3x3 kernel, 32 channels, 64 filters", (3, 32, 64), expected=18_496),
        Case("5x5 kernel, 3 channels, 6 filters", (5, 3, 6), expected=456),
    ]


def _conv_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(10):
        k, c, f = (int(rng.integers(1, 8)), int(rng.integers(1, 129)), int(rng.integers(1, 257)))
        tags = ("a kernel larger than 1x1",) if k > 1 else ("a 1x1 kernel",)
        cases.append(
            Case(
                f"{k}x{k} kernel, {c} channels, {f} filters",
                (k, c, f),
                expected=_conv_params(k, c, f),
                tags=(*tags, "several input channels" if c > 1 else "one input channel"),
            )
        )
    return cases


def _digit_like(rng: np.random.Generator, n: int = 2, side: int = 8) -> np.ndarray:
    return rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)


def _shift_cases() -> list[Case]:
    x = np.arange(1, 2 * 5 * 5 + 1, dtype=np.uint8).reshape(2, 5, 5)
    u8 = "uint8"
    return [
        Case("shift right by 1", (x, 1, 0), expected=_shift_images(x, 1, 0), dtype=u8),
        Case("shift up by 2", (x, 0, -2), expected=_shift_images(x, 0, -2), dtype=u8),
        Case(
            "shift left 2 and down 1 (no wrap-around)",
            (x, -2, 1),
            expected=_shift_images(x, -2, 1),
            dtype=u8,
        ),
        Case("no shift returns the same pixels", (x, 0, 0), expected=x.copy(), dtype=u8),
        Case(
            "shift by the full width leaves a blank image",
            (x, 5, 0),
            expected=np.zeros_like(x),
            dtype=u8,
        ),
        Case(
            "uint8 images stay uint8 (the task keeps the dtype)",
            (x[:1], 2, 1),
            expected=_shift_images(x[:1], 2, 1),
            dtype=u8,
        ),
    ]


def _shift_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for k in range(10):
        side = int(rng.integers(6, 29))
        x = _digit_like(rng, n=int(rng.integers(1, 4)), side=side)
        dx, dy = (int(v) for v in rng.integers(-side // 2, side // 2 + 1, size=2))
        if k % 3 == 0:
            x = x.astype(np.float32) / 255.0  # any dtype is kept
        tags = tuple(
            t
            for t, on in (
                ("a shift to the left", dx < 0),
                ("a shift to the right", dx > 0),
                ("a shift up", dy < 0),
                ("a shift down", dy > 0),
                (f"dtype {x.dtype}", True),
            )
            if on
        )
        cases.append(
            Case(
                f"{x.shape} images, dx={dx}, dy={dy}",
                (x, dx, dy),
                expected=_shift_images(x, dx, dy),
                tags=tags,
                dtype=str(x.dtype),
            )
        )
    return cases


def _rolled(x: np.ndarray, dx: int, dy: int) -> np.ndarray:
    return np.roll(x, (dy, dx), axis=(1, 2))


_DENSE_MISTAKES = (
    Mistake(
        "bias_missing",
        "you counted the weights but not the biases: a dense layer has one bias per unit",
        lambda n, u: n * u,
    ),
    Mistake(
        "bias_per_input",
        "you added one bias per input; a dense layer has one bias per unit (output)",
        lambda n, u: n * u + n,
    ),
)

_CONV_MISTAKES = (
    Mistake(
        "bias_missing",
        "you counted the kernel weights but not the biases: one bias per filter",
        lambda k, c, f: k * k * c * f,
    ),
    Mistake(
        "bias_per_input_channel",
        "you added one bias per input channel; a convolution has one bias per filter",
        lambda k, c, f: k * k * c * f + c,
    ),
    Mistake(
        "kernel_side_not_squared",
        "a k x k kernel has k * k weights per channel, not k",
        lambda k, c, f: k * c * f + f,
    ),
    Mistake(
        "channels_ignored",
        "each filter spans all input channels: k * k * C weights per filter",
        lambda k, c, f: k * k * f + f,
    ),
)

_SHIFT_MISTAKES = (
    Mistake(
        "wrap_around",
        "the pixels that leave one side come back on the other (np.roll wraps around); "
        "fill the vacated rows and columns with 0 instead",
        _rolled,
    ),
    Mistake(
        "dx_dy_swapped",
        "dx moves columns (axis 2, width) and dy moves rows (axis 1, height); yours are swapped",
        lambda x, dx, dy: _shift_images(x, dy, dx),
    ),
    Mistake(
        "direction_reversed",
        "positive dx moves the image right and positive dy moves it down; yours go the other way",
        lambda x, dx, dy: _shift_images(x, -dx, -dy),
    ),
)


_CHAPTER = "chapters/01_why_cnns.html"

TASKS = [
    Task(
        "ex01.dense_params",
        2,
        "parameters of a dense layer",
        _dense_cases,
        _dense_hidden,
        chapter=f"{_CHAPTER}#the-parameter-explosion",
        mistakes=_DENSE_MISTAKES,
        reference=_dense_params,
    ),
    Task(
        "ex01.conv_params",
        2,
        "parameters of a convolution layer",
        _conv_cases,
        _conv_hidden,
        chapter=f"{_CHAPTER}#two-ideas-that-fix-all-three-problems",
        mistakes=_CONV_MISTAKES,
        reference=_conv_params,
    ),
    Task(
        "ex01.shift_images",
        3,
        "shift a batch of images without wrap-around",
        _shift_cases,
        _shift_hidden,
        chapter=f"{_CHAPTER}#move-the-digit-a-few-pixels",
        mistakes=_SHIFT_MISTAKES,
        pure=True,
        reference=_shift_images,
    ),
]


EXERCISE = Exercise("ex01", tuple(TASKS))
