"""Before deploying: does the Hugging Face Hub have what vLLM will download, and can we read it?

A typo in a model name or a revision only shows inside the container, after the image is
pulled and vLLM has started: minutes into a cold start. This check runs on the deploying machine
in seconds. For the model (at its pinned revision) and the EAGLE3 speculator it asks the Hub,
through ``huggingface_hub``, whether the repo exists, the revision exists, and the token (when
one is set: ``HF_TOKEN`` or ``hf auth login``) can read it.

It never raises for what it finds: each repo gets a :class:`RepoCheck` with a status and a
sentence. ``not_found``, ``wrong_revision``, ``gated``, ``bad_token`` and ``no_container_token``
are *failures* (the container would fail the same way); an unreachable Hub (no network,
``HF_HUB_OFFLINE``, a 5xx) is a *warning*: the check could not tell. The app turns failures
into a :class:`~gptoss_modal._exceptions.PreflightError` (``preflight = "strict"``) or prints
them (``"warn"``). The token itself is never printed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from huggingface_hub import HfApi, constants, get_session, get_token, hf_raise_for_status
from huggingface_hub.errors import (
    DisabledRepoError,
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from gptoss_modal._exceptions import PreflightError
from gptoss_modal.deploy.image import HubRepo, hub_repos
from gptoss_modal.serve.config import ServeConfig

__all__ = ["FAILURES", "PreflightReport", "RepoCheck", "check_repo", "run_preflight"]

HUB_TIMEOUT_S = 10.0  # per request (every request has one): a stalled Hub must not hang a deploy

Status = Literal[
    "ok",
    "not_found",
    "wrong_revision",
    "gated",
    "bad_token",
    "no_container_token",
    "unreachable",
]
FAILURES: frozenset[Status] = frozenset(
    {"not_found", "wrong_revision", "gated", "bad_token", "no_container_token"}
)
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class RepoCheck:
    """What the Hub said about one repo."""

    repo: HubRepo
    status: Status
    detail: str
    sha: str | None = None  # the commit the revision resolved to, when found

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def failed(self) -> bool:
        """The container would fail to download this repo."""
        return self.status in FAILURES

    def line(self) -> str:
        """One line for the report: mark, role, repo@revision, what was found."""
        mark = {"ok": "ok  ", "unreachable": "??  "}.get(self.status, "FAIL")
        where = f"{self.repo.repo_id}@{self.repo.revision or 'default branch'}"
        return f"  [{mark}] {self.repo.role:<10} {where}: {self.detail}"


@dataclass(frozen=True)
class PreflightReport:
    """Every repo's check, and whether a token was used."""

    checks: tuple[RepoCheck, ...]
    token_used: bool

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failures(self) -> tuple[RepoCheck, ...]:
        return tuple(check for check in self.checks if check.failed)

    @property
    def warnings(self) -> tuple[RepoCheck, ...]:
        return tuple(check for check in self.checks if check.status == "unreachable")

    def summary(self) -> str:
        """The report as text (no token in it, only whether one was used)."""
        who = "with your Hugging Face token" if self.token_used else "anonymously (no HF token)"
        if self.failures:
            verdict = "the container would fail to start"
        elif self.warnings:
            verdict = "could not check everything; deploying anyway"
        else:
            verdict = "all found"
        lines = [f"Hub preflight, {who}: {verdict}"]
        lines += [check.line() for check in self.checks]
        return "\n".join(lines)

    def raise_for_failures(self) -> None:
        """Raise :class:`PreflightError` with the summary if any check failed."""
        if self.failures:
            raise PreflightError(
                f"{self.summary()}\nFix the config (or set GPTOSS_PREFLIGHT=warn to deploy anyway)."
            )


def check_repo(
    api: HfApi,
    repo: HubRepo,
    *,
    token: str | None,
    container_has_token: bool = True,
    timeout_s: float = HUB_TIMEOUT_S,
) -> RepoCheck:
    """Ask the Hub about one repo; every outcome is a :class:`RepoCheck`, never an exception.

    ``token`` is the deploying machine's token (``None``: anonymous). ``container_has_token``
    says whether the container gets one too: a gated or private repo readable here but not
    there is still a failure.
    """
    try:
        info = api.model_info(
            repo.repo_id, revision=repo.revision, token=token or False, timeout=timeout_s
        )
        gated = bool(info.gated)
        if gated:
            _auth_check(api, repo.repo_id, token=token or False, timeout_s=timeout_s)
    except (HfHubHTTPError, OfflineModeIsEnabled) as exc:
        return _refused(repo, exc, token=token)
    # The Hub client raises many unrelated types when the network is down (requests, httpx,
    # OSError, timeouts); every one means the same thing here, so one blind catch, not a list.
    except Exception as exc:  # noqa: BLE001  (no network, DNS, TLS, timeouts: it could not tell)
        return RepoCheck(
            repo, "unreachable", f"could not reach the Hub ({type(exc).__name__}); not checked"
        )
    if (gated or info.private) and not container_has_token:
        kind = "gated" if gated else "private"
        return RepoCheck(
            repo,
            "no_container_token",
            f"readable here, but {kind}: the container needs a token too (put HF_TOKEN in a "
            "Modal Secret and set hf_secret_name)",
            info.sha,
        )
    return RepoCheck(repo, "ok", _found(repo, info.sha), info.sha)


