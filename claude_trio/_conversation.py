"""One conversation: one ``claude`` process, one nursery, typed turns.

``open_conversation`` spawns the CLI on a PTY and opens a nursery that owns exactly the
tasks that serve it: the PTY reader, the JSONL tail, a watcher of the process's exit and a
watcher of the screen (retry status, permission prompts). They feed one memory channel;
each producer owns a clone of its send side and closes it when it ends. The public async
generators only receive from that channel: nothing yields from inside the nursery or a
cancel scope.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Final, NoReturn, TypeAlias, final

import attrs
import trio

from ._chrome import (
    PermissionPrompt,
    box_has_text,
    box_holds,
    find_input_box,
    find_permission_prompt,
    is_busy,
    is_ready,
    prompt_came_back,
    status_lines,
)
from ._editor import CTRL_G, EditorRoute, editor_route
from ._environment import config_dir_of
from ._errors import (
    APIConnectionError,
    APIError,
    BackendError,
    BackendTimeoutError,
    InputError,
    MessageParseError,
    OverloadedError,
    RateLimitError,
    SessionError,
)
from ._events import Event, StreamEvent, SystemMessage
from ._hooks import PermissionHookServer, open_permission_hook_server
from ._inotify import InotifyHub
from ._launch import prepared_launch
from ._locate import find_cli
from ._normalize import Normalized, RecordStatistics, normalize
from ._options import ConversationOptions, PermissionCallback, PermissionRequest
from ._paths import session_path
from ._pty import PtyClaudeProcess
from ._ratelimits import RateLimits
from ._relay import Relay, is_first_party, open_relay
from ._retry import RetryNotice, find_retry_notice, retry_refused_error
from ._sanitize import PreparedText, prepare_text, validate_session_id
from ._turn import TurnManager
from ._util import check_trio, single_error_unwrapped
from ._watcher import JsonlWatcher

_SCREEN_INTERVAL: Final = 0.05
_CHANNEL_SIZE: Final = 32
# How long an interrupt waits for a just-typed turn to show as busy.
_BUSY_WAIT: Final = 1.0
# A permission prompt on screen is the hook's when the hook was asked this recently, or
# is asked within this grace (its request comes about 0.15 s before the prompt shows).
_HOOK_RECENT: Final = 3.0
_HOOK_GRACE: Final = 2.0
_SLASH_COMMAND_RE: Final = re.compile(r"/[A-Za-z0-9:_-]+(?: [^\x00-\x1f\x7f]*)?")
# A permission prompt is answered after this much screen quiet, up to this many times,
# each time waiting this long for the prompt to go away.
_QUIET: Final = 0.3
_ANSWER_ATTEMPTS: Final = 3
_ANSWER_WAIT: Final = 3.0
# How long the screen must stay idle with the prompt back in the box before that counts.
_RESTORE_SETTLE: Final = 0.3
# The CLI loads a message from its editor in about a second, whatever its size.
_EDITOR_WAIT: Final = 15.0
# How often the editor route looks whether the CLI took the message, with no output.
_EDITOR_LOOK: Final = 0.25
# Responses whose turn is remembered (sub-agents stream several at once).
_RESPONSES_REMEMBERED: Final = 64


@attrs.frozen
class _Exited:
    """The claude process exited (with this status)."""

    returncode: int


@attrs.frozen
class _Failed:
    """A task of the conversation failed; the conversation cannot go on.

    Attributes:
        error: What the task raised.
        own: Whether it is the caller's own exception (from a callback), to be raised as
            itself.
    """

    error: BaseException
    own: bool = False


@attrs.frozen
class _WaitRefused:
    """The CLI announced a retry wait longer than ``max_retry_wait``."""

    notice: RetryNotice
    generation: int


@attrs.frozen
class _PromptRestored:
    """After an interrupt, the CLI put the prompt back in its input box (no record)."""

    generation: int


@attrs.frozen
class _Partial:
    """A stream event of the turn typed as *generation*, from the relay."""

    event: StreamEvent
    generation: int


@attrs.frozen
class _Unreachable:
    """The relay could not reach the API for the turn typed as *generation*."""

    error: APIConnectionError
    generation: int


_Item: TypeAlias = (
    Normalized
    | SystemMessage
    | _PromptRestored
    | _Partial
    | _Unreachable
    | _WaitRefused
    | _Exited
    | _Failed
    | MessageParseError
    | SessionError
)


@attrs.frozen(kw_only=True)
class ConversationStatistics:
    """Counts of what a conversation has done so far.

    Attributes:
        turns: Turns that ran to their end (completed, failed or interrupted).
        records: Session records read, by kind (`RecordStatistics`).
        pty_bytes: Bytes the CLI wrote to its terminal.
        history_diverged: Whether the CLI's history holds prompts the caller's does not.
        editor_messages: Messages that went in through the CLI's editor key rather than
            pastes (``editor_threshold``).
    """

    turns: int
    records: RecordStatistics
    pty_bytes: int
    history_diverged: bool
    editor_messages: int


@final
class Conversation:
    """A live ``claude`` process and its session, used turn by turn.

    Get one from `open_conversation`; it is valid only inside that block. One turn runs
    at a time.

    Attributes:
        session_id: The CLI session id (a UUID).
        session_file: The session's JSONL file.
        options: The options it was opened with.
        process: The CLI process.
        history_diverged: True once a turn failed, was interrupted or was abandoned: the
            CLI then keeps the failed prompt (and an interrupt marker) in its history and
            merges it into the next request, so its history no longer equals the caller's.
    """

    def __init__(
        self,
        *,
        session_id: str,
        session_file: Path,
        options: ConversationOptions,
        process: PtyClaudeProcess,
        receive: trio.MemoryReceiveChannel[_Item],
    ) -> None:
        self.session_id = session_id
        self.session_file = session_file
        self.options = options
        self.process = process
        self.history_diverged = False
        self._receive = receive
        self._turns = 0
        self._records = RecordStatistics()
        # The turn typed last, while its end has not been read; its generation number
        # tells a resumed, superseded turn iterator that it is stale.
        self._manager: TurnManager | None = None
        self._generation = 0
        self._typed_at = 0.0
        self._sending = False
        self._receiving = False
        self._interrupting = False
        self._restored: str | None = None
        self._failure: _Failed | None = None
        self._hooks: PermissionHookServer | None = None
        self._editor: EditorRoute | None = None
        self._editor_messages = 0
        self._hook_asked_at = -math.inf
        # The relay's way into the channel (partial_messages), closed when claude exits.
        self._relay_send: trio.MemorySendChannel[_Item] | None = None
        self._rate_limits: RateLimits | None = None
        # The turn each response streamed for belongs to, by the relay's request id.
        self._response_turns: dict[int, int] = {}
        self._limited_generation = -1
        # How far into the session file the tail has delivered records to the channel.
        self._delivered = 0
        self._delivery = trio.Event()

    @property
    def failure(self) -> BaseException | None:
        """What failed inside the conversation (a task of its own, or a callback), if
        anything did: the conversation then takes no more turns."""
        return None if self._failure is None else self._failure.error

    def rate_limits(self) -> RateLimits | None:
        """The rate-limit state of the API's latest response that carried any, as the
        relay saw it (``partial_messages``); None without the relay or before."""
        return self._rate_limits

    def statistics(self) -> ConversationStatistics:
        """Return counts of what the conversation has done so far."""
        return ConversationStatistics(
            turns=self._turns,
            records=self._records,
            pty_bytes=self.process.screen.bytes_seen,
            history_diverged=self.history_diverged,
            editor_messages=self._editor_messages,
        )

    def turn(self, text: str) -> AsyncGenerator[Event, None]:
        """Type *text* as the next user message and iterate over the turn's events.

        The events are the assistant's messages (one per content block), tool results as
        `UserMessage` s, status `SystemMessage` s (subtype ``api_retry`` while the CLI
        retries an API request), with ``partial_messages`` the `StreamEvent` s of each
        API response ahead of its messages, and last a `ResultMessage`. Stopping early
        (``break``) is allowed: the next turn first interrupts the unfinished one and
        reads it to its end (the history then counts as diverged).

        Args:
            text: The message. It goes through `prepare_text`.

        Raises:
            trio.BusyResourceError: If another task is typing or reading a turn.
            ValueError: If the message is empty once cleaned.
            AuthError, RateLimitError, OverloadedError, APIConnectionError, APIError: When
                the API fails the turn; the process stays usable.
            ProcessError: If the CLI exits.
            BackendTimeoutError: If the CLI does not record the prompt within
                ``prompt_timeout`` or the turn does not end within ``turn_timeout``.
            MessageParseError: If the session file holds a line that is not a record.
            trio.ClosedResourceError: If the iterator is resumed after a newer turn was
                typed.
        """
        return self._run_turn(text)

    def receive_turn(self) -> AsyncGenerator[Event, None]:
        """Iterate over the events of the turn started by `send`, ending with a `ResultMessage`.

        Raises the same errors as `turn`, and `RuntimeError` if no turn was sent.
        """
        return self._run_turn(None)

    async def send(self, text: str) -> PreparedText:
        """Type *text* as the next user message without waiting for the reply.

        Read the reply with `receive_turn`. An unfinished earlier turn is interrupted and
        read to its end first.

        Returns:
            What was typed.

        Raises:
            trio.BusyResourceError: If another task is typing or reading a turn.
            ValueError: If the message is empty once cleaned.
            ProcessError: If the CLI has exited.
        """
        if self._sending or self._receiving:
            raise trio.BusyResourceError("another task is typing or reading a turn")
        # Checked on the text as it will be typed: what prepare_text removes (a leading
        # zero-width space, a BOM, ESC) cannot hide a slash from the guard.
        prepared = prepare_text(text, rows=self.process.rows)
        if self.options.slash_commands and prepared.text.lstrip().startswith("/"):
            raise InputError(
                "this conversation runs slash commands (slash_commands=True), so text "
                "that starts with '/' would run one: use run_slash_command() for "
                "commands, or start the text with something else"
            )
        self._sending = True
        try:
            if self._failure is not None:
                raise self._failure_error(self._failure)
            if self._manager is not None:
                await self._settle(self._manager)
            if self.process.returncode is not None:
                raise self.process.exit_error("claude has exited")
            if self._restored is not None:
                await self._clear_input_box(self._restored)
            # From here on, what the relay hands over belongs to this turn.
            self._generation += 1
            try:
                await self._submit(prepared)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self.history_diverged = True
                with trio.move_on_after(self.options.close_timeout):
                    await self.process.wait()
                raise self.process.exit_error("claude stopped taking input") from exc
            except BackendTimeoutError:
                # Part of the message may sit in the input box: this process is spent.
                self.history_diverged = True
                raise
            self._manager = TurnManager(prepared.text)
            self._interrupting = False
            self._typed_at = trio.current_time()
            return prepared
        finally:
            self._sending = False

    async def _submit(self, prepared: PreparedText) -> None:
        """Put *prepared* into the input box and press Enter: through the CLI's editor
        key for a message of more than ``editor_threshold`` pastes, else pasted."""
        editor = self._editor
        threshold = self.options.editor_threshold
        long = threshold is not None and len(prepared.chunks) > threshold
        # The CLI trims the end of what it loads: a backslash left last would make Enter
        # insert a line break instead of sending.
        if (
            editor is not None
            and long
            and not prepared.expected_record.endswith("\\")
            and await self._submit_through_editor(editor, prepared)
        ):
            self._editor_messages += 1
            return
        await self.process.paste_and_submit(prepared.chunks)

    async def _submit_through_editor(self, editor: EditorRoute, prepared: PreparedText) -> bool:
        """Load *prepared* through Ctrl-G, and press Enter once the box shows it.

        Returns:
            False if the CLI did not take the message within ``input_timeout`` (the
            box is as it was: paste it).

        Raises:
            BackendTimeoutError: If the CLI took the message but the box did not show
                it within ``_EDITOR_WAIT`` (phase ``"input"``); the process is spent.
        """
        try:
            # What pastes would deliver: tabs as four spaces, the end trimmed.
            editor.stage(prepared.expected_record)
        except OSError:
            return False
        await self.process.send_bytes(CTRL_G)
        screen = self.process.screen
        untaken_until = trio.current_time() + self.options.input_timeout
        with trio.move_on_after(_EDITOR_WAIT):
            while not box_has_text(find_input_box(screen.text())):
                if self.process.output_ended:
                    break
                # A CLI that does not run its editor is not reading its keys either.
                if trio.current_time() > untaken_until and not editor.taken:
                    break
                with trio.move_on_after(_EDITOR_LOOK):
                    await self.process.wait_output()
            else:
                await self.process.send_bytes(b"\r")
                return True
        if editor.withdraw():
            return False
        self.history_diverged = True
        raise BackendTimeoutError(
            "claude did not show the message it loaded from its editor",
            phase="input",
            timeout=_EDITOR_WAIT,
            screen_tail=screen.tail(),
        )

    async def run_slash_command(self, command: str) -> str:
        """Run one of the CLI's slash commands, such as ``/model claude-sonnet-4-5``.

        Only with ``slash_commands=True`` in the options. The command is typed as it is,
        then this waits until the CLI is idle again with an empty input box. A command
        that opens a picker or a dialog (``/model`` without an argument) never gets
        there: that ends in `BackendTimeoutError` after ``prompt_timeout``, and the
        conversation should then be closed.

        Args:
            command: ``/name`` followed, on the same line, by its arguments.

        Returns:
            The last lines of the screen afterwards (the command's answer).

        Raises:
            InputError: If slash commands are off, or *command* is not one line of the
                form ``/name args`` with a name of letters, digits, ``:``, ``-``, ``_``.
            trio.BusyResourceError: If a turn is running.
            BackendTimeoutError: If the CLI is not idle again within ``prompt_timeout``.
        """
        if not self.options.slash_commands:
            raise InputError(
                "slash commands are off: open the conversation with slash_commands=True"
            )
        if not _SLASH_COMMAND_RE.fullmatch(command):
            raise InputError(f"not a slash command line: {command!r}")
        if self._sending or self._receiving or self._manager is not None:
            raise trio.BusyResourceError("a turn is running on this conversation")
        self._sending = True
        try:
            await self.process.paste_and_submit([command])
            with trio.move_on_after(self.options.prompt_timeout) as scope:
                while True:
                    await self.process.wait_quiet(_QUIET, bound=_ANSWER_WAIT)
                    if self.process.output_ended:
                        with trio.move_on_after(self.options.close_timeout):
                            await self.process.wait()
                        raise self.process.exit_error("claude exited running a slash command")
                    text = self.process.screen.text()
                    box = find_input_box(text)
                    if is_ready(text) and box is not None and box.text == "":
                        break
            if scope.cancelled_caught:
                raise BackendTimeoutError(
                    f"claude did not come back to its prompt after {command.split()[0]}",
                    phase="prompt",
                    timeout=self.options.prompt_timeout,
                    screen_tail=self.process.screen.tail(),
                )
            return self.process.screen.tail()
        finally:
            self._sending = False

    async def interrupt(self) -> None:
        """Interrupt the running turn, as ESC does; the conversation stays usable.

        The turn's iterator then ends with a `ResultMessage` whose ``interrupted`` is
        true (or, if the turn had already finished, its usual one). ESC is pressed only
        while the CLI shows the turn busy or a permission prompt, and never twice within
        the CLI's double-press window: a second ESC at an idle prompt would open its
        rewind picker. Without a running turn nothing is pressed.
        """
        if self._manager is None or self._manager.done:
            return
        self._interrupting = True
        await self._escape_running_turn()

    async def _run_turn(self, text: str | None) -> AsyncGenerator[Event, None]:
        if text is not None:
            await self.send(text)
        manager = self._manager
        if manager is None:
            raise RuntimeError("no turn to receive: send() a message first")
        generation = self._generation
        options = self.options
        prompt_deadline = self._typed_at + options.prompt_timeout
        turn_deadline = (
            self._typed_at + options.turn_timeout if options.turn_timeout is not None else None
        )
        while not manager.done:
            if generation != self._generation:
                raise trio.ClosedResourceError("a newer turn was typed; this one was abandoned")
            if manager.started or (turn_deadline is not None and turn_deadline <= prompt_deadline):
                item = await self._next_item("turn", turn_deadline)
            else:
                item = await self._next_item("prompt", prompt_deadline)
            if isinstance(item, SystemMessage):
                yield item
                continue
            if isinstance(item, _Partial):
                if item.generation == generation:
                    yield item.event
                continue
            if isinstance(item, _PromptRestored):
                self._prompt_restored(item, manager)
                continue
            for event in manager.feed(item):
                yield event
        if generation != self._generation:
            raise trio.ClosedResourceError("a newer turn was typed; this one was abandoned")
        self._manager = None
        self._turns += 1
        if manager.error is not None or manager.interrupted:
            self.history_diverged = True
        if self._failure is not None:
            raise self._failure_error(self._failure)
        if manager.error is not None:
            raise self._with_exact_limits(manager.error)
        yield manager.result()

    async def _next_item(
        self, phase: str, deadline: float | None
    ) -> Normalized | SystemMessage | _PromptRestored | _Partial:
        if self._receiving:
            raise trio.BusyResourceError("another task is reading this conversation's turn")
        self._receiving = True
        try:
            with trio.move_on_at(float("inf") if deadline is None else deadline):
                item = await self._receive_item()
                while isinstance(item, _WaitRefused | _Unreachable):
                    if item.generation == self._generation and not self._interrupting:
                        if isinstance(item, _WaitRefused):
                            await self._refuse_wait(item.notice)
                        await self._refuse(item.error)
                    item = await self._receive_item()
                if isinstance(item, Normalized):
                    self._records = self._records.counted(item)
                    return item
                if isinstance(item, SystemMessage | _PromptRestored | _Partial):
                    return item
                self.history_diverged = True
                if isinstance(item, _Exited):
                    raise self.process.exit_error("claude exited during a turn")
                if isinstance(item, _Failed):
                    raise self._failure_error(item)
                raise item
        finally:
            self._receiving = False
        bound = {
            "prompt": self.options.prompt_timeout,
            "turn": self.options.turn_timeout or 0.0,
        }.get(phase, self.options.close_timeout)
        what = {"prompt": "record the prompt", "turn": "finish the turn"}.get(
            phase, "end the abandoned turn"
        )
        raise BackendTimeoutError(
            f"claude did not {what} in time",
            phase=phase,
            timeout=bound,
            screen_tail=self.process.screen.tail(),
        )

    async def _receive_item(self) -> _Item:
        """The next item of the channel; once every task has ended, how it ended."""
        try:
            return await self._receive.receive()
        except trio.EndOfChannel:
            return self._failure or _Exited(await self.process.wait())

    async def _refuse_wait(self, notice: RetryNotice) -> NoReturn:
        """End a turn whose retry would wait longer than ``max_retry_wait``; raise its error."""
        limit = self.options.max_retry_wait
        await self._refuse(retry_refused_error(notice, limit=limit or 0.0, now=datetime.now(UTC)))

    async def _refuse(self, error: APIError) -> NoReturn:
        """End the running turn now (ESC) with *error*; the CLI keeps its prompt."""
        self.history_diverged = True
        self._interrupting = True
        await self.process.press_escape()
        raise self._with_exact_limits(error)

    def _with_exact_limits(self, error: APIError) -> APIError:
        """*error*, with the wait and reset the relay read from the API's headers in
        this turn, when it read any for the same status."""
        limits = self._rate_limits
        if (
            limits is None
            or self._limited_generation != self._generation
            or not isinstance(error, RateLimitError | OverloadedError)
            or (error.status is not None and error.status != limits.status)
        ):
            return error
        if limits.retry_after is not None:
            error.retry_after = limits.retry_after
        if isinstance(error, RateLimitError) and limits.reset_at is not None:
            error.reset_at = limits.reset_at
            if limits.retry_after is None:
                error.retry_after = max(0.0, (limits.reset_at - datetime.now(UTC)).total_seconds())
        return error

    # --- what the relay reports (partial_messages) ----------------------------------------

    async def _relay_event(
        self, event: dict[str, Any], parent_tool_use_id: str | None, request_id: int
    ) -> None:
        # A response belongs to the turn typed when it began: an abandoned turn's last
        # events, handed over late, are not the next turn's.
        generation = self._response_turns.setdefault(request_id, self._generation)
        while len(self._response_turns) > _RESPONSES_REMEMBERED:
            del self._response_turns[next(iter(self._response_turns))]
        await self._to_channel(
            _Partial(
                StreamEvent(
                    uuid=str(uuid.uuid4()),
                    session_id=self.session_id,
                    event=event,
                    parent_tool_use_id=parent_tool_use_id,
                ),
                generation,
            )
        )

    def _relay_limits(self, limits: RateLimits) -> None:
        self._rate_limits = limits
        if limits.status >= 400:
            self._limited_generation = self._generation

    async def _relay_unreachable(self, error: APIConnectionError) -> None:
        await self._to_channel(_Unreachable(error, self._generation))

    async def _to_channel(self, item: _Item) -> None:
        send = self._relay_send
        if send is None:
            return
        # Closed once claude has exited: nobody reads this turn any more.
        with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
            await send.send(item)

    async def _settle(self, manager: TurnManager) -> None:
        """Interrupt an abandoned turn and read it to its end, within ``close_timeout``."""
        self.history_diverged = True
        self._interrupting = True
        await self._escape_running_turn()
        deadline = trio.current_time() + self.options.close_timeout
        while not manager.done:
            item = await self._next_item("settle", deadline)
            if isinstance(item, Normalized):
                manager.feed(item)
            elif isinstance(item, _PromptRestored):
                self._prompt_restored(item, manager)
        self._manager = None
        self._turns += 1

    async def _escape_running_turn(self) -> None:
        """Press ESC if the screen shows a turn running (or a permission prompt) soon.

        A turn typed a moment ago may not show as busy yet: wait for it, bounded. One
        that has already finished shows an idle prompt, where ESC is not pressed.
        """
        with trio.move_on_after(_BUSY_WAIT):
            while not self.process.output_ended:
                text = self.process.screen.text()
                if is_busy(text) or find_permission_prompt(text) is not None:
                    await self.process.press_escape()
                    return
                await self.process.wait_output()

    def _prompt_restored(self, item: _PromptRestored, manager: TurnManager) -> None:
        """End *manager*'s turn if the restored prompt is its own; clear it before typing."""
        if item.generation == self._generation and manager is self._manager:
            self._restored = manager.typed
            manager.prompt_restored()

    async def _clear_input_box(self, restored: str) -> None:
        """Delete a prompt the CLI put back into its input box, line by line."""
        lines = restored.count("\n") + 1
        with trio.move_on_after(self.options.prompt_timeout) as scope:
            while box_holds(find_input_box(self.process.screen.text()), restored):
                # Ctrl-U empties the line, Backspace joins it to the one above.
                await self.process.send_bytes(b"\x15\x7f" * (lines + 1))
                await self.process.wait_output()
                await trio.sleep(_SCREEN_INTERVAL)
        if scope.cancelled_caught:
            raise BackendTimeoutError(
                "the input box could not be cleared",
                phase="prompt",
                timeout=self.options.prompt_timeout,
                screen_tail=self.process.screen.tail(),
            )
        self._restored = None

    def _failure_error(self, failure: _Failed) -> BaseException:
        """The exception a turn raises for a failed task of this conversation."""
        error = failure.error
        if failure.own or isinstance(error, BackendError):
            return error
        wrapped: BackendError
        if isinstance(error, trio.BrokenResourceError | trio.ClosedResourceError):
            wrapped = self.process.exit_error("claude stopped taking input")
        elif isinstance(error, OSError):
            wrapped = SessionError(f"reading the session file failed: {error}")
        else:
            wrapped = BackendError(f"the conversation failed: {error!r}")
        wrapped.__cause__ = error
        return wrapped

    # --- tasks run in the conversation's nursery ------------------------------------------

    async def _guarded(
        self,
        task: Callable[[trio.MemorySendChannel[_Item]], Awaitable[None]],
        send: trio.MemorySendChannel[_Item],
    ) -> None:
        """Run one of the conversation's tasks; what it raises ends the conversation only.

        The failure goes to the channel, so the turn reading it raises it; the nursery,
        and with it whoever owns the conversation, goes on.
        """
        async with send:
            try:
                await task(send)
            except Exception as exc:
                own = isinstance(exc, _CallbackFailed)
                failure = _Failed(exc.error if isinstance(exc, _CallbackFailed) else exc, own)
                self._failure = self._failure or failure
                self.history_diverged = True
                await send.send(failure)

    async def _tail(self, watcher: JsonlWatcher, send: trio.MemorySendChannel[_Item]) -> None:
        while True:
            try:
                line = await watcher.__anext__()
            except StopAsyncIteration:
                return
            except SessionError as exc:
                # The file was truncated or replaced: nothing more can be read from it.
                await send.send(exc)
                return
            except MessageParseError as exc:
                await send.send(exc)
                continue
            try:
                item: _Item = normalize(line, path=watcher.path, line_number=watcher.line_number)
            except MessageParseError as exc:
                item = exc
            await send.send(item)
            self._delivered = watcher.offset
            self._delivery.set()
            self._delivery = trio.Event()

    async def _watch_exit(self, send: trio.MemorySendChannel[_Item]) -> None:
        returncode = await self.process.wait()
        # A CLI may write its last records and exit at once: let the tail deliver them
        # first, so a finished turn is read as finished.
        with trio.move_on_after(self.options.close_timeout):
            while self._delivered < _complete_lines_end(self.session_file, self._delivered):
                await self._delivery.wait()
        await send.send(_Exited(returncode))
        if self._relay_send is not None:
            await self._relay_send.aclose()

    async def _watch_screen(self, send: trio.MemorySendChannel[_Item]) -> None:
        last_retry: tuple[int, int, int] | None = None
        looked_at = -1
        read_changes = -1
        screen = self.process.screen
        while not self.process.output_ended:
            # Wait only when nothing was drawn since the last look: a screen that
            # changed during the pause below and then went still is looked at too.
            if screen.bytes_seen == looked_at:
                await self.process.wait_output()
            looked_at = screen.bytes_seen
            if self._manager is not None:
                text = screen.text()
                # Cursor moves and redraws of the same characters change nothing the
                # rules read; a restored prompt must be seen to stay, so it is read again.
                if screen.changes == read_changes and not self._interrupting:
                    await trio.sleep(_SCREEN_INTERVAL)
                    continue
                read_changes = screen.changes
                notice = find_retry_notice(status_lines(text))
                if notice is not None and not self._interrupting:
                    retry = (self._generation, notice.attempt, notice.max_attempts)
                    # One event per retry of this turn: the wait counts down on screen.
                    if retry != last_retry:
                        last_retry = retry
                        await send.send(_retry_status(notice, self.session_id))
                        limit = self.options.max_retry_wait
                        if limit is not None and notice.retry_in > limit:
                            await send.send(_WaitRefused(notice, self._generation))
                prompt = find_permission_prompt(text)
                if prompt is not None and not await self._hook_answers():
                    await self._answer_permission(prompt, text)
                elif self._interrupting and await self._prompt_came_back():
                    await send.send(_PromptRestored(self._generation))
            # The TUI redraws many times a second; looking 20 times is enough.
            await trio.sleep(_SCREEN_INTERVAL)

    async def _prompt_came_back(self) -> bool:
        """Whether the screen stays idle with the prompt back in the input box."""
        manager = self._manager
        if manager is None:
            return False
        for _ in range(2):
            text = self.process.screen.text()
            if not prompt_came_back(text, manager.typed):
                return False
            await trio.sleep(_RESTORE_SETTLE)
        return True

    async def _answer_permission(self, prompt: PermissionPrompt, screen: str) -> None:
        request = PermissionRequest(
            tool=prompt.title or "tool", detail=prompt.detail, screen=screen
        )
        allowed = False
        if self.options.on_permission is not None:
            try:
                allowed = await self._ask_permission(self.options.on_permission, request)
            except Exception:
                await self.process.press_escape()  # deny: the prompt is never left waiting
                raise
        # Keys that arrive while the TUI is still painting the prompt are lost: answer
        # once the screen has been quiet for a moment, and again if the prompt stays.
        for _ in range(_ANSWER_ATTEMPTS):
            await self.process.wait_quiet(_QUIET, bound=_ANSWER_WAIT)
            if allowed:
                await self.process.send_bytes(b"1")
            else:
                await self.process.press_escape()
            with trio.move_on_after(_ANSWER_WAIT):
                while find_permission_prompt(self.process.screen.text()) is not None:
                    if self.process.output_ended:
                        return
                    await self.process.wait_output()
                return

    async def _ask_permission(
        self, callback: PermissionCallback, request: PermissionRequest
    ) -> bool:
        """Call *callback* within ``permission_timeout``.

        Raises:
            _CallbackFailed: What the callback raised, to reach the turn as itself.
            BackendTimeoutError: If it did not answer in time (phase ``"permission"``).
        """
        timeout = self.options.permission_timeout
        with trio.move_on_after(timeout):
            try:
                return bool(await callback(request))
            except Exception as exc:
                raise _CallbackFailed(exc) from exc
        raise BackendTimeoutError(
            f"on_permission did not answer for {request.tool!r} in time",
            phase="permission",
            timeout=timeout,
            screen_tail=self.process.screen.tail(),
        )

    async def _decide_by_hook(self, request: PermissionRequest) -> bool:
        """Answer the CLI's permission hook; a failure of the callback denies and ends
        the turn (the hook's deny interrupts it) with that failure."""
        self._hook_asked_at = trio.current_time()
        callback = self.options.on_permission
        if callback is None or self._failure is not None:
            return False
        try:
            return await self._ask_permission(callback, request)
        except (_CallbackFailed, BackendTimeoutError) as exc:
            own = isinstance(exc, _CallbackFailed)
            self._failure = _Failed(exc.error if isinstance(exc, _CallbackFailed) else exc, own)
            self.history_diverged = True
            return False

    async def _hook_answers(self) -> bool:
        """Whether the permission hook is answering the prompt on screen; then wait,
        bounded, until the prompt goes. False when the hook is not called (the caller's
        settings turned hooks off): the screen must answer."""
        hooks = self._hooks
        if hooks is None:
            return False
        asked = hooks.statistics().in_flight or (
            trio.current_time() - self._hook_asked_at < _HOOK_RECENT
        )
        if not asked:
            with trio.move_on_after(_HOOK_GRACE):
                await hooks.wait_activity()
                asked = True
        if not asked:
            return False
        with trio.move_on_after(self.options.permission_timeout + _ANSWER_WAIT):
            while find_permission_prompt(self.process.screen.text()) is not None:
                if self.process.output_ended:
                    return True
                await self.process.wait_output()
            return True
        return False


class _CallbackFailed(Exception):
    """Carries an exception a caller's callback raised out of a conversation task."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


def _complete_lines_end(path: Path, start: int) -> int:
    """Return the offset just past the last complete line of *path* (at least *start*)."""
    try:
        with path.open("rb") as file:
            file.seek(start)
            rest = file.read()
    except FileNotFoundError:
        return start
    return start + rest.rfind(b"\n") + 1


def _retry_status(notice: RetryNotice, session_id: str) -> SystemMessage:
    wait = f"retrying in {notice.retry_in:g} s" if notice.retry_in else "retrying now"
    return SystemMessage(
        subtype="api_retry",
        content=f"{notice.status} · {wait} · attempt {notice.attempt}/{notice.max_attempts}",
        level="warning",
        data={
            "status": notice.status,
            "http_status": notice.http_status,
            "retry_in_seconds": notice.retry_in,
            "attempt": notice.attempt,
            "max_attempts": notice.max_attempts,
            "resets": notice.resets,
        },
        session_id=session_id,
    )


def _check_onboarding(env: dict[str, str]) -> None:
    if env.get("CLAUDE_CONFIG_DIR"):
        settings_file = Path(env["CLAUDE_CONFIG_DIR"]) / ".claude.json"
    else:
        settings_file = Path(env.get("HOME") or Path.home()) / ".claude.json"
    try:
        settings = json.loads(settings_file.read_text())
    except (OSError, ValueError):
        settings = {}
    if not (isinstance(settings, dict) and settings.get("hasCompletedOnboarding") is True):
        raise SessionError(
            f"the claude CLI has not been set up: {settings_file} lacks "
            '"hasCompletedOnboarding": true, so the CLI would show its welcome screen (and '
            "exit when offline). Run claude once by hand, or use claude_trio.testing."
            "isolated_config() in tests",
            fix=f'set "hasCompletedOnboarding": true in {settings_file}',
        )


class _RelaySink:
    """A relay route's reports, passed to the conversation once it exists."""

    def __init__(self) -> None:
        self.conversation: Conversation | None = None

    async def partial_event(
        self, event: dict[str, Any], parent_tool_use_id: str | None, request_id: int
    ) -> None:
        if self.conversation is not None:
            await self.conversation._relay_event(event, parent_tool_use_id, request_id)

    def rate_limits(self, limits: RateLimits) -> None:
        if self.conversation is not None:
            self.conversation._relay_limits(limits)

    async def upstream_failed(self, error: APIConnectionError) -> None:
        if self.conversation is not None:
            await self.conversation._relay_unreachable(error)


class _HookDecider:
    """The permission hook's callback: the conversation decides, once it exists."""

    def __init__(self) -> None:
        self.conversation: Conversation | None = None

    async def __call__(self, request: PermissionRequest) -> bool:
        if self.conversation is None:
            return False
        return await self.conversation._decide_by_hook(request)


def _answered_by_hook(options: ConversationOptions) -> bool:
    """Whether ``on_permission`` is asked through the CLI's permission hook.

    Not when nothing can prompt (bypass mode), and not when the caller passes a
    ``--settings`` of their own (only the last one counts): then the screen answers.
    """
    return (
        options.on_permission is not None
        and not options.dangerously_skip_permissions
        and options.permission_mode != "bypassPermissions"
        and "--settings" not in options.extra_args
    )


def _drain(proc: PtyClaudeProcess) -> Callable[[trio.MemorySendChannel[_Item]], Awaitable[None]]:
    async def drain(_: trio.MemorySendChannel[_Item]) -> None:
        await proc.drain()

    return drain


@asynccontextmanager
async def open_conversation(
    options: ConversationOptions,
    *,
    session_id: str | None = None,
    resume: str | None = None,
    inotify_hub: InotifyHub | None = None,
    relay: Relay | None = None,
) -> AsyncIterator[Conversation]:
    """Start ``claude`` for one conversation and yield it once it is ready.

    The block owns one nursery and one claude process. Leaving the block, raising in it,
    or cancelling it from outside ends the process and everything it started (SIGTERM,
    ``close_timeout`` of grace, then SIGKILL to every process of its tree), shielded and
    bounded; every fd is closed and every child reaped.

    Args:
        options: How to run the CLI.
        session_id: The id for a new session (a UUID); a fresh one by default. The
            session file must not exist yet.
        resume: The id of an existing session to continue (``claude --resume``) instead.
            Its history is not replayed as events.
        inotify_hub: Tail the session file through this shared inotify instance (see
            `open_inotify_hub`; `ClaudeCodeBackend` passes its own) rather than one of
            the conversation's own. Leave the block before the hub's.
        relay: With ``partial_messages``, route the CLI's API traffic through this
            relay (see `open_relay`; `ClaudeCodeBackend` passes its own) rather than
            one of the conversation's own. Leave the block before the relay's.

    Raises:
        CLINotFoundError: If there is no claude to run.
        SessionError: If the config would show a first-run dialog, a session id is
            invalid or taken, or the session to resume does not exist.
        ProcessError: If the CLI exits before it is ready.
        BackendTimeoutError: If it is not ready within ``startup_timeout``.
    """
    check_trio("open_conversation")
    if session_id is not None and resume is not None:
        raise ValueError("give session_id for a new session or resume for an old one, not both")
    sid = validate_session_id(resume or session_id or str(uuid.uuid4()))
    env = options.child_env()
    cli = find_cli(options.cli_path, env={**os.environ, **options.env})
    _check_onboarding(env)
    cwd = options.cwd.resolve()
    path = session_path(config_dir_of(env), cwd, sid)
    offset = line_number = 0
    if resume is not None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise SessionError(f"no session {sid} to resume: {path} does not exist") from None
        offset = data.rfind(b"\n") + 1
        line_number = data.count(b"\n")
    elif path.exists():
        raise SessionError(f"session id {sid} is already in use: {path} exists")
    decider = _HookDecider()
    sink = _RelaySink()
    async with contextlib.AsyncExitStack() as stack:
        api_base_url: str | None = None
        upstream = env.get("ANTHROPIC_BASE_URL") or None
        if options.partial_messages:
            if relay is None:
                relay = await stack.enter_async_context(open_relay())
            route = stack.enter_context(relay.route(upstream=upstream, sink=sink))
            api_base_url = route.base_url
        hooks: PermissionHookServer | None = None
        if _answered_by_hook(options):
            hooks = await stack.enter_async_context(
                open_permission_hook_server(
                    decider, timeout=options.permission_timeout + 1, interrupt_on_deny=True
                )
            )
        editor: EditorRoute | None = None
        if options.editor_threshold is not None:
            editor = stack.enter_context(editor_route(env))
        launch = stack.enter_context(
            prepared_launch(
                options,
                cli=cli,
                session_id=sid,
                resume=resume is not None,
                settings=hooks.settings_json() if hooks is not None else None,
                editor=None if editor is None else editor.script,
                api_base_url=api_base_url,
                first_party_upstream=is_first_party(upstream),
            )
        )
        watcher = JsonlWatcher(
            path, offset=offset, line_number=line_number, inotify_hub=inotify_hub
        )
        proc = PtyClaudeProcess.spawn(
            launch.argv,
            env=launch.env,
            cwd=cwd,
            columns=options.columns,
            rows=options.rows,
            input_timeout=options.input_timeout,
        )
        send, receive = trio.open_memory_channel[_Item](_CHANNEL_SIZE)
        try:
            with receive, single_error_unwrapped():
                async with trio.open_nursery() as nursery:
                    conversation = Conversation(
                        session_id=sid,
                        session_file=path,
                        options=options,
                        process=proc,
                        receive=receive,
                    )
                    conversation._delivered = offset
                    conversation._hooks = hooks
                    conversation._editor = editor
                    decider.conversation = conversation
                    sink.conversation = conversation
                    with send:
                        if options.partial_messages:
                            conversation._relay_send = send.clone()
                        guarded = conversation._guarded
                        nursery.start_soon(guarded, _drain(proc), send.clone())
                        nursery.start_soon(
                            guarded, partial(conversation._tail, watcher), send.clone()
                        )
                        nursery.start_soon(guarded, conversation._watch_exit, send.clone())
                        nursery.start_soon(guarded, conversation._watch_screen, send.clone())
                    with trio.move_on_after(options.startup_timeout) as startup:
                        await proc.wait_ready(trust_cwd=options.trust_cwd)
                    if startup.cancelled_caught:
                        raise BackendTimeoutError(
                            "claude did not show its input box in time",
                            phase="startup",
                            timeout=options.startup_timeout,
                            screen_tail=proc.screen.tail(),
                        )
                    yield conversation
                    nursery.cancel_scope.cancel()
        finally:
            with trio.move_on_after(options.close_timeout, shield=True):
                await watcher.aclose()
            await proc.aclose(grace=options.close_timeout)
