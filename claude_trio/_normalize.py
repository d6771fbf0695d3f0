"""From session records to what they mean for callers: events and turn signals.

Pure and sans-I/O: `normalize` takes one JSONL line (or its parsed form) and returns a
`Normalized`: the events for the caller, plus at most one *signal* for the turn layer.
It never reads files, never waits, and never imports trio.

=====================================  =====================================================
Record                                 Result
=====================================  =====================================================
``user``                               a `UserMessage` (``is_meta`` for the CLI's own notes);
                                       with a `TurnInterrupted` signal when its content is
                                       the text block ``[Request interrupted by user]`` or
                                       ``[Request interrupted by user for tool use]``
``assistant``                          an `AssistantMessage` (one per record, see below)
``assistant`` + ``isApiErrorMessage``  no event; a `TurnFailed` signal holding the matching
                                       `APIError` subclass (not raised)
``system`` / ``turn_duration``         no event; a `TurnEnd` signal
``system`` (other subtypes)            a `SystemMessage`
``cost-state``                         no event; a `CostState` signal
side records (``attachment``,          nothing
``api-request*``, ``mode`` …)
an unknown ``type``                    nothing (``known=False``; count it with
                                       `RecordStatistics`)
=====================================  =====================================================

**One AssistantMessage per record.** The CLI writes one ``assistant`` record per content
block of an API reply; all of them share ``message.id``, and each repeats the *whole*
message's ``usage`` and ``stop_reason``. We yield one `AssistantMessage` per record, as
soon as it is read, holding that one block and the message id: waiting for the next record
to know that a message is complete would cost latency, and the CLI writes no marker for it.
Two consequences:

* Usage must be counted once per ``id``, never once per record. `UsageTally` (and
  `TurnAccumulator`, which builds the `ResultMessage` with it) keys usage by message id, so
  a message seen twice, or split over three records, still counts once.
* A caller that needs the API's view (the HTTP gateway) joins consecutive records of one
  message with `merge_assistant_messages`.

A malformed line raises `MessageParseError`; nothing else does, whatever the input.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeAlias, TypeVar, final

import attrs

from . import _records as rec
from ._convert import ParsedRecord, parse_record, unstructure_record
from ._errors import (
    APIConnectionError,
    APIError,
    AuthError,
    OverloadedError,
)
from ._events import (
    AssistantMessage,
    CacheCreation,
    ContentBlock,
    Event,
    ResultMessage,
    ServerToolUse,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
    UserMessage,
)
from ._retry import rate_limit_error

__all__ = [
    "CostState",
    "Normalized",
    "RecordStatistics",
    "Signal",
    "TurnAccumulator",
    "TurnEnd",
    "TurnFailed",
    "TurnInterrupted",
    "UsageTally",
    "merge_assistant_messages",
    "normalize",
    "normalize_record",
    "sum_usage",
]

_T = TypeVar("_T")

INTERRUPT_MARKER = "[Request interrupted by user]"
TOOL_USE_INTERRUPT_MARKER = "[Request interrupted by user for tool use]"

_API_ERROR_STATUS = re.compile(r"API Error: (?:Repeated )?(\d{3})\b")


# --- signals ---------------------------------------------------------------------------------


@final
@attrs.frozen(kw_only=True)
class TurnEnd:
    """The turn completed: the CLI wrote ``system``/``turn_duration``.

    Attributes:
        duration_ms: The turn's duration as the CLI measured it.
        message_count: The CLI's count of messages in the conversation so far.
        session_id: The CLI session.
        uuid: The record's uuid.
        timestamp: When the CLI wrote it.
    """

    duration_ms: int | None = None
    message_count: int | None = None
    session_id: str | None = None
    uuid: str | None = None
    timestamp: datetime | None = None


@final
@attrs.frozen(kw_only=True)
class TurnFailed:
    """The turn ended with an API error (an ``assistant`` record with ``isApiErrorMessage``).

    The CLI writes it once its retries are over, and writes no ``turn_duration`` after it.
    The process stays usable.

    Attributes:
        error: The error to raise: `AuthError` (``authentication_failed``),
            `RateLimitError` (``rate_limit``), `OverloadedError` (a 529),
            `APIConnectionError` (``apiError: connection_failed``), or `APIError` with the
            HTTP status when the record names one. Takes no part in equality.
        kind: The record's ``error`` field (``authentication_failed``, ``rate_limit``,
            ``server_error`` …).
        api_error: The record's ``apiError`` field (``connection_failed``), when present.
        text: The text the CLI shows, such as ``Invalid API key · Fix external API key``.
        session_id: The CLI session.
        uuid: The record's uuid.
        timestamp: When the CLI wrote it.
    """

    error: APIError = attrs.field(eq=False, hash=False)
    kind: str | None = None
    api_error: str | None = None
    text: str = ""
    session_id: str | None = None
    uuid: str | None = None
    timestamp: datetime | None = None


@final
@attrs.frozen(kw_only=True)
class TurnInterrupted:
    """The turn was interrupted (ESC, Ctrl-C, or a tool permission refused with ESC).

    Attributes:
        for_tool_use: True for ``[Request interrupted by user for tool use]``.
        message_id: The id of the API message that was cut off, when the CLI names it.
        session_id: The CLI session.
        uuid: The record's uuid.
        timestamp: When the CLI wrote it.
    """

    for_tool_use: bool = False
    message_id: str | None = None
    session_id: str | None = None
    uuid: str | None = None
    timestamp: datetime | None = None


@final
@attrs.frozen(kw_only=True)
class CostState:
    """The session's cumulative cost and times, from a ``cost-state`` record.

    The 2.1.328 CLI writes these when the session closes, not after each turn, so most
    turns see none. Every number covers the whole session so far.

    Attributes:
        total_cost_usd: Cost in US dollars.
        total_duration_ms: Wall time of the session.
        total_api_duration_ms: Time spent in API calls, retries included.
        total_api_duration_without_retries_ms: The same, without retries.
        total_tool_duration_ms: Time spent running tools.
        lines_added: Lines the session's edits added.
        lines_removed: Lines the session's edits removed.
        has_unknown_model_cost: True when a model's price was unknown to the CLI.
        session_id: The CLI session.
    """

    total_cost_usd: float | None = None
    total_duration_ms: int | None = None
    total_api_duration_ms: int | None = None
    total_api_duration_without_retries_ms: int | None = None
    total_tool_duration_ms: int | None = None
    lines_added: int | None = None
    lines_removed: int | None = None
    has_unknown_model_cost: bool | None = None
    session_id: str | None = None


Signal: TypeAlias = TurnEnd | TurnFailed | TurnInterrupted | CostState
"""What a record tells the turn layer: `TurnEnd`, `TurnFailed`, `TurnInterrupted`, `CostState`."""


@final
@attrs.frozen(kw_only=True)
class Normalized:
    """What one session record means for callers.

    Attributes:
        record_type: The record's ``type`` as the CLI wrote it ("" if it had none).
        events: The events to deliver, in order (often none, usually one).
        signal: What the record tells the turn layer, if anything.
        known: False when the record's ``type`` is unknown to this version.
        ignored: Keys of the record that no model knows, as dotted paths
            (``message.usage.new_field``), and ``message.content[type=X]`` for content
            blocks of an unknown type X (they are left out of the events).
        uuid: The record's ``uuid``, for a record of the conversation chain.
        parent_uuid: The ``parentUuid`` it chains to (None for the first record of a
            chain, and for side records).
    """

    record_type: str
    events: tuple[Event, ...] = ()
    signal: Signal | None = None
    known: bool = True
    ignored: tuple[str, ...] = ()
    uuid: str | None = None
    parent_uuid: str | None = None

    @property
    def ends_turn(self) -> bool:
        """Whether the record ends the current turn (`TurnEnd`, `TurnFailed`, `TurnInterrupted`)."""
        return isinstance(self.signal, TurnEnd | TurnFailed | TurnInterrupted)


@final
@attrs.frozen(kw_only=True)
class RecordStatistics:
    """Counts of what the normalizer saw, for a ``statistics()`` method.

    Immutable: `counted` returns an updated copy.

    Attributes:
        records: Records normalized.
        unknown_records: Records of a ``type`` this version does not know.
        ignored_fields: Unknown keys (and unknown content blocks) ignored, in total.
        unknown_types: The distinct unknown record types seen.
        ignored_paths: The distinct ignored key paths seen.
    """

    records: int = 0
    unknown_records: int = 0
    ignored_fields: int = 0
    unknown_types: frozenset[str] = frozenset()
    ignored_paths: frozenset[str] = frozenset()

    def counted(self, item: Normalized) -> RecordStatistics:
        """Return these statistics with *item* counted.

        Args:
            item: What `normalize` returned for one record.

        Returns:
            A new `RecordStatistics`.
        """
        if item.known and not item.ignored:
            return attrs.evolve(self, records=self.records + 1)
        return RecordStatistics(
            records=self.records + 1,
            unknown_records=self.unknown_records + (not item.known),
            ignored_fields=self.ignored_fields + len(item.ignored),
            unknown_types=(
                self.unknown_types if item.known else self.unknown_types | {item.record_type}
            ),
            ignored_paths=self.ignored_paths.union(item.ignored),
        )


# --- normalize -------------------------------------------------------------------------------


def normalize(
    line: str | bytes | bytearray | Mapping[str, Any],
    *,
    path: str | os.PathLike[str] | None = None,
    line_number: int | None = None,
) -> Normalized:
    """Say what one session record means: its events and its turn signal.

    Args:
        line: One line of the session JSONL file (`str` or `bytes`, with or without its
            newline), or the JSON object already decoded from it.
        path: The file the line came from, for error messages.
        line_number: The line's 1-based number in that file, for error messages.

    Returns:
        The events and signal of the record, and what in it was unknown. See the table
        above for which record gives what.

    Raises:
        MessageParseError: If the line is not JSON, not a JSON object, or a known record
            type with a field that does not fit (a ``message`` that is not an object, a
            count that is not a number …). Never anything else, whatever *line* holds.
    """
    return _normalized(parse_record(line, path=path, line_number=line_number))


def normalize_record(record: rec.Record) -> Normalized:
    """Like `normalize`, for a record model built elsewhere (a transcript being written)."""
    return _normalized(ParsedRecord(record, {}))


def _normalized(parsed: ParsedRecord) -> Normalized:
    record = parsed.record
    if isinstance(record, rec.UnknownRecord):
        tag = record.raw.get("type")
        return Normalized(record_type=tag if isinstance(tag, str) else "", known=False)
    handler = _HANDLERS.get(type(record))
    events, signal = handler(record, parsed) if handler is not None else ((), None)
    chain = record if isinstance(record, rec.ChainRecord) else None
    return Normalized(
        record_type=record.record_type,
        events=events,
        signal=signal,
        ignored=parsed.ignored,
        uuid=chain.uuid if chain is not None else None,
        parent_uuid=chain.parent_uuid if chain is not None else None,
    )


_Outcome: TypeAlias = tuple[tuple[Event, ...], Signal | None]


def _session_id(record: rec.ChainRecord | rec.SideRecord) -> str | None:
    if record.session_id is not None or not isinstance(record, rec.ChainRecord):
        return record.session_id
    return record.session_id_copy


def _user(record: rec.UserRecord, _: ParsedRecord) -> _Outcome:
    raw_content = record.message.content
    content: str | tuple[ContentBlock, ...] = (
        raw_content if isinstance(raw_content, str) else _blocks(raw_content)
    )
    session_id = _session_id(record)
    message = UserMessage(
        content=content,
        is_meta=record.is_meta,
        prompt_id=record.prompt_id,
        prompt_source=record.prompt_source,
        session_id=session_id,
        uuid=record.uuid,
        parent_uuid=record.parent_uuid,
        timestamp=record.timestamp,
    )
    signal: Signal | None = None
    if not isinstance(content, str):
        texts = {block.text for block in content if isinstance(block, TextBlock)}
        if INTERRUPT_MARKER in texts or TOOL_USE_INTERRUPT_MARKER in texts:
            signal = TurnInterrupted(
                for_tool_use=TOOL_USE_INTERRUPT_MARKER in texts,
                message_id=record.interrupted_message_id,
                session_id=session_id,
                uuid=record.uuid,
                timestamp=record.timestamp,
            )
    return (message,), signal


def _assistant(record: rec.AssistantRecord, parsed: ParsedRecord) -> _Outcome:
    message = record.message
    session_id = _session_id(record)
    if record.is_api_error_message:
        text = "\n".join(b.text for b in message.content if isinstance(b, rec.TextBlockRecord))
        return (), TurnFailed(
            error=_api_error(record, text, parsed.raw),
            kind=record.error,
            api_error=record.api_error,
            text=text,
            session_id=session_id,
            uuid=record.uuid,
            timestamp=record.timestamp,
        )
    event = AssistantMessage(
        id=message.id or record.uuid or "",
        model=message.model or "",
        content=_blocks(message.content),
        stop_reason=message.stop_reason,
        stop_sequence=message.stop_sequence,
        usage=_usage(message.usage),
        session_id=session_id,
        uuid=record.uuid,
        parent_uuid=record.parent_uuid,
        timestamp=record.timestamp,
    )
    return (event,), None


def _system(record: rec.SystemRecord, parsed: ParsedRecord) -> _Outcome:
    session_id = _session_id(record)
    if record.subtype == "turn_duration":
        return (), TurnEnd(
            duration_ms=record.duration_ms,
            message_count=record.message_count,
            session_id=session_id,
            uuid=record.uuid,
            timestamp=record.timestamp,
        )
    event = SystemMessage(
        subtype=record.subtype,
        content=record.content,
        level=record.level,
        data=dict(parsed.raw) if parsed.raw else unstructure_record(record),
        session_id=session_id,
        uuid=record.uuid,
        parent_uuid=record.parent_uuid,
        timestamp=record.timestamp,
    )
    return (event,), None


def _cost_state(record: rec.CostStateRecord, _: ParsedRecord) -> _Outcome:
    return (), CostState(
        total_cost_usd=record.total_cost_usd,
        total_duration_ms=record.total_duration,
        total_api_duration_ms=record.total_api_duration,
        total_api_duration_without_retries_ms=record.total_api_duration_without_retries,
        total_tool_duration_ms=record.total_tool_duration,
        lines_added=record.total_lines_added,
        lines_removed=record.total_lines_removed,
        has_unknown_model_cost=record.has_unknown_model_cost,
        session_id=record.session_id,
    )


_HANDLERS: Mapping[type[Any], Callable[[Any, ParsedRecord], _Outcome]] = {
    rec.UserRecord: _user,
    rec.AssistantRecord: _assistant,
    rec.SystemRecord: _system,
    rec.CostStateRecord: _cost_state,
}


def _blocks(blocks: Iterable[rec.BlockRecord]) -> tuple[ContentBlock, ...]:
    result: list[ContentBlock] = []
    for block in blocks:
        if isinstance(block, rec.TextBlockRecord):
            result.append(TextBlock(block.text))
        elif isinstance(block, rec.ThinkingBlockRecord):
            result.append(ThinkingBlock(block.thinking, signature=block.signature))
        elif isinstance(block, rec.ToolUseBlockRecord):
            result.append(ToolUseBlock(id=block.id, name=block.name, input=block.input))
        elif isinstance(block, rec.ToolResultBlockRecord):
            content = block.content
            result.append(
                ToolResultBlock(
                    tool_use_id=block.tool_use_id,
                    content="" if content is None else _result_content(content),
                    is_error=bool(block.is_error),
                )
            )
    return tuple(result)


def _result_content(content: str | list[Any]) -> str | tuple[dict[str, Any], ...]:
    if isinstance(content, str):
        return content
    return tuple(item for item in content if isinstance(item, dict))


def _usage(usage: rec.UsageRecord | None) -> Usage:
    if usage is None:
        return Usage()
    cache = usage.cache_creation
    server = usage.server_tool_use
    return Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
        cache_read_input_tokens=usage.cache_read_input_tokens or 0,
        cache_creation=None
        if cache is None
        else CacheCreation(
            ephemeral_5m_input_tokens=cache.ephemeral_5m_input_tokens,
            ephemeral_1h_input_tokens=cache.ephemeral_1h_input_tokens,
        ),
        server_tool_use=None
        if server is None
        else ServerToolUse(
            web_search_requests=server.web_search_requests,
            web_fetch_requests=server.web_fetch_requests,
        ),
        service_tier=usage.service_tier,
    )


def _api_error(record: rec.AssistantRecord, text: str, raw: Mapping[str, Any]) -> APIError:
    message = text or f"API error ({record.error or 'unknown'})"
    status = record.api_error_status
    if status is None and (match := _API_ERROR_STATUS.match(text)):
        status = int(match[1])
    if record.api_error == "connection_failed":
        return APIConnectionError(message, status=status)
    if record.error == "authentication_failed" or status == 401:
        return AuthError(message, status=status or 401)
    if record.error == "rate_limit" or record.api_error == "usage_limit_reached" or status == 429:
        # A usage limit's record holds its exact reset; the wait is counted from it.
        now = record.timestamp or datetime.now(UTC)
        error = rate_limit_error(message, notice=None, now=now, record=raw)
        error.status = status or 429
        return error
    if status == 529:
        return OverloadedError(message, status=529)
    return APIError(message, status=status)


# --- usage and turns -------------------------------------------------------------------------


def _add_usage(a: Usage, b: Usage) -> Usage:
    return Usage(
        input_tokens=a.input_tokens + b.input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        cache_creation_input_tokens=a.cache_creation_input_tokens + b.cache_creation_input_tokens,
        cache_read_input_tokens=a.cache_read_input_tokens + b.cache_read_input_tokens,
        cache_creation=_add_optional(a.cache_creation, b.cache_creation, _add_cache_creation),
        server_tool_use=_add_optional(a.server_tool_use, b.server_tool_use, _add_server_tool_use),
        service_tier=b.service_tier or a.service_tier,
    )


def _add_optional(a: _T | None, b: _T | None, add: Callable[[_T, _T], _T]) -> _T | None:
    if a is None or b is None:
        return b if a is None else a
    return add(a, b)


def _add_cache_creation(a: CacheCreation, b: CacheCreation) -> CacheCreation:
    return CacheCreation(
        ephemeral_5m_input_tokens=a.ephemeral_5m_input_tokens + b.ephemeral_5m_input_tokens,
        ephemeral_1h_input_tokens=a.ephemeral_1h_input_tokens + b.ephemeral_1h_input_tokens,
    )


def _add_server_tool_use(a: ServerToolUse, b: ServerToolUse) -> ServerToolUse:
    return ServerToolUse(
        web_search_requests=a.web_search_requests + b.web_search_requests,
        web_fetch_requests=a.web_fetch_requests + b.web_fetch_requests,
    )


@final
class UsageTally:
    """Sums token usage once per distinct API message id.

    Every record of one API message carries that whole message's usage, so adding each
    record's usage would count a two-block reply twice. The tally keeps one usage per
    message id (the latest seen), so adding a message again, or another block of it,
    changes nothing.

    Example::

        tally = UsageTally()
        for event in events:
            if isinstance(event, AssistantMessage):
                tally.add(event)
        tally.total()
    """

    __slots__ = ("_by_id",)

    def __init__(self) -> None:
        self._by_id: dict[str, Usage] = {}

    def add(self, message: AssistantMessage) -> None:
        """Count *message*'s usage, unless its ``id`` was counted already.

        Args:
            message: An assistant message (one block of an API message, or all of it).
        """
        self._by_id[message.id] = message.usage

    @property
    def message_ids(self) -> tuple[str, ...]:
        """The distinct message ids counted, in the order first seen."""
        return tuple(self._by_id)

    def total(self) -> Usage:
        """Return the usage summed over the distinct messages."""
        total = Usage()
        for usage in self._by_id.values():
            total = _add_usage(total, usage)
        return total


def sum_usage(messages: Iterable[AssistantMessage]) -> Usage:
    """Sum the usage of *messages*, counting each message ``id`` once.

    Args:
        messages: Assistant messages, for instance every one of a turn.

    Returns:
        The summed usage.
    """
    tally = UsageTally()
    for message in messages:
        tally.add(message)
    return tally.total()


def merge_assistant_messages(events: Iterable[Event]) -> list[Event]:
    """Join consecutive per-block `AssistantMessage` s of one API message.

    Runs of assistant messages with the same ``id`` become one message whose content is
    their blocks in order; the rest (``stop_reason``, ``usage``, ``uuid`` …) comes from the
    last of the run, and ``parent_uuid`` from the first. Other events pass through.

    Args:
        events: Events in the order they were read.

    Returns:
        The events with each API message whole, as the Messages API would return it.
    """
    merged: list[Event] = []
    for event in events:
        previous = merged[-1] if merged else None
        if (
            isinstance(event, AssistantMessage)
            and isinstance(previous, AssistantMessage)
            and previous.id == event.id
        ):
            merged[-1] = attrs.evolve(
                event,
                content=previous.content + event.content,
                parent_uuid=previous.parent_uuid,
            )
        else:
            merged.append(event)
    return merged


@final
class TurnAccumulator:
    """Collects one turn's normalized records and builds its `ResultMessage`.

    Feed it everything `normalize` returns between the user's prompt and the end of the
    turn (`Normalized.ends_turn`), and records after that if you like (a ``cost-state``
    may follow). It never double-counts usage: it sums it with a `UsageTally`.
    """

    __slots__ = ("_cost", "_end", "_session_id", "_stop_reason", "_tally")

    def __init__(self) -> None:
        self._tally = UsageTally()
        self._stop_reason: str | None = None
        self._session_id: str | None = None
        self._cost: float | None = None
        self._end: TurnEnd | TurnFailed | TurnInterrupted | None = None

    def add(self, item: Normalized) -> None:
        """Take in the events and the signal of one record.

        Args:
            item: What `normalize` returned for the record.
        """
        for event in item.events:
            self.add_event(event)
        if item.signal is not None:
            self.add_signal(item.signal)

    def add_event(self, event: Event) -> None:
        """Take in one event.

        Args:
            event: An event of this turn.
        """
        if isinstance(event, AssistantMessage):
            self._tally.add(event)
            self._stop_reason = event.stop_reason
        if isinstance(event, AssistantMessage | UserMessage | SystemMessage):
            self._session_id = self._session_id or event.session_id

    def add_signal(self, signal: Signal) -> None:
        """Take in one signal; the first end of turn wins.

        Args:
            signal: A signal of this turn.
        """
        self._session_id = self._session_id or signal.session_id
        if isinstance(signal, CostState):
            if signal.total_cost_usd is not None:
                self._cost = signal.total_cost_usd
        elif self._end is None:
            self._end = signal

    @property
    def end(self) -> TurnEnd | TurnFailed | TurnInterrupted | None:
        """The signal that ended the turn, or None while it runs."""
        return self._end

    def result(self) -> ResultMessage:
        """Return the `ResultMessage` of what was added so far."""
        end = self._end
        return ResultMessage(
            usage=self._tally.total(),
            num_api_messages=len(self._tally.message_ids),
            stop_reason=self._stop_reason,
            duration_ms=end.duration_ms if isinstance(end, TurnEnd) else None,
            session_id=self._session_id,
            total_cost_usd=self._cost,
            is_error=isinstance(end, TurnFailed),
            interrupted=isinstance(end, TurnInterrupted),
        )
