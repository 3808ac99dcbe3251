"""Oracle op for the mock's Responses contract tests: vLLM's own app serves ``/v1/responses``.

Runs only under a cached vLLM venv's interpreter (loaded by ``vllm_oracle.py``), either version.
The op ``responses_http`` builds that version's real FastAPI app from a real ``vllm serve``
argv (as ``vllm_ops_mock.py`` does for chat), puts that version's own
``OpenAIServingResponses`` behind its router, and sends it one request through Starlette's test
client. The engine is ``vllm_ops_mock``'s scripted engine: it replays the engine steps the mock
says it generated through vLLM's own ``RequestState.make_request_output``. vLLM's harmony
contexts, streaming event code, output-item parsing, usage, status rules and serialisation all
run as they do in a deployment. Not vLLM's code, because the tiktoken vocabulary cannot be
downloaded here:

* the harmony ``StreamableParser``: ``vllm_ops_mock._HarmonyParser`` (a transcription of
  openai-harmony 0.0.8's state machine over the token texts the mock declares), with its
  state reported as harmony's ``StreamState`` and the role it parses;
* the prompt: vLLM builds the harmony messages itself (its own checks run) and the rendering
  is replaced by a prompt of the length the mock declares;
* 0.13.0's ``StreamingHarmonyContext`` asks the encoding only for the assistant-action stop
  tokens (``<|return|>``, ``<|call|>``), answered here with those ids.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import vllm


def _chat_ops() -> Any:
    """The chat op's module (its app, scripted engine and parser are shared, not copied): the
    copy the oracle loaded (with its built apps), else a copy of our own."""
    if "vllm_ops_mock" in sys.modules:
        return sys.modules["vllm_ops_mock"]
    spec = importlib.util.spec_from_file_location(
        "vllm_ops_mock", Path(__file__).with_name("vllm_ops_mock.py")
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


chat_ops = _chat_ops()

V033 = not vllm.__version__.startswith("0.13.")


class _State(str):
    """The parser's state name, equal to harmony's ``StreamState`` member of that name too."""

    def __eq__(self, other: object) -> bool:
        from openai_harmony import StreamState

        if isinstance(other, StreamState):
            other = {"ExpectStart": "expect_start", "Header": "header", "Content": "content"}[
                other.value
            ]
        return str.__eq__(self, other)

    __hash__ = str.__hash__


_HarmonyParser: Any = chat_ops._HarmonyParser


class _Parser(_HarmonyParser):  # type: ignore[misc]
    """The transcribed parser with harmony's ``StreamState`` and ``current_role``, which the
    Responses contexts read (the chat path reads neither)."""

    @property
    def state(self) -> str:
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        self._state = _State(value)

    @property
    def current_role(self) -> Any:
        from openai_harmony import Role

        return Role.ASSISTANT if self._state == "content" else None


def _serving_013(args: Any, engine: Any, models: Any, prompt: list[int], enable_store: bool) -> Any:
    """0.13.0's ``OpenAIServingResponses`` with what its ``__init__`` would set for gpt-oss."""
    import asyncio

    from vllm.entrypoints.openai.serving_responses import OpenAIServingResponses

    serving = object.__new__(OpenAIServingResponses)
    serving.engine_client = engine
    serving.models = models
    serving.request_logger = None
    serving.return_tokens_as_token_ids = False
    serving.log_error_stack = False
    serving.input_processor = None
    serving.model_config = SimpleNamespace(max_model_len=args.max_model_len)
    serving.max_model_len = args.max_model_len
    serving.chat_template = None
    serving.chat_template_content_format = "auto"
    serving.enable_log_outputs = False
    serving.reasoning_parser = None  # it only adds a structural tag (sampling), never output
    serving.enable_prompt_tokens_details = bool(args.enable_prompt_tokens_details)
    serving.enable_force_include_usage = False
    serving.default_sampling_params = {"stop_token_ids": [chat_ops.RETURN, chat_ops.CALL]}
    serving.enable_store = enable_store
    serving.use_harmony = True
    serving.enable_auto_tools = bool(args.enable_auto_tool_choice)
    serving.tool_parser = None
    serving.response_store = {}
    serving.response_store_lock = asyncio.Lock()
    serving.msg_store = {}
    serving.event_store = {}
    serving.background_tasks = {}
    serving.tool_server = None

    async def process_inputs(request_id: str, engine_prompt: Any, params: Any, **_: Any) -> Any:
        return engine_prompt, {}

    serving._process_inputs = process_inputs
    return serving


