"""The grader's worker: the only code that runs next to a student's code.

This file is started by :mod:`cnncourse.grading.sandbox` as a standalone script,
``python -I -S worker.py <socket fd>``, with a ``sys.path`` of the standard library and the
virtual environment's site-packages only. It imports nothing from ``cnncourse`` on purpose:
the package ships the reference solutions, and the whole point is that they cannot be
reached from here.

The process is a *zygote*:

1. it receives its configuration from the parent over a Unix socket;
2. it walls itself off once (where the platform allows): new mount and network namespaces,
   empty tmpfs mounts over the course repository, the submissions and the output folder,
   a size-limited tmpfs as ``/tmp``;
3. it imports NumPy once (the expensive part of starting Python for a NumPy task);
4. for every job it forks a fresh child that sets resource limits, drops privileges, moves
   into an empty working directory, installs an audit hook and only then runs the
   student's task cells. The child computes the student's outputs for the inputs in the
   job and streams them back as JSON lines on a pipe whose write end came with the job.
   It never sees an expected output and never decides a verdict.

Wire format of values (the parent decodes and validates it in ``wire.py``): JSON, where
``None``, bools, ints, floats and strings are themselves, lists are JSON arrays, and every
JSON object has exactly one tag key: ``{"__tuple__": [...]}``, ``{"__dict__": [[k, v],
...]}``, ``{"__ndarray__": [dtype, shape, base64]}``, ``{"__scalar__": [dtype, base64]}``,
``{"__unsupported__": "type name"}``.
"""

from __future__ import annotations

import base64
import builtins
import ctypes
import errno
import json
import os
import resource
import signal
import socket
import struct
import sys
import time
import traceback
import warnings

PROTOCOL_VERSION = 1
MAX_STRING = 10_000
MAX_DEPTH = 20
MAX_FRAME = 256 * 2**20

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None):
    def enc(text: str | None) -> bytes | None:
        return None if text is None else text.encode()

    _check(
        _libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)),
        f"mount {target}",
    )


def _prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0), f"prctl {option}")


def _drop_capabilities() -> None:
    """Clear every capability (used after setting up an unprivileged user namespace)."""

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [
            ("effective", ctypes.c_uint32),
            ("permitted", ctypes.c_uint32),
            ("inheritable", ctypes.c_uint32),
        ]

    header = Header(0x20080522, 0)
    data = (Data * 2)()
    _check(_libc.capset(ctypes.byref(header), ctypes.byref(data)), "capset")


# --------------------------------------------------------------------------- framing


