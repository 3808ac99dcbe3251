"""What each vLLM version's gpt-oss recipe sets: the EAGLE3 drafts and how Blackwell's MoE
kernel is chosen. Plain data; :mod:`gptoss_modal.serve.config` combines it with the profile."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from gptoss_modal.serve.options import VllmVersion

SPECULATIVE_METHOD = "eagle3"


@dataclass(frozen=True)
class Draft:
    """An EAGLE3 draft model and how many tokens it proposes per step."""

    model: str
    tokens: int


@dataclass(frozen=True)
class Recipe:
    """One vLLM version's gpt-oss recipe, as far as the config follows it."""

    version: VllmVersion
    source: str  # where the values come from
    drafts: Mapping[str, Draft]  # by model id
    # How the version turns on FlashInfer's MXFP4 x MXFP8 MoE kernel on Blackwell: an
    # environment variable (0.13.0) or ``--quantization-config`` (0.24 and later, where the
    # variable is gone and the default became the BF16-activation kernel).
    mxfp8_moe_via: Literal["env", "quantization_config"]
    mxfp8_moe_env: Mapping[str, str]
    mxfp8_moe_quantization: Mapping[str, Any]


RECIPES: dict[VllmVersion, Recipe] = {
    "0.13.0": Recipe(
        version="0.13.0",
        source="the vLLM 0.12/0.13-era gpt-oss recipe and the seed deployment",
        drafts={
            # The seed drafts 7 tokens; vLLM's own test of this draft uses 3 (acceptance length
            # ~2.56), so 7 trades a little wasted draft compute for longer accepted runs.
            "openai/gpt-oss-20b": Draft("RedHatAI/gpt-oss-20b-speculator.eagle3", 7),
            "openai/gpt-oss-120b": Draft("nvidia/gpt-oss-120b-Eagle3-v2", 3),
        },
        mxfp8_moe_via="env",
        # On Hopper the Triton kernels are vLLM's default (the BF16 FlashInfer variant has been
        # reported to give garbage there), so the variable is Blackwell-only.
        mxfp8_moe_env={"VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8": "1"},
        mxfp8_moe_quantization={},
    ),
    "0.33.0": Recipe(
        version="0.33.0",
        source="vLLM 0.33.0's sdist, recipes/models/openai/gpt-oss-{20b,120b}.yaml",
        drafts={
            "openai/gpt-oss-20b": Draft("RedHatAI/gpt-oss-20b-speculator.eagle3", 3),
            "openai/gpt-oss-120b": Draft("nvidia/gpt-oss-120b-Eagle3-v3", 7),
        },
        mxfp8_moe_via="quantization_config",
        mxfp8_moe_env={},
        # The recipe's Blackwell override, ``--quantization-config.moe.activation mxfp8``,
        # written as the JSON the dotted form expands to.
        mxfp8_moe_quantization={"moe": {"activation": "mxfp8"}},
    ),
}
