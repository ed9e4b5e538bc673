"""Node failure on a real multi-node Ray cluster: the node holding the executors loses its raylet mid-run; the
affected groups go back to the buffer and run again, the executors come back on a new node with the `executor`
resource, and the run completes its steps with its checkpoints, buffer and MLflow run intact."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration

SCRIPT = """
import sys
from acelib.agent.policy import fenced
from acelib.tasks.suites import compact_baseline
from acelib.trainer import resolve, train
from acelib.trainer.actors import RolloutWorker

class Replay(RolloutWorker):
    # the tiny model writes no code: execute the competition's compact baseline instead, so programs really run
    # on the executor (and die with its node)
    def responses(self, state, samples):
        return [fenced(compact_baseline(state.competition_id))] * len(samples)

cfg = resolve("tiny", None, dict(competitions={comps!r}, steps=4, group_size=2, tracking_uri={uri!r},
                                 output_dir={out!r}, run_name="node-loss", seeds=dict(per_competition=0),
                                 resources=dict(ray_address={address!r}, executors=1, sandbox_workers=1)))
res = train(cfg, progress=False, rollout_worker_cls=Replay)
print("DONE", res.steps_done, res.mlflow_run_id)
"""


def test_executor_node_lost_mid_run_then_replaced(tmp_path, ray_cluster):
    from acelib.tasks.suites import SUITES

    cluster, _, (node,) = ray_cluster({"num_cpus": 2, "include_dashboard": False},
                                      {"num_cpus": 1, "resources": {"executor": 1}})
    run_dir = tmp_path / "runs" / "node-loss"
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(comps=list(SUITES["train"][:1]), uri=f"sqlite:///{tmp_path}/mlflow.db",
                                    out=str(tmp_path / "runs"), address=cluster.address))
    events = []
    p = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    try:
        # Ray's node processes are started from the main thread (they install signal handlers): no helper thread.
        deadline = time.time() + 900
        while time.time() < deadline and not ((run_dir / "metrics.jsonl").exists()
                                              and (run_dir / "metrics.jsonl").read_text().strip()):
            assert p.poll() is None, p.stdout.read()[-3000:]
            time.sleep(0.5)
        cluster.remove_node(node, allow_graceful=False)        # its raylet and every process on it die
        events.append("removed")
        time.sleep(5)
        cluster.add_node(num_cpus=1, resources={"executor": 1})  # a node with the resource is available again
        events.append("added")
        out, _ = p.communicate(timeout=1500)
    finally:
        if p.poll() is None:
            p.kill()
        cluster.shutdown()
    assert events == ["removed", "added"]
    assert p.returncode == 0, out[-4000:]
    assert "DONE 4" in out
    assert "an executor died" in out       # groups were running on the lost node: they went back to the buffer
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3, 4]
    assert (run_dir / "buffer.sqlite").exists() and (run_dir / "final_model" / "config.json").exists()
