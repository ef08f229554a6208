"""The grader's worker: the only code that runs next to a student's code.

:mod:`cnncourse.grading.sandbox` starts this file as a standalone script inside a fresh
bubblewrap sandbox per job, ``python -I -S worker.py <socket fd>``, with a ``sys.path`` of
the standard library and the virtual environment's site-packages only. It imports nothing
from ``cnncourse`` on purpose: the package ships the reference solutions, and the sandbox
does not even contain it.

Transport (this part belongs to the process boundary):

1. the parent sends one *job* frame on the socket: configuration (limits, the user id to
   drop to when the grader runs as root), the task cells and how many cases each task has
   -- but no case inputs;
2. the worker confines itself (user id, resource limits, closed file descriptors, an empty
   working directory, an audit hook as defence in depth) and runs the task cells in order;
3. after a task's cell ran, it asks for nothing: the parent sends the inputs of the task's
   *next* case only after it received the output of the previous one, so the child never
   holds the inputs of a case it has not reached (hidden cases included);
4. events go back as JSON lines on the same socket. The parent trusts none of them.

Frames parent -> child: 4-byte big-endian length, then JSON. Lines child -> parent: JSON
objects, ``{"ev": "hello" | "setup_error" | "start" | "cell" | "case" | "done" |
"violation", ...}``.

Wire format of values (the parent decodes and validates it in ``wire.py``): JSON, where
``None``, bools, ints, floats and strings are themselves, lists are JSON arrays, and every
JSON object has exactly one tag key: ``{"__tuple__": [...]}``, ``{"__dict__": [[k, v],
...]}``, ``{"__ndarray__": [dtype, shape, base64]}``, ``{"__scalar__": [dtype, base64]}``,
``{"__unsupported__": "type name"}``.
"""

from __future__ import annotations

import base64
import builtins
import json
import os
import resource
import signal
import socket
import struct
import sys
import traceback
import warnings

PROTOCOL_VERSION = 2
MAX_STRING = 10_000
MAX_DEPTH = 20
MAX_FRAME = 256 * 2**20
#: Bytes of the output budget one list, tuple or dict item costs: with the default 8 MB
#: budget, at most ~80,000 items, well under what the parent accepts in one line.
ITEM_COST = 100
WORKDIR = "/tmp/work"

# --------------------------------------------------------------------------- framing


def send_frame(sock: socket.socket, obj: object) -> None:
    """Send one length-prefixed JSON frame (used by the parent, towards the child)."""
    payload = json.dumps(obj).encode()
    sock.sendall(struct.pack("!I", len(payload)) + payload)


