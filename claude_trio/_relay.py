"""The loopback relay: the CLI's API traffic, forwarded unchanged, read on the side.

`open_relay` serves HTTP/1.1 on 127.0.0.1 (h11 on trio sockets) in a nursery it owns.
Each conversation gets a *route*: a path prefix ``/r/<random token>`` that its CLI's
``ANTHROPIC_BASE_URL`` points at, and the upstream its requests go to (the address the
CLI would have used). A request to a route is sent upstream (httpcore2, the transport of
httpx2, with httpx2's TLS trust and the environment's proxies) with its method, the rest
of its path, its query, every header but the hop-by-hop ones, and its body, all as the
CLI sent them; the response comes back the same way, its bytes forwarded as they arrive,
never buffered whole.

On the side, for the requests of the conversation's turns (`claude_trio._relay_rules`),
the relay decodes the streamed response (SSE) and hands each API stream event to the
route's `RelaySink` before the CLI gets the bytes that carry it. Every response's
rate-limit headers go to the sink too. Headers, the auth header included, and bodies are
never logged or stored.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import secrets
import urllib.parse
import urllib.request
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol, final

import attrs
import trio

from ._errors import APIConnectionError
from ._ratelimits import RateLimits, rate_limits_from_headers
from ._relay_rules import RequestRole, ThreadTracker, is_turn_request
from ._sse import ContentDecoder, SseDecoder, content_decoder, parse_stream_event
from ._util import check_trio, single_error_unwrapped

if TYPE_CHECKING:
    import ssl

    import h11
    import httpcore2

_LOGGER: Final = logging.getLogger("claude_trio.relay")
_ROUTE_PREFIX: Final = "/r/"
_FIRST_PARTY_HOST: Final = "api.anthropic.com"
_DEFAULT_UPSTREAM: Final = f"https://{_FIRST_PARTY_HOST}"
_READ_SIZE: Final = 65536
_MAX_HEAD: Final = 64 * 1024
# How long the rest of a refused request body is read (and dropped) before closing.
_DRAIN_WAIT: Final = 2.0
# Headers that describe one hop, not the message (RFC 9110 section 7.6.1), and Host,
# which is set for the upstream.
_HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"host",
    }
)


class RelaySink(Protocol):
    """What a relay route reports to: a conversation, or a caller's own object."""

    async def partial_event(
        self, event: dict[str, Any], parent_tool_use_id: str | None, request_id: int
    ) -> None:
        """Take one API stream event of a turn's response, before the CLI gets it.

        *request_id* tells the responses apart: it is the same for every event of one
        response, and new (increasing) for each request the relay forwards.
        """

    def rate_limits(self, limits: RateLimits) -> None:
        """Take the rate-limit state a response's headers gave."""

    async def upstream_failed(self, error: APIConnectionError) -> None:
        """Learn that a turn's request could not reach the upstream."""


@attrs.frozen(kw_only=True)
class RelayStatistics:
    """Counts of what a relay has done so far.

    Attributes:
        requests: Requests received on a route and sent upstream.
        turn_requests: Of those, the requests of turns (main thread or sub-agent).
        side_requests: Of those, the CLI's requests for itself: forwarded, not read.
        partial_events: Stream events handed to sinks.
        undecoded: Turn responses whose content encoding the relay cannot decode:
            forwarded, not read.
        upstream_errors: Requests the upstream could not be reached for (answered 502).
        rejected: Requests refused without going upstream: an unknown route (404), a
            body over the limit (413), a malformed request (400).
        in_flight: Requests being served now.
    """

    requests: int
    turn_requests: int
    side_requests: int
    partial_events: int
    undecoded: int
    upstream_errors: int
    rejected: int
    in_flight: int


@final
class RelayRoute:
    """One conversation's way through the relay; get it from `Relay.route`.

    Attributes:
        base_url: The value for the CLI's ``ANTHROPIC_BASE_URL``.
        upstream: Where its requests go.
    """

    def __init__(self, relay: Relay, token: str, upstream: str, sink: RelaySink) -> None:
        self.base_url = f"{relay.base_url}{_ROUTE_PREFIX}{token}"
        self.upstream = upstream
        self._relay = relay
        self._token = token
        self._sink = sink
        self._threads = ThreadTracker()
        self._closed = False

    def close(self) -> None:
        """Stop taking requests; those in flight are cut off."""
        if not self._closed:
            self._closed = True
            self._relay._routes.pop(self._token, None)
            for scope in self._relay._scopes.pop(self._token, set()):
                scope.cancel()

    def __enter__(self) -> RelayRoute:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@final
