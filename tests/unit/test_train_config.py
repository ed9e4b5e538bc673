import pytest

from acelib.config import ConfigError
from acelib.trainer.config import load_preset, preset_names, resolve


def test_presets_exist_and_parse():
    assert {"cpu", "tiny", "ace30b"} <= set(preset_names())
    for name in preset_names():
        assert isinstance(load_preset(name), dict)


def test_resolve_default_and_overrides():
    cfg = resolve("cpu", None, {"steps": 5, "learner.lr": 1e-4, "seed": None})
    assert cfg.model == "smollm2-135m" and cfg.steps == 5 and cfg.learner["lr"] == 1e-4 and cfg.seed == 0
    assert resolve("ace30b").model == "ace30b" and resolve("ace30b").steps == 400
    assert resolve("qwen3-0.6b").model == "qwen3-0.6b"  # a model without a preset overrides the cpu preset's model


def test_bad_input_fails_before_work_naming_the_field():
    with pytest.raises(ConfigError, match="unknown preset 'cpuu'.*Did you mean 'cpu'"):
        resolve(params_file="cpuu")
    with pytest.raises(ConfigError, match="Did you mean 'steps'"):
        resolve("tiny", None, {"stpes": 3})
    with pytest.raises(ConfigError, match="sampling"):
        resolve("tiny", None, {"sampling": "random"})
    with pytest.raises(ConfigError, match="group_size"):
        resolve("tiny", None, {"group_size": 1})
    with pytest.raises(ConfigError, match="learner.lrr"):
        resolve("tiny", None, {"learner.lrr": 1.0})


def test_component_sections_are_validated_and_consistent():
    from acelib.trainer.config import component_configs
    comps = component_configs(resolve("tiny", None, {"sampling": "no_buffer", "grpo.loss_type": "dr_grpo"}))
    assert comps["buffer"].mode == "no_buffer"          # the ablation switch reaches the buffer (and its sampler)
    assert comps["grpo"].loss_type == "dr_grpo"
    with pytest.raises(ConfigError, match="contradicts sampling"):
        resolve("tiny", None, {"sampling": "lp", "buffer.mode": "uniform"})
    with pytest.raises(ConfigError, match="learner.grpo"):
        resolve("tiny", None, {"learner.grpo": {"beta": 0.1}})
    with pytest.raises(ConfigError, match="grpo.loss_typ"):
        resolve("tiny", None, {"grpo.loss_typ": "dapo"})
