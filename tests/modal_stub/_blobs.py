"""The blob store's HTTP side: Modal's client PUTs large payloads to a URL the control plane
hands out (``BlobCreate``) and GETs them from another (``BlobGet``); this serves both on
loopback, answering a PUT with the quoted-MD5 ETag the client checks, as S3 does."""

from __future__ import annotations

import hashlib

from aiohttp import web

from tests.modal_stub._servicer import MAX_BLOB_BYTES, StubState

__all__ = ["blob_app"]


def blob_app(state: StubState) -> web.Application:
    """An aiohttp app storing blobs in ``state.blobs`` (PUT and GET ``/blobs/{blob_id}``)."""

    async def put(request: web.Request) -> web.Response:
        blob_id = request.match_info["blob_id"]
        content = await request.read()
        with state.lock:
            state.blobs[blob_id] = content
        return web.Response(headers={"ETag": f'"{hashlib.md5(content).hexdigest()}"'})  # noqa: S324  (S3's ETag is an MD5)

    async def get(request: web.Request) -> web.Response:
        blob_id = request.match_info["blob_id"]
        with state.lock:
            content = state.blobs.get(blob_id)
        if content is None:
            return web.Response(status=404, text=f"no blob {blob_id}")
        return web.Response(body=content)

    app = web.Application(client_max_size=MAX_BLOB_BYTES)
    app.add_routes([web.put("/blobs/{blob_id}", put), web.get("/blobs/{blob_id}", get)])
    return app
