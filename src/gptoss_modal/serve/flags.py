"""Which ``vllm serve`` flags exist, which ones the config owns, and checks on ``extra_args``.

The option table is vLLM 0.13.0's own (``_vllm_options``), so a typo or a flag renamed by vLLM
is caught here, at config time, instead of as an engine crash twenty minutes into a cold start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.serve.options.v0_13_0 import OPTION_GROUPS, VLLM_VERSION


@dataclass(frozen=True)
class VllmOption:
    """One ``vllm serve`` option: its parser destination, spellings, arity and choices."""

    dest: str
    spellings: tuple[str, ...]
    arity: str  # "0" switch, "1" one value, "+" one or more, "?" zero or one
    choices: tuple[str, ...] | None


OPTIONS: dict[str, VllmOption] = {}
for _dest, _spellings, _arity, _choices in OPTION_GROUPS:
    _option = VllmOption(_dest, _spellings, _arity, _choices)
    for _spelling in _spellings:
        OPTIONS[_spelling] = _option

# Parser destinations the ServeConfig sets, with the field to use instead. Extra arguments may
# not set these: two sources for one value is how a deployment ends up running something else
# than its config says.
OWNED_DESTS: dict[str, str] = {
    "model": "model",
    "model_tag": "model",
    "revision": "revision",
    "served_model_name": "served_model_names",
    "host": "host",
    "port": "port",
    "async_scheduling": "async_scheduling",
    "enforce_eager": "fast_boot",
    "tensor_parallel_size": "gpu (the GPU count is the tensor-parallel size)",
    "compilation_config": "fuse_allreduce_rms / eliminate_noops",
    "speculative_config": "speculative / speculative_model / num_speculative_tokens",
    "stream_interval": "stream_interval",
    "kv_cache_dtype": "kv_cache_dtype",
    "max_cudagraph_capture_size": "max_cudagraph_capture_size",
    "max_num_batched_tokens": "max_num_batched_tokens",
    "max_model_len": "max_model_len",
    "max_num_seqs": "max_num_seqs",
    "gpu_memory_utilization": "gpu_memory_utilization",
    "tool_call_parser": "tool_calling",
    "enable_auto_tool_choice": "tool_calling",
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
    known = OPTIONS.get(option.split("=", 1)[0])
    return OWNED_DESTS.get(known.dest) if known else None


def _suggest(option: str) -> str:
    import difflib  # only on the error path

    close = difflib.get_close_matches(option, list(OPTIONS), n=3, cutoff=0.75)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def validate_extra_args(args: Sequence[str], *, field: str = "extra_args") -> tuple[str, ...]:
    """Check extra ``vllm serve`` arguments against vLLM's option table; return them as a tuple.

    Each option must exist in vLLM 0.13.0, must not be owned by a config field, and must get
    the number of values it takes (``--flag value`` or ``--flag=value``), from its choices when
    vLLM restricts them.
    """
    tokens = tuple(args)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not isinstance(token, str) or not token.startswith("-") or token in ("-", "--"):
            raise ConfigError(
                field, token, "each extra argument starts with a vllm serve option such as --seed"
            )
        name, has_inline, inline = token.partition("=")
        option = OPTIONS.get(name)
        if option is None:
            raise ConfigError(
                field, token, f"an option vllm serve {VLLM_VERSION} accepts{_suggest(name)}"
            )
        if option.dest in SECRET_DESTS:
            # Name the option, never echo what followed it: that is the secret.
            raise ConfigError(field, name, f"not in extra_args: use {OWNED_DESTS[option.dest]}")
        if option.dest in OWNED_DESTS:
            raise ConfigError(field, token, f"not in extra_args: set {OWNED_DESTS[option.dest]}")
        values: list[str] = [inline] if has_inline else []
        i += 1
        if not has_inline:
            while i < len(tokens) and not _looks_like_option(tokens[i]):
                values.append(tokens[i])
                i += 1
        _check_arity(field, token, option, values)
    return tokens


def _looks_like_option(token: str) -> bool:
    # "-1" is a value (a negative number), "--seed" and "-tp" are options.
    if not token.startswith("-"):
        return False
    try:
        float(token)
    except ValueError:
        return True
    return False


def _check_arity(field: str, token: str, option: VllmOption, values: list[str]) -> None:
    counts = {"0": (0, 0), "1": (1, 1), "?": (0, 1), "+": (1, 10**6), "*": (0, 10**6)}
    low, high = counts.get(option.arity, (0, 10**6))
    if not low <= len(values) <= high:
        wanted = {"0": "no value", "1": "exactly one value", "?": "at most one value"}.get(
            option.arity, "one or more values"
        )
        raise ConfigError(field, [token, *values], f"{option.spellings[0]} takes {wanted}")
    if option.choices is not None:
        for value in values:
            if value not in option.choices:
                raise ConfigError(
                    field, value, f"{option.spellings[0]} is one of {', '.join(option.choices)}"
                )
