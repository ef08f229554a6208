"""Run a student's task cells in a walled-off child process and collect their outputs.

The parent side of ``worker.py``. A :class:`Worker` starts one *zygote* process
(``python -I -S worker.py``) that sets up its isolation once and imports NumPy once; every
job then costs one ``fork`` instead of a Python start-up. :meth:`Worker.run` sends the
task cells and the case inputs, enforces a wall-clock timeout per task by killing the
child's whole process group, and starts a fresh child for the tasks after one that timed
out or crashed. What comes back is data only (see :mod:`cnncourse.grading.wire`); no
verdict is decided here, and nothing a child sends is executed.

Examples
--------
>>> with Worker(Limits(timeout_s=5)) as worker:  # doctest: +SKIP
...     run = worker.run([TaskJob("ex00.f", "def f(x):\\n    return 2 * x", "f")], [[((2,), {})]])
>>> run.tasks[0].cases[0]["value"]  # doctest: +SKIP
4
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnncourse.grading import worker as _worker_module
from cnncourse.grading.worker import recv_frame, send_frame

__all__ = ["Limits", "SandboxError", "TaskJob", "TaskRun", "Worker", "WorkerRun"]

WORKER_PATH = Path(_worker_module.__file__).resolve()
#: Jobs of worker slot ``k`` run as user id ``BASE_UID + k`` when the grader runs as root,
#: so that one job can neither signal nor read another and its processes can be counted.
BASE_UID = 1_900_000_000
MAX_LINE = 96 * 2**20
FORGED = "wrote into the grader's private channel"


class SandboxError(RuntimeError):
    """The worker itself failed (not the student's code): the grader cannot go on."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one child.

    Parameters
    ----------
    timeout_s : float
        Wall-clock seconds per task (its cell and all its cases).
    memory_mb : int
        Address-space limit (``RLIMIT_AS``).
    file_mb : int
        Largest file the code may write (``RLIMIT_FSIZE``).
    nproc : int
        Processes of the job's user (``RLIMIT_NPROC``; only enforced with a user of its own).
    output_mb : int
        Largest output of one case the child may send back.
    scratch_mb : int
        Size of the private ``/tmp`` (a tmpfs) where the platform allows one.
    """

    timeout_s: float = 10.0
    memory_mb: int = 1024
    file_mb: int = 32
    nproc: int = 16
    output_mb: int = 32
    scratch_mb: int = 128


@dataclass(frozen=True)
class TaskJob:
    """One task cell to run: its id, the student's source and the function to call."""

    id: str
    source: str
    function: str
    artifact: dict | None = None
    exec: bool = True


@dataclass
class TaskRun:
    """What happened to one task in the child(ren)."""

    started: bool = False
    finished: bool = False
    cell_ok: bool = False
    cell_error: str | None = None
    cases: dict[int, dict] = field(default_factory=dict)
    problem: str | None = None  # timed out / crashed / lost
    violations: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class WorkerRun:
    """All tasks of one submission, and which protections applied."""

    tasks: list[TaskRun]
    protections: list[str]
    setup_error: str | None = None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _python_paths() -> list[str]:
    """The standard library and site-packages: all a child may import from."""
    import site

    bases = tuple(os.path.realpath(p) for p in {sys.base_prefix, sys.base_exec_prefix})
    paths = [p for p in sys.path if p and os.path.realpath(p).startswith(bases)]
    paths += site.getsitepackages()
    out: list[str] = []
    for p in paths:
        p = os.path.realpath(p)
        if os.path.isdir(p) and p not in out and not os.path.exists(os.path.join(p, "cnncourse")):
            out.append(p)
    return out


def course_paths() -> list[str]:
    """What holds reference code: the ``cnncourse`` package and its project folder."""
    import cnncourse

    package = Path(cnncourse.__file__).resolve().parent
    paths = [str(package)]
    root = package.parent
    if (root / "pyproject.toml").exists():
        paths.append(str(root))
    return paths


def _untraversable_ancestors(paths: list[str]) -> list[str]:
    """Folders an unprivileged user cannot enter on the way to ``paths`` (e.g. ``/root``)."""
    found = []
    for p in paths:
        parts = Path(p).parts
        for i in range(2, len(parts)):
            ancestor = str(Path(*parts[:i]))
            try:
                if not os.stat(ancestor).st_mode & 0o001:
                    found.append(ancestor)
                    break
            except OSError:
                break
    return sorted(set(found))


class Worker:
    """A pre-warmed worker (one zygote process) that runs jobs one at a time.

    Parameters
    ----------
    limits : Limits
    slot : int
        Index of this worker in a pool (decides its user id when running as root).
    hide : list of str
        Extra folders the student's code must not see (the submissions, the outputs);
        the course package and project are always hidden.
    preload : list of str
        Modules the zygote imports once (default: NumPy).
    namespaces : bool
        Use Linux namespaces where possible (tests switch it off to check the fallback).
    """

    def __init__(
        self,
        limits: Limits | None = None,
        slot: int = 0,
        hide: list[str] | None = None,
        preload: list[str] | None = None,
        namespaces: bool = True,
    ) -> None:
        self.limits = limits or Limits()
        self.slot = slot
        self.hide = sorted({str(Path(p).resolve()) for p in [*course_paths(), *(hide or [])]})
        self.preload = preload if preload is not None else ["numpy"]
        self.namespaces = namespaces
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.protections: list[str] = []
        self.notes: list[str] = []
        # The zygote's own stderr (never a student's: children write to /dev/null).
        self._log = (
            open(os.environ["CNNCOURSE_WORKER_LOG"], "ab")
            if os.environ.get("CNNCOURSE_WORKER_LOG")
            else subprocess.DEVNULL
        )

    # ----- lifecycle

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1"}
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", str(WORKER_PATH), str(child.fileno())],
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._log,
                env=env,
                cwd="/",
            )
        finally:
            child.close()
        self.sock = parent
        expose = _python_paths()
        root = os.geteuid() == 0
        config = {
            "sys_path": expose,
            "expose": expose,
            "hide": self.hide,
            "mask": ["/tmp", "/var/tmp", "/dev/shm"]
            + (_untraversable_ancestors(expose) if root else []),
            "scratch": "/tmp",
            "scratch_mb": self.limits.scratch_mb,
            "uid": BASE_UID + self.slot if root else None,
            "preload": self.preload,
            "namespaces": self.namespaces,
            "limits": {
                "memory_mb": self.limits.memory_mb,
                "cpu_s": int(self.limits.timeout_s) + 2,
                "file_mb": self.limits.file_mb,
                "nproc": self.limits.nproc,
                "output_mb": self.limits.output_mb,
            },
        }
        send_frame(self.sock, config)
        ready = self._recv(timeout=120)
        if not isinstance(ready, dict) or ready.get("op") != "ready":
            raise SandboxError(f"the grading worker did not start: {ready!r}")
        self.protections = list(ready.get("protections", []))
        self.notes = list(ready.get("notes", []))

    def close(self) -> None:
        if self.sock is not None:
            try:
                send_frame(self.sock, {"op": "exit"})
            except OSError:
                pass
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def restart(self) -> None:
        if self.proc is not None:
            self.proc.kill()
        self.close()
        self.start()

    def _recv(self, timeout: float) -> Any:
        assert self.sock is not None
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            raise SandboxError(f"the grading worker did not answer within {timeout:g} s")
        try:
            frame, fds = recv_frame(self.sock)
        except (EOFError, OSError, ValueError) as exc:
            raise SandboxError(f"the grading worker died ({exc})") from exc
        for fd in fds:
            os.close(fd)
        return frame

    # ----- running a submission

    def run(self, tasks: list[TaskJob], inputs: list[list[Any]], preamble: str = "") -> WorkerRun:
        """Run every task; ``inputs[i]`` lists ``(args, kwargs)`` of task ``i``'s cases
        already encoded with :func:`cnncourse.grading.wire.encode`."""
        runs = [TaskRun() for _ in tasks]
        protections = list(self.protections)
        start = 0
        setup_error = None
        while start < len(tasks):
            first = self._job(tasks, inputs, preamble, start, runs)
            if first is not None:
                protections = list(dict.fromkeys(self.protections + first.get("applied", [])))
                setup_error = setup_error or first.get("setup_error")
            # Continue after the first task that did not finish (timed out or crashed).
            unfinished = [i for i in range(start, len(tasks)) if not runs[i].finished]
            if not unfinished:
                break
            stuck = unfinished[0]
            run = runs[stuck]
            if run.problem is None:
                run.problem = "the grading process stopped before this task finished"
            run.finished = True
            start = stuck + 1
        return WorkerRun(runs, protections, setup_error)

    def _job(
        self,
        tasks: list[TaskJob],
        inputs: list[list[Any]],
        preamble: str,
        start: int,
        runs: list[TaskRun],
    ) -> dict | None:
        request = {
            "op": "job",
            "preamble": preamble,
            "start": start,
            "inputs": inputs,
            "tasks": [
                {
                    "id": t.id,
                    "source": t.source,
                    "function": t.function,
                    "artifact": t.artifact,
                    "exec": t.exec,
                    "replay": t.exec and runs[i].cell_ok,
                }
                for i, t in enumerate(tasks)
            ],
        }
        read_fd, write_fd = os.pipe()
        try:
            try:
                send_frame(self.sock, request, fds=[write_fd])
            finally:
                os.close(write_fd)
            reply = self._recv(timeout=60)
            if reply.get("op") != "started":
                raise SandboxError(f"the grading worker refused a job: {reply.get('error')}")
            return self._follow(int(reply["pid"]), read_fd, start, runs)
        finally:
            os.close(read_fd)

    def _follow(self, pid: int, read_fd: int, start: int, runs: list[TaskRun]) -> dict | None:
        """Read the child's events until the zygote says it exited; kill it on timeout."""
        assert self.sock is not None
        timeout = self.limits.timeout_s
        deadline = time.monotonic() + timeout + 2.0  # start-up and replayed cells
        current = None
        task_started = 0.0
        buffer = bytearray()
        hello: dict | None = None
        exited: dict | None = None
        killed_for: int | None = None
        eof = False
        received = 0
        budget = self.limits.output_mb * 2**20 * 4 + 2**20

        def tamper() -> None:
            target = current if current is not None else start
            if FORGED not in runs[target].violations:
                runs[target].violations.append(FORGED)

        def handle(line: bytes) -> None:
            nonlocal current, task_started, hello, deadline
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            if not isinstance(event, dict):
                tamper()
                return
            kind = event.get("ev")
            task = event.get("task")
            valid = isinstance(task, int) and start <= task < len(runs)
            if kind == "hello" and hello is None:
                hello = {"applied": [str(a) for a in event.get("applied", [])][:10]}
            elif kind == "setup_error" and hello is not None:
                hello["setup_error"] = str(event.get("error"))[:300]
            elif kind == "start" and valid and not runs[task].started:
                current = task
                runs[task].started = True
                task_started = time.monotonic()
                deadline = task_started + timeout
            elif kind == "cell" and valid and task == current:
                error = event.get("error")
                runs[task].cell_ok = error is None
                runs[task].cell_error = None if error is None else str(error)[:1000]
            elif (
                kind == "case"
                and valid
                and task == current
                and isinstance(event.get("case"), int)
                and event["case"] not in runs[task].cases
            ):
                runs[task].cases[event["case"]] = event
            elif kind == "done" and valid and task == current:
                runs[task].finished = True
                runs[task].seconds = time.monotonic() - task_started
            elif kind == "violation":
                target = current if current is not None else start
                runs[target].violations.append(str(event.get("what"))[:200])
            else:  # out of order, duplicated or unknown: not written by the worker
                tamper()

        while exited is None:
            wait = max(0.0, deadline - time.monotonic()) if killed_for is None else 5.0
            watch = [self.sock] + ([read_fd] if not eof else [])
            readable, _, _ = select.select(watch, [], [], wait)
            if read_fd in readable:
                chunk = os.read(read_fd, 2**20)
                if not chunk:
                    eof = True
                received += len(chunk)
                buffer += chunk
                while b"\n" in buffer:
                    line, _, rest = bytes(buffer).partition(b"\n")
                    buffer = bytearray(rest)
                    handle(line)
                if len(buffer) > MAX_LINE or received > budget:
                    buffer.clear()
                    if killed_for is None:
                        killed_for = current if current is not None else start
                        runs[killed_for].problem = "your code sent too much output to the grader"
                        _kill(pid)
                    eof = True
            if self.sock in readable:
                frame = self._recv(timeout=1)
                if frame.get("op") == "exited":
                    exited = frame
                continue
            if not readable and killed_for is None:
                killed_for = current if current is not None else start
                runs[killed_for].problem = f"timed out after {timeout:g} s"
                _kill(pid)
            elif not readable:
                raise SandboxError("the grading worker did not reap a killed job")
        # The zygote has reaped every process of the job: drain what is left in the pipe.
        while not eof:
            readable, _, _ = select.select([read_fd], [], [], 1.0)
            if not readable:
                break
            chunk = os.read(read_fd, 2**20)
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer and len(buffer) <= MAX_LINE:
                line, _, rest = bytes(buffer).partition(b"\n")
                buffer = bytearray(rest)
                handle(line)
        if current is not None and not runs[current].finished and runs[current].problem is None:
            runs[current].problem = _death_message(exited)
        return hello


def _kill(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        try:
            kill(pid, signal.SIGKILL)
        except OSError:
            pass


def _death_message(exited: dict) -> str:
    if "signal" in exited:
        name = _signal_name(int(exited["signal"]))
        if name == "SIGXCPU":
            return "used more CPU time than allowed"
        if name == "SIGKILL":
            return "was killed (out of memory, or too many processes)"
        return f"crashed the Python process ({name}, e.g. a segmentation fault)"
    code = exited.get("exit")
    return f"ended the grading process (exit status {code}, e.g. with os._exit)"
