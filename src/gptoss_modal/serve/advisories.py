"""Known problems a valid, resolved config runs into on its vLLM version, worded for a person.

Not errors: the ``seed`` profile reproduces a deployment that triggers two of them. Each note
names the vLLM version it is about, so a note for 0.13.0 never fires on a 0.33.0 config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gptoss_modal.serve.config import ServeConfig

MAX_SEQS_WORTH_DRAFTING = 64  # above this batch size drafting tends to cost more than it saves


def advisories(c: ServeConfig) -> tuple[str, ...]:
    """Every note that applies to the resolved config ``c``, in a stable order."""
    notes = [
        _multi_token_text_loss(c),
        _capture_size_in_tokens(c),
        _fast_boot(c),
        _drafting_at_large_batch(c),
        _tool_names_leak(c),
        _demo_tool_server(c),
        _mcp_tool_server(c),
        _response_store(c),
    ]
    return tuple(note for note in notes if note)


def _multi_token_text_loss(c: ServeConfig) -> str | None:
    if c.vllm_version != "0.13.0":
        return None  # 0.33.0 feeds every token of a step to its harmony parser
    multi_token = [
        reason
        for reason, active in (
            (f"stream_interval={c.stream_interval}", (c.stream_interval or 1) > 1),
            ("speculative decoding", c.speculative),
        )
        if active
    ]
    if not multi_token:
        return None
    return (
        "vLLM 0.13.0 labels a multi-token streamed batch (here from "
        + " and ".join(multi_token)
        + ") with the harmony channel of its last token: text that crosses from "
        "reasoning into the answer arrives as content, and the answer's last tokens can "
        "be dropped when a batch ends on <|return|> (vllm-project/vllm#31501, "
        "vllm-project/recipes#194). Non-streamed replies are unaffected; "
        "stream_interval=1 with speculative=False avoids it at a throughput cost."
    )


def _capture_size_in_tokens(c: ServeConfig) -> str | None:
    per_step = 1 + (c.num_speculative_tokens or 0)
    decode_tokens = c.max_inputs * per_step if c.max_inputs else 0
    capture = c.max_cudagraph_capture_size
    if c.fast_boot or capture is None or capture >= decode_tokens:
        return None
    return (
        f"max_cudagraph_capture_size={capture} counts tokens, and a decode step of "
        f"{c.max_inputs} requests with {per_step - 1} draft tokens carries "
        f"{decode_tokens}: steps with more than {capture // per_step} decoding requests "
        f"run without CUDA graphs. Set max_cudagraph_capture_size={decode_tokens} "
        "(or use the latency/throughput profiles, which size it in tokens)."
    )


def _fast_boot(c: ServeConfig) -> str | None:
    if not c.fast_boot:
        return None
    return (
        "fast_boot runs vLLM eagerly (no torch.compile, no CUDA graphs): minutes faster "
        "to start, several times slower to decode. Use it while iterating, not in "
        "production."
    )


def _drafting_at_large_batch(c: ServeConfig) -> str | None:
    if not (c.speculative and (c.max_num_seqs or 0) > MAX_SEQS_WORTH_DRAFTING):
        return None
    return (
        f"speculative decoding with max_num_seqs={c.max_num_seqs}: at large batch the "
        "forward pass is compute-bound and drafting tends to cost more than it saves."
    )


def _tool_names_leak(c: ServeConfig) -> str | None:
    if not (c.tool_calling and c.vllm_version == "0.33.0"):
        return None
    return (
        "vLLM 0.33.0 can leak harmony special tokens into a streamed tool call's name "
        "(vllm-project/vllm#32587, open): compare tool names against the tools you sent."
    )


def _demo_tool_server(c: ServeConfig) -> str | None:
    if c.tool_server != "demo":
        return None
    return (
        "tool_server='demo' gives the model vLLM's demo browser and python tools (the gpt-oss "
        "package must be in the image, else vLLM disables them with a warning). The python "
        "tool runs code the model writes: in Docker by default, which a Modal container "
        "lacks, or with PYTHON_EXECUTION_BACKEND=dangerously_use_uv inside the serving "
        "container itself, next to the weights and secrets, without network isolation. "
        "Browsing needs EXA_API_KEY in the container (a Modal Secret), else vLLM turns it off. "
        "For production, serve your own tools over MCP (tool_server=['host:port'])."
    )


def _mcp_tool_server(c: ServeConfig) -> str | None:
    if not isinstance(c.tool_server, tuple):
        return None
    return (
        f"tool_server lists {len(c.tool_server)} MCP server(s): vLLM connects to "
        "http://HOST:PORT/sse for each at start-up (it fails to start when one is "
        "unreachable) and offers the model every tool they list, called with no "
        "authentication of its own: reach them only over a private network."
    )


def _response_store(c: ServeConfig) -> str | None:
    if not c.response_store:
        return None
    return (
        "response_store keeps every response (store=true is the Responses default) in the "
        "replica's memory with no eviction: it grows until the container is replaced, and "
        "vanishes with it (Modal scales containers down when idle). GET /v1/responses/{id} "
        "and previous_response_id only work on the replica that holds it: send the same "
        "Modal-Session-ID header with every request of a conversation, and prefer sending "
        "the whole input each turn (stateless) when you can."
    )
