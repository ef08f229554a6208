"""cnncourse.inference: the training preprocessing exactly, clear refusals, backends that agree."""

from __future__ import annotations

import io
import os
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest
from PIL import Image

from cnncourse.datasets import prepare_images
from cnncourse.inference import (
    ImageDecodeError,
    ImageSpec,
    InvalidImageError,
    Prediction,
    Predictor,
    decode_png,
    encode_png,
    is_png,
)

DIGITS = [str(d) for d in range(10)]


def _image(seed: int = 0, shape=(28, 28)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _png(array: np.ndarray, **save_kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", **save_kwargs)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model() -> keras.Model:
    keras.utils.set_random_seed(3)
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="tiny",
    )


@pytest.fixture(scope="module")
def artifacts(model, tmp_path_factory):
    """The same model as .keras file, exported SavedModel and TFLite flat buffer."""
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("artifacts")
    keras_path = folder / "tiny.keras"
    model.save(keras_path)
    saved = folder / "tiny_saved"
    model.export(saved, verbose=False)
    tflite = tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert()
    return keras_path, saved, tflite


# --------------------------------------------------------------------------- preprocessing


def test_preprocess_is_the_training_preprocessing():
    spec = ImageSpec()
    image = _image()
    got = spec.preprocess(image)
    assert got.dtype == np.float32 and got.shape == (1, 28, 28, 1)
    np.testing.assert_array_equal(got, prepare_images(image[np.newaxis]))
    np.testing.assert_array_equal(spec.preprocess(image[:, :, np.newaxis]), got)


def test_float_images_in_unit_range_pass_unchanged_and_ints_in_range_are_scaled():
    spec = ImageSpec()
    floats = _image().astype(np.float64) / 255
    np.testing.assert_array_equal(spec.preprocess(floats)[0, :, :, 0], floats.astype(np.float32))
    ints = _image().astype(np.int64)
    np.testing.assert_array_equal(spec.preprocess(ints), spec.preprocess(ints.astype(np.uint8)))
    assert spec.preprocess(ints.tolist()).shape == (1, 28, 28, 1)  # nested lists are fine


def test_wrong_size_names_expected_and_received_shape():
    with pytest.raises(InvalidImageError) as info:
        ImageSpec().preprocess(np.zeros((32, 32, 3), dtype=np.uint8))
    assert str(info.value) == (
        "expected a 28×28 greyscale image, shape (28, 28) or (28, 28, 1), got shape (32, 32, 3)"
    )
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("image", "words"),
    [
        (np.zeros((28, 28, 3), dtype=np.uint8), ["(28, 28, 3)", "colour", "convert_rgb"]),
        (np.zeros((28, 28, 2), dtype=np.uint8), ["(28, 28, 2)"]),
        (np.zeros((1, 28, 28, 1), dtype=np.uint8), ["(1, 28, 28, 1)", "batch"]),
        (np.zeros((28,), dtype=np.uint8), ["(28,)"]),
        (np.zeros((0, 28), dtype=np.uint8), ["(0, 28)"]),
        (np.zeros((28, 29), dtype=np.uint8), ["(28, 29)"]),
        (np.full((28, 28), 255.0), ["[0, 1]", "[255, 255]", "astype(np.uint8)"]),
        (np.full((28, 28), -0.5), ["[0, 1]", "-0.5"]),
        (np.full((28, 28), np.nan), ["NaN"]),
        (np.full((28, 28), 300, dtype=np.int64), ["0..255", "300"]),
        (np.zeros((28, 28), dtype=bool), ["boolean"]),
        (np.zeros((28, 28), dtype=np.complex64), ["complex64"]),
        ("a string", ["str"]),
        (None, ["NoneType"]),
        ([[0, 1], [2]], ["rectangular"]),
    ],
)
def test_invalid_images_raise_a_clear_error(image, words):
    with pytest.raises(InvalidImageError) as info:
        ImageSpec().preprocess(image)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_rgb_conversion_uses_pillows_luma_weights():
    rgb = _image(1, (28, 28, 3))
    got = ImageSpec(convert_rgb=True).validate(rgb)[:, :, 0]
    pillow = np.asarray(Image.fromarray(rgb).convert("L"))
    assert np.abs(got.astype(int) - pillow.astype(int)).max() <= 1  # integer vs float rounding
    rgba = np.concatenate([rgb, np.full((28, 28, 1), 7, np.uint8)], axis=-1)
    np.testing.assert_array_equal(ImageSpec(convert_rgb=True).validate(rgba)[:, :, 0], got)
    with pytest.raises(InvalidImageError, match="0..255"):
        ImageSpec(convert_rgb=True).validate(np.full((28, 28, 3), 999, dtype=np.int32))


