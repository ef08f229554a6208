"""Timing helpers shared by the chapters and the ``bench/`` scripts.

Two chapters measure speed in front of the reader, and two scripts in ``bench/`` print the
same figures from a shell. The measuring code lives here, in the package, so a chapter
imports it like any other helper (it also works from an installed wheel, where there is no
``bench/`` folder), and the scripts are thin command-line wrappers around it:

- **Convolution** (chapter 2, ``bench/conv_bench.py``): :func:`time_conv_implementations`
  times :func:`cnncourse.ops.conv2d_naive`, :func:`cnncourse.ops.conv2d` and
  ``tf.nn.conv2d`` on the same float32 inputs; :func:`format_conv_table` prints the result
  and :func:`conv_targets_met` says whether the performance goals hold.
- **Serving** (chapter 9, ``bench/inference_bench.py``): :func:`make_predictors` exports a
  model five ways (Keras, SavedModel, three TensorFlow Lite conversions),
  :func:`benchmark_predictors` measures :func:`latency_ms` and :func:`throughput` through
  the same :class:`cnncourse.inference.Predictor` a server would use, and
  :func:`format_predictor_table` prints the rows.

Every time is a wall-clock time measured with :func:`time.perf_counter`. Numbers depend on
the machine and on whatever else runs on it: compare the rows of one run, not runs on
different machines. TensorFlow is imported only by the functions that need it.

Examples
--------
>>> best = best_time(lambda: sum(range(1000)), repeats=3, pause=0.0)
>>> 0.0 < best < 1.0
True
>>> stats = latency_ms(lambda image: image.sum(), np.zeros((4, 4)), calls=20, warmup=2)
>>> sorted(stats)
['calls', 'mean_ms', 'p50_ms', 'p95_ms']
>>> stats["p50_ms"] <= stats["p95_ms"]
True
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnncourse.ops import conv2d, conv2d_naive

__all__ = [
    "CONV_SHAPES",
    "CONV_TARGET_NAIVE_VS_VECTORIZED",
    "CONV_TARGET_VS_TF",
    "DEFAULT_BATCH_SIZES",
    "QUANTIZATIONS",
    "benchmark_predictors",
    "best_time",
    "conv_targets_met",
    "convert_tflite",
    "format_conv_table",
    "format_predictor_table",
    "latency_ms",
    "machine_description",
    "make_predictors",
    "throughput",
    "time_conv_implementations",
]

#: (N, H, W, C, F): a batch of N images H x W x C convolved with F 3x3 filters, "same".
CONV_SHAPES: list[tuple[int, int, int, int, int]] = [
    (64, 28, 28, 1, 32),
    (64, 14, 14, 32, 64),
    (16, 56, 56, 64, 128),
]
#: Goal: the vectorized convolution within this factor of ``tf.nn.conv2d`` on every shape.
CONV_TARGET_VS_TF = 1.5
#: Goal: the naive convolution at least this many times slower than the vectorized one.
CONV_TARGET_NAIVE_VS_VECTORIZED = 100.0
#: The TensorFlow Lite conversions :func:`convert_tflite` knows.
QUANTIZATIONS = ("float32", "dynamic_range", "float16")
#: Batch sizes of the throughput columns of :func:`benchmark_predictors`.
DEFAULT_BATCH_SIZES = (1, 32, 256)
_PAUSE_S = 0.2


def best_time(
    fn: Callable[[], Any], repeats: int, warmup: bool = True, pause: float = _PAUSE_S
) -> float:
    """Best wall-clock time of ``fn()`` in seconds over ``repeats`` runs.

    The best run is the one least disturbed by other programs. After timing, the function
    sleeps for ``pause`` seconds: NumPy's OpenBLAS and TensorFlow keep their worker threads
    spinning for a moment after a call, and timing one library right after the other makes
    them fight over the cores.

    Parameters
    ----------
    fn : callable
        Called without arguments.
    repeats : int
        Timed runs (at least one).
    warmup : bool, default=True
        Make one untimed call first (it pays for allocation and graph tracing).
    pause : float, default=0.2
        Seconds to sleep after timing.

    Returns
    -------
    float
        The shortest of the timed runs, in seconds.

    Examples
    --------
    >>> best_time(lambda: None, repeats=2, pause=0.0) < 0.1
    True
    """
    if warmup:
        fn()
    best = float("inf")
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    if pause > 0:
        time.sleep(pause)
    return best


def time_conv_implementations(
    shapes: Sequence[tuple[int, int, int, int, int]] = CONV_SHAPES,
    repeats: int = 5,
    kernel_size: int = 3,
    naive_images: int = 1,
    naive_repeats: int = 2,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Time naive, vectorized and TensorFlow convolutions on float32 inputs.

    The naive loop version is timed on ``naive_images`` images of each batch only (one run
    takes seconds) and its time is scaled to the whole batch; ``tf.nn.conv2d`` gets
    ready-made tensors, so the NumPy-to-tensor conversion is not timed.

    Parameters
    ----------
    shapes : sequence of (N, H, W, C, F), default=CONV_SHAPES
        Batch size, image height, width and channels, number of filters.
    repeats : int, default=5
        Runs per timing (after one warm-up) for the vectorized and TensorFlow versions.
    kernel_size : int, default=3
        Square kernels, stride 1, ``"same"`` padding.
    naive_images : int, default=1
        The naive version runs on this many images only; its time is scaled by
        ``N / naive_images`` to estimate the whole batch.
    naive_repeats : int, default=2
        Runs of the naive version (no warm-up).
    seed : int, default=0
        Seed of the random inputs.

    Returns
    -------
    list of dict
        One dict per shape with the keys ``shape``, ``naive_s`` (scaled to the batch),
        ``naive_images``, ``vectorized_s``, ``tf_s``, ``vectorized_over_tf``,
        ``naive_over_vectorized`` and ``max_abs_diff`` (vectorized vs TensorFlow).

    Examples
    --------
    >>> (row,) = time_conv_implementations([(2, 6, 6, 1, 2)], repeats=1, naive_repeats=1)
    >>> row["shape"], row["naive_images"], row["max_abs_diff"] < 1e-4
    ((2, 6, 6, 1, 2), 1, True)
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


def conv_targets_met(rows: Sequence[Mapping[str, Any]]) -> tuple[bool, bool]:
    """Whether the two convolution goals hold on every row.

    Parameters
    ----------
    rows : sequence of dict
        The result of :func:`time_conv_implementations`.

    Returns
    -------
    (bool, bool)
        Vectorized within :data:`CONV_TARGET_VS_TF` of TensorFlow; naive at least
        :data:`CONV_TARGET_NAIVE_VS_VECTORIZED` times slower than vectorized.

    Examples
    --------
    >>> conv_targets_met([{"vectorized_over_tf": 1.2, "naive_over_vectorized": 500.0}])
    (True, True)
    >>> conv_targets_met([{"vectorized_over_tf": 2.0, "naive_over_vectorized": 50.0}])
    (False, False)
    """
    return (
        all(r["vectorized_over_tf"] <= CONV_TARGET_VS_TF for r in rows),
        all(r["naive_over_vectorized"] >= CONV_TARGET_NAIVE_VS_VECTORIZED for r in rows),
    )


def format_conv_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Render the result of :func:`time_conv_implementations` as a text table.

    The last line says whether the goals of :func:`conv_targets_met` are met.

    Examples
    --------
    >>> row = {"shape": (1, 4, 4, 1, 1), "naive_s": 0.5, "naive_images": 1,
    ...        "vectorized_s": 0.001, "tf_s": 0.001, "vectorized_over_tf": 1.0,
    ...        "naive_over_vectorized": 500.0, "max_abs_diff": 0.0}
    >>> format_conv_table([row]).splitlines()[-1].startswith("Target MET")
    True
    """
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
    fast_enough, naive_slow = conv_targets_met(rows)
    verdict = "MET" if fast_enough and naive_slow else "NOT MET"
    lines.append(
        f"Target {verdict}: vectorized within {CONV_TARGET_VS_TF}x of tf.nn.conv2d on every "
        f"shape: {'yes' if fast_enough else 'no'}; naive >= "
        f"{CONV_TARGET_NAIVE_VS_VECTORIZED:.0f}x slower than vectorized: "
        f"{'yes' if naive_slow else 'no'}."
    )
    return "\n".join(lines)


