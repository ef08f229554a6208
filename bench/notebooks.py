"""Execute every notebook of the course and print its wall time, to keep the CPU budget.

Budget (the foundation issue): the whole course -- every notebook in ``chapters/``,
``exercises/`` and ``solutions/`` -- in at most 20 minutes on 2 CPU cores, and no notebook
over 300 seconds. This script measures; it asserts nothing.

Usage::

    python bench/notebooks.py                 # every notebook
    python bench/notebooks.py chapters/01*    # some of them
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("chapters", "exercises", "solutions")
NOTEBOOK_LIMIT_S = 300.0
COURSE_LIMIT_S = 20 * 60.0


def execute(path: Path, timeout: int = NOTEBOOK_LIMIT_S) -> tuple[float, str]:
    """Execute one notebook in its own folder; return (seconds, "ok" or the error)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=int(timeout),
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    try:
        client.execute()
        status = "ok"
    except Exception as exc:  # report and go on: a bench measures, it does not stop
        status = f"error: {type(exc).__name__}"
    return time.perf_counter() - start, status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    paths = args.notebooks or sorted(p for f in FOLDERS for p in (ROOT / f).glob("*.ipynb"))
    rows = []
    width = max(len(str(p.relative_to(ROOT) if p.is_absolute() else p)) for p in paths)
    print(f"{'notebook':<{width}}  {'seconds':>8}  status")
    for path in paths:
        path = path.resolve()
        seconds, status = execute(path)
        over = "  OVER 300 s" if seconds > NOTEBOOK_LIMIT_S else ""
        name = str(path.relative_to(ROOT))
        rows.append((name, seconds, status))
        print(f"{name:<{width}}  {seconds:8.1f}  {status}{over}", flush=True)
    total = sum(s for _, s, _ in rows)
    print(
        f"{'total':<{width}}  {total:8.1f}  "
        f"({'within' if total <= COURSE_LIMIT_S else 'OVER'} the {COURSE_LIMIT_S:.0f} s budget, "
        f"{os.cpu_count()} CPU cores)"
    )
    return 0 if all(s == "ok" for _, _, s in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
