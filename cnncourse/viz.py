"""Figures the chapters share: image grids, training curves and prediction galleries.

Every function *returns* a :class:`matplotlib.figure.Figure` and never calls
``plt.show()``: a notebook can ``glue`` the figure into the book with a caption, save it
with ``fig.savefig``, or leave it as the last expression of a cell to see it. Each figure
is made with pyplot (so Jupyter's inline backend is loaded and knows how to draw it) and
then released from pyplot's list of open figures: Jupyter shows it once, as the cell's
result, and figures do not pile up in long scripts or test runs. Only the figures these
functions create are released; yours are left alone.

Defined in chapter 4 ("Your first CNN").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["plot_history", "show_images", "show_predictions"]

#: Colours of the prediction gallery: correct predictions and mistakes.
CORRECT_COLOR = "black"
WRONG_COLOR = "red"


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _as_image_batch(images: Any) -> np.ndarray:
    """Return images as (N, H, W) or (N, H, W, 3); raise ValueError on anything else."""
    x = np.asarray(images)
    if x.dtype == bool or x.dtype.kind not in "uif":
        raise ValueError(f"images must be a numeric array, got dtype {x.dtype}.")
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if not (x.ndim == 3 or (x.ndim == 4 and x.shape[-1] == 3)):
        hint = " (a single image? use images[np.newaxis])" if x.ndim == 2 else ""
        raise ValueError(
            "images must have shape (N, H, W), (N, H, W, 1) or (N, H, W, 3), "
            f"got shape {x.shape}{hint}."
        )
    if x.shape[0] == 0:
        raise ValueError("images must hold at least one image, got an empty batch.")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise ValueError("images must be finite, got NaN or infinite values.")
    return x


def _display_range(x: np.ndarray) -> tuple[float | None, float | None]:
    """vmin/vmax for grayscale imshow: 0..255 for integers, 0..1 for scaled floats."""
    if x.dtype.kind in "ui":
        return 0.0, 255.0
    if x.min() >= 0 and x.max() <= 1:
        return 0.0, 1.0
    return None, None  # unusual floats (e.g. standardised): let matplotlib autoscale


def _rgb_for_imshow(img: np.ndarray) -> np.ndarray:
    if img.dtype.kind in "ui":
        return np.clip(img, 0, 255).astype(np.uint8)
    lo, hi = float(img.min()), float(img.max())
    if lo >= 0 and hi <= 1:
        return img
    return (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)


def _check_labels(labels: Any, n: int, name: str) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{name} must be a 1-D array with one entry per image ({n}), got shape "
                         f"{y.shape}.")
    return y


def _check_class_names(class_names: Any, labels: np.ndarray | None, name: str) -> tuple | None:
    if class_names is None:
        return None
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise ValueError(f"class_names must be a sequence of str, got {class_names!r}.")
    names = tuple(str(c) for c in class_names)
    if labels is not None and labels.size:
        if labels.dtype.kind not in "ui" or labels.min() < 0 or labels.max() >= len(names):
            raise ValueError(
                f"{name} must be integer indices into class_names (0..{len(names) - 1}), "
                f"got values {labels.min()}..{labels.max()}."
            )
    return names


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}.")
    return int(value)


def _label_text(label: Any, class_names: tuple | None) -> str:
    return class_names[int(label)] if class_names is not None else str(label)


def _new_figure(figsize: tuple[float, float]) -> Figure:
    """A constrained-layout figure made by pyplot, then released from pyplot's registry.

    Creating it through pyplot loads the backend (in Jupyter, the inline backend that
    renders returned figures); ``plt.close`` only drops pyplot's reference, so the figure
    still draws, saves and displays, but is not shown a second time at the end of the cell.
    """
    fig = plt.figure(figsize=figsize, layout="constrained")
    plt.close(fig)
    return fig


def _grid(n: int, ncols: int, cell: float) -> tuple[Figure, list]:
    """A figure with n image axes on a grid of ncols columns (no empty axes left over)."""
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = _new_figure((cell * ncols, cell * nrows + 0.3))
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(n)]
    return fig, axes


def _draw(ax, img: np.ndarray, cmap: str, vmin: float | None, vmax: float | None) -> None:
    if img.ndim == 3:
        ax.imshow(_rgb_for_imshow(img))
    else:
        ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks([])
    ax.set_yticks([])


# --------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------


def show_images(
    images: Any,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    ncols: int = 8,
    cmap: str = "gray",
    title: str | None = None,
) -> Figure:
    """Show a batch of images on a grid, each titled with its label.

    Defined in chapter 4, where it shows the first MNIST digits.

    Parameters
    ----------
    images : array_like of shape (N, H, W), (N, H, W, 1) or (N, H, W, 3)
        ``uint8`` pixels (shown on the 0..255 scale) or floats (shown on 0..1 when they
        lie in [0, 1], autoscaled otherwise). Every image is drawn: slice the batch first.
    labels : array_like of shape (N,), optional
        One label per image, used as its title.
    class_names : sequence of str, optional
        Names of the classes; with it, integer ``labels`` are shown as names.
    ncols : int, default=8
        Number of columns of the grid (fewer if there are fewer images).
    cmap : str, default="gray"
        Colormap of single-channel images.
    title : str, optional
        Title of the whole figure.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per image, in order.

    Examples
    --------
    >>> fig = show_images(np.zeros((3, 28, 28), dtype=np.uint8), labels=[0, 1, 2])
    >>> len(fig.axes), fig.axes[1].get_title()
    (3, '1')
    """
    x = _as_image_batch(images)
    n = len(x)
    y = None if labels is None else _check_labels(labels, n, "labels")
    names = _check_class_names(class_names, y, "labels")
    ncols = _check_count(ncols, "ncols")
    vmin, vmax = _display_range(x)
    fig, axes = _grid(n, ncols, cell=1.2)
    for i, ax in enumerate(axes):
        _draw(ax, x[i], cmap, vmin, vmax)
        if y is not None:
            ax.set_title(_label_text(y[i], names), fontsize=9)
    if title is not None:
        fig.suptitle(str(title))
    return fig


def plot_history(
    history_or_dict: Any, metrics: Sequence[str] = ("loss", "accuracy")
) -> Figure:
    """Plot training and validation curves per epoch, one panel per metric.

    Defined in chapter 4, after the first ``model.fit``.

    Parameters
    ----------
    history_or_dict : keras.callbacks.History or dict
        What ``model.fit`` returned, or its ``.history`` dict (``{"loss": [...],
        "val_loss": [...], ...}``).
    metrics : sequence of str, default=("loss", "accuracy")
        The metrics to plot. Each must be in the history; its ``val_`` twin is drawn
        dashed in the same panel when present.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per metric, titled with the metric's name.

    Examples
    --------
    >>> fig = plot_history({"loss": [0.9, 0.5], "val_loss": [1.0, 0.7]}, metrics=["loss"])
    >>> [ax.get_title() for ax in fig.axes]
    ['loss']
    """
    history = getattr(history_or_dict, "history", history_or_dict)
    if not isinstance(history, Mapping):
        raise ValueError(
            "history_or_dict must be a keras History or its .history dict, got "
            f"{type(history_or_dict).__name__}."
        )
    if isinstance(metrics, str) or not isinstance(metrics, Sequence) or not metrics:
        raise ValueError(f"metrics must be a non-empty sequence of names, got {metrics!r}.")
    missing = [m for m in metrics if m not in history]
    if missing:
        raise ValueError(
            f"metrics {missing} are not in the history, which has {sorted(history)}."
        )
    fig = _new_figure((4.2 * len(metrics), 3.2))
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        train = np.asarray(history[metric], dtype=float)
        if train.ndim != 1 or train.size == 0:
            raise ValueError(f"history[{metric!r}] must be a non-empty list of numbers.")
        epochs = np.arange(1, len(train) + 1)
        ax.plot(epochs, train, marker=".", label="training")
        if f"val_{metric}" in history:
            val = np.asarray(history[f"val_{metric}"], dtype=float)
            ax.plot(np.arange(1, len(val) + 1), val, marker=".", linestyle="--",
                    label="validation")
        ax.set_title(metric)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def show_predictions(
    images: Any,
    y_true: Any,
    probs: Any,
    class_names: Sequence[str] | None = None,
    n: int = 16,
    ncols: int = 8,
) -> Figure:
    """Show images with the model's predicted class and confidence; mistakes in red.

    Each panel is titled ``"<predicted> (<confidence>%)"``, where the confidence is the
    largest predicted probability. A wrong prediction gets a red title that also names
    the true class, and a red frame around the image, so mistakes stand out at a glance.

    Defined in chapter 4.

    Parameters
    ----------
    images : array_like of shape (N, H, W), (N, H, W, 1) or (N, H, W, 3)
    y_true : array_like of int, shape (N,)
        True class indices.
    probs : array_like of shape (N, num_classes)
        Predicted class probabilities, e.g. ``model.predict(images)``.
    class_names : sequence of str, optional
        Names of the classes; index numbers are shown without it.
    n : int, default=16
        Show the first ``n`` images (all of them if there are fewer). Choose the batch
        beforehand to show, say, the mistakes.
    ncols : int, default=8
        Number of columns of the grid.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per image shown.

    Examples
    --------
    >>> probs = np.array([[0.9, 0.1], [0.8, 0.2]])
    >>> fig = show_predictions(np.zeros((2, 8, 8)), [0, 1], probs)
    >>> [ax.title.get_color() for ax in fig.axes]
    ['black', 'red']
    """
    x = _as_image_batch(images)
    total = len(x)
    y = _check_labels(y_true, total, "y_true")
    if y.dtype.kind not in "ui":
        raise ValueError(f"y_true must hold integer class indices, got dtype {y.dtype}.")
    p = np.asarray(probs, dtype=float)
    if p.ndim != 2 or p.shape[0] != total or p.shape[1] < 2:
        raise ValueError(
            f"probs must have shape (N, num_classes) with N = {total} images and at least two "
            f"classes, got shape {p.shape}."
        )
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError(
            "probs must be probabilities in [0, 1] (softmax outputs), got values in "
            f"{np.nanmin(p):g}..{np.nanmax(p):g}."
        )
    if y.size and (y.min() < 0 or y.max() >= p.shape[1]):
        raise ValueError(
            f"y_true must be class indices in 0..{p.shape[1] - 1} (one per column of probs), "
            f"got values {y.min()}..{y.max()}."
        )
    names = _check_class_names(class_names, y, "y_true")
    if names is not None and len(names) != p.shape[1]:
        raise ValueError(
            f"class_names must have one name per column of probs ({p.shape[1]}), got "
            f"{len(names)}."
        )
    n = min(_check_count(n, "n"), total)
    ncols = _check_count(ncols, "ncols")

    pred = p.argmax(axis=1)
    conf = p.max(axis=1)
    vmin, vmax = _display_range(x[:n])
    fig, axes = _grid(n, ncols, cell=1.35)
    for i, ax in enumerate(axes):
        _draw(ax, x[i], "gray", vmin, vmax)
        text = f"{_label_text(pred[i], names)} ({100 * conf[i]:.0f}%)"
        wrong = pred[i] != y[i]
        if wrong:
            text += f"\ntrue: {_label_text(y[i], names)}"
        ax.set_title(text, fontsize=8, color=WRONG_COLOR if wrong else CORRECT_COLOR)
        for spine in ax.spines.values():
            spine.set_visible(bool(wrong))
            spine.set_color(WRONG_COLOR)
            spine.set_linewidth(3)
    return fig

