"""A JupyterLab server started for a test, and a small client for its REST and kernel APIs.

This is what JupyterLab's web page does when a student opens a notebook and runs it: read
the notebook with ``GET /api/contents/<path>``, start a session with a kernel
(``POST /api/sessions``), send each cell over the kernel's websocket
(``/api/kernels/<id>/channels``, Jupyter messaging protocol 5.3), collect what comes back,
and save with ``PUT /api/contents/<path>``.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests
import websocket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LabServer:
    """``jupyter lab`` (or any command that starts a Jupyter server) on 127.0.0.1.

    Use as a context manager: the server is stopped (kernels shut down, process group
    terminated) on exit, whatever happened.
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        port: int,
        token: str,
        cwd: Path,
        env: dict[str, str],
        log: Path,
        startup_timeout: float = 90,
    ) -> None:
        self.command = list(command)
        self.port, self.token = port, token
        self.cwd, self.env, self.log = cwd, env, log
        self.startup_timeout = startup_timeout
        self.base = f"http://127.0.0.1:{port}"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {token}"
        self.process: subprocess.Popen | None = None

    @classmethod
    def lab(cls, root_dir: Path, workdir: Path, extra: Sequence[str] = ()) -> LabServer:
        """``jupyter lab`` serving ``root_dir``, with its own config and runtime folders."""
        port, token = free_port(), secrets.token_hex(16)
        command = [
            sys.executable, "-m", "jupyter", "lab", "--no-browser",
            f"--port={port}", "--port-retries=0", "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root_dir}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            *(["--allow-root"] if os.geteuid() == 0 else []),  # CI containers run as root
            *extra,
        ]  # fmt: skip
        return cls(command, port=port, token=token, cwd=workdir, env=isolated_env(workdir),
                   log=workdir / "jupyterlab.log")  # fmt: skip

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> LabServer:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                self.command, cwd=self.cwd, env=self.env, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with code {self.process.returncode}:\n{self.log_text()}"
                )
            try:
                if self.http.get(f"{self.base}/api/status", timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"no answer on {self.base}/api/status in {self.startup_timeout} s:\n"
                           f"{self.log_text()}")  # fmt: skip

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        pgid = os.getpgid(self.process.pid)  # our own group (start_new_session=True)
        try:  # the server shuts its kernels down and exits
            self.http.post(f"{self.base}/api/shutdown", timeout=10)
            self.process.wait(timeout=20)
        except (requests.RequestException, subprocess.TimeoutExpired):
            os.killpg(pgid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(pgid, signal.SIGKILL)
                self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):  # a kernel left behind, if any
            os.killpg(pgid, signal.SIGKILL)

    def log_text(self, tail: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-tail:]
        except OSError:
            return "(no log)"

    # ----------------------------------------------------------------- REST

    def get(self, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.http.get(self.base + path, **kwargs)

    def api(self, method: str, path: str, body: dict | None = None) -> dict | list:
        response = self.http.request(method, self.base + path, json=body, timeout=60)
        if not response.ok:
            raise AssertionError(f"{method} {path}: HTTP {response.status_code} {response.text}")
        return response.json() if response.content else {}

    def kernel(self, notebook_path: str) -> KernelClient:
        """Open ``notebook_path`` as JupyterLab does: a session with a python3 kernel."""
        session = self.api(
            "POST",
            "/api/sessions",
            {"path": notebook_path, "type": "notebook", "name": Path(notebook_path).name,
             "kernel": {"name": "python3"}},
        )  # fmt: skip
        return KernelClient(self, session["kernel"]["id"], session["id"])


def isolated_env(workdir: Path) -> dict[str, str]:
    """The environment a fresh user would have: no personal Jupyter config or runtime files."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    for name in ("config", "data", "runtime"):
        (workdir / f"jupyter_{name}").mkdir(parents=True, exist_ok=True)
    env["JUPYTER_CONFIG_DIR"] = str(workdir / "jupyter_config")
    env["JUPYTER_RUNTIME_DIR"] = str(workdir / "jupyter_runtime")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(workdir / "jupyter_config" / "lab-settings")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(workdir / "jupyter_config" / "lab-workspaces")
    env["IPYTHONDIR"] = str(workdir / "ipython")
    env["PYTHONUNBUFFERED"] = "1"
    return env


# --------------------------------------------------------------------------- kernel


@dataclass
class Execution:
    """What one cell produced."""

    status: str = ""
    stdout: str = ""
    stderr: str = ""
    data: list[str] = field(default_factory=list)  # text/plain of displays and results
    error: str = ""  # "Ename: evalue" when the cell raised

    @property
    def text(self) -> str:
        return self.stdout + "".join(self.data)


class KernelClient:
    """Execute code in a server's kernel over its websocket (JSON messages, protocol 5.3)."""

    def __init__(self, server: LabServer, kernel_id: str, session_id: str = "") -> None:
        self.server, self.kernel_id, self.session_id = server, kernel_id, session_id
        self.session = uuid.uuid4().hex
        self.ws: websocket.WebSocket | None = None
        self.connect()

    def connect(self) -> None:
        url = (
            f"ws://127.0.0.1:{self.server.port}/api/kernels/{self.kernel_id}/channels"
            f"?session_id={self.session}"
        )
        self.ws = websocket.create_connection(
            url, header=[f"Authorization: token {self.server.token}"], timeout=30
        )

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()
            self.ws = None

    def shutdown(self) -> None:
        """Close the notebook: end its session and so its kernel."""
        self.close()
        if self.session_id:
            self.server.api("DELETE", f"/api/sessions/{self.session_id}")

    def restart(self) -> None:
        """Restart the kernel, as "Restart Kernel and Run All Cells" does first."""
        self.close()
        self.server.api("POST", f"/api/kernels/{self.kernel_id}/restart")
        self.connect()
        self.wait_idle()

    def wait_idle(self, timeout: float = 60) -> None:
        """Wait until the kernel answers (a kernel_info request) after a (re)start."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg_id = self._send("kernel_info_request", {})
            try:
                for msg in self._replies(msg_id, min(5.0, deadline - time.monotonic())):
                    if msg["msg_type"] == "kernel_info_reply":
                        return
            except TimeoutError:
                continue
        raise TimeoutError("the kernel did not answer kernel_info_request")

    def _send(self, msg_type: str, content: dict) -> str:
        msg_id = uuid.uuid4().hex
        message = {
            "header": {
                "msg_id": msg_id, "msg_type": msg_type, "username": "student",
                "session": self.session, "version": "5.3",
                "date": datetime.datetime.now(datetime.UTC).isoformat(),
            },
            "parent_header": {}, "metadata": {}, "content": content,
            "channel": "shell", "buffers": [],
        }  # fmt: skip
        self.ws.send(json.dumps(message))
        return msg_id

    def _replies(self, msg_id: str, timeout: float):
        """Messages whose parent is ``msg_id``, until ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no reply to {msg_id} within {timeout:.0f} s")
            self.ws.settimeout(left)
            try:
                raw = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                raise TimeoutError(f"no reply to {msg_id} within {timeout:.0f} s") from None
            if not isinstance(raw, str):
                continue  # binary frames carry buffers (widgets); not ours
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                msg["msg_type"] = msg.get("msg_type") or msg["header"]["msg_type"]
                yield msg

    def execute(self, code: str, timeout: float = 180) -> Execution:
        """Run ``code``; return its outputs once the kernel is idle and has replied."""
        msg_id = self._send(
            "execute_request",
            {"code": code, "silent": False, "store_history": True, "user_expressions": {},
             "allow_stdin": False, "stop_on_error": True},
        )  # fmt: skip
        result, idle, replied = Execution(), False, False
        for msg in self._replies(msg_id, timeout):
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    result.stdout += content["text"]
                else:
                    result.stderr += content["text"]
            elif kind in ("display_data", "execute_result"):
                result.data.append(content.get("data", {}).get("text/plain", ""))
            elif kind == "error":
                result.error = f"{content['ename']}: {content['evalue']}"
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
            elif kind == "execute_reply":
                replied, result.status = True, content["status"]
            if idle and replied:
                return result
        raise AssertionError("unreachable")
