"""What the fake ``claude`` draws: the real TUI's layout, as full frames of text.

The texts come from the screens recorded in ``tests/samples`` (FACTS.md §1,
§2, §8, §9). A frame is a list of rows; `Terminal` sends only the rows that changed,
each positioned absolutely and erased to its end, which any VT100 emulator (pyte
included) renders as the real CLI's screen.
"""

from __future__ import annotations

import errno
import os
import re
import select
import unicodedata
from collections.abc import Sequence
from typing import Final

VERSION: Final = "2.1.328"
PROMPT_MARK: Final = "❯\u00a0"

_ENTER_TUI: Final = (
    b"\x1b[?2004h\x1b[?1004h\x1b]0;\xe2\x9c\xb3 Claude Code\x07\x1b[?1049h\x1b[2J\x1b[H\x1b[?25l"
)
_LEAVE_TUI: Final = b"\x1b[?1049l\x1b[?2004l\x1b[?1004l\x1b[?25h"
_ZERO_WIDTH: Final = frozenset("\u200b\u200c\u200d\u2060\ufe0e\ufe0f")
_HANGING_MARKS: Final = ("● ", "❯ ", "❯\u00a0", "! ", "∴ ", "✻ ", "▎ ")
_EFFORT: Final = "◐ medium · /effort"

_HINTS: Final = {
    "auto": "⏵⏵ auto mode on (shift+tab to cycle)",
    "bypassPermissions": "⏵⏵ bypass permissions on (shift+tab to cycle)",
    "acceptEdits": "⏵⏵ accept edits on (shift+tab to cycle)",
    "dontAsk": "⏵⏵ don't ask on (shift+tab to cycle)",
    "plan": "⏸ plan mode on (shift+tab to cycle)",
    "default": "⏸ manual mode on",
}

AUTO_MODE_BANNER: Final = (
    "▎ Auto mode is now Claude Code's default permission mode.",
    "▎ Auto mode lets Claude handle permission prompts automatically. Claude checks each tool"
    " call for risky actions and",
    "▎ prompt injection before executing, runs the ones it assesses as lower-risk, and blocks"
    " the rest.",
    "▎ https://code.claude.com/docs/en/permission-modes",
    "",
)

_WELCOME_ART: Final = (
    "..........................................................",
    "",
    "     *                                       █████▓▓░",
    "                                 *         ███▓░     ░░",
    "            ░░░░░░                        ███▓░",
    "    ░░░   ░░░░░░░░░░                      ███▓░",
    "   ░░░░░░░░░░░░░░░░░░░    *                ██▓░░      ▓",
    "                                             ░▓▓███▓▓░",
    " *                                 ░░░░",
    "                                 ░░░░░░░░",
    "                               ░░░░░░░░░░░░░░░░",
    "       █████████                                        *",
    "      ██▄█████▄██                        *",
    "       █████████      *",
    ".......█ █   █ █..........................................",
)


def char_width(char: str) -> int:
    """Return how many cells *char* takes on a terminal."""
    if char in _ZERO_WIDTH or unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def text_width(text: str) -> int:
    """Return how many cells *text* takes on a terminal."""
    return sum(char_width(char) for char in text)


def fit(line: str, width: int) -> str:
    """Cut *line* to at most *width* cells."""
    used = 0
    for index, char in enumerate(line):
        used += char_width(char)
        if used > width:
            return line[:index]
    return line


_OPTION: Final = re.compile(r" [❯ ] \d{1,2}\. ")


def wrap(line: str, width: int) -> list[str]:
    """Wrap one logical line to *width* cells, with a hanging indent like the CLI's."""
    if text_width(line) <= width:
        return [line]
    indent = " " * text_width(_hanging_prefix(line))
    rows: list[str] = []
    rest = line
    while text_width(rest) > width:
        cut = len(fit(rest, width))
        space = rest.rfind(" ", len(indent) + 1, cut + 1)
        if space > len(indent):
            head, rest = rest[:space], rest[space + 1 :]
        else:
            head, rest = rest[:cut], rest[cut:]
        rows.append(head.rstrip())
        rest = indent + rest.lstrip(" ")
        if not rest.strip():
            return rows
    rows.append(rest)
    return rows


