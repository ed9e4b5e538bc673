"""The probe before RL is cached by everything it depends on (acelib/trainer/probe_cache.py)."""
from __future__ import annotations

import dataclasses

import pytest

from acelib.agent.state import State
from acelib.tasks.suites import prepare_competition
from acelib.trainer import probe_cache, resolve
from acelib.trainer.payloads import ProbeResult

CID = "titanic-survival"


@pytest.fixture(scope="module")
def setting():
    cfg = resolve("cpu", None, {"competitions": [CID]})
    states = [State(CID, code='import pandas as pd\ntrain = pd.read_csv("train.csv")\n', plan="read the data",
                    output="FileNotFoundError: train.csv", exec_status="error",
                    validity_message="No submission.")]
    return cfg, states, {CID: str(prepare_competition(CID).root)}


def test_the_key_changes_with_what_the_probe_depends_on_and_only_then(setting, tmp_path):
    cfg, states, comps = setting
    path = probe_cache.cache_file(probe_cache.key(cfg, "/cache/models/warm-x-1", states, comps), tmp_path)
    assert path == probe_cache.cache_file(probe_cache.key(cfg, "/cache/models/warm-x-1", states, comps), tmp_path)
    assert path.parent == tmp_path / "probes" and path.name.startswith("warm-x-1-")
    other_state = [dataclasses.replace(states[0], output="KeyError: 'Survived'", id="")]
    changes = [
        ("/cache/models/warm-x-2", cfg, states),                                          # another warm start
        ("/cache/models/warm-x-1", resolve("cpu", None, {"competitions": [CID], "probe.samples": 3}), states),
        ("/cache/models/warm-x-1", resolve("cpu", None, {"competitions": [CID], "seed": 1}), states),
        ("/cache/models/warm-x-1", resolve("cpu", None, {"competitions": [CID], "temperature": 1.0}), states),
        ("/cache/models/warm-x-1", resolve("cpu", None, {"competitions": [CID], "learner.dtype": "fp32"}), states),
        ("/cache/models/warm-x-1", resolve("cpu", None, {"competitions": [CID], "agent.prompt.code_tokens": 900}),
         states),
        ("/cache/models/warm-x-1", cfg, other_state),                                      # what the prompt shows
    ]
    paths = {probe_cache.cache_file(probe_cache.key(c, m, s, comps), tmp_path) for m, c, s in changes}
    assert path not in paths and len(paths) == len(changes)
    # the number of RL steps, the probe after them and how rollouts batch do not change the probe before RL
    longer = resolve("cpu", None, {"competitions": [CID], "steps": 40, "probe.every": 5,
                                   "rollout.batch_window_s": 0.5, "resources.rollouts_per_worker": 4})
    assert probe_cache.cache_file(probe_cache.key(longer, "/cache/models/warm-x-1", states, comps), tmp_path) == path


def test_save_then_load_gives_the_result_back_and_bad_files_are_measured_again(tmp_path, capsys):
    res = ProbeResult(0, [["valid", "failed"], ["format_error", "valid"]], [[False, False], [False, True]],
                      ["fix A", "fix B"], 12.5, 3.0)
    path = tmp_path / "probes" / "warm-x-abc.json"
    assert probe_cache.load(path) is None
    probe_cache.save(path, res)
    assert probe_cache.load(path) == res and list(path.parent.iterdir()) == [path]   # no temporary file left
    path.write_text('{"policy_version": 0, "outcomes"')                                    # truncated by a crash
    assert probe_cache.load(path) is None and "unreadable probe cache" in capsys.readouterr().out
    failed = ProbeResult(0, [["infra_error", "infra_error"]], [[False, False]], [""], 1.0, 0.0)
    other = tmp_path / "probes" / "failed.json"
    probe_cache.save(other, failed)                   # a probe that generated nothing is not a measurement
    assert not other.exists()
