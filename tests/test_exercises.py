"""Every exercise: the instructor solution earns full marks, the student stub earns zero.

Task cells are executed here, in the test process, which is fine for the course's own
solutions; students' code is never run this way (that is the grader's job).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from cnncourse.checking import run_task
from cnncourse.tasks import get_task, tasks_for

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "solutions").glob("ex*.ipynb"))
CHECK_CALL = re.compile(r"""check\(\s*["']([\w.]+)["']\s*,\s*([A-Za-z_]\w*)\s*\)""")


def _load(path: Path) -> tuple[dict[str, object], dict[str, str], dict[str, float]]:
    """Execute the task cells of a notebook; return namespace, task->function, task->points."""
    nb = nbformat.read(path, as_version=4)
    namespace: dict[str, object] = {"np": np}
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
