"""``MockConfig``: how the mock behaves, with each field's command-line option beside it.

Pure (no aiohttp), so the CLI can build ``gptoss-modal mock``'s options from these fields
without loading the server: adding a field here adds its option there. A bad value is a
:class:`~gptoss_modal._exceptions.ConfigError` naming the field.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from typing import Literal

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.serve.options import DEFAULT_VLLM_VERSION, VLLM_VERSIONS, VllmVersion
from gptoss_modal.testing import _engine as engine
from gptoss_modal.testing._faults import FAULTS, parse_fault
from gptoss_modal.testing._tool_faults import TOOL_FAULT_FIELDS, check_rates

__all__ = ["CliOption", "MockConfig", "cli_option"]

_NOT_SET = object()


@dataclass(frozen=True)
class CliOption:
    """How a ``MockConfig`` field appears on ``gptoss-modal mock``'s command line.

    ``flag`` overrides the spelling made from the field's name (a ``True`` boolean becomes
    ``--no-NAME``); ``default`` overrides the field's default on the command line only;
    ``hidden`` gives the reason a field has no option.
    """

    help: str
    flag: str | None = None
    default: object = _NOT_SET
    hidden: str | None = None

    @property
    def has_default(self) -> bool:
        """Whether the command line has its own default for this field."""
        return self.default is not _NOT_SET


def cli_option(config_field: dataclasses.Field[object]) -> CliOption:
    """The command-line description kept beside a ``MockConfig`` field."""
    option = config_field.metadata.get("cli")
    if not isinstance(option, CliOption):
        raise TypeError(f"MockConfig.{config_field.name} has no CliOption in its metadata")
    return option


def _cli(
    help: str, *, flag: str | None = None, default: object = _NOT_SET, hidden: str | None = None
) -> dict[str, CliOption]:
    return {"cli": CliOption(help, flag=flag, default=default, hidden=hidden)}


# The mock's sleep-mode faults (see _sleep.py): /wake_up answers but the engine stays asleep;
# or every chat after a wake is malformed.
SLEEP_FAULTS = ("never-wakes", "garbled-after-wake")


def _check_sleep_fault(value: str | None) -> None:
    if value is not None and value not in SLEEP_FAULTS:
        raise ConfigError("sleep_fault", value, f"one of {', '.join(SLEEP_FAULTS)}, or none")


def _positive_times(config: MockConfig) -> None:
    for name in ("ttft_ms", "itl_ms", "jitter_ms", "cold_start_s"):
        value = getattr(config, name)
        if value < 0:
            raise ConfigError(name, value, ">= 0")


@dataclass(frozen=True)
class MockConfig:
    """How the mock behaves. Times are in milliseconds, as on the command line."""

    vllm_version: VllmVersion = dataclasses.field(
        default=DEFAULT_VLLM_VERSION,
        metadata=_cli(
            f"the vLLM version whose wire format is served: {', '.join(VLLM_VERSIONS)}",
            flag="--vllm",
        ),
    )
    served_model_names: tuple[str, ...] = dataclasses.field(
        default=("openai/gpt-oss-20b", "llm"),
        metadata=_cli("served names, one /v1/models card each", flag="--served-model-name"),
    )
    model: str = dataclasses.field(
        default="openai/gpt-oss-20b", metadata=_cli("the model the cards name as their root")
    )
    max_model_len: int = dataclasses.field(
        default=32768, metadata=_cli("context length: on the cards; caps max_tokens")
    )
    api_keys: tuple[str, ...] = dataclasses.field(
        default=(), metadata=_cli("require one of these keys on /v1/*", flag="--api-key")
    )
    # A terminal server paces like a real one; in Python the default is as fast as possible.
    ttft_ms: float = dataclasses.field(
        default=0.0, metadata=_cli("time to first token (ms)", default=200.0)
    )
    itl_ms: float = dataclasses.field(
        default=0.0, metadata=_cli("time per output token (ms)", default=20.0)
    )
    jitter_ms: float = dataclasses.field(
        default=0.0, metadata=_cli("uniform jitter per engine step (ms)")
    )
    seed: int = dataclasses.field(default=0, metadata=_cli("seed for text, jitter and faults"))
    stream_interval: int = dataclasses.field(default=1, metadata=_cli("vLLM's --stream-interval"))
    content_tokens: int = dataclasses.field(
        default=64, metadata=_cli("content length of a reply that is not cut short (tokens)")
    )
    reasoning_tokens: tuple[tuple[str, int], ...] = dataclasses.field(
        default=tuple(engine.REASONING_TOKENS.items()),
        metadata=_cli("reasoning tokens per effort", hidden="a table, set it in Python"),
    )
    reasoning_shape: Literal["v0.13", "v0.16"] = dataclasses.field(
        default="v0.13",
        metadata=_cli(
            "with --vllm 0.13.0: v0.13 sends reasoning and reasoning_content, v0.16 reasoning "
            "only (0.33.0 never sends reasoning_content)"
        ),
    )
    tool_parser: bool = dataclasses.field(
        default=True,  # as with ``--tool-call-parser openai --enable-auto-tool-choice``
        metadata=_cli(
            "serve as without --tool-call-parser openai (non-streamed tool calls stay text)"
        ),
    )
    num_speculative_tokens: int = dataclasses.field(
        default=0, metadata=_cli("draft tokens per step (0: off)")
    )
    spec_acceptance_rate: float = dataclasses.field(
        default=0.7, metadata=_cli("fraction of draft tokens accepted")
    )
    fault: str | None = dataclasses.field(
        default=None,
        metadata=_cli(
            f"server-wide fault NAME[:key=value,...]: {', '.join(FAULTS)} "
            "(keys: after, rate, seconds, code, message)"
        ),
    )
    cold_start_s: float = dataclasses.field(default=0.0, metadata=_cli("seconds before serving"))
    cold_start_mode: Literal["refuse", "unhealthy"] = dataclasses.field(
        default="refuse", metadata=_cli("during the cold start: refuse connections, or answer 503")
    )
    dev_mode: bool = dataclasses.field(
        default=False,
        metadata=_cli("serve /sleep, /wake_up and /is_sleeping, as VLLM_SERVER_DEV_MODE=1 does"),
    )
    sleep_fault: str | None = dataclasses.field(
        default=None,
        metadata=_cli("with --dev-mode: never-wakes, or garbled-after-wake (malformed chats)"),
    )
    coalesce_writes: bool = dataclasses.field(
        default=True,  # False: one write per event, as vLLM's server does
        metadata=_cli(
            "write each event on its own, as vLLM does (default: coalesce events that are due)",
            flag="--one-event-per-write",
        ),
    )
    record_send_times: bool = dataclasses.field(
        default=False,
        metadata=_cli("keep a time per event written", hidden="read in-process (send_log)"),
    )
    site_packages: str = dataclasses.field(
        default="/usr/local/lib/python3.12/site-packages",
        metadata=_cli("the path in validation messages", hidden="pinned by the contract tests"),
    )
    system_fingerprint: str | None = dataclasses.field(
        default=None,
        metadata=_cli(
            "the system_fingerprint 0.33.0 puts on a stream's last chunk "
            "(default: vllm-VERSION-HASH8, HASH8 made from the model name)"
        ),
    )

    # Tool-call faults at known rates over tool-call turns (see _tool_faults: exact counts).
    tool_name_leak_rate: float = dataclasses.field(
        default=0.0,
        metadata=_cli("share of tool calls whose name leaks harmony markup (NAME<|channel|>...)"),
    )
    tool_content_leak_rate: float = dataclasses.field(
        default=0.0,
        metadata=_cli("share of tool calls written into the content with their harmony markup"),
    )
    tool_args_length_rate: float = dataclasses.field(
        default=0.0,
        metadata=_cli("share of tool calls cut inside their arguments by max_tokens (length)"),
    )
    tool_args_short_rate: float = dataclasses.field(
        default=0.0,
        metadata=_cli("share of tool calls ending with cut JSON arguments (finish tool_calls)"),
    )
    harmony_error_rate: float = dataclasses.field(
        default=0.0,
        metadata=_cli("share of tool calls that end in vLLM's HarmonyError (in-stream or 500)"),
    )
    enable_prompt_tokens_details: bool = dataclasses.field(
        default=False,
        metadata=_cli("report usage.prompt_tokens_details.cached_tokens, as vLLM's flag does"),
    )
    tool_server: str | None = dataclasses.field(
        default=None,  # vLLM's default: no --tool-server, built-in tools are ignored
        metadata=_cli(
            "demo: run Responses built-in tools (web_search_preview, code_interpreter) as "
            "vLLM's --tool-server demo does (the mock scripts their events; nothing runs)"
        ),
    )
    responses_store: bool = dataclasses.field(
        default=False,  # vLLM's default: VLLM_ENABLE_RESPONSES_API_STORE unset
        metadata=_cli(
            "keep Responses for GET /v1/responses/{id} and previous_response_id, as "
            "VLLM_ENABLE_RESPONSES_API_STORE=1 does (the mock keeps the last 1000)"
        ),
    )

    def __post_init__(self) -> None:
        if self.vllm_version not in VLLM_VERSIONS:
            raise ConfigError(
                "vllm_version", self.vllm_version, f"one of {', '.join(VLLM_VERSIONS)}"
            )
        if self.stream_interval < 1:
            raise ConfigError("stream_interval", self.stream_interval, ">= 1")
        _positive_times(self)
        if not self.served_model_names:
            raise ConfigError("served_model_names", self.served_model_names, "at least one name")
        engine.DraftAcceptance(self.num_speculative_tokens, self.spec_acceptance_rate)
        if self.fault:
            parse_fault(self.fault)
        _check_sleep_fault(self.sleep_fault)
        if self.tool_server not in (None, "demo"):
            raise ConfigError("tool_server", self.tool_server, "demo, or none")
        check_rates(self.tool_fault_rates)

    @property
    def tool_fault_rates(self) -> dict[str, float]:
        """Each tool-call fault's rate, by its field's name (in the faults' priority order)."""
        return {name: getattr(self, name) for name in TOOL_FAULT_FIELDS}

    @property
    def version(self) -> VllmVersion:
        """The vLLM version served (``/version``, the wire format)."""
        return self.vllm_version

    @property
    def fingerprint(self) -> str:
        """The ``system_fingerprint`` 0.33.0 sends: as set, or ``vllm-<version>-<hash8>`` as
        ``--fingerprint-mode full`` writes it for one GPU (the hash made here from the model)."""
        if self.system_fingerprint is not None:
            return self.system_fingerprint
        return f"vllm-{self.vllm_version}-{zlib.crc32(self.model.encode()):08x}"
