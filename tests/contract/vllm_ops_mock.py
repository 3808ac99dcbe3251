"""Oracle ops for the mock server's contract tests: vLLM's own HTTP app answers (0.13.0 or 0.33.0).

Runs only under the cached vLLM venv's interpreter (loaded by ``vllm_oracle.py``). The op
``vllm_http`` builds vLLM's real FastAPI app (``api_server.build_app``) from a real
``vllm serve`` argv and sends it one request through Starlette's test client. Behind the app sit
vLLM's own ``OpenAIServingChat`` and ``OpenAIServingModels`` (constructed without an engine) and
a scripted engine that replays the engine steps the mock says it generated. Each step goes
through vLLM's own ``RequestState.make_request_output``, so ``--stream-interval`` batching is
vLLM's code too. What is not vLLM's own code here, because it cannot run without the tiktoken
vocabulary (which cannot be downloaded on these machines):

* ``_HarmonyParser``: a transcription of openai-harmony 0.0.8's ``StreamableParser`` state
  machine (``src/encoding.rs``), over the token texts the mock declares;
* the prompt rendering (``_make_request_with_harmony``): replaced by a prompt of the length the
  mock declares.

Everything else (request validation, auth, the model check, chunk construction and
serialisation, the usage rules, the finish reasons, the non-streaming response and the tool
parser) is vLLM's code.

Under vLLM 0.33.0 the app is built as 0.33.0 builds it (``vllm.entrypoints.launchers.app``,
the chat serving class in ``openai.chat_completion.serving``, the models registry); its own
``HarmonyParser`` (``vllm/parser/harmony.py``) streams the tokens, fed by the same
transcribed ``StreamableParser`` (the mock's token ids are not o200k's), and the prompt is
rendered by 0.33.0's own harmony code (so its reasoning-effort checks run) and then replaced by
one of the length the mock declares. 0.33.0 keeps the parser's tool settings on the
``HarmonyParser`` class, so the chat serving class, and with it those settings, is rebuilt for
every request; only vLLM's FastAPI app is built once per argv (its state reset per request).
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any
from unittest import mock

import vllm
import vllm.config

# Harmony's special tokens (o200k_harmony ids).
RETURN, CONSTRAIN, CHANNEL, START, END, MESSAGE, CALL = (
    200002,
    200003,
    200005,
    200006,
    200007,
    200008,
    200012,
)
SPECIAL_TEXT = {
    RETURN: "<|return|>",
    CONSTRAIN: "<|constrain|>",
    CHANNEL: "<|channel|>",
    START: "<|start|>",
    END: "<|end|>",
    MESSAGE: "<|message|>",
    CALL: "<|call|>",
}
STOP_TOKENS = {RETURN, END, CALL}


class _Text:
    def __init__(self, text: str) -> None:
        self.text = text


class _Message:
    def __init__(self, header: dict[str, Any], text: str) -> None:
        self.channel = header["channel"]
        self.recipient = header["recipient"]
        self.content_type = header["content_type"]
        self.content = [_Text(text)]
        self.author = SimpleNamespace(role="assistant")


class _HarmonyParser:
    """openai-harmony's StreamableParser (strict mode), for tokens whose texts are known."""

    def __init__(self, vocab: dict[int, str]) -> None:
        self._vocab = vocab
        self.state = "header"  # the assistant role is given: the parser starts in a header
        self.next_role: str | None = "assistant"
        self.header_tokens: list[int] = []
        self.header: dict[str, Any] | None = None
        self.content = ""
        self.messages: list[_Message] = []
        self.last_content_delta: str | None = None

    def _text(self, token: int) -> str:
        return SPECIAL_TEXT.get(token) or self._vocab[token]

    def _parse_header(self) -> dict[str, Any]:
        text = "".join(self._text(t) for t in self.header_tokens)
        channel = None
        marker = "<|channel|>"
        if marker in text:
            idx = text.index(marker)
            after = text[idx + len(marker) :]
            end = next((i for i, c in enumerate(after) if c.isspace() or c == "<"), len(after))
            channel = after[:end]
            text = text[:idx] + after[end:]
        text = text.strip()
        if "<|constrain|>" in text:
            text = text.replace("<|constrain|>", " <|constrain|>").strip()
        parts = text.split()
        role = self.next_role
        if role is None:
            role = parts[0] if parts else None
        if parts and parts[0] == role:
            parts.pop(0)
        recipient = content_type = None
        if parts:
            last = parts.pop()
            if last.startswith("to="):
                recipient = last[3:]
            elif len(parts) == 0 and not last.startswith("<|constrain|>"):
                recipient = last
            else:
                content_type = last
                if parts:
                    raw = parts.pop()
                    recipient = raw[3:] if raw.startswith("to=") else raw
        if parts:
            raise ValueError(f"unexpected tokens remaining in message header: {parts}")
        return {"channel": channel, "recipient": recipient, "content_type": content_type}

    def process(self, token: int) -> _HarmonyParser:
        if self.state == "expect_start":
            if token != START:
                raise ValueError(f"Unexpected token {token} while expecting start token")
            self.state = "header"
            self.header_tokens = []
        elif self.state == "header":
            if token == MESSAGE:
                self.header = self._parse_header()
                self.next_role = None
                self.state = "content"
                self.content = ""
            else:
                self.header_tokens.append(token)
        else:
            if token in STOP_TOKENS:
                assert self.header is not None
                self.messages.append(_Message(self.header, self.content))
                self.state = "expect_start"
                self.last_content_delta = None
            else:
                piece = self._text(token)
                self.content += piece
                self.last_content_delta = piece
        return self

    def process_eos(self) -> None:
        """The end of the output: a message being written is complete; a header is not."""
        if self.state == "content":
            assert self.header is not None
            self.messages.append(_Message(self.header, self.content))
            self.state = "expect_start"
        elif self.state == "header" and (self.header_tokens or self.next_role is None):
            from openai_harmony import HarmonyError

            raise HarmonyError("Unexpected EOS while waiting for message header to complete")

    @property
    def current_channel(self) -> str | None:
        return self.header["channel"] if self.state == "content" and self.header else None

    @property
    def current_recipient(self) -> str | None:
        return self.header["recipient"] if self.state == "content" and self.header else None

    @property
    def current_content(self) -> str:
        return self.content if self.state == "content" else ""


