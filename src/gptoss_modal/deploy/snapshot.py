"""The GPU-snapshot start of vLLM, as plain async functions over our HTTP client.

Modal's GPU memory snapshots (alpha) freeze a container after its ``@modal.enter(snap=True)``
hooks and restore later containers from that image, then run the ``@modal.enter(snap=False)``
hooks. The Modal app calls, in that order:

1. :func:`before_snapshot`: vLLM was started with sleep mode and the dev endpoints
   (:mod:`gptoss_modal.serve.sleep`); wait for ``/health``, send one short warm-up chat (the
   first request compiles and captures what the start did not), commit the vLLM cache Volume,
   and ``POST /sleep`` (level 1: weights to CPU, KV cache dropped), then check ``/is_sleeping``.
   No live engine is snapshotted: public code saw garbled output after restoring one that had
   not slept.
2. :func:`after_restore`: reload the cache Volumes, ``POST /wake_up``, wait until
   ``/is_sleeping`` says false and ``/health`` answers 200, then run the output canary: a short
   deterministic chat whose answer must be non-empty, finished, and free of replacement
   characters.

Every failure is a :class:`~gptoss_modal._exceptions.SnapshotError` naming the step; a vLLM that
exits at any point (:class:`Engine` reports it) fails the step at once instead of at a timeout.
After a restore, :func:`restore_or_exit` says so loudly and exits with Modal's sentinel code
(:data:`RESTORE_FAILED_EXIT_CODE`), on which Modal's runtime retries the container without the
snapshot.

The dev endpoints answer only with the container's token header (see
:mod:`gptoss_modal.deploy.dev_guard`); ``dev_headers`` carries it. No modal import here.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, NoReturn, Protocol, TypeVar

import msgspec

from gptoss_modal._exceptions import GptossModalError, SnapshotError

if TYPE_CHECKING:
    from gptoss_modal.stream.accumulator import ChatResult
    from gptoss_modal.stream.client import Client

__all__ = [
    "RESTORE_FAILED_EXIT_CODE",
    "Engine",
    "SnapshotTimeouts",
    "after_restore",
    "before_snapshot",
    "check_canary",
    "restore_or_exit",
]

# Modal's runtime retries a container that exits with this code without its snapshot
# (modal/_runtime/gpu_memory_snapshot.py, SNAPSHOT_RESTORE_FAILED_EXIT_CODE, Modal SDK 1.6.4).
RESTORE_FAILED_EXIT_CODE = 222
WARMUP_PROMPT = "Say hello."
CANARY_PROMPT = "What is 2 + 2? Answer with one number."
# Enough for gpt-oss's low-effort reasoning and a one-word answer; temperature 0: deterministic.
CANARY_MAX_TOKENS = 512
CANARY_OPTIONS: Mapping[str, object] = {"temperature": 0, "seed": 0}
REPLACEMENT_CHAR = "\ufffd"  # what bytes that are not text decode to: the sign of a garbled answer
ENGINE_POLL_S = 0.5  # how often a wait checks that vLLM is still running


class Engine(Protocol):
    """The vLLM process, as far as the lifecycle needs it (``RunningServer`` fits)."""

    def returncode(self) -> int | None:
        """Its exit code once it has exited, else ``None``."""

    def log_tail(self) -> list[str]:
        """Its last log lines (redacted)."""


@dataclass(frozen=True)
class SnapshotTimeouts:
    """How long each wait may take, in seconds."""

    health_s: float = 30 * 60.0  # a first start compiles FlashInfer's kernels for 10-15 minutes
    request_s: float = 5 * 60.0  # the warm-up and the canary (the first request compiles)
    control_s: float = 2 * 60.0  # one /sleep or /wake_up (moving weights to and from CPU)
    wake_s: float = 5 * 60.0  # from /wake_up until /is_sleeping is false and /health is 200
    poll_s: float = 0.5  # between /is_sleeping checks


_T = TypeVar("_T")


async def _while_running(engine: Engine, step: str, work: Awaitable[_T]) -> _T:
    """Await ``work``, failing the step as soon as vLLM exits."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=ENGINE_POLL_S)
            if done:
                return task.result()
            _check_alive(engine, step)
    finally:
        task.cancel()


def _check_alive(engine: Engine, step: str) -> None:
    code = engine.returncode()
    if code is not None:
        tail = "\n".join(f"  | {line}" for line in engine.log_tail())
        raise SnapshotError(step, f"vLLM exited with code {code}; last lines:\n{tail}")


async def _control(
    client: Client,
    step: str,
    method: str,
    path: str,
    headers: Mapping[str, str],
    timeouts: SnapshotTimeouts,
    params: Mapping[str, str] | None = None,
) -> bytes:
    """One dev-endpoint call that must answer 200; its body."""
    try:
        status, body = await client.call(
            method, path, params=params, headers=headers, timeout_s=timeouts.control_s
        )
    except GptossModalError as exc:
        raise SnapshotError(step, f"{method} {path} failed: {exc}") from exc
    if status != 200:
        text = body[:300].decode("utf-8", "replace")
        raise SnapshotError(step, f"{method} {path} answered {status}: {text}")
    return body


