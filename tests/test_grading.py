"""The batch grader: hostile submissions earn no false credit and never crash the harness.

The corpus in ``tests/hostile/`` (written by ``tests/hostile/make_corpus.py``) holds one
submission per attack on the grader and ``manifest.json`` with what each must score. The
assignment is exercise 1 with the test's own template notebook, so these tests do not
depend on the exercise notebooks being finished.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from unprivileged import as_unprivileged, shared_folder

from cnncourse.checking import Case, Task
from cnncourse.cli import main
from cnncourse.grading.artifacts import ArtifactSpec
from cnncourse.grading.assignment import grading_limits, load_assignment
from cnncourse.grading.gradebook import collect, grade_class, in_shard, student_id
from cnncourse.grading.grader import SubmissionResult, grade_file
from cnncourse.grading.report import feedback_html, gradescope_json
from cnncourse.grading.sandbox import Limits, TaskJob, Worker
from cnncourse.grading.secret import task_rng
from cnncourse.grading.static import check_answer
from cnncourse.grading.wire import WireError, decode, encode

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ROOT / "tests" / "hostile"
TEMPLATE = HOSTILE / "template_ex01.json"
MANIFEST = json.loads((HOSTILE / "manifest.json").read_text(encoding="utf-8"))
LIMITS = Limits(timeout_s=2.0, memory_mb=512)


@pytest.fixture(scope="module")
def assignment():
    return load_assignment("ex01", TEMPLATE)


@pytest.fixture(scope="module")
def worker():
    with Worker(LIMITS, hide=[str(HOSTILE)]) as w:
        yield w


def _hostile_file(name: str, tmp_path: Path) -> Path:
    if name == "huge_file.json":
        path = tmp_path / name
        path.write_bytes(b'{"cells": [], "x": "' + b"a" * (21 * 2**20) + b'"}')
        os.chmod(path, 0o644)
        return path
    return HOSTILE / name


# The whole corpus graded by a real unprivileged user (uid 65534), the same way as the
# ``worker`` fixture grades it, in one process; the results come back as JSON.
_UNPRIVILEGED_BATCH = """
import json, os, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from cnncourse.grading.assignment import load_assignment
from cnncourse.grading.grader import grade_file
from cnncourse.grading.report import feedback_html, gradescope_json
from cnncourse.grading.sandbox import Limits, Worker
assert os.getuid() != 0 and os.geteuid() != 0
assignment = load_assignment("ex01", Path({template!r}))
out = {{}}
with Worker(Limits(**{limits!r}), hide=[{hostile!r}]) as worker:
    for name, path in json.loads(Path("files.json").read_text()).items():
        result = grade_file(path, assignment, worker, "student")
        gradescope_json(result)
        feedback_html(result)
        out[name] = result.to_dict()
