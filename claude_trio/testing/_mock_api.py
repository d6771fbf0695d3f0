"""A mock of the Anthropic Messages API on loopback, for tests that run the real CLI.

The real ``claude`` talks to it through ``ANTHROPIC_BASE_URL``. It is a plain ASGI
callable served by hypercorn's trio worker, owned by `open_mock_anthropic_api`. Each
request is recorded, classified (main turn or background traffic, FACTS.md §0) and
answered: main requests from the scripted queue, then the handler, then a default echo;
background requests always by built-in answers, so they never eat a scripted reply.
"""

from __future__ import annotations

import collections
import enum
import json
import logging
import math
import re
import time
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar, final

import attrs
import trio

from .._asgi import one_start_error, run_lifespan
from ._replies import (
    ErrorReply,
    MessageReply,
    ReplyUsage,
    delta_count,
    encode_json,
    encode_stream,
    encode_stream_error,
    error_json,
    error_reply,
    estimate_output_tokens,
    max_tokens_reply,
    message_json,
    new_id,
    text_reply,
    thinking_reply,
    tool_use_reply,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping

    import hypercorn.config
    from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope


_T = TypeVar("_T")

_LOGGER: Final = logging.getLogger("claude_trio.testing.mock_api")
_TITLE_MARKER: Final = "You are naming a coding session"
_REMINDER_PREFIX: Final = "<system-reminder>"
_MESSAGES_ROUTE: Final = "/v1/messages"
_COUNT_TOKENS_ROUTE: Final = "/v1/messages/count_tokens"
_HELLO_ROUTE: Final = "/api/hello"
_DEFAULT_MODEL: Final = "claude-mock"
_MOCK_TITLE: Final = '{"title": "Mock session"}'
_REQUESTS_LIMIT: Final = 4000
_TOKENS_LIMIT: Final = 2_000_000
_RATE_WINDOW: Final = timedelta(minutes=1)
_SSE_HEADERS: Final = (
    ("content-type", "text/event-stream; charset=utf-8"),
    ("cache-control", "no-cache"),
)


class _NoPublicConstructor(type):
    def __call__(cls, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError(f"{cls.__module__}.{cls.__qualname__} has no public constructor")

    def _create(cls: type[_T], *args: object, **kwargs: object) -> _T:
        return super().__call__(*args, **kwargs)  # type: ignore[misc, no-any-return]


class RequestKind(enum.Enum):
    """What a request to the mock was, as the CLI's traffic is told apart.

    Only `MAIN` requests consume scripted replies and reach the handler; every other kind
    is background traffic with a built-in answer.

    Attributes:
        MAIN: A ``POST /v1/messages`` of a turn.
        TITLE: Session-title generation: a ``POST /v1/messages`` whose system prompt says
            "You are naming a coding session".
        QUOTA: A quota probe: a ``POST /v1/messages`` with ``max_tokens`` 1.
        COUNT_TOKENS: ``POST /v1/messages/count_tokens``.
        HELLO: The connectivity probe ``HEAD /api/hello``.
        OTHER: Anything else: unknown paths (404), and message requests whose body is not
            a JSON object (400).

    .. versionadded:: 0.1.0
    """

    MAIN = "main"
    TITLE = "title"
    QUOTA = "quota"
    COUNT_TOKENS = "count_tokens"
    HELLO = "hello"
    OTHER = "other"

    @property
    def is_background(self) -> bool:
        """Whether this kind is background traffic (anything but `MAIN`)."""
        return self is not RequestKind.MAIN


@final
@attrs.frozen(kw_only=True, eq=False)
class RecordedRequest:
    """One request the mock received, as the mock's log keeps it.

    Besides the parsed view (``headers``, ``body``), the request is kept exactly as the
    server handed it over (``raw_headers``, ``raw_body``), so a test can check that a
    proxy between the client and the mock forwarded it byte for byte.

    Attributes:
        method: The HTTP method (``POST``, ``HEAD``…).
        path: The path with its query string, as sent (``/v1/messages?beta=true``).
        headers: The request headers; names are lower case, repeated ones joined by ``", "``.
        body: The parsed JSON body, or `None` when there was none or it was not a JSON object.
        kind: What the request was.
        request_id: The ``request-id`` header of the answer (the CLI's ``requestId``).
        time: When it arrived, on trio's clock (`trio.current_time`).
        wall_time: When it arrived, in seconds since the epoch (``time.time()``).
        raw_body: The body's bytes, as received.
        raw_headers: The request headers as ``(name, value)`` bytes pairs, in the order
            the ASGI server gave them, repeats kept (the server lower-cases names).

    .. versionadded:: 0.1.0
    """

    method: str
    path: str
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: dict[str, Any] | None = attrs.field(repr=False)
    kind: RequestKind
    request_id: str
    time: float
    wall_time: float
    raw_body: bytes = attrs.field(default=b"", repr=False)
    raw_headers: tuple[tuple[bytes, bytes], ...] = attrs.field(default=(), repr=False)

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The body's ``messages`` (JSON objects only), or an empty list."""
        messages = self.body.get("messages") if self.body is not None else None
        if not isinstance(messages, list):
            return []
        return [message for message in messages if isinstance(message, dict)]

    @property
    def stream(self) -> bool:
        """Whether the request asked for a streamed (SSE) answer."""
        return self.body is not None and self.body.get("stream") is True

    @property
    def model(self) -> str | None:
        """The requested ``model``, if any."""
        model = self.body.get("model") if self.body is not None else None
        return model if isinstance(model, str) else None

    @property
    def system_text(self) -> str:
        """The ``system`` prompt as one string (its text blocks joined by newlines)."""
        system = self.body.get("system") if self.body is not None else None
        if isinstance(system, str):
            return system
        if isinstance(system, list):
            return "\n".join(_text_blocks(system))
        return ""

    @property
    def prompt(self) -> str | None:
        """What the user typed for this request, or `None`.

        This is the last ``text`` block of the last ``user`` message that is not a
        ``<system-reminder>``. The CLI puts ``role: "system"`` entries inside
        ``messages``, sometimes last, so ``messages[-1]`` is not the prompt (FACTS.md
        §11). A user message that only carries tool results has no prompt.
        """
        for message in reversed(self.messages):
            if message.get("role") != "user":
                continue
            content = message.get("content")
            texts = [content] if isinstance(content, str) else _text_blocks(content)
            typed = [text for text in texts if not text.lstrip().startswith(_REMINDER_PREFIX)]
            return typed[-1] if typed else None
        return None

    @property
    def tool_results(self) -> list[dict[str, Any]]:
        """The ``tool_result`` blocks of the last ``user`` message, in order."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                content = message.get("content")
                if not isinstance(content, list):
                    return []
                return [
                    block
                    for block in content
                    if isinstance(block, dict) and block.get("type") == "tool_result"
                ]
        return []


@final
@attrs.frozen(kw_only=True)
class MockAnthropicAPIStatistics:
    """A snapshot of what a `MockAnthropicAPI` has done so far.

    Attributes:
        requests: Requests received, of every kind.
        main_requests: Requests of kind `RequestKind.MAIN`.
        queued_replies: Scripted replies not yet used.
        responses_in_flight: Responses still being sent.
        responses_completed: Responses sent to the end.
        responses_disconnected: Responses cut short because the client went away.

    .. versionadded:: 0.1.0
    """

    requests: int
    main_requests: int
    queued_replies: int
    responses_in_flight: int
    responses_completed: int
    responses_disconnected: int


@final
@attrs.frozen
class _Response:
    status: int
    headers: tuple[tuple[str, str], ...]
    chunks: tuple[tuple[float, bytes], ...] = ()


@final
class MockAnthropicAPI(metaclass=_NoPublicConstructor):
    """A running mock Messages API; get one from `open_mock_anthropic_api`.

    Main requests are answered, in order of preference, by the next scripted reply
    (`enqueue`), by `handler`, and by a default: ``echo: <prompt>``, or
    ``tool said: <result>`` when the request carries a tool result. Background requests
    (title generation, quota probe, ``count_tokens``, ``/api/hello``) get built-in answers
    and never reach the queue or the handler.

    Like the real API, each 200 answer to ``POST /v1/messages`` carries the
    ``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`` headers: limits of
    4000 requests and 2,000,000 tokens, what remains counting down with each such answer
    (by one request and the answer's estimated tokens, never below 0), and resets a
    minute ahead. A reply's own ``headers`` replace them.

    Attributes:
        handler: Called with each main `RecordedRequest` the queue did not answer; returns
            a `MessageReply` or `ErrorReply`, or `None` for the default. It runs in the
            server's task and must not block. If it raises, the request gets a 500
            ``api_error`` and the traceback is logged. Assign it at any time.

    .. versionadded:: 0.1.0
    """

    handler: Callable[[RecordedRequest], MessageReply | ErrorReply | None] | None

    def __init__(
        self, *, handler: Callable[[RecordedRequest], MessageReply | ErrorReply | None] | None
    ) -> None:
        self.handler = handler
        self._base_url: str | None = None
        self._queue: collections.deque[MessageReply | ErrorReply] = collections.deque()
        self._requests: list[RecordedRequest] = []
        self._changed = trio.Event()
        self._in_flight = 0
        self._completed = 0
        self._disconnected = 0
        self._rate_requests = 0
        self._rate_tokens = 0
        self._response_scopes: set[trio.CancelScope] = set()
        self._closing = False
        self._shutdown = trio.Event()
        self._server_scope = trio.CancelScope(shield=True)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: the value for ``ANTHROPIC_BASE_URL``."""
        if self._base_url is None:
            raise RuntimeError("the mock API is not serving")
        return self._base_url

    @property
    def requests(self) -> tuple[RecordedRequest, ...]:
        """Every request received so far, of every kind, oldest first."""
        return tuple(self._requests)

    @property
    def main_requests(self) -> tuple[RecordedRequest, ...]:
        """The requests of kind `RequestKind.MAIN`, oldest first."""
        return self._matching(RequestKind.MAIN)

    def enqueue(self, *replies: MessageReply | ErrorReply) -> None:
        """Script the answers to the next main requests, first in, first out.

        Args:
            *replies: One reply per main request to come.
        """
        self._queue.extend(replies)

    def statistics(self) -> MockAnthropicAPIStatistics:
        """Return counts of requests, scripted replies and responses so far."""
        return MockAnthropicAPIStatistics(
            requests=len(self._requests),
            main_requests=len(self.main_requests),
            queued_replies=len(self._queue),
            responses_in_flight=self._in_flight,
            responses_completed=self._completed,
            responses_disconnected=self._disconnected,
        )

    async def wait_for_requests(
        self, count: int, *, kind: RequestKind | None = RequestKind.MAIN
    ) -> tuple[RecordedRequest, ...]:
        """Wait until at least ``count`` requests of ``kind`` have arrived.

        A request counts as soon as its body is read, before it is answered.

        Args:
            count: How many requests to wait for.
            kind: Which kind to count; `None` counts every request.

        Returns:
            All requests of ``kind`` so far (at least ``count``), oldest first.
        """
        await trio.lowlevel.checkpoint()
        while len(matching := self._matching(kind)) < count:
            await self._changed.wait()
        return matching

    async def wait_idle(self) -> None:
        """Wait until no response is being sent (slow streams finished or cut off)."""
        await trio.lowlevel.checkpoint()
        while self._in_flight:
            await self._changed.wait()

    def _matching(self, kind: RequestKind | None) -> tuple[RecordedRequest, ...]:
        return tuple(request for request in self._requests if kind is None or request.kind is kind)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _serve(
        self,
        config: hypercorn.config.Config,
        *,
        task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        # Shielded so that a cancelled caller still gets a graceful stop that closes every
        # socket; the deadline set by _begin_close bounds it.
        import hypercorn.trio

        with self._server_scope:
            await hypercorn.trio.serve(
                self._app,
                config,
                shutdown_trigger=self._shutdown.wait,
                task_status=task_status,
                mode="asgi",
            )

    def _begin_close(self, close_timeout: float) -> None:
        self._closing = True
        for scope in self._response_scopes:
            scope.cancel()
        self._shutdown.set()
        self._server_scope.deadline = min(
            self._server_scope.deadline, trio.current_time() + close_timeout
        )

    async def _app(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send)
        elif scope["type"] == "http":
            self._in_flight += 1
            try:
                await self._handle_http(scope, receive, send)
            finally:
                self._in_flight -= 1
                self._notify()

    async def _handle_http(
        self, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        raw_body = await _read_body(receive)
        if raw_body is None:
            return
        request = self._record(scope, raw_body)
        response = self._respond(request, len(raw_body))
        await self._send_response(request, response, receive, send)

    def _record(self, scope: HTTPScope, raw_body: bytes) -> RecordedRequest:
        path = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            path += "?" + scope["query_string"].decode("latin-1")
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        body = _parse_body(raw_body)
        request = RecordedRequest(
            method=scope["method"],
            path=path,
            headers=MappingProxyType(headers),
            body=body,
            kind=_classify(scope["method"], scope["path"], body),
            request_id=new_id("req"),
            time=trio.current_time(),
            wall_time=time.time(),
            raw_body=raw_body,
            raw_headers=tuple((bytes(name), bytes(value)) for name, value in scope["headers"]),
        )
        self._requests.append(request)
        self._notify()
        return request

    def _respond(self, request: RecordedRequest, body_size: int) -> _Response:
        input_tokens = max(body_size // 4, 1)
        match request.kind:
            case RequestKind.MAIN:
                return self._reply_response(request, self._main_reply(request), input_tokens)
            case RequestKind.TITLE:
                return self._reply_response(request, text_reply(_MOCK_TITLE), input_tokens)
            case RequestKind.QUOTA:
                probe = attrs.evolve(max_tokens_reply("."), usage=ReplyUsage(input_tokens, 1))
                return self._reply_response(request, probe, input_tokens)
            case RequestKind.COUNT_TOKENS:
                return _json_response(200, {"input_tokens": input_tokens})
            case RequestKind.HELLO:
                return _Response(200, (("content-length", "0"),))
            case RequestKind.OTHER:
                route = request.path.partition("?")[0]
                if request.method == "POST" and route in (_MESSAGES_ROUTE, _COUNT_TOKENS_ROUTE):
                    error = error_reply(400, message="mock: the body must be a JSON object")
                else:
                    error = error_reply(
                        404, message=f"mock: no route for {request.method} {request.path}"
                    )
                return self._reply_response(request, error, input_tokens)

    def _main_reply(self, request: RecordedRequest) -> MessageReply | ErrorReply:
        if self._queue:
            return self._queue.popleft()
        if self.handler is not None:
            try:
                reply = self.handler(request)
            except Exception as exc:
                _LOGGER.exception("mock API handler failed on request %s", request.request_id)
                return error_reply(500, message=f"mock handler raised {exc!r}")
            if reply is not None:
                return reply
        return _default_reply(request)

    def _reply_response(
        self, request: RecordedRequest, reply: MessageReply | ErrorReply, input_tokens: int
    ) -> _Response:
        response = self._reply_body(request, reply, input_tokens)
        headers = response.headers
        if response.status == 200:
            output_tokens = estimate_output_tokens(reply) if isinstance(reply, MessageReply) else 0
            headers += self._rate_limit_headers(input_tokens + output_tokens)
        return attrs.evolve(response, headers=_merged(headers, reply.headers))

    def _rate_limit_headers(self, tokens: int) -> tuple[tuple[str, str], ...]:
        self._rate_requests += 1
        self._rate_tokens += tokens
        return _bucket_headers(
            requests=max(_REQUESTS_LIMIT - self._rate_requests, 0),
            tokens=max(_TOKENS_LIMIT - self._rate_tokens, 0),
            reset=datetime.now(UTC) + _RATE_WINDOW,
        )

    def _reply_body(
        self, request: RecordedRequest, reply: MessageReply | ErrorReply, input_tokens: int
    ) -> _Response:
        message_id = new_id("msg")
        model = request.model or _DEFAULT_MODEL
        if isinstance(reply, ErrorReply):
            if reply.in_stream and request.stream:
                chunks = encode_stream_error(
                    reply,
                    message_id=message_id,
                    model=model,
                    usage=ReplyUsage(input_tokens, 0),
                    request_id=request.request_id,
                )
                return _Response(200, _SSE_HEADERS, tuple(chunks))
            body = error_json(reply.error_type, reply.message, request_id=request.request_id)
            return _json_response(reply.status, body, _retry_headers(reply))
        model = reply.model or model
        usage = reply.usage or ReplyUsage(input_tokens, estimate_output_tokens(reply))
        if request.stream:
            chunks = encode_stream(reply, message_id=message_id, model=model, usage=usage)
            return _Response(200, _SSE_HEADERS, tuple(chunks))
        message = message_json(reply, message_id=message_id, model=model, usage=usage)
        response = _json_response(200, message)
        total_delay = reply.delay * delta_count(reply)
        return attrs.evolve(response, chunks=((total_delay, response.chunks[0][1]),))

    async def _send_response(
        self,
        request: RecordedRequest,
        response: _Response,
        receive: ASGIReceiveCallable,
        send: ASGISendCallable,
    ) -> None:
        headers = _merged((("request-id", request.request_id),), response.headers)
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(name.encode(), value.encode()) for name, value in headers],
            }
        )
        client_gone = trio.Event()
        with trio.CancelScope() as closing_scope:
            self._response_scopes.add(closing_scope)
            if self._closing:
                closing_scope.cancel()
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(
                        _cancel_on_disconnect, receive, nursery.cancel_scope, client_gone
                    )
                    for delay, data in response.chunks:
                        if delay > 0:
                            await trio.sleep(delay)
                        await send({"type": "http.response.body", "body": data, "more_body": True})
                    # Stop watching before the last send: ending the response makes
                    # hypercorn report a disconnect at once.
                    nursery.cancel_scope.cancel()
            finally:
                self._response_scopes.discard(closing_scope)
        if client_gone.is_set():
            self._disconnected += 1
        elif not closing_scope.cancel_called:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            self._completed += 1


@asynccontextmanager
async def open_mock_anthropic_api(
    *,
    handler: Callable[[RecordedRequest], MessageReply | ErrorReply | None] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    close_timeout: float = 2.0,
) -> AsyncIterator[MockAnthropicAPI]:
    """Serve a mock Anthropic Messages API on ``host:port`` for the duration of the block.

    The server is hypercorn's trio worker in a nursery owned by this context manager;
    ``port=0`` picks a free port, read it from `MockAnthropicAPI.base_url`. Leaving the
    block, normally, by an error or by cancellation, cuts the responses still streaming
    and stops the server gracefully, within ``close_timeout`` seconds even when the
    caller is cancelled. Errors raised in the block propagate unchanged.

    Args:
        handler: The initial `MockAnthropicAPI.handler` (for example `magic_word_handler`).
        host: The address to bind; keep the loopback default outside a sandbox.
        port: The port to bind; 0 for an ephemeral one.
        close_timeout: Seconds the stop may take before the server is cancelled.

    Yields:
        The running `MockAnthropicAPI`.

    Raises:
        OSError: The address could not be bound.
        ValueError: ``close_timeout`` is not positive.

    .. versionadded:: 0.1.0
    """
    if not close_timeout > 0:
        raise ValueError(f"close_timeout must be > 0, got {close_timeout!r}")
    api = MockAnthropicAPI._create(handler=handler)
    config = _server_config(host, port, close_timeout)
    body_error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        try:
            with one_start_error():
                binds = await nursery.start(api._serve, config)
            api._base_url = binds[0]
            yield api
        except BaseException as exc:
            # Re-raised below, once the server is down: raising it through the nursery
            # would wrap it in an ExceptionGroup.
            body_error = exc
        finally:
            api._begin_close(close_timeout)
    if body_error is not None:
        raise body_error


def magic_word_handler(request: RecordedRequest) -> MessageReply | ErrorReply | None:
    """Answer a main request according to magic words in its prompt.

    Words are matched anywhere in `RecordedRequest.prompt`; the first rule that matches wins:

    ================================ ===================================================
    ``ERR401`` (also 429, 500, 529)  `error_reply` with that status (429: ``retry-after``)
    ``ERRSTREAM``                    a 200 stream that fails with an ``overloaded_error``
                                     event; the non-streaming retry gets the default
    ``CALL_BASH <command>``          ``I will call Bash.`` + a ``Bash`` call running the
                                     rest of the line
    ``CALL_READ <path>``             ``I will call Read.`` + a ``Read`` call of the path
    ``CALL_TOOL <name> <json>``      a call of tool ``name`` with that JSON object input
    ``SLOW<n>``                      ``w0 w1 …`` (2 words a second) streamed over ``n`` s
    ``MAXTOK``                       ``this reply is cut``, ``stop_reason="max_tokens"``
    ``THINK``                        thinking ``Let me think about: <prompt>``, then the
                                     text ``after thinking: <prompt>``
    ================================ ===================================================

    Anything else, and every follow-up that carries a tool result, returns `None`, so the
    mock's default answers (``echo: <prompt>``, ``tool said: <result>``).

    Args:
        request: A main request.

    Returns:
        The reply, or `None` for the default.

    .. versionadded:: 0.1.0
    """
    prompt = request.prompt
    if prompt is None or request.tool_results:
        return None
    if match := re.search(r"\bERR(401|429|500|529)\b", prompt):
        return error_reply(int(match[1]))
    if re.search(r"\bERRSTREAM\b", prompt):
        return error_reply(529, in_stream=True) if request.stream else None
    if match := re.search(r"\bCALL_BASH[ \t]+(.+)", prompt):
        command = match[1].strip()
        return tool_use_reply(
            "Bash",
            input={"command": command, "description": "mock bash call"},
            text="I will call Bash.",
        )
    if match := re.search(r"\bCALL_READ[ \t]+(.+)", prompt):
        return tool_use_reply(
            "Read", input={"file_path": match[1].strip()}, text="I will call Read."
        )
    if match := re.search(r"\bCALL_TOOL[ \t]+(\S+)[ \t]*(.*)", prompt):
        name, arguments = match[1], _json_object(match[2])
        return tool_use_reply(name, input=arguments, text=f"I will call {name}.")
    if match := re.search(r"\bSLOW(\d+(?:\.\d+)?)\b", prompt):
        seconds = float(match[1])
        words = " ".join(f"w{index}" for index in range(max(math.ceil(seconds * 2), 1)))
        return text_reply(words, seconds=seconds)
    if re.search(r"\bMAXTOK\b", prompt):
        return max_tokens_reply("this reply is cut")
    if re.search(r"\bTHINK\b", prompt):
        return thinking_reply(f"Let me think about: {prompt}", text=f"after thinking: {prompt}")
    return None


def _default_reply(request: RecordedRequest) -> MessageReply:
    results = request.tool_results
    if results:
        content = results[-1].get("content")
        said = content if isinstance(content, str) else "\n".join(_text_blocks(content))
        return text_reply(f"tool said: {said}")
    return text_reply(f"echo: {request.prompt or ''}")


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return {"text": text}
    return value if isinstance(value, dict) else {"value": value}


def _text_blocks(content: object) -> list[str]:
    if not isinstance(content, list):
        return []
    return [
        block["text"]
        for block in content
        if isinstance(block, dict)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
    ]


def _parse_body(raw_body: bytes) -> dict[str, Any] | None:
    if not raw_body:
        return None
    try:
        body = json.loads(raw_body)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _classify(method: str, route: str, body: dict[str, Any] | None) -> RequestKind:
    if route == _HELLO_ROUTE:
        return RequestKind.HELLO
    if route == _COUNT_TOKENS_ROUTE and method == "POST":
        return RequestKind.COUNT_TOKENS
    if route != _MESSAGES_ROUTE or method != "POST" or body is None:
        return RequestKind.OTHER
    if body.get("max_tokens") == 1:
        return RequestKind.QUOTA
    system = body.get("system")
    system_text = system if isinstance(system, str) else "\n".join(_text_blocks(system))
    if _TITLE_MARKER in system_text:
        return RequestKind.TITLE
    return RequestKind.MAIN


def _json_response(
    status: int, body: Mapping[str, object], extra_headers: tuple[tuple[str, str], ...] = ()
) -> _Response:
    data = encode_json(body)
    headers = (
        ("content-type", "application/json"),
        ("content-length", str(len(data))),
        *extra_headers,
    )
    return _Response(status, headers, ((0.0, data),))


def _retry_headers(error: ErrorReply) -> tuple[tuple[str, str], ...]:
    if error.retry_after is None:
        return ()
    headers = (("retry-after", str(math.ceil(error.retry_after))),)
    if error.status != 429:
        return headers
    reset = datetime.now(UTC) + timedelta(seconds=error.retry_after)
    return headers + _bucket_headers(requests=0, tokens=0, reset=reset)


def _bucket_headers(*, requests: int, tokens: int, reset: datetime) -> tuple[tuple[str, str], ...]:
    stamp = reset.isoformat(timespec="seconds").replace("+00:00", "Z")
    headers: list[tuple[str, str]] = []
    for bucket, limit, remaining in (
        ("requests", _REQUESTS_LIMIT, requests),
        ("tokens", _TOKENS_LIMIT, tokens),
    ):
        headers += [
            (f"anthropic-ratelimit-{bucket}-limit", str(limit)),
            (f"anthropic-ratelimit-{bucket}-remaining", str(remaining)),
            (f"anthropic-ratelimit-{bucket}-reset", stamp),
        ]
    return tuple(headers)


def _merged(
    headers: tuple[tuple[str, str], ...], extra: tuple[tuple[str, str], ...]
) -> tuple[tuple[str, str], ...]:
    """Return ``headers`` less those that ``extra`` names, then ``extra``."""
    replaced = {name.lower() for name, _ in extra}
    return (*(pair for pair in headers if pair[0].lower() not in replaced), *extra)


def _server_config(host: str, port: int, close_timeout: float) -> hypercorn.config.Config:
    # Imported here so that the rest of claude_trio.testing works without the extra.
    try:
        import hypercorn.config
    except ImportError as exc:
        raise ImportError(
            "the mock Anthropic API needs hypercorn: pip install 'claude-trio[testing]'"
        ) from exc
    config = hypercorn.config.Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = _LOGGER
    config.graceful_timeout = close_timeout
    config.include_server_header = False
    return config


async def _read_body(receive: ASGIReceiveCallable) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        if message["type"] == "http.request":
            chunks.append(message["body"])
            if not message["more_body"]:
                return b"".join(chunks)


async def _cancel_on_disconnect(
    receive: ASGIReceiveCallable, cancel_scope: trio.CancelScope, client_gone: trio.Event
) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    client_gone.set()
    cancel_scope.cancel()
