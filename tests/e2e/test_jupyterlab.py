"""The exercises in JupyterLab, the way a student does them.

A JupyterLab server is started on a copy of ``exercises/`` (what a student has). For each
exercise (ex01 and ex02 unless ``CNNCOURSE_E2E_EXERCISES`` says otherwise) the test opens
the notebook through the server's API, runs every cell in a kernel (*Run All*), and reads
the self-checks: on the unfilled notebook every check must run, report "not implemented
yet" and 0 points, and no cell may raise. Then the solution of every task (from
``solutions/``) is pasted into its task cell, the notebook is saved through the server and
opened again, the kernel restarted and every cell run again: every check must now report
full points.

It also opens the first exercise in JupyterLab's own web page in Chromium and saves a
screenshot (``_build/screenshots/jupyterlab_<exercise>.png``), and runs the first cell of a
chapter and of an exercise in a fresh kernel, as a student opening them does: TensorFlow's
start-up log lines (absl, oneDNN, CUDA), which JupyterLab shows in red, must not be there.

What a student reads on the first screen of a chapter and of an exercise is checked in the
page too (screenshots ``jupyterlab_first_screen_<notebook>.png``): the Markdown is rendered
as MyST by the ``jupyterlab-myst`` extension (requirements.txt), so no raw role or directive
(``{doc}``, ``{glue:text}``, ``:::``) shows, admonitions are boxes with their titles, links
to other notebooks open them in JupyterLab, and no "Jupyter news" prompt appears.
Glued numbers exist only once the book is built: a chapter that glues opens with a note,
tagged ``remove-cell`` so the book leaves it out, that says what the placeholders mean.
"""

from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest
from e2e_common import ROOT
from labclient import KernelClient, LabServer

ALL_EXERCISES = sorted(
    p.name for p in (ROOT / "exercises").glob("ex*.ipynb") if (ROOT / "solutions" / p.name).exists()
)
# The student path is the same for every exercise, and each one's checks are already run on
# stub and solution by tests/test_exercises.py and nbval; so two exercises by default (each
# runs twice in a kernel, which adds up once exercises train Keras models).
# CNNCOURSE_E2E_EXERCISES=all (or a list such as ex01,ex05) chooses others.
_CHOICE = os.environ.get("CNNCOURSE_E2E_EXERCISES", "ex01,ex02").strip()
_WANTED = [] if _CHOICE == "all" else [w.strip() for w in _CHOICE.split(",") if w.strip()]
EXERCISES = [n for n in ALL_EXERCISES if not _WANTED or n.split("_")[0] in _WANTED]


# The first code cell of these notebooks loads TensorFlow (tests/test_quiet.py checks that
# every chapter and exercise that uses TensorFlow loads it the same way).
FIRST_CELLS = ["chapters/02_convolution.ipynb", "exercises/ex01_why_cnns.ipynb"]
TF_CHATTER = ("absl::", "oneDNN", "cuda", "cpu_feature_guard", "I0000", "W0000", "E0000")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    student = tmp_path_factory.mktemp("student")
    shutil.copytree(ROOT / "exercises", student / "exercises")
    shutil.copytree(ROOT / "chapters", student / "chapters")
    with LabServer.lab(student, tmp_path_factory.mktemp("jupyterlab")) as server:
        yield server


def _meta(cell: dict) -> dict:
    return (cell.get("metadata") or {}).get("cnncourse") or {}


def _points(value: float) -> str:
    return f"{float(value):g}"  # as cnncourse.checking prints them


def run_all(kernel: KernelClient, nb: dict) -> list[tuple[int, dict, object]]:
    """Execute every code cell in order; (index, cell, Execution) for each."""
    results = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code" and "".join(cell["source"]).strip():
            results.append((index, cell, kernel.execute("".join(cell["source"]))))
    return results


def check_reports(results, tasks: dict[str, float]) -> dict[str, str]:
    """The printed report of each check cell, by task id; every cell ran without error."""
    reports = {}
    for index, cell, run in results:
        assert not run.error, f"cell {index} raised {run.error}:\n{''.join(cell['source'])}"
        assert run.status == "ok", f"cell {index} ended with status {run.status!r}"
        task = _meta(cell).get("check")
        if task:
            reports[task] = run.text
    assert set(reports) == set(tasks), f"check cells {sorted(reports)} != tasks {sorted(tasks)}"
    return reports


