"""Hyperparameter tuning: a learning-rate range test, a CNN search space, tuner bookkeeping.

Defined in chapter 8 ("Tuning"), which explains each helper where it first uses it:

- :func:`lr_schedule`, :func:`smooth_losses`, :class:`LRRangeTest`, :func:`lr_range_test`
  and :func:`suggest_learning_rate`: the learning-rate range test of Smith (2017). The
  learning rate grows exponentially from batch to batch while the loss is recorded; the
  loss-against-learning-rate curve shows where training is too slow, where it works and
  where it diverges.
- :class:`CNNHyperModel`: the chapter's search space as a :class:`keras_tuner.HyperModel`,
  including a *training* hyperparameter (the batch size), which a plain ``build(hp)``
  function cannot tune because it never sees ``fit``.
- :func:`fresh_tuner_dir`: a new, empty directory for every search. KerasTuner saves its
  trials in ``directory/project_name`` and, by default (``overwrite=False``), a tuner
  created on an existing project *reloads* the old trials; when their budget is used up,
  ``search()`` returns at once and the "results" are those of an earlier run, perhaps with
  other data or another search space. A directory per run rules that out.
- :func:`trials_table`: every trial of a tuner as a :class:`pandas.DataFrame` (one row per
  trial: its hyperparameters, the epochs it trained and its score).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import keras_tuner
import numpy as np
from keras import layers

__all__ = [
    "CNNHyperModel",
    "LRRangeResult",
    "LRRangeTest",
    "fresh_tuner_dir",
    "lr_range_test",
    "lr_schedule",
    "smooth_losses",
    "suggest_learning_rate",
    "trials_table",
]


def _check_lr(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ValueError(f"{name} must be a number > 0, got {value!r}.")
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return value


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}.")
    return int(value)


# --------------------------------------------------------------------------------------
# The learning-rate range test
# --------------------------------------------------------------------------------------


def lr_schedule(min_lr: float, max_lr: float, num_steps: int) -> np.ndarray:
    """Learning rates that grow by the same factor at every step, from ``min_lr`` to ``max_lr``.

    Step ``t`` of ``T = num_steps`` uses

    .. math:: \\eta_t = \\eta_{\\min} (\\eta_{\\max} / \\eta_{\\min})^{t / (T - 1)},

    so the rates are evenly spaced on a logarithmic axis: every decade gets the same number
    of steps. Defined in chapter 8.

    Parameters
    ----------
    min_lr, max_lr : float
        First and last learning rate, ``0 < min_lr < max_lr``.
    num_steps : int
        Number of rates, at least 2 (one per training batch in a range test).

    Returns
    -------
    numpy.ndarray
        ``num_steps`` float64 learning rates; the first is ``min_lr``, the last ``max_lr``.

    Examples
    --------
    One decade per step from 1e-5 to 1 (six steps):

    >>> lr_schedule(1e-5, 1.0, 6).round(8).tolist()
    [1e-05, 0.0001, 0.001, 0.01, 0.1, 1.0]
    """
    min_lr = _check_lr(min_lr, "min_lr")
    max_lr = _check_lr(max_lr, "max_lr")
    if not min_lr < max_lr:
        raise ValueError(f"min_lr must be smaller than max_lr, got {min_lr} and {max_lr}.")
    num_steps = _check_int(num_steps, "num_steps", 2)
    return min_lr * (max_lr / min_lr) ** (np.arange(num_steps) / (num_steps - 1))


def smooth_losses(losses: Sequence[float] | np.ndarray, beta: float = 0.9) -> np.ndarray:
    """Exponential moving average of a noisy loss curve, with bias correction.

    ``s_t = beta * s_(t-1) + (1 - beta) * loss_t`` starting from ``s_0 = 0``; dividing by
    ``1 - beta**t`` removes the pull towards that zero start, so the first value equals the
    first loss. A range test needs the smoothing because every point is the loss of *one*
    batch. Defined in chapter 8.

    Parameters
    ----------
    losses : sequence of float
        One loss per batch. Non-finite values (a diverged run) stay non-finite.
    beta : float, default=0.9
        Weight of the past, in [0, 1): 0 returns the losses unchanged; 0.9 averages over
        roughly the last ten batches.

    Returns
    -------
    numpy.ndarray
        The smoothed losses, same length.

    Examples
    --------
    >>> smooth_losses([1.0, 3.0], beta=0.5).round(4).tolist()
    [1.0, 2.3333]
    """
    values = np.asarray(losses, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"losses must be one-dimensional, got shape {values.shape}.")
    if isinstance(beta, bool) or not isinstance(beta, int | float) or not 0 <= beta < 1:
        raise ValueError(f"beta must be a number in [0, 1), got {beta!r}.")
    out = np.empty_like(values)
    average = 0.0
    for t, value in enumerate(values, start=1):
        average = beta * average + (1 - beta) * value
        out[t - 1] = average / (1 - beta**t)
    return out


def suggest_learning_rate(
    lrs: Sequence[float] | np.ndarray,
    smoothed_losses: Sequence[float] | np.ndarray,
    divisor: float = 10.0,
) -> float:
    """Read a learning rate off a range test: the rate at the loss minimum, divided by 10.

    At the minimum of the smoothed loss the learning rate is already close to where
    training becomes unstable (the loss turns up right after it); one tenth of it lies on
    the steep, descending part of the curve, where the loss falls fastest without
    diverging. This is the rule of the fastai library's ``lr_find`` ("minimum / 10"). It
    gives a starting point or the centre of a search range, not a final answer.
    Defined in chapter 8.

    Parameters
    ----------
    lrs : sequence of float
        The learning rates tried, increasing.
    smoothed_losses : sequence of float
        The (smoothed) loss at each rate, same length; non-finite entries are ignored.
    divisor : float, default=10.0
        How far below the minimum to go, > 0.

    Returns
    -------
    float
        The suggested learning rate.

    Examples
    --------
    >>> lrs = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    >>> round(suggest_learning_rate(lrs, [2.3, 2.0, 1.2, 0.9, 5.0]), 6)
    0.01
    """
    rates = np.asarray(lrs, dtype=float)
    loss = np.asarray(smoothed_losses, dtype=float)
    if rates.ndim != 1 or loss.shape != rates.shape or rates.size < 2:
        raise ValueError(
            "lrs and smoothed_losses must be 1-D sequences of the same length >= 2, got "
            f"shapes {rates.shape} and {loss.shape}."
        )
    if not np.all(rates > 0):
        raise ValueError("lrs must all be > 0.")
    divisor = _check_lr(divisor, "divisor")
    finite = np.isfinite(loss)
    if not finite.any():
        raise ValueError("smoothed_losses holds no finite value: the test diverged at once.")
    best = int(np.argmin(np.where(finite, loss, np.inf)))
    return float(rates[best] / divisor)


@dataclass(frozen=True)
class LRRangeResult:
    """What a learning-rate range test measured (see :func:`lr_range_test`).

    Attributes
    ----------
    lrs, losses, smoothed : numpy.ndarray
        The learning rate of every batch that ran, the loss of that batch and its
        smoothed value.
    suggested_lr : float
        :func:`suggest_learning_rate` of the smoothed curve.
    stopped_early : bool
        True when the loss blew up and the test stopped before the last scheduled rate.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggested_lr: float
    stopped_early: bool


