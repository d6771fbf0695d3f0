"""A turn's live deltas merged with its whole messages: what a streamed reply sends, when.

Sans-I/O: nothing here reads, waits or imports trio. With ``partial_messages=True`` a turn
shows each API response twice: as `StreamEvent` s while it streams (the relay's view),
then as `AssistantMessage` s (the session file's view, the source of truth). A streamed
reply must send each content block once, in the session file's order, and as early as it
can. `DeltaMerger` takes the turn's events as they come and gives *steps*: a block opened,
some text added to it, its signature, the block closed, or a whole event to send as the
gateway always did (`WholeEvent`). Without stream events every event is a `WholeEvent`, at
once and unchanged.

The rules:

* Only the main thread counts: a sub-agent's stream events (``parent_tool_use_id``) are
  dropped. Only text and thinking blocks are streamed; tool calls, their results and any
  block no delta announced pass whole.
* A streamed block opens at its first non-empty delta once it is surely the next block of
  the reply: every block before it (its own message's, and earlier messages') has been
  sent or has come whole, and every tool call announced before it has its result (the
  relay and the session file are two channels: the next response may stream before the
  last one's records arrive). Until then its deltas are kept, and then sent as one.
* It closes at its ``content_block_stop``. A whole event that comes while it is open waits
  for that.
* Its `AssistantMessage` is then not sent again. When the record's text goes on past what
  the deltas sent (a stream cut short), the rest is added before the block closes, or
  comes as a block of its own when the block had already closed. When the record
  disagrees with what was sent (it should not happen: a delta cannot be taken back), the
  record's block is sent whole as well: the reply holds the session file's text, after
  the streamed one.
* A stream cut short (an ``error`` event, or a new ``message_start`` before the block's
  stop) leaves its open block open. The next block to send (a retried response's, streamed
  or whole) continues it when its text begins with what was sent; otherwise the cut block
  is closed as it is, and the text of the failed attempt stays in the reply. After an
  ``error`` event (the CLI then retries without streaming), no new block streams until a
  record of another response arrives: the retry's records come first. A record of a
  response that did not stream, arriving while a block streams, cuts that block's stream
  too (its retry is there; the relay said nothing).
* A block no record ever confirms (a stream cut short with no retry, an interrupted turn)
  stays in the reply as far as it was sent; one never sent is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, TypeAlias

import attrs

from ._events import (
    AssistantMessage,
    ContentBlock,
    Event,
    StreamEvent,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)

StreamedKind: TypeAlias = Literal["text", "thinking"]

_STREAMED: Final = frozenset({"text", "thinking"})
# The stream's block types that come back as a record the gateway shows.
_RECORDED: Final = frozenset({"text", "thinking", "tool_use"})


@attrs.frozen
class BlockOpened:
    """A streamed block begins (``content_block_start``).

    Attributes:
        kind: ``text`` or ``thinking``.
        message_id: The API message it belongs to.
    """

    kind: StreamedKind
    message_id: str


@attrs.frozen
class BlockText:
    """More text (or thinking) for the open block.

    Attributes:
        kind: ``text`` or ``thinking``, the open block's.
        text: The piece to add.
        message_id: The API message that gave it (a retry continuing a cut block has its
            own).
    """

    kind: StreamedKind
    text: str
    message_id: str


@attrs.frozen
class BlockSigned:
    """The open thinking block's signature (it replaces any earlier one).

    Attributes:
        signature: The signature.
    """

    signature: str


@attrs.frozen
class BlockClosed:
    """The open block ends (``content_block_stop``)."""


@attrs.frozen
class WholeEvent:
    """An event to send whole, as the gateway does without stream events.

    Attributes:
        event: The event, or a copy of an `AssistantMessage` holding only the blocks
            that were not streamed.
    """

    event: Event


Step: TypeAlias = BlockOpened | BlockText | BlockSigned | BlockClosed | WholeEvent
"""What `DeltaMerger` gives: a streamed block's steps, or a `WholeEvent`."""


@attrs.define(eq=False)
class _Message:
    id: str
    seq: int
    blocks: dict[int, _Block] = attrs.Factory(dict)
    cursor: int = 0  # the lowest stream index a record may still match


