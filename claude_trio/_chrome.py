"""Rules that read the CLI's own chrome off its rendered screen, and nothing else.

Pure functions over the text of the screen (``TerminalScreen.text()``: one line per
row, trailing spaces removed), no I/O. They were written against the screens the real
CLI 2.1.328 drew (``tests/samples/README_chrome.txt``), where the layout is:

* Everything the model or a tool wrote is drawn **indented**: a reply's first row
  starts with ``● ``, its other rows (code blocks and wrapped lines included) with two
  spaces, tool output with ``  ⎿  ``. The user's own message starts with ``❯ `` and
  goes on indented by two. No transcript row starts at column 0 with ``─``, and none
  starts with exactly one space.
* The CLI's chrome is drawn at column 0 or 1: full-width rules of ``─`` at column 0,
  the permission prompt's and the first-run dialogs' text one (or two) spaces in.
* The input box is at the bottom of the screen: a full-width rule, the ``❯`` row and
  its continuation rows (indented by two), a full-width rule, then the hint row(s)
  (``  ⏵⏵ auto mode on … · esc to interrupt``). The rows just above the box hold the
  status: the spinner or retry line, a ``  ⎿`` hint under it, a right-aligned
  ``◐ medium · /effort``.
* A permission prompt replaces the box: a full-width rule, the tool's title one space
  in, its details, the question, numbered options (`` ❯ 1. Yes``), a blank row and
  `` Esc to cancel · Tab to amend`` as the last row that is not blank.
* A first-run dialog fills the screen: a full-width rule, its text, ``❯`` options, and
  ``Enter to confirm · Esc to cancel`` as the last row that is not blank.

So every rule here is anchored: to the bottom of the screen, to column 0 or 1, and to
full-width rules, which text the model writes cannot produce.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

import attrs

__all__ = [
    "PLACEHOLDERS",
    "Dialog",
    "InputBox",
    "PermissionPrompt",
    "box_holds",
    "find_dialog",
    "find_input_box",
    "find_permission_prompt",
    "is_busy",
    "is_ready",
    "prompt_came_back",
    "status_lines",
]

#: A rule is at least this long, and as long as the longest row of the screen.
_MIN_RULE: Final = 20
#: At most this many rows that are not blank may follow the input box (its hints).
_MAX_HINT_ROWS: Final = 4
#: How many rows above the input box `status_lines` returns by default.
_STATUS_ROWS: Final = 4
#: The characters of the typed text compared by `box_holds`.
_HOLD_CHARS: Final = 40

_RULE_CHAR: Final = "─"
# The upper rule of a box whose text is taller than the box: its first rows, the ❯ one
# too, are scrolled off above it.
_SCROLLED_RULE: Final = re.compile(r"─{3} ↑ (\d+) more ─+")
_DASHED_CHAR: Final = "╌"
_BUSY_HINT: Final = "esc to interrupt"
_STRAY_RE: Final = re.compile(r"u+")
_OPTION_RE: Final = re.compile(r" (❯| ) (\d{1,2})\. (\S.*)")
_OPTION_MORE_RE: Final = re.compile(r" {4,}\S.*")
_PROMPT_FOOTER_RE: Final = re.compile(r" Esc to cancel(?: · .*)?")
_DIALOG_FOOTER_RE: Final = re.compile(r" {1,2}Enter to confirm · Esc to cancel")
_DIALOG_OPTION_RE: Final = re.compile(r" {1,2}❯ \S.*")

#: Text the CLI shows greyed in an empty input box after a failed turn. The screen
#: text does not say it is grey, so a box showing exactly one of these may be empty.
PLACEHOLDERS: Final = frozenset(
    {
        "Resend your message to try again",
        "Once fixed, resend your message",
    }
)


@attrs.frozen
class Dialog:
    """A screen the CLI will not get past without an answer the library never gives.

    Attributes:
        name: A short name for the dialog.
        fix: The configuration that prevents it.
    """

    name: str
    fix: str


_ONBOARDING: Final = Dialog(
    "onboarding",
    'set "hasCompletedOnboarding": true in $CLAUDE_CONFIG_DIR/.claude.json',
)
_ROOT_REFUSED: Final = Dialog(
    "skip-permissions refused for root",
    "set IS_SANDBOX=1 in the CLI's environment (only inside a sandbox or container)",
)
#: Framed dialogs, by a phrase of their text (rows joined by spaces, so wrapping
#: at any width does not matter).
_FRAMED_DIALOGS: Final = (
    (
        ("Is this a project you created or one you trust", "Yes, I trust this folder"),
        Dialog(
            "trust folder",
            "pass trust_cwd=True, or set "
            'projects["<real path of cwd>"].hasTrustDialogAccepted = true in .claude.json',
        ),
    ),
    (
        ("Detected a custom API key in your environment",),
        Dialog(
            "custom API key",
            "add the last 20 characters of ANTHROPIC_API_KEY to "
            "customApiKeyResponses.approved in .claude.json",
        ),
    ),
    (
        ("running in Bypass Permissions mode",),
        Dialog(
            "bypass permissions warning",
            'set "bypassPermissionsModeAccepted": true in .claude.json',
        ),
    ),
)


@attrs.frozen
class InputBox:
    """The CLI's input box, at the bottom of the screen.

    Attributes:
        text: What it holds: the ``❯`` and the two-space indent of continuation rows
            removed, rows joined by newlines (a wrapped line too), stripped; ``""`` when
            empty. A greyed placeholder (`PLACEHOLDERS`) reads as text.
        top: The row of its upper rule.
        bottom: The row of its lower rule.
        hints: The rows under it, as drawn (the mode and key hints), blank ones left out.
        hidden_above: How many rows of text are scrolled off above the box (its upper
            rule reads ``↑ N more``); then `text` is only the rows shown.
    """

    text: str
    top: int
    bottom: int
    hints: tuple[str, ...]
    hidden_above: int = 0

    @property
    def is_placeholder(self) -> bool:
        """Whether the box shows one of the CLI's placeholders (so is likely empty)."""
        return self.text in PLACEHOLDERS


