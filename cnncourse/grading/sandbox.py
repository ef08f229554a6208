"""Run a student's task cells in a bubblewrap sandbox of their own and collect the outputs.

The parent side of ``worker.py``. Every job (the task cells of one submission, or the
tasks left after one that timed out or crashed) runs in a fresh sandbox made by
`bubblewrap <https://github.com/containers/bubblewrap>`_ (``bwrap``, the tool Flatpak is
built on), configured as an *allow-list*:

- its own pid, network, IPC, UTS and mount namespaces (``--unshare-*``), killed with the
  grader (``--die-with-parent``), in a session of its own (``--new-session``);
- a read-only view of only the interpreter, the standard library, the virtual
  environment's site-packages and the system's shared libraries; any ``cnncourse`` package
  inside them is covered by an empty tmpfs. Nothing else of the disk exists inside: no
  course checkout, no solutions, no submissions, no output folder, no home folders;
- a private ``/tmp`` per job (a size-limited tmpfs) that holds the working directory and
  disappears with the sandbox;
- as root: no user namespace, but the worker changes to a user id of its own per worker
  slot (``BASE_UID + slot``), so resource limits count its processes alone; as an
  ordinary user: a user namespace with the grader's own id and no capabilities;
- resource limits (``Limits``) set by the worker before any student code.

:meth:`Worker.run` sends the job, then the inputs of one case at a time (the next only
after the previous output came back), enforces a wall-clock deadline per task while data
streams, reads with bounded bytes, lines and nesting, and kills the sandbox on timeout.
What comes back is data only (see :mod:`cnncourse.grading.wire`); no verdict is decided
here, and nothing a child sends is executed.

Where the sandbox cannot be created, :meth:`Worker.start` raises
:class:`SandboxUnavailable` with the reason and how to enable it, unless the worker was made
with ``isolation="allow-none"``; it then runs jobs as plain processes and says so in
:attr:`Worker.protections` (``NOT_ISOLATED``).

Examples
--------
>>> from cnncourse.grading.wire import encode
>>> with Worker(Limits(timeout_s=5)) as worker:
...     run = worker.run([TaskJob("ex00.f", "def f(x):\\n    return 2 * x", "f")],
...                      [[encode(((2,), {}))]])
>>> run.tasks[0].cases[0]["value"]
4
"""

from __future__ import annotations

import glob
import json
import os
import select
import shutil
import signal
import site
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnncourse.grading import worker as _worker_module
from cnncourse.grading.worker import frame_bytes

__all__ = [
    "NOT_ISOLATED",
    "Limits",
    "LineReader",
    "SandboxError",
    "SandboxUnavailable",
    "TaskJob",
    "TaskRun",
    "Worker",
    "WorkerRun",
    "sandbox_command",
]

WORKER_PATH = Path(_worker_module.__file__).resolve()
WORKER_IN_SANDBOX = "/run/cnncourse/worker.py"
#: Jobs of worker slot ``k`` run as user id ``BASE_UID + k`` when the grader runs as root,
#: so that their processes can be counted and they own nothing of the grader's.
BASE_UID = 1_900_000_000
#: Bounds on what one job may send back; together they keep the parent's memory per job
#: under 100 MB whatever the child writes (see :class:`LineReader`).
MAX_LINE = 12 * 2**20
MAX_JOB_BYTES = 40 * 2**20
MAX_LINES = 100_000
MAX_TOKENS = 200_000
FORGED = "wrote into the grader's private channel"
NOT_ISOLATED = (
    "NOT ISOLATED: grading ran without a sandbox, as the grader's own user (--allow-unisolated)"
)

HOW_TO_ENABLE = """\
How to enable the sandbox:
  - install bubblewrap: apt-get install bubblewrap (Debian/Ubuntu), dnf install bubblewrap;
  - as an ordinary user it needs unprivileged user namespaces: sysctl
    kernel.unprivileged_userns_clone=1 (older Debian), user.max_user_namespaces > 0, and on
    Ubuntu 24.04+ kernel.apparmor_restrict_unprivileged_userns=0 (or an AppArmor profile
    for bwrap);
  - in a Docker/Podman container the default seccomp and AppArmor profiles refuse new
    namespaces: run the container with
        --security-opt seccomp=unconfined --security-opt apparmor=unconfined
    (grading as an ordinary user inside), or, grading as root inside the container, with
        --cap-add SYS_ADMIN --security-opt seccomp=unconfined --security-opt apparmor=unconfined
  - if bwrap says it cannot mount /proc inside a container, add
        --security-opt systempaths=unconfined
  - in Kubernetes: a securityContext with seccompProfile Unconfined and AppArmor
    unconfined (and capabilities add SYS_ADMIN when running as root).
To grade anyway, without isolation (student code can then read the disk, including the
solutions, and interfere with the grader), pass --allow-unisolated: every gradebook row and
feedback page then says that grading ran without isolation."""