def _build_app_013(req: dict[str, Any]) -> tuple[Any, list[Any]]:
    from vllm.entrypoints import context
    from vllm.entrypoints.openai import serving_responses

    app, patches = chat_ops._build_app(req)
    chat = app.state.openai_serving_chat
    script = req["script"]
    vocab = {int(k): v for k, v in (script.get("vocab") or {}).items()}
    prompt = [0] * script["prompt_tokens"]
    app.state.openai_serving_responses = _serving_013(
        chat_ops._serve_args(req["argv"]),
        chat.engine_client,
        chat.models,
        prompt,
        bool(req.get("enable_store")),
    )
    encoding = SimpleNamespace(
        stop_tokens_for_assistant_actions=lambda: [chat_ops.RETURN, chat_ops.CALL]
    )
    patches += [
        mock.patch.object(
            context, "get_streamable_parser_for_assistant", side_effect=lambda: _Parser(vocab)
        ),
        mock.patch.object(context, "get_encoding", return_value=encoding),
        mock.patch.object(serving_responses, "render_for_completion", return_value=prompt),
    ]
    return app, patches


def op_responses_http(req: dict[str, Any]) -> dict[str, Any]:
    """One HTTP request to vLLM's own app; answers status, headers and the body text."""
    app, patches = _build_app_033(req) if V033 else _build_app_013(req)
    answer: dict[str, Any] = chat_ops.send(app, patches, req)
    return answer


def _renderer_033(serving_chat: Any, prompt: list[int]) -> Any:
    """0.33.0's online renderer for Responses: its own harmony message building (and checks),
    with the rendering of those messages replaced by the mock's prompt."""
    from vllm.entrypoints.serve.engine.serving import BaseServing
    from vllm.inputs import tokens_input
    from vllm.renderers.online_renderer import OnlineRenderer

    stub = SimpleNamespace(
        reasoning_effort_map=None,
        trust_request_chat_template=False,
        parser=None,  # the harmony parser's adjust_request only touches structured outputs
        use_harmony=True,
        model_config=serving_chat.model_config,
        renderer=serving_chat.renderer,
    )
    stub.create_error_response = lambda *a, **k: BaseServing.create_error_response(stub, *a, **k)
    for name in (
        "validate_chat_template",
        "render_responses",
        "_render_responses_with_harmony",
        "_get_harmony_builtin_tool_descriptions",
        "adjust_harmony_request",
    ):
        method = getattr(OnlineRenderer, name)
        setattr(stub, name, method.__get__(stub))

    def render_messages(messages: Any, *, cache_salt: Any, tok_params: Any = None) -> Any:
        return tokens_input(list(prompt), cache_salt=cache_salt)

    stub.render_responses_harmony_messages = render_messages
    return stub


def _build_app_033(req: dict[str, Any]) -> tuple[Any, list[Any]]:
    from vllm.entrypoints.openai.responses.serving import OpenAIServingResponses
    from vllm.parser import harmony

    app, patches = chat_ops._build_app_033(req)
    chat = app.state.openai_serving_chat
    args = chat_ops._serve_args(req["argv"])
    script = req["script"]
    vocab = {int(k): v for k, v in (script.get("vocab") or {}).items()}
    engine = chat.engine_client
    engine.model_config.get_diff_sampling_param = lambda: {
        "stop_token_ids": [chat_ops.RETURN, chat_ops.CALL]
    }
    engine.model_config.override_generation_config = {}
    engine.renderer.get_tokenizer = lambda: engine.renderer.tokenizer
    serving = OpenAIServingResponses(
        engine,
        chat.models,
        _renderer_033(chat, [0] * script["prompt_tokens"]),
        request_logger=None,
        chat_template=None,
        chat_template_content_format="auto",
        reasoning_parser="openai_gptoss",
        enable_auto_tools=bool(args.enable_auto_tool_choice),
        tool_parser=args.tool_call_parser,
        enable_prompt_tokens_details=bool(args.enable_prompt_tokens_details),
    )
    serving.enable_store = bool(req.get("enable_store"))
    app.state.openai_serving_responses = serving
    patches.append(
        mock.patch.object(
            harmony, "get_streamable_parser_for_assistant", side_effect=lambda: _Parser(vocab)
        )
    )
    return app, patches


OPS = {"responses_http": op_responses_http}