@attrs.frozen
class PermissionPrompt:
    """The CLI asking whether a tool may run; it replaces the input box.

    Attributes:
        title: The prompt's heading, such as ``Bash command`` or ``Create file``;
            ``""`` when the prompt is taller than the screen and its top scrolled off.
        detail: The rows between the title and the question (the tool's description,
            its command or file, diff lines…), one per row, frame and ``Tip:`` removed.
        question: ``Do you want to proceed?``, ``Do you want to create x.txt?``…
        options: The answers, in order (``Yes`` … ``No``).
        selected: The index in `options` of the answer under ``❯``.
        top: The row of the prompt's upper rule (0 when it scrolled off).
        bottom: The row of its ``Esc to cancel`` footer.
    """

    title: str
    detail: str
    question: str
    options: tuple[str, ...]
    selected: int
    top: int
    bottom: int


def find_input_box(screen: str) -> InputBox | None:
    """Return the input box at the bottom of the rendered *screen*, or None.

    The box is the last pair of full-width ``─`` rules at column 0 with a row starting
    with ``❯`` right under the upper one, every other row between them blank or
    indented by two, and under the lower one only hint rows (at most four) and blank
    rows. A permission prompt or a dialog, which replace the box, give None. When the
    box holds more lines than it shows, its upper rule reads ``─── ↑ N more ───`` and
    its rows start at a continuation row: `InputBox.text` is then the rows shown.
    """
    rows = _rows(screen)
    rules = _rules(rows)
    if not rules:
        return None
    bottom = rules[-1]
    scrolled = _scrolled_top(rows, bottom)
    if scrolled is not None:
        top, hidden = scrolled
    else:
        if len(rules) < 2:
            return None
        top, hidden = rules[-2], 0
        if not rows[top + 1].startswith("❯"):
            return None
    if bottom - top < 2:
        return None
    hints = tuple(row for row in rows[bottom + 1 :] if not _blank(row))
    if len(hints) > _MAX_HINT_ROWS:
        return None
    rest = rows[top + 2 : bottom]
    if any(row and not row.startswith("  ") for row in rest):
        return None
    first = rows[top + 1].removeprefix("❯")
    first = first[1:] if first[:1] in (" ", "\xa0") else first
    lines = [first, *(row.removeprefix("  ") for row in rest)]
    return InputBox(
        text="\n".join(lines).strip(),
        top=top,
        bottom=bottom,
        hints=hints,
        hidden_above=hidden,
    )


def is_busy(screen: str) -> bool:
    """Return whether the hints under the input box say ``esc to interrupt``.

    That is how the CLI shows a turn in progress (streaming, thinking, retrying). False
    when no input box shows (during a permission prompt, for one).
    """
    box = find_input_box(screen)
    return box is not None and any(_BUSY_HINT in hint for hint in box.hints)


def is_ready(screen: str) -> bool:
    """Return whether the rendered *screen* shows the input box with no turn running."""
    box = find_input_box(screen)
    return box is not None and not any(_BUSY_HINT in hint for hint in box.hints)


def status_lines(screen: str, count: int = _STATUS_ROWS) -> str:
    """Return the *count* rows just above the input box, joined by newlines.

    That is where the CLI draws its status while it works: the spinner or the retry
    line (read it with `claude_trio._retry.find_retry_notice`), the ``⎿`` hint under
    it, the effort gauge. When the transcript reaches down to them they can hold its
    last rows too, which are indented. ``""`` when no input box shows.
    """
    box = find_input_box(screen)
    if box is None or count <= 0:
        return ""
    rows = _rows(screen)
    return "\n".join(rows[max(box.top - count, 0) : box.top])


