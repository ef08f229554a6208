"""Inference for the course's image classifiers: the training preprocessing, applied strictly.

A model in production sees whatever a client sends: a photo in colour, a float array on the
wrong scale, a screenshot of the wrong size, a truncated file. A model happily computes *a*
prediction for almost any array of the right rank, so these mistakes do not crash -- they
give confident nonsense. This module puts one gate in front of the model:

- :class:`ImageSpec` says what one input image must look like (height, width, channels)
  and applies *exactly* the training preprocessing of the course
  (:func:`cnncourse.datasets.prepare_images`: ``uint8`` pixels divided by 255 into
  ``float32``, a trailing channel axis, a batch axis);
- anything that does not fit raises :class:`InvalidImageError` (a :class:`ValueError`) with
  a message that says what was expected and what came;
- :class:`Predictor` wraps a model -- a Keras model or ``.keras`` file, a SavedModel
  written by ``model.export()``, or a TensorFlow Lite flat buffer -- together with its
  class names, its :class:`ImageSpec` and a version string, and turns a raw image (an
  array or the bytes of a PNG file) into a :class:`Prediction`;
- :func:`inference_model` drops the layers that do nothing at inference (augmentation,
  dropout) from a ``Sequential`` model before it is exported or converted.

Decisions, so that they are written down once:

- **Scale.** Integer images must hold pixel values 0..255 and are divided by 255. Float
  images are taken to be *already scaled* and must lie in [0, 1], as in training
  (:func:`cnncourse.datasets.scale_01`). A float image with values such as 0..255 is
  refused instead of guessed at: dividing twice or not at all is the most common silent
  preprocessing bug.
- **Size.** Images of another size are refused, not resized: resizing changes what the
  digit looks like (stroke width, position), and whether that is acceptable is a decision
  for whoever trains the model, not for the serving code.
- **Colour.** A greyscale model refuses colour images by default (a colour photo sent to a
  digit classifier is more likely a client bug than a digit). With
  ``ImageSpec(convert_rgb=True)`` colour is converted with the ITU-R BT.601 luma weights
  ``0.299 R + 0.587 G + 0.114 B`` -- the conversion Pillow uses for mode ``"L"`` -- and an
  alpha channel is dropped.
- **PNG only.** Bytes must be a PNG file (lossless, so the pixels are the ones the client
  had). The size in the header is checked *before* the pixels are decoded, so a huge
  image (a "decompression bomb") is refused without being unpacked.

Introduced in chapter 9 ("From notebook to production").

Examples
--------
>>> import numpy as np
>>> spec = ImageSpec(28, 28, 1)
>>> spec.preprocess(np.full((28, 28), 255, dtype=np.uint8)).shape
(1, 28, 28, 1)
>>> try:
...     spec.preprocess(np.zeros((32, 32, 3), dtype=np.uint8))
... except InvalidImageError as err:
...     print(err)
expected a 28×28 greyscale image, shape (28, 28) or (28, 28, 1), got shape (32, 32, 3)
"""

from __future__ import annotations

import io
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "PNG_SIGNATURE",
    "ImageDecodeError",
    "ImageSpec",
    "InvalidImageError",
    "Prediction",
    "Predictor",
    "decode_png",
    "encode_png",
    "inference_model",
    "is_png",
    "make_tflite_interpreter",
]

#: The eight bytes every PNG file starts with.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: ITU-R BT.601 luma weights, the ones Pillow uses to convert RGB to mode "L".
_LUMA = np.array([0.299, 0.587, 0.114])


class InvalidImageError(ValueError):
    """An input image does not fit the model: wrong type, size, channels, dtype or values.

    The message names what was expected and what was received, so it can be shown to the
    client as is (the prediction endpoint of :mod:`cnncourse.serve` does exactly that).
    """


class ImageDecodeError(InvalidImageError):
    """The bytes are not a PNG file, or a PNG file that cannot be decoded (corrupt, truncated)."""


# --------------------------------------------------------------------------------------
# PNG bytes
# --------------------------------------------------------------------------------------


