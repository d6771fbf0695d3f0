"""``claude-trio doctor``: check a ``claude`` CLI against everything claude_trio relies on.

The checks run the real CLI; how each one is judged, and how the results are shown, is
in `claude_trio._doctor_report`, which never touches a process.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import attrs
import trio

from ._backend import ClaudeCodeBackend, CLIVersionWarning
from ._chrome import find_dialog
from ._conversation import Conversation, open_conversation
from ._doctor_report import (
    NOT_RUN_PREFIX,
    PIN_FIX,
    CheckResult,
    Verdict,
    exit_status,
    fix_lines,
    judge_interrupt,
    judge_resume,
    judge_turn,
    judge_turn_end,
    judge_version,
    reply_text,
    summary_line,
    table_header,
    table_row,
    verdict_for_error,
)
from ._environment import config_dir_of
from ._errors import (
    BackendError,
    CLINotFoundError,
    SessionError,
)
from ._events import Event, ResultMessage
from ._locate import find_cli
from ._options import BackendOptions, ConversationOptions
from ._paths import project_key, remove_session_files

#: The bound of each check, in seconds, unless ``--timeout`` says otherwise.
DEFAULT_CHECK_TIMEOUT: Final = 60.0

#: How long a turn against the mock may take to end once its reply is in, in seconds: a
#: turn that ends only by ``turn_timeout`` (600 s by default) fails the check.
TURN_END_BOUND: Final = 15.0

#: The prompt of the one turn ``doctor --live`` sends.
LIVE_PROMPT: Final = "Reply with the single word: pong"

OFFLINE_CHECKS: Final = (
    "cli",
    "version",
    "dialogs",
    "readiness",
    "turn",
    "turn end",
    "interrupt",
    "resume",
)
LIVE_CHECKS: Final = ("cli", "version", "readiness", "live turn")

_TESTING_FIX: Final = (
    "install the testing extra, which serves the bundled mock API: "
    "pip install 'claude-trio[testing]'"
)
_NOT_RUN: Final = f"{NOT_RUN_PREFIX} an earlier check failed"


# --- Running the checks (I/O) -------------------------------------------------------

Check = Callable[[], Awaitable[Verdict]]


async def run_check(name: str, check: Check, *, bound: float) -> CheckResult:
    """Run *check* within *bound* seconds; a check that hangs fails, never the doctor."""
    started = trio.current_time()
    verdict = Verdict(
        False,
        f"did not finish within {bound:g} s",
        fix="the CLI hangs where claude_trio expects it to answer: " + PIN_FIX,
    )
    with trio.move_on_after(bound):
        try:
            verdict = await check()
        except (BackendError, OSError) as exc:
            verdict = verdict_for_error(exc)
    return CheckResult(name, verdict.ok, verdict.detail, verdict.fix, trio.current_time() - started)


@attrs.frozen
class _Lab:
    """One offline check's world: the mock API and a CLI config pointed at it."""

    api: Any  # claude_trio.testing.MockAnthropicAPI (the testing kit is imported lazily)
    home: Path
    settings: Mapping[str, Any]

    def options(self, **overrides: Any) -> ConversationOptions:
        return ConversationOptions(**{**self.settings, **overrides})

    def backend_options(self, **overrides: Any) -> BackendOptions:
        return BackendOptions(**{**self.settings, **overrides})


@contextlib.asynccontextmanager
async def _open_lab(root: Path, name: str, cli: Path, bound: float) -> AsyncIterator[_Lab]:
    from .testing import isolated_config, magic_word_handler, open_mock_anthropic_api

    home = root / name.replace(" ", "-")
    project = home / "project"
    project.mkdir(parents=True)
    async with open_mock_anthropic_api(handler=magic_word_handler) as api:
        config = isolated_config(home, base_url=api.base_url, cwd=project)
        settings = {
            "cwd": config.cwd,
            "env": config.env,
            "cli_path": str(cli),
            "dangerously_skip_permissions": True,
            "max_retries": 0,
            "startup_timeout": bound,
            "prompt_timeout": bound,
            "turn_timeout": bound,
        }
        yield _Lab(api=api, home=home, settings=settings)


