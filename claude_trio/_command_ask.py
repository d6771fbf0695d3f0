"""``claude-trio ask``, and the pieces ``chat`` and ``serve`` share with it.

Shared: the flags that say how to run the CLI (`add_common_arguments`) and the
`BackendOptions` built from them (`backend_options`); how a turn's events are printed
(`EventPrinter`: text on stdout, tool calls and notes on stderr, or one JSON object per
line); how a permission prompt is answered (`PermissionAsker`); and how an expected
failure is reported (`error_lines`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, TextIO, final

import trio

from ._backend import ClaudeCodeBackend
from ._convert import to_anthropic
from ._errors import BackendError, CLINotFoundError, RateLimitError, SessionError
from ._events import (
    AssistantMessage,
    Event,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)
from ._locate import CLI_ENV_VAR, PINNED_CLI_VERSION
from ._options import _PERMISSION_MODES, BackendOptions, PermissionRequest
from ._spinner import Spinner, open_spinner

#: Variables of the command's environment given to the CLI on top of the library's
#: pass-through (`claude_trio._environment`): the CLI refuses
#: ``--dangerously-skip-permissions`` as root without ``IS_SANDBOX=1``, and the library's
#: default ``CLAUDE_CODE_MAX_RETRIES`` would beat the caller's.
EXTRA_PASSED: Final = ("IS_SANDBOX", "CLAUDE_CODE_MAX_RETRIES")
#: The longest summary of a tool call or result shown on one line.
SUMMARY_CHARS: Final = 100
#: Input keys that say best what a tool call does, in order of preference.
_SUMMARY_KEYS: Final = ("command", "file_path", "path", "url", "pattern", "query", "prompt")
#: System messages worth a line on stderr.
_SHOWN_SUBTYPES: Final = frozenset({"api_retry", "cli_version"})


class CommandError(Exception):
    """A failure the command reports in one line, with its exit status; no traceback.

    Args:
        message: What went wrong and what to do about it.
        exit_status: The status the command exits with.
    """

    def __init__(self, message: str, *, exit_status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_status = exit_status


class UsageError(CommandError):
    """An argument, or a combination of them, the command cannot run with (exit status 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_status=2)


