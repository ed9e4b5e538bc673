import pytest

from acelib.trainer.run_dir import RunDir


def test_run_dirs_are_never_reused_and_resume_finds_by_id(tmp_path):
    a = RunDir.create(tmp_path, "r")
    b = RunDir.create(tmp_path, "r")
    assert a.path != b.path and b.path.name == "r-2"
    a.write(mlflow_run_id="abc", step=0)
    assert RunDir.find(tmp_path, "abc").path == a.path
    assert RunDir.find(tmp_path, str(a.path)).path == a.path
    with pytest.raises(FileNotFoundError, match="neither a run directory"):
        RunDir.find(tmp_path, "nope")


def test_latest_checkpoint_ignores_incomplete_and_metrics_survive_a_cut_line(tmp_path):
    r = RunDir.create(tmp_path, "r")
    for s in (1, 2, 3):
        r.checkpoint_dir(s).mkdir(parents=True)
    (r.checkpoint_dir(1) / "done").write_text("1")
    (r.checkpoint_dir(2) / "done").write_text("2")      # step 3 has no done marker: crashed mid-save
    assert r.latest_checkpoint()[0] == 2
    r.prune_checkpoints(keep=1)
    assert not r.checkpoint_dir(1).exists() and r.checkpoint_dir(2).exists()
    r.append_metrics(1, {"x": 1.0})
    with open(r.metrics_path, "a") as f:
        f.write('{"step": 2, "x"')                       # a kill mid-write
    assert [m["step"] for m in r.metrics()] == [1]


def test_a_failed_checkpoint_is_removed_and_explained(tmp_path):
    r = RunDir.create(tmp_path, "r")
    r.checkpoint_dir(1).mkdir(parents=True)
    (r.checkpoint_dir(1) / "model.pt").write_bytes(b"x" * 2**21)
    r.mark_done(1)
    r.checkpoint_dir(2).mkdir(parents=True)
    (r.checkpoint_dir(2) / "half.pt").write_bytes(b"x" * 10)          # what the failed save left
    cause = RuntimeError("ray::LearnerRank.save_checkpoint()\nRuntimeError: [enforce fail] unexpected pos 16 vs 12\n")
    msg = r.checkpoint_failed(2, cause)
    assert not r.checkpoint_dir(2).exists() and r.latest_checkpoint()[0] == 1
    assert "step 2" in msg and "unexpected pos 16 vs 12" in msg and "MiB are free" in msg
    assert "newest complete checkpoint is step 1 (2 MiB)" in msg and f"resume='{r.path}'" in msg
    fresh = RunDir.create(tmp_path, "s")
    assert "no step was committed yet" in fresh.checkpoint_failed(1, OSError(28, "No space left on device"))
