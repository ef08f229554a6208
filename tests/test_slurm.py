"""contrib/slurm for real: a single-node Slurm cluster grades a class as a job array.

The fixture starts Debian's Slurm (``slurm-wlm``) and MUNGE on this machine with a private
configuration in a temporary folder (its own key, socket, ports and spool; nothing in /etc is
touched), as root (slurmd must be root to start jobs as their users). The class is submitted
with ``contrib/slurm/submit.sh`` by an ordinary user (``nobody``), as on a university
cluster: the shards and the merge run as that user, in the sandbox an ordinary user gets
(as root, with a warning, when ``nobody`` cannot execute this environment's interpreter).
The merged gradebook must equal a single-machine run of the same class.

Needs root, as CI runs it (the daemons are started by the test itself, so passwordless sudo
does not help); as an ordinary user the test skips and says so.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytest

from cnncourse.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_contrib import grade_args, make_class  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SLURM = ROOT / "contrib" / "slurm"
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sacct", "scontrol")

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {p}\n{p.read_text()[-3000:]}" for p in logs if p.exists())
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")


class LocalSlurm:
    """Munge + slurmctld + slurmd on localhost, configured in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.dir = folder
        self.procs: list[subprocess.Popen] = []
        self.env = dict(os.environ, SLURM_CONF=str(folder / "slurm.conf"))

    def start(self) -> None:
        d = self.dir
        for sub in ("munge", "state", "spool"):
            (d / sub).mkdir(mode=0o755)
        key = d / "munge" / "munge.key"
        key.write_bytes(os.urandom(128))
        key.chmod(0o600)
        self.socket = d / "munge" / "munge.sock"
        self._spawn(
            "munged",
            "--foreground",
            "--force",  # as root, with a key of our own
            f"--key-file={key}",
            f"--socket={self.socket}",
            f"--pid-file={d / 'munge' / 'munged.pid'}",
            f"--log-file={d / 'munge' / 'munged.log'}",
            f"--seed-file={d / 'munge' / 'munged.seed'}",
        )
        _wait(self.socket.exists, 30, "munged's socket", [d / "munge" / "munged.log"])
        cpus = os.cpu_count() or 1
        memory_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
        (d / "slurm.conf").write_text(
            f"""ClusterName=cnncoursetest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.socket}
StateSaveLocation={d / 'state'}
SlurmdSpoolDir={d / 'spool'}
SlurmctldPidFile={d / 'slurmctld.pid'}
SlurmdPidFile={d / 'slurmd.pid'}
SlurmctldLogFile={d / 'slurmctld.log'}
SlurmdLogFile={d / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""
        )
        self._spawn("slurmctld", "-D", "-i")
        self._spawn("slurmd", "-D", "-N", "localhost")
        _wait(self._node_ready, 90, "the node to be idle", self.logs)

    @property
    def logs(self) -> list[Path]:
        return [self.dir / "slurmctld.log", self.dir / "slurmd.log"]

    def _spawn(self, *cmd: str) -> None:
        log = open(self.dir / f"{cmd[0]}.out", "wb")  # noqa: SIM115 - closed with the process
        self.procs.append(
            subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        )

    def _node_ready(self) -> bool:
        for p in self.procs:
            if p.poll() is not None:
                raise AssertionError(
                    f"{p.args[0]} exited ({p.returncode}):\n"
                    + "\n".join(f"{x}: {x.read_text()[-2000:]}" for x in self.logs if x.exists())
                )
        r = self.run("sinfo", "-h", "-N", "-o", "%T", check=False)
        return r.returncode == 0 and r.stdout.strip() in {"idle", "mixed"}

    def run(self, *cmd: str, user: str | None = None, check: bool = True, cwd=None):
        if user:
            cmd = ("runuser", "-u", user, "--", "env", f"SLURM_CONF={self.env['SLURM_CONF']}",
                   f"PATH={os.environ['PATH']}", "HOME=/tmp", *cmd)
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True, cwd=cwd)
        if check and r.returncode:
            raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
        return r

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def slurm():
    if os.geteuid() != 0:
        pytest.skip("starting slurmd needs root (CI runs this test as root)")
    missing = [d for d in DAEMONS if shutil.which(d) is None]
    if missing:
        pytest.fail(
            f"Slurm/MUNGE commands missing: {missing}; install Debian's slurm-wlm and munge "
            "(.ci/run and ./dev.sh test do)"
        )
    folder = Path(tempfile.mkdtemp(prefix="cnncourse-slurm-"))
    folder.chmod(0o755)
    cluster = LocalSlurm(folder)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _submitting_user() -> str:
    """``nobody`` when it can run this interpreter, else root (said in the test's output).

    A virtual environment made from an interpreter under /root (pyenv, as on this project's
    CI image) cannot be executed by other users; a real cluster installs the course where
    every user can run it (instructors/grading.md)."""
    probe = subprocess.run(
        ["runuser", "-u", "nobody", "--", sys.executable, "-c", "import cnncourse"],
        capture_output=True,
        text=True,
    )
    if probe.returncode == 0:
        return "nobody"
    warnings.warn(
        f"user nobody cannot run {sys.executable} ({probe.stderr.strip()[-200:]}); "
        "the Slurm jobs run as root",
        stacklevel=2,
    )
    return "root"


def test_a_class_graded_as_a_slurm_job_array_equals_a_single_run(slurm, tmp_path, capsys):
    user = _submitting_user()
    uid = pwd.getpwnam(user).pw_uid
    work = slurm.dir / "class-work"  # world-traversable, unlike pytest's tmp_path
    work.mkdir(mode=0o755)
    subs = work / "submissions"
    students = make_class(subs)
    for p in [subs, *subs.iterdir()]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    out = work / "out"
    out.mkdir()
    os.chown(out, uid, -1)

    venv_bin = str(Path(sys.executable).parent)
    env_path = f"{venv_bin}:{os.environ['PATH']}"
    r = slurm.run(
        "env", f"PATH={env_path}", str(SLURM / "submit.sh"), "ex01", str(subs), str(out), "3",
        user=user, cwd=work,
    )
    assert "grading job array" in r.stdout, r.stdout + r.stderr
    grade_job, merge_job = (out / "slurm-jobs").read_text().split()

    def finished() -> bool:
        q = slurm.run("squeue", "-h", "-o", "%i %T", check=False)
        return q.returncode == 0 and q.stdout.strip() == ""

    logs = [*slurm.logs, *sorted(out.glob("*.log"))]
    _wait(finished, 900, "the grading and merge jobs", logs)
    job_logs = "\n".join(f"--- {p.name}\n{p.read_text()}" for p in sorted(out.glob("*.log")))
    merged = out / "merged" / "gradebook.csv"
    assert merged.exists(), f"no merged gradebook; job logs:\n{job_logs}"
    # Three array tasks, each with its own shard folder, owned by the submitting user.
    shards = sorted(out.glob("shard-*-of-3"))
    assert [s.name for s in shards] == ["shard-1-of-3", "shard-2-of-3", "shard-3-of-3"]
    assert all(s.stat().st_uid == uid for s in shards)
    assert len(list(out.glob(f"cnncourse-grade-{grade_job}_*.log"))) == 3, job_logs
    assert f"merged {len(students)} student(s) of ex01" in job_logs
    # A single-machine run of the same class with the same hidden-case key, for comparison.
    key = out / ".hidden-cases.key"
    assert key.exists() and key.stat().st_mode & 0o077 == 0  # private to the instructor
    assert main(grade_args(subs, tmp_path / "single", key)) == 0
    capsys.readouterr()
    assert merged.read_text() == (tmp_path / "single" / "gradebook.csv").read_text(), job_logs
