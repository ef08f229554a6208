"""The instructor's view of a class: class report, similarity, LMS exports, regrade deltas,
and the links from feedback to the book.

A class of six exercise-1 submissions (``tests/classview_corpus.py``) is graded once per
module through the command line; the tests read what it wrote.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from classview_corpus import BOB, ERIN_FIXED, GOOD, TEMPLATE, make_class, write

from cnncourse.booklinks import SECTIONS, book_link, declared_chapter, heading_id, section_path
from cnncourse.checking import Task
from cnncourse.cli import main
from cnncourse.grading import deltas, lms, similarity
from cnncourse.grading.assignment import load_assignment
from cnncourse.grading.classreport import class_summary, write_class_view
from cnncourse.grading.gradebook import grade_class, load_state
from cnncourse.grading.grader import CaseOutcome, SubmissionResult, TaskOutcome
from cnncourse.grading.sandbox import Limits

ROOT = Path(__file__).resolve().parent.parent
BOOK = "https://book.example.org/cnn/"
ARGS = ["-a", "ex01", "--template", str(TEMPLATE), "--timeout", "2", "--memory-mb", "512"]


def _grade(subs: Path, out: Path, *extra: str) -> int:
    return main(["grade", str(subs), "--out", str(out), *ARGS, "--no-progress", "-j", "2", *extra])


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("class")
    subs = make_class(tmp / "submissions")
    out = tmp / "out"
    before = os.environ.get("CNNCOURSE_BOOK_URL")
    os.environ["CNNCOURSE_BOOK_URL"] = BOOK
    try:
        assert _grade(subs, out) == 0
    finally:
        if before is None:
            del os.environ["CNNCOURSE_BOOK_URL"]
        else:
            os.environ["CNNCOURSE_BOOK_URL"] = before
    return subs, out


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))
        if tag == "a":
            self.links.append(dict(attrs).get("href") or "")


def _parse(page: str) -> _Images:
    parser = _Images()
    parser.feed(page)
    return parser


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


# ----------------------------------------------------------------------- the class report


def test_class_report_has_the_numbers_plots_and_problems(graded):
    _, out = graded
    page = (out / "class_report.html").read_text(encoding="utf-8")
    parsed = _parse(page)
    assert len(parsed.images) == 2
    assert all(img["src"].startswith("data:image/png;base64,") for img in parsed.images)
    assert all(len(img.get("alt", "")) > 40 for img in parsed.images)
    assert "6 students" in parsed.images[0]["alt"]
    # Every local link points at a file that was written.
    local = [h.split("#")[0] for h in parsed.links if h and not h.startswith(("http", "#"))]
    assert local and all((out / h).is_file() for h in local), local
    # frank timed out, and the page says so, with the reason.
    assert re.search(r"frank</a></td>\s*<td>error \(time-out\)", page)
    assert "timed out" in page
    # erin's wrong answers are the most failed public cases.
    assert "ex01.dense_params" in page and "expected" in page
    assert "First run in this folder" in page


def test_class_summary_counts_pass_rates_and_named_mistakes():
    a = load_assignment("ex01", TEMPLATE)

    def result(student: str, points: float, mistake: str = "") -> SubmissionResult:
        tasks = []
        for t in a.tasks:
            ok = points >= t.task.points
            case = CaseOutcome("c1", ok, "" if ok else "off by one", mistake=mistake)
            hidden = CaseOutcome("hidden case 1", ok, "" if ok else "wrong output", True)
            tasks.append(
                TaskOutcome(
                    t.id, t.task.title, t.task.points if ok else 0, t.task.points, [case, hidden]
                )
            )
        total = sum(t.points for t in tasks)
        return SubmissionResult(
            student, student, "x", "ex01", a.version, "ok", "", total, a.max_points, tasks
        )

    results = [
        result("a", 3),
        result("b", 0, "flipped_kernel"),
        result("c", 0, "wrong_axis"),
        result("d", 0, "flipped_kernel"),
    ]
    s = class_summary(results, a)
    assert s["n"] == 4 and s["full_marks"] == 1
    assert [t["pass_rate"] for t in s["tasks"]] == [0.25, 0.25, 0.25]
    assert s["mistakes"][0]["mistake"] == "flipped_kernel" and s["mistakes"][0]["students"] == 2
    assert {m["mistake"] for m in s["mistakes"]} == {"flipped_kernel", "wrong_axis"}
    assert s["public_failed"][0]["failed"] == 3
    assert s["public_failed"][0]["message"] == "off by one"
    assert s["hidden"][0]["failed"] == 3


# ----------------------------------------------------------------------- similarity


def test_similarity_finds_the_copies_not_the_independent_answers(graded):
    subs, out = graded
    a = load_assignment("ex01", TEMPLATE)
    docs = similarity.answer_documents({p.stem: p for p in subs.glob("*.ipynb")}, a)
    pairs = similarity.find_similar(docs, similarity.template_code(a))
    assert [(p.a, p.b) for p in pairs][0] == ("alice", "carol") and pairs[0].identical
    assert {(p.a, p.b) for p in pairs} == {("alice", "carol"), ("alice", "bob"), ("bob", "carol")}
    assert not any(p.identical for p in pairs[1:])
    page = (out / "similarity.html").read_text(encoding="utf-8")
    assert "A lead for a human, not a verdict" in page
    assert page.index("alice &amp; carol") < page.index("alice &amp; bob")
    assert "<mark>" in page and "dave" not in page


def test_template_code_never_counts_and_stubs_are_not_copies():
    a = load_assignment("ex01", TEMPLATE)
    stub = {t.id: t.template_source for t in a.tasks}
    docs = {
        "s1": "\n".join(stub.values()),
        "s2": "\n".join(stub.values()),
        "s3": "\n".join(GOOD.values()),
    }
    assert similarity.find_similar(docs, similarity.template_code(a)) == []
    # The same two submissions, compared without the template, would be a pair.
    assert similarity.find_similar({"a": docs["s3"], "b": docs["s3"]}, "")[0].identical


def test_similarity_escapes_the_code():
    code = GOOD["ex01.shift_images"] + "\n# </pre><script>alert(1)</script>\n"
    pairs = similarity.find_similar({"a": code, "b": code})
    assert "<script>" not in pairs[0].code_a and "&lt;script&gt;" in pairs[0].code_a


def test_renamed_and_commented_copy_is_found_whatever_the_order():
    docs = {"alice": "\n".join(GOOD.values()), "bob": "\n".join(reversed(BOB.values()))}
    pairs = similarity.find_similar(docs)
    assert len(pairs) == 1 and pairs[0].score > 0.9 and not pairs[0].identical


# ----------------------------------------------------------------------- LMS exports


def test_canvas_export_follows_the_gradebook_import_format(graded):
    _, out = graded
    rows = _rows(out / "canvas_grades.csv")
    tasks = ["ex01.dense_params", "ex01.conv_params", "ex01.shift_images"]
    assert rows[0] == [
        "Student",
        "ID",
        "SIS User ID",
        "SIS Login ID",
        "Section",
        *tasks,
        "ex01 total",
    ]
    assert rows[1] == ["Points Possible", "", "", "", "", "2", "2", "3", "7"]
    by_login = {r[3]: r for r in rows[2:]}
    assert set(by_login) == {"alice", "bob", "carol", "dave", "erin", "frank"}
    assert by_login["alice"][5:] == ["2", "2", "3", "7"]
    assert by_login["erin"][-1] == "0"
    gradebook = {r["student_id"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    for login, row in by_login.items():  # the same numbers as the gradebook
        assert row[5:] == [gradebook[login][t] for t in tasks] + [gradebook[login]["total"]]
    assert all(len(r) == len(rows[0]) for r in rows)


def test_moodle_export_has_an_identifier_and_one_column_per_grade_item(graded):
    _, out = graded
    rows = _rows(out / "moodle_grades.csv")
    assert rows[0] == [
        "username",
        "ex01.dense_params",
        "ex01.conv_params",
        "ex01.shift_images",
        "ex01 total",
    ]
    assert {r[0] for r in rows[1:]} == {"alice", "bob", "carol", "dave", "erin", "frank"}
    assert all(float(x) >= 0 for r in rows[1:] for x in r[1:])


def test_roster_fills_canvas_identities_and_moodle_emails(tmp_path):
    roster_file = tmp_path / "roster.csv"
    roster_file.write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section,email\n"
        "    Points Possible,,,,,\n"
        '"Lovelace, Ada",101,S-1,ada,Lab 1,ada@example.edu\n'
        "=HYPERLINK(1),102,S-2,eve,Lab 2,eve@example.edu\n",
        encoding="utf-8",
    )
    roster = lms.load_roster(roster_file)
    assert set(roster) == {"ada", "eve"}
    results = [
        SubmissionResult(
            s,
            f"{s}.ipynb",
            "x",
            "ex01",
            "v",
            "ok",
            "",
            2.0,
            2.0,
            [TaskOutcome("ex01.f", "f", 2.0, 2.0)],
        )
        for s in ("ada", "eve", "zed")
    ]
    rows = lms.canvas_rows(results, {"ex01.f": 2.0}, "ex01", roster)
    assert rows[2][:5] == ["Lovelace, Ada", "101", "S-1", "ada", "Lab 1"]
    assert rows[3][0] == "'=HYPERLINK(1)"  # a formula is neutralised
    assert rows[4][:5] == ["zed", "", "", "zed", ""]  # not on the roster: login = student id
    moodle = lms.moodle_rows(results, {"ex01.f": 2.0}, "ex01", roster, field="email")
    assert moodle[0][0] == "email" and moodle[1][0] == "ada@example.edu"
    with pytest.raises(ValueError, match="field must be"):
        lms.moodle_rows(results, {"ex01.f": 2.0}, "ex01", roster, field="name")
    (tmp_path / "bad.csv").write_text("name,grade\nx,1\n", encoding="utf-8")
    with pytest.raises(lms.RosterError, match="student id"):
        lms.load_roster(tmp_path / "bad.csv")


def test_cli_reports_a_bad_roster_clearly(graded, capsys, tmp_path):
    _, out = graded
    (tmp_path / "bad.csv").write_text("name\nx\n", encoding="utf-8")
    assert (
        main(
            [
                "report",
                str(out),
                "-a",
                "ex01",
                "--template",
                str(TEMPLATE),
                "--roster",
                str(tmp_path / "bad.csv"),
            ]
        )
        == 2
    )
    assert "needs a column with the student id" in capsys.readouterr().err


# ----------------------------------------------------------------------- regrade deltas


def test_a_resubmission_is_listed_with_its_change_and_reason(graded, tmp_path, capsys):
    subs, out = graded
    subs2, out2 = tmp_path / "subs", tmp_path / "out"
    shutil.copytree(subs, subs2)
    shutil.copytree(out, out2)
    write(subs2 / "erin.ipynb", ERIN_FIXED)
    assert _grade(subs2, out2) == 0
    printed = capsys.readouterr().out
    assert "1 student(s) whose grade changed" in printed and "erin: +2" in printed
    rows = list(csv.DictReader((out2 / "regrade_changes.csv").open(encoding="utf-8")))
    assert len(rows) == 1
    assert rows[0]["student_id"] == "erin" and rows[0]["delta"] == "+2"
    assert rows[0]["old_total"] == "0" and rows[0]["new_total"] == "2"
    assert rows[0]["reasons"] == "new submission"
    assert rows[0]["tasks"] == "ex01.dense_params 0→2"
    page = (out2 / "class_report.html").read_text(encoding="utf-8")
    assert "1 student to tell" in page and "new submission" in page
    # A rerun with nothing new: no change, and the CSV says so (a header only).
    assert _grade(subs2, out2) == 0
    assert len(_rows(out2 / "regrade_changes.csv")) == 1
    assert "No grade changed since the previous run" in (out2 / "class_report.html").read_text(
        encoding="utf-8"
    )


def test_a_changed_task_regrades_everyone_and_names_the_task(graded, tmp_path):
    subs, out = graded
    out2 = tmp_path / "out"
    shutil.copytree(out, out2)
    original = load_assignment("ex01", TEMPLATE)
    tasks = [t.task for t in original.tasks]
    # The instructor doubles the points of dense_params: a new assignment version.
    changed = [
        Task(t.id, 4, t.title, t.public_cases, t.hidden_cases, t.comparator)
        if t.id == "ex01.dense_params"
        else t
        for t in tasks
    ]
    before = load_assignment("ex01", TEMPLATE, tasks=tasks)
    after = load_assignment("ex01", TEMPLATE, tasks=changed)
    assert before.version != after.version
    limits = Limits(timeout_s=2.0, memory_mb=512)
    # The snapshot of the first run was taken with the registry's tasks; rebuild it with the
    # same tasks passed explicitly, so that only the points change between the two runs.
    results = [load_state(out2, s) for s in ("alice", "bob", "carol", "dave", "erin", "frank")]
    deltas.save_snapshot(out2, deltas.snapshot(results, before))
    results, _ = grade_class([subs], after, out2, jobs=2, limits=limits, progress=False)
    view = write_class_view(out2, after, results)
    changed_students = {c.student: c for c in view.changes}
    # Everyone who passes dense_params gains 2 points; erin and frank (0 there) do not change.
    assert set(changed_students) == {"alice", "bob", "carol", "dave"}
    for c in changed_students.values():
        assert c.delta == 2 and c.tasks == {"ex01.dense_params": (2.0, 4.0)}
        assert c.reasons == ["assignment version changed", "task changed: ex01.dense_params"]
    rows = list(csv.DictReader((out2 / "regrade_changes.csv").open(encoding="utf-8")))
    assert {r["student_id"] for r in rows} == set(changed_students)


def test_compare_names_a_new_secret_and_students_who_come_and_go():
    def snap(secret: str, students: dict[str, float]) -> dict:
        return {
            "tasks": {"ex01.f": "x"},
            "students": {
                s: {
                    "total": p,
                    "status": "ok",
                    "sha256": "h",
                    "version": "v",
                    "secret": secret,
                    "tasks": {"ex01.f": p},
                }
                for s, p in students.items()
            },
        }

    changes = deltas.compare(
        snap("s1", {"a": 2, "b": 1, "c": 0}), snap("s2", {"a": 2, "b": 0, "d": 1})
    )
    by = {c.student: c for c in changes}
    assert set(by) == {"b", "c", "d"}  # a's grade did not change: not listed
    assert by["b"].reasons == ["hidden-case secret changed"] and by["b"].delta == -1
    assert by["c"].reasons == ["no longer submitted"] and by["d"].reasons == ["first graded"]
    same = snap("s1", {"a": 2})
    forced = snap("s1", {"a": 1})
    assert deltas.compare(same, forced)[0].reasons == ["regraded, nothing recorded changed"]
    text = deltas.changes_csv([by["b"]])
    assert text.splitlines()[1] == "b,1,0,-1,ok,ok,ex01.f 1→0,hidden-case secret changed"


def test_task_fingerprints_change_only_with_the_task():
    a = load_assignment("ex01", TEMPLATE)
    tasks = [t.task for t in a.tasks]
    other = [
        Task(t.id, t.points, t.title + "!", t.public_cases, t.hidden_cases) if i == 1 else t
        for i, t in enumerate(tasks)
    ]
    fa = deltas.task_fingerprints(load_assignment("ex01", TEMPLATE, tasks=tasks))
    fb = deltas.task_fingerprints(load_assignment("ex01", TEMPLATE, tasks=other))
    assert [k for k in fa if fa[k] != fb[k]] == ["ex01.conv_params"]


def test_report_command_rewrites_the_view_without_grading(graded, tmp_path, capsys):
    _, out = graded
    out2 = tmp_path / "out"
    shutil.copytree(out, out2)
    (out2 / "class_report.html").unlink()
    assert main(["report", str(out2), "-a", "ex01", "--template", str(TEMPLATE)]) == 0
    assert (out2 / "class_report.html").is_file()
    assert "0 student(s) whose grade changed" in capsys.readouterr().out
    snap = json.loads((out2 / deltas.SNAPSHOT).read_text(encoding="utf-8"))
    assert snap["students"]["alice"]["total"] == 7


# ----------------------------------------------------------------------- links to the book


def _chapter_anchors(stem: str) -> set[str]:
    nb = json.loads((ROOT / "chapters" / f"{stem}.ipynb").read_text(encoding="utf-8"))
    anchors = set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for line in source.splitlines():
            heading = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
            if heading:
                anchors.add(heading_id(heading.group(1)))
            label = re.match(r"^\(([\w-]+)\)=\s*$", line)
            if label:
                anchors.add(label.group(1))
    return anchors


def test_every_task_links_to_a_section_that_exists():
    from cnncourse.tasks import all_tasks

    missing, broken = [], []
    for task_id, task in all_tasks().items():
        path = section_path(task_id, declared_chapter(task))
        if path is None:
            missing.append(task_id)
            continue
        page, _, anchor = path.partition("#")
        stem = Path(page).stem
        if not (ROOT / "chapters" / f"{stem}.ipynb").is_file() or (
            anchor and anchor not in _chapter_anchors(stem)
        ):
            broken.append(f"{task_id} -> {path}")
    assert not missing, (
        "tasks with no book section: give the Task a `chapter` or add it to "
        f"cnncourse.booklinks.SECTIONS: {missing}"
    )
    assert not broken, f"links to sections that do not exist: {broken}"


def test_heading_ids_are_the_ones_sphinx_writes():
    from docutils.nodes import make_id

    for _, heading in SECTIONS.values():
        assert heading_id(heading) == make_id(heading.replace("`", ""))
    assert book_link("ex02.conv2d", "https://x.org/b").startswith("https://x.org/b/chapters/")


def test_feedback_pages_link_each_task_to_its_section_of_the_book(graded):
    _, out = graded
    page = (out / "feedback" / "erin.html").read_text(encoding="utf-8")
    links = [h for h in _parse(page).links if h.startswith(BOOK)]
    a = load_assignment("ex01", TEMPLATE)
    assert links == [BOOK + section_path(t.id, declared_chapter(t.task)) for t in a.tasks]
    assert all("chapters/01_why_cnns.html#" in link for link in links)
    assert "In the book: <a" in page


def test_self_check_ends_with_the_book_section(capsys, monkeypatch):
    from cnncourse.checking import check

    monkeypatch.setenv("CNNCOURSE_BOOK_URL", BOOK)
    check("ex02.zero_pad", lambda x, pad: x)
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("  In the book: ")
    assert last.endswith(BOOK + "chapters/02_convolution.html#padding-valid-and-same")


def test_report_with_a_roster_and_a_broken_notebook(graded, tmp_path, capsys):
    subs, out = graded
    subs2, out2 = tmp_path / "subs", tmp_path / "out"
    shutil.copytree(subs, subs2)
    shutil.copytree(out, out2)
    (subs2 / "gina.ipynb").write_text('{"cells": [', encoding="utf-8")  # a truncated upload
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section,Email\n"
        "Alice Liddell,11,A-1,alice,Lab 1,al@uni.example\nGina Gray,17,G-7,gina,Lab 2,\n",
        encoding="utf-8",
    )
    assert _grade(subs2, out2, "--roster", str(roster), "--moodle-id", "email") == 0
    moodle = _rows(out2 / "moodle_grades.csv")
    assert moodle[0][0] == "email"
    assert {r[0] for r in moodle[1:]} >= {"al@uni.example", "bob"}  # no email: the id
    canvas = {r[3]: r for r in _rows(out2 / "canvas_grades.csv")[2:]}
    assert canvas["alice"][:5] == ["Alice Liddell", "11", "A-1", "alice", "Lab 1"]
    assert canvas["gina"][:5] == ["Gina Gray", "17", "G-7", "gina", "Lab 2"]
    assert canvas["gina"][-1] == "0"
    page = (out2 / "class_report.html").read_text(encoding="utf-8")
    assert re.search(r"gina</a></td>\s*<td>error</td><td>[^<]*malformed", page)
    rows = list(csv.DictReader((out2 / "regrade_changes.csv").open(encoding="utf-8")))
    assert [(r["student_id"], r["reasons"]) for r in rows] == [("gina", "first graded")]
    assert "gina" not in (out2 / "similarity.html").read_text(encoding="utf-8")


def test_a_new_hidden_case_key_lists_the_students_whose_grade_moved(tmp_path, capsys):
    # hank fails only shifts up and to the left: every public case passes, and how many
    # hidden cases fail depends on the inputs drawn from the key.
    hank = dict(GOOD)
    hank["ex01.shift_images"] = GOOD["ex01.shift_images"].replace(
        "    out = np.zeros_like(x)\n",
        "    out = np.zeros_like(x)\n    if dx < 0 and dy < 0:\n        return out\n",
    )
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    write(subs / "hank.ipynb", hank)
    write(subs / "alice.ipynb", GOOD)
    keys = []
    for k in (0, 1):
        keys.append(tmp_path / f"key{k}")
        keys[-1].write_text(f"{k:02x}" * 32 + "\n", encoding="utf-8")
    assert _grade(subs, out, "--secret", str(keys[0])) == 0
    first = {r["student_id"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert _grade(subs, out, "--secret", str(keys[1])) == 0
    second = {r["student_id"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert first["alice"]["total"] == second["alice"]["total"] == "7"
    assert first["hank"]["total"] != second["hank"]["total"]  # 6.4 and 6.1 with these keys
    rows = list(csv.DictReader((out / "regrade_changes.csv").open(encoding="utf-8")))
    assert [r["student_id"] for r in rows] == ["hank"]
    assert rows[0]["reasons"] == "hidden-case secret changed"
    delta = float(second["hank"]["total"]) - float(first["hank"]["total"])
    assert float(rows[0]["delta"]) == pytest.approx(delta)
    assert rows[0]["tasks"].startswith("ex01.shift_images ")


def test_report_since_compares_with_another_folder(graded, tmp_path, capsys):
    # After a sharded run the merge writes a new folder; --since names the previous one.
    subs, out = graded
    subs2, out2 = tmp_path / "subs", tmp_path / "new"
    shutil.copytree(subs, subs2)
    write(subs2 / "erin.ipynb", ERIN_FIXED)
    key = out / ".hidden-cases.key"  # the same key, as the shards of a class share one
    assert _grade(subs2, out2, "--secret", str(key)) == 0  # a fresh folder: no snapshot
    assert "first report in this folder" in capsys.readouterr().out
    args = ["report", str(out2), "-a", "ex01", "--template", str(TEMPLATE)]
    assert main([*args, "--since", str(out)]) == 0
    rows = list(csv.DictReader((out2 / "regrade_changes.csv").open(encoding="utf-8")))
    assert [(r["student_id"], r["delta"], r["reasons"]) for r in rows] == [
        ("erin", "+2", "new submission")
    ]
    assert main([*args, "--since", str(tmp_path)]) == 2
    assert "no class report in" in capsys.readouterr().err


def test_class_report_escapes_what_students_control(tmp_path):
    a = load_assignment("ex01", TEMPLATE)
    evil = "<script>alert(1)</script>"
    tasks = [
        TaskOutcome(
            t.id,
            t.task.title,
            0.0,
            t.task.points,
            [CaseOutcome("c1", False, evil, mistake=evil)],
            [evil],
        )
        for t in a.tasks
    ]
    result = SubmissionResult(
        "mallory", "m.ipynb", "", "ex01", a.version, "error", evil, 0.0, a.max_points, tasks
    )
    view = write_class_view(tmp_path, a, [result])
    page = view.report.read_text(encoding="utf-8")
    assert "<script>" not in page and page.count("&lt;script&gt;") >= 3