@functools.cache
def _serve_parser() -> Any:
    """vLLM's top-level parser with ``serve``, built once (each build is ~5-10 ms of CPU; the
    oracle's ``parse_serve`` reuses one parser the same way)."""
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    top = FlexibleArgumentParser(prog="vllm")
    subparsers = top.add_subparsers(required=False, dest="subparser")
    serve = ServeSubcommand()
    with mock.patch.object(vllm.config.DeviceConfig, "__post_init__", return_value=None):
        serve.subparser_init(subparsers)
    return top


def _serve_args(argv: list[str]) -> Any:
    args = _serve_parser().parse_args(argv[1:])
    if getattr(args, "model_tag", None):
        args.model = args.model_tag  # what ServeSubcommand.cmd does before starting
    return args


class _Detokenizer:
    """The part of vLLM's incremental detokenizer that RequestState's batching reads."""

    def __init__(self) -> None:
        self.output_token_ids: list[int] = []

    def get_next_output_text(self, finished: bool, delta: bool) -> str:
        return ""


class _Logprobs:
    logprobs = None
    cumulative_logprob = None
    prompt_logprobs = None

    def pop_prompt_logprobs(self) -> None:
        return None


class _ScriptedEngine:
    """An engine client that replays the engine steps the mock declared for the request."""

    def __init__(self, script: dict[str, Any], stream_interval: int, dead: bool) -> None:
        self.script = script
        self.stream_interval = stream_interval
        self.errored = dead
        from vllm.v1.engine.exceptions import EngineDeadError

        self.dead_error = EngineDeadError()

    async def check_health(self) -> None:
        if self.errored:
            from vllm.v1.engine.exceptions import EngineDeadError

            raise EngineDeadError()

    async def is_tracing_enabled(self) -> bool:
        return False

    async def get_tokenizer(self) -> Any:
        return SimpleNamespace()

    def generate(self, engine_request: Any, sampling_params: Any, request_id: str, **_: Any) -> Any:
        from vllm.v1.engine import FinishReason
        from vllm.v1.engine.output_processor import RequestState

        script = self.script
        state = RequestState(
            request_id=request_id,
            parent_req=None,
            request_index=0,
            lora_name=None,
            output_kind=sampling_params.output_kind,
            prompt=None,
            prompt_token_ids=[0] * script["prompt_tokens"],
            prompt_embeds=None,
            logprobs_processor=_Logprobs(),
            detokenizer=_Detokenizer(),
            max_tokens_param=sampling_params.max_tokens,
            arrival_time=0.0,
            queue=None,
            log_stats=False,
            stream_interval=self.stream_interval,
        )
        reasons = {"stop": FinishReason.STOP, "length": FinishReason.LENGTH}
        state.num_cached_tokens = script.get("cached_tokens", 0)  # the mock's prefix-cache hit
        steps: list[list[int]] = script["steps"]

        async def run() -> Any:
            for number, step in enumerate(steps):
                last = number == len(steps) - 1
                state.detokenizer.output_token_ids.extend(step)
                out = state.make_request_output(
                    list(step),
                    None,
                    reasons[script["finish_reason"]] if last else None,
                    script.get("stop_reason") if last else None,
                )
                if out is not None:
                    yield out
                await asyncio.sleep(0)
            if script.get("error"):
                raise RuntimeError(script["error"])

        return run()


