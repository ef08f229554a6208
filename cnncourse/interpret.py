"""Looking inside a trained CNN: intermediate activations, Grad-CAM and error analysis.

Chapter 7 ("What did the network learn?") introduces every function here:

- :func:`activation_model` turns a trained model into one that returns the feature maps of
  chosen layers (it works for ``Sequential`` models under Keras 3, where ``model.input``
  often does not exist);
- :func:`grad_cam` computes Grad-CAM heatmaps (Selvaraju et al., 2017) for ``Sequential``
  and functional models; :func:`grad_cam_from_arrays` is its arithmetic on plain arrays,
  :func:`overlay_heatmap` draws a heatmap over its image, and :func:`heatmap_mass_in_mask`
  measures how much of a heatmap lies where it should;
- :func:`input_gradients` and :func:`randomized_copy` serve the saliency sanity checks of
  Adebayo et al. (2018);
- :func:`precision_recall` and :func:`most_confused_pairs` read a confusion matrix.

Keras and TensorFlow are imported only by the functions that need a model, so the NumPy
functions (used by the exercise checks) load quickly. Gradients are taken with
``tf.GradientTape``: the model functions need Keras' TensorFlow backend, the course's
default.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - only for type checkers
    import keras
    import pandas as pd

__all__ = [
    "activation_model",
    "grad_cam",
    "grad_cam_from_arrays",
    "heatmap_mass_in_mask",
    "input_gradients",
    "last_conv_layer_name",
    "most_confused_pairs",
    "overlay_heatmap",
    "precision_recall",
    "randomized_copy",
    "upsample_heatmaps",
]

#: Layers that may follow the last convolution inside the same feature map (so Grad-CAM
#: can use the rectified map, as the paper does, instead of the raw convolution output).
_FOLLOWERS = ("BatchNormalization", "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU")


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _numeric_array(value: Any, name: str) -> np.ndarray:
    x = np.asarray(value)
    if x.dtype == bool or x.dtype.kind not in "uif":
        raise ValueError(f"{name} must be a numeric array, got dtype {x.dtype}.")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite, got NaN or infinite values.")
    return x


def _check_model(model: Any) -> keras.Model:
    import keras

    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, got {type(model).__name__}.")
    if not model.built:
        raise ValueError(
            f"model {model.name!r} was never built, so its layers have no outputs yet. Start a "
            "Sequential model with keras.Input(shape=...), or call it once on a batch "
            "(model(x[:1])) or model.build((None, height, width, channels)) first."
        )
    return model


def _check_layer_names(model: keras.Model, layer_names: Any) -> list[str]:
    names = [layer_names] if isinstance(layer_names, str) else layer_names
    if not isinstance(names, Sequence) or isinstance(names, str) or not names:
        raise ValueError(
            f"layer_names must be a layer name or a non-empty list of names, got {layer_names!r}."
        )
    known = [layer.name for layer in model.layers]
    for name in names:
        if not isinstance(name, str) or name not in known:
            raise ValueError(
                f"layer_names: model {model.name!r} has no layer {name!r}; its layers are "
                f"{known}."
            )
    return list(names)


def _is_sequential(model: keras.Model) -> bool:
    import keras

    return isinstance(model, keras.Sequential)


# --------------------------------------------------------------------------------------
# Intermediate outputs
# --------------------------------------------------------------------------------------


def _symbolic_outputs(
    model: keras.Model, names: list[str], include_output: bool
) -> tuple[list, list]:
    """Inputs and outputs (symbolic tensors) of a model reaching into ``names``.

    The canonical route is ``model.inputs`` and ``layer.output``. It works for functional
    models and for ``Sequential`` models that were built from ``keras.Input`` or by
    ``build``/a first call. If it fails for a ``Sequential`` model (some layer could not be
    traced when the model was built), the layers are chained again on a fresh input.
    """
    import keras

    try:
        inputs = list(model.inputs)
        outputs = [model.get_layer(name).output for name in names]
        if include_output:
            outputs += list(model.outputs)
        return inputs, outputs
    except (AttributeError, ValueError) as exc:
        if not _is_sequential(model):
            raise ValueError(
                f"cannot reach the outputs of layers {names} in model {model.name!r} "
                f"({exc}). activation_model and grad_cam work for Sequential and functional "
                "models; a subclassed model must be rebuilt as a functional one."
            ) from exc
    first = keras.Input(shape=tuple(model.input_shape[1:]))
    x, found = first, {}
    for layer in model.layers:
        x = layer(x)
        if layer.name in names:
            found[layer.name] = x
    outputs = [found[name] for name in names] + ([x] if include_output else [])
    return [first], outputs


def activation_model(model: keras.Model, layer_names: str | Sequence[str]) -> keras.Model:
    """Return a model that maps the inputs of ``model`` to the outputs of some of its layers.

    The classic recipe is ``keras.Model(model.input, model.get_layer(name).output)``. Under
    Keras 3 it breaks for ``Sequential`` models: ``model.input`` raises *"has never been
    called and thus has no defined input"* even for a model built from ``keras.Input``, and
    layers of a model that was never built have no ``output`` at all. This function uses
    ``model.inputs`` (plural, which works), falls back to re-chaining the layers of a
    ``Sequential`` model on a fresh ``keras.Input``, and says clearly when the model was
    never built. The new model shares the layers -- and so the trained weights -- of
    ``model``; nothing is copied.

    Defined in chapter 7.

    Parameters
    ----------
    model : keras.Model
        A built ``Sequential`` or functional model.
    layer_names : str or sequence of str
        Names of layers of ``model`` (``[layer.name for layer in model.layers]``).

    Returns
    -------
    keras.Model
        Its output is the output of the named layer (one name) or a list of outputs in the
        order of ``layer_names`` (several names); ``predict`` returns arrays accordingly.

    Raises
    ------
    ValueError
        If ``model`` is not built, is subclassed, or has no layer of a given name.

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input((8, 8, 1)),
    ...                           keras.layers.Conv2D(4, 3, name="conv"),
    ...                           keras.layers.GlobalAveragePooling2D(name="gap"),
    ...                           keras.layers.Dense(2, name="out")])
    >>> activation_model(model, ["conv", "gap"]).output_shape
    [(None, 6, 6, 4), (None, 4)]
    """
    import keras

    model = _check_model(model)
    names = _check_layer_names(model, layer_names)
    inputs, outputs = _symbolic_outputs(model, names, include_output=False)
    single = isinstance(layer_names, str)
    return keras.Model(
        inputs[0] if len(inputs) == 1 else inputs,
        outputs[0] if single else outputs,
        name=f"{model.name}_activations",
    )


def last_conv_layer_name(model: keras.Model) -> str:
    """Name of the layer whose output Grad-CAM uses by default: the last convolution's.

    The last convolution layer of ``model`` (``Conv2D``, ``SeparableConv2D`` or
    ``DepthwiseConv2D``). When batch normalisation and/or an activation layer directly
    follow it (as in ``Conv2D(use_bias=False) -> BatchNormalization -> Activation("relu")``),
    the last of those is returned instead, so the heatmap is built from the rectified
    feature maps, as in the Grad-CAM paper.

    Defined in chapter 7.

    Parameters
    ----------
    model : keras.Model

    Returns
    -------
    str

    Raises
    ------
    ValueError
        If the model has no convolution layer at its top level.

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input((8, 8, 1)),
    ...                           keras.layers.Conv2D(4, 3, use_bias=False, name="conv"),
    ...                           keras.layers.BatchNormalization(name="bn"),
    ...                           keras.layers.Activation("relu", name="relu"),
    ...                           keras.layers.Flatten(), keras.layers.Dense(2)])
    >>> last_conv_layer_name(model)
    'relu'
    """
    import keras

    if not isinstance(model, keras.Model):
        raise ValueError(f"model must be a keras.Model, got {type(model).__name__}.")
    conv_types = (
        keras.layers.Conv2D,
        keras.layers.SeparableConv2D,
        keras.layers.DepthwiseConv2D,
    )
    layers = model.layers
    last = max((i for i, layer in enumerate(layers) if isinstance(layer, conv_types)), default=None)
    if last is None:
        raise ValueError(
            f"model {model.name!r} has no Conv2D, SeparableConv2D or DepthwiseConv2D layer at "
            "its top level; pass layer_name= explicitly."
        )
    while last + 1 < len(layers) and type(layers[last + 1]).__name__ in _FOLLOWERS:
        last += 1
    return layers[last].name


# --------------------------------------------------------------------------------------
# Grad-CAM
# --------------------------------------------------------------------------------------


def grad_cam_from_arrays(feature_maps: Any, gradients: Any) -> np.ndarray:
    """The arithmetic of Grad-CAM: weight the feature maps by their mean gradient, rectify.

    With feature maps :math:`A^k` of the chosen layer and the gradients
    :math:`\\partial y^c / \\partial A^k` of the class score :math:`y^c`,

    .. math::

        \\alpha_k^c = \\frac{1}{Z} \\sum_{i,j} \\frac{\\partial y^c}{\\partial A^k_{ij}},
        \\qquad
        L^c = \\mathrm{ReLU}\\Big(\\sum_k \\alpha_k^c A^k\\Big),

    where :math:`Z` is the number of positions (Selvaraju et al., 2017, eqs. 1-2). Each map
    is then divided by its own maximum so it lies in [0, 1]; a map that is zero everywhere
    (no position has positive evidence) stays zero. Because of that division, using the
    sum of the gradients instead of their mean gives the same result.

    Defined in chapter 7; :func:`grad_cam` computes the two inputs for a Keras model.

    Parameters
    ----------
    feature_maps : array_like of shape (N, h, w, K) or (h, w, K)
        Activations of the layer, channels last.
    gradients : array_like of the same shape
        Gradient of each image's class score with respect to ``feature_maps``.

    Returns
    -------
    ndarray of float64, shape (N, h, w) or (h, w)
        One heatmap per image, each with maximum 1 (or all zeros).

    Examples
    --------
    Two channels; the score grows with channel 0 and shrinks with channel 1:

    >>> a = np.zeros((2, 2, 2)); a[0, 0, 0] = 2.0; a[1, 1, 1] = 3.0
    >>> g = np.zeros((2, 2, 2)); g[..., 0] = 1.0; g[..., 1] = -1.0
    >>> grad_cam_from_arrays(a, g)
    array([[1., 0.],
           [0., 0.]])
    """
    a = _numeric_array(feature_maps, "feature_maps").astype(np.float64)
    g = _numeric_array(gradients, "gradients").astype(np.float64)
    if a.ndim not in (3, 4):
        raise ValueError(
            "feature_maps must have shape (N, h, w, K) or (h, w, K), got shape "
            f"{a.shape}."
        )
    if g.shape != a.shape:
        raise ValueError(
            f"gradients must have the shape of feature_maps {a.shape}, got shape {g.shape}."
        )
    weights = g.mean(axis=(-3, -2))  # (N, K) or (K,): global-average-pooled gradients
    cam = np.maximum(np.einsum("...hwk,...k->...hw", a, weights), 0.0)
    peak = cam.max(axis=(-2, -1), keepdims=True)
    safe = np.where(peak > 0, peak, 1.0)
    return np.where(peak > 0, cam / safe, 0.0)


def upsample_heatmaps(heatmaps: Any, size: tuple[int, int]) -> np.ndarray:
    """Resize heatmaps bilinearly to ``size`` and scale each to maximum 1 again.

    Grad-CAM maps have the resolution of the chosen layer (7x7 after two poolings of a
    28x28 image); to lay one over its image it is stretched to the image size. Bilinear
    interpolation keeps the values in [0, 1] but can lower the peak slightly, so each map
    is divided by its new maximum.

    Defined in chapter 7.

    Parameters
    ----------
    heatmaps : array_like of shape (N, h, w)
        Non-negative maps.
    size : tuple of two ints
        ``(height, width)`` of the result.

    Returns
    -------
    ndarray of float32, shape (N, height, width)

    Examples
    --------
    >>> upsample_heatmaps(np.eye(2)[np.newaxis], (4, 4)).shape
    (1, 4, 4)
    """
    h = _numeric_array(heatmaps, "heatmaps").astype(np.float32)
    if h.ndim != 3:
        raise ValueError(f"heatmaps must have shape (N, h, w), got shape {h.shape}.")
    if (
        not isinstance(size, Sequence)
        or len(size) != 2
        or not all(isinstance(s, int | np.integer) and s > 0 for s in size)
    ):
        raise ValueError(f"size must be a pair (height, width) of positive ints, got {size!r}.")
    import tensorflow as tf

    up = tf.image.resize(h[..., np.newaxis], tuple(int(s) for s in size), method="bilinear")
    up = np.clip(up.numpy()[..., 0], 0.0, None)
    peak = up.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, up / np.where(peak > 0, peak, 1.0), 0.0).astype(np.float32)


@contextmanager
def _scores_before_softmax(model: keras.Model, use_logits: bool) -> Iterator[None]:
    """Temporarily replace a final softmax activation by the identity.

    Grad-CAM differentiates the class *score* before the softmax (the paper's ``y^c``): the
    softmax couples all classes, and a confident prediction has nearly zero gradient.
    Keras layers apply ``self.activation`` at call time, so swapping it for the duration
    of the gradient computation gives the logits without copying the model.
    """
    import keras

    layer = model.layers[-1] if model.layers else None
    activation = getattr(layer, "activation", None)
    swap = use_logits and getattr(activation, "__name__", "") == "softmax"
    if swap:
        layer.activation = keras.activations.linear
    try:
        yield
    finally:
        if swap:
            layer.activation = activation


def _class_indices(class_index: Any, n: int, n_classes: int) -> np.ndarray | None:
    """Validate ``class_index`` into one index per image (None: use the predictions)."""
    if class_index is None:
        return None
    idx = np.asarray(class_index)
    if idx.dtype.kind not in "iu" or idx.ndim > 1:
        raise ValueError(
            f"class_index must be None, an int or one int per image, got {class_index!r}."
        )
    idx = np.broadcast_to(idx, (n,)) if idx.ndim == 0 else idx
    if len(idx) != n:
        raise ValueError(f"class_index must have one entry per image ({n}), got {len(idx)}.")
    if idx.size and (idx.min() < 0 or idx.max() >= n_classes):
        raise ValueError(
            f"class_index must be in 0..{n_classes - 1} (the model's classes), got "
            f"{idx.min()}..{idx.max()}."
        )
    return idx.astype(np.int64)


def _check_classifier(model: Any) -> tuple[keras.Model, int]:
    model = _check_model(model)
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        shapes = [tuple(o.shape) for o in model.outputs]
        raise ValueError(
            f"model must have one output of shape (N, num_classes), got outputs {shapes}."
        )
    return model, int(model.outputs[0].shape[-1])


def _check_images(model: keras.Model, images: Any) -> np.ndarray:
    x = _numeric_array(images, "images").astype(np.float32)
    expected = tuple(model.inputs[0].shape) if hasattr(model, "inputs") else None
    if x.ndim != 4:
        hint = " (one image? use images[np.newaxis])" if x.ndim == 3 else ""
        raise ValueError(
            f"images must be a batch of shape (N, height, width, channels), got shape "
            f"{x.shape}{hint}."
        )
    if expected and len(expected) == 4 and any(
        e is not None and e != s for e, s in zip(expected[1:], x.shape[1:], strict=True)
    ):
        raise ValueError(
            f"images must have the model's input shape {expected[1:]}, got {x.shape[1:]}."
        )
    if len(x) == 0:
        raise ValueError("images must hold at least one image, got an empty batch.")
    return x


def _features_and_scores(model: keras.Model, name: str) -> Any:
    """A function ``batch -> (feature maps of layer name, model output)`` for a gradient tape.

    A ``Sequential`` model is run layer by layer, eagerly: that is exactly its computation
    and needs no graph. (A graph built from ``layer.output`` can be wrong here: after
    ``keras.saving.load_model`` a Sequential model's layers have been called twice, and
    ``layer.output`` then belongs to a copy of the graph that does not lead to
    ``model.outputs``, so the gradient would be None.) A functional model gets a
    two-output model over its own graph.
    """
    import keras

    layer_output_shape = tuple(model.get_layer(name).output.shape)
    if len(layer_output_shape) != 4:
        raise ValueError(
            f"layer_name: the output of layer {name!r} must be a stack of feature maps "
            f"(N, h, w, K), got shape {layer_output_shape}."
        )
    if _is_sequential(model):

        def forward(batch: Any) -> tuple[Any, Any]:
            h, features = batch, None
            for layer in model.layers:
                h = layer(h, training=False)
                if layer.name == name:
                    features = h
            return features, h

        return forward
    inputs, outputs = _symbolic_outputs(model, [name], include_output=True)
    both = keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs)
    return lambda batch: both(batch, training=False)


def grad_cam(
    model: keras.Model,
    images: Any,
    class_index: int | Sequence[int] | np.ndarray | None = None,
    layer_name: str | None = None,
    *,
    use_logits: bool = True,
    batch_size: int = 128,
) -> np.ndarray:
    """Grad-CAM heatmaps: where in each image is the evidence for a class?

    For each image the function runs the model once, takes the gradient of the class score
    with respect to the feature maps of ``layer_name`` (by default the last convolution,
    where the maps are still spatial but already encode high-level features), and combines
    them with :func:`grad_cam_from_arrays`. The maps are stretched to the input size with
    :func:`upsample_heatmaps`. The method is that of Selvaraju et al. (2017).

    Works for ``Sequential`` and functional single-output models built with Keras 3 on the
    TensorFlow backend. The model is not changed (its final softmax is bypassed only for
    the duration of the call, see ``use_logits``).

    Defined in chapter 7.

    Parameters
    ----------
    model : keras.Model
        A trained, built classifier with one output of shape ``(N, num_classes)``.
    images : array_like of shape (N, H, W, C)
        Inputs as the model takes them (e.g. :func:`cnncourse.datasets.prepare_images`).
    class_index : int, sequence of int or None, default=None
        The class to explain: None explains each image's predicted class; an int explains
        that class for every image; a sequence gives one class per image.
    layer_name : str, optional
        Layer whose feature maps are weighted; its output must be ``(N, h, w, K)``. Default:
        :func:`last_conv_layer_name`.
    use_logits : bool, default=True
        Differentiate the score before a final softmax activation (as in the paper). With
        False the gradient of the probability is used, which vanishes for confident
        predictions.
    batch_size : int, default=128
        Images per gradient computation (memory, not results).

    Returns
    -------
    ndarray of float32, shape (N, H, W)
        One heatmap per image with values in [0, 1] (maximum 1, or all zeros when no
        position of the layer has positive evidence for the class).

    Examples
    --------
    >>> import keras
    >>> keras.utils.set_random_seed(0)
    >>> model = keras.Sequential([keras.Input((8, 8, 1)),
    ...                           keras.layers.Conv2D(4, 3, activation="relu"),
    ...                           keras.layers.GlobalAveragePooling2D(),
    ...                           keras.layers.Dense(3, activation="softmax")])
    >>> maps = grad_cam(model, np.random.default_rng(0).random((2, 8, 8, 1)))
    >>> maps.shape, bool(maps.min() >= 0 and maps.max() <= 1)
    ((2, 8, 8), True)
    """
    import tensorflow as tf

    model, n_classes = _check_classifier(model)
    x = _check_images(model, images)
    fixed = _class_indices(class_index, len(x), n_classes)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}.")
    if not isinstance(use_logits, bool):
        raise ValueError(f"use_logits must be True or False, got {use_logits!r}.")
    name = last_conv_layer_name(model) if layer_name is None else layer_name
    (name,) = _check_layer_names(model, [name])
    forward = _features_and_scores(model, name)
    heatmaps = []
    with _scores_before_softmax(model, use_logits):
        for start in range(0, len(x), batch_size):
            batch = tf.convert_to_tensor(x[start : start + batch_size])
            with tf.GradientTape() as tape:
                features, scores = forward(batch)
                if fixed is None:
                    idx = np.argmax(scores.numpy(), axis=1)
                else:
                    idx = fixed[start : start + batch_size]
                chosen = tf.gather(scores, idx, axis=1, batch_dims=1)
            # Each image's score depends on that image only (inference mode), so the
            # gradient of the sum holds every image's own gradient.
            grads = tape.gradient(chosen, features)
            if grads is None:
                raise ValueError(
                    f"layer_name: the output of layer {name!r} does not lead to the model's "
                    "output (is the layer shared, or outside the path to the output?)."
                )
            heatmaps.append(grad_cam_from_arrays(features.numpy(), grads.numpy()))
    return upsample_heatmaps(np.concatenate(heatmaps), x.shape[1:3])


def input_gradients(
    model: keras.Model,
    images: Any,
    class_index: int | Sequence[int] | np.ndarray | None = None,
    *,
    use_logits: bool = True,
) -> np.ndarray:
    """Gradient of each image's class score with respect to its pixels (a "saliency map").

    The simplest saliency method (Simonyan et al., 2014): a pixel matters if changing it
    changes the score. Chapter 7 uses it, and the product *gradient x input*, in the
    sanity checks of Adebayo et al. (2018).

    Defined in chapter 7.

    Parameters
    ----------
    model : keras.Model
        A built classifier with one output ``(N, num_classes)``.
    images : array_like of shape (N, H, W, C)
    class_index : int, sequence of int or None, default=None
        As in :func:`grad_cam`; None uses each image's predicted class.
    use_logits : bool, default=True
        Differentiate the score before a final softmax, as in :func:`grad_cam`.

    Returns
    -------
    ndarray of float32, shape (N, H, W, C)
        Signed gradients.

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(2, use_bias=False)])
    >>> g = input_gradients(model, np.zeros((1, 4, 4, 1)), class_index=1)
    >>> bool(np.allclose(g.reshape(-1), model.layers[-1].kernel.numpy()[:, 1]))
    True
    """
    import tensorflow as tf

    model, n_classes = _check_classifier(model)
    if not isinstance(use_logits, bool):
        raise ValueError(f"use_logits must be True or False, got {use_logits!r}.")
    x_np = _check_images(model, images)
    fixed = _class_indices(class_index, len(x_np), n_classes)
    x = tf.convert_to_tensor(x_np)
    with _scores_before_softmax(model, use_logits):
        with tf.GradientTape() as tape:
            tape.watch(x)
            scores = model(x, training=False)
            idx = np.argmax(scores.numpy(), axis=1) if fixed is None else fixed
            chosen = tf.gather(scores, idx, axis=1, batch_dims=1)
        grads = tape.gradient(chosen, x)
    return grads.numpy().astype(np.float32)


def randomized_copy(
    model: keras.Model, layer_names: Sequence[str] | None = None, *, seed: int = 0
) -> keras.Model:
    """A copy of ``model`` whose chosen layers get fresh random weights.

    The "model randomisation test" of Adebayo et al. (2018): if an explanation method gives
    nearly the same map for a trained network and for one whose weights are random, the
    map describes the input (edges, bright regions), not what the network learned.
    Randomising the layers from the output downwards ("cascading") shows how deep the
    method looks.

    Kernels are drawn from the Glorot-uniform distribution (Keras' default initializer for
    ``Dense`` and ``Conv2D``), biases and batch-norm shifts and means are set to 0,
    batch-norm scales and variances to 1. ``model`` itself is not changed.

    Defined in chapter 7.

    Parameters
    ----------
    model : keras.Model
        A built ``Sequential`` or functional model.
    layer_names : sequence of str, optional
        Layers to randomise; None randomises every layer.
    seed : int, default=0
        Seed of the random weights.

    Returns
    -------
    keras.Model
        A new model with the same architecture (not compiled).

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="a"),
    ...                           keras.layers.Dense(2, name="b")])
    >>> copy = randomized_copy(model, ["b"])
    >>> same = [np.array_equal(copy.get_layer(n).kernel.numpy(), model.get_layer(n).kernel.numpy())
    ...         for n in ("a", "b")]
    >>> same
    [True, False]
    """
    import keras

    model = _check_model(model)
    names = set(
        [layer.name for layer in model.layers]
        if layer_names is None
        else _check_layer_names(model, layer_names)
    )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}.")
    rng = np.random.default_rng(seed)
    copy = keras.models.clone_model(model)
    for original, new in zip(model.layers, copy.layers, strict=True):
        values = [w.numpy() for w in original.weights]
        if original.name in names:
            values = [_fresh_weight(w.path, v, rng) for w, v in zip(original.weights, values,
                                                                      strict=True)]
        for variable, value in zip(new.weights, values, strict=True):
            variable.assign(value)
    return copy


def _fresh_weight(path: str, value: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    leaf = path.rsplit("/", 1)[-1]
    if leaf in ("gamma", "moving_variance"):
        return np.ones_like(value)
    if value.ndim < 2:
        return np.zeros_like(value)
    receptive = int(np.prod(value.shape[:-2])) if value.ndim > 2 else 1
    fan_in, fan_out = value.shape[-2] * receptive, value.shape[-1] * receptive
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=value.shape).astype(value.dtype)


# --------------------------------------------------------------------------------------
# Showing and checking heatmaps
# --------------------------------------------------------------------------------------


def overlay_heatmap(
    image: Any, heatmap: Any, *, alpha: float = 0.45, cmap: str = "jet"
) -> np.ndarray:
    """Blend a heatmap, in colour, over a grayscale or RGB image.

    Defined in chapter 7.

    Parameters
    ----------
    image : array_like of shape (H, W), (H, W, 1) or (H, W, 3)
        ``uint8`` pixels (0..255) or floats in [0, 1].
    heatmap : array_like of shape (H, W)
        Values in [0, 1], e.g. one map of :func:`grad_cam` (already at the image size).
    alpha : float, default=0.45
        Weight of the heatmap's colour, in [0, 1]; the image gets ``1 - alpha``.
    cmap : str, default="jet"
        A matplotlib colormap name; "jet" is the paper's (red = strong evidence).

    Returns
    -------
    ndarray of float32, shape (H, W, 3)
        RGB values in [0, 1], ready for ``imshow`` or :func:`cnncourse.viz.show_images`.

    Examples
    --------
    >>> overlay_heatmap(np.zeros((4, 4), dtype=np.uint8), np.ones((4, 4))).shape
    (4, 4, 3)
    """
    from matplotlib import colormaps

    img = _numeric_array(image, "image")
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[-1] == 3)):
        raise ValueError(f"image must have shape (H, W), (H, W, 1) or (H, W, 3), got {img.shape}.")
    img = img.astype(np.float32) / 255.0 if img.dtype.kind in "ui" else img.astype(np.float32)
    if img.min() < 0 or img.max() > 1:
        raise ValueError(
            "image must hold uint8 pixels or floats in [0, 1], got values in "
            f"{img.min():g}..{img.max():g}."
        )
    heat = _numeric_array(heatmap, "heatmap").astype(np.float32)
    if heat.shape != img.shape[:2]:
        raise ValueError(
            f"heatmap must have the image's size {img.shape[:2]}, got shape {heat.shape} "
            "(upsample_heatmaps resizes it)."
        )
    if heat.min() < 0 or heat.max() > 1:
        raise ValueError(
            f"heatmap must hold values in [0, 1], got {heat.min():g}..{heat.max():g}."
        )
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}.")
    if cmap not in colormaps:
        raise ValueError(f"cmap must be a matplotlib colormap name, got {cmap!r}.")
    rgb = np.repeat(img[..., np.newaxis], 3, axis=-1) if img.ndim == 2 else img
    colour = colormaps[cmap](heat)[..., :3].astype(np.float32)
    return np.clip((1 - alpha) * rgb + alpha * colour, 0.0, 1.0)


def heatmap_mass_in_mask(heatmaps: Any, masks: Any, *, dilation: int = 0) -> np.ndarray:
    """Fraction of each heatmap's total that falls inside a region (a known answer).

    A saliency map "points at" a region when most of its mass lies there. Compare the
    result with ``masks.mean(axis=(1, 2))`` (after the same dilation): that is what a
    map spread evenly over the image would score, the chance level.

    Defined in chapter 7, where the region is the line that decides the class in the
    synthetic shapes dataset.

    Parameters
    ----------
    heatmaps : array_like of shape (N, H, W)
        Non-negative maps.
    masks : array_like of bool, shape (N, H, W)
        The region of each image.
    dilation : int, default=0
        Grow each mask by this many pixels (in all eight directions) first: a heatmap from
        a coarse layer cannot be sharper than that layer's grid.

    Returns
    -------
    ndarray of float64, shape (N,)
        Values in [0, 1]; NaN for an all-zero heatmap (it points nowhere).

    Examples
    --------
    >>> heat = np.zeros((1, 4, 4)); heat[0, :, 1] = 1.0; heat[0, 0, 3] = 1.0
    >>> mask = np.zeros((1, 4, 4), dtype=bool); mask[0, :, 1] = True
    >>> heatmap_mass_in_mask(heat, mask)
    array([0.8])
    """
    from scipy import ndimage

    h = _numeric_array(heatmaps, "heatmaps").astype(np.float64)
    m = np.asarray(masks)
    if h.ndim != 3:
        raise ValueError(f"heatmaps must have shape (N, H, W), got shape {h.shape}.")
    if m.dtype != bool or m.shape != h.shape:
        raise ValueError(
            f"masks must be a boolean array of the heatmaps' shape {h.shape}, got dtype "
            f"{m.dtype} and shape {m.shape}."
        )
    if h.size and h.min() < 0:
        raise ValueError("heatmaps must be non-negative.")
    if isinstance(dilation, bool) or not isinstance(dilation, int) or dilation < 0:
        raise ValueError(f"dilation must be an int >= 0, got {dilation!r}.")
    if dilation:
        square = np.ones((1, 3, 3), dtype=bool)  # grow within each image, never across
        m = ndimage.binary_dilation(m, structure=square, iterations=dilation)
    total = h.sum(axis=(1, 2))
    inside = (h * m).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / np.where(total > 0, total, 1.0), np.nan)


# --------------------------------------------------------------------------------------
# Reading a confusion matrix
# --------------------------------------------------------------------------------------


def _check_confusion_matrix(cm: Any) -> np.ndarray:
    c = _numeric_array(cm, "cm")
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] == 0:
        raise ValueError(f"cm must be a square (K, K) confusion matrix, got shape {c.shape}.")
    if c.min() < 0:
        raise ValueError("cm must hold non-negative counts.")
    return c


def precision_recall(cm: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision and recall from a confusion matrix.

    ``cm[i, j]`` counts the images of true class ``i`` predicted as class ``j`` (the
    convention of ``sklearn.metrics.confusion_matrix``: rows are the truth, columns the
    prediction). Then

    - precision of class ``k`` = ``cm[k, k] / cm[:, k].sum()``: of the images *predicted*
      as ``k``, the share that really are ``k``;
    - recall of class ``k`` = ``cm[k, k] / cm[k, :].sum()``: of the images that *are*
      ``k``, the share the model found.

    A class that is never predicted has no precision (0/0), one that never occurs no
    recall; both are reported as 0, like scikit-learn's ``zero_division=0``.

    Defined in chapter 7.

    Parameters
    ----------
    cm : array_like of shape (K, K)
        Non-negative counts.

    Returns
    -------
    precision, recall : ndarray of float64, shape (K,)

    Examples
    --------
    >>> precision_recall([[3, 1], [0, 0]])
    (array([1., 0.]), array([0.75, 0.  ]))
    """
    c = _check_confusion_matrix(cm).astype(np.float64)
    hits = np.diag(c)
    predicted, actual = c.sum(axis=0), c.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros_like(hits), where=actual > 0)
    return precision, recall


