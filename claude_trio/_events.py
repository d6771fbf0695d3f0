"""The typed events a caller receives: Anthropic-shaped messages and content blocks.

Field names follow the Anthropic Messages API (``stop_reason``, ``usage``, ``tool_use_id`` …),
so turning an event into API JSON is a plain serialisation (see `claude_trio.to_anthropic`).
On top of the API fields, the messages read from a session file carry the metadata the CLI
writes next to them (``session_id``, ``uuid``, ``parent_uuid``, ``timestamp``). That metadata
is not part of the API shape: it is dropped when an event is serialised to API JSON.

These are plain frozen models: they never import cattrs, json or trio. How JSONL records become
events, and why there is one `AssistantMessage` per content block, is documented in
`claude_trio._normalize`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar, Literal, TypeAlias, final

import attrs


def _blocks(value: Iterable[ContentBlock]) -> tuple[ContentBlock, ...]:
    return tuple(value)


def _user_content(value: str | Iterable[ContentBlock]) -> str | tuple[ContentBlock, ...]:
    return value if isinstance(value, str) else tuple(value)


def _result_content(
    value: str | Iterable[dict[str, Any]],
) -> str | tuple[dict[str, Any], ...]:
    return value if isinstance(value, str) else tuple(value)


@final
@attrs.frozen
class TextBlock:
    """A block of text, as in the API's ``{"type": "text", "text": …}``.

    Attributes:
        text: The text.
    """

    type: ClassVar[Literal["text"]] = "text"

    text: str


@final
@attrs.frozen
class ThinkingBlock:
    """The model's visible reasoning, as in ``{"type": "thinking", "thinking", "signature"}``.

    Attributes:
        thinking: The reasoning text.
        signature: The opaque signature the API needs to accept the block back.
    """

    type: ClassVar[Literal["thinking"]] = "thinking"

    thinking: str
    signature: str = attrs.field(kw_only=True)


@final
@attrs.frozen(kw_only=True)
class ToolUseBlock:
    """A tool call by the model, as in ``{"type": "tool_use", "id", "name", "input"}``.

    The ``input`` dict takes no part in hashing, so the block stays hashable.

    Attributes:
        id: The tool-use id that the matching `ToolResultBlock` names.
        name: The tool's name (``Bash``, ``Read``, ``mcp__server__tool`` …).
        input: The arguments, as the model wrote them.
    """

    type: ClassVar[Literal["tool_use"]] = "tool_use"

    id: str
    name: str
    input: dict[str, Any] = attrs.field(factory=dict, hash=False)


@final
@attrs.frozen(kw_only=True)
class ToolResultBlock:
    """The outcome of a tool call, as in ``{"type": "tool_result", "tool_use_id", …}``.

    Attributes:
        tool_use_id: The id of the `ToolUseBlock` this answers.
        content: The result: a string, or a tuple of API content blocks as JSON objects
            (``{"type": "text", …}``, ``{"type": "image", …}`` …). Takes no part in hashing.
        is_error: Whether the tool failed or was refused.
    """

    type: ClassVar[Literal["tool_result"]] = "tool_result"

    tool_use_id: str
    content: str | tuple[dict[str, Any], ...] = attrs.field(
        default="", converter=_result_content, hash=False
    )
    is_error: bool = False


ContentBlock: TypeAlias = TextBlock | ThinkingBlock | ToolUseBlock | ToolResultBlock
"""Any content block: `TextBlock`, `ThinkingBlock`, `ToolUseBlock` or `ToolResultBlock`."""


@final
@attrs.frozen(kw_only=True)
class CacheCreation:
    """Prompt-cache writes split by time to live, as in the API's ``usage.cache_creation``.

    Attributes:
        ephemeral_5m_input_tokens: Input tokens written to the 5-minute cache.
        ephemeral_1h_input_tokens: Input tokens written to the 1-hour cache.
    """

    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0


@final
@attrs.frozen(kw_only=True)
class ServerToolUse:
    """Server-side tool requests, as in the API's ``usage.server_tool_use``.

    Attributes:
        web_search_requests: Web searches the API ran.
        web_fetch_requests: Web fetches the API ran.
    """

    web_search_requests: int = 0
    web_fetch_requests: int = 0


@final
@attrs.frozen(kw_only=True)
class Usage:
    """Token counts of one API message (or a sum of them), as in the API's ``usage``.

    Attributes:
        input_tokens: Input tokens not read from or written to the cache.
        output_tokens: Output tokens, thinking included.
        cache_creation_input_tokens: Input tokens written to the prompt cache.
        cache_read_input_tokens: Input tokens read from the prompt cache.
        cache_creation: The cache writes by time to live, when the API reported them.
        server_tool_use: Server tool requests, when the API reported them.
        service_tier: ``"standard"``, ``"priority"`` or ``"batch"``, when reported.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation: CacheCreation | None = None
    server_tool_use: ServerToolUse | None = None
    service_tier: str | None = None


@final
@attrs.frozen(kw_only=True)
class AssistantMessage:
    """A message from the model (or one content block of it; see below).

    The CLI writes one session record per content block of an API message, all with the same
    ``id`` and ``usage``. The library yields one `AssistantMessage` per record, so a reply
    with thinking and text arrives as two messages sharing ``id``. Join them with
    `claude_trio.merge_assistant_messages`, and sum usage with `claude_trio.UsageTally`, which
    counts each ``id`` once.

    Attributes:
        id: The API message id (``msg_…``); the record uuid when the record had none.
        model: The model that wrote it.
        content: The content blocks (usually exactly one).
        stop_reason: Why the API message stopped (``end_turn``, ``tool_use``,
            ``max_tokens`` …); None when the stream was interrupted.
        stop_sequence: The stop sequence that matched, if any.
        usage: The token usage of the whole API message (not of this block alone).
        session_id: The CLI session the record belongs to.
        uuid: The record's uuid in the session file.
        parent_uuid: The uuid of the record before it in the conversation chain.
        timestamp: When the CLI wrote the record.
    """

    id: str
    model: str
    content: tuple[ContentBlock, ...] = attrs.field(default=(), converter=_blocks)
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: Usage = Usage()
    session_id: str | None = None
    uuid: str | None = None
    parent_uuid: str | None = None
    timestamp: datetime | None = None


