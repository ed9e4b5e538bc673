"""The model registry (acelib.models): names, resource checks and plans, local builds with manifests."""
from __future__ import annotations

import json

import pytest

from acelib import models
from acelib.models import ModelError


# ---------------------------------------------------------------------------------------------- names
def test_unknown_name_suggests_the_closest():
    with pytest.raises(ModelError, match=r"unknown model 'smollm2-13m'\. Did you mean 'smollm2-135m'\?"):
        models.get_spec("smollm2-13m")
    with pytest.raises(ModelError, match="Valid names: tiny, smollm2-135m, qwen3-0.6b"):
        models.get_spec("gpt-5")
    with pytest.raises(ModelError, match="Did you mean 'ace30b'"):
        models.materialize("ace-30b")


def test_registry_is_complete():
    assert set(models.SPECS) == {"tiny", "smollm2-135m", "qwen3-0.6b", "qwen3-1.7b", "qwen3-8b", "ace30b"}
    for spec in models.SPECS.values():
        r = spec.resources
        assert spec.source in ("random", "gguf", "hub")
        assert (spec.source == "hub") == (r.gpus > 0)
        if r.gpus:  # the rollout engine and the learner sit on separate GPUs
            assert r.gpus == r.engines * r.tensor_parallel_size + r.learner_gpus and r.min_gpu_mem_gib > 0
        if spec.source != "random":
            assert spec.hf_id and "/" in spec.hf_id
    assert set(models.RECIPE_VERSION) == {s.name for s in models.SPECS.values() if s.source != "hub"}


# ---------------------------------------------------------------------------------------------- resources
def test_check_resources_with_fake_gpus():
    models.check_resources("tiny", gpus=[])                      # CPU models need nothing
    models.check_resources("smollm2-135m", gpus=[])
    models.check_resources("ace30b", gpus=[80.0] * 16)
    models.check_resources("qwen3-8b", gpus=[141.0] * 4 + [24.0])
    with pytest.raises(ModelError) as e:
        models.check_resources("ace30b", gpus=[])
    msg = str(e.value)
    assert "ace30b (Qwen/Qwen3-30B-A3B) needs 16 GPU(s) with ≥80 GiB each" in msg
    assert "4 vLLM engine(s) × tensor_parallel_size=2 + 8 DeepSpeed ZeRO-3 learner GPU(s)" in msg
    assert "found none" in msg and "-p model smollm2-135m" in msg
    with pytest.raises(ModelError, match=r"found 8 \(40 GiB, .*\), 0 large enough"):
        models.check_resources("ace30b", gpus=[40.0] * 8)
    with pytest.raises(ModelError, match=r"found 3 .* 3 large enough"):
        models.check_resources("qwen3-8b", gpus=[80.0] * 3)


def test_materialize_hub_model_checks_the_machine(monkeypatch):
    monkeypatch.setattr(models, "_visible_gpus", lambda: [])
    with pytest.raises(ModelError, match="qwen3-0.6b .* needs 2 GPU"):
        models.materialize("qwen3-0.6b")
    assert models.materialize("qwen3-0.6b", check=False) == "Qwen/Qwen3-0.6B"
    monkeypatch.setattr(models, "_visible_gpus", lambda: [80.0, 80.0])
    assert models.materialize("qwen3-1.7b") == "Qwen/Qwen3-1.7B"


def test_resource_plan():
    plan = models.resource_plan("ace30b")
    assert plan == {
        "model": "ace30b", "source": "hub", "hf_id": "Qwen/Qwen3-30B-A3B", "params_b": 30.5, "dtype": "bfloat16",
        "device": "cuda", "gpus": 16, "min_gpu_mem_gib": 80, "rollout_engines": 4, "rollout_tensor_parallel_size": 2,
        "learner_gpus": 8,
        "zero_stage": 3, "cpu_ram_gib": 0.0}
    cpu = models.resource_plan(models.get_spec("smollm2-135m"))
    assert cpu["device"] == "cpu" and cpu["gpus"] == 0 and cpu["cpu_ram_gib"] > 0
    json.dumps(plan)  # plain values only (MLflow params, dry-run printout)


def test_missing_gguf_package_names_the_fix(monkeypatch):
    monkeypatch.setattr(models, "GGUF_PACKAGE", "acelib_no_such_package")
    with pytest.raises(ModelError, match="not installed; run `make setup`"):
        models.gguf_path()


