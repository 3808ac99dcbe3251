"""A long-lived helper run by the cached vLLM venv's Python: vLLM's own code answers our questions.

The test process (which has no vLLM) starts this once per session and sends one JSON request per
line on stdin; each answer is one JSON line on the original stdout. Importing vLLM takes ~15 s, so
batching every question through one process keeps the contract suite fast.

Requests: ``{"op": NAME, ...}``. Answers: ``{"ok": true, ...}`` or ``{"ok": false, "error": str}``.
Extra ops live in ``vllm_ops_*.py`` files beside this one, each exposing ``OPS = {name: func}``.
This file is never imported by the test process: it runs only under vLLM's interpreter, any
supported version (0.13.0 or 0.33.0); an ops file that does not import under the running version
is skipped, and asking for one of its ops says why.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import enum
import functools
import glob
import importlib.util
import io
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

# vLLM logs to stdout; keep the real stdout for answers only.
_ANSWERS = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
sys.stdout = sys.stderr

from unittest import mock  # noqa: E402

import vllm  # noqa: E402
import vllm.config  # noqa: E402
from vllm.entrypoints.cli.serve import ServeSubcommand  # noqa: E402
from vllm.utils.argparse_utils import FlexibleArgumentParser  # noqa: E402


def _jsonable(value: Any) -> Any:
    """Turn parsed argparse values (pydantic models, enums, dataclasses) into JSON values."""
    if hasattr(value, "model_dump"):
        return _jsonable(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def _serve_parser() -> tuple[FlexibleArgumentParser, ServeSubcommand]:
    """Build ``vllm``'s top-level parser with its ``serve`` subcommand, as ``vllm`` does."""
    top = FlexibleArgumentParser(prog="vllm")
    subparsers = top.add_subparsers(required=False, dest="subparser")
    serve = ServeSubcommand()
    # Building the parser infers the device type; there is no GPU here (vLLM's docs build
    # patches the same method).
    with mock.patch.object(vllm.config.DeviceConfig, "__post_init__", return_value=None):
        serve.subparser_init(subparsers)
    return top, serve


_PARSER, _SERVE = _serve_parser()


def op_version(_: dict[str, Any]) -> dict[str, Any]:
    """vLLM's version string."""
    return {"version": vllm.__version__}


def op_parse_serve(req: dict[str, Any]) -> dict[str, Any]:
    """Parse a whole ``vllm serve ...`` argv with vLLM's parser, validate it as ``vllm`` does.

    (``EngineArgs`` is not built: its post-init looks the model up on the Hub.)

    Also builds vLLM's ``CompilationConfig`` (the parser already does) and checks the speculative
    JSON's keys against ``SpeculativeConfig``'s fields, since 0.13.0 silently ignores unknown ones.
    """
    argv: list[str] = req["argv"]
    if argv[:2] != ["vllm", "serve"]:
        return {"ok": False, "error": f"argv must start with 'vllm serve', got {argv[:2]}"}
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = _PARSER.parse_args(argv[1:])
            _SERVE.validate(args)
    except SystemExit as exc:
        return {"ok": False, "error": err.getvalue().strip() or f"SystemExit({exc.code})"}
    except Exception as exc:  # noqa: BLE001  (vLLM's validation raises many types; report any)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    if getattr(args, "model_tag", None):
        args.model = args.model_tag  # what ServeSubcommand.cmd does before starting
    spec = args.speculative_config
    spec_fields = {f.name for f in dataclasses.fields(vllm.config.SpeculativeConfig)}
    unknown_spec_keys = sorted(set(spec or {}) - spec_fields)
    spec_methods = sorted(_literal_strings(_speculative_hints()["method"]))
    return {
        "ok": True,
        "args": _jsonable(vars(args)),
        "unknown_speculative_keys": unknown_spec_keys,
        "speculative_methods": spec_methods,
        "sub_config_errors": _sub_config_errors(args),
    }


@functools.cache
def _speculative_hints() -> dict[str, Any]:
    """``SpeculativeConfig``'s field types, resolved once (each ``parse_serve`` read them
    twice, a fifth of its cost)."""
    import typing

    return typing.get_type_hints(vllm.config.SpeculativeConfig)


def _sub_config_errors(args: argparse.Namespace) -> list[str]:
    """Validate each JSON sub-config with this vLLM's own config classes; the errors found.

    The parser already builds ``CompilationConfig`` (pydantic, extra keys forbidden). The
    speculative JSON is a plain dict until the engine starts (and ``SpeculativeConfig``'s
    post-init fetches the draft from the Hub), so each key's value is validated against the
    class's field type instead. ``--quantization-config`` (0.24+) is validated as a whole.
    """
    import pydantic

    errors: list[str] = []
    spec = args.speculative_config or {}
    hints = _speculative_hints()
    for key, value in spec.items():
        if key not in hints:
            continue  # reported as unknown_speculative_keys
        try:
            pydantic.TypeAdapter(hints[key]).validate_python(value)
        except pydantic.ValidationError as exc:
            errors.append(f"speculative_config.{key}: {exc}")
    quantization = getattr(args, "quantization_config", None)
    if isinstance(quantization, dict):
        from vllm.config.quantization import QuantizationConfigArgs

        try:
            pydantic.TypeAdapter(QuantizationConfigArgs).validate_python(quantization)
        except pydantic.ValidationError as exc:
            errors.append(f"quantization_config: {exc}")
    return errors


