"""Keyboard input of the fake ``claude``: PTY bytes to keys, pastes, and the prompt box.

Pure code without I/O. It follows what FACTS.md §3 and §3a measured on the real CLI 2.1.328:
bracketed pastes are cleaned (ESC sequences and C0 controls removed, tabs to four spaces,
CR to LF, NFC, zero-width characters removed, bidi controls removed and the prompt held),
consecutive pastes join, and a paste over 800 characters or with too many line breaks
becomes a pill that is sent wrapped in ``<pasted_content>``. Outside a paste every ``\\r``
submits.
"""

from __future__ import annotations

import codecs
import os
import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

PASTE_START: Final = b"\x1b[200~"
PASTE_END: Final = b"\x1b[201~"
#: A paste longer than this becomes a pill.
PILL_CHARS: Final = 800

_CSI_RE: Final = re.compile(rb"\x1b\[([0-?]*)([ -/]*)([@-~])")
_CSI_PREFIX_RE: Final = re.compile(rb"\x1b\[[0-?]*[ -/]*")
_CSI_KEYS: Final = {
    b"A": "up",
    b"B": "down",
    b"C": "right",
    b"D": "left",
    b"Z": "shift-tab",
    b"H": "home",
    b"F": "end",
    b"3~": "delete",
}
_SS3_KEYS: Final = {ord("A"): "up", ord("B"): "down", ord("C"): "right", ord("D"): "left"}
_CONTROL_KEYS: Final = {
    0x0D: "enter",
    0x0A: "newline",
    0x03: "ctrl-c",
    0x04: "ctrl-d",
    0x07: "ctrl-g",
    0x09: "tab",
    0x7F: "backspace",
    0x08: "backspace",
    0x15: "kill-line",
}

_PASTE_ESCAPE_RE: Final = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[\s\S])?")
_PASTE_CONTROL_RE: Final = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_ZERO_WIDTH_RE: Final = re.compile("[\u200b\u200c\u2060\ufeff]")
_BIDI_RE: Final = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_ZWJ: Final = "\u200d"
_COMMAND_NAME_RE: Final = re.compile(r"[A-Za-z0-9:_-]+")


@dataclass(frozen=True)
class Key:
    """A key that is not text: ``enter``, ``escape``, ``ctrl-c``, ``up``…"""

    name: str


@dataclass(frozen=True)
class Typed:
    """Text typed outside a bracketed paste (one read's worth)."""

    text: str


@dataclass(frozen=True)
class Pasted:
    """The raw content of one bracketed paste."""

    text: str


InputEvent: TypeAlias = Key | Typed | Pasted