# ---------------------------------------------------------------------------------------------- local builds
@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private cache with one tiny build (a few seconds: 6.6M random parameters + the GGUF tokenizer)."""
    pytest.importorskip("transformers")
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("acelib-cache")
    mp.setenv("ACELIB_CACHE_DIR", str(root))
    path = models.materialize("tiny")
    yield path
    mp.undo()


def _digests(path) -> dict:
    return json.loads((path / models.MANIFEST).read_text())["files"]


def test_tiny_build_and_manifest(cache):
    assert cache == models.cache_root() / "tiny" and models.verify(cache, "tiny") is None
    files = _digests(cache)
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(files)
    assert not list(cache.parent.glob(".tiny.tmp-*"))           # the temporary build directory was renamed
    assert models.materialize("tiny") == cache                    # verified, not rebuilt
    config = json.loads((cache / "config.json").read_text())
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    assert head_dim == 32                                         # the smallest head size vLLM's CPU attention takes


def test_corrupt_or_incomplete_build_is_rebuilt(cache, monkeypatch):
    before = _digests(cache)
    manifest = (cache / models.MANIFEST).read_text()
    # reasons first (no rebuild: each one is undone by restoring the manifest)
    (cache / models.MANIFEST).unlink()
    assert models.verify(cache, "tiny").startswith("no manifest")
    (cache / models.MANIFEST).write_text("{not json")
    assert models.verify(cache, "tiny") == "unreadable manifest"
    (cache / models.MANIFEST).write_text(manifest)
    with monkeypatch.context() as m:
        m.setitem(models.RECIPE_VERSION, "tiny", models.RECIPE_VERSION["tiny"] + 1)
        assert models.verify(cache, "tiny").startswith("built by another recipe")
    assert models.verify(cache, "tiny") is None

    (cache / "tokenizer.json").unlink()
    assert models.verify(cache, "tiny") == "tokenizer.json missing"
    weights = cache / "model.safetensors"
    with open(weights, "r+b") as f:                               # flip bytes in the middle of the weights
        f.seek(weights.stat().st_size // 2)
        f.write(b"\x00corrupt\x00")
    assert models.verify(cache, "tiny") == "model.safetensors corrupt (sha256 mismatch)"
    assert models.materialize("tiny") == cache                    # one rebuild repairs both
    assert models.verify(cache, "tiny") is None
    assert _digests(cache) == before                              # seeded build: byte-identical rebuild


# ---------------------------------------------------------------------------------------------- engine side
def test_engine_model_resolution_and_backend_choice(cache, tmp_path):
    from acelib.rollout import choose_backend, resolve_model_dir

    assert resolve_model_dir(str(cache)) == str(cache)
    assert resolve_model_dir("tiny") == str(cache)
    assert resolve_model_dir("Qwen/Qwen3-8B") == "Qwen/Qwen3-8B"   # what materialize returns for hub models
    with pytest.raises(FileNotFoundError, match="no config.json"):
        resolve_model_dir(str(tmp_path))
    with pytest.raises(ModelError, match="Did you mean 'tiny'"):
        resolve_model_dir("tiyn")
    assert choose_backend("hf") == "hf" and choose_backend("vllm") == "vllm"
    assert choose_backend("auto") in ("hf", "vllm")
    with pytest.raises(ValueError, match="unknown rollout backend"):
        choose_backend("sglang")


def test_rollout_config_is_strict_and_light():
    import subprocess
    import sys

    from acelib.config import ConfigError, from_dict
    from acelib.rollout.config import RolloutConfig

    cfg = from_dict(RolloutConfig, {"dtype": "bfloat16", "hf_max_batch_size": 8}, prefix="rollout.")
    assert cfg.dtype == "bfloat16" and cfg.sync_dir == "/dev/shm" and cfg.enforce_eager is None
    with pytest.raises(ConfigError, match="Did you mean 'rollout.gpu_memory_utilization'"):
        from_dict(RolloutConfig, {"gpu_mem_utilization": 0.5}, prefix="rollout.")
    with pytest.raises(ConfigError, match="not one of"):
        from_dict(RolloutConfig, {"logprobs_mode": "tempered"}, prefix="rollout.")
    with pytest.raises(ConfigError, match="gpu_memory_utilization"):
        RolloutConfig(gpu_memory_utilization=1.5)
    code = ("import sys, acelib.rollout, acelib.rollout.config, acelib.models; "
            "bad = [m for m in ('torch', 'vllm', 'transformers') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
