"""Repository hygiene: stripped notebooks, a complete table of contents, honest CI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIRS = ("chapters", "exercises", "solutions")
NOTEBOOKS = sorted(p for d in NOTEBOOK_DIRS for p in (ROOT / d).glob("*.ipynb"))


def test_there_are_notebooks_in_every_folder():
    for folder in NOTEBOOK_DIRS:
        assert list((ROOT / folder).glob("*.ipynb")), f"{folder}/ has no notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_notebooks_carry_no_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"cell {index} has outputs: strip them"
            assert cell.get("execution_count") is None, f"cell {index} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebooks_use_the_python3_kernel(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def _toc_files() -> set[str]:
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from executed_notebooks import toc_files

    return set(toc_files(yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))))


def test_every_chapter_and_exercise_is_in_the_table_of_contents():
    toc = _toc_files()
    for folder in ("chapters", "exercises"):
        for path in (ROOT / folder).glob("*.ipynb"):
            assert f"{folder}/{path.stem}" in toc, f"{folder}/{path.name} is not in _toc.yml"
    assert not any(entry.startswith("solutions/") for entry in toc), "solutions must stay out"


def test_every_toc_entry_exists():
    for entry in _toc_files():
        assert any((ROOT / f"{entry}{ext}").exists() for ext in (".ipynb", ".md")), entry


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"^(\./dev\.sh \w+)$", readme, flags=re.MULTILINE)
    assert "./dev.sh test" in commands and "./dev.sh book" in commands
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1].strip() == "./dev.sh test"


def test_bibliography_has_the_cited_papers():
    bib = (ROOT / "references.bib").read_text(encoding="utf-8")
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    assert {
        "lecun1998gradient",
        "krizhevsky2012imagenet",
        "simonyan2014very",
        "szegedy2015going",
        "he2016deep",
        "selvaraju2017grad",
        "xiao2017fashion",
    } <= keys
    for path in NOTEBOOKS:
        for key in re.findall(r"\{cite[:\w]*\}`([^`]+)`", path.read_text(encoding="utf-8")):
            for k in key.split(","):
                assert k.strip() in keys, f"{path.name} cites unknown key {k}"


_FIGURE_START = re.compile(r"^(?P<fence>:{3,}|`{3,})\{(?:glue:)?figure\}\s*(?P<arg>\S*)\s*$")


def _figure_directives(markdown: str) -> list[tuple[str, dict[str, str], str]]:
    """(argument, options, caption) of every ``{figure}`` / ``{glue:figure}`` directive."""
    found = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        start = _FIGURE_START.match(lines[i].strip())
        if not start:
            i += 1
            continue
        fence, options, body = start["fence"], {}, []
        i += 1
        while i < len(lines) and re.match(r"^:\w[\w-]*:", lines[i].strip()):
            key, _, value = lines[i].strip()[1:].partition(":")
            options[key] = value.strip()
            i += 1
        while i < len(lines) and lines[i].strip() != fence:
            body.append(lines[i])
            i += 1
        found.append((start["arg"], options, " ".join(body).strip()))
        i += 1
    return found


BOOK_NOTEBOOKS = [p for p in NOTEBOOKS if p.parent.name in ("chapters", "exercises")]


@pytest.mark.parametrize("path", BOOK_NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_figure_has_alt_text_and_a_caption(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        for arg, options, caption in _figure_directives(text):
            where = f"cell {index}, figure {arg or '(unnamed)'}"
            assert len(options.get("alt", "")) >= 20, f"{where}: no :alt: text worth reading"
            assert caption, f"{where}: no caption"
        for alt in re.findall(r"!\[([^\]]*)\]\(", text):
            assert alt.strip(), f"cell {index}: a Markdown image without alt text"


def test_the_figure_parser_finds_a_missing_alt_and_caption():
    ok = ":::{glue:figure} fig-a\n:alt: A histogram of pixel values of the digits\n\nCaption.\n:::"
    bad = "```{figure} pic.png\n:name: fig-b\n```"
    assert _figure_directives(ok) == [
        ("fig-a", {"alt": "A histogram of pixel values of the digits"}, "Caption.")
    ]
    assert _figure_directives(bad) == [("pic.png", {"name": "fig-b"}, "")]
