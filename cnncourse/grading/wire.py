"""The data-only format in which values cross between the grader and its worker.

Values are JSON. ``None``, bools, ints, floats and strings are themselves and lists are
JSON arrays; every JSON object carries exactly one tag:

- ``{"__tuple__": [...]}`` a tuple;
- ``{"__dict__": [[key, value], ...]}`` a dict;
- ``{"__ndarray__": [dtype, shape, base64 bytes]}`` a NumPy array of booleans, integers or
  floats (never objects);
- ``{"__scalar__": [dtype, base64 bytes]}`` a NumPy scalar;
- ``{"__unsupported__": "type name"}`` something that cannot be graded.

The worker (``worker.py``) writes it; :func:`decode` reads what a worker sent and validates
everything, because a student's code may have written those bytes itself: no pickle, no
object arrays, bounded sizes and depth. A malformed value raises :class:`WireError`.

Examples
--------
>>> import numpy as np
>>> decode(encode((1, np.arange(3))))
(1, array([0, 1, 2]))
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any

import numpy as np

__all__ = ["Unsupported", "WireError", "decode", "encode"]

_DTYPE = re.compile(r"^[<>|=]?(b1|[iu][1248]|f[248])$")
MAX_DEPTH = 40
MAX_ITEMS = 10_000_000


class WireError(ValueError):
    """A value that does not follow the wire format."""


class Unsupported:
    """Stands for an output the worker could not send (an object, a string array...)."""

    def __init__(self, what: str) -> None:
        self.what = str(what)[:100]

    def __repr__(self) -> str:
        return f"<{self.what}>"


def encode(value: Any) -> Any:
    """Encode trusted inputs (case arguments) for the worker."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_ | np.integer | np.floating):
        arr = np.asarray(value)
        return {"__scalar__": [arr.dtype.str, base64.b64encode(arr.tobytes()).decode()]}
    if isinstance(value, int | float):
        return value
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        if not _DTYPE.match(arr.dtype.str):
            raise WireError(f"cannot send an array of dtype {arr.dtype}")
        return {
            "__ndarray__": [
                arr.dtype.str,
                list(arr.shape),
                base64.b64encode(arr.tobytes()).decode(),
            ]
        }
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {"__dict__": [[encode(k), encode(v)] for k, v in value.items()]}
    raise WireError(f"cannot send a {type(value).__name__}: case inputs must be plain data")


def _dtype(text: Any) -> np.dtype:
    if not isinstance(text, str) or not _DTYPE.match(text):
        raise WireError(f"dtype {str(text)[:20]!r} is not allowed")
    return np.dtype(text)


def _bytes(text: Any) -> bytes:
    if not isinstance(text, str):
        raise WireError("array data must be base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WireError("array data is not valid base64") from exc


def decode(obj: Any, _depth: int = 0) -> Any:
    """Decode and validate a value a worker sent."""
    if _depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if obj is None or isinstance(obj, bool | str | float):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, list):
        return [decode(v, _depth + 1) for v in obj]
    if not isinstance(obj, dict) or len(obj) != 1:
        raise WireError("malformed value")
    ((tag, body),) = obj.items()
    if tag == "__tuple__" and isinstance(body, list):
        return tuple(decode(v, _depth + 1) for v in body)
    if tag == "__dict__" and isinstance(body, list):
        out = {}
        for pair in body:
            if not isinstance(pair, list) or len(pair) != 2:
                raise WireError("malformed dict item")
            key = decode(pair[0], _depth + 1)
            try:
                out[key] = decode(pair[1], _depth + 1)
            except TypeError as exc:  # an unhashable key
                raise WireError("unhashable dict key") from exc
        return out
    if tag == "__ndarray__" and isinstance(body, list) and len(body) == 3:
        dtype, shape, data = _dtype(body[0]), body[1], _bytes(body[2])
        if not isinstance(shape, list) or len(shape) > 32:
            raise WireError("malformed array shape")
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
            raise WireError("malformed array shape")
        count = math.prod(shape)
        if count > MAX_ITEMS or count * dtype.itemsize != len(data):
            raise WireError("array data does not match its shape")
        return np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    if tag == "__scalar__" and isinstance(body, list) and len(body) == 2:
        dtype, data = _dtype(body[0]), _bytes(body[1])
        if len(data) != dtype.itemsize:
            raise WireError("scalar data does not match its dtype")
        return np.frombuffer(data, dtype=dtype)[0]
    if tag == "__unsupported__":
        return Unsupported(str(body))
    raise WireError("malformed value")