def send_frame(sock: socket.socket, obj: object, fds: list[int] | None = None) -> None:
    payload = json.dumps(obj).encode()
    data = struct.pack("!I", len(payload)) + payload
    if fds:
        socket.send_fds(sock, [data[:4]], fds)
        sock.sendall(data[4:])
    else:
        sock.sendall(data)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(min(n, 2**20))
        if not chunk:
            raise EOFError("socket closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> tuple[object, list[int]]:
    head, fds, _, _ = socket.recv_fds(sock, 4, 4)
    if not head:
        raise EOFError("socket closed")
    if len(head) < 4:
        head += _recv_exact(sock, 4 - len(head))
    (size,) = struct.unpack("!I", head)
    if size > MAX_FRAME:
        raise ValueError("frame too large")
    return json.loads(_recv_exact(sock, size)), list(fds)


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
        budget[0] -= 8 * len(value)
        if budget[0] < 0:
            raise _TooLarge("sequence")
        items = [encode(v, budget, depth + 1) for v in tuple.__iter__(tuple(value))]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        budget[0] -= 16 * len(value)
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


# --------------------------------------------------------------------------- the zygote


class Zygote:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.config, _ = recv_frame(sock)
        self.protections: list[str] = []
        self.notes: list[str] = []
        self.hidden = tuple(self.config.get("hide", []))
        self.jobs = 0

    # ----- one-time setup

    def setup(self) -> None:
        cfg = self.config
        sys.path[:] = cfg["sys_path"]
        try:
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the grader died: so do we
            _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of a job come back to us to reap
        except OSError as exc:
            self.notes.append(str(exc))
        if cfg.get("namespaces", True):
            self._namespaces()
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = "1"
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        for module in cfg.get("preload", ["numpy"]):
            try:
                __import__(module)
            except Exception as exc:  # a task without NumPy still runs
                self.notes.append(f"preload {module}: {type(exc).__name__}: {exc}")

    def _namespaces(self) -> None:
        cfg = self.config
        root = os.geteuid() == 0
        try:
            if root:
                _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET), "unshare")
            else:
                uid, gid = os.geteuid(), os.getegid()
                _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET), "unshare")
                with open("/proc/self/setgroups", "w") as f:
                    f.write("deny")
                with open("/proc/self/uid_map", "w") as f:
                    f.write(f"{uid} {uid} 1")
                with open("/proc/self/gid_map", "w") as f:
                    f.write(f"{gid} {gid} 1")
                self.protections.append("user namespace")
        except OSError as exc:
            self.notes.append(f"no namespaces ({exc}); relying on the audit hook")
            return
        self.protections.append("no network (network namespace)")
        try:
            _mount(None, "/", None, MS_REC | MS_PRIVATE, None)
            masks = cfg.get("hide", []) + cfg.get("mask", [])
            self._hide_paths(masks, cfg.get("expose", []), cfg["scratch_mb"])
            self.protections.append("course code, submissions and outputs hidden (tmpfs)")
        except OSError as exc:
            self.notes.append(f"mounts failed: {exc}")

    def _hide_paths(self, hide: list[str], expose: list[str], scratch_mb: int) -> None:
        done: list[str] = []
        for path in sorted(set(hide), key=len):
            if any(path == d or path.startswith(d.rstrip("/") + "/") for d in done):
                continue
            if not os.path.isdir(path):
                continue
            keep = [e for e in expose if e.startswith(path.rstrip("/") + "/") and os.path.isdir(e)]
            keep_fds = [(e, os.open(e, os.O_PATH | os.O_DIRECTORY)) for e in keep]
            size = f"{scratch_mb}m" if path == "/tmp" else "1m"
            mode = "1777" if path == "/tmp" else "755"
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode={mode}")
            for e, fd in keep_fds:
                os.makedirs(e, exist_ok=True)
                _mount(f"/proc/self/fd/{fd}", e, None, MS_BIND | MS_REC, None)
                os.close(fd)
            done.append(path)

    # ----- the job loop

    def serve(self) -> None:
        numpy = sys.modules.get("numpy")
        send_frame(
            self.sock,
            {
                "op": "ready",
                "protocol": PROTOCOL_VERSION,
                "protections": self.protections,
                "notes": self.notes,
                "numpy": getattr(numpy, "__version__", None),
            },
        )
        while True:
            try:
                request, fds = recv_frame(self.sock)
            except EOFError:
                return
            if request.get("op") == "exit":
                return
            self.run_job(request, fds[0])

    def run_job(self, request: dict, job_fd: int) -> None:
        self.jobs += 1
        workdir = os.path.join(self.config.get("scratch", "/tmp"), f"job-{os.getpid()}-{self.jobs}")
        uid = self.config.get("uid")
        try:
            os.makedirs(workdir, mode=0o700)
            if uid is not None and os.geteuid() == 0:
                os.chown(workdir, uid, uid)
            inputs = decode_inputs(request["inputs"])
        except Exception as exc:
            send_frame(self.sock, {"op": "failed", "error": f"{type(exc).__name__}: {exc}"})
            os.close(job_fd)
            return
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                self.sock.close()
                Child(self.config, request, inputs, job_fd, workdir, self.hidden).run()
                code = 0
            except BaseException:
                code = 71
            finally:
                os._exit(code)
        os.close(job_fd)
        send_frame(self.sock, {"op": "started", "pid": pid})
        _, status = os.waitpid(pid, 0)
        self.reap(pid)
        _rmtree(workdir)
        if os.WIFSIGNALED(status):
            result = {"signal": os.WTERMSIG(status)}
        else:
            result = {"exit": os.WEXITSTATUS(status)}
        send_frame(self.sock, {"op": "exited", **result})

    def reap(self, pid: int) -> None:
        """Kill and reap whatever the job left behind (its orphans are re-parented to us)."""
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        me = os.getpid()
        for _ in range(500):
            children = _children(me)
            if not children:
                break
            for child in children:
                try:
                    os.kill(child, signal.SIGKILL)
                except OSError:
                    pass
            _reap_zombies()
            time.sleep(0.002)
        _reap_zombies()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return found


def _reap_zombies() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _rmtree(path: str) -> None:
    import shutil

    def onerror(func, p, exc):  # a student may chmod 000 their files: fix and retry
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=onerror)


# --------------------------------------------------------------------------- the child


class Child:
    """One job: run the task cells in order and report outputs for every case."""

    def __init__(self, config, request, inputs, job_fd, workdir, hidden) -> None:
        self.config = config
        self.request = request
        self.inputs = inputs
        self.fd = job_fd
        self.workdir = workdir
        self.hidden = hidden
        self._write = os.write

    def emit(self, obj: dict) -> None:
        data = (json.dumps(obj, allow_nan=True) + "\n").encode()
        view = memoryview(data)
        while view:
            n = self._write(self.fd, view)
            view = view[n:]

    def confine(self) -> list[str]:
        applied = []
        os.setsid()
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        # Close everything but the job pipe (the zygote's socket was closed already).
        os.closerange(3, self.fd)
        os.closerange(self.fd + 1, 1024)
        limits = self.config["limits"]
        mem = int(limits["memory_mb"]) * 2**20
        # CPU seconds: the per-task allowance times the tasks this job may run.
        tasks = len(self.request["tasks"]) - int(self.request.get("start", 0))
        cpu = int(limits["cpu_s"]) * max(1, tasks) + 5
        for name, value in (
            ("RLIMIT_AS", mem),
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
        uid = self.config.get("uid")
        if os.geteuid() == 0 and uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            applied.append(f"unprivileged user {uid}")
        elif "user namespace" in self.config.get("_protections", []):
            _drop_capabilities()
        try:
            _prctl(PR_SET_NO_NEW_PRIVS, 1)
        except OSError:
            pass
        os.chdir(self.workdir)
        os.environ.clear()
        os.environ.update(
            HOME=self.workdir,
            TMPDIR=self.workdir,
            PATH="/usr/bin:/bin",
            LANG="C.UTF-8",
            OPENBLAS_NUM_THREADS="1",
            OMP_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
        )
        applied.append("fresh working directory")
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
        for k, case in enumerate(self.inputs[index]):
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

    A Python audit hook cannot be removed by the code it watches. It is one layer of
    several: where the platform allows, the protected paths are not even there (tmpfs),
    the network does not exist and processes are limited by rlimits.
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
    zygote = Zygote(sock)
    try:
        zygote.setup()
        zygote.config["_protections"] = zygote.protections
        zygote.serve()
    except EOFError:
        return 0
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            return 0
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
