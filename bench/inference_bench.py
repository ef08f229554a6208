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
not runs on different machines. The measuring code lives in :mod:`cnncourse.benchmarks`
(chapter 9 imports it from there and prints the same table); this script is its
command-line front end.

Usage::

    python bench/inference_bench.py                     # trains a small MNIST CNN first
    python bench/inference_bench.py --model m.keras     # or times a saved .keras model
    python bench/inference_bench.py --latency-calls 500 --batch-sizes 1,8,64,512
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from cnncourse.benchmarks import (
    DEFAULT_BATCH_SIZES,
    benchmark_predictors,
    format_predictor_table,
    machine_description,
    make_predictors,
)


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
        rows = benchmark_predictors(predictors, ds.x_test, args.latency_calls, sizes)
    print(f"\nmachine: {machine_description()}")
    print(f"latency: predict_image on one uint8 28x28 image, {args.latency_calls} calls")
    print("throughput: predict_proba on batches of uint8 images\n")
    print(format_predictor_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