class Relay:
    """A running relay; get one from `open_relay`.

    Attributes:
        base_url: ``http://127.0.0.1:PORT``, where it listens.
        max_request_bytes: The largest request body it forwards.
    """

    def __init__(self, upstreams: _Upstreams, *, max_request_bytes: int) -> None:
        self.base_url = ""
        self.max_request_bytes = max_request_bytes
        self._upstreams = upstreams
        self._routes: dict[str, RelayRoute] = {}
        self._scopes: dict[str, set[trio.CancelScope]] = {}
        self._latest: RateLimits | None = None
        self._counts = dict.fromkeys(
            (
                "requests",
                "turn_requests",
                "side_requests",
                "partial_events",
                "undecoded",
                "upstream_errors",
                "rejected",
            ),
            0,
        )
        self._in_flight = 0
        self._request_ids = itertools.count(1)

    def route(self, *, upstream: str | None, sink: RelaySink) -> RelayRoute:
        """Open a route to *upstream* whose turns report to *sink*.

        Use it as a context manager, or call `RelayRoute.close`.

        Args:
            upstream: The API's base URL (``http`` or ``https``, a path prefix allowed);
                None or "" for ``https://api.anthropic.com``.
            sink: Gets the partial events, the rate limits and the upstream failures.

        Raises:
            ValueError: If *upstream* is not an http(s) URL.
        """
        base = (upstream or _DEFAULT_UPSTREAM).rstrip("/")
        parts = urllib.parse.urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the relay's upstream must be an http(s) URL, got {upstream!r}")
        token = secrets.token_urlsafe(18)
        route = RelayRoute(self, token, base, sink)
        self._routes[token] = route
        return route

    def rate_limits(self) -> RateLimits | None:
        """The rate-limit state of the latest response that carried any, on any route."""
        return self._latest

    def statistics(self) -> RelayStatistics:
        """Return counts of what the relay has done so far."""
        return RelayStatistics(in_flight=self._in_flight, **self._counts)

    # --- one connection ------------------------------------------------------------------

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        import h11

        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
        try:
            async with stream:
                try:
                    while await self._serve_request(conn, stream):
                        conn.start_next_cycle()
                except h11.RemoteProtocolError as exc:
                    self._counts["rejected"] += 1
                    _LOGGER.debug("relay: malformed HTTP from a client: %s", exc)
                    if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                        await _send_error(
                            conn, stream, 400, "invalid_request_error", "malformed HTTP"
                        )
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, h11.ProtocolError):
            pass  # the CLI went away, or broke the protocol past answering
        except Exception:
            # A bug here must not take the backend down with it; no request detail is
            # logged (it may hold credentials).
            _LOGGER.exception("relay: serving a connection failed")

    async def _serve_request(self, conn: h11.Connection, stream: trio.SocketStream) -> bool:
        """Serve one request on *conn*; whether the connection can take another."""
        import h11

        request = await _next_event(conn, stream)
        if not isinstance(request, h11.Request):
            return False
        target = request.target.decode("latin-1")
        path, _, query = target.partition("?")
        token, route_path = _split_route(path)
        route = self._routes.get(token) if token is not None else None
        body = await self._read_body(conn, stream)
        if body is None:
            self._counts["rejected"] += 1
            await _send_error(
                conn, stream, 413, "request_too_large", "request body too large", close=True
            )
            # A client still sending would see a reset instead of the answer: let it end.
            with trio.move_on_after(_DRAIN_WAIT):
                while await stream.receive_some(_READ_SIZE):
                    pass
            return False
        if route is None:
            self._counts["rejected"] += 1
            await _send_error(conn, stream, 404, "not_found_error", "no such relay route")
            return conn.our_state is h11.DONE and conn.their_state is h11.DONE
        self._counts["requests"] += 1
        self._in_flight += 1
        scope = trio.CancelScope()
        self._scopes.setdefault(route._token, set()).add(scope)
        try:
            with scope:
                await self._forward(route, conn, stream, request, route_path, query, body)
        finally:
            self._in_flight -= 1
            self._scopes.get(route._token, set()).discard(scope)
        # A route closed just after its response ended leaves the connection usable.
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _read_body(self, conn: h11.Connection, stream: trio.SocketStream) -> bytes | None:
        """The request's whole body, or None if it is over the limit."""
        import h11

        chunks: list[bytes] = []
        size = 0
        while True:
            event = await _next_event(conn, stream)
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > self.max_request_bytes:
                    return None
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                return b"".join(chunks)
            else:
                raise trio.BrokenResourceError("the client closed during its request")

    async def _forward(
        self,
        route: RelayRoute,
        conn: h11.Connection,
        stream: trio.SocketStream,
        request: h11.Request,
        route_path: str,
        query: str,
        body: bytes,
    ) -> None:
        method = request.method.decode("latin-1")
        raw_headers = list(request.headers.raw_items())
        role = RequestRole.SIDE
        parent: str | None = None
        if is_turn_request(method, route_path, raw_headers):
            classified = route._threads.classify(raw_headers, _json_object(body))
            role, parent = classified.role, classified.parent_tool_use_id
        self._counts["side_requests" if role is RequestRole.SIDE else "turn_requests"] += 1
        url = route.upstream + route_path + ("?" + query if query else "")
        headers = [(name, value) for name, value in raw_headers if name.lower() not in _HOP_BY_HOP]
        try:
            response = await self._upstreams.send(method, url, headers, body)
        except _UPSTREAM_ERRORS as exc:
            self._counts["upstream_errors"] += 1
            reason = _reason(exc)
            where = _shown(route.upstream)
            _LOGGER.warning("relay: upstream %s unreachable: %s", where, reason)
            if role is not RequestRole.SIDE:
                error = APIConnectionError(
                    f"the API at {where} could not be reached through the relay: {reason}"
                )
                await route._sink.upstream_failed(error)
            await _send_error(
                conn, stream, 502, "api_error", f"claude-trio relay: upstream unreachable: {reason}"
            )
            return
        try:
            await self._relay_response(route, conn, stream, response, role, parent)
        finally:
            await response.aclose()  # shielded inside httpcore2
            if role is RequestRole.MAIN:
                route._threads.end_of_stream()

    async def _relay_response(
        self,
        route: RelayRoute,
        conn: h11.Connection,
        stream: trio.SocketStream,
        response: httpcore2.Response,
        role: RequestRole,
        parent: str | None,
    ) -> None:
        """Send *response* to the CLI as it arrives, its stream events to the sink first."""
        import h11

        request_id = next(self._request_ids)

        limits = rate_limits_from_headers(response.status, response.headers, now=datetime.now(UTC))
        if limits is not None:
            self._latest = limits
            route._sink.rate_limits(limits)
        reader = None
        if (
            role is not RequestRole.SIDE
            and response.status == 200
            and _header(response.headers, b"content-type").startswith("text/event-stream")
        ):
            reader = _StreamReader.open(_header(response.headers, b"content-encoding") or None)
            if reader is None:
                self._counts["undecoded"] += 1
        reason = response.extensions.get("reason_phrase", b"")
        head = h11.Response(
            status_code=response.status,
            headers=[
                (name, value) for name, value in response.headers if name.lower() not in _HOP_BY_HOP
            ],
            reason=reason if isinstance(reason, bytes) else b"",
        )
        await stream.send_all(conn.send(head))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_cancel_on_eof, stream, conn, nursery.cancel_scope)
            try:
                async with contextlib.aclosing(_chunks(response)) as chunks:
                    async for chunk in chunks:
                        if reader is not None:
                            for event in reader.feed(chunk):
                                if role is RequestRole.MAIN:
                                    route._threads.observe(event)
                                self._counts["partial_events"] += 1
                                await route._sink.partial_event(event, parent, request_id)
                        await stream.send_all(conn.send(h11.Data(data=chunk)))
                await stream.send_all(conn.send(h11.EndOfMessage()))
            except _UPSTREAM_ERRORS as exc:
                # Cut off upstream: the CLI sees its response end early, as it would.
                _LOGGER.warning("relay: the upstream response broke off: %s", _reason(exc))
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass  # the CLI went away
            nursery.cancel_scope.cancel()


