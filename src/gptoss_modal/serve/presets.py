"""What we know about the models, the GPUs and the tuning profiles, as plain data.

Every number here has a reason next to it; the config module only combines them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from gptoss_modal.serve.options import VLLM_VERSIONS, VllmVersion, option_table

Arch = Literal["blackwell", "hopper", "ampere"]
ProfileName = Literal["balanced", "latency", "throughput", "seed"]

PROFILES: tuple[ProfileName, ...] = get_args(ProfileName)


@dataclass(frozen=True)
class ModelPreset:
    """A gpt-oss checkpoint with its pinned revision (its EAGLE3 draft is per vLLM recipe)."""

    id: str
    revision: str
    aliases: tuple[str, ...]
    weights_gib: float  # MXFP4 MoE + bf16 attention, as the safetensors on the Hub weigh
    num_attention_heads: int  # tensor parallelism must divide this
    max_context: int  # tokens; the longest --max-model-len the model supports


MODELS: dict[str, ModelPreset] = {
    preset.id: preset
    for preset in (
        ModelPreset(
            id="openai/gpt-oss-20b",
            # The revision the seed deployment pinned.
            revision="d666cf3b67006cf8227666739edf25164aaffdeb",
            aliases=("gpt-oss-20b", "20b"),
            weights_gib=12.8,
            num_attention_heads=64,
            max_context=131072,
        ),
        ModelPreset(
            id="openai/gpt-oss-120b",
            # The snapshot most public gpt-oss-120b deployments pin; the deploy preflight
            # checks it still exists on the Hub.
            revision="b5c939de8f754692c1647ca79fbf85e8c1e70f8a",
            aliases=("gpt-oss-120b", "120b"),
            weights_gib=60.8,
            num_attention_heads=64,
            max_context=131072,
        ),
    )
}


@dataclass(frozen=True)
class GPUPreset:
    """A Modal GPU type: its memory and the architecture that decides vLLM's kernels."""

    name: str
    memory_gib: int
    arch: Arch


GPUS: dict[str, GPUPreset] = {
    gpu.name: gpu
    for gpu in (
        GPUPreset("B200", 180, "blackwell"),
        GPUPreset("H200", 141, "hopper"),
        GPUPreset("H100", 80, "hopper"),
        GPUPreset("A100-80GB", 80, "ampere"),
        GPUPreset("A100-40GB", 40, "ampere"),
    )
}

MAX_GPUS_PER_CONTAINER = 8  # Modal's limit for one container

# Memory vLLM needs beyond the weights to start at all: activations, CUDA graphs, a minimal
# KV cache and the EAGLE3 draft. Below this the engine fails at start with an OOM.
MIN_HEADROOM_GIB = 6.0
# vLLM's default --gpu-memory-utilization.
VLLM_DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
# When the weights take more than this share of the GPUs' memory, apply the recipe's
# single-H100 advice for 120b: use 95% of memory and prefill in small chunks.
TIGHT_MEMORY_SHARE = 0.5
TIGHT_GPU_MEMORY_UTILIZATION = 0.95
TIGHT_MAX_NUM_BATCHED_TOKENS = 1024


@dataclass(frozen=True)
class Profile:
    """Defaults a profile applies to every field the user left unset."""

    max_inputs: int
    max_num_seqs: int | None
    max_num_batched_tokens: int
    stream_interval: int
    speculative: bool
    max_model_len: int
    # vLLM compares --max-cudagraph-capture-size with the *tokens* of a batch, and a decode
    # step of n requests with k draft tokens carries n * (1 + k). False keeps the seed's
    # capture size of max_inputs (graphs then cover max_inputs / (1 + k) decoding requests).
    capture_decode_tokens: bool
    reason: str
    # The vLLM version the profile pins; None: the caller's, else the package default.
    vllm_version: VllmVersion | None = None


PROFILE_DEFAULTS: dict[ProfileName, Profile] = {
    "balanced": Profile(
        # The seed's values with CUDA graphs sized in tokens: 32 concurrent inputs per replica,
        # prefill chunks of 16k tokens, 32k context, tokens sent 20 at a time.
        max_inputs=32,
        max_num_seqs=None,
        max_num_batched_tokens=16384,
        stream_interval=20,
        speculative=True,
        max_model_len=32768,
        capture_decode_tokens=True,
        reason="interactive use at moderate concurrency (the default)",
    ),
    "latency": Profile(
        # Few sequences per replica keep each decode step short (the recipe's advice for lowest
        # latency is a small --max-num-seqs), EAGLE3 pays off most at small batch, and at 8
        # streams sending every token at once costs little host time.
        max_inputs=8,
        max_num_seqs=8,
        max_num_batched_tokens=16384,
        stream_interval=1,
        speculative=True,
        max_model_len=32768,
        capture_decode_tokens=True,
        reason="lowest time to first token and per-token latency for a few users",
    ),
    "throughput": Profile(
        # Large batches: the recipe's 8192-token prefill chunks, 256 sequences, no speculative
        # decoding (at large batch the forward pass is compute-bound, so drafting costs more
        # than it saves), tokens sent 20 at a time to save host overhead.
        max_inputs=256,
        max_num_seqs=256,
        max_num_batched_tokens=8192,
        stream_interval=20,
        speculative=False,
        max_model_len=32768,
        capture_decode_tokens=True,
        reason="most tokens per second per GPU for batch and many concurrent users",
    ),
    "seed": Profile(
        # The seed deployment exactly: balanced's values on vLLM 0.13.0, with the seed's CUDA
        # graph capture size of max_inputs (graphs then cover max_inputs / (1 + k) decoding
        # requests; kept for parity, see the advisories).
        max_inputs=32,
        max_num_seqs=None,
        max_num_batched_tokens=16384,
        stream_interval=20,
        speculative=True,
        max_model_len=32768,
        capture_decode_tokens=False,
        reason="the seed deployment, token for token (vLLM 0.13.0)",
        vllm_version="0.13.0",
    ),
}

# The --kv-cache-dtype values every supported vLLM accepts (each version's own list is in its
# generated option table; a config is checked against its version's).
KV_CACHE_DTYPES: tuple[str, ...] = tuple(
    dtype
    for dtype in option_table(VLLM_VERSIONS[0]).kv_cache_dtypes
    if all(dtype in option_table(v).kv_cache_dtypes for v in VLLM_VERSIONS)
)
