"""Every method of Modal's control-plane service, routed to the stub's implementation or to a
clear UNIMPLEMENTED error, with each request recorded before it is answered.

The method table comes from ``modal_proto`` itself (``ModalClientBase.__mapping__``), so a
method a future SDK adds is served too: as an error naming it, never as a hang.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpclib.const
import grpclib.server
from grpclib import GRPCError
from grpclib.const import Status
from modal_proto import api_grpc

__all__ = ["Recorded", "Recorder", "UnaryImpl", "build_mapping", "method_names"]

SERVICE_PREFIX = "/modal.client.ModalClient/"

# A unary method answers one request with one reply; a streaming one with any number of them.
UnaryImpl = Callable[[Any], Awaitable[Any]]
StreamImpl = Callable[[Any], AsyncIterator[Any]]


@dataclass(frozen=True)
class Recorded:
    """One request the stub received: the method's short name and the decoded message."""

    method: str
    request: Any  # a modal_proto message: its type depends on the method


class Recorder:
    """Every request received, in order; thread-safe (the stub serves from its own thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []

    def add(self, method: str, request: Any) -> None:
        """Record one request (a copy, so later mutation by nobody can change the record)."""
        copy = type(request)()
        copy.CopyFrom(request)
        with self._lock:
            self._requests.append(Recorded(method, copy))

    def all(self) -> list[Recorded]:
        """Every request so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget the requests so far (the stub's objects stay)."""
        with self._lock:
            self._requests.clear()


def method_names() -> tuple[str, ...]:
    """The short names of every method ``modal_proto``'s service declares."""
    return tuple(sorted(_base_mapping()))


def _base_mapping() -> dict[str, grpclib.const.Handler]:
    """The generated method table, keyed by short name (handlers are placeholders)."""

    async def placeholder(stream: Any) -> None:  # pragma: no cover - never called
        raise NotImplementedError

    names = api_grpc.ModalClientBase.__abstractmethods__
    concrete = type("_Table", (api_grpc.ModalClientBase,), dict.fromkeys(names, placeholder))
    table: Mapping[str, grpclib.const.Handler] = concrete().__mapping__()
    return {path.removeprefix(SERVICE_PREFIX): handler for path, handler in table.items()}


def build_mapping(impl: object, recorder: Recorder) -> dict[str, grpclib.const.Handler]:
    """grpclib's handler table: each method records its request, then runs ``impl``'s method of
    the same name, or answers UNIMPLEMENTED naming it."""
    mapping: dict[str, grpclib.const.Handler] = {}
    for name, base in _base_mapping().items():
        func = getattr(impl, name, None)
        handler = _handler(name, base.cardinality, func, recorder)
        mapping[SERVICE_PREFIX + name] = grpclib.const.Handler(
            handler, base.cardinality, base.request_type, base.reply_type
        )
    return mapping


def _handler(
    name: str,
    cardinality: grpclib.const.Cardinality,
    func: Callable[[Any], Any] | None,
    recorder: Recorder,
) -> Callable[[grpclib.server.Stream[Any, Any]], Awaitable[None]]:
    streaming_reply = cardinality in (
        grpclib.const.Cardinality.UNARY_STREAM,
        grpclib.const.Cardinality.STREAM_STREAM,
    )
    streaming_request = cardinality in (
        grpclib.const.Cardinality.STREAM_UNARY,
        grpclib.const.Cardinality.STREAM_STREAM,
    )

    async def handle(stream: grpclib.server.Stream[Any, Any]) -> None:
        if streaming_request:  # no method this app needs streams requests in
            raise GRPCError(Status.UNIMPLEMENTED, f"modal stub: {name} (a request stream)")
        request = await stream.recv_message()
        if request is None:
            raise GRPCError(Status.INVALID_ARGUMENT, f"modal stub: {name} without a request")
        recorder.add(name, request)
        if func is None:
            raise GRPCError(
                Status.UNIMPLEMENTED, f"modal stub: {name} is not implemented by the stub"
            )
        if streaming_reply:
            replies: Iterable[Any] | AsyncIterator[Any] = func(request)
            if isinstance(replies, AsyncIterator):
                async for reply in replies:
                    await stream.send_message(reply)
            else:
                for reply in replies:
                    await stream.send_message(reply)
        else:
            await stream.send_message(await func(request))

    return handle
