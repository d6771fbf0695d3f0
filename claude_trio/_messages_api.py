"""The Anthropic Messages API on the gateway's side: requests in, messages and SSE out.

Sans-I/O: nothing here reads a socket or imports trio. `parse_messages_request` checks a
``POST /v1/messages`` body once and returns what the backend needs; `message_json` builds
the non-streaming reply from a finished turn's events; `MessageStreamEncoder` turns the
same events into the stream events of the real API, in its order.

What the CLI did by itself during a turn (its tool calls and their results) is shown as a
``server_tool_use`` block (``id``, ``name`` = the CLI tool, ``input``) followed by an
``mcp_tool_result`` block (``tool_use_id``, ``is_error``, ``content`` = text blocks). The
official SDKs parse both (the second as a beta type; the non-beta ``Message`` keeps it as
an extra block), and neither is a ``tool_use`` a client would think it must answer. When
a client sends these blocks back in its history, `backend_messages` turns them into the
``tool_use``/``tool_result`` pairs the CLI knows, so the follow-up continues the same
process and a re-seed keeps the tool calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from ._deltas import BlockOpened, BlockSigned, BlockText, DeltaMerger, Step, WholeEvent
from ._errors import InputError
from ._events import (
    AssistantMessage,
    ContentBlock,
    Event,
    ResultMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
    UserMessage,
)
from ._gateway_errors import GatewayError
from ._history import History, parse_history
from ._options import is_model_name

#: Request fields the gateway honours.
HONOURED_FIELDS: Final = ("model", "messages", "system", "stream")

#: Request fields accepted and not honoured: the CLI decides these. Each one a request
#: sets is named in the ``claude-trio-ignored`` response header.
IGNORED_FIELDS: Final = (
    "max_tokens",
    "metadata",
    "service_tier",
    "temperature",
    "thinking",
    "top_k",
    "top_p",
)

#: Request fields refused unless they hold their neutral value (given as the reason).
REFUSED_FIELDS: Final[Mapping[str, str]] = {
    "stop_sequences": "an empty list: the CLI cannot stop at a client's sequences",
    "tools": "an empty list: client-defined tools are not supported by this gateway yet",
    "tool_choice": '{"type": "auto"} or {"type": "none"}: there are no client tools',
    "container": "absent: the CLI runs its own tools",
    "mcp_servers": "absent: configure MCP servers on the gateway (BackendOptions.mcp_servers)",
    "context_management": "absent: the CLI manages its own context",
    "output_config": "absent: the CLI sets its own output options",
    "output_format": "absent: structured outputs are not supported",
}

#: The header a request sets to ``hide`` (or ``show``) the CLI's own tool calls.
CLI_TOOLS_HEADER: Final = "claude-trio-cli-tools"

_OWN_BLOCKS: Final = frozenset({"server_tool_use", "mcp_tool_result"})


@attrs.frozen
class MessagesRequest:
    """A checked ``POST /v1/messages`` body.

    Attributes:
        history: The conversation, parsed once: what the gateway passes to
            `ClaudeCodeBackend.complete`.
        messages: The canonical messages of *history*, with the gateway's own blocks
            turned back into tool calls and results.
        model: The requested model (passed to the CLI as ``--model``).
        system: The system prompt, when the request has one (``--system-prompt``).
        stream: Whether the reply is a server-sent event stream.
        ignored: The fields the request set that the gateway does not honour, sorted.
    """

    history: History = attrs.field(repr=False, eq=False)
    messages: tuple[dict[str, Any], ...]
    model: str
    system: str | None
    stream: bool
    ignored: tuple[str, ...]


def parse_messages_request(body: object, *, max_messages: int) -> MessagesRequest:
    """Check a ``POST /v1/messages`` body and return what the backend needs.

    ======================================= ==========================================
    field                                   what the gateway does with it
    ======================================= ==========================================
    ``model`` (required)                    passed to the CLI as ``--model``; a new
                                            model is a new process; ``default`` keeps
                                            the gateway's own model setting
    ``messages`` (required)                 the conversation; the last message is typed
    ``system`` (string or text blocks)      the CLI's ``--system-prompt``, as written
    ``stream``                              SSE when true
    ``max_tokens``, ``temperature``,        accepted and **ignored**: the CLI decides;
    ``top_p``, ``top_k``, ``thinking``,     each one set is named in the
    ``metadata``, ``service_tier``          ``claude-trio-ignored`` response header
    ``stop_sequences``                      400 unless empty
    ``tools``                               400 unless empty: client tools are not
                                            supported yet
    ``tool_choice``                         400 unless ``auto`` or ``none``
    ``container``, ``mcp_servers``,         400
    ``context_management``,
    ``output_config``, ``output_format``
    any other field                         400, as the real API does
    ======================================= ==========================================

    Args:
        body: The decoded JSON body.
        max_messages: The most messages a request may hold.

    Returns:
        The checked request.

    Raises:
        GatewayError: 400 for every problem, naming the field (``param``).
    """
    if not isinstance(body, Mapping):
        raise GatewayError(400, "the request body must be a JSON object")
    known = {*HONOURED_FIELDS, *IGNORED_FIELDS, *REFUSED_FIELDS}
    for name in body:
        if name not in known:
            raise GatewayError(400, f"{name}: Extra inputs are not permitted", param=name)
    model = body.get("model")
    if not is_model_name(model):
        raise GatewayError(
            400, "model: a model name (printable, without spaces) is required", param="model"
        )
    assert isinstance(model, str)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise GatewayError(400, "stream: must be true or false", param="stream")
    for name in REFUSED_FIELDS:
        if name in body and not _neutral(name, body[name]):
            raise GatewayError(
                400,
                f"{name}: not supported by claude-trio; send {REFUSED_FIELDS[name]}",
                param=name,
            )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise GatewayError(400, "messages: a non-empty list is required", param="messages")
    if len(messages) > max_messages:
        raise GatewayError(
            400,
            f"messages: {len(messages)} messages are more than this gateway takes ({max_messages})",
            param="messages",
        )
    ignored = tuple(sorted(n for n in IGNORED_FIELDS if body.get(n) is not None))
    converted, origins = _converted(messages)
    try:
        history = parse_history(converted)
    except InputError as exc:
        raise _input_error(exc, origins) from None
    return MessagesRequest(
        history=history,
        messages=history.messages,
        model=model,
        system=_system(body.get("system")),
        stream=stream,
        ignored=ignored,
    )


def _input_error(error: InputError, origins: Sequence[int]) -> GatewayError:
    """The 400 for an `InputError` in `messages`, naming the client's own message.

    The parsed messages may be more than the request's (an assistant message with the
    CLI's tool calls is split in three): *origins* gives the request's index of each, so
    the place is translated back; within a split message, only the message is named.
    """
    where = error.where
    prefix, _, rest = where.partition("]")
    if not prefix.startswith("messages[") or not prefix[9:].isdigit():
        return GatewayError(400, str(error), param=None)
    index = int(prefix[9:])
    if index >= len(origins):
        return GatewayError(400, str(error), param=None)
    origin = origins[index]
    split = origins.count(origin) > 1
    place = f"messages[{origin}]" + ("" if split else rest)
    param = "messages." + place[9:].replace("[", ".").replace("]", "").lstrip(".")
    return GatewayError(400, f"{place}: {error.message}", param=param)


def backend_messages(messages: Sequence[object]) -> tuple[dict[str, Any], ...]:
    """Turn the gateway's own blocks in a client's history back into tool calls and results.

    An assistant message ``[text, server_tool_use A, mcp_tool_result A, text]`` becomes
    ``assistant [text, tool_use A]``, ``user [tool_result A]``, ``assistant [text]``: what
    the CLI wrote when it ran the tool. The visible conversation (and so the history's
    fingerprint) does not change. Everything else is passed on as it is, for
    `claude_trio.parse_history` to check.
    """
    return _converted(messages)[0]


def _converted(messages: Sequence[object]) -> tuple[tuple[dict[str, Any], ...], tuple[int, ...]]:
    result: list[dict[str, Any]] = []
    origins: list[int] = []
    for index, message in enumerate(messages):
        content = message.get("content") if isinstance(message, Mapping) else None
        if (
            not isinstance(message, Mapping)
            or message.get("role") != "assistant"
            or not isinstance(content, list)
            or not any(isinstance(b, Mapping) and b.get("type") in _OWN_BLOCKS for b in content)
        ):
            result.append(message)  # type: ignore[arg-type]
            origins.append(index)
            continue
        said: list[Any] = []
        results: list[dict[str, Any]] = []
        for block in content:
            kind = block.get("type") if isinstance(block, Mapping) else None
            if kind == "mcp_tool_result":
                if said:
                    result.append({"role": "assistant", "content": said})
                    said = []
                results.append(_tool_result(block))
                continue
            if results:
                result.append({"role": "user", "content": results})
                results = []
            if kind == "server_tool_use":
                said.append(
                    {
                        "type": "tool_use",
                        "id": block.get("id"),
                        "name": block.get("name"),
                        "input": block.get("input", {}),
                    }
                )
            else:
                said.append(block)
        if said:
            result.append({"role": "assistant", "content": said})
        if results:
            result.append({"role": "user", "content": results})
        origins += [index] * (len(result) - len(origins))
    return tuple(result), tuple(origins)


def message_json(
    events: Sequence[Event], *, message_id: str, model: str, show_cli_tools: bool
) -> dict[str, Any]:
    """The non-streaming Messages API reply for a finished turn's *events*.

    Args:
        events: Every event of the turn, ending with its `ResultMessage`.
        message_id: The reply's ``id``.
        model: The model to report when no assistant message names one.
        show_cli_tools: Whether the CLI's tool calls and results are shown.
    """
    content: list[dict[str, Any]] = []
    for event in events:
        content += (block for _kind, block in _blocks_of(event, show_cli_tools))
    result = events[-1] if events and isinstance(events[-1], ResultMessage) else None
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": _model_of(events, model),
        "content": content,
        "stop_reason": stop_reason(result.stop_reason if result is not None else None),
        "stop_sequence": None,
        "usage": usage_json(result.usage if result is not None else Usage()),
    }


def stop_reason(cli_stop_reason: str | None) -> str:
    """The ``stop_reason`` a client gets for the CLI's last API message's.

    ``tool_use`` becomes ``end_turn``: the tool was the CLI's, and it ran it; a client
    seeing ``tool_use`` would look for a call of its own to answer.
    """
    if cli_stop_reason in (None, "tool_use", "stop_sequence"):
        return "end_turn"
    return cli_stop_reason


def usage_json(usage: Usage) -> dict[str, Any]:
    """The ``usage`` object of a reply."""
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
    }


def sse(event_type: str, data: Mapping[str, Any]) -> bytes:
    """One server-sent event, framed as the real API frames it."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event_type}\ndata: {payload}\n\n".encode()