@attrs.define(eq=False)
class _Block:
    message: _Message
    kind: str
    tool_use_id: str | None = None
    text: str = ""  # every text (or thinking) delta received, or the record's text
    signature: str | None = None
    stopped: bool = False  # the stream's content_block_stop came (or the record did)
    cut: bool = False  # open when its stream ended without its stop
    opened: bool = False
    sent: int = 0  # characters of text sent
    sent_signature: str | None = None
    closed: bool = False
    matched: bool = False  # its record came
    abandoned: bool = False  # its record will not come

    @property
    def settled(self) -> bool:
        """Whether the reply is past this block: nothing of it is still to come."""
        return (
            self.closed
            or self.matched
            or self.abandoned
            or self.kind not in _RECORDED
            or (self.stopped and self.kind in _STREAMED and not self.text and not self.signature)
        )


class DeltaMerger:
    """Merge a turn's stream events with its whole messages into the steps of one reply.

    Feed it every event of the turn in the order they come, then call `finish`; send the
    steps in order. See the module's docstring for the rules.
    """

    def __init__(self) -> None:
        self._messages: list[_Message] = []
        self._by_id: dict[str, _Message] = {}
        self._current: _Message | None = None  # the message streaming now
        self._open: _Block | None = None  # the block sent as open
        self._waiting: list[Event] = []  # whole events not sent yet, in order
        # Tool calls whose results are still to come: id -> the seq of the streamed message
        # that made it (None: a message that did not stream).
        self._owed: dict[str, int | None] = {}
        self._held_by: str | None = None  # after an `error` event: the failed message
        self._unstreamed: set[str] = set()  # the ids of records no stream announced
        self._finished = False

    def feed(self, event: Event) -> list[Step]:
        """Take one event of the turn; return the steps it lets out, in order."""
        if isinstance(event, StreamEvent):
            if event.parent_tool_use_id is None:
                self._stream(event.event)
        elif isinstance(event, AssistantMessage):
            self._record(event)
        else:
            if isinstance(event, UserMessage) and not isinstance(event.content, str):
                for block in event.content:
                    if isinstance(block, ToolResultBlock):
                        self._owed.pop(block.tool_use_id, None)
            self._waiting.append(event)
        return self._advance()

    def finish(self) -> list[Step]:
        """The last steps, at the turn's end: what waits is sent, the open block closed.

        A streamed block that was never sent, nor confirmed by a record, is dropped.
        """
        self._finished = True
        if self._open is not None:
            self._open.cut = True  # its stream is over, whatever it said
        steps = self._advance()
        if self._open is not None:
            steps += self._forward(self._open, close=True)
        return steps

    # --- the stream ------------------------------------------------------------------------

    def _stream(self, data: Mapping[str, Any]) -> None:
        kind = data.get("type")
        if kind == "message_start":
            self._end_stream()
            message = data.get("message")
            message_id = message.get("id") if isinstance(message, Mapping) else None
            if not isinstance(message_id, str):
                message_id = f"<stream {len(self._messages)}>"  # no record will match it
            current = _Message(id=message_id, seq=len(self._messages))
            self._messages.append(current)
            self._by_id[message_id] = current
            self._current = current
            return
        if kind == "error":
            self._held_by = self._current.id if self._current is not None else ""
            self._end_stream(failed=True)
            return
        if kind == "message_stop":
            self._end_stream()
            return
        message = self._current
        index = data.get("index")
        if message is None or not isinstance(index, int):
            return
        if kind == "content_block_start":
            self._start_block(message, index, data.get("content_block"))
            return
        block = message.blocks.get(index)
        if block is None or block.closed:
            return
        if kind == "content_block_stop":
            block.stopped = True
        elif kind == "content_block_delta":
            delta = data.get("delta")
            if isinstance(delta, Mapping):
                _add_delta(block, delta)

    def _start_block(self, message: _Message, index: int, content_block: object) -> None:
        if not isinstance(content_block, Mapping):
            return
        block = _Block(message=message, kind=str(content_block.get("type")))
        if block.kind == "tool_use" and isinstance(content_block.get("id"), str):
            block.tool_use_id = content_block["id"]
            self._owed[content_block["id"]] = message.seq
        elif block.kind in _STREAMED:
            text = content_block.get(block.kind)
            block.text = text if isinstance(text, str) else ""
            signature = content_block.get("signature")
            block.signature = (signature or None) if isinstance(signature, str) else None
        message.blocks[index] = block

    def _end_stream(self, *, failed: bool = False) -> None:
        """The current message's stream ended; when it *failed* or was cut short, none of
        its records is waited for, nor its tool calls' results (the CLI runs no tool of a
        response it did not get whole), and its open block is cut."""
        message, self._current = self._current, None
        if message is None:
            return
        if not failed and all(block.stopped for block in message.blocks.values()):
            return
        for block in message.blocks.values():
            if block is self._open and not block.stopped:
                block.cut = True
            elif not block.opened:
                block.abandoned = True
            if block.tool_use_id is not None:
                self._owed.pop(block.tool_use_id, None)

    # --- the records -------------------------------------------------------------------------

    def _record(self, event: AssistantMessage) -> None:
        if self._held_by is not None and event.id != self._held_by:
            self._held_by = None
        message = self._by_id.get(event.id)
        if message is None:
            if self._open is not None and not self._open.cut and event.id not in self._unstreamed:
                # A response that did not stream, while one streams: that one failed
                # without a word from the relay, and this is its retry.
                self._end_stream(failed=True)
            self._unstreamed.add(event.id)
            for block in event.content:
                if isinstance(block, ToolUseBlock):
                    self._owed.setdefault(block.id, None)
            self._waiting.append(event)
            return
        self._settle_before(message)
        pending: list[ContentBlock] = []
        split = False
        for content in event.content:
            streamed = self._match(message, content)
            if isinstance(content, ToolUseBlock):
                self._owed.setdefault(content.id, message.seq)
            if streamed is None or not streamed.opened:
                pending.append(content)
                continue
            split = True
            if pending:
                self._waiting.append(attrs.evolve(event, content=pending))
                pending = []
            self._confirm(streamed, content, event)
        if not split:
            self._waiting.append(event)
        elif pending:
            self._waiting.append(attrs.evolve(event, content=pending))

    def _settle_before(self, message: _Message) -> None:
        """A record of *message* came: every record of the streamed messages before it has."""
        for earlier in self._messages[: message.seq]:
            for block in earlier.blocks.values():
                if not block.settled and not block.opened:
                    block.abandoned = True
        for tool_use_id, seq in list(self._owed.items()):
            if seq is not None and seq < message.seq:
                del self._owed[tool_use_id]

    def _match(self, message: _Message, content: ContentBlock) -> _Block | None:
        """The stream's block that the record's *content* is: the next one of its type."""
        kind = _kind_of(content)
        for index, block in message.blocks.items():
            if index < message.cursor or block.kind != kind or block.matched:
                continue
            for skipped_index, skipped in message.blocks.items():
                if message.cursor <= skipped_index < index and not skipped.opened:
                    skipped.abandoned = True
            block.matched = True
            message.cursor = index + 1
            return block
        return None

    def _confirm(self, block: _Block, content: ContentBlock, event: AssistantMessage) -> None:
        """The record of a block that streamed: finish it with the record's truth."""
        final, signature = _text_of(content), _signature_of(content)
        sent = block.text[: block.sent]
        if not block.closed:  # open now (live or cut): the record's text ends it
            block.stopped, block.cut = True, False
            if final.startswith(sent):
                block.text = final
                block.signature = signature
            else:
                block.text = sent
                self._waiting.append(attrs.evolve(event, content=[content]))
            return
        if final == sent and (signature or None) == block.sent_signature:
            return
        if isinstance(content, TextBlock) and final.startswith(sent):
            rest = TextBlock(text=final[len(sent) :])
            self._waiting.append(attrs.evolve(event, content=[rest]))
        else:
            self._waiting.append(attrs.evolve(event, content=[content]))

    # --- sending ---------------------------------------------------------------------------

    def _advance(self) -> list[Step]:
        """Send all that may go now, in order."""
        steps: list[Step] = []
        while True:
            open_block = self._open
            if open_block is not None and not open_block.cut:
                steps += self._forward(open_block, close=open_block.stopped)
                if self._open is not None:
                    break  # still streaming: everything else waits for it
                continue
            if self._waiting:
                steps += self._send_whole(self._waiting.pop(0))
                continue
            following = self._next_block()
            if following is None:
                break
            if open_block is not None:  # cut short: does the next block go on with it?
                sent = open_block.text[: open_block.sent]
                if following.kind == open_block.kind and following.text.startswith(sent):
                    open_block.closed = True
                    following.opened, following.sent = True, len(sent)
                    following.sent_signature = open_block.sent_signature
                    self._open = following
                    continue
                if (
                    following.kind == open_block.kind
                    and sent.startswith(following.text)
                    and not following.stopped
                ):
                    break  # too short to tell yet
                steps += self._forward(open_block, close=True)
            kind: StreamedKind = "text" if following.kind == "text" else "thinking"
            steps.append(BlockOpened(kind, following.message.id))
            following.opened = True
            self._open = following
        return steps

    def _forward(self, block: _Block, *, close: bool) -> list[Step]:
        """The open *block*'s new text and signature, and its end when *close*."""
        kind: StreamedKind = "text" if block.kind == "text" else "thinking"
        steps: list[Step] = []
        if len(block.text) > block.sent:
            steps.append(BlockText(kind, block.text[block.sent :], block.message.id))
            block.sent = len(block.text)
        if block.signature is not None and block.signature != block.sent_signature:
            steps.append(BlockSigned(block.signature))
            block.sent_signature = block.signature
        if close:
            steps.append(BlockClosed())
            block.closed = True
            self._open = None
        return steps

    def _send_whole(self, event: Event) -> list[Step]:
        """Send a whole *event*; a cut block still open is continued by it, or closed."""
        cut = self._open
        if cut is None or not _shows(event):
            return [WholeEvent(event)]
        assert isinstance(event, AssistantMessage | UserMessage)
        first = event.content[0] if not isinstance(event.content, str) else None
        sent = cut.text[: cut.sent]
        if (
            isinstance(event, AssistantMessage)
            and first is not None
            and _kind_of(first) == cut.kind
            and _text_of(first).startswith(sent)
        ):
            kind: StreamedKind = "text" if cut.kind == "text" else "thinking"
            steps: list[Step] = []
            if len(_text_of(first)) > len(sent):
                steps.append(BlockText(kind, _text_of(first)[len(sent) :], event.id))
            signature = _signature_of(first)
            if signature is not None and signature != cut.sent_signature:
                steps.append(BlockSigned(signature))
            steps.append(BlockClosed())
            cut.closed, self._open = True, None
            rest = event.content[1:]
            return [*steps, WholeEvent(attrs.evolve(event, content=rest))] if rest else steps
        steps = self._forward(cut, close=True)
        return [*steps, WholeEvent(event)]

    def _next_block(self) -> _Block | None:
        """The streamed block that is surely the reply's next, if one may open now."""
        if self._held_by is not None or self._finished:
            return None
        for message in self._messages:
            for block in message.blocks.values():
                if block is self._open or block.settled:
                    continue
                if (
                    block.kind not in _STREAMED
                    or block.opened
                    or not (block.text or block.signature)
                ):
                    return None
                if any(seq != message.seq for seq in self._owed.values()):
                    return None
                return block
        return None


def _add_delta(block: _Block, delta: Mapping[str, Any]) -> None:
    kind = delta.get("type")
    if kind == "text_delta" and block.kind == "text" and isinstance(delta.get("text"), str):
        block.text += delta["text"]
    elif block.kind == "thinking":
        if kind == "thinking_delta" and isinstance(delta.get("thinking"), str):
            block.text += delta["thinking"]
        elif kind == "signature_delta" and isinstance(delta.get("signature"), str):
            block.signature = delta["signature"]


def _kind_of(block: ContentBlock) -> str:
    return block.type


def _text_of(block: ContentBlock) -> str:
    if isinstance(block, TextBlock):
        return block.text
    if isinstance(block, ThinkingBlock):
        return block.thinking
    return ""


def _signature_of(block: ContentBlock) -> str | None:
    return block.signature if isinstance(block, ThinkingBlock) else None


def _shows(event: Event) -> bool:
    """Whether *event* has blocks a reply may show (a cut block then ends before them)."""
    if isinstance(event, AssistantMessage):
        return bool(event.content)
    return isinstance(event, UserMessage) and not isinstance(event.content, str)
