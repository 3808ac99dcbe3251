"""A mock vLLM server for gpt-oss: wire-exact streams, realistic timing, injected faults.

Use it in tests (in-process, port 0)::

    from gptoss_modal.testing.mock_server import MockConfig, MockVLLM

    async with MockVLLM(MockConfig(ttft_ms=50, itl_ms=5, stream_interval=4)) as server:
        ...  # talk to server.url (e.g. "http://127.0.0.1:40123")

from synchronous code or another thread (``run_mock_in_thread``), in another process
(``spawn_mock_process``, used by benchmarks so the mock does not share the client's CPU), or
from a terminal: ``gptoss-modal mock --port 8000 --ttft-ms 200 --itl-ms 20``.

It serves vLLM 0.33.0's wire format (the package's default) or 0.13.0's
(``MockConfig(vllm_version="0.13.0")``, ``--vllm 0.13.0``). What it serves, and how each piece
was checked against each version's own code, is in ``docs/mock-server.md``. This module is
the public face; the parts are private modules of
``gptoss_modal.testing``, pure ones first:

``_config``      ``MockConfig``, each field with its command-line option
``_faults``      the fault specs below, which request a fault hits, the bytes it sends
``_engine``      tokens, engine steps, stream-interval batching, the harmony streaming rules
``_planning``    what a request generates and when, API-neutral (``GenerationRequest``, ``Plan``)
``_validation``  the requests vLLM refuses, with its exact replies
``_harmony_v033``  0.33.0's harmony streaming (every token parsed) and non-streamed parse
``_wire``        chat-completions bytes (``_wire_v033``: 0.33.0's); ``_layout`` a plan's steps
                 as chat stream events
``_metrics``     the Prometheus text of ``/metrics``
``_writer``      the paced stream writer (coalescing, fault interruptions)
``_chat``, ``_endpoints``   the endpoint handlers; ``_state`` what they share
``_server``      ``MockVLLM``: routes, middleware, lifecycle; ``_runners`` thread and process

Faults, per server (``MockConfig.fault``) or per request (header ``X-Mock-Fault``), written
``NAME[:key=value,...]``:

``error``      an in-stream error event, then ``[DONE]`` (keys ``after``, ``code`` 500 or 400,
               ``message``); non-streamed: the same error as a JSON reply
``drop``       the connection is cut mid-stream (key ``after``)
``stall``      no bytes for ``seconds`` (default 3600) mid-stream, then the rest (key ``after``)
``malformed``  a ``data:`` line that is not JSON, then the rest (key ``after``)
``http-500``, ``http-503``, ``http-429``   that status before any byte of a stream
``dead``       the engine is dead (vLLM's ``EngineDeadError``): server-wide, ``/health`` 503 and
               every chat request 500, whatever the options; per request, that request's 500

``after`` counts the events sent before the fault (default: a seeded choice inside the
stream); ``rate`` (0..1, default 1) makes a server-wide fault hit only some requests, chosen
deterministically from the server seed and the request's number.
"""

from __future__ import annotations

import sys

from gptoss_modal.testing._config import MockConfig
from gptoss_modal.testing._faults import FAULT_HEADER, FAULTS, Fault, parse_fault
from gptoss_modal.testing._runners import (
    MockProcess,
    ThreadedMock,
    run_mock_in_thread,
    spawn_mock_process,
)
from gptoss_modal.testing._server import MockVLLM
from gptoss_modal.testing._writer import SendRecord

__all__ = [
    "FAULTS",
    "FAULT_HEADER",
    "Fault",
    "MockConfig",
    "MockProcess",
    "MockVLLM",
    "SendRecord",
    "ThreadedMock",
    "parse_fault",
    "run_mock_in_thread",
    "spawn_mock_process",
]

if __name__ == "__main__":  # python -m gptoss_modal.testing.mock_server [options]
    from gptoss_modal.cli import main

    sys.exit(main(["mock", *sys.argv[1:]]))
