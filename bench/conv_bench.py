"""Time the three 2-D convolutions of the book against each other.

Compares, in one process and on the same float32 inputs:

- ``cnncourse.ops.conv2d_naive`` -- the loop version (timed on a few images of the batch
  only, because it is very slow, then scaled to the whole batch);
- ``cnncourse.ops.conv2d`` -- the vectorized im2col + matrix-product version;
- ``tf.nn.conv2d`` -- TensorFlow's CPU kernel (oneDNN), given ready-made tensors, so the
  numpy-to-tensor conversion is not timed.

Each time is the best of ``repeats`` runs (``time.perf_counter``) after one warm-up run;
the best run is the one least disturbed by other processes. Each implementation is timed
in its own phase, followed by a short pause: NumPy's OpenBLAS and TensorFlow both keep
their worker threads spinning for a moment after each call, and interleaving the two makes
them fight over the cores. The 1-minute load average is printed too: on a busy machine
(load near or above the number of cores) the numbers mean little.

The targets: the vectorized version within 1.5x of TensorFlow on every shape, and the naive
one at least 100x slower than the vectorized one.

Usage::

    python bench/conv_bench.py --repeats 7

From a chapter notebook (``bench/`` is not a package, so load the file by path)::

    import runpy
    bench = runpy.run_path("../bench/conv_bench.py")  # path relative to the notebook
    rows = bench["run"](repeats=3)  # list of dicts, one per shape
    print(bench["format_table"](rows))

or time other shapes with ``bench["time_conv_implementations"](shapes, repeats=3)``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from cnncourse.ops import conv2d, conv2d_naive

#: (N, H, W, C, F): a batch of N images H x W x C convolved with F 3x3 filters, "same".
DEFAULT_SHAPES: list[tuple[int, int, int, int, int]] = [
    (64, 28, 28, 1, 32),
    (64, 14, 14, 32, 64),
    (16, 56, 56, 64, 128),
]
TARGET_VS_TF = 1.5
PAUSE_S = 0.2
TARGET_NAIVE_VS_VECTORIZED = 100.0


def best_time(fn: Callable[[], Any], repeats: int, warmup: bool = True) -> float:
    """Best wall-clock time of ``fn()`` in seconds over ``repeats`` runs."""
    if warmup:
        fn()
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    time.sleep(PAUSE_S)  # let this library's worker threads go idle before the next one
    return best


def time_conv_implementations(
    shapes: Sequence[tuple[int, int, int, int, int]] = DEFAULT_SHAPES,
    repeats: int = 5,
    kernel_size: int = 3,
    naive_images: int = 1,
    naive_repeats: int = 2,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Time naive, vectorized and TensorFlow convolutions on float32 inputs.

    Parameters
    ----------
    shapes : sequence of (N, H, W, C, F)
        Batch size, image height, width and channels, number of filters.
    repeats : int, default=5
        Runs per timing (after one warm-up) for the vectorized and TensorFlow versions.
    kernel_size : int, default=3
        Square kernels, stride 1, ``"same"`` padding.
    naive_images : int, default=1
        The naive version runs on this many images only; its time is scaled by
        ``N / naive_images`` to estimate the whole batch.
    naive_repeats : int, default=2
        Runs of the naive version (no warm-up: one run takes seconds).
    seed : int, default=0
        Seed of the random inputs.

    Returns
    -------
    list of dict
        One dict per shape with the keys ``shape``, ``naive_s`` (scaled to the batch),
        ``naive_images``, ``vectorized_s``, ``tf_s``, ``vectorized_over_tf``,
        ``naive_over_vectorized`` and ``max_abs_diff`` (vectorized vs TensorFlow).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    results = []
    for n, h, w, c, f in shapes:
        x = rng.standard_normal((n, h, w, c)).astype(np.float32)
        kernels = rng.standard_normal((kernel_size, kernel_size, c, f)).astype(np.float32)
        x_tf, kernels_tf = tf.constant(x), tf.constant(kernels)
        k = min(naive_images, n)

        naive_s = best_time(
            lambda x=x, kernels=kernels, k=k: conv2d_naive(x[:k], kernels, padding="same"),
            naive_repeats,
            warmup=False,
        ) * (n / k)
        vectorized_s = best_time(
            lambda x=x, kernels=kernels: conv2d(x, kernels, padding="same"), repeats
        )
        tf_s = best_time(
            lambda x_tf=x_tf, kernels_tf=kernels_tf: tf.nn.conv2d(
                x_tf, kernels_tf, strides=1, padding="SAME"
            ).numpy(),
            repeats,
        )
        diff = np.abs(
            conv2d(x, kernels, padding="same")
            - tf.nn.conv2d(x_tf, kernels_tf, strides=1, padding="SAME").numpy()
        ).max()
        results.append(
            {
                "shape": (n, h, w, c, f),
                "naive_s": naive_s,
                "naive_images": k,
                "vectorized_s": vectorized_s,
                "tf_s": tf_s,
                "vectorized_over_tf": vectorized_s / tf_s,
                "naive_over_vectorized": naive_s / vectorized_s,
                "max_abs_diff": float(diff),
            }
        )
    return results


def run(repeats: int = 5) -> list[dict[str, Any]]:
    """Time the three implementations on :data:`DEFAULT_SHAPES` (see the module docstring)."""
    return time_conv_implementations(DEFAULT_SHAPES, repeats=repeats)


def targets_met(rows: Sequence[dict[str, Any]]) -> tuple[bool, bool]:
    """Whether (vectorized within 1.5x of TF, naive >= 100x vectorized) holds on every row."""
    return (
        all(r["vectorized_over_tf"] <= TARGET_VS_TF for r in rows),
        all(r["naive_over_vectorized"] >= TARGET_NAIVE_VS_VECTORIZED for r in rows),
    )


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Render the results of :func:`time_conv_implementations` as a text table."""
    header = (
        f"{'N x H x W x C -> F':<22}{'naive s*':>10}{'vectorized s':>14}{'tf s':>10}"
        f"{'vec/tf':>9}{'naive/vec':>11}{'max|vec-tf|':>13}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        n, h, w, c, f = r["shape"]
        lines.append(
            f"{f'{n}x{h}x{w}x{c} -> {f}':<22}{r['naive_s']:>10.3f}{r['vectorized_s']:>14.5f}"
            f"{r['tf_s']:>10.5f}{r['vectorized_over_tf']:>9.2f}{r['naive_over_vectorized']:>11.0f}"
            f"{r['max_abs_diff']:>13.1e}"
        )
    images = sorted({r["naive_images"] for r in rows})
    lines.append(
        f"* naive timed on {', '.join(map(str, images))} image(s) of each batch and scaled "
        "to the whole batch."
    )
    fast_enough, naive_slow = targets_met(rows)
    verdict = "MET" if fast_enough and naive_slow else "NOT MET"
    lines.append(
        f"Target {verdict}: vectorized within {TARGET_VS_TF}x of tf.nn.conv2d on every shape: "
        f"{'yes' if fast_enough else 'no'}; naive >= {TARGET_NAIVE_VS_VECTORIZED:.0f}x slower "
        f"than vectorized: {'yes' if naive_slow else 'no'}."
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement")
    parser.add_argument(
        "--naive-images", type=int, default=1, help="images the naive version runs on"
    )
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    rows = time_conv_implementations(
        DEFAULT_SHAPES, repeats=args.repeats, naive_images=args.naive_images
    )
    print(
        f"float32, 3x3 kernels, stride 1, 'same' padding; best of {args.repeats} runs; "
        f"numpy {np.__version__}; {os.cpu_count()} CPU(s); 1-min load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    print(format_table(rows))


if __name__ == "__main__":
    main()
