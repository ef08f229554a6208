"""Run a command as a real unprivileged user (uid/gid 65534, ``nobody``), for the tests.

The grader promises the same guarantees as root and as an ordinary user; the tests run the
ordinary user's path for real with :func:`as_unprivileged`, not by simulating it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOBODY = 65534


def as_unprivileged(
    argv: list[str], cwd: Path, timeout: float = 900
) -> subprocess.CompletedProcess:
    """Run ``argv`` as uid/gid 65534 (nobody), with no capabilities.

    When the grader's own interpreter sits in a folder other users cannot enter (``/root``,
    as with pyenv there), a private mount namespace puts a 0755 tmpfs over that folder with
    just the interpreter bound back: the grading then runs exactly as it would for an
    instructor whose Python is readable, as an ordinary user. Run as an ordinary user
    already, the command simply runs.
    """
    if os.geteuid() != 0:
        return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=timeout)
    needed = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), ROOT]
    blocked = sorted(
        {
            str(a)
            for p in needed
            for a in reversed(p.parents)
            if str(a) != "/" and not os.stat(a).st_mode & 0o001
        }
    )
    setup = []
    for k, folder in enumerate(blocked):
        inner = [str(p) for p in needed if p.is_relative_to(folder)]
        stash = [f"/tmp/.h1-stash-{os.getpid()}-{k}-{i}" for i in range(len(inner))]
        for path, tmp in zip(inner, stash, strict=True):
            setup.append(f"mkdir -p {tmp} && mount --bind {path} {tmp}")
        setup.append(f"mount -t tmpfs -o mode=0755 tmpfs {folder}")
        for path, tmp in zip(inner, stash, strict=True):
            setup.append(f"mkdir -p {path} && mount --bind {tmp} {path}")
    setup.append(
        f"exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups "
        '--inh-caps=-all --bounding-set=-all -- "$@"'
    )
    script = " && ".join(setup)
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


def shared_folder() -> Path:
    """A new folder the unprivileged user owns (pytest's own tmp_path is 0700 root's)."""
    path = Path(tempfile.mkdtemp(prefix="cnncourse-h1-"))
    os.chmod(path, 0o755)
    if os.geteuid() == 0:
        shutil.chown(path, NOBODY, NOBODY)
    return path
