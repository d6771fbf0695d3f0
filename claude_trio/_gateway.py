"""The HTTP gateway: the Anthropic Messages API and OpenAI Chat Completions over a backend.

An ASGI app served by hypercorn's trio worker, in a nursery owned by `open_gateway`,
over one `ClaudeCodeBackend`. The request and reply shapes live in
`claude_trio._messages_api` and `claude_trio._chat_api`; who may call in
`claude_trio._gateway_auth`; the error statuses in `claude_trio._gateway_errors`. This
module does the I/O: it reads bodies within their limit, runs turns, streams, notices a
client that went away, and logs one line per request.
"""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
)
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final

import attrs
import trio

from ._asgi import one_start_error, run_lifespan
from ._backend import ClaudeCodeBackend
from ._chat_api import ChatStreamEncoder, chat_completion, parse_chat_request
from ._events import AssistantMessage, Event, ResultMessage, StreamEvent, SystemMessage
from ._gateway_auth import Authenticator, Tenant, check_origin, check_token, is_loopback
from ._gateway_errors import GatewayError, anthropic_error_body, error_for, openai_error_body
from ._history import History
from ._messages_api import (
    CLI_TOOLS_HEADER,
    MessageStreamEncoder,
    message_json,
    parse_messages_request,
    sse,
)
from ._options import BackendOptions
from ._util import check_trio, single_error_unwrapped

if TYPE_CHECKING:
    import hypercorn.config
    from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, HTTPScope, Scope

_LOG: Final = logging.getLogger("claude_trio.gateway")

#: The models ``GET /v1/models`` lists: the pinned CLI's aliases and its current lineup.
#: ``--model`` takes any other name as well; the CLI passes it to the API.
CLI_MODELS: Final = (
    "default",
    "opus",
    "sonnet",
    "haiku",
    "fable",
    "best",
    "opusplan",
    "opus[1m]",
    "sonnet[1m]",
    "claude-opus-5-5",
    "claude-sonnet-5-5",
    "claude-haiku-5-5",
    "claude-fable-5-2",
    "claude-opus-4-8",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
)

#: The model name that leaves ``--model`` to the backend's options (else the CLI's default).
DEFAULT_MODEL: Final = "default"

_ROUTES: Final[Mapping[str, str]] = {
    "/v1/messages": "POST",
    "/v1/chat/completions": "POST",
    "/v1/models": "GET",
    "/health": "GET",
}
_EXPOSED_HEADERS: Final = b"retry-after, request-id, x-request-id, claude-trio-ignored"

#: Seconds a client may take to send its request body.
_BODY_TIMEOUT: Final = 60.0
_MODELS_CREATED: Final = 1_767_225_600  # 2026-01-01, the date the list is stamped with


