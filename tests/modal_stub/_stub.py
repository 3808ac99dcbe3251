"""The stub as one object: a gRPC control plane and a blob HTTP server on loopback, started in
a background thread, with its objects (Secrets, Volumes, apps) and its record of requests."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import grpclib.const
import grpclib.server
from aiohttp import web

from tests.modal_stub._blobs import blob_app
from tests.modal_stub._dispatch import Recorder, build_mapping
from tests.modal_stub._servicer import ControlPlane, StubState
from tests.modal_stub._thread import LoopThread

__all__ = ["ModalStub"]

HOST = "127.0.0.1"


class _Service:
    """What grpclib serves: the generated method table, routed through the recorder."""

    def __init__(self, plane: ControlPlane, recorder: Recorder) -> None:
        self._mapping = build_mapping(plane, recorder)

    def __mapping__(self) -> dict[str, grpclib.const.Handler]:
        return self._mapping


class ModalStub:
    """A local stand-in for Modal's control plane on 127.0.0.1 (ports chosen by the OS).

    Point the ``modal`` CLI at :attr:`url` with ``MODAL_SERVER_URL``; read what it asked for
    with :meth:`requests`. ``secrets`` maps a Secret's name to its keys (values are never
    checked, only which keys exist, as ``required_keys`` asks)."""

    def __init__(self, secrets: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.state = StubState(secrets={k: dict(v) for k, v in (secrets or {}).items()})
        self.recorder = Recorder()
        self._loop = LoopThread()
        self._grpc: grpclib.server.Server | None = None
        self._runner: web.AppRunner | None = None
        try:
            self.blob_base, self.url = self._loop.run(self._start)
        except BaseException:
            self._loop.close()
            raise

    async def _start(self) -> tuple[str, str]:
        self._runner = web.AppRunner(blob_app(self.state))
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, 0)
        await site.start()
        blob_port = self._runner.addresses[0][1]
        blob_base = f"http://{HOST}:{blob_port}/blobs"
        plane = ControlPlane(self.state, lambda blob_id: f"{blob_base}/{blob_id}")
        self._grpc = grpclib.server.Server([_Service(plane, self.recorder)])
        sock = socket.create_server((HOST, 0))  # bound here, so its port is known
        grpc_port = sock.getsockname()[1]
        await self._grpc.start(sock=sock)
        return blob_base, f"http://{HOST}:{grpc_port}"

    async def _stop(self) -> None:
        if self._grpc is not None:
            self._grpc.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def close(self) -> None:
        """Stop both servers and the loop's thread (each wait bounded)."""
        try:
            self._loop.run(self._stop)
        finally:
            self._loop.close()

    def __enter__(self) -> ModalStub:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- what the tests read and change ---------------------------------------------------

    def requests(self, method: str | None = None) -> list[Any]:
        """The decoded requests received so far (of one method, or all as :class:`Recorded`)."""
        records = self.recorder.all()
        if method is None:
            return records
        return [r.request for r in records if r.method == method]

    def methods(self) -> list[str]:
        """The method names received so far, in order."""
        return [r.method for r in self.recorder.all()]

    def clear(self) -> None:
        """Forget the requests so far (objects such as Secrets and deployed apps stay)."""
        self.recorder.clear()

    def set_secret(self, name: str, keys: Mapping[str, str] | None) -> None:
        """Create or replace the Secret ``name`` with ``keys``; ``None`` deletes it."""
        with self.state.lock:
            if keys is None:
                self.state.secrets.pop(name, None)
            else:
                self.state.secrets[name] = dict(keys)

    def deployed_app_id(self, name: str) -> str | None:
        """The id of the app deployed as ``name``, if one is."""
        with self.state.lock:
            return self.state.deployed.get(name)
