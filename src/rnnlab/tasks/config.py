"""Typed configs with dotted command-line overrides: ``model.hidden_size=256 train.lr=1e-3``.

A task's config is a tree of dataclasses. :func:`apply_overrides` walks ``section.field`` paths, parses each
value with the field's annotated type (``int``, ``float``, ``bool``, ``str``, ``X | None``), and returns a
new config; :func:`validate` then checks the ranges declared in field metadata (``min``, ``max``,
``choices``) and calls each section's own ``validate()`` / ``__post_init__`` checks. Every problem raises
:class:`ConfigError` naming the key, the expected and the received value, with a suggestion for a misspelt
key. No ``eval``: values are parsed, never executed.

Two lists a task passes along: ``derived`` keys (``model.vocab_size``: set from the data by ``train()``, so
an override is refused with a message saying so) and ``renamed`` keys (old name -> new name: a saved
``config.json`` that still uses an old name loads under the new one; an override with the old name is
refused with the new name given).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from collections.abc import Collection, Iterable, Mapping
from typing import Any

__all__ = [
    "ConfigError",
    "apply_overrides",
    "validate",
    "config_to_dict",
    "config_from_dict",
    "field_paths",
    "rename_keys",
]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_NONE = {"none", "null"}


class ConfigError(ValueError):
    """A bad override or config value (unknown key, unparsable or out-of-range value): a user error."""


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def field_paths(config: Any, prefix: str = "") -> list[str]:
    """Every overridable dotted path of a config tree, e.g. ``["data.max_len", "model.cell", ...]``."""
    paths = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            paths += field_paths(value, f"{prefix}{f.name}.")
        else:
            paths.append(prefix + f.name)
    return paths


def _parse(key: str, text: str, annotation: Any) -> Any:
    """Parse ``text`` as ``annotation`` (int, float, bool, str, or a union of those with None)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if type(None) in typing.get_args(annotation) and text.strip().lower() in _NONE:
            return None
        errors = []
        for option in options:
            try:
                return _parse(key, text, option)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: cannot parse {text!r} as {annotation}")
    if annotation is bool:
        lowered = text.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise ConfigError(f"{key}: expected a boolean (true/false), received {text!r}")
    if annotation in (int, float):
        try:
            return annotation(text)
        except ValueError:
            kind = "an integer" if annotation is int else "a number"
            raise ConfigError(f"{key}: expected {kind}, received {text!r}") from None
    if annotation is str:
        return text
    raise ConfigError(f"{key}: fields of type {annotation} cannot be set from the command line")


def _split(override: str) -> tuple[str, str]:
    key, sep, value = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {override!r}: expected KEY=VALUE, e.g. model.hidden_size=256")
    return key.strip(), value


def apply_overrides(
    config: Any,
    overrides: Iterable[str],
    derived: Collection[str] = (),
    renamed: Mapping[str, str] | None = None,
) -> Any:
    """A copy of ``config`` with each ``"a.b=value"`` applied, parsed with the field's type.

    ``derived`` keys cannot be set (``train()`` sets them from the data); ``renamed`` maps old key names to
    their new ones, to say which name to use instead.

    Example:
        >>> from dataclasses import dataclass, field
        >>> @dataclass
        ... class Model:
        ...     hidden_size: int = 128
        >>> @dataclass
        ... class Config:
        ...     model: Model = field(default_factory=Model)
        >>> apply_overrides(Config(), ["model.hidden_size=256"]).model.hidden_size
        256
    """
    config = _deep_copy(config)
    known = field_paths(config)
    for override in overrides:
        key, text = _split(override)
        if key in derived:
            raise ConfigError(
                f"{key} is derived from the data ({', '.join(derived)} are set by train()); "
                "it cannot be overridden"
            )
        new = (renamed or {}).get(key)
        if key not in known and new in known:
            raise ConfigError(f"config key {key!r} was renamed {new!r}; use {new}={text}")
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(known)}"
            raise ConfigError(f"unknown config key {key!r}{hint}")
        *parents, name = key.split(".")
        owner = config
        for part in parents:
            owner = getattr(owner, part)
        setattr(owner, name, _parse(key, text, _hints(type(owner))[name]))
    return config