# --- options -------------------------------------------------------------------------------


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags that say how to run the CLI (``ask``, ``chat`` and ``serve``).

    Args:
        parser: The subcommand's parser.
    """
    group = parser.add_argument_group("how to run claude")
    group.add_argument(
        "--cli-path",
        metavar="PATH",
        help=f"the claude executable (default: ${CLI_ENV_VAR}, else claude on PATH)",
    )
    group.add_argument(
        "--cwd",
        metavar="DIR",
        default=".",
        help="the directory claude works in (default: the current one)",
    )
    group.add_argument("--model", help="the model to ask for (claude --model)")
    group.add_argument(
        "--system-prompt", metavar="TEXT", help="replaces Claude Code's system prompt"
    )
    group.add_argument(
        "--permission-mode",
        choices=_PERMISSION_MODES,
        help="claude --permission-mode (the CLI's default is auto)",
    )
    group.add_argument(
        "--dangerously-skip-permissions",
        action="store_true",
        help="run every tool without asking (as root the CLI also needs IS_SANDBOX=1)",
    )
    group.add_argument(
        "--trust-cwd",
        action="store_true",
        help="answer yes to claude's 'do you trust this folder?' dialog",
    )
    group.add_argument(
        "--turn-timeout",
        metavar="SECONDS",
        type=float,
        help="the longest a turn may take; 0 for no limit (default: 600)",
    )


def caller_env(environ: Mapping[str, str]) -> dict[str, str]:
    """Return the variables of *environ* the command adds to the CLI's environment.

    ``ANTHROPIC_*``, ``CLAUDE_CODE_*``, ``CLAUDE_CONFIG_DIR`` and the rest of the
    library's pass-through list reach the CLI anyway; this adds `EXTRA_PASSED`.
    """
    return {name: environ[name] for name in EXTRA_PASSED if name in environ}


def backend_options(args: argparse.Namespace, **more: Any) -> BackendOptions:
    """Return the `BackendOptions` of the common flags in *args*, plus *more*.

    Args:
        args: Parsed by a parser that `add_common_arguments` set up.
        more: More `BackendOptions` fields (``on_permission``, pool policy).

    Raises:
        UsageError: If ``--cwd`` is not a directory, or a value is out of range.
    """
    cwd = Path(args.cwd)
    if not cwd.is_dir():
        raise UsageError(f"--cwd {args.cwd}: not a directory")
    settings: dict[str, Any] = {
        "cwd": cwd,
        "cli_path": args.cli_path,
        "env": caller_env(os.environ),
        "model": args.model,
        "system_prompt": args.system_prompt,
        "permission_mode": args.permission_mode,
        "dangerously_skip_permissions": args.dangerously_skip_permissions,
        "trust_cwd": args.trust_cwd,
        **more,
    }
    if args.turn_timeout is not None:
        settings["turn_timeout"] = args.turn_timeout or None
    try:
        return BackendOptions(**settings)
    except (ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from exc


# --- output --------------------------------------------------------------------------------


def one_line(text: str, limit: int = SUMMARY_CHARS) -> str:
    """Return the first line of *text*, cut to *limit* characters, noting what was left."""
    lines = text.strip().splitlines() or [""]
    first = lines[0]
    if len(first) > limit:
        first = first[: limit - 1] + "…"
    if len(lines) > 1:
        first += f" (+{len(lines) - 1} lines)"
    return first


def tool_call_line(block: ToolUseBlock) -> str:
    """Return the compact form of a tool call: ``● Bash(echo hi)``."""
    summary = next(
        (str(block.input[key]) for key in _SUMMARY_KEYS if key in block.input),
        json.dumps(block.input, ensure_ascii=False, separators=(",", ":")),
    )
    return f"● {block.name}({one_line(summary)})"


def tool_result_line(block: ToolResultBlock) -> str:
    """Return the compact form of a tool result: ``  ⎿ hi`` (``⎿ error: …`` if it failed)."""
    if isinstance(block.content, str):
        text = block.content
    else:
        text = "\n".join(str(part.get("text", f"[{part.get('type')}]")) for part in block.content)
    return f"  ⎿ {'error: ' if block.is_error else ''}{one_line(text)}"


@final
class EventPrinter:
    """Prints a turn's events as they arrive.

    As text: the assistant's text on *out*, tool calls, tool results and notes
    (retries, an interrupted turn) compactly on *err*. As JSON: every event on *out*, one
    `to_anthropic` object per line. The spinner is erased before anything is printed.

    With partial messages (``--stream``), a text block is printed piece by piece from its
    `StreamEvent` s as the API sends it (the spinner held off meanwhile), and not again
    when its `AssistantMessage` arrives. A sub-agent's events are not printed.

    Args:
        out: Where the answer goes (stdout).
        err: Where the rest goes (stderr).
        spinner: The spinner drawn on the terminal, if any.
        json_lines: Print JSON lines instead of text.
    """

    def __init__(
        self, *, out: TextIO, err: TextIO, spinner: Spinner | None, json_lines: bool = False
    ) -> None:
        self.out = out
        self.err = err
        self.spinner = spinner
        self.json_lines = json_lines
        # The API message being streamed, and those whose text went out piece by piece.
        self._message: str | None = None
        self._streamed: set[str] = set()
        self._open_line = False
        self._spinner_held = contextlib.ExitStack()

    def show(self, event: Event) -> None:
        """Print *event*."""
        if self.spinner is not None:
            self.spinner.erase()
        if self.json_lines:
            line = json.dumps(to_anthropic(event), ensure_ascii=False, default=str)
            self._write(self.out, line)
            return
        if isinstance(event, StreamEvent):
            self._show_piece(event)
            return
        self.end_line()
        if isinstance(event, AssistantMessage | UserMessage) and not isinstance(event.content, str):
            for block in event.content:
                if isinstance(block, TextBlock) and isinstance(event, AssistantMessage):
                    if event.id not in self._streamed:
                        self._write(self.out, block.text)
                elif isinstance(block, ToolUseBlock):
                    self._write(self.err, tool_call_line(block))
                elif isinstance(block, ToolResultBlock):
                    self._write(self.err, tool_result_line(block))
        elif isinstance(event, SystemMessage):
            if event.subtype in _SHOWN_SUBTYPES or event.level in ("warning", "error"):
                self._write(self.err, f"[{event.subtype}] {one_line(event.content or '')}")
        elif isinstance(event, ResultMessage) and event.interrupted:
            self._write(self.err, "(the turn was interrupted)")

    def note(self, text: str) -> None:
        """Print a note on *err*, after erasing the spinner."""
        if self.spinner is not None:
            self.spinner.erase()
        self.end_line()
        self._write(self.err, text)

    def _show_piece(self, event: StreamEvent) -> None:
        """Print a text delta of the conversation's own stream as it comes."""
        if event.parent_tool_use_id is not None:
            return
        raw = event.event
        kind = raw.get("type")
        if kind == "message_start" and isinstance(raw.get("message"), dict):
            self.end_line()
            self._message = raw["message"].get("id")
        elif kind == "content_block_delta" and isinstance(raw.get("delta"), dict):
            delta = raw["delta"]
            if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
                if not self._open_line and self.spinner is not None:
                    self._spinner_held.enter_context(self.spinner.paused())
                self._open_line = True
                self.out.write(delta["text"])
                self.out.flush()
                if self._message is not None:
                    self._streamed.add(self._message)
        elif kind == "content_block_stop":
            self.end_line()

    def end_line(self) -> None:
        """End a line of streamed text, if one is open, and let the spinner draw again."""
        if self._open_line:
            self._open_line = False
            self.out.write("\n")
            self.out.flush()
        self._spinner_held.close()

    @staticmethod
    def _write(stream: TextIO, text: str) -> None:
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()


