"""The shared toolkit of the tasks whose answer is a trained Keras model.

Such a task (``ex04.train_cnn``, ``ex11.train_segmenter``) is judged twice, the same way:
by the notebook's self-check on the model the student's function returned, and by the
grader on the ``.keras`` file the worker saved from it. Both go through
:func:`judge_returned_model` / :func:`judge_saved_file`, so the two cannot disagree, and
the safety rules (``safe_mode=True``, only a real ``keras.Model`` is judged) live in one
place.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable
from typing import Any

__all__ = [
    "file_digest",
    "first_line",
    "judge_returned_model",
    "judge_saved_file",
    "model_fingerprint",
]

#: A judge of a loaded model: ``(model, expected) -> None`` when it passes, else why not.
ModelJudge = Callable[[Any, dict], "str | None"]


def first_line(exc: BaseException) -> str:
    """One short line naming an exception, for a student-facing message.

    Examples
    --------
    >>> first_line(ValueError("bad shape\\nsecond line"))
    'ValueError: bad shape'
    >>> first_line(KeyError())
    'KeyError'
    """
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {line[:200]}" if line else type(exc).__name__


def file_digest(path: str) -> str:
    """The SHA-256 of a saved file's bytes: equal for the copies of one saved model."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


#: The model loaded last with ``reuse=True``, under the digest of its file's bytes.
_LOADED: dict[str, Any] = {}


def _load(path: str, reuse: bool) -> Any:
    """``keras.saving.load_model(path, safe_mode=True)``; with ``reuse``, the model loaded
    from a file with the same bytes just before is returned again instead."""
    import keras

    if not reuse:
        return keras.saving.load_model(path, safe_mode=True)
    digest = file_digest(path)
    model = _LOADED.get(digest)
    if model is None:
        model = keras.saving.load_model(path, safe_mode=True)
        _LOADED.clear()
        _LOADED[digest] = model
    return model


def judge_saved_file(
    path: str, expected: dict, judge: ModelJudge, *, reuse: bool = False
) -> str | None:
    """Load a saved ``.keras`` file with ``safe_mode=True`` and judge it.

    Parameters
    ----------
    path : str
        The ``.keras`` file.
    expected : dict
        The case's expectation, handed to ``judge``.
    judge : callable
        ``judge(model, expected)``: ``None`` when the model passes, else a message.
    reuse : bool
        Several cases judge one saved model (the grader writes the same bytes once per
        case): load a file whose bytes equal the previous one's only once. ``judge`` must
        then leave the model unchanged (predict and read it, never fit or compile it).

    Returns
    -------
    str or None
        ``None`` when the model passes; otherwise what is wrong, in words a student can act
        on (a file that does not load, or not a model, gets its own message).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    with warnings.catch_warnings():
        # Loading an untrained model warns that the optimizer has no state to restore.
        warnings.simplefilter("ignore")
        try:
            model = _load(path, reuse)
        except Exception as exc:
            return (
                f"the saved model could not be loaded with safe_mode=True ({first_line(exc)}); "
                "build it from standard Keras layers only (no Lambda layers)"
            )
        if not isinstance(model, keras.Model):
            return f"the saved file holds a {type(model).__name__}, not a Keras model"
        return judge(model, expected)


#: ``[returned model, its fingerprint, the model loaded back from its saved file]`` of the
#: last model judged with ``reuse=True``.
_RETURNED: list = []


def model_fingerprint(model: Any) -> str:
    """A digest of a model's weights and compile settings: it changes when either does."""
    import numpy as np

    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    digest.update(repr(model.get_compile_config()).encode())
    return digest.hexdigest()


def judge_returned_model(
    got: object, expected: dict, judge: ModelJudge, *, function: str, reuse: bool = False
) -> str | None:
    """The self-check: save the returned model as the grader's worker does, then judge the file.

    ``function`` names the student's function in the message when it returned no model.
    With ``reuse``, the same model judged again (the same object, with the same weights and
    compile settings: several cases that judge one answer) is saved and loaded only once.
    """
    save = getattr(got, "save", None)
    if got is None or not callable(save):
        return f"{function} should return the trained Keras model, got {type(got).__name__}"
    fingerprint = ""
    if reuse:
        try:
            fingerprint = model_fingerprint(got)
        except Exception:  # not a model whose weights can be read: judge it afresh
            fingerprint = ""
        if fingerprint and _RETURNED and _RETURNED[0] is got and _RETURNED[1] == fingerprint:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return judge(_RETURNED[2], expected)
        _RETURNED.clear()
    with tempfile.TemporaryDirectory(prefix="cnncourse-model-") as tmp:
        path = os.path.join(tmp, "model.keras")
        try:
            save(path)
        except Exception as exc:
            return f"your model could not be saved as a .keras file ({first_line(exc)})"

        def keep(model: Any, expected: dict) -> str | None:
            if fingerprint:
                _RETURNED[:] = [got, fingerprint, model]
            return judge(model, expected)

        return judge_saved_file(path, expected, keep)
