"""A fake ``claude`` CLI for fast tests: start-up, arguments, config and first-run dialogs.

Run it as ``python -m claude_trio.testing._fake_cli [claude args…]``, or through the
script `write_fake_cli` writes. It imitates the real CLI 2.1.328 as FACTS.md records it,
where the library depends on it: the same refusals and errors at start-up, the same
dialogs, the idle input box, and then (in ``_fake_session``) turns that call the API at
``ANTHROPIC_BASE_URL`` and write the session JSONL. Only the standard library is used at
run time, and the idle box is drawn before asyncio is even imported, so it is ready
within tens of milliseconds.

It never reads or writes ``~/.claude``: without ``CLAUDE_CONFIG_DIR`` it refuses to start.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import termios
import tty
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final

from .._paths import project_key
from ._fake_context import model_label
from ._fake_dialogs import Keyboard, StartupExit, run_dialogs
from ._fake_screen import (
    AUTO_MODE_BANNER,
    VERSION,
    Terminal,
    compose,
    header,
    hint,
    input_area,
)

__all__ = ["main"]

DEFAULT_MODEL: Final = "claude-opus-5-5"
_PERMISSION_MODES: Final = (
    "acceptEdits",
    "auto",
    "bypassPermissions",
    "default",
    "dontAsk",
    "plan",
)
_UUID_RE: Final = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)
_VALUE_OPTIONS: Final = {
    "--session-id": "<uuid>",
    "--permission-mode": "<mode>",
    "--model": "<model>",
    "--system-prompt": "<prompt>",
    "--append-system-prompt": "<prompt>",
    "--system-prompt-file": "<file>",
    "--append-system-prompt-file": "<file>",
    "--settings": "<file-or-json>",
    "--setting-sources": "<sources>",
    "--fallback-model": "<model>",
    "--agents": "<json>",
    "--agent": "<agent>",
    "--output-format": "<format>",
    "--input-format": "<format>",
    "--name": "<name>",
}
_OPTIONAL_VALUE_OPTIONS: Final = {
    "--resume": "--resume",
    "-r": "--resume",
    "--debug": "--debug",
    "-d": "--debug",
}
_VARIADIC_OPTIONS: Final = {
    "--mcp-config": "--mcp-config",
    "--allowedTools": "--allowed-tools",
    "--allowed-tools": "--allowed-tools",
    "--disallowedTools": "--disallowed-tools",
    "--disallowed-tools": "--disallowed-tools",
    "--add-dir": "--add-dir",
    "--tools": "--tools",
    "--betas": "--betas",
    "--plugin-dir": "--plugin-dir",
}
_FLAG_OPTIONS: Final = {
    "--dangerously-skip-permissions": "--dangerously-skip-permissions",
    "--allow-dangerously-skip-permissions": "--allow-dangerously-skip-permissions",
    "--disable-slash-commands": "--disable-slash-commands",
    "--fork-session": "--fork-session",
    "--strict-mcp-config": "--strict-mcp-config",
    "--verbose": "--verbose",
    "--continue": "--continue",
    "-c": "--continue",
    "--ide": "--ide",
    "--print": "--print",
    "-p": "--print",
    "--version": "--version",
    "-v": "--version",
    "--help": "--help",
    "-h": "--help",
}


class UsageError(Exception):
    """A command line the real CLI rejects; the message is its ``error:`` line."""


@dataclass
class Arguments:
    """The parsed command line."""

    values: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    resume: str | None = None
    prompt: str | None = None


def parse_args(argv: Sequence[str]) -> Arguments:
    """Parse *argv* the way the CLI's commander setup does, for the options it knows.

    Raises:
        UsageError: For an unknown option or a missing value.
    """
    parsed = Arguments()
    index = 0
    while index < len(argv):
        arg = argv[index]
        index += 1
        name, equals, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in _FLAG_OPTIONS:
            parsed.flags.add(_FLAG_OPTIONS[name])
        elif name in _VALUE_OPTIONS:
            if equals:
                value = inline
            elif index < len(argv):
                value = argv[index]
                index += 1
            else:
                raise UsageError(f"option '{name} {_VALUE_OPTIONS[name]}' argument missing")
            parsed.values[name] = value
        elif name in _OPTIONAL_VALUE_OPTIONS:
            key = _OPTIONAL_VALUE_OPTIONS[name]
            value = inline if equals else ""
            if not equals and index < len(argv) and not argv[index].startswith("-"):
                value = argv[index]
                index += 1
            if key == "--resume":
                parsed.resume = value
            else:
                parsed.values[key] = value
        elif name in _VARIADIC_OPTIONS:
            values = parsed.lists.setdefault(_VARIADIC_OPTIONS[name], [])
            if equals:
                values.append(inline)
            while index < len(argv) and not argv[index].startswith("-"):
                values.append(argv[index])
                index += 1
        elif arg.startswith("-") and arg != "-":
            raise UsageError(f"unknown option '{arg}'")
        elif parsed.prompt is None:
            parsed.prompt = arg
        else:
            raise UsageError(f"too many arguments. Expected 1 argument but got {index}.")
    return parsed


@dataclass(frozen=True)
class FakeOptions:
    """Everything the running fake needs, settled before its TUI starts."""

    session_id: str
    resumed: bool
    permission_mode: str
    disable_slash_commands: bool
    model: str
    system_prompt: str | None
    append_system_prompt: str | None
    disallowed_tools: tuple[str, ...]
    initial_prompt: str | None
    cwd: str
    config_dir: Path
    api_key: str | None
    base_url: str
    max_retries: int
    retry_scale: float
    replay: Path | None
    entrypoint: str
    resume_hint: str
    fault: str | None = None
    history: tuple[dict[str, Any], ...] = ()
    fork_records: tuple[dict[str, Any], ...] = ()

    @property
    def claude_json(self) -> Path:
        """``$CLAUDE_CONFIG_DIR/.claude.json``."""
        return self.config_dir / ".claude.json"

    @property
    def session_file(self) -> Path:
        """The session's JSONL file."""
        return self.config_dir / "projects" / project_key(self.cwd) / f"{self.session_id}.jsonl"


