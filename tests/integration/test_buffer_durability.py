"""Kill-and-resume of the SQLite buffer: a writer process is SIGKILLed in the middle of its commits; the file
reopens intact, exactly at the last committed checkpoint (docs/buffer.md, durability model)."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from acelib.curriculum import BufferConfig, Curriculum, EvolvingBuffer, SamplerConfig

pytestmark = pytest.mark.integration

# The writer: each step samples, reports, inserts 1,500 children (so a commit takes long enough to be hit), then
# prints what it is about to commit and, after the commit, what is committed.
WRITER = r"""
import json, sys
from acelib.agent.state import State
from acelib.curriculum import BufferConfig, Curriculum, SamplerConfig
cur = Curriculum(sys.argv[1], BufferConfig(max_per_competition=4000), SamplerConfig(), ["a", "b"], batch_size=2)
cur.checkpoint()
for v in range(10_000):
    for t in cur.sample(2, v, first_index=2 * v):
        kids = [State(t.state.competition_id, code=f"x = {v}_{j} # " + "pad" * 40, output="o" * 500)
                for j in range(750)]
        cur.report(t.task_id, [1.0, 0.0, 0.0, 1.0], [False] * 4, v, kids, v)
    print(json.dumps({"pending": len(cur.buffer), "counter": cur.buffer.draws}), flush=True)
    cur.checkpoint()
    print(json.dumps({"committed": len(cur.buffer), "counter": cur.buffer.draws}), flush=True)
"""


def test_sigkill_mid_write_then_reopen_intact(tmp_path):
    path = tmp_path / "buffer.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                            cwd=os.getcwd())
    lines = []
    # wait for a few commits, then kill right after a "pending" line: the commit is (very likely) in progress
    while True:
        line = proc.stdout.readline()
        assert line, "writer exited early"
        lines.append(json.loads(line))
        if sum("committed" in x for x in lines) >= 3 and "pending" in lines[-1]:
            time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    committed = [x for x in lines if "committed" in x][-1]
    in_flight_commit = lines[-1]
    cur = Curriculum(str(path), BufferConfig(max_per_competition=4000), SamplerConfig(), ["a", "b"], batch_size=2)
    buf = cur.buffer
    # all of the last committed checkpoint, or all of the commit under way — never a part
    state = {"size": len(buf), "counter": buf.draws}
    assert state in ({"size": committed["committed"], "counter": committed["counter"]},
                     {"size": in_flight_commit["pending"], "counter": in_flight_commit["counter"]})
    df = buf.dataframe()
    assert len(df) == len(buf) and df["id"].is_unique
    assert buf.counters["inserted"] == len(buf) + buf.counters["evicted"]
    # and training continues from there
    tasks = cur.sample(2, 100, first_index=200)
    for t in tasks:
        cur.report(t.task_id, [1.0, 0.0], [False, False], 100, [], 100)
        assert t.state.competition_id in ("a", "b")
    cur.close()
    assert EvolvingBuffer(path, BufferConfig(max_per_competition=4000)).n_groups.sum() == buf.n_groups.sum()
