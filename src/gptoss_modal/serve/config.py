"""The serve config: every choice behind one ``vllm serve`` deployment, validated on construction.

A ``ServeConfig`` holds what the user asked for. Fields left at ``None`` are filled in by
:meth:`ServeConfig.resolved` from the profile, the model and the GPU, following the gpt-oss
recipe. A resolved config has ``profile=None``: it is fully explicit, and there ``None`` means
"leave vLLM's own default" (the flag is not passed).

Configs load from code, a TOML file (``[serve]`` table), ``GPTOSS_*`` environment variables and
``key=value`` overrides, with one precedence: defaults < TOML < environment < overrides.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.serve.advisories import advisories
from gptoss_modal.serve.flags import validate_extra_args
from gptoss_modal.serve.loading import (
    ENV_PREFIX,
    MAY_HOLD_SECRETS,
    check_range,
    check_types,
    coerce_text,
    did_you_mean,
    env_values,
    hidden_value_error,
    toml_values,
)
from gptoss_modal.serve.options import (
    DEFAULT_VLLM_VERSION,
    VLLM_VERSIONS,
    VllmVersion,
    option_table,
)
from gptoss_modal.serve.presets import (
    GPUS,
    MAX_GPUS_PER_CONTAINER,
    MIN_HEADROOM_GIB,
    MODELS,
    PROFILE_DEFAULTS,
    PROFILES,
    TIGHT_GPU_MEMORY_UTILIZATION,
    TIGHT_MAX_NUM_BATCHED_TOKENS,
    TIGHT_MEMORY_SHARE,
    VLLM_DEFAULT_GPU_MEMORY_UTILIZATION,
    GPUPreset,
    ModelPreset,
    Profile,
    ProfileName,
)
from gptoss_modal.serve.recipes import RECIPES, SPECULATIVE_METHOD
from gptoss_modal.serve.render import check_expressible

__all__ = ["ENV_PREFIX", "SPECULATIVE_METHOD", "GPUSpec", "ServeConfig", "load_config"]

CONFIG_PATH_ENV = "GPTOSS_CONFIG"  # names the TOML file when no path is given
MAX_INPUTS_LIMIT = 1000  # Modal's @modal.concurrent ceiling per container
MAX_SPECULATIVE_TOKENS = 15  # beyond ~8 drafted tokens EAGLE3 acceptance is close to zero

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
_SERVED_NAME = re.compile(r"^[^\s-]\S*$")  # a leading "-" would read as a flag
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# One MCP server of tool_server: a host name or IPv4 address and a port (vLLM adds http:// and
# /sse). No scheme, no path, no comma: vLLM splits its flag's value on commas.
_MCP_SERVER = re.compile(
    r"^(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?):(?P<port>\d{1,5})$"
)
DEMO_TOOL_SERVER = "demo"  # vLLM's built-in browser and python tools (gpt-oss's reference ones)


@dataclass(frozen=True)
class GPUSpec:
    """A GPU type and how many of it one container gets (``B200:1``)."""

    preset: GPUPreset
    count: int

    @property
    def name(self) -> str:
        return self.preset.name

    def __str__(self) -> str:
        return f"{self.preset.name}:{self.count}"

    @classmethod
    def parse(cls, value: str, *, field: str = "gpu") -> GPUSpec:
        """Read ``TYPE[:COUNT]``, case-insensitively; unknown types and counts are errors."""
        if not isinstance(value, str):
            raise ConfigError(field, value, "a string such as 'B200:1'")
        name, _, count_text = value.strip().partition(":")
        canonical = {key.lower(): key for key in GPUS}.get(name.lower())
        if canonical is None:
            raise ConfigError(field, value, f"a GPU type among {', '.join(GPUS)} (e.g. 'H100:2')")
        try:
            count = int(count_text) if count_text else 1
        except ValueError:
            raise ConfigError(
                field, value, "TYPE:COUNT with a whole count, e.g. 'H100:2'"
            ) from None
        if not 1 <= count <= MAX_GPUS_PER_CONTAINER:
            raise ConfigError(field, value, f"a GPU count from 1 to {MAX_GPUS_PER_CONTAINER}")
        return cls(GPUS[canonical], count)


def _normalize_tool_server(value: object) -> object:
    """``"demo"``, a tuple of ``host:port`` MCP servers, or None; a comma list in one string
    (vLLM's own spelling, and how the environment and --set give it) becomes the tuple. Any
    other value is left for the type and value checks to name."""
    if isinstance(value, str):
        text = value.strip()
        if text.lower() == DEMO_TOOL_SERVER:
            return DEMO_TOOL_SERVER
        return tuple(part.strip() for part in text.split(","))
    return value


def _check_tool_server(value: str | tuple[str, ...] | None) -> None:
    if value is None or value == DEMO_TOOL_SERVER:
        return
    allowed = (
        f"'{DEMO_TOOL_SERVER}' or a list of MCP servers as host:port (e.g. "
        "['localhost:8001', 'tools.internal:9000']), each once, ports 1 to 65535"
    )
    entries = value if isinstance(value, tuple) else (value,)
    matches = [_MCP_SERVER.match(entry) for entry in entries]
    if (
        not entries
        or not all(m and 1 <= int(m["port"]) <= 65535 for m in matches)
        or len(set(entries)) != len(entries)
    ):
        raise ConfigError("tool_server", value, allowed)


def _normalize_model(value: str) -> str:
    if isinstance(value, str):
        for preset in MODELS.values():
            if value.strip().lower() in (preset.id.lower(), *preset.aliases):
                return preset.id
    allowed = ", ".join(f"{p.id} (or {'/'.join(p.aliases)})" for p in MODELS.values())
    raise ConfigError("model", value, f"one of {allowed}")


@dataclass(frozen=True)
class ServeConfig:
    """Everything that decides how vLLM serves gpt-oss, validated when constructed.

    ``None`` means "derive it" (from ``profile``, the model and the GPU) unless ``profile`` is
    ``None``, in which case the config is explicit and ``None`` means "vLLM's default".
    """

    model: str = "openai/gpt-oss-20b"
    revision: str | None = None
    gpu: str = "B200:1"
    profile: ProfileName | None = "balanced"
    speculative: bool = True
    speculative_model: str | None = None
    num_speculative_tokens: int | None = None
    kv_cache_dtype: str | None = None
    fuse_allreduce_rms: bool | None = None
    eliminate_noops: bool | None = None
    fast_boot: bool = False
    max_inputs: int | None = None
    max_cudagraph_capture_size: int | None = None
    max_num_batched_tokens: int | None = None
    max_model_len: int | None = None
    max_num_seqs: int | None = None
    gpu_memory_utilization: float | None = None
    async_scheduling: bool = True
    stream_interval: int | None = None
    served_model_names: tuple[str, ...] | None = None
    host: str = "0.0.0.0"
    port: int = 8000
    tool_calling: bool = False
    # May carry a secret (``--api-key=...`` is refused, but only after reading it): errors
    # about it name the field and never show its value.
    extra_args: tuple[str, ...] = field(default=(), metadata={MAY_HOLD_SECRETS: True})
    # Which vLLM runs it; None: the profile's (``seed`` pins 0.13.0), else the default 0.33.0.
    vllm_version: VllmVersion | None = None
    # FlashInfer's MXFP4 x MXFP8 MoE kernel (Blackwell only); None: on exactly on Blackwell.
    mxfp8_moe: bool | None = None
    # Server-side TTFT, queue time and ITL in the final usage chunk (vLLM 0.33.0).
    per_request_metrics: bool = False
    # VLLM_ENABLE_STARTUP_PLAN: reuse the memory profile saved under the vLLM cache (0.33.0).
    startup_plan: bool = False
    # VLLM_SYSTEM_START_DATE: a fixed date in harmony's system prompt, YYYY-MM-DD (0.33.0).
    system_start_date: str | None = None
    # --tool-server: built-in tools for the Responses API. None: none; "demo": vLLM's browser
    # and python tools; or MCP servers as "host:port" entries. Off by default: see advisories.
    tool_server: str | tuple[str, ...] | None = None
    # VLLM_ENABLE_RESPONSES_API_STORE: keep every response in the replica's memory so `store`,
    # GET /v1/responses/{id} and previous_response_id work. Off by default: see advisories.
    response_store: bool = False

    # ---- construction -------------------------------------------------------------------

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise in place once, at construction
        set_(self, "model", _normalize_model(self.model))
        set_(self, "gpu", str(GPUSpec.parse(self.gpu)))
        for name in ("served_model_names", "extra_args", "tool_server"):
            value = getattr(self, name)
            if isinstance(value, list):
                set_(self, name, tuple(value))
        set_(self, "tool_server", _normalize_tool_server(self.tool_server))
        check_types(self)  # before anything reads the lists: a str is not a list of str
        self._check_version()
        set_(self, "extra_args", validate_extra_args(self.extra_args, version=self.version))
        self._check_fields()
        # Resolving checks the combination (memory, tensor parallelism, batching) as well.
        _ = self.resolved_view

    @property
    def version(self) -> VllmVersion:
        """The vLLM version this config runs: its own, its profile's, or the default."""
        pinned = PROFILE_DEFAULTS[self.profile].vllm_version if self.profile else None
        return self.vllm_version or pinned or DEFAULT_VLLM_VERSION

    def _check_version(self) -> None:
        if self.vllm_version is not None and self.vllm_version not in VLLM_VERSIONS:
            raise ConfigError(
                "vllm_version", self.vllm_version, f"one of {', '.join(VLLM_VERSIONS)}"
            )
        if self.profile is not None and self.profile not in PROFILES:
            raise ConfigError("profile", self.profile, f"one of {', '.join(PROFILES)} or None")
        pinned = PROFILE_DEFAULTS[self.profile].vllm_version if self.profile else None
        if pinned and self.vllm_version not in (None, pinned):
            raise ConfigError(
                "vllm_version",
                self.vllm_version,
                f"{pinned!r} or unset with profile={self.profile!r} (it reproduces a vLLM "
                f"{pinned} deployment); for another version pick the balanced profile",
            )

    def _check_fields(self) -> None:
        if self.revision is not None and not _REVISION.match(self.revision):
            raise ConfigError("revision", self.revision, "a commit hash, tag or branch name")
        if self.speculative_model is not None and not (
            _REPO_ID.match(self.speculative_model) or self.speculative_model.startswith("/")
        ):
            raise ConfigError(
                "speculative_model", self.speculative_model, "a Hub repo id 'org/name' or a path"
            )
        if not self.speculative and (
            self.speculative_model is not None or self.num_speculative_tokens is not None
        ):
            raise ConfigError(
                "speculative",
                False,
                "speculative=True when speculative_model or num_speculative_tokens is set "
                "(they would be ignored)",
            )
        check_range(
            "num_speculative_tokens", self.num_speculative_tokens, 1, MAX_SPECULATIVE_TOKENS
        )
        self._check_sizes()
        self._check_names()

    def _check_sizes(self) -> None:
        dtypes = option_table(self.version).kv_cache_dtypes
        if self.kv_cache_dtype is not None and self.kv_cache_dtype not in dtypes:
            raise ConfigError(
                "kv_cache_dtype",
                self.kv_cache_dtype,
                f"one of {', '.join(dtypes)} (vLLM {self.version})",
            )
        check_range("max_inputs", self.max_inputs, 1, MAX_INPUTS_LIMIT)
        check_range("max_cudagraph_capture_size", self.max_cudagraph_capture_size, 1, 2**16)
        check_range("max_num_batched_tokens", self.max_num_batched_tokens, 1, 2**20)
        check_range("max_model_len", self.max_model_len, 1, self.model_preset.max_context)
        check_range("max_num_seqs", self.max_num_seqs, 1, 8192)
        check_range("stream_interval", self.stream_interval, 1, 4096)
        check_range("port", self.port, 1, 65535)
        if self.gpu_memory_utilization is not None and not 0 < self.gpu_memory_utilization <= 1:
            raise ConfigError(
                "gpu_memory_utilization", self.gpu_memory_utilization, "a fraction in (0, 1]"
            )

    def _check_names(self) -> None:
        if not self.host or any(c.isspace() for c in self.host):
            raise ConfigError("host", self.host, "an address such as 0.0.0.0")
        if self.served_model_names is not None:
            names = self.served_model_names
            if not names or not all(_SERVED_NAME.match(n) for n in names):
                raise ConfigError(
                    "served_model_names",
                    names,
                    "one or more names without whitespace, not starting with -",
                )
            if len(set(names)) != len(names):
                raise ConfigError("served_model_names", names, "names without duplicates")
        if self.system_start_date is not None:
            _check_date(self.system_start_date)
        _check_tool_server(self.tool_server)
        if self.mxfp8_moe and self.gpu_spec.preset.arch != "blackwell":
            raise ConfigError(
                "mxfp8_moe", True, "true only on Blackwell GPUs (B200), the only ones with it"
            )

    # ---- derived views ------------------------------------------------------------------

    @property
    def model_preset(self) -> ModelPreset:
        """The preset of this config's model."""
        return MODELS[self.model]

    @property
    def gpu_spec(self) -> GPUSpec:
        """The parsed GPU type and count."""
        return GPUSpec.parse(self.gpu)

    @property
    def tensor_parallel_size(self) -> int:
        """One tensor-parallel rank per GPU: a replica spans all GPUs of its container."""
        return self.gpu_spec.count

    @cached_property
    def resolved_view(self) -> ServeConfig:
        """The explicit config ``build_vllm_command`` uses (cached; see :meth:`resolved`)."""
        return _resolve(self)

    def resolved(self) -> ServeConfig:
        """The fully explicit config (``profile=None``) with every derived value filled in."""
        return self.resolved_view

    def advisories(self) -> tuple[str, ...]:
        """Known problems this (valid) config runs into on its vLLM version, worded for a
        person. Not errors: the seed profile itself triggers two. The CLI prints them on
        stderr and the Modal app at deploy time."""
        return advisories(self.resolved())

    # ---- serialisation ------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (tuples become lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def to_json(self) -> str:
        """JSON text that :meth:`from_json` reads back to an equal config."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "dict") -> ServeConfig:
        """Build from a mapping of field names; unknown keys are errors, not ignored."""
        known = {f.name for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise hidden_value_error(
                    key,
                    f"{key} is not a ServeConfig field{did_you_mean(key, known)}",
                    source=source,
                )
            values[key] = tuple(value) if isinstance(value, list) else value
        try:
            return cls(**values)
        except ConfigError as exc:
            if exc.source is None:
                exc.source = source
            raise

    @classmethod
    def from_json(cls, text: str | bytes) -> ServeConfig:
        """Read the JSON that :meth:`to_json` wrote (as carried into the container)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:  # the text may hold extra_args: not shown
            raise hidden_value_error("json", f"the config is not valid JSON ({exc.msg})") from exc
        if not isinstance(data, dict):
            raise hidden_value_error(
                "json", "the config must be a JSON object of ServeConfig fields"
            )
        return cls.from_dict(data, source="json")

    def replace(self, **changes: Any) -> ServeConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


# ---- resolution ---------------------------------------------------------------------------


def _resolve(config: ServeConfig) -> ServeConfig:
    """Fill every derived field; check the combination fits the GPUs and the vLLM version."""
    if config.profile is None:
        # Even an explicit config names its vLLM and its MoE kernel: both change the argv.
        blackwell = config.gpu_spec.preset.arch == "blackwell"
        mxfp8_moe = _first(config.mxfp8_moe, blackwell)
        same = (config.vllm_version, config.mxfp8_moe) == (config.version, mxfp8_moe)
        explicit = (
            config
            if same
            else dataclasses.replace(config, vllm_version=config.version, mxfp8_moe=mxfp8_moe)
        )
    else:
        explicit = _apply_profile(config, PROFILE_DEFAULTS[config.profile])
    _check_combination(explicit, config.model_preset, config.gpu_spec)
    check_expressible(explicit)
    return explicit


def _apply_profile(config: ServeConfig, profile: Profile) -> ServeConfig:
    """The explicit config: the user's values, else the profile's and the version's recipe."""
    preset = config.model_preset
    gpu = config.gpu_spec
    draft = RECIPES[config.version].drafts[preset.id]
    blackwell = gpu.preset.arch == "blackwell"
    total_gib = gpu.preset.memory_gib * gpu.count
    tight = preset.weights_gib / total_gib > TIGHT_MEMORY_SHARE
    speculative = config.speculative and (
        profile.speculative
        or config.speculative_model is not None
        or config.num_speculative_tokens is not None
    )
    max_inputs = _first(config.max_inputs, profile.max_inputs)
    draft_tokens = _first(config.num_speculative_tokens, draft.tokens) if speculative else 0
    batched = _first(
        config.max_num_batched_tokens,
        TIGHT_MAX_NUM_BATCHED_TOKENS if tight else profile.max_num_batched_tokens,
    )
    return dataclasses.replace(
        config,
        profile=None,
        vllm_version=config.version,
        revision=_first(config.revision, preset.revision),
        speculative=speculative,
        speculative_model=_first(config.speculative_model, draft.model) if speculative else None,
        num_speculative_tokens=draft_tokens or None,
        # The recipe: fp8 KV cache, the MXFP8 MoE kernel and the fused passes on Blackwell only
        # (fp8 KV with FlashInfer on Hopper has open bugs; Ampere has no fp8 attention).
        kv_cache_dtype=_first(config.kv_cache_dtype, "fp8" if blackwell else "auto"),
        mxfp8_moe=_first(config.mxfp8_moe, blackwell),
        fuse_allreduce_rms=_first(config.fuse_allreduce_rms, True if blackwell else None),
        eliminate_noops=_first(config.eliminate_noops, True if blackwell else None),
        max_inputs=max_inputs,
        max_cudagraph_capture_size=_first(
            config.max_cudagraph_capture_size,
            _capture_size(profile.capture_decode_tokens, max_inputs, draft_tokens, batched),
        ),
        max_num_batched_tokens=batched,
        max_model_len=_first(config.max_model_len, profile.max_model_len),
        max_num_seqs=_first(config.max_num_seqs, profile.max_num_seqs),
        gpu_memory_utilization=_first(
            config.gpu_memory_utilization, TIGHT_GPU_MEMORY_UTILIZATION if tight else None
        ),
        stream_interval=_first(config.stream_interval, profile.stream_interval),
        served_model_names=_first(config.served_model_names, (config.model, "llm")),
    )


def _capture_size(decode_tokens: bool, max_inputs: int, draft_tokens: int, batched: int) -> int:
    """CUDA graphs up to the largest decode batch a replica sees, in tokens, and no further:
    every extra size costs start-up time and memory, and vLLM caps it at the batched tokens."""
    if not decode_tokens:
        return max_inputs
    return min(max_inputs * (1 + draft_tokens), batched)


def _check_combination(config: ServeConfig, preset: ModelPreset, gpu: GPUSpec) -> None:
    if preset.num_attention_heads % gpu.count:
        divisors = [
            n for n in range(1, MAX_GPUS_PER_CONTAINER + 1) if preset.num_attention_heads % n == 0
        ]
        raise ConfigError(
            "gpu",
            config.gpu,
            f"a GPU count that divides {preset.id}'s {preset.num_attention_heads} attention heads "
            f"(tensor parallel size is the GPU count): one of {divisors}",
        )
    utilization = config.gpu_memory_utilization or VLLM_DEFAULT_GPU_MEMORY_UTILIZATION
    usable = gpu.preset.memory_gib * gpu.count * utilization
    needed = preset.weights_gib + MIN_HEADROOM_GIB
    if usable < needed:
        raise ConfigError(
            "gpu",
            config.gpu,
            f"GPUs with room for {preset.id}: it needs ~{needed:.0f} GiB "
            f"({preset.weights_gib} GiB weights + {MIN_HEADROOM_GIB:.0f} GiB to run), "
            f"{config.gpu} at gpu_memory_utilization {utilization} gives {usable:.0f} GiB; "
            "use more or larger GPUs",
        )
    if (
        config.max_num_seqs is not None
        and config.max_num_batched_tokens is not None
        and config.max_num_batched_tokens < config.max_num_seqs
    ):
        raise ConfigError(
            "max_num_batched_tokens",
            config.max_num_batched_tokens,
            f"at least max_num_seqs ({config.max_num_seqs}); vLLM refuses to start otherwise",
        )
    if config.speculative and (
        config.speculative_model is None or config.num_speculative_tokens is None
    ):
        raise ConfigError(
            "speculative_model",
            config.speculative_model,
            "a draft model and num_speculative_tokens when speculative=True and profile=None",
        )


def _check_date(text: str) -> None:
    import datetime  # only when a date is set

    try:
        valid = bool(_ISO_DATE.match(text)) and bool(datetime.date.fromisoformat(text))
    except ValueError:
        valid = False
    if not valid:
        raise ConfigError("system_start_date", text, "an ISO date YYYY-MM-DD, e.g. 2025-08-05")


_T = TypeVar("_T")


def _first(value: _T | None, default: _T) -> _T:
    return default if value is None else value


# ---- loading: TOML, environment, overrides ------------------------------------------------

# "auto" is one of vLLM's kv_cache_dtype values, so there it means vLLM's auto, not "derive";
# "default" derives everywhere.
_LITERAL_OK = {"kv_cache_dtype": frozenset({"auto"})}


def parse_overrides(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Read ``key=value`` strings (the CLI's ``--set``) into typed field values."""
    known = {f.name for f in dataclasses.fields(ServeConfig)}
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ConfigError("--set", pair, "key=value, e.g. max_inputs=64")
        if key not in known:  # what follows "=" is not shown: it may be a secret
            raise hidden_value_error(
                key, f"{key} is not a ServeConfig field{did_you_mean(key, known)}", source="--set"
            )
        values[key] = coerce_text(ServeConfig, key, text, f"--set {key}", _LITERAL_OK)
    return values


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    overrides_source: str = "overrides",
) -> ServeConfig:
    """Build a ServeConfig from defaults < TOML file < ``GPTOSS_*`` environment < overrides.

    ``path`` defaults to ``$GPTOSS_CONFIG`` when set. ``env`` defaults to ``os.environ``. An
    invalid value's error says which of these it came from.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    toml_path = path if path is not None else env.get(CONFIG_PATH_ENV)
    layers: list[tuple[dict[str, Any], str]] = []
    if toml_path:
        layers.append(
            (toml_values(ServeConfig, Path(toml_path), "serve", _LITERAL_OK), str(toml_path))
        )
    env_layer = env_values(ServeConfig, env, _LITERAL_OK)
    layers.append((env_layer, "environment"))
    layers.append((dict(overrides or {}), overrides_source))
    for layer, source in layers:
        values.update(layer)
        for key in layer:
            sources[key] = (
                f"environment {ENV_PREFIX}{key.upper()}" if source == "environment" else source
            )
    try:
        return ServeConfig(**values)
    except ConfigError as exc:
        if exc.source is None:
            exc.source = sources.get(exc.field, "the combination of settings")
        raise