class MessageStreamEncoder:
    """Turns a turn's events into the stream events of ``POST /v1/messages``.

    The order is the real API's: `start` gives ``message_start``; `feed` gives, for each
    content block, ``content_block_start``, its deltas and ``content_block_stop``;
    `finish` gives ``message_delta`` (stop reason and usage) and ``message_stop``. Each
    method returns ``(event type, data)`` pairs, to be framed as server-sent events.

    Without `StreamEvent` s, each block goes out whole when its message comes: a text
    block is one ``text_delta``. With them (``partial_messages=True``), text and thinking
    are sent as their deltas arrive, and the `AssistantMessage` that follows is not sent
    again; tool calls and their results still go out whole. The blocks are those the
    whole messages give, in their order, with one index sequence over the whole turn (the
    API messages' own indexes are not the reply's). How the two views are merged, and
    what happens when a stream is cut short or disagrees with the session file, is
    described in :ref:`gateway-deltas`.

    Args:
        message_id: The reply's ``id``.
        model: The requested model, named in ``message_start``.
        show_cli_tools: Whether the CLI's tool calls and results are shown.
    """

    def __init__(self, *, message_id: str, model: str, show_cli_tools: bool) -> None:
        self._message_id = message_id
        self._model = model
        self._show_cli_tools = show_cli_tools
        self._index = 0
        self._merger = DeltaMerger()
        self.text = ""  #: The text sent so far, every text block joined.

    def answered_by(self, model: str) -> None:
        """Name in ``message_start`` the *model* that answered instead of the one asked
        for (the non-streaming reply names it too); call it before `start`."""
        if model and model != "<synthetic>":
            self._model = model

    def start(self) -> list[tuple[str, dict[str, Any]]]:
        """The ``message_start`` event."""
        message: dict[str, Any] = {
            "id": self._message_id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_json(Usage()),
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def feed(self, event: Event) -> list[tuple[str, dict[str, Any]]]:
        """The events that *event* lets out (none for most events)."""
        return self._send(self._merger.feed(event))

    def finish(self, result: ResultMessage) -> list[tuple[str, dict[str, Any]]]:
        """What is still to send, ``message_delta`` with the stop reason and usage, then
        ``message_stop``."""
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(result.stop_reason), "stop_sequence": None},
            "usage": usage_json(result.usage),
        }
        return [
            *self._send(self._merger.finish()),
            ("message_delta", delta),
            ("message_stop", {"type": "message_stop"}),
        ]

    def _send(self, steps: Iterable[Step]) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        for step in steps:
            if isinstance(step, WholeEvent):
                for _kind, block in _blocks_of(step.event, self._show_cli_tools):
                    out += _block_events(self._index, block)
                    self._index += 1
                    if block["type"] == "text":
                        self.text += block["text"]
            elif isinstance(step, BlockOpened):
                self._index += 1
                empty = {"type": "text", "text": ""}
                if step.kind == "thinking":
                    empty = {"type": "thinking", "thinking": "", "signature": ""}
                out.append(_start_event(self._index - 1, empty))
            elif isinstance(step, BlockText):
                if step.kind == "text":
                    self.text += step.text
                    out.append(_delta_event(self._index - 1, "text_delta", "text", step.text))
                else:
                    delta = _delta_event(self._index - 1, "thinking_delta", "thinking", step.text)
                    out.append(delta)
            elif isinstance(step, BlockSigned):
                signed = _delta_event(
                    self._index - 1, "signature_delta", "signature", step.signature
                )
                out.append(signed)
            else:
                out.append(_stop_event(self._index - 1))
        return out


