"""The container image for a deployment: the Hugging Face repos it reads, the base image, the
pinned packages and the tokenizer vocabularies, as a pure recipe that :mod:`gptoss_modal.app`
turns into a ``modal.Image``."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from gptoss_modal.deploy.settings import DEPLOYMENT_ENV, Deployment
from gptoss_modal.serve.config import ServeConfig
from gptoss_modal.serve.options import DEFAULT_VLLM_VERSION, VLLM_VERSIONS, VllmVersion

# ---- the Hugging Face repos a deployment reads -------------------------------------------

__all__ = [
    "IMAGES",
    "PINNED_PACKAGES",
    "HubRepo",
    "ImagePins",
    "ImageRecipe",
    "hub_repos",
    "image_recipe",
]


@dataclass(frozen=True)
class HubRepo:
    """A Hub repository vLLM loads at start: the model at its pinned revision, or the draft."""

    role: Literal["model", "speculator"]
    repo_id: str
    revision: str | None  # None: the repo's default branch (vLLM passes no revision)
    # Files vLLM never reads: the original PyTorch checkpoint and Apple Metal weights double the
    # download of gpt-oss.
    ignore_patterns: tuple[str, ...] = ()


GPT_OSS_UNUSED_FILES = ("original/*", "metal/*")


def hub_repos(config: ServeConfig) -> tuple[HubRepo, ...]:
    """The repos vLLM will download for ``config``: what the preflight and ``download`` use."""
    c = config.resolved()
    repos = [HubRepo("model", c.model, c.revision, GPT_OSS_UNUSED_FILES)]
    if c.speculative and c.speculative_model and not c.speculative_model.startswith("/"):
        repos.append(HubRepo("speculator", c.speculative_model, None))
    return tuple(repos)


# ---- the container image ----------------------------------------------------------------


@dataclass(frozen=True)
class ImagePins:
    """One vLLM version's image: a CUDA devel base whose nvcc matches the wheels' CUDA major
    (FlashInfer compiles kernels at first start), its Python, and exact package pins. The
    resolution is proven offline by ``requirements/image-vllm-<version>.lock`` (``make lock``:
    ``uv pip compile`` for this Python on x86_64-manylinux_2_28), which a test checks."""

    base_image: str
    python_version: str
    packages: tuple[str, ...]
    env: Mapping[str, str]  # what the image's Hub client needs


IMAGES: dict[VllmVersion, ImagePins] = {
    # torch 2.9.0 for CUDA 12.8. The Hub client stays below 1.0 because vLLM 0.13.0's
    # transformers requires it; hf_transfer speeds up the first download.
    "0.13.0": ImagePins(
        base_image="nvidia/cuda:12.8.1-devel-ubuntu22.04",
        python_version="3.12",
        packages=("vllm==0.13.0", "huggingface_hub[hf_transfer]==0.36.0"),
        env={"HF_HUB_ENABLE_HF_TRANSFER": "1"},
    ),
    # torch 2.14.0 and flashinfer 0.7.2 for CUDA 13 (nvidia-cuda-runtime 13.0): a 13.0 devel
    # base, the oldest CUDA 13 toolkit, needs the smallest driver (R580). Hub client 1.0+
    # downloads through hf-xet and no longer reads HF_HUB_ENABLE_HF_TRANSFER.
    "0.33.0": ImagePins(
        base_image="nvidia/cuda:13.0.1-devel-ubuntu24.04",
        python_version="3.12",
        packages=("vllm==0.33.0", "huggingface_hub==2.4.0"),
        env={},
    ),
}
assert tuple(IMAGES) == VLLM_VERSIONS, "one image per supported vLLM version"
# The default version's pins (what `modal deploy` installs without a config).
PINNED_PACKAGES = IMAGES[DEFAULT_VLLM_VERSION].packages
PACKAGE_NAME = "gptoss_modal"  # added to the image as local source

# gpt-oss's harmony tokenizer loads the o200k vocabulary by URL at start-up unless
# TIKTOKEN_ENCODINGS_BASE names a directory holding it; in a container without egress to
# openaipublic (or when it is down) the start fails. So the files are baked into the image,
# checked against the SHA-256 values harmony itself verifies.
TIKTOKEN_DIR = "/root/tiktoken_encodings"
TIKTOKEN_BASE_URL = "https://openaipublic.blob.core.windows.net/encodings/"
TIKTOKEN_VOCABULARIES = (
    ("o200k_base.tiktoken", "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"),
    ("cl100k_base.tiktoken", "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
)

# Run at image build time with the image's Python (python3 exists whatever standalone build Modal
# adds): download, verify, write; fail the build on a hash mismatch.
# Arguments: URL, expected SHA-256, destination path.
_FETCH_AND_VERIFY = (
    "import hashlib, sys, urllib.request; "
    "url, want, dest = sys.argv[1:]; "
    "data = urllib.request.urlopen(url, timeout=120).read(); "
    "got = hashlib.sha256(data).hexdigest(); "
    "sys.exit(f'{url}: sha256 {got}, expected {want}') if got != want else None; "
    "open(dest, 'wb').write(data)"
)


@dataclass(frozen=True)
class ImageRecipe:
    """What goes into the container image, in order; the app turns it into a ``modal.Image``."""

    base_image: str
    python_version: str
    packages: tuple[str, ...]
    build_commands: tuple[str, ...]
    env: dict[str, str]
    local_package: str


def image_recipe(deployment: Deployment) -> ImageRecipe:
    """The image for ``deployment``'s vLLM version: pinned packages, the vocabulary, vLLM's
    GPU environment, and the deployment's JSON (the only deployment-specific layer, so it is
    last and cheap)."""
    fetches = tuple(
        f"python3 -c {shlex.quote(_FETCH_AND_VERIFY)} "
        f"{shlex.quote(TIKTOKEN_BASE_URL + name)} {sha256} {shlex.quote(f'{TIKTOKEN_DIR}/{name}')}"
        for name, sha256 in TIKTOKEN_VOCABULARIES
    )
    pins = IMAGES[deployment.serve.version]
    env = {
        **pins.env,
        "TIKTOKEN_ENCODINGS_BASE": TIKTOKEN_DIR,
        **deployment.vllm_env,
        DEPLOYMENT_ENV: deployment.to_json(),
    }
    return ImageRecipe(
        base_image=pins.base_image,
        python_version=pins.python_version,
        packages=pins.packages,
        build_commands=(f"mkdir -p {TIKTOKEN_DIR}", *fetches),
        env=env,
        local_package=PACKAGE_NAME,
    )
