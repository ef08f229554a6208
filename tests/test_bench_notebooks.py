"""bench/notebooks.py runs and reports (it measures; nothing here asserts a time).

The budgets of issue 15 are proven by running the bench on the whole book, idle and with
``--cores 1``; this test only checks, on a tiny notebook, that the command works in both
modes and reports what it promises: wall-clock and kernel CPU time, the slowest cell, the
budgets (doubled on one core of two) and a non-zero exit when a notebook fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "notebooks.py"


def tiny(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_the_bench_reports_cells_cpu_and_budgets(tmp_path: Path):
    ok = tiny(tmp_path / "ok.ipynb", "x = 1", "sum(i * i for i in range(10**6))")
    run = bench(str(ok))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "budget: cell <= 100 s, notebook <= 150 s, book <= 720 s" in run.stdout
    assert "ok.ipynb" in run.stdout and "#2:" in run.stdout  # the slowest cell is cell 2
    assert "budgets met" in run.stdout


@pytest.mark.slow
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores to take one away")
def test_one_core_mode_pins_the_kernel_and_scales_the_budget(tmp_path: Path):
    probe = tiny(
        tmp_path / "cores.ipynb",
        "import os\nassert len(os.sched_getaffinity(0)) == 1, os.sched_getaffinity(0)",
    )
    run = bench("--cores", "1", str(probe))
    assert run.returncode == 0, run.stdout + run.stderr  # the kernel ran on one core
    assert "on 1 CPU core(s); budget: cell <= 200 s, notebook <= 300 s" in run.stdout


@pytest.mark.slow
def test_a_failing_notebook_makes_the_bench_fail(tmp_path: Path):
    bad = tiny(tmp_path / "bad.ipynb", "raise ValueError('no')")
    run = bench(str(bad))
    assert run.returncode == 1
    assert "error: CellExecutionError" in run.stdout and "budgets NOT met" in run.stdout
