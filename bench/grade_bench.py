"""Time the batch grader on a synthetic class of the NumPy convolution exercise (ex02).

Builds 100 submissions from ``solutions/ex02_convolution.ipynb`` -- correct ones, wrong ones
(the unfilled student notebook, a convolution that returns zeros) and hostile ones (an
infinite loop, ``os._exit``, a segfault, a memory bomb, a fork bomb, ``import
cnncourse.ops``, a monkeypatched ``np.allclose``, a malformed file) -- grades them with
``cnncourse grade``'s machinery and prints the seconds per submission. It also checks that
no hostile submission earned a point on the task it attacks.

Target (the grading issue): at most 0.3 s per submission on 2 cores for NumPy tasks.

It then grades the solution notebook of each Keras exercise (ex04-ex09 and ex11) once, with the
exercise's own limits, each job in its sandbox and its saved models judged in one
sandboxed evaluation process, and prints the seconds per submission (target: at most
10 s on 2 cores), the CPU seconds of the grader and of the sandboxed processes (sampled
from ``/proc``; unlike the wall time, comparable on a busy machine) and the load average.
``--skip-keras`` leaves that part out; ``--only ex04`` prints only that exercise's figure.

Usage::

    python bench/grade_bench.py              # 100 submissions, 2 workers
    python bench/grade_bench.py -n 40 -j 1
    python bench/grade_bench.py --skip-keras
    python bench/grade_bench.py --only ex04   # one Keras exercise's figure
    python bench/grade_bench.py --only ex04 --notebook submission.ipynb
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cnncourse.grading.assignment import grading_limits, load_assignment  # noqa: E402
from cnncourse.grading.gradebook import grade_class  # noqa: E402
from cnncourse.grading.sandbox import Limits  # noqa: E402

EXERCISE = "ex02"
ATTACKED = "ex02.conv2d"
HEAD = "def conv2d(x, w, b, stride, pad):\n"
HOSTILE = {
    "loop": "    while True:\n        pass",
    "os_exit": "    import os\n    os._exit(1)",
    "segfault": "    import faulthandler\n    faulthandler._sigsegv()",
    "memory": "    return np.ones(10**10)",
    "fork": "    import os\n    while True:\n        os.fork()",
    "import_ops": "    from cnncourse.ops import conv2d as ref\n"
    "    return ref(x, w, b, stride, pad)",
    "allclose": "    np.allclose = lambda *a, **k: True\n    np.isclose = np.allclose\n"
    "    return 0",
}


def _with_cell(nb: dict, task: str, source: str) -> dict:
    nb = json.loads(json.dumps(nb))
    for cell in nb["cells"]:
        if cell.get("metadata", {}).get("cnncourse", {}).get("task") == task:
            cell["source"] = source
    return nb


def build_class(folder: Path, n: int) -> dict[str, str]:
    """Write ``n`` submissions into ``folder``; return student id -> kind."""
    solution = json.loads((ROOT / "solutions" / "ex02_convolution.ipynb").read_text("utf-8"))
    stub = json.loads((ROOT / "exercises" / "ex02_convolution.ipynb").read_text("utf-8"))
    kinds: dict[str, str] = {}
    hostile = list(HOSTILE)
    for k in range(n):
        sid = f"student{k:03d}"
        slot = k % 10
        if slot < 6:
            kind, nb = "correct", solution
        elif slot == 6:
            kind, nb = "unfilled", stub
        elif slot == 7:
            kind = "wrong"
            nb = _with_cell(solution, ATTACKED, HEAD + "    return np.zeros((1, 1, 1, 1))")
        else:
            attack = hostile[(k // 10 * 2 + slot - 8) % len(hostile)]
            kind = f"hostile:{attack}"
            nb = _with_cell(solution, ATTACKED, HEAD + HOSTILE[attack])
        text = json.dumps(nb)
        if k == n - 1:
            kind, text = "hostile:malformed", text[: len(text) // 2]
        (folder / f"{sid}.ipynb").write_text(text, encoding="utf-8")
        kinds[sid] = kind
    return kinds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="submissions (default: 100)")
    parser.add_argument("-j", type=int, default=2, help="parallel workers (default: 2)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per task")
    parser.add_argument("--skip-keras", action="store_true", help="only the NumPy figure")
    parser.add_argument(
        "--only",
        metavar="EXERCISE",
        action="append",
        choices=KERAS_EXERCISES,
        help="only this Keras exercise's figure, no NumPy batch (repeatable)",
    )
    parser.add_argument(
        "--notebook",
        type=Path,
        help="with one --only: grade this notebook instead of the solution",
    )
    args = parser.parse_args(argv)
    if args.notebook and len(args.only or []) != 1:
        parser.error("--notebook needs exactly one --only EXERCISE")
    if args.only:
        return 1 if keras_figures(args.only, args.notebook) else 0
    assignment = load_assignment(EXERCISE)
    with tempfile.TemporaryDirectory(prefix="grade-bench-") as tmp:
        subs, out = Path(tmp) / "submissions", Path(tmp) / "out"
        subs.mkdir()
        kinds = build_class(subs, args.n)
        start = time.perf_counter()
        results, stats = grade_class(
            [subs],
            assignment,
            out,
            jobs=args.j,
            limits=Limits(timeout_s=args.timeout),
            progress=sys.stderr.isatty(),
            log=lambda message: None,
        )
        wall = time.perf_counter() - start
    by_kind: dict[str, list[float]] = {}
    false_credit = 0
    for r in results:
        kind = kinds[r.student]
        by_kind.setdefault(kind.split(":")[0], []).append(r.total)
        attacked = next((t for t in r.tasks if t.id == ATTACKED), None)
        if kind.startswith("hostile") and attacked is not None and attacked.points > 0:
            false_credit += 1
    print(f"exercise {EXERCISE}: {len(results)} submissions, {args.j} worker(s)")
    for kind, totals in sorted(by_kind.items()):
        print(
            f"  {kind:<10} {len(totals):>4} submissions, mean score {statistics.fmean(totals):.2f}"
            f" / {assignment.max_points:g}"
        )
    print(f"  hostile submissions with credit on the attacked task: {false_credit}")
    print(f"wall time {wall:.1f} s (includes {args.timeout:g} s per infinite loop)")
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} cores (other work inflates the times)")
    print(f"seconds per submission: {wall / max(1, len(results)):.3f} (target <= 0.3)")
    failed = 0 if args.skip_keras else keras_figures()
    return 0 if false_credit == 0 and failed == 0 else 1


KERAS_EXERCISES = ("ex04", "ex05", "ex06", "ex07", "ex08", "ex09", "ex11")


class DescendantsCPU:
    """CPU seconds of this process's descendants, sampled from ``/proc`` every 0.1 s.

    ``os.times()`` does not see them: a sandbox's processes live in their own pid
    namespace and are killed, never waited for. A process that lives less than 0.1 s is
    missed, so the figure is a slight underestimate.
    """

    def __init__(self) -> None:
        import threading

        self.seen: dict[tuple[int, str], float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.tick = os.sysconf("SC_CLK_TCK")
        self.own = 0.0

    def __enter__(self) -> DescendantsCPU:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self._sample()

    @property
    def seconds(self) -> float:
        return sum(self.seen.values())

    def _run(self) -> None:
        start = time.thread_time()
        while not self.stop.wait(0.1):
            self._sample()
        self.own = time.thread_time() - start  # the sampling's own CPU, not the grader's

    def _sample(self) -> None:
        stats = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                # after the name: state, ppid, ..., utime (12), stime (13), ..., starttime (20)
                stats[int(entry)] = (int(fields[1]), fields[19], int(fields[11]) + int(fields[12]))
        me = os.getpid()
        for pid, (ppid, start, ticks) in stats.items():
            parent, hops = ppid, 0
            while parent not in (me, 0, 1) and parent in stats and hops < 50:
                parent, hops = stats[parent][0], hops + 1
            if parent == me and pid != me:
                self.seen[(pid, start)] = ticks / self.tick


def keras_figures(names: tuple[str, ...] | list[str] = (), notebook: Path | None = None) -> int:
    """Grade each Keras exercise's solution once; print its seconds; count wrong grades."""
    print("Keras exercises: the solution notebook graded once each, in the sandbox")
    wrong = 0
    for name in names or KERAS_EXERCISES:
        solution = notebook or next(
            iter(sorted((ROOT / "solutions").glob(f"{name}_*.ipynb"))), None
        )
        if solution is None:
            print(f"  {name}: no solution notebook")
            continue
        assignment = load_assignment(name)
        with tempfile.TemporaryDirectory(prefix=f"grade-bench-{name}-") as tmp:
            subs = Path(tmp) / "submissions"
            subs.mkdir()
            (subs / "solution.ipynb").write_bytes(solution.read_bytes())
            start = time.perf_counter()
            cpu = time.process_time()
            with DescendantsCPU() as children:
                results, _ = grade_class(
                    [subs],
                    assignment,
                    Path(tmp) / "out",
                    limits=grading_limits(name),
                    progress=False,
                    log=lambda message: None,
                )
            wall = time.perf_counter() - start
        r = results[0]
        full = r.total == assignment.max_points
        wrong += not full
        print(
            f"  {name}: {wall:6.1f} s per submission (target <= 10), "
            f"{r.total:g}/{assignment.max_points:g} points{'' if full else ' (NOT full marks)'}"
            f"; CPU: grader {time.process_time() - cpu - children.own:.1f} s, sandboxed processes "
            f"{children.seconds:.1f} s; load average {os.getloadavg()[0]:.1f}"
        )
    return wrong


if __name__ == "__main__":
    raise SystemExit(main())
