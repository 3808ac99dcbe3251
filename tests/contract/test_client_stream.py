"""stream_chat over real sockets: replayed vLLM-shaped streams, trickles, cuts, errors, requests.

Every server here is a real aiohttp.web server on 127.0.0.1:0 (``ReplayServer``); nothing in
aiohttp is mocked.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from gptoss_modal import (
    AuthenticationError,
    ChatResult,
    ConfigError,
    ConnectError,
    ConnectTimeout,
    HTTPStatusError,
    IncompleteStreamError,
    StallTimeout,
    StreamError,
    UpstreamError,
)
from gptoss_modal.stream.client import ChatStream, Client, stream_chat
from tests.strategies_stream import (
    DROP,
    VLLM_CONTENT,
    VLLM_ERROR,
    VLLM_FINISH_WITH_TEXT,
    VLLM_REASONING,
    VLLM_ROLE,
    VLLM_TOOL_ARGS,
    VLLM_TOOL_START,
    VLLM_USAGE,
    ReplayServer,
    Reply,
    free_port,
    vllm_stream,
)

STREAM = vllm_stream(VLLM_ROLE, VLLM_REASONING, VLLM_CONTENT, VLLM_FINISH_WITH_TEXT, VLLM_USAGE)
BODY = b"".join(w for w in STREAM if isinstance(w, bytes))


def check_full_result(result: ChatResult) -> None:
    """What every complete replay of STREAM must give."""
    assert result.done
    assert (result.reasoning, result.content) == ("Let me think", "Hello world.")
    assert result.finish_reason == "stop"
    assert result.completion_tokens == 8
    assert len(result.chunks) == 5


async def test_stream_yields_typed_chunks_and_accumulates_the_message() -> None:
    """Iterating a stream yields each chunk (usage included) and the result holds the message."""
    async with ReplayServer(Reply(STREAM)) as server, stream_chat(server.url, "hi") as stream:
        chunks = [chunk async for chunk in stream]
    assert [c.content for c in chunks] == ["", None, "Hello", " world.", None]
    assert chunks == stream.result.chunks
    check_full_result(stream.result)


async def test_collect_gives_the_same_result_as_iterating() -> None:
    """Client.chat (collect, no per-chunk yield) gives the same chunks' content and message."""
    async with ReplayServer(Reply(STREAM)) as server, Client(server.url) as client:
        result = await client.chat("hi")
    check_full_result(result)


async def test_arrival_stamps_are_per_read_and_ordered() -> None:
    """Stamps never go backwards, come after the request started, and a pause in the stream
    shows up between the chunks before and after it."""
    writes = [*STREAM[:2], 0.2, *STREAM[2:]]
    async with ReplayServer(Reply(writes)) as server, Client(server.url) as client:
        result = await client.chat("hi")
    stamps = [c.arrival for c in result.chunks]
    assert stamps == sorted(stamps)
    assert result.response_at is not None
    assert result.started <= result.response_at <= stamps[0]
    assert stamps[2] > stamps[1]  # the pause separated two reads
    check_full_result(result)


async def test_slow_trickle_one_byte_per_write_gives_the_same_result() -> None:
    """A server writing one byte at a time (with pauses) yields exactly the same stream."""
    writes: list[bytes | float | str] = []
    for i in range(len(BODY)):
        writes.append(BODY[i : i + 1])
        if i % 97 == 0:
            writes.append(0.001)
    async with ReplayServer(Reply(writes)) as server, Client(server.url) as client:
        result = await client.chat("hi")
    check_full_result(result)


async def test_CR_line_ends_comments_and_split_events_from_a_proxy_are_understood() -> None:
    """CRLF and CR framing, keep-alive comments and a data field cut between writes still
    give every chunk (line-loop clients get these wrong)."""
    framed = BODY.replace(b"\n\n", b"\r\n\r\n", 2).replace(b"\n\n", b"\r\r", 1)
    writes: list[bytes | float | str] = [
        b": keep-alive\r\n\r\n",
        framed[:7],
        framed[7:40],
        framed[40:],
    ]
    async with ReplayServer(Reply(writes)) as server, Client(server.url) as client:
        result = await client.chat("hi")
    check_full_result(result)


