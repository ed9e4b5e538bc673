import dataclasses

import pytest

from acelib.config import ConfigError
from acelib.trainer.config import (TrainConfig, check_preset_against_model, parse_list, parse_mapping, preset_names,
                                   resolve)


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_resolves_and_agrees_with_the_model_registry(name):
    """A preset's GPU layout (engines × TP + learner ranks, ZeRO stage) must be the one acelib.models documents
    for its model, and the derived component settings must be filled in."""
    cfg = resolve(name)
    assert check_preset_against_model(cfg) == []
    comps = cfg.components()
    assert comps.rollout.tensor_parallel_size == max(cfg.resources.gpus_per_engine, 1)
    assert comps.grpo.max_completion_length in (cfg.max_new_tokens, cfg.grpo.max_completion_length)
    assert comps.buffer.mode == cfg.sampling
    if cfg.mode == "sync":
        assert cfg.max_staleness == 0


def test_ace30b_is_the_paper_layout_with_optimizer_offload():
    cfg = resolve("ace30b")
    assert cfg.learner.zero_stage == 3 and cfg.learner.offload_optimizer and cfg.learner.optimizer == "deepspeed_adam"
    assert cfg.resources.learner_processes == cfg.resources.learner_gpus == 8
    assert cfg.components().rollout.tensor_parallel_size == 2


def test_resolve_default_and_overrides():
    cfg = resolve("cpu", None, {"steps": 5, "learner.lr": 1e-4, "seed": None})
    assert cfg.model == "smollm2-135m" and cfg.steps == 5 and cfg.learner.lr == 1e-4 and cfg.seed == 0
    assert resolve("ace30b").model == "ace30b" and resolve("ace30b").steps == 400
    assert resolve("qwen3-0.6b").model == "qwen3-0.6b"  # a model without a preset overrides the cpu preset's model


def test_string_overrides_as_a_papermill_user_types_them():
    """-p overrides '{"resources.ray_address": "..."}' arrives as a string: JSON or YAML, parsed, validated."""
    cfg = resolve("tiny", None, '{"resources.ray_address": "127.0.0.1:6379", "learner.lr": 0.002}')
    assert cfg.resources.ray_address == "127.0.0.1:6379" and cfg.learner.lr == 0.002
    assert resolve("tiny", None, "steps: 7\nsampling: uniform").steps == 7
    assert parse_mapping("") == {} and parse_mapping(None) == {}
    assert parse_list('["a", "b"]', "competitions") == ["a", "b"] and parse_list("a", "x") == ["a"]
    with pytest.raises(ConfigError, match="mapping"):
        resolve("tiny", None, "[1, 2]")
    with pytest.raises(ConfigError, match="neither JSON nor YAML"):
        parse_mapping('{"steps": ', "overrides")


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
    with pytest.raises(ConfigError, match="grpo.loss_typ"):
        resolve("tiny", None, {"grpo.loss_typ": "dapo"})


def test_contradictions_are_refused_not_rewritten():
    with pytest.raises(ConfigError, match="max_staleness=0"):
        resolve("tiny", None, {"mode": "sync", "max_staleness": 2})
    with pytest.raises(ConfigError, match="contradicts sampling"):
        resolve("tiny", None, {"sampling": "lp", "buffer.mode": "uniform"})
    with pytest.raises(ConfigError, match="top_p = 1"):
        resolve("tiny", None, {"top_p": 0.9})
    with pytest.raises(ConfigError, match="top_k = 0"):
        resolve("tiny", None, {"top_k": 20})
    with pytest.raises(ConfigError, match="logprobs_mode='processed'"):
        resolve("tiny", None, {"temperature": 0.7, "rollout.logprobs_mode": "raw"})
    with pytest.raises(ConfigError, match="gpus_per_engine"):
        resolve("ace30b", None, {"rollout.tensor_parallel_size": 4})
    with pytest.raises(ConfigError, match="learner_ranks is for CPU"):
        resolve("ace30b", None, {"resources.learner_ranks": 2})


