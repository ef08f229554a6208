"""Tasks of exercise 1, "Why CNNs?" (chapter 1): counting parameters and shifting digits."""

from __future__ import annotations

import numpy as np

from cnncourse.checking import Case, Task


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
    for _ in range(3):
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
    for _ in range(3):
        k, c, f = (int(rng.integers(1, 8)), int(rng.integers(1, 129)), int(rng.integers(1, 257)))
        cases.append(
            Case(
                f"{k}x{k} kernel, {c} channels, {f} filters",
                (k, c, f),
                expected=_conv_params(k, c, f),
            )
        )
    return cases


def _digit_like(rng: np.random.Generator, n: int = 2, side: int = 8) -> np.ndarray:
    return rng.integers(0, 256, size=(n, side, side), dtype=np.uint8)


def _shift_cases() -> list[Case]:
    x = np.arange(1, 2 * 5 * 5 + 1, dtype=np.uint8).reshape(2, 5, 5)
    return [
        Case("shift right by 1", (x, 1, 0), expected=_shift_images(x, 1, 0)),
        Case("shift up by 2", (x, 0, -2), expected=_shift_images(x, 0, -2)),
        Case(
            "shift left 2 and down 1 (no wrap-around)", (x, -2, 1), expected=_shift_images(x, -2, 1)
        ),
        Case("no shift returns the same pixels", (x, 0, 0), expected=x.copy()),
        Case("shift by the full width leaves a blank image", (x, 5, 0), expected=np.zeros_like(x)),
    ]


def _shift_hidden(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(4):
        side = int(rng.integers(6, 29))
        x = _digit_like(rng, n=int(rng.integers(1, 4)), side=side)
        dx, dy = (int(v) for v in rng.integers(-side // 2, side // 2 + 1, size=2))
        cases.append(
            Case(
                f"{x.shape} images, dx={dx}, dy={dy}",
                (x, dx, dy),
                expected=_shift_images(x, dx, dy),
            )
        )
    return cases


TASKS = [
    Task("ex01.dense_params", 2, "parameters of a dense layer", _dense_cases, _dense_hidden),
    Task("ex01.conv_params", 2, "parameters of a convolution layer", _conv_cases, _conv_hidden),
    Task(
        "ex01.shift_images",
        3,
        "shift a batch of images without wrap-around",
        _shift_cases,
        _shift_hidden,
    ),
]
