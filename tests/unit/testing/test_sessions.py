"""The mock counts the Modal-Session-ID each request carries, so session routing is testable."""

from __future__ import annotations

import aiohttp
import pytest

from gptoss_modal.testing import _state
from gptoss_modal.testing.mock_server import MockConfig, MockVLLM


async def test_distinct_session_ids_are_counted_per_request() -> None:
    """Requests with ids u1, u1, u2 and one without: two sessions, u1 with two requests."""
    body = {"model": "llm", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    async with MockVLLM(MockConfig()) as server, aiohttp.ClientSession() as session:
        for sid in ("u1", "u1", "u2", None):
            headers = {"Modal-Session-ID": sid} if sid else {}
            url = server.url + "/v1/chat/completions"
            async with session.post(url, json=body, headers=headers) as response:
                assert response.status == 200
        assert server.distinct_sessions == 2
        assert server.session_requests == {"u1": 2, "u2": 1}


def test_the_session_table_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past SESSIONS_KEPT ids, requests with new ids are counted as overflow, not stored."""
    state = _state.MockState(MockConfig())
    monkeypatch.setattr(_state, "SESSIONS_KEPT", 2)
    for sid in ("a", "b", "c", "a", "d"):
        state.note_session(sid)
    assert state.sessions == {"a": 2, "b": 1}
    assert state.sessions_overflow == 2