def latency_ms(
    fn: Callable[[np.ndarray], object], image: np.ndarray, calls: int = 200, warmup: int = 10
) -> dict[str, float]:
    """Median (p50) and 95th-percentile (p95) wall time of ``fn(image)``, in milliseconds.

    Parameters
    ----------
    fn : callable
        Called as ``fn(image)``.
    image : ndarray
        The input of every call.
    calls : int, default=200
        Timed calls (at least one).
    warmup : int, default=10
        Untimed calls first (the first calls pay for graph tracing and memory allocation).

    Returns
    -------
    dict
        ``p50_ms``, ``p95_ms``, ``mean_ms`` and ``calls``.

    Raises
    ------
    ValueError
        When ``calls`` is smaller than one.

    Examples
    --------
    >>> latency_ms(lambda image: image, np.zeros(3), calls=5)["calls"]
    5
    >>> latency_ms(lambda image: image, np.zeros(3), calls=0)
    Traceback (most recent call last):
    ...
    ValueError: calls must be >= 1, got 0.
    """
    if calls < 1:
        raise ValueError(f"calls must be >= 1, got {calls}.")
    for _ in range(warmup):
        fn(image)
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        fn(image)
        times[i] = time.perf_counter() - start
    times *= 1000
    return {
        "p50_ms": float(np.percentile(times, 50)),
        "p95_ms": float(np.percentile(times, 95)),
        "mean_ms": float(times.mean()),
        "calls": calls,
    }


