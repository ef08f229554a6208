"""ImageNet-pretrained VGG16, found where Keras keeps it, and never faked.

Chapter 6b ("Transfer learning") starts from VGG16's ImageNet weights. Keras downloads them
on first use (528 MB with the dense "top", 58 MB without) into its cache,
``$KERAS_HOME/models`` or ``~/.keras/models``. The course must also run where nothing can
be downloaded, so :func:`load_vgg16_imagenet` looks in this order:

1. the Keras cache: if the weights file is there, the model is built with
   ``keras.applications.VGG16(weights=None)`` and the file is loaded into it (no network,
   no re-download);
2. the network, when downloads are allowed and the download host answers:
   ``keras.applications.VGG16(weights="imagenet")``, which also fills the cache;
3. otherwise it returns ``(None, reason)``: the caller says that the ImageNet weights are
   unavailable and does something honest instead. It never hands out a randomly
   initialised network in their place.

The rest of the module serves the chapter's photo demo: :func:`imagenet_photo_batch` turns
scikit-image's sample photos into VGG16's input, and :func:`decode_imagenet` names the top
classes (Keras' ``decode_predictions``, or the cached class index file when offline).

Defined in chapter 6b.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnncourse.datasets import (
    _download_host_reachable,
    _resolve_allow_download,
    sample_photo,
)

__all__ = [
    "IMAGENET_CLASS_INDEX_FILE",
    "VGG16_WEIGHT_FILES",
    "cached_vgg16_weights",
    "decode_imagenet",
    "imagenet_photo_batch",
    "keras_models_dir",
    "load_vgg16_imagenet",
]

#: File names of VGG16's ImageNet weights in the Keras cache, by ``include_top``: the
#: names ``keras.applications.VGG16(weights="imagenet")`` downloads to.
VGG16_WEIGHT_FILES: dict[bool, str] = {
    True: "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    False: "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
}
#: The ImageNet class index that ``decode_predictions`` downloads next to the weights.
IMAGENET_CLASS_INDEX_FILE = "imagenet_class_index.json"
# Where Keras downloads the class index from, and its MD5 (keras.applications.imagenet_utils).
_CLASS_INDEX_URL = (
    "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
)
_CLASS_INDEX_MD5 = "c2c37ea517e94d9795004a39431a14cb"


def keras_models_dir() -> Path:
    """Return the folder where Keras caches application weights, found the way Keras finds it.

    ``$KERAS_HOME/models`` when ``KERAS_HOME`` is set, else ``~/.keras/models``; Keras uses
    ``/tmp/.keras`` instead when the home folder (or ``~/.keras``) is not writable. The
    environment is read at call time, so changing ``KERAS_HOME`` takes effect at once.

    Examples
    --------
    >>> keras_models_dir().name
    'models'
    """
    if "KERAS_HOME" in os.environ:
        base = Path(os.environ["KERAS_HOME"]).expanduser()
    else:
        home = Path("~").expanduser()
        base = home / ".keras" if os.access(home, os.W_OK) else Path("/tmp/.keras")
        if base.exists() and not os.access(base, os.W_OK):
            base = Path("/tmp/.keras")
    return base / "models"


def cached_vgg16_weights(include_top: bool = True) -> Path | None:
    """Path of VGG16's ImageNet weights in the Keras cache, or None when they are not there.

    Examples
    --------
    >>> path = cached_vgg16_weights(include_top=False)
    >>> path is None or path.name.endswith("_notop.h5")
    True
    """
    if not isinstance(include_top, bool):
        raise ValueError(f"include_top must be True or False, got {include_top!r}.")
    path = keras_models_dir() / VGG16_WEIGHT_FILES[include_top]
    return path if path.is_file() else None


def load_vgg16_imagenet(
    include_top: bool = True,
    *,
    input_shape: tuple[int, int, int] | None = None,
    allow_download: bool | None = None,
) -> tuple[Any, str]:
    """VGG16 with its ImageNet weights, or ``(None, reason)`` when they cannot be had.

    Parameters
    ----------
    include_top : bool, default=True
        With the three dense layers (1000 ImageNet classes, 224x224 input only), or only the
        13 convolutions (the "notop" weights, for feature extraction and fine-tuning).
    input_shape : tuple of int, optional
        Only without the top: ``(H, W, 3)`` with sides of at least 32 pixels. Default
        224x224x3.
    allow_download : bool, optional
        Whether Keras may download the weights when they are not cached. None means True
        unless the environment variable ``CNNCOURSE_OFFLINE`` is ``"1"``.

    Returns
    -------
    model : keras.Model or None
        The model with ImageNet weights, or None.
    message : str
        Where the weights came from, or why there is no model. Print it.

    Examples
    --------
    >>> model, message = load_vgg16_imagenet(include_top=False, allow_download=False)
    >>> model is not None or "unavailable" in message
    True
    """
    if not isinstance(include_top, bool):
        raise ValueError(f"include_top must be True or False, got {include_top!r}.")
    if input_shape is not None:
        if include_top:
            raise ValueError(
                "input_shape can only be given with include_top=False: the ImageNet top "
                "needs 224x224x3 inputs."
            )
        if (
            not isinstance(input_shape, Sequence)
            or len(input_shape) != 3
            or not all(isinstance(d, int) and not isinstance(d, bool) for d in input_shape)
            or input_shape[2] != 3
            or min(input_shape[:2]) < 32
        ):
            raise ValueError(
                "input_shape must be (height, width, 3) with height and width >= 32, got "
                f"{input_shape!r}."
            )
    allow = _resolve_allow_download(allow_download)

    import keras

    kind = "with the dense top" if include_top else "without the top (notop)"
    kwargs: dict[str, Any] = {"include_top": include_top}
    if input_shape is not None:
        kwargs["input_shape"] = tuple(input_shape)

    cached = cached_vgg16_weights(include_top)
    if cached is not None:
        try:
            model = keras.applications.VGG16(weights=str(cached), **kwargs)
        except Exception as exc:  # a truncated or foreign file: say so, never fall back
            return None, (
                f"ImageNet weights unavailable: the cached file {cached} could not be loaded "
                f"({type(exc).__name__}: {exc}). Delete it and run online to download it again."
            )
        return model, f"ImageNet weights for VGG16 {kind} loaded from the Keras cache: {cached}"

    where = keras_models_dir() / VGG16_WEIGHT_FILES[include_top]
    if not allow:
        return None, (
            f"ImageNet weights unavailable: {where} does not exist and downloads are disabled "
            "(allow_download=False or CNNCOURSE_OFFLINE=1)."
        )
    if not _download_host_reachable():
        return None, (
            f"ImageNet weights unavailable: {where} does not exist and the download host "
            "storage.googleapis.com cannot be reached (offline?)."
        )
    try:
        model = keras.applications.VGG16(weights="imagenet", **kwargs)
    except Exception as exc:  # network, HTTP or disk errors: report, never fake
        return None, (
            f"ImageNet weights unavailable: downloading them failed ({type(exc).__name__}: "
            f"{exc})."
        )
    return model, f"ImageNet weights for VGG16 {kind} downloaded by Keras into its cache."


def imagenet_photo_batch(
    names: Sequence[str] = ("cat", "coffee", "astronaut", "rocket"), size: int = 224
) -> tuple[np.ndarray, np.ndarray]:
    """Sample photos cropped and resized for VGG16, before and after its preprocessing.

    Each photo from :func:`cnncourse.datasets.sample_photo` is cut to its central square
    and resized to ``size x size`` (anti-aliased). ``keras.applications.vgg16.
    preprocess_input`` then does what the network was trained with: RGB to BGR and
    subtraction of the ImageNet mean of each channel, *without* scaling to [0, 1].

    Parameters
    ----------
    names : sequence of str
        Photo names (see :data:`cnncourse.datasets.SAMPLE_PHOTOS`).
    size : int, default=224

    Returns
    -------
    images : ndarray of uint8, shape (N, size, size, 3)
        The photos as they are shown.
    batch : ndarray of float32, shape (N, size, size, 3)
        The network's input.

    Examples
    --------
    >>> images, batch = imagenet_photo_batch(["cat"], size=64)
    >>> images.shape, batch.dtype
    ((1, 64, 64, 3), dtype('float32'))
    """
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        raise ValueError(f"names must be a non-empty sequence of photo names, got {names!r}.")
    if isinstance(size, bool) or not isinstance(size, int) or size < 32:
        raise ValueError(f"size must be an int >= 32, got {size!r}.")
    from keras.applications.vgg16 import preprocess_input
    from skimage.transform import resize

    images = []
    for name in names:
        photo = sample_photo(name)
        h, w = photo.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        square = photo[top : top + side, left : left + side]
        scaled = resize(square, (size, size), anti_aliasing=True, preserve_range=True)
        images.append(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))
    images_arr = np.stack(images)
    batch = preprocess_input(images_arr.astype(np.float32))
    return images_arr, np.asarray(batch, dtype=np.float32)


def decode_imagenet(
    probs: Any, top: int = 5, *, allow_download: bool | None = None
) -> list[list[tuple[str, str, float]]]:
    """Name the ``top`` most probable ImageNet classes of each row of ``probs``.

    Uses the class index cached next to the weights (``imagenet_class_index.json``) when it
    is there; otherwise it downloads that file as Keras' ``decode_predictions`` does.
    Without either, the classes are named by index (``"class 281"``) and the WordNet id is
    empty, so the caller never shows made-up names.

    Parameters
    ----------
    probs : array_like of shape (N, 1000)
    top : int, default=5
    allow_download : bool, optional
        As in :func:`load_vgg16_imagenet`.

    Returns
    -------
    list of lists of (wordnet_id, class_name, probability)
        For each row, best first.

    Examples
    --------
    >>> p = np.zeros((1, 1000)); p[0, 281] = 1.0
    >>> decode_imagenet(p, top=1, allow_download=False)[0][0][2]
    1.0
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 1000:
        raise ValueError(f"probs must have shape (N, 1000), got {p.shape}.")
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 1000:
        raise ValueError(f"top must be an int in 1..1000, got {top!r}.")
    order = np.argsort(-p, axis=1, kind="stable")[:, :top]

    index: dict[str, list[str]] | None = None
    cached = keras_models_dir() / IMAGENET_CLASS_INDEX_FILE
    if cached.is_file():
        try:
            index = json.loads(cached.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            index = None
    if index is None and _resolve_allow_download(allow_download) and _download_host_reachable():
        try:
            import keras

            path = keras.utils.get_file(  # what decode_predictions does, into our cache dir
                IMAGENET_CLASS_INDEX_FILE,
                _CLASS_INDEX_URL,
                cache_subdir="models",
                cache_dir=str(keras_models_dir().parent),
                file_hash=_CLASS_INDEX_MD5,
            )
            index = json.loads(Path(path).read_text(encoding="utf-8"))
        except Exception:  # no names: fall through to class numbers
            index = None
    results = []
    for row, idx in zip(p, order, strict=True):
        entries = []
        for i in idx:
            wnid, name = index[str(int(i))] if index else ("", f"class {int(i)}")
            entries.append((str(wnid), str(name), float(row[i])))
        results.append(entries)
    return results