def frame_bytes(obj: object) -> bytes:
    """The bytes of one frame (the parent writes them without blocking)."""
    payload = json.dumps(obj).encode()
    return struct.pack("!I", len(payload)) + payload


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(min(n, 2**20))
        if not chunk:
            raise EOFError("socket closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> object:
    """Receive one frame from the parent (trusted)."""
    (size,) = struct.unpack("!I", _recv_exact(sock, 4))
    if size > MAX_FRAME:
        raise ValueError("frame too large")
    return json.loads(_recv_exact(sock, size))


# --------------------------------------------------------------------------- values


class _TooLarge(Exception):
    pass


_ARRAY_KINDS = "biuf"


def encode(value, budget: list[int], depth: int = 0):
    """Turn a student's output into the data-only wire format (see the module docstring)."""
    import numpy as np

    if depth > MAX_DEPTH:
        return {"__unsupported__": "structure nested too deeply"}
    if value is None or type(value) in (bool, str, float):
        if isinstance(value, str) and len(value) > MAX_STRING:
            raise _TooLarge("string")
        return value
    if isinstance(value, bool | np.bool_):
        if isinstance(value, np.bool_):
            return {"__scalar__": ["|b1", base64.b64encode(np.asarray(value).tobytes()).decode()]}
        return bool(value)
    if isinstance(value, np.generic):
        arr = np.asarray(value)
        if arr.dtype.kind not in _ARRAY_KINDS:
            return {"__unsupported__": f"NumPy scalar of dtype {arr.dtype}"}
        return {"__scalar__": [arr.dtype.str, base64.b64encode(arr.tobytes()).decode()]}
    if isinstance(value, int):
        value = int.__index__(value)
        if value.bit_length() > 4000:
            return {"__unsupported__": "integer with more than 4000 bits"}
        return value
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return encode(str.__str__(value), budget, depth)
    if not isinstance(value, np.ndarray) and hasattr(value, "numpy") and callable(value.numpy):
        value = value.numpy()  # a TensorFlow tensor
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(np.asarray(value))
        if arr.dtype.kind not in _ARRAY_KINDS or arr.dtype.fields is not None:
            return {"__unsupported__": f"array of dtype {arr.dtype}"}
        budget[0] -= arr.nbytes
        if budget[0] < 0:
            raise _TooLarge("array")
        return {
            "__ndarray__": [
                arr.dtype.str,
                list(arr.shape),
                base64.b64encode(arr.tobytes()).decode(),
            ]
        }
    if isinstance(value, tuple | list):
        budget[0] -= ITEM_COST * len(value)  # the parent reads a bounded number of items
        if budget[0] < 0:
            raise _TooLarge("sequence")
        items = [encode(v, budget, depth + 1) for v in tuple.__iter__(tuple(value))]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        budget[0] -= 3 * ITEM_COST * len(value)
        if budget[0] < 0:
            raise _TooLarge("dict")
        return {
            "__dict__": [
                [encode(k, budget, depth + 1), encode(v, budget, depth + 1)]
                for k, v in dict.items(value)
            ]
        }
    return {"__unsupported__": type(value).__name__[:100]}


def decode_inputs(obj):
    """Decode the parent's (trusted) case inputs: the same format, arrays made writable."""
    import numpy as np

    if isinstance(obj, list):
        return [decode_inputs(v) for v in obj]
    if isinstance(obj, dict):
        ((tag, body),) = obj.items()
        if tag == "__tuple__":
            return tuple(decode_inputs(v) for v in body)
        if tag == "__dict__":
            return {decode_inputs(k): decode_inputs(v) for k, v in body}
        if tag == "__ndarray__":
            dtype, shape, data = body
            return np.frombuffer(base64.b64decode(data), dtype=dtype).reshape(shape).copy()
        if tag == "__scalar__":
            dtype, data = body
            return np.frombuffer(base64.b64decode(data), dtype=dtype)[0]
        raise ValueError(f"unknown tag {tag}")
    return obj


# --------------------------------------------------------------------------- confinement


def confine(config: dict, keep_fd: int) -> list[str]:
    """Drop to the job's user id, set resource limits, close file descriptors, move into an
    empty working directory. Runs before any student code."""
    applied = []
    uid = config.get("uid")
    if os.geteuid() == 0 and uid is not None:
        # The grader runs as root: the sandbox granted only CAP_SETUID/CAP_SETGID, to get
        # here; changing to a user of its own drops them for good.
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        applied.append(f"unprivileged user {uid}")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    os.closerange(3, keep_fd)
    os.closerange(keep_fd + 1, 1024)
    limits = config["limits"]
    cpu = int(limits["cpu_s"])
    for name, value in (
        ("RLIMIT_AS", int(limits["memory_mb"]) * 2**20),
        ("RLIMIT_CPU", cpu),
        ("RLIMIT_FSIZE", int(limits["file_mb"]) * 2**20),
        ("RLIMIT_CORE", 0),
        ("RLIMIT_NOFILE", 64),
        ("RLIMIT_NPROC", int(limits["nproc"])),
    ):
        hard = value + 1 if name == "RLIMIT_CPU" else value
        resource.setrlimit(getattr(resource, name), (value, hard))
    applied.append(
        f"limits: memory {limits['memory_mb']} MB, CPU {cpu} s, files "
        f"{limits['file_mb']} MB, {limits['nproc']} processes"
    )
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write raises instead
    workdir = config.get("workdir") or WORKDIR
    os.makedirs(workdir, mode=0o700, exist_ok=True)
    os.chdir(workdir)
    os.environ.clear()
    os.environ.update(
        HOME=workdir,
        TMPDIR=workdir,
        PATH="/usr/bin:/bin",
        LANG="C.UTF-8",
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        TF_CPP_MIN_LOG_LEVEL="3",
        KERAS_HOME=os.path.join(workdir, ".keras"),
        MPLCONFIGDIR=os.path.join(workdir, ".matplotlib"),
    )
    applied.append("fresh working directory")
    return applied


# --------------------------------------------------------------------------- the child


class Child:
    """One job: run the task cells in order and report outputs for every case."""

    def __init__(self, config: dict, request: dict, sock: socket.socket) -> None:
        self.config = config
        self.request = request
        self.sock = sock
        self.fd = sock.fileno()
        self.workdir = config.get("workdir") or WORKDIR
        self.hidden = tuple(config.get("hide", []))
        self._sendall = sock.sendall

    def emit(self, obj: dict) -> None:
        self._sendall((json.dumps(obj, allow_nan=True) + "\n").encode())

    def next_input(self, index: int, k: int):
        """The inputs of case ``k`` of task ``index``: sent by the parent only now."""
        frame = recv_frame(self.sock)
        if (
            not isinstance(frame, dict)
            or frame.get("op") != "case"
            or frame.get("task") != index
            or frame.get("case") != k
        ):
            raise EOFError("the grader sent no input for this case")
        return decode_inputs(frame["input"])

    def confine(self) -> list[str]:
        applied = confine(self.config, self.fd)
        for module in self.config.get("preload", ["numpy"]):
            try:  # before the audit hook, which would refuse some of what imports do
                __import__(module)
            except Exception:  # a task without NumPy still runs
                pass
        _install_audit_hook(self)
        applied.append("audit hook")
        return applied

    def run(self) -> None:
        applied = self.confine()
        self.emit({"ev": "hello", "applied": applied})
        namespace: dict = {"__name__": "__main__", "__builtins__": builtins}
        preamble = self.request.get("preamble", "")
        if preamble:
            try:
                exec(compile(preamble, "<setup>", "exec"), namespace)
            except BaseException as exc:
                self.emit({"ev": "setup_error", "error": _describe(exc, "<setup>", preamble)})
        start = self.request.get("start", 0)
        for index, task in enumerate(self.request["tasks"]):
            if index < start:
                if task.get("replay"):  # define the names later tasks may use, quietly
                    self._exec_cell(task, namespace)
                continue
            self.emit({"ev": "start", "task": index})
            error = self._exec_cell(task, namespace) if task.get("exec", True) else None
            self.emit({"ev": "cell", "task": index, "error": error})
            if error is None:
                self._run_cases(index, task, namespace)
            self.emit({"ev": "done", "task": index})

    def _exec_cell(self, task: dict, namespace: dict) -> str | None:
        filename = f"<answer {task['id']}>"
        source = task["source"]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(compile(source, filename, "exec"), namespace)
        except BaseException as exc:
            return _describe(exc, filename, source)
        return None

    def _run_cases(self, index: int, task: dict, namespace: dict) -> None:
        fn = namespace.get(task["function"])
        filename = f"<answer {task['id']}>"
        for k in range(int(task.get("cases", 0))):
            case = self.next_input(index, k)
            if not callable(fn):
                what = "nothing" if fn is None else f"a {type(fn).__name__}"
                self.emit(
                    {
                        "ev": "case",
                        "task": index,
                        "case": k,
                        "error": f"expected a function named {task['function']}, found {what}",
                    }
                )
                continue
            args, kwargs = case
            args = tuple(_copy(a) for a in args)
            event: dict = {"ev": "case", "task": index, "case": k}
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    got = fn(*args, **kwargs)
            except NotImplementedError:
                event["not_implemented"] = True
                self.emit(event)
                continue
            except BaseException as exc:
                event["error"] = _describe(exc, filename, task["source"])
                self.emit(event)
                continue
            try:
                if task.get("artifact"):
                    event["artifact"] = self._save_artifact(got, task["artifact"], k)
                else:
                    event["value"] = encode(got, [int(self.config["limits"]["output_mb"]) << 20])
            except _TooLarge:
                event["error"] = "your output is too large to be graded"
            except BaseException as exc:
                event["error"] = f"your output could not be sent to the grader ({_name(exc)})"
            self.emit(event)

    def _save_artifact(self, obj, spec: dict, k: int) -> str:
        """Save a returned object (e.g. a Keras model) with its own ``save`` method."""
        path = os.path.join(self.workdir, f"artifact-{k}{spec['suffix']}")
        saver = getattr(obj, spec.get("method", "save"), None)
        if not callable(saver):
            raise TypeError(f"returned a {type(obj).__name__}, which has no save method")
        saver(path)
        limit = int(self.config["limits"]["output_mb"]) << 20
        with open(path, "rb") as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise _TooLarge("artifact")
        return base64.b64encode(data).decode()


def _copy(value):
    import numpy as np

    return np.copy(value) if isinstance(value, np.ndarray) else value


def _name(exc: BaseException) -> str:
    return type(exc).__name__


def _describe(exc: BaseException, filename: str, source: str) -> str:
    """Name the exception and the line of the student's code it came from."""
    if isinstance(exc, SystemExit):
        return "your code called sys.exit() or exit()"
    if isinstance(exc, KeyboardInterrupt):
        return "your code raised KeyboardInterrupt"
    where = ""
    try:
        lines = source.splitlines()
        frames = traceback.StackSummary.extract(
            traceback.walk_tb(exc.__traceback__), lookup_lines=False
        )
        for frame in reversed(frames):
            if frame.filename == filename and 0 < (frame.lineno or 0) <= len(lines):
                where = f" (line {frame.lineno}: `{lines[frame.lineno - 1].strip()[:120]}`)"
                break
        if isinstance(exc, SyntaxError) and exc.filename == filename:
            where = f" (line {exc.lineno})"
        text = str(exc).strip()
    except BaseException:
        text = ""
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"your code raised {_name(exc)}" + (f": {text}" if text else "") + where


# --------------------------------------------------------------------------- audit hook


_BLOCKED_EVENTS = (
    "os.fork",
    "os.forkpty",
    "os.posix_spawn",
    "os.spawn",
    "os.exec",
    "os.system",
    "subprocess.Popen",
    "pty.spawn",
    "socket.",
    "ctypes.",
    "os.kill",
    "os.killpg",
    "signal.",
    "sys.addaudithook",
    "sys.settrace",
    "sys.setprofile",
    "_posixsubprocess",
)


def _install_audit_hook(child: Child) -> None:
    """Report and refuse the course package, protected paths, processes, sockets, ctypes.

    Defence in depth only: pure Python can get around an audit hook, so no guarantee
    rests on it. What holds comes from the sandbox (the protected paths are not even
    there, the network does not exist) and the resource limits.
    """
    hidden = tuple(p.rstrip("/") for p in child.hidden)
    exempt = tuple(p.rstrip("/") for p in [*child.config.get("expose", []), child.workdir])
    blocked = _BLOCKED_EVENTS
    realpath, fspath, fsdecode = os.path.realpath, os.fspath, os.fsdecode
    emit = child.emit
    startswith = str.startswith

    def is_hidden(path) -> bool:
        try:
            if isinstance(path, int):
                return False
            p = realpath(fsdecode(fspath(path)))
        except Exception:
            return False
        if any(p == e or startswith(p, e + "/") for e in exempt):
            return False
        return any(p == h or startswith(p, h + "/") for h in hidden)

    def hook(event: str, args: tuple) -> None:
        if event == "import":
            name = args[0] if args else ""
            if isinstance(name, str) and (name == "cnncourse" or startswith(name, "cnncourse.")):
                emit({"ev": "violation", "what": "imports the course package cnncourse"})
                raise ImportError("the course package cannot be imported in an answer")
            return
        if event in ("open", "os.listdir", "os.scandir", "os.chdir", "shutil.copyfile"):
            if args and is_hidden(args[0]):
                emit({"ev": "violation", "what": f"tried to open {str(args[0])[:200]}"})
                raise PermissionError("protected path")
            return
        for prefix in blocked:
            if startswith(event, prefix):
                raise PermissionError(f"{event} is not allowed in the grader")

    sys.addaudithook(hook)


# --------------------------------------------------------------------------- main


def main(argv: list[str]) -> int:
    sock = socket.socket(fileno=int(argv[1]))
    try:
        request = recv_frame(sock)
    except (EOFError, OSError, ValueError):
        return 0
    if not isinstance(request, dict) or request.get("op") != "job":
        return 0
    sys.path[:] = request["config"]["sys_path"]
    try:
        Child(request["config"], request, sock).run()
    except BaseException:
        if os.environ.get("CNNCOURSE_WORKER_DEBUG"):
            os.write(2, traceback.format_exc().encode())
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