def op_kv_cache_dtypes(_: dict[str, Any]) -> dict[str, Any]:
    """The KV cache dtypes this vLLM's cache config accepts."""
    from vllm.config.cache import CacheDType

    return {"dtypes": sorted(_literal_strings(CacheDType))}


def op_env_vars(_: dict[str, Any]) -> dict[str, Any]:
    """The ``VLLM_*`` variables this vLLM reads."""
    import vllm.envs

    return {"names": sorted(vllm.envs.environment_variables)}


def _literal_strings(hint: Any) -> set[str]:
    """Every string a (possibly nested, possibly Optional) Literal type allows."""
    import typing

    if isinstance(hint, str):
        return {hint}
    found: set[str] = set()
    for arg in typing.get_args(hint):
        found |= _literal_strings(arg)
    return found


def op_serve_options(_: dict[str, Any]) -> dict[str, Any]:
    """Every option string ``vllm serve`` accepts, with whether it takes a value."""
    serve_parser = _PARSER._subparsers._group_actions[0].choices["serve"]
    options: dict[str, int | str | None] = {}
    for action in serve_parser._actions:
        for opt in action.option_strings:
            options[opt] = action.nargs if not isinstance(action, argparse._StoreTrueAction) else 0
    return {
        "options": {
            k: (v if v is None or isinstance(v, (int, str)) else str(v)) for k, v in options.items()
        }
    }


def op_serve_option_groups(_: dict[str, Any]) -> dict[str, Any]:
    """Every ``vllm serve`` option, grouped with its aliases, with how many values it takes."""
    serve_parser = _PARSER._subparsers._group_actions[0].choices["serve"]
    groups = []
    for action in serve_parser._actions:
        if not action.option_strings or "-h" in action.option_strings:
            continue
        n = action.nargs
        arity = "0" if n == 0 else ("1" if n is None else str(n))
        groups.append(
            {
                "options": list(action.option_strings),
                "arity": arity,
                "dest": action.dest,
                "choices": [str(c) for c in action.choices] if action.choices else None,
            }
        )
    return {"groups": groups}


def _protocol_class(name: str) -> Any:
    """A class from vLLM's OpenAI protocol module (or a dotted path to any class)."""
    if "." in name:
        module, _, attr = name.rpartition(".")
        return getattr(importlib.import_module(module), attr)
    try:
        from vllm.entrypoints.openai import protocol
    except ImportError:  # 0.33.0 split it; the chat classes live here
        from vllm.entrypoints.openai.chat_completion import protocol

    return getattr(protocol, name)


def op_validate(req: dict[str, Any]) -> dict[str, Any]:
    """Validate JSON text with a vLLM pydantic class; re-serialise as vLLM does."""
    cls = _protocol_class(req["cls"])
    try:
        obj = cls.model_validate_json(req["json"])
    except Exception as exc:  # noqa: BLE001  (pydantic's errors, or a class's own validators)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "dump": obj.model_dump_json(exclude_unset=req.get("exclude_unset", True))}


OPS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "version": op_version,
    "parse_serve": op_parse_serve,
    "serve_options": op_serve_options,
    "serve_option_groups": op_serve_option_groups,
    "validate": op_validate,
    "kv_cache_dtypes": op_kv_cache_dtypes,
    "env_vars": op_env_vars,
}


# Ops files that do not import under this vLLM (they were written against another version's
# modules), with the reason; asking one of their ops answers with that reason.
UNAVAILABLE: dict[str, str] = {}


def _load_extra_ops() -> None:
    """Ops other contract tests add in ``vllm_ops_*.py`` beside this file."""
    here = os.path.dirname(os.path.abspath(__file__))
    for path in sorted(glob.glob(os.path.join(here, "vllm_ops_*.py"))):
        name = os.path.basename(path)[:-3]
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec
        assert spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # one copy, shared by the ops files that build on another
        try:
            spec.loader.exec_module(module)
        except ImportError as exc:  # a module this vLLM version moved or removed
            del sys.modules[name]
            UNAVAILABLE[name] = f"{name} does not import under vLLM {vllm.__version__}: {exc}"
            continue
        OPS.update(module.OPS)


def _answer(req: dict[str, Any]) -> dict[str, Any]:
    op = req["op"]
    if op not in OPS and UNAVAILABLE:
        return {"ok": False, "error": f"unknown op {op!r}", "unavailable": UNAVAILABLE}
    return OPS[op](req)


def main() -> None:
    _load_extra_ops()
    _ANSWERS.write(json.dumps({"ok": True, "ready": vllm.__version__}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = _answer(json.loads(line))
        except Exception as exc:  # noqa: BLE001  (report, never die: one bad question must not end the session)
            answer = {
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(),
            }
        _ANSWERS.write(json.dumps(answer, default=repr) + "\n")


if __name__ == "__main__":
    main()
