"""What vLLM runs: the typed serve config, its loading, the ``vllm serve`` argv builder and the
supported vLLM versions with each one's option table."""

from gptoss_modal.serve.command import build_vllm_command, parse_vllm_command, vllm_env
from gptoss_modal.serve.config import GPUSpec, ServeConfig, load_config
from gptoss_modal.serve.options import (
    DEFAULT_VLLM_VERSION,
    VLLM_VERSIONS,
    OptionTable,
    VllmVersion,
    option_table,
)

__all__ = [
    "DEFAULT_VLLM_VERSION",
    "VLLM_VERSIONS",
    "GPUSpec",
    "OptionTable",
    "ServeConfig",
    "VllmVersion",
    "build_vllm_command",
    "load_config",
    "option_table",
    "parse_vllm_command",
    "vllm_env",
]
