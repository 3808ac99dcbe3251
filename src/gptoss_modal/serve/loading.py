"""Reading a frozen dataclass's fields from TOML tables, ``GPTOSS_*`` variables and strings.

Shared by the serve config and the deploy settings so both speak one vocabulary: the same
booleans, the same list syntax, the same words for "derive this value", the same errors.
"""

from __future__ import annotations

import dataclasses
import shlex
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from gptoss_modal._exceptions import ConfigError

ENV_PREFIX = "GPTOSS_"
# The sections a config file may hold; each loader reads its own.
TOML_TABLES = ("serve", "deploy")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# Words that mean "no value: derive it" for an optional field. TOML has no null, and an empty
# environment variable is how shells unset things. A word that is itself a valid value of the
# field (vLLM's kv_cache_dtype "auto") keeps its literal meaning there; "default" always derives.
DERIVE_WORDS = frozenset({"", "auto", "default", "none", "null"})


def did_you_mean(key: str, known: typing.Iterable[str]) -> str:
    """'; did you mean 'x'?' for the closest known name, or ''."""
    import difflib  # only on the error path

    close = difflib.get_close_matches(key, sorted(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def field_names(cls: type[Any]) -> set[str]:
    """The dataclass's field names."""
    return {f.name for f in dataclasses.fields(cls)}


def is_instance(value: Any, hint: Any) -> bool:
    """isinstance for the type hints our configs use (unions, Literal, tuple[X, ...])."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(is_instance(value, arg) for arg in args)
    if origin is Literal:
        return value in args
    if origin is tuple:
        return isinstance(value, tuple) and all(is_instance(v, args[0]) for v in value)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, hint)


def describe_type(hint: Any) -> str:
    """A person's description of a type hint, for error messages."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe_type(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple:
        inner = {str: "strings", int: "whole numbers"}.get(args[0], describe_type(args[0]))
        return f"a list of {inner}"
    if hint is type(None):
        return "None"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}.get(
        hint, str(hint)
    )


def check_types(obj: Any) -> None:
    """Raise ConfigError for the first field whose value does not match its type hint."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if not is_instance(value, hints[f.name]):
            raise ConfigError(f.name, value, describe_type(hints[f.name]))


def _literal_values(hint: Any) -> set[Any]:
    if typing.get_origin(hint) is Literal:
        return set(typing.get_args(hint))
    return set().union(*(_literal_values(a) for a in typing.get_args(hint)))


def means_derive(
    cls: type[Any], name: str, value: Any, literal_ok: Mapping[str, frozenset[str]]
) -> bool:
    """Whether ``value`` (a string from a file, the environment or --set) means "derive it"."""
    if not isinstance(value, str) or value.strip().lower() not in DERIVE_WORDS:
        return False
    hint = typing.get_type_hints(cls)[name]
    if type(None) not in typing.get_args(hint):
        return False
    word = value.strip().lower()
    return word not in literal_ok.get(name, frozenset()) and word not in _literal_values(hint)


def coerce_text(
    cls: type[Any],
    name: str,
    text: str,
    source: str,
    literal_ok: Mapping[str, frozenset[str]] | None = None,
) -> Any:
    """Turn an environment or ``--set`` string into field ``name``'s type."""
    hint = typing.get_type_hints(cls)[name]
    if means_derive(cls, name, text, literal_ok or {}):
        return None
    is_union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    args = typing.get_args(hint) if is_union else ()
    base = next(a for a in args if a is not type(None)) if is_union else hint
    kind: Any = str if typing.get_origin(base) is Literal else (typing.get_origin(base) or base)
    lowered = text.strip().lower()
    try:
        if kind is bool:
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
        if kind is tuple:
            if name == "extra_args":  # argv: split like a shell line, never run by one
                return tuple(shlex.split(text))
            return tuple(part.strip() for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(name, text, describe_type(hint), source=source) from None
    return text.strip()


def env_values(
    cls: type[Any],
    env: Mapping[str, str],
    literal_ok: Mapping[str, frozenset[str]] | None = None,
) -> dict[str, Any]:
    """The fields set by ``GPTOSS_<FIELD>`` variables, typed."""
    values: dict[str, Any] = {}
    for name in sorted(field_names(cls)):
        key = ENV_PREFIX + name.upper()
        if key in env:
            values[name] = coerce_text(cls, name, env[key], f"environment {key}", literal_ok)
    return values


def read_toml(path: Path) -> dict[str, Any]:
    """A config file's tables, checked: only known tables, no keys outside a table."""
    import tomllib  # only when a file is given; keeps `import gptoss_modal` light

    source = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("config", source, "an existing TOML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("config", source, f"a readable UTF-8 TOML file ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", source, f"valid TOML ({exc})") from exc
    for key, value in data.items():
        if not isinstance(value, dict):
            raise ConfigError(
                key, value, f"a key inside a table ({', '.join(TOML_TABLES)})", source=source
            )
        if key not in TOML_TABLES:
            raise ConfigError(
                f"[{key}]",
                "table",
                f"one of [{'], ['.join(TOML_TABLES)}]{did_you_mean(key, TOML_TABLES)}",
                source=source,
            )
    return data


def toml_values(
    cls: type[Any],
    path: Path,
    table: str,
    literal_ok: Mapping[str, frozenset[str]] | None = None,
) -> dict[str, Any]:
    """The fields one table of a config file sets; unknown keys are errors."""
    section = read_toml(path).get(table, {})
    known = field_names(cls)
    for key, value in section.items():
        if key not in known:
            raise ConfigError(
                key, value, f"a [{table}] key{did_you_mean(key, known)}", source=str(path)
            )
    return {
        key: None if means_derive(cls, key, value, literal_ok or {}) else value
        for key, value in section.items()
    }


def check_range(name: str, value: int | None, low: int, high: int) -> None:
    """ConfigError unless ``value`` is None or a whole number in [low, high]."""
    if value is not None and not low <= value <= high:
        raise ConfigError(name, value, f"a whole number from {low} to {high}")
