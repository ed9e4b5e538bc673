"""The policy's success per task kind before and after the warm start (JSON), to place RL at the frontier.

For each response format asked: the base model and the warm-started one (acelib.trainer.warmstart, trained or taken
from its cache) each take one step from held-out (eval-split) seeds of every mutation kind and from root drafts of
the preset's competitions; printed per kind: valid rate, format errors, responses identical to the broken script.
Kinds the warm start imitated should be near 1 after it, the others in between: that is where GRPO has signal.

    python bench/warmstart.py [--preset cpu] [--formats script edit] [--competitions 6] [--per-kind 1] [--samples 4]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--formats", nargs="+", default=["script", "edit"])
    ap.add_argument("--competitions", type=int, default=6, help="first N competitions of the preset's suite")
    ap.add_argument("--per-kind", type=int, default=1, help="held-out seeds per kind and competition")
    ap.add_argument("--samples", type=int, default=4, help="responses per seed")
    ap.add_argument("--eval-competitions", type=int, default=0, help="measure on the first N of them (0 = all)")
    ap.add_argument("--models", nargs="+", default=["base", "warm"], choices=("base", "warm"))
    ap.add_argument("--overrides", default="{}", help="JSON TrainConfig overrides")
    args = ap.parse_args()

    from acelib.models import materialize
    from acelib.tasks.suites import SUITES
    from acelib.tasks.suites.mutations import KINDS
    from acelib.trainer import resolve
    from acelib.trainer.loop import training_competitions
    from acelib.trainer.warmstart import success_by_kind, warm_start

    out = {"preset": args.preset, "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0], "formats": {}}
    for fmt in args.formats:
        over = {"agent.response_format": fmt, "warm_start.enabled": True, **json.loads(args.overrides)}
        cfg = resolve(args.preset, None, over)
        over["competitions"] = list(cfg.competitions) or list(SUITES[cfg.suite][:args.competitions])
        cfg = resolve(args.preset, None, over)
        comps = training_competitions(cfg)
        base = str(materialize(cfg.model))
        t0 = time.perf_counter()
        warm = warm_start(cfg, base, comps)
        warm_s = time.perf_counter() - t0
        row = {"competitions": list(comps), "warm_start_kinds": list(cfg.warm_start.kinds),
               "warm_start_s": round(warm_s, 1),
               "warm_start": json.loads((warm / "warm_start.json").read_text())}
        measured = dict(list(comps.items())[:args.eval_competitions or len(comps)])
        row["measured_on"] = list(measured)
        for name, model in (("base", base), ("warm", str(warm))):
            if name not in args.models:
                continue
            t0 = time.perf_counter()
            row[name] = success_by_kind(model, measured, KINDS, args.per_kind, args.samples, cfg, split="eval")
            row[f"{name}_s"] = round(time.perf_counter() - t0, 1)
            print(json.dumps({fmt: {name: {k: v["valid_rate"] for k, v in row[name].items()}}}), file=sys.stderr,
                  flush=True)
        out["formats"][fmt] = row
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