class LRRangeTest(keras.callbacks.Callback):
    """Keras callback: raise the learning rate every batch and record the batch's loss.

    Before batch ``t`` it sets the optimizer's learning rate to ``lr_schedule(min_lr,
    max_lr, num_steps)[t]``; after it, it records that batch's loss. It stops training once
    the scheduled rates are used up, or when the smoothed loss exceeds ``stop_factor``
    times its minimum so far (the run has diverged; later points would only be noise).
    Defined in chapter 8.

    Why the callback reconstructs the loss: in Keras 3 the ``logs["loss"]`` passed to
    ``on_train_batch_end`` is the *running mean* over the epoch so far, not the loss of the
    batch that just ran. A range test plotted from it lags behind the learning rate and
    hides where the loss turns up. With ``m_k`` the mean after ``k`` batches of equal size,
    the loss of batch ``k`` is ``k * m_k - (k - 1) * m_(k-1)``; the callback uses that (the
    last, smaller batch of an epoch is weighted by its size, as Keras does).

    Parameters
    ----------
    min_lr, max_lr : float
        Range of the schedule.
    num_steps : int
        Batches in the test (usually ``epochs * ceil(n_samples / batch_size)``).
    batch_size : int
        The batch size of ``fit``, to weight a smaller last batch correctly.
    n_samples : int, optional
        Training samples per epoch; with ``batch_size`` it gives the size of the last batch.
    beta : float, default=0.9
        Smoothing of the loss (see :func:`smooth_losses`).
    stop_factor : float, default=4.0
        Stop when the smoothed loss exceeds this multiple of its minimum.

    Attributes
    ----------
    lrs, losses : list of float
        Filled during ``fit``: the rate and the loss of every batch that ran.
    """

    def __init__(
        self,
        min_lr: float,
        max_lr: float,
        num_steps: int,
        *,
        batch_size: int,
        n_samples: int | None = None,
        beta: float = 0.9,
        stop_factor: float = 4.0,
    ) -> None:
        super().__init__()
        self.schedule = lr_schedule(min_lr, max_lr, num_steps)
        self.batch_size = _check_int(batch_size, "batch_size", 1)
        self.n_samples = None if n_samples is None else _check_int(n_samples, "n_samples", 1)
        smooth_losses([], beta)  # validates beta
        self.beta = float(beta)
        self.stop_factor = _check_lr(stop_factor, "stop_factor")
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self._seen = 0  # samples in the current epoch so far
        self._mean = 0.0  # Keras' running mean loss over those samples
        self._average = 0.0
        self._best = math.inf
        self.stopped_early = False

    def _batch_size(self, batch: int) -> int:
        if self.n_samples is None:
            return self.batch_size
        return max(1, min(self.batch_size, self.n_samples - batch * self.batch_size))

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._seen, self._mean = 0, 0.0

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        step = len(self.lrs)
        if step >= len(self.schedule):
            self.model.stop_training = True
            return
        self.model.optimizer.learning_rate = float(self.schedule[step])

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        step = len(self.lrs)
        if step >= len(self.schedule):
            return
        mean = float((logs or {}).get("loss", math.nan))
        size = self._batch_size(batch)
        seen = self._seen + size
        loss = (seen * mean - self._seen * self._mean) / size  # this batch's own loss
        self._seen, self._mean = seen, mean
        self.lrs.append(float(self.schedule[step]))
        self.losses.append(loss)
        self._average = self.beta * self._average + (1 - self.beta) * loss
        smoothed = self._average / (1 - self.beta ** len(self.losses))
        if not math.isfinite(smoothed) or smoothed > self.stop_factor * self._best:
            self.stopped_early = True
            self.model.stop_training = True
            return
        self._best = min(self._best, smoothed)
        if len(self.lrs) >= len(self.schedule):
            self.model.stop_training = True