class SandboxError(RuntimeError):
    """The worker itself failed (not the student's code)."""


class SandboxUnavailable(SandboxError):
    """The sandbox cannot be created on this machine (the message says why and what to do)."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one job.

    Parameters
    ----------
    timeout_s : float
        Wall-clock seconds per task (its cell and all its cases).
    memory_mb : int
        Address-space limit (``RLIMIT_AS``).
    file_mb : int
        Largest file the code may write (``RLIMIT_FSIZE``).
    nproc : int
        Processes of the job's user (``RLIMIT_NPROC``).
    output_mb : int
        Largest output (array or saved object) of one case the child may send back.
    scratch_mb : int
        Size of the job's private ``/tmp`` (a tmpfs).
    """

    timeout_s: float = 10.0
    memory_mb: int = 1024
    file_mb: int = 32
    nproc: int = 16
    output_mb: int = 8
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
    """What happened to one task in the sandbox(es)."""

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


# --------------------------------------------------------------------------- bounded reading


class Overflow(Exception):
    """The child sent more than a job may (bytes, one line, or lines)."""


class LineReader:
    """Split a byte stream into lines in linear time, with hard bounds.

    Raises :class:`Overflow` when the stream exceeds ``max_bytes`` in total, a line exceeds
    ``max_line`` bytes or there are more than ``max_lines`` lines.

    Examples
    --------
    >>> r = LineReader(max_line=10)
    >>> r.feed(b'{"a": 1}\\n{"b"')
    [b'{"a": 1}']
    >>> r.feed(b": 2}\\n")
    [b'{"b": 2}']
    >>> r.feed(b"x" * 11)
    Traceback (most recent call last):
    ...
    cnncourse.grading.sandbox.Overflow: a line longer than 10 bytes
    """

    def __init__(
        self, max_line: int = MAX_LINE, max_bytes: int = MAX_JOB_BYTES, max_lines: int = MAX_LINES
    ) -> None:
        self.max_line, self.max_bytes, self.max_lines = max_line, max_bytes, max_lines
        self.buffer = bytearray()
        self.received = 0
        self.lines = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        self.received += len(chunk)
        if self.received > self.max_bytes:
            raise Overflow(f"more than {self.max_bytes >> 20} MB in total")
        scan = len(self.buffer)
        self.buffer += chunk
        out = []
        begin = 0
        while True:
            end = self.buffer.find(b"\n", scan)
            if end < 0:
                break
            self.lines += 1
            if self.lines > self.max_lines:
                raise Overflow(f"more than {self.max_lines} lines")
            out.append(bytes(self.buffer[begin:end]))
            begin = scan = end + 1
        del self.buffer[:begin]
        if len(self.buffer) > self.max_line:
            raise Overflow(f"a line longer than {self.max_line} bytes")
        return out


def parse_event(line: bytes) -> dict | None:
    """One event line as a dict, or ``None`` for anything malformed (never raises).

    Nesting is bounded by the JSON parser's recursion limit (a ``RecursionError`` is caught)
    and the number of containers and items by :data:`MAX_TOKENS`, counted in linear time
    before parsing, so a line cannot make the parent build a huge structure.

    Examples
    --------
    >>> parse_event(b'{"ev": "done", "task": 0}')
    {'ev': 'done', 'task': 0}
    >>> parse_event(b"[" * 200_000) is None
    True
    """
    tokens = line.count(b",") + line.count(b"[") + line.count(b"{")
    if tokens > MAX_TOKENS:
        return None
    try:
        event = json.loads(line)
    except (ValueError, RecursionError, MemoryError):
        return None
    return event if isinstance(event, dict) else None


