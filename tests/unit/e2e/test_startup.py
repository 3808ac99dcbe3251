"""Getting the app under test running: a crash loop ends the wait, Ctrl-C ends the session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from gptoss_modal._exceptions import HTTPStatusError
from gptoss_modal.testing.mock_server import MockConfig, MockVLLM
from tests.e2e.startup import caches_are_warm, served_vllm_version, wait_for_start
from tests.unit.e2e.tiny_suite import run_tiny_suite

KEY = "sk-e2e-startup-secret"
PROXY_BODY = "modal-http: the app's container failed to start (exit code 1)"
FAILURES_IN_A_ROW = 3
GENEROUS_TIMEOUT_S = 600.0  # the wait must end on the crash loop long before this


@asynccontextmanager
async def proxy_answering_503(upstream: str) -> AsyncIterator[str]:
    """A stand-in for Modal's proxy on 127.0.0.1, port 0: passes a 200 through, answers any 5xx
    from the container with its own 503 and a body that echoes the caller's credentials."""

    async def forward(request: web.Request) -> web.Response:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{upstream}{request.path}", headers=request.headers) as reply,
        ):
            body = await reply.read()
            status, content_type = reply.status, reply.content_type
        if status >= 500:
            echoed = request.headers.get("Authorization", "")
            return web.Response(status=503, text=f"{PROXY_BODY}; request had {echoed}")
        return web.Response(status=status, body=body, content_type=content_type)

    app = web.Application()
    app.router.add_get("/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_crash_loop_through_the_proxy_ends_the_wait_with_the_last_body() -> None:
    """A dead engine behind a proxy answering 503 ends the wait after the bounded number of
    5xx answers, with the proxy's body (and no credential) in the error."""
    said: list[str] = []
    async with (
        MockVLLM(MockConfig(api_keys=(KEY,), fault="dead")) as mock,
        proxy_answering_503(mock.url) as url,
    ):
        with pytest.raises(HTTPStatusError) as caught:
            await wait_for_start(
                url,
                api_key=KEY,
                timeout_s=GENEROUS_TIMEOUT_S,
                max_server_errors=FAILURES_IN_A_ROW,
                say=said.append,
            )
    error = caught.value
    assert error.status == 503
    assert f"{FAILURES_IN_A_ROW} times in a row" in str(error)
    assert PROXY_BODY in str(error)
    assert KEY not in str(error) + error.body
    assert said, "the wait printed no progress line"


async def test_a_healthy_start_through_the_proxy_ends_the_wait() -> None:
    """A live server behind the same proxy is healthy at once; the version probe reads it."""
    async with (
        MockVLLM(MockConfig(api_keys=(KEY,))) as mock,
        proxy_answering_503(mock.url) as url,
    ):
        progress = await wait_for_start(
            url, api_key=KEY, timeout_s=GENEROUS_TIMEOUT_S, max_server_errors=1, say=print
        )
        version = await served_vllm_version(url)
    assert progress.healthy
    assert version == MockConfig().version


# Modal's runner (modal/runner.py, _run_app): a KeyboardInterrupt inside the block is caught,
# the app is stopped and the context manager returns normally.
CTRL_C_SUITE = """
import contextlib
import pytest
from tests.e2e.startup import ending_the_session_on_ctrl_c

@contextlib.contextmanager
def modal_like_run():
    try:
        yield
    except KeyboardInterrupt:
        print("Disconnecting from Modal")
        return

@pytest.fixture(scope="session")
def deployed():
    with ending_the_session_on_ctrl_c(modal_like_run()):
        raise KeyboardInterrupt  # Ctrl-C during the health wait
        yield "url"

def test_first(deployed):
    pass

def test_second(deployed):
    pass
"""


def test_ctrl_c_during_the_wait_ends_the_session(pytester: pytest.Pytester) -> None:
    """A Ctrl-C that Modal's runner swallows still ends the pytest session: exit code 2 and
    neither test run against a fixture that never yielded."""
    # In this process: the exit code is what pytest's main() returns, as a process would exit.
    run = run_tiny_suite(pytester, {"test_ctrl_c.py": CTRL_C_SUITE})
    stdout = run.stdout.str()
    assert run.ret == pytest.ExitCode.INTERRUPTED, stdout + run.stderr.str()
    assert "interrupted (Ctrl-C)" in stdout
    assert "did not yield" not in stdout
    assert "test_second" not in stdout.split("Disconnecting from Modal")[-1]


class FakeVolume:
    """A Volume whose root holds these entries."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.entries = list(entries)

    def listdir(self, path: str) -> Sequence[object]:
        assert path == "/"
        return self.entries


def test_caches_are_warm_only_when_every_volume_holds_files() -> None:
    """One empty cache Volume makes the start a cold one."""
    assert caches_are_warm([FakeVolume(["hub"]), FakeVolume(["torch_compile_cache"])])
    assert not caches_are_warm([FakeVolume(["hub"]), FakeVolume([])])
