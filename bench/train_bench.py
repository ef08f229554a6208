"""Training benchmark: throughput and time-to-accuracy of the course's CNNs on 2 CPU cores.

Two tasks, trained the way chapter 4 trains (Adam from 2e-3 with cosine decay, batch 64):

- **MNIST**: ``models.mnist_cnn()`` on whatever ``load_mnist()`` returns (full MNIST online,
  the 4,000/1,000 offline subset otherwise; the table says which).
- **Fashion-MNIST**: ``models.fashion_cnn()``, the CNN of chapter 5b (or
  ``--fashion-model mnist_cnn`` / ``small_vgg``), on ``load_fashion_mnist()`` (the full
  60,000/10,000; offline from Debian's ``dataset-fashion-mnist``). Chapter 5b's target is
  92.5 % test accuracy within 240 s of training; its own recipe (batch 128, warm-up, a
  validation split) differs from this bench's, so compare trends, not the last digit.

For each task it reports

- *throughput*: training images per second, the median over the epochs after the first
  (the first epoch also traces and compiles the model, so it is the warm-up);
- *time to accuracy*: training seconds (evaluation excluded) until the test accuracy,
  measured after every epoch, first reaches the threshold (98 % on the MNIST subset, 99 %
  on full MNIST, 92.5 % on Fashion-MNIST), or "not reached" within the epoch cap;
- the final test accuracy after the last epoch.

It prints a table and asserts nothing. Timings depend on the machine and on whatever else
runs on it.

Usage::

    python bench/train_bench.py            # full run (several minutes on 2 cores)
    python bench/train_bench.py --quick    # fewer epochs, Fashion on 12,000 images
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads

import keras  # noqa: E402
import numpy as np  # noqa: E402

from cnncourse import datasets, models  # noqa: E402

BATCH_SIZE = 64
LEARNING_RATE = 2e-3


@dataclass
class Result:
    task: str
    data: str
    model: str
    params: int
    n_train: int
    epochs: int
    images_per_s: float
    threshold: float
    time_to_threshold: float | None
    epoch_of_threshold: int | None
    test_acc: float
    train_s: float


def run_task(
    task: str,
    ds: datasets.ImageDataset,
    build: Callable[[], keras.Model],
    *,
    threshold: float,
    max_epochs: int,
    n_train: int | None,
    seed: int,
) -> Result:
    """Train ``build()`` epoch by epoch, timing training and evaluating after each epoch."""
    x_train = datasets.prepare_images(ds.x_train[:n_train])
    y_train = ds.y_train[:n_train]
    x_test = datasets.prepare_images(ds.x_test)
    y_test = ds.y_test

    keras.utils.set_random_seed(seed)
    model = build()
    steps = int(np.ceil(len(x_train) / BATCH_SIZE))
    models.compile_classifier(model, LEARNING_RATE, decay_steps=max_epochs * steps)

    epoch_seconds: list[float] = []
    reached_at: float | None = None
    reached_epoch: int | None = None
    acc = float("nan")
    for epoch in range(max_epochs):
        start = time.perf_counter()
        model.fit(
            x_train,
            y_train,
            batch_size=BATCH_SIZE,
            initial_epoch=epoch,
            epochs=epoch + 1,
            verbose=0,
        )
        epoch_seconds.append(time.perf_counter() - start)
        acc = float(model.evaluate(x_test, y_test, batch_size=512, verbose=0)[1])
        print(
            f"  {task}: epoch {epoch + 1}/{max_epochs} {epoch_seconds[-1]:6.1f} s, "
            f"test accuracy {acc:.2%}",
            flush=True,
        )
        if reached_at is None and acc >= threshold:
            reached_at, reached_epoch = sum(epoch_seconds), epoch + 1

    after_warmup = epoch_seconds[1:] or epoch_seconds
    return Result(
        task=task,
        data=f"{ds.source} {len(x_train):,}/{len(x_test):,}",
        model=model.name,
        params=model.count_params(),
        n_train=len(x_train),
        epochs=max_epochs,
        images_per_s=len(x_train) / statistics.median(after_warmup),
        threshold=threshold,
        time_to_threshold=reached_at,
        epoch_of_threshold=reached_epoch,
        test_acc=acc,
        train_s=sum(epoch_seconds),
    )


def print_table(results: list[Result]) -> None:
    header = (
        f"{'task':<14}{'data (train/test)':<31}{'model':<11}{'params':>9}{'epochs':>7}"
        f"{'images/s':>10}{'time to target':>22}{'test acc':>10}{'train s':>9}"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in results:
        if r.time_to_threshold is None:
            reach = f"{r.threshold:.0%}: not reached"
        else:
            reach = f"{r.threshold:.0%}: {r.time_to_threshold:.0f} s (ep {r.epoch_of_threshold})"
        print(
            f"{r.task:<14}{r.data:<31}{r.model:<11}{r.params:>9,}{r.epochs:>7}"
            f"{r.images_per_s:>10,.0f}{reach:>22}{r.test_acc:>10.2%}{r.train_s:>9.0f}"
        )
    print(
        f"\nbatch {BATCH_SIZE}, Adam {LEARNING_RATE:g} with cosine decay, {os.cpu_count()} CPU "
        "cores. images/s: median training epoch after the first; time to target: training "
        "seconds only."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer epochs (MNIST 4, Fashion 3) and Fashion on its first 12,000 images",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--fashion-model",
        choices=("fashion_cnn", "mnist_cnn", "small_vgg"),
        default="fashion_cnn",
        help="model of the Fashion-MNIST task (default fashion_cnn, chapter 5b's)",
    )
    parser.add_argument(
        "--skip", choices=("mnist", "fashion"), action="append", default=[], help="skip a task"
    )
    args = parser.parse_args(argv)

    results = []
    if "mnist" not in args.skip:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", datasets.OfflineDataWarning)
            mnist = datasets.load_mnist()
        print(datasets.data_source_banner(mnist), flush=True)
        full = len(mnist.x_train) > 10_000
        results.append(
            run_task(
                "MNIST",
                mnist,
                models.mnist_cnn,
                threshold=0.99 if full else 0.98,
                max_epochs=(2 if full else 4) if args.quick else (6 if full else 16),
                n_train=None,
                seed=args.seed,
            )
        )
    if "fashion" not in args.skip:
        try:
            fashion = datasets.load_fashion_mnist()
        except datasets.DatasetUnavailableError as exc:
            print(f"Fashion-MNIST skipped: {exc}")
        else:
            print(datasets.data_source_banner(fashion), flush=True)
            builders: dict[str, Callable[[], keras.Model]] = {
                "fashion_cnn": models.fashion_cnn,
                "mnist_cnn": models.mnist_cnn,
                "small_vgg": lambda: models.small_vgg((28, 28, 1), 10),
            }
            build = builders[args.fashion_model]
            results.append(
                run_task(
                    "Fashion-MNIST",
                    fashion,
                    build,
                    threshold=0.925,
                    max_epochs=3 if args.quick else 8,
                    n_train=12_000 if args.quick else None,
                    seed=args.seed,
                )
            )
    if results:
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
