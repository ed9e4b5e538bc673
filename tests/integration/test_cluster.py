"""A real multi-node Ray cluster on this machine (`ray.cluster_utils.Cluster`: a head and a second raylet with its
own resources, each a real node process in its own temporary directory): the train notebook runs through papermill
against it, as a user types it (`-p overrides '{"resources.ray_address": ...}'` is a string), and the cluster
shuts down leaving no process and no temporary directory behind."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _cluster_processes(temp_dir: Path) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if any(str(temp_dir) in part for part in (p.info["cmdline"] or [])):
            found.append(p)
    return found


def test_train_notebook_on_a_two_node_cluster(tmp_path, ray_cluster):
    from acelib.tasks.suites import SUITES

    cluster, temp_dir, _ = ray_cluster({"num_cpus": 2, "include_dashboard": False},
                                       {"num_cpus": 1, "resources": {"executor": 2}})
    overrides = json.dumps({"resources.ray_address": cluster.address, "output_dir": str(tmp_path / "runs")})
    out = tmp_path / "train.ipynb"
    r = subprocess.run(
        [sys.executable, "-m", "papermill", str(ROOT / "notebooks" / "train.ipynb"), str(out), "-k", "python3",
         "-p", "model", "tiny", "-p", "competitions", json.dumps(list(SUITES["train"][:1])),
         "-p", "tracking_uri", f"sqlite:///{tmp_path}/mlflow.db", "-p", "overrides", overrides,
         "-p", "last_run_file", str(tmp_path / "last_run.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    run_dir = next((tmp_path / "runs").iterdir())
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3]
    plan = json.loads((run_dir / "run.json").read_text())["plan"]
    assert plan["ray"]["address"] == cluster.address
    cluster.shutdown()
    assert not _cluster_processes(temp_dir), "processes of the cluster outlived its shutdown"
