"""What vLLM runs: the typed serve config, its loading, and the ``vllm serve`` argv builder."""

from gptoss_modal.serve.command import build_vllm_command, parse_vllm_command, vllm_env
from gptoss_modal.serve.config import GPUSpec, ServeConfig, load_config

__all__ = [
    "GPUSpec",
    "ServeConfig",
    "build_vllm_command",
    "load_config",
    "parse_vllm_command",
    "vllm_env",
]