# vLLM's app per distinct argv, with the state its build left: building it is ~12 ms (0.13.0)
# to ~100 ms (0.33.0) of CPU, and its first request another ~35 ms (Starlette builds the
# middleware stack then); the suite sends ~55 requests per version over ~10 argvs.
_APPS: dict[str, tuple[Any, dict[str, Any]]] = {}


def _fresh_app(argv: list[str], build: Callable[[], Any]) -> Any:
    """vLLM's app for ``argv``, its state as ``build`` left it: what each request sets on it
    (engine, serving classes) never reaches the next request."""
    key = json.dumps(argv)
    if key not in _APPS:
        app = build()
        _APPS[key] = (app, dict(app.state._state))
    app, built_state = _APPS[key]
    app.state._state.clear()
    app.state._state.update(built_state)
    return app


def _build_app(req: dict[str, Any]) -> Any:
    from vllm.entrypoints.openai import api_server, serving_chat
    from vllm.entrypoints.openai.parser import harmony_utils
    from vllm.entrypoints.openai.serving_chat import OpenAIServingChat
    from vllm.entrypoints.openai.serving_models import BaseModelPath, OpenAIServingModels
    from vllm.tool_parsers import ToolParserManager

    args = _serve_args(req["argv"])
    app = _fresh_app(req["argv"], lambda: api_server.build_app(args))
    script = req.get("script") or {"prompt_tokens": 1, "steps": [[RETURN]], "finish_reason": "stop"}
    vocab = {int(k): v for k, v in (script.get("vocab") or {}).items()}
    engine = _ScriptedEngine(script, args.stream_interval, bool(req.get("engine_dead")))

    names = args.served_model_name or [args.model]
    models = object.__new__(OpenAIServingModels)
    models.engine_client = engine
    models.base_model_paths = [BaseModelPath(name=n, model_path=args.model) for n in names]
    models.static_lora_modules = None
    models.lora_requests = {}
    models.lora_resolvers = []
    models.max_model_len = args.max_model_len

    chat = object.__new__(OpenAIServingChat)
    chat.engine_client = engine
    chat.models = models
    chat.request_logger = None
    chat.return_tokens_as_token_ids = False
    chat.log_error_stack = False
    chat.response_role = "assistant"
    chat.chat_template = None
    chat.trust_request_chat_template = False
    chat.enable_log_outputs = False
    chat.logits_processors = None
    chat.reasoning_parser = None  # the harmony branch never reads it (see the module doc)
    chat.enable_auto_tools = bool(args.enable_auto_tool_choice)
    chat.tool_parser = (
        ToolParserManager.get_tool_parser(args.tool_call_parser) if args.tool_call_parser else None
    )
    chat.exclude_tools_when_tool_choice_none = False
    chat.enable_prompt_tokens_details = bool(args.enable_prompt_tokens_details)
    chat.enable_force_include_usage = False
    chat.default_sampling_params = {"stop_token_ids": [RETURN, CALL]}
    chat.tool_call_id_type = "random"
    chat.use_harmony = True
    chat.supports_browsing = False
    chat.browser_tool = None
    chat.supports_code_interpreter = False
    chat.python_tool = None
    chat.max_model_len = args.max_model_len
    chat.model_config = SimpleNamespace(logits_processor_pattern=None)
    chat.input_processor = None

    prompt = [0] * script["prompt_tokens"]

    def make_request_with_harmony(request: Any) -> Any:
        return [], [{"prompt_token_ids": prompt}]

    async def process_inputs(request_id: str, engine_prompt: Any, params: Any, **_: Any) -> Any:
        return engine_prompt, {}

    chat._make_request_with_harmony = make_request_with_harmony
    chat._process_inputs = process_inputs
    chat._get_active_default_mm_loras = lambda request: None

    def parser() -> _HarmonyParser:
        return _HarmonyParser(vocab)

    patches = [
        mock.patch.object(serving_chat, "get_streamable_parser_for_assistant", parser),
        mock.patch.object(harmony_utils, "get_streamable_parser_for_assistant", parser),
    ]
    app.state.engine_client = engine
    app.state.openai_serving_models = models
    app.state.openai_serving_chat = chat
    app.state.openai_serving_tokenization = chat
    app.state.server_load_metrics = 0
    app.state.enable_server_load_tracking = False
    return app, patches


