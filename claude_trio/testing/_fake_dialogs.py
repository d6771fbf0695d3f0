"""The first-run screens of the fake ``claude``, answered with the arrow keys and Enter.

Shown before the TUI starts, in this order, each only when ``.claude.json`` does not
pre-answer it (FACTS.md §1): the onboarding screen (which, offline, always ends the CLI
after about a second), the trust dialog (default "No, exit"), the custom API key dialog
(default "No"), and the bypass-permissions warning (default "No, exit").
"""

from __future__ import annotations

import json
import os
import secrets
import select
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ._fake_input import Key, KeyReader
from ._fake_screen import (
    Terminal,
    api_key_dialog,
    bypass_dialog,
    compose,
    onboarding_screen,
    trust_dialog,
)

if TYPE_CHECKING:
    from ._fake_cli import FakeOptions

_ONBOARDING_EXIT_DELAY: Final = 1.0


class StartupExit(Exception):
    """The CLI stops before its TUI: *message* goes to the terminal, *code* is the status."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def read_settings(path: Path) -> dict[str, Any]:
    """``.claude.json`` as a dict; a missing or broken file reads as empty."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_settings(path: Path, data: dict[str, Any]) -> None:
    """Rewrite ``.claude.json`` through a temporary file and a rename, as the CLI does."""
    temporary = path.with_name(f"{path.name}.tmp.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(data, file, indent=2)
    os.replace(temporary, path)


def _trusted(settings: dict[str, Any], cwd: str) -> bool:
    projects = settings.get("projects")
    if not isinstance(projects, dict):
        return False
    path = Path(cwd)
    for directory in (path, *path.parents):
        entry = projects.get(str(directory))
        if isinstance(entry, dict) and entry.get("hasTrustDialogAccepted") is True:
            return True
    return False


def _key_answered(settings: dict[str, Any], api_key: str) -> bool:
    responses = settings.get("customApiKeyResponses")
    if not isinstance(responses, dict):
        return False
    tail = api_key[-20:]
    return any(
        isinstance(responses.get(kind), list) and tail in responses[kind]
        for kind in ("approved", "rejected")
    )


def _bypass_accepted(options: FakeOptions, settings: dict[str, Any]) -> bool:
    if settings.get("bypassPermissionsModeAccepted") is True:
        return True
    user_settings = read_settings(options.config_dir / "settings.json")
    return user_settings.get("skipDangerousModePermissionPrompt") is True


class Keyboard:
    """Blocking key reads for the dialogs shown before the asyncio TUI starts."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._reader = KeyReader()

    def __iter__(self) -> Iterator[str]:
        while True:
            ready, _, _ = select.select(
                [self._fd], [], [], 0.05 if self._reader.holds_escape else None
            )
            if not ready:
                events = self._reader.flush_escape()
            else:
                try:
                    data = os.read(self._fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    return
                events = self._reader.feed(data)
            for event in events:
                if isinstance(event, Key):
                    yield event.name


def _choose(
    terminal: Terminal,
    keyboard: Keyboard,
    draw: Callable[[int], Sequence[str]],
    selected: int,
    count: int,
) -> int | None:
    """Run one dialog: arrows move, Enter answers; None for Esc or a closed terminal."""
    terminal.draw(compose(draw(selected), [], columns=terminal.columns, rows=terminal.rows))
    for name in keyboard:
        if name in ("up", "down"):
            selected = max(0, min(count - 1, selected + (1 if name == "down" else -1)))
        elif name == "enter":
            return selected
        elif name in ("escape", "ctrl-c"):
            return None
        terminal.draw(compose(draw(selected), [], columns=terminal.columns, rows=terminal.rows))
    return None


def run_dialogs(options: FakeOptions, terminal: Terminal, keyboard: Keyboard) -> None:
    """Show the first-run screens the config does not pre-answer (FACTS.md §1).

    Raises:
        StartupExit: When the answer (or the onboarding check) ends the CLI.
    """
    settings = read_settings(options.claude_json)
    width = terminal.columns
    if settings.get("hasCompletedOnboarding") is not True:
        terminal.draw(compose(onboarding_screen(), [], columns=width, rows=terminal.rows))
        time.sleep(_ONBOARDING_EXIT_DELAY)
        raise StartupExit(1)
    if not _trusted(settings, options.cwd):
        answer = _choose(
            terminal,
            keyboard,
            lambda s: trust_dialog(columns=width, cwd=options.cwd, selected=s),
            0,
            2,
        )
        if answer != 1:
            raise StartupExit(
                1,
                "Claude Code didn't start because this folder isn't trusted.\n"
                "Run claude again and choose Yes, or run it in another folder.",
            )
        settings = read_settings(options.claude_json)
        settings.setdefault("projects", {}).setdefault(options.cwd, {})[
            "hasTrustDialogAccepted"
        ] = True
        write_settings(options.claude_json, settings)
    key = options.api_key
    if key and not _key_answered(settings, key):
        answer = _choose(
            terminal,
            keyboard,
            lambda s: api_key_dialog(columns=width, api_key=key, selected=s),
            1,
            2,
        )
        if answer is None:
            raise StartupExit(1)
        settings = read_settings(options.claude_json)
        responses = settings.setdefault("customApiKeyResponses", {"approved": [], "rejected": []})
        responses.setdefault("approved" if answer == 0 else "rejected", []).append(key[-20:])
        write_settings(options.claude_json, settings)
    if options.permission_mode == "bypassPermissions" and not _bypass_accepted(options, settings):
        answer = _choose(
            terminal, keyboard, lambda s: bypass_dialog(columns=width, selected=s), 0, 2
        )
        if answer != 1:
            raise StartupExit(1)
        user_settings = read_settings(options.config_dir / "settings.json")
        user_settings["skipDangerousModePermissionPrompt"] = True
        write_settings(options.config_dir / "settings.json", user_settings)
