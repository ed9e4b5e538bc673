import dataclasses

import pytest

from acelib.config import ConfigError, check_names, describe, flatten, from_dict, option, to_dict


@dataclasses.dataclass
class Inner:
    lr: float = option(1e-3, "learning rate")
    kind: str = option("a", "a kind", choices=("a", "b"))


@dataclasses.dataclass
class Outer:
    steps: int = option(3, "steps")
    names: list[str] = option(default_factory=list, help="names")
    inner: Inner = option(default_factory=Inner, help="nested")
    maybe: int | None = option(None, "optional")
    extra: dict = option(default_factory=dict, help="free-form mapping")


def test_from_dict_builds_nested_and_coerces():
    cfg = from_dict(Outer, {"steps": 5, "inner": {"lr": 1}, "names": ["x"]})
    assert cfg.steps == 5 and cfg.inner.lr == 1.0 and isinstance(cfg.inner.lr, float) and cfg.names == ["x"]
    assert to_dict(cfg)["inner"] == {"lr": 1.0, "kind": "a"}
    assert flatten(to_dict(cfg))["inner.lr"] == 1.0


def test_unknown_field_names_the_closest_spelling():
    with pytest.raises(ConfigError, match="unknown config field 'stpes'.*Did you mean 'steps'"):
        from_dict(Outer, {"stpes": 3})
    with pytest.raises(ConfigError, match="inner.lrr.*inner.lr"):
        from_dict(Outer, {"inner": {"lrr": 3}})


def test_check_names_gives_from_dicts_message_for_dotted_names():
    check_names(Outer, ["steps", "inner", "inner.lr", "extra.anything.below"])   # a mapping field takes any key
    with pytest.raises(ConfigError, match=r"unknown config field 'inner.lrr'. Did you mean 'inner.lr'\? see X"):
        check_names(Outer, ["steps", "inner.lrr"], advice=" see X")
    with pytest.raises(ConfigError, match="unknown config field 'stpes'"):
        check_names(Outer, ["stpes.lr"])


def test_bad_types_and_choices_name_the_field():
    with pytest.raises(ConfigError, match="steps: expected an integer"):
        from_dict(Outer, {"steps": "many"})
    with pytest.raises(ConfigError, match="inner.kind: 'c' is not one of"):
        from_dict(Outer, {"inner": {"kind": "c"}})
    with pytest.raises(ConfigError, match="steps: expected an integer"):
        from_dict(Outer, {"steps": True})
    assert from_dict(Outer, {"maybe": None}).maybe is None


def test_every_field_needs_help_and_describe_lists_them():
    with pytest.raises(TypeError):
        option(1)
    table = describe(Outer)
    assert "`steps`" in table and "steps" in table and "(required)" not in table


def test_docs_rollout_config_table_is_the_rendered_one():
    """docs/rollout.md shows `describe(RolloutConfig)` verbatim (a hand-kept table went stale once)."""
    from pathlib import Path

    from acelib.rollout.config import RolloutConfig
    docs = (Path(__file__).resolve().parents[2] / "docs" / "rollout.md").read_text()
    assert describe(RolloutConfig).strip() in docs, "re-render it: python -c 'from acelib.config import describe; " \
        "from acelib.rollout.config import RolloutConfig; print(describe(RolloutConfig))'"