def box_has_text(box: InputBox | None) -> bool:
    """Return whether *box* holds text (not empty, not a placeholder)."""
    if box is None:
        return False
    return box.hidden_above > 0 or (bool(box.text) and not box.is_placeholder)


def box_holds(box: InputBox | None, typed: str) -> bool:
    """Return whether *box* shows the start of the prompt *typed* (as it was typed).

    The first 40 characters of its first line are compared with the box's text, with
    every run of white space made one space on both sides (the box wraps long lines).
    """
    if box is None:
        return False
    first = " ".join(typed.strip().split("\n", 1)[0].split())[:_HOLD_CHARS]
    return bool(first) and " ".join(box.text.split()).startswith(first)


def prompt_came_back(screen: str, typed: str) -> bool:
    """Return whether the CLI is idle with the prompt *typed* back in its input box.

    That is what an interrupt before the reply began does (the user's row leaves the
    transcript and the text returns to the box).
    """
    box = find_input_box(screen)
    if box is None or any(_BUSY_HINT in hint for hint in box.hints):
        return False
    return box_holds(box, typed)


def find_permission_prompt(screen: str) -> PermissionPrompt | None:
    """Return the permission prompt at the bottom of the rendered *screen*, or None.

    Read from the bottom up: `` Esc to cancel…`` as the last row that is not blank,
    the numbered options above it (one space in, one of them under ``❯``), the question
    above option 1, and up to the nearest full-width rule at column 0, the title and
    details. A prompt taller than the screen counts only when it reaches the last row.
    Never raises.
    """
    rows = _rows(screen)
    last = _last_filled(rows)
    if last is None or not _PROMPT_FOOTER_RE.fullmatch(rows[last]):
        return None
    index = last - 1
    while index >= 0 and _blank(rows[index]):
        index -= 1
    parsed = _options_above(rows, index)
    if parsed is None:
        return None
    options, selected, first_option = parsed
    question_at = _question_row(rows, first_option)
    if question_at is None:
        return None
    question = " ".join(row.strip() for row in rows[question_at:first_option])
    top = _rule_above(rows, question_at)
    if top is None:
        # Scrolled off: only a prompt that fills the screen to its last row.
        if last != len(rows) - 1:
            return None
        title, body = "", _detail_rows(rows, 0, question_at)
        top = 0
    else:
        body = _detail_rows(rows, top + 1, question_at)
        if not body:
            return None
        title, body = body[0], body[1:]
    return PermissionPrompt(
        title=title,
        detail="\n".join(body),
        question=question,
        options=options,
        selected=selected,
        top=top,
        bottom=last,
    )


def find_dialog(screen: str) -> Dialog | None:
    """Return the first-run dialog that fills the rendered *screen*, if it is one we know.

    * Onboarding: the screen starts, at column 0, with ``Welcome to Claude Code v``
      (the theme picker, the security notes, the connectivity failure).
    * Bypass mode refused for root: the screen starts, at column 0, with the CLI's
      message ``--dangerously-skip-permissions cannot be used with root/sudo …``.
    * Trust folder, custom API key, bypass-permissions warning: a full-width rule at
      column 0, the dialog's text and ``❯`` options below it, and ``Enter to confirm ·
      Esc to cancel`` as the last row that is not blank; the dialog is named by its
      text.

    None while an input box shows, and for a framed dialog whose text is unknown.
    """
    rows = _rows(screen)
    first = next((index for index, row in enumerate(rows) if not _blank(row)), None)
    if first is None or find_input_box(screen) is not None:
        return None
    if rows[first].startswith("Welcome to Claude Code v"):
        return _ONBOARDING
    if rows[first].startswith("--dangerously-skip-permissions"):
        message = "".join(row for row in rows[first:] if not _blank(row))
        if "cannot be used with root/sudo" in message:
            return _ROOT_REFUSED
    last = _last_filled(rows)
    rules = _rules(rows)
    if last is None or not rules or not _DIALOG_FOOTER_RE.fullmatch(rows[last]):
        return None
    body = rows[rules[-1] + 1 : last]
    if not any(_DIALOG_OPTION_RE.fullmatch(row) for row in body):
        return None
    text = " ".join(row.strip() for row in body if not _blank(row))
    for phrases, dialog in _FRAMED_DIALOGS:
        if any(phrase in text for phrase in phrases):
            return dialog
    return None


# --- helpers ---------------------------------------------------------------------------


def _rows(screen: str) -> list[str]:
    return [row.rstrip() for row in screen.split("\n")]