def error_lines(exc: BackendError) -> list[str]:
    """Return the lines that report an expected failure: the error, then its fix if known.

    The first is ``claude-trio: <ErrorClass>: <message>`` (its first line; a
    `RateLimitError` adds when to try again). A second line, ``claude-trio: fix: …``,
    follows when the error names a fix (`SessionError.fix`, a missing CLI).
    """
    text = exc.message if isinstance(exc, SessionError) else str(exc)
    line = f"claude-trio: {type(exc).__name__}: {(text.splitlines() or [''])[0]}"
    if isinstance(exc, RateLimitError):
        if exc.retry_after is not None:
            line += f" (retry after {exc.retry_after:g} s)"
        if exc.reset_at is not None:
            line += f" (the limit resets at {exc.reset_at.isoformat(timespec='seconds')})"
    lines = [line]
    fix: str | None = None
    if isinstance(exc, SessionError) and exc.fix:
        fix = exc.fix.replace("pass trust_cwd=True", "pass --trust-cwd")
    elif isinstance(exc, CLINotFoundError):
        fix = (
            "install the Claude Code CLI (npm install -g "
            f"@anthropic-ai/claude-code@{PINNED_CLI_VERSION}), then pass --cli-path, "
            f"set {CLI_ENV_VAR}, or put claude on PATH"
        )
    if fix:
        lines.append(f"claude-trio: fix: {fix}")
    return lines


# --- permission prompts --------------------------------------------------------------------


