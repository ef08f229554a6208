"""cnncourse.serve through FastAPI's TestClient: answers, 4xx refusals, and the server stays up."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest
from fastapi.testclient import TestClient

from cnncourse.inference import ImageSpec, Predictor, encode_png
from cnncourse.serve import DEFAULT_MAX_UPLOAD_BYTES, create_app, main

DIGITS = [str(d) for d in range(10)]


def _image(seed: int = 0, shape=(28, 28)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    return Predictor.from_keras(model, DIGITS, name="tiny", version="2026.07-test")


@pytest.fixture()
def client(predictor) -> TestClient:
    return TestClient(create_app(predictor, max_upload_bytes=4096))


def _upload(client: TestClient, data: bytes, name: str = "digit.png"):
    return client.post("/predict", files={"file": (name, data, "image/png")})


def test_health_reports_the_model_and_its_version(client):
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["model"]["version"] == "2026.07-test"
    assert body["model"]["name"] == "tiny"
    assert body["model"]["classes"] == DIGITS
    assert body["model"]["input"]["height"] == 28
    assert body["max_upload_bytes"] == 4096


def test_a_valid_png_gets_the_predictors_answer(client, predictor):
    image = _image()
    expected = predictor.predict_image(image)
    for response in (
        _upload(client, encode_png(image)),
        client.post("/predict", content=encode_png(image), headers={"Content-Type": "image/png"}),
        client.post(
            "/predict",
            content=encode_png(image),
            headers={"Content-Type": "application/octet-stream"},
        ),
    ):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["label"] == expected.label
        assert body["class_index"] == expected.class_index
        assert body["model_version"] == "2026.07-test"
        assert body["probabilities"] == pytest.approx(expected.to_dict()["probabilities"])
        assert sum(body["probabilities"].values()) == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize(
    ("make_request", "status", "words"),
    [
        (lambda c: _upload(c, b"\x00\x01garbage" * 10), 415, ["PNG", "90 bytes"]),
        (lambda c: _upload(c, encode_png(_image())[:60]), 400, ["could not decode"]),
        (lambda c: _upload(c, b""), 400, ["empty"]),
        (lambda c: _upload(c, encode_png(_image(0, (32, 32)))), 422, ["28×28", "32×32"]),
        (lambda c: _upload(c, encode_png(_image(0, (28, 28, 3)))), 422, ["colour", "(28, 28, 3)"]),
        (lambda c: _upload(c, bytes(5000)), 413, ["4,096"]),
        (lambda c: c.post("/predict", content=b"x" * 5000,
                          headers={"Content-Type": "image/png"}), 413, ["4,096", "5,000"]),
        (lambda c: c.post("/predict", content=(b"\x89PNG" * 500 for _ in range(4)),
                          headers={"Content-Type": "image/png"}), 413, ["4,096"]),
        (lambda c: c.post("/predict", content=b"{}",
                          headers={"Content-Type": "application/json"}), 415, ["application/json"]),
        (lambda c: c.post("/predict", content=b"abc"), 415, ["no Content-Type"]),
        (lambda c: c.post("/predict", data={"image": "x"},
                          files={"other": ("a.png", b"x", "image/png")}), 400, ["'file'"]),
        (lambda c: c.post("/predict", data={"file": "just text"}), 415, ["urlencoded"]),
    ],
    ids=[
        "not-a-png",
        "truncated-png",
        "empty",
        "wrong-size",
        "colour",
        "oversized-multipart",
        "oversized-raw",
        "oversized-chunked-without-length",
        "json",
        "no-content-type",
        "wrong-field",
        "text-field",
    ],
)
def test_bad_requests_get_a_4xx_with_a_message_and_the_server_stays_up(
    client, make_request, status, words
):
    response = make_request(client)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    for word in words:
        assert word in detail, (word, detail)
    again = _upload(client, encode_png(_image(9)))  # the next good request still works
    assert again.status_code == 200
    served = client.get("/health").json()["served"]
    assert served["predictions"] == 1
    assert served[f"rejected_{status}"] == 1


def test_a_failing_model_gives_500_without_internals_and_the_server_stays_up(caplog):
    calls = {"n": 0}

    def flaky(batch: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 2:  # the first call is the predictor's warm-up
            raise RuntimeError("secret internal detail")
        return np.full((len(batch), 10), 0.1, dtype=np.float32)

    client = TestClient(create_app(Predictor(flaky, DIGITS)))
    with caplog.at_level("ERROR", logger="cnncourse.serve"):
        response = _upload(client, encode_png(_image()))
    assert response.status_code == 500
    assert "secret" not in response.text
    assert "secret internal detail" in caplog.text
    assert _upload(client, encode_png(_image())).status_code == 200
    assert client.get("/health").json()["served"] == {"errors_500": 1, "predictions": 1}


def test_method_and_route_errors(client):
    assert client.get("/predict").status_code == 405
    assert client.get("/nothing-here").status_code == 404


def test_create_app_checks_its_arguments(predictor):
    with pytest.raises(ValueError, match="Predictor"):
        create_app("model.keras")
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="max_upload_bytes"):
            create_app(predictor, max_upload_bytes=bad)
    assert DEFAULT_MAX_UPLOAD_BYTES >= 1024


def test_rgb_model_and_conversion(predictor):
    spec = ImageSpec(convert_rgb=True)
    converting = Predictor(predictor._predict_fn, DIGITS, spec)
    client = TestClient(create_app(converting))
    assert _upload(client, encode_png(_image(0, (28, 28, 3)))).status_code == 200


def test_main_explains_what_is_missing(monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_uvicorn(name, *args, **kwargs):
        if name == "uvicorn":
            raise ImportError("no uvicorn")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_uvicorn)
    with pytest.raises(SystemExit):
        main(["model.keras"])
    assert "pip install uvicorn" in capsys.readouterr().err
