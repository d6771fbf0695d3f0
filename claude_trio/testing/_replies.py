"""Scripted replies of the mock Anthropic Messages API, and their wire encoding.

The models are frozen attrs classes that say *what* the mock answers: a message made of
text, thinking and tool-use blocks, or an API error. The ``encode_*`` functions turn a
reply into the bytes the real API would send: a ``text/event-stream`` with the exact
event sequence of the Messages API, a JSON message, or an error body. They are pure
(no I/O) so the HTTP side in ``_mock_api`` stays a thin layer.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, TypeAlias, final

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

_WORD_RE: Final = re.compile(r"\S+\s*|\s+")
_JSON_PIECE_CHARS: Final = 16
_DEFAULT_RETRY_AFTER: Final = 30.0
_ERROR_TYPES: Final[Mapping[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_ERROR_MESSAGES: Final[Mapping[int, str]] = {
    401: "invalid x-api-key",
    429: "mock: Number of request tokens has exceeded your per-minute rate limit",
    500: "Internal server error",
    529: "Overloaded",
}


def _header_pairs(
    value: Mapping[str, str] | Iterable[tuple[str, str]],
) -> tuple[tuple[str, str], ...]:
    pairs = value.items() if isinstance(value, Mapping) else value
    return tuple((name, text) for name, text in pairs)


def new_id(prefix: str) -> str:
    """Return a fresh id shaped like the API's (``msg_mock_…``, ``toolu_mock_…``)."""
    return f"{prefix}_mock_{uuid.uuid4().hex[:20]}"


@final
@attrs.frozen
class ReplyUsage:
    """The ``usage`` a scripted message reports, cache fields included.

    Attributes:
        input_tokens: Prompt tokens not read from or written to the cache.
        output_tokens: Tokens of the reply.
        cache_creation_input_tokens: Prompt tokens written to the cache.
        cache_read_input_tokens: Prompt tokens read from the cache.

    .. versionadded:: 0.1.0
    """

    input_tokens: int = attrs.field(validator=attrs.validators.ge(0))
    output_tokens: int = attrs.field(validator=attrs.validators.ge(0))
    cache_creation_input_tokens: int = attrs.field(
        default=0, kw_only=True, validator=attrs.validators.ge(0)
    )
    cache_read_input_tokens: int = attrs.field(
        default=0, kw_only=True, validator=attrs.validators.ge(0)
    )

    def to_json(self) -> dict[str, object]:
        """Return the API's JSON ``usage`` object for these counts."""
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
            "output_tokens": self.output_tokens,
            "service_tier": "standard",
        }


@final
@attrs.frozen
class ReplyText:
    """A ``text`` content block; streamed as ``text_delta`` events, one per word.

    Attributes:
        text: The text of the block.

    .. versionadded:: 0.1.0
    """

    text: str


@final
@attrs.frozen
class ReplyThinking:
    """A ``thinking`` content block; streamed as ``thinking_delta`` events and a signature.

    The ``signature_delta`` comes last, just before ``content_block_stop``, as in the API.

    Attributes:
        thinking: The thinking text.
        signature: The opaque signature the API attaches; a fresh ``mocksig_…`` by default.

    .. versionadded:: 0.1.0
    """

    thinking: str
    signature: str = attrs.field(factory=lambda: f"mocksig_{uuid.uuid4().hex}", kw_only=True)


@final
@attrs.frozen
class ReplyToolUse:
    """A ``tool_use`` content block; streamed as ``input_json_delta`` events.

    Attributes:
        name: The tool to call, as the client named it (``Bash``, ``Read``,
            ``mcp__echo__echo``…).
        input: The tool's arguments, a JSON object.
        id: The tool-use id the client echoes in its ``tool_result``; a fresh
            ``toolu_mock_…`` by default.

    .. versionadded:: 0.1.0
    """

    name: str
    input: Mapping[str, object] = attrs.field(kw_only=True)
    id: str = attrs.field(factory=lambda: new_id("toolu"), kw_only=True)


_Block: TypeAlias = ReplyText | ReplyThinking | ReplyToolUse


