"""A one-line spinner with the elapsed time, drawn on a terminal while the CLI works.

The spinner owns one line of its stream (the command's stderr): it draws that line over
and over with a carriage return, and erases it (``CR``, then erase-to-end-of-line) before
anyone else prints. It draws nothing unless it was enabled, which the command does only
when stderr is a terminal, so piped or captured output never holds a spinner frame.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Final, TextIO, final

import trio

from ._util import single_error_unwrapped

#: The frames, one after another (braille dots, as many terminal tools use).
FRAMES: Final = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
#: Seconds between two frames.
INTERVAL: Final = 0.1
#: Moves to the start of the line and erases it.
ERASE: Final = "\r\x1b[K"


@final
class Spinner:
    """The state of a spinner line: whether it is on screen, and whether it may draw.

    Build one with `open_spinner`, which runs the task that draws it.

    Args:
        stream: Where to draw (a terminal).
        label: The text after the frame, such as ``"working"``.
        enabled: Whether to draw at all; when False every method does nothing.
    """

    def __init__(self, stream: TextIO, *, label: str, enabled: bool) -> None:
        self.stream = stream
        self.label = label
        self.enabled = enabled
        self._started = trio.current_time()
        self._frame = 0
        self._shown = False
        self._paused = 0

    @property
    def shown(self) -> bool:
        """Whether a frame is on screen now (and must be erased before printing)."""
        return self._shown

    def line(self) -> str:
        """Return the spinner's text for now: a frame, the label and the elapsed seconds."""
        elapsed = trio.current_time() - self._started
        return f"{FRAMES[self._frame % len(FRAMES)]} {self.label} {elapsed:.1f}s"

    def draw(self) -> None:
        """Draw the next frame, unless disabled or paused."""
        if not self.enabled or self._paused:
            return
        self.stream.write(ERASE + self.line())
        self.stream.flush()
        self._frame += 1
        self._shown = True

    def erase(self) -> None:
        """Erase the spinner's line, if a frame is on it; it comes back at the next draw."""
        if self._shown:
            self.stream.write(ERASE)
            self.stream.flush()
            self._shown = False

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Erase the spinner and draw nothing inside the block (a question is asked)."""
        self._paused += 1
        self.erase()
        try:
            yield
        finally:
            self._paused -= 1

    async def _run(self) -> None:
        while True:
            self.draw()
            await trio.sleep(INTERVAL)


@asynccontextmanager
async def open_spinner(stream: TextIO, *, label: str, enabled: bool) -> AsyncIterator[Spinner]:
    """Draw a spinner on *stream* while the block runs; erase it when the block ends.

    The block owns the drawing task. Call `Spinner.erase` before printing anything to the
    same terminal; the spinner draws again at its next frame, on the line the cursor is on.

    Args:
        stream: Where to draw.
        label: The text after the frame.
        enabled: Whether to draw at all (the command passes ``stream.isatty()``).

    Yields:
        The spinner.
    """
    spinner = Spinner(stream, label=label, enabled=enabled)
    with single_error_unwrapped():
        async with trio.open_nursery() as nursery:
            if enabled:
                nursery.start_soon(spinner._run)
            try:
                yield spinner
            finally:
                nursery.cancel_scope.cancel()
                spinner.erase()
