"""The mock checks API keys as vLLM does: SHA-256 digests compared in constant time."""

from __future__ import annotations

import pytest

from gptoss_modal.testing import _server


def test_keys_are_compared_as_digests_against_every_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each configured key is compared (no early exit on a match) through compare_digest, on
    32-byte digests rather than the keys themselves."""
    seen: list[tuple[bytes, bytes]] = []

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return a == b

    monkeypatch.setattr("gptoss_modal.testing._server.secrets.compare_digest", spy)
    assert _server.key_matches("sk-b", ("sk-a", "sk-b", "sk-c"))
    assert len(seen) == 3
    assert all(len(a) == len(b) == 32 for a, b in seen)
    assert not any(b"sk-" in a + b for a, b in seen)


@pytest.mark.parametrize(
    ("token", "keys", "matches"),
    [("sk-a", ("sk-a",), True), ("sk-a ", ("sk-a",), False), ("", ("sk-a",), False),
     ("sk-b", ("sk-a", "sk-b"), True), ("sk-a", (), False)],
)  # fmt: skip
def test_only_an_exact_key_matches(token: str, keys: tuple[str, ...], matches: bool) -> None:
    """The partner: a real comparison, so only the exact key (of several) is accepted."""
    assert _server.key_matches(token, keys) is matches
