"""Config base: dataclasses with a help string per field (TRL style), importable without torch.

Every component owns one config dataclass in its own module (e.g. `acelib.sandbox.limits.Limits`);
this module only provides the shared machinery:

- `option(default, help, choices=None)` declares a documented field;
- `from_dict(cls, data)` builds a config strictly: an unknown key fails *before any work starts* and names the
  field with the closest valid spelling; values are type-checked and `choices` enforced (`check_names` applies the
  same name check to dotted names without building anything);
- `to_dict(cfg)` gives a plain, YAML/MLflow-friendly dict;
- `describe(cls)` renders the help table (used by the README and notebooks).
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the field and how to fix it."""


def option(default: Any = dataclasses.MISSING, help: str = "", choices: tuple | None = None,
           default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with a help string (and optional allowed values)."""
    if not help:
        raise TypeError("every config field needs a help string")
    meta = {"help": help, "choices": tuple(choices) if choices else None}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _is_config(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check (and gently coerce: int→float, list→tuple) one value against its annotation."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {list(typing.get_args(tp))}")
        return value
    if _is_config(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, prefix=where + ".")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is float:
        if isinstance(value, str):
            # YAML 1.1 (PyYAML) reads 3e-5 without a dot as the string '3e-5'; a number is what the user wrote
            try:
                return float(value)
            except ValueError:
                raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: dict | None, prefix: str = "") -> T:
    """Build `cls` from a (possibly nested) dict; unknown keys and bad values raise ConfigError."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for k in data:
        _check_name(k, fields, prefix)
    kwargs = {}
    for name, value in data.items():
        f = fields[name]
        v = _coerce(value, hints[name], prefix + name)
        choices = f.metadata.get("choices")
        if choices and v not in choices:
            raise ConfigError(f"{prefix}{name}: {v!r} is not one of {list(choices)}")
        kwargs[name] = v
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if callable(check):
        check()
    return obj


def _check_name(name: str, fields: dict, prefix: str, advice: str = "") -> None:
    if name not in fields:
        close = difflib.get_close_matches(name, list(fields), n=1)
        hint = f" Did you mean '{prefix}{close[0]}'?" if close else f" Valid fields: {sorted(fields)}."
        raise ConfigError(f"unknown config field '{prefix}{name}'.{hint}{advice}")


def check_names(cls: type, dotted: typing.Iterable[str], advice: str = "") -> None:
    """Raise ConfigError for a dotted name ('learner.lr') that is no field of `cls` or its nested configs, with
    from_dict's message (`advice` is appended). For names whose values are not built, e.g. overrides left unset."""
    for name in dotted:
        tp, prefix = cls, ""
        for part in name.split("."):
            if not _is_config(tp):   # below a plain mapping field any key is allowed
                break
            fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
            _check_name(part, fields, prefix, advice)
            tp, prefix = typing.get_type_hints(tp)[part], f"{prefix}{part}."


def to_dict(cfg: Any) -> dict:
    """Plain nested dict of a config (tuples become lists)."""
    def conv(v):
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v
    return conv(cfg)


def flatten(d: dict, prefix: str = "") -> dict:
    """{'a': {'b': 1}} → {'a.b': 1}; used for MLflow params."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def describe(cls: type) -> str:
    """Markdown table of a config's fields: name, default, help."""
    rows = ["| field | default | help |", "|---|---|---|"]
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = repr(f.default_factory())  # type: ignore[misc]
        else:
            default = "(required)"
        rows.append(f"| `{f.name}` | `{default}` | {f.metadata.get('help', '')} |")
    return "\n".join(rows)
