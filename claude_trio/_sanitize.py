"""Make user text safe to type into the CLI, and split it so it is not wrapped.

Pure functions, no I/O. The rules follow what the CLI 2.1.328 was measured to do with
pasted text (FACTS.md §3 and §3a):

* ESC and the other C0 controls (but newline and tab) could end a bracketed paste and
  type keys of their own: they are removed. So are DEL and the C1 controls.
* Bidi controls (U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) make the CLI hold the
  prompt unsent: removed.
* Zero-width characters (U+200B-U+200D, U+2060, U+FEFF) are removed by the CLI anyway:
  removed here, so what we send is what arrives; a joiner (U+200D) between two emoji is
  kept, as the CLI keeps it.
* CRLF and lone CR become LF, and the text is put in NFC, as the CLI's paste does.
* A text that starts with ``/`` would run a slash command and one that starts with ``!``
  a shell command: with the CLI run under ``--disable-slash-commands``, one leading space
  makes either plain text. That space is the one visible change, and it reaches the model.
* A paste over 800 characters, or with more line breaks than the terminal allows
  (``min(rows - 10, 2)``), is sent wrapped in ``<pasted_content>`` tags; split into
  chunks within both limits and pasted back to back, it arrives unwrapped.

The CLI itself still turns each tab of a paste into four spaces and trims whitespace at
the very end of the message.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from typing import Final

import attrs

from ._errors import SessionError

#: The longest paste, in characters, that the CLI does not wrap.
PASTE_CHUNK_CHARS: Final = 800

_EMOJI: Final = "\u2600-\u27bf\U0001f000-\U0001faff"
_REMOVED: Final = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f"  # C0 except tab and newline, DEL, C1
    "\u200b\u200c\u200e\u200f\u202a-\u202e\u2060-\u2069\ufeff]"  # zero-width, bidi
    # A zero-width joiner is kept only inside an emoji sequence, as the CLI keeps it.
    f"|\u200d(?![{_EMOJI}])|(?<![{_EMOJI}\ufe0f\U0001f3fb-\U0001f3ff])\u200d"
)


@attrs.frozen
class PreparedText:
    """User text made safe to type, and the pastes that deliver it.

    Attributes:
        text: What the model will receive (before the CLI's own tab expansion and
            trimming of trailing whitespace).
        chunks: The pieces to paste back to back before pressing Enter.
        removed: How many characters were removed as unsafe or invisible.
        prefixed: Whether a leading space was added to keep ``/`` or ``!`` literal.
    """

    text: str
    chunks: tuple[str, ...]
    removed: int
    prefixed: bool


def paste_line_break_limit(rows: int) -> int:
    """Return how many line breaks one paste may hold in a terminal of *rows* rows."""
    return max(0, min(rows - 10, 2))


def prepare_text(text: str, *, rows: int = 40) -> PreparedText:
    """Clean *text* and split it into pastes the CLI takes as plain, unwrapped text.

    Args:
        text: The user's message.
        rows: The height of the CLI's terminal (it sets how many line breaks a paste
            may hold).

    Returns:
        The cleaned text and its chunks.

    Raises:
        ValueError: If nothing but whitespace is left (the CLI would not submit it), or
            the terminal has fewer than 11 rows (no paste could hold a line break).
    """
    breaks = paste_line_break_limit(rows)
    if breaks == 0:
        raise ValueError(f"a terminal of {rows} rows is too small; use at least 11")
    unified = text.replace("\r\n", "\n").replace("\r", "\n")
    cleaned, removed = _REMOVED.subn("", unified)
    cleaned = unicodedata.normalize("NFC", cleaned)
    if not cleaned.strip():
        raise ValueError("the message is empty once control characters are removed")
    prefixed = cleaned[0] in "/!"
    if prefixed:
        cleaned = " " + cleaned
    return PreparedText(
        text=cleaned,
        chunks=tuple(_chunks(cleaned, PASTE_CHUNK_CHARS, breaks)),
        removed=removed,
        prefixed=prefixed,
    )


def _chunks(text: str, max_chars: int, max_breaks: int) -> list[str]:
    chunks = []
    start = 0
    while start < len(text):
        end = min(start + max_chars, len(text))
        breaks = 0
        for index in range(start, end):
            if text[index] == "\n":
                breaks += 1
                if breaks > max_breaks:
                    end = index
                    break
        end = _avoid_splitting_a_cluster(text, start, end)
        chunks.append(text[start:end])
        start = end
    return chunks


def _avoid_splitting_a_cluster(text: str, start: int, end: int) -> int:
    # Keep a combining mark with its base so the CLI's NFC pass sees them together.
    cut = end
    while start + 1 < cut < len(text) and unicodedata.combining(text[cut]):
        cut -= 1
    return cut


def validate_session_id(session_id: str) -> str:
    """Return *session_id* in canonical form if it is a UUID.

    Session ids become file names and command-line arguments, so nothing else is let
    through.

    Raises:
        SessionError: If it is not a UUID in the usual 36-character form.
    """
    try:
        parsed = uuid.UUID(session_id) if isinstance(session_id, str) else None
    except ValueError:
        parsed = None
    if parsed is None or str(parsed) != session_id.lower() or len(session_id) != 36:
        raise SessionError(f"not a valid session id (a UUID): {session_id!r}")
    return str(parsed)
