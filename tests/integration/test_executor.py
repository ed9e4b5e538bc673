"""The executor tier on real Ray: programs run through executor actors give what the local pool gives, step_batch
grades them in the caller, the private answers never reach the executor side, and executors that die (the actor
killed, or its whole node gone, on a two-node cluster of real raylets) fail only the work they were running."""
from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import pytest

from acelib import sandbox
from acelib.sandbox import Limits, SandboxPool

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sandbox.capabilities()["mode"] != "bwrap",
                       reason=f"no bwrap isolation here: {sandbox.capabilities()['reason']}"),
]

ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402

from acelib.sandbox.executor import ExecutorClient, executor_pool  # noqa: E402

SECRET = "SECRET-" + secrets.token_hex(8)
LIMITS = Limits(timeout_s=90, memory_mb=2048)
RAY_ARGS = dict(include_dashboard=False, log_to_driver=False, logging_level="WARNING")

PROGRAM = """
import os
rows = open("input/train.csv").read().splitlines()
print("rows", len(rows), "files", sorted(os.listdir("input")))
open("working/scratch.txt", "w").write("x")
with open("submission/submission.csv", "w") as f:
    f.write("id,y\\n3,1\\n4,0\\n")
print("VALIDATION_SCORE: 0.75")
"""

PEEK = """
import os
found = []
for p in {paths!r}:
    try:
        found.append((p, open(p).read()))
    except OSError as e:
        print("refused", p, type(e).__name__)
print("FOUND", found)
"""


@pytest.fixture
def comp(fake_competition):
    return fake_competition({"train.csv": "id,x,y\n1,0.5,0\n2,1.5,1\n", "test.csv": "id,x\n3,0.7\n4,1.9\n",
                             "description.md": "Predict y."}, {"test.csv": f"id,y\n3,{SECRET}\n4,{SECRET}\n"})


def _wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout_s:g} s waiting for {what}"
        time.sleep(0.2)


