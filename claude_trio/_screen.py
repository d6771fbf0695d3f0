"""The CLI's terminal screen, rendered by a real terminal emulator (pyte).

What the screen shows is read by the rules of `claude_trio._chrome`.

Bytes from the PTY are queued as they arrive and fed to the emulator only when somebody
asks for the screen, so a long reply costs no emulation unless it is looked at; the
queue is bounded by feeding it early once it grows past a limit, so no state is lost.
Rows are rendered to text once per change: the emulator marks the rows it touches, and
only those are rendered again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import pyte
from wcwidth import wcwidth

_MAX_PENDING: Final = 256 * 1024
_FIRST_WIDE: Final = 0x1100


class _Screen(pyte.Screen):
    def draw(self, data: str) -> None:
        # A combining character drawn at the start of a row joins the last cell of the
        # row above, which pyte changes without marking it: mark every row the call
        # may have touched.
        first = self.cursor.y
        super().draw(data)
        self.dirty.update(range(max(first - 1, 0), self.cursor.y + 1))


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
            self._stream.feed(data)


def _row_text(row: Mapping[int, pyte.screens.Char], columns: int) -> str:
    """One row as text: the cell after a two-cell character (its stub) is skipped.
    pyte's own ``display`` fails on a cell left empty (a wide character's stub that was
    overwritten, pyte issue 207): such cells are skipped too."""
    cells = [" "] * columns
    wide = False
    for x, char in row.items():
        if x < columns:
            cells[x] = data = char.data
            # Nothing below U+1100 takes two cells.
            wide = wide or (bool(data) and ord(data[0]) >= _FIRST_WIDE)
    if not wide:
        return "".join(cells).rstrip()
    kept: list[str] = []
    stub = False
    for data in cells:
        if stub or not data:
            stub = False
            continue
        kept.append(data)
        stub = wcwidth(data[0]) == 2
    return "".join(kept).rstrip()