@final
@attrs.frozen
class MessageReply:
    """A successful Messages API reply: streamed as SSE, or one JSON message.

    Attributes:
        content: The content blocks, in order.
        stop_reason: ``"end_turn"``, ``"tool_use"``, ``"max_tokens"``, ``"stop_sequence"``…
        usage: The usage to report; `None` estimates it from the request and the content.
        model: The model to report; `None` echoes the request's ``model``.
        delay: Seconds to wait before each ``content_block_delta`` (for a JSON reply, their
            sum before the body), so a reply can stream slowly for interrupt tests.
        headers: Extra response headers, ``(name, value)`` pairs (a mapping is accepted).
            They replace the mock's own headers of the same name (such as its
            ``anthropic-ratelimit-*`` ones), so a test can send, say, a subscription's
            ``anthropic-ratelimit-unified-*`` headers.

    .. versionadded:: 0.1.0
    """

    content: tuple[ReplyText | ReplyThinking | ReplyToolUse, ...]
    stop_reason: str = attrs.field(default="end_turn", kw_only=True)
    usage: ReplyUsage | None = attrs.field(default=None, kw_only=True)
    model: str | None = attrs.field(default=None, kw_only=True)
    delay: float = attrs.field(default=0.0, kw_only=True, validator=attrs.validators.ge(0))
    headers: tuple[tuple[str, str], ...] = attrs.field(
        default=(), kw_only=True, converter=_header_pairs
    )


@final
@attrs.frozen
class ErrorReply:
    """An API error: an HTTP status with the Anthropic error JSON body.

    Attributes:
        status: The HTTP status (401, 429, 500, 529…).
        error_type: The ``error.type`` of the body (``authentication_error``…).
        message: The ``error.message`` of the body.
        retry_after: Seconds for the ``retry-after`` header; a 429 also gets the
            ``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`` headers,
            the resets that many seconds from now. `None` sends none of them.
        in_stream: When the request streams, answer 200 and send the error as an SSE
            ``error`` event after ``message_start``, as the API does when it fails
            mid-stream. A non-streaming request still gets the HTTP error.
        headers: Extra response headers, ``(name, value)`` pairs (a mapping is accepted).
            They replace the mock's own headers of the same name, so a test can send,
            say, ``retry-after: 1.5`` or a subscription's
            ``anthropic-ratelimit-unified-*`` headers.

    .. versionadded:: 0.1.0
    """

    status: int = attrs.field(validator=[attrs.validators.ge(400), attrs.validators.le(599)])
    error_type: str = attrs.field(kw_only=True)
    message: str = attrs.field(kw_only=True)
    retry_after: float | None = attrs.field(default=None, kw_only=True)
    in_stream: bool = attrs.field(default=False, kw_only=True)
    headers: tuple[tuple[str, str], ...] = attrs.field(
        default=(), kw_only=True, converter=_header_pairs
    )


def text_reply(
    text: str,
    *,
    seconds: float = 0.0,
    usage: ReplyUsage | None = None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
) -> MessageReply:
    """Build a reply of one text block that ends the turn.

    Args:
        text: The reply text. It streams one word per ``text_delta``.
        seconds: Spread the deltas evenly over this many seconds (a slow stream).
        usage: The usage to report; `None` estimates it.
        headers: Extra response headers (see `MessageReply.headers`).

    Returns:
        The `MessageReply`.

    .. versionadded:: 0.1.0
    """
    reply = MessageReply((ReplyText(text),), usage=usage, headers=_header_pairs(headers))
    return _spread(reply, seconds)


def thinking_reply(
    thinking: str, *, text: str, signature: str | None = None, seconds: float = 0.0
) -> MessageReply:
    """Build a reply of a thinking block, then a text block.

    Args:
        thinking: The thinking text.
        text: The answer text after it.
        signature: The thinking block's signature; a fresh one by default.
        seconds: Spread all deltas evenly over this many seconds.

    Returns:
        The `MessageReply`.

    .. versionadded:: 0.1.0
    """
    block = (
        ReplyThinking(thinking)
        if signature is None
        else ReplyThinking(thinking, signature=signature)
    )
    return _spread(MessageReply((block, ReplyText(text))), seconds)


