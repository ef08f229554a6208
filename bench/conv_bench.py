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

The measuring code lives in :mod:`cnncourse.benchmarks` (chapter 2 imports it from
there); this script is its command-line front end.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import numpy as np

from cnncourse.benchmarks import CONV_SHAPES, format_conv_table, time_conv_implementations


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per measurement")
    parser.add_argument(
        "--naive-images", type=int, default=1, help="images the naive version runs on"
    )
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    rows = time_conv_implementations(
        CONV_SHAPES, repeats=args.repeats, naive_images=args.naive_images
    )
    print(
        f"float32, 3x3 kernels, stride 1, 'same' padding; best of {args.repeats} runs; "
        f"numpy {np.__version__}; {os.cpu_count()} CPU(s); 1-min load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    print(format_conv_table(rows))


if __name__ == "__main__":
    main()
