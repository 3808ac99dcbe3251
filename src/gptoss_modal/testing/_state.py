"""What one mock server knows while it runs, shared by its endpoint handlers."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiohttp import web

from gptoss_modal.testing._config import MockConfig
from gptoss_modal.testing._faults import Fault, parse_fault
from gptoss_modal.testing._metrics import EngineMetrics
from gptoss_modal.testing._planning import Planner
from gptoss_modal.testing._writer import SendRecord

__all__ = ["NOTE", "SESSIONS_KEPT", "SESSION_HEADER", "MockState"]

NOTE = web.RequestKey("mock_note", str)  # what the request log line says about a request
SESSION_HEADER = "Modal-Session-ID"  # Modal routes requests with one id to one replica
SESSIONS_KEPT = 100_000  # distinct session ids counted; later new ids go to sessions_overflow


@dataclass
class MockState:
    """One server's config, counters and recent requests."""

    config: MockConfig
    server_fault: Fault | None = field(init=False)
    engine_dead: bool = field(init=False)
    metrics: EngineMetrics = field(init=False)
    planner: Planner = field(init=False)
    send_log: dict[str, SendRecord] = field(default_factory=dict)
    requests_seen: int = 0
    streams: set[asyncio.Task[object]] = field(default_factory=set)  # cancelled on stop
    created: int = field(default_factory=lambda: int(time.time()))
    sessions: dict[str, int] = field(default_factory=dict)  # requests per Modal-Session-ID
    sessions_overflow: int = 0  # requests with a new id once SESSIONS_KEPT ids were counted

    def __post_init__(self) -> None:
        fault = self.config.fault
        self.server_fault = parse_fault(fault) if fault else None
        # A dead engine is the server's state, not a per-request draw: ``dead`` with any options
        # (even ``rate=``) fails ``/health`` and every chat request.
        self.engine_dead = self.server_fault is not None and self.server_fault.name == "dead"
        self.metrics = EngineMetrics(self.config)
        self.planner = Planner(self.config)

    def note_session(self, session_id: str | None) -> None:
        """Count a request under its ``Modal-Session-ID`` (none: not counted)."""
        if not session_id:
            return
        if session_id in self.sessions or len(self.sessions) < SESSIONS_KEPT:
            self.sessions[session_id] = self.sessions.get(session_id, 0) + 1
        else:
            self.sessions_overflow += 1