def lr_range_test(
    model: keras.Model,
    x: Any,
    y: Any,
    *,
    min_lr: float = 1e-6,
    max_lr: float = 1.0,
    batch_size: int = 64,
    epochs: int = 1,
    beta: float = 0.9,
    stop_factor: float = 4.0,
) -> LRRangeResult:
    """Run a learning-rate range test on a compiled ``model`` and suggest a learning rate.

    Trains for ``epochs`` epochs (default one) while the learning rate grows exponentially
    from ``min_lr`` to ``max_lr``, one step per batch (Smith 2017). The test *trains*
    ``model``: its weights and optimizer state change and its learning rate is left at
    the last rate tried, so use a throwaway model and build a fresh one for real training,
    as chapter 8 does. Defined in chapter 8.

    Parameters
    ----------
    model : keras.Model
        A compiled model (any optimizer whose ``learning_rate`` can be set).
    x, y : array-like
        Training inputs and labels (NumPy arrays), as for ``model.fit``.
    min_lr, max_lr : float
        The range; 1e-6 to 1 covers every rate that is sensible for Adam or SGD.
    batch_size, epochs : int
        As for ``fit``; the number of steps is ``epochs * ceil(len(x) / batch_size)``.
    beta, stop_factor : float
        Smoothing and divergence threshold (see :class:`LRRangeTest`).

    Returns
    -------
    LRRangeResult
        Rates, per-batch losses, smoothed losses and the suggested learning rate.

    Examples
    --------
    >>> import numpy as np, keras
    >>> x = np.random.default_rng(0).random((256, 4)).astype("float32")
    >>> y = (x.sum(axis=1) > 2).astype("int32")
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    >>> model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    >>> result = lr_range_test(model, x, y, min_lr=1e-4, max_lr=10.0, batch_size=16)
    >>> len(result.lrs), len(result.losses)  # 256 / 16 = 16 batches, one rate each
    (16, 16)
    >>> 1e-5 <= result.suggested_lr <= 1.0  # a tenth of a rate from the range
    True
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, got {type(model).__name__}.")
    if getattr(model, "optimizer", None) is None:
        raise ValueError("model must be compiled (it has no optimizer).")
    n_samples = len(x)
    if n_samples != len(y):
        raise ValueError(f"x and y must have the same length, got {n_samples} and {len(y)}.")
    batch_size = _check_int(batch_size, "batch_size", 1)
    epochs = _check_int(epochs, "epochs", 1)
    steps = epochs * math.ceil(n_samples / batch_size)
    if steps < 2:
        raise ValueError(f"the test needs at least 2 batches, got {steps}: lower batch_size.")
    callback = LRRangeTest(
        min_lr,
        max_lr,
        steps,
        batch_size=batch_size,
        n_samples=n_samples,
        beta=beta,
        stop_factor=stop_factor,
    )
    model.fit(x, y, batch_size=batch_size, epochs=epochs, callbacks=[callback], verbose=0)
    lrs = np.asarray(callback.lrs)
    losses = np.asarray(callback.losses)
    smoothed = smooth_losses(losses, beta)
    return LRRangeResult(
        lrs=lrs,
        losses=losses,
        smoothed=smoothed,
        suggested_lr=suggest_learning_rate(lrs, smoothed),
        stopped_early=callback.stopped_early,
    )


# --------------------------------------------------------------------------------------
# The search space
# --------------------------------------------------------------------------------------


class CNNHyperModel(keras_tuner.HyperModel):
    """The search space of chapter 8: a small CNN whose shape and training are tunable.

    ``build(hp)`` declares and uses

    ============== ========================================= ===============================
    name           declared as                               controls
    ============== ========================================= ===============================
    conv_blocks    ``hp.Int(1, 2)``                          depth: Conv -> MaxPool blocks
    filters        ``hp.Choice([16, 32])``                   width: filters of block 1
                                                             (doubled in block 2)
    kernel_size    ``hp.Choice([3, 5])``                     kernel size of every Conv2D
    dense_units    ``hp.Int(32, 128, step=32)``              width of the hidden Dense layer
    dropout        ``hp.Float(0, 0.5, step=0.25)``           dropout before the output layer
    learning_rate  ``hp.Float(*lr_range, sampling="log")``   Adam's learning rate
    ============== ========================================= ===============================

    and :meth:`declare_hyperparameters` adds ``batch_size`` (``hp.Choice(batch_sizes)``),
    which :meth:`fit` passes to ``model.fit``. A plain ``build(hp)`` function cannot tune
    the batch size because the tuner calls ``fit`` itself; subclassing ``HyperModel`` and
    overriding ``fit`` is KerasTuner's way. Declaring it up front (rather than in ``fit``)
    puts it in the search space from the first trial on. Convolutions use ``"same"``
    padding, ReLU and 2x2 max pooling; the model is compiled with Adam, sparse categorical
    cross-entropy and accuracy. Defined in chapter 8.

    Parameters
    ----------
    input_shape : tuple of int, default=(28, 28, 1)
        ``(height, width, channels)``, at least 4x4.
    num_classes : int, default=10
    lr_range : tuple of float, default=(1e-4, 1e-2)
        Bounds of the learning rate, sampled on a log scale.
    batch_sizes : tuple of int, default=(32, 64, 128)

    Examples
    --------
    >>> hypermodel = CNNHyperModel(lr_range=(1e-4, 1e-2))
    >>> hp = keras_tuner.HyperParameters()
    >>> hypermodel.declare_hyperparameters(hp)
    >>> model = hypermodel.build(hp)  # every hyperparameter at its default
    >>> sorted(hp.values)[:3], model.output_shape
    (['batch_size', 'conv_blocks', 'dense_units'], (None, 10))
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int] = (28, 28, 1),
        num_classes: int = 10,
        *,
        lr_range: tuple[float, float] = (1e-4, 1e-2),
        batch_sizes: tuple[int, ...] = (32, 64, 128),
        name: str | None = None,
    ) -> None:
        super().__init__(name=name)
        if (
            not isinstance(input_shape, Sequence)
            or len(input_shape) != 3
            or not all(isinstance(d, int) and not isinstance(d, bool) for d in input_shape)
            or min(input_shape[:2]) < 4
            or input_shape[2] < 1
        ):
            raise ValueError(
                "input_shape must be (height, width, channels) of ints, at least 4x4, got "
                f"{input_shape!r}."
            )
        self.input_shape = tuple(int(d) for d in input_shape)
        self.num_classes = _check_int(num_classes, "num_classes", 2)
        if not isinstance(lr_range, Sequence) or len(lr_range) != 2:
            raise ValueError(f"lr_range must be a pair (low, high), got {lr_range!r}.")
        low, high = _check_lr(lr_range[0], "lr_range[0]"), _check_lr(lr_range[1], "lr_range[1]")
        if not low < high:
            raise ValueError(f"lr_range must be increasing, got {lr_range!r}.")
        self.lr_range = (low, high)
        if not isinstance(batch_sizes, Sequence) or not batch_sizes:
            raise ValueError(f"batch_sizes must be a non-empty tuple, got {batch_sizes!r}.")
        self.batch_sizes = tuple(_check_int(b, "batch_sizes[i]", 1) for b in batch_sizes)

    def declare_hyperparameters(self, hp: keras_tuner.HyperParameters) -> None:
        """Declare the training hyperparameter ``batch_size`` (used by :meth:`fit`)."""
        hp.Choice("batch_size", list(self.batch_sizes))

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        """Build and compile the CNN for the values in ``hp`` (see the class docstring)."""
        conv_blocks = hp.Int("conv_blocks", 1, 2)
        filters = hp.Choice("filters", [16, 32])
        kernel_size = hp.Choice("kernel_size", [3, 5])
        dense_units = hp.Int("dense_units", 32, 128, step=32)
        dropout = hp.Float("dropout", 0.0, 0.5, step=0.25)
        learning_rate = hp.Float(
            "learning_rate", self.lr_range[0], self.lr_range[1], sampling="log"
        )
        stack: list = [keras.Input(shape=self.input_shape)]
        for block in range(conv_blocks):
            stack += [
                layers.Conv2D(filters * 2**block, kernel_size, padding="same",
                              activation="relu"),
                layers.MaxPooling2D(2),
            ]
        stack += [
            layers.Flatten(),
            layers.Dense(dense_units, activation="relu"),
            layers.Dropout(dropout),
            layers.Dense(self.num_classes, activation="softmax"),
        ]
        model = keras.Sequential(stack, name="tuned_cnn")
        model.compile(
            optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        return model

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args, **kwargs):
        """``model.fit`` with the trial's batch size (the tuner calls this for every trial)."""
        batch_size = hp.Choice("batch_size", list(self.batch_sizes))
        return model.fit(*args, batch_size=batch_size, **kwargs)


