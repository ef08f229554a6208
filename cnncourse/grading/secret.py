"""The instructor's secret: where the hidden cases come from, so that grades are reproducible.

Hidden cases are drawn from a random generator seeded with ``HMAC-SHA256(secret, task id)``.
The secret is 32 random bytes created on the first grading and stored with the
instructor's files (by default ``<output folder>/.hidden-cases.key``, mode 0600; the output
folder is hidden from the grading sandbox). So:

- the same code gets the same grade on any rerun, resubmission or machine that uses the
  same key file;
- students, who have the package but not the key, cannot compute the hidden inputs;
- a gradebook records only :func:`fingerprint`, a short hash that tells whether two
  gradings used the same secret without revealing it.

Examples
--------
>>> secret = bytes(32)
>>> fingerprint(secret)
'0ddc4c86dcb0'
>>> a = task_rng(secret, "ex01.dense_params").integers(1000)
>>> b = task_rng(secret, "ex01.dense_params").integers(1000)
>>> bool(a == b)
True
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import numpy as np

__all__ = ["KEY_NAME", "SecretError", "fingerprint", "load_or_create", "task_rng"]

KEY_NAME = ".hidden-cases.key"
_SIZE = 32


class SecretError(ValueError):
    """The key file exists but is not a key this module wrote."""


def fingerprint(secret: bytes) -> str:
    """A short, one-way name of the secret (safe to print and to store in a gradebook)."""
    return hashlib.sha256(b"cnncourse hidden cases\0" + secret).hexdigest()[:12]


def task_rng(secret: bytes, task_id: str) -> np.random.Generator:
    """The generator of ``task_id``'s hidden cases under ``secret``."""
    digest = hmac.new(secret, task_id.encode(), hashlib.sha256).digest()
    return np.random.default_rng(int.from_bytes(digest, "big"))


def load_or_create(path: str | Path) -> bytes:
    """The secret in ``path``; created (mode 0600, never overwritten) when missing.

    Raises
    ------
    SecretError
        When the file exists but does not hold a key (64 hex digits).
    """
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        text = secrets.token_hex(_SIZE)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another grading process created it first: read theirs
        else:
            with os.fdopen(fd, "w") as f:
                f.write(text + "\n")
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) != _SIZE:
        raise SecretError(f"{path} is not a hidden-case key (expected {2 * _SIZE} hex digits)")
    return secret
