"""The backend: ``complete(messages)`` over a pool of live conversations.

Each live ``claude`` process is a *slot*: a task in the backend's nursery that holds one
`open_conversation` block open while the process is useful. A slot is keyed by how its
process was started (the call's namespace, model and system prompt) and by
`hash_history` of the history it holds. ``complete(messages)`` looks up the same start
and ``hash_history(messages[:-1])``: an idle slot with that key gets the new user message
typed into it; otherwise a new process is started, fresh for an empty history, else
re-seeded with the history (``native_jsonl`` or ``concat_message``). After the turn the
slot is re-keyed by the history including the new message and the reply it produced.

A slot whose turn failed, was interrupted or was abandoned holds a history the caller
does not have (the CLI keeps the failed prompt), so it is closed, never reused. Idle slots
expire after ``idle_ttl`` (a trio timer in the slot's task), and the least recently used
idle slot is closed when a new process needs room under ``max_live``. An idle slot whose
process exits is closed at once.

With ``prewarm=N`` a task of the backend keeps N *spare* slots: processes started with a
fresh session and nothing typed, ready before any call needs them. A call that would
start a fresh process with the backend's own options (no history, or a
``concat_message`` re-seed) takes a spare instead, whatever its namespace: a spare has
never held anyone's message. Spares are started only into free room under
``max_live`` (never ahead of a call waiting for room), and expire and are evicted like
any idle slot.
"""

from __future__ import annotations

import contextlib
import math
import os
import uuid
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Final, final

import attrs
import trio

from ._conversation import Conversation, open_conversation
from ._errors import BackendError, BackendTimeoutError, ProcessError, SessionError
from ._events import AssistantMessage, Event, ResultMessage, SystemMessage, TextBlock
from ._history import History, fold_history, parse_history
from ._inject import seed_transcript
from ._inotify import InotifyHub, open_inotify_hub
from ._locate import PINNED_CLI_VERSION, find_cli
from ._options import BackendOptions, ConversationOptions
from ._paths import remove_session_files
from ._ratelimits import RateLimits
from ._relay import Relay, RelayStatistics, open_relay
from ._util import check_trio, single_error_unwrapped

_INF: Final = math.inf
# A spare that failed to start is tried again after this long, doubling up to the last.
_SPARE_RETRY_FIRST: Final = 1.0
_SPARE_RETRY_MAX: Final = 60.0


@attrs.frozen(kw_only=True)
class BackendStatistics:
    """Counts of what a backend has done so far.

    Attributes:
        live: ``claude`` processes alive now (starting and closing ones included).
        busy: Of those, the ones running a turn.
        closing: Of those, the ones being closed (discarded, evicted or expired).
        spawned: Processes started in all.
        reused: Turns typed into a process that was already live.
        reseeded: Processes started with a history to re-seed.
        evicted: Idle processes closed to make room under ``max_live``.
        expired: Idle processes closed after ``idle_ttl``.
        discarded: Processes closed because their turn failed or was abandoned, or
            because they exited while idle.
        failed: Processes closed because their conversation failed inside (a task of
            its own or a callback raised); each one's turn raised the error, and the
            others went on.
        spares: Spare processes ready now (``prewarm``); counted in ``live`` too.
        prewarmed: Spare processes started in all; counted in ``spawned`` too.
        prewarm_used: Calls that took a spare process instead of starting one.
    """

    live: int
    busy: int
    closing: int
    spawned: int
    reused: int
    reseeded: int
    evicted: int
    expired: int
    discarded: int
    failed: int
    spares: int
    prewarmed: int
    prewarm_used: int


@attrs.frozen
class _Start:
    """How a slot's process was started, as far as a call can choose it."""

    namespace: str
    options: ConversationOptions