async def test_multi_line_data_event_is_joined_before_parsing() -> None:
    """A chunk whose JSON is split over two data: lines parses as one chunk."""
    split = VLLM_CONTENT.replace(',"model"', '\ndata: ,"model"', 1)
    writes: list[bytes | float | str] = [f"data: {split}\n\n".encode(), b"data: [DONE]\n\n"]
    async with ReplayServer(Reply(writes)) as server, Client(server.url) as client:
        result = await client.chat("hi")
    assert result.content == "Hello"


async def test_connection_dropped_mid_stream_raises_incomplete_with_the_partial_message() -> None:
    """A cut connection raises IncompleteStreamError carrying the text received so far."""
    writes = [*vllm_stream(VLLM_ROLE, VLLM_REASONING, VLLM_CONTENT, done=False), DROP]
    async with ReplayServer(Reply(writes)) as server, Client(server.url) as client:
        with pytest.raises(IncompleteStreamError, match=r"broke after 3 chunks") as caught:
            await client.chat("hi")
    partial = caught.value.partial
    assert isinstance(partial, ChatResult)
    assert (partial.reasoning, partial.content, partial.done) == ("Let me think", "Hello", False)
    assert caught.value.__cause__ is not None  # the aiohttp error stays attached


async def test_drop_in_the_middle_of_an_event_keeps_the_complete_chunks() -> None:
    """Bytes of an unfinished event are dropped; the complete chunks before it are kept."""
    half = f"data: {VLLM_CONTENT}".encode()[:40]
    writes = [*vllm_stream(VLLM_ROLE, VLLM_REASONING, done=False), half, DROP]
    async with ReplayServer(Reply(writes)) as server, Client(server.url) as client:
        with pytest.raises(IncompleteStreamError) as caught:
            await client.chat("hi")
    assert isinstance(caught.value.partial, ChatResult)
    assert len(caught.value.partial.chunks) == 2


async def test_clean_end_without_DONE_raises_incomplete_and_shows_the_discarded_tail() -> None:
    """A body that ends properly but before [DONE] is incomplete; a cut event is quoted."""
    writes = [*vllm_stream(VLLM_ROLE, VLLM_CONTENT, done=False), b'data: {"id"']
    async with ReplayServer(Reply(writes)) as server, Client(server.url) as client:
        with pytest.raises(IncompleteStreamError, match=r"without data: \[DONE\].*\{\"id\"") as e:
            await client.chat("hi")
    assert isinstance(e.value.partial, ChatResult)
    assert e.value.partial.content == "Hello"


async def test_in_stream_error_raises_UpstreamError_with_vllm_fields_and_partial() -> None:
    """vLLM 0.13.0's error event (then [DONE]) raises UpstreamError with its message, type
    and code, and the text received before it."""
    writes = vllm_stream(VLLM_ROLE, VLLM_REASONING, VLLM_CONTENT, VLLM_ERROR)
    async with ReplayServer(Reply(writes)) as server, Client(server.url) as client:
        with pytest.raises(UpstreamError) as caught:
            await client.chat("hi")
    error = caught.value
    assert (error.message, error.type, error.code) == (
        "the engine died",
        "InternalServerError",
        500,
    )
    assert isinstance(error.partial, ChatResult)
    assert error.partial.content == "Hello"


async def test_iteration_yields_every_chunk_before_an_error_then_raises() -> None:
    """Chunks that arrived in the same read as an error event are still yielded, in order,
    before the error is raised."""
    body = b"".join(
        w for w in vllm_stream(VLLM_ROLE, VLLM_CONTENT, VLLM_ERROR) if isinstance(w, bytes)
    )
    seen: list[str | None] = []

    async def read(stream: ChatStream) -> None:
        async for chunk in stream:
            seen.append(chunk.content)  # noqa: PERF401 - a comprehension would lose them at the error

    async with ReplayServer(Reply([body])) as server, stream_chat(server.url, "hi") as stream:
        with pytest.raises(UpstreamError):
            await read(stream)
    assert seen == ["", "Hello"]