async def _collect(turn: AsyncIterator[Event]) -> list[Event]:
    return [event async for event in turn]


async def check_version(cli: Path) -> Verdict:
    """Run ``claude --version`` (the caller bounds it)."""
    done = await trio.run_process(
        [str(cli), "--version"], capture_stdout=True, capture_stderr=True, check=False
    )
    output = done.stdout.decode(errors="replace") or done.stderr.decode(errors="replace")
    return judge_version(output, done.returncode)


async def _check_dialogs(lab: _Lab) -> Verdict:
    untrusted = lab.home / "untrusted"
    untrusted.mkdir()
    try:
        async with open_conversation(lab.options(cwd=untrusted)):
            pass
    except SessionError as exc:
        dialog = find_dialog(exc.screen)
        if dialog is None or dialog.name != "trust folder":
            return verdict_for_error(exc)
    else:
        return Verdict(
            False,
            "no trust dialog showed in a folder the config does not trust",
            fix=PIN_FIX,
        )
    try:
        async with open_conversation(lab.options(cwd=untrusted, trust_cwd=True)):
            pass
    except SessionError as exc:
        dialog = find_dialog(exc.screen)
        if dialog is None or dialog.name != "trust folder":
            return verdict_for_error(exc)
        return Verdict(False, "trust_cwd=True did not get past the trust dialog", fix=PIN_FIX)
    return Verdict(
        True,
        "trust dialog answered by trust_cwd; the first-run dialogs pre-answered",
    )


async def _check_readiness(options: ConversationOptions) -> Verdict:
    started = trio.current_time()
    async with open_conversation(options):
        ready = trio.current_time() - started
    return Verdict(True, f"input box after {ready:.2f} s")


async def _turn_until(conversation: Conversation, prompt: str, expected: str) -> Verdict:
    events: list[Event] = []
    sent = trio.current_time()
    first: float | None = None
    async with contextlib.aclosing(conversation.turn(prompt)) as turn:
        async for event in turn:
            first = trio.current_time() - sent if first is None else first
            events.append(event)
            if expected in reply_text(events) or isinstance(event, ResultMessage):
                break
    return judge_turn(events, expected, first_after=first)


async def _check_turn(lab: _Lab) -> Verdict:
    async with open_conversation(lab.options()) as conversation:
        return await _turn_until(conversation, "doctor says hello", "echo: doctor says hello")


async def _check_turn_end(lab: _Lab) -> Verdict:
    async with open_conversation(lab.options()) as conversation:
        events: list[Event] = []
        with trio.move_on_after(TURN_END_BOUND) as scope:
            async with contextlib.aclosing(conversation.turn("doctor turn end")) as turn:
                async for event in turn:
                    events.append(event)
    return judge_turn_end(events, ended=not scope.cancelled_caught, bound=TURN_END_BOUND)


async def _check_interrupt(lab: _Lab) -> Verdict:
    async with open_conversation(lab.options()) as conversation:
        await conversation.send("SLOW10 doctor interrupt")
        await lab.api.wait_for_requests(1)
        await conversation.interrupt()
        interrupted: list[Event] = []
        with trio.move_on_after(TURN_END_BOUND):
            interrupted = await _collect(conversation.receive_turn())
        if not interrupted:
            return Verdict(
                False, f"the interrupted turn did not end within {TURN_END_BOUND:g} s", PIN_FIX
            )
        after = await _collect(conversation.turn("doctor after the interrupt"))
    return judge_interrupt(interrupted, after, "echo: doctor after the interrupt")


_RESUME_HISTORY: Final = (
    {"role": "user", "content": "doctor first question"},
    {"role": "assistant", "content": "doctor first answer"},
    {"role": "user", "content": "doctor second question"},
)


