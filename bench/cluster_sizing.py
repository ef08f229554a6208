"""Seconds per submission for each exercise, and the cluster size a class needs.

Grades each exercise's reference solution (full marks, so every task runs to the end: the
slowest honest submission) ``--repeat`` times in one sandboxed worker, as ``cnncourse grade``
does, and prints the worker's start-up and the best wall-clock seconds per submission, with
the load average before and after (other work on the machine inflates wall time). Then the
sizing table of instructors/grading.md: for a class of S students on M machines of C cores
each (one worker per core, ``--jobs C``), the expected wall time of ``contrib/slurm`` or
``contrib/kubernetes`` is ``ceil(S / M / C) * seconds per submission + worker start-up``.

The figures depend on the machine and on what else runs on it: say where they come from.

Usage::

    python bench/cluster_sizing.py                   # every exercise, 2 repeats
    python bench/cluster_sizing.py ex01 ex02 --repeat 3 --cores 2
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from cnncourse.grading.assignment import find_template, grading_limits, load_assignment
from cnncourse.grading.grader import grade_file
from cnncourse.grading.sandbox import Worker

ROOT = Path(__file__).resolve().parent.parent
CLASSES = (50, 200, 1000)
MACHINES = (1, 4, 16)


def measure(name: str, repeat: int) -> dict[str, float]:
    """Start-up and per-submission wall seconds of grading ``name``'s solution."""
    solution = sorted((ROOT / "solutions").glob(f"{name}_*.ipynb"))[0]
    template, _ = find_template(name)
    assignment = load_assignment(name, template)
    limits = grading_limits(name)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        worker = Worker(limits, hide=[tmp])
        worker.start()
        startup = time.perf_counter() - started
        try:
            walls = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                result = grade_file(solution, assignment, worker, "solution")
                walls.append(time.perf_counter() - t0)
                if result.total != assignment.max_points:
                    raise SystemExit(f"{name}: the solution earned {result.total}: {result.reason}")
        finally:
            worker.close()
    return {"startup": startup, "wall": min(walls)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exercises", nargs="*", help="default: every exercise in solutions/")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--cores", type=int, default=2, help="cores per machine (default 2)")
    args = parser.parse_args(argv)
    names = args.exercises or sorted(
        p.name.split("_")[0] for p in (ROOT / "solutions").glob("ex*.ipynb")
    )
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    print(f"{'exercise':<10}{'start-up s':>12}{'wall s/sub':>12}")
    figures = {}
    for name in names:
        try:
            figures[name] = measure(name, args.repeat)
        except Exception as exc:  # one broken exercise must not hide the others' figures
            print(f"{name:<10}failed: {type(exc).__name__}: {exc}", flush=True)
            continue
        f = figures[name]
        print(f"{name:<10}{f['startup']:>12.2f}{f['wall']:>12.2f}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    c = args.cores
    print(f"\nexpected wall time (minutes), {c} workers per machine; columns: machines")
    print(f"{'exercise':<10}{'students':>9}" + "".join(f"{m:>9}" for m in MACHINES))
    for name, f in figures.items():
        for s in CLASSES:
            cells = [
                (math.ceil(s / m / c) * f["wall"] + f["startup"]) / 60 for m in MACHINES
            ]
            print(f"{name:<10}{s:>9}" + "".join(f"{x:>9.1f}" for x in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
