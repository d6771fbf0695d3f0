"""The ``claude-trio`` command (also ``python -m claude_trio``): parsing, dispatch, exit codes.

Subcommands: ``ask`` (one prompt, the answer as it arrives), ``chat`` (an interactive
loop), ``serve`` (the HTTP gateway), ``demo`` (the real CLI against the bundled mock
API) and ``doctor`` (checks the CLI against what the library relies on).

An expected failure (a `BackendError`) prints one line, ``claude-trio: <ErrorClass>:
<message>``, plus ``claude-trio: fix: …`` when the error names a fix, and no traceback.
An unexpected exception prints its traceback. The exit status says what happened:

====  ========================================================================
Code  Meaning
====  ========================================================================
0     success
1     internal error: an unexpected exception (its traceback is printed)
2     usage: bad arguments or options
3     CLINotFoundError: the claude executable was not found
4     InputError: the prompt cannot be sent through the CLI
5     AuthError: the API rejected the credentials
6     RateLimitError: a rate or usage limit (the wait is printed when known)
7     APIError: another API failure (overloaded, connection, an error status)
8     BackendTimeoutError: a bounded wait ran out
9     ProcessError, SessionError, MessageParseError or another BackendError
130   interrupted (Ctrl-C outside chat and serve)
====  ========================================================================
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Final

import trio

from . import _demo, _doctor
from ._command_ask import (
    CommandError,
    UsageError,
    add_ask_arguments,
    error_lines,
    main_ask,
)
from ._command_chat import add_chat_arguments, main_chat
from ._command_serve import add_serve_arguments, main_serve
from ._errors import (
    APIError,
    AuthError,
    BackendError,
    BackendTimeoutError,
    CLINotFoundError,
    InputError,
    RateLimitError,
)
from ._version import __version__

EXIT_OK: Final = 0
EXIT_INTERNAL: Final = 1
EXIT_USAGE: Final = 2
EXIT_CLI_NOT_FOUND: Final = 3
EXIT_INPUT: Final = 4
EXIT_AUTH: Final = 5
EXIT_RATE_LIMIT: Final = 6
EXIT_API: Final = 7
EXIT_TIMEOUT: Final = 8
EXIT_BACKEND: Final = 9
EXIT_INTERRUPTED: Final = 130

#: Every exit status and its meaning, as the module docstring and docs/command.rst list them.
EXIT_CODES: Final = (
    (EXIT_OK, "success"),
    (EXIT_INTERNAL, "internal error: an unexpected exception (its traceback is printed)"),
    (EXIT_USAGE, "usage: bad arguments or options"),
    (EXIT_CLI_NOT_FOUND, "CLINotFoundError: the claude executable was not found"),
    (EXIT_INPUT, "InputError: the prompt cannot be sent through the CLI"),
    (EXIT_AUTH, "AuthError: the API rejected the credentials"),
    (EXIT_RATE_LIMIT, "RateLimitError: a rate or usage limit (the wait is printed when known)"),
    (EXIT_API, "APIError: another API failure (overloaded, connection, an error status)"),
    (EXIT_TIMEOUT, "BackendTimeoutError: a bounded wait ran out"),
    (EXIT_BACKEND, "ProcessError, SessionError, MessageParseError or another BackendError"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C outside chat and serve)"),
)

#: Error classes and their exit status; the first that matches wins (subclasses first).
_BY_CLASS: Final[tuple[tuple[type[BackendError], int], ...]] = (
    (CLINotFoundError, EXIT_CLI_NOT_FOUND),
    (InputError, EXIT_INPUT),
    (AuthError, EXIT_AUTH),
    (RateLimitError, EXIT_RATE_LIMIT),
    (APIError, EXIT_API),
    (BackendTimeoutError, EXIT_TIMEOUT),
)


def exit_status_for(error: BackendError) -> int:
    """Return the exit status of an expected failure (see the table above)."""
    for cls, status in _BY_CLASS:
        if isinstance(error, cls):
            return status
    return EXIT_BACKEND


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the whole command, subcommands included."""
    parser = argparse.ArgumentParser(
        prog="claude-trio",
        description="Drive the interactive Claude Code CLI from trio: ask, chat, serve it "
        "over HTTP. Variables ANTHROPIC_*, CLAUDE_CODE_* and CLAUDE_CONFIG_DIR of this "
        "environment reach the CLI; with none set it uses your own claude login.",
        epilog="Exit status: 0 ok, 1 internal error, 2 usage, 3 CLI not found, 4 input "
        "refused, 5 auth, 6 rate limit, 7 other API error, 8 timeout, 9 CLI process or "
        "session, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"claude-trio {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, summary: str, run: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(run=run)
        return sub

    add_ask_arguments(add("ask", "ask claude one thing; print the answer as it arrives", main_ask))
    add_chat_arguments(
        add("chat", "talk with claude, turn after turn, in one live process", main_chat)
    )
    add_serve_arguments(
        add(
            "serve",
            "serve the Anthropic Messages and OpenAI Chat Completions APIs over HTTP",
            main_serve,
        )
    )
    _demo.add_demo_arguments(
        add("demo", "run claude against the bundled mock API, offline", _main_demo)
    )
    _doctor.add_doctor_arguments(
        add("doctor", "check the claude CLI against what claude_trio relies on", _main_doctor)
    )
    return parser


def _main_demo(args: argparse.Namespace) -> int:
    return trio.run(_demo.run_demo, args)


def _main_doctor(args: argparse.Namespace) -> int:
    return trio.run(_doctor.run_doctor, args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``claude-trio`` command line; return its exit status.

    Args:
        argv: The arguments after the program name; default ``sys.argv[1:]``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.run(args)
    except BaseException as exc:  # reported by class; SystemExit is re-raised
        return _report(exc, args)
    assert isinstance(status, int)
    return status


def _report(exc: BaseException, args: argparse.Namespace) -> int:
    """Print *exc* as the table above says and return its exit status."""
    leaves = _leaves(exc)
    error = leaves[0] if len(leaves) == 1 else exc
    if isinstance(error, SystemExit | GeneratorExit):
        raise error
    # Ctrl-C lands in whichever task runs at that moment; what the others raise as the
    # processes are torn down (the CLI's SIGTERM exit, say) follows from it.
    if any(isinstance(leaf, KeyboardInterrupt) for leaf in leaves):
        print("claude-trio: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if isinstance(error, UsageError):
        print(f"claude-trio {args.command}: error: {error.message}", file=sys.stderr)
        return error.exit_status
    if isinstance(error, CommandError):
        print(f"claude-trio: {error.message}", file=sys.stderr)
        return error.exit_status
    if isinstance(error, BackendError):
        if getattr(args, "json", False):
            body = {"type": "error", "error": {"type": type(error).__name__, "message": str(error)}}
            print(json.dumps(body, ensure_ascii=False), flush=True)
        for line in error_lines(error):
            print(line, file=sys.stderr)
        return exit_status_for(error)
    traceback.print_exception(exc)
    return EXIT_INTERNAL


def _leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside *exc*, groups flattened, cancellations left out."""
    if not isinstance(exc, BaseExceptionGroup):
        return [exc]
    found: list[BaseException] = []
    for inner in exc.exceptions:
        found += _leaves(inner)
    return [leaf for leaf in found if not isinstance(leaf, trio.Cancelled)] or found
