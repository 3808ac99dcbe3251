"""The Hub preflight, offline: respx routes answer with the shapes the Hub really sends.

``huggingface_hub`` 2.x talks through ``httpx2``, which respx does not patch, so the Hub
client's HTTP factory is pointed at a small transport that hands each request to a respx
router and converts the answer back. Nothing leaves the machine: an unrouted request fails.
Like the Hub's own client, that client has no default timeout: a request has one only if the
caller passed one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import httpx2
import pytest
import respx
from huggingface_hub import set_client_factory
from huggingface_hub.utils._http import default_client_factory

from gptoss_modal import PreflightError, ServeConfig
from gptoss_modal.deploy import HubRepo
from gptoss_modal.deploy.preflight import run_preflight

HUB = "https://huggingface.co"
MODEL = "openai/gpt-oss-20b"
REVISION = "d666cf3b67006cf8227666739edf25164aaffdeb"
DRAFT = "RedHatAI/gpt-oss-20b-speculator.eagle3"
DRAFT_SHA = "4a7b0f6a2c3e9e1d5b8f0c6d7e2a1b3c4d5e6f70"
TOKEN = "hf_preflightTestTokenThatMustNeverBePrinted"


class RespxTransport(httpx2.BaseTransport):
    """An httpx2 transport that answers from a respx router (and raises what it raises)."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.router = router

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        mirrored = httpx.Request(
            request.method,
            str(request.url),
            headers=list(request.headers.multi_items()),
            content=request.read(),
            extensions=request.extensions,  # the request's timeout, for the stall tests
        )
        try:
            answer = self.router.handler(mirrored)
        except httpx.ConnectError as exc:
            raise httpx2.ConnectError(str(exc), request=request) from exc
        except httpx.TimeoutException as exc:
            raise httpx2.ReadTimeout(str(exc), request=request) from exc
        return httpx2.Response(
            answer.status_code,
            headers=list(answer.headers.multi_items()),
            content=answer.content,
            request=request,
        )


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[respx.MockRouter]:
    """A respx router standing in for huggingface.co; no token unless a test sets one."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", "/nonexistent/hf-home")  # no cached login is found
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    router = respx.MockRouter(base_url=HUB, assert_all_mocked=True, assert_all_called=False)
    # timeout=None as in huggingface_hub's default_client_factory
    set_client_factory(lambda: httpx2.Client(transport=RespxTransport(router), timeout=None))
    yield router
    set_client_factory(default_client_factory)


def model_info(
    repo_id: str, sha: str, *, gated: Any = False, private: bool = False
) -> dict[str, Any]:
    """A trimmed ``GET /api/models/{repo}/revision/{rev}`` body, keys as the Hub sends them."""
    return {
        "_id": "6890d5d2b2c8e1f3a1e4c0b1",
        "id": repo_id,
        "modelId": repo_id,
        "author": repo_id.split("/")[0],
        "sha": sha,
        "lastModified": "2025-08-13T23:23:06.000Z",
        "private": private,
        "disabled": False,
        "gated": gated,
        "downloads": 5_123_456,
        "likes": 3_800,
        "library_name": "transformers",
        "tags": ["transformers", "safetensors", "gpt_oss", "text-generation", "vllm"],
        "pipeline_tag": "text-generation",
        "createdAt": "2025-08-04T22:33:29.000Z",
        "siblings": [
            {"rfilename": "config.json"},
            {"rfilename": "model-00000-of-00002.safetensors"},
            {"rfilename": "original/model.safetensors"},
        ],
        "spaces": [],
        "usedStorage": 41_000_000_000,
    }


def not_found() -> httpx.Response:
    """What the Hub answers an anonymous request for a repo that does not exist."""
    return httpx.Response(
        401,
        headers={"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"},
        json={"error": "Repository not found"},
    )


def route_found(router: respx.MockRouter) -> None:
    """The default model at its pinned revision and the speculator, both found."""
    router.get(f"/api/models/{MODEL}/revision/{REVISION}").respond(
        200, json=model_info(MODEL, REVISION)
    )
    router.get(f"/api/models/{DRAFT}").respond(200, json=model_info(DRAFT, DRAFT_SHA))


def test_found_model_and_draft_pass(hub: respx.MockRouter) -> None:
    """The pinned model and the speculator both found: the report is ok and says so."""
    route_found(hub)
    report = run_preflight(ServeConfig())
    assert report.ok
    assert [c.status for c in report.checks] == ["ok", "ok"]
    assert report.checks[0].sha == REVISION
    assert "found at the pinned commit" in report.summary()
    report.raise_for_failures()  # nothing to raise


def test_a_model_typo_fails_with_a_clear_message(hub: respx.MockRouter) -> None:
    """A repo the Hub does not know is a failure that says to check the name."""
    hub.get(f"/api/models/openai/gpt-oss-20b-typo/revision/{REVISION}").mock(
        return_value=not_found()
    )
    report = run_preflight(
        ServeConfig(), repos=[HubRepo("model", "openai/gpt-oss-20b-typo", REVISION)]
    )
    (check,) = report.checks
    assert check.status == "not_found"
    assert "check the name" in check.detail
    with pytest.raises(PreflightError, match="gpt-oss-20b-typo"):
        report.raise_for_failures()


def test_a_wrong_revision_is_named(hub: respx.MockRouter) -> None:
    """A revision the repo does not have is reported as such, not as a missing repo."""
    hub.get(f"/api/models/{MODEL}/revision/{'0' * 40}").respond(
        404,
        headers={"X-Error-Code": "RevisionNotFound", "X-Error-Message": "Invalid rev id"},
        json={"error": f"Invalid rev id: {'0' * 40}"},
    )
    hub.get(f"/api/models/{DRAFT}").respond(200, json=model_info(DRAFT, DRAFT_SHA))
    report = run_preflight(ServeConfig(revision="0" * 40))
    assert [c.status for c in report.checks] == ["wrong_revision", "ok"]
    assert "has no revision" in report.checks[0].detail
    assert len(report.failures) == 1


def test_a_gated_repo_without_access_fails(
    hub: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A gated draft the token may not read fails, pointing at where to accept the terms."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    hub.get(f"/api/models/{MODEL}/revision/{REVISION}").respond(
        200, json=model_info(MODEL, REVISION)
    )
    hub.get(f"/api/models/{DRAFT}").respond(200, json=model_info(DRAFT, DRAFT_SHA, gated="manual"))
    hub.get(f"/api/models/{DRAFT}/auth-check").respond(
        403,
        headers={
            "X-Error-Code": "GatedRepo",
            "X-Error-Message": f"Access to model {DRAFT} is restricted and you are not in the "
            "authorized list.",
        },
        json={"error": "Access to this model is restricted"},
    )
    report = run_preflight(ServeConfig(), container_has_token=True)
    assert [c.status for c in report.checks] == ["ok", "gated"]
    assert f"https://huggingface.co/{DRAFT}" in report.checks[1].detail


def test_the_token_is_sent_but_never_printed(
    hub: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HF_TOKEN set the Hub sees it as a bearer token; the report only says one was used."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    route_found(hub)
    report = run_preflight(ServeConfig())
    assert all(call.request.headers["authorization"] == f"Bearer {TOKEN}" for call in hub.calls)
    assert report.token_used
    assert "with your Hugging Face token" in report.summary()
    assert TOKEN not in report.summary()


def test_a_rejected_token_is_its_own_failure(
    hub: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An invalid token is reported as a bad token, not as a missing repo."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    invalid = {
        "X-Error-Message": "Invalid credentials in Authorization header",
    }
    hub.get(f"/api/models/{MODEL}/revision/{REVISION}").respond(
        401, headers=invalid, json={"error": "Invalid credentials in Authorization header"}
    )
    hub.get(f"/api/models/{DRAFT}").respond(
        401, headers=invalid, json={"error": "Invalid credentials in Authorization header"}
    )
    report = run_preflight(ServeConfig())
    assert [c.status for c in report.checks] == ["bad_token", "bad_token"]
    assert TOKEN not in report.summary()


def test_a_gated_repo_the_container_cannot_read_fails(
    hub: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readable here but gated, with no token for the container: the start would fail there."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    hub.get(f"/api/models/{MODEL}/revision/{REVISION}").respond(
        200, json=model_info(MODEL, REVISION, gated="auto")
    )
    hub.get(f"/api/models/{MODEL}/auth-check").respond(200)
    hub.get(f"/api/models/{DRAFT}").respond(200, json=model_info(DRAFT, DRAFT_SHA))
    report = run_preflight(ServeConfig(), container_has_token=False)
    assert [c.status for c in report.checks] == ["no_container_token", "ok"]
    assert "hf_secret_name" in report.checks[0].detail


def test_no_network_is_a_warning_not_a_crash(hub: respx.MockRouter) -> None:
    """When the Hub cannot be reached every repo is 'unreachable': warned about, not failed."""
    hub.get(path__startswith="/api/models/").mock(side_effect=httpx.ConnectError("no route"))
    report = run_preflight(ServeConfig())
    assert [c.status for c in report.checks] == ["unreachable", "unreachable"]
    assert report.failures == ()
    assert len(report.warnings) == 2
    assert "could not reach the Hub (ConnectError)" in report.summary()
    report.raise_for_failures()  # a warning never stops a deploy


def test_a_hub_outage_is_a_warning(hub: respx.MockRouter) -> None:
    """A 503 from the Hub means the check could not tell: a warning."""
    hub.get(path__startswith="/api/models/").respond(503, text="Service Unavailable")
    report = run_preflight(ServeConfig())
    assert [c.status for c in report.checks] == ["unreachable", "unreachable"]
    assert "HTTP 503" in report.checks[0].detail


def test_offline_mode_makes_no_request(
    hub: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HF_HUB_OFFLINE set nothing is requested and every repo is a warning."""
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    report = run_preflight(ServeConfig())
    assert hub.calls.call_count == 0
    assert {c.status for c in report.checks} == {"unreachable"}