def test_rgb_spec_takes_three_channels():
    spec = ImageSpec(8, 8, 3)
    assert spec.preprocess(_image(0, (8, 8, 3))).shape == (1, 8, 8, 3)
    with pytest.raises(InvalidImageError, match="RGB"):
        spec.preprocess(_image(0, (8, 8)))
    with pytest.raises(InvalidImageError, match="alpha"):
        spec.preprocess(_image(0, (8, 8, 4)))


def test_batches():
    spec = ImageSpec()
    batch = _image(2, (5, 28, 28))
    np.testing.assert_array_equal(spec.preprocess_batch(batch), prepare_images(batch))
    np.testing.assert_array_equal(spec.preprocess_batch(list(batch)), prepare_images(batch))
    np.testing.assert_array_equal(
        spec.preprocess_batch([encode_png(im) for im in batch]), prepare_images(batch)
    )
    for bad in (np.zeros((0, 28, 28), np.uint8), np.zeros((5, 32, 32), np.uint8), [], "x"):
        with pytest.raises(InvalidImageError):
            spec.preprocess_batch(bad)
    with pytest.raises(InvalidImageError, match="255"):
        spec.preprocess_batch(np.full((2, 28, 28), 255.0))


def test_spec_arguments_are_checked():
    for kwargs in ({"height": 0}, {"channels": 2}, {"convert_rgb": "yes"}, {"width": 2.5}):
        with pytest.raises(ValueError):
            ImageSpec(**kwargs)
    assert ImageSpec.from_shape((None, 32, 24, 3)).shape == (32, 24, 3)
    with pytest.raises(ValueError, match="known"):
        ImageSpec.from_shape((None, None, None, 1))


# --------------------------------------------------------------------------- PNG


def test_png_round_trip_and_modes():
    image = _image()
    data = encode_png(image)
    assert is_png(data)
    np.testing.assert_array_equal(decode_png(data), image)
    np.testing.assert_array_equal(ImageSpec().preprocess(data), ImageSpec().preprocess(image))
    bilevel = _png(np.where(image > 127, 255, 0).astype(np.uint8).astype(bool))
    assert set(np.unique(decode_png(bilevel))) <= {0, 255}
    rgb = _image(4, (28, 28, 3))
    assert decode_png(_png(rgb)).shape == (28, 28, 3)
    palette = Image.fromarray(rgb).convert("P")
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    assert decode_png(buffer.getvalue()).shape == (28, 28, 3)