@final
@attrs.frozen(kw_only=True)
class UserMessage:
    """A user turn: a typed prompt, tool results, or a message the CLI added itself.

    Attributes:
        content: A string (a typed prompt), or a tuple of blocks (`ToolResultBlock` s,
            or a `TextBlock` such as ``[Request interrupted by user]``).
        is_meta: True for a message the CLI wrote on its own rather than the user, such as
            the "Output token limit hit" continuation after ``max_tokens``.
        prompt_id: The id the CLI gives the prompt this message belongs to, when recorded.
        prompt_source: How the prompt came in, when recorded: ``"typed"`` for one a user
            (or this library) typed.
        session_id: The CLI session the record belongs to.
        uuid: The record's uuid in the session file.
        parent_uuid: The uuid of the record before it in the conversation chain.
        timestamp: When the CLI wrote the record.
    """

    content: str | tuple[ContentBlock, ...] = attrs.field(converter=_user_content)
    is_meta: bool = False
    prompt_id: str | None = None
    prompt_source: str | None = None
    session_id: str | None = None
    uuid: str | None = None
    parent_uuid: str | None = None
    timestamp: datetime | None = None


@final
@attrs.frozen(kw_only=True)
class SystemMessage:
    """A ``system`` record of the session file that callers may want to see.

    The end-of-turn marker (subtype ``turn_duration``) is not delivered this way: it ends
    the turn and shows up in the `ResultMessage`.

    Attributes:
        subtype: The record's subtype (``local_command`` …).
        content: Its text, when it has one.
        level: Its level (``info``, ``error`` …), when it has one.
        data: The whole record as the CLI wrote it (camelCase keys). Takes no part in
            hashing.
        session_id: The CLI session the record belongs to.
        uuid: The record's uuid in the session file.
        parent_uuid: The uuid of the record before it in the conversation chain.
        timestamp: When the CLI wrote the record.
    """

    subtype: str
    content: str | None = None
    level: str | None = None
    data: dict[str, Any] = attrs.field(factory=dict, hash=False)
    session_id: str | None = None
    uuid: str | None = None
    parent_uuid: str | None = None
    timestamp: datetime | None = None


@final
@attrs.frozen(kw_only=True)
class ResultMessage:
    """The summary of one turn, delivered last.

    Build it with `claude_trio.TurnAccumulator`, which counts each API message's usage
    once, however many records the CLI wrote for it.

    Attributes:
        usage: Usage summed over the distinct API messages of the turn.
        num_api_messages: How many distinct API messages (``id`` s) the turn received.
        stop_reason: The ``stop_reason`` of the turn's last assistant message.
        duration_ms: The turn's duration as the CLI measured it (``turn_duration``); None
            when the turn ended by an error or an interrupt, which the CLI does not time.
        session_id: The CLI session.
        total_cost_usd: The session's cumulative cost in US dollars, from the CLI's
            ``cost-state`` record, when one arrived during the turn; otherwise None.
        is_error: True when the turn ended with an API error.
        interrupted: True when the turn was interrupted (ESC, Ctrl-C, refused tool).
    """

    usage: Usage = Usage()
    num_api_messages: int = 0
    stop_reason: str | None = None
    duration_ms: int | None = None
    session_id: str | None = None
    total_cost_usd: float | None = None
    is_error: bool = False
    interrupted: bool = False


@final
@attrs.frozen(kw_only=True)
class StreamEvent:
    """One event of an API response while it streams: a partial message.

    Delivered only with ``partial_messages=True`` (see :doc:`/relay`), before the
    `AssistantMessage` records of the same API message. The whole messages still come
    from the session file: the ``text_delta`` pieces of a message, joined, equal the text
    of its `AssistantMessage` s.

    Attributes:
        uuid: An id of this event (a UUID), unique among the events of the library.
        session_id: The CLI session the response belongs to.
        event: The Messages API stream event as the API sent it (``message_start``,
            ``content_block_start``, ``content_block_delta``, ``content_block_stop``,
            ``message_delta``, ``message_stop``, ``error``), parsed from JSON. Takes no
            part in hashing.
        parent_tool_use_id: The id of the ``Task``/``Agent`` tool call whose sub-agent
            made the request; None for the conversation's own requests.
    """

    type: ClassVar[Literal["stream_event"]] = "stream_event"

    uuid: str
    session_id: str
    event: dict[str, Any] = attrs.field(hash=False)
    parent_tool_use_id: str | None = None


Event: TypeAlias = AssistantMessage | UserMessage | SystemMessage | ResultMessage | StreamEvent
"""Anything a turn yields: `AssistantMessage`, `UserMessage`, `SystemMessage`, `ResultMessage`,
and with ``partial_messages=True`` `StreamEvent`."""


def assistant_texts(events: Iterable[Event]) -> list[str]:
    """The text blocks of the assistant messages among *events*, in order."""
    return [
        block.text
        for event in events
        if isinstance(event, AssistantMessage)
        for block in event.content
        if isinstance(block, TextBlock)
    ]
