"""When the client tries a request again, how long it waits first, and which redirects it follows.

Retries follow the openai SDK's rules: a connection that could not be made (not a host that does
not resolve, nor a failed TLS handshake), a connect timeout, and the answers 408, 429 and 5xx
are tried again, at most ``max_retries`` times (2 by default), waiting 0.5 s, then 1 s, ... at
most 8 s (less up to a quarter, at random, so many clients do not come back in step), or what
the server's ``Retry-After`` (or ``Retry-After-Ms``) asks when that is between 0 and 60 s. Only
before the reply's body is read: a stream that began is never sent again.

A redirect is followed only within the same origin (scheme, host and port): the request's
credentials (``Authorization``, ``Modal-Key``, ``Modal-Secret`` and any other header) must not
reach another host, and aiohttp would strip only ``Authorization``. Nothing here is public API.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Final

import yarl

from gptoss_modal._exceptions import (
    ConnectError,
    ConnectTimeout,
    GptossModalError,
    HTTPStatusError,
)
from gptoss_modal.stream.errors import PERMANENT_CONNECT_ERRORS

__all__: list[str] = []  # internal to the stream package

DEFAULT_MAX_RETRIES: Final = 2  # the openai SDK's default
RETRY_FIRST_DELAY_S: Final = 0.5  # doubling after each retry...
RETRY_MAX_DELAY_S: Final = 8.0  # ...up to this
RETRY_JITTER: Final = 0.25  # each wait is shortened by up to this share, at random
RETRY_AFTER_MAX_S: Final = 60.0  # a longer Retry-After is not waited for (the backoff is used)
RETRY_STATUSES: Final = frozenset({408, 429})  # and every 5xx
MAX_REDIRECTS: Final = 5
REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})
# The redirects that keep the method and body: a POST redirected by 301-303 would become a GET.
BODY_KEEPING_REDIRECTS: Final = frozenset({307, 308})


def retryable(error: GptossModalError) -> bool:
    """Whether a request that failed this way, before its body was read, may be sent again."""
    if isinstance(error, HTTPStatusError):
        return error.status in RETRY_STATUSES or error.status >= 500
    if isinstance(error, ConnectTimeout):
        return True
    return type(error) is ConnectError and not isinstance(error.__cause__, PERMANENT_CONNECT_ERRORS)


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """The wait a reply's ``Retry-After-Ms`` or ``Retry-After`` asks for, if in (0, 60] s."""
    wait: float | None = None
    if (ms := headers.get("Retry-After-Ms")) is not None:
        wait = _number(ms)
        wait = wait / 1000 if wait is not None else None
    if wait is None and (after := headers.get("Retry-After")) is not None:
        wait = _number(after)
        if wait is None:  # an HTTP date
            try:
                wait = email.utils.parsedate_to_datetime(after).timestamp() - time.time()
            except (TypeError, ValueError):
                wait = None
    return wait if wait is not None and 0 < wait <= RETRY_AFTER_MAX_S else None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def retry_delay_s(retry: int, retry_after: float | None, jitter: float) -> float:
    """The wait before retry number ``retry`` (0 for the first); ``jitter`` is in [0, 1)."""
    if retry_after is not None:
        return retry_after
    backoff = min(RETRY_FIRST_DELAY_S * 2.0**retry, RETRY_MAX_DELAY_S)
    return backoff * (1 - RETRY_JITTER * jitter)


def redirect_target(url: str, status: int, location: str | None, *, keeps_body: bool) -> str:
    """Where to follow a redirect from ``url``; raise :class:`HTTPStatusError` when it must not
    be followed (another origin, no ``Location``, or a POST that would become a GET)."""
    here = yarl.URL(url)
    if not location:
        raise HTTPStatusError(
            f"{url} answered {status} (a redirect) without a Location", status=status, url=url
        )
    try:
        there = here.join(yarl.URL(location))
        origin = (there.scheme, there.host, there.explicit_port or there.port)
    except ValueError:
        origin = None
    if origin is None or origin != (here.scheme, here.host, here.explicit_port or here.port):
        shown = f"{there.scheme}://{there.host}:{there.port}" if origin else "an unreadable URL"
        raise HTTPStatusError(
            f"{url} answered {status}, a redirect to another origin ({shown}); not followed, so "
            "the request's credentials stay with this server: if you trust it, use that URL",
            status=status,
            url=url,
        )
    if keeps_body and status not in BODY_KEEPING_REDIRECTS:
        raise HTTPStatusError(
            f"{url} answered {status}, a redirect that would turn the POST into a GET; use the "
            f"URL it points to ({there.path}) as the base URL",
            status=status,
            url=url,
        )
    return str(there)
