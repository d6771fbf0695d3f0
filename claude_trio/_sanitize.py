"""Make user text safe to type into the CLI, and split it so it is not wrapped.

Pure functions, no I/O. The rules follow what the CLI 2.1.328 was measured to do with
pasted text (FACTS.md §3 and §3a; tests/samples/fidelity_results.json): every text either
reaches the model as `PreparedText.expected_record` says, or `prepare_text` raises
`InputError` before anything is typed. "The CLI holds" below means it keeps the text in
its input box and sends nothing, which would end in a timeout.

* ESC and the other C0 and C1 controls (but tab and newline) could end a bracketed paste
  and type keys of their own: they are removed, and so is DEL. CRLF, CR, VT, FF, NEL,
  U+2028 and U+2029 become LF, as the CLI turns them into line breaks itself. A lone
  surrogate (it cannot be encoded) becomes U+FFFD.
* The characters the CLI calls invisible (``_INVISIBLE``: soft hyphen, zero-width and bidi
  controls, U+2060-U+206F, variation selectors, tag characters, fillers…) are removed
  first, so the CLI finds none: it would remove them too, and hold the text for a bidi
  control. Four kinds are kept where the CLI keeps them: a zero-width joiner between two
  pictographic emoji, U+FE0E/U+FE0F after an emoji (or a keycap digit), the tags of the
  England, Scotland and Wales flags, and a zero-width non-joiner after an Arabic, Syriac,
  N'Ko or Mongolian letter. The emoji tables were measured on the CLI itself.
* The text is put in NFC, as the CLI does with a paste.
* The CLI escapes a ``<pasted_content>`` tag (``<``, or one of its look-alikes, before
  ``pasted_content``, look-alike letters included) by putting ``<\\`` in the opener's
  place. A tag spelled in ASCII is escaped here the same way, so the record stays
  predictable; one with characters outside ASCII is refused, since the CLI's look-alike
  tables decide it.
* A text that is only ``exit``, ``quit``, ``:q``, ``:q!``, ``:wq`` or ``:wq!`` (around
  whitespace) makes the CLI exit: refused.
* A text that starts with ``/`` would run a slash command and one that starts with ``!``
  a shell command: with the CLI run under ``--disable-slash-commands``, one leading space
  makes either plain text. That space reaches the model.
* A text that ends with a backslash would not be sent (``\\`` + Enter inserts a line
  break): one space is appended, which the CLI trims.
* A paste longer than 800 (UTF-16 code units, after tabs became four spaces), or with
  more line breaks than the terminal allows
  (``min(rows - 10, 2)``), is sent wrapped in ``<pasted_content>`` tags; split into chunks
  within both limits and pasted back to back, it arrives unwrapped. A paste with a line
  that ends like an image file name (``.png``, ``.jpg``, ``.jpeg``, ``.gif``, ``.webp``) is
  read as an image path and Enter is lost: such a chunk is split before the extension's
  last letter.

The CLI itself still turns each tab of a paste into four spaces and trims whitespace at
the very end of the message: `PreparedText.expected_record` applies both.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable
from typing import Final

import attrs

from ._errors import InputError, SessionError

#: The longest paste the CLI does not wrap, as `paste_length` counts (UTF-16 code units,
#: a tab as four spaces).
PASTE_CHUNK_CHARS: Final = 800

#: Texts the CLI takes as "leave" (compared after trimming whitespace): it exits.
EXIT_WORDS: Final = frozenset({"exit", "quit", ":q", ":q!", ":wq", ":wq!"})


def _table(spec: str) -> frozenset[int]:
    points: set[int] = set()
    for item in spec.split():
        first, _, last = item.partition("-")
        points.update(range(int(first, 16), int(last or first, 16) + 1))
    return frozenset(points)


def _char_class(spec: str) -> str:
    parts = []
    for item in spec.split():
        first, _, last = item.partition("-")
        parts.append(chr(int(first, 16)) + (f"-{chr(int(last, 16))}" if last else ""))
    return "".join(parts)


# The CLI's invisible characters (its table of code points it removes from a prompt,
# besides the controls): anything here is removed unless a rule below keeps it.
_INVISIBLE_SPEC: Final = (
    "AD 34F 61C 115F-1160 17B4-17B5 180B-180F 200B-200F 202A-202E 2060-206F 3164 "
    "FE00-FE0F FEFF FFA0 FFF0-FFFB 1107F 13430-1343F 16FE4 1BCA0-1BCA3 1D173-1D17A "
    "E0000-E0FFF"
)
# Extended_Pictographic as the CLI's Unicode data has it (measured: a zero-width joiner
# is kept between two of these).
_PICTOGRAPHIC: Final = _table(
    "A9 AE 203C 2049 2122 2139 2194-2199 21A9-21AA 231A-231B 2328 23CF 23E9-23F3 "
    "23F8-23FA 24C2 25AA-25AB 25B6 25C0 25FB-25FE 2600-2604 260E 2611 2614-2615 2618 "
    "261D 2620 2622-2623 2626 262A 262E-262F 2638-263A 2640 2642 2648-2653 265F-2660 "
    "2663 2665-2666 2668 267B 267E-267F 2692-2697 2699 269B-269C 26A0-26A1 26A7 "
    "26AA-26AB 26B0-26B1 26BD-26BE 26C4-26C5 26C8 26CE-26CF 26D1 26D3-26D4 26E9-26EA "
    "26F0-26F5 26F7-26FA 26FD 2702 2705 2708-270D 270F 2712 2714 2716 271D 2721 2728 "
    "2733-2734 2744 2747 274C 274E 2753-2755 2757 2763-2764 2795-2797 27A1 27B0 27BF "
    "2934-2935 2B05-2B07 2B1B-2B1C 2B50 2B55 3030 303D 3297 3299 1F004 1F02C-1F02F "
    "1F094-1F09F 1F0AF-1F0B0 1F0C0 1F0CF-1F0D0 1F0F6-1F0FF 1F170-1F171 1F17E-1F17F "
    "1F18E 1F191-1F19A 1F1AE-1F1E5 1F201-1F20F 1F21A 1F22F 1F232-1F23A 1F23C-1F23F "
    "1F249-1F25F 1F266-1F321 1F324-1F393 1F396-1F397 1F399-1F39B 1F39E-1F3F0 "
    "1F3F3-1F3F5 1F3F7-1F3FA 1F400-1F4FD 1F4FF-1F53D 1F549-1F54E 1F550-1F567 "
    "1F56F-1F570 1F573-1F57A 1F587 1F58A-1F58D 1F590 1F595-1F596 1F5A4-1F5A5 1F5A8 "
    "1F5B1-1F5B2 1F5BC 1F5C2-1F5C4 1F5D1-1F5D3 1F5DC-1F5DE 1F5E1 1F5E3 1F5E8 1F5EF "
    "1F5F3 1F5FA-1F64F 1F680-1F6C5 1F6CB-1F6D2 1F6D5-1F6E5 1F6E9 1F6EB-1F6F0 "
    "1F6F3-1F6FF 1F7DA-1F7FF 1F80C-1F80F 1F848-1F84F 1F85A-1F85F 1F888-1F88F "
    "1F8AE-1F8AF 1F8BC-1F8BF 1F8C2-1F8CF 1F8D9-1F8FF 1F90C-1F93A 1F93C-1F945 "
    "1F947-1F9FF 1FA58-1FA5F 1FA6E-1FAFF 1FC00-1FFFD"
)
_REGIONAL_INDICATORS: Final = _table("1F1E6-1F1FF")
_SKIN_TONES: Final = _table("1F3FB-1F3FF")
# After these the CLI keeps a text (U+FE0E) or emoji (U+FE0F) presentation selector.
_EMOJI: Final = _PICTOGRAPHIC | _REGIONAL_INDICATORS | _SKIN_TONES
# Letters of the Arabic, Syriac, N'Ko and Mongolian scripts (below U+3400, measured): a
# zero-width non-joiner after one of them is kept.
_JOINING_LETTERS: Final = _table(
    "620-63F 641-64A 66E-66F 671-6D3 6D5 6E5-6E6 6EE-6EF 6FA-6FC 6FF 710 712-72F "
    "74D-77F 7CA-7EA 7F4-7F5 7FA 860-86A 870-887 889-88F 8A0-8C9 1820-1878 1880-1884 "
    "1887-18A8 18AA"
)

_ZWNJ: Final = "\u200c"
_ZWJ: Final = "\u200d"
_VS15: Final = "\ufe0e"
_VS16: Final = "\ufe0f"
_KEYCAP: Final = "\u20e3"
_BLACK_FLAG: Final = "\U0001f3f4"
_TAG_CANCEL: Final = "\U000e007f"
_SUBDIVISION_FLAGS: Final = frozenset({"gbeng", "gbsct", "gbwls"})

_LINE_BREAKS: Final = re.compile("\r\n|[\r\x0b\x0c\x85\u2028\u2029]")
_SURROGATES: Final = re.compile("[\ud800-\udfff]")
_CONTROLS: Final = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_INVISIBLE: Final = re.compile(f"[{_char_class(_INVISIBLE_SPEC)}]")
_TRAILING_SPACE: Final = re.compile(r"\s+\Z")

# What the CLI takes for the "<" of a pasted_content tag (measured; it escapes the tag by
# putting "<\\" in the opener's place).
_TAG_OPENERS: Final = frozenset(
    "<\u2039\u226a\u226e\u227a\u22d6\u22d8\u276c\u276e\u2770\u27e8\u27ea\u2991\u2993\u29fc"
    "\u2a79\u2aa1\u2aa6\u2af7\u3008\ufe3d\ufe3f\ufe64\uff1c\u02c2\u1438\u16b2"
)
# The tag as the CLI finds it when it is spelled in ASCII: any run of ASCII characters
# that are not letters, digits, "_", "-", "<" or ">", then the name, then no word character.
_ASCII_TAG: Final = re.compile(
    r"[\t\n !\"#$%&'()*+,./:;=?@\[\\\]^`{|}~]*pasted[_\-]content(?![A-Za-z0-9_\-])",
    re.IGNORECASE | re.ASCII,
)
_TAG_NAME: Final = "pasted_content"
# What the CLI lets stand between the letters of a tag name (marks and format characters).
_BETWEEN_LETTERS: Final = ("Mn", "Me", "Mc", "Cf")
# The blocks the CLI's look-alikes of Latin letters come from: Latin-1 to Cyrillic
# Supplement, Armenian, Cherokee, phonetic extensions, Latin Extended Additional,
# letterlike symbols and number forms, enclosed alphanumerics, Coptic, Lisu, Latin
# Extended-D and -E, fullwidth forms, mathematical alphanumerics.
_LOOKALIKE_BLOCKS: Final = (
    (0x00C0, 0x058F),
    (0x13A0, 0x13FF),
    (0x1D00, 0x1DBF),
    (0x1E00, 0x1EFF),
    (0x2070, 0x209F),
    (0x2100, 0x218F),
    (0x2460, 0x24FF),
    (0x2C60, 0x2C7F),
    (0x2C80, 0x2CFF),
    (0xA4D0, 0xA4FF),
    (0xA720, 0xA7FF),
    (0xAB30, 0xABBF),
    (0xFF00, 0xFFEF),
    (0x1D400, 0x1D7FF),
)
# Besides dashes and connectors, what the CLI takes for the "_" of a tag name.
_DASH_LOOKALIKES: Final = "\u2017\u02cd\u07fa\u0640\u2212\u207b\u208b\u02d7\u2796\u2043\u30fc\uff70"

# The CLI's test for a pasted image path (per line of a paste; see _image_segments).
_PATH_SPLIT: Final = re.compile(r" (?=[\"']?(?:/|[A-Za-z]:\\))")
_ABSOLUTE_PATH: Final = re.compile(
    r"(?:/(?!/)[^ \r\\/]*(?:\\.[^ \r\\/]*)*/|[A-Za-z]:\\|\\\\)[^\r]*\Z"
)
_QUOTED_PATH: Final = re.compile(r"([\"'])(?:/[^/\r]+/|[A-Za-z]:\\|\\\\)[^\r]*\1\Z")
_UNESCAPED_SPACE: Final = re.compile(r"[^\\] ")
_IMAGE_NAME: Final = re.compile(r"\.(?:png|jpe?g|gif|webp)\Z", re.IGNORECASE | re.ASCII)
_ESCAPED: Final = re.compile(r"\\(.)")


@attrs.frozen
class PreparedText:
    """User text made safe to type, and the pastes that deliver it.

    Attributes:
        text: What is typed: the pastes joined. The model receives ``expected_record``.
        chunks: The pieces to paste back to back before pressing Enter.
        removed: How many characters were removed as unsafe or invisible.
        prefixed: Whether a leading space was added to keep ``/`` or ``!`` literal.
        suffixed: Whether a trailing space was added after a final backslash (the CLI
            trims it again).
        expected_record: The exact prompt the CLI records and sends to the model: `text`
            with each tab made four spaces and the whitespace at the end trimmed.
    """

    text: str
    chunks: tuple[str, ...]
    removed: int
    prefixed: bool
    suffixed: bool = False

    @property
    def expected_record(self) -> str:
        """The exact prompt the CLI records and sends to the model for this text.

        The CLI turns each tab of a paste into four spaces and trims whitespace at the
        end; nothing else changes.
        """
        return _TRAILING_SPACE.sub("", self.text.replace("\t", "    "))


def paste_line_break_limit(rows: int) -> int:
    """Return how many line breaks one paste may hold in a terminal of *rows* rows."""
    return max(0, min(rows - 10, 2))


def paste_length(text: str) -> int:
    """Return the length the CLI gives *text* as a paste, to compare with 800.

    That is JavaScript's length (UTF-16 code units: a character outside the BMP counts
    twice) after the CLI turned each tab into four spaces.
    """
    return sum(_paste_width(char) for char in text)


def _paste_width(char: str) -> int:
    return 4 if char == "\t" else 2 if ord(char) > 0xFFFF else 1


def prepare_text(text: str, *, rows: int = 40) -> PreparedText:
    """Clean *text* and split it into pastes the CLI takes as plain, unwrapped text.

    Args:
        text: The user's message.
        rows: The height of the CLI's terminal (it sets how many line breaks a paste
            may hold).

    Returns:
        The cleaned text and its chunks.

    Raises:
        InputError: If nothing but whitespace is left (the CLI would not submit it), if
            the text is ``exit``, ``quit``, ``:q``, ``:q!``, ``:wq`` or ``:wq!`` (the CLI
            would exit), or if it holds a ``<pasted_content>`` tag spelled with
            characters outside ASCII (the CLI's escaping of it cannot be predicted). It is
            a `ValueError`.
        ValueError: If the terminal has fewer than 11 rows (no paste could hold a line
            break).
    """
    breaks = paste_line_break_limit(rows)
    if breaks == 0:
        raise ValueError(f"a terminal of {rows} rows is too small; use at least 11")
    cleaned = _LINE_BREAKS.sub("\n", _SURROGATES.sub("\ufffd", text))
    cleaned, removed = _CONTROLS.subn("", cleaned)
    while True:
        stripped, count = _strip_invisible(cleaned)
        removed += count
        normalized = unicodedata.normalize("NFC", stripped)
        if normalized == cleaned:
            break
        cleaned = normalized
    if not cleaned.strip():
        raise InputError(
            "the message is empty: it has no text to type once control and invisible "
            "characters are removed"
        )
    if cleaned.strip() in EXIT_WORDS:
        raise InputError(
            f"the CLI exits when {cleaned.strip()!r} is the whole message: add something to it"
        )
    cleaned = _escape_pasted_content_tags(cleaned)
    prefixed = cleaned[0] in "/!"
    if prefixed:
        cleaned = " " + cleaned
    suffixed = cleaned.endswith("\\")
    if suffixed:
        cleaned += " "
    chunks: list[str] = []
    for chunk in _chunks(cleaned, PASTE_CHUNK_CHARS, breaks):
        chunks.extend(_split_image_names(chunk))
    return PreparedText(
        text=cleaned,
        chunks=tuple(chunks),
        removed=removed,
        prefixed=prefixed,
        suffixed=suffixed,
    )


def _strip_invisible(text: str) -> tuple[str, int]:
    """Remove the CLI's invisible characters but those it keeps; return the count removed.

    Walks the text as the CLI does: a character's left context is what was kept before
    it, its right context the next character of *text*. The caller repeats this until
    nothing changes, so the result is a text the CLI leaves alone.
    """
    if not _INVISIBLE.search(text):
        return text, 0
    kept: list[str] = []
    hidden = False  # whether the last kept character is an invisible one
    removed = 0
    index = 0
    while index < len(text):
        char = text[index]
        if char == _BLACK_FLAG and (end := _subdivision_flag_end(text, index)):
            kept.append(text[index:end])
            hidden = True
            index = end
            continue
        if not _INVISIBLE.match(char):
            kept.append(char)
            hidden = False
        elif _kept_by_cli(char, kept, hidden, text[index + 1 : index + 2]):
            kept.append(char)
            hidden = True
        else:
            removed += 1
        index += 1
    return "".join(kept), removed


def _subdivision_flag_end(text: str, start: int) -> int:
    """The end of an England, Scotland or Wales flag starting at *start*, else 0."""
    letters = ""
    for index in range(start + 1, min(start + 7, len(text))):
        point = ord(text[index])
        if text[index] == _TAG_CANCEL:
            return index + 1 if letters in _SUBDIVISION_FLAGS else 0
        if not 0xE0061 <= point <= 0xE007A:
            return 0
        letters += chr(point - 0xE0000)
    return 0


def _kept_by_cli(char: str, kept: list[str], hidden: bool, following: str) -> bool:
    previous = kept[-1][-1] if kept else ""
    if char == _ZWJ:
        base = previous
        for back in (2, 3):
            if base != _VS16 and not _is(base, _SKIN_TONES):
                break
            base = _kept_char(kept, back)
        return (
            previous not in ("", _ZWJ)
            and _is(base, _PICTOGRAPHIC)
            and _is(following, _PICTOGRAPHIC)
        )
    if char in (_VS15, _VS16):
        if not previous or hidden:
            return False
        return _is(previous, _EMOJI) or (previous in "0123456789#*" and following == _KEYCAP)
    if char == _ZWNJ:
        return not hidden and _is(previous, _JOINING_LETTERS)
    return False


def _kept_char(kept: list[str], back: int) -> str:
    flat = "".join(kept[-back:])
    return flat[-back] if len(flat) >= back else ""


def _is(char: str, table: frozenset[int]) -> bool:
    return len(char) == 1 and ord(char) in table


def _escape_pasted_content_tags(text: str) -> str:
    """Put ``<\\`` in place of the opener of each pasted_content tag, as the CLI does.

    A tag spelled in ASCII is escaped here. One that the CLI might take for a tag through
    other characters (look-alike letters, dashes or spaces from other scripts) cannot be
    told apart exactly from one it would leave alone: refused.

    Raises:
        InputError: For a tag that is not plain ASCII.
    """
    if _TAG_OPENERS.isdisjoint(text):
        return text
    pieces = []
    last = 0
    for index, char in enumerate(text):
        if char not in _TAG_OPENERS or text[index + 1 : index + 2] == "\\":
            continue
        if _ASCII_TAG.match(text, index + 1):
            pieces.append(text[last:index] + "<\\")
            last = index + 1
        elif _might_be_a_tag(text, index + 1):
            raise InputError(
                "the text holds something the CLI could take for a <pasted_content> tag, "
                f"written with characters outside ASCII (at offset {index}): write the tag "
                "in ASCII, or escape it as '<\\pasted_content'"
            )
    return "".join(pieces) + text[last:]


def _might_be_a_tag(text: str, start: int) -> bool:
    """Whether the CLI's tag pattern could match at *start*, whatever look-alikes it knows.

    The CLI's pattern is: filler (no ASCII letter, digit, "_", "-", "<" or ">"), the name
    with each letter or a look-alike of it and marks or format characters between them,
    and no ASCII word character after. Here any character of the look-alike blocks counts
    as a possible look-alike of every letter, and any dash or connector of the "_".
    """
    end = start
    while end < len(text) and not _ascii_word_or_angle(text[end]):
        end += 1
    return any(_might_be_the_name(text, begin) for begin in range(start, end + 1))


def _ascii_word_or_angle(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char in "_-<>")


def _might_be_the_name(text: str, index: int) -> bool:
    for position, expected in enumerate(_TAG_NAME):
        if position:
            while index < len(text) and unicodedata.category(text[index]) in _BETWEEN_LETTERS:
                index += 1
        if index >= len(text):
            return False
        char = text[index]
        if expected == "_":
            if char not in "_-" and (char.isascii() or not _might_be_a_dash(char)):
                return False
        elif char.lower() != expected and (char.isascii() or not _might_be_a_letter(char)):
            return False
        index += 1
    return index == len(text) or not (
        text[index].isascii() and (text[index].isalnum() or text[index] in "_-")
    )


def _might_be_a_letter(char: str) -> bool:
    """Whether *char* is in a block where the CLI finds look-alikes of Latin letters."""
    return any(first <= ord(char) <= last for first, last in _LOOKALIKE_BLOCKS)


def _might_be_a_dash(char: str) -> bool:
    return unicodedata.category(char) in ("Pc", "Pd") or char in _DASH_LOOKALIKES


def _chunks(text: str, max_units: int, max_breaks: int) -> list[str]:
    chunks = []
    start = 0
    while start < len(text):
        end = start
        units = breaks = 0
        while end < len(text):
            width = _paste_width(text[end])
            if units + width > max_units:
                break
            if text[end] == "\n":
                if breaks == max_breaks:
                    break
                breaks += 1
            units += width
            end += 1
        end = _avoid_splitting_a_cluster(text, start, end)
        chunks.append(text[start:end])
        start = end
    return chunks


def _avoid_splitting_a_cluster(text: str, start: int, end: int) -> int:
    # Keep a combining mark with its base, so each paste is in NFC on its own too.
    cut = end
    while start + 1 < cut < len(text) and unicodedata.combining(text[cut]):
        cut -= 1
    return cut


def _split_image_names(chunk: str) -> list[str]:
    """Split *chunk* until no piece holds a line the CLI would read as an image path."""
    pieces = [chunk]
    done: list[str] = []
    while pieces:
        piece = pieces.pop(0)
        cut = _image_name_cut(piece)
        if cut is None:
            done.append(piece)
        else:
            pieces[:0] = [piece[:cut], piece[cut:]]
    return done


def _image_name_cut(paste: str) -> int | None:
    """Where to cut *paste* (before the last letter of an image extension), if needed."""
    offset = 0
    for line in paste.split("\n"):
        for start, segment in _image_segments(line):
            bare = segment.strip()
            end = len(segment.rstrip())
            if len(bare) >= 2 and bare[0] in "\"'" and bare[-1] == bare[0]:
                end -= 1
            return offset + start + end - 1
        offset += len(line) + 1
    return None


def _image_segments(line: str) -> Iterable[tuple[int, str]]:
    """The parts of one pasted *line* the CLI would try to read as image files.

    The CLI splits a line at each space that starts a path; unless every part looks like
    a path, the line is text. Each part that then ends with an image extension (after
    trimming, unquoting and unescaping) is read as an image, asynchronously, and an
    Enter that arrives meanwhile is lost.
    """
    bounds = [0]
    for match in _PATH_SPLIT.finditer(line):
        bounds.extend((match.start(), match.end()))
    bounds.append(len(line))
    parts = [
        (bounds[i], line[bounds[i] : bounds[i + 1]])
        for i in range(0, len(bounds), 2)
        if line[bounds[i] : bounds[i + 1]].strip()
    ]
    if len(parts) > 1 and not all(_looks_like_a_path(part.strip()) for _, part in parts):
        return []
    return [(start, part) for start, part in parts if _names_an_image(part)]


def _looks_like_a_path(part: str) -> bool:
    if _QUOTED_PATH.match(part):
        return True
    return bool(_ABSOLUTE_PATH.match(part)) and (
        not _UNESCAPED_SPACE.search(part) or _names_an_image(part)
    )


def _names_an_image(part: str) -> bool:
    path = part.strip()
    if len(path) >= 1 and path[0] in "\"'" and path.endswith(path[0]):
        path = path[1:-1]
    path = _ESCAPED.sub(r"\1", path.replace("\\\\", "\x00")).replace("\x00", "\\")
    return bool(_IMAGE_NAME.search(path))


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
