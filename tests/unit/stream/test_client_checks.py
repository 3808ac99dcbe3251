"""Every Client and request parameter is checked, and no credential with a control character
gets as far as aiohttp: each a typed ConfigError naming the parameter, variable or option.

Each case here failed before: ``max_connections=-1`` hung, ``stall_timeout_s="5"`` left a
TypeError in a task, ``0`` meant "wait for ever", ``build_chat_request(max_tokens="5")`` raised
TypeError, and a key or header with CR, SOH or DEL ended in aiohttp's bare ValueError.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from gptoss_modal import ConfigError, build_chat_request
from gptoss_modal.cli import EXIT_USAGE, main
from gptoss_modal.cli._options import parse_headers, request_headers
from gptoss_modal.deploy import DeploySettings, client_credentials, proxy_auth_headers
from gptoss_modal.stream.client import Client

URL = "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_connections", -1),
        ("max_connections", 0),
        ("max_connections", True),
        ("max_connections", "8"),
        ("stall_timeout_s", 0),
        ("stall_timeout_s", -1),
        ("stall_timeout_s", "5"),
        ("stall_timeout_s", math.nan),
        ("stall_timeout_s", math.inf),
        ("connect_timeout_s", 0.0),
        ("connect_timeout_s", False),
        ("request_timeout_s", -0.5),
        ("max_retries", -1),
        ("max_retries", 1.5),
        ("max_event_chars", 0),
        ("model", 5),
        ("clock", 5),
        ("sleep", None),
        ("api_key", 123),
        ("headers", ["X: y"]),
    ],
)
def test_a_nonsensical_client_parameter_is_a_ConfigError_naming_it(field: str, value: Any) -> None:
    """The error names the parameter (and says what is allowed) before anything is sent."""
    with pytest.raises(ConfigError) as caught:
        Client(URL, **{field: value})
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("field", "value"),
    [("stall_timeout_s", None), ("connect_timeout_s", None), ("request_timeout_s", 0.001)],
)
def test_None_and_small_positive_limits_are_accepted(field: str, value: Any) -> None:
    """The partner: None (no limit) and any positive number pass."""
    assert getattr(Client(URL, **{field: value}), field) == value


async def test_health_wait_and_metrics_limits_are_checked() -> None:
    """wait_healthy's and fetch_metrics' own limits: typed errors naming them."""
    async with Client(URL) as client:
        with pytest.raises(ConfigError, match="timeout_s"):
            await client.wait_healthy(timeout_s=-1)
        with pytest.raises(ConfigError, match="probe_timeout_s"):
            await client.wait_healthy(probe_timeout_s=0)
        with pytest.raises(ConfigError, match="max_server_errors"):
            await client.wait_healthy(max_server_errors=0)
        with pytest.raises(ConfigError, match="timeout_s"):
            await client.fetch_metrics(timeout_s="10")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "options"),
    [
        ("max_tokens", {"max_tokens": "5"}),
        ("max_tokens", {"max_tokens": True}),
        ("max_tokens", {"max_tokens": 2.5}),
        ("system", {"system": 1}),
        ("model", {"model": ["a"]}),
        ("reasoning_effort", {"reasoning_effort": 3}),
        ("tools", {"tools": "f"}),
        ("tools", {"tools": [1]}),
        ("continuous_usage", {"continuous_usage": "yes"}),
        ("extra", {"extra": [("seed", 1)]}),
        ("messages", {"messages": 5}),
        ("messages", {"messages": ["hi"]}),
    ],
)
def test_a_request_argument_of_the_wrong_type_is_a_ConfigError_naming_it(
    field: str, options: dict[str, Any]
) -> None:
    """build_chat_request names the argument instead of raising TypeError (or sending it)."""
    arguments: dict[str, Any] = {"messages": "a private prompt", **options}
    messages = arguments.pop("messages")
    with pytest.raises(ConfigError) as caught:
        build_chat_request(messages, **arguments)
    assert caught.value.field == field
    assert "private" not in str(caught.value)


def test_well_typed_request_arguments_still_build_the_body() -> None:
    """The partner: the same arguments, well typed, make a body."""
    body = build_chat_request(
        [{"role": "user", "content": "hi"}],
        system="s",
        model="m",
        reasoning_effort="low",
        tools=[{"type": "function"}],
        max_tokens=5,
        continuous_usage=True,
        extra={"seed": 1},
    )
    assert body["max_tokens"] == 5


SECRET = "sk-SECRET"


@pytest.mark.parametrize(
    "bad", [f"{SECRET}\r", f"{SECRET}\r\n", f"sk-\x01{SECRET}", f"{SECRET}\x7f"]
)
def test_a_key_with_a_control_character_is_a_ConfigError_without_its_value(bad: str) -> None:
    """api_key with CR (a CRLF key file), SOH or DEL: named, never shown."""
    with pytest.raises(ConfigError) as caught:
        Client(URL, api_key=bad)
    assert caught.value.field == "api_key"
    assert SECRET not in str(caught.value)
    assert "CRLF" in str(caught.value)


def test_a_header_value_with_a_control_character_is_named_by_its_header() -> None:
    """headers={"X": "a\\x01b"}: the error names headers['X'], not the value."""
    with pytest.raises(ConfigError) as caught:
        Client(URL, headers={"X-Token": f"a\x01{SECRET}"})
    assert caught.value.field == "headers['X-Token']"
    assert SECRET not in str(caught.value)


def test_a_tab_in_a_header_value_is_allowed() -> None:
    """The partner: HTAB is legal in a field value (RFC 9110)."""
    Client(URL, headers={"X-Token": "a\tb"})


@pytest.mark.parametrize("variable", ["GPTOSS_MODAL_KEY", "GPTOSS_MODAL_SECRET"])
def test_a_proxy_token_with_DEL_names_the_variable(variable: str) -> None:
    """GPTOSS_MODAL_KEY (or _SECRET) with \\x7f: an error naming that variable, no value."""
    env = {"GPTOSS_MODAL_KEY": "wk-1", "GPTOSS_MODAL_SECRET": "ws-1", variable: f"{SECRET}\x7f"}
    with pytest.raises(ConfigError) as caught:
        proxy_auth_headers(env)
    assert caught.value.field == variable
    assert SECRET not in str(caught.value)


def test_GPTOSS_API_KEY_with_a_CR_names_the_variable() -> None:
    """The deploy's client credentials: $'sk-x\\r' is an error naming GPTOSS_API_KEY."""
    with pytest.raises(ConfigError) as caught:
        client_credentials(DeploySettings(), {"GPTOSS_API_KEY": f"{SECRET}\r"})
    assert caught.value.field == "GPTOSS_API_KEY"
    assert SECRET not in str(caught.value)


