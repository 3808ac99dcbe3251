"""The one table of ``vllm serve`` flags and ``VLLM_*`` variables a ServeConfig sets, and the
checks on ``extra_args``.

``FLAGS`` is read three ways: the builder writes argv from it (in its order, the seed's), the
parser reads argv back with it, and ``extra_args`` may not set any parser destination it names.
Each vLLM version's own option table (``serve/options``, generated from its parser) says which
flags exist, so a typo, a flag renamed by vLLM or one from the other version is caught here, at
config time, instead of as an engine crash twenty minutes into a cold start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.serve.options import (
    DEFAULT_VLLM_VERSION,
    VLLM_VERSIONS,
    VllmOption,
    VllmVersion,
    option_table,
)

# How a flag carries its setting:
# "str" / "int" / "float": one value, passed when the attribute is not None;
# "switch": always passed, as ``flag`` (True) or ``off`` (False);
# "present": a bare flag, passed when the attribute is true;
# "const": ``flag const``, passed when the attribute is true;
# "names": one or more values; "json": a JSON sub-config made from several fields;
# "joined": one value, a word or a tuple joined with commas (vLLM splits it on them).
FlagKind = Literal["str", "int", "float", "switch", "present", "const", "names", "json", "joined"]


@dataclass(frozen=True)
class Flag:
    """One ``vllm serve`` flag the config sets: where its value comes from and how it is written."""

    flag: str  # the spelling the builder writes and the parser reads
    attr: str  # the ServeConfig attribute (or, for "json", the sub-config) it carries
    kind: FlagKind
    off: str | None = None  # a switch's spelling for False
    const: str | None = None  # a "const" flag's only value
    owner: str | None = None  # the field(s) to name in errors, when not ``attr``

    @property
    def owned_by(self) -> str:
        """The config field(s) a user sets instead of passing this flag."""
        return self.owner or self.attr


TOOL_CALL_PARSER = "openai"  # vLLM's parser for gpt-oss's harmony tool calls
_TOOLS = "tool_calling"

FLAGS: tuple[Flag, ...] = (
    Flag("--revision", "revision", "str"),
    Flag("--served-model-name", "served_model_names", "names"),
    Flag("--host", "host", "str"),
    Flag("--port", "port", "int"),
    # Explicit both ways: the default flipped to on in vLLM 0.14.
    Flag("--async-scheduling", "async_scheduling", "switch", off="--no-async-scheduling"),
    # Eager mode skips torch.compile and CUDA graph capture: boots in a fraction of the time.
    Flag("--enforce-eager", "fast_boot", "switch", off="--no-enforce-eager"),
    Flag(
        "--tensor-parallel-size",
        "tensor_parallel_size",
        "int",
        owner="gpu (the GPU count is the tensor-parallel size)",
    ),
    Flag(
        "--compilation-config",
        "compilation_config",
        "json",
        owner="fuse_allreduce_rms / eliminate_noops",
    ),
    Flag(
        "--speculative-config",
        "speculative_config",
        "json",
        owner="speculative / speculative_model / num_speculative_tokens",
    ),
    Flag("--quantization-config", "quantization_config", "json", owner="mxfp8_moe"),
    Flag("--stream-interval", "stream_interval", "int"),
    Flag("--kv-cache-dtype", "kv_cache_dtype", "str"),
    Flag("--max-cudagraph-capture-size", "max_cudagraph_capture_size", "int"),
    Flag("--max-num-batched-tokens", "max_num_batched_tokens", "int"),
    Flag("--max-model-len", "max_model_len", "int"),
    Flag("--max-num-seqs", "max_num_seqs", "int"),
    Flag("--gpu-memory-utilization", "gpu_memory_utilization", "float"),
    Flag("--tool-call-parser", _TOOLS, "const", const=TOOL_CALL_PARSER),
    Flag("--enable-auto-tool-choice", _TOOLS, "present"),
    Flag("--enable-per-request-metrics", "per_request_metrics", "present"),
    Flag("--tool-server", "tool_server", "joined"),
)


@dataclass(frozen=True)
class EnvVar:
    """One ``VLLM_*`` variable the config sets ("one": ``1`` when the attribute is true;
    "str": the attribute's value when not None). The MXFP8 MoE switch is the recipe's."""

    name: str
    attr: str
    kind: Literal["one", "str"]


ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar("VLLM_ENABLE_STARTUP_PLAN", "startup_plan", "one"),
    EnvVar("VLLM_SYSTEM_START_DATE", "system_start_date", "str"),
    EnvVar("VLLM_ENABLE_RESPONSES_API_STORE", "response_store", "one"),
)

# Every spelling the parser back reads, with the row and the value a switch spelling means.
BY_SPELLING: dict[str, tuple[Flag, bool]] = {
    **{row.flag: (row, True) for row in FLAGS},
    **{row.off: (row, False) for row in FLAGS if row.off is not None},
}


# Parser destinations the ServeConfig sets, with the field to use instead. Extra arguments may
# not set these: two sources for one value is how a deployment ends up running something else
# than its config says.
def _dest(spelling: str) -> str:
    """The parser destination of a spelling, from the first version that has it."""
    return next(
        option_table(v).options[spelling].dest
        for v in VLLM_VERSIONS
        if spelling in option_table(v).options
    )


OWNED_DESTS: dict[str, str] = {
    # The model is vLLM's positional argument (``model_tag``), also spelt ``--model``.
    "model": "model",
    "model_tag": "model",
    **{_dest(row.flag): row.owned_by for row in FLAGS},
    # Not config fields, but never allowed on argv: a key on the command line shows up in
    # process listings and logs (the app passes it as VLLM_API_KEY), and a YAML config file
    # would override the config behind our back.
    "api_key": "the VLLM_API_KEY environment variable (a Modal Secret), never argv",
    "hf_token": "the HF_TOKEN environment variable (a Modal Secret), never argv",
    "config": "ServeConfig fields (a vLLM YAML config would bypass validation)",
}


# Options whose value is a credential: argv is visible in process listings and deploy logs.
SECRET_DESTS = frozenset({"api_key", "hf_token"})


def owned_field(option: str) -> str | None:
    """The config field that owns a flag spelling, or None if extra args may use it."""
    name = option.split("=", 1)[0]
    for version in VLLM_VERSIONS:
        known = option_table(version).options.get(name)
        if known is not None:
            return OWNED_DESTS.get(known.dest)
    return None


def versions_with(spelling: str) -> tuple[VllmVersion, ...]:
    """The supported vLLM versions whose ``vllm serve`` accepts ``spelling``."""
    return tuple(v for v in VLLM_VERSIONS if spelling in option_table(v).options)


def _suggest(option: str, version: VllmVersion) -> str:
    others = versions_with(option)
    if others:
        return (
            f"; {option} exists in vLLM {' and '.join(others)}: "
            f"set vllm_version={others[-1]!r} to use it"
        )
    import difflib  # only on the error path

    spellings = list(option_table(version).options)
    close = difflib.get_close_matches(option, spellings, n=3, cutoff=0.75)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def _refused(field: str, what: str) -> ConfigError:
    """An extra_args error that names options only: a value (``--api-key=sk-...``, or one after
    its option) may be a secret, and every error reaches a terminal or a deploy log."""
    return ConfigError(field, "<hidden>", what, message=f"{field}: {what}")


def validate_extra_args(
    args: Sequence[str],
    *,
    field: str = "extra_args",
    version: VllmVersion = DEFAULT_VLLM_VERSION,
) -> tuple[str, ...]:
    """Check extra ``vllm serve`` arguments against vLLM's option table; return them as a tuple.

    Each option must exist in ``version``, must not be owned by a config field, and must get
    the number of values it takes (``--flag value`` or ``--flag=value``), from its choices when
    vLLM restricts them. Errors name options and positions, never a value.
    """
    tokens = tuple(args)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not isinstance(token, str) or not token.startswith("-") or token in ("-", "--"):
            after = f" (after {_option_name(tokens[i - 1])})" if i else ""
            raise _refused(
                field,
                f"argument {i + 1}{after} is not a vllm serve option; each extra argument "
                "starts with one, such as --seed, and its values follow it",
            )
        name, has_inline, inline = token.partition("=")
        option = _unowned_option(field, name, version)
        values: list[str] = [inline] if has_inline else []
        i += 1
        if not has_inline:
            while i < len(tokens) and not _looks_like_option(tokens[i]):
                values.append(tokens[i])
                i += 1
        _check_arity(field, option, values)
    return tokens


def _option_name(token: object) -> str:
    """The option a token spells (``--seed`` of ``--seed=1``), or ``a value``."""
    if isinstance(token, str) and token.startswith("-") and not _is_number(token):
        return token.partition("=")[0]
    return "a value"


def _unowned_option(field: str, name: str, version: VllmVersion) -> VllmOption:
    """The option ``name`` spells, if ``version`` has it and the config does not own it."""
    option = option_table(version).options.get(name)
    if option is None:
        raise _refused(
            field, f"{name} is not an option vllm serve {version} accepts{_suggest(name, version)}"
        )
    if option.dest in SECRET_DESTS:
        # argv shows in process listings and deploy logs: a credential never goes there.
        raise _refused(
            field, f"{name} is a credential, not in extra_args: use {OWNED_DESTS[option.dest]}"
        )
    if option.dest in OWNED_DESTS:
        raise _refused(
            field, f"{name} is the config's, not in extra_args: set {OWNED_DESTS[option.dest]}"
        )
    return option


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _looks_like_option(token: str) -> bool:
    # "-1" is a value (a negative number), "--seed" and "-tp" are options.
    return token.startswith("-") and not _is_number(token)


def _check_arity(field: str, option: VllmOption, values: list[str]) -> None:
    counts = {"0": (0, 0), "1": (1, 1), "?": (0, 1), "+": (1, 10**6), "*": (0, 10**6)}
    low, high = counts.get(option.arity, (0, 10**6))
    spelling = option.spellings[0]
    if not low <= len(values) <= high:
        wanted = {"0": "no value", "1": "exactly one value", "?": "at most one value"}.get(
            option.arity, "one or more values"
        )
        got = {0: "none"}.get(len(values), str(len(values)))
        raise _refused(field, f"{spelling} takes {wanted}, it was given {got}")
    if option.choices is not None and any(v not in option.choices for v in values):
        raise _refused(field, f"{spelling} is one of {', '.join(option.choices)}")