def _refused(repo: HubRepo, exc: Exception, *, token: str | None) -> RepoCheck:
    """What a refusal from the Hub (or offline mode) says about the repo."""
    if isinstance(exc, GatedRepoError):  # before RepositoryNotFoundError: it is a subclass
        how = (
            "your token has not been granted access: accept the terms on "
            f"https://huggingface.co/{repo.repo_id}"
            if token
            else "it is gated: log in (hf auth login or HF_TOKEN) with an account that accepted "
            f"its terms on https://huggingface.co/{repo.repo_id}"
        )
        return RepoCheck(repo, "gated", how)
    if isinstance(exc, RevisionNotFoundError):
        return RepoCheck(
            repo,
            "wrong_revision",
            f"the repo exists but has no revision {repo.revision!r} (a typo, or a rewritten "
            "history: pin a commit from its history)",
        )
    if isinstance(exc, DisabledRepoError):
        return RepoCheck(repo, "not_found", "the repo has been disabled on the Hub")
    if isinstance(exc, RepositoryNotFoundError):
        private = "" if token else " (or it is private: log in with a token that can read it)"
        return RepoCheck(repo, "not_found", f"no such repo on the Hub{private}; check the name")
    if isinstance(exc, OfflineModeIsEnabled):
        return RepoCheck(repo, "unreachable", "HF_HUB_OFFLINE is set; not checked")
    response = getattr(exc, "response", None)
    status = response.status_code if response is not None else None
    if status == 401:
        return RepoCheck(
            repo, "bad_token", "the Hub rejected your token (HF_TOKEN or hf auth login)"
        )
    return RepoCheck(repo, "unreachable", f"the Hub answered HTTP {status}; not checked")


def _found(repo: HubRepo, sha: str | None) -> str:
    """How a readable repo's revision was found: pinned, default branch, or a moving ref."""
    if repo.revision is None:
        return f"found (default branch at {_short(sha)})"
    if _FULL_SHA.match(repo.revision):
        return "found at the pinned commit"
    return f"found; {repo.revision!r} is a branch or tag, now at {_short(sha)} (not pinned)"


def run_preflight(
    config: ServeConfig,
    *,
    token: str | None = None,
    container_has_token: bool = False,
    endpoint: str | None = None,
    timeout_s: float = HUB_TIMEOUT_S,
    repos: Iterable[HubRepo] | None = None,
) -> PreflightReport:
    """Check every repo ``config`` will download (see :func:`deploy.hub_repos`).

    ``token`` defaults to the one ``huggingface_hub`` finds (``HF_TOKEN``, then the login
    cache). With ``HF_HUB_OFFLINE`` set nothing is requested: every repo is a warning.
    """
    token = token if token is not None else get_token()
    wanted = tuple(repos) if repos is not None else hub_repos(config)
    if constants.is_offline_mode():
        checks = tuple(
            RepoCheck(repo, "unreachable", "HF_HUB_OFFLINE is set; not checked") for repo in wanted
        )
        return PreflightReport(checks, token_used=bool(token))
    api = HfApi(endpoint=endpoint)
    checks = tuple(
        check_repo(
            api, repo, token=token, container_has_token=container_has_token, timeout_s=timeout_s
        )
        for repo in wanted
    )
    return PreflightReport(checks, token_used=bool(token))


def _auth_check(api: HfApi, repo_id: str, *, token: str | bool, timeout_s: float) -> None:
    """``HfApi.auth_check`` with a timeout: that method takes none and the Hub client's session
    has none, so a stalled connection would hang the deploy. Raises as ``auth_check`` does."""
    headers = api._build_hf_headers(token=token)  # what auth_check sends
    response = get_session().get(
        f"{api.endpoint}/api/models/{repo_id}/auth-check", headers=headers, timeout=timeout_s
    )
    hf_raise_for_status(response)


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "an unknown commit"
