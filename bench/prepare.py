"""Time to prepare every offline suite from scratch (into a temporary cache); prints JSON.

    .venv/bin/python bench/prepare.py [--suite train|lite-mini]
"""
import argparse
import json
import tempfile
import time

from acelib.tasks.suites import SUITES, prepare_competition


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--suite", choices=sorted(SUITES), action="append", help="suite(s) to time (default: all)")
    args = ap.parse_args()
    suites = args.suite or sorted(SUITES)
    per_comp, per_suite = {}, {}
    with tempfile.TemporaryDirectory(prefix="acelib-bench-") as cache:
        t0 = time.perf_counter()
        for suite in suites:
            ts = time.perf_counter()
            for comp_id in SUITES[suite]:
                tc = time.perf_counter()
                prepare_competition(comp_id, cache_dir=cache)
                per_comp[comp_id] = round(time.perf_counter() - tc, 2)
            per_suite[suite] = round(time.perf_counter() - ts, 2)
        total = round(time.perf_counter() - t0, 2)
    print(json.dumps({"total_seconds": total, "n_competitions": len(per_comp), "per_suite_seconds": per_suite,
                      "per_competition_seconds": per_comp}, indent=2))


if __name__ == "__main__":
    main()