def _red(text: str) -> str:
    return f"\x1b[0m\x1b[31m{text}\x1b[0m"


def settle_options(args: Arguments, env: Mapping[str, str]) -> FakeOptions:
    """Check the command line and the config as the CLI does before it draws anything.

    Raises:
        StartupExit: For each refusal the real CLI prints before its TUI.
    """
    config = env.get("CLAUDE_CONFIG_DIR")
    if not config:
        raise StartupExit(
            2, "fake claude: CLAUDE_CONFIG_DIR is not set; the fake never uses ~/.claude"
        )
    if "--print" in args.flags:
        raise StartupExit(1, "fake claude: --print is not imitated; run it interactively")
    mode = args.values.get("--permission-mode", "auto")
    if mode not in _PERMISSION_MODES:
        raise StartupExit(
            1,
            f"error: option '--permission-mode <mode>' argument '{mode}' is invalid. Allowed"
            f" choices are {', '.join(_PERMISSION_MODES)}.",
        )
    if "--dangerously-skip-permissions" in args.flags:
        mode = "bypassPermissions"
    if (
        mode == "bypassPermissions"
        and os.geteuid() == 0
        and env.get("IS_SANDBOX") not in ("1", "true")
    ):
        raise StartupExit(
            1,
            _red(
                "--dangerously-skip-permissions cannot be used with root/sudo privileges for"
                " security reasons"
            ),
        )
    cwd = os.path.realpath(os.getcwd())
    config_dir = Path(config)
    project_dir = config_dir / "projects" / project_key(cwd)
    session_id, resumed, history, fork_records = _session(args, project_dir)
    hint_args = [flag for flag in sorted(args.flags) if flag == "--disable-slash-commands"]
    try:
        retries = int(env.get("CLAUDE_CODE_MAX_RETRIES", "10"))
        scale = float(env.get("FAKE_CLAUDE_RETRY_SCALE", "1"))
    except ValueError as exc:
        raise StartupExit(1, f"fake claude: {exc}") from None
    replay = env.get("FAKE_CLAUDE_REPLAY")
    disallowed = [
        name
        for value in args.lists.get("--disallowed-tools", [])
        for name in re.split(r"[,\s]+", value)
        if name
    ]
    return FakeOptions(
        session_id=session_id,
        resumed=resumed,
        permission_mode=mode,
        disable_slash_commands="--disable-slash-commands" in args.flags,
        model=args.values.get("--model") or DEFAULT_MODEL,
        system_prompt=_prompt_option(args, "--system-prompt"),
        append_system_prompt=_prompt_option(args, "--append-system-prompt"),
        disallowed_tools=tuple(disallowed),
        initial_prompt=args.prompt,
        cwd=cwd,
        config_dir=config_dir,
        api_key=env.get("ANTHROPIC_API_KEY") or None,
        base_url=env.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com",
        max_retries=max(retries, 0),
        retry_scale=max(scale, 0.0),
        replay=Path(replay) if replay else None,
        entrypoint=env.get("CLAUDE_CODE_ENTRYPOINT") or "cli",
        resume_hint=" ".join(["claude", *hint_args, "--resume", session_id]),
        fault=env.get("FAKE_CLAUDE_FAULT") or None,
        history=tuple(history),
        fork_records=tuple(fork_records),
    )