# --------------------------------------------------------------------------------------
# Tuner bookkeeping
# --------------------------------------------------------------------------------------


def fresh_tuner_dir(prefix: str = "cnncourse-tuner-", parent: str | Path | None = None) -> Path:
    """A new, empty directory for one tuner run, so no search reuses an earlier one's trials.

    KerasTuner keeps every trial in ``directory/project_name``. A tuner created on a
    project that already exists reloads it (unless ``overwrite=True``), and when the old
    trials already used up ``max_trials``, ``search()`` returns immediately: a re-run
    notebook would then report the results of an earlier run, maybe one with other data or
    another search space. Giving every run its own directory (``tempfile.mkdtemp``) makes
    that impossible; delete it with ``shutil.rmtree`` when done. Defined in chapter 8.

    Parameters
    ----------
    prefix : str, default="cnncourse-tuner-"
        Start of the directory's name.
    parent : str or Path, optional
        Where to create it; default: the system's temporary directory.

    Returns
    -------
    pathlib.Path
        The new directory (it exists and is empty).

    Examples
    --------
    >>> import shutil
    >>> a, b = fresh_tuner_dir(), fresh_tuner_dir()
    >>> a != b and not any(a.iterdir())
    True
    >>> shutil.rmtree(a); shutil.rmtree(b)
    """
    if not isinstance(prefix, str) or "/" in prefix or "\\" in prefix:
        raise ValueError(f"prefix must be a string without path separators, got {prefix!r}.")
    if parent is not None and not Path(parent).is_dir():
        raise ValueError(f"parent must be an existing directory, got {parent!r}.")
    return Path(tempfile.mkdtemp(prefix=prefix, dir=None if parent is None else str(parent)))


