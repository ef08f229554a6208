"""Grader isolation (issue 12): the sandbox, the wire, the batch, as root and as a real user.

Each test names the property or the attack it covers. The sandbox tests run a Python
process in :func:`cnncourse.grading.sandbox.sandbox_command` *without* the worker's audit
hook, so what they show holds by the sandbox alone.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import pytest
from unprivileged import as_unprivileged

from cnncourse.cli import main
from cnncourse.grading import gradebook as gradebook_module
from cnncourse.grading import sandbox as sandbox_module
from cnncourse.grading.assignment import load_assignment
from cnncourse.grading.grader import grade_file
from cnncourse.grading.report import clean_text, feedback_html, gradescope_json
from cnncourse.grading.sandbox import (
    Limits,
    LineReader,
    Overflow,
    SandboxUnavailable,
    TaskJob,
    Worker,
    parse_event,
    sandbox_command,
)
from cnncourse.grading.wire import decode, encode

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ROOT / "tests" / "hostile"
TEMPLATE = HOSTILE / "template_ex01.json"
LIMITS = Limits(timeout_s=3.0, memory_mb=512)
PYTHON = os.path.realpath(sys.executable)


@pytest.fixture(scope="module")
def assignment():
    return load_assignment("ex01", TEMPLATE)


@pytest.fixture(scope="module")
def worker():
    with Worker(LIMITS) as w:
        yield w


def _notebook(path: Path, dense_params_source: str) -> Path:
    nb = json.loads((HOSTILE / "correct.json").read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["metadata"].get("cnncourse", {}).get("task") == "ex01.dense_params":
            cell["source"] = dense_params_source
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


# What the sandbox shows from under /tmp: the interpreter or a clone with its venv, when
# they live there (a CI clone may).
_SHOWN_UNDER_TMP = {
    Path(p).resolve().relative_to("/tmp").parts[0]
    for p in (sys.prefix, sys.base_prefix)
    if Path(p).resolve().is_relative_to("/tmp")
}


def _in_sandbox(code: str, *args: str, limits: Limits = LIMITS) -> dict:
    """Run ``code`` in a job's sandbox with no audit hook; it prints one JSON object."""
    argv = [*sandbox_command(limits), PYTHON, "-I", "-S", "-c", code, *args]
    proc = subprocess.run(argv, capture_output=True, timeout=60, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


_WRITE_TO_PARENT = """
import os, stat
def {fn}(*args):
    payload = {payload}
    for fd in range(3, 64):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view):]
        except OSError:
            pass
    return 0
"""


def _flood(worker: Worker, payload: str):
    source = _WRITE_TO_PARENT.format(fn="f", payload=payload)
    return worker.run([TaskJob("t.f", source, "f")], [[encode(((), {}))]])


# ----------------------------------------------------------------------------- 1. the sandbox


def test_sandbox_shows_nothing_of_the_disk_but_the_interpreter(tmp_path):
    clone = tmp_path / "instructor" / "cnncourse"  # another clone of the course on disk
    clone.mkdir(parents=True)
    (clone / "ops.py").write_text("SOLUTION = 1\n", encoding="utf-8")
    code = (
        "import json, os, sys\n"
        "paths = sys.argv[1:]\n"
        "print(json.dumps({'seen': [os.path.exists(p) for p in paths],"
        " 'tmp': os.listdir('/tmp'), 'top': sorted(os.listdir('/'))}))"
    )
    secrets = [
        str(clone / "ops.py"),
        str(ROOT / "solutions"),
        str(ROOT / "cnncourse" / "ops.py"),
        str(HOSTILE / "correct.json"),
        "/home",
        "/root/.bashrc",
        "/etc/passwd",
    ]
    seen = _in_sandbox(code, *secrets)
    assert not any(seen["seen"]), dict(zip(secrets, seen["seen"], strict=True))
    assert set(seen["tmp"]) <= _SHOWN_UNDER_TMP


def test_installed_course_package_inside_site_packages_is_covered(monkeypatch):
    # A non-editable install puts cnncourse (with its reference code) into the same
    # site-packages as numpy: the sandbox shows the folder but covers the package.
    site = Path(tempfile.mkdtemp(prefix="cnncourse-h1-site-"))
    try:
        (site / "cnncourse").mkdir()
        (site / "cnncourse" / "ops.py").write_text("SOLUTION = 1\n", encoding="utf-8")
        (site / "somelib").mkdir()
        (site / "somelib" / "__init__.py").write_text("X = 1\n", encoding="utf-8")
        os.chmod(site, 0o755)
        real = sandbox_module.python_paths
        monkeypatch.setattr(sandbox_module, "python_paths", lambda: [*real(), str(site)])
        code = (
            "import json, os, sys\n"
            "print(json.dumps({'course': os.listdir(os.path.join(sys.argv[1], 'cnncourse')),"
            " 'lib': os.listdir(os.path.join(sys.argv[1], 'somelib'))}))"
        )
        seen = _in_sandbox(code, str(site))
    finally:
        shutil.rmtree(site, ignore_errors=True)
    assert seen == {"course": [], "lib": ["__init__.py"]}


def test_sandbox_cannot_signal_see_or_write_to_the_grader(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched", encoding="utf-8")
    code = (
        "import json, os, sys, site, socket\n"
        "out = {}\n"
        "try:\n"
        "    os.kill(int(sys.argv[1]), 0); out['kill'] = 'reached'\n"
        "except ProcessLookupError:\n"
        "    out['kill'] = 'no such process'\n"
        "except PermissionError:\n"
        "    out['kill'] = 'permission'\n"
        "out['pids'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
        "try:\n"
        "    fd = os.pidfd_open(int(sys.argv[1])); out['pidfd'] = 'opened'\n"
        "except OSError as e:\n"
        "    out['pidfd'] = e.errno\n"
        "writes = []\n"
        "for d in [sys.argv[2], os.path.dirname(os.__file__), sys.argv[3]]:\n"
        "    try:\n"
        "        open(os.path.join(d, 'evil.pth'), 'w').write('import os')\n"
        "        writes.append(d)\n"
        "    except OSError:\n"
        "        pass\n"
        "out['writes'] = writes\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 80), timeout=2); out['net'] = 'up'\n"
        "except OSError:\n"
        "    out['net'] = 'down'\n"
        "print(json.dumps(out))"
    )
    import site

    out = _in_sandbox(code, str(os.getpid()), site.getsitepackages()[0], str(tmp_path))
    assert out["kill"] == "no such process" and out["pidfd"] != "opened"
    assert max(out["pids"]) < 10  # a pid namespace of its own: only the job's processes
    assert out["writes"] == [] and out["net"] == "down"
    assert victim.read_text(encoding="utf-8") == "untouched"


def test_each_job_gets_a_fresh_private_tmp(worker):
    fill = (
        "import os\n"
        "def f():\n"
        "    total = 0\n"
        "    for k in range(1000):\n"
        "        try:\n"
        "            with open(f'/tmp/fill{k}', 'wb') as fh:\n"
        "                for _ in range(16):\n"
        "                    total += fh.write(b'x' * 2**20)\n"
        "        except OSError:\n"
        "            break\n"
        "    return total"
    )
    first = worker.run([TaskJob("t.f", fill, "f")], [[encode(((), {}))]])
    filled = decode(first.tasks[0].cases[0]["value"])
    assert filled >= 100 * 2**20  # it filled its /tmp up to the size limit
    probe = (
        "import os\n"
        "def f():\n"
        "    open('/tmp/mine', 'wb').write(b'y' * 2**20)\n"
        "    return sorted(os.listdir('/tmp'))"
    )
    second = worker.run([TaskJob("t.f", probe, "f")], [[encode(((), {}))]])
    assert set(decode(second.tasks[0].cases[0]["value"])) - _SHOWN_UNDER_TMP == {"mine", "work"}


def test_rmdir_of_the_working_folder_costs_only_that_student(assignment, worker, tmp_path):
    bad = _notebook(
        tmp_path / "mallory.ipynb",
        "import os\nos.rmdir(os.getcwd())\n"
        "def dense_params(n_inputs, units):\n    return n_inputs * units + units",
    )
    grade_file(bad, assignment, worker)
    good = grade_file(HOSTILE / "correct.json", assignment, worker)
    assert good.total == 7 and good.status == "ok", good.reason


def test_unisolated_cleanup_never_follows_a_planted_link(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("keep", encoding="utf-8")
    os.chmod(victim, 0o755)
    source = (
        "import os\n"
        "def f():\n"
        f"    os.symlink({str(victim)!r}, 'link')\n"
        "    here = os.getcwd()\n"
        "    os.chdir('..')\n"
        "    os.rename(here, here + '.moved')\n"
        f"    os.symlink({str(victim)!r}, here)\n"
        "    return 1"
    )
    with Worker(LIMITS, isolation="none") as plain:
        plain.run([TaskJob("t.f", source, "f")], [[encode(((), {}))]])
    assert (victim / "keep.txt").read_text(encoding="utf-8") == "keep"
    assert (victim.stat().st_mode & 0o777) == 0o755


# ------------------------------------------------------------------------ 2. no silent weak mode


def _class(tmp_path: Path) -> tuple[Path, list[str]]:
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(HOSTILE / "correct.json", subs / "alice.ipynb")
    args = ["grade", str(subs), "-a", "ex01", "--template", str(TEMPLATE)]
    args += ["--out", str(tmp_path / "out"), "--timeout", "3", "--no-progress"]
    return subs, args


def test_grade_stops_with_how_to_enable_when_no_sandbox_can_be_made(tmp_path, capsys):
    fake = tmp_path / "bin"
    fake.mkdir()
    bwrap = fake / "bwrap"  # what bwrap prints in a container with the default profiles
    bwrap.write_text(
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n",
        encoding="utf-8",
    )
    bwrap.chmod(0o755)
    old = os.environ["PATH"]
    os.environ["PATH"] = f"{fake}:{old}"
    try:
        _, args = _class(tmp_path)
        assert main(args) == 3
        err = capsys.readouterr().err
        assert "No permissions to create new namespace" in err
        assert "--security-opt seccomp=unconfined" in err and "--allow-unisolated" in err
        assert not (tmp_path / "out" / "gradebook.csv").exists()
        assert main([*args, "--allow-unisolated"]) == 0
    finally:
        os.environ["PATH"] = old
    rows = list(csv.DictReader((tmp_path / "out" / "gradebook.csv").open(encoding="utf-8")))
    assert rows[0]["isolation"].startswith("NONE")
    page = (tmp_path / "out" / "feedback" / "alice.html").read_text(encoding="utf-8")
    assert "without isolation" in page


def test_missing_bwrap_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(sandbox_module.shutil, "which", lambda name: None)
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        Worker(LIMITS).start()


# ----------------------------------------------------------- 4. the parent survives the wire


def test_deep_nesting_on_the_wire_is_that_students_error(worker):
    run = _flood(worker, "b'[' * 200_000 + b'\\n'")
    assert run.tasks[0].violations  # forged: the task scores 0, the parent goes on
    assert parse_event(b"[" * 200_000) is None and parse_event(b"{" * 5000) is None


def test_newline_flood_is_cut_at_the_line_bound(worker):
    run = _flood(worker, "b'\\n' * (768 * 1024)")
    assert "too much output" in (run.tasks[0].problem or ""), run.tasks[0]
    reader = LineReader(max_lines=10**7)  # linear: 768 Ki empty lines in one pass
    assert len(reader.feed(b"\n" * (768 * 1024))) == 768 * 1024


def test_a_forged_24_mb_line_keeps_the_parent_under_100_mb(worker):
    tracemalloc.start()
    try:
        run = _flood(worker, "b'[' + b'[],' * (8 * 2**20) + b']\\n'")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "too much output" in (run.tasks[0].problem or ""), run.tasks[0]
    assert peak < 100 * 2**20, peak


def test_many_large_outputs_keep_the_parent_under_100_mb(worker):
    source = "import numpy as np\ndef f(k):\n    return np.full(2**20, float(k))"  # 8 MB each
    tracemalloc.start()
    try:
        run = worker.run([TaskJob("t.f", source, "f")], [[encode(((k,), {})) for k in range(12)]])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20, peak
    assert "too much output" in (run.tasks[0].problem or "")
    assert 0 < len(run.tasks[0].cases) < 12


def test_deadline_holds_while_data_streams(worker):
    source = (
        "import os, stat, time\n"
        "def f():\n"
        "    fds = [fd for fd in range(3, 64) if _sock(fd)]\n"
        "    while True:\n"
        "        for fd in fds:\n"
        "            os.write(fd, b' ')\n"
        "        time.sleep(0.001)\n"
        "def _sock(fd):\n"
        "    try:\n"
        "        return stat.S_ISSOCK(os.fstat(fd).st_mode)\n"
        "    except OSError:\n"
        "        return False"
    )
    run = worker.run([TaskJob("t.f", source, "f")], [[encode(((), {}))]])
    assert "timed out" in (run.tasks[0].problem or ""), run.tasks[0]


def test_line_reader_bounds():
    with pytest.raises(Overflow, match="in total"):
        LineReader(max_bytes=10).feed(b"x\n" * 6)
    with pytest.raises(Overflow, match="lines"):
        LineReader(max_lines=3).feed(b"\n" * 4)
    assert parse_event(b'{"ev": "x"}') == {"ev": "x"} and parse_event(b"\xff") is None


# ------------------------------------------------------------ 5. every string rendered safely


def test_surrogates_and_non_utf8_file_names_leave_a_complete_gradebook(tmp_path, capsys):
    subs = tmp_path / "subs"
    subs.mkdir()
    _notebook(
        subs / "surrogate.ipynb",
        "def dense_params(n_inputs, units):\n    raise ValueError('\\ud800 bad')",
    )
    shutil.copy(HOSTILE / "correct.json", os.path.join(os.fsencode(subs), b"jos\xe9.ipynb"))
    shutil.copy(HOSTILE / "correct.json", subs / "alice.ipynb")
    out = tmp_path / "out"
    args = ["grade", str(subs), "-a", "ex01", "--template", str(TEMPLATE), "--out", str(out)]
    assert main([*args, "--timeout", "3", "--no-progress"]) == 0
    rows = {r["student_id"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert set(rows) == {"alice", "jos_", "surrogate"}
    assert rows["jos_"]["total"] == "7" and rows["jos_"]["file"] == "jos\ufffd.ipynb"
    assert rows["surrogate"]["status"] in ("ok", "error")
    for sid in rows:
        page = (out / "feedback" / f"{sid}.html").read_text(encoding="utf-8")
        json.loads((out / "results" / f"{sid}.json").read_text(encoding="utf-8"))
        assert "\ud800" not in page
    assert clean_text("\ud800") == "\ufffd"


def test_one_students_output_failure_costs_only_them(tmp_path, monkeypatch, capsys):
    subs, args = _class(tmp_path)
    shutil.copy(HOSTILE / "correct.json", subs / "bob.ipynb")
    real = gradebook_module.feedback_html

    def broken(result):
        if result.student == "bob":
            raise OSError("disk full")
        return real(result)

    monkeypatch.setattr(gradebook_module, "feedback_html", broken)
    assert main(args) == 0
    rows = {r["student_id"]: r for r in csv.DictReader((tmp_path / "out/gradebook.csv").open())}
    assert rows["alice"]["status"] == "ok" and rows["alice"]["total"] == "7"
    assert rows["bob"]["status"] == "infrastructure error" and "disk full" in rows["bob"]["reason"]
    monkeypatch.setattr(gradebook_module, "feedback_html", real)
    assert main(args) == 0  # bob is graded again, without --force
    rows = {r["student_id"]: r for r in csv.DictReader((tmp_path / "out/gradebook.csv").open())}
    assert rows["bob"]["status"] == "ok"


# --------------------------------------------------------- 6. infrastructure errors never cached


def test_infrastructure_error_is_not_cached_and_is_regraded(tmp_path, monkeypatch, capsys):
    _, args = _class(tmp_path)

    def refuse(self, sock, workdir):
        raise OSError("no more processes")

    real = Worker._spawn
    monkeypatch.setattr(Worker, "_spawn", refuse)
    assert main(args) == 0
    rows = list(csv.DictReader((tmp_path / "out" / "gradebook.csv").open()))
    assert rows[0]["status"] == "infrastructure error" and "not your fault" in rows[0]["reason"]
    page = (tmp_path / "out" / "feedback" / "alice.html").read_text(encoding="utf-8")
    assert "graded again" in page
    monkeypatch.setattr(Worker, "_spawn", real)
    capsys.readouterr()
    assert main(args) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "graded now" in x)
    assert line.split()[-1] == "1"
    rows = list(csv.DictReader((tmp_path / "out" / "gradebook.csv").open()))
    assert rows[0]["status"] == "ok" and rows[0]["total"] == "7"


# ------------------------------------------------------------------ 7. hidden inputs out of reach


def test_the_child_holds_only_the_inputs_of_the_case_it_runs(worker):
    source = (
        "import os, stat\n"
        "def f(k):\n"
        "    pending = 0\n"
        "    for fd in range(3, 64):\n"
        "        try:\n"
        "            if not stat.S_ISSOCK(os.fstat(fd).st_mode):\n"
        "                continue\n"
        "            os.set_blocking(fd, False)\n"
        "            try:\n"
        "                pending += len(os.read(fd, 1))\n"
        "            except BlockingIOError:\n"
        "                pass\n"
        "            os.set_blocking(fd, True)\n"
        "        except OSError:\n"
        "            pass\n"
        "    return k, pending"
    )
    inputs = [encode(((k,), {})) for k in range(5)]
    run = worker.run([TaskJob("t.f", source, "f")], [inputs])
    got = [decode(run.tasks[0].cases[k]["value"]) for k in range(5)]
    assert got == [(k, 0) for k in range(5)]  # nothing of the next case was there to read


def test_hidden_case_messages_carry_no_input_values(assignment, worker, tmp_path):
    leak = _notebook(
        tmp_path / "leak.ipynb",
        "def dense_params(n_inputs, units):\n    raise RuntimeError(f'INPUTS {n_inputs} {units}')",
    )
    result = grade_file(leak, assignment, worker)
    hidden = [c for t in result.tasks for c in t.cases if c.hidden]
    assert hidden and not any("INPUTS" in c.message for c in hidden)
    assert "INPUTS" in feedback_html(result)  # public cases may show their own inputs
    for test in gradescope_json(result)["tests"]:
        for line in test["output"].splitlines():
            assert not ("hidden case" in line and "INPUTS" in line), line


# --------------------------------------------------------------- 3. as an ordinary user, for real


def _as_unprivileged(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run ``argv`` as uid/gid 65534 (nobody), with no capabilities (see ``unprivileged.py``)."""
    return as_unprivileged(argv, cwd, timeout=600)


@pytest.fixture
def shared_dir():
    """A folder an unprivileged user may enter (pytest's own tmp_path is 0700 root's)."""
    path = Path(tempfile.mkdtemp(prefix="cnncourse-h1-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_grading_as_a_real_unprivileged_user_gives_the_same_guarantees(shared_dir):
    work = shared_dir / "class"
    (work / "subs").mkdir(parents=True)
    shutil.copy(HOSTILE / "correct.json", work / "subs" / "alice.ipynb")
    shutil.copy(HOSTILE / "import_ops.json", work / "subs" / "mallory.ipynb")
    attacks = ["wire_deep_nesting", "wire_24mb_line", "rmdir_cwd", "fill_tmp", "signal_grader"]
    for name in attacks:
        shutil.copy(HOSTILE / f"{name}.json", work / "subs" / f"{name}.ipynb")
    probe = (
        "import os, json\n"
        "def dense_params(n_inputs, units):\n"
        "    raise ValueError(json.dumps([os.path.exists(p) for p in "
        f"{[str(ROOT / 'solutions'), str(ROOT / 'cnncourse' / 'ops.py'), str(work)]!r}]))"
    )
    _notebook(work / "subs" / "probe.ipynb", probe)
    if os.geteuid() == 0:
        shutil.chown(work, 65534, 65534)
        for p in (work / "subs").iterdir():
            os.chmod(p, 0o644)
        os.chmod(work / "subs", 0o755)
    code = (
        "import os, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from cnncourse.cli import main\n"
        "print('uid', os.getuid())\n"
        f"sys.exit(main(['grade', 'subs', '-a', 'ex01', '--template', {str(TEMPLATE)!r},"
        " '--out', 'out', '--timeout', '5', '--no-progress']))"
    )
    proc = _as_unprivileged([sys.executable, "-c", code], work)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "uid 0" not in proc.stdout
    rows = {r["student_id"]: r for r in csv.DictReader((work / "out" / "gradebook.csv").open())}
    assert rows["alice"]["total"] == "7" and rows["alice"]["isolation"] == "sandbox"
    assert rows["mallory"]["total"] == "0"
    manifest = json.loads((HOSTILE / "manifest.json").read_text(encoding="utf-8"))
    for name in attacks:
        limit = manifest[f"{name}.json"].get("max_total", manifest[f"{name}.json"].get("total"))
        assert float(rows[name]["total"]) <= limit, rows[name]
        assert rows[name]["status"] != "infrastructure error", rows[name]
    state = json.loads((work / "out" / ".state" / "probe.json").read_text(encoding="utf-8"))
    assert "user namespace" in state["protections"]
    messages = [c["message"] for t in state["tasks"] for c in t["cases"] if not c["hidden"]]
    assert any("[false, false, false]" in m for m in messages), messages


def test_a_huge_list_is_too_large_not_a_forgery(worker):
    run = worker.run(
        [TaskJob("t.f", "def f(n):\n    return [1.5] * n", "f")],
        [[encode(((1000,), {})), encode(((300_000,), {}))]],
    )
    task = run.tasks[0]
    assert task.violations == [] and len(decode(task.cases[0]["value"])) == 1000
    assert task.cases[1]["error"] == "your output is too large to be graded"
