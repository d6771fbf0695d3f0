"""The backend: ``complete(messages)`` over a pool of live conversations.

Each live ``claude`` process is a *slot*: a task in the backend's nursery that holds one
`open_conversation` block open while the process is useful. A slot is keyed by
`hash_history` of the history its process holds. ``complete(messages)`` looks up
``hash_history(messages[:-1])``: an idle slot with that key gets the new user message
typed into it; otherwise a new process is started, fresh for an empty history, else
re-seeded with the history (``native_jsonl`` or ``concat_message``). After the turn the
slot is re-keyed by the history including the new message.

A slot whose turn failed, was interrupted or was abandoned holds a history the caller
does not have (the CLI keeps the failed prompt), so it is closed, never reused. Idle slots
expire after ``idle_ttl`` (a trio timer in the slot's task), and the least recently used
idle slot is closed when a new process needs room under ``max_live``.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Final, final

import attrs
import trio

from ._conversation import Conversation, open_conversation
from ._events import Event, ResultMessage
from ._history import check_messages, fold_history, hash_history, prompt_text
from ._inject import seed_transcript
from ._options import BackendOptions
from ._util import check_trio, single_error_unwrapped

_INF: Final = math.inf


@attrs.frozen(kw_only=True)
class BackendStatistics:
    """Counts of what a backend has done so far.

    Attributes:
        live: ``claude`` processes alive now (starting and closing ones included).
        busy: Of those, the ones running a turn.
        spawned: Processes started in all.
        reused: Turns typed into a process that was already live.
        reseeded: Processes started with a history to re-seed.
        evicted: Idle processes closed to make room under ``max_live``.
        expired: Idle processes closed after ``idle_ttl``.
        discarded: Processes closed because their turn failed or was abandoned.
    """

    live: int
    busy: int
    spawned: int
    reused: int
    reseeded: int
    evicted: int
    expired: int
    discarded: int


@attrs.define(eq=False)
class _Slot:
    key: str
    last_used: float
    busy: bool = True
    closing: bool = False
    conversation: Conversation | None = None
    changed: trio.Event = attrs.field(factory=trio.Event)
    gone: trio.Event = attrs.field(factory=trio.Event)

    def poke(self) -> None:
        self.changed.set()
        self.changed = trio.Event()

    def close(self) -> None:
        self.closing = True
        self.poke()

    @property
    def usable(self) -> bool:
        conversation = self.conversation
        return (
            conversation is not None
            and not self.closing
            and not conversation.process.output_ended
            and not conversation.history_diverged
        )


@final
class ClaudeCodeBackend:
    """Answers Anthropic-shaped ``messages`` with live ``claude`` processes.

    Use it as ``async with ClaudeCodeBackend(options) as backend:`` (or
    `open_backend`); the block owns a nursery in which the processes live between
    calls, and leaving it ends them all. `complete` is an async generator of events.

    Args:
        options: How to run the CLI, and the pool policy.
    """

    def __init__(self, options: BackendOptions) -> None:
        self.options = options
        self._conversation_options = options.conversation_options()
        self._slots: list[_Slot] = []
        self._nursery: trio.Nursery | None = None
        self._lifetime: AbstractAsyncContextManager[None] | None = None
        self._changed = trio.Event()
        self._counts = dict.fromkeys(
            ("spawned", "reused", "reseeded", "evicted", "expired", "discarded"), 0
        )

    async def __aenter__(self) -> ClaudeCodeBackend:
        check_trio("ClaudeCodeBackend")
        if self._lifetime is not None:
            raise RuntimeError("a ClaudeCodeBackend can be entered only once")
        self._lifetime = self._run()
        await self._lifetime.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        assert self._lifetime is not None
        return await self._lifetime.__aexit__(exc_type, exc, traceback)

    @asynccontextmanager
    async def _run(self) -> AsyncIterator[None]:
        with single_error_unwrapped():
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                try:
                    yield
                finally:
                    self._nursery = None
                    for slot in self._slots:
                        slot.close()

    def statistics(self) -> BackendStatistics:
        """Return counts of what the backend has done so far."""
        return BackendStatistics(
            live=len(self._slots),
            busy=sum(slot.busy for slot in self._slots),
            **self._counts,
        )

    def live_session_ids(self) -> list[str]:
        """Return the session ids of the live processes (for diagnostics)."""
        return [
            slot.conversation.session_id for slot in self._slots if slot.conversation is not None
        ]

    def complete(self, messages: Sequence[Mapping[str, Any]]) -> AsyncGenerator[Event, None]:
        """Answer the last user message of *messages*; iterate over the events.

        The messages are checked at once, before any process is touched. The events are
        those of `Conversation.turn`: assistant messages (one per content block), tool
        results, retry status, and last a `ResultMessage`.

        Args:
            messages: The conversation in the Messages API shape, ending with the user's
                new message (text only: the CLI is typed into).

        Raises:
            InputError: If *messages* is not a valid conversation ending with a user's
                text message (raised by this call, not by the iteration).
            RuntimeError: If the backend is not open.

        The iteration raises what `Conversation.turn` raises.
        """
        check_messages(messages)
        if self._nursery is None:
            raise RuntimeError("use the backend inside `async with ClaudeCodeBackend(...)`")
        return self._complete(list(messages))

    async def _complete(self, messages: list[Mapping[str, Any]]) -> AsyncGenerator[Event, None]:
        slot, text = await self._take(messages)
        conversation = slot.conversation
        assert conversation is not None
        released = False
        events = conversation.turn(text)
        try:
            async for event in events:
                if isinstance(event, ResultMessage):
                    # Free the slot before the last event: a caller may stop right there.
                    released = True
                    self._release(slot, messages, finished=True)
                yield event
        finally:
            with trio.CancelScope(shield=True):
                await events.aclose()
            if not released:
                self._release(slot, messages, finished=False)

    def _release(self, slot: _Slot, messages: list[Mapping[str, Any]], *, finished: bool) -> None:
        slot.busy = False
        slot.last_used = trio.current_time()
        if finished and slot.usable:
            slot.key = hash_history(messages)
        elif not slot.closing:
            self._counts["discarded"] += 1
            slot.close()
        slot.poke()
        self._poke()

    async def _take(self, messages: list[Mapping[str, Any]]) -> tuple[_Slot, str]:
        history = messages[:-1]
        key = hash_history(history)
        last_text = prompt_text(messages)
        for slot in list(self._slots):
            if slot.busy or slot.closing:
                continue
            if not slot.usable:
                self._counts["discarded"] += 1
                slot.close()
            elif slot.key == key:
                slot.busy = True
                slot.poke()
                self._counts["reused"] += 1
                return slot, last_text
        await self._make_room()
        if self._nursery is None:
            raise RuntimeError("the backend closed while waiting for room")
        slot = _Slot(key=key, last_used=trio.current_time())
        self._slots.append(slot)
        session_id = str(uuid.uuid4())
        resume = False
        text = last_text
        seeded: Path | None = None
        try:
            if history and self.options.injection_mode == "native_jsonl":
                options = self._conversation_options
                seed = seed_transcript(
                    options.resolved_config_dir(), options.cwd, session_id, messages
                )
                seeded, resume, text = seed.path, seed.path is not None, seed.prompt
            elif history:
                text = fold_history(messages)
            await self._nursery.start(self._serve, slot, session_id, resume)
        except BaseException:
            self._slots.remove(slot)
            self._poke()
            if seeded is not None and slot.conversation is None:
                seeded.unlink(missing_ok=True)
            raise
        self._counts["spawned"] += 1
        self._counts["reseeded"] += bool(history)
        return slot, text

    async def _make_room(self) -> None:
        while len(self._slots) >= self.options.max_live:
            idle = [slot for slot in self._slots if not slot.busy and not slot.closing]
            if idle:
                victim = min(idle, key=lambda slot: slot.last_used)
                self._counts["evicted"] += 1
                victim.close()
                await victim.gone.wait()
            else:
                await self._changed.wait()

    async def _serve(
        self,
        slot: _Slot,
        session_id: str,
        resume: bool,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            async with open_conversation(
                self._conversation_options,
                session_id=None if resume else session_id,
                resume=session_id if resume else None,
            ) as conversation:
                slot.conversation = conversation
                task_status.started()
                ttl = self.options.idle_ttl
                while not slot.closing:
                    changed = slot.changed
                    deadline = _INF if slot.busy or ttl is None else slot.last_used + ttl
                    with trio.move_on_at(deadline) as timer:
                        await changed.wait()
                    if timer.cancelled_caught and not slot.busy:
                        self._counts["expired"] += 1
                        slot.closing = True
        finally:
            slot.gone.set()
            if slot in self._slots:
                self._slots.remove(slot)
            self._poke()

    def _poke(self) -> None:
        self._changed.set()
        self._changed = trio.Event()


@asynccontextmanager
async def open_backend(options: BackendOptions) -> AsyncIterator[ClaudeCodeBackend]:
    """Open a `ClaudeCodeBackend`; the same as ``async with ClaudeCodeBackend(options)``.

    Args:
        options: How to run the CLI, and the pool policy.
    """
    async with ClaudeCodeBackend(options) as backend:
        yield backend
