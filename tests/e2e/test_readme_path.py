"""The newcomer's path: what README.md tells a reader to run, run as written.

- the quick-start command ``./dev.sh book`` builds the book and prints where it landed (the
  other quick-start command, ``./dev.sh test``, is the one running these tests: checked to
  include them);
- ``./dev.sh lab`` starts JupyterLab serving the exercises (run as written, with a
  throw-away Jupyter config that only picks the port and token; stopped at once);
- the Python snippet the README shows is a real check cell of an exercise;
- the instructor's ``cnncourse grade`` command, run on two submissions (a solved notebook
  and an untouched one), writes a gradebook with full marks and zero;
- every file and folder the README names is committed (CI and newcomers start from a clean
  clone; ``.ci/run`` runs ``./dev.sh test`` there, so the whole path is tested from scratch
  on every CI run).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from e2e_common import ROOT
from labclient import LabServer, free_port, isolated_env

README = ROOT / "README.md"
FENCE = re.compile(r"^[ \t]*```(\w*)[^\n]*\n(.*?)^[ \t]*```", re.MULTILINE | re.DOTALL)
PRODUCED = ("_build", ".venv")  # made by the commands, never committed


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced code block, in order."""
    return [(m[1], m[2]) for m in FENCE.finditer(text)]


def commands(body: str) -> list[str]:
    """The shell commands of a block: continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", body)
    lines = (re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines())
    lines = (re.sub(r"[ \t]+", " ", line) for line in lines)
    return [line for line in lines if line and not line.startswith("#")]


def readme_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    found = []
    for language, body in fenced_blocks(text):
        if language in ("bash", "sh", "shell", "console"):
            found += commands(body)
    return found


def venv_env() -> dict[str, str]:
    """The caller's environment with this interpreter's bin/ first (what dev.sh sets up)."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(command: str, cwd: Path, timeout: float, env: dict | None = None):
    result = subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env or venv_env(), capture_output=True,
        text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, (
        f"`{command}` (in {cwd}) exited with {result.returncode}:\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )
    return result


# --------------------------------------------------------------------------- quick start


def test_quick_start_is_book_then_test():
    cmds = readme_commands()
    assert cmds[:2] == ["./dev.sh book", "./dev.sh test"], (
        f"README's first two commands are {cmds[:2]}, not the quick start"
    )


def test_dev_sh_test_runs_these_end_to_end_tests():
    """``./dev.sh test`` (what the README and CI run) includes this suite."""
    script = (ROOT / "dev.sh").read_text(encoding="utf-8")
    block = re.search(r"^\s*test\)(.*?);;", script, re.MULTILINE | re.DOTALL)
    assert block, "dev.sh has no `test)` command"
    assert re.search(r"pytest\b[^\n]*\btests/e2e\b", block[1]), (
        "dev.sh test does not run `python -m pytest tests/e2e`"
    )


def test_dev_sh_book_builds_and_says_where():
    """``./dev.sh book``, exactly as the README gives it (fast: notebooks are cached)."""
    assert "./dev.sh book" in readme_commands()
    result = run("./dev.sh book", ROOT, timeout=1800)
    match = re.search(r"The book is at: (\S+)", result.stdout)
    assert match, f"./dev.sh book did not say where the book is:\n{result.stdout[-2000:]}"
    landed = Path(match[1])
    assert landed.is_file(), f"./dev.sh book named {landed}, which does not exist"
    assert landed == ROOT / "_build" / "html" / "index.html"
    readme = README.read_text(encoding="utf-8")
    assert "`_build/html/index.html`" in readme, "README no longer says where the book lands"


# --------------------------------------------------------------------------- JupyterLab


def test_dev_sh_lab_serves_the_exercises(tmp_path: Path):
    """``./dev.sh lab`` as written; a throw-away Jupyter config sets port, token, no browser."""
    command = "./dev.sh lab"
    assert command in readme_commands()
    port, token = free_port(), "e2e-" + os.urandom(8).hex()
    env = isolated_env(tmp_path)
    config = {
        "ServerApp": {"port": port, "port_retries": 0, "ip": "127.0.0.1", "open_browser": False,
                      "allow_root": os.geteuid() == 0},
        "IdentityProvider": {"token": token},
    }  # fmt: skip
    Path(env["JUPYTER_CONFIG_DIR"], "jupyter_server_config.json").write_text(json.dumps(config))
    env["PATH"] = venv_env()["PATH"]
    server = LabServer(
        ["bash", "-c", command], port=port, token=token, cwd=ROOT, env=env,
        log=tmp_path / "dev_sh_lab.log", startup_timeout=180,
    )  # fmt: skip
    with server:
        # "opens JupyterLab on exercises/": the exercises are what the file browser shows.
        listing = server.api("GET", "/api/contents/")["content"]
        if any(item["name"] == "exercises" for item in listing):
            listing = server.api("GET", "/api/contents/exercises")["content"]
        served = sorted(item["name"] for item in listing if item["type"] == "notebook")
        expected = sorted(p.name for p in (ROOT / "exercises").glob("*.ipynb"))
        assert served == expected and expected, f"JupyterLab shows {served}"
        # An exercise links to its chapter (../chapters/NAME.ipynb): it must be served too.
        chapters = server.api("GET", "/api/contents/chapters")["content"]
        assert any(item["type"] == "notebook" for item in chapters), chapters
        home = server.get("/", allow_redirects=False, timeout=30)  # where the browser opens
        assert home.headers.get("Location", "").split("?")[0].endswith("/lab/tree/exercises"), (
            home.headers
        )
        status = server.get("/lab", timeout=30)
        assert status.ok and "JupyterLab" in status.text
        assert server.get("/api/kernelspecs").json()["default"] == "python3"


def test_readme_python_example_is_a_real_check_cell():
    text = README.read_text(encoding="utf-8")
    snippets = [body.strip() for language, body in fenced_blocks(text) if language == "python"]
    assert snippets, "README shows no check call"
    sources = [
        cell.source
        for path in sorted((ROOT / "exercises").glob("*.ipynb"))
        for cell in nbformat.read(path, as_version=4).cells
        if "check" in cell.get("metadata", {}).get("cnncourse", {})
    ]
    for snippet in snippets:
        if snippet.startswith("check("):
            assert any(snippet in source for source in sources), (
                f"README shows `{snippet}`, which is no check cell of exercises/"
            )


# --------------------------------------------------------------------------- instructor


def grade_command() -> str:
    found = [c for c in readme_commands() if c.startswith("cnncourse grade")]
    if not found:
        pytest.fail(
            "README.md gives no `cnncourse grade ...` command in a ```bash block "
            "(For instructors): an instructor cannot grade from the README",
            pytrace=False,
        )
    return found[0]


def test_instructor_grades_two_submissions_with_the_readme_command(tmp_path: Path):
    command = grade_command()
    assert not re.search(r"<[^>]*>", command), (
        f"`{command}` has placeholders; give a command that runs as written"
    )
    args = shlex.split(command)[2:]
    options_with_value = {
        "--assignment", "-a", "--out", "-o", "-j", "--jobs", "--shard", "--id-pattern",
        "--template", "--timeout", "--memory-mb", "--max-mb",
    }  # fmt: skip
    positional, values, i = [], {}, 0
    while i < len(args):
        arg = args[i]
        if arg in options_with_value:
            values[arg], i = args[i + 1], i + 2
            continue
        if arg.startswith("--") and "=" in arg:
            key, value = arg.split("=", 1)
            values[key] = value
        elif not arg.startswith("-"):
            positional.append(arg)
        i += 1
    assignment = values.get("--assignment") or values.get("-a")
    out = values.get("--out") or values.get("-o")
    assert assignment and out and positional, f"cannot read `{command}`"
    assert "--id-pattern" not in values, "use file-name ids in the README example"

    # Two submissions where the command looks for them: one solved, one untouched.
    solution = sorted((ROOT / "solutions").glob(f"{assignment}_*.ipynb"))
    student = sorted((ROOT / "exercises").glob(f"{assignment}_*.ipynb"))
    assert solution and student, f"no solutions/ and exercises/ notebook for {assignment}"
    folder = tmp_path / positional[0]
    if folder.suffix == ".ipynb":
        folder = folder.parent
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(solution[0], folder / "alice.ipynb")
    shutil.copy(student[0], folder / "bob.ipynb")

    result = run(command, tmp_path, timeout=600)
    gradebook = tmp_path / out / "gradebook.csv"
    assert gradebook.is_file(), f"no gradebook at {gradebook}:\n{result.stdout[-2000:]}"
    rows = {row["student_id"]: row for row in csv.DictReader(gradebook.open())}
    assert set(rows) == {"alice", "bob"}, rows

    from cnncourse.tasks import tasks_for

    full = sum(task.points for task in tasks_for(assignment))
    assert float(rows["alice"]["max"]) == full
    assert float(rows["alice"]["total"]) == full, rows["alice"]
    assert float(rows["bob"]["total"]) == 0, rows["bob"]
    assert rows["alice"]["status"] == rows["bob"]["status"] == "ok"
    for sub in ("results", "feedback"):
        assert any((tmp_path / out / sub).iterdir()), f"nothing in {out}/{sub}"


# --------------------------------------------------------------------------- committed


def _tracked() -> dict[str, str]:
    """Committed (indexed) files of the repository: path -> mode."""
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-s", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"{ROOT} is not a git checkout ({exc}): cannot tell what is committed")
    files = {}
    for entry in filter(None, listing.split("\0")):
        meta, path = entry.split("\t", 1)
        files[path] = meta.split()[0]
    return files


def readme_paths() -> set[str]:
    """Path-like words in the README's inline code (`like/this.py`, `exercises/`)."""
    text = FENCE.sub("", README.read_text(encoding="utf-8"))
    found = set()
    for span in re.findall(r"`([^`\n]+)`", text):
        for token in span.split():
            token = token.strip(",;:()")
            if token.startswith("./"):
                token = token[2:]
            if re.search(r"[<>*=~(){}$]|://|NN|^-|^/", token) or not token:
                continue
            if "/" in token or re.search(r"\.(ya?ml|md|bib|txt|py|sh|toml|ipynb|cfg)$", token):
                found.add(token)
    return found


def layout_paths() -> set[str]:
    """The paths in the first column of the README's Layout table."""
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Layout\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert section, "README has no Layout section"
    rows = [line.split("|")[1] for line in section[1].splitlines() if line.startswith("|")]
    return {p.strip("/") for row in rows for p in re.findall(r"`([^`]+)`", row)}


def produced_by_readme_commands() -> set[str]:
    """Folders that the README's commands create or that the reader provides."""
    made = set(PRODUCED)
    for command in readme_commands():
        if command.startswith("cnncourse grade"):
            args = shlex.split(command)
            made |= {a.strip("/").split("/")[0] for a in args[2:] if not a.startswith("-")}
    return made


def _committed(path: str, tracked: dict[str, str]) -> bool:
    path = path.rstrip("/")
    return path in tracked or any(f.startswith(path + "/") for f in tracked)


def test_everything_the_readme_names_is_committed():
    """What the README names and a fresh clone has must be in git, not just on this disk."""
    tracked = _tracked()
    made = produced_by_readme_commands()
    layout = layout_paths()
    assert {"chapters", "exercises", "solutions", "cnncourse"} <= layout, sorted(layout)
    missing = sorted(p for p in layout if not _committed(p, tracked))
    assert not missing, f"README's Layout lists paths that are not committed: {missing}"
    untracked = []
    for name in sorted(readme_paths()):
        if name.split("/")[0] in made or not (ROOT / name).exists():
            continue  # made by a command, or an example name (alice.ipynb)
        if not _committed(name, tracked):
            untracked.append(name)
    assert not untracked, f"README relies on files that are not committed: {untracked}"


def test_readme_scripts_are_committed_executable():
    tracked = _tracked()
    for command in readme_commands():
        first = shlex.split(command)[0]
        if first.startswith("./"):
            path = first[2:]
            assert tracked.get(path) == "100755", f"{path} is not committed as executable"


def test_the_readme_parser_reads_list_indented_blocks_and_continuations():
    text = (
        "Intro\n\n```bash\n./dev.sh book   # build\n```\n\n- item\n\n  ```bash\n"
        "  # a comment\n  cnncourse grade subs/ \\\n    --assignment ex01 --out g/\n  ```\n"
        "\n```python\ncheck('x', f)\n```\n"
    )
    blocks = fenced_blocks(text)
    assert [language for language, _ in blocks] == ["bash", "bash", "python"]
    assert commands(blocks[0][1]) == ["./dev.sh book"]
    assert commands(blocks[1][1]) == ["cnncourse grade subs/ --assignment ex01 --out g/"]
