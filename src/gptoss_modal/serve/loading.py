"""Reading a frozen dataclass's fields from TOML tables, ``GPTOSS_*`` variables and strings.

Shared by the serve config and the deploy settings so both speak one vocabulary: the same
booleans, the same list syntax, the same words for "derive this value", the same errors.
"""

from __future__ import annotations

import dataclasses
import shlex
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from gptoss_modal._exceptions import ConfigError

ENV_PREFIX = "GPTOSS_"
# Every GPTOSS_* variable the project reads, as one fact: the fields of these dataclasses
# (GPTOSS_<FIELD>; imported by name only when checking, as the deploy settings import this
# module), and the variables below, each with who reads it. Any other GPTOSS_* variable is a
# typo, and an error: a misspelt GPTOSS_GPU must not deploy to the default GPU.
ENV_CONFIG_CLASSES = (
    ("gptoss_modal.serve.config", "ServeConfig"),
    ("gptoss_modal.deploy.settings", "DeploySettings"),
)
ENV_VARIABLES: typing.Final[Mapping[str, str]] = types.MappingProxyType(
    {
        "GPTOSS_CONFIG": "the TOML file with the [serve] and [deploy] tables",
        "GPTOSS_API_KEY": "the API key clients send (chat, health, bench, the contract tests)",
        "GPTOSS_MODAL_KEY": "the Modal proxy auth token id clients send",
        "GPTOSS_MODAL_SECRET": "the Modal proxy auth token secret clients send",
        "GPTOSS_DEPLOYMENT_JSON": "the deployment carried into the container",
        "GPTOSS_BASE_URL": "the contract tests: a real server to check instead of the mock",
        "GPTOSS_SERVED_MODEL": "the contract tests: that server's model name",
        "GPTOSS_REQUIRE_VLLM": "the tests: fail, not skip, when vLLM is not installed",
        "GPTOSS_CACHE_DIR": "make and the tests: where the vLLM virtualenvs are cached",
        "GPTOSS_E2E_GPU": "the e2e suite: the GPU to deploy on",
        "GPTOSS_E2E_APP_NAME": "the e2e suite: its Modal app's name",
        "GPTOSS_E2E_SECRET_NAME": "the e2e suite: its Modal Secret's name",
        "GPTOSS_E2E_BUDGETS": "the e2e suite: its budgets file",
        "GPTOSS_E2E_RESULTS": "the e2e suite: where its results go",
        "GPTOSS_E2E_WARM_REQUESTS": "the e2e suite: requests per warm measurement",
        "GPTOSS_E2E_LOST_LAST_BATCH": "the e2e suite: expect the known lost-last-batch failure",
        "GPTOSS_E2E_COLD_STARTS": "the e2e suite: also measure cold starts of both start modes",
        "GPTOSS_DEV_TOKEN": "set by the app for vLLM inside a snapshot container (never by hand)",
    }
)
# The sections a config file may hold; each loader reads its own.
TOML_TABLES = ("serve", "deploy")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# Words that mean "no value: derive it" for an optional field. TOML has no null, and an empty
# environment variable is how shells unset things. A word that is itself a valid value of the
# field (vLLM's kv_cache_dtype "auto") keeps its literal meaning there; "default" always derives.
DERIVE_WORDS = frozenset({"", "auto", "default", "none", "null"})


