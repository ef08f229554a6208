"""Tasks whose answer is a saved object (a Keras model), evaluated in a clean process.

Most tasks return values that the grader compares. A task that *builds or trains a model*
is different: the grader must judge the model itself and never trust a number the
student's code reports. Such a task is declared in its exercise module::

    # cnncourse/tasks/ex05.py
    from cnncourse.grading.artifacts import ArtifactSpec

    ARTIFACTS = {
        "ex05.small_cnn": ArtifactSpec(
            suffix=".keras", evaluator="cnncourse.tasks.ex05:evaluate_small_cnn"
        ),
    }

    def evaluate_small_cnn(path, case):
        import keras
        model = keras.saving.load_model(path, safe_mode=True)   # no arbitrary code
        x, y = held_out_data()                                   # never sent to the child
        accuracy = float((model.predict(x, verbose=0).argmax(-1) == y).mean())
        return None if accuracy >= case.expected else f"accuracy {accuracy:.1%} is too low"

The worker calls the student's function on each case's inputs and saves what it returns
with the object's own ``save(path)`` method (``method`` in the spec); only the file's
bytes come back. The parent writes them to a temporary file and runs ``evaluator(path,
case)`` -- returning ``None`` (pass) or a message -- in a *fresh* Python process with a
timeout, so that loading a hostile file cannot touch the grader.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from cnncourse.checking import Case

__all__ = ["ArtifactSpec", "evaluate_artifact"]


@dataclass(frozen=True)
class ArtifactSpec:
    """How to receive and judge a task's saved object.

    Parameters
    ----------
    suffix : str
        File suffix the object is saved under (``".keras"``).
    evaluator : str
        ``"module:function"``; ``function(path, case) -> str | None`` runs in a new process.
    method : str
        Name of the method the worker calls on the returned object to save it.
    timeout_s : float
        Wall-clock limit of one evaluation.
    """

    suffix: str
    evaluator: str
    method: str = "save"
    timeout_s: float = 120.0

    def to_wire(self) -> dict:
        return {"suffix": self.suffix, "method": self.method}


_RUNNER = """
import json, sys, importlib
from cnncourse.checking import Case
from cnncourse.grading.wire import decode
spec = json.load(open(sys.argv[1]))
module, _, name = spec["evaluator"].partition(":")
fn = getattr(importlib.import_module(module), name)
c = spec["case"]
case = Case(c["name"], decode(c["args"]), decode(c["kwargs"]), decode(c["expected"]),
            c["rtol"], c["atol"])
try:
    message = fn(spec["path"], case)
except Exception as exc:
    message = f"the saved object could not be evaluated ({type(exc).__name__}: {exc})"
print(json.dumps({"message": None if message is None else str(message)}))
"""


def evaluate_artifact(spec: ArtifactSpec, data: bytes, case: Case) -> str | None:
    """Judge one saved object in a fresh process; ``None`` when it passes."""
    from cnncourse.grading.wire import encode

    with tempfile.TemporaryDirectory(prefix="cnncourse-artifact-") as tmp:
        path = os.path.join(tmp, "artifact" + spec.suffix)
        with open(path, "wb") as f:
            f.write(data)
        job = os.path.join(tmp, "job.json")
        with open(job, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "evaluator": spec.evaluator,
                    "path": path,
                    "case": {
                        "name": case.name,
                        "args": encode(tuple(case.args)),
                        "kwargs": encode(dict(case.kwargs)),
                        "expected": encode(case.expected),
                        "rtol": case.rtol,
                        "atol": case.atol,
                    },
                },
                f,
            )
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _RUNNER, job],
                capture_output=True,
                timeout=spec.timeout_s,
                cwd=tmp,
                env={
                    **os.environ,
                    "TF_CPP_MIN_LOG_LEVEL": "3",
                    # The evaluator is instructor code: found where the grader finds it.
                    "PYTHONPATH": os.pathsep.join(os.path.abspath(p) for p in sys.path if p),
                },
            )
        except subprocess.TimeoutExpired:
            return f"evaluating the saved object took longer than {spec.timeout_s:g} s"
        try:
            return json.loads(proc.stdout.decode().strip().splitlines()[-1])["message"]
        except (ValueError, IndexError, KeyError):
            return "the saved object could not be evaluated (the evaluator failed)"
