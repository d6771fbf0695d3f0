"""``claude-trio chat``: an interactive multi-turn loop over one `ClaudeCodeBackend`.

Each turn sends the whole conversation so far through `ClaudeCodeBackend.complete`; the
backend finds the live ``claude`` that holds that history and types only the new message
into it, so one process serves the whole chat. A turn that failed or was interrupted is
left out of the history (the next turn starts a process re-seeded with the rest).

Ctrl-C interrupts the turn, not the program: the loop holds a SIGINT receiver, and a
SIGINT cancels the running turn's scope, or at the prompt prints how to leave. ``/exit``,
``/quit`` and end of input (Ctrl-D) leave.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any, Final, final

import trio

from ._backend import ClaudeCodeBackend
from ._command_ask import (
    EventPrinter,
    PermissionAsker,
    add_common_arguments,
    add_stream_argument,
    backend_options,
    error_lines,
)
from ._errors import BackendError, CLINotFoundError
from ._events import AssistantMessage, ResultMessage, TextBlock
from ._options import BackendOptions
from ._spinner import open_spinner

#: What the prompt shows.
PROMPT: Final = "> "
#: Lines that leave the chat.
EXIT_COMMANDS: Final = frozenset({"/exit", "/quit"})
#: What a Ctrl-C at the prompt prints.
LEAVE_HINT: Final = "(to leave, type /exit or press Ctrl-D)"
#: What a Ctrl-C during a turn prints once the turn has stopped.
INTERRUPTED: Final = "(interrupted)"


def add_chat_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``chat`` subcommand's arguments to *parser*."""
    add_stream_argument(parser)
    add_common_arguments(parser)


def main_chat(args: argparse.Namespace) -> int:
    """Run ``claude-trio chat``; return the exit status.

    Raises:
        UsageError: For bad arguments.
        CLINotFoundError: If the CLI is missing (other errors end only their turn).
    """
    asker = PermissionAsker(interactive=sys.stdin.isatty(), err=sys.stderr)
    options = backend_options(args, on_permission=asker, partial_messages=args.stream)
    return trio.run(_chat, options, asker)


@final
class _State:
    """What a SIGINT should do: cancel the turn running, or remind how to leave."""

    def __init__(self) -> None:
        self.turn: trio.CancelScope | None = None
        self.reading = False


async def _chat(options: BackendOptions, asker: PermissionAsker) -> int:
    _enable_line_editing()
    _note("claude-trio chat: Ctrl-C interrupts a turn; to leave, type /exit or press Ctrl-D")
    history: list[dict[str, Any]] = []
    state = _State()
    with trio.open_signal_receiver(signal.SIGINT) as interrupts:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_on_interrupt, interrupts, state)
            async with ClaudeCodeBackend(options) as backend:
                while (line := await _read_line(state)) is not None:
                    if line.strip() in EXIT_COMMANDS:
                        break
                    if line.strip():
                        await _turn(backend, history, line, state, asker)
            nursery.cancel_scope.cancel()
    return 0


async def _read_line(state: _State) -> str | None:
    """Return the next line typed, or None at end of input."""
    state.reading = True
    try:
        # input() (with readline's editing and history) blocks in the terminal driver,
        # which trio cannot wait on, so it runs in a worker thread. That thread is never
        # abandoned: an abandoned input() would go on to eat the next line typed. Nothing
        # cancels it either: a SIGINT at the prompt only prints a hint.
        return await trio.to_thread.run_sync(input, PROMPT)
    except EOFError:
        print()
        return None
    finally:
        state.reading = False


async def _turn(
    backend: ClaudeCodeBackend,
    history: list[dict[str, Any]],
    line: str,
    state: _State,
    asker: PermissionAsker,
) -> None:
    """Run one turn; add it to *history* only if it completed."""
    message = {"role": "user", "content": line}
    reply: list[str] = []
    result: ResultMessage | None = None
    with trio.CancelScope() as scope:
        state.turn = scope
        try:
            async with _printer(asker) as printer:
                turn = backend.complete([*history, message])
                async with contextlib.aclosing(turn) as events:
                    async for event in events:
                        printer.show(event)
                        if isinstance(event, AssistantMessage):
                            reply += (b.text for b in event.content if isinstance(b, TextBlock))
                        elif isinstance(event, ResultMessage):
                            result = event
        except CLINotFoundError:
            raise
        except BackendError as exc:
            _note(*error_lines(exc))
            return
        finally:
            state.turn = None
    if scope.cancelled_caught:
        _note(INTERRUPTED)
    elif result is not None and not result.interrupted and not result.is_error:
        history += [message, {"role": "assistant", "content": "".join(reply)}]


@contextlib.asynccontextmanager
async def _printer(asker: PermissionAsker) -> AsyncIterator[EventPrinter]:
    async with open_spinner(sys.stderr, label="claude", enabled=sys.stderr.isatty()) as spinner:
        asker.spinner = spinner
        printer = EventPrinter(out=sys.stdout, err=sys.stderr, spinner=spinner)
        try:
            yield printer
        finally:
            printer.end_line()
            asker.spinner = None


async def _on_interrupt(interrupts: AsyncIterator[int], state: _State) -> None:
    async for _ in interrupts:
        if state.turn is not None:
            state.turn.cancel()
        elif state.reading:
            # The line typed so far stays in readline's buffer: show it again after the
            # hint, so the terminal matches what Enter will send.
            sys.stdout.write(f"\n{LEAVE_HINT}\n{PROMPT}{_line_buffer()}")
            sys.stdout.flush()


def _note(*lines: str) -> None:
    for line in lines:
        print(line, file=sys.stderr)
    sys.stderr.flush()


def _enable_line_editing() -> None:
    """Give input() line editing and history (importing readline is enough)."""
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401


def _line_buffer() -> str:
    readline = sys.modules.get("readline")
    return "" if readline is None else str(readline.get_line_buffer())
