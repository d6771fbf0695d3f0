"""The CLI's terminal screen, rendered by a real terminal emulator (pyte).

Bytes from the PTY are queued as they arrive and fed to the emulator only when somebody
asks for the screen, so a long reply costs no emulation unless it is looked at; the
queue is bounded by feeding it early once it grows past a limit, so no state is lost.
"""

from __future__ import annotations

import re
from typing import Final

import attrs
import pyte

# The idle input box: a rule, a line starting with the prompt glyph, another rule.
# Dialogs use the same glyph but never between two rules.
_READY_RE: Final = re.compile(r"^─{20,}\n❯.*\n─{20,}", re.MULTILINE)
_MAX_PENDING: Final = 256 * 1024


@attrs.frozen
class Dialog:
    """A screen the CLI will not get past without an answer the library never gives.

    Attributes:
        name: A short name for the dialog.
        fix: The configuration that prevents it.
    """

    name: str
    fix: str


_DIALOGS: Final = (
    (
        re.compile(r"Unable to connect to Anthropic services|Welcome to Claude Code v"),
        Dialog(
            "onboarding",
            'set "hasCompletedOnboarding": true in $CLAUDE_CONFIG_DIR/.claude.json',
        ),
    ),
    (
        re.compile(r"Is this a project you created or one you trust"),
        Dialog(
            "trust folder",
            "pass trust_cwd=True, or set "
            'projects["<real path of cwd>"].hasTrustDialogAccepted = true in .claude.json',
        ),
    ),
    (
        re.compile(r"Detected a custom API key in your environment"),
        Dialog(
            "custom API key",
            "add the last 20 characters of ANTHROPIC_API_KEY to "
            "customApiKeyResponses.approved in .claude.json",
        ),
    ),
    (
        re.compile(r"running in Bypass Permissions mode"),
        Dialog(
            "bypass permissions warning",
            'set "bypassPermissionsModeAccepted": true in .claude.json',
        ),
    ),
    (
        re.compile(r"cannot be used with root/sudo privileges"),
        Dialog(
            "skip-permissions refused for root",
            "set IS_SANDBOX=1 in the CLI's environment (only inside a sandbox or container)",
        ),
    ),
)


class TerminalScreen:
    """A lazily fed pyte screen of fixed size.

    Args:
        columns: The terminal width the CLI was given.
        rows: The terminal height the CLI was given.
    """

    def __init__(self, *, columns: int, rows: int) -> None:
        self._screen = pyte.Screen(columns, rows)
        self._stream = pyte.ByteStream(self._screen)
        self._pending = bytearray()
        self.bytes_seen = 0

    def feed(self, data: bytes) -> None:
        """Queue *data* read from the PTY."""
        self._pending += data
        self.bytes_seen += len(data)
        if len(self._pending) > _MAX_PENDING:
            self._flush()

    def text(self) -> str:
        """Return the screen as text, one line per row, trailing spaces removed."""
        self._flush()
        return "\n".join(line.rstrip() for line in self._screen.display)

    def tail(self, lines: int = 20) -> str:
        """Return the last *lines* non-blank rows of the screen."""
        rows = [row for row in self.text().splitlines() if row.strip()]
        return "\n".join(rows[-lines:])

    def _flush(self) -> None:
        if self._pending:
            data = bytes(self._pending)
            self._pending.clear()
            self._stream.feed(data)


_BOX_RE: Final = re.compile(r"^─{20,}\n(❯.*(?:\n(?!─{20,}).*)*)\n─{20,}", re.MULTILINE)


def input_box(text: str) -> str | None:
    """Return what the input box of the rendered screen *text* holds, or None if none shows.

    Continuation lines lose their two-space indent; an empty box gives ``""``.
    """
    matches = list(_BOX_RE.finditer(text))
    if not matches:
        return None
    lines = matches[-1][1].split("\n")
    first = lines[0].removeprefix("❯").removeprefix(" ")
    rest = [line.removeprefix("  ") for line in lines[1:]]
    return "\n".join([first, *rest]).strip()


def lines_above_input_box(text: str, count: int = 3) -> str:
    """Return the *count* rows just above the input box of the rendered screen *text*.

    That is where the CLI draws its status while it works (the spinner, the retry
    line and its hint); "" when no input box shows.
    """
    matches = list(_BOX_RE.finditer(text))
    if not matches:
        return ""
    above = text[: matches[-1].start()].split("\n")[:-1]
    return "\n".join(above[-count:])


def is_busy(text: str) -> bool:
    """Return whether the rendered screen *text* shows a turn in progress."""
    return "esc to interrupt" in text


def is_ready(text: str) -> bool:
    """Return whether the rendered screen *text* shows the idle input box."""
    return _READY_RE.search(text) is not None


def find_dialog(text: str) -> Dialog | None:
    """Return the blocking first-run dialog shown in *text*, if any."""
    for pattern, dialog in _DIALOGS:
        if pattern.search(text):
            return dialog
    return None
