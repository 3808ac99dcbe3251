"""Hypothesis strategies shared by the unit and contract suites."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from gptoss_modal import ConfigError, ServeConfig
from gptoss_modal.serve.presets import GPUS, KV_CACHE_DTYPES, MODELS, PROFILES

# Extra arguments that vLLM 0.13.0 accepts and the config does not own.
EXTRA_ARG_CHOICES: tuple[tuple[str, ...], ...] = (
    (),
    ("--seed", "7"),
    ("--enable-prefix-caching",),
    ("--no-enable-prefix-caching",),
    ("--disable-log-stats",),
    ("--uvicorn-log-level", "warning"),
    ("--max-logprobs", "5", "--seed", "0"),
    ("--swap-space", "8"),
)

# tool_server values: none, the demo tools, one or two MCP servers.
TOOL_SERVER_CHOICES: tuple[str | tuple[str, ...] | None, ...] = (
    None,
    "demo",
    ("localhost:8001",),
    ("tools.internal:9000", "10.0.0.7:8002"),
)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


# Each field's strategy, built once: a strategy made inside the composite is validated and
# labelled again on every draw, which was about a third of drawing a config.
_MODEL = st.sampled_from([*MODELS, "20b", "gpt-oss-120b"])
# The regexes [0-9a-f]{40} and [a-z][a-z0-9./_-]{0,20} as plain text strategies: the same
# strings, drawn without from_regex's filtering (four times cheaper per draw).
_HEX = "0123456789abcdef"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_REVISION = _maybe(st.text(alphabet=_HEX, min_size=40, max_size=40))
_GPU_NAME = st.sampled_from(list(GPUS))
_GPU_COUNT = st.sampled_from([1, 2, 4, 8])
_PROFILE = _maybe(st.sampled_from(PROFILES))
_SPECULATIVE_MODEL = _maybe(st.sampled_from(["org/draft", "RedHatAI/x.eagle3"]))
_NUM_SPECULATIVE_TOKENS = _maybe(st.integers(1, 15))
_KV_CACHE_DTYPE = _maybe(st.sampled_from(KV_CACHE_DTYPES))
_MAYBE_BOOL = _maybe(st.booleans())
_MAX_INPUTS = _maybe(st.integers(1, 1000))
_CAPTURE_SIZE = _maybe(st.integers(1, 8192))
_BATCHED_TOKENS = _maybe(st.integers(1, 2**20))
_MODEL_LEN = _maybe(st.integers(1, 131072))
_NUM_SEQS = _maybe(st.integers(1, 1024))
_MEMORY_SHARE = _maybe(st.floats(0.5, 1.0))
_STREAM_INTERVAL = _maybe(st.integers(1, 64))
_SERVED_NAMES = _maybe(
    st.lists(
        st.builds(
            str.__add__,
            st.sampled_from(_LOWER),
            st.text(alphabet=_LOWER + "0123456789./_-", max_size=20),
        ),
        min_size=1,
        max_size=3,
        unique=True,
    ).map(tuple)
)
_PORT = st.integers(1, 65535)
_EXTRA_ARGS = st.sampled_from(EXTRA_ARG_CHOICES)
_TOOL_SERVER = st.sampled_from(TOOL_SERVER_CHOICES)


@st.composite
def serve_config_kwargs(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments for ServeConfig across its whole space (some combinations invalid)."""
    speculative = draw(st.booleans())
    return {
        "model": draw(_MODEL),
        "revision": draw(_REVISION),
        "gpu": draw(_GPU_NAME) + ":" + str(draw(_GPU_COUNT)),
        "profile": draw(_PROFILE),
        "speculative": speculative,
        "speculative_model": draw(_SPECULATIVE_MODEL) if speculative else None,
        "num_speculative_tokens": draw(_NUM_SPECULATIVE_TOKENS) if speculative else None,
        "kv_cache_dtype": draw(_KV_CACHE_DTYPE),
        "fuse_allreduce_rms": draw(_MAYBE_BOOL),
        "eliminate_noops": draw(_MAYBE_BOOL),
        "fast_boot": draw(st.booleans()),
        "max_inputs": draw(_MAX_INPUTS),
        "max_cudagraph_capture_size": draw(_CAPTURE_SIZE),
        "max_num_batched_tokens": draw(_BATCHED_TOKENS),
        "max_model_len": draw(_MODEL_LEN),
        "max_num_seqs": draw(_NUM_SEQS),
        "gpu_memory_utilization": draw(_MEMORY_SHARE),
        "async_scheduling": draw(st.booleans()),
        "stream_interval": draw(_STREAM_INTERVAL),
        "served_model_names": draw(_SERVED_NAMES),
        "port": draw(_PORT),
        "tool_calling": draw(st.booleans()),
        "extra_args": draw(_EXTRA_ARGS),
        "tool_server": draw(_TOOL_SERVER),
        "response_store": draw(st.booleans()),
    }


@st.composite
def serve_configs(draw: st.DrawFn) -> ServeConfig:
    """Valid ServeConfigs drawn from the whole space (invalid combinations are rejected)."""
    kwargs = draw(serve_config_kwargs())
    try:
        return ServeConfig(**kwargs)
    except ConfigError:
        from hypothesis import reject

        reject()
