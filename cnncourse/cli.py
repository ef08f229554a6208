"""The ``cnncourse`` command line: ``assign``, ``grade`` and ``gradebook merge``."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

from cnncourse.assign import AssignError, assign_all


def _assign(args: argparse.Namespace) -> int:
    try:
        changed = assign_all(args.solutions, args.exercises, check=args.check)
    except AssignError as exc:
        print(f"cnncourse assign: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if changed:
            names = ", ".join(str(p) for p in changed)
            print(f"out of date: {names}\nrun `cnncourse assign` to regenerate them.")
            return 1
        print("exercises/ is up to date with solutions/.")
        return 0
    for path in changed:
        print(f"wrote {path}")
    print(f"{len(changed)} student notebook(s) regenerated.")
    return 0


def _shard(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise argparse.ArgumentTypeError(f"expected i/n with 1 <= i <= n, got {text!r}")
    return int(match[1]), int(match[2])


def _id_pattern(text: str) -> re.Pattern:
    try:
        pattern = re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"not a regular expression: {exc}") from exc
    if "id" not in pattern.groupindex:
        raise argparse.ArgumentTypeError("the pattern needs a named group (?P<id>...)")
    return pattern


def _grade(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cnncourse.grading.assignment import AssignmentError, grading_limits, load_assignment
    from cnncourse.grading.gradebook import grade_class, summary_table
    from cnncourse.grading.sandbox import SandboxError, SandboxUnavailable
    from cnncourse.grading.secret import SecretError

    try:
        assignment = load_assignment(args.assignment, args.template)
    except (AssignmentError, OSError) as exc:
        print(f"cnncourse grade: {exc}", file=sys.stderr)
        return 2
    limits = grading_limits(args.assignment, timeout_s=args.timeout, memory_mb=args.memory_mb)
    try:
        results, stats = grade_class(
            [Path(p) for p in args.submissions],
            assignment,
            Path(args.out),
            jobs=args.jobs,
            limits=limits,
            force=args.force,
            shard=args.shard,
            id_pattern=args.id_pattern,
            progress=not args.no_progress,
            max_bytes=int(args.max_mb * 2**20),
            allow_unisolated=args.allow_unisolated,
            secret_path=Path(args.secret) if args.secret else None,
        )
    except SandboxUnavailable as exc:
        print(f"cnncourse grade: {exc}", file=sys.stderr)
        return 3
    except SandboxError as exc:
        print(f"cnncourse grade: the grading worker failed: {exc}", file=sys.stderr)
        return 3
    except SecretError as exc:
        print(f"cnncourse grade: hidden-case key: {exc}", file=sys.stderr)
        return 2
    print(summary_table(results, assignment, stats))
    print(f"wrote {Path(args.out) / 'gradebook.csv'}, results/ and feedback/ in {args.out}")
    if args.shard is not None:
        print(
            "class report: after the shards, run `cnncourse report FOLDER -a "
            f"{assignment.name}` on the merged folder (or a final run without --shard)"
        )
        return 0
    return _class_view(Path(args.out), assignment, results, args, "cnncourse grade")


# --- class view (issue 14): class report, similarity, LMS exports, regrade deltas ---------
def _class_view(out, assignment, results, args: argparse.Namespace, command: str) -> int:
    from pathlib import Path

    from cnncourse.grading.classreport import write_class_view
    from cnncourse.grading.deltas import load_snapshot
    from cnncourse.grading.lms import RosterError, load_roster

    try:
        roster = load_roster(args.roster) if args.roster else None
    except RosterError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 2
    since = Path(args.since) if args.since else None
    if since is not None and load_snapshot(since) is None:
        print(f"{command}: no class report in {since} to compare with", file=sys.stderr)
        return 2
    view = write_class_view(
        out, assignment, results, roster=roster, moodle_field=args.moodle_id, since=since
    )
    print(f"wrote {view.report.name}, {view.similarity.name} ({len(view.pairs)} similar pairs)")
    print(f"wrote {', '.join(p.name for p in view.exports)} (Canvas, Moodle)")
    if view.changes is None:
        print("first report in this folder: the next run lists the grades that change")
    else:
        print(f"{len(view.changes)} student(s) whose grade changed: see {view.changes_csv}")
        for c in view.changes[:20]:
            print(f"  {c.student}: {c.delta:+g} ({'; '.join(c.reasons)})")
    return 0


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cnncourse.grading.assignment import AssignmentError, load_assignment
    from cnncourse.grading.gradebook import load_state

    out = Path(args.out)
    try:
        assignment = load_assignment(args.assignment, args.template)
    except (AssignmentError, OSError) as exc:
        print(f"cnncourse report: {exc}", file=sys.stderr)
        return 2
    states = sorted((out / ".state").glob("*.json"))
    results = [r for p in states if (r := load_state(out, p.stem)) is not None]
    results = [r for r in results if r.assignment == assignment.name]
    if not results:
        print(f"cnncourse report: no graded {assignment.name} results in {out}", file=sys.stderr)
        return 2
    return _class_view(out, assignment, results, args, "cnncourse report")


# --- end of the class view ---------------------------------------------------------------


def _merge(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cnncourse.grading.gradebook import collect
    from cnncourse.grading.merge import MergeError, merge_shards

    expected = None
    if args.submissions:
        entries, _ = collect([Path(p) for p in args.submissions], args.id_pattern)
        expected = [e.student for e in entries]
    try:
        report = merge_shards([Path(p) for p in args.shards], Path(args.out), expected)
    except MergeError as exc:
        print(f"cnncourse gradebook merge: {exc}", file=sys.stderr)
        return 2
    for folder, count in report.per_shard.items():
        print(f"{folder}: {count} student(s)")
    print(
        f"merged {report.students} student(s) of {report.assignment} (version {report.version})"
        f" into {report.out / 'gradebook.csv'}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cnncourse`` command."""
    from cnncourse import __version__

    parser = argparse.ArgumentParser(prog="cnncourse", description=__doc__)
    parser.add_argument("--version", action="version", version=f"cnncourse {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("assign", help="generate exercises/ from solutions/")
    p.add_argument(
        "--solutions", default="solutions", help="instructor sources (default: %(default)s)"
    )
    p.add_argument(
        "--exercises", default="exercises", help="student versions (default: %(default)s)"
    )
    p.add_argument("--check", action="store_true", help="only report drift; exit 1 if any")
    p.set_defaults(func=_assign)

    g = sub.add_parser(
        "grade",
        help="grade a class's submissions in a sandbox",
        description="Grade submitted notebooks: gradebook.csv, results/<id>.json "
        "(Gradescope schema) and feedback/<id>.html in --out. Reruns skip unchanged "
        "submissions.",
    )
    g.add_argument("submissions", nargs="+", help="submitted notebooks or folders of them")
    g.add_argument("--assignment", "-a", required=True, help="exercise to grade, e.g. ex01")
    g.add_argument("--out", "-o", required=True, help="output folder")
    g.add_argument("-j", "--jobs", type=int, default=1, help="parallel workers (default: 1)")
    g.add_argument("--force", action="store_true", help="regrade unchanged submissions too")
    g.add_argument("--shard", type=_shard, help="grade only shard i of n, e.g. 2/8")
    g.add_argument(
        "--id-pattern",
        type=_id_pattern,
        help="regex on the file name with a group (?P<id>...) (default: the file stem)",
    )
    g.add_argument("--template", help="student notebook (default: exercises/<assignment>_*)")
    g.add_argument(
        "--timeout", type=float, help="seconds per task (default: 10, or the exercise's own)"
    )
    g.add_argument(
        "--memory-mb", type=int, help="memory per child (default: 1024, or the exercise's own)"
    )
    g.add_argument("--max-mb", type=float, default=20.0, help="largest file graded (default: 20)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    g.add_argument(
        "--allow-unisolated",
        action="store_true",
        help="grade even where the bubblewrap sandbox cannot be created (student code then "
        "runs unisolated; the gradebook and feedback pages say so)",
    )
    g.add_argument(
        "--secret",
        help="key file of the hidden cases (default: <out>/.hidden-cases.key, created on the "
        "first grading; keep it with your grades, never where students can read it)",
    )
    g.add_argument("--roster", help="CSV of the class (names, LMS ids) for the LMS exports")
    g.add_argument(
        "--moodle-id",
        choices=["username", "email", "idnumber"],
        default="username",
        help="user field of moodle_grades.csv's identifier column (default: %(default)s)",
    )
    g.set_defaults(func=_grade, since=None)

    r = sub.add_parser(
        "report",
        help="rewrite the class report, similarity page and LMS exports of a graded folder",
        description="Rewrite class_report.html, similarity.html, canvas_grades.csv, "
        "moodle_grades.csv and regrade_changes.csv from the results in OUT (no grading).",
    )
    r.add_argument("out", help="output folder of `cnncourse grade`")
    r.add_argument("--assignment", "-a", required=True, help="exercise graded, e.g. ex01")
    r.add_argument("--template", help="student notebook (default: exercises/<assignment>_*)")
    r.add_argument("--roster", help="CSV of the class (names, LMS ids) for the LMS exports")
    r.add_argument(
        "--moodle-id",
        choices=["username", "email", "idnumber"],
        default="username",
        help="user field of moodle_grades.csv's identifier column (default: %(default)s)",
    )
    r.add_argument(
        "--since",
        help="compare the grades with the last report written in this folder instead of OUT "
        "(e.g. the previous merge of a sharded run)",
    )
    r.set_defaults(func=_report)

    gb = sub.add_parser("gradebook", help="work with grading output folders")
    gb_sub = gb.add_subparsers(dest="gradebook_command", required=True)
    m = gb_sub.add_parser(
        "merge",
        help="combine the output folders of sharded grading runs",
        description="Combine the output folders of `cnncourse grade --shard i/n` runs into one "
        "gradebook. Refuses shards graded with different assignment versions, hidden-case "
        "secrets or gradebook columns, and students graded differently twice.",
    )
    m.add_argument("shards", nargs="+", help="the shards' output folders")
    m.add_argument("--out", "-o", required=True, help="new folder for the merged output")
    m.add_argument(
        "--submissions",
        nargs="+",
        help="the class's notebooks or folders: every student must be in a shard",
    )
    m.add_argument("--id-pattern", type=_id_pattern, help="as for `cnncourse grade`")
    m.set_defaults(func=_merge)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cnncourse`` console script."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
