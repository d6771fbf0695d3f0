"""The fake ``claude``'s client of the Messages API: one HTTP/1.1 request, SSE parsed.

Stdlib asyncio streams only. A request is ``POST <base>/v1/messages?beta=true`` with the
CLI's headers (FACTS.md §10); a streamed answer is folded into a message as it arrives,
so an interrupt can still record the part that came. Errors become `ApiError`, which says
whether the CLI would retry it and which record and screen text it ends a turn with
(FACTS.md §8).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ._fake_records import BETAS, JsonObject
from ._fake_screen import VERSION

_RETRYABLE: Final = frozenset({401, 408, 409, 429})
_SERVER_ISSUE: Final = "This is a server-side issue, usually temporary — try again in a moment."


_LONGEST_RETRY_AFTER: Final = 60.0


class ApiError(Exception):
    """A request that failed, and how the CLI reports it.

    Attributes:
        status: The HTTP status, or None when no answer came.
        error_type: The API's ``error.type``.
        message: The API's ``error.message`` (or the connection error).
        request_id: The answer's ``request-id`` header.
        retry_after: Seconds from the ``retry-after`` header.
        refused: The connection was refused.
        in_stream: The error came as an SSE ``error`` event after a 200.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        refused: bool = False,
        in_stream: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after
        self.refused = refused
        self.in_stream = in_stream

    @property
    def retryable(self) -> bool:
        """Whether the CLI tries the request again (connection errors included).

        A ``retry-after`` over a minute is not waited for: the error shows at once.
        """
        if self.retry_after is not None and self.retry_after > _LONGEST_RETRY_AFTER:
            return False
        return self.status is None or self.status in _RETRYABLE or self.status >= 500


def error_text(error: ApiError, *, gateway: str | None, repeated_529: bool) -> tuple[str, str]:
    """The record's ``error`` field and the text the CLI shows for *error*."""
    if error.status is None:
        if error.refused:
            text = (
                "API Error: Connection refused — a firewall or proxy may be blocking it"
                " (ECONNREFUSED)"
            )
        else:
            text = f"API Error: Connection error. ({error.message})"
        return "server_error", text
    if error.status == 401:
        return "authentication_failed", "Invalid API key · Fix external API key"
    if error.status == 429:
        return "rate_limit", f"API Error: Request rejected (429) · {error.message}"
    suffix = f" If it persists, check your inference gateway ({gateway})." if gateway else ""
    if error.status == 529 and repeated_529:
        return "server_error", (
            "API Error: Repeated 529 Overloaded errors. The API is at capacity — this is usually"
            " temporary. Try again in a moment." + suffix
        )
    if error.status >= 500:
        message = error.message.rstrip(".")
        return "server_error", f"API Error: {error.status} {message}. {_SERVER_ISSUE}{suffix}"
    return "unknown", f"API Error: {error.status} {error.message}"


