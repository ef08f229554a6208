"""The ImageNet loader on both of its paths, without a network and without 528 MB files.

Weights-available path: a *stand-in* weights file is written where Keras caches the real
one (``$KERAS_HOME/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``), in the
layout of the real file (Keras 2's HDF5 ``save_weights`` format: a ``layer_names``
attribute, one group per layer with a ``weight_names`` attribute). The notop file is used
because it holds the same 13 convolutions as the full one but is 58 MB instead of 528 MB;
the loader treats both names identically (the full-name path is exercised with a file
that cannot be loaded). Weights-unavailable path: an empty cache with downloads disabled,
and an unreachable download host.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import h5py
import keras
import numpy as np
import pytest

from cnncourse import pretrained
from cnncourse.pretrained import (
    IMAGENET_CLASS_INDEX_FILE,
    VGG16_WEIGHT_FILES,
    cached_vgg16_weights,
    decode_imagenet,
    imagenet_photo_batch,
    keras_models_dir,
    load_vgg16_imagenet,
)


def write_keras2_weights(model: keras.Model, path) -> None:
    """Save ``model``'s weights the way Keras 2 wrote the application weight files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for layer in model.layers:
            group = f.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:0" for w in layer.weights]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for name, value in zip(names, layer.get_weights(), strict=True):
                group.create_dataset(name, data=value)


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("CNNCOURSE_OFFLINE", "1")
    return tmp_path / "keras_home"


@pytest.fixture(scope="module")
def stand_in_notop() -> keras.Model:
    keras.utils.set_random_seed(123)
    return keras.applications.VGG16(weights=None, include_top=False)


def test_models_dir_honours_keras_home(keras_home):
    assert keras_models_dir() == keras_home / "models"
    assert cached_vgg16_weights(True) is None and cached_vgg16_weights(False) is None


def test_offline_without_cache_returns_none_and_says_why(keras_home):
    for include_top in (True, False):
        model, message = load_vgg16_imagenet(include_top=include_top)
        assert model is None
        assert message.startswith("ImageNet weights unavailable")
        assert VGG16_WEIGHT_FILES[include_top] in message
        assert "downloads are disabled" in message


def test_unreachable_host_returns_none_without_calling_keras(keras_home, monkeypatch):
    monkeypatch.setattr(pretrained, "_download_host_reachable", lambda: False)

    def boom(*args, **kwargs):
        raise AssertionError("keras.applications.VGG16 must not be called")

    monkeypatch.setattr(keras.applications, "VGG16", boom)
    model, message = load_vgg16_imagenet(include_top=False, allow_download=True)
    assert model is None and "cannot be reached" in message


def test_cached_stand_in_weights_are_loaded(keras_home, stand_in_notop):
    path = keras_home / "models" / VGG16_WEIGHT_FILES[False]
    write_keras2_weights(stand_in_notop, path)
    assert cached_vgg16_weights(False) == path

    model, message = load_vgg16_imagenet(include_top=False)
    assert model is not None, message
    assert "loaded from the Keras cache" in message and str(path) in message
    assert [layer.name for layer in model.layers[1:]] == [
        layer.name for layer in stand_in_notop.layers[1:]
    ]
    for ours, ref in zip(model.weights, stand_in_notop.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(ref))

    # The convolutions do not depend on the input size: a smaller input loads the same file.
    small, _ = load_vgg16_imagenet(include_top=False, input_shape=(48, 48, 3))
    assert small.output_shape == (None, 1, 1, 512)
    np.testing.assert_array_equal(
        small.get_layer("block5_conv3").get_weights()[0],
        stand_in_notop.get_layer("block5_conv3").get_weights()[0],
    )


