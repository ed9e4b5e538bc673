"""The outcome of a training run in one object: did the policy get better within the RL run?

Two measurements, each with a two-sided two-proportion z-test (statsmodels):

- the training rollouts: the valid-submission rate on debug and improve tasks in the first third of the learner
  steps against the last third. A valid response to an improve task that is a copy of its parent's script counts
  as not valid here: copying a working script is no progress. Rates by step type and the share of copies are
  reported next to it. The tasks behind these rates change as the curriculum moves (LP sampling keeps choosing
  tasks the policy half-solves), so a policy that gets better need not show a rise here;
- the same comparison stratified (Cochran-Mantel-Haenszel, statsmodels' `StratifiedTable`): the responses are
  split by task kind (debug, improve) and the mutation kind of the task's root seed (`seeds.json`; the root is found
  through the buffer's parent links), and the first third is compared with the last within each stratum. The
  two-proportion test also moves when the curriculum shifts to easier kinds of task between the thirds; this one
  does not (docs/trainer.md, "Reading the headline");
- the probe (`probe.*`, when the preset has one): the same fixed tasks, never trained on, answered by the policy
  before RL and after the last step (and every `probe.every` steps): the learning curve proper.

    python -m acelib.trainer.summary [outputs/last_run.json | <run dir>]   # what `make train` ends with
    python -m acelib.trainer.summary --pool <run dir> <run dir> ...        # several seeds, one test each

prints a short human summary, then, as its LAST line, one JSON object (steps, valid_rate_first_third,
valid_rate_last_third, p_value, run_dir, mlflow_run_id, ...) that scripts can read.
"""
from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

STEP_TYPES = ("draft", "debug", "improve")


def _counts(rows: list[dict], kinds=("debug", "improve")) -> tuple[int, int]:
    """(valid and changed, samples) over `rows` for the given task kinds."""
    n = sum(int(r.get(f"samples/{k}", 0)) for r in rows for k in kinds)
    x = sum(int(r.get(f"samples/valid_changed/{k}", 0)) for r in rows for k in kinds)
    return x, n


