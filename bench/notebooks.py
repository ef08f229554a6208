"""Execute the course's notebooks and print their times against the CPU budget.

Budget (issue 15), on an idle 2-core machine: no cell over 100 s, no notebook over 150 s,
the whole book -- the chapters and the student exercises of ``_toc.yml`` -- in at most
12 minutes; the instructor notebooks in ``solutions/`` are measured too when asked for.
For every notebook the script prints its wall-clock time, the CPU time of its kernel
(all threads and child processes; on an idle machine TensorFlow keeps both cores busy, so
CPU time exceeds wall-clock time; when the two are about equal, something else competed
for the cores) and its slowest cell. This script measures; it asserts nothing, but its
exit status is 1 when a notebook failed or a budget was missed.

``--cores N`` runs the notebooks on only the first N CPU cores (the kernel inherits the
affinity, as ``taskset -c 0`` would set it): ``--cores 1`` on the 2-core machine is the
proof of headroom, "the book still builds with half the CPU". With fewer cores the wall-clock
budgets scale by the share of the cores taken away (one core of two: twice the time).

Usage::

    python bench/notebooks.py                      # the book: chapters and exercises
    python bench/notebooks.py --cores 1            # the same on one core (headroom)
    python bench/notebooks.py --all                # also solutions/
    python bench/notebooks.py chapters/05b*        # some notebooks
    ./dev.sh bench --cores 1                       # the same through dev.sh
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil
import yaml
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
CELL_LIMIT_S = 100.0
NOTEBOOK_LIMIT_S = 150.0
BOOK_LIMIT_S = 12 * 60.0
IDLE_CORES = 2  # the budgets are for an idle 2-core machine
TIMEOUT_S = 600  # a hung cell ends the notebook's run; the budget is reported, not enforced


@dataclass
class Run:
    """What executing one notebook measured."""

    name: str
    wall_s: float = 0.0
    cpu_s: float = 0.0
    status: str = "ok"
    cells: list[tuple[int, float, float]] = field(default_factory=list)  # (index, wall, cpu)

    @property
    def slowest(self) -> tuple[int, float, float]:
        return max(self.cells, key=lambda c: c[1], default=(0, 0.0, 0.0))


def display_name(path: Path) -> str:
    """The path relative to the repository when it is inside it, else as given."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def book_notebooks() -> list[Path]:
    """The notebooks of ``_toc.yml`` (chapters and exercises), in the book's order."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from executed_notebooks import toc_files

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    return [ROOT / f"{e}.ipynb" for e in toc_files(toc) if (ROOT / f"{e}.ipynb").exists()]


def _kernel_cpu_s(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    try:
        times = process.cpu_times()
    except psutil.Error:
        return 0.0
    return times.user + times.system + times.children_user + times.children_system


def execute(path: Path, timeout: int = TIMEOUT_S) -> Run:
    """Execute one notebook in its own folder, timing every code cell."""
    run = Run(display_name(path))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    state: dict = {"process": None}

    def kernel() -> psutil.Process | None:
        if state["process"] is None:
            pid = getattr(getattr(client.km, "provisioner", None), "pid", None)
            state["process"] = psutil.Process(pid) if pid else None
        return state["process"]

    def on_start(cell, cell_index):  # noqa: ANN001 - nbclient's hook signature
        state["start"] = (time.perf_counter(), _kernel_cpu_s(kernel()))

    def on_done(cell, cell_index, execute_reply=None):  # noqa: ANN001
        wall0, cpu0 = state.pop("start", (time.perf_counter(), 0.0))
        run.cells.append(
            (cell_index + 1, time.perf_counter() - wall0, _kernel_cpu_s(kernel()) - cpu0)
        )

    client.on_cell_execute = on_start
    client.on_cell_executed = on_done
    start = time.perf_counter()
    try:
        client.execute()
    except Exception as exc:  # report and go on: a bench measures, it does not stop
        run.status = f"error: {type(exc).__name__}"
    run.wall_s = time.perf_counter() - start
    run.cpu_s = sum(c[2] for c in run.cells)
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: the book's notebooks")
    parser.add_argument("--all", action="store_true", help="also the notebooks in solutions/")
    parser.add_argument(
        "--cores", type=int, default=0, help="run on the first N CPU cores only (0: all)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("PYTHONHASHSEED", "0")
    os.environ.setdefault("MPLBACKEND", "Agg")

    available = sorted(os.sched_getaffinity(0))
    if args.cores:
        if not 0 < args.cores <= len(available):
            parser.error(f"--cores must be between 1 and {len(available)}")
        os.sched_setaffinity(0, available[: args.cores])  # the kernels inherit it
    cores = len(os.sched_getaffinity(0))
    scale = max(1.0, IDLE_CORES / cores)  # one core of two: twice the wall-clock budget

    paths = [p.resolve() for p in args.notebooks] or book_notebooks()
    if args.all and not args.notebooks:
        paths += sorted((ROOT / "solutions").glob("*.ipynb"))
    limits = (CELL_LIMIT_S * scale, NOTEBOOK_LIMIT_S * scale, BOOK_LIMIT_S * scale)
    print(
        f"{len(paths)} notebooks on {cores} CPU core(s); budget: cell <= {limits[0]:.0f} s, "
        f"notebook <= {limits[1]:.0f} s, book <= {limits[2]:.0f} s"
        + (f" (the idle 2-core budget x {scale:g})" if scale > 1 else "")
    )
    width = max(len(display_name(p)) for p in paths)
    print(f"{'notebook':<{width}}  {'wall s':>7}  {'CPU s':>7}  {'slowest cell':>18}  status")
    runs, missed = [], []
    for path in paths:
        run = execute(path)
        runs.append(run)
        index, cell_wall, cell_cpu = run.slowest
        flags = []
        if run.wall_s > limits[1]:
            flags.append(f"NOTEBOOK OVER {limits[1]:.0f} s")
        if cell_wall > limits[0]:
            flags.append(f"CELL OVER {limits[0]:.0f} s")
        missed += [f"{run.name}: {f}" for f in flags]
        slowest = f"#{index}: {cell_wall:5.1f} s/{cell_cpu:5.1f}"
        print(
            f"{run.name:<{width}}  {run.wall_s:7.1f}  {run.cpu_s:7.1f}  {slowest:>18}  "
            f"{run.status}{'  ' + ', '.join(flags) if flags else ''}",
            flush=True,
        )
    total = sum(r.wall_s for r in runs)
    book = sum(r.wall_s for r in runs if not r.name.startswith("solutions/"))
    print(f"{'total':<{width}}  {total:7.1f}  {sum(r.cpu_s for r in runs):7.1f}")
    if book > limits[2]:
        missed.append(f"the book: {book:.0f} s > {limits[2]:.0f} s")
    failed = [r.name for r in runs if r.status != "ok"]
    verdict = "budgets met" if not missed and not failed else "budgets NOT met"
    print(
        f"book (chapters + exercises) {book:.0f} s of {limits[2]:.0f} s on {cores} core(s): "
        f"{verdict}" + "".join(f"\n  - {m}" for m in missed + [f"{f} failed" for f in failed])
    )
    return 0 if not missed and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