# --- vLLM 0.33.0 ------------------------------------------------------------------------------

V033 = not vllm.__version__.startswith("0.13.")


class _Detokenizer033(_Detokenizer):
    def num_output_tokens(self) -> int:
        return len(self.output_token_ids)


class _Logprobs033(_Logprobs):
    prompt_token_id_logprobs = None

    def pop_prompt_token_id_logprobs(self) -> None:
        return None


class _Tokenizer033:
    """What 0.33.0's harmony parser asks of the tokenizer: the text of tokens (the recovered
    output of a cut header; specials kept, as Hugging Face's ``decode`` does by default)."""

    def __init__(self, vocab: dict[int, str]) -> None:
        self._vocab = vocab

    def decode(self, ids: Any, **_: Any) -> str:
        return "".join(SPECIAL_TEXT.get(t) or self._vocab[t] for t in ids)

    def get_vocab(self) -> dict[str, int]:
        return {}


class _ScriptedEngine033(_ScriptedEngine):
    """0.33.0's engine client: the same replay, through 0.33.0's ``RequestState``."""

    def __init__(self, script: dict[str, Any], args: Any, dead: bool, vocab: dict[int, str]):
        super().__init__(script, args.stream_interval, dead)
        self.model_config = SimpleNamespace(
            model=args.model,
            max_model_len=args.max_model_len,
            hf_config=SimpleNamespace(model_type="gpt_oss"),
            logits_processor_pattern=None,
            generation_config="auto",
            is_encoder_decoder=False,
        )
        self.renderer = SimpleNamespace(tokenizer=_Tokenizer033(vocab))
        self.input_processor = None
        self.is_running = not dead
        self.should_keep_api_server_alive = False

    def check_admission(self, n: int) -> None:
        return None

    def generate(self, engine_request: Any, sampling_params: Any, request_id: str, **_: Any) -> Any:
        from vllm.v1.engine import FinishReason
        from vllm.v1.engine.output_processor import RequestState

        script = self.script
        state = RequestState(
            request_id=request_id,
            external_req_id=request_id,
            parent_req=None,
            request_index=0,
            lora_request=None,
            output_kind=sampling_params.output_kind,
            prompt=None,
            prompt_token_ids=list(engine_request["prompt_token_ids"]),
            prompt_embeds=None,
            logprobs_processor=_Logprobs033(),
            detokenizer=_Detokenizer033(),
            max_tokens_param=sampling_params.max_tokens,
            arrival_time=0.0,
            queue=None,
            log_stats=False,
            stream_interval=self.stream_interval,
        )
        reasons = {"stop": FinishReason.STOP, "length": FinishReason.LENGTH}
        state.num_cached_tokens = script.get("cached_tokens", 0)  # the mock's prefix-cache hit
        state.num_cache_creation_tokens = script.get("created_cache_tokens", 0)
        steps: list[list[int]] = script["steps"]

        async def run() -> Any:
            for number, step in enumerate(steps):
                last = number == len(steps) - 1
                state.detokenizer.output_token_ids.extend(step)
                out = state.make_request_output(
                    list(step),
                    None,
                    reasons[script["finish_reason"]] if last else None,
                    script.get("stop_reason") if last else None,
                )
                if out is not None:
                    yield out
                await asyncio.sleep(0)
            if script.get("error"):
                raise RuntimeError(script["error"])

        return run()