def test_a_broken_cached_file_is_reported_not_replaced(keras_home):
    path = keras_home / "models" / VGG16_WEIGHT_FILES[True]
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an HDF5 file")
    model, message = load_vgg16_imagenet(include_top=True)
    assert model is None
    assert "could not be loaded" in message and str(path) in message


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"include_top": "yes"}, "include_top"),
        ({"include_top": True, "input_shape": (48, 48, 3)}, "include_top=False"),
        ({"include_top": False, "input_shape": (16, 16, 3)}, "input_shape"),
        ({"include_top": False, "input_shape": (48, 48, 1)}, "input_shape"),
        ({"include_top": False, "allow_download": "no"}, "allow_download"),
    ],
)
def test_loader_rejects_bad_arguments(keras_home, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_vgg16_imagenet(**kwargs)


def test_photo_batch_is_vgg16_preprocessing():
    images, batch = imagenet_photo_batch(["cat", "camera"], size=64)
    assert images.shape == batch.shape == (2, 64, 64, 3)
    assert images.dtype == np.uint8 and batch.dtype == np.float32
    mean_bgr = np.array([103.939, 116.779, 123.68], dtype=np.float32)
    np.testing.assert_allclose(batch, images[..., ::-1].astype(np.float32) - mean_bgr, atol=1e-4)
    with pytest.raises(ValueError, match="size"):
        imagenet_photo_batch(["cat"], size=8)
    with pytest.raises(ValueError, match="names"):
        imagenet_photo_batch("cat")


def test_decode_uses_the_cached_class_index(keras_home):
    index = {str(i): [f"n{i:08d}", f"name_{i}"] for i in range(1000)}
    (keras_home / "models").mkdir(parents=True)
    (keras_home / "models" / IMAGENET_CLASS_INDEX_FILE).write_text(json.dumps(index))
    probs = np.full((2, 1000), 1e-4)
    probs[0, [281, 285, 7]] = [0.5, 0.3, 0.1]
    probs[1, 999] = 0.9
    decoded = decode_imagenet(probs, top=3)
    assert [name for _, name, _ in decoded[0]] == ["name_281", "name_285", "name_7"]
    assert decoded[0][0] == ("n00000281", "name_281", 0.5)
    assert decoded[1][0][1] == "name_999"


def test_decode_without_index_names_classes_by_number(keras_home):
    probs = np.zeros((1, 1000))
    probs[0, 42] = 1.0
    assert decode_imagenet(probs, top=2)[0][0] == ("", "class 42", 1.0)
    with pytest.raises(ValueError, match="probs"):
        decode_imagenet(np.zeros((1, 10)))
    with pytest.raises(ValueError, match="top"):
        decode_imagenet(probs, top=0)


# --------------------------------------------------------------------------- chapter 6b


@pytest.mark.slow
def test_chapter_6b_runs_its_imagenet_branches(keras_home, stand_in_notop):
    """Execute chapter 6b as if the ImageNet weights were there.

    The notop stand-in sits in the Keras cache, where the real loader finds it. For the
    528 MB top file a stand-in would make this test far too slow, so an injected first cell
    makes the loader return a randomly initialised VGG16 for ``include_top=True`` (in this
    test only). A second injected cell shrinks the experiment to one labelled-set size and a
    tenth of the test images; everything else runs as written.
    """
    import nbformat
    from nbclient import NotebookClient

    root = Path(__file__).resolve().parent.parent
    write_keras2_weights(stand_in_notop, keras_home / "models" / VGG16_WEIGHT_FILES[False])
    index = {str(i): [f"n{i:08d}", f"standin_{i}"] for i in range(1000)}
    (keras_home / "models" / IMAGENET_CLASS_INDEX_FILE).write_text(json.dumps(index))

    nb = nbformat.read(root / "chapters" / "06b_transfer_learning.ipynb", as_version=4)
    patch_top = nbformat.v4.new_code_cell(
        "import keras\n"
        "import cnncourse.pretrained as _pretrained\n"
        "_real_loader = _pretrained.load_vgg16_imagenet\n"
        "def _test_loader(include_top=True, **kwargs):\n"
        "    if include_top:\n"
        "        return keras.applications.VGG16(weights=None), 'TEST STAND-IN (top)'\n"
        "    return _real_loader(include_top=include_top, **kwargs)\n"
        "_pretrained.load_vgg16_imagenet = _test_loader\n"
    )
    shrink = nbformat.v4.new_code_cell(
        "PER_CLASS = [5]\n"
        "test_idx = test_idx[::10]\n"
        "x_target_test = fashion.x_test[test_idx]\n"
        "y_target_test = fashion.y_test[test_idx] - 5\n"
    )
    data_cell = next(i for i, c in enumerate(nb.cells) if "PER_CLASS = [5, 20, 100]" in c.source)
    nb.cells.insert(data_cell + 1, shrink)
    nb.cells.insert(0, patch_top)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(root / "chapters")}}).execute()

    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs if o.output_type == "stream" and o.name == "stdout")
    assert "TEST STAND-IN (top)" in text
    assert "first guess for the cat photo is 'standin_" in text
    assert "without the top (notop) loaded from the Keras cache" in text
    assert "base: VGG16's convolutional base with ImageNet weights" in text
    assert "5 per class: features" in text
    assert "pretrained on" not in text  # the offline fallback did not run