@dataclass
class StreamState:
    """A message as it streams in; on an interrupt, what had come so far.

    Attributes:
        message: ``id``, ``model``, ``content`` (blocks so far), ``stop_reason``, ``usage``.
        request_id: The ``request-id`` header of the answer.
        stream_ms: Per block index, how long its deltas took to arrive (ms).
        deltas: How many content deltas arrived (the spinner's token count).
        listener: Called after each content delta.
    """

    message: JsonObject = field(default_factory=dict)
    request_id: str | None = None
    stream_ms: dict[int, int] = field(default_factory=dict)
    deltas: int = 0
    listener: Callable[[], None] | None = None
    _json: dict[int, str] = field(default_factory=dict)
    _started: dict[int, float] = field(default_factory=dict)

    def reset(self) -> None:
        """Forget an attempt that failed, before the next one."""
        self.message = {}
        self.request_id = None
        self.stream_ms = {}
        self.deltas = 0
        self._json = {}
        self._started = {}

    @property
    def started(self) -> bool:
        """Whether ``message_start`` arrived."""
        return "id" in self.message

    def feed(self, event: str, data: Mapping[str, Any]) -> bool:
        """Fold one SSE event in; return True at ``message_stop``.

        Raises:
            ApiError: For an ``error`` event.
        """
        kind = data.get("type", event)
        if kind == "message_start":
            self.message = dict(data.get("message", {}))
            self.message["content"] = []
        elif kind == "content_block_start":
            self.message.setdefault("content", []).append(dict(data.get("content_block", {})))
            self._started[int(data.get("index", 0))] = time.monotonic()
        elif kind == "content_block_delta":
            self._delta(int(data.get("index", 0)), data.get("delta", {}))
        elif kind == "content_block_stop":
            self._stop_block(int(data.get("index", 0)))
        elif kind == "message_delta":
            self.message.update(data.get("delta", {}))
            self.message["usage"] = {**self.message.get("usage", {}), **data.get("usage", {})}
        elif kind == "message_stop":
            return True
        elif kind == "error":
            error = data.get("error", {})
            raise ApiError(
                str(error.get("message", "stream error")),
                status=529 if error.get("type") == "overloaded_error" else 500,
                error_type=error.get("type"),
                request_id=self.request_id,
                in_stream=True,
            )
        return False

    def _delta(self, index: int, delta: Mapping[str, Any]) -> None:
        blocks = self.message.setdefault("content", [])
        if index >= len(blocks):
            return
        block = blocks[index]
        self.deltas += 1
        if self.listener is not None:
            self.listener()
        match delta.get("type"):
            case "text_delta":
                block["text"] = block.get("text", "") + delta.get("text", "")
            case "thinking_delta":
                block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
            case "signature_delta":
                block["signature"] = delta.get("signature", "")
            case "input_json_delta":
                self._json[index] = self._json.get(index, "") + delta.get("partial_json", "")
                block["input"] = _loads_object(self._json[index])

    def _stop_block(self, index: int) -> None:
        started = self._started.get(index)
        if started is not None:
            self.stream_ms[index] = int((time.monotonic() - started) * 1000)