# --------------------------------------------------------------------------- the sandbox


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def python_paths() -> list[str]:
    """The standard library and site-packages: all a child may import from."""
    bases = tuple(os.path.realpath(p) for p in {sys.base_prefix, sys.base_exec_prefix})
    paths = [p for p in sys.path if p and os.path.realpath(p).startswith(bases)]
    paths += site.getsitepackages()
    out: list[str] = []
    for p in paths:
        p = os.path.realpath(p)
        if os.path.isdir(p) and p not in out:
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


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _read_only_sources(extra: list[str]) -> list[str]:
    """What the sandbox shows, read-only: interpreter, its libraries, the shared libraries."""
    wanted = [os.path.realpath(sys.executable), *python_paths(), *extra]
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir and os.path.isdir(libdir):
        wanted.append(os.path.realpath(libdir))  # libpython (pyenv, conda, /usr/local builds)
    for system in ("/usr/lib", "/usr/lib64", "/usr/lib32", "/etc/ld.so.cache"):
        if os.path.exists(system) and not os.path.islink(system):
            wanted.append(system)
    out: list[str] = []
    for p in sorted(set(wanted), key=lambda p: (p.count("/"), p)):
        if not any(_inside(p, o) for o in out):
            out.append(p)
    return out


def _hidden_inside(sources: list[str], hide: list[str]) -> list[str]:
    """Folders inside the shown ones that must look empty: any ``cnncourse`` package in a
    site-packages folder, the course's own folders and ``hide``."""
    found = []
    # Any site-/dist-packages folder inside what is shown (the system's, the base
    # interpreter's next to its libpython) may hold an installed course too.
    system = [
        p
        for s in sources
        if os.path.isdir(s)
        for p in glob.glob(os.path.join(s, "python3*", "*-packages"))
        + glob.glob(os.path.join(s, "*-packages"))
    ]
    for p in [*python_paths(), *system]:  # a course installed next to any library shown
        candidate = os.path.join(p, "cnncourse")
        if os.path.isdir(candidate) and any(_inside(candidate, s) for s in sources):
            found.append(candidate)
    for p in [*course_paths(), *hide]:
        p = os.path.realpath(p)
        if os.path.isdir(p) and any(_inside(p, s) for s in sources):
            found.append(p)
    return sorted(set(found))


def sandbox_command(
    limits: Limits,
    slot: int = 0,
    hide: list[str] | None = None,
    show: list[str] | None = None,
    course: bool = False,
) -> list[str]:
    """The ``bwrap`` arguments of one job's sandbox (the command to run goes after them).

    ``show`` adds read-only folders or files (the artifact evaluator's job folder); ``hide``
    lists folders that must look empty if they lie inside what is shown. ``course`` leaves
    the course package visible (only for the evaluator of saved models, which is course
    code; never for a student's job).
    """
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed.\n" + HOW_TO_ENABLE)
    root = os.geteuid() == 0
    argv = [bwrap, "--die-with-parent", "--new-session"]
    if root:
        # No user namespace: the worker changes to a user id of its own, which needs these
        # two capabilities until it does; every other capability is dropped.
        argv += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
        argv += ["--unshare-cgroup-try", "--cap-drop", "ALL"]
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-all"]
    # The job's private /tmp first, so that what is shown from under /tmp (a clone and its
    # virtual environment there, the evaluator's job folder) is bound on top of it.
    argv += ["--perms", "1777", "--size", str(limits.scratch_mb * 2**20), "--tmpfs", "/tmp"]
    sources = _read_only_sources(list(show or []))
    # Parent folders of what is shown, traversable by the job's user (bwrap would make
    # them 0700 as the grader), in order.
    parents = {str(a) for src in sources for a in Path(src).parents if str(a) != "/"}
    for folder in sorted(parents, key=lambda p: (p.count("/"), p)):
        if not os.path.islink(folder) and folder != "/tmp":
            argv += ["--perms", "0755", "--dir", folder]
    for src in sources:
        argv += ["--ro-bind", src, src]
    for link in ("/lib", "/lib64", "/lib32", "/bin"):
        if os.path.islink(link):
            argv += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link) and link not in sources:
            argv += ["--ro-bind", link, link]
    for path in [] if course else _hidden_inside(sources, list(hide or [])):
        argv += ["--perms", "0555", "--size", "4096", "--tmpfs", path]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--ro-bind", str(WORKER_PATH), WORKER_IN_SANDBOX]
    argv += ["--chdir", "/tmp", "--setenv", "HOME", "/tmp"]
    return argv


