"""The one place where aiohttp's errors become ours: the messages, and the cause kept for
telling a starting server from a wrong URL."""

from __future__ import annotations

import socket
import ssl

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from gptoss_modal import ConnectError
from gptoss_modal.stream.client import worth_waiting
from gptoss_modal.stream.errors import translate

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
    error = translate(
        exc, url=URL, connect_timeout_s=10.0, timeout_s=10.0, stall_timeout_s=None, partial=None
    )
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
    error = translate(
        exc, url=URL, connect_timeout_s=1.0, timeout_s=1.0, stall_timeout_s=None, partial=None
    )
    assert error.__cause__ is exc
    assert worth_waiting(error) is worth