def throughput(
    fn: Callable[[np.ndarray], object],
    images: np.ndarray,
    batch_size: int,
    min_seconds: float = 0.3,
    max_batches: int = 200,
) -> float:
    """Images per second of ``fn(batch)`` on batches of ``batch_size`` images.

    Batches are cut from ``images`` (cycling if needed); one untimed call warms up this
    batch size, then batches run until ``min_seconds`` have passed (at least three batches,
    at most ``max_batches``). The result is ``batch_size`` divided by the *median* time of a
    batch, which is less disturbed by other programs on the machine than the mean.

    Parameters
    ----------
    fn : callable
        Called as ``fn(batch)`` with ``batch_size`` images.
    images : ndarray
        Images along the first axis.
    batch_size : int
        Images per call (at least one).
    min_seconds : float, default=0.3
        Keep timing batches for at least this long.
    max_batches : int, default=200
        Stop after this many batches even if ``min_seconds`` has not passed.

    Returns
    -------
    float
        Images per second.

    Raises
    ------
    ValueError
        When ``batch_size`` is smaller than one.

    Examples
    --------
    >>> throughput(lambda batch: batch.sum(), np.zeros((5, 2)), 8, min_seconds=0.0) > 0
    True
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    reps = -(-batch_size // len(images))
    pool = np.concatenate([images] * reps) if reps > 1 else images
    batch = pool[:batch_size]
    fn(batch)
    times = []
    start = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn(batch)
        times.append(time.perf_counter() - t0)
        if (time.perf_counter() - start >= min_seconds and len(times) >= 3) or (
            len(times) >= max_batches
        ):
            return batch_size / float(np.median(times))


def convert_tflite(saved_model_dir: str | os.PathLike, quantization: str = "float32") -> bytes:
    """Convert a SavedModel to a TensorFlow Lite flat buffer.

    Parameters
    ----------
    saved_model_dir : str or path
        A folder written by ``model.export()``.
    quantization : {"float32", "dynamic_range", "float16"}, default="float32"
        ``"float32"``: no quantization; ``"dynamic_range"``: weights stored as 8-bit
        integers, activations quantized on the fly where a kernel supports it;
        ``"float16"``: weights stored as 16-bit floats, computed in float32 on a CPU.

    Returns
    -------
    bytes
        The ``.tflite`` file's content.

    Raises
    ------
    ValueError
        When ``quantization`` is not one of :data:`QUANTIZATIONS`.

    Examples
    --------
    >>> convert_tflite("unused", "int4")
    Traceback (most recent call last):
    ...
    ValueError: quantization must be one of ('float32', 'dynamic_range', 'float16'), got 'int4'.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}.")
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(os.fspath(saved_model_dir))
    if quantization != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def make_predictors(
    model: Any, class_names: Sequence[str], folder: str | os.PathLike
) -> dict[str, Any]:
    """Export ``model`` (without its training-only layers) and build five predictors.

    Parameters
    ----------
    model : keras.Model
        A trained classifier (:func:`cnncourse.inference.inference_model` drops its
        augmentation and dropout layers first).
    class_names : sequence of str
        One name per output unit.
    folder : str or path
        Where the SavedModel and the three ``.tflite`` files are written.

    Returns
    -------
    dict
        ``{"keras", "saved_model", "tflite_float32", "tflite_dynamic_range",
        "tflite_float16"}`` mapped to :class:`cnncourse.inference.Predictor` objects.
    """
    from cnncourse.inference import Predictor, inference_model

    folder = Path(folder)
    serving = inference_model(model)
    saved = folder / "saved_model"
    serving.export(saved, verbose=False)
    predictors = {
        "keras": Predictor.from_keras(serving, class_names),
        "saved_model": Predictor.from_saved_model(saved, class_names),
    }
    for quantization in QUANTIZATIONS:
        path = folder / f"model_{quantization}.tflite"
        path.write_bytes(convert_tflite(saved, quantization))
        predictors[f"tflite_{quantization}"] = Predictor.from_tflite(
            path, class_names, name=path.stem
        )
    return predictors


