"""The client's error translation, what is worth waiting for, the 401 message and the backoff."""

from __future__ import annotations

import socket
import ssl

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from gptoss_modal import AuthenticationError, ConnectError, HealthTimeout
from gptoss_modal.stream.client import Client, _translate, worth_waiting
from tests.strategies_stream import ReplayServer, Reply, free_port

CERT_TEXT = (
    "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate "
    "(_ssl.c:1006)"
)
URL = "https://gpt.example.invalid/health"


def _key(host: str = "gpt.example.invalid") -> ConnectionKey:
    """aiohttp's key of a connection to ``host``:443."""
    return ConnectionKey(host, 443, True, True, None, None, None)


def _ours(exc: BaseException) -> ConnectError:
    """What the client makes of ``exc`` while connecting."""
    error = _translate(exc, url=URL, timeout_s=10.0, stall_timeout_s=None, partial=None)
    assert isinstance(error, ConnectError)
    return error


def test_a_rejected_certificate_is_reported_with_the_ssl_errors_own_text() -> None:
    """A certificate error says the certificate was rejected, quoting OpenSSL's reason, and not
    the OS's text for its errno 1 ("Operation not permitted")."""
    exc = aiohttp.ClientConnectorCertificateError(
        _key(), ssl.SSLCertVerificationError(1, CERT_TEXT)
    )
    message = str(_ours(exc))
    assert f"the TLS certificate of {URL} was rejected: {CERT_TEXT}" in message
    assert "SSL_CERT_FILE" in message
    assert "Operation not permitted" not in message


def test_a_failed_tls_handshake_is_reported_with_the_ssl_errors_own_text() -> None:
    """Any other SSL error (here https:// to a plain-HTTP port) quotes the SSL error."""
    reason = "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)"
    exc = aiohttp.ClientConnectorSSLError(_key(), ssl.SSLError(1, reason))
    message = str(_ours(exc))
    assert message == f"the TLS handshake with {URL} failed: {reason}"


def test_a_host_that_does_not_resolve_names_the_host() -> None:
    """A DNS failure names the host and the resolver's reason, and says to check the URL."""
    exc = aiohttp.ClientConnectorDNSError(_key(), socket.gaierror(-2, "Name or service not known"))
    message = str(_ours(exc))
    assert "cannot resolve the host 'gpt.example.invalid'" in message
    assert "(Name or service not known): check the URL" in message


def test_a_refused_connection_still_says_connection_refused() -> None:
    """An OS error keeps its errno's text, as before."""
    exc = aiohttp.ClientConnectorError(_key(), ConnectionRefusedError(111, "Connect call failed"))
    assert str(_ours(exc)) == f"cannot connect to {URL}: Connection refused"


@pytest.mark.parametrize(
    ("exc", "worth"),
    [
        (aiohttp.ClientConnectorError(_key(), ConnectionRefusedError(111, "refused")), True),
        (aiohttp.ServerDisconnectedError(), True),
        (aiohttp.ConnectionTimeoutError(), True),
        (aiohttp.ClientConnectorDNSError(_key(), socket.gaierror(-2, "unknown")), False),
        (aiohttp.ClientConnectorSSLError(_key(), ssl.SSLError(1, "handshake")), False),
        (
            aiohttp.ClientConnectorCertificateError(
                _key(), ssl.SSLCertVerificationError(1, CERT_TEXT)
            ),
            False,
        ),
    ],
)
def test_only_what_a_starting_server_causes_is_worth_waiting_for(
    exc: BaseException, worth: bool
) -> None:
    """Refused, dropped and timed-out connections may heal; DNS and TLS failures will not."""
    error = _translate(exc, url=URL, timeout_s=1.0, stall_timeout_s=None, partial=None)
    assert error.__cause__ is exc
    assert worth_waiting(error) is worth


@pytest.mark.parametrize(
    ("api_key", "headers", "sent"),
    [
        (None, {}, "no API key and no Modal-Key/Modal-Secret headers were sent"),
        ("sk-wrong", {}, "the API key sent was rejected"),
        (None, {"modal-key": "wk-1", "modal-secret": "ws-2"}, "the Modal-Key/Modal-Secret"),
    ],
)
async def test_a_401_names_both_ways_to_authenticate(
    api_key: str | None, headers: dict[str, str], sent: str
) -> None:
    """A 401 says which credentials were sent (never their values) and names both fixes: the
    key vLLM was started with, or a Modal proxy auth token's Modal-Key/Modal-Secret headers."""
    reply = Reply(status=401, body=b'{"error":"Unauthorized"}')
    async with (
        ReplayServer(reply) as server,
        Client(server.url, api_key=api_key, headers=headers) as client,
    ):
        with pytest.raises(AuthenticationError) as caught:
            await client.chat("hi")
    message = str(caught.value)
    assert sent in message
    assert "vLLM --api-key" in message
    assert "Modal-Key and Modal-Secret headers" in message
    for secret in ("sk-wrong", "wk-1", "ws-2"):
        assert secret not in message


async def test_health_checks_back_off_from_a_quarter_second_by_half_up_to_five() -> None:
    """Against a server that never answers, the waits between /health checks are 0.25 s, then
    1.5x longer each time, at most 5 s, the last one cut to the time left (a fake clock and
    sleep: nothing really waits)."""
    now = 0.0
    waits: list[float] = []

    def clock() -> float:
        return now

    async def sleep(seconds: float) -> None:
        nonlocal now
        waits.append(seconds)
        now += seconds

    client = Client(f"http://127.0.0.1:{free_port()}", clock=clock, sleep=sleep)
    async with client:
        with pytest.raises(HealthTimeout, match="11 checks"):
            await client.wait_healthy(timeout_s=20)
    expected = [0.25, 0.375, 0.5625, 0.84375, 1.265625, 1.8984375, 2.84765625, 4.271484375]
    assert waits == pytest.approx([*expected, 5.0, 20 - sum(expected) - 5.0])