@final
class PermissionAsker:
    """The ``on_permission`` callback of ``ask`` and ``chat``.

    On a terminal it asks the user (y/n) on stdin, with the spinner paused; otherwise it
    denies and says so on stderr.

    Args:
        interactive: Whether stdin is a terminal the user answers on.
        err: Where notes go (stderr).
    """

    def __init__(self, *, interactive: bool, err: TextIO) -> None:
        self.interactive = interactive
        self.err = err
        #: The spinner of the turn being run, paused while the user is asked.
        self.spinner: Spinner | None = None

    async def __call__(self, request: PermissionRequest) -> bool:
        """Answer one permission prompt: True allows the tool."""
        if self.spinner is not None:
            self.spinner.erase()
        detail = request.detail.strip()
        if not self.interactive:
            what = one_line(" ".join(detail.split()))
            self.err.write(
                f"claude-trio: denied {request.tool} ({what}): stdin is not a terminal to "
                "ask on; pass --dangerously-skip-permissions or --permission-mode to allow "
                "tools\n"
            )
            self.err.flush()
            return False
        self.err.write(f"claude-trio: {request.tool} asks for permission:\n")
        for line in detail.splitlines():
            self.err.write(f"    {line}\n")
        self.err.flush()
        pause = self.spinner.paused() if self.spinner is not None else contextlib.nullcontext()
        with pause:
            # input() blocks in the terminal; a worker thread keeps trio running. The
            # thread is never abandoned: it would go on to eat the next line typed.
            try:
                answer = await trio.to_thread.run_sync(input, "Allow? [y/N] ")
            except EOFError:
                answer = ""
        _forget_last_line(answer)
        return answer.strip().lower() in {"y", "yes"}


def _forget_last_line(answer: str) -> None:
    """Keep a y/n answer out of ``chat``'s readline history."""
    readline = sys.modules.get("readline")
    if readline is None or not answer.strip():
        return
    length = readline.get_current_history_length()
    if length and readline.get_history_item(length) == answer:
        readline.remove_history_item(length - 1)


# --- ask -----------------------------------------------------------------------------------


def add_ask_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``ask`` subcommand's arguments to *parser*."""
    parser.add_argument(
        "prompt",
        nargs="?",
        help="what to ask; without it (or with -) the prompt is read from stdin",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print every event as one JSON object per line (the last is the result)",
    )
    add_stream_argument(parser)
    add_common_arguments(parser)


def add_stream_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--stream`` (``ask`` and ``chat``): partial messages, printed as they come."""
    parser.add_argument(
        "--stream",
        action="store_true",
        help="print the answer as the model writes it (through a relay on 127.0.0.1; "
        "needs claude-trio[relay]); with --json, every stream event too",
    )


def main_ask(args: argparse.Namespace) -> int:
    """Run ``claude-trio ask``; return the exit status.

    Raises:
        UsageError: For bad arguments.
        BackendError: What the turn raised.
    """
    if args.prompt is None or args.prompt == "-":
        if sys.stdin.isatty():
            raise UsageError("give a prompt, or pipe one into stdin")
        prompt = sys.stdin.read()
        interactive = False
    else:
        prompt = args.prompt
        interactive = sys.stdin.isatty()
    asker = PermissionAsker(interactive=interactive, err=sys.stderr)
    options = backend_options(args, on_permission=asker, max_live=1, partial_messages=args.stream)
    return trio.run(_ask, options, prompt, asker, args.json)


async def _ask(options: BackendOptions, prompt: str, asker: PermissionAsker, as_json: bool) -> int:
    async with open_spinner(sys.stderr, label="claude", enabled=sys.stderr.isatty()) as spinner:
        asker.spinner = spinner
        printer = EventPrinter(out=sys.stdout, err=sys.stderr, spinner=spinner, json_lines=as_json)
        async with ClaudeCodeBackend(options) as backend:
            turn = backend.complete([{"role": "user", "content": prompt}])
            try:
                async with contextlib.aclosing(turn) as events:
                    async for event in events:
                        printer.show(event)
            finally:
                printer.end_line()
    return 0
