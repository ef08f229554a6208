"""The package as a course team installs it: declared dependencies, version, wheel contents.

The fast tests read the sources; ``test_wheel_in_a_clean_venv`` (slow) builds the wheel and
the sdist, installs the wheel (not editable) into a fresh virtual environment and uses it from
a folder outside the repository.
"""

from __future__ import annotations

import ast
import csv
import fnmatch
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import cnncourse
from cnncourse.cli import main

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError"}


# ---------------------------------------------------------------- declared dependencies


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """True when ``node`` sits in a ``try`` whose handlers catch ImportError."""
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.Try) and child in parent.body:
            for handler in parent.handlers:
                names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
                if any(isinstance(n, ast.Name) and n.id in IMPORT_ERRORS for n in names):
                    return True
        child, parent = parent, parents.get(parent)
    return False


def imported_modules(source: str) -> dict[str, bool]:
    """Top-level third-party modules ``source`` imports -> whether every import is optional.

    Optional means inside ``try: ... except ImportError``. Standard-library modules, relative
    imports and ``cnncourse`` itself are left out; IPython magics (``%``, ``!``) are skipped.

    Examples
    --------
    >>> imported_modules("import numpy as np\\nfrom os import path\\nimport cnncourse.ops")
    {'numpy': False}
    >>> imported_modules("try:\\n    import uvicorn\\nexcept ImportError:\\n    pass")
    {'uvicorn': True}
    """
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    tree = ast.parse("\n".join(lines))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found: dict[str, bool] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top == "cnncourse":
                continue
            found[top] = found.get(top, True) and _guarded(node, parents)
    return found


def undeclared(
    modules: dict[str, bool],
    required: set[str],
    optional: set[str],
    distributions: dict[str, list[str]],
) -> list[str]:
    """The imports of ``modules`` whose distribution is not declared (messages).

    A module imported unconditionally needs a required dependency; one imported only under
    ``except ImportError`` may come from an extra instead. A module no installed distribution
    provides is taken to come from the distribution of the same name.

    Examples
    --------
    >>> undeclared({"yaml": False}, {"numpy"}, set(), {"yaml": ["PyYAML"]})
    ['yaml (distribution pyyaml) is imported but not declared in [project] dependencies']
    >>> undeclared({"uvicorn": True}, set(), {"uvicorn"}, {})
    []
    """
    problems = []
    for module, is_optional in sorted(modules.items()):
        dists = {canonicalize_name(d) for d in distributions.get(module, [module])}
        allowed = required | optional if is_optional else required
        if not dists & allowed:
            where = "dependencies or an extra" if is_optional else "[project] dependencies"
            problems.append(
                f"{module} (distribution {', '.join(sorted(dists))}) is imported but not "
                f"declared in {where}"
            )
    return problems


def _declared() -> tuple[set[str], set[str]]:
    project = PYPROJECT["project"]
    required = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    optional = {
        canonicalize_name(Requirement(r).name)
        for extra in project.get("optional-dependencies", {}).values()
        for r in extra
    }
    return required, optional


def _sources() -> dict[str, str]:
    """The package's modules and the notebooks a student runs with the installed package."""
    sources = {str(p.relative_to(ROOT)): p.read_text() for p in (ROOT / "cnncourse").rglob("*.py")}
    for folder in ("chapters", "exercises"):
        for nb in sorted((ROOT / folder).glob("*.ipynb")):
            cells = json.loads(nb.read_text())["cells"]
            code = [c["source"] for c in cells if c["cell_type"] == "code"]
            sources[str(nb.relative_to(ROOT))] = "\n".join(
                "".join(c) if isinstance(c, list) else c for c in code
            )
    return sources


def test_the_dependency_check_catches_an_undeclared_import():
    modules = imported_modules("import numpy\ndef f():\n    import sklearn.metrics\n")
    assert modules == {"numpy": False, "sklearn": False}
    problems = undeclared(modules, {"numpy"}, set(), {"sklearn": ["scikit-learn"]})
    assert problems == [
        "sklearn (distribution scikit-learn) is imported but not declared in "
        "[project] dependencies"
    ]
    # An extra does not cover an unconditional import.
    assert undeclared(modules, {"numpy"}, {"scikit-learn"}, {"sklearn": ["scikit-learn"]})


def test_every_imported_distribution_is_declared():
    required, optional = _declared()
    distributions = importlib.metadata.packages_distributions()
    problems = []
    for name, source in _sources().items():
        for problem in undeclared(imported_modules(source), required, optional, distributions):
            problems.append(f"{name}: {problem}")
    assert not problems, "\n".join(problems)


def test_requirements_txt_pins_what_pyproject_declares():
    """requirements.txt (the developer install) carries every run-time dependency too."""
    pinned = {
        canonicalize_name(Requirement(line.split("#")[0].strip()).name)
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.split("#")[0].strip() and not line.lstrip().startswith(("-", "#"))
    }
    required, _ = _declared()
    assert required <= pinned, f"missing from requirements.txt: {sorted(required - pinned)}"


# ---------------------------------------------------------------- version and contents


def test_version_option(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"cnncourse {cnncourse.__version__}"
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "cnncourse.__version__"
    }


def _package_data_patterns() -> dict[str, list[str]]:
    return PYPROJECT["tool"]["setuptools"].get("package-data", {})