def _positive(_instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _origins(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError("allowed_origins must be a list of origins, not one string")
    return tuple(value)


def _tokens(value: Mapping[str, str]) -> dict[str, str]:
    return {check_token(token, "tokens"): str(name) for token, name in dict(value).items()}


@attrs.frozen(kw_only=True, eq=False)
class GatewayOptions:
    """How the gateway listens, whom it serves, and its limits.

    Attributes:
        host: The address to bind. Loopback by default; any other address needs tokens.
        port: The port to bind; 0 picks a free one (read `Gateway.base_url`).
        tokens: The accepted tokens, each mapped to a name for the logs. Empty: no token
            is needed (loopback only). Each token is its own tenant: two tokens never
            share a ``claude`` process.
        allowed_origins: Web origins (``https://app.example``) whose browser requests are
            served, with CORS headers; any other request that carries an ``Origin`` gets
            403.
        show_cli_tools: Whether replies on the Anthropic route show the CLI's own tool
            calls and results (``server_tool_use`` and ``mcp_tool_result`` blocks). A
            request hides them with the header ``claude-trio-cli-tools: hide``.
        max_body_bytes: The largest request body; a larger one gets 413.
        max_messages: The most messages in one request; more get 400.
        first_event_wait: Seconds a streamed reply waits for the turn's first event before
            it commits to status 200. An error that comes sooner gets its own status
            (a 429 stays a 429); one that comes later becomes an ``error`` event.
        ping_interval: Seconds without anything sent after which a stream sends a
            ``ping``.
        shutdown_grace: Seconds the turns in flight get to finish once the gateway stops;
            then they are cancelled and their processes discarded.

    Raises:
        ValueError: A non-loopback *host* without tokens, a token shorter than 8
            characters, or a bound that is not positive.
        TypeError: *allowed_origins* given as one string.
    """

    host: str = "127.0.0.1"
    port: int = 0
    tokens: Mapping[str, str] = attrs.field(factory=dict, converter=_tokens, repr=False)
    allowed_origins: tuple[str, ...] = attrs.field(default=(), converter=_origins)
    show_cli_tools: bool = True
    max_body_bytes: int = attrs.field(default=32 * 1024 * 1024, validator=_positive)
    max_messages: int = attrs.field(default=10_000, validator=_positive)
    first_event_wait: float = attrs.field(default=10.0, validator=_positive)
    ping_interval: float = attrs.field(default=10.0, validator=_positive)
    shutdown_grace: float = attrs.field(default=30.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if not is_loopback(self.host) and not self.tokens:
            raise ValueError(
                f"refusing to bind {self.host!r} without a token: anyone who can reach it "
                "could use the claude login behind it; configure tokens or bind 127.0.0.1"
            )


@attrs.define
class GatewayStatistics:
    """Counts of what a gateway has done.

    Attributes:
        requests: Requests answered (any status).
        active: Requests being answered now.
        disconnected: Requests whose client went away before the reply was complete.
    """

    requests: int = 0
    active: int = 0
    disconnected: int = 0


class Gateway:
    """A running gateway; get one from `open_gateway`.

    Attributes:
        base_url: ``http://host:port``, with the bound port.
        backend: The backend that answers the requests.
        options: The options it runs with.
    """

    def __init__(self, backend: ClaudeCodeBackend, options: GatewayOptions) -> None:
        self.backend = backend
        self.options = options
        self.base_url = ""
        self._stats = GatewayStatistics()
        self._stop = trio.Event()
        self._auth = Authenticator(options.tokens)
        self._loopback = is_loopback(options.host)

    def statistics(self) -> GatewayStatistics:
        """Return a copy of the counts."""
        return attrs.evolve(self._stats)

    def stop(self) -> None:
        """Stop accepting requests; the turns in flight get ``shutdown_grace`` seconds."""
        self._stop.set()

    # --- ASGI ----------------------------------------------------------------------------

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """The ASGI entry point."""
        if scope["type"] == "lifespan":
            await run_lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _http(
        self, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        exchange = _Exchange(scope, receive, send)
        self._stats.active += 1
        try:
            await self._answer(exchange)
        except GatewayError as error:
            if not exchange.started:
                exchange.status = error.status
                await exchange.send_error(error)
        except Exception as exc:
            # A fault of the gateway itself: logged in full, answered without internals.
            _LOG.exception("%s %s failed", exchange.method, exchange.path)
            if not exchange.started:
                await exchange.send_error(error_for(exc))
        finally:
            self._stats.active -= 1
            self._stats.requests += 1
            self._stats.disconnected += exchange.disconnected
            exchange.log()

    async def _answer(self, exchange: _Exchange) -> None:
        path, method = exchange.path, exchange.method
        if path == "/health" and method == "GET":
            await exchange.send_json(200, {"status": "ok"})
            return
        check_origin(
            exchange.headers, loopback=self._loopback, allowed_origins=self.options.allowed_origins
        )
        exchange.cors_origin = exchange.header("origin")
        if method == "OPTIONS" and exchange.cors_origin is not None:
            await exchange.send_preflight()
            return
        exchange.tenant = self._auth.tenant(exchange.headers)
        route = "/v1/models" if path.startswith("/v1/models/") else path
        if route not in _ROUTES:
            if path == "/v1/messages/count_tokens":
                raise GatewayError(
                    404, "count_tokens is not offered: the CLI counts tokens for itself"
                )
            raise GatewayError(404, f"no route {method} {path}")
        if method != _ROUTES[route]:
            raise GatewayError(405, f"{path} takes {_ROUTES[route]}, not {method}")
        if route == "/v1/models":
            await self._models(exchange)
        elif route == "/v1/messages":
            await self._messages(exchange)
        else:
            await self._chat(exchange)

    async def _models(self, exchange: _Exchange) -> None:
        names = list(CLI_MODELS)
        if self.backend.options.model is not None and self.backend.options.model not in names:
            names.insert(0, self.backend.options.model)
        models = [_model_entry(name) for name in names]
        if exchange.path != "/v1/models":
            wanted = exchange.path.removeprefix("/v1/models/")
            # Any name works with --model; an unlisted one is described, not refused.
            await exchange.send_json(200, _model_entry(wanted))
            return
        await exchange.send_json(
            200,
            {
                "object": "list",
                "data": models,
                "has_more": False,
                "first_id": models[0]["id"],
                "last_id": models[-1]["id"],
            },
        )

    async def _messages(self, exchange: _Exchange) -> None:
        request = parse_messages_request(
            await exchange.read_json(self.options.max_body_bytes),
            max_messages=self.options.max_messages,
        )
        exchange.ignored = request.ignored
        events = self._complete(exchange, request.history, request.model, request.system)
        show_tools = self.options.show_cli_tools and exchange.header(CLI_TOOLS_HEADER) != "hide"
        frames = _AnthropicFrames(
            message_id="msg_" + uuid.uuid4().hex, model=request.model, show_cli_tools=show_tools
        )
        await self._reply(exchange, events, frames, stream=request.stream)

    async def _chat(self, exchange: _Exchange) -> None:
        exchange.openai = True
        request = parse_chat_request(
            await exchange.read_json(self.options.max_body_bytes),
            max_messages=self.options.max_messages,
        )
        exchange.ignored = request.ignored
        events = self._complete(exchange, request.history, request.model, request.system)
        frames = _OpenAIFrames(
            completion_id="chatcmpl-" + uuid.uuid4().hex,
            model=request.model,
            created=int(time.time()),
            include_usage=request.include_usage,
        )
        await self._reply(exchange, events, frames, stream=request.stream)

    async def _reply(
        self,
        exchange: _Exchange,
        events: AsyncGenerator[Event, None],
        frames: _Frames,
        *,
        stream: bool,
    ) -> None:
        if not stream:
            finished = await exchange.collect(events)
            if finished is not None:
                await exchange.send_json(200, frames.whole(finished))
            return
        await exchange.stream(
            events,
            frames,
            first_event_wait=self.options.first_event_wait,
            ping_interval=self.options.ping_interval,
        )

    def _complete(
        self,
        exchange: _Exchange,
        history: History,
        model: str,
        system: str | None,
    ) -> AsyncGenerator[Event, None]:
        tenant = exchange.tenant
        assert tenant is not None
        try:
            return self.backend.complete(
                history,
                namespace=tenant.namespace,
                model=None if model == DEFAULT_MODEL else model,
                system_prompt=system,
            )
        except Exception as exc:
            raise error_for(exc) from exc


def _model_entry(name: str) -> dict[str, Any]:
    return {
        "id": name,
        "type": "model",
        "object": "model",
        "display_name": name,
        "created_at": "2026-01-01T00:00:00Z",
        "created": _MODELS_CREATED,
        "owned_by": "anthropic",
    }


class _Frames:
    """How one route shapes a reply: the whole one, or a stream's events, keep-alive and error."""

    def whole(self, events: list[Event]) -> dict[str, Any]:
        raise NotImplementedError

    def start(self) -> list[bytes]:
        raise NotImplementedError

    def feed(self, event: Event) -> list[bytes]:
        raise NotImplementedError

    def finish(self, result: ResultMessage) -> list[bytes]:
        raise NotImplementedError

    def ping(self) -> bytes:
        raise NotImplementedError

    def error(self, error: GatewayError) -> list[bytes]:
        raise NotImplementedError

    def answered_by(self, model: str) -> None:
        """Name the model that answered, when it is known before the stream starts."""


class _AnthropicFrames(_Frames):
    def __init__(self, *, message_id: str, model: str, show_cli_tools: bool) -> None:
        self.message_id, self.model, self.show_cli_tools = message_id, model, show_cli_tools
        self.encoder = MessageStreamEncoder(
            message_id=message_id, model=model, show_cli_tools=show_cli_tools
        )

    def whole(self, events: list[Event]) -> dict[str, Any]:
        return message_json(
            events,
            message_id=self.message_id,
            model=self.model,
            show_cli_tools=self.show_cli_tools,
        )

    def start(self) -> list[bytes]:
        return [sse(kind, data) for kind, data in self.encoder.start()]

    def feed(self, event: Event) -> list[bytes]:
        return [sse(kind, data) for kind, data in self.encoder.feed(event)]

    def finish(self, result: ResultMessage) -> list[bytes]:
        return [sse(kind, data) for kind, data in self.encoder.finish(result)]

    def ping(self) -> bytes:
        return sse("ping", {"type": "ping"})

    def answered_by(self, model: str) -> None:
        self.encoder.answered_by(model)

    def error(self, error: GatewayError) -> list[bytes]:
        return [sse("error", anthropic_error_body(error))]


class _OpenAIFrames(_Frames):
    def __init__(
        self, *, completion_id: str, model: str, created: int, include_usage: bool
    ) -> None:
        self.completion_id, self.model, self.created = completion_id, model, created
        self.encoder = ChatStreamEncoder(
            completion_id=completion_id, model=model, created=created, include_usage=include_usage
        )
        # Started at once: a stream event may be fed before the reply starts (it commits
        # the reply only when it gives content); the first chunk goes out with the start.
        self._first = self.encoder.start()

    def whole(self, events: list[Event]) -> dict[str, Any]:
        return chat_completion(
            events, completion_id=self.completion_id, model=self.model, created=self.created
        )

    @staticmethod
    def _data(chunks: list[dict[str, Any]]) -> list[bytes]:
        return [f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode() for chunk in chunks]

    def start(self) -> list[bytes]:
        return self._data(self._first)

    def feed(self, event: Event) -> list[bytes]:
        return self._data(self.encoder.feed(event))

    def finish(self, result: ResultMessage) -> list[bytes]:
        return [*self._data(self.encoder.finish(result)), b"data: [DONE]\n\n"]

    def ping(self) -> bytes:
        return b": ping\n\n"  # an SSE comment: clients skip it

    def error(self, error: GatewayError) -> list[bytes]:
        return self._data([openai_error_body(error)])


class _Exchange:
    """One request and its reply: what was asked, what was answered, for the log."""

    def __init__(
        self, scope: HTTPScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        self.method = scope["method"]
        self.path = scope["path"]
        self.headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        self._receive = receive
        self._send = send
        self.started_at = trio.current_time()
        self.request_id = "req_" + uuid.uuid4().hex
        self.started = False
        self.status: int | None = None
        self.disconnected = False
        self.openai = self.path.startswith("/v1/chat/") or (
            self.path.startswith("/v1/models") and self.header("anthropic-version") is None
        )
        self.tenant: Tenant | None = None
        self.ignored: tuple[str, ...] = ()
        self.result: ResultMessage | None = None
        self.cors_origin: str | None = None  # an allowed web origin the reply must name
        self.last_sent = self.started_at  # when the last bytes of a stream went out
        self._body_done = False

    def header(self, name: str) -> str | None:
        wanted = name.encode()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.decode("latin-1").strip()
        return None

    async def read_json(self, limit: int) -> object:
        length = self.header("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise GatewayError(413, f"the request body is larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        deadline = trio.current_time() + _BODY_TIMEOUT
        while True:
            with trio.move_on_at(deadline):
                message = await self._receive()
            if trio.current_time() >= deadline:
                raise GatewayError(400, f"the request body took longer than {_BODY_TIMEOUT:g} s")
            if message["type"] == "http.disconnect":
                self.disconnected = True
                raise GatewayError(400, "the client went away while sending the request")
            chunk = message.get("body", b"")
            assert isinstance(chunk, bytes)
            size += len(chunk)
            if size > limit:
                raise GatewayError(413, f"the request body is larger than {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        self._body_done = True
        try:
            return json.loads(b"".join(chunks))
        except (ValueError, UnicodeDecodeError) as exc:
            raise GatewayError(400, f"the request body is not valid JSON: {exc}") from None
        except RecursionError:
            raise GatewayError(400, "the request body is nested too deeply") from None

    async def collect(self, events: AsyncGenerator[Event, None]) -> list[Event] | None:
        """Run the turn to its end; None when the client went away first."""
        collected: list[Event] = []
        failure: BaseException | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_disconnect, nursery.cancel_scope)
            try:
                async with _closing(events):
                    async for event in events:
                        if not isinstance(event, StreamEvent):  # the reply is whole
                            collected.append(event)
            except Exception as exc:
                failure = exc  # raised below: raised in here, a nursery would group it
            nursery.cancel_scope.cancel()
        if self.disconnected:
            return None
        if failure is not None:
            raise error_for(failure) from failure
        last = collected[-1] if collected else None
        if not isinstance(last, ResultMessage):
            raise GatewayError(500, "the turn ended without a result")
        self.result = last
        return collected

    async def stream(
        self,
        events: AsyncGenerator[Event, None],
        frames: _Frames,
        *,
        first_event_wait: float,
        ping_interval: float,
    ) -> None:
        """Stream a turn; an error before the first event keeps its own status."""
        send_item, receive_item = trio.open_memory_channel[Event | BaseException](1)
        early: GatewayError | None = None
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watch_disconnect, nursery.cancel_scope)
            nursery.start_soon(_produce, events, send_item)
            commit_at = trio.current_time() + first_event_wait
            async with receive_item:
                while True:
                    # A ping goes out when nothing was sent for a while, events or not.
                    wait_until = self.last_sent + ping_interval if self.started else commit_at
                    item: Event | BaseException | None = None
                    with trio.move_on_at(wait_until):
                        try:
                            item = await receive_item.receive()
                        except trio.EndOfChannel:
                            item = GatewayError(500, "the turn ended without a result")
                    if item is None:
                        if self.started:
                            await self._body(frames.ping())
                        else:
                            await self._start_stream(frames)
                        continue
                    if isinstance(item, BaseException) and not self.started:
                        early = error_for(item)
                        early.__cause__ = item
                        break
                    if await self._stream_item(item, frames):
                        break
            # Stop watching before the last send: ending the response makes hypercorn
            # report a disconnect at once.
            nursery.cancel_scope.cancel()
        if early is not None and not self.disconnected:
            raise early
        if self.started and not self.disconnected:
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _stream_item(self, item: Event | BaseException, frames: _Frames) -> bool:
        """Send what *item* gives; True when the stream is complete."""
        if isinstance(item, BaseException):
            error = error_for(item)
            self.status = error.status
            for frame in frames.error(error):
                await self._body(frame)
            return True
        if not self.started:
            if isinstance(item, SystemMessage):
                return False  # a retry notice: an error that follows keeps its status
            if isinstance(item, AssistantMessage):
                frames.answered_by(item.model)
            if isinstance(item, StreamEvent):
                model = _model_started(item)
                if model is not None:
                    frames.answered_by(model)
                # A stream event commits the reply only with content (a first delta): an
                # error that comes before keeps its status.
                out = frames.feed(item)
                if not out:
                    return False
                await self._start_stream(frames)
                for frame in out:
                    await self._body(frame)
                return False
            await self._start_stream(frames)
        for frame in frames.feed(item):
            await self._body(frame)
        if isinstance(item, ResultMessage):
            self.result = item
            for frame in frames.finish(item):
                await self._body(frame)
            return True
        return False

    async def _start_stream(self, frames: _Frames) -> None:
        await self._start(
            200,
            [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"),
            ],
        )
        for frame in frames.start():
            await self._body(frame)

    async def _body(self, data: bytes) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": True})
        self.last_sent = trio.current_time()

    async def _start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        self.started = True
        self.status = status
        extra = [
            (b"request-id", self.request_id.encode()),
            (b"x-request-id", self.request_id.encode()),
        ]
        if self.ignored:
            extra.append((b"claude-trio-ignored", ", ".join(self.ignored).encode()))
        if self.cors_origin is not None:
            extra += [
                (b"access-control-allow-origin", self.cors_origin.encode("latin-1")),
                (b"access-control-expose-headers", _EXPOSED_HEADERS),
                (b"vary", b"origin"),
            ]
        await self._send(
            {"type": "http.response.start", "status": status, "headers": [*headers, *extra]}
        )

    async def send_json(
        self, status: int, body: Mapping[str, Any], headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        await self._start(status, [(b"content-type", b"application/json"), *(headers or [])])
        await self._send({"type": "http.response.body", "body": data, "more_body": False})

    async def send_preflight(self) -> None:
        """Answer a browser's CORS preflight from an allowed origin (before any token)."""
        asked = self.header("access-control-request-headers") or ""
        await self._start(
            204,
            [
                (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                (b"access-control-allow-headers", asked.encode("latin-1")),
                (b"access-control-max-age", b"600"),
            ],
        )
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})

    async def send_error(self, error: GatewayError) -> None:
        if self.disconnected:
            self.status = 499
            return
        body = openai_error_body(error) if self.openai else anthropic_error_body(error)
        if not self.openai:
            body["request_id"] = self.request_id
        headers = list(error.headers)
        if error.status == 405:
            headers.append((b"allow", _ROUTES.get(self.path, "GET").encode()))
        await self.send_json(error.status, body, headers)

    async def _watch_disconnect(self, cancel_scope: trio.CancelScope) -> None:
        if not self._body_done:
            return
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.disconnected = True
        cancel_scope.cancel()

    def log(self) -> None:
        status = 499 if self.disconnected else self.status
        usage = self.result.usage if self.result is not None else None
        _LOG.info(
            "%s %s %s %.3fs in=%s out=%s tenant=%s",
            self.method,
            repr(self.path)[1:-1],  # escaped: a decoded path could hold a line break
            status if status is not None else "-",
            trio.current_time() - self.started_at,
            usage.input_tokens if usage is not None else "-",
            usage.output_tokens if usage is not None else "-",
            self.tenant.name if self.tenant is not None else "-",
        )


def _model_started(event: StreamEvent) -> str | None:
    """The model a main-thread ``message_start`` names, if *event* is one."""
    if event.parent_tool_use_id is not None or event.event.get("type") != "message_start":
        return None
    message = event.event.get("message")
    model = message.get("model") if isinstance(message, Mapping) else None
    return model if isinstance(model, str) else None


async def _produce(
    events: AsyncGenerator[Event, None], send_item: trio.MemorySendChannel[Event | BaseException]
) -> None:
    async with send_item, _closing(events):
        try:
            async for event in events:
                await send_item.send(event)
        except Exception as exc:
            await send_item.send(exc)


@asynccontextmanager
async def _closing(events: AsyncGenerator[Event, None]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        with trio.CancelScope(shield=True):
            await events.aclose()


def _server_config(options: GatewayOptions) -> hypercorn.config.Config:
    try:
        import hypercorn.config
    except ImportError as exc:
        raise ImportError(
            "the gateway needs hypercorn: pip install 'claude-trio[gateway]'"
        ) from exc
    config = hypercorn.config.Config()
    config.accesslog = None
    config.errorlog = logging.getLogger("claude_trio.gateway.server")
    config.graceful_timeout = options.shutdown_grace
    config.include_server_header = False
    # No cap of hypercorn's own below the gateway's: the gateway answers 413 itself.
    config.h11_max_incomplete_size = 64 * 1024
    return config


@asynccontextmanager
async def open_gateway(
    backend_options: BackendOptions, options: GatewayOptions | None = None
) -> AsyncIterator[Gateway]:
    """Serve the gateway for the duration of the block.

    The block owns a nursery holding the backend and hypercorn's trio worker. Leaving it
    stops the server (the turns in flight get ``shutdown_grace`` seconds, less when the
    block is cancelled), then closes every ``claude`` process.

    Args:
        backend_options: How the backend runs the CLI (its ``cwd``, pool, permissions).
        options: Where to listen, the tokens and the limits; the defaults bind a free
            port on 127.0.0.1 with no token.

    Yields:
        The running `Gateway`; its `Gateway.base_url` has the bound port.

    Raises:
        OSError: The address could not be bound.
        ImportError: hypercorn is not installed (``pip install 'claude-trio[gateway]'``).
    """
    check_trio("open_gateway")
    options = options if options is not None else GatewayOptions()
    config = _server_config(options)
    import hypercorn.trio

    with single_error_unwrapped():
        async with ClaudeCodeBackend(backend_options) as backend, trio.open_nursery() as nursery:
            gateway = Gateway(backend, options)
            config.bind = [f"fd://{_listening_socket(options.host, options.port).detach()}"]
            with one_start_error():
                binds: list[str] = await nursery.start(
                    _serve, hypercorn.trio.serve, gateway, config
                )
            gateway.base_url = binds[0]
            try:
                yield gateway
            finally:
                gateway.stop()


def _listening_socket(host: str, port: int) -> socket.socket:
    """Bind the gateway's socket; hypercorn then takes it over (``fd://``).

    Bound here rather than by hypercorn, which leaves the socket of a failed bind open
    until the garbage collector finds it.
    """
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


async def _serve(
    serve: Callable[..., Awaitable[None]],
    gateway: Gateway,
    config: hypercorn.config.Config,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    await serve(
        gateway, config, shutdown_trigger=gateway._stop.wait, task_status=task_status, mode="asgi"
    )


async def serve_gateway(
    backend_options: BackendOptions,
    options: GatewayOptions | None = None,
    *,
    task_status: trio.TaskStatus[Gateway] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the gateway until `Gateway.stop` is called or the caller cancels.

    Start it with ``await nursery.start(serve_gateway, ...)`` to get the `Gateway` once it
    listens. After `Gateway.stop`, it returns when the turns in flight have finished
    (within ``shutdown_grace``) and every process is closed.
    """
    async with open_gateway(backend_options, options) as gateway:
        task_status.started(gateway)
        await gateway._stop.wait()
