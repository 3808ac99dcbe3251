"""Print one vLLM version's Modal image pins, one per line, for ``uv pip compile``.

``make lock-vllm VLLM_VERSION=0.33.0`` pipes this into ``uv pip compile`` for the image's Python
on x86_64-manylinux_2_28, which proves offline that ``uv pip install`` in the image resolves.
"""

from __future__ import annotations

import sys

from gptoss_modal.deploy.image import IMAGES


def main(argv: list[str]) -> None:
    """``VERSION``: the pins; ``--python VERSION``: the image's Python version."""
    *flag, version = argv
    pins = next(pins for v, pins in IMAGES.items() if v == version)
    if flag == ["--python"]:
        sys.stdout.write(pins.python_version + "\n")
    else:
        sys.stdout.write("".join(f"{package}\n" for package in pins.packages))


if __name__ == "__main__":
    main(sys.argv[1:])