def _blank(row: str) -> bool:
    """A row with nothing on it, or only the ``u`` pyte prints for a kitty-keyboard query."""
    return not row or _STRAY_RE.fullmatch(row) is not None


def _last_filled(rows: Sequence[str]) -> int | None:
    for index in range(len(rows) - 1, -1, -1):
        if not _blank(rows[index]):
            return index
    return None


def _rule_width(rows: Sequence[str]) -> int:
    """The length of the longest row of ``─`` only: that of the CLI's full-width rules.

    Not the longest row of all: pyte keeps combining marks (and emoji variation
    selectors) in the cell of their base character, so a row of text can be longer
    than the screen is wide.
    """
    return max((len(row) for row in rows if _is_line_of(row, _RULE_CHAR)), default=0)


def _scrolled_top(rows: Sequence[str], bottom: int) -> tuple[int, int] | None:
    """The row of a scrolled box's upper rule above the lower rule at *bottom*, and how
    many rows it says are hidden, if there is one."""
    width = len(rows[bottom])
    for index in range(bottom - 1, -1, -1):
        row = rows[index]
        scrolled = _SCROLLED_RULE.fullmatch(row) if len(row) == width else None
        if scrolled is not None:
            return index, int(scrolled[1])
        if row and not row.startswith(("  ", "❯")):
            return None
    return None


def _is_line_of(row: str, char: str) -> bool:
    return len(row) >= _MIN_RULE and row == char * len(row)


def _rules(rows: Sequence[str]) -> list[int]:
    """The rows that are full-width rules: ``─`` from column 0, as long as the longest."""
    width = _rule_width(rows)
    return [
        index
        for index, row in enumerate(rows)
        if len(row) == width and _is_line_of(row, _RULE_CHAR)
    ]


def _rule_above(rows: Sequence[str], below: int) -> int | None:
    rules = [index for index in _rules(rows) if index < below]
    return rules[-1] if rules else None


def _options_above(rows: Sequence[str], last: int) -> tuple[tuple[str, ...], int, int] | None:
    """Parse the numbered options ending at row *last*, upwards.

    Returns the options, the index of the selected one and the row of option 1, or
    None unless the rows are options 1..n in order (continuation rows allowed) with
    exactly one ``❯``.
    """
    found: list[tuple[str, bool, int]] = []
    more: list[str] = []
    index = last
    while index >= 0:
        row = rows[index]
        match = _OPTION_RE.fullmatch(row)
        if match is not None:
            text = " ".join([match[3], *reversed(more)])
            found.append((text, match[1] == "❯", int(match[2])))
            more = []
            if match[2] == "1":
                break
        elif _OPTION_MORE_RE.fullmatch(row):
            more.append(row.strip())
        else:
            return None
        index -= 1
    if not found or more or index < 0:
        return None
    found.reverse()
    if [number for _, _, number in found] != list(range(1, len(found) + 1)):
        return None
    marks = [position for position, (_, marked, _) in enumerate(found) if marked]
    if len(marks) != 1:
        return None
    return tuple(text for text, _, _ in found), marks[0], index


def _question_row(rows: Sequence[str], first_option: int) -> int | None:
    """The row where the question above the options starts (it may wrap), or None."""
    above = first_option - 1
    if above < 0 or not _one_space(rows[above]):
        return None
    for index in range(above, max(above - 3, -1), -1):
        if not _one_space(rows[index]):
            break
        if rows[index].startswith(" Do you want"):
            return index
    return above if rows[above].endswith("?") else None


def _one_space(row: str) -> bool:
    """A row drawn one space in, as the permission prompt's own text is."""
    return len(row) > 1 and row[0] == " " and row[1] != " "


def _detail_rows(rows: Sequence[str], start: int, end: int) -> list[str]:
    """The rows of a prompt between *start* and *end*, without its frame and its tip."""
    width = _rule_width(rows) or max(
        (len(row) for row in rows if _is_line_of(row, _DASHED_CHAR)), default=0
    )
    out: list[str] = []
    in_tip = False
    previous = ""
    for row in rows[start:end]:
        if _blank(row) or _is_line_of(row, _DASHED_CHAR):
            in_tip = False
            previous = row
            continue
        text = row.strip()
        if text.startswith("│"):
            text = text.removeprefix("│").strip()
        if text.startswith("Tip:"):
            in_tip = True
        elif in_tip and not _wrapped(previous, text, width):
            in_tip = False
        previous = row
        if not in_tip and text:
            out.append(text)
    return out


def _wrapped(previous: str, text: str, width: int) -> bool:
    """Whether *text* continues *previous*: its first word would not have fit there."""
    word = text.split(" ", 1)[0]
    return len(previous) + 1 + len(word) > width
