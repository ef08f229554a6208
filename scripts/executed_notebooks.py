"""Print the notebooks that the test command re-executes with nbval, one per line.

- Notebooks in the book (``_toc.yml``: chapters and student exercises) are re-executed from
  the copies the book build executed (``_build/jupyter_execute``): nbval then compares the
  cells tagged ``nbval-check-output`` with what the build printed, so a notebook that does
  not tell the same story twice fails.
- Instructor sources (``solutions/``) are not in the book; they are executed from source.

Exits non-zero, naming the notebook, when a book notebook has no executed copy (the build
did not run it) or when there is no notebook at all: the test command never passes
vacuously.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXECUTED = ROOT / "_build" / "jupyter_execute"


def toc_files(toc: dict) -> list[str]:
    """Every ``file:`` entry of a Jupyter Book ``_toc.yml``, in order."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                found.append(str(node["file"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    found.append(str(toc["root"]))
    walk(toc.get("parts", toc.get("chapters", [])))
    return found


def main() -> int:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    paths: list[Path] = []
    missing: list[str] = []
    for entry in toc_files(toc):
        source = ROOT / f"{entry}.ipynb"
        if not source.exists():
            continue  # a Markdown page
        copy = EXECUTED / f"{entry}.ipynb"
        (paths if copy.exists() else missing).append(copy if copy.exists() else entry)
    paths += sorted((ROOT / "solutions").glob("*.ipynb"))
    if missing:
        print(
            f"no executed copy of {', '.join(map(str, missing))} in {EXECUTED}: "
            "build the book first (./dev.sh book)",
            file=sys.stderr,
        )
        return 1
    if not paths:
        print("no notebooks found: refusing to pass vacuously", file=sys.stderr)
        return 1
    print("\n".join(str(p.relative_to(ROOT)) for p in paths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
