"""Tests of cnncourse.viz: every function returns a Figure with the right panels."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from cnncourse import viz

RED = to_rgba("red")


def _digits(n=6, shape=(28, 28), dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    return rng.random((n, *shape)).astype(dtype)


def _render(fig):
    """Draw the figure off-screen: catches errors that only appear when drawing."""
    fig.canvas.draw()


# --------------------------------------------------------------------------------------
# show_images
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "images",
    [
        _digits(),
        _digits()[..., np.newaxis],
        _digits(shape=(16, 16, 3)),
        _digits(dtype=np.float32),
        _digits(dtype=np.float64)[..., np.newaxis],
        _digits(shape=(16, 16, 3), dtype=np.float32),
    ],
    ids=["NHW-uint8", "NHW1-uint8", "NHW3-uint8", "NHW-float32", "NHW1-float64", "NHW3-float"],
)
def test_show_images_draws_one_axes_per_image(images):
    fig = viz.show_images(images, labels=np.arange(6), ncols=4)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes] == [str(i) for i in range(6)]
    _render(fig)


def test_show_images_uses_class_names_and_a_figure_title():
    names = ("zero", "one", "two")
    fig = viz.show_images(_digits(3), labels=[2, 0, 1], class_names=names, title="Some digits")
    assert [ax.get_title() for ax in fig.axes] == ["two", "zero", "one"]
    assert fig._suptitle.get_text() == "Some digits"


def test_show_images_shows_uint8_on_the_full_0_255_scale():
    dark = np.full((1, 4, 4), 10, dtype=np.uint8)
    image = viz.show_images(dark).axes[0].images[0]
    assert image.get_clim() == (0.0, 255.0)


def test_show_images_without_labels_has_no_titles():
    fig = viz.show_images(_digits(2))
    assert [ax.get_title() for ax in fig.axes] == ["", ""]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"images": np.zeros((28, 28))}, "images"),
        ({"images": np.zeros((2, 28, 28, 2))}, "images"),
        ({"images": np.zeros((0, 28, 28))}, "images"),
        ({"images": np.array([["a"]])}, "images"),
        ({"images": np.zeros((2, 4, 4)), "labels": [1, 2, 3]}, "labels"),
        ({"images": np.zeros((2, 4, 4)), "labels": [0, 5], "class_names": ("a", "b")}, "labels"),
        ({"images": np.zeros((2, 4, 4)), "ncols": 0}, "ncols"),
        ({"images": np.zeros((2, 4, 4)), "labels": [0, 1], "class_names": "ab"}, "class_names"),
    ],
)
def test_show_images_rejects_bad_input_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        viz.show_images(**kwargs)


# --------------------------------------------------------------------------------------
# plot_history
# --------------------------------------------------------------------------------------

HISTORY = {
    "loss": [1.0, 0.6, 0.4],
    "val_loss": [1.1, 0.7, 0.6],
    "accuracy": [0.6, 0.8, 0.9],
    "val_accuracy": [0.55, 0.75, 0.85],
}


def test_plot_history_draws_one_panel_per_metric_with_train_and_validation():
    fig = viz.plot_history(HISTORY)
    assert isinstance(fig, Figure)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    for ax in fig.axes:
        assert [line.get_label() for line in ax.get_lines()] == ["training", "validation"]
        np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [1, 2, 3])
    _render(fig)


def test_plot_history_accepts_a_history_object_and_a_missing_validation_curve():
    class FakeHistory:
        history = {"loss": [0.5, 0.3]}

    fig = viz.plot_history(FakeHistory(), metrics=["loss"])
    assert len(fig.axes) == 1
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["training"]


@pytest.mark.parametrize(
    ("arg", "metrics", "name"),
    [
        ([0.1, 0.2], ("loss",), "history_or_dict"),
        (HISTORY, ("auc",), "metrics"),
        (HISTORY, "loss", "metrics"),
        (HISTORY, (), "metrics"),
    ],
)
def test_plot_history_rejects_bad_input_naming_the_argument(arg, metrics, name):
    with pytest.raises(ValueError, match=name):
        viz.plot_history(arg, metrics=metrics)


# --------------------------------------------------------------------------------------
# show_predictions
# --------------------------------------------------------------------------------------


def _predictions():
    images = _digits(4, dtype=np.float32)
    y_true = np.array([0, 1, 2, 1])
    probs = np.array(
        [
            [0.90, 0.05, 0.05],  # right
            [0.10, 0.20, 0.70],  # wrong: says 2
            [0.00, 0.01, 0.99],  # right
            [0.60, 0.30, 0.10],  # wrong: says 0
        ]
    )
    return images, y_true, probs


def test_show_predictions_titles_prediction_and_confidence():
    images, y_true, probs = _predictions()
    fig = viz.show_predictions(images, y_true, probs, class_names=("a", "b", "c"))
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["a (90%)", "c (70%)\ntrue: b", "c (99%)", "a (60%)\ntrue: b"]
    _render(fig)


def test_show_predictions_highlights_exactly_the_wrong_ones_in_red():
    images, y_true, probs = _predictions()
    fig = viz.show_predictions(images, y_true, probs)
    wrong = [to_rgba(ax.title.get_color()) == RED for ax in fig.axes]
    framed = [
        all(s.get_visible() and to_rgba(s.get_edgecolor()) == RED for s in ax.spines.values())
        for ax in fig.axes
    ]
    assert wrong == [False, True, False, True]
    assert framed == wrong


def test_show_predictions_shows_at_most_n_images():
    images, y_true, probs = _predictions()
    assert len(viz.show_predictions(images, y_true, probs, n=2).axes) == 2
    assert len(viz.show_predictions(images, y_true, probs, n=50).axes) == 4


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"images": np.zeros((4, 3))}, "images"),
        ({"y_true": [0, 1]}, "y_true"),
        ({"y_true": [0.0, 1.0, 2.0, 1.0]}, "y_true"),
        ({"y_true": [0, 1, 2, 3]}, "y_true"),
        ({"probs": np.full((4,), 0.5)}, "probs"),
        ({"probs": np.full((3, 3), 0.3)}, "probs"),
        ({"probs": np.full((4, 3), 2.0)}, "probs"),
        ({"class_names": ("a", "b")}, "class_names"),
        ({"n": 0}, "n"),
        ({"ncols": -1}, "ncols"),
    ],
)
def test_show_predictions_rejects_bad_input_naming_the_argument(change, name):
    images, y_true, probs = _predictions()
    kwargs = {"images": images, "y_true": y_true, "probs": probs, **change}
    with pytest.raises(ValueError, match=name):
        viz.show_predictions(**kwargs)


# --------------------------------------------------------------------------------------
# Figure lifecycle
# --------------------------------------------------------------------------------------


def test_figures_are_released_from_pyplot_but_the_callers_figures_stay_open():
    import matplotlib.pyplot as plt

    mine = plt.figure()
    try:
        before = plt.get_fignums()
        images, y_true, probs = _predictions()
        figs = [
            viz.show_images(images),
            viz.plot_history(HISTORY),
            viz.show_predictions(images, y_true, probs),
        ]
        assert plt.get_fignums() == before  # nothing new left open, nothing of ours closed
        for fig in figs:
            _render(fig)  # released figures still draw (and so save and display)
    finally:
        plt.close(mine)
