"""What a snapshot start adds to ``vllm serve``: sleep mode and the dev endpoints, guarded.

Pure, per vLLM version, read from each version's code (the cached venvs):

- ``--enable-sleep-mode`` (both versions; ``vllm/engine/arg_utils.py``) turns on the cumem
  allocator, so ``POST /sleep?level=1`` can offload the weights to CPU and drop the KV cache;
- ``VLLM_SERVER_DEV_MODE=1`` (both versions) mounts ``/sleep``, ``/wake_up``, ``/is_sleeping``
  and the other dev routes (0.13.0: ``entrypoints/serve/sleep/api_router.py`` and
  ``entrypoints/openai/api_server.py``; 0.33.0: ``entrypoints/serve/dev/`` and the RL routers,
  ``entrypoints/launchers/api_server/routers.py``). None of them is under ``/v1``, so vLLM's API
  key does not guard them;
- ``--middleware`` (both versions) adds our :mod:`gptoss_modal.deploy.dev_guard`, which refuses
  every one of :data:`DEV_PATHS` without the container's own token: the dev routes are on the
  served port, but only the container can use them;
- nothing else: the other start-up savings are the serve config's own (``startup_plan``:
  ``VLLM_ENABLE_STARTUP_PLAN=1`` on 0.33.0), or already on a Volume (0.33.0 keeps FlashInfer's
  autotune results under ``VLLM_CACHE_ROOT``, the vLLM cache Volume, unless
  ``VLLM_FLASHINFER_AUTOTUNE_CACHE_DIR`` moves them:
  ``model_executor/warmup/flashinfer_autotune_cache.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from gptoss_modal.serve.options import DEFAULT_VLLM_VERSION, VllmVersion

__all__ = ["DEV_GUARD", "DEV_PATHS", "SLEEP_MODES", "SleepMode", "sleep_mode"]

# The ASGI middleware vLLM loads by import path (``--middleware``); see deploy/dev_guard.py.
DEV_GUARD = "gptoss_modal.deploy.dev_guard.DevEndpointGuard"

# Every route VLLM_SERVER_DEV_MODE=1 mounts, in either version: the union, so the guard is one
# list (a path one version lacks is a 404 there anyway).
DEV_PATHS: frozenset[str] = frozenset(
    {
        # both versions
        "/sleep",
        "/wake_up",
        "/is_sleeping",
        "/server_info",
        "/reset_prefix_cache",
        "/reset_mm_cache",
        "/collective_rpc",
        # 0.33.0: entrypoints/serve/dev/
        "/release_kv_cache_memory",
        "/reset_encoder_cache",
        # 0.33.0: entrypoints/rl/online/api_router.py
        "/pause",
        "/resume",
        "/abort_requests",
        "/is_paused",
        "/init_weight_transfer_engine",
        "/shutdown_weight_transfer_engine",
        "/start_weight_update",
        "/start_draft_weight_update",
        "/update_weights",
        "/finish_weight_update",
        "/update_weight_version",
        "/weight_info",
        "/weight_checker",
        "/get_world_size",
    }
)


@dataclass(frozen=True)
class SleepMode:
    """What one vLLM version needs for a start that can sleep, and what else saves start-up."""

    flags: tuple[str, ...]
    env: Mapping[str, str]
    sleep_params: Mapping[str, str] = field(default_factory=dict)  # POST /sleep's query


_BOTH_FLAGS = ("--enable-sleep-mode", "--middleware", DEV_GUARD)

SLEEP_MODES: Mapping[VllmVersion, SleepMode] = MappingProxyType(
    {
        "0.13.0": SleepMode(
            flags=_BOTH_FLAGS,
            env=MappingProxyType({"VLLM_SERVER_DEV_MODE": "1"}),
            sleep_params=MappingProxyType({"level": "1"}),
        ),
        "0.33.0": SleepMode(
            flags=_BOTH_FLAGS,
            env=MappingProxyType({"VLLM_SERVER_DEV_MODE": "1"}),
            # "wait" would drain in-flight requests; before a snapshot there are none but our
            # warm-up, which has finished, so vLLM's default "abort" loses nothing.
            sleep_params=MappingProxyType({"level": "1", "mode": "abort"}),
        ),
    }
)


def sleep_mode(version: VllmVersion | None) -> SleepMode:
    """The sleep-mode additions for ``version`` (``None``: the package's default version)."""
    return SLEEP_MODES[version or DEFAULT_VLLM_VERSION]