async def _check_resume(lab: _Lab) -> Verdict:
    options = lab.backend_options(injection_mode="native_jsonl")
    # The version check reports an unmeasured release; the backend need not warn again.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CLIVersionWarning)
        async with ClaudeCodeBackend(options) as backend:
            events = await _collect(backend.complete(list(_RESUME_HISTORY)))
            reseeded = backend.statistics().reseeded
    requests = lab.api.main_requests
    if not requests:
        return Verdict(False, "the mock API saw no request", fix=PIN_FIX)
    return judge_resume(events, requests[-1].messages, _RESUME_HISTORY, reseeded=reseeded)


async def _check_live_turn(options: ConversationOptions) -> Verdict:
    session_file: Path | None = None
    try:
        async with open_conversation(options) as conversation:
            session_file = conversation.session_file
            sent = trio.current_time()
            events = await _collect(conversation.turn(LIVE_PROMPT))
            took = trio.current_time() - sent
    finally:
        # The CLI writes its last records as it exits: remove the file once it has.
        if session_file is not None:
            with contextlib.suppress(OSError):
                remove_session_files(session_file)
    last = events[-1] if events else None
    text = reply_text(events).strip()
    if not isinstance(last, ResultMessage) or last.is_error or not text:
        return Verdict(False, f"no reply (last event: {last!r:.120})", fix=PIN_FIX)
    if last.duration_ms is None:
        return Verdict(False, "the turn ended without the CLI's turn_duration record", PIN_FIX)
    return Verdict(True, f"replied {text[:40]!r} in {took:.2f} s")


def _not_run(names: Iterable[str], detail: str = _NOT_RUN) -> list[CheckResult]:
    return [CheckResult(name, False, detail) for name in names]


async def doctor(
    cli_path: str | None,
    *,
    live: bool = False,
    bound: float = DEFAULT_CHECK_TIMEOUT,
    out: Callable[[str], object] = print,
) -> list[CheckResult]:
    """Run the doctor's checks, showing each row through *out* as it finishes.

    Args:
        cli_path: The ``claude`` to check; None finds it as the library does.
        live: Check the user's logged-in CLI with one real turn instead of the mock.
        bound: Seconds each check may take.
        out: Where the report's lines go.

    Returns:
        One result per check, in order (``OFFLINE_CHECKS`` or ``LIVE_CHECKS``).
    """
    names = LIVE_CHECKS if live else OFFLINE_CHECKS
    width = max(len(name) for name in names)
    results: list[CheckResult] = []

    def record(result: CheckResult) -> None:
        results.append(result)
        out(table_row(result, width))

    if live:
        for line in live_announcement():
            out(line)
    out(table_header(width))
    started = trio.current_time()
    try:
        cli = find_cli(cli_path)
    except CLINotFoundError as exc:
        verdict = verdict_for_error(exc)
        record(CheckResult("cli", False, verdict.detail, verdict.fix))
        for result in _not_run(names[1:]):
            record(result)
        return results
    record(CheckResult("cli", True, str(cli), seconds=trio.current_time() - started))
    record(await run_check("version", lambda: check_version(cli), bound=bound))
    with tempfile.TemporaryDirectory(prefix="claude-trio-doctor-") as scratch:
        root = Path(await trio.Path(scratch).resolve())
        if live:
            await _live_checks(cli, root, bound, record, out)
        else:
            await _offline_checks(cli, root, bound, record)
    return results


