"""gptoss-modal: OpenAI's gpt-oss served by vLLM on Modal, tuned, secure, tested and measured.

The public API is re-exported here, built from the subpackages' own ``__all__``: the errors
(:mod:`gptoss_modal._exceptions`), the serve config and command builder
(:mod:`gptoss_modal.serve`) and the streaming layer (:mod:`gptoss_modal.stream`). Importing it
loads no modal, aiohttp, vllm or msgspec: the command builder is pure, and each streaming name
loads its module on first use (PEP 562), so ``gptoss_modal.SSEDecoder`` needs nothing,
``gptoss_modal.ChatChunk`` msgspec and ``gptoss_modal.Client`` aiohttp. The Modal app is
``gptoss_modal.app`` and the mock server ``gptoss_modal.testing.mock_server``; import those
explicitly.
"""

from typing import TYPE_CHECKING, Any

from gptoss_modal import _exceptions, serve, stream
from gptoss_modal._exceptions import *  # noqa: F403
from gptoss_modal._version import __version__
from gptoss_modal.serve import *  # noqa: F403

if TYPE_CHECKING:
    from gptoss_modal.stream import *  # noqa: F403

__all__ = ["__version__"]
__all__ += _exceptions.__all__
__all__ += serve.__all__
__all__ += stream.__all__


def __getattr__(name: str) -> Any:
    """A streaming name, loaded from its module the first time it is asked for."""
    if name in stream.__all__:
        value = getattr(stream, name)
        globals()[name] = value  # next time, a plain attribute
        return value
    raise AttributeError(f"module 'gptoss_modal' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