def benchmark_predictors(
    predictors: Mapping[str, Any],
    images: np.ndarray,
    latency_calls: int = 200,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    min_seconds: float = 0.3,
) -> list[dict[str, Any]]:
    """One row per predictor: latency of one image and throughput per batch size.

    Parameters
    ----------
    predictors : mapping of str to Predictor
        For example the result of :func:`make_predictors`; each needs ``predict_image`` (one
        image) and ``predict_proba`` (a batch).
    images : ndarray
        Raw images; the first one is used for the latency.
    latency_calls : int, default=200
        Timed calls of :func:`latency_ms`.
    batch_sizes : sequence of int, default=DEFAULT_BATCH_SIZES
        One :func:`throughput` column ``img_per_s_b<size>`` per size.
    min_seconds : float, default=0.3
        Passed to :func:`throughput`.

    Returns
    -------
    list of dict
        ``variant`` (the predictor's key), the keys of :func:`latency_ms` and the
        throughput columns.
    """
    rows = []
    for name, predictor in predictors.items():
        row: dict[str, Any] = {"variant": name}
        row.update(latency_ms(predictor.predict_image, images[0], calls=latency_calls))
        for size in batch_sizes:
            row[f"img_per_s_b{size}"] = throughput(
                predictor.predict_proba, images, size, min_seconds=min_seconds
            )
        rows.append(row)
    return rows


def format_predictor_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows of :func:`benchmark_predictors` as a fixed-width text table.

    Examples
    --------
    >>> row = {"variant": "keras", "p50_ms": 1.0, "p95_ms": 2.0, "img_per_s_b1": 900.0}
    >>> print(format_predictor_table([row]))
    variant                  p50 ms   p95 ms     img/s @1
    -----------------------------------------------------
    keras                     1.000    2.000          900
    """
    if not rows:
        raise ValueError("format_predictor_table() needs at least one row")
    sizes = [k.removeprefix("img_per_s_b") for k in rows[0] if k.startswith("img_per_s_b")]
    head = f"{'variant':<22}{'p50 ms':>9}{'p95 ms':>9}" + "".join(
        f"{'img/s @' + s:>13}" for s in sizes
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['variant']:<22}{r['p50_ms']:>9.3f}{r['p95_ms']:>9.3f}"
            + "".join(f"{r['img_per_s_b' + s]:>13,.0f}" for s in sizes)
        )
    return "\n".join(lines)


def machine_description() -> str:
    """CPU model and core count, for the caption of a timing table.

    Examples
    --------
    >>> "logical cores" in machine_description()
    True
    """
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, {platform.system()}"
