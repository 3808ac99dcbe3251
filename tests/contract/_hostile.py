"""Hostile HTTP servers on 127.0.0.1:0 for the client's fault tests: each answers every request
with a script of raw writes and pauses, so a test can send what no well-behaved server would.

A script is a list of bytes (written as they are), floats (a pause in seconds) and callables
(``script_fn(request) -> bytes``, given the request head). The reply has no Content-Length and
ends when the script does (the connection closes), as an HTTP/1.1 server may.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Self

Step = bytes | float | Callable[[bytes], bytes]

EVENT_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
)


def head(status: str, *headers: str) -> bytes:
    """A response head: ``head("307 Temporary Redirect", "Location: http://...")``."""
    lines = [f"HTTP/1.1 {status}", *headers, "Content-Length: 0", "Connection: close", "", ""]
    return "\r\n".join(lines).encode()


@dataclass
class HostileServer:
    """Answers each request with ``script`` (one for every path), recording each request head."""

    script: Iterable[Step]
    requests: list[bytes] = field(default_factory=list)
    url: str = ""
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(request)
            length = 0
            for line in request.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            for step in self.script:
                if isinstance(step, float):
                    await asyncio.sleep(step)
                else:
                    writer.write(step(request) if callable(step) else step)
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away: what these tests provoke
        finally:
            self._handlers.discard(task)
            writer.close()


def every(seconds: float, step: Step, times: int) -> list[Step]:
    """``step`` then a pause of ``seconds``, ``times`` times (a server that keeps going)."""
    return [step, seconds] * times


@contextlib.contextmanager
def unaccepting_port() -> Iterator[int]:
    """A port whose accept queue is full, so a new connection attempt hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    for _ in range(8):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(listener.getsockname())
        fillers.append(filler)
    try:
        yield listener.getsockname()[1]
    finally:
        for sock in [*fillers, listener]:
            sock.close()