def test_typed_sections_and_a_changed_field_rederive():
    """Component sections are their components' dataclasses (validated once); derived settings follow a change."""
    from acelib.learner.config import LearnerConfig
    cfg = resolve("tiny", None, {"sampling": "no_buffer", "grpo.loss_type": "dr_grpo", "max_new_tokens": 40})
    assert isinstance(cfg.learner, LearnerConfig)
    comps = cfg.components()
    assert comps.buffer.mode == "no_buffer" and comps.grpo.max_completion_length == 40
    other = dataclasses.replace(cfg, sampling="uniform", max_new_tokens=64)   # what the ablations do
    assert other.components().buffer.mode == "uniform" and other.components().grpo.max_completion_length == 64
    assert TrainConfig().components().rollout.tensor_parallel_size == 1


def test_dry_run_plans_every_actor():
    from acelib.trainer.plan import check_cluster, resource_plan
    plan = resource_plan(resolve("ace30b"))
    names = [a["actor"] for a in plan["actors"]]
    assert names.count("curriculum") == 1 and sum(n.startswith("rollout_worker_") for n in names) == 4
    assert sum(n.startswith("learner_rank_") for n in names) == 8 and plan["total_gpus"] == 16
    assert all(a["num_gpus"] == 2 for a in plan["actors"] if a["actor"].startswith("rollout"))
    with pytest.raises(RuntimeError, match="GPU: needs 16, the cluster has 8"):
        check_cluster(resolve("ace30b"), {"CPU": 64.0, "GPU": 8.0})
    check_cluster(resolve("tiny"), {"CPU": 2.0})


def test_a_plan_the_cluster_cannot_place_fails_naming_the_missing_resources():
    from acelib.trainer.plan import check_cluster, needed_resources, resource_plan
    cfg = resolve("tiny", None, {"resources": {"executors": 2, "rollout_resource": "engine"}})
    assert needed_resources(cfg) == {"executor": 2.0, "engine": 1.0}
    executors = [a for a in resource_plan(cfg)["actors"] if a["actor"].startswith("executor_")]
    assert [a["resources"] for a in executors] == [{"executor": 1.0}] * 2
    with pytest.raises(RuntimeError, match="engine: needs 1, the cluster has 0, executor: needs 2, the cluster has 1"):
        check_cluster(cfg, {"CPU": 4.0, "executor": 1.0})
    check_cluster(cfg, {"CPU": 4.0, "executor": 2.0, "engine": 1.0})


def test_an_override_without_value_must_still_name_a_field():
    # unset notebook parameters (None) leave the preset's value
    assert resolve("tiny", None, {"steps": None, "seed": "", "learner.lr": 3e-5}).learner.lr == 3e-5
    # `-p overrides {"learner.lr":3e-5}` without shell quotes reaches the notebook as {learner.lr:3e-5}:
    # the key 'learner.lr:3e-5' with no value, which used to be dropped silently
    with pytest.raises(ConfigError, match=r"unknown config field 'learner.lr:3e-5'.*quote it"):
        resolve("tiny", None, "{learner.lr:3e-5}")


def test_yaml_exponent_without_a_dot_is_a_number():
    # PyYAML reads '{"learner.lr": 3e-5}' as the string '3e-5'
    assert resolve("tiny", None, '{"learner.lr": 3e-5}').learner.lr == 3e-5
    with pytest.raises(ConfigError, match="learner.lr: expected a number, got 'fast'"):
        resolve("tiny", None, {"learner.lr": "fast"})


def test_eval_gets_the_training_presets_scaffold():
    # eval.ipynb's `scaffold`: the prompts a policy was trained on, not AgentConfig's ~3x longer defaults
    from acelib.config import from_dict
    from acelib.eval import EvalConfig
    from acelib.trainer.experiments import training_scaffold
    cfg = from_dict(EvalConfig, {"steps": 2, "agent": training_scaffold("cpu")})
    assert cfg.agent == resolve("cpu").agent
    assert cfg.agent.prompt.description_tokens < EvalConfig().agent.prompt.description_tokens
