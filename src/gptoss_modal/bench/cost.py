"""What a load level costs: dollars per million tokens from the GPU's price per second.

A GPU's price comes from one of three places, and the run says which (``source``):

* ``--gpu-price`` (dollars per GPU-second, or ``.../h`` per GPU-hour), when given;
* Modal's billing API (``modal.Workspace.from_context().billing.rates()``), when Modal
  credentials are present and its rates name the GPU;
* else :data:`LIST_PRICES_USD_PER_S`, Modal's dated list prices (:data:`LIST_PRICES_SOURCE`).

At a level that makes ``T`` output tokens/s on GPUs costing ``P`` dollars/s in all, a million
output tokens cost ``P / T * 1e6`` dollars (the GPUs are paid for whether busy or not, so the
level's throughput is what the price is spread over). The break-even against a hosted price
of ``H`` dollars per million output tokens is the sustained ``P / H * 1e6`` output tokens/s.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, Literal

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.bench.schema import CostDoc, GpuDoc

__all__ = [
    "BILLING_API_TIMEOUT_S",
    "LIST_PRICES_DATE",
    "LIST_PRICES_SOURCE",
    "LIST_PRICES_USD_PER_S",
    "TOKENS_PER_MTOK",
    "GpuPrice",
    "PriceSource",
    "billing_rate",
    "break_even_output_tokens_per_s",
    "gpu_doc",
    "level_cost",
    "modal_credentials_present",
    "parse_gpu",
    "parse_gpu_price",
    "parse_mtok_price",
    "resolve_price",
    "usd_per_mtok",
]

# Modal's list prices per GPU-second (https://modal.com/pricing), as recorded on the date below.
LIST_PRICES_USD_PER_S: Final[Mapping[str, float]] = {
    "B200": 0.001736,
    "H200": 0.001261,
    "H100": 0.001097,
}
LIST_PRICES_DATE: Final = "2026"
LIST_PRICES_SOURCE: Final = f"Modal list price (modal.com/pricing, {LIST_PRICES_DATE})"
TOKENS_PER_MTOK: Final = 1_000_000
BILLING_API_TIMEOUT_S: Final = 15.0  # a billing lookup never holds up a run longer than this
_SECONDS_PER_HOUR: Final = 3600.0

PriceSource = Literal["--gpu-price", "modal-billing-api", "list-price"]


@dataclass(frozen=True)
class GpuPrice:
    """What the run's GPUs cost: ``count`` x ``gpu`` at ``usd_per_gpu_s`` each, from
    ``source`` (``detail`` says more: the table's date, the billing key read)."""

    gpu: str
    count: int
    usd_per_gpu_s: float
    source: PriceSource
    detail: str

    @property
    def usd_per_s(self) -> float:
        """Dollars per second for all the GPUs."""
        return self.usd_per_gpu_s * self.count


def usd_per_mtok(usd_per_s: float, tokens_per_s: float | None) -> float | None:
    """Dollars per million tokens at ``tokens_per_s``; ``None`` when nothing was made."""
    if tokens_per_s is None or not math.isfinite(tokens_per_s) or tokens_per_s <= 0:
        return None
    return usd_per_s / tokens_per_s * TOKENS_PER_MTOK


def break_even_output_tokens_per_s(usd_per_s: float, hosted_usd_per_mtok: float) -> float:
    """The sustained output tokens/s at which the GPUs cost the hosted per-token price."""
    return usd_per_s / hosted_usd_per_mtok * TOKENS_PER_MTOK


# --- parsing flags ---------------------------------------------------------------------------

_GPU: Final = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*?)(?::(?P<count>[0-9]+))?$")


def parse_gpu(text: str, count: int | None = None) -> tuple[str, int]:
    """``B200``, ``b200:2`` (Modal's spelling) or a budgets section name, and the GPU count
    (``--gpu-count`` wins over ``:N``; default 1). Known GPUs come back upper-cased."""
    match = _GPU.match(text.strip())
    if match is None:
        raise ConfigError("--gpu", text, "a GPU such as B200 or B200:2")
    name = match.group("name")
    if name.upper() in LIST_PRICES_USD_PER_S:
        name = name.upper()
    n = count if count is not None else int(match.group("count") or 1)
    if n < 1:
        raise ConfigError("--gpu-count", n, "a whole number of GPUs >= 1")
    return name, n


def _positive(field: str, text: str, number: str, allowed: str) -> float:
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(field, text, allowed)
    return value


def parse_gpu_price(text: str) -> float:
    """``--gpu-price``: dollars per GPU-second (``0.001736``, ``0.001736/s``) or per GPU-hour
    (``6.25/h``), returned per second."""
    allowed = "dollars per GPU-second such as 0.001736, or per GPU-hour such as 6.25/h"
    number, _, unit = text.strip().removeprefix("$").partition("/")
    if unit not in ("", "s", "h"):
        raise ConfigError("--gpu-price", text, allowed)
    value = _positive("--gpu-price", text, number, allowed)
    return value / _SECONDS_PER_HOUR if unit == "h" else value


def parse_mtok_price(text: str, field: str = "--compare-price") -> float:
    """A hosted price per million tokens: ``0.19/M``, ``$0.19/M`` or ``0.19``."""
    allowed = "dollars per million output tokens, such as 0.19/M"
    number, _, unit = text.strip().removeprefix("$").partition("/")
    if unit not in ("", "M", "m", "Mtok", "mtok"):
        raise ConfigError(field, text, allowed)
    return _positive(field, text, number, allowed)


# --- Modal's billing API ---------------------------------------------------------------------


