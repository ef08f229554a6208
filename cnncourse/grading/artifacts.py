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
bytes come back. The parent then judges *all* saved objects of one submission in *one*
evaluation process (:func:`evaluate_artifacts`: one TensorFlow start-up per submission,
not per case) inside the same kind of bubblewrap sandbox as the student's code
(:func:`cnncourse.grading.sandbox.sandbox_command`): no network, no other submissions, no
output folder, its own ``/tmp``, resource limits, killed at ``timeout_s``. Unlike the
student's sandbox it shows the evaluator's own code (the course package, read-only), since
the evaluator is course code; the saved file is loaded with ``safe_mode=True``, so it
cannot carry code to run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from cnncourse.exercise import ArtifactSpec  # declared with the exercise contract

__all__ = [
    "VERDICT",
    "ArtifactSpec",
    "Evaluator",
    "evaluate_artifact",
    "evaluate_artifacts",
    "judge_saved_objects",
]


_RUNNER = """
import json, os, sys
job, uid = sys.argv[1], int(sys.argv[2])
if os.geteuid() == 0 and uid >= 0:  # as the worker slot's own user, as the student's job
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
start = json.load(open(job + "/start.json"))
sys.path[:] = start["paths"]
import importlib, pickle, resource, warnings
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
resource.setrlimit(resource.RLIMIT_AS, (start["memory"], start["memory"]))
with warnings.catch_warnings():  # the imports (TensorFlow) while the student's code runs
    warnings.simplefilter("ignore")
    for module in start["preload"]:
        try:
            importlib.import_module(module)
        except Exception:
            pass  # the evaluation names the failure
print("ready", flush=True)  # started and imported: from here on, only the files can fail it
if sys.stdin.readline().strip() != "go":  # the parent's signal: the saved files are there
    sys.exit(0)
items = pickle.load(open(job + "/items.pkl", "rb"))
out = []
for evaluator, path, case in items:
    module, _, name = evaluator.partition(":")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            message = getattr(importlib.import_module(module), name)(path, case)
    except Exception as exc:
        message = f"the saved object could not be evaluated ({type(exc).__name__}: {exc})"
    out.append(None if message is None else str(message)[:2000])
print(json.dumps(out), flush=True)
os._exit(0)  # skip the interpreter's teardown: TensorFlow's takes most of a second
"""

#: What an evaluation process imports before the saved files exist, by file suffix.
_PRELOAD = {".keras": ("keras",)}

#: Seconds each evaluation after the first may add to the longest evaluator's time limit.
_PER_ITEM_S = 10.0


def _code_paths(evaluators: list[str]) -> tuple[list[str], list[str]]:
    """Folders to show (read-only) and ``sys.path`` entries for the evaluators' modules."""
    show, paths = [], []
    for evaluator in evaluators:
        top = evaluator.partition(":")[0].split(".")[0]
        spec = importlib.util.find_spec(top)
        if spec is None or not spec.origin:
            continue
        origin = Path(spec.origin).resolve()
        if spec.submodule_search_locations:  # a package: show the package folder only
            show.append(str(origin.parent))
            paths.append(str(origin.parent.parent))
        else:  # a module file (tests): its folder
            show.append(str(origin.parent))
            paths.append(str(origin.parent))
    return sorted(set(show)), list(dict.fromkeys(paths))