def _start_event(index: int, content_block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return (
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": content_block},
    )


def _delta_event(index: int, kind: str, key: str, value: str) -> tuple[str, dict[str, Any]]:
    return (
        "content_block_delta",
        {"type": "content_block_delta", "index": index, "delta": {"type": kind, key: value}},
    )


def _stop_event(index: int) -> tuple[str, dict[str, Any]]:
    return ("content_block_stop", {"type": "content_block_stop", "index": index})


def _block_events(index: int, block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    kind = block["type"]
    if kind == "text":
        events = [_start_event(index, {"type": "text", "text": ""})]
        if block["text"]:
            events.append(_delta_event(index, "text_delta", "text", block["text"]))
    elif kind == "thinking":
        events = [_start_event(index, {"type": "thinking", "thinking": "", "signature": ""})]
        if block["thinking"]:
            events.append(_delta_event(index, "thinking_delta", "thinking", block["thinking"]))
        events.append(_delta_event(index, "signature_delta", "signature", block["signature"]))
    elif kind == "server_tool_use":
        events = [_start_event(index, {**block, "input": {}})]
        partial = json.dumps(block["input"], ensure_ascii=False, separators=(",", ":"))
        events.append(_delta_event(index, "input_json_delta", "partial_json", partial))
    else:
        events = [_start_event(index, block)]
    events.append(_stop_event(index))
    return events


def _blocks_of(event: Event, show_cli_tools: bool) -> Iterable[tuple[str, dict[str, Any]]]:
    if isinstance(event, AssistantMessage):
        for block in event.content:
            shaped = _assistant_block(block, show_cli_tools)
            if shaped is not None:
                yield shaped["type"], shaped
    elif isinstance(event, UserMessage) and show_cli_tools and not isinstance(event.content, str):
        for block in event.content:
            if isinstance(block, ToolResultBlock):
                yield "mcp_tool_result", _result_block(block)


def _assistant_block(block: ContentBlock, show_cli_tools: bool) -> dict[str, Any] | None:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ThinkingBlock):
        return {"type": "thinking", "thinking": block.thinking, "signature": block.signature}
    if isinstance(block, ToolUseBlock):
        if not show_cli_tools:
            return None
        return {"type": "server_tool_use", "id": block.id, "name": block.name, "input": block.input}
    return None


def _result_block(block: ToolResultBlock) -> dict[str, Any]:
    if isinstance(block.content, str):
        content = [{"type": "text", "text": block.content}]
    else:
        content = [
            {"type": "text", "text": part.get("text", "")}
            if part.get("type") == "text"
            else {"type": "text", "text": f"[{part.get('type', 'block')}]"}
            for part in block.content
        ]
    return {
        "type": "mcp_tool_result",
        "tool_use_id": block.tool_use_id,
        "is_error": block.is_error,
        "content": content,
    }


def _tool_result(block: Mapping[str, Any]) -> dict[str, Any]:
    content = block.get("content", [])
    if isinstance(content, list):
        content = [part for part in content if isinstance(part, Mapping)]
    return {
        "type": "tool_result",
        "tool_use_id": block.get("tool_use_id"),
        "content": content,
        "is_error": bool(block.get("is_error", False)),
    }


def _model_of(events: Sequence[Event], requested: str) -> str:
    for event in reversed(events):
        if isinstance(event, AssistantMessage) and event.model and event.model != "<synthetic>":
            return event.model
    return requested


def _system(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, list):
        texts = []
        for index, block in enumerate(value):
            if not (
                isinstance(block, Mapping)
                and block.get("type") == "text"
                and isinstance(block.get("text"), str)
            ):
                raise GatewayError(
                    400, "system: each block must be a text block", param=f"system.{index}"
                )
            texts.append(block["text"])
        return "\n\n".join(texts) or None
    raise GatewayError(400, "system: a string or a list of text blocks", param="system")


def _neutral(name: str, value: object) -> bool:
    if value is None:
        return True
    if name in ("stop_sequences", "tools"):
        return value == []
    if name == "tool_choice":
        return isinstance(value, Mapping) and value.get("type") in ("auto", "none")
    return False
