"""The CLI's terminal screen, rendered by a real terminal emulator (pyte).

What the screen shows is read by the rules of `claude_trio._chrome`.

Bytes from the PTY are queued as they arrive and fed to the emulator only when somebody
asks for the screen, so a long reply costs no emulation unless it is looked at; the
queue is bounded by feeding it early once it grows past a limit, so no state is lost.
Rows are rendered to text once per change: the emulator marks the rows it touches, and
only those are rendered again. Colours and other character attributes (SGR sequences)
never change the text, which is all the library reads: complete ones are cut from the
bytes before the emulator parses them, a third of what the CLI draws.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Final

import pyte
from pyte.charsets import LAT1_MAP
from pyte.modes import DECAWM, IRM
from wcwidth import wcwidth

_MAX_PENDING: Final = 256 * 1024
# Select Graphic Rendition: ESC [ parameters m. One cut in two by a read is left whole
# to the emulator, which keeps its parser's state between feeds.
_SGR: Final = re.compile(rb"\x1b\[[0-9;:]*m")


class _Screen(pyte.Screen):
    def draw(self, data: str) -> None:
        first = self.cursor.y
        if (
            data.isascii()
            and data.isprintable()
            and not self.charset
            and self.g0_charset is LAT1_MAP
            and IRM not in self.mode
        ):
            self._draw_ascii(data)
        else:
            super().draw(data)
        # A combining character drawn at the start of a row joins the last cell of the
        # row above, which pyte changes without marking it: mark every row the call
        # may have touched.
        self.dirty.update(range(max(first - 1, 0), self.cursor.y + 1))

    def _draw_ascii(self, data: str) -> None:
        """What pyte's ``draw`` does with printable ASCII in the default character set
        and replace mode (one cell each), with one `Char` per distinct character."""
        cursor = self.cursor
        columns = self.columns
        wrap = DECAWM in self.mode
        made: dict[str, pyte.screens.Char] = {}
        for char in data:
            if cursor.x == columns:
                if wrap:
                    self.dirty.add(cursor.y)
                    self.carriage_return()
                    self.linefeed()
                else:
                    cursor.x -= 1
            cell = made.get(char)
            if cell is None:
                cell = made[char] = cursor.attrs._replace(data=char)
            self.buffer[cursor.y][cursor.x] = cell
            cursor.x += 1


class TerminalScreen:
    """A lazily fed pyte screen of fixed size.

    Args:
        columns: The terminal width the CLI was given.
        rows: The terminal height the CLI was given.
    """

    def __init__(self, *, columns: int, rows: int) -> None:
        self._screen = _Screen(columns, rows)
        self._stream = pyte.ByteStream(self._screen)
        self._pending = bytearray()
        self._rows = [""] * rows
        self._text = "\n".join(self._rows)
        self.bytes_seen = 0
        self.changes = 0

    def feed(self, data: bytes) -> None:
        """Queue *data* read from the PTY."""
        self._pending += data
        self.bytes_seen += len(data)
        if len(self._pending) > _MAX_PENDING:
            self._flush()

    def text(self) -> str:
        """Return the screen as text, one line per row, trailing spaces removed."""
        self._flush()
        screen = self._screen
        if screen.dirty:
            changed = False
            for y in screen.dirty:
                if 0 <= y < screen.lines:
                    row = _row_text(screen.buffer[y], screen.columns)
                    if row != self._rows[y]:
                        self._rows[y] = row
                        changed = True
            screen.dirty.clear()
            if changed:
                self._text = "\n".join(self._rows)
                self.changes += 1
        return self._text

    def tail(self, lines: int = 20) -> str:
        """Return the last *lines* non-blank rows of the screen."""
        rows = [row for row in self.text().splitlines() if row.strip()]
        return "\n".join(rows[-lines:])

    def _flush(self) -> None:
        if self._pending:
            data = bytes(self._pending)
            self._pending.clear()
            self._stream.feed(_SGR.sub(b"", data))


def _row_text(row: Mapping[int, pyte.screens.Char], columns: int) -> str:
    """One row as text: the cell after a two-cell character (its stub) is skipped.
    pyte's own ``display`` fails on a cell left empty (a wide character's stub that was
    overwritten, pyte issue 207): such cells are skipped too."""
    cells = [" "] * columns
    wide = False
    for x, char in row.items():
        if x < columns:
            cells[x] = data = char.data
            if data and not data.isascii() and _takes_two_cells(data[0]):
                wide = True
    if not wide:
        return "".join(cells).rstrip()
    kept: list[str] = []
    stub = False
    for data in cells:
        if stub or not data:
            stub = False
            continue
        kept.append(data)
        stub = _takes_two_cells(data[0])
    return "".join(kept).rstrip()


@functools.lru_cache(maxsize=4096)
def _takes_two_cells(char: str) -> bool:
    return wcwidth(char) == 2
