"""Options more than one subcommand takes: extra request headers (``--header``)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence

from gptoss_modal._duration import parse_duration as duration_seconds
from gptoss_modal._exceptions import ConfigError
from gptoss_modal.stream._checks import (
    CONTROL_CHARACTERS,
    HEADER_NAME,
    control_characters_hint,
    credential,
)


def add_header_option(parser: argparse.ArgumentParser) -> None:
    """``--header "NAME: VALUE"``, repeatable."""
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar='"NAME: VALUE"',
        help=(
            "an extra header on every request (repeatable); Modal proxy auth's Modal-Key and "
            "Modal-Secret are sent from $GPTOSS_MODAL_KEY and $GPTOSS_MODAL_SECRET when set"
        ),
    )


def parse_headers(values: Sequence[str]) -> dict[str, str]:
    """``["NAME: VALUE", ...]`` (``NAME:VALUE`` too) as a dict; a repeated name keeps the last.

    Raises :class:`ConfigError` for a value without a colon, a name that is not an HTTP token
    or a control character (a line break, NUL, DEL, ...) in the value; the error never shows
    the value (it may be a secret).
    """
    headers: dict[str, str] = {}
    for value in values:
        name, sep, content = value.partition(":")
        name = name.strip()
        if not sep or HEADER_NAME.fullmatch(name) is None:
            raise ConfigError(
                "--header", "<hidden>: ...", 'NAME: VALUE on one line, e.g. "Modal-Key: wk-..."'
            )
        if CONTROL_CHARACTERS.search(content):
            raise ConfigError("--header", f"{name}: <hidden>", control_characters_hint())
        headers[name] = content.strip()
    return headers


def request_headers(values: Sequence[str], env: Mapping[str, str]) -> dict[str, str]:
    """The ``--header`` values on top of Modal proxy auth from the environment (if set).

    A ``--header`` replaces an environment header of the same name, in any case.
    """
    from gptoss_modal.deploy import proxy_auth_headers  # the deploy settings: only when run

    given = parse_headers(values)
    replaced = {name.lower() for name in given}
    headers = {k: v for k, v in proxy_auth_headers(env).items() if k.lower() not in replaced}
    headers.update(given)
    return headers


API_KEY_ENV = "GPTOSS_API_KEY"


def parse_duration(text: str) -> float:
    """An argparse ``type`` for durations (:func:`gptoss_modal._duration.parse_duration`; zero
    allowed: ``--wait 0`` means do not wait); argparse turns the error into a usage message."""
    try:
        return duration_seconds(text, "duration", allow_zero=True)
    except ConfigError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: use a number with s, m, h or ms (e.g. 90s, 30m)"
        ) from None


def api_key(text: str) -> str:
    """An argparse ``type`` for ``--api-key`` (and its default from ``$GPTOSS_API_KEY``): a
    control character in it is a usage error naming both, never showing the key."""
    try:
        credential("--api-key", text)
    except ConfigError:
        raise argparse.ArgumentTypeError(
            f"the key (from --api-key or ${API_KEY_ENV}) holds a control character: use "
            f"{control_characters_hint()}"
        ) from None
    return text


def add_key_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-key",
        type=api_key,
        default=os.environ.get(API_KEY_ENV),
        help=f"the server's API key (default: ${API_KEY_ENV})",
    )