def modal_credentials_present(
    environ: Mapping[str, str] = os.environ, home: Path | None = None
) -> bool:
    """Whether the Modal SDK would find credentials (env tokens or ``~/.modal.toml``)."""
    if environ.get("MODAL_TOKEN_ID") and environ.get("MODAL_TOKEN_SECRET"):
        return True
    config = environ.get("MODAL_CONFIG_PATH") or str((home or Path.home()) / ".modal.toml")
    return Path(config).is_file()


def billing_rate(gpu: str, rates: Mapping[str, Any]) -> tuple[str, float] | None:
    """The per-GPU-second rate for ``gpu`` in Modal's billing rates, and the key it was read
    from; ``None`` when no key names it. The rates' keys are not documented, so a key counts
    when one of its words is the GPU's name (``gpu.b200``, ``B200``, ``gpu_b200_per_sec``);
    a key that says hours is converted to seconds."""
    want = gpu.lower()
    for key in rates:
        words = re.split(r"[^a-z0-9]+", str(key).lower())
        if want not in words:
            continue
        try:
            value = float(Decimal(str(rates[key])))
        except (ArithmeticError, ValueError):
            continue
        if not math.isfinite(value) or value <= 0:
            continue
        hourly = any(word in ("h", "hr", "hour", "hourly") for word in words)
        return str(key), value / _SECONDS_PER_HOUR if hourly else value
    return None


def _modal_rates() -> Mapping[str, Any]:  # pragma: no cover - needs Modal credentials
    import modal

    rates: Mapping[str, Any] = modal.Workspace.from_context().billing.rates()
    return rates


def _rates_or_reason(fetch: Callable[[], Mapping[str, Any]]) -> Mapping[str, Any] | str:
    """Modal's rates, or why they could not be read (the run then uses the list price)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(fetch).result(timeout=BILLING_API_TIMEOUT_S)
    except concurrent.futures.TimeoutError:
        return f"no answer in {BILLING_API_TIMEOUT_S:g} s"
    except Exception as exc:  # noqa: BLE001  (any SDK failure falls back to the list price, said)
        return f"{type(exc).__name__}: {exc}"
    finally:
        pool.shutdown(wait=False)


def resolve_price(
    gpu: str,
    count: int,
    *,
    override_usd_per_s: float | None = None,
    fetch_rates: Callable[[], Mapping[str, Any]] | None = None,
    credentials: bool | None = None,
    notes: list[str] | None = None,
) -> GpuPrice:
    """The price of ``count`` x ``gpu``: ``--gpu-price``, else Modal's billing API (when
    ``credentials``; ``fetch_rates`` replaces the SDK call), else the list price. Raises
    :class:`ConfigError` for a GPU with no price from any of them. Why the billing API was not
    used, when it was tried, is appended to ``notes``."""
    if override_usd_per_s is not None:
        return GpuPrice(gpu, count, override_usd_per_s, "--gpu-price", "given with --gpu-price")
    if credentials is None:
        credentials = modal_credentials_present()
    if credentials:
        answer = _rates_or_reason(fetch_rates or _modal_rates)
        found = billing_rate(gpu, answer) if not isinstance(answer, str) else None
        if found is not None:
            key, rate = found
            return GpuPrice(gpu, count, rate, "modal-billing-api", f"billing.rates()[{key!r}]")
        if notes is not None:
            reason = answer if isinstance(answer, str) else f"its rates do not name {gpu}"
            notes.append(f"Modal's billing API was not used ({reason}); using the list price")
    listed = LIST_PRICES_USD_PER_S.get(gpu)
    if listed is None:
        known = ", ".join(LIST_PRICES_USD_PER_S)
        raise ConfigError(
            "--gpu",
            gpu,
            f"a GPU with a list price ({known})",
            message=f"--gpu {gpu} has no list price here ({known} have): give its price with "
            "--gpu-price USD_PER_GPU_S, or name a budgets section with --budgets",
        )
    return GpuPrice(gpu, count, listed, "list-price", LIST_PRICES_SOURCE)


def level_cost(
    price: GpuPrice | None,
    *,
    output_tokens: int,
    input_tokens: int,
    duration_s: float,
    compare_usd_per_mtok: float | None = None,
) -> CostDoc | None:
    """A level's dollars per million output and total tokens at its throughput (``None``
    without a price); with a hosted price, the ratio of ours to it (below 1: cheaper)."""
    if price is None:
        return None
    out_per_s = output_tokens / duration_s if duration_s > 0 else None
    total_per_s = (output_tokens + input_tokens) / duration_s if duration_s > 0 else None
    per_output = usd_per_mtok(price.usd_per_s, out_per_s)
    return CostDoc(
        usd_per_mtok_output=per_output,
        usd_per_mtok_total=usd_per_mtok(price.usd_per_s, total_per_s),
        total_tokens_per_s=total_per_s or 0.0,
        vs_compare=None
        if per_output is None or compare_usd_per_mtok is None
        else per_output / compare_usd_per_mtok,
    )


def gpu_doc(price: GpuPrice, compare_usd_per_mtok: float | None) -> GpuDoc:
    """The run's GPU price as recorded in the JSON settings."""
    return GpuDoc(
        name=price.gpu,
        count=price.count,
        usd_per_gpu_s=price.usd_per_gpu_s,
        usd_per_s=price.usd_per_s,
        source=price.source,
        detail=price.detail,
        compare_usd_per_mtok=compare_usd_per_mtok,
        break_even_output_tokens_per_s=None
        if compare_usd_per_mtok is None
        else break_even_output_tokens_per_s(price.usd_per_s, compare_usd_per_mtok),
    )