class KeyReader:
    """Splits the bytes read from the PTY into keys, typed text and pastes.

    A lone ESC cannot be told from the start of a sequence until more bytes come, so
    when `holds_escape` is true after `feed`, the caller waits a moment and calls
    `flush_escape`.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._paste: bytearray | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    @property
    def holds_escape(self) -> bool:
        """Whether an ESC waits at the end of the input for the rest of its sequence."""
        return self._paste is None and self._buffer[:1] == b"\x1b"

    def feed(self, data: bytes) -> list[InputEvent]:
        """Parse *data* (and whatever was held back) into events."""
        self._buffer += data
        events: list[InputEvent] = []
        while self._buffer:
            if self._paste is not None:
                if not self._take_paste(events):
                    break
            elif self._buffer[0] == 0x1B:
                if not self._take_escape(events):
                    break
            elif self._buffer[0] < 0x20 or self._buffer[0] == 0x7F:
                name = _CONTROL_KEYS.get(self._buffer[0])
                del self._buffer[0]
                if name is not None:
                    events.append(Key(name))
            else:
                self._take_text(events)
        return events

    def flush_escape(self) -> list[InputEvent]:
        """Take a held ESC as the ESC key, then parse what follows it."""
        if not self.holds_escape:
            return []
        del self._buffer[0]
        return [Key("escape"), *self.feed(b"")]

    def _take_paste(self, events: list[InputEvent]) -> bool:
        assert self._paste is not None
        end = self._buffer.find(PASTE_END)
        if end < 0:
            keep = _partial_suffix(self._buffer, PASTE_END)
            cut = len(self._buffer) - keep
            self._paste += self._buffer[:cut]
            del self._buffer[:cut]
            return False
        self._paste += self._buffer[:end]
        del self._buffer[: end + len(PASTE_END)]
        events.append(Pasted(bytes(self._paste).decode("utf-8", "replace")))
        self._paste = None
        return True

    def _take_escape(self, events: list[InputEvent]) -> bool:
        buffer = self._buffer
        if len(buffer) < 2:
            return False
        if buffer[1] == ord("["):
            match = _CSI_RE.match(buffer)
            if match is None:
                if _CSI_PREFIX_RE.fullmatch(buffer):
                    return False
                del buffer[0]
                events.append(Key("escape"))
                return True
            sequence, key = bytes(match[0]), bytes(match[1] + match[3])
            del buffer[: len(sequence)]
            if sequence == PASTE_START:
                self._paste = bytearray()
            elif (name := _CSI_KEYS.get(key)) is not None:
                events.append(Key(name))
            return True
        if buffer[1] == ord("O"):
            if len(buffer) < 3:
                return False
            name = _SS3_KEYS.get(buffer[2])
            del buffer[:3]
            if name is not None:
                events.append(Key(name))
            return True
        del buffer[0]
        events.append(Key("escape"))
        return True

    def _take_text(self, events: list[InputEvent]) -> None:
        end = 0
        while end < len(self._buffer) and self._buffer[end] >= 0x20 and self._buffer[end] != 0x7F:
            end += 1
        text = self._decoder.decode(bytes(self._buffer[:end]))
        del self._buffer[:end]
        if not text:
            return
        if events and isinstance(events[-1], Typed):
            events[-1] = Typed(events[-1].text + text)
        else:
            events.append(Typed(text))


def _partial_suffix(data: bytearray, marker: bytes) -> int:
    """Return the length of the longest end of *data* that starts *marker*."""
    for size in range(min(len(marker) - 1, len(data)), 0, -1):
        if data.endswith(marker[:size]):
            return size
    return 0


@dataclass(frozen=True)
class CleanedPaste:
    """A paste as the CLI keeps it.

    Attributes:
        text: The cleaned text.
        removed: How many characters (or escape sequences) were removed.
        hold: Whether bidi controls were removed, which holds the prompt for review.
    """

    text: str
    removed: int
    hold: bool


def clean_paste(raw: str) -> CleanedPaste:
    """Clean one paste the way the CLI does (FACTS.md §3, §3a)."""
    text, escapes = _PASTE_ESCAPE_RE.subn("", raw)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    text, controls = _PASTE_CONTROL_RE.subn("", text)
    text, invisible = _ZERO_WIDTH_RE.subn("", text)
    text, joiners = _remove_lone_joiners(text)
    text, bidi = _BIDI_RE.subn("", text)
    text = unicodedata.normalize("NFC", text)
    return CleanedPaste(text, escapes + controls + invisible + joiners + bidi, bidi > 0)


def _remove_lone_joiners(text: str) -> tuple[str, int]:
    # A ZWJ inside an emoji sequence is kept; one anywhere else is removed.
    if _ZWJ not in text:
        return text, 0
    kept: list[str] = []
    removed = 0
    for index, char in enumerate(text):
        if char == _ZWJ:
            before = text[index - 1] if index else ""
            after = text[index + 1] if index + 1 < len(text) else ""
            if not (_is_emoji_part(before) and _is_emoji_part(after)):
                removed += 1
                continue
        kept.append(char)
    return "".join(kept), removed


def _is_emoji_part(char: str) -> bool:
    if not char:
        return False
    code = ord(char)
    return (
        unicodedata.category(char) == "So"
        or code == 0xFE0F
        or 0x1F3FB <= code <= 0x1F3FF
        or code >= 0x1F000
    )


def paste_break_limit(rows: int) -> int:
    """How many line breaks a paste may hold before it becomes a pill."""
    return max(0, min(rows - 10, 2))


@dataclass
class _Pill:
    number: int
    text: str
    # Text loaded from the editor: shown truncated, sent as it is (no <pasted_content>).
    loaded: bool = False

    @property
    def placeholder(self) -> str:
        lines = self.text.count("\n")
        extra = f" +{lines} lines" if lines else ""
        if self.loaded:
            return f"[...Truncated text #{self.number}{extra}...]"
        return f"[Pasted text #{self.number}{extra}]"


@dataclass(frozen=True)
class Submission:
    """What Enter submitted from the prompt box.

    Attributes:
        shown: The box's text with trailing whitespace trimmed; pasted pills are
            placeholders, text loaded from the editor is itself.
        text: The message: *shown* with each pill expanded to its ``<pasted_content>``.
    """

    shown: str
    text: str


class PromptBox:
    """The input box: typed text and pastes, until Enter takes them.

    Attributes:
        held: A paste lost bidi controls: the next Enter only releases the hold.
        notice: What the hint line says about the last paste, if anything.
    """

    def __init__(self) -> None:
        self._parts: list[str | _Pill] = []
        self._pills = 0
        self.held = False
        self.notice: str | None = None

    def type(self, text: str) -> None:
        """Add typed text."""
        self._add_text(text)

    def paste(self, raw: str, *, rows: int) -> None:
        """Add one bracketed paste, cleaned, as text or as a pill."""
        cleaned = clean_paste(raw)
        text = cleaned.text
        if len(text) > PILL_CHARS or text.count("\n") > paste_break_limit(rows):
            self._pills += 1
            self._parts.append(_Pill(self._pills, text))
        else:
            self._add_text(text)
        if cleaned.removed:
            plural = "s" if cleaned.removed != 1 else ""
            self.notice = f"Removed {cleaned.removed} invisible character{plural}"
            if cleaned.hold or self.shown().lstrip().startswith("/"):
                self.held = True
                self.notice += " · review and press Enter to send"
            else:
                self.notice += " from your prompt"

    def load(self, text: str, *, rows: int) -> None:
        """Replace the box with *text* from the editor, its end trimmed (long text shows
        truncated)."""
        self.clear()
        text = text.rstrip()
        if len(text) > PILL_CHARS or text.count("\n") > paste_break_limit(rows):
            self._pills += 1
            self._parts.append(_Pill(self._pills, text, loaded=True))
        else:
            self._add_text(text)

    def editable(self) -> str:
        """The box's text as the editor gets it: pastes expanded, as they are."""
        return "".join(part if isinstance(part, str) else part.text for part in self._parts)

    def newline(self) -> None:
        """Insert a line break (LF, or ``\\`` then Enter)."""
        self._add_text("\n")

    def backspace(self) -> None:
        """Delete the last character, or the last pill."""
        if not self._parts:
            return
        last = self._parts[-1]
        if isinstance(last, _Pill) or len(last) <= 1:
            self._parts.pop()
        else:
            self._parts[-1] = last[:-1]

    def ends_with_backslash(self) -> bool:
        """Whether the box ends with a typed ``\\`` (Enter then inserts a newline)."""
        return (
            bool(self._parts) and isinstance(self._parts[-1], str) and self._parts[-1][-1:] == "\\"
        )

    def drop_backslash(self) -> None:
        """Remove the trailing ``\\`` before Enter turns it into a newline."""
        if self.ends_with_backslash():
            self.backspace()

    def clear(self) -> None:
        """Empty the box."""
        self._parts.clear()
        self.held = False
        self.notice = None

    def is_empty(self) -> bool:
        """Whether nothing is in the box."""
        return not self._parts

    def shown(self) -> str:
        """The box's text, pills as their placeholders."""
        return "".join(part if isinstance(part, str) else part.placeholder for part in self._parts)

    def take(self) -> Submission | None:
        """Empty the box and return what Enter submits, or None if it is only whitespace."""
        parts = list(self._parts)
        self.clear()
        while parts and isinstance(parts[-1], str) and not parts[-1].rstrip():
            parts.pop()
        if parts and isinstance(parts[-1], str):
            parts[-1] = parts[-1].rstrip()
        if not parts:
            return None
        # Text loaded from the editor counts as typed: a leading / or ! acts (FACTS §3a).
        shown = "".join(
            part if isinstance(part, str) else part.text if part.loaded else part.placeholder
            for part in parts
        )
        if not shown.strip():
            return None
        text = "".join(
            part if isinstance(part, str) else part.text if part.loaded else _wrap_pill(part.text)
            for part in parts
        )
        return Submission(shown=shown, text=text)

    def _add_text(self, text: str) -> None:
        if not text:
            return
        if self._parts and isinstance(self._parts[-1], str):
            self._parts[-1] += text
        else:
            self._parts.append(text)


