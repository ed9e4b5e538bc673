"""Policies and checkpoints in MLflow: log + register the tiny model, resolve models:/ and runs:/ URIs back."""
import json
import shutil

import pytest

pytestmark = pytest.mark.integration


@pytest.fixture()
def store(tmp_path, monkeypatch):
    from acelib.models import materialize
    tiny = materialize("tiny")                       # built in the real cache before the cache moves
    monkeypatch.setenv("ACELIB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_dir = tmp_path / "runs" / "tiny-lp"
    shutil.copytree(tiny, run_dir / "final_model")    # what the learner's export_hf leaves at the end of a run
    yield f"sqlite:///{tmp_path}/mlflow.db", run_dir, tiny
    import mlflow
    mlflow.end_run()


def test_policy_is_logged_registered_and_resolved_by_uri(store):
    import mlflow
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from acelib import tracking
    from acelib.models import resolve_model_dir

    uri, run_dir, tiny = store
    with tracking.start_run(uri, "acelib", run_name="tiny-lp") as run:
        text = tracking.describe("GRPO training", {"preset": "tiny", "sampling": "lp", "empty": ""},
                                 {"valid rate (last third)": 0.25, "p": float("nan")})
        tracking.set_description(text)
        logged = tracking.log_policy_model(run_dir / "final_model", "acelib-tiny-test", description="test policy")
    assert logged.uri == "models:/acelib-tiny-test/1" and logged.run_id == run.info.run_id
    client = mlflow.MlflowClient(tracking_uri=uri)
    got = client.get_run(run.info.run_id)
    assert got.data.tags[tracking.DESCRIPTION_TAG] == text and "sampling `lp`" in text and "empty" not in text
    assert "| p | n/a |" in text
    assert got.data.tags["acelib.registered_model"] == "models:/acelib-tiny-test/1"
    exp = client.get_experiment(run.info.experiment_id)
    assert exp.tags[tracking.EXPERIMENT_KIND_TAG] == tracking.MODEL_TRAINING_KIND
    mv = client.get_model_version("acelib-tiny-test", "1")
    assert mv.run_id == run.info.run_id and mv.description == "test policy"

    local = resolve_model_dir("models:/acelib-tiny-test/1", tracking_uri=uri)
    assert resolve_model_dir("models:/acelib-tiny-test/1", tracking_uri=uri) == local  # cached
    client.set_registered_model_alias("acelib-tiny-test", "champion", "1")
    assert resolve_model_dir("models:/acelib-tiny-test@champion", tracking_uri=uri) == local
    assert resolve_model_dir("models:/acelib-tiny-test/latest", tracking_uri=uri) == local
    a = AutoModelForCausalLM.from_pretrained(str(tiny)).state_dict()
    b = AutoModelForCausalLM.from_pretrained(local).state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    template = AutoTokenizer.from_pretrained(str(tiny)).chat_template
    assert template and AutoTokenizer.from_pretrained(local).chat_template == template

    # a plain directory artifact works too (runs:/<id>/<path>)
    with mlflow.start_run(run_id=run.info.run_id):
        mlflow.log_artifacts(str(run_dir / "final_model"), artifact_path="final_model")
    plain = resolve_model_dir(f"runs:/{run.info.run_id}/final_model", tracking_uri=uri)
    assert AutoTokenizer.from_pretrained(plain).chat_template == template

    with pytest.raises(ValueError, match="no registered model"):
        resolve_model_dir("models:/nope/latest", tracking_uri=uri)


def test_policy_without_chat_template_is_refused(store, tmp_path):
    from acelib import tracking

    uri, run_dir, _ = store
    bad = tmp_path / "bad"
    shutil.copytree(run_dir / "final_model", bad)
    (bad / "chat_template.jinja").unlink()
    cfg = json.loads((bad / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (bad / "tokenizer_config.json").write_text(json.dumps(cfg))
    with tracking.start_run(uri, "acelib"):
        with pytest.raises(ValueError, match="chat template"):
            tracking.log_policy_model(bad)
    with pytest.raises(RuntimeError, match="active MLflow run"):
        tracking.log_policy_model(run_dir / "final_model")


def test_checkpoints_by_reference_and_copied_with_retention(store):
    import mlflow

    from acelib import tracking

    uri, run_dir, _ = store

    def fake_checkpoint(step):
        d = run_dir / "checkpoints" / f"step-{step:06d}"
        (d / "model").mkdir(parents=True)
        (d / "model" / "weights.pt").write_bytes(b"x" * 100 * step)
        (d / "done").write_text(str(step))
        return d

    with tracking.start_run(uri, "acelib") as run:
        index = tracking.log_checkpoint(fake_checkpoint(1), 1)                      # reference (default)
        assert index["mode"] == "reference" and [e["step"] for e in index["checkpoints"]] == [1]
        assert index["checkpoints"][0]["bytes"] == 101 and index["checkpoints"][0]["artifact_path"] is None
        for step in (2, 3):
            index = tracking.log_checkpoint(fake_checkpoint(step), step, mode="copy", keep=2)
        assert tracking.log_checkpoint(run_dir, 3, mode="none") == {}
    rid = run.info.run_id
    client = mlflow.MlflowClient(tracking_uri=uri)
    copied = sorted(a.path for a in client.list_artifacts(rid, "checkpoints") if a.is_dir)
    assert copied == ["checkpoints/step-000002", "checkpoints/step-000003"]
    shutil.rmtree(run_dir / "checkpoints" / "step-000003")                        # pruned or on another machine
    got = tracking.checkpoint_location(rid, tracking_uri=uri)
    assert (got / "model" / "weights.pt").read_bytes() == b"x" * 300
    assert tracking.checkpoint_location(rid, step=1, tracking_uri=uri) == run_dir / "checkpoints" / "step-000001"
    shutil.rmtree(run_dir / "checkpoints" / "step-000001")
    with pytest.raises(FileNotFoundError, match="by reference"):
        tracking.checkpoint_location(rid, step=1, tracking_uri=uri)
    with pytest.raises(ValueError, match="checkpoint mode"):
        tracking.log_checkpoint(run_dir, 1, mode="all")
