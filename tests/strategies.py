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


@st.composite
def serve_config_kwargs(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments for ServeConfig across its whole space (some combinations invalid)."""
    speculative = draw(st.booleans())
    return {
        "model": draw(st.sampled_from([*MODELS, "20b", "gpt-oss-120b"])),
        "revision": draw(_maybe(st.from_regex(r"[0-9a-f]{40}", fullmatch=True))),
        "gpu": draw(st.sampled_from(list(GPUS))) + ":" + str(draw(st.sampled_from([1, 2, 4, 8]))),
        "profile": draw(_maybe(st.sampled_from(PROFILES))),
        "speculative": speculative,
        "speculative_model": draw(_maybe(st.sampled_from(["org/draft", "RedHatAI/x.eagle3"])))
        if speculative
        else None,
        "num_speculative_tokens": draw(_maybe(st.integers(1, 15))) if speculative else None,
        "kv_cache_dtype": draw(_maybe(st.sampled_from(KV_CACHE_DTYPES))),
        "fuse_allreduce_rms": draw(_maybe(st.booleans())),
        "eliminate_noops": draw(_maybe(st.booleans())),
        "fast_boot": draw(st.booleans()),
        "max_inputs": draw(_maybe(st.integers(1, 1000))),
        "max_cudagraph_capture_size": draw(_maybe(st.integers(1, 8192))),
        "max_num_batched_tokens": draw(_maybe(st.integers(1, 2**20))),
        "max_model_len": draw(_maybe(st.integers(1, 131072))),
        "max_num_seqs": draw(_maybe(st.integers(1, 1024))),
        "gpu_memory_utilization": draw(_maybe(st.floats(0.5, 1.0))),
        "async_scheduling": draw(st.booleans()),
        "stream_interval": draw(_maybe(st.integers(1, 64))),
        "served_model_names": draw(
            _maybe(
                st.lists(
                    st.from_regex(r"[a-z][a-z0-9./_-]{0,20}", fullmatch=True),
                    min_size=1,
                    max_size=3,
                    unique=True,
                ).map(tuple)
            )
        ),
        "port": draw(st.integers(1, 65535)),
        "tool_calling": draw(st.booleans()),
        "extra_args": draw(st.sampled_from(EXTRA_ARG_CHOICES)),
        "tool_server": draw(st.sampled_from(TOOL_SERVER_CHOICES)),
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
