"""Tests of cnncourse.tuning: the range test, the search space and the tuner bookkeeping."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import doctest
import math
import shutil
import warnings

import keras
import keras_tuner
import numpy as np
import pytest

from cnncourse import tuning


@pytest.fixture(autouse=True)
def _seeded():
    keras.utils.set_random_seed(0)


@pytest.fixture(autouse=True, scope="module")
def _release_keras_state_at_the_end():
    yield
    keras.backend.clear_session()


# --------------------------------------------------------------------------------------
# lr_schedule, smooth_losses, suggest_learning_rate
# --------------------------------------------------------------------------------------


def test_lr_schedule_multiplies_by_ten_per_step_over_five_decades_in_six_steps():
    np.testing.assert_allclose(tuning.lr_schedule(1e-5, 1.0, 6), 10.0 ** np.arange(-5, 1))


def test_lr_schedule_is_evenly_spaced_in_log_and_hits_both_ends():
    lrs = tuning.lr_schedule(3e-6, 0.7, 50)
    assert lrs[0] == pytest.approx(3e-6) and lrs[-1] == pytest.approx(0.7)
    ratios = lrs[1:] / lrs[:-1]
    np.testing.assert_allclose(ratios, ratios[0])


@pytest.mark.parametrize(
    "args, word",
    [((0.0, 1.0, 5), "min_lr"), ((1e-3, 1e-4, 5), "smaller"), ((1e-4, 1.0, 1), "num_steps"),
     ((1e-4, math.inf, 5), "max_lr"), ((1e-4, 1.0, 2.5), "num_steps")],
)
def test_lr_schedule_rejects_bad_arguments_naming_them(args, word):
    with pytest.raises(ValueError, match=word):
        tuning.lr_schedule(*args)


def test_smooth_losses_is_bias_corrected_and_identity_for_beta_zero():
    losses = np.array([2.0, 1.0, 4.0, 3.0])
    np.testing.assert_allclose(tuning.smooth_losses(losses, beta=0.0), losses)
    smoothed = tuning.smooth_losses(losses, beta=0.5)
    assert smoothed[0] == pytest.approx(2.0)  # no pull towards the zero start
    # Direct definition: weighted mean with weights beta^(t-i), normalised.
    t = 3
    weights = 0.5 ** np.arange(t, -1, -1) * 0.5
    assert smoothed[t] == pytest.approx(np.sum(weights * losses) / (1 - 0.5 ** (t + 1)))


def test_smooth_losses_of_a_constant_is_that_constant():
    np.testing.assert_allclose(tuning.smooth_losses(np.full(20, 1.7), beta=0.98), 1.7)


@pytest.mark.parametrize("beta", [1.0, -0.1, True])
def test_smooth_losses_rejects_beta_outside_zero_one(beta):
    with pytest.raises(ValueError, match="beta"):
        tuning.smooth_losses([1.0, 2.0], beta=beta)


def test_suggest_learning_rate_is_a_tenth_of_the_rate_at_the_minimum():
    lrs = tuning.lr_schedule(1e-5, 1.0, 51)
    # A valley in log(lr) with its minimum at 1e-2, then divergence.
    loss = (np.log10(lrs) + 2.0) ** 2 + 1.0
    loss[-5:] = np.inf
    assert tuning.suggest_learning_rate(lrs, loss) == pytest.approx(1e-3)
    assert tuning.suggest_learning_rate(lrs, loss, divisor=4.0) == pytest.approx(2.5e-3)


def test_suggest_learning_rate_rejects_mismatched_or_all_nan_curves():
    with pytest.raises(ValueError, match="same length"):
        tuning.suggest_learning_rate([1e-3, 1e-2], [1.0])
    with pytest.raises(ValueError, match="finite"):
        tuning.suggest_learning_rate([1e-3, 1e-2], [np.nan, np.inf])


# --------------------------------------------------------------------------------------
# LRRangeTest and lr_range_test
# --------------------------------------------------------------------------------------


def _linear_problem(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype("float32")
    y = (x @ rng.normal(size=5) > 0).astype("int32")
    return x, y


def _softmax_model(optimizer="sgd"):
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def test_range_test_records_each_batchs_own_loss_not_keras_running_mean():
    # With a learning rate of (almost) zero the weights do not move, so the loss of every
    # batch is what evaluate() gives on that batch; Keras' running mean would differ.
    x, y = _linear_problem(n=100)
    model = _softmax_model()
    batch = 16  # 100 = 6 * 16 + 4: the last batch is smaller
    callback = tuning.LRRangeTest(1e-12, 2e-12, 7, batch_size=batch, n_samples=len(x))
    model.fit(x, y, batch_size=batch, epochs=1, callbacks=[callback], verbose=0, shuffle=False)
    expected = [
        model.evaluate(x[i : i + batch], y[i : i + batch], verbose=0) for i in range(0, 100, batch)
    ]
    np.testing.assert_allclose(callback.losses, expected, rtol=1e-4)
    np.testing.assert_allclose(callback.lrs, tuning.lr_schedule(1e-12, 2e-12, 7))


def test_range_test_sets_the_optimizers_learning_rate_each_batch():
    x, y = _linear_problem(n=64)
    model = _softmax_model()
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

    callback = tuning.LRRangeTest(1e-4, 1e-1, 4, batch_size=16, n_samples=64)
    model.fit(x, y, batch_size=16, epochs=1, callbacks=[callback, Spy()], verbose=0)
    np.testing.assert_allclose(seen, tuning.lr_schedule(1e-4, 1e-1, 4), rtol=1e-6)


def test_range_test_stops_when_the_loss_diverges():
    x, y = _linear_problem(n=512)
    x = x * 50.0  # large inputs: a large learning rate makes SGD blow up quickly
    model = _softmax_model()
    result = tuning.lr_range_test(model, x, y, min_lr=1e-4, max_lr=1e4, batch_size=8,
                                  stop_factor=2.0)
    assert result.stopped_early
    assert len(result.lrs) < math.ceil(512 / 8)
    assert result.suggested_lr < result.lrs[-1]


def test_lr_range_test_returns_a_curve_and_a_suggestion_inside_the_range():
    x, y = _linear_problem(n=256)
    result = tuning.lr_range_test(_softmax_model(), x, y, min_lr=1e-5, max_lr=10.0, batch_size=8)
    assert len(result.lrs) == len(result.losses) == len(result.smoothed) <= 32
    assert 1e-6 <= result.suggested_lr <= 1.0
    assert result.smoothed.min() < result.smoothed[0]  # the loss did fall somewhere


def test_lr_range_test_validates_its_inputs():
    x, y = _linear_problem(n=32)
    uncompiled = keras.Sequential([keras.Input((5,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="compiled"):
        tuning.lr_range_test(uncompiled, x, y)
    with pytest.raises(ValueError, match="same length"):
        tuning.lr_range_test(_softmax_model(), x, y[:10])
    with pytest.raises(ValueError, match="at least 2 batches"):
        tuning.lr_range_test(_softmax_model(), x, y, batch_size=64)
    with pytest.raises(ValueError, match="keras.Model"):
        tuning.lr_range_test("model", x, y)


# --------------------------------------------------------------------------------------
# CNNHyperModel
# --------------------------------------------------------------------------------------


def _space(hypermodel):
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    hypermodel.build(hp)
    return hp


def test_cnn_hypermodel_declares_seven_hyperparameters_with_log_learning_rate():
    hp = _space(tuning.CNNHyperModel(lr_range=(2e-4, 2e-2)))
    config = {p.name: p.get_config() for p in hp.space}
    assert list(config) == [
        "batch_size", "conv_blocks", "filters", "kernel_size", "dense_units", "dropout",
        "learning_rate",
    ]
    assert config["learning_rate"]["sampling"] == "log"
    assert config["learning_rate"]["min_value"] == pytest.approx(2e-4)
    assert config["learning_rate"]["max_value"] == pytest.approx(2e-2)
    assert config["batch_size"]["values"] == [32, 64, 128]


@pytest.mark.parametrize(
    "values, params",
    [
        # 1 block, 16 filters 3x3 -> 14x14x16 -> Dense(32) -> 10:
        # (9*16+16) + (14*14*16*32+32) + (32*10+10)
        ({"conv_blocks": 1, "filters": 16, "kernel_size": 3, "dense_units": 32},
         160 + 100_384 + 330),
        # 2 blocks, 32 then 64 filters 5x5 -> 7x7x64 -> Dense(64) -> 10
        ({"conv_blocks": 2, "filters": 32, "kernel_size": 5, "dense_units": 64},
         (25 * 32 + 32) + (25 * 32 * 64 + 64) + (7 * 7 * 64 * 64 + 64) + (64 * 10 + 10)),
    ],
)
def test_cnn_hypermodel_builds_the_architecture_its_values_describe(values, params):
    hypermodel = tuning.CNNHyperModel()
    hp = keras_tuner.HyperParameters()
    hp.values.update({**values, "dropout": 0.25, "learning_rate": 3e-3})
    model = hypermodel.build(hp)
    assert model.count_params() == params
    assert model.output_shape == (None, 10)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(3e-3)
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [
        0.25
    ]


def test_cnn_hypermodel_fit_uses_the_trials_batch_size():
    hypermodel = tuning.CNNHyperModel(input_shape=(8, 8, 1), num_classes=3)
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    hp.values["batch_size"] = 32
    model = hypermodel.build(hp)
    x = np.zeros((96, 8, 8, 1), dtype="float32")
    y = np.zeros(96, dtype="int32")
    steps = []

    class Count(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            steps.append(batch)

    hypermodel.fit(hp, model, x, y, epochs=1, verbose=0, callbacks=[Count()])
    assert len(steps) == 3  # 96 images in batches of 32


@pytest.mark.parametrize(
    "kwargs, word",
    [({"input_shape": (28, 28)}, "input_shape"), ({"num_classes": 1}, "num_classes"),
     ({"lr_range": (1e-2, 1e-4)}, "increasing"), ({"lr_range": (0.0, 1e-2)}, "lr_range"),
     ({"batch_sizes": ()}, "batch_sizes")],
)
def test_cnn_hypermodel_rejects_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        tuning.CNNHyperModel(**kwargs)


# --------------------------------------------------------------------------------------
# fresh_tuner_dir and trials_table (with a real, tiny search)
# --------------------------------------------------------------------------------------


def test_fresh_tuner_dir_gives_a_new_empty_directory_each_call(tmp_path):
    a = tuning.fresh_tuner_dir(parent=tmp_path)
    b = tuning.fresh_tuner_dir(parent=tmp_path)
    assert a != b and a.is_dir() and b.is_dir()
    assert not any(a.iterdir()) and a.parent == tmp_path
    with pytest.raises(ValueError, match="prefix"):
        tuning.fresh_tuner_dir(prefix="a/b")
    with pytest.raises(ValueError, match="parent"):
        tuning.fresh_tuner_dir(parent=tmp_path / "missing")


def _tiny_builder(hp):
    model = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(hp.Choice("units", [2, 4, 8]), activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(hp.Float("lr", 1e-3, 1e-1, sampling="log")),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


@pytest.mark.slow
def test_a_tuner_in_a_fresh_directory_searches_while_a_reused_one_reloads_stale_trials():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    directory = tuning.fresh_tuner_dir()
    try:
        kwargs = dict(objective="val_accuracy", max_trials=2, seed=0, project_name="p")
        first = keras_tuner.RandomSearch(_tiny_builder, directory=directory, **kwargs)
        first.search(x, y, validation_split=0.25, epochs=1, verbose=0)
        table = tuning.trials_table(first, epochs=1)
        assert list(table.columns) == ["trial", "units", "lr", "epochs", "score", "status"]
        assert len(table) == 2 and (table["epochs"] == 1).all()
        assert table["score"].is_monotonic_decreasing
        assert set(table["status"]) == {"COMPLETED"}

        # The trap the chapter warns about: same directory and project, overwrite=False.
        again = keras_tuner.RandomSearch(_tiny_builder, directory=directory, **kwargs)
        again.search(x * 0, y, validation_split=0.25, epochs=1, verbose=0)  # other data!
        assert tuning.trials_table(again, epochs=1)["score"].tolist() == table["score"].tolist()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.slow
def test_trials_table_counts_only_the_epochs_a_hyperband_trial_added():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    directory = tuning.fresh_tuner_dir()
    try:
        tuner = keras_tuner.Hyperband(
            _tiny_builder, objective="val_accuracy", max_epochs=3, factor=3, seed=0,
            directory=directory, project_name="hb",
        )
        with warnings.catch_warnings():
            # A promoted trial reloads its weights without the optimizer state; Keras warns.
            warnings.simplefilter("ignore", UserWarning)
            tuner.search(x, y, validation_split=0.25, verbose=0)
        table = tuning.trials_table(tuner)
        values = {t.trial_id: t.hyperparameters.values for t in tuner.oracle.trials.values()}
        for _, row in table.iterrows():
            v = values[row["trial"]]
            assert row["epochs"] == v["tuner/epochs"] - v["tuner/initial_epoch"]
        assert "tuner/epochs" not in table.columns
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_trials_table_rejects_what_is_not_a_tuner():
    with pytest.raises(ValueError, match="tuner"):
        tuning.trials_table(object())


def test_doctests_pass():
    result = doctest.testmod(tuning, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