def test_png_errors():
    data = encode_png(_image())
    with pytest.raises(ImageDecodeError, match="PNG"):
        decode_png(b"GIF89a" + bytes(100))
    with pytest.raises(ImageDecodeError, match="0 bytes"):
        decode_png(b"")
    with pytest.raises(ImageDecodeError, match="could not decode"):
        decode_png(data[: len(data) // 2])  # truncated
    corrupt = bytearray(data)
    corrupt[60:80] = bytes(20)
    with pytest.raises(ImageDecodeError):
        decode_png(bytes(corrupt))
    with pytest.raises(InvalidImageError, match="32×32 PNG") as info:
        ImageSpec().preprocess(encode_png(_image(0, (32, 32))))
    assert not isinstance(info.value, ImageDecodeError)  # decodable, only the wrong size
    with pytest.raises(InvalidImageError, match="colour"):
        ImageSpec().preprocess(encode_png(_image(0, (28, 28, 3))))
    sixteen = _png(np.full((28, 28), 40000, dtype=np.uint16))
    with pytest.raises(InvalidImageError, match="16-bit"):
        ImageSpec().preprocess(sixteen)
    with pytest.raises(InvalidImageError, match="str"):
        decode_png("not bytes")


def test_a_huge_png_is_refused_before_its_pixels_are_decoded():
    huge = encode_png(np.zeros((4000, 4000), dtype=np.uint8))  # 16 megapixels, a few KB
    assert len(huge) < 100_000
    with pytest.raises(InvalidImageError, match="4000×4000"):
        ImageSpec().preprocess(huge)


# --------------------------------------------------------------------------- Predictor


def test_prediction_helpers():
    p = Prediction.from_probabilities(np.array([0.1, 0.7, 0.2]), ["a", "b", "c"])
    assert (p.label, p.class_index, p.confidence) == ("b", 1, pytest.approx(0.7))
    assert [name for name, _ in p.top(2)] == ["b", "c"]
    assert p.to_dict()["probabilities"] == {"a": 0.1, "b": 0.7, "c": pytest.approx(0.2)}


def test_all_backends_agree(model, artifacts):
    keras_path, saved, tflite = artifacts
    predictors = [
        Predictor.from_keras(model, DIGITS),
        Predictor.from_keras(keras_path, DIGITS),
        Predictor.from_saved_model(saved, DIGITS),
        Predictor.from_saved_model(saved, DIGITS, endpoint="serving_default"),
        Predictor.from_tflite(tflite, DIGITS),
    ]
    batch = _image(5, (7, 28, 28))
    reference = model.predict(prepare_images(batch), verbose=0)
    for predictor in predictors:
        assert predictor.spec == ImageSpec()
        probs = predictor.predict_proba(batch)
        np.testing.assert_allclose(probs, reference, atol=1e-5, err_msg=predictor.backend)
        one = predictor.predict_image(encode_png(batch[3]))
        assert one.class_index == int(reference[3].argmax())
        assert [p.label for p in predictor.predict_batch(batch)] == [
            DIGITS[i] for i in reference.argmax(1)
        ]
        assert predictor.describe()["classes"] == DIGITS


def test_tflite_file_and_threads(artifacts, tmp_path):
    *_, tflite = artifacts
    path = tmp_path / "tiny.tflite"
    path.write_bytes(tflite)
    predictor = Predictor.from_tflite(path, DIGITS, num_threads=1)
    images = _image(6, (16, 28, 28))
    expected = predictor.predict_proba(images)
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:  # alternating batch sizes force input resizing under the lock
        results[i] = predictor.predict_proba(images[: 1 + i % 3 * 7])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == len(threads)
    for probs in results.values():
        np.testing.assert_allclose(probs, expected[: len(probs)], atol=1e-6)


def test_predictor_runs_keras_models_in_inference_mode():
    # Augmentation layers default to training behaviour when `training` is left out; the
    # Predictor must pass training=False so predictions are deterministic.
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.RandomTranslation(0.2, 0.2),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    predictor = Predictor.from_keras(model, DIGITS)
    batch = _image(7, (4, 28, 28))
    first = predictor.predict_proba(batch)
    np.testing.assert_array_equal(predictor.predict_proba(batch), first)
    np.testing.assert_allclose(first, model.predict(prepare_images(batch), verbose=0), atol=1e-6)


def test_predictor_refuses_mismatches(model):
    with pytest.raises(ValueError, match="class"):
        Predictor.from_keras(model, DIGITS[:5])
    with pytest.raises(ValueError, match="unique"):
        Predictor.from_keras(model, ["a"] * 10)
    with pytest.raises(ValueError, match="does not match"):
        Predictor.from_keras(model, DIGITS, ImageSpec(32, 32, 1))
    with pytest.raises(ValueError, match="keras.Model"):
        Predictor.from_keras(object(), DIGITS)
    logits = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                               keras.layers.Dense(10, bias_initializer="ones")])
    with pytest.raises(ValueError, match="softmax"):
        Predictor.from_keras(logits, DIGITS)
    with pytest.raises(ValueError, match="callable"):
        Predictor("not a function", DIGITS)


def test_saved_model_endpoint_must_exist(artifacts):
    _, saved, _ = artifacts
    with pytest.raises(ValueError, match="no endpoint"):
        Predictor.from_saved_model(saved, DIGITS, endpoint="nope")


# --------------------------------------------------------------------------- inference_model


def test_inference_model_drops_training_only_layers_and_exports_faithfully(tmp_path):
    import tensorflow as tf

    from cnncourse.inference import inference_model

    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.RandomTranslation(0.1, 0.1, name="shift"),
            keras.layers.RandomRotation(0.05, name="rotate"),
            keras.layers.Rescaling(2.0, offset=-1.0, name="rescale"),  # kept: not the identity
            keras.layers.Conv2D(4, 3, use_bias=False, name="conv"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dropout(0.5, name="drop"),
            keras.layers.Dense(10, activation="softmax", name="out"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
    x = prepare_images(_image(8, (32, 28, 28)))
    model.fit(x, np.arange(32) % 10, epochs=1, verbose=0)  # moving statistics move
    serving = inference_model(model)
    assert [layer.name for layer in serving.layers] == ["rescale", "conv", "bn", "flatten", "out"]
    assert serving.layers[1] is model.get_layer("conv")  # shared, not copied
    expected = model.predict(x, verbose=0)
    np.testing.assert_allclose(serving.predict(x, verbose=0), expected, atol=1e-6)
    serving.export(tmp_path / "saved", verbose=False)
    loaded = tf.saved_model.load(str(tmp_path / "saved"))
    np.testing.assert_allclose(loaded.serve(x).numpy(), expected, atol=1e-5)
    tflite = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "saved")).convert()
    np.testing.assert_allclose(
        Predictor.from_tflite(tflite, DIGITS).predict_proba(x), expected, atol=1e-5
    )


def test_inference_model_needs_a_sequential_model():
    from cnncourse.inference import inference_model

    inputs = keras.Input((4,))
    functional = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="Sequential"):
        inference_model(functional)