async def test_401_raises_AuthenticationError_saying_whether_a_key_was_sent() -> None:
    """vLLM's 401 ``{"error":"Unauthorized"}`` is an AuthenticationError with a hint, and the
    key itself never appears in the message."""
    reply = Reply(status=401, body=b'{"error":"Unauthorized"}')
    async with ReplayServer(reply) as server:
        async with Client(server.url, api_key="sk-secret-123") as client:
            with pytest.raises(AuthenticationError, match="key sent was rejected") as with_key:
                await client.chat("hi")
        async with Client(server.url) as client:
            with pytest.raises(AuthenticationError, match="no API key and no Modal-Key"):
                await client.chat("hi")
    error = with_key.value
    assert (error.status, error.body, error.error) == (401, '{"error":"Unauthorized"}', None)
    assert "sk-secret-123" not in str(error)
    assert "sk-secret-123" not in repr(Client("http://h", api_key="sk-secret-123"))


async def test_400_raises_HTTPStatusError_with_vllms_error_object() -> None:
    """A rejected request (400) carries vLLM's error object and shows its message."""
    body = (
        b'{"error":{"message":"reasoning_effort must be low, medium or high",'
        b'"type":"BadRequestError","param":null,"code":400}}'
    )
    async with ReplayServer(Reply(status=400, body=body)) as server, Client(server.url) as client:
        with pytest.raises(HTTPStatusError, match="must be low, medium or high") as caught:
            await client.chat("hi")
    assert caught.value.status == 400
    assert caught.value.error is not None
    assert caught.value.error["type"] == "BadRequestError"
    assert not isinstance(caught.value, AuthenticationError)


async def test_unknown_model_404_names_the_model() -> None:
    """vLLM's 404 for an unknown model is an HTTPStatusError quoting its message."""
    body = (
        b'{"error":{"message":"The model `gpt-5` does not exist.","type":"NotFoundError",'
        b'"param":null,"code":404}}'
    )
    async with ReplayServer(Reply(status=404, body=body)) as server, Client(server.url) as client:
        with pytest.raises(HTTPStatusError, match="gpt-5") as caught:
            await client.chat("hi", model="gpt-5")
    assert caught.value.status == 404


async def test_200_that_is_not_an_event_stream_is_a_stream_error() -> None:
    """A 200 JSON reply (a server that ignored stream: true) is a StreamError, not a hang."""
    reply = Reply([b'{"choices": []}'], content_type="application/json")
    async with ReplayServer(reply) as server, Client(server.url) as client:
        with pytest.raises(StreamError, match="instead of text/event-stream"):
            await client.chat("hi")


async def test_stall_with_no_bytes_raises_StallTimeout_with_the_partial() -> None:
    """No bytes for longer than the stall timeout fails the stream, keeping what came."""
    writes = [*vllm_stream(VLLM_ROLE, VLLM_CONTENT, done=False), 30.0]
    async with (
        ReplayServer(Reply(writes)) as server,
        Client(server.url, stall_timeout_s=0.2) as client,
    ):
        with pytest.raises(StallTimeout, match="after 2 chunks") as caught:
            await client.chat("hi")
    assert isinstance(caught.value.partial, ChatResult)
    assert caught.value.partial.content == "Hello"


async def test_refused_connection_raises_ConnectError_at_once() -> None:
    """Nothing listening: ConnectError saying the connection was refused (without retries)."""
    url = f"http://127.0.0.1:{free_port()}"
    async with Client(url, max_retries=0) as client:
        with pytest.raises(ConnectError, match="Connection refused") as caught:
            await client.chat("hi")
    assert caught.value.url == f"{url}/v1/chat/completions"
    assert caught.value.__cause__ is not None