def _hanging_prefix(line: str) -> str:
    option = _OPTION.match(line)
    if option is not None:
        return " " * len(option[0])  # a numbered choice wraps under its label
    stripped = line.lstrip(" ")
    lead = line[: len(line) - len(stripped)]
    if stripped.startswith("⎿"):
        after = stripped[1:]
        return lead + "⎿" + after[: len(after) - len(after.lstrip(" "))]
    for mark in _HANGING_MARKS:
        if stripped.startswith(mark):
            return lead + mark
    return lead


def block(prefix: str, text: str) -> list[str]:
    """Lines for a multi-line *text* after *prefix*, later lines indented under it."""
    indent = " " * text_width(prefix)
    lines = text.split("\n") or [""]
    return [prefix + lines[0]] + [indent + line for line in lines[1:]]


def compose(top: Sequence[str], bottom: Sequence[str], *, columns: int, rows: int) -> list[str]:
    """Lay out a frame: *top* from the first row (its end when it overflows), *bottom*
    on the last rows."""
    upper = [row for line in top for row in wrap(line, columns)]
    lower = [row for line in bottom for row in wrap(line, columns)]
    room = rows - len(lower)
    if room <= 0:
        return lower[len(lower) - rows :]
    if len(upper) > room:
        upper = upper[len(upper) - room :]
    return upper + [""] * (room - len(upper)) + lower


def header(cwd: str, model_label: str) -> list[str]:
    """The logo block at the top of the TUI."""
    return [
        "",
        f" ▐▛███▛█   Claude Code v{VERSION}",
        f"▝▜██████▀  {model_label} · API Usage Billing",
        f" ▝▝   ▝▝   {cwd}",
        "",
    ]


def hint(permission_mode: str, *, running: bool, notice: str | None) -> str:
    """The line under the input box."""
    if notice is not None:
        return "  " + notice
    text = _HINTS.get(permission_mode, _HINTS["auto"])
    if running:
        text += " · esc to interrupt"
    text += " · ? for shortcuts" if permission_mode == "default" else " · ← for agents"
    return "  " + text


def input_area(
    *, columns: int, box_text: str, placeholder: str, hint_line: str, status: Sequence[str]
) -> list[str]:
    """The bottom of the TUI: status, effort badge, the input box between rules, the hint."""
    rule = "─" * columns
    box = block(PROMPT_MARK, box_text) if box_text else [PROMPT_MARK + placeholder]
    effort = " " * max(columns - text_width(_EFFORT) - 2, 0) + _EFFORT
    return [*status, effort, rule, *box, rule, hint_line]


def permission_prompt(*, columns: int, command: str, description: str, cwd: str) -> list[str]:
    """The Bash permission prompt of ``--permission-mode default`` (dialog_permission_bash.txt)."""
    dashes = "╌" * columns
    return [
        "─" * columns,
        " Bash command",
        ' Tip: auto mode handles these prompts for you — choose "switch to auto mode" below',
        *block(" ", description),
        dashes,
        *block(" ", command),
        dashes,
        " Do you want to proceed?",
        " ❯ 1. Yes",
        f"   2. Yes, and always allow access to {cwd} from this project",
        "   3. Yes, and switch to auto mode · auto mode handles these prompts for you",
        "   4. No",
        "",
        " Esc to cancel · Tab to amend",
    ]


def _choices(labels: Sequence[str], selected: int, indent: str) -> list[str]:
    return [
        f"{indent}{'❯' if index == selected else ' '} {label}" for index, label in enumerate(labels)
    ]


def trust_dialog(*, columns: int, cwd: str, selected: int) -> list[str]:
    """The trust-folder dialog (dialog_trust_folder.txt)."""
    return [
        "",
        "─" * columns,
        " Accessing workspace:",
        "",
        f" {cwd}",
        "",
        " Quick safety check: Is this a project you created or one you trust? (Like your own"
        " code, a well-known open source project, or work from your team). If not, take a"
        " moment to review what's in this folder first.",
        "",
        " Claude Code'll be able to read, edit, and execute files here.",
        "",
        " Security guide",
        "",
        *_choices(("No, exit", "Yes, I trust this folder"), selected, " "),
        "",
        " Enter to confirm · Esc to cancel",
    ]