def _build_app_033(req: dict[str, Any]) -> tuple[Any, list[Any]]:
    from vllm.entrypoints.launchers.app import build_app
    from vllm.entrypoints.openai.chat_completion.serving import OpenAIServingChat
    from vllm.entrypoints.openai.models.protocol import BaseModelPath
    from vllm.entrypoints.openai.models.serving import OpenAIServingModels
    from vllm.parser import harmony
    from vllm.parser.parser_manager import ParserManager
    from vllm.renderers.online_renderer import OnlineRenderer

    args = _serve_args(req["argv"])
    app = _fresh_app(req["argv"], lambda: build_app(args, supported_tasks=("generate",)))
    script = req.get("script") or {"prompt_tokens": 1, "steps": [[RETURN]], "finish_reason": "stop"}
    vocab = {int(k): v for k, v in (script.get("vocab") or {}).items()}
    engine = _ScriptedEngine033(script, args, bool(req.get("engine_dead")), vocab)
    names = args.served_model_name or [args.model]
    models = OpenAIServingModels(
        engine, [BaseModelPath(name=n, model_path=args.model) for n in names]
    )

    chat = object.__new__(OpenAIServingChat)
    chat.engine_client = engine
    chat.models = models
    chat.model_config = engine.model_config
    chat.renderer = engine.renderer
    chat.input_processor = None
    chat.request_logger = None
    chat.return_tokens_as_token_ids = False
    chat.has_kv_connector = False
    chat.system_fingerprint = req.get("system_fingerprint")
    chat.response_role = "assistant"
    chat.chat_template = None
    chat.chat_template_content_format = "auto"
    chat.trust_request_chat_template = False
    chat.default_chat_template_kwargs = {}
    chat.enable_log_outputs = False
    chat.enable_log_deltas = True
    chat.enable_auto_tools = bool(args.enable_auto_tool_choice)
    chat._include_reasoning_tokens_details = True  # the openai_gptoss reasoning parser is set
    chat.parser_cls = ParserManager.get_parser(
        tool_parser_name=args.tool_call_parser,
        reasoning_parser_name="openai_gptoss",
        enable_auto_tools=chat.enable_auto_tools,
        model_name=args.model,
        is_harmony=True,
        tokenizer=None,
    )
    chat.exclude_tools_when_tool_choice_none = False
    chat.enable_prompt_tokens_details = bool(args.enable_prompt_tokens_details)
    chat.enable_force_include_usage = False
    chat.enable_per_request_metrics = False
    chat.default_sampling_params = {"stop_token_ids": [RETURN, CALL]}
    chat.override_max_tokens = None
    chat.supports_browsing = False
    chat.supports_code_interpreter = False

    prompt = [0] * script["prompt_tokens"]
    stub = SimpleNamespace(
        reasoning_effort_map=None,
        supports_browsing=False,
        supports_code_interpreter=False,
        renderer=SimpleNamespace(),
    )

    async def render_chat(request: Any, **_: Any) -> Any:
        # vLLM's own harmony rendering (its reasoning-effort checks), then the mock's length
        conversation, inputs = OnlineRenderer._make_request_with_harmony(
            stub, request, request.tools is not None
        )
        for engine_input in inputs:
            engine_input["prompt_token_ids"] = prompt
        return conversation, inputs

    chat.online_renderer = SimpleNamespace(reasoning_effort_map=None, render_chat=render_chat)

    def parser() -> _HarmonyParser:
        return _HarmonyParser(vocab)

    patches = [mock.patch.object(harmony, "get_streamable_parser_for_assistant", parser)]
    app.state.engine_client = engine
    app.state.openai_serving_models = models
    app.state.openai_serving_chat = chat
    app.state.server_load_metrics = 0
    app.state.enable_server_load_tracking = False
    app.state.server = SimpleNamespace(should_exit=False)
    return app, patches