def trials_table(tuner: keras_tuner.Tuner, epochs: int | None = None):
    """Every trial of ``tuner`` as a DataFrame, best score first.

    Columns: ``trial`` (KerasTuner's id), one column per hyperparameter of the search space
    (in the order they were declared), ``epochs`` (epochs this trial trained), ``score``
    (the objective: the best value over the trial's epochs, e.g. the highest
    ``val_accuracy``) and ``status``. Hyperband's bookkeeping values (``tuner/epochs``,
    ``tuner/initial_epoch``, ...) are turned into the ``epochs`` column: a Hyperband trial
    that continues an earlier one trains ``tuner/epochs - tuner/initial_epoch`` epochs.
    Defined in chapter 8.

    Parameters
    ----------
    tuner : keras_tuner.Tuner
        A tuner after (or during) ``search``.
    epochs : int, optional
        Epochs per trial for tuners that do not record it (RandomSearch, BayesianOptimization:
        the ``epochs`` given to ``search``). Ignored for Hyperband.

    Returns
    -------
    pandas.DataFrame
        One row per trial, sorted by ``score`` (descending for a "max" objective), then
        by trial id.
    """
    import pandas as pd

    oracle = getattr(tuner, "oracle", None)
    if oracle is None or not hasattr(oracle, "trials"):
        raise ValueError(f"tuner must be a keras_tuner tuner, got {type(tuner).__name__}.")
    if epochs is not None:
        epochs = _check_int(epochs, "epochs", 1)
    names = [hp.name for hp in oracle.hyperparameters.space if not hp.name.startswith("tuner/")]
    rows = []
    for trial_id, trial in oracle.trials.items():
        values = trial.hyperparameters.values
        row: dict[str, Any] = {"trial": trial_id}
        row.update({name: values.get(name) for name in names})
        if "tuner/epochs" in values:
            row["epochs"] = int(values["tuner/epochs"]) - int(values.get("tuner/initial_epoch", 0))
        else:
            row["epochs"] = epochs
        row["score"] = trial.score
        row["status"] = str(trial.status)
        rows.append(row)
    table = pd.DataFrame(rows, columns=["trial", *names, "epochs", "score", "status"])
    descending = getattr(oracle.objective, "direction", "max") == "max"
    table = table.sort_values(["score", "trial"], ascending=[not descending, True],
                              na_position="last", kind="stable")
    return table.reset_index(drop=True)