def most_confused_pairs(
    cm: Any, class_names: Sequence[str] | None = None, k: int = 5
) -> pd.DataFrame:
    """The ``k`` largest off-diagonal entries of a confusion matrix, as a table.

    Defined in chapter 7, where the Fashion-MNIST model's mistakes are read from it.

    Parameters
    ----------
    cm : array_like of shape (K, K)
        Counts, rows = true class, columns = predicted class.
    class_names : sequence of str, optional
        Names of the K classes (class indices are shown otherwise).
    k : int, default=5
        Number of pairs (fewer if the matrix has fewer non-zero mistakes).

    Returns
    -------
    pandas.DataFrame
        Columns ``true``, ``predicted``, ``count`` and ``share_of_true`` (the count as a
        fraction of the true class's images), sorted by count, largest first; ties are
        broken by (true, predicted) order.

    Examples
    --------
    >>> most_confused_pairs([[5, 2], [1, 7]], ["cat", "dog"], k=1)
      true predicted  count  share_of_true
    0  cat       dog      2       0.285714
    """
    import pandas as pd

    c = _check_confusion_matrix(cm)
    n_classes = c.shape[0]
    if class_names is None:
        names = [str(i) for i in range(n_classes)]
    else:
        if isinstance(class_names, str) or len(class_names) != n_classes:
            raise ValueError(
                f"class_names must hold one name per class ({n_classes}), got {class_names!r}."
            )
        names = [str(name) for name in class_names]
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}.")
    rows, cols = np.nonzero(~np.eye(n_classes, dtype=bool) & (c > 0))
    counts = c[rows, cols]
    order = np.lexsort((cols, rows, -counts))[: int(k)]
    actual = c.sum(axis=1)
    return pd.DataFrame(
        {
            "true": [names[i] for i in rows[order]],
            "predicted": [names[j] for j in cols[order]],
            "count": counts[order],
            "share_of_true": counts[order] / actual[rows[order]],
        }
    )
