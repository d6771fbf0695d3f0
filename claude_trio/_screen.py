"""The CLI's terminal screen, rendered by a real terminal emulator (pyte).

What the screen shows is read by the rules of `claude_trio._chrome`.

Bytes from the PTY are queued as they arrive and fed to the emulator only when somebody
asks for the screen, so a long reply costs no emulation unless it is looked at; the
queue is bounded by feeding it early once it grows past a limit, so no state is lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import pyte
from wcwidth import wcwidth

_MAX_PENDING: Final = 256 * 1024


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
        screen = self._screen
        return "\n".join(_row_text(screen.buffer[y], screen.columns) for y in range(screen.lines))

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
    """One row as text. pyte's own ``display`` fails on a cell left empty (a wide
    character's stub that was overwritten, pyte issue 207): such cells are skipped."""
    cells: list[str] = []
    stub = False
    for x in range(columns):
        data = row[x].data
        if stub or not data:
            stub = False
            continue
        cells.append(data)
        stub = wcwidth(data[0]) == 2
    return "".join(cells).rstrip()