def test_there_are_exercises_to_try():
    assert ALL_EXERCISES, "no exercises/exNN_*.ipynb with a solutions/ source"
    unknown = set(_WANTED) - {n.split("_")[0] for n in ALL_EXERCISES}
    assert EXERCISES and not unknown, f"CNNCOURSE_E2E_EXERCISES names no exercise: {unknown}"


def test_exercise_opens_in_the_jupyterlab_page(lab: LabServer, browser, screenshot_dir: Path):
    """JupyterLab's web page shows the first (unfilled) exercise (screenshot saved)."""
    assert EXERCISES
    name = EXERCISES[0]
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith((lab.base, "data:", "blob:"))
            else route.abort()
        ),
    )
    shot = screenshot_dir / f"jupyterlab_{name.split('_')[0]}.png"
    try:
        page.goto(f"{lab.base}/lab/tree/exercises/{name}?token={lab.token}", timeout=90000)
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=90000)
        page.wait_for_selector(f".lm-TabBar-tabLabel:has-text('{name}')", timeout=30000)
        page.wait_for_timeout(5000)  # the news prompt, if any, shows within a second or two
        body = page.inner_text("body")
        assert "Jupyter news" not in body, (
            "JupyterLab asks about Jupyter news on the first screen: ./dev.sh installs "
            "scripts/jupyterlab_overrides.json into the venv to switch it off"
        )
        cells = page.locator(".jp-NotebookPanel .jp-Cell").count()
        page.screenshot(path=str(shot))
        assert cells >= 3, f"JupyterLab shows {cells} cells of {name}"
        text = page.locator(".jp-NotebookPanel").inner_text()
        assert "NotImplementedError" in text or "check(" in text, text[:500]
    except Exception:
        page.screenshot(path=str(shot))
        raise
    finally:
        context.close()


@pytest.mark.parametrize("name", EXERCISES, ids=lambda n: n.split("_")[0])
def test_student_fills_in_an_exercise(lab: LabServer, name: str):
    path = f"exercises/{name}"
    model = lab.api("GET", f"/api/contents/{path}?content=1&type=notebook")
    assert model["type"] == "notebook" and model["writable"], model.get("message")
    nb = model["content"]
    tasks = {_meta(c)["task"]: _meta(c)["points"] for c in nb["cells"] if "task" in _meta(c)}
    assert tasks, f"{path} has no task cells"

    kernel = lab.kernel(path)
    try:
        # 1. The unfilled notebook: Run All completes; every check says "not implemented".
        reports = check_reports(run_all(kernel, nb), tasks)
        for task, text in reports.items():
            head = rf"{re.escape(task)} \(.*\): 0/{re.escape(_points(tasks[task]))} points"
            assert re.search(head, text), f"{task} on the unfilled notebook printed:\n{text}"
            assert "not implemented yet" in text, f"{task} printed:\n{text}"

        # 2. Paste the solutions into the task cells, save through the server, reopen.
        solution = nbformat.read(ROOT / "solutions" / name, as_version=4)
        answers = {_meta(c)["task"]: c.source for c in solution.cells if "task" in _meta(c)}
        assert set(answers) == set(tasks), f"solutions/{name} has tasks {sorted(answers)}"
        for cell in nb["cells"]:
            if "task" in _meta(cell):
                cell["source"] = answers[_meta(cell)["task"]]
        saved = lab.api(
            "PUT", f"/api/contents/{path}", {"type": "notebook", "format": "json", "content": nb}
        )
        assert saved["path"] == path
        reopened = lab.api("GET", f"/api/contents/{path}?content=1&type=notebook")["content"]
        pasted = {
            _meta(c)["task"]: "".join(c["source"]) for c in reopened["cells"] if "task" in _meta(c)
        }
        assert pasted == answers, "the saved notebook does not hold the pasted solutions"

        # 3. Restart the kernel and run all again: full marks on every check.
        kernel.restart()
        reports = check_reports(run_all(kernel, reopened), tasks)
        for task, text in reports.items():
            full = _points(tasks[task])
            head = rf"{re.escape(task)} \(.*\): {re.escape(full)}/{re.escape(full)} points"
            assert re.search(head, text), f"{task} with the solution printed:\n{text}"
            assert "[FAIL]" not in text and "All public cases pass" in text, text
    finally:
        kernel.shutdown()