def _loads_object(text: str) -> JsonObject:
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class ApiClient:
    """Sends the CLI's requests to ``ANTHROPIC_BASE_URL``.

    Args:
        base_url: The API's base URL.
        api_key: Sent as ``x-api-key`` when set.
        session_id: Sent as ``X-Claude-Code-Session-Id``.
        entrypoint: For the ``User-Agent``.
    """

    def __init__(
        self, base_url: str, *, api_key: str | None, session_id: str, entrypoint: str
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname or "api.anthropic.com"
        self._port = parsed.port or (443 if self._https else 80)
        self._path = parsed.path.rstrip("/") + "/v1/messages?beta=true"
        self._api_key = api_key
        self._session_id = session_id
        self._entrypoint = entrypoint
        self.gateway = None if self._host == "api.anthropic.com" else f"{self._host}:{self._port}"

    async def create(self, body: Mapping[str, Any], state: StreamState) -> None:
        """Send one request and fold its answer into *state*.

        A streamed answer is read to ``message_stop``; a JSON one is taken whole.

        Raises:
            ApiError: For an HTTP error, an SSE ``error`` event, or a failed connection.
        """
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            reader, writer = await asyncio.open_connection(
                self._host, self._port, ssl=True if self._https else None
            )
        except ConnectionRefusedError as exc:
            raise ApiError(str(exc), refused=True) from exc
        except OSError as exc:
            raise ApiError(str(exc)) from exc
        try:
            writer.write(self._head(len(payload)) + payload)
            await writer.drain()
            status, headers = await _read_head(reader)
            state.request_id = headers.get("request-id")
            if status >= 400:
                raise _http_error(status, headers, await _read_all(reader, headers))
            if headers.get("content-type", "").startswith("text/event-stream"):
                await _read_stream(reader, headers, state)
            else:
                message = json.loads(await _read_all(reader, headers))
                state.message = dict(message)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            raise ApiError(f"connection error: {exc}") from exc
        finally:
            writer.close()

    def _head(self, length: int) -> bytes:
        headers = {
            "Host": f"{self._host}:{self._port}",
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": f"claude-cli/{VERSION} (external, {self._entrypoint})",
            "X-Claude-Code-Session-Id": self._session_id,
            "X-Stainless-Arch": "x64",
            "X-Stainless-Lang": "js",
            "X-Stainless-OS": "Linux",
            "X-Stainless-Package-Version": "0.128.0",
            "X-Stainless-Retry-Count": "0",
            "X-Stainless-Runtime": "node",
            "X-Stainless-Timeout": "600",
            "anthropic-beta": ",".join(BETAS),
            "anthropic-dangerous-direct-browser-access": "true",
            "anthropic-version": "2023-06-01",
            "x-app": "cli",
            "Connection": "keep-alive",
            "Accept-Encoding": "identity",
            "Content-Length": str(length),
        }
        if self._api_key:
            headers["x-api-key"] = self._api_key
        lines = [
            f"POST {self._path} HTTP/1.1",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status_line = await reader.readline()
    if not status_line:
        raise asyncio.IncompleteReadError(b"", None)
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


async def _body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> AsyncIterator[bytes]:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
                return
            yield await reader.readexactly(size)
            await reader.readline()
    elif "content-length" in headers:
        remaining = int(headers["content-length"])
        while remaining:
            data = await reader.read(min(remaining, 65536))
            if not data:
                raise asyncio.IncompleteReadError(b"", remaining)
            remaining -= len(data)
            yield data
    else:
        while data := await reader.read(65536):
            yield data


async def _read_all(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
    return b"".join([chunk async for chunk in _body(reader, headers)])


async def _read_stream(
    reader: asyncio.StreamReader, headers: Mapping[str, str], state: StreamState
) -> None:
    pending = ""
    async for chunk in _body(reader, headers):
        pending += chunk.decode("utf-8", "replace").replace("\r\n", "\n")
        while "\n\n" in pending:
            raw, pending = pending.split("\n\n", 1)
            event, data = "message", []
            for line in raw.split("\n"):
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
            if data and state.feed(event, json.loads("\n".join(data))):
                return
    raise asyncio.IncompleteReadError(b"", None)


def _http_error(status: int, headers: Mapping[str, str], body: bytes) -> ApiError:
    try:
        error = json.loads(body).get("error", {})
    except (ValueError, AttributeError):
        error = {}
    retry_after: float | None = None
    if "retry-after" in headers:
        try:
            retry_after = float(headers["retry-after"])
        except ValueError:
            retry_after = None
    return ApiError(
        str(error.get("message", f"HTTP {status}")),
        status=status,
        error_type=error.get("type"),
        request_id=headers.get("request-id"),
        retry_after=retry_after if retry_after is None or math.isfinite(retry_after) else None,
    )


def backoff(attempt: int, retry_after: float | None) -> float:
    """Seconds before retry number *attempt* (1-based), as the CLI spaces them.

    The larger of ``retry-after`` (plus the CLI's jitter, 0-25 %, taken here as 12.5 %)
    and an exponential backoff from 0.5 s, capped at 32 s (tests/samples/README_retry.txt).
    """
    exponential = min(0.5 * 2.0 ** (attempt - 1), 32.0) * 1.1
    if retry_after is not None:
        return max(retry_after * 1.125, exponential)
    return exponential


def retry_wait_text(seconds: float) -> str:
    """The wait as the CLI's retry line counts it down: ``34s``, ``1m 10s``, ``7m``, ``2h``."""
    whole = math.ceil(seconds)
    if whole <= 0:
        return ""
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "m"), (secs, "s")]
    while parts and parts[0][0] == 0:
        parts.pop(0)
    if whole >= 300:
        parts = parts[:1]
    return " ".join(f"{value}{unit}" for value, unit in parts)