def is_png(data: bytes) -> bool:
    """True when ``data`` starts with the PNG signature (says nothing about the rest).

    Examples
    --------
    >>> is_png(PNG_SIGNATURE + b"..."), is_png(b"GIF89a")
    (True, False)
    """
    return bytes(data[: len(PNG_SIGNATURE)]) == PNG_SIGNATURE


def encode_png(image: np.ndarray) -> bytes:
    """Encode a ``uint8`` image, ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)``, as PNG bytes.

    The inverse of :func:`decode_png` for greyscale and RGB images; chapter 9 uses it to
    play the client that uploads a file.

    Examples
    --------
    >>> data = encode_png(np.zeros((28, 28), dtype=np.uint8))
    >>> is_png(data)
    True
    """
    from PIL import Image

    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ValueError(f"image must be a uint8 array, got dtype {array.dtype}.")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3)):
        raise ValueError(
            f"image must have shape (H, W), (H, W, 1) or (H, W, 3), got {array.shape}."
        )
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()


def _preview(data: bytes) -> str:
    head = bytes(data[:8])
    return repr(head) + ("..." if len(data) > 8 else "")


def decode_png(
    data: bytes | bytearray | memoryview, *, expected_size: tuple[int, int] | None = None
) -> np.ndarray:
    """Decode PNG bytes into ``uint8`` pixels: ``(H, W)`` grey, ``(H, W, 3)`` or ``(H, W, 4)``.

    Parameters
    ----------
    data : bytes
        The content of a PNG file.
    expected_size : (height, width), optional
        When given, the size in the PNG header is checked before the pixels are decoded, so
        an image of the wrong size -- in particular a huge one -- is refused cheaply.

    Returns
    -------
    ndarray of uint8
        Greyscale PNGs (also 1-bit ones) give ``(H, W)``; colour and palette PNGs give
        ``(H, W, 3)``, or ``(H, W, 4)`` when they have transparency.

    Raises
    ------
    ImageDecodeError
        The bytes are not a PNG, or the PNG is corrupt or truncated.
    InvalidImageError
        The PNG has the wrong size or is a 16-bit image.

    Examples
    --------
    >>> decode_png(encode_png(np.full((2, 3), 7, dtype=np.uint8)))
    array([[7, 7, 7],
           [7, 7, 7]], dtype=uint8)
    """
    from PIL import Image

    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidImageError(f"expected PNG bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise ImageDecodeError("expected a PNG file, got 0 bytes")
    if not is_png(data):
        raise ImageDecodeError(
            f"expected a PNG file (starting with {PNG_SIGNATURE!r}), got {len(data)} bytes "
            f"starting with {_preview(data)}"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=["PNG"])
            width, height = im.size
            if expected_size is not None and (height, width) != tuple(expected_size):
                h, w = expected_size
                raise InvalidImageError(
                    f"expected a {h}×{w} image, got a {height}×{width} PNG"
                )
            im.load()
    except InvalidImageError:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, zlib errors...
        raise ImageDecodeError(f"could not decode the PNG ({type(exc).__name__}: {exc})") from None
    mode = im.mode
    if mode in ("1", "L"):
        return np.asarray(im.convert("L"), dtype=np.uint8)
    if mode in ("RGB", "RGBA"):
        return np.asarray(im, dtype=np.uint8)
    if mode in ("LA", "P", "PA"):
        has_alpha = mode != "P" or "transparency" in im.info
        return np.asarray(im.convert("RGBA" if has_alpha else "RGB"), dtype=np.uint8)
    raise InvalidImageError(
        f"expected an 8-bit greyscale or colour PNG, got a PNG in Pillow mode {mode!r} "
        "(16-bit or another pixel format)"
    )


# --------------------------------------------------------------------------------------
# The input contract
# --------------------------------------------------------------------------------------


def _check_dim(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")
    return int(value)


@dataclass(frozen=True)
class ImageSpec:
    """What one input image must look like, and how it becomes the model's input.

    Parameters
    ----------
    height, width : int, default=28
        Image size in pixels.
    channels : {1, 3}, default=1
        1 for a greyscale model, 3 for an RGB one.
    convert_rgb : bool, default=False
        For a greyscale model: convert colour images (RGB, RGBA) to greyscale with the
        BT.601 luma weights instead of refusing them.

    Examples
    --------
    >>> spec = ImageSpec()
    >>> spec.describe()
    'a 28×28 greyscale image, shape (28, 28) or (28, 28, 1)'
    >>> spec.preprocess(np.full((28, 28, 1), 51, dtype=np.uint8)).max()
    np.float32(0.2)
    """

    height: int = 28
    width: int = 28
    channels: int = 1
    convert_rgb: bool = False

    def __post_init__(self) -> None:
        _check_dim(self.height, "height")
        _check_dim(self.width, "width")
        if self.channels not in (1, 3) or isinstance(self.channels, bool):
            raise ValueError(f"channels must be 1 or 3, got {self.channels!r}.")
        if not isinstance(self.convert_rgb, bool):
            raise ValueError(f"convert_rgb must be True or False, got {self.convert_rgb!r}.")

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)``: one image as the model takes it, minus the batch axis."""
        return (self.height, self.width, self.channels)

    @classmethod
    def from_shape(cls, shape: Sequence[Any], *, convert_rgb: bool = False) -> ImageSpec:
        """The spec of a model input shape ``(None, H, W, C)`` or ``(H, W, C)``.

        Examples
        --------
        >>> ImageSpec.from_shape((None, 28, 28, 1)).shape
        (28, 28, 1)
        """
        dims = list(shape)
        if len(dims) == 4:
            dims = dims[1:]
        if len(dims) != 3 or any(d is None or int(d) < 1 for d in dims):
            raise ValueError(
                f"expected a model input shape (batch, height, width, channels) with known "
                f"height, width and channels, got {tuple(shape)!r}."
            )
        h, w, c = (int(d) for d in dims)
        return cls(h, w, c, convert_rgb=convert_rgb)

    def describe(self) -> str:
        """The accepted images in words (the first half of every shape error message)."""
        h, w = self.height, self.width
        if self.channels == 1:
            text = f"a {h}×{w} greyscale image, shape ({h}, {w}) or ({h}, {w}, 1)"
            if self.convert_rgb:
                text += f" (colour ({h}, {w}, 3) or ({h}, {w}, 4) is converted)"
            return text
        return f"a {h}×{w} RGB image, shape ({h}, {w}, 3)"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly description (the health route of :mod:`cnncourse.serve` shows it)."""
        return {
            "height": self.height,
            "width": self.width,
            "channels": self.channels,
            "convert_rgb": self.convert_rgb,
            "accepts": self.describe(),
            "pixels": "uint8 0..255, or float already scaled to [0, 1]",
        }

    # ----- validation

    def validate(self, image: Any) -> np.ndarray:
        """Check one image and return it as an ``(H, W, C)`` array of its own dtype.

        Accepts a NumPy array (or nested lists) or the bytes of a PNG file. Checks, in this
        order: type, shape (and channels), dtype, values. Colour conversion (with
        ``convert_rgb``) happens here; scaling does not (see :meth:`preprocess`).

        Raises
        ------
        InvalidImageError
            With a message that names what was expected and what was received.
        """
        if isinstance(image, bytes | bytearray | memoryview):
            image = decode_png(image, expected_size=(self.height, self.width))
        elif isinstance(image, str | dict | set) or image is None:
            raise InvalidImageError(
                f"expected a NumPy array or PNG bytes, got {type(image).__name__}"
            )
        if not isinstance(image, np.ndarray):
            try:
                image = np.asarray(image)
            except (ValueError, TypeError) as exc:
                raise InvalidImageError(
                    f"expected a NumPy array or PNG bytes, got a {type(image).__name__} that "
                    f"is not a rectangular array ({exc})"
                ) from None
        image = self._check_shape(image)
        self._check_values(image)
        return image

    def _check_shape(self, image: np.ndarray) -> np.ndarray:
        h, w = self.height, self.width
        wrong = f"expected {self.describe()}, got shape {image.shape}"
        if image.ndim == 4:
            wrong += " (one image, not a batch: use predict_batch for several)"
        if image.ndim not in (2, 3) or image.shape[:2] != (h, w):
            raise InvalidImageError(wrong)
        if self.channels == 1:
            if image.ndim == 2:
                return image[:, :, np.newaxis]
            c = image.shape[2]
            if c == 1:
                return image
            if c in (3, 4) and self.convert_rgb:
                self._check_values(image)  # check the pixels before mixing them
                return _to_grey(image)
            if c in (3, 4):
                wrong += (
                    " (a colour image; this model takes greyscale: convert it first, "
                    "or build the spec with convert_rgb=True)"
                )
            raise InvalidImageError(wrong)
        if image.ndim == 3 and image.shape[2] == 3:
            return image
        if image.ndim == 3 and image.shape[2] == 4:
            raise InvalidImageError(wrong + " (RGBA: drop the alpha channel, image[..., :3])")
        raise InvalidImageError(wrong)

    @staticmethod
    def _check_values(image: np.ndarray) -> None:
        kind = image.dtype.kind
        if kind in "ui":
            if image.dtype != np.uint8 and image.size:
                lo, hi = image.min(), image.max()
                if lo < 0 or hi > 255:
                    raise InvalidImageError(
                        f"expected pixel values 0..255, got {image.dtype} values in {lo}..{hi}"
                    )
            return
        if kind == "f":
            if not np.all(np.isfinite(image)):
                raise InvalidImageError("expected finite pixel values, got NaN or infinity")
            lo, hi = float(image.min()), float(image.max())
            if lo < 0 or hi > 1:
                hint = (
                    ": these look like 0..255 pixel values, pass image.astype(np.uint8)"
                    if lo >= 0 and hi <= 255
                    else ""
                )
                raise InvalidImageError(
                    f"expected a float image already scaled to [0, 1] (as in training), got "
                    f"{image.dtype} values in [{lo:g}, {hi:g}]{hint}"
                )
            return
        if kind == "b":
            raise InvalidImageError(
                "expected uint8 pixels (or floats in [0, 1]), got a boolean array: "
                "convert it with image.astype(np.uint8) * 255"
            )
        raise InvalidImageError(
            f"expected uint8 pixels (or floats in [0, 1]), got dtype {image.dtype}"
        )

    # ----- preprocessing

    def preprocess(self, image: Any) -> np.ndarray:
        """Validate one image and return the model input: ``float32``, ``(1, H, W, C)``, [0, 1].

        This is the training preprocessing (``prepare_images``) for a batch of one.

        Examples
        --------
        >>> ImageSpec(2, 2).preprocess(np.array([[0, 255], [51, 102]], dtype=np.uint8))[0, :, :, 0]
        array([[0. , 1. ],
               [0.2, 0.4]], dtype=float32)
        """
        return _scale(self.validate(image))[np.newaxis]

    def preprocess_batch(self, images: Any) -> np.ndarray:
        """Validate a batch and return ``float32`` ``(N, H, W, C)`` in [0, 1].

        ``images`` is an array ``(N, H, W)`` or ``(N, H, W, C)``, or a sequence of single
        images (arrays or PNG bytes) that are validated one by one.
        """
        if isinstance(images, np.ndarray) and images.dtype != object:
            if images.ndim not in (3, 4) or images.shape[0] == 0:
                raise InvalidImageError(self._batch_error(images.shape))
            if images.ndim == 3 and self.channels == 1:
                images = images[..., np.newaxis]
            if images.shape[1:] == self.shape:
                self._check_values(images)
                return _scale(images)
            if self.convert_rgb and images.ndim == 4 and images.shape[1:3] == self.shape[:2]:
                return np.concatenate([self.preprocess(im) for im in images])
            raise InvalidImageError(self._batch_error(images.shape))
        if isinstance(images, str | bytes) or not isinstance(images, Sequence | np.ndarray):
            raise InvalidImageError(
                f"expected a batch (an array (N, H, W[, C]) or a list of images), got "
                f"{type(images).__name__}"
            )
        if len(images) == 0:
            raise InvalidImageError("expected at least one image, got an empty batch")
        return np.concatenate([self.preprocess(im) for im in images])

    def _batch_error(self, shape: tuple[int, ...]) -> str:
        h, w, c = self.shape
        accepted = f"(N, {h}, {w}) or (N, {h}, {w}, 1)" if c == 1 else f"(N, {h}, {w}, 3)"
        return (
            f"expected a batch of {h}×{w} images, shape {accepted} with N >= 1, "
            f"got shape {shape}"
        )


def _to_grey(image: np.ndarray) -> np.ndarray:
    """RGB(A) ``(H, W, 3|4)`` -> ``(H, W, 1)`` by BT.601 luma, keeping integer or float type."""
    grey = image[..., :3].astype(np.float64) @ _LUMA
    if image.dtype.kind in "ui":
        grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    else:
        grey = grey.astype(np.float32)
    return grey[:, :, np.newaxis]


def _scale(image: np.ndarray) -> np.ndarray:
    """The training scaling: integers / 255 as float32; floats (already in [0, 1]) as float32."""
    if image.dtype.kind in "ui":
        return image.astype(np.float32) / np.float32(255)
    return image.astype(np.float32)


# --------------------------------------------------------------------------------------
# Predictions
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """The answer for one image: the class, its index and every class's probability.

    Attributes
    ----------
    label : str
        Name of the most probable class.
    class_index : int
        Its index into ``class_names``.
    probabilities : tuple of float
        One probability per class, in the order of ``class_names``.
    class_names : tuple of str
    """

    label: str
    class_index: int
    probabilities: tuple[float, ...]
    class_names: tuple[str, ...]

    @property
    def confidence(self) -> float:
        """Probability of the predicted class."""
        return self.probabilities[self.class_index]

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable classes as ``(name, probability)``, most probable first."""
        order = np.argsort(self.probabilities, kind="stable")[::-1][:k]
        return [(self.class_names[i], self.probabilities[i]) for i in order]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: label, class_index, confidence and probabilities by class name."""
        return {
            "label": self.label,
            "class_index": self.class_index,
            "confidence": self.confidence,
            "probabilities": dict(zip(self.class_names, self.probabilities, strict=True)),
        }

    @classmethod
    def from_probabilities(
        cls, probabilities: np.ndarray, class_names: Sequence[str]
    ) -> Prediction:
        """Build a prediction from one probability vector."""
        p = np.asarray(probabilities, dtype=np.float64).ravel()
        index = int(np.argmax(p))
        return cls(str(class_names[index]), index, tuple(float(v) for v in p), tuple(class_names))


# --------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------


def make_tflite_interpreter(model: bytes | str | os.PathLike, num_threads: int | None = None):
    """A TensorFlow Lite interpreter for a flat buffer (bytes) or a ``.tflite`` file.

    Uses LiteRT (package ``ai-edge-litert``), the interpreter's new home, when it is
    installed, and otherwise ``tf.lite.Interpreter``, which TensorFlow 2.21 still ships but
    marks as deprecated (its deprecation warning is silenced here, once).
    """
    kwargs: dict[str, Any] = {"num_threads": num_threads}
    if isinstance(model, bytes | bytearray):
        kwargs["model_content"] = bytes(model)
    else:
        kwargs["model_path"] = os.fspath(model)
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
            return tf.lite.Interpreter(**kwargs)
    return Interpreter(**kwargs)


class _TFLiteRunner:
    """Runs a float-input TFLite model on batches of any size (resizing the input as needed)."""

    def __init__(self, model: bytes | str | os.PathLike, num_threads: int | None) -> None:
        self.interpreter = make_tflite_interpreter(model, num_threads=num_threads)
        self.interpreter.allocate_tensors()
        (inp,) = self.interpreter.get_input_details()
        outputs = self.interpreter.get_output_details()
        if len(outputs) != 1:
            raise ValueError(f"expected a TFLite model with one output, got {len(outputs)}.")
        if inp["dtype"] != np.float32:
            raise ValueError(
                "expected a TFLite model with float32 input (float, dynamic-range or float16 "
                f"quantization), got input dtype {np.dtype(inp['dtype']).name}; fully "
                "integer-quantized models need their input quantized first."
            )
        self.input_index = inp["index"]
        self.output_index = outputs[0]["index"]
        self.input_shape = tuple(int(d) for d in inp["shape"])
        self.batch = self.input_shape[0]
        self.lock = threading.Lock()  # an interpreter must not run two calls at once

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self.lock:
            if batch.shape[0] != self.batch:
                self.interpreter.resize_tensor_input(self.input_index, list(batch.shape))
                self.interpreter.allocate_tensors()
                self.batch = batch.shape[0]
            self.interpreter.set_tensor(self.input_index, batch)
            self.interpreter.invoke()
            return np.array(self.interpreter.get_tensor(self.output_index))


def _as_class_names(class_names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise ValueError(
            f"class_names must be a sequence of strings, got {type(class_names).__name__}."
        )
    names = tuple(str(n) for n in class_names)
    if len(names) < 2:
        raise ValueError(f"class_names must name at least 2 classes, got {len(names)}.")
    if len(set(names)) != len(names):
        raise ValueError(f"class_names must be unique, got {names!r}.")
    return names


class Predictor:
    """A model plus everything needed to use it on raw images: the gate in front of a model.

    Build one with :meth:`from_keras`, :meth:`from_saved_model` or :meth:`from_tflite`
    (or give any function from a ``float32`` batch ``(N, H, W, C)`` to probabilities
    ``(N, K)``). At construction the model is run once on a blank image: this checks that
    it returns one probability per class name and takes the one-off cost of the first call
    (graph tracing, memory allocation) out of the first request.

    Parameters
    ----------
    predict_fn : callable
        ``predict_fn(batch) -> probabilities``, ``float32`` ``(N, H, W, C)`` in [0, 1] to
        an array ``(N, K)`` whose rows sum to 1.
    class_names : sequence of str
        The ``K`` class names, in the order of the model's outputs.
    spec : ImageSpec
        What an input image must look like.
    name, version : str
        Shown by the health route of :mod:`cnncourse.serve`, so a client can tell which
        model answered.
    backend : str
        Free text: ``"keras"``, ``"saved_model"``, ``"tflite"``...

    Examples
    --------
    >>> import keras
    >>> model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
    ...                           keras.layers.Dense(10, activation="softmax")])
    >>> predictor = Predictor.from_keras(model, [str(d) for d in range(10)])
    >>> p = predictor.predict_image(np.zeros((28, 28), dtype=np.uint8))
    >>> p.label in predictor.class_names, len(p.probabilities)
    (True, 10)
    """

    def __init__(
        self,
        predict_fn: Callable[[np.ndarray], Any],
        class_names: Sequence[str],
        spec: ImageSpec | None = None,
        *,
        name: str = "model",
        version: str = "1",
        backend: str = "custom",
    ) -> None:
        if not callable(predict_fn):
            raise ValueError(f"predict_fn must be callable, got {type(predict_fn).__name__}.")
        self._predict_fn = predict_fn
        self.class_names = _as_class_names(class_names)
        self.spec = ImageSpec() if spec is None else spec
        if not isinstance(self.spec, ImageSpec):
            raise ValueError(f"spec must be an ImageSpec, got {type(self.spec).__name__}.")
        self.name, self.version, self.backend = str(name), str(version), str(backend)
        self._warm_up()

    def _warm_up(self) -> None:
        blank = np.zeros((1, *self.spec.shape), dtype=np.float32)
        try:
            out = self._run(blank)
        except Exception as exc:
            raise ValueError(
                f"the model cannot run on a blank input of shape {blank.shape} "
                f"({type(exc).__name__}: {exc}); does the ImageSpec match the model?"
            ) from exc
        k = len(self.class_names)
        if out.shape != (1, k):
            raise ValueError(
                f"the model returned shape {out.shape} for one image; expected (1, {k}), one "
                f"probability per class name."
            )
        if not np.isclose(float(out.sum()), 1.0, atol=1e-3) or out.min() < -1e-6:
            raise ValueError(
                "the model's outputs for one image do not form probabilities (they sum to "
                f"{float(out.sum()):.4g}): end the model with a softmax, or wrap it."
            )

    def _run(self, batch: np.ndarray) -> np.ndarray:
        out = self._predict_fn(batch)
        if isinstance(out, dict):  # a SavedModel signature returns {name: tensor}
            if len(out) != 1:
                raise ValueError(f"expected one model output, got {sorted(out)}.")
            (out,) = out.values()
        if not isinstance(out, np.ndarray):
            out = np.asarray(out.numpy() if hasattr(out, "numpy") else out)
        return out

    # ----- constructors

    @classmethod
    def from_keras(
        cls,
        model: Any,
        class_names: Sequence[str],
        spec: ImageSpec | None = None,
        *,
        name: str | None = None,
        version: str = "1",
    ) -> Predictor:
        """Wrap a Keras model, or load a ``.keras`` file (with ``safe_mode=True``) and wrap it.

        The model is called as ``model(batch, training=False)``. Passing ``training=False``
        explicitly matters: random augmentation layers default to training behaviour when
        the flag is left out, and in Keras 3 up to at least 3.15 that default also reaches
        the batch-norm and dropout layers after them.
        """
        import keras

        if isinstance(model, str | os.PathLike):
            model = keras.saving.load_model(os.fspath(model), safe_mode=True)
        if not isinstance(model, keras.Model):
            raise ValueError(
                f"model must be a keras.Model or a path to a .keras file, got "
                f"{type(model).__name__}."
            )
        spec = spec or ImageSpec.from_shape(model.input_shape)
        _check_spec(spec, model.input_shape)

        def run(batch: np.ndarray) -> np.ndarray:
            return keras.ops.convert_to_numpy(model(batch, training=False))

        return cls(run, class_names, spec, name=name or model.name, version=version,
                   backend="keras")

    @classmethod
    def from_saved_model(
        cls,
        path: str | os.PathLike,
        class_names: Sequence[str],
        spec: ImageSpec | None = None,
        *,
        endpoint: str = "serve",
        name: str | None = None,
        version: str = "1",
    ) -> Predictor:
        """Load a SavedModel (as written by ``model.export(path)``) and wrap one endpoint.

        ``endpoint`` is the name of a function of the loaded object (``"serve"`` for
        ``model.export``) or of one of its signatures (``"serving_default"``).
        """
        import tensorflow as tf

        loaded = tf.saved_model.load(os.fspath(path))
        if endpoint in getattr(loaded, "signatures", {}):
            fn = loaded.signatures[endpoint]
            (input_spec,) = fn.structured_input_signature[1].values()
            (arg_name,) = fn.structured_input_signature[1].keys()

            def call(x):
                return fn(**{arg_name: x})
        elif callable(getattr(loaded, endpoint, None)):
            fn = getattr(loaded, endpoint)
            concrete = fn.concrete_functions
            if len(concrete) == 0:
                raise ValueError(f"the endpoint {endpoint!r} has no traced signature.")
            (input_spec,) = concrete[0].structured_input_signature[0]
            call = fn
        else:
            raise ValueError(
                f"the SavedModel at {os.fspath(path)!r} has no endpoint {endpoint!r}; "
                f"signatures: {sorted(getattr(loaded, 'signatures', {}))}."
            )
        model_shape = tuple(input_spec.shape)
        spec = spec or ImageSpec.from_shape(model_shape)
        _check_spec(spec, model_shape)

        def run(batch: np.ndarray):
            return call(tf.constant(batch))

        predictor = cls(run, class_names, spec, name=name or Path(path).name, version=version,
                        backend="saved_model")
        predictor._keepalive = loaded  # the endpoint's variables live in this object
        return predictor

    @classmethod
    def from_tflite(
        cls,
        model: bytes | str | os.PathLike,
        class_names: Sequence[str],
        spec: ImageSpec | None = None,
        *,
        num_threads: int | None = None,
        name: str = "tflite",
        version: str = "1",
    ) -> Predictor:
        """Wrap a TensorFlow Lite model: the flat buffer's bytes, or a ``.tflite`` file.

        The model must take ``float32`` input; float, dynamic-range and float16 quantized
        conversions all do. Calls are serialised with a lock, because one interpreter must
        not run two calls at once.
        """
        runner = _TFLiteRunner(model, num_threads)
        spec = spec or ImageSpec.from_shape(runner.input_shape)
        _check_spec(spec, runner.input_shape)
        return cls(runner, class_names, spec, name=name, version=version, backend="tflite")

    # ----- using it

    def preprocess(self, image: Any) -> np.ndarray:
        """Validate one image and return the model input, ``float32`` ``(1, H, W, C)``."""
        return self.spec.preprocess(image)

    def predict_proba(self, images: Any) -> np.ndarray:
        """Class probabilities ``(N, K)`` for a batch (see :meth:`ImageSpec.preprocess_batch`)."""
        return self._run(self.spec.preprocess_batch(images))

    def predict_batch(self, images: Any) -> list[Prediction]:
        """One :class:`Prediction` per image of a batch."""
        return [
            Prediction.from_probabilities(p, self.class_names) for p in self.predict_proba(images)
        ]

    def predict_image(self, image: Any) -> Prediction:
        """Predict the class of one image: an array or the bytes of a PNG file.

        Raises
        ------
        InvalidImageError
            The image does not fit :attr:`spec`; the message says how.
        """
        probabilities = self._run(self.spec.preprocess(image))
        return Prediction.from_probabilities(probabilities[0], self.class_names)

    def describe(self) -> dict[str, Any]:
        """Name, version, backend, input spec and class names, JSON-friendly."""
        return {
            "name": self.name,
            "version": self.version,
            "backend": self.backend,
            "input": self.spec.to_dict(),
            "classes": list(self.class_names),
        }

    def __repr__(self) -> str:
        return (
            f"Predictor(name={self.name!r}, version={self.version!r}, backend={self.backend!r}, "
            f"input={self.spec.shape}, classes={len(self.class_names)})"
        )


def inference_model(model: Any, *, seed: int = 0) -> Any:
    """A ``keras.Sequential`` model without the layers that do nothing at inference.

    Random augmentation layers (``RandomTranslation``, ``RandomRotation``, ``RandomFlip``...)
    and ``Dropout`` are the identity at inference, but they are still part of the model:
    exported, they bring operations a TensorFlow Lite converter cannot handle, and in Keras
    3 up to at least 3.15 a ``model.export()`` of a model that *starts* with an
    augmentation layer traces the whole model in training mode (the augmentation layer's
    default ``training=True`` leaks to the batch-norm and dropout layers after it; fixed
    upstream in keras-team/keras pull request 23166).

    This function runs a random probe batch through the layers with ``training=False`` and
    keeps every layer whose output differs from its input. The result shares the layers,
    and so the weights, with ``model``: nothing is copied, and its predictions are those
    of ``model.predict``.

    Parameters
    ----------
    model : keras.Sequential
    seed : int
        Seed of the probe batch.

    Returns
    -------
    keras.Sequential
        Named ``<model name>_serving``.

    Examples
    --------
    >>> import keras
    >>> m = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.RandomFlip(),
    ...                       keras.layers.Flatten(), keras.layers.Dropout(0.5),
    ...                       keras.layers.Dense(2, activation="softmax")])
    >>> [layer.name.split("_")[0] for layer in inference_model(m).layers]
    ['flatten', 'dense']
    """
    import keras

    if not isinstance(model, keras.Sequential):
        raise ValueError(
            "inference_model works on keras.Sequential models, got "
            f"{type(model).__name__}; for other models call them with training=False."
        )
    shape = tuple(model.input_shape[1:])
    if any(d is None for d in shape):
        raise ValueError(f"the model's input shape {model.input_shape} must be fully known.")
    x = np.random.default_rng(seed).uniform(size=(2, *shape)).astype(np.float32)
    kept = []
    for layer in model.layers:
        y = keras.ops.convert_to_numpy(layer(x, training=False))
        if y.shape == x.shape and np.allclose(y, x, rtol=0, atol=1e-7):
            continue  # the identity at inference
        kept.append(layer)
        x = y
    return keras.Sequential([keras.Input(shape), *kept], name=f"{model.name}_serving")


def _check_spec(spec: ImageSpec, model_shape: Sequence[Any]) -> None:
    if not isinstance(spec, ImageSpec):
        raise ValueError(f"spec must be an ImageSpec, got {type(spec).__name__}.")
    dims = tuple(None if d is None else int(d) for d in model_shape)
    dims = dims[1:] if len(dims) == 4 else dims
    if len(dims) != 3 or any(
        d is not None and d != s for d, s in zip(dims, spec.shape, strict=True)
    ):
        raise ValueError(
            f"spec {spec.shape} does not match the model's input shape {tuple(model_shape)}."
        )