async def _offline_checks(
    cli: Path, root: Path, bound: float, record: Callable[[CheckResult], None]
) -> None:
    try:
        import claude_trio.testing  # noqa: F401  (the mock needs hypercorn)
    except ImportError as exc:
        detail = f"the bundled mock API cannot start: {exc}"
        record(CheckResult(OFFLINE_CHECKS[2], False, detail, _TESTING_FIX))
        for result in _not_run(OFFLINE_CHECKS[3:], f"{NOT_RUN_PREFIX} needs the bundled mock"):
            record(result)
        return
    checks: list[tuple[str, Callable[[_Lab], Awaitable[Verdict]]]] = [
        ("dialogs", _check_dialogs),
        ("readiness", lambda lab: _check_readiness(lab.options())),
        ("turn", _check_turn),
        ("turn end", _check_turn_end),
        ("interrupt", _check_interrupt),
        ("resume", _check_resume),
    ]
    for name, check in checks:

        async def in_lab(
            name: str = name, check: Callable[[_Lab], Awaitable[Verdict]] = check
        ) -> Verdict:
            async with _open_lab(root, name, cli, bound) as lab:
                return await check(lab)

        record(await run_check(name, in_lab, bound=bound))


async def _live_checks(
    cli: Path,
    root: Path,
    bound: float,
    record: Callable[[CheckResult], None],
    out: Callable[[str], object],
) -> None:
    options = ConversationOptions(
        cwd=root,
        cli_path=str(cli),
        trust_cwd=True,
        max_retries=0,
        startup_timeout=bound,
        prompt_timeout=bound,
        turn_timeout=bound,
    )
    try:
        await _live_checks_in(options, bound, record, out)
    finally:
        # The CLI keeps a folder per working directory: the scratch one's goes too.
        folder = config_dir_of(options.child_env()) / "projects" / project_key(root)
        shutil.rmtree(folder, ignore_errors=True)


async def _live_checks_in(
    options: ConversationOptions,
    bound: float,
    record: Callable[[CheckResult], None],
    out: Callable[[str], object],
) -> None:
    readiness = await run_check("readiness", lambda: _check_readiness(options), bound=bound)
    record(readiness)
    if not readiness.ok:
        for result in _not_run(LIVE_CHECKS[3:]):
            record(result)
        return
    out(f"  (live turn: sending {LIVE_PROMPT!r} with your account)")
    record(await run_check("live turn", lambda: _check_live_turn(options), bound=bound))


def live_announcement(environ: Mapping[str, str] | None = None) -> list[str]:
    """The lines ``doctor --live`` prints before it runs anything."""
    env = os.environ if environ is None else environ
    config = env.get("CLAUDE_CONFIG_DIR") or str(Path(env.get("HOME", "~")) / ".claude")
    return [
        "doctor --live checks your own logged-in claude: your config "
        f"({config}) and your account, no mock.",
        f"It runs in a scratch directory and sends ONE short prompt ({LIVE_PROMPT!r}),",
        "which uses your account (a few tokens of your plan or API credit). Nothing else "
        "costs tokens.",
        "",
    ]


# --- The command --------------------------------------------------------------------


def add_doctor_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``doctor`` command's arguments to *parser*.

    Args:
        parser: The ``doctor`` subcommand's parser; its description is set too.
    """
    parser.description = (
        "Check the claude CLI against everything claude_trio relies on: its version, the "
        "first-run dialogs, readiness, a turn and its end, an interrupt and a re-seeded "
        "history, against the bundled mock API (offline, no account). Prints a table and "
        "exits 0 when every check passes."
    )
    parser.add_argument(
        "--cli-path", help="the claude executable (default: CLAUDE_TRIO_CLI or PATH)"
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="check your logged-in claude with your real config and account instead: "
        "version, readiness and one short turn (uses a few tokens)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=DEFAULT_CHECK_TIMEOUT,
        metavar="SECONDS",
        help=f"the longest each check may take (default {DEFAULT_CHECK_TIMEOUT:g})",
    )


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds: {text!r}")
    return value


async def run_doctor(args: argparse.Namespace) -> int:
    """Run the doctor as the parsed *args* say; return the exit status.

    Args:
        args: Parsed by a parser that `add_doctor_arguments` set up.

    Returns:
        0 when every check passed (a version warning included), 1 otherwise.
    """
    results = await doctor(args.cli_path, live=args.live, bound=args.timeout)
    fixes = fix_lines(results)
    if fixes:
        print()
        for line in fixes:
            print(line)
    print()
    print(summary_line(results))
    return exit_status(results)
