"""The driver's parts: the probe's verdict as a value, and /metrics scraped through the client."""

from __future__ import annotations

import pytest

from gptoss_modal import BenchmarkError, ConnectError, HTTPStatusError
from gptoss_modal.bench.driver import MetricsScraper, Probe, Sender, probe
from gptoss_modal.bench.prompts import PromptSet
from gptoss_modal.bench.workload import BenchClient
from gptoss_modal.stream.client import Client
from tests.unit.bench.scripted import ScriptedClient, settings

METRICS = "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running 3\n"


def sender(client: ScriptedClient, *, fixed: bool = True) -> Sender:
    return Sender(client, "low", fixed, client.clock)


def test_the_real_and_the_scripted_client_are_bench_clients() -> None:
    """Client and the tests' ScriptedClient both satisfy BenchClient (checked by mypy)."""
    clients: list[BenchClient] = [Client("http://127.0.0.1:9"), ScriptedClient()]
    assert [c.base_url for c in clients] == ["http://127.0.0.1:9", "http://scripted"]


async def test_the_probe_returns_the_template_size() -> None:
    """A probe on a server adding 77 template tokens says so, with fixed output and no warning."""
    client = ScriptedClient(template=77)
    chosen = settings()
    assert await probe(sender(client), PromptSet(chosen), chosen) == Probe(True, 77, ())
    assert client.calls[0].max_tokens == 16


async def test_the_probe_falls_back_without_fixed_output() -> None:
    """A 400 to ignore_eos is retried without it; the verdict says fixed output is off."""
    client = ScriptedClient()
    client.faults[0] = ("before", HTTPStatusError("unknown field", status=400))
    chosen = settings()
    found = await probe(sender(client), PromptSet(chosen), chosen)
    assert not found.fixed_output
    assert found.template_tokens == 70
    assert [c.extra for c in client.calls] == [{"ignore_eos": True, "min_tokens": 16}, None]
    assert any("ignore_eos" in w for w in found.warnings)


async def test_a_probe_every_request_would_repeat_raises() -> None:
    """A 404 to the probe is a BenchmarkError naming the kind."""
    client = ScriptedClient()
    client.faults[0] = ("before", HTTPStatusError("no model", status=404))
    chosen = settings()
    with pytest.raises(BenchmarkError, match="http_404"):
        await probe(sender(client), PromptSet(chosen), chosen)


async def test_a_probe_that_fails_otherwise_is_a_warning() -> None:
    """A 503 to the probe is a warning and no calibration, not the end of the run."""
    client = ScriptedClient()
    client.faults[0] = ("before", HTTPStatusError("busy", status=503))
    chosen = settings()
    found = await probe(sender(client), PromptSet(chosen), chosen)
    assert found.template_tokens is None
    (warning,) = found.warnings
    assert "http_503" in warning


async def test_the_scraper_reads_metrics_through_the_client() -> None:
    """Each scrape is one fetch_metrics call on the client, parsed."""
    client = ScriptedClient()
    client.metrics = [METRICS]
    scraper = MetricsScraper(client)
    snapshot = await scraper.scrape()
    assert snapshot is not None
    assert [s.value for s in snapshot.samples] == [3.0]
    assert client.scrapes == 1
    assert scraper.warnings == []


@pytest.mark.parametrize(
    "answer",
    [HTTPStatusError("nope", status=404), ConnectError("refused"), "not prometheus {"],
    ids=["http_404", "connect", "garbage"],
)
async def test_a_failed_scrape_warns_once_and_stops(answer: str | BaseException) -> None:
    """A client error or unreadable text gives one warning; later scrapes are not tried."""
    client = ScriptedClient()
    client.metrics = [answer]
    scraper = MetricsScraper(client)
    assert await scraper.scrape() is None
    assert await scraper.scrape() is None
    assert client.scrapes == 1
    (warning,) = scraper.warnings
    assert warning.startswith("http://scripted/metrics could not be read")


async def test_a_disabled_scraper_never_asks() -> None:
    """With scraping off (--no-metrics) the client is never asked."""
    client = ScriptedClient()
    assert await MetricsScraper(client, enabled=False).scrape() is None
    assert client.scrapes == 0
