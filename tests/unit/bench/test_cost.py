"""Cost per million tokens: the price table, flag parsing, Modal's billing API and the maths."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.bench.cost import (
    LIST_PRICES_USD_PER_S,
    GpuPrice,
    billing_rate,
    break_even_output_tokens_per_s,
    level_cost,
    modal_credentials_present,
    parse_gpu,
    parse_gpu_price,
    parse_mtok_price,
    resolve_price,
    usd_per_mtok,
)


def test_the_list_prices_are_modals_2026_ones() -> None:
    """The table holds the facts file's per-GPU-second list prices."""
    assert dict(LIST_PRICES_USD_PER_S) == {"B200": 0.001736, "H200": 0.001261, "H100": 0.001097}


@pytest.mark.parametrize(
    ("text", "count", "expected"),
    [("B200", None, ("B200", 1)), ("b200:2", None, ("B200", 2)), ("H100:2", 4, ("H100", 4))],
)
def test_gpu_spellings(text: str, count: int | None, expected: tuple[str, int]) -> None:
    """Modal's GPU:N spelling and --gpu-count give the GPU and its count (the flag wins)."""
    assert parse_gpu(text, count) == expected


@pytest.mark.parametrize(("text", "per_s"), [("0.001736", 0.001736), ("$6.25/h", 6.25 / 3600)])
def test_gpu_price_per_second_or_hour(text: str, per_s: float) -> None:
    """--gpu-price takes dollars per GPU-second or per GPU-hour."""
    assert parse_gpu_price(text) == pytest.approx(per_s)


@pytest.mark.parametrize("text", ["0", "-1", "abc", "1/day", "nan"])
def test_bad_prices_name_the_flag(text: str) -> None:
    """A price that is not a positive number per second or hour is a ConfigError on the flag."""
    with pytest.raises(ConfigError) as info:
        parse_gpu_price(text)
    assert info.value.field == "--gpu-price"


def test_compare_price_per_million() -> None:
    """0.19/M and $0.19 both mean 19 cents per million tokens; 0.19/k is refused."""
    assert parse_mtok_price("0.19/M") == parse_mtok_price("$0.19") == 0.19
    with pytest.raises(ConfigError):
        parse_mtok_price("0.19/k")


def test_cost_and_break_even_by_hand() -> None:
    """One B200 at 1000 output tok/s: $1.736 per million; break-even at $0.19/M is 9137 tok/s."""
    per_s = LIST_PRICES_USD_PER_S["B200"]
    assert usd_per_mtok(per_s, 1000.0) == pytest.approx(1.736)
    assert break_even_output_tokens_per_s(per_s, 0.19) == pytest.approx(9136.8, rel=1e-4)
    assert usd_per_mtok(per_s, 0.0) is None


@given(st.floats(1e-5, 1.0), st.integers(1, 8), st.floats(1e-3, 10.0))
def test_at_break_even_the_cost_is_the_hosted_price(
    gpu_s: float, count: int, hosted: float
) -> None:
    """At the break-even throughput a million output tokens cost exactly the hosted price, and
    twice as many GPUs double the cost at the same throughput."""
    price = GpuPrice("X", count, gpu_s, "--gpu-price", "")
    even = break_even_output_tokens_per_s(price.usd_per_s, hosted)
    assert usd_per_mtok(price.usd_per_s, even) == pytest.approx(hosted)
    double = GpuPrice("X", 2 * count, gpu_s, "--gpu-price", "")
    assert usd_per_mtok(double.usd_per_s, even) == pytest.approx(2 * hosted)


def test_level_cost_counts_total_tokens_and_compares() -> None:
    """A level of 1000 out + 3000 in tokens over 1 s: $/M total is a quarter of $/M output."""
    price = GpuPrice("B200", 1, 0.002, "list-price", "")
    cost = level_cost(
        price, output_tokens=1000, input_tokens=3000, duration_s=1.0, compare_usd_per_mtok=1.0
    )
    assert cost is not None
    assert cost.usd_per_mtok_output == pytest.approx(2.0)
    assert cost.usd_per_mtok_total == pytest.approx(0.5)
    assert cost.vs_compare == pytest.approx(2.0)
    assert level_cost(None, output_tokens=1, input_tokens=1, duration_s=1.0) is None


def test_override_wins_and_says_so() -> None:
    """--gpu-price is used as given, whatever else is present."""
    price = resolve_price(
        "T4",
        2,
        override_usd_per_s=0.0005,
        credentials=True,
        fetch_rates=lambda: {"gpu.t4": Decimal("9")},
    )
    assert (price.usd_per_s, price.source) == (0.001, "--gpu-price")


class _Rates(Mapping[str, Decimal]):
    """A stand-in for the SDK's _WorkspaceBillingRates: a Mapping of Decimals."""

    def __init__(self, data: dict[str, Decimal]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Decimal:
        return self._data[key]

    def __iter__(self) -> Any:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def test_billing_api_rate_is_used_with_credentials() -> None:
    """With credentials, a billing rate that names the GPU is used and its key recorded."""
    rates = _Rates({"cpu": Decimal("0.0000131"), "gpu.b200": Decimal("0.0015")})
    price = resolve_price("B200", 1, credentials=True, fetch_rates=lambda: rates)
    assert price.source == "modal-billing-api"
    assert price.usd_per_gpu_s == pytest.approx(0.0015)
    assert "gpu.b200" in price.detail


def test_billing_api_failure_falls_back_to_the_list_price_and_says_why() -> None:
    """An SDK error is not fatal: the list price is used and a note says why."""

    def broken() -> Mapping[str, Any]:
        raise RuntimeError("no network")

    notes: list[str] = []
    price = resolve_price("H100", 1, credentials=True, fetch_rates=broken, notes=notes)
    assert price.source == "list-price"
    assert price.usd_per_gpu_s == LIST_PRICES_USD_PER_S["H100"]
    assert len(notes) == 1
    assert "no network" in notes[0]


def test_without_credentials_the_billing_api_is_not_called() -> None:
    """No credentials: the list price, and the stand-in is never asked."""

    def never() -> Mapping[str, Any]:
        raise AssertionError("called")

    assert resolve_price("B200", 1, credentials=False, fetch_rates=never).source == "list-price"


def test_hourly_billing_keys_are_converted() -> None:
    """A rate whose key says hours becomes per second; keys not naming the GPU are ignored."""
    found = billing_rate("h200", {"gpu.h100": "1", "gpu h200 per hour": "3.6"})
    assert found is not None
    assert found[1] == pytest.approx(0.001)
    assert billing_rate("b200", {"gpu.b2000": "1"}) is None


def test_unknown_gpu_without_a_price_is_refused() -> None:
    """A GPU with no list price and no override is a ConfigError naming --gpu-price."""
    with pytest.raises(ConfigError) as info:
        resolve_price("T4", 1, credentials=False)
    assert "--gpu-price" in str(info.value)


def test_credentials_from_env_or_file(tmp_path: Path) -> None:
    """Both tokens in the environment, or a ~/.modal.toml, count as credentials."""
    env = {"MODAL_TOKEN_ID": "a", "MODAL_TOKEN_SECRET": "b"}
    assert modal_credentials_present(env, home=tmp_path)
    assert not modal_credentials_present({"MODAL_TOKEN_ID": "a"}, home=tmp_path)
    (tmp_path / ".modal.toml").write_text("")
    assert modal_credentials_present({}, home=tmp_path)