def did_you_mean(key: str, known: Iterable[str]) -> str:
    """'; did you mean 'x'?' for the closest known name, or ''."""
    import difflib  # only on the error path

    close = difflib.get_close_matches(key, sorted(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def field_names(cls: type[Any]) -> set[str]:
    """The dataclass's field names."""
    return {f.name for f in dataclasses.fields(cls)}


# A dataclass field's metadata key: its values may hold a secret (``extra_args`` may carry
# ``--api-key=sk-...``), so errors name the field and never show what it was given.
MAY_HOLD_SECRETS = "may_hold_secrets"


def may_hold_secrets(cls: type[Any], name: str) -> bool:
    """Whether field ``name`` of ``cls`` is marked :data:`MAY_HOLD_SECRETS`."""
    return any(f.name == name and f.metadata.get(MAY_HOLD_SECRETS) for f in dataclasses.fields(cls))


def hidden_value_error(name: str, message: str, *, source: str | None = None) -> ConfigError:
    """A :class:`ConfigError` about ``name`` whose message never shows its value (it may hold
    a secret); ``message`` says what was wrong and what is allowed."""
    return ConfigError(name, "<hidden>", message, source=source, message=message)


def known_env_names() -> frozenset[str]:
    """Every ``GPTOSS_*`` variable the project reads (:data:`ENV_VARIABLES` and the fields of
    :data:`ENV_CONFIG_CLASSES`)."""
    import importlib  # the classes import this module: look them up only when checking

    names = set(ENV_VARIABLES)
    for module, name in ENV_CONFIG_CLASSES:
        cls = getattr(importlib.import_module(module), name)
        names.update(ENV_PREFIX + field.upper() for field in field_names(cls))
    return frozenset(names)


def check_env_names(env: Mapping[str, str]) -> None:
    """:class:`ConfigError` for the first ``GPTOSS_*`` variable nothing reads, naming the
    closest known one (its value is never shown)."""
    unknown = sorted(k for k in env if k.startswith(ENV_PREFIX))
    if not unknown:
        return
    known = known_env_names()
    for key in unknown:
        if key not in known:
            # Compared without the prefix every name shares, which would make anything "close".
            short = did_you_mean(
                key.removeprefix(ENV_PREFIX), (k[len(ENV_PREFIX) :] for k in known)
            )
            hint = short.replace("'", f"'{ENV_PREFIX}", 1) if short else "."
            raise hidden_value_error(
                f"environment {key}",
                f"environment variable {key} is not one gptoss-modal reads"
                f"{hint} Fix its name or unset it (every GPTOSS_* "
                "variable: docs/configuration.md)",
            )


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


_FIELD_TYPES: dict[type[Any], dict[str, Any]] = {}


def field_types(cls: type[Any]) -> dict[str, Any]:
    """A config class's resolved type hints (read only). Fixed per class, but get_type_hints
    compiles every string annotation again on each call: a fifth of building a ServeConfig."""
    hints = _FIELD_TYPES.get(cls)
    if hints is None:
        hints = _FIELD_TYPES[cls] = typing.get_type_hints(cls)
    return hints


def check_types(obj: Any) -> None:
    """Raise ConfigError for the first field whose value does not match its type hint."""
    hints = field_types(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if not is_instance(value, hints[f.name]):
            if f.metadata.get(MAY_HOLD_SECRETS):
                raise hidden_value_error(f.name, f"{f.name} must be {describe_type(hints[f.name])}")
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
    hint = field_types(cls)[name]
    if type(None) not in typing.get_args(hint):
        return False
    word = value.strip().lower()
    return word not in literal_ok.get(name, frozenset()) and word not in _literal_values(hint)


def _parse(kind: Any, name: str, text: str) -> Any:
    """``text`` as a value of ``kind`` (ValueError when it is not one)."""
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        raise ValueError
    if kind is int:
        return int(text)
    if kind is float:
        return float(text)
    if kind is tuple:
        if name == "extra_args":  # argv: split like a shell line, never run by one
            return tuple(shlex.split(text))
        return tuple(part.strip() for part in text.split(",") if part.strip())
    return text.strip()


def coerce_text(
    cls: type[Any],
    name: str,
    text: str,
    source: str,
    literal_ok: Mapping[str, frozenset[str]] | None = None,
) -> Any:
    """Turn an environment or ``--set`` string into field ``name``'s type."""
    hint = field_types(cls)[name]
    if means_derive(cls, name, text, literal_ok or {}):
        return None
    is_union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    args = typing.get_args(hint) if is_union else ()
    base = next(a for a in args if a is not type(None)) if is_union else hint
    kind: Any = str if typing.get_origin(base) is Literal else (typing.get_origin(base) or base)
    try:
        return _parse(kind, name, text)
    except ValueError as exc:
        if may_hold_secrets(cls, name):  # shlex's "No closing quotation", never the text
            raise hidden_value_error(
                name, f"{name} is not {describe_type(hint)} ({exc})", source=source
            ) from None
        raise ConfigError(name, text, describe_type(hint), source=source) from None


def env_values(
    cls: type[Any],
    env: Mapping[str, str],
    literal_ok: Mapping[str, frozenset[str]] | None = None,
) -> dict[str, Any]:
    """The fields set by ``GPTOSS_<FIELD>`` variables, typed; any ``GPTOSS_*`` variable the
    project does not read is an error (:func:`check_env_names`)."""
    check_env_names(env)
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
        if not isinstance(value, dict):  # its value is not shown: it may hold a secret
            raise hidden_value_error(
                key,
                f"{key} must be a key inside a table ([{'] or ['.join(TOML_TABLES)}])",
                source=source,
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
    for key in section:
        if key not in known:  # an unknown key's value is not shown: it may hold a secret
            raise hidden_value_error(
                key, f"{key} is not a [{table}] key{did_you_mean(key, known)}", source=str(path)
            )
    return {
        key: None if means_derive(cls, key, value, literal_ok or {}) else value
        for key, value in section.items()
    }


def check_range(name: str, value: int | None, low: int, high: int) -> None:
    """ConfigError unless ``value`` is None or a whole number in [low, high]."""
    if value is not None and not low <= value <= high:
        raise ConfigError(name, value, f"a whole number from {low} to {high}")