def test_surrounding_spaces_of_an_environment_key_are_still_removed() -> None:
    """The partner: spaces around a key are trimmed, as before."""
    assert client_credentials(DeploySettings(), {"GPTOSS_API_KEY": f" {SECRET} "})[0] == SECRET


def test_a_header_option_with_a_control_character_names_the_option_and_header() -> None:
    """--header 'X: a\\x01b': an error naming --header and X, never the value."""
    with pytest.raises(ConfigError) as caught:
        parse_headers([f"X: a\x01{SECRET}"])
    assert caught.value.field == "--header"
    assert "X" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_request_headers_carry_the_environment_check() -> None:
    """The CLI's header set refuses a proxy token with a control character from the env."""
    with pytest.raises(ConfigError, match="GPTOSS_MODAL_SECRET"):
        request_headers([], {"GPTOSS_MODAL_KEY": "wk-1", "GPTOSS_MODAL_SECRET": "ws\r"})


def test_chat_with_a_CR_in_GPTOSS_API_KEY_is_a_usage_error_without_the_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`GPTOSS_API_KEY=$'sk-x\\r' gptoss-modal chat`: exit 2, names both, no traceback, no key."""
    monkeypatch.setenv("GPTOSS_API_KEY", f"{SECRET}\r")
    assert main(["chat", URL, "hi"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--api-key" in err
    assert "GPTOSS_API_KEY" in err
    assert SECRET not in err
    assert "Traceback" not in err


def test_chat_with_a_control_character_in_a_header_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`gptoss-modal chat --header 'X: a\\x01b'`: exit 2 naming --header, no value shown."""
    assert main(["chat", URL, "hi", "--header", f"X: a\x01{SECRET}"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "--header" in err
    assert SECRET not in err
