"""Every exercise: the instructor solution earns full marks, the student stub earns zero.

Task cells are executed here, in the test process, which is fine for the course's own
solutions; students' code is never run this way (that is the grader's job).
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path

import nbformat
import numpy as np
import pytest

from cnncourse import notebook_format as fmt
from cnncourse.checking import run_task
from cnncourse.exercise import Exercise
from cnncourse.grading.grader import MIN_HIDDEN
from cnncourse.grading.sandbox import Limits
from cnncourse.grading.secret import task_rng
from cnncourse.tasks import exercise, exercise_names, get_task, tasks_for

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "solutions").glob("ex*.ipynb"))
CHECK_CALL = re.compile(r"""check\(\s*["']([\w.]+)["']\s*,\s*([A-Za-z_]\w*)\s*\)""")


def _load(path: Path) -> tuple[dict[str, object], dict[str, str], dict[str, float]]:
    """Execute the task cells of a notebook; return namespace, task->function, task->points."""
    nb = nbformat.read(path, as_version=4)
    namespace: dict[str, object] = {"np": np}
    # The setup cell's imports (e.g. the describer of exercises 4, 6 and 8), as the kernel.
    setup = next(c for c in nb.cells if c.cell_type == "code")
    tree = ast.parse(setup.source)
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    setup_imports = ast.Module(body=imports, type_ignores=[])
    exec(compile(setup_imports, f"{path.name}:setup", "exec"), namespace)
    functions: dict[str, str] = {}
    points: dict[str, float] = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("cnncourse", {})
        if "task" in meta:
            exec(compile(cell.source, f"{path.name}:{meta['task']}", "exec"), namespace)
            points[meta["task"]] = meta["points"]
        for task_id, name in CHECK_CALL.findall(cell.source):
            functions[task_id] = name
    return namespace, functions, points


#: The grading rule every exercise states in its introduction (whitespace aside), once here.
GRADING_RULE = (
    "**How your notebook is graded.** The grader runs your notebook the way *Run all* does: "
    "your code cells from the top, in order, up to the check cell of each task, and it grades "
    "each task on the function that its check cell checked. So a helper function or an import "
    "in a cell of its own counts (also an import you add to the first cell), and a copy of a "
    "task's function pasted further down does not. `%time`, `%%time` and `display(...)` work "
    "as in Jupyter; shell commands (`!`) and other magics do nothing. Three kinds of cells "
    "are not run: cells after the last check cell, the course's example cells you left "
    "unchanged, and cells that import the course package `cnncourse` (the first cell's course "
    "imports excepted: the grader provides what they give). Your answers must not use the "
    "course package; when one does, its check says so and prints the 0 points the grader "
    "gives it. The points a check cell prints are your points on the public cases; the grader "
    "adds hidden cases, the same for everyone and on every regrading, so the same code always "
    "gets the same grade. When a task's function calls one of your earlier functions and that "
    "one is wrong, the later task is graded with a correct version in its place: one mistake "
    "costs points once."
)


@pytest.mark.parametrize("folder", ["solutions", "exercises"])
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_every_exercise_states_the_grading_rule(folder, source):
    """Issue 13 item 1: the rule is written in every exercise's introduction."""
    nb = nbformat.read(ROOT / folder / source.name, as_version=4)
    assert " ".join(GRADING_RULE.split()) in " ".join(nb.cells[0].source.split())


def test_there_are_exercises():
    assert SOURCES, "solutions/ holds no exercise notebooks"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_tasks_match_the_registry(source):
    _, functions, points = _load(source)
    exercise = source.stem.split("_")[0]
    registered = {t.id: t.points for t in tasks_for(exercise)}
    assert points == registered, "cell metadata points differ from cnncourse/tasks"
    assert set(functions) == set(registered), "every task needs exactly one check(...) call"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_solutions_earn_full_marks_on_public_and_hidden_cases(source):
    namespace, functions, _ = _load(source)
    for task_id, name in functions.items():
        task = get_task(task_id)
        fn = namespace[name]
        report = run_task(task_id, fn)
        assert report.passed, report.to_text()
        for seed in (0, 1, 2):
            hidden = task.hidden_cases(np.random.default_rng(seed)) if task.hidden_cases else []
            hidden_report = run_task(task_id, fn, cases=hidden)
            assert not hidden or hidden_report.passed, hidden_report.to_text()


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_student_stubs_earn_zero_and_say_not_implemented(source):
    student = ROOT / "exercises" / source.name
    namespace, functions, _ = _load(student)
    assert functions
    for task_id, name in functions.items():
        report = run_task(task_id, namespace[name])
        assert report.not_implemented and report.points == 0, report.to_text()


# ----------------------------------------------------------------- the exercise contract


def _anchors(chapter: Path) -> set[str]:
    """The section ids Sphinx gives the chapter's headings (docutils' make_id)."""
    from docutils.nodes import make_id

    nb = nbformat.read(chapter, as_version=4)
    ids = set()
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    ids.add(make_id(line.lstrip("#").strip().replace("`", "")))
    return ids


@pytest.mark.parametrize("name", exercise_names())
def test_every_exercise_honours_the_contract(name):
    """One declared object per exercise, matching its notebook; see cnncourse.exercise."""
    declared = exercise(name)
    assert isinstance(declared, Exercise) and declared.name == name
    source = next((ROOT / "solutions").glob(f"{name}_*.ipynb"))
    cells = [c for c in nbformat.read(source, as_version=4).cells if c.cell_type == "code"]
    in_notebook = [(fmt.task_id(c), fmt.task_points(c)) for c in cells if fmt.task_id(c)]
    assert in_notebook == [(t.id, float(t.points)) for t in declared.tasks]
    checked = {t for c in cells for t, _ in fmt.check_calls(c.source)}
    assert checked == {t.id for t in declared.tasks}, "every task has a check call"
    assert set(declared.limits) <= set(Limits.__dataclass_fields__)
    assert set(declared.artifacts) <= {t.id for t in declared.tasks}
    for task in declared.tasks:
        page, _, anchor = task.chapter.partition("#")
        chapter = ROOT / page.replace(".html", ".ipynb")
        assert page.startswith("chapters/") and chapter.exists(), (task.id, task.chapter)
        assert anchor in _anchors(chapter), (task.id, anchor, sorted(_anchors(chapter)))
        hidden = task.hidden_cases(task_rng(bytes(32), task.id)) if task.hidden_cases else []
        assert len(hidden) >= MIN_HIDDEN, (task.id, len(hidden))  # no exemption (issue 13)
        for callee_id in task.calls:
            callee = declared.task(callee_id)
            assert callee.reference is not None, f"{task.id} calls {callee_id}: no reference"
            namespace: dict = {"np": np}  # the reference runs on its own in the grader
            exec(textwrap.dedent(inspect.getsource(callee.reference)), namespace)
            fn = namespace[callee.reference.__name__]
            report = run_task(callee_id, fn)
            assert report.passed, report.to_text()


KERAS_BUILDERS = {
    "ex04.build_cnn",
    "ex04.compile_cnn",
    "ex06.vgg_block",
    "ex06.residual_block",
    "ex08.build_hypermodel",
}
#: Keys for tasks whose hidden cases train or run models (a second or more per key); the
#: tests of each exercise (tests/test_tasks_exNN.py) measure these tasks over more draws.
FEW_KEYS = {
    "ex04.train_cnn": 2,
    "ex05.digit_augmentation": 4,
    "ex06.fine_tuning": 3,
    "ex10.fix_training_script": 10,
    "ex11.train_segmenter": 1,
}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_hidden_cases_are_valid_under_any_secret(source):
    """Every instructor's key draws hidden cases the solution passes (no degenerate input).

    The key is random per class, so a generator that can draw an impossible input (an
    empty confusion matrix, a zero-size image) would fail some classes and not others.
    """
    namespace, functions, _ = _load(source)
    for task in tasks_for(source.stem.split("_")[0]):
        if task.hidden_cases is None:
            continue
        fn = namespace[functions[task.id]]
        # A Keras builder task builds a model per case (about 0.03 CPU-s): fewer keys there.
        keys = FEW_KEYS.get(task.id, 8 if task.id in KERAS_BUILDERS else 120)
        for key in range(keys):  # key 46 drew an empty confusion matrix in ex07 once
            secret = key.to_bytes(32, "big")
            cases = task.hidden_cases(task_rng(secret, task.id))
            report = run_task(task.id, fn, cases)
            assert report.passed, (task.id, key, report.to_text())


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_every_documented_default_is_exercised(source):
    """A parameter with a default is left out by at least one public case (issue 13)."""
    namespace, functions, _ = _load(source)
    for task_id, name in functions.items():
        task = get_task(task_id)
        params = list(inspect.signature(namespace[name]).parameters.values())
        cases = task.public_cases()
        for i, p in enumerate(params):
            if p.default is inspect.Parameter.empty:
                continue
            assert any(len(c.args) <= i and p.name not in c.kwargs for c in cases), (
                f"{task_id}: no public case uses the default of {p.name}"
            )


def test_the_exercise_half_has_no_import_cycle():
    """cnncourse.exercise imports neither checking, tasks nor grading."""
    import ast

    tree = ast.parse((ROOT / "cnncourse" / "exercise.py").read_text())
    imported = {
        n.module if isinstance(n, ast.ImportFrom) else a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import | ast.ImportFrom)
        for a in (n.names if isinstance(n, ast.Import) else [n])
    }
    assert not {m for m in imported if m and m.startswith("cnncourse")}
    checking = ast.parse((ROOT / "cnncourse" / "checking.py").read_text())
    top = {n.module for n in checking.body if isinstance(n, ast.ImportFrom)}
    assert "cnncourse.tasks" not in top
    for module in (ROOT / "cnncourse" / "tasks").glob("ex*.py"):
        text = module.read_text()
        assert "from cnncourse.checking import" not in text, module.name
        assert "from cnncourse.grading" not in text, f"{module.name} imports the grader"
        assert "getattr(module" not in text
    assert "getattr(module" not in (ROOT / "cnncourse/grading/assignment.py").read_text()