Path("results.json").write_text(json.dumps(out))
"""


@pytest.fixture(scope="module")
def unprivileged_results():
    """Every corpus file graded as uid 65534: name -> SubmissionResult (run once)."""
    work = shared_folder()
    try:
        files = {name: str(HOSTILE / name) for name in MANIFEST}
        files["huge_file.json"] = str(_hostile_file("huge_file.json", work))
        (work / "files.json").write_text(json.dumps(files), encoding="utf-8")
        script = _UNPRIVILEGED_BATCH.format(
            root=str(ROOT),
            template=str(TEMPLATE),
            limits=asdict(LIMITS),
            hostile=str(HOSTILE),
        )
        proc = as_unprivileged([sys.executable, "-c", script], work)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        data = json.loads((work / "results.json").read_text(encoding="utf-8"))
        results = {name: SubmissionResult.from_dict(r) for name, r in data.items()}
        # Sandboxed as an ordinary user is: in a user namespace, not as a slot's user id.
        assert any("user namespace" in p for p in results["correct.json"].protections)
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.parametrize("user", ["grader", "unprivileged"])
@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_hostile_submission_gets_no_false_credit(name, user, assignment, worker, tmp_path, request):
    """The same verdicts whether the grader runs as this test's user (root in CI) or as a
    real unprivileged user (uid 65534, in one batch for the whole corpus)."""
    expect = MANIFEST[name]
    if user == "unprivileged":
        result = request.getfixturevalue("unprivileged_results")[name]
    else:
        result = grade_file(_hostile_file(name, tmp_path), assignment, worker, "student")
    summary = f"{name}: {result.total} points, {result.status}: {result.reason} {result.notes}"
    if "total" in expect:
        assert result.total == pytest.approx(expect["total"]), summary
    assert result.total <= expect.get("max_total", expect.get("total", 0)) + 1e-9, summary
    if "status" in expect:
        assert result.status == expect["status"], summary
    for words in expect.get("reason", []):
        assert words in result.reason, summary
    if "note" in expect:
        assert any(expect["note"] in n for n in result.notes), summary
    if "hidden_passed" in expect:
        hidden = [c for t in result.tasks for c in t.cases if c.hidden]
        assert hidden and sum(c.passed for c in hidden) == expect["hidden_passed"], summary
    # Whatever happened, the result is complete and reportable.
    assert [t.id for t in result.tasks] == [t.id for t in assignment.tasks]
    gradescope_json(result)
    feedback_html(result)


def test_every_corpus_file_is_in_the_manifest():
    files = {p.name for p in HOSTILE.glob("*.json")} - {"manifest.json", TEMPLATE.name}
    assert files <= set(MANIFEST)
    assert len(MANIFEST) >= 30


def test_correct_submission_passes_public_and_hidden_cases(assignment, worker):
    result = grade_file(HOSTILE / "correct.json", assignment, worker, "alice")
    assert result.total == 7 and result.status == "ok"
    hidden = [c for t in result.tasks for c in t.cases if c.hidden]
    assert len(hidden) >= 30 and all(c.passed for c in hidden)
    assert any("audit hook" in p for p in result.protections)


def _without_times(result) -> dict:
    data = result.to_dict()
    data["seconds"] = 0
    for task in data["tasks"]:
        task["seconds"] = 0
    return data


def test_hidden_cases_come_from_the_instructors_secret(assignment, worker):
    # Issue 13: the same secret gives the same cases (and grade); another secret others.
    one, two = bytes(32), bytes(31) + b"\1"
    a = grade_file(HOSTILE / "wrong.json", assignment, worker, secret=one)
    b = grade_file(HOSTILE / "wrong.json", assignment, worker, secret=one)
    c = grade_file(HOSTILE / "wrong.json", assignment, worker, secret=two)
    assert a.secret_fingerprint == b.secret_fingerprint != c.secret_fingerprint
    assert _without_times(a) == _without_times(b)
    assert [c.passed for t in a.tasks for c in t.cases] == [
        c.passed for t in b.tasks for c in t.cases
    ]
    assert a.seed is None and one.hex() not in json.dumps(a.to_dict())


def test_sandbox_shows_only_the_interpreter_and_its_libraries(worker):
    assert any("bubblewrap" in p for p in worker.protections), worker.protections
    probe = (
        "import os\n"
        "def f(paths):\n"
        "    return os.getuid(), sorted(os.listdir('/')), sorted(os.listdir('/tmp')),"
        " [os.path.exists(p) for p in paths], sorted(os.listdir('/proc'))[:0]"
    )
    secret = [str(ROOT / "cnncourse" / "ops.py"), str(ROOT / "solutions"), str(HOSTILE)]
    run = worker.run([TaskJob("t.f", probe, "f")], [[encode(((secret,), {}))]])
    uid, top, tmp_listing, seen, _ = decode(run.tasks[0].cases[0]["value"])
    assert not any(seen), seen
    under_tmp = {  # the interpreter or a clone with its venv, when they live in /tmp
        Path(p).resolve().relative_to("/tmp").parts[0]
        for p in (sys.prefix, sys.base_prefix)
        if Path(p).resolve().is_relative_to("/tmp")
    }
    assert set(tmp_listing) - under_tmp == {"work"}
    allowed = {"bin", "dev", "etc", "lib", "lib32", "lib64", "proc", "run", "tmp", "usr"}
    allowed |= {Path(p).resolve().parts[1] for p in (sys.prefix, sys.base_prefix)}
    assert set(top) <= allowed, top
    if os.geteuid() == 0:
        assert uid != 0


def test_unisolated_mode_says_so(assignment):
    with Worker(LIMITS, isolation="none") as plain:
        assert plain.protections[0].startswith("NOT ISOLATED")
        result = grade_file(HOSTILE / "correct.json", assignment, plain)
        assert result.total == 7 and result.protections[0].startswith("NOT ISOLATED")


def test_parent_state_is_untouched_by_monkeypatching_submissions(assignment, worker):
    before = (np.allclose, np.isclose, isinstance, len)
    grade_file(HOSTILE / "monkeypatch_numpy.json", assignment, worker)
    grade_file(HOSTILE / "monkeypatch_builtins.json", assignment, worker)
    assert (np.allclose, np.isclose, isinstance, len) == before
    assert grade_file(HOSTILE / "correct.json", assignment, worker).total == 7


@pytest.mark.parametrize(
    "source",
    [
        "import cnncourse",
        "import cnncourse.ops as o",
        "from cnncourse.tasks import ex01",
        "from cnncourse import ops",
        "x = __import__('cnncourse.ops')",
        "import importlib\nm = importlib.import_module('cnncourse')",
        "exec('import cnncourse')",
        "import sys\nm = sys.modules['cnncourse.ops']",
    ],
)
def test_static_check_finds_imports_of_the_course(source):
    problems = check_answer(source)
    assert problems and "cnncourse" in problems[0]


def test_static_check_reports_syntax_errors_with_the_line():
    assert check_answer("x = 1\ndef f(:\n    pass") == ["syntax error on line 2: invalid syntax"]
    assert check_answer("def f(x):\n    return np.maximum(x, 0)") == []
    assert "could not be parsed" in check_answer("x = 1\0")[0]


def test_wire_round_trip_and_rejections():
    value = (1, 2.5, None, "s", [np.arange(3)], {"k": np.float32(1.5)}, np.bool_(True))
    back = decode(encode(value))
    assert back[0] == 1 and back[3] == "s" and isinstance(back[6], np.bool_)
    np.testing.assert_array_equal(back[4][0], np.arange(3))
    assert back[5]["k"].dtype == np.float32
    for bad in (
        {"__ndarray__": ["|O", [1], "AAAAAAAAAAA="]},
        {"__ndarray__": ["<f8", [2], "AAAAAAAAAAA="]},
        {"__ndarray__": ["<f8", [-1], ""]},
        {"a": 1, "b": 2},
        {"__pickle__": "x"},
    ):
        with pytest.raises(WireError):
            decode(bad)


def test_feedback_escapes_and_hides_hidden_inputs(assignment, worker, tmp_path):
    path = tmp_path / "mallory.ipynb"
    nb = json.loads((HOSTILE / "correct.json").read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["metadata"].get("cnncourse", {}).get("task") == "ex01.dense_params":
            cell["source"] = (
                "def dense_params(n_inputs, units):\n"
                "    raise ValueError(f'<script>alert(1)</script> {n_inputs} {units}')"
            )
    path.write_text(json.dumps(nb), encoding="utf-8")
    secret = bytes(range(32))
    result = grade_file(path, assignment, worker, secret=secret)
    page = feedback_html(result)
    assert "<script>" not in page and "&lt;script&gt;" in page
    hidden = [c for c in result.tasks[0].cases if c.hidden]
    assert all(c.message.startswith("your code raised ValueError") for c in hidden)
    text = json.dumps(gradescope_json(result))
    drawn = assignment.tasks[0].task.hidden_cases(task_rng(secret, "ex01.dense_params"))
    for case in drawn:  # neither the names nor the inputs of hidden cases leak
        n, units = case.args
        assert case.name not in page and case.name not in text
        assert f"{n} {units}" not in page and f"{n} {units}" not in text
    assert "784 100" in page  # a public case's message may show its (public) inputs


def test_student_ids_patterns_duplicates_and_shards(tmp_path):
    a1 = tmp_path / "alice_123_ex01.ipynb"
    a2 = tmp_path / "sub" / "alice_456_ex01.ipynb"
    b = tmp_path / "bob_7_ex01.ipynb"
    odd = tmp_path / "notes.ipynb"
    for p in (a1, b, odd, a2):
        p.parent.mkdir(exist_ok=True)
        p.write_text("{}", encoding="utf-8")
    os.utime(a1, (1, 1))
    import re

    pattern = re.compile(r"^(?P<id>[a-z]+)_\d+_ex01")
    entries, warnings = collect([tmp_path], pattern)
    by_id = {e.student: e for e in entries}
    assert by_id["alice"].path == a2 and by_id["alice"].duplicates == [a1]
    assert by_id["notes"].problem is not None
    assert any("duplicate student id 'alice'" in w for w in warnings)
    assert student_id(Path("we ird;name.ipynb")) == "we_ird_name"
    students = [f"s{k}" for k in range(40)]
    shards = [[s for s in students if in_shard(s, (i, 3))] for i in (1, 2, 3)]
    assert sorted(sum(shards, [])) == sorted(students) and all(shards)


def test_cli_grades_a_folder_writes_outputs_and_resumes(tmp_path, capsys):
    subs = tmp_path / "submissions"
    subs.mkdir()
    for name, student in [
        ("correct.json", "alice"),
        ("wrong.json", "bob"),
        ("malformed_json.json", "carol"),
        ("infinite_loop.json", "dave"),
        ("unfilled.json", "@SUM(A1)"),
    ]:
        shutil.copy(HOSTILE / name, subs / f"{student}.ipynb")
    out = tmp_path / "out"
    args = ["grade", str(subs), "-a", "ex01", "--template", str(TEMPLATE), "--out", str(out)]
    args += ["-j", "2", "--timeout", "2", "--memory-mb", "512", "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "mean score" in printed and "ex01.shift_images" in printed
    rows = list(csv.DictReader((out / "gradebook.csv").open(encoding="utf-8")))
    by_id = {r["student_id"]: r for r in rows}
    assert set(rows[0]) >= {"student_id", "ex01.dense_params", "total", "max", "status", "reason"}
    assert by_id["alice"]["total"] == "7" and by_id["alice"]["status"] == "ok"
    assert by_id["carol"]["status"] == "error" and "malformed" in by_id["carol"]["reason"]
    assert "timed out" in by_id["dave"]["reason"]
    assert "'@SUM_A1_" in by_id  # a formula-like id is neutralised
    results = json.loads((out / "results" / "alice.json").read_text(encoding="utf-8"))
    assert results["score"] == 7 and len(results["tests"]) == 3
    assert {"name", "score", "max_score", "output", "visibility"} <= set(results["tests"][0])
    assert (out / "feedback" / "bob.html").read_text(encoding="utf-8").startswith("<!DOCTYPE")
    assert not list(out.rglob("*.tmp"))
    # A rerun keeps every unchanged submission; a changed one is graded again.
    shutil.copy(HOSTILE / "correct.json", subs / "bob.ipynb")
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "graded now" in printed
    line = next(x for x in printed.splitlines() if "graded now" in x)
    assert line.split()[-1] == "1"
    rows = {r["student_id"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert rows["bob"]["total"] == "7" and len(rows) == 5
    assert main([*args, "--force", "--shard", "1/2"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "graded now" in x)
    assert 0 < int(line.split()[-1]) < 5


def test_cli_rejects_unknown_assignment(capsys, tmp_path):
    assert main(["grade", str(tmp_path), "-a", "ex99", "--out", str(tmp_path / "o")]) == 2
    assert "unknown exercise" in capsys.readouterr().err


# ----------------------------------------------------------------- the artifact extension


class _Saved:
    pass


def evaluate_npy(path: str, case: Case) -> str | None:
    """A stand-in for a Keras evaluator: load the saved file safely, judge it here."""
    data = np.load(path, allow_pickle=False)
    return None if float(data.sum()) == case.expected else f"sum {data.sum()} is wrong"


def test_artifact_tasks_are_saved_by_the_child_and_judged_in_a_fresh_process(tmp_path):
    task = Task("ex00.save_ones", 2, "save n ones", lambda: [Case("n=3", (3,), expected=3.0)])
    template = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "source": "import numpy as np"},
            {
                "cell_type": "code",
                "metadata": {"cnncourse": {"task": task.id, "points": 2}},
                "source": "def save_ones(n):\n    raise NotImplementedError",
            },
        ],
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
    }
    (tmp_path / "template.ipynb").write_text(json.dumps(template), encoding="utf-8")
    spec = ArtifactSpec(suffix=".npy", evaluator="test_grading:evaluate_npy", timeout_s=60)
    assignment = load_assignment(
        "ex00", tmp_path / "template.ipynb", tasks=[task], artifacts={task.id: spec}
    )
    answer = (
        "class Ones:\n    def __init__(self, n):\n        self.n = n\n"
        "    def save(self, path):\n        np.save(path, np.ones(self.n))\n"
        "def save_ones(n):\n    return Ones(n)"
    )
    template["cells"][1]["source"] = answer
    good = tmp_path / "good.ipynb"
    good.write_text(json.dumps(template), encoding="utf-8")
    template["cells"][1]["source"] = answer.replace("np.ones(self.n)", "np.ones(self.n + 1)")
    bad = tmp_path / "bad.ipynb"
    bad.write_text(json.dumps(template), encoding="utf-8")
    with Worker(LIMITS) as w:
        result = grade_file(good, assignment, w)
        assert result.total == 2, result.tasks[0]
        result = grade_file(bad, assignment, w)
    assert result.total == 0 and "sum 4.0 is wrong" in result.tasks[0].cases[0].message


def evaluate_npy_or_die(path, case):
    """A stand-in evaluator that a hostile saved file crashes (its sum is 4)."""
    data = np.load(path, allow_pickle=False)
    if float(data.sum()) == 4.0:
        os._exit(1)
    return None if float(data.sum()) == case.expected else f"sum {data.sum()} is wrong"


def _two_cells(setup: str, task: Task, answer: str) -> dict:
    """A notebook of a setup cell and the task cell of ``task`` holding ``answer``."""
    cells = [
        {"cell_type": "code", "metadata": {}, "source": setup},
        {
            "cell_type": "code",
            "metadata": {"cnncourse": {"task": task.id, "points": task.points}},
            "source": answer,
        },
    ]
    return {"cells": cells, "nbformat": 4, "nbformat_minor": 5, "metadata": {}}


def _ones_class(tmp_path: Path, evaluator: str, answers: dict[str, str]):
    """An artifact exercise (save n ones) and one notebook per student answer."""
    task = Task("ex00.save_ones", 2, "save n ones", lambda: [Case("n=3", (3,), expected=3.0)])
    template = _two_cells(
        "import numpy as np", task, "def save_ones(n):\n    raise NotImplementedError"
    )
    cells = template["cells"]
    (tmp_path / "template.ipynb").write_text(json.dumps(template), encoding="utf-8")
    spec = ArtifactSpec(suffix=".npy", evaluator=evaluator, timeout_s=60)
    assignment = load_assignment(
        "ex00", tmp_path / "template.ipynb", tasks=[task], artifacts={task.id: spec}
    )
    subs = tmp_path / "subs"
    subs.mkdir()
    for student, extra in answers.items():
        cells[1]["source"] = (
            "class Ones:\n    def __init__(self, n):\n        self.n = n\n"
            f"    def save(self, path):\n        np.save(path, np.ones(self.n + {extra}))\n"
            "def save_ones(n):\n    return Ones(n)"
        )
        (subs / f"{student}.ipynb").write_text(json.dumps(template), encoding="utf-8")
    return assignment, subs


def test_an_evaluator_that_cannot_start_is_an_infrastructure_error(tmp_path, monkeypatch):
    """Item 6: a model evaluator that dies before it has the student's files is the grader's
    failure (regraded next time), one that a saved file crashes is the student's."""
    from cnncourse.grading import artifacts

    assignment, subs = _ones_class(tmp_path, "test_grading:evaluate_npy_or_die", {"ann": 0})
    monkeypatch.setattr(artifacts, "_RUNNER", "import sys\nsys.exit(1)\n")
    out = tmp_path / "out"
    results, _ = grade_class([subs], assignment, out, limits=LIMITS, progress=False)
    assert results[0].status == "infrastructure error", results[0]
    assert "evaluator could not start" in results[0].reason
    monkeypatch.undo()  # the evaluator works again: the rerun grades ann, without --force
    results, _ = grade_class([subs], assignment, out, limits=LIMITS, progress=False)
    assert results[0].status == "ok" and results[0].total == 2, results[0]