def _wrap_pill(text: str) -> str:
    tag = secrets.token_hex(2)
    content = text.rstrip()
    return f'\n\n<pasted_content id="{tag}">\n{content}\n</pasted_content id="{tag}">\n'


@dataclass(frozen=True)
class Prompt:
    """A message for the model."""

    text: str


@dataclass(frozen=True)
class BashInput:
    """``!command``: bash mode."""

    command: str


@dataclass(frozen=True)
class Command:
    """``/name args``: a slash command."""

    name: str
    args: str


@dataclass(frozen=True)
class Notice:
    """Nothing is sent; the screen shows *text*."""

    text: str


Action: TypeAlias = Prompt | BashInput | Command | Notice


def classify(
    submission: Submission,
    *,
    disable_slash_commands: bool,
    exists: Callable[[str], bool] = os.path.exists,
) -> Action:
    """Say what a submitted text does (FACTS.md §3, §3a).

    ``!`` first runs bash mode (a leading space neutralises it). A first token of ``/``
    and a name of letters, digits, ``:``, ``-`` or ``_`` is a command, unless it names an
    existing path; the text is trimmed first, except under ``--disable-slash-commands``,
    where a leading space keeps the slash literal.
    """
    shown = submission.shown
    if shown.startswith("!"):
        return BashInput(submission.text[1:].strip())
    candidate = shown if disable_slash_commands else shown.lstrip()
    if candidate.startswith("/"):
        token, *rest = candidate.split(None, 1)
        if token == "/":
            return Notice("Commands are in the form /command [args]")
        if _COMMAND_NAME_RE.fullmatch(token[1:]) and not exists(token):
            return Command(token[1:], " ".join(rest[0].split()) if rest else "")
    return Prompt(submission.text)