async def is_sleeping(
    client: Client, headers: Mapping[str, str], timeouts: SnapshotTimeouts
) -> bool:
    """``GET /is_sleeping``: ``{"is_sleeping": bool}`` in both versions."""
    body = await _control(client, "is-sleeping", "GET", "/is_sleeping", headers, timeouts)
    try:
        answer = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise SnapshotError("is-sleeping", f"not JSON: {body[:100]!r}") from exc
    value = answer.get("is_sleeping") if isinstance(answer, dict) else None
    if not isinstance(value, bool):
        raise SnapshotError("is-sleeping", f"no boolean 'is_sleeping' in {body[:100]!r}")
    return value


async def _healthy(client: Client, engine: Engine, step: str, timeout_s: float) -> None:
    try:
        await _while_running(engine, step, client.wait_healthy(timeout_s=timeout_s))
    except GptossModalError as exc:
        if isinstance(exc, SnapshotError):
            raise
        raise SnapshotError(step, f"/health: {exc}") from exc


async def _chat(
    client: Client, engine: Engine, step: str, prompt: str, timeouts: SnapshotTimeouts
) -> ChatResult:
    try:
        work = client.chat(
            prompt,
            reasoning_effort="low",
            max_tokens=CANARY_MAX_TOKENS,
            extra=CANARY_OPTIONS,
        )
        return await _while_running(engine, step, asyncio.wait_for(work, timeouts.request_s))
    except (GptossModalError, TimeoutError) as exc:
        if isinstance(exc, SnapshotError):
            raise
        raise SnapshotError(step, f"the request failed: {type(exc).__name__}: {exc}") from exc


def check_canary(result: ChatResult) -> str:
    """The canary's answer, if it is well-formed: finished by a stop, non-empty, no replacement
    characters. Raises :class:`SnapshotError` (step ``canary``) saying what is wrong."""
    content = result.content
    if result.finish_reason != "stop":
        raise SnapshotError("canary", f"finish_reason {result.finish_reason!r}, not 'stop'")
    if not content.strip():
        raise SnapshotError("canary", "the answer is empty")
    if REPLACEMENT_CHAR in content or not content.strip().isprintable():
        raise SnapshotError("canary", f"the answer is garbled: {content[:80]!r}")
    return content


async def before_snapshot(
    client: Client,
    engine: Engine,
    *,
    dev_headers: Mapping[str, str],
    sleep_params: Mapping[str, str],
    commit_volumes: Callable[[], None],
    timeouts: SnapshotTimeouts | None = None,
    log: IO[str] | None = None,
) -> None:
    """Health, warm-up, commit the vLLM cache, sleep: ready for Modal to snapshot."""
    t = timeouts or SnapshotTimeouts()
    out = log if log is not None else sys.stdout
    await _healthy(client, engine, "health", t.health_s)
    result = await _chat(client, engine, "warm-up", WARMUP_PROMPT, t)
    print(f"snapshot: warm-up answered in {result.ttlt_s or 0:.1f} s", file=out, flush=True)
    commit_volumes()
    await _while_running(
        engine,
        "sleep",
        _control(client, "sleep", "POST", "/sleep", dev_headers, t, params=sleep_params),
    )
    if not await is_sleeping(client, dev_headers, t):
        raise SnapshotError("sleep", "/is_sleeping still says false after POST /sleep")
    print(f"snapshot: vLLM sleeps ({dict(sleep_params)}); ready to snapshot", file=out, flush=True)


async def after_restore(
    client: Client,
    engine: Engine,
    *,
    dev_headers: Mapping[str, str],
    reload_volumes: Callable[[], None],
    timeouts: SnapshotTimeouts | None = None,
    log: IO[str] | None = None,
) -> str:
    """Reload the Volumes, wake vLLM, wait till it is awake and healthy, run the canary; returns
    the canary's answer."""
    t = timeouts or SnapshotTimeouts()
    out = log if log is not None else sys.stdout
    reload_volumes()
    _check_alive(engine, "wake")
    await _while_running(
        engine, "wake", _control(client, "wake", "POST", "/wake_up", dev_headers, t)
    )
    await _while_running(engine, "wake", _until_awake(client, dev_headers, t))
    await _healthy(client, engine, "health", t.wake_s)
    answer = check_canary(await _chat(client, engine, "canary", CANARY_PROMPT, t))
    print(f"snapshot: restored and awake; canary answered {answer[:40]!r}", file=out, flush=True)
    return answer


async def _until_awake(client: Client, headers: Mapping[str, str], t: SnapshotTimeouts) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + t.wake_s
    while await is_sleeping(client, headers, t):
        if loop.time() >= deadline:
            raise SnapshotError("wake", f"/is_sleeping still true {t.wake_s:g} s after /wake_up")
        await asyncio.sleep(t.poll_s)


async def restore_or_exit(
    restore: Awaitable[str],
    *,
    exit: Callable[[int], NoReturn],
    log: IO[str] | None = None,
) -> str:
    """Run the after-restore steps; on a :class:`SnapshotError` print it loudly and exit with
    :data:`RESTORE_FAILED_EXIT_CODE`, so Modal starts the container again without the snapshot
    (a container serving garbled answers is worse than a slow start)."""
    err = log if log is not None else sys.stderr
    try:
        return await restore
    except SnapshotError as exc:
        bar = "!" * 78
        print(
            f"{bar}\nGPU SNAPSHOT RESTORE FAILED: {exc}\nexiting with code "
            f"{RESTORE_FAILED_EXIT_CODE}: Modal retries this container without the snapshot\n{bar}",
            file=err,
            flush=True,
        )
        exit(RESTORE_FAILED_EXIT_CODE)