def api_key_dialog(*, columns: int, api_key: str, selected: int) -> list[str]:
    """The custom-API-key dialog (dialog_custom_api_key.txt)."""
    return [
        "",
        "─" * columns,
        "  Detected a custom API key in your environment",
        "",
        f"  ANTHROPIC_API_KEY: sk-ant-...{api_key[-20:]}",
        "",
        "  Do you want to use this API key?",
        "",
        *_choices(("Yes", "No (recommended)"), selected, "  "),
        "",
        "  Enter to confirm · Esc to cancel",
    ]


def bypass_dialog(*, columns: int, selected: int) -> list[str]:
    """The bypass-permissions warning (dialog_bypass_permissions.txt)."""
    return [
        "",
        "─" * columns,
        "  WARNING: Claude Code running in Bypass Permissions mode",
        "",
        "  In Bypass Permissions mode, Claude Code will not ask for your approval before running"
        " potentially dangerous commands.",
        "  This mode should only be used in a sandboxed container/VM that has restricted internet"
        " access and can easily be restored if damaged.",
        "",
        "  By proceeding, you accept all responsibility for actions taken while running in Bypass"
        " Permissions mode.",
        "",
        "  https://code.claude.com/docs/en/security",
        "",
        *_choices(("No, exit", "Yes, I accept"), selected, "  "),
        "",
        "  Enter to confirm · Esc to cancel",
    ]


def onboarding_screen() -> list[str]:
    """The welcome screen that fails offline (dialog_onboarding_connectivity_fail.txt)."""
    return [
        f"Welcome to Claude Code v{VERSION}",
        *_WELCOME_ART,
        "",
        " Unable to connect to Anthropic services",
        "",
        " Failed to connect to api.anthropic.com: ENOTFOUND",
        "",
        " Check your internet connection and network settings.",
        "",
        " Claude Code might not be available in your country. Check supported countries at",
        " https://anthropic.com/supported-countries",
    ]


class Terminal:
    """The PTY side of the screen: sends frames, only the rows that changed.

    Writes to a PTY whose other end has gone are dropped, so a closed terminal never
    stops the program.

    Attributes:
        columns: The terminal width.
        rows: The terminal height.
        closed: Whether a write failed because the terminal went away.
    """

    def __init__(self, fd: int, *, columns: int, rows: int) -> None:
        self.columns = columns
        self.rows = rows
        self.closed = False
        self._fd = fd
        self._shown: list[str | None] = [None] * rows

    def write(self, data: bytes | str) -> None:
        """Write *data* whole, unless the terminal is gone."""
        view = memoryview(data.encode() if isinstance(data, str) else data)
        while view and not self.closed:
            try:
                written = os.write(self._fd, view)
            except BlockingIOError:
                select.select([], [self._fd], [], 1.0)
                continue
            except OSError as exc:
                if exc.errno not in (errno.EIO, errno.EPIPE, errno.EBADF, errno.ENXIO):
                    raise
                self.closed = True
                return
            view = view[written:]

    def enter_tui(self) -> None:
        """Switch to the alternate screen with bracketed paste on, as the CLI does."""
        self.write(_ENTER_TUI)
        self._shown = [None] * self.rows

    def leave_tui(self) -> None:
        """Leave the alternate screen and restore the cursor."""
        self.write(_LEAVE_TUI)

    def resize(self, columns: int, rows: int) -> None:
        """Take a new size; the next frame is drawn whole."""
        self.columns, self.rows = columns, rows
        self._shown = [None] * rows
        self.write(b"\x1b[2J")

    def draw(self, frame: Sequence[str], *, cursor_row: int | None = None) -> None:
        """Show *frame* (one string per row), sending only the rows that changed."""
        pieces: list[str] = []
        for row in range(self.rows):
            line = fit(frame[row], self.columns) if row < len(frame) else ""
            if self._shown[row] != line:
                self._shown[row] = line
                pieces.append(f"\x1b[{row + 1};1H{line}\x1b[K")
        if cursor_row is not None:
            pieces.append(f"\x1b[{cursor_row + 1};3H")
        if pieces:
            self.write("".join(pieces))
