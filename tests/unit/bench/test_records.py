"""Per-request records: failures have stable kinds."""

from __future__ import annotations

import pytest

from gptoss_modal import (
    AuthenticationError,
    BenchmarkError,
    ChunkParseError,
    ConnectError,
    ConnectTimeout,
    HTTPStatusError,
    IncompleteStreamError,
    StallTimeout,
    UpstreamError,
)
from gptoss_modal.bench.records import error_kind


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (AuthenticationError("no", status=401), "http_401"),
        (HTTPStatusError("busy", status=503), "http_503"),
        (UpstreamError("boom", code=500), "upstream_500"),
        (UpstreamError("boom"), "upstream"),
        (ConnectTimeout("slow"), "connect_timeout"),
        (StallTimeout("quiet"), "stall_timeout"),
        (ConnectError("refused"), "connect"),
        (IncompleteStreamError("cut"), "incomplete_stream"),
        (ChunkParseError("bad"), "malformed_chunk"),
        (BenchmarkError("x"), "benchmark_error"),
        (RuntimeError("bug"), "unexpected_RuntimeError"),
    ],
)
def test_each_failure_has_a_stable_kind(error: BaseException, kind: str) -> None:
    """Failures are tallied under short stable names (the errors table's keys)."""
    assert error_kind(error) == kind
