"""wait_healthy through a cold start: refused connections and 503 are "not yet"; 401/404, a
host that does not resolve and a failed TLS handshake are not."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gptoss_modal import AuthenticationError, ConnectError, HealthTimeout, HTTPStatusError
from gptoss_modal.stream.client import HealthProgress, stream_chat, wait_healthy
from tests.strategies_stream import ReplayServer, Reply, free_port


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Poll every few milliseconds so start-up sequences take little wall time."""
    monkeypatch.setattr("gptoss_modal.stream.client.HEALTH_FIRST_DELAY_S", 0.01)
    monkeypatch.setattr("gptoss_modal.stream.client.HEALTH_MAX_DELAY_S", 0.02)


async def test_healthy_server_answers_at_the_first_check() -> None:
    """A server answering 200 is healthy after one check, reported to the callback."""
    seen: list[HealthProgress] = []
    async with ReplayServer(Reply()) as server:
        progress = await wait_healthy(server.url, timeout_s=5, on_progress=seen.append)
    assert (progress.healthy, progress.attempts, progress.last_status) == (True, 1, "200 OK")
    assert seen == [progress]


async def test_refused_then_503_then_200_is_waited_through() -> None:
    """Start-up as it happens: nothing listening, then 503 while loading, then 200. Every
    check is reported with its status, and the wait ends healthy."""
    port = free_port()
    seen: list[HealthProgress] = []
    two_refusals = asyncio.Event()

    def record(progress: HealthProgress) -> None:
        seen.append(progress)
        if len(seen) == 2:
            two_refusals.set()

    async def start_server_after_refusals() -> None:
        await two_refusals.wait()
        async with ReplayServer(Reply(), health=(503, 503, 200), port=port):
            await waiter

    waiter = asyncio.ensure_future(
        wait_healthy(f"http://127.0.0.1:{port}", timeout_s=60, on_progress=record)
    )
    await asyncio.gather(start_server_after_refusals(), waiter)
    statuses = [p.last_status for p in seen]
    assert all("Connection refused" in s for s in statuses[:2])
    assert statuses[-3:] == [
        "HTTP 503 Service Unavailable",
        "HTTP 503 Service Unavailable",
        "200 OK",
    ]
    assert [p.attempts for p in seen] == list(range(1, len(seen) + 1))
    assert waiter.result().healthy


async def test_time_running_out_raises_HealthTimeout_with_the_last_status() -> None:
    """A server stuck at 503 raises HealthTimeout saying what it last answered."""
    async with ReplayServer(Reply(), health=(503,)) as server:
        with pytest.raises(HealthTimeout, match="503") as caught:
            await wait_healthy(server.url, timeout_s=0.1)
    assert caught.value.last_status == "HTTP 503 Service Unavailable"
    assert isinstance(caught.value, TimeoutError)


async def test_zero_timeout_checks_exactly_once() -> None:
    """timeout_s=0 makes one check: a dead URL fails at once with the refusal as last status."""
    seen: list[HealthProgress] = []
    with pytest.raises(HealthTimeout, match="1 check") as caught:
        await wait_healthy(f"http://127.0.0.1:{free_port()}", timeout_s=0, on_progress=seen.append)
    assert len(seen) == 1
    assert caught.value.last_status is not None
    assert "Connection refused" in caught.value.last_status


@pytest.mark.parametrize(("status", "error"), [(401, AuthenticationError), (404, HTTPStatusError)])
async def test_401_and_404_fail_at_once(status: int, error: type[HTTPStatusError]) -> None:
    """A wrong key (proxy auth) or a wrong URL is not "starting up": it raises at the first
    check instead of waiting out the timeout."""
    async with ReplayServer(Reply(), health=(status,)) as server:
        with pytest.raises(error) as caught:
            await wait_healthy(server.url, timeout_s=60)
        assert server.health_checks == 1
    assert caught.value.status == status


OPENSSL_SELF_SIGNED = (
    *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"),
    *("-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
)


@pytest.fixture
def self_signed_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1 and its key (made by openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    argv = [*OPENSSL_SELF_SIGNED, "-keyout", str(key), "-out", str(cert)]
    subprocess.run(argv, check=True, capture_output=True)
    return cert, key


@pytest.fixture
async def self_signed_https(self_signed_cert: tuple[Path, Path]) -> AsyncIterator[str]:
    """An HTTPS server on loopback presenting the self-signed certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed_cert)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"https://127.0.0.1:{port}"


async def test_a_self_signed_certificate_fails_at_once_with_its_reason(
    self_signed_https: str,
) -> None:
    """An untrusted certificate will not become trusted by waiting: the first check raises
    ConnectError quoting the SSL error ("self-signed certificate"), not an errno's text."""
    seen: list[HealthProgress] = []
    with pytest.raises(ConnectError) as caught:
        await wait_healthy(self_signed_https, timeout_s=60, on_progress=seen.append)
    message = str(caught.value)
    assert seen == []
    assert "TLS certificate" in message
    assert "self-signed certificate" in message
    assert "Operation not permitted" not in message


async def test_a_chat_to_a_self_signed_server_says_why(self_signed_https: str) -> None:
    """A chat request fails with the certificate's reason too."""
    with pytest.raises(ConnectError, match="self-signed certificate"):
        async with stream_chat(self_signed_https, "hi") as stream:
            await stream.collect()


async def test_https_to_a_plain_http_server_fails_at_once() -> None:
    """A TLS handshake with a server that speaks plain HTTP fails at the first check, saying
    the handshake failed, without the server ever answering /health."""
    async with ReplayServer(Reply()) as server:
        https_url = server.url.replace("http://", "https://")
        with pytest.raises(ConnectError, match="TLS handshake") as caught:
            await wait_healthy(https_url, timeout_s=60)
        assert server.health_checks == 0
    assert "Operation not permitted" not in str(caught.value)


async def test_a_host_that_does_not_resolve_fails_at_once() -> None:
    """A name that cannot resolve (RFC 6761's .invalid) is a wrong URL, not a cold start: the
    first check raises ConnectError naming the host instead of retrying for the whole wait."""
    seen: list[HealthProgress] = []
    with pytest.raises(ConnectError) as caught:
        await wait_healthy("http://nonexistent.invalid", timeout_s=60, on_progress=seen.append)
    assert seen == []
    assert "cannot resolve the host 'nonexistent.invalid'" in str(caught.value)