def thirds(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """The first and the last third of the steps (k = steps // 3 each; the middle is not compared)."""
    k = len(rows) // 3
    return (rows[:k], rows[len(rows) - k:]) if k else ([], [])


def verdict(p: float | None, before: float, after: float) -> str:
    if p is None or p >= 0.05:            # equal rates give p = 1
        return "no significant change"
    return "a significant rise" if after > before else "a significant fall"   # a collapse must read as one


def headline(rows: list[dict]) -> dict:
    """First third vs last third of the steps: valid rate on debug + improve tasks, z-test p-value, per-type rates."""
    from statsmodels.stats.proportion import proportions_ztest

    first, last = thirds(rows)
    k = len(first)
    (x1, n1), (x2, n2) = _counts(first), _counts(last)
    out = {"steps": len(rows), "thirds_of": k,
           "valid_rate_first_third": x1 / n1 if n1 else None, "valid_rate_last_third": x2 / n2 if n2 else None,
           "samples_first_third": n1, "samples_last_third": n2, "p_value": None}
    if n1 and n2 and 0 < x1 + x2 < n1 + n2:
        out["p_value"] = float(proportions_ztest([x2, x1], [n2, n1], alternative="two-sided")[1])
    for t in STEP_TYPES:
        for name, part in (("first", first), ("last", last)):
            v, n = _counts(part, (t,))
            out[f"{t}_valid_rate_{name}_third"] = v / n if n else None
    samples = sum(int(r.get(f"samples/{t}", 0)) for r in rows for t in STEP_TYPES)
    copies = sum(r.get("rate/identical_to_parent", 0.0) * sum(r.get(f"samples/{t}", 0) for t in STEP_TYPES)
                 for r in rows)
    out["identical_to_parent_share"] = copies / samples if samples else None
    # a step whose groups all lack reward variance changes nothing (no gradient): how many steps really trained
    out["updates"] = sum(1 for r in rows if r.get("groups/zero_variance_share", 0.0) < 1.0)
    return out


def roots(parents: dict[str, str | None]) -> dict[str, str]:
    """The root of every task of a lineage {task id: parent id or None}: its oldest ancestor."""
    out: dict[str, str] = {}
    for tid in parents:
        path, node = [], tid
        while node not in out and parents.get(node) is not None and node not in path:   # a cycle cannot hang it
            path.append(node)
            node = parents[node]
        root = out.get(node, node)
        for p in path + [node]:
            out[p] = root
    return out


def strata_counts(rows: list[dict], parents: dict[str, str | None], seeds: dict[str, dict]) -> dict | None:
    """{stratum: [valid first third, responses first third, valid last third, responses last third]} with strata
    "<task kind>/<root seed's mutation kind>" over debug and improve tasks (valid = valid and changed); None for a
    run without per-group records ("groups" in its metrics rows)."""
    first, last = thirds(rows)
    if not first or not all("groups" in r for r in rows):
        return None
    root_of = roots(parents)
    counts: dict[str, list[int]] = {}
    for third, part in ((0, first), (2, last)):
        for g in (g for r in part for g in r["groups"]):
            if g["step_type"] not in ("debug", "improve"):
                continue
            root = root_of.get(g["task_id"], g["task_id"])
            stratum = f"{g['step_type']}/{seeds.get(root, {}).get('kind', 'draft root')}"
            c = counts.setdefault(stratum, [0, 0, 0, 0])
            c[third] += g["valid_changed"]
            c[third + 1] += g["samples"]
    return counts


def cmh(counts: dict[str, list[int]]) -> dict:
    """Cochran-Mantel-Haenszel test (no continuity correction) of "same rate before and after" over strata
    {name: [valid before, n before, valid after, n after]}, and the Mantel-Haenszel odds ratio (> 1: more valid
    after). Strata without responses on both sides or without variance (all valid or all not) carry no
    information and are left out; `strata` / `samples` count the ones used. `excess_valid`: valid responses after
    minus their expectation under equal rates, summed over the strata (the direction, defined even when the odds
    ratio is not). p, odds ratio and excess are None without an informative stratum."""
    import numpy as np
    from statsmodels.stats.contingency_tables import StratifiedTable

    # rows: after, before; columns: valid, not valid
    tables = [np.array([[c[2], c[3] - c[2]], [c[0], c[1] - c[0]]], dtype=float) for c in counts.values()
              if c[1] and c[3]]
    informative = [t for t in tables if 0 < t[:, 0].sum() < t.sum()]
    out = {"p_value": None, "odds_ratio": None, "excess_valid": None, "strata": len(informative),
           "samples": int(sum(t.sum() for t in informative))}
    if informative:
        st = StratifiedTable(informative)
        p, odds = float(st.test_null_odds(correction=False).pvalue), float(st.oddsratio_pooled)
        out["p_value"] = p if np.isfinite(p) else None
        out["odds_ratio"] = odds if np.isfinite(odds) else None     # None: no valid response on one side
        out["excess_valid"] = float(sum(t[0, 0] - t[0].sum() * t[:, 0].sum() / t.sum() for t in informative))
    return out


def stratified_headline(rows: list[dict], parents: dict[str, str | None], seeds: dict[str, dict]) -> dict:
    """First third vs last third within strata of (task kind, root seed's mutation kind): `cmh` over
    `strata_counts`. Strata seen in only one of the thirds, and strata whose responses are all valid or all not,
    are left out; `stratified_strata` / `stratified_samples` count the strata used and their responses. Runs
    without per-group records get None."""
    counts = strata_counts(rows, parents, seeds)
    if counts is None:
        return {"p_value_stratified": None, "odds_ratio_stratified": None, "stratified_excess_valid": None,
                "stratified_strata": 0, "stratified_samples": None, "strata": {}}
    t = cmh(counts)
    return {"p_value_stratified": t["p_value"], "odds_ratio_stratified": t["odds_ratio"],
            "stratified_excess_valid": t["excess_valid"], "stratified_strata": t["strata"],
            "stratified_samples": t["samples"], "strata": counts}


def probe_headline(probes: list[dict]) -> dict:
    """The fixed probe tasks before RL (the probe after 0 steps) vs after the last step: valid rates, z-test
    p-value, and the curve (step, valid rate) of every probe."""
    from statsmodels.stats.proportion import proportions_ztest

    probes = sorted(probes, key=lambda r: r["step"])
    out = {"probe_curve": [[r["step"], r["valid_rate"]] for r in probes], "probe_valid_rate_before": None,
           "probe_valid_rate_after": None, "probe_samples": None, "probe_p_value": None}
    first, last = (probes[0], probes[-1]) if len(probes) > 1 and probes[0]["step"] == 0 else (None, None)
    if first is None:
        return out
    (x1, n1), (x2, n2) = (first["valid"], first["samples"]), (last["valid"], last["samples"])
    out.update(probe_valid_rate_before=x1 / n1 if n1 else None, probe_valid_rate_after=x2 / n2 if n2 else None,
               probe_samples=n2, probe_steps=last["step"])
    if n1 and n2 and 0 < x1 + x2 < n1 + n2:
        out["probe_p_value"] = float(proportions_ztest([x2, x1], [n2, n1], alternative="two-sided")[1])
    out["probe_by_kind"] = {k: [first["by_kind"][k][0] / max(1, first["by_kind"][k][1]),
                                last["by_kind"][k][0] / max(1, last["by_kind"][k][1])] for k in first["by_kind"]}
    return out


def run_summary(run_dir: str | Path, mlflow_run_id: str, tracking_uri: str = "") -> dict:
    from acelib.trainer.run_dir import RunDir
    run = RunDir(run_dir)
    rows = run.metrics()
    return {**headline(rows), **stratified_headline(rows, buffer_parents(run.buffer_path), run.seeds()),
            **probe_headline(run.probes()), "run_dir": str(run.path),
            "mlflow_run_id": mlflow_run_id, "tracking_uri": tracking_uri}


def report(summary: dict) -> str:
    """The closing lines a person reads."""
    def pct(x):
        return "–" if x is None else f"{100 * x:.0f}%"
    p = summary.get("p_value")
    pp = summary.get("probe_p_value")
    probe = [] if summary.get("probe_valid_rate_before") is None else [
        f"fixed probe tasks (never trained on): {pct(summary['probe_valid_rate_before'])} valid before RL → "
        f"{pct(summary['probe_valid_rate_after'])} after {summary['probe_steps']} steps ({summary['probe_samples']} "
        f"responses each; two-sided p = {'–' if pp is None else f'{pp:.3g}'}): "
        f"{verdict(pp, summary['probe_valid_rate_before'], summary['probe_valid_rate_after'])}",
        "probe by bug kind (before → after): " + ", ".join(
            f"{k} {pct(a)} → {pct(b)}" for k, (a, b) in summary.get("probe_by_kind", {}).items())]
    uri = summary.get("tracking_uri") or "sqlite:///outputs/mlflow.db"
    return "\n".join([
        f"run directory: {summary['run_dir']}",
        f"MLflow run: {summary['mlflow_run_id']}  (UI: make mlflow-ui, or mlflow ui --backend-store-uri {uri})",
        # the step lines' "valid" counts copies; this line does not, and says so (a reader compares the two)
        f"valid submissions on debug + improve tasks (a copy of the parent's script counts as not valid): "
        f"{pct(summary['valid_rate_first_third'])} in the first third "
        f"of {summary['steps']} steps → {pct(summary['valid_rate_last_third'])} in the last third "
        f"({summary['samples_first_third']} vs {summary['samples_last_third']} responses; two-sided "
        f"p = {'–' if p is None else f'{p:.3g}'}): "
        f"{verdict(p, summary['valid_rate_first_third'], summary['valid_rate_last_third'])}",
        "by task kind (first → last third): " + ", ".join(
            f"{t} {pct(summary[f'{t}_valid_rate_first_third'])} → {pct(summary[f'{t}_valid_rate_last_third'])}"
            for t in STEP_TYPES),
        stratified_line(summary),
        f"responses identical to their parent script (valid or not): {pct(summary['identical_to_parent_share'])}",
        f"policy updates: {summary.get('updates', '–')} of {summary['steps']} steps (the others' groups had no "
        f"reward variance, so no gradient)",
    ] + _no_update_caveat(summary) + probe + ([f"final policy: {summary['registered_model']} (MLflow model registry)"]
         if summary.get("registered_model") else []))


def _no_update_caveat(summary: dict) -> list[str]:
    """A run whose policy never changed cannot have learned: a significant change between its thirds is the
    curriculum's choice of tasks (measured: a seed-1 run with 0 updates fell from 50% to 0%, stratified p = 0.001)."""
    significant = [k for k in ("p_value", "p_value_stratified") if summary.get(k) is not None and summary[k] < 0.05]
    if summary.get("updates") != 0 or not significant:
        return []
    return ["no policy update in this run: the last third was answered by the same policy as the first, so the "
            "significant change above is which tasks the curriculum drew, not learning"]


def _strata(n: int) -> str:
    return f"{n} stratum" if n == 1 else f"{n} strata"


def _cmh_result(odds: float | None, excess: float, p: float) -> str:
    """The end of a CMH line (the run's and the pooled report's): odds ratio, direction, p, verdict."""
    return (f"{'–' if odds is None else f'{odds:.2f}'}, {excess:+.1f} valid vs equal rates, p = {p:.3g}: "
            f"{verdict(p, 0.0, excess)}")


def stratified_line(summary: dict) -> str:
    """The headline within strata of task kind and root bug kind (what a shift between kinds of task cannot move; a
    shift between easier and harder tasks of one kind still can)."""
    p, odds, excess = (summary.get(k) for k in ("p_value_stratified", "odds_ratio_stratified",
                                                 "stratified_excess_valid"))
    if p is None:
        return ("within task kind and root bug kind (Cochran-Mantel-Haenszel): – (no stratum with responses in "
                "both thirds and some variance)")
    return (f"within task kind and root bug kind (Cochran-Mantel-Haenszel over {_strata(summary['stratified_strata'])} "
            f"with responses in both thirds and some variance, {summary['stratified_samples']} responses): "
            f"odds ratio last/first third {_cmh_result(odds, excess, p)}")


def probe_before_after(run_dir: str | Path, pairs: int = 2, max_chars: int = 1200) -> list[dict]:
    """What changed, on the same fixed probe task: the first response to it before RL and after the last step,
    preferring tasks whose first response went from not valid to valid (then any change of outcome)."""
    from acelib.trainer.run_dir import RunDir

    probes = sorted(RunDir(run_dir).probes(), key=lambda r: r["step"])
    if len(probes) < 2 or probes[0]["step"] != 0:
        return []
    first, last = probes[0], probes[-1]
    order = sorted(range(len(first["texts"])), key=lambda i: (
        not (first["outcomes"][i][0] != "valid" and last["outcomes"][i][0] == "valid"),
        first["outcomes"][i][0] == last["outcomes"][i][0], i))
    return [{"competition_id": first["tasks"][i][0], "bug_kind": first["tasks"][i][1],
             **{f"{name}_{k}": v for name, row in (("before", first), ("after", last))
                for k, v in (("step", row["step"]), ("outcome", row["outcomes"][i][0]),
                             ("response", row["texts"][i][:max_chars]))}} for i in order[:pairs]]


@contextlib.contextmanager
def _buffer_db(path: Path):
    """The run's buffer database, read-only (the run may still be writing it), closed on exit."""
    import sqlite3

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield db
    finally:
        db.close()


def buffer_parents(db_path: str | Path) -> dict[str, str | None]:
    """{task id: parent id} of every task the run's buffer ever held (evicted ones included), {} without one."""
    if not Path(db_path).is_file():
        return {}
    with _buffer_db(Path(db_path)) as db:
        return dict(db.execute("SELECT id, parent_id FROM items").fetchall())


def before_after(run_dir: str | Path, pairs: int = 2, max_chars: int = 1200) -> list[dict]:
    """What changed, on the same task: for the tasks whose children (the policy's attempts) span the most policy
    versions, the earliest and the latest attempt (code, outcome), read from the run's buffer database."""
    with _buffer_db(Path(run_dir) / "buffer.sqlite") as db:
        rows = db.execute("SELECT parent_id, policy_version, valid, state FROM items WHERE parent_id IS NOT NULL "
                          "ORDER BY parent_id, policy_version, created_seq").fetchall()
        by_parent: dict[str, list] = {}
        for parent, version, valid, state in rows:
            by_parent.setdefault(parent, []).append((version, bool(valid), json.loads(state)))
        spans = sorted(((kids[-1][0] - kids[0][0], p) for p, kids in by_parent.items() if len(kids) > 1), reverse=True)
        out = []
        for span, parent in spans[:pairs]:
            task = json.loads(db.execute("SELECT state FROM items WHERE id = ?", (parent,)).fetchone()[0])
            first, last = by_parent[parent][0], by_parent[parent][-1]
            out.append({"task": parent, "competition_id": task["competition_id"],
                        "task_kind": "draft" if not task["code"].strip() else ("improve" if task["valid"] else "debug"),
                        **{f"{name}_{k}": v for name, (version, valid, st) in (("before", first), ("after", last))
                           for k, v in (("policy_version", version), ("valid", valid),
                                        ("code", st["code"][:max_chars]), ("verdict", st["validity_message"]))}})
        return out


def pooled_summary(run_dirs: list[str | Path]) -> dict:
    """Several runs of one recipe (e.g. seeds 0, 1, 2) in one test each, every stratum kept per run, so that no
    run's mix of tasks or starting policy is compared with another's:

    - rollouts: first third vs last third, strata = (run, task kind, root bug kind) (`strata_counts`);
    - probe: before RL vs after the last step, strata = (run, bug kind). Each probe is a fresh sample of responses
      to the same tasks; like the run's own probe test, this treats the two sides as independent samples.

    `cmh` gives each test; `*_first`/`*_last` (rollouts) and `*_before`/`*_after` (probe) are the pooled valid
    counts and responses. Runs without group records (older runs) or without a probe before RL add nothing to that
    test and are listed under `rollouts_missing` / `probe_missing`. Runs whose probe before RL is one and the same
    sample (the second took it from `probe.cache`) are listed in pairs under `probe_shared_before`: their strata are
    not independent, so pool one run per warm start for the probe test."""
    from acelib.trainer.run_dir import RunDir

    rollouts: dict[str, list[int]] = {}
    probe: dict[str, list[int]] = {}
    out: dict = {"runs": [], "rollouts_missing": [], "probe_missing": [], "probe_shared_before": []}
    seen_before: dict[str, str] = {}
    for d in run_dirs:
        run = RunDir(d)
        if not run.metrics_path.is_file():
            raise FileNotFoundError(f"{d} is not a run directory (no metrics.jsonl): pass outputs/runs/<run> "
                                    f"directories of finished or running runs")
        name = run.path.name
        out["runs"].append(str(run.path))
        counts = strata_counts(run.metrics(), buffer_parents(run.buffer_path), run.seeds())
        if counts is None:
            out["rollouts_missing"].append(name)
        rollouts.update({f"{name}/{k}": v for k, v in (counts or {}).items()})
        probes = sorted(run.probes(), key=lambda r: r["step"])
        if len(probes) < 2 or probes[0]["step"] != 0:
            out["probe_missing"].append(name)
            continue
        # a cached probe before RL (`probe.cache`: same warm start, same tasks) is the same sample in every run
        # that hit the cache; pooled, it would be counted once per run
        fingerprint = json.dumps([probes[0].get(k) for k in ("tasks", "outcomes", "texts", "valid")])
        if fingerprint in seen_before:
            out["probe_shared_before"].append([seen_before[fingerprint], name])
        seen_before.setdefault(fingerprint, name)
        before, after = probes[0]["by_kind"], probes[-1]["by_kind"]
        probe.update({f"{name}/{k}": [*before[k], *after.get(k, (0, 0))] for k in before})
    for test, counts, (a, b) in (("rollouts", rollouts, ("first", "last")), ("probe", probe, ("before", "after"))):
        out.update({f"{test}_{k}": v for k, v in cmh(counts).items()})
        for i, side in ((0, a), (2, b)):
            out[f"{test}_valid_{side}"] = sum(c[i] for c in counts.values())
            out[f"{test}_samples_{side}"] = sum(c[i + 1] for c in counts.values())
        out[f"{test}_counts"] = counts
    return out


def pooled_report(pooled: dict) -> str:
    """The lines a person reads for `pooled_summary`."""
    def line(test, what, a, b, strata):
        xa, na, xb, nb = (pooled[f"{test}_{k}_{side}"] for side in (a, b) for k in ("valid", "samples"))
        p, odds, excess = (pooled[f"{test}_{k}"] for k in ("p_value", "odds_ratio", "excess_valid"))
        rates = f"{xa}/{na} → {xb}/{nb} valid"
        if p is None:
            return f"{what}: {rates}; within {strata}: – (no stratum on both sides with some variance)"
        return (f"{what}: {rates}; within {strata} (Cochran-Mantel-Haenszel over {_strata(pooled[f'{test}_strata'])}, "
                f"{pooled[f'{test}_samples']} responses): odds ratio {_cmh_result(odds, excess, p)}")
    n = len(pooled["runs"])
    lines = [f"{n} run{'' if n == 1 else 's'}: " + ", ".join(Path(r).name for r in pooled["runs"]),
             line("rollouts", "rollouts, first third → last third", "first", "last",
                  "run × task kind × root bug kind"),
             line("probe", "probe, before RL → after the last step", "before", "after", "run × bug kind")]
    for test in ("rollouts", "probe"):
        if pooled[f"{test}_missing"]:
            lines.append(f"not in the {test} test (no {'group records' if test == 'rollouts' else 'probe before RL'}): "
                         + ", ".join(pooled[f"{test}_missing"]))
    for first, again in pooled["probe_shared_before"]:
        lines.append(f"warning: {again} reused the probe before RL of {first} (probe cache): one sample counted twice "
                     f"in the probe test; pool one run per warm start")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    """`python -m acelib.trainer.summary [--json] [outputs/last_run.json | run directory]`: the closing report and,
    as the last line, the summary as one JSON object (`--json`: only that line)."""
    import argparse
    ap = argparse.ArgumentParser(prog="python -m acelib.trainer.summary", description="a run's closing summary")
    ap.add_argument("path", nargs="?", default="outputs/last_run.json", help="last_run.json or a run directory")
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    ap.add_argument("--pool", nargs="+", metavar="RUN_DIR",
                    help="pool several runs (e.g. seeds) into one stratified test each (`pooled_summary`)")
    args = ap.parse_args(argv)
    if args.pool:
        pooled = pooled_summary(args.pool)
        if not args.json:
            print(pooled_report(pooled))
        print(json.dumps(pooled))
        return
    path = Path(args.path)
    if path.is_dir():
        info = json.loads((path / "run.json").read_text())
        summary = run_summary(path, info.get("mlflow_run_id", ""))
    else:
        info = json.loads(path.read_text())
        summary = run_summary(info["run_dir"], info["mlflow_run_id"], info.get("tracking_uri", ""))
        summary["registered_model"] = info.get("registered_model")
    if not args.json:
        print(report(summary))
    print(json.dumps(summary))


if __name__ == "__main__":
    main(sys.argv[1:])