@attrs.define
class _StreamReader:
    """Decodes one streamed response body into API stream events."""

    decoder: ContentDecoder
    sse: SseDecoder
    broken: bool = False

    @classmethod
    def open(cls, content_encoding: str | None) -> _StreamReader | None:
        decoder = content_decoder(content_encoding)
        return None if decoder is None else cls(decoder, SseDecoder())

    def feed(self, chunk: bytes) -> Iterator[dict[str, Any]]:
        """The stream events completed by *chunk*, decoded piece by piece (a compressed
        chunk may decode to much more); none once the body proved corrupt or an event
        outgrew its bound."""
        if self.broken or self.sse.overflowed:
            return
        pieces = self.decoder.decode(chunk)
        while not self.sse.overflowed:
            try:
                piece = next(pieces, None)
            except ValueError:
                self.broken = True
                return
            if piece is None:
                return
            for message in self.sse.feed(piece):
                event = parse_stream_event(message)
                if event is not None:
                    yield event


async def _next_event(conn: h11.Connection, stream: trio.SocketStream) -> Any:
    import h11

    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        data = await stream.receive_some(_READ_SIZE)
        conn.receive_data(data)


async def _cancel_on_eof(
    stream: trio.SocketStream, conn: h11.Connection, cancel_scope: trio.CancelScope
) -> None:
    """Cut the response off when the client closes its side (the CLI aborted)."""
    while True:
        try:
            data = await stream.receive_some(_READ_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            data = b""
        if not data:
            cancel_scope.cancel()
            return
        conn.receive_data(data)  # a next request, sent early: kept for the next cycle


async def _send_error(
    conn: h11.Connection,
    stream: trio.SocketStream,
    status: int,
    kind: str,
    message: str,
    *,
    close: bool = False,
) -> None:
    import h11

    body = json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if close:
        headers.append((b"connection", b"close"))
    head = h11.Response(status_code=status, headers=headers)
    await stream.send_all(conn.send(head) + conn.send(h11.Data(data=body)))
    await stream.send_all(conn.send(h11.EndOfMessage()))


def is_first_party(base_url: str | None) -> bool:
    """Whether *base_url* (an ``ANTHROPIC_BASE_URL``; None when unset) is the Anthropic
    API itself, as the CLI decides it: by the URL's host and port alone."""
    return not base_url or urllib.parse.urlsplit(base_url).netloc == _FIRST_PARTY_HOST


def _chunks(response: httpcore2.Response) -> AsyncGenerator[bytes, None]:
    """The response body's chunks, as they arrive; its own iterator is closed with it."""
    stream = response.stream
    if not isinstance(stream, AsyncIterable):
        raise TypeError("an async upstream gives async streams")
    return _iterate(stream)


async def _iterate(stream: AsyncIterable[bytes]) -> AsyncGenerator[bytes, None]:
    iterator = aiter(stream)
    try:
        async for chunk in iterator:
            yield chunk
    finally:
        if isinstance(iterator, AsyncGenerator):
            await iterator.aclose()


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return ""


def _split_route(path: str) -> tuple[str | None, str]:
    """``/r/<token>/v1/messages`` -> (token, ``/v1/messages``)."""
    if not path.startswith(_ROUTE_PREFIX):
        return None, path
    token, slash, rest = path[len(_ROUTE_PREFIX) :].partition("/")
    return token, slash + rest


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _reason(exc: BaseException) -> str:
    """What went wrong (an upstream error names no header and no body)."""
    text = str(exc) or str(exc.__cause__ or "")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _shown(url: str) -> str:
    """*url* without a user name or password it may hold, for messages and logs."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


@asynccontextmanager
async def open_relay(
    *,
    max_request_bytes: int = 32 * 1024 * 1024,
    connect_timeout: float = 10.0,
    read_timeout: float = 600.0,
) -> AsyncIterator[Relay]:
    """Serve a relay on 127.0.0.1 for the duration of the block.

    The block owns a nursery with the listener and a task per connection, and the
    upstream client. Leaving it, normally, by an error or by cancellation, cuts the
    requests in flight and closes everything.

    Args:
        max_request_bytes: The largest request body forwarded; a larger one is answered
            413 (the Messages API's own limit is 32 MB).
        connect_timeout: Seconds to connect to an upstream; then the request is
            answered 502 and its turn gets `APIConnectionError`.
        read_timeout: Seconds an upstream may send nothing before its response is
            cut off.

    Yields:
        The running `Relay`.

    Raises:
        ImportError: If ``httpx2`` or ``h11`` is not installed
            (``pip install 'claude-trio[relay]'``).
        ValueError: If a bound is not positive.
    """
    check_trio("open_relay")
    for name, value in (
        ("max_request_bytes", max_request_bytes),
        ("connect_timeout", connect_timeout),
        ("read_timeout", read_timeout),
    ):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    try:
        import h11  # noqa: F401
        import httpcore2  # noqa: F401
        import httpx2
    except ImportError as exc:
        raise ImportError(
            "partial messages need the relay's packages: pip install 'claude-trio[relay]'"
        ) from exc
    upstreams = _Upstreams(
        httpx2.create_ssl_context(trust_env=True),
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
    )
    async with upstreams:
        relay = Relay(upstreams, max_request_bytes=int(max_request_bytes))
        with single_error_unwrapped():
            async with trio.open_nursery() as nursery:
                listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
                port = listeners[0].socket.getsockname()[1]
                relay.base_url = f"http://127.0.0.1:{port}"
                nursery.start_soon(_serve_listeners, relay, listeners)
                try:
                    yield relay
                finally:
                    nursery.cancel_scope.cancel()


class _Upstreams:
    """Connection pools to the upstreams: one direct, one per proxy the environment names
    (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, less ``NO_PROXY``)."""

    def __init__(
        self, ssl_context: ssl.SSLContext, *, connect_timeout: float, read_timeout: float
    ) -> None:
        self._ssl_context = ssl_context
        self._pools: dict[str | None, httpcore2.AsyncConnectionPool] = {}
        self._proxies = urllib.request.getproxies()
        self._timeouts = {
            "connect": connect_timeout,
            "pool": connect_timeout,
            "read": read_timeout,
            "write": read_timeout,
        }

    async def send(
        self, method: str, url: str, headers: Sequence[tuple[bytes, bytes]], body: bytes
    ) -> httpcore2.Response:
        """Send one request; the response's body streams (close the response)."""
        import httpcore2

        target = httpcore2.URL(url)
        netloc = target.host if target.port is None else b"%s:%d" % (target.host, target.port)
        request = httpcore2.Request(
            method,
            target,
            headers=[(b"Host", netloc), *headers],
            content=body,
            extensions={"timeout": self._timeouts},
        )
        response: httpcore2.Response = await self._pool(url).handle_async_request(request)
        return response

    def _pool(self, url: str) -> httpcore2.AsyncConnectionPool:
        import httpcore2

        parts = urllib.parse.urlsplit(url)
        proxy = self._proxies.get(parts.scheme) or self._proxies.get("all")
        if proxy and urllib.request.proxy_bypass(parts.netloc):
            proxy = None
        if proxy not in self._pools:
            self._pools[proxy] = (
                httpcore2.AsyncConnectionPool(ssl_context=self._ssl_context)
                if proxy is None
                else httpcore2.AsyncHTTPProxy(proxy_url=proxy, ssl_context=self._ssl_context)
            )
        return self._pools[proxy]

    async def __aenter__(self) -> _Upstreams:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        with trio.CancelScope(shield=True):
            for pool in self._pools.values():
                await pool.aclose()


def _upstream_errors() -> tuple[type[BaseException], ...]:
    try:
        import httpcore2
    except ImportError:
        return (OSError,)
    return (
        httpcore2.TimeoutException,
        httpcore2.NetworkError,
        httpcore2.ProtocolError,
        httpcore2.ProxyError,
        httpcore2.UnsupportedProtocol,
        OSError,
    )


_UPSTREAM_ERRORS: Final = _upstream_errors()


async def _serve_listeners(relay: Relay, listeners: Sequence[trio.SocketListener]) -> None:
    await trio.serve_listeners(relay._serve_connection, list(listeners))
