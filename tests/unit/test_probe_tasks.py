"""The probe's fixed tasks are drawn apart from the RL seeds and the warm-start examples, deterministically."""
from __future__ import annotations

from acelib.agent.seeds import seed_jobs
from acelib.trainer import resolve
from acelib.trainer.loop import probe_draw, seed_draw
from acelib.trainer.payloads import ProbeResult
from acelib.trainer.warmstart import example_draw

COMPS = ["titanic-survival", "orange-juice"]
KINDS = ("file_name", "missing_import", "makedirs", "header")


def test_exclude_skips_the_taken_draws_and_keeps_the_order_of_the_rest():
    everything = seed_jobs(COMPS, kinds=KINDS, per_competition=100, improve=False, seed=3)
    assert seed_jobs(COMPS, kinds=KINDS, per_competition=2, improve=False, seed=3) == \
        [j for c in COMPS for j in [x for x in everything if x.competition_id == c][:2]]   # nothing excluded: same
    taken = {everything[0].code, everything[1].code}
    jobs = seed_jobs(COMPS, kinds=KINDS, per_competition=3, improve=False, seed=3, exclude=taken)
    assert not taken & {j.code for j in jobs} and len(jobs) == 6
    assert [j.code for j in jobs if j.competition_id == COMPS[0]] == \
        [x.code for x in everything if x.competition_id == COMPS[0] and x.code not in taken][:3]


def test_cpu_preset_probe_tasks_are_neither_rl_seeds_nor_warm_start_examples():
    # the draws the trainer, the warm start and the probe really make (the probe's states are built from probe_draw)
    cfg = resolve("cpu", None, {})
    assert cfg.probe.enabled and cfg.warm_start.enabled
    comps = list(cfg.competitions)
    probe = seed_jobs(comps, **probe_draw(cfg, comps))
    seeds = {j.code for j in seed_jobs(comps, **seed_draw(cfg))}
    examples = {j.code for j in seed_jobs(comps, **example_draw(cfg))}
    assert seeds and examples
    assert len(probe) == cfg.probe.per_competition * len(comps)
    assert not {j.code for j in probe} & (seeds | examples)
    assert {j.kind for j in probe} == set(cfg.seeds.kinds)
    assert probe == seed_jobs(comps, **probe_draw(cfg, comps))         # deterministic


def test_probe_counts_leave_out_masked_samples_and_copies():
    r = ProbeResult(3, [["valid", "valid", "infra_error"], ["error", "valid"]], [[False, True, False], [False, False]],
                    ["a", "b"], 1.0, 2.0)
    assert r.counts() == (2, 4)          # task 0: one valid change, one valid copy, one masked; task 1: one valid
    assert r.counts([0]) == (1, 2) and r.counts([1]) == (1, 2)