def test_a_branch_revision_is_found_but_flagged_unpinned(hub: respx.MockRouter) -> None:
    """A branch name works, and the report says it is not pinned and where it points now."""
    hub.get(f"/api/models/{MODEL}/revision/main").respond(200, json=model_info(MODEL, REVISION))
    report = run_preflight(ServeConfig(revision="main", speculative=False, profile="throughput"))
    (check,) = report.checks
    assert check.ok
    assert "not pinned" in check.detail
    assert REVISION[:12] in check.detail


class WouldHang(BaseException):
    """A stalled Hub met a request with no read timeout: for real, it would wait forever.

    A BaseException, so the preflight's catch-all for network errors cannot swallow it.
    """


def stalled(request: httpx.Request) -> httpx.Response:
    """A Hub that accepted the connection and never answers: a read timeout, if there is one."""
    timeout = request.extensions.get("timeout", {})
    if timeout.get("read") is None:
        raise WouldHang(f"{request.url} has no read timeout")
    raise httpx.ReadTimeout("the Hub never answered", request=request)


@pytest.mark.parametrize("route", ["model_info", "auth_check"])
def test_a_stalled_hub_is_a_warning_not_a_hang(
    hub: respx.MockRouter, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    """A Hub that never answers (the repo's info, or a gated repo's auth check) times out as
    'unreachable', a warning, because every request carries the preflight's timeout."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    info = hub.get(f"/api/models/{MODEL}/revision/{REVISION}")
    check = hub.get(f"/api/models/{MODEL}/auth-check")
    if route == "model_info":
        info.mock(side_effect=stalled)
    else:
        info.respond(200, json=model_info(MODEL, REVISION, gated="manual"))
        check.mock(side_effect=stalled)
    report = run_preflight(
        ServeConfig(), repos=[HubRepo("model", MODEL, REVISION)], container_has_token=True
    )
    (result,) = report.checks
    assert result.status == "unreachable"
    assert "could not reach the Hub (ReadTimeout)" in result.detail
    assert report.failures == ()
    assert (info if route == "model_info" else check).call_count == 1
