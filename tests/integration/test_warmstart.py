"""The warm start (acelib.trainer.warmstart): expert responses that really fix the seed, a supervised stage that
changes the weights and is cached by recipe, examples from the train split only."""
import json

import pytest

pytestmark = pytest.mark.integration


def _comp():
    from acelib.tasks.suites import SUITES
    return SUITES["train"][0]


def test_edit_blocks_turn_every_mutation_back_into_its_fix():
    """The `edit`-format expert response applies (with the agent's own parser) to the broken script and gives the
    fix, for every mutation kind the suite makes of one competition."""
    from acelib.agent.parse import parse_action
    from acelib.agent.state import normalise_code
    from acelib.tasks.suites import mutations
    from acelib.trainer.warmstart import edit_blocks

    ms = mutations.mutations(_comp())
    assert {m.kind for m in ms} >= {"file_name", "missing_import", "makedirs"}
    for m in ms:
        response = "Fix it.\n\n" + edit_blocks(m.code, m.fix)
        action = parse_action(response, m.code, "edit")
        assert normalise_code(action.code) == normalise_code(m.fix), (m.kind, m.description)


def test_warm_start_trains_caches_and_uses_train_split_only(tmp_path, monkeypatch):
    import torch
    from safetensors.torch import load_file

    import acelib.models
    from acelib.models import materialize
    from acelib.tasks.suites import mutations, prepare_competition
    from acelib.trainer import resolve
    from acelib.trainer import warmstart

    monkeypatch.setattr(acelib.models, "cache_root", lambda: tmp_path / "models")
    cid = _comp()
    comps = {cid: str(prepare_competition(cid).root)}
    cfg = resolve("tiny", "", {"competitions": [cid], "warm_start": {
        "enabled": True, "kinds": ["file_name", "makedirs"], "examples_per_competition": 2, "epochs": 1,
        "lr": 1e-3, "max_length": 4096}})
    base = str(materialize("tiny"))

    pairs = warmstart.examples(cfg, comps)
    assert len(pairs) == 2
    train_codes = {m.code for m in mutations.mutations(cid, ["file_name", "makedirs"], split="train")}
    eval_codes = {m.code for m in mutations.mutations(cid, ["file_name", "makedirs"], split="eval")}
    for messages, response in pairs:
        prompt = "\n".join(m["content"] for m in messages)
        # the broken script in the prompt is a train-split mutation, never an evaluation one
        assert any(code.strip() in prompt for code in train_codes)
        assert not any(code.strip() in prompt for code in eval_codes)
        assert "```python" in response

    out = warmstart.warm_start(cfg, base, comps)
    stats = json.loads((out / "warm_start.json").read_text())
    assert stats["examples"] == 2 and stats["steps"] == 2 and stats["final_loss"] == stats["final_loss"]  # not NaN
    assert out.parent == tmp_path / "models" and out.name.startswith("warm-tiny-")
    for f in ("config.json", "model.safetensors", "tokenizer_config.json"):
        assert (out / f).is_file(), f
    before = load_file(str(materialize("tiny")) + "/model.safetensors")
    after = load_file(str(out / "model.safetensors"))
    assert set(before) == set(after)
    assert any(not torch.equal(before[k].float(), after[k].float()) for k in before)

    # same recipe: the cached directory, untouched; another recipe: another directory
    mtime = (out / "model.safetensors").stat().st_mtime_ns
    assert warmstart.warm_start(cfg, base, comps) == out
    assert (out / "model.safetensors").stat().st_mtime_ns == mtime
    other = resolve("tiny", "", {"competitions": [cid], "warm_start": {
        "enabled": True, "kinds": ["file_name"], "examples_per_competition": 1, "epochs": 1}})
    assert warmstart.cache_dir_for(other, base, comps) != out
    # nothing half-written is left next to the cache
    assert [p.name for p in (tmp_path / "models").iterdir() if p.name.startswith((".warm-", "warm-"))] == [out.name]