@attrs.define(eq=False)
class _Slot:
    start: _Start
    key: str
    last_used: float
    session_id: str
    # The session files of this slot's process (a re-seed transcript is one of them).
    files: list[Path] = attrs.field(factory=list)
    busy: bool = True
    closing: bool = False
    spare: bool = False
    # A spare's first turn runs: starting the next spare would take CPU from it.
    first_turn: bool = False
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
        self._inotify_hub: InotifyHub | None = None
        self._relay: Relay | None = None
        self._lifetime: AbstractAsyncContextManager[None] | None = None
        self._changed = trio.Event()
        self._cli_version: str | None = None
        self._version_noted = False
        self._counts = dict.fromkeys(
            (
                "spawned",
                "reused",
                "reseeded",
                "evicted",
                "expired",
                "discarded",
                "failed",
                "prewarmed",
                "prewarm_used",
            ),
            0,
        )
        self._spares_scope = trio.CancelScope()
        self._spare_error: Exception | None = None
        # Calls waiting for room under max_live: spares never take the room they wait for.
        self._waiting = 0

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
            # One inotify instance for every session file and, with partial_messages,
            # one relay for every process; the conversations (in the nursery) close
            # before them.
            async with contextlib.AsyncExitStack() as stack:
                hub = await stack.enter_async_context(open_inotify_hub())
                if self.options.partial_messages:
                    self._relay = await stack.enter_async_context(open_relay())
                nursery = await stack.enter_async_context(trio.open_nursery())
                self._inotify_hub = hub
                self._nursery = nursery
                if self.options.prewarm:
                    nursery.start_soon(self._keep_spares)
                try:
                    yield
                finally:
                    self._spares_scope.cancel()
                    self._nursery = None
                    for slot in self._slots:
                        slot.close()

    def statistics(self) -> BackendStatistics:
        """Return counts of what the backend has done so far."""
        return BackendStatistics(
            live=len(self._slots),
            busy=sum(slot.busy for slot in self._slots),
            closing=sum(slot.closing for slot in self._slots),
            spares=self._ready_spares(),
            **self._counts,
        )

    def rate_limits(self) -> RateLimits | None:
        """The API's rate-limit state from the latest response that carried any, on any
        of the backend's processes; None unless ``partial_messages`` is on (the relay
        reads it from the response headers)."""
        return None if self._relay is None else self._relay.rate_limits()

    def relay_statistics(self) -> RelayStatistics | None:
        """Counts of the relay's requests and partial events; None without the relay."""
        return None if self._relay is None else self._relay.statistics()

    async def wait_prewarmed(self) -> None:
        """Wait until ``prewarm`` spare processes are ready (at once when it is 0).

        Spares are started only into free room under ``max_live``, so with every
        process taken by conversations this waits until one closes; it waits at most
        ``startup_timeout`` in all.

        Raises:
            BackendTimeoutError: If no spare became ready within ``startup_timeout``
                (phase ``"prewarm"``).
            CLINotFoundError: Or any error `open_conversation` raises: what made the last
                start of a spare fail (raised once; the backend tries again later).
            RuntimeError: If the backend is not open.
        """
        if self._nursery is None:
            raise RuntimeError("use the backend inside `async with ClaudeCodeBackend(...)`")
        timeout = self.options.startup_timeout
        deadline = trio.current_time() + timeout
        while True:
            if self._spare_error is not None:
                error, self._spare_error = self._spare_error, None
                raise error
            ready = self._ready_spares()
            if ready >= self.options.prewarm:
                return
            with trio.move_on_at(deadline) as waited:
                await self._changed.wait()
            if waited.cancelled_caught:
                raise BackendTimeoutError(
                    f"{self.options.prewarm - ready} spare claude process(es) not ready",
                    phase="prewarm",
                    timeout=timeout,
                )

    def live_session_ids(self) -> list[str]:
        """Return the session ids of the live processes (for diagnostics)."""
        return [
            slot.conversation.session_id for slot in self._slots if slot.conversation is not None
        ]

    def complete(
        self,
        messages: Sequence[Mapping[str, Any]] | History,
        *,
        namespace: str = "",
        model: str | None = None,
        system_prompt: str | None = None,
    ) -> AsyncGenerator[Event, None]:
        """Answer the last user message of *messages*; iterate over the events.

        The messages are checked at once, before any process is touched. The events are
        those of `Conversation.turn`: assistant messages (one per content block), tool
        results, retry status, and last a `ResultMessage`.

        A live process is reused only when everything it was started with and everything
        it holds match the call: the same *namespace*, *model* and *system_prompt*, and a
        history with the same `hash_history` (the human turns and the assistant's text).
        Otherwise a new process is started and re-seeded with the history.

        Args:
            messages: The conversation in the Messages API shape, ending with the user's
                new message (text only: the CLI is typed into); or a `History` that
                `parse_history` made of it, which is not parsed again.
            namespace: Whose conversation this is (a tenant, a user). Calls of different
                namespaces never share a process, even with identical histories.
            model: The model for this call (``--model``), instead of the options'.
            system_prompt: The system prompt for this call (``--system-prompt``),
                instead of the options'.

        Raises:
            InputError: If *messages* is not a valid conversation ending with a user's
                text message (raised by this call, not by the iteration).
            TypeError: If *namespace* is not a string.
            RuntimeError: If the backend is not open.

        The iteration raises what `Conversation.turn` raises.
        """
        history = messages if isinstance(messages, History) else parse_history(messages)
        if not isinstance(namespace, str):
            raise TypeError(f"namespace must be a string, got {type(namespace).__name__}")
        if self._nursery is None:
            raise RuntimeError("use the backend inside `async with ClaudeCodeBackend(...)`")
        options = self._conversation_options
        if model is not None or system_prompt is not None:
            options = attrs.evolve(
                options,
                model=options.model if model is None else model,
                system_prompt=options.system_prompt if system_prompt is None else system_prompt,
            )
        return self._complete(history, _Start(namespace=namespace, options=options))

    async def _complete(self, history: History, start: _Start) -> AsyncGenerator[Event, None]:
        slot, text = await self._take(history, start)
        conversation = slot.conversation
        assert conversation is not None
        released = False
        reply: list[str] = []
        events = conversation.turn(text)
        try:
            notice = self._version_notice(conversation.session_id)
            if notice is not None:
                yield notice
            try:
                async for event in events:
                    if isinstance(event, AssistantMessage):
                        reply += (b.text for b in event.content if isinstance(b, TextBlock))
                    elif isinstance(event, ResultMessage):
                        # Free the slot before the last event: a caller may stop right there.
                        released = True
                        self._release(slot, history.key_after("".join(reply)))
                    yield event
            except (trio.EndOfChannel, trio.ClosedResourceError, trio.BrokenResourceError) as exc:
                if isinstance(exc, trio.ClosedResourceError) and not slot.closing:
                    raise  # this iterator was resumed after a newer turn: a caller's bug
                raise BackendError("the backend closed this conversation during the turn") from exc
        finally:
            with trio.CancelScope(shield=True):
                await events.aclose()
            if not released:
                self._release(slot, None)

    def _release(self, slot: _Slot, key: str | None) -> None:
        """Free a slot after its turn: re-keyed by *key*, or closed if None (unfinished)."""
        slot.busy = False
        slot.first_turn = False
        slot.last_used = trio.current_time()
        if key is not None and slot.usable:
            slot.key = key
        elif not slot.closing:
            failed = slot.conversation is not None and slot.conversation.failure is not None
            self._counts["failed" if failed else "discarded"] += 1
            slot.close()
        slot.poke()
        self._poke()

    async def _take(self, history: History, start: _Start) -> tuple[_Slot, str]:
        for slot in list(self._slots):
            if slot.busy or slot.closing:
                continue
            if not slot.usable:
                self._counts["discarded"] += 1
                slot.close()
            elif not slot.spare and slot.start == start and slot.key == history.key:
                slot.busy = True
                slot.poke()
                self._counts["reused"] += 1
                return slot, history.prompt
        reseed = len(history.messages) > 1
        if not reseed or self.options.injection_mode == "concat_message":
            spare = self._take_spare(start, history.key)
            if spare is not None:
                self._counts["reseeded"] += reseed
                return spare, fold_history(history) if reseed else history.prompt
        await self._check_cli_version()
        self._waiting += 1
        try:
            await self._make_room()
        finally:
            self._waiting -= 1
        if self._nursery is None:
            raise RuntimeError("the backend closed while waiting for room")
        session_id = str(uuid.uuid4())
        slot = _Slot(
            start=start, key=history.key, last_used=trio.current_time(), session_id=session_id
        )
        options = start.options
        text = history.prompt
        resume = False
        self._slots.append(slot)
        try:
            if reseed and self.options.injection_mode == "native_jsonl":
                try:
                    seed = seed_transcript(
                        options.resolved_config_dir(), options.cwd, session_id, history
                    )
                except OSError as exc:
                    raise SessionError(f"could not write the re-seed transcript: {exc}") from exc
                if seed.path is not None:
                    slot.files.append(seed.path)
                    resume = True
                text = seed.prompt
            elif reseed:
                text = fold_history(history)
            await self._nursery.start(self._serve, slot, resume)
        except BaseException:
            # _serve, when it ran, has removed the slot and its files already.
            self._drop(slot)
            raise
        self._counts["spawned"] += 1
        self._counts["reseeded"] += reseed
        return slot, text

    def _take_spare(self, start: _Start, key: str) -> _Slot | None:
        """Give a ready spare started like *start* to a call, or return None."""
        for slot in self._slots:
            if self._is_ready_spare(slot) and slot.start.options == start.options:
                slot.spare = False
                slot.start = start
                slot.key = key
                slot.busy = True
                slot.first_turn = True
                slot.poke()
                self._counts["prewarm_used"] += 1
                return slot
        return None

    @staticmethod
    def _is_ready_spare(slot: _Slot) -> bool:
        return slot.spare and not slot.busy and slot.usable

    def _ready_spares(self) -> int:
        return sum(self._is_ready_spare(slot) for slot in self._slots)

    async def _keep_spares(self) -> None:
        """Keep ``prewarm`` spares while there is free room, until the backend closes.

        A spare that fails to start is tried again later, less and less often; its
        error is kept for `wait_prewarmed` (a call that starts a process meets the same
        error itself).
        """
        retry = _SPARE_RETRY_FIRST
        with self._spares_scope:
            while True:
                changed = self._changed
                spares = sum(slot.spare and not slot.closing for slot in self._slots)
                room = self.options.max_live - len(self._slots) - self._waiting
                # A new spare is started once the turn that took the last one is over:
                # a start is a second of CPU, which that turn would wait for.
                taking = any(slot.first_turn for slot in self._slots)
                if spares >= self.options.prewarm or room <= 0 or taking:
                    await changed.wait()
                    continue
                try:
                    await self._start_spare()
                except Exception as exc:
                    self._spare_error = exc
                    self._poke()
                    await trio.sleep(retry)
                    retry = min(retry * 2, _SPARE_RETRY_MAX)
                else:
                    retry = _SPARE_RETRY_FIRST

    async def _start_spare(self) -> None:
        await self._check_cli_version()
        assert self._nursery is not None
        slot = _Slot(
            start=_Start(namespace="", options=self._conversation_options),
            key="",
            last_used=trio.current_time(),
            session_id=str(uuid.uuid4()),
            spare=True,
        )
        self._slots.append(slot)
        try:
            await self._nursery.start(self._serve, slot, False)
        except BaseException:
            self._drop(slot)
            raise
        self._counts["spawned"] += 1
        self._counts["prewarmed"] += 1
        slot.busy = False
        slot.last_used = trio.current_time()
        slot.poke()
        self._poke()

    async def _make_room(self) -> None:
        timeout = self.options.pool_timeout
        with trio.move_on_after(timeout):
            while len(self._slots) >= self.options.max_live:
                idle = [slot for slot in self._slots if not slot.busy and not slot.closing]
                if idle:
                    victim = min(idle, key=lambda slot: slot.last_used)
                    self._counts["evicted"] += 1
                    victim.close()
                    await victim.gone.wait()
                else:
                    await self._changed.wait()
            return
        raise BackendTimeoutError(
            f"all {self.options.max_live} claude processes (max_live) stayed busy",
            phase="pool",
            timeout=timeout,
        )

    async def _serve(
        self,
        slot: _Slot,
        resume: bool,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        started = False
        try:
            async with open_conversation(
                slot.start.options,
                session_id=None if resume else slot.session_id,
                resume=slot.session_id if resume else None,
                inotify_hub=self._inotify_hub,
                relay=self._relay,
            ) as conversation:
                slot.conversation = conversation
                slot.files.append(conversation.session_file)
                task_status.started()
                started = True
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._close_on_exit, slot, conversation)
                    await self._hold(slot)
                    nursery.cancel_scope.cancel()
        except Exception:
            if not started:
                raise
            # The conversation failed after it started: its own turn has raised what
            # went wrong; the backend and the other conversations go on.
            self._counts["failed"] += 1
        finally:
            self._drop(slot)

    async def _hold(self, slot: _Slot) -> None:
        """Keep a slot's process open until it is closed, expired or evicted."""
        ttl = self.options.idle_ttl
        while not slot.closing:
            changed = slot.changed
            deadline = _INF if slot.busy or ttl is None else slot.last_used + ttl
            with trio.move_on_at(deadline) as timer:
                await changed.wait()
            if timer.cancelled_caught and not slot.busy:
                self._counts["expired"] += 1
                slot.closing = True

    async def _close_on_exit(self, slot: _Slot, conversation: Conversation) -> None:
        """Close *slot* when its process exits while idle (a busy one's turn sees it)."""
        await conversation.process.wait()
        if not slot.busy and not slot.closing:
            self._counts["discarded"] += 1
            slot.close()
        self._poke()

    def _drop(self, slot: _Slot) -> None:
        """Forget a slot whose process is gone, and remove the files it left (once)."""
        slot.closing = True
        slot.gone.set()
        if slot in self._slots:
            self._slots.remove(slot)
        if not self.options.keep_sessions:
            for path in slot.files:
                # Clean-up is best effort: a file that cannot go must not end the backend.
                with contextlib.suppress(OSError):
                    remove_session_files(path)
        slot.files.clear()
        self._poke()

    async def _check_cli_version(self) -> None:
        """Read ``claude --version`` once; warn if the screen rules were not measured on it."""
        if self._cli_version is not None:
            return
        options = self._conversation_options
        cli = find_cli(options.cli_path, env={**os.environ, **options.env})
        timeout = options.startup_timeout
        with trio.move_on_after(timeout):
            done = await trio.run_process(
                [str(cli), "--version"],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env=options.child_env(),
                cwd=str(options.cwd),
            )
            if done.returncode != 0:
                raise ProcessError(
                    f"{cli} --version failed: {done.stderr.decode(errors='replace').strip()}",
                    exit_status=done.returncode,
                )
            self._cli_version = done.stdout.decode(errors="replace").split(" ", 1)[0].strip()
            if self._cli_version != PINNED_CLI_VERSION:
                warnings.warn(_version_text(self._cli_version), CLIVersionWarning, stacklevel=2)
            return
        raise BackendTimeoutError(
            f"{cli} --version did not answer", phase="version", timeout=timeout
        )

    def _version_notice(self, session_id: str) -> SystemMessage | None:
        """The notice of an unmeasured CLI version, for the first turn only."""
        if self._version_noted or self._cli_version in (None, PINNED_CLI_VERSION):
            return None
        self._version_noted = True
        return SystemMessage(
            subtype="cli_version",
            content=_version_text(self._cli_version or ""),
            level="warning",
            data={"version": self._cli_version, "measured": PINNED_CLI_VERSION},
            session_id=session_id,
        )

    def _poke(self) -> None:
        self._changed.set()
        self._changed = trio.Event()


class CLIVersionWarning(UserWarning):
    """The ``claude`` CLI is a release the library's screen rules were not measured on."""


def _version_text(version: str) -> str:
    return (
        f"claude {version} is not the release claude_trio was measured on "
        f"({PINNED_CLI_VERSION}): the TUI may have changed; if turns time out or "
        "dialogs are not recognised, pin the CLI to that release"
    )


@asynccontextmanager
async def open_backend(options: BackendOptions) -> AsyncIterator[ClaudeCodeBackend]:
    """Open a `ClaudeCodeBackend`; the same as ``async with ClaudeCodeBackend(options)``.

    Args:
        options: How to run the CLI, and the pool policy.
    """
    async with ClaudeCodeBackend(options) as backend:
        yield backend