def tool_use_reply(
    name: str,
    *,
    input: Mapping[str, object],
    text: str | None = None,
    tool_use_id: str | None = None,
) -> MessageReply:
    """Build a reply that calls a tool (``stop_reason="tool_use"``).

    The client runs the tool and sends its ``tool_result`` in the next request; the
    default reply answers that with ``tool said: <result>`` (see `RecordedRequest.tool_results`).

    Args:
        name: The tool to call (``Bash``, ``Read``, ``mcp__echo__echo``…).
        input: The tool's arguments.
        text: An optional text block before the call (``"I will call Bash."``).
        tool_use_id: The tool-use id; a fresh ``toolu_mock_…`` by default.

    Returns:
        The `MessageReply`.

    .. versionadded:: 0.1.0
    """
    call = (
        ReplyToolUse(name, input=input)
        if tool_use_id is None
        else ReplyToolUse(name, input=input, id=tool_use_id)
    )
    blocks: tuple[_Block, ...] = (call,) if text is None else (ReplyText(text), call)
    return MessageReply(blocks, stop_reason="tool_use")


def max_tokens_reply(text: str) -> MessageReply:
    """Build a text reply cut by the output limit (``stop_reason="max_tokens"``).

    Args:
        text: The text produced before the cut.

    Returns:
        The `MessageReply`.

    .. versionadded:: 0.1.0
    """
    return MessageReply((ReplyText(text),), stop_reason="max_tokens")


def error_reply(
    status: int,
    *,
    message: str | None = None,
    retry_after: float | None = None,
    in_stream: bool = False,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
) -> ErrorReply:
    """Build an API error with the ``error.type`` the real API uses for ``status``.

    401 is ``authentication_error``, 429 ``rate_limit_error`` (with ``retry-after`` and
    rate-limit reset headers, 30 s unless ``retry_after`` says otherwise), 500
    ``api_error``, 529 ``overloaded_error``; 400, 403, 404, 413 and 504 are known too, and
    any other status is an ``api_error``.

    Args:
        status: The HTTP status, 400 to 599.
        message: The ``error.message``; a short default for the status otherwise.
        retry_after: Seconds for ``retry-after`` (and the 429 reset headers).
        in_stream: Fail inside a 200 SSE stream when the request streams (see
            `ErrorReply.in_stream`).
        headers: Extra response headers, which replace the mock's own of the same name
            (see `ErrorReply.headers`).

    Returns:
        The `ErrorReply`.

    Raises:
        ValueError: ``status`` is not an HTTP error status.

    .. versionadded:: 0.1.0
    """
    if retry_after is None and status == 429:
        retry_after = _DEFAULT_RETRY_AFTER
    return ErrorReply(
        status,
        error_type=_ERROR_TYPES.get(status, "api_error"),
        message=_ERROR_MESSAGES.get(status, f"mock error {status}") if message is None else message,
        retry_after=retry_after,
        in_stream=in_stream,
        headers=_header_pairs(headers),
    )


def _spread(reply: MessageReply, seconds: float) -> MessageReply:
    if seconds == 0:
        return reply
    return attrs.evolve(reply, delay=seconds / max(delta_count(reply), 1))


def delta_count(reply: MessageReply) -> int:
    """Return how many ``content_block_delta`` events stream ``reply`` (each waits ``delay``)."""
    return sum(len(_deltas(block)) for block in reply.content)


def estimate_output_tokens(reply: MessageReply) -> int:
    """Return a rough output token count for ``reply`` (one per word or JSON piece)."""
    return max(delta_count(reply), 1)


# ---------------------------------------------------------------------------------------
# Wire encoding


def _deltas(block: _Block) -> list[dict[str, object]]:
    match block:
        case ReplyText(text=text):
            return [{"type": "text_delta", "text": piece} for piece in _words(text)]
        case ReplyThinking(thinking=thinking):
            return [{"type": "thinking_delta", "thinking": piece} for piece in _words(thinking)]
        case ReplyToolUse(input=arguments):
            encoded = json.dumps(arguments, ensure_ascii=False)
            pieces = [""] + [
                encoded[start : start + _JSON_PIECE_CHARS]
                for start in range(0, len(encoded), _JSON_PIECE_CHARS)
            ]
            return [{"type": "input_json_delta", "partial_json": piece} for piece in pieces]


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text) or [""]


def _block_json(block: _Block) -> dict[str, object]:
    match block:
        case ReplyText(text=text):
            return {"type": "text", "text": text}
        case ReplyThinking(thinking=thinking, signature=signature):
            return {"type": "thinking", "thinking": thinking, "signature": signature}
        case ReplyToolUse(name=name, input=arguments, id=tool_use_id):
            return {"type": "tool_use", "id": tool_use_id, "name": name, "input": dict(arguments)}