def op_vllm_http(req: dict[str, Any]) -> dict[str, Any]:
    """One HTTP request to vLLM's own app; answers status, headers and the body text."""
    app, patches = _build_app_033(req) if V033 else _build_app(req)
    return send(app, patches, req)


def send(app: Any, patches: list[Any], req: dict[str, Any]) -> dict[str, Any]:
    """Send ``req`` to ``app`` (with ``patches`` applied) through Starlette's test client."""
    from starlette.testclient import TestClient

    for p in patches:
        p.start()
    try:
        client = TestClient(app, raise_server_exceptions=False)
        body = req.get("body")
        response = client.request(
            req.get("method", "POST"),
            req["path"],
            headers=req.get("headers") or {},
            content=body.encode() if isinstance(body, str) else None,
        )
        return {
            "ok": True,
            "status": response.status_code,
            "headers": {k.lower(): v for k, v in response.headers.items()},
            "body": response.content.decode(),
        }
    finally:
        for p in reversed(patches):
            p.stop()


def op_vllm_site_packages(_: dict[str, Any]) -> dict[str, Any]:
    """Where this vLLM is installed (its tracebacks' paths show up in validation messages)."""
    import os

    return {"ok": True, "path": os.path.dirname(os.path.dirname(vllm.__file__))}


def op_streaming_error(req: dict[str, Any]) -> dict[str, Any]:
    """The in-stream error event text vLLM's ``create_streaming_error_response`` writes."""
    from http import HTTPStatus

    if V033:
        # 0.33.0: an exception raised while generating becomes create_error_response's
        # ErrorResponse, dumped compact (a ValueError maps to 400, anything else to 500)
        from vllm.entrypoints.serve import create_error_response

        exc = ValueError if req["code"] == 400 else RuntimeError
        return {"ok": True, "data": create_error_response(exc(req["message"])).model_dump_json()}
    from vllm.entrypoints.openai.serving_engine import OpenAIServing

    serving = object.__new__(OpenAIServing)
    serving.log_error_stack = False
    text = serving.create_streaming_error_response(
        req["message"], err_type=req["type"], status_code=HTTPStatus(req["code"])
    )
    return {"ok": True, "data": text}


OPS = {
    "vllm_http": op_vllm_http,
    "vllm_site_packages": op_vllm_site_packages,
    "streaming_error": op_streaming_error,
}
