"""What is graded: an exercise's tasks, its pristine student notebook, and a version stamp.

The *template* is the generated student notebook (``exercises/exNN_<topic>.ipynb``; when it
is missing, the student version is generated on the fly from ``solutions/``). From it the
grader takes the order of the task cells, the name of the function each task asks for (from
its check cell ``check("exNN.name", name)``) and the imports of the setup cell (all but
``cnncourse``, whose modules of :data:`~cnncourse.notebook_format.SANDBOX_MODULES` the
grader provides in its sandbox from their source) and the course's example cells (which
the grader does not run unchanged).
The cases, limits and artifacts come from the exercise its task module declares
(:class:`cnncourse.exercise.Exercise`).

Examples
--------
>>> a = load_assignment("ex01")
>>> [t.function for t in a.tasks]
['dense_params', 'conv_params', 'shift_images']
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import inspect
from dataclasses import dataclass, field
from pathlib import Path

from cnncourse import notebook_format as fmt
from cnncourse.exercise import Task
from cnncourse.grading.artifacts import ArtifactSpec
from cnncourse.grading.static import check_answer, function_names
from cnncourse.grading.submission import read_notebook

__all__ = [
    "Assignment",
    "AssignmentError",
    "GradedTask",
    "find_template",
    "load_assignment",
    "sandbox_source",
]

#: Part of every assignment's version; the sources of the modules that decide a grade are
#: the rest (:func:`rule_modules`). Bump it when grades change for another reason.
GRADER_VERSION = "3"
#: The grader's own rules: what runs of a notebook, how it is checked and scored.
_GRADING_RULES = (
    "cnncourse.exercise",
    "cnncourse.notebook_format",
    "cnncourse.grading.grader",
    "cnncourse.grading.submission",
    "cnncourse.grading.static",
)
CHECK_CALL = fmt.CHECK_CALL


class AssignmentError(ValueError):
    """The assignment itself is inconsistent (an instructor error, not a student's)."""


@dataclass(frozen=True)
class GradedTask:
    """One task as graded: the registry's task, its function name, its template cell."""

    task: Task
    function: str
    template_source: str
    artifact: ArtifactSpec | None = None

    @property
    def id(self) -> str:
        return self.task.id


@dataclass(frozen=True)
class Assignment:
    """An exercise ready to grade."""

    name: str
    tasks: list[GradedTask]
    preamble: str
    version: str
    template: Path | None = None
    notes: list[str] = field(default_factory=list)
    given: frozenset[str] = frozenset()  # normalised sources of the course's example cells

    @property
    def max_points(self) -> float:
        return float(sum(t.task.points for t in self.tasks))

    @property
    def functions(self) -> dict[str, str]:
        return {t.id: t.function for t in self.tasks}


def find_template(name: str, root: Path | None = None) -> tuple[Path, bytes]:
    """The student notebook of exercise ``name`` (generated from ``solutions/`` if needed).

    Without ``root``: the copy of ``exercises/`` an installed wheel carries
    (``cnncourse/_exercises``), else the repository holding the package (editable install).
    """
    if root is None:
        import cnncourse

        package = Path(cnncourse.__file__).resolve().parent
        packaged = sorted((package / "_exercises").glob(f"{name}_*.ipynb"))
        if packaged:
            return packaged[0], packaged[0].read_bytes()
        root = package.parent
    for folder in ("exercises", "solutions"):
        matches = sorted((root / folder).glob(f"{name}_*.ipynb"))
        if not matches:
            continue
        path = matches[0]
        if folder == "exercises":
            return path, path.read_bytes()
        import nbformat

        from cnncourse.assign import make_student_notebook

        student = make_student_notebook(nbformat.read(path, as_version=4), name=str(path))
        return path, nbformat.writes(student).encode()
    raise AssignmentError(
        f"no notebook for {name!r} in {root / 'exercises'} or {root / 'solutions'}; pass --template"
    )


#: Defines, in the sandbox, a fresh module from a course module's source (one of
#: :data:`cnncourse.notebook_format.SANDBOX_MODULES`) and returns the names asked for.
_PROVIDE = """\
def _cnncourse_provide(name, source, names):
    import types

    module = types.ModuleType(name)
    exec(compile(source, "<" + name + ">", "exec"), module.__dict__)
    return [module.__dict__[n] for n in names]
"""


def sandbox_source(module: str) -> str:
    """The source of a course module the grader provides in its sandbox, checked.

    Raises
    ------
    AssignmentError
        If ``module`` is not in :data:`~cnncourse.notebook_format.SANDBOX_MODULES`, or its
        source imports the course package (it would fail in the sandbox, which hides it).

    Examples
    --------
    >>> "def describe_model(" in sandbox_source("cnncourse.describe")
    True
    """
    if module not in fmt.SANDBOX_MODULES:
        raise AssignmentError(
            f"{module} is not provided in the grader's sandbox (notebook_format.SANDBOX_MODULES)"
        )
    source = inspect.getsource(importlib.import_module(module))
    problems = check_answer(source)
    if problems:
        raise AssignmentError(f"{module} cannot run in the grader's sandbox: {'; '.join(problems)}")
    return source


def _exports(source: str) -> set[str]:
    """The names a module's ``__all__`` lists (a literal list or tuple)."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return set(ast.literal_eval(node.value))
    return set()


def _provide(node: ast.ImportFrom) -> str:
    """The preamble's stand-in for ``from <sandbox module> import names``."""
    module = node.module or ""
    source = sandbox_source(module)
    exported = _exports(source)
    unknown = [a.name for a in node.names if a.name not in exported]
    if unknown:
        raise AssignmentError(
            f"the setup cell imports {', '.join(unknown)} from {module}, which exports "
            f"{', '.join(sorted(exported))} (import names, not *)"
        )
    targets = ", ".join(a.asname or a.name for a in node.names)
    names = [a.name for a in node.names]
    return f"{targets}, = _cnncourse_provide({module!r}, {source!r}, {names!r})"


def _preamble(cells: list[dict]) -> str:
    """What the worker runs before a submission's cells: the setup cell's imports.

    The import statements of the code cells before the first task, in order. Imports of
    the course package are left out (the sandbox hides it), except ``from <module> import
    names`` of a module of :data:`~cnncourse.notebook_format.SANDBOX_MODULES`: it becomes
    code that runs that module's source in a fresh module object and binds exactly those
    names, so the student's kernel and the grader's sandbox run the same code.

    Examples
    --------
    >>> cells = [{"cell_type": "code", "metadata": {}, "source":
    ...           "import keras\\nfrom cnncourse.checking import check\\n"
    ...           "from cnncourse.describe import describe_model as describe"}]
    >>> text = _preamble(cells)
    >>> [line for line in text.splitlines() if line.startswith("import")]
    ['import numpy as np', 'import keras']
    >>> namespace = {}
    >>> exec(text, namespace)
    >>> namespace["describe"].__name__, "describe_layers" in namespace, "check" in namespace
    ('describe_model', False, False)
    """
    lines = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        if fmt.task_id(cell) is not None:
            break
        try:
            tree = ast.parse(cell["source"])
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                names = [a for a in node.names if a.name.split(".")[0] != "cnncourse"]
                provided = [a.name for a in node.names if a.name in fmt.SANDBOX_MODULES]
                if provided:
                    raise AssignmentError(
                        f"write `from {provided[0]} import <names>` in the setup cell: the "
                        "grader's sandbox provides names of it, not the package"
                    )
                if names:
                    lines.append(ast.unparse(ast.Import(names=names)))
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level == 0 and module in fmt.SANDBOX_MODULES:
                    lines.append(_provide(node))
                elif module.split(".")[0] not in ("cnncourse", "__future__"):
                    lines.append(ast.unparse(node))
    if "import numpy as np" not in lines:
        lines.insert(0, "import numpy as np")
    if any("= _cnncourse_provide(" in line for line in lines):
        lines = [_PROVIDE, *lines, "del _cnncourse_provide"]
    return "\n".join(lines)


def rule_modules(task_module: str | None = None) -> list[str]:
    """The course modules whose source decides a grade, in a fixed order.

    The grader's rules (:data:`_GRADING_RULES`) and, for an exercise, its task module with
    every course module it imports, directly or through others (the comparing toolkits, the
    reference operations the expected outputs come from). A change in any of them changes
    the assignment's version, so cached results are graded again.

    Examples
    --------
    >>> modules = rule_modules("cnncourse.tasks.ex04")
    >>> "cnncourse.tasks.keras_models" in modules and "cnncourse.describe" in modules
    True
    """
    found: set[str] = set(_GRADING_RULES)
    todo = [task_module] if task_module else []
    while todo:
        module = todo.pop()
        found.add(module)
        try:
            tree = ast.parse(inspect.getsource(importlib.import_module(module)))
        except (ImportError, OSError, TypeError):
            continue
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if name.split(".")[0] == "cnncourse" and _is_module(name) and name not in found:
                    todo.append(name)
    return sorted(found)


def _is_module(name: str) -> bool:
    """Whether ``name`` is an importable course module (not the package, not a function)."""
    if "." not in name:
        return False
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:  # "cnncourse.ops.conv2d": ops is not a package
        return False


def load_assignment(
    name: str,
    template: str | Path | None = None,
    tasks: list[Task] | None = None,
    artifacts: dict[str, ArtifactSpec] | None = None,
) -> Assignment:
    """Load exercise ``name`` (``"ex01"``): its tasks, template and version stamp.

    Parameters
    ----------
    name : str
        The exercise, as in ``cnncourse/tasks/<name>.py``.
    template : path, optional
        The student notebook; by default ``exercises/<name>_*.ipynb`` of the project.
    tasks, artifacts : optional
        Override the registry (tests use this for made-up tasks).

    Raises
    ------
    AssignmentError
        When the template and the task registry disagree.
    """
    digest = hashlib.sha256(GRADER_VERSION.encode())
    if tasks is None:
        from cnncourse.tasks import tasks_for

        try:
            tasks = tasks_for(name)
        except KeyError as exc:
            raise AssignmentError(str(exc.args[0])) from exc
        from cnncourse.tasks import exercise

        declared = exercise(name)
        artifacts = dict(declared.artifacts) if artifacts is None else artifacts
        modules = rule_modules(f"cnncourse.tasks.{name}")
    else:
        digest.update(repr([(t.id, t.points) for t in tasks]).encode())
        modules = rule_modules()
    for module in modules:
        digest.update(inspect.getsource(importlib.import_module(module)).encode())
    if template is None:
        path, data = find_template(name)
    else:
        path = Path(template)
        data = path.read_bytes()
    digest.update(data)
    cells, _ = read_notebook(data)
    checks: dict[str, str] = {}
    task_cells: dict[str, str] = {}
    order: list[str] = []
    given: set[str] = set()
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        task_id = fmt.task_id(cell)
        if task_id is not None:
            task_cells[task_id] = cell["source"]
            order.append(task_id)
        elif order and fmt.check_id(cell) is None and not fmt.check_calls(cell["source"]):
            given.add("\n".join(line.rstrip() for line in cell["source"].strip().splitlines()))
        for task_id, fn in fmt.check_calls(cell["source"]):
            checks.setdefault(task_id, fn)
    registry = {t.id: t for t in tasks}
    missing = [t for t in registry if t not in task_cells]
    unknown = [t for t in order if t not in registry]
    if missing or unknown:
        raise AssignmentError(
            f"template {path} and cnncourse.tasks disagree: tasks without a cell {missing}, "
            f"cells without a task {unknown}"
        )
    graded = []
    for task_id in dict.fromkeys(order):
        fn = checks.get(task_id)
        if fn is None:
            defined = function_names(task_cells[task_id])
            if not defined:
                raise AssignmentError(f"template task cell {task_id} defines no function")
            fn = defined[-1]
        graded.append(
            GradedTask(registry[task_id], fn, task_cells[task_id], (artifacts or {}).get(task_id))
        )
    preamble = _preamble(cells)
    digest.update(preamble.encode())  # the source of the modules it provides included
    return Assignment(
        name,
        graded,
        preamble,
        digest.hexdigest()[:16],
        path,
        given=frozenset(given),
    )


def grading_limits(exercise: str, **overrides: float | int | None):
    """The :class:`~cnncourse.grading.sandbox.Limits` to grade ``exercise`` with.

    An exercise may raise the defaults with its declared ``limits`` (a dict of ``Limits``
    fields): tasks that import TensorFlow need more memory, time and threads than NumPy
    tasks. Explicit ``overrides`` that are not ``None`` (the command-line flags) win.

    Examples
    --------
    >>> grading_limits("ex01").timeout_s
    10.0
    >>> grading_limits("ex01", timeout_s=3.0).timeout_s
    3.0
    """
    from cnncourse.grading.sandbox import Limits
    from cnncourse.tasks import exercise as declared

    values = dict(declared(exercise).limits)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Limits(**values)