def test_a_saved_file_that_crashes_the_evaluator_costs_only_its_student(tmp_path):
    assignment, subs = _ones_class(
        tmp_path, "test_grading:evaluate_npy_or_die", {"ann": 0, "bob": 1}
    )
    results, _ = grade_class([subs], assignment, tmp_path / "out", limits=LIMITS, progress=False)
    by = {r.student: r for r in results}
    assert by["ann"].status == "ok" and by["ann"].total == 2, by["ann"]
    assert by["bob"].status == "ok" and by["bob"].total == 0, by["bob"]
    assert "could not be evaluated" in by["bob"].tasks[0].cases[0].message


@pytest.mark.parametrize("deterministic", [True, False])
def test_a_deterministic_task_calls_the_function_once_per_distinct_input(deterministic, tmp_path):
    """Task.deterministic: cases with equal inputs share one call (ex04 judges four aspects
    of one built model); any other task calls the student's function for every case."""
    cases = [Case(f"aspect {k}", (3,), expected=1) for k in range(3)]
    task = Task("ex00.calls", 3, "count calls", lambda: cases, deterministic=deterministic)
    notebook = _two_cells(
        "CALLS = []", task, "def calls(n):\n    CALLS.append(n)\n    return len(CALLS)"
    )
    path = tmp_path / "template.ipynb"
    path.write_text(json.dumps(notebook), encoding="utf-8")
    assignment = load_assignment("ex00", path, tasks=[task])
    with Worker(LIMITS) as w:
        result = grade_file(path, assignment, w)
    passed = [c.passed for c in result.tasks[0].cases]
    assert passed == ([True, True, True] if deterministic else [True, False, False]), passed


# ----------------------------------------------------------------- the real exercises


SOLUTIONS = sorted((ROOT / "solutions").glob("ex*.ipynb"))


@pytest.mark.parametrize("source", SOLUTIONS, ids=lambda p: p.stem)
def test_real_solutions_earn_full_marks_and_stubs_zero(source, tmp_path):
    name = source.stem.split("_")[0]
    student = ROOT / "exercises" / source.name
    assert student.exists(), f"{student.name} is missing: run `cnncourse assign`"
    assignment = load_assignment(name, student)
    limits = grading_limits(name, timeout_s=max(30.0, grading_limits(name).timeout_s))
    with Worker(limits, hide=[str(tmp_path)]) as w:
        full = grade_file(source, assignment, w, "solution")
        empty = grade_file(student, assignment, w, "stub")
    assert full.total == assignment.max_points and full.status == "ok", full.reason
    assert empty.total == 0 and empty.status == "ok", empty.reason