@pytest.mark.parametrize("path", FIRST_CELLS, ids=lambda p: p.split("/")[1].split("_")[0])
def test_first_cell_prints_no_tensorflow_log_lines(lab: LabServer, path: str):
    """Open a notebook, run its first code cell: no red TensorFlow start-up lines."""
    nb = lab.api("GET", f"/api/contents/{path}?content=1&type=notebook")["content"]
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    source = "".join(first["source"])
    assert "import_tensorflow()" in source, f"the first cell of {path} does not load TensorFlow"
    kernel = lab.kernel(path)
    try:
        # The same cell, then a flush of the kernel's streams inside the same execution, so
        # that anything written to the process's stderr during the cell has arrived.
        run = kernel.execute(source + "\nimport sys as _s; _s.stdout.flush(); _s.stderr.flush()")
        assert not run.error and run.status == "ok", run.error
        shown = run.stdout + run.stderr
        found = [marker for marker in TF_CHATTER if marker in shown]
        assert not found and not run.stderr.strip(), (
            f"the first cell of {path} printed TensorFlow start-up lines {found}:\n{shown}"
        )
        # Control: the kernel's stderr does reach the notebook (the check above can fail).
        echo = kernel.execute("import sys; print('to stderr', file=sys.stderr)")
        assert echo.stderr == "to stderr\n", echo
    finally:
        kernel.shutdown()


# ------------------------------------------------------------------ the first screen, as read

# A chapter (glued numbers, admonitions, a citation) and an exercise (a link to its chapter).
FIRST_SCREENS = ["chapters/05b_fashion_mnist.ipynb", "exercises/ex02_convolution.ipynb"]
# MyST syntax that only shows as text when nothing renders it: a role or directive name in
# braces ({doc}, {glue:text}, {note}) and colon fences.
RAW_MYST = re.compile(r"\{[a-z][\w:-]*\}|^\s*:::", re.M)
DIRECTIVE = re.compile(r"^(?::::+|```+)\{([a-z]+)\}[ \t]*(.*)$", re.M)
ADMONITIONS = {"admonition", "note", "tip", "hint", "important", "warning", "caution",
               "attention", "danger", "error", "seealso"}  # fmt: skip
NOTEBOOK_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+\.ipynb)\)")
GLUE_NOTE = "glue-placeholder-note"  # the tag of a chapter's note on glued values

# The cells on the first screen: the active notebook's cells (in order) that intersect the
# window, each with its type, its text as shown (hidden editors are not in innerText), its
# admonition titles and its links.
FIRST_SCREEN_JS = """() => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-Cell')];
  const seen = [];
  for (const cell of cells) {
    const box = cell.getBoundingClientRect();
    if (box.top >= window.innerHeight) break;
    if (box.bottom <= 0 || box.height === 0) continue;
    seen.push({
      markdown: cell.classList.contains('jp-MarkdownCell'),
      myst: cell.querySelector('.myst') !== null,
      text: cell.innerText,
      admonitions: [...cell.querySelectorAll('.myst-admonition-header-text')]
        .map(e => e.innerText.trim()),
      links: [...cell.querySelectorAll('a')].map(a => a.innerText.trim()),
    });
  }
  return {total: cells.length, seen: seen};
}"""