@pytest.fixture
def unaccepting_port() -> Iterator[int]:
    """A port whose accept queue is full, so a new connection attempt hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for s in [*fillers, server]:
        s.close()


async def test_connect_that_hangs_raises_ConnectTimeout(unaccepting_port: int) -> None:
    """A connection attempt that gets no answer is a ConnectTimeout (also a TimeoutError)."""
    url = f"http://127.0.0.1:{unaccepting_port}"
    async with Client(url, connect_timeout_s=0.2, max_retries=0) as client:
        with pytest.raises(ConnectTimeout, match=r"took longer than 0\.2 s") as caught:
            await client.chat("hi")
    assert isinstance(caught.value, TimeoutError)


async def test_request_body_and_headers_are_what_vllm_expects() -> None:
    """The request streams with usage, carries effort, tools, limits, extra fields and the key."""
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    async with (
        ReplayServer(Reply(STREAM)) as server,
        Client(server.url + "/v1/", api_key="k", model="gpt-oss-20b") as client,
    ):
        await client.chat(
            "hi",
            system="be brief",
            reasoning_effort="low",
            tools=[tool],
            max_tokens=64,
            continuous_usage=True,
            extra={"ignore_eos": True, "seed": 7},
        )
    headers, body = server.requests[0]
    assert headers["Authorization"] == "Bearer k"
    assert body == {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True, "continuous_usage_stats": True},
        "model": "gpt-oss-20b",
        "reasoning_effort": "low",
        "tools": [tool],
        "max_tokens": 64,
        "ignore_eos": True,
        "seed": 7,
    }


async def test_tool_call_stream_assembles_the_call() -> None:
    """A replayed tool-call stream ends with the complete call and finish reason tool_calls."""
    finish = VLLM_CONTENT.replace('"content":"Hello",', "").replace(
        '"finish_reason":null', '"finish_reason":"tool_calls","stop_reason":null'
    )
    writes = vllm_stream(VLLM_ROLE, VLLM_TOOL_START, VLLM_TOOL_ARGS, finish, VLLM_USAGE)
    async with ReplayServer(Reply(writes)) as server, Client(server.url) as client:
        result = await client.chat("weather?")
    (call,) = result.message.tool_calls
    assert (call.name, call.parsed_arguments()) == ("get_weather", {"city": "Paris"})
    assert result.finish_reason == "tool_calls"


async def test_one_off_stream_read_to_the_end_closes_its_own_connection_pool() -> None:
    """stream_chat() without ``async with``, iterated to [DONE], leaves no session open."""
    async with ReplayServer(Reply(STREAM)) as server:
        stream = stream_chat(server.url, "hi")
        chunks = [chunk async for chunk in stream]
    assert len(chunks) == 5
    assert stream._client._session is None  # nothing public shows the pool


async def test_client_keeps_the_connection_between_requests() -> None:
    """Three requests in a row on one client succeed and all come over one TCP connection."""
    async with ReplayServer(Reply(STREAM)) as server, Client(server.url) as client:
        for _ in range(3):
            check_full_result(await client.chat("hi"))
    assert len(server.peers) == 3
    assert len(set(server.peers)) == 1


async def test_separate_clients_come_over_separate_connections() -> None:
    """Partner of the reuse test: two clients give two client ports, so the count can tell."""
    async with ReplayServer(Reply(STREAM)) as server:
        for _ in range(2):
            async with Client(server.url) as client:
                check_full_result(await client.chat("hi"))
    assert len(set(server.peers)) == 2


async def test_leaving_a_stream_early_releases_it() -> None:
    """Breaking out of the iteration and closing the stream leaves the client usable."""
    writes = [*STREAM[:1], 30.0, *STREAM[1:]]
    async with ReplayServer(Reply(writes), Reply(STREAM)) as server, Client(server.url) as client:
        async with client.stream_chat("hi") as stream:
            async for _ in stream:
                break
        assert not stream.result.done
        check_full_result(await client.chat("again"))


def test_bad_base_url_is_a_config_error() -> None:
    """A URL that is not http(s) is a ConfigError naming base_url."""
    with pytest.raises(ConfigError, match="base_url"):
        Client("localhost:8000")


def test_trailing_v1_and_slash_are_removed_from_the_base_url() -> None:
    """OpenAI-style base URLs ending in /v1 point at the same server root."""
    assert Client("http://h:1/v1/").base_url == "http://h:1"