def _block_start_json(block: _Block) -> dict[str, object]:
    match block:
        case ReplyText():
            return {"type": "text", "text": ""}
        case ReplyThinking():
            return {"type": "thinking", "thinking": "", "signature": ""}
        case ReplyToolUse(name=name, id=tool_use_id):
            return {"type": "tool_use", "id": tool_use_id, "name": name, "input": {}}


def message_json(
    reply: MessageReply, *, message_id: str, model: str, usage: ReplyUsage
) -> dict[str, object]:
    """Return the complete JSON ``message`` object of a non-streaming reply."""
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [_block_json(block) for block in reply.content],
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": usage.to_json(),
    }


def error_json(error_type: str, message: str, *, request_id: str) -> dict[str, object]:
    """Return the API's error body ``{"type": "error", "error": {...}}``."""
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }


def encode_json(value: Mapping[str, object]) -> bytes:
    """Encode a JSON body the way the API does (compact, UTF-8)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def encode_sse(event: str, data: Mapping[str, object]) -> bytes:
    """Encode one server-sent event: an ``event:`` line, a ``data:`` line, a blank line."""
    return b"event: " + event.encode() + b"\ndata: " + encode_json(data) + b"\n\n"


def _message_start(*, message_id: str, model: str, usage: ReplyUsage) -> dict[str, object]:
    start_usage = attrs.evolve(usage, output_tokens=min(usage.output_tokens, 1)).to_json()
    return {
        "type": "message_start",
        "message": {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": start_usage,
        },
    }


def _stream_events(
    reply: MessageReply, *, message_id: str, model: str, usage: ReplyUsage
) -> Iterator[tuple[float, str, dict[str, object]]]:
    ping: dict[str, object] = {"type": "ping"}
    yield 0.0, "message_start", _message_start(message_id=message_id, model=model, usage=usage)
    if not reply.content:
        yield 0.0, "ping", ping
    for index, block in enumerate(reply.content):
        yield (
            0.0,
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": _block_start_json(block),
            },
        )
        if index == 0:
            yield 0.0, "ping", ping
        for delta in _deltas(block):
            yield (
                reply.delay,
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        if isinstance(block, ReplyThinking):
            yield (
                0.0,
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "signature_delta", "signature": block.signature},
                },
            )
        yield 0.0, "content_block_stop", {"type": "content_block_stop", "index": index}
    final_usage = usage.to_json()
    del final_usage["service_tier"]
    yield (
        0.0,
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
            "usage": final_usage,
        },
    )
    yield 0.0, "message_stop", {"type": "message_stop"}


def encode_stream(
    reply: MessageReply, *, message_id: str, model: str, usage: ReplyUsage
) -> list[tuple[float, bytes]]:
    """Encode ``reply`` as the SSE body of a streaming response.

    Returns:
        ``(delay, data)`` pairs: wait ``delay`` seconds, then send ``data``. Events with no
        delay between them are joined into one piece, so a fast reply is one write.
    """
    return _coalesce(
        (delay, encode_sse(name, data))
        for delay, name, data in _stream_events(
            reply, message_id=message_id, model=model, usage=usage
        )
    )


def encode_stream_error(
    error: ErrorReply, *, message_id: str, model: str, usage: ReplyUsage, request_id: str
) -> list[tuple[float, bytes]]:
    """Encode a stream that starts a message, then fails with an SSE ``error`` event."""
    start = _message_start(message_id=message_id, model=model, usage=usage)
    body = error_json(error.error_type, error.message, request_id=request_id)
    return [
        (
            0.0,
            encode_sse("message_start", start)
            + encode_sse("ping", {"type": "ping"})
            + encode_sse("error", body),
        )
    ]


def _coalesce(pieces: Iterator[tuple[float, bytes]]) -> list[tuple[float, bytes]]:
    chunks: list[tuple[float, bytes]] = []
    for delay, data in pieces:
        if chunks and delay <= 0:
            chunks[-1] = (chunks[-1][0], chunks[-1][1] + data)
        else:
            chunks.append((delay, data))
    return chunks