@contextmanager
def lab_page(lab: LabServer, browser, path: str, shot: Path):
    """``path`` opened in JupyterLab's web page (only the server reachable); on a failure
    the page is saved as the screenshot ``shot``."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith((lab.base, "data:", "blob:"))
            else route.abort()
        ),
    )
    try:
        # A workspace of its own: JupyterLab reopens no tab of an earlier test.
        workspace = re.sub(r"\W", "-", Path(path).stem)
        page.goto(
            f"{lab.base}/lab/workspaces/{workspace}/tree/{path}?reset&token={lab.token}",
            timeout=90000,
        )
        page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=90000)
        page.wait_for_selector(f".lm-TabBar-tabLabel:has-text('{Path(path).name}')", timeout=30000)
        page.wait_for_timeout(5000)  # rendering settles; a news prompt would show by now
        yield page
    except Exception:
        page.screenshot(path=str(shot))
        raise
    finally:
        context.close()


def test_every_glueing_chapter_explains_its_placeholders_in_jupyterlab():
    """A chapter with {glue:text} roles opens with the note, which the book leaves out."""
    chapters = sorted((ROOT / "chapters").glob("*.ipynb"))
    assert chapters
    for path in chapters:
        nb = nbformat.read(path, as_version=4)
        if not any("{glue:" in c.source for c in nb.cells if c.cell_type == "markdown"):
            continue
        first = nb.cells[0]
        tags = first.metadata.get("tags", [])
        assert first.cell_type == "markdown" and GLUE_NOTE in tags, (
            f"{path.name} glues values into its text but its first cell is not the note "
            f"tagged {GLUE_NOTE!r} that tells a JupyterLab reader what the placeholders are"
        )
        assert "remove-cell" in tags, f"the book would show {path.name}'s JupyterLab note"
        assert first.source.startswith(":::{note}"), first.source


@pytest.mark.parametrize("path", FIRST_SCREENS, ids=lambda p: Path(p).stem.split("_")[0])
def test_first_screen_reads_as_myst(lab: LabServer, browser, screenshot_dir: Path, path: str):
    """What a student sees on opening a chapter or an exercise: rendered MyST, no raw syntax."""
    nb = lab.api("GET", f"/api/contents/{path}?content=1&type=notebook")["content"]
    shot = screenshot_dir / f"jupyterlab_first_screen_{Path(path).stem}.png"
    with lab_page(lab, browser, path, shot) as page:
        assert "Jupyter news" not in page.inner_text("body"), "JupyterLab asks about news"
        screen = page.evaluate(FIRST_SCREEN_JS)
        page.screenshot(path=str(shot))
        seen = screen["seen"]
        assert seen and screen["total"] >= 3, f"JupyterLab shows {screen} of {path}"
        markdown = [c for c in seen if c["markdown"]]
        assert markdown, f"no Markdown cell on the first screen of {path}"
        # The first screen shows the notebook's first cells, in order.
        sources = ["".join(c["source"]) for c in nb["cells"][: len(seen)]]
        kinds = [c["cell_type"] == "markdown" for c in nb["cells"][: len(seen)]]
        assert kinds == [c["markdown"] for c in seen], (kinds, seen)
        shown = "\n".join(c["text"] for c in markdown)
        for cell, source in zip(seen, sources, strict=True):
            if not cell["markdown"]:
                continue
            assert cell["myst"], (
                f"a Markdown cell of {path} is not rendered by jupyterlab-myst (is the "
                f"extension installed and enabled? `jupyter labextension list`):\n{source[:300]}"
            )
            raw = RAW_MYST.findall(cell["text"])
            assert not raw, f"{path} shows raw MyST {raw} to a student:\n{cell['text'][:800]}"
            titles = [
                title.strip() or name.capitalize()
                for name, title in DIRECTIVE.findall(source)
                if name in ADMONITIONS
            ]
            for title in titles:
                assert title in cell["admonitions"], (
                    f"the admonition {title!r} of {path} is not shown as one: "
                    f"{cell['admonitions']}\n{cell['text'][:500]}"
                )
            for text, _target in NOTEBOOK_LINK.findall(source):
                assert text in cell["links"], f"no link {text!r} in {cell['links']}"
        if any("{glue:" in s for s in sources):
            assert "Reading this notebook in JupyterLab?" in shown, (
                f"{path} shows glue placeholders without the note that explains them"
            )
        # A link to another notebook opens it in JupyterLab (a new tab), as in the book.
        links = [m for s in sources for m in NOTEBOOK_LINK.findall(s)]
        if links:
            text, target = links[0]
            name = Path(target).name
            page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) a", has_text=text).first.click()
            page.wait_for_selector(f".lm-TabBar-tabLabel:has-text('{name}')", timeout=30000)
            assert page.url.startswith(f"{lab.base}/lab"), f"the link left JupyterLab: {page.url}"
            page.wait_for_timeout(2000)
            page.screenshot(path=str(shot.with_name(f"{shot.stem}_link.png")))
    # Control: the first screen has something to get wrong (MyST syntax or a notebook link).
    assert any(RAW_MYST.search(s) or NOTEBOOK_LINK.search(s) for s in sources), (
        f"the first screen of {path} has no MyST syntax and no link: the test shows nothing"
    )