def _probe(argv: list[str]) -> str | None:
    """Why a sandbox made with ``argv`` cannot run Python (``None`` when it can)."""
    code = "import os, sys; sys.exit(0 if os.access('/tmp', os.W_OK) else 3)"
    try:
        proc = subprocess.run(
            [*argv, os.path.realpath(sys.executable), "-I", "-S", "-c", code],
            capture_output=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()[-500:]
        return f"bwrap exited with status {proc.returncode}: {err or 'no message'}"
    return None


class Worker:
    """Runs jobs one at a time, each in a fresh sandbox.

    Parameters
    ----------
    limits : Limits
    slot : int
        Index of this worker in a pool (decides the jobs' user id when running as root).
    hide : list of str
        Extra folders the student's code must not see, should they lie inside what the
        sandbox shows (the submissions and outputs normally do not).
    isolation : {"require", "allow-none", "none"}
        ``"require"``: :meth:`start` raises :class:`SandboxUnavailable` when no sandbox can
        be made. ``"allow-none"``: fall back to unisolated processes (said in
        :attr:`protections`). ``"none"``: never sandbox (tests of that mode).
    """

    def __init__(
        self,
        limits: Limits | None = None,
        slot: int = 0,
        hide: list[str] | None = None,
        preload: list[str] | None = None,
        isolation: str = "require",
    ) -> None:
        if isolation not in ("require", "allow-none", "none"):
            raise ValueError(f"unknown isolation {isolation!r}")
        self.limits = limits or Limits()
        self.slot = slot
        self.hide = sorted({str(Path(p).resolve()) for p in hide or []})
        self.isolation = isolation
        self.preload = ["numpy"] if preload is None else list(preload)
        self.isolated = False
        self.argv: list[str] = []
        self.protections: list[str] = []
        self.notes: list[str] = []
        self.started = False

    # ----- lifecycle

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Check that a sandbox can be made here; decide the protections."""
        why = None
        if self.isolation != "none":
            try:
                self.argv = sandbox_command(self.limits, self.slot, self.hide)
                why = _probe(self.argv)
            except SandboxUnavailable as exc:
                why = str(exc).split("\n")[0]
            if why is None:
                self.isolated = True
            elif self.isolation == "require":
                raise SandboxUnavailable(
                    f"cannot create the grading sandbox: {why}\n{HOW_TO_ENABLE}"
                )
        root = os.geteuid() == 0
        if self.isolated:
            self.protections = [
                "bubblewrap sandbox per job: own pid, network, IPC and mount namespaces",
                "read-only view of the interpreter and its libraries only",
                f"private /tmp per job ({self.limits.scratch_mb} MB)",
                f"unprivileged user {BASE_UID + self.slot}" if root else "user namespace",
            ]
        else:
            self.protections = [NOT_ISOLATED]
            if why:
                self.notes.append(f"no sandbox: {why}")
        self.started = True

    def close(self) -> None:
        self.started = False

    def restart(self) -> None:
        self.close()
        self.start()

    # ----- running a submission

    def run(
        self,
        tasks: list[TaskJob],
        inputs: list[list[Any]],
        preamble: str = "",
        limits: Limits | None = None,
    ) -> WorkerRun:
        """Run every task; ``inputs[i]`` lists ``(args, kwargs)`` of task ``i``'s cases
        already encoded with :func:`cnncourse.grading.wire.encode`.

        ``limits`` replaces the worker's limits for this run (its time, memory, process
        and output limits; the size of ``/tmp`` is the worker's).
        """
        if not self.started:
            self.start()
        limits = limits or self.limits
        runs = [TaskRun() for _ in tasks]
        protections = list(self.protections)
        start = 0
        setup_error = None
        while start < len(tasks):
            hello = self._job(tasks, inputs, preamble, start, runs, limits)
            if hello is not None:
                protections = list(dict.fromkeys(self.protections + hello.get("applied", [])))
                setup_error = setup_error or hello.get("setup_error")
            unfinished = [i for i in range(start, len(tasks)) if not runs[i].finished]
            if not unfinished:
                break
            stuck = unfinished[0]
            if runs[stuck].problem is None:
                runs[stuck].problem = "the grading process stopped before this task finished"
            runs[stuck].finished = True
            start = stuck + 1
        return WorkerRun(runs, protections, setup_error)

    def _config(self, n_tasks: int, workdir: str, limits: Limits) -> dict:
        return {
            "sys_path": python_paths(),
            "expose": python_paths(),
            "hide": course_paths() + self.hide,
            # Unisolated, the job runs as the grader's user (the interpreter may not even
            # be readable by another one): nothing is promised then.
            "uid": BASE_UID + self.slot if os.geteuid() == 0 and self.isolated else None,
            "workdir": workdir,
            "preload": self.preload,
            "limits": {
                "memory_mb": limits.memory_mb,
                "cpu_s": (int(limits.timeout_s) + 2) * max(1, n_tasks) + 5,
                "file_mb": limits.file_mb,
                "nproc": limits.nproc,
                "output_mb": limits.output_mb,
            },
        }

    def _spawn(self, sock: socket.socket, workdir: str) -> subprocess.Popen:
        python = os.path.realpath(sys.executable)
        if self.isolated:
            argv = [*self.argv, python, "-I", "-S", WORKER_IN_SANDBOX, str(sock.fileno())]
        else:
            argv = [python, "-I", "-S", str(WORKER_PATH), str(sock.fileno())]
        log = os.environ.get("CNNCOURSE_WORKER_LOG")  # start-up errors, for debugging
        return subprocess.Popen(
            argv,
            pass_fds=(sock.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(log, "ab") if log else subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1"},
            cwd="/",
            start_new_session=True,
        )

    def _job(
        self,
        tasks: list[TaskJob],
        inputs: list[list[Any]],
        preamble: str,
        start: int,
        runs: list[TaskRun],
        limits: Limits,
    ) -> dict | None:
        workdir = "/tmp/work"
        scratch = None
        if not self.isolated:  # a fresh folder of its own; removed without following links
            scratch = tempfile.mkdtemp(prefix="cnncourse-job-")
            workdir = os.path.join(scratch, "work")
            os.mkdir(workdir, 0o700)
        request = {
            "op": "job",
            "config": self._config(len(tasks) - start, workdir, limits),
            "preamble": preamble,
            "start": start,
            "tasks": [
                {
                    "id": t.id,
                    "source": t.source,
                    "function": t.function,
                    "artifact": t.artifact,
                    "exec": t.exec,
                    "replay": t.exec and runs[i].cell_ok,
                    "cases": len(inputs[i]) if i >= start else 0,
                }
                for i, t in enumerate(tasks)
            ],
        }
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            try:
                proc = self._spawn(child, workdir)
            except OSError as exc:
                raise SandboxError(f"could not start the grading sandbox: {exc}") from exc
            finally:
                child.close()
            try:
                hello = _Follow(limits, proc, parent, inputs, start, runs).run(frame_bytes(request))
            finally:
                _kill(proc)
            if hello is None:
                # The worker says hello before any student code runs: without it, the
                # sandbox or the interpreter failed, which is never the student's doing.
                raise SandboxError(
                    f"the grading sandbox did not start (exit status {proc.returncode})"
                )
            return hello
        finally:
            parent.close()
            if scratch is not None:
                _remove(scratch)


def _remove(path: str) -> None:
    """Remove a job folder without following symbolic links or changing permissions.

    :func:`shutil.rmtree` works with file descriptors relative to each folder on Linux, so
    a link planted by the job is removed, never followed. What cannot be removed stays.
    """
    shutil.rmtree(path, ignore_errors=True)


def _kill(proc: subprocess.Popen) -> None:
    """Kill the sandbox: bwrap's death takes its whole pid namespace with it."""
    if proc.poll() is None:
        for kill in (os.killpg, os.kill):
            try:
                kill(proc.pid, signal.SIGKILL)
            except OSError:
                pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired as exc:
        raise SandboxError("the grading sandbox could not be stopped") from exc


class _Follow:
    """The parent's side of one job: send inputs one case at a time, read events."""

    def __init__(self, limits, proc, sock, inputs, start, runs) -> None:
        self.limits, self.proc, self.sock = limits, proc, sock
        self.inputs, self.start, self.runs = inputs, start, runs
        self.out = bytearray()
        self.current: int | None = None
        self.sent: dict[int, int] = {}
        self.hello: dict | None = None
        self.task_started = 0.0
        self.deadline = time.monotonic() + limits.timeout_s + 5.0  # start-up, replayed cells

    def tamper(self) -> None:
        target = self.current if self.current is not None else self.start
        if FORGED not in self.runs[target].violations:
            self.runs[target].violations.append(FORGED)

    def send_case(self, task: int, k: int) -> None:
        self.sent[task] = k + 1
        self.out += frame_bytes(
            {"op": "case", "task": task, "case": k, "input": self.inputs[task][k]}
        )

    def handle(self, event: dict | None) -> None:
        if event is None:
            self.tamper()
            return
        runs = self.runs
        kind, task = event.get("ev"), event.get("task")
        valid = type(task) is int and self.start <= task < len(runs)
        current = self.current
        if kind == "hello" and self.hello is None:
            applied = event.get("applied")
            applied = applied if isinstance(applied, list) else []
            self.hello = {"applied": [str(a)[:200] for a in applied][:10]}
        elif kind == "setup_error" and self.hello is not None:
            self.hello["setup_error"] = str(event.get("error"))[:300]
        elif kind == "start" and valid and not runs[task].started and task != current:
            self.current = task
            runs[task].started = True
            self.task_started = time.monotonic()
            self.deadline = self.task_started + self.limits.timeout_s
        elif kind == "cell" and valid and task == current and task not in self.sent:
            error = event.get("error")
            runs[task].cell_ok = error is None
            runs[task].cell_error = None if error is None else str(error)[:1000]
            self.sent[task] = 0
            if error is None and self.inputs[task]:
                self.send_case(task, 0)
        elif (
            kind == "case"
            and valid
            and task == current
            and type(event.get("case")) is int
            and event["case"] == self.sent.get(task, 0) - 1
            and event["case"] not in runs[task].cases
        ):
            k = event["case"]
            runs[task].cases[k] = event
            if k + 1 < len(self.inputs[task]):
                self.send_case(task, k + 1)
        elif (
            kind == "done"
            and valid
            and task == current
            and task in self.sent
            and len(runs[task].cases) == (self.sent[task] if runs[task].cell_ok else 0)
        ):
            runs[task].finished = True
            runs[task].seconds = time.monotonic() - self.task_started
        elif kind == "violation":
            target = current if current is not None else self.start
            what = str(event.get("what"))[:200]
            if len(runs[target].violations) < 5:
                runs[target].violations.append(what)
        else:  # out of order, duplicated or unknown: not written by the worker
            self.tamper()

    def stop(self, problem: str) -> None:
        target = self.current if self.current is not None else self.start
        if self.runs[target].problem is None:
            self.runs[target].problem = problem
        _kill(self.proc)

    def run(self, request: bytes) -> dict | None:
        sock = self.sock
        sock.setblocking(False)
        self.out += request
        reader = LineReader(min(MAX_LINE, (self.limits.output_mb * 4 // 3 + 1) * 2**20))
        timeout = self.limits.timeout_s
        eof = False
        last = len(self.runs) - 1
        while not eof:
            if self.runs[last].finished:
                break  # everything is in: the sandbox has nothing more to say
            wait = self.deadline - time.monotonic()
            if wait <= 0:
                self.stop(f"timed out after {timeout:g} s")
                break
            writers = [sock] if self.out else []
            readable, writable, _ = select.select([sock], writers, [], wait)
            if writable:
                try:
                    n = sock.send(self.out[: 2**20])
                    del self.out[:n]
                except BlockingIOError:
                    pass
                except OSError:
                    self.out.clear()
            if not readable:
                continue
            try:
                chunk = sock.recv(2**20)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                eof = True
                break
            try:
                lines = reader.feed(chunk)
            except Overflow as exc:
                self.stop(f"your code sent too much output to the grader ({exc})")
                break
            for line in lines:
                self.handle(parse_event(line))
        current = self.current
        if current is not None and not self.runs[current].finished:
            if self.runs[current].problem is None:
                try:
                    status = self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    _kill(self.proc)
                    status = self.proc.returncode
                self.runs[current].problem = _death_message(status)
        return self.hello


def _death_message(status: int | None) -> str:
    if status is not None and status < 0:
        status = 128 - status
    if status is not None and status > 128:
        name = _signal_name(status - 128)
        if name == "SIGXCPU":
            return "used more CPU time than allowed"
        if name == "SIGKILL":
            return "was killed (out of memory, or too many processes)"
        return f"crashed the Python process ({name}, e.g. a segmentation fault)"
    return f"ended the grading process (exit status {status}, e.g. with os._exit)"
