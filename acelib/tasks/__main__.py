"""`python -m acelib.tasks {list,prepare,grade}`.

    list                          offline suites (if installed) and the MLE-bench-Lite registry, with local availability
    prepare [SUITE|ID ...] [--force]   build offline suites/competitions into $ACELIB_CACHE_DIR (default: every suite)
    grade COMPETITION SUBMISSION.csv    print the grading report as JSON (its warnings also on stderr); exit 0 even
                                        when the submission is invalid (the report says so), 1 when the
                                        competition cannot be loaded
"""
from __future__ import annotations

import argparse
import json
import sys

from acelib.tasks import lite, loader


def _cmd_list(args: argparse.Namespace) -> int:
    rows = loader.list_competitions()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if loader._suites() is None:
        print("(offline suites not installed: acelib.tasks.suites is missing)")
    width = max(len(r["id"]) for r in rows)
    print(f"{'competition':<{width}}  {'suite':<14} {'metric':<20} {'better':<6} local")
    for r in rows:
        better = "" if r["is_lower_better"] is None else ("lower" if r["is_lower_better"] else "higher")
        local = "yes" if r["available"] else "no"
        print(f"{r['id']:<{width}}  {r['suite']:<14} {r['metric'] or '?':<20} {better:<6} {local}")
    print(f"\nMLE-bench data dir: {loader.mlebench_data_dir()} (set ${loader.MLEBENCH_DATA_ENV} to change; "
          "fill it with `mlebench prepare --lite`)")
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    suites = loader._suites()
    names = args.names
    lite_names = [n for n in names if n in lite.LITE]
    if lite_names:
        print(f"MLE-bench-Lite data comes from Kaggle through MLE-bench; run `mlebench prepare -c ID` for "
              f"{', '.join(lite_names)} and point ${loader.MLEBENCH_DATA_ENV} at its data dir.", file=sys.stderr)
        return 2
    if suites is None:
        print("acelib.tasks.suites is not installed; nothing to prepare.", file=sys.stderr)
        return 2
    for name in names or list(suites.SUITES):
        if name in suites.SUITES:
            comps = suites.prepare_suite(name, force=args.force)
        else:
            comps = [suites.prepare_competition(name, force=args.force)]
        for c in comps:
            print(f"{c.id}: {c.root}")
    return 0


def _cmd_grade(args: argparse.Namespace) -> int:
    try:
        comp = loader.load(args.competition)
    except (FileNotFoundError, KeyError, ValueError) as e:
        print(f"error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 1
    report = loader.grade(comp, args.submission)
    text = json.dumps(report, indent=2)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    print(text)
    for warning in report["warnings"]:  # on stderr too, so they are seen without reading the JSON
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acelib.tasks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="list offline suites and MLE-bench-Lite competitions")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    p.set_defaults(fn=_cmd_list)
    p = sub.add_parser("prepare", help="prepare offline suites or competitions")
    p.add_argument("names", nargs="*", help="suite names or competition ids (default: every suite)")
    p.add_argument("--force", action="store_true", help="rebuild even if already prepared")
    p.set_defaults(fn=_cmd_prepare)
    p = sub.add_parser("grade", help="grade a submission CSV and print the report as JSON")
    p.add_argument("competition", help="competition id or directory")
    p.add_argument("submission", help="path to the submission CSV")
    p.add_argument("--output", help="also write the report to this JSON file")
    p.set_defaults(fn=_cmd_grade)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