def _processes_with(token: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if token.encode() in Path(f"/proc/{name}/cmdline").read_bytes():
                    found.append(int(name))
            except OSError:
                continue
    return found


def _same(a, b) -> tuple:
    return (a.status, a.exit_code, a.stdout, a.submission, a.files) == (b.status, b.exit_code, b.stdout,
                                                                       b.submission, b.files)


# ------------------------------------------------------------------------------------------ one machine


@pytest.fixture(scope="class")
def local_client(tmp_path_factory):
    # address="local": a Ray of its own even when another session's cluster runs on this machine.
    ray.init(address="local", num_cpus=2, **RAY_ARGS)
    client = executor_pool(2, 2, resources=None, limits=LIMITS, cache_dir=str(tmp_path_factory.mktemp("exec")))
    client.ready(timeout_s=180)
    yield client
    client.close()
    ray.shutdown()


class TestLocalRay:
    def test_same_result_as_the_local_pool(self, local_client, comp):
        with SandboxPool(workers=1, limits=LIMITS) as pool:
            local = pool.submit(PROGRAM, comp).result()
        remote = local_client.submit(PROGRAM, comp).result(timeout=120)
        assert remote.status == "ok", remote.output_for_agent()
        assert remote.stdout == "rows 3 files ['description.md', 'test.csv', 'train.csv']\nVALIDATION_SCORE: 0.75\n"
        assert remote.submission == b"id,y\n3,1\n4,0\n"
        assert _same(local, remote), (local, remote)

    def test_step_batch_runs_on_executors_and_grades_in_the_caller(self, local_client):
        from acelib.agent import AgentConfig, step_batch
        from acelib.agent.policy import fenced
        from acelib.agent.state import State
        from acelib.tasks.suites import prepare_competition, reference_solution

        comp = prepare_competition("breast-cancer")
        code = reference_solution(comp.id)
        results = step_batch([State(competition_id=comp.id)] * 2, [fenced(code), fenced("raise SystemExit(3)")],
                             comp, local_client, AgentConfig())
        good, bad = results
        assert not good.masked and good.child.valid and good.info["test_score"] is not None, good.info
        assert good.child.exec_status == "ok" and good.child.score is not None    # its VALIDATION_SCORE line
        assert not bad.masked and bad.child.exec_status == "error" and not bad.child.valid

    def test_a_client_inside_another_actor(self, local_client, comp):
        # What a RolloutWorker does: the driver hands it the executor handles, it builds its own client.
        @ray.remote(num_cpus=0, max_concurrency=2)
        class Caller:
            def __init__(self, handles):
                self.client = ExecutorClient(handles, LIMITS)

            def run(self, code, competition):
                return self.client.submit(code, competition).result(timeout=120)

            def close(self):
                self.client.close()

        caller = Caller.remote([s.handle for s in local_client.status()])
        results = ray.get([caller.run.remote(PROGRAM, comp) for _ in range(2)])
        ray.get(caller.close.remote())
        ray.kill(caller)
        assert all(_same(r, results[0]) and r.status == "ok" for r in results)

    def test_private_answers_never_reach_the_executor(self, local_client, comp):
        infos = local_client.ready()
        key = local_client.public_data(comp).key
        paths = [str(comp.answers_path), "input/../private/test.csv", "../private/test.csv",
                 f"{infos[0].cache_dir}/{key}/prepared/private/test.csv"]
        r = local_client.submit(PEEK.format(paths=paths), comp).result(timeout=120)
        assert r.status == "ok" and "FOUND []" in r.stdout, r.output_for_agent()
        assert SECRET not in r.stdout + r.stderr
        staged = Path(infos[0].cache_dir) / key
        assert sorted(p.name for p in staged.iterdir()) == ["prepared"]
        assert sorted(p.name for p in (staged / "prepared").iterdir()) == ["public"]
        for f in Path(infos[0].cache_dir).rglob("*"):
            assert f.is_dir() or SECRET.encode() not in f.read_bytes(), f

    def test_an_executor_killed_mid_run_fails_only_its_work(self, local_client, comp):
        token = "acelib-exec-test-" + secrets.token_hex(6)
        # exec into a process whose argv carries the token, so the host can see whether it outlives its executor
        sleeper = (f"import os, sys\nos.execv(sys.executable, [sys.executable, '-c', 'import time; "
                   f"time.sleep(120)', {token!r}])")
        fut = local_client.submit(sleeper, comp)
        _wait_for(lambda: _processes_with(token), 60, "the program to start")
        victim = next(s for s in local_client.status() if s.inflight == 1)
        ray.kill(victim.handle, no_restart=False)
        with pytest.raises(ray.exceptions.RayActorError):
            fut.result(timeout=60)
        _wait_for(lambda: not _processes_with(token), 10, "the killed executor's sandbox to die with it")
        # New work goes to the live executor, and the killed one comes back (Ray restarts it).
        later = [local_client.submit(PROGRAM, comp) for _ in range(3)]
        assert [f.result(timeout=120).status for f in later] == ["ok"] * 3
        _wait_for(lambda: local_client.status()[victim.index].up, 90, "the killed executor to restart")
        assert local_client.status()[victim.index].deaths == 1
        results = [local_client.submit(PROGRAM, comp).result(timeout=120) for _ in range(2)]
        assert [r.status for r in results] == ["ok", "ok"]


# ------------------------------------------------------------------------------------------ two nodes


@pytest.fixture(scope="class")
def two_nodes(ray_address_dir):
    # Real raylets: a head without the executor resource and one executor node. Fast health checks so a node
    # killed without notice is declared dead in ~2 s instead of ~30 s.
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False,
        "_system_config": {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                           "health_check_failure_threshold": 4}})
    try:
        node = cluster.add_node(num_cpus=1, resources={"executor": 2})
        ray.init(address=cluster.address, **RAY_ARGS)
        yield cluster, node
    finally:   # a node that failed to start must not leave the head running for the rest of the suite
        ray.shutdown()
        cluster.shutdown()


class TestTwoNodes:
    def test_executor_node_dies_and_comes_back(self, two_nodes, comp, tmp_path):
        cluster, node = two_nodes
        client = executor_pool(1, 2, resources={"executor": 1}, limits=LIMITS, cache_dir=str(tmp_path / "exec"))
        try:
            info, = client.ready(timeout_s=180)
            assert info.node_id == node.node_id != ray.get_runtime_context().get_node_id()   # not on the head
            with SandboxPool(workers=1, limits=LIMITS) as pool:
                local = pool.submit(PROGRAM, comp).result()
            assert _same(local, client.submit(PROGRAM, comp).result(timeout=120))

            running = client.submit("import time; time.sleep(120)", comp)
            time.sleep(2)
            cluster.remove_node(node, allow_graceful=False)    # the raylet and everything on it, SIGKILLed
            with pytest.raises(ray.exceptions.RayActorError):
                running.result(timeout=60)
            _wait_for(lambda: not client.status()[0].up, 30, "the client to notice the death")
            waiting = client.submit(PROGRAM, comp)             # no executor is live: it waits in the client
            time.sleep(1)
            assert not waiting.done()
            node2 = cluster.add_node(num_cpus=1, resources={"executor": 2})
            result = waiting.result(timeout=180)               # Ray restarted the executor on the new node
            assert _same(local, result)
            assert client.ready()[0].node_id == node2.node_id
        finally:
            client.close()