class Evaluator:
    """One submission's sandboxed evaluation process, started before its saved files exist.

    :meth:`start` launches the process, which imports the evaluators' modules and what
    their files need (Keras, hence TensorFlow, for ``.keras``) while the student's job runs
    in its own sandbox; :meth:`judge` then hands it the files and waits for the verdicts.
    Its time limit counts from :meth:`judge`. A context manager: leaving it kills the
    process and removes its folder.

    Parameters
    ----------
    specs : list of ArtifactSpec
        The kinds of saved objects it may be asked to judge (what to import early).
    slot : int
        The worker slot: as root, the process runs as that slot's unprivileged user.
    memory_mb : int
        The address-space limit of the evaluation process.
    sandbox : bool
        ``False`` only with ``--allow-unisolated``: the same process without a sandbox.
    """

    def __init__(
        self,
        specs: list[ArtifactSpec],
        *,
        slot: int = 0,
        memory_mb: int = 8192,
        sandbox: bool = True,
    ) -> None:
        self.specs = list(specs)
        self.slot, self.memory_mb, self.sandbox = slot, memory_mb, sandbox
        self.proc: subprocess.Popen | None = None
        self.job: str | None = None

    def __enter__(self) -> Evaluator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Launch the process (it imports, then waits for :meth:`judge`)."""
        from cnncourse.grading.sandbox import BASE_UID, Limits, python_paths, sandbox_command

        if self.proc is not None:
            return
        self.job = job = tempfile.mkdtemp(prefix="cnncourse-eval-")
        os.chmod(job, 0o755)
        evaluators = [spec.evaluator for spec in self.specs]
        # The evaluators' modules, and the course package (the cases are its objects).
        show, paths = _code_paths(["cnncourse:", *evaluators])
        preload = [e.partition(":")[0] for e in evaluators]
        preload += [m for spec in self.specs for m in _PRELOAD.get(spec.suffix, ())]
        start = {
            "paths": [*paths, *python_paths()],
            "preload": list(dict.fromkeys(preload)),
            "memory": self.memory_mb * 2**20,
        }
        with open(os.path.join(job, "start.json"), "w", encoding="utf-8") as f:
            json.dump(start, f)
        os.chmod(os.path.join(job, "start.json"), 0o644)
        python = os.path.realpath(sys.executable)
        uid = BASE_UID + self.slot if self.sandbox and os.geteuid() == 0 else -1
        command = [python, "-I", "-S", "-c", _RUNNER, job, str(uid)]
        if self.sandbox:
            limits = Limits(memory_mb=self.memory_mb, nproc=4096, scratch_mb=512)
            command = [
                *sandbox_command(limits, self.slot, show=[job, *show], course=True),
                *command,
            ]
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": "/tmp",
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "KERAS_HOME": "/tmp/.keras",
            "MPLCONFIGDIR": "/tmp/.matplotlib",
            "PYTHONPATH": "",
        }
        if not self.sandbox:
            env.update(HOME=job, KERAS_HOME=job + "/.keras", MPLCONFIGDIR=job + "/.mpl")
        try:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
                cwd="/tmp" if self.sandbox else job,
                start_new_session=True,
            )
        except OSError:
            self.proc = None  # judge() reports the failure for every item

    def judge(self, items: list[tuple[ArtifactSpec, bytes, object]]) -> list[str | None]:
        """Judge ``(spec, file bytes, case)`` items; ``None`` (pass) or a message each.

        Raises :class:`~cnncourse.grading.sandbox.SandboxError` when no evaluation process
        can start (the batch marks the submission ``infrastructure error``); a process that
        fails once it has the student's files costs that student the cases, with a reason.
        """
        if not items:
            return []
        failed = "the saved object could not be evaluated (the evaluator failed)"
        timeout = max(spec.timeout_s for spec, _, _ in items) + _PER_ITEM_S * (len(items) - 1)
        self.start()
        if not self._ready(timeout):
            # Not the student's files: the process failed before it saw them. The first one
            # ran beside the student's job; a fresh one, now that the job has ended, decides.
            self.close()
            self.start()
            if not self._ready(timeout):
                self.close()
                from cnncourse.grading.sandbox import SandboxError

                raise SandboxError("the sandboxed model evaluator could not start")
        proc, job = self.proc, self.job
        if proc is None or job is None:  # pragma: no cover - _ready() was True
            return [failed] * len(items)
        rows = []
        for k, (spec, data, case) in enumerate(items):
            path = os.path.join(job, f"artifact-{k}{spec.suffix}")
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, 0o644)
            rows.append((spec.evaluator, path, case))
        with open(os.path.join(job, "items.pkl"), "wb") as f:
            pickle.dump(rows, f)  # trusted data (the grader's cases), read by course code
        os.chmod(os.path.join(job, "items.pkl"), 0o644)
        try:
            out, _ = proc.communicate(b"go\n", timeout=timeout)
        except subprocess.TimeoutExpired:
            self.close()
            return [f"evaluating the saved object took longer than {timeout:g} s"] * len(items)
        except OSError:  # it died before reading its signal
            out = b""
        try:
            verdicts = json.loads(out.decode("utf-8", "replace").strip().splitlines()[-1])
            if isinstance(verdicts, list) and len(verdicts) == len(items):
                return [None if v is None else str(v) for v in verdicts]
        except (ValueError, IndexError):
            pass
        return [failed] * len(items)

    def _ready(self, timeout: float) -> bool:
        """Whether the process started and finished its imports within ``timeout`` s.

        A failure here is the grader's, never the student's (an ``infrastructure error``):
        the saved files are handed over only after the process said ``ready``.
        """
        proc = self.proc
        if proc is None or proc.stdout is None:
            return False
        try:
            readable, _, _ = select.select([proc.stdout], [], [], timeout)
            return bool(readable) and proc.stdout.readline().strip() == b"ready"
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        """Kill the process if it still runs; remove its folder."""
        proc, self.proc = self.proc, None
        if proc is not None:
            if proc.poll() is None:
                for kill in (os.killpg, os.kill):
                    try:
                        kill(proc.pid, signal.SIGKILL)
                    except OSError:
                        pass
            try:
                proc.communicate(timeout=10)
            except (subprocess.TimeoutExpired, OSError, ValueError):
                pass
        if self.job is not None:
            shutil.rmtree(self.job, ignore_errors=True)
            self.job = None


def evaluate_artifacts(
    items: list[tuple[ArtifactSpec, bytes, object]],
    *,
    slot: int = 0,
    memory_mb: int = 8192,
    sandbox: bool = True,
) -> list[str | None]:
    """Judge every saved object of one submission in one sandboxed process.

    ``items`` lists ``(spec, file bytes, case)``; the result lists ``None`` (pass) or a
    message, in order. Without ``sandbox`` (``--allow-unisolated``) the process runs with
    the same limits but no sandbox. :class:`Evaluator` does the same in two steps.
    """
    if not items:
        return []
    specs = list({id(spec): spec for spec, _, _ in items}.values())
    with Evaluator(specs, slot=slot, memory_mb=memory_mb, sandbox=sandbox) as evaluator:
        return evaluator.judge(items)


def evaluate_artifact(spec: ArtifactSpec, data: bytes, case: object) -> str | None:
    """Judge one saved object (see :func:`evaluate_artifacts`); ``None`` when it passes."""
    return evaluate_artifacts([(spec, data, case)])[0]


#: The key under which :func:`judge_saved_objects` puts a verdict into a case's event: an
#: object no JSON a child sends can contain.
VERDICT = object()


def judge_saved_objects(
    tasks: list, cases: list, runs: list, worker: object, evaluator: Evaluator | None = None
) -> None:
    """Judge every saved object of one submission at once (one sandboxed process).

    ``tasks`` are the assignment's graded tasks, ``cases[i]`` the ``(public, hidden)`` cases
    of task ``i`` and ``runs[i]`` what the worker sent back for it. Each verdict goes into
    its case's event under :data:`VERDICT`. ``evaluator``, when given, is the submission's
    :class:`Evaluator` started earlier (its imports done while the job ran); otherwise one
    is started now.
    """
    import base64
    import binascii

    items, events = [], []
    decoded: dict[int, bytes] = {}  # cases that share one run share its saved object
    for t, (public, hidden), run in zip(tasks, cases, runs, strict=True):
        if t.artifact is None:
            continue
        for k, case in enumerate([*public, *hidden]):
            event = run.cases.get(k)
            data = event.get("artifact") if isinstance(event, dict) else None
            if not isinstance(data, str):
                continue
            raw = decoded.get(id(data))
            if raw is None:
                try:
                    raw = decoded[id(data)] = base64.b64decode(data, validate=True)
                except (binascii.Error, ValueError):
                    continue
            items.append((t.artifact, raw, case))
            events.append(event)
    if evaluator is not None:
        verdicts = evaluator.judge(items)
    else:
        verdicts = evaluate_artifacts(
            items,
            slot=getattr(worker, "slot", 0),
            sandbox=bool(getattr(worker, "isolated", True)),
        )
    for event, verdict in zip(events, verdicts, strict=True):
        event[VERDICT] = verdict