def _prompt_option(args: Arguments, flag: str) -> str | None:
    """The value of *flag*, or the content of the file ``<flag>-file`` names."""
    path = args.values.get(f"{flag}-file")
    if path is None:
        return args.values.get(flag)
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise StartupExit(1, f"Error: cannot read {flag}-file {path}: {exc}") from None


def _session(
    args: Arguments, project_dir: Path
) -> tuple[str, bool, list[dict[str, Any]], list[dict[str, Any]]]:
    given = args.values.get("--session-id")
    if given is not None and not _UUID_RE.fullmatch(given):
        raise StartupExit(
            1, _red("\x1b[31mError: Invalid session ID. Must be a valid UUID.\x1b[39m")
        )
    target = args.resume
    if "--continue" in args.flags and target is None:
        sessions = sorted(project_dir.glob("*.jsonl"), key=lambda path: path.stat().st_mtime)
        if not sessions:
            raise StartupExit(1, "No conversation found to continue")
        target = sessions[-1].stem
    if target is None:
        session_id = given or str(uuid.uuid4())
        if (project_dir / f"{session_id}.jsonl").exists():
            raise StartupExit(1, _red(f"Error: Session ID {session_id} is already in use."))
        return session_id, False, [], []
    records = _load_records(project_dir / f"{target}.jsonl") if _UUID_RE.fullmatch(target) else []
    if not any(record.get("type") in ("user", "assistant") for record in records):
        raise StartupExit(
            1, f"\x1b[38;5;211mNo conversation found with session ID: {target}\x1b[39m"
        )
    if "--fork-session" not in args.flags:
        return target, True, records, []
    session_id = given or str(uuid.uuid4())
    return session_id, False, records, records


def _load_records(path: Path) -> list[dict[str, Any]]:
    """The user/assistant records of a session the CLI would resume (with a timestamp)."""
    try:
        lines = path.read_text("utf-8", "replace").splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("timestamp"), str):
            records.append(record)
    return records


def first_transcript(options: FakeOptions) -> list[str]:
    """The top of the TUI at start: logo, the auto-mode banner, a resumed conversation."""
    lines = header(options.cwd, model_label(options.model))
    if options.permission_mode == "auto":
        lines += AUTO_MODE_BANNER
    for record in options.history:
        content = record.get("message", {}).get("content")
        if record.get("type") == "user" and isinstance(content, str):
            lines += [f"❯ {content}", ""]
        elif record.get("type") == "assistant" and isinstance(content, list):
            lines += [
                f"● {block.get('text', '')}"
                for block in content
                if isinstance(block, dict) and block.get("type") == "text"
            ]
            lines.append("")
    return lines


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise StartupExit(128 + signum)


@contextlib.contextmanager
def _raw_terminal(fd: int) -> Iterator[None]:
    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        yield
        return
    tty.setraw(fd)
    try:
        yield
    finally:
        with contextlib.suppress(termios.error):
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake CLI; returns its exit status."""
    arguments = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse_args(arguments)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if "--version" in args.flags:
        print(f"{VERSION} (Claude Code)")
        return 0
    if "--help" in args.flags:
        print(
            "Usage: claude [options] [prompt]\n\nThe fake Claude Code CLI of claude_trio.testing."
        )
        return 0
    signal.signal(signal.SIGTERM, _raise_exit)
    signal.signal(signal.SIGHUP, _raise_exit)
    try:
        options = settle_options(args, os.environ)
        size = _terminal_size()
        terminal = Terminal(sys.stdout.fileno(), columns=size.columns, rows=size.lines)
        with _raw_terminal(sys.stdin.fileno()):
            run_dialogs(options, terminal, Keyboard(sys.stdin.fileno()))
            transcript = first_transcript(options)
            terminal.enter_tui()
            bottom = input_area(
                columns=terminal.columns,
                box_text="",
                placeholder="",
                hint_line=hint(options.permission_mode, running=False, notice=None),
                status=(),
            )
            terminal.draw(compose(transcript, bottom, columns=terminal.columns, rows=terminal.rows))
            from ._fake_session import run_session

            return run_session(options, terminal, transcript)
    except StartupExit as exc:
        if exc.message:
            sys.stderr.write(exc.message.replace("\n", "\r\n") + "\r\n")
            sys.stderr.flush()
        return exc.code


def _terminal_size() -> os.terminal_size:
    for fd in (1, 0, 2):
        with contextlib.suppress(OSError):
            return os.get_terminal_size(fd)
    return os.terminal_size((80, 24))


if __name__ == "__main__":
    sys.exit(main())
