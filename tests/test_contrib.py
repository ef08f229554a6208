"""Grading at scale: ``cnncourse gradebook merge`` and the cluster recipes in contrib/.

The merge is tested on hand-made shard folders (every refusal) and on real sharded grading
runs of exercise 1 (the merged gradebook equals a single run's). The Kubernetes manifests are
validated offline against the Kubernetes JSON schema; the Slurm scripts are checked by bash
and run for real in tests/test_slurm.py.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cnncourse.cli import main
from cnncourse.grading.grader import SubmissionResult, TaskOutcome
from cnncourse.grading.merge import MergeError, merge_shards
from cnncourse.grading.report import atomic_write, feedback_html, result_json, write_gradebook

ROOT = Path(__file__).resolve().parents[1]
TASKS = ["ex01.dense_params", "ex01.conv_params"]


def _result(student: str, total: float = 2.0, **changes) -> SubmissionResult:
    fields = dict(
        student=student,
        file=f"/class/{student}.ipynb",
        sha256=f"{abs(hash(student)):064x}"[:64],
        assignment="ex01",
        version="v1",
        status="ok",
        reason="",
        total=total,
        max_total=4.0,
        tasks=[TaskOutcome(t, t, total / 2, 2.0) for t in TASKS],
        secret_fingerprint="f00d",
    )
    fields.update(changes)
    return SubmissionResult(**fields)


def _shard(folder: Path, results: list[SubmissionResult], task_ids=TASKS) -> Path:
    """A grading output folder as `cnncourse grade` writes it."""
    for r in results:
        atomic_write(folder / "results" / f"{r.student}.json", result_json(r))
        atomic_write(folder / "feedback" / f"{r.student}.html", feedback_html(r))
        atomic_write(folder / ".state" / f"{r.student}.json", json.dumps(r.to_dict()))
    write_gradebook(folder / "gradebook.csv", results, task_ids)
    return folder


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open(encoding="utf-8")))


def test_merge_combines_shards_and_keeps_their_files(tmp_path):
    a = _shard(tmp_path / "s1", [_result("alice", 4.0), _result("bob", 0.0)])
    b = _shard(tmp_path / "s2", [_result("carol", 2.0)])
    c = _shard(tmp_path / "s3", [])  # a shard may hold nobody
    report = merge_shards([a, b, c], tmp_path / "merged", expected_students=["alice", "bob"])
    assert report.students == 3 and report.version == "v1" and report.secret_fingerprint == "f00d"
    assert report.per_shard == {str(a): 2, str(b): 1, str(c): 0}
    rows = _rows(tmp_path / "merged" / "gradebook.csv")
    assert [(r["student_id"], r["total"]) for r in rows] == [
        ("alice", "4"),
        ("bob", "0"),
        ("carol", "2"),
    ]
    for sub in ("results/carol.json", "feedback/carol.html", ".state/carol.json"):
        assert (tmp_path / "merged" / sub).read_bytes() == (b / sub).read_bytes()
    # The merged folder is itself a grading output: merging it again changes nothing.
    merge_shards([tmp_path / "merged"], tmp_path / "again")
    assert (tmp_path / "again" / "gradebook.csv").read_text() == (
        tmp_path / "merged" / "gradebook.csv"
    ).read_text()


def test_merge_accepts_the_same_grading_seen_twice(tmp_path):
    """Shards sharing one output folder all see every graded student: no conflict."""
    same = _result("alice")
    a = _shard(tmp_path / "s1", [same, _result("bob")])
    b = _shard(tmp_path / "s2", [same])
    assert merge_shards([a, b], tmp_path / "m").students == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "v2"}, "different assignment versions: v1 in"),
        ({"secret_fingerprint": "beef"}, "different hidden-case secrets"),
        ({"assignment": "ex02"}, "different exercises"),
    ],
)
def test_merge_refuses_inconsistent_shards(tmp_path, change, message):
    a = _shard(tmp_path / "s1", [_result("alice")])
    b = _shard(tmp_path / "s2", [_result("bob", **change)])
    with pytest.raises(MergeError, match=message) as exc:
        merge_shards([a, b], tmp_path / "m")
    assert str(a) in str(exc.value) and str(b) in str(exc.value)
    assert not (tmp_path / "m").exists()  # nothing written


def test_merge_compares_secret_fingerprints_only_when_present(tmp_path):
    a = _shard(tmp_path / "s1", [_result("alice")])
    b = _shard(tmp_path / "s2", [_result("bob", secret_fingerprint="")])
    assert merge_shards([a, b], tmp_path / "m").secret_fingerprint == "f00d"


def test_merge_refuses_other_columns_double_grading_missing_students_and_a_full_out(tmp_path):
    a = _shard(tmp_path / "s1", [_result("alice")])
    b = _shard(tmp_path / "s2", [_result("bob")], task_ids=TASKS[:1])
    with pytest.raises(MergeError, match="different task columns"):
        merge_shards([a, b], tmp_path / "m")
    c = _shard(tmp_path / "s3", [_result("alice", 0.0, sha256="1" * 64)])
    with pytest.raises(MergeError, match="'alice' was graded differently"):
        merge_shards([a, c], tmp_path / "m")
    with pytest.raises(MergeError, match=r"1 student\(s\) graded in no shard: zoe"):
        merge_shards([a], tmp_path / "m", expected_students=["alice", "zoe"])
    with pytest.raises(MergeError, match="is one of the shards"):
        merge_shards([a], a)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(MergeError, match="not empty"):
        merge_shards([a], tmp_path / "full")
    with pytest.raises(MergeError, match="not a grading output folder"):
        merge_shards([tmp_path / "full"], tmp_path / "m")
    (a / ".state" / "alice.json").write_text("{not json")
    with pytest.raises(MergeError, match="unreadable grading state"):
        merge_shards([a], tmp_path / "m")


def test_cli_merge_reports_refusals_without_a_traceback(tmp_path, capsys):
    a = _shard(tmp_path / "s1", [_result("alice")])
    b = _shard(tmp_path / "s2", [_result("bob", version="v2")])
    assert main(["gradebook", "merge", str(a), str(b), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cnncourse gradebook merge: the shards were graded with different")
    assert "Traceback" not in err


# ------------------------------------------------------------ real sharded grading, merged


def make_class(folder: Path) -> dict[str, float]:
    """A small exercise-1 class: expected total per student (from the real notebooks).

    alice hands in the solution, bob the untouched exercise, carol the solution with one
    function broken, dave a file that is not a notebook, erin and frank the solution again.
    """
    folder.mkdir(parents=True)
    solution = ROOT / "solutions" / "ex01_why_cnns.ipynb"
    stub = ROOT / "exercises" / "ex01_why_cnns.ipynb"
    for student in ("alice", "erin", "frank"):
        shutil.copy(solution, folder / f"{student}.ipynb")
    shutil.copy(stub, folder / "bob.ipynb")
    nb = json.loads(solution.read_text())
    for cell in nb["cells"]:
        if cell["metadata"].get("cnncourse", {}).get("task") == "ex01.dense_params":
            cell["source"] = "def dense_params(n_inputs, units):\n    return n_inputs * units\n"
    (folder / "carol.ipynb").write_text(json.dumps(nb))
    (folder / "dave.ipynb").write_text("this is not a notebook")
    return {"alice", "bob", "carol", "dave", "erin", "frank"}


def grade_args(subs: Path, out: Path, key: Path) -> list[str]:
    """`cnncourse grade` of exercise 1 with the hidden-case key ``key``."""
    return ["grade", str(subs), "-a", "ex01", "--out", str(out), "--no-progress", "-j", "1",
            "--secret", str(key)]


@pytest.mark.slow
def test_sharded_runs_merged_equal_a_single_run(tmp_path, capsys):
    subs = tmp_path / "class"
    students = make_class(subs)
    key = tmp_path / "instructor" / "hidden-cases.key"  # one key for every shard
    assert main(grade_args(subs, tmp_path / "single", key)) == 0
    shards = []
    for i in (1, 2, 3):
        shards.append(tmp_path / f"shard-{i}")
        assert main([*grade_args(subs, shards[-1], key), "--shard", f"{i}/3"]) == 0
    merged = tmp_path / "merged"
    assert main(["gradebook", "merge", *map(str, shards), "-o", str(merged),
                 "--submissions", str(subs)]) == 0
    capsys.readouterr()
    single = (tmp_path / "single" / "gradebook.csv").read_text()
    assert (merged / "gradebook.csv").read_text() == single
    rows = {r["student_id"]: r for r in _rows(merged / "gradebook.csv")}
    assert set(rows) == students
    assert rows["alice"]["total"] == rows["alice"]["max"] != "0"
    assert rows["bob"]["total"] == "0" and rows["dave"]["status"] == "error"
    assert 0 < float(rows["carol"]["total"]) < float(rows["carol"]["max"])
    # A shard missing from the merge is caught by the class list.
    assert main(["gradebook", "merge", *map(str, shards[:2]), "-o", str(tmp_path / "m2"),
                 "--submissions", str(subs)]) == 2
    assert "graded in no shard" in capsys.readouterr().err
    # A shard graded with another key is refused.
    assert main([*grade_args(subs, tmp_path / "other", tmp_path / "other.key"), "--force"]) == 0
    assert main(["gradebook", "merge", str(shards[0]), str(tmp_path / "other"),
                 "-o", str(tmp_path / "m3")]) == 2
    assert "different hidden-case secrets" in capsys.readouterr().err


# ------------------------------------------------------------ contrib/ recipes


SLURM_SCRIPTS = sorted((ROOT / "contrib" / "slurm").glob("*.sh")) + sorted(
    (ROOT / "contrib" / "slurm").glob("*.sbatch")
)
MANIFESTS = sorted((ROOT / "contrib" / "kubernetes").glob("*.yaml"))


def test_slurm_scripts_pass_shellcheck():
    assert len(SLURM_SCRIPTS) == 3
    for script in SLURM_SCRIPTS:
        subprocess.run(["bash", "-n", str(script)], check=True)
    result = subprocess.run(
        [Path(sys.executable).parent / "shellcheck", *map(str, SLURM_SCRIPTS)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_slurm_submit_explains_itself_without_slurm(tmp_path):
    r = subprocess.run(
        [str(ROOT / "contrib" / "slurm" / "submit.sh"), "ex01"], capture_output=True, text=True
    )
    assert r.returncode == 2 and "submit.sh ASSIGNMENT SUBMISSIONS OUT N" in r.stderr
    r = subprocess.run(
        [str(ROOT / "contrib" / "slurm" / "submit.sh"), "ex01", str(tmp_path), "o", "x"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "N must be a positive number" in r.stderr


def _validate(*paths: Path) -> subprocess.CompletedProcess:
    """kubernetes-validate: the Kubernetes schemas ship in the package (no network)."""
    exe = Path(sys.executable).parent / "kubernetes-validate"
    return subprocess.run([exe, "--strict", *map(str, paths)], capture_output=True, text=True)


def test_kubernetes_manifests_match_the_kubernetes_schema(tmp_path):
    assert {p.name for p in MANIFESTS} == {"grade-job.yaml", "merge-job.yaml", "volume.yaml"}
    result = _validate(*MANIFESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == 3
    # The checker does reject what the cluster would: a misspelt field fails it.
    broken = tmp_path / "broken.yaml"
    broken.write_text(MANIFESTS[0].read_text().replace("completionMode:", "completionsMode:"))
    assert _validate(broken).returncode != 0


def test_grader_image_dockerfile_passes_hadolint():
    dockerfile = ROOT / "contrib" / "kubernetes" / "Dockerfile"
    result = subprocess.run(
        [_tool("hadolint"), "--no-color", str(dockerfile)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = dockerfile.read_text()
    assert "USER 1000" in text and "bubblewrap" in text  # as the jobs' securityContext expects


def test_kubernetes_jobs_agree_on_shards_volume_and_folders():
    import yaml

    grade = yaml.safe_load((ROOT / "contrib/kubernetes/grade-job.yaml").read_text())
    merge = yaml.safe_load((ROOT / "contrib/kubernetes/merge-job.yaml").read_text())
    claim = yaml.safe_load((ROOT / "contrib/kubernetes/volume.yaml").read_text())
    spec = grade["spec"]
    assert spec["completionMode"] == "Indexed"
    container = spec["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert int(env["SHARDS"]) == spec["completions"]
    script = container["args"][0]
    assert "JOB_COMPLETION_INDEX + 1" in script and '--shard "$i/$SHARDS"' in script
    assert '/data/out/shard-$i-of-$SHARDS' in script
    assert "/data/out/shard-*-of-* --out /data/out/merged" in merge["spec"]["template"]["spec"][
        "containers"
    ][0]["args"][0]
    for job in (grade, merge):
        pod = job["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]


# ------------------------------------------------------------ publishing and launch buttons

WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def _tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def test_book_workflow_passes_the_workflow_linters(tmp_path):
    """zizmor (offline audits) and the GitHub workflow schema vendored in check-jsonschema."""
    zizmor = subprocess.run(
        [_tool("zizmor"), "--offline", "--no-progress", str(WORKFLOW)], capture_output=True,
        text=True,
    )
    assert zizmor.returncode == 0, zizmor.stdout + zizmor.stderr
    schema = [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
    result = subprocess.run([*schema, str(WORKFLOW)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "book.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "run-on:"))
    assert subprocess.run([*schema, str(broken)], capture_output=True).returncode != 0


def test_book_workflow_builds_with_the_cache_and_deploys_to_pages():
    import yaml

    flow = yaml.safe_load(WORKFLOW.read_text())
    build, deploy = flow["jobs"]["build"], flow["jobs"]["deploy"]
    uses = {s.get("uses", "").split("@")[0]: s for s in build["steps"] + deploy["steps"]}
    assert uses["actions/cache"]["with"]["path"] == "_build/.jupyter_cache"
    assert any(s.get("run") == "./dev.sh publish _site" for s in build["steps"])
    assert uses["actions/upload-pages-artifact"]["with"]["path"] == "_site"
    assert "actions/deploy-pages" in uses and deploy["needs"] == "build"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert build["permissions"] == {"contents": "read"} and flow["permissions"] == {}
    assert deploy["environment"]["name"] == "github-pages"


def test_the_repository_url_is_one_setting():
    import yaml

    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    holders = [
        name for name in tracked
        if (ROOT / name).is_file() and name != "_config.yml"
        and url.removeprefix("https://") in (ROOT / name).read_text(errors="ignore")
    ]
    assert holders == [], f"the repository URL is repeated in {holders}; derive it from _config.yml"


def test_launch_buttons_only_where_a_notebook_gets_the_course_environment():
    """Binder builds binder/: Python 3.11 and this package (tests/test_packaging.py installs
    the same wheel in a clean venv and runs a chapter and an exercise with it). Colab would
    open a notebook without cnncourse, on its own TensorFlow: no button."""
    import tomllib

    import yaml
    from packaging.specifiers import SpecifierSet

    buttons = yaml.safe_load((ROOT / "_config.yml").read_text())["launch_buttons"]
    assert not buttons.get("colab_url"), "a Colab button needs a notebook that installs cnncourse"
    assert buttons["binderhub_url"] == "https://mybinder.org"
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    assert runtime.startswith("python-")
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert runtime.removeprefix("python-") + ".0" in SpecifierSet(requires)
    lines = [
        ln.strip() for ln in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert lines == ["."]  # the package from the repository root, with what it declares


def test_publish_writes_a_self_contained_site(tmp_path):
    """./dev.sh publish's copy step, on a stand-in for the built book."""
    import re

    function = re.search(r"^publish_site\(\) \{.*?^\}", (ROOT / "dev.sh").read_text(), re.S | re.M)
    assert function
    (tmp_path / "_build" / "html" / "_static").mkdir(parents=True)
    (tmp_path / "_build" / "html" / "index.html").write_text("<html>the book</html>")
    (tmp_path / "_build" / "html" / "_static" / "x.js").write_text("1")
    script = f'set -euo pipefail; ROOT="{tmp_path}"\n{function[0]}\npublish_site "$1"'

    def publish(folder: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-c", script, "publish", folder], cwd=tmp_path, capture_output=True, text=True
        )

    assert publish("site").returncode == 0
    site = tmp_path / "site"
    assert (site / "index.html").read_text() == "<html>the book</html>"
    assert (site / "_static" / "x.js").exists() and (site / ".nojekyll").exists()
    assert publish("site").returncode == 0  # replaces a site it wrote
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    refused = publish("mine")
    assert refused.returncode == 2 and "not a site this command wrote" in refused.stderr
    assert (tmp_path / "mine" / "thesis.tex").exists()
    (tmp_path / "_build" / "html" / "leak.html").write_text(f'<img src="{tmp_path}/a.png">')
    leak = publish("site")
    assert leak.returncode == 1 and "leak.html" in leak.stderr