def test_every_package_folder_and_data_file_is_listed():
    """Each folder of cnncourse/ with an __init__.py is a listed package, each data file matched."""
    setuptools_cfg = PYPROJECT["tool"]["setuptools"]
    listed = set(setuptools_cfg["packages"])
    inits = (ROOT / "cnncourse").rglob("__init__.py")
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in inits}
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"
    patterns = _package_data_patterns()
    unlisted = []
    for path in (ROOT / "cnncourse").rglob("*"):
        if path.is_dir() or path.suffix in {".py", ".pyc"} or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(ROOT)
        ok = any(
            fnmatch.fnmatch(rel.relative_to(*pkg.split(".")).as_posix(), pat)
            for pkg, pats in patterns.items()
            if rel.is_relative_to(Path(*pkg.split(".")))
            for pat in pats
        )
        if not ok:
            unlisted.append(str(rel))
    assert not unlisted, f"data files no package-data pattern ships: {unlisted}"


# ---------------------------------------------------------------- the wheel, installed for real


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n"
        f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    """The wheel and the sdist built from this checkout; the wheel installed in a fresh venv."""
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)])
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, list(dist.iterdir())
    target = base / "venv"
    venv.create(target, with_pip=True, clear=True)
    python = target / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", str(wheels[0])])
    return {"wheel": wheels[0], "sdist": sdists[0], "venv": target, "python": python}


def _outside_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="3", PYTHONHASHSEED="0")
    return env


@pytest.mark.slow
def test_wheel_and_sdist_carry_the_run_time_files(wheel_venv):
    names = set(zipfile.ZipFile(wheel_venv["wheel"]).namelist())
    templates = {f"cnncourse/_exercises/{p.name}" for p in (ROOT / "exercises").glob("*.ipynb")}
    modules = {
        p.relative_to(ROOT).as_posix() for p in (ROOT / "cnncourse").rglob("*.py")
    }
    assert templates and templates <= names, sorted(templates - names)
    assert modules <= names, sorted(modules - names)
    assert not any(n.startswith(("solutions/", "cnncourse/_solutions")) for n in names)
    with tarfile.open(wheel_venv["sdist"]) as sdist:
        members = {m.split("/", 1)[1] for m in sdist.getnames() if "/" in m}
    assert {f"exercises/{p.name}" for p in (ROOT / "exercises").glob("*.ipynb")} <= members


@pytest.mark.slow
def test_installed_wheel_grades_a_class_outside_the_repository(wheel_venv, tmp_path):
    from test_contrib import make_class  # the same small exercise-1 class

    bin_dir = wheel_venv["venv"] / "bin"
    env = _outside_env(tmp_path)
    version = _run([str(bin_dir / "cnncourse"), "--version"], cwd=tmp_path, env=env).stdout
    assert version.strip() == f"cnncourse {cnncourse.__version__}"
    where = _run(
        [str(wheel_venv["python"]), "-c", "import cnncourse; print(cnncourse.__file__)"],
        cwd=tmp_path,
        env=env,
    ).stdout.strip()
    assert Path(where).is_relative_to(wheel_venv["venv"]), where  # not this checkout
    students = make_class(tmp_path / "class")
    key = tmp_path / "instructor" / "hidden-cases.key"
    _run(
        [str(bin_dir / "cnncourse"), "grade", "class", "-a", "ex01", "-o", "out", "--no-progress",
         "--secret", str(key)],
        cwd=tmp_path,
        env=env,
    )
    rows = {r["student_id"]: r for r in csv.DictReader((tmp_path / "out" / "gradebook.csv").open())}
    assert set(rows) == students
    assert rows["alice"]["status"] == "ok" and rows["alice"]["total"] == rows["alice"]["max"]
    assert rows["bob"]["total"] == "0" and rows["dave"]["status"] == "error"
    # The same grades as the repository's own (editable) install gives with the same key.
    assert main_grade(tmp_path / "class", tmp_path / "here", key) == (
        tmp_path / "out" / "gradebook.csv"
    ).read_text()


def main_grade(subs: Path, out: Path, key: Path) -> str:
    from cnncourse.cli import main as cli

    args = ["grade", str(subs), "-a", "ex01", "-o", str(out), "--no-progress", "--secret", str(key)]
    assert cli(args) == 0
    return (out / "gradebook.csv").read_text()


EXECUTE = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, timeout=600, kernel_name="python3",
               resources={"metadata": {"path": "."}}).execute()
print("executed", sys.argv[1])
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "notebook", ["chapters/01_why_cnns.ipynb", "exercises/ex02_convolution.ipynb"]
)
def test_installed_wheel_runs_a_chapter_and_an_exercise(wheel_venv, tmp_path, notebook):
    """Copied out of the repository, the notebook runs with nothing but the installed wheel."""
    copy = tmp_path / Path(notebook).name
    shutil.copy(ROOT / notebook, copy)
    result = _run(
        [str(wheel_venv["python"]), "-c", EXECUTE, copy.name],
        cwd=tmp_path,
        env=_outside_env(tmp_path),
        timeout=900,
    )
    assert f"executed {copy.name}" in result.stdout


def test_notebooks_do_not_reach_into_the_repository_through_the_package():
    """With the wheel installed, ``cnncourse.__file__`` is in site-packages: a chapter that
    finds ``bench/`` or ``solutions/`` from it breaks (what chapters 2 and 9 once did)."""
    offenders = [
        name
        for name, source in _sources().items()
        if name.endswith(".ipynb") and "cnncourse.__file__" in source
    ]
    assert offenders == []