def _deep_copy(config: Any) -> Any:
    """Copy a dataclass tree without running ``__post_init__`` checks twice on sub-configs."""
    changes = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        changes[f.name] = _deep_copy(value) if dataclasses.is_dataclass(value) else value
    return dataclasses.replace(config, **changes)


def validate(config: Any, prefix: str = "") -> Any:
    """Check ``min`` / ``max`` / ``choices`` from field metadata, then each section's own checks.

    Returns ``config``; raises :class:`ConfigError` naming the key, the expected and the received value.
    """
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        key = prefix + f.name
        if dataclasses.is_dataclass(value):
            validate(value, key + ".")
            continue
        meta = f.metadata
        if value is None:
            continue
        if "choices" in meta and value not in meta["choices"]:
            raise ConfigError(
                f"{key}: expected one of {', '.join(map(str, meta['choices']))}, received {value!r}"
            )
        low, high = meta.get("min"), meta.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                expected = f"a value in [{low}, {high}]"
            else:
                expected = f">= {low}" if low is not None else f"<= {high}"
            if type(None) in typing.get_args(_hints(type(config))[f.name]):
                expected += " or none"
            raise ConfigError(f"{key}: expected {expected}, received {value!r}")
    checks = [getattr(config, name) for name in ("validate", "__post_init__") if hasattr(config, name)]
    for check in checks:
        try:
            check()
        except (ValueError, TypeError) as err:  # the section's own message, re-raised as a user error
            message = str(err)
            if prefix and not message.startswith(prefix.rstrip(".")):
                message = f"{prefix.rstrip('.')}: {message}"
            raise ConfigError(message) from None
    return config


def config_to_dict(config: Any) -> dict:
    """A JSON-ready nested dict of the config tree."""
    return dataclasses.asdict(config)


def rename_keys(cls: type, data: dict, renamed: Mapping[str, str]) -> dict:
    """A copy of the nested dict ``data`` with each old key of ``renamed`` moved to its new path.

    A key moves only when ``cls`` no longer has the old path and has the new one, so an entry can be listed
    before the rename lands and a saved config written under either name loads.

    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class Data:
    ...     batch_size: int = 64
    >>> @dataclass
    ... class Config:
    ...     data: Data = field(default_factory=Data)
    >>> rename_keys(Config, {"batch_size": 32, "data": {}}, {"batch_size": "data.batch_size"})
    {'data': {'batch_size': 32}}
    """
    data = copy.deepcopy(data)
    paths = set(field_paths(cls()))  # every task config builds with its defaults
    for old, new in renamed.items():
        *old_parents, old_name = old.split(".")
        owner = data
        for part in old_parents:
            owner = owner.get(part) if isinstance(owner, dict) else None
        if not isinstance(owner, dict) or old_name not in owner or old in paths or new not in paths:
            continue
        value = owner.pop(old_name)
        *new_parents, new_name = new.split(".")
        target = data
        for part in new_parents:
            target = target.setdefault(part, {})
        target.setdefault(new_name, value)
    return data


def config_from_dict(cls: type, data: dict, prefix: str = "") -> Any:
    """Rebuild a config tree of type ``cls`` from :func:`config_to_dict`'s output (unknown keys: an error)."""
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"config {prefix or cls.__name__}: unknown keys {unknown}")
    kwargs = {}
    for name, value in data.items():
        sub = hints[name]
        if dataclasses.is_dataclass(sub) and isinstance(value, dict):
            value = config_from_dict(sub, value, f"{prefix}{name}.")
        kwargs[name] = value
    return cls(**kwargs)
