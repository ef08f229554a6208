"""A small prediction endpoint for a :class:`~cnncourse.inference.Predictor`, built on FastAPI.

:func:`create_app` returns an ASGI application with two routes:

``GET /health``
    ``200`` and a JSON description of the model being served (name, version, backend, the
    input it accepts, the class names) plus counters of the requests answered so far. A
    load balancer or Kubernetes probes this route to decide whether to send traffic here.
``POST /predict``
    A PNG image, either as a multipart form upload in a field named ``file`` (what an HTML
    form or ``curl -F file=@digit.png`` sends) or as the raw request body with
    ``Content-Type: image/png``. Answers ``200`` with the label, the class index, the
    confidence, every class's probability and the model version.

Every mistake a client can make is answered with a 4xx status and a JSON body
``{"detail": "<what was expected, what came>"}``, and the server carries on:

====  ==================================================================================
400   empty body, a corrupt or truncated PNG, a form without a ``file`` field
413   the request body is larger than ``max_upload_bytes`` (checked from the
      ``Content-Length`` header before anything is read, and again while reading, so a
      client that sends no length or a false one is cut off too)
415   a Content-Type other than multipart/form-data, image/png or
      application/octet-stream, or bytes that are not a PNG file
422   a valid PNG that does not fit the model: wrong size, colour instead of greyscale,
      16-bit pixels
500   the model itself failed (logged with its traceback; the client gets no internals)
====  ==================================================================================

The model runs in a worker thread (``run_in_threadpool``), so one slow prediction does not
block the event loop that accepts the next requests.

Running it for real needs an ASGI server such as uvicorn (``pip install uvicorn``)::

    python -m cnncourse.serve model.keras --version 2026-07-01 --port 8000
    curl -F file=@digit.png http://127.0.0.1:8000/predict

Introduced in chapter 9 ("From notebook to production"), which tests it in-process with
FastAPI's :class:`~fastapi.testclient.TestClient`, without a server process.

Examples
--------
>>> import numpy as np, keras
>>> from fastapi.testclient import TestClient
>>> from cnncourse.inference import Predictor, encode_png
>>> model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
...                           keras.layers.Dense(10, activation="softmax")])
>>> client = TestClient(create_app(Predictor.from_keras(model, list("0123456789"))))
>>> client.get("/health").json()["status"]
'ok'
>>> png = encode_png(np.zeros((28, 28), dtype=np.uint8))
>>> client.post("/predict", files={"file": ("digit.png", png, "image/png")}).status_code
200
>>> bad = client.post("/predict", content=b"not an image", headers={"Content-Type": "image/png"})
>>> bad.status_code, bad.json()["detail"]
(415, "expected a PNG file, got 12 bytes starting with b'not an i'")
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route functions' type
# hints at runtime (``request: Request``) and must be able to evaluate them.
import json
import logging
import threading
import time
from collections import Counter
from typing import Any

from cnncourse.inference import (
    ImageDecodeError,
    InvalidImageError,
    Predictor,
    is_png,
)

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "create_app", "main"]

#: Default request-size limit: a 28×28 PNG is well under 1 KB; 64 KiB leaves room for
#: larger images and multipart overhead while refusing anything absurd early.
DEFAULT_MAX_UPLOAD_BYTES = 64 * 1024

logger = logging.getLogger("cnncourse.serve")

_RAW_TYPES = ("image/png", "application/octet-stream")


class _BodyTooLarge(Exception):
    pass


class _BodySizeLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with 413, before or while reading.

    The ``Content-Length`` header is checked first, so an honest large upload is refused
    without reading a byte of it. A client that sends no length (chunked transfer) or a
    false one is counted while the body is read and cut off at the limit.
    """

    def __init__(self, app: Any, max_bytes: int, on_refuse: Any = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.on_refuse = on_refuse  # called once per refused request (for the counters)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await _send_json(send, 400, {"detail": "invalid Content-Length header"})
                return
            if declared > self.max_bytes:
                await self._refuse(send, f"{declared:,} bytes")
                return
        received = 0
        started = False

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(send, f"more than {self.max_bytes:,} bytes")

    async def _refuse(self, send: Any, got: str) -> None:
        if self.on_refuse is not None:
            self.on_refuse()
        detail = f"upload too large: the limit is {self.max_bytes:,} bytes, got {got}"
        await _send_json(send, 413, {"detail": detail})


async def _send_json(send: Any, status: int, body: dict) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def create_app(
    predictor: Predictor,
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    title: str = "cnncourse prediction service",
) -> Any:
    """Build the FastAPI application that serves ``predictor``.

    Parameters
    ----------
    predictor : cnncourse.inference.Predictor
        The model, its class names, its input spec and its version.
    max_upload_bytes : int, default=65536
        Largest accepted request body in bytes (multipart overhead included); larger ones
        get 413.
    title : str
        Shown in the generated OpenAPI documentation (``/docs``).

    Returns
    -------
    fastapi.FastAPI
        Routes ``GET /health`` and ``POST /predict`` (see the module docstring).
    """
    from fastapi import FastAPI, HTTPException, Request
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import UploadFile

    if not isinstance(predictor, Predictor):
        raise ValueError(f"predictor must be a Predictor, got {type(predictor).__name__}.")
    if isinstance(max_upload_bytes, bool) or not isinstance(max_upload_bytes, int) or (
        max_upload_bytes < 1
    ):
        raise ValueError(f"max_upload_bytes must be a positive int, got {max_upload_bytes!r}.")

    counts: Counter[str] = Counter()
    lock = threading.Lock()
    started_at = time.monotonic()

    def count(key: str) -> None:
        with lock:
            counts[key] += 1

    app = FastAPI(title=title, version=predictor.version)
    app.add_middleware(
        _BodySizeLimit, max_bytes=max_upload_bytes, on_refuse=lambda: count("rejected_413")
    )
    app.state.predictor = predictor
    app.state.counts = counts

    def reject(status: int, detail: str) -> HTTPException:
        count(f"rejected_{status}")
        return HTTPException(status_code=status, detail=detail)

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Liveness and identity: is the service up, and which model does it serve?"""
        with lock:
            served = dict(sorted(counts.items()))
        return {
            "status": "ok",
            "model": predictor.describe(),
            "max_upload_bytes": max_upload_bytes,
            "uptime_s": round(time.monotonic() - started_at, 3),
            "served": served,
        }

    async def read_upload(request: Request) -> bytes:
        content_type = request.headers.get("content-type", "")
        media_type = content_type.split(";")[0].strip().lower()
        if media_type == "multipart/form-data":
            form = await request.form(max_files=1, max_fields=1)
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise reject(400, "a multipart upload needs the image in a file field named 'file'")
            return await upload.read()
        if media_type in _RAW_TYPES:
            return await request.body()
        shown = media_type or "no Content-Type"
        raise reject(
            415,
            f"expected a PNG, sent as multipart/form-data (field 'file') or as the raw body "
            f"with Content-Type image/png; got {shown}",
        )

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        """Classify one PNG image (multipart field ``file``, or the raw body as image/png)."""
        data = await read_upload(request)
        if not data:
            raise reject(400, "the upload is empty: expected a PNG file")
        if not is_png(data):
            head = bytes(data[:8])
            raise reject(
                415, f"expected a PNG file, got {len(data):,} bytes starting with {head!r}"
            )
        try:
            prediction = await run_in_threadpool(predictor.predict_image, data)
        except ImageDecodeError as exc:
            raise reject(400, str(exc)) from None
        except InvalidImageError as exc:
            raise reject(422, str(exc)) from None
        except Exception:
            # A failure of the model, not of the client: the traceback goes to the log, the
            # client gets no internals, and the next request is served as usual.
            logger.exception("the model failed on a valid image")
            count("errors_500")
            raise HTTPException(status_code=500, detail="internal error while predicting") from None
        count("predictions")
        return {**prediction.to_dict(), "model_version": predictor.version}

    return app


def main(argv: list[str] | None = None) -> int:
    """Serve a ``.keras`` file, a SavedModel folder or a ``.tflite`` file over HTTP (uvicorn).

    ``python -m cnncourse.serve MODEL [--classes 0,1,...] [--version V] [--host H] [--port P]``
    """
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m cnncourse.serve", description=main.__doc__)
    parser.add_argument("model", help="a .keras file, a SavedModel folder or a .tflite file")
    parser.add_argument("--classes", default=",".join(str(d) for d in range(10)),
                        help="comma-separated class names (default: the digits 0..9)")
    parser.add_argument("--version", default="1", help="model version reported by /health")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--max-upload-bytes", type=int, default=DEFAULT_MAX_UPLOAD_BYTES)
    args = parser.parse_args(argv)
    try:
        import uvicorn
    except ImportError:
        parser.error("serving over HTTP needs an ASGI server: pip install uvicorn")
    path = Path(args.model)
    classes = [c.strip() for c in args.classes.split(",")]
    if path.is_dir():
        predictor = Predictor.from_saved_model(path, classes, version=args.version)
    elif path.suffix == ".tflite":
        predictor = Predictor.from_tflite(path, classes, version=args.version, name=path.stem)
    else:
        predictor = Predictor.from_keras(path, classes, version=args.version)
    app = create_app(predictor, max_upload_bytes=args.max_upload_bytes)
    uvicorn.run(app, host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
