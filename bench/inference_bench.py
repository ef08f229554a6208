"""Latency and throughput of one classifier served five ways: Keras, SavedModel and TFLite x3.

For one model this script builds :class:`cnncourse.inference.Predictor` objects for

- ``keras``: the Keras model itself, called eagerly as ``model(x, training=False)``;
- ``saved_model``: the SavedModel written by ``model.export()``, loaded with
  ``tf.saved_model.load`` (a traced TensorFlow graph);
- ``tflite_float32``, ``tflite_dynamic_range``, ``tflite_float16``: TensorFlow Lite
  conversions without quantization, with 8-bit weights (dynamic-range quantization) and with
  16-bit float weights,

and measures, through the same ``Predictor`` a server would use (input validation and
preprocessing included):

- **latency**: the 50th and 95th percentile time of ``predict_image`` on one ``uint8``
  image, over many calls after a warm-up;
- **throughput**: images per second of ``predict_proba`` on batches of several sizes.

Numbers depend on the machine and on whatever else runs on it; compare the rows of one run,
not runs on different machines. Chapter 9 imports the functions below (with ``runpy``) and
prints the same table.

Usage::

    python bench/inference_bench.py                     # trains a small MNIST CNN first
    python bench/inference_bench.py --model m.keras     # or times a saved .keras model
    python bench/inference_bench.py --latency-calls 500 --batch-sizes 1,8,64,512
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

QUANTIZATIONS = ("float32", "dynamic_range", "float16")
DEFAULT_BATCH_SIZES = (1, 32, 256)


def latency_ms(
    fn: Callable[[np.ndarray], object], image: np.ndarray, calls: int = 200, warmup: int = 10
) -> dict[str, float]:
    """Median (p50) and 95th-percentile (p95) wall time of ``fn(image)``, in milliseconds.

    ``warmup`` calls are made first and not timed (the first calls pay for graph tracing
    and memory allocation).
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
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    reps = -(-batch_size // len(images))
    pool = np.concatenate([images] * reps) if reps > 1 else images
    batch = pool[:batch_size]
    fn(batch)  # warm-up for this shape
    times: list[float] = []
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
    """Convert a SavedModel to a TFLite flat buffer.

    ``quantization``: ``"float32"`` (none), ``"dynamic_range"`` (weights stored as 8-bit
    integers, activations quantized on the fly where a kernel supports it) or
    ``"float16"`` (weights stored as 16-bit floats, computed in float32 on a CPU).
    """
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}.")
    converter = tf.lite.TFLiteConverter.from_saved_model(os.fspath(saved_model_dir))
    if quantization != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def make_predictors(model, class_names: Sequence[str], folder: str | os.PathLike) -> dict:
    """Export ``model`` (without its training-only layers) and build the five predictors.

    Returns ``{name: Predictor}``; the SavedModel and the ``.tflite`` files are written to
    ``folder``.
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


def benchmark(
    predictors: dict,
    images: np.ndarray,
    latency_calls: int = 200,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    min_seconds: float = 0.3,
) -> list[dict]:
    """One row per predictor: p50/p95 latency of one image and throughput per batch size."""
    rows = []
    for name, predictor in predictors.items():
        row = {"variant": name}
        row.update(latency_ms(predictor.predict_image, images[0], calls=latency_calls))
        for size in batch_sizes:
            row[f"img_per_s_b{size}"] = throughput(
                predictor.predict_proba, images, size, min_seconds=min_seconds
            )
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    """The rows as a fixed-width text table."""
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
    """CPU model and core count, for the caption of a timing table."""
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


def _quick_model(epochs: int):
    """A small MNIST CNN trained for a few epochs on up to 4,000 digits (about half a minute)."""
    import warnings

    import keras

    from cnncourse.datasets import load_mnist, prepare_images
    from cnncourse.models import compile_classifier, mnist_cnn

    keras.utils.set_random_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the offline-subset notice; the banner says it
        ds = load_mnist()
    model = compile_classifier(mnist_cnn())
    model.fit(prepare_images(ds.x_train[:4000]), ds.y_train[:4000], epochs=epochs,
              batch_size=64, verbose=0)
    return model, ds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a .keras model (default: train a small MNIST CNN)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the quick model")
    parser.add_argument("--latency-calls", type=int, default=200)
    parser.add_argument("--batch-sizes", default=",".join(map(str, DEFAULT_BATCH_SIZES)))
    args = parser.parse_args(argv)
    import keras

    from cnncourse.datasets import MNIST_CLASS_NAMES, data_source_banner, load_mnist

    if args.model:
        model = keras.saving.load_model(args.model)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = load_mnist()
    else:
        print(f"training a small MNIST CNN for {args.epochs} epochs ...", flush=True)
        model, ds = _quick_model(args.epochs)
    print(data_source_banner(ds))
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        predictors = make_predictors(model, MNIST_CLASS_NAMES, folder)
        rows = benchmark(predictors, ds.x_test, args.latency_calls, sizes)
    print(f"\nmachine: {machine_description()}")
    print(f"latency: predict_image on one uint8 28x28 image, {args.latency_calls} calls")
    print("throughput: predict_proba on batches of uint8 images\n")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
