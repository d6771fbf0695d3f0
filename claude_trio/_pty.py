"""One ``claude`` process in a pseudo-terminal, driven from trio without threads.

`ptyprocess` only forks and execs: the child becomes a session leader, so its pid is
also its process-group id. The master fd is duplicated into a `trio.lowlevel.FdStream`
and the `ptyprocess.PtyProcess` object is disarmed, because its blocking methods (and its
``__del__``) would sleep and signal the child behind trio's back. The child is reaped
through a pidfd that trio waits on.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import signal
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Final, final

import ptyprocess
import trio

from ._chrome import find_dialog, is_ready
from ._errors import BackendTimeoutError, ProcessError, SessionError
from ._proctree import TREE_MARK_VAR, ProcessRef, descendants, kill_all, marked, wait_gone
from ._sanitize import PreparedText, prepare_text
from ._screen import TerminalScreen
from ._util import single_error_unwrapped

_READ_SIZE: Final = 65536
_PASTE_START: Final = b"\x1b[200~"
_PASTE_END: Final = b"\x1b[201~"
# Writes go out in pieces about the size of the terminal's input queue, so that a stall
# is seen within input_timeout of the last byte the CLI read.
_WRITE_PIECE: Final = 4096
# A dialog is answered once the screen has been still this long; the answer gets this
# long to take effect, and is given at most this many times.
_STILL: Final = 0.2
_DIALOG_WAIT: Final = 3.0
_TRUST_ATTEMPTS: Final = 3
# Two ESCs within 800 ms (the CLI's double-press window) open its rewind picker, which
# then swallows the next message: ESCs go out at least this far apart.
ESCAPE_SPACING: Final = 1.0


@final
class PtyClaudeProcess:
    """A running ``claude`` on a PTY of fixed size.

    Create one with `spawn`. The owner runs `drain` in a nursery for as long as the
    process lives (a PTY nobody reads stalls the CLI) and calls `aclose` when done;
    `aclose` is shielded and bounded, and kills the whole process tree if it must.

    Attributes:
        pid: The process id, which is also its process-group id.
        argv: The command line it was started with.
        rows: The height of its terminal.
        screen: The terminal screen as the CLI draws it.
        returncode: The exit status once reaped (negative for a signal), else None.
        input_timeout: Seconds a write may wait for the CLI to read its terminal before
            `BackendTimeoutError` (phase ``"input"``).
    """

    def __init__(
        self,
        *,
        argv: Sequence[str],
        pid: int,
        master_fd: int,
        columns: int,
        rows: int,
        tree_mark: str,
        input_timeout: float = 30.0,
    ) -> None:
        self.argv = tuple(argv)
        self.pid = pid
        self.rows = rows
        self.screen = TerminalScreen(columns=columns, rows=rows)
        self.returncode: int | None = None
        self.input_timeout = input_timeout
        self._tree_mark = tree_mark
        self._stream = trio.lowlevel.FdStream(master_fd)
        self._pidfd = os.pidfd_open(pid)
        self._output = trio.Event()
        self._eof = trio.Event()
        self._wait_lock = trio.Lock()
        self._send_lock = trio.Lock()
        self._escape_lock = trio.Lock()
        self._last_escape = -math.inf
        self._closed = False

    @classmethod
    def spawn(
        cls,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str | os.PathLike[str],
        columns: int = 120,
        rows: int = 40,
        input_timeout: float = 30.0,
    ) -> PtyClaudeProcess:
        """Start *argv* on a new PTY.

        Args:
            argv: The command line; ``argv[0]`` is the executable's path.
            env: The whole environment of the child (nothing is inherited).
            cwd: Its working directory.
            columns: The terminal width.
            rows: The terminal height.
            input_timeout: Sets `input_timeout`.

        Raises:
            ProcessError: If the process could not be started.
        """
        tree_mark = uuid.uuid4().hex
        try:
            child = ptyprocess.PtyProcess.spawn(
                list(argv),
                cwd=os.fspath(cwd),
                env={**env, TREE_MARK_VAR: tree_mark},
                dimensions=(rows, columns),
            )
        except OSError as exc:
            raise ProcessError(f"could not start {argv[0]}: {exc}") from exc
        master_fd = os.dup(child.fd)
        # Disarm ptyprocess: from here on only this object touches the child.
        child.fileobj.close()
        child.closed = True
        child.fd = -1
        return cls(
            argv=argv,
            pid=child.pid,
            master_fd=master_fd,
            columns=columns,
            rows=rows,
            tree_mark=tree_mark,
            input_timeout=input_timeout,
        )

    async def drain(self) -> None:
        """Read the PTY into `screen` until the CLI closes its end.

        Run this in the owner's nursery for the life of the process. It returns at end of
        output (EIO when the child exits, or `aclose`); it never raises for either.
        """
        try:
            while True:
                try:
                    data = await self._stream.receive_some(_READ_SIZE)
                except trio.BrokenResourceError as exc:
                    if isinstance(exc.__cause__, OSError) and exc.__cause__.errno == errno.EIO:
                        return
                    raise
                except trio.ClosedResourceError:
                    return
                if not data:
                    return
                self.screen.feed(data)
                self._output.set()
                self._output = trio.Event()
        finally:
            self._eof.set()
            self._output.set()

    @property
    def output_ended(self) -> bool:
        """Whether the CLI's terminal output has ended (it exited or was closed)."""
        return self._eof.is_set()

    async def wait_output(self) -> None:
        """Wait until more output arrives, or the output ends."""
        if not self._eof.is_set():
            await self._output.wait()

    async def wait_ready(self, *, trust_cwd: bool = False) -> None:
        """Wait until the CLI shows its idle input box.

        Needs `drain` to be running. The caller bounds the wait (`trio.fail_after`).

        Args:
            trust_cwd: Answer the "do you trust this folder?" dialog with yes (Down,
                then Enter, once the dialog has been still for a moment: the CLI ignores
                keys sent while it draws it).

        Raises:
            SessionError: If a first-run dialog shows instead; it names the setting that
                prevents the dialog.
            ProcessError: If the process ends first.
        """
        answers = 0
        while True:
            text = self.screen.text()
            if is_ready(text):
                return
            dialog = find_dialog(text)
            trusting = trust_cwd and answers < _TRUST_ATTEMPTS
            if dialog is not None and trusting and dialog.name == "trust folder":
                answers += 1
                await self._answer_trust_dialog()
                continue
            if dialog is not None:
                raise SessionError(
                    f"the claude CLI shows the {dialog.name} dialog", screen=text, fix=dialog.fix
                )
            if self._eof.is_set():
                await self.wait()
                raise self.exit_error("claude exited before it was ready")
            await self.wait_output()

    async def _answer_trust_dialog(self) -> None:
        await self.wait_quiet(_STILL, bound=_DIALOG_WAIT)
        await self.send_bytes(b"\x1b[B")
        await self.wait_quiet(_STILL, bound=_DIALOG_WAIT)
        await self.send_bytes(b"\r")
        with trio.move_on_after(_DIALOG_WAIT):
            while find_dialog(self.screen.text()) is not None and not self.output_ended:
                await self.wait_output()

    async def wait_quiet(self, quiet: float, *, bound: float) -> None:
        """Wait until the CLI has drawn nothing for *quiet* seconds, at most *bound* seconds.

        Keys sent while the TUI is still painting a prompt or a dialog are lost: answer
        it once the screen has stopped moving.
        """
        with trio.move_on_after(bound):
            while not self.output_ended:
                with trio.move_on_after(quiet) as still:
                    await self.wait_output()
                if still.cancelled_caught:
                    return

    async def press_escape(self) -> None:
        """Press ESC, never within a second of the previous ESC.

        Two presses within the CLI's double-press window would open its rewind picker,
        which swallows the next message.
        """
        async with self._escape_lock:
            await trio.sleep_until(self._last_escape + ESCAPE_SPACING)
            await self.send_bytes(b"\x1b")
            self._last_escape = trio.current_time()

    async def send_bytes(self, data: bytes) -> None:
        """Write raw bytes (keys) to the terminal; use `press_escape` for ESC.

        Raises:
            BackendTimeoutError: If the CLI reads nothing of it for `input_timeout`
                seconds (phase ``"input"``); part of *data* may have been written.
            trio.BrokenResourceError: If the terminal is gone (the CLI exited).
        """
        async with self._send_lock:
            view = memoryview(data)
            for start in range(0, len(view), _WRITE_PIECE):
                with trio.move_on_after(self.input_timeout) as stall:
                    await self._stream.send_all(view[start : start + _WRITE_PIECE])
                if stall.cancelled_caught:
                    raise BackendTimeoutError(
                        "claude stopped reading its terminal",
                        phase="input",
                        timeout=self.input_timeout,
                        screen_tail=self.screen.tail(),
                    )

    async def type_message(self, text: str) -> PreparedText:
        """Type *text* as one user message and submit it.

        The text goes through `prepare_text` (controls removed, a leading ``/`` or ``!``
        kept literal by one space, NFC) and is pasted in chunks small enough that the CLI
        does not wrap it in ``<pasted_content>``, then Enter is pressed. Run the CLI with
        ``--disable-slash-commands`` for the leading-space rule to hold for ``/``.

        Returns:
            What was typed.

        Raises:
            ValueError: If the text is empty once cleaned.
        """
        prepared = prepare_text(text, rows=self.rows)
        await self.paste_and_submit(prepared.chunks)
        return prepared

    async def paste_and_submit(self, chunks: Sequence[str]) -> None:
        """Paste each chunk with bracketed paste, back to back, then press Enter.

        Nothing is cleaned: the caller makes sure no chunk holds ESC or other controls
        (`type_message` does).
        """
        payload = b"".join(_PASTE_START + chunk.encode() + _PASTE_END for chunk in chunks)
        await self.send_bytes(payload + b"\r")

    async def wait(self) -> int:
        """Wait for the process to exit, reap it, and return its exit status."""
        async with self._wait_lock:
            while self.returncode is None:
                await trio.lowlevel.wait_readable(self._pidfd)
                self._try_reap()
        return self.returncode

    def exit_error(self, message: str) -> ProcessError:
        """Build a `ProcessError` describing how the (reaped) process ended."""
        code = self.returncode
        return ProcessError(
            message,
            exit_status=code if code is not None and code >= 0 else None,
            signal=-code if code is not None and code < 0 else None,
            screen_tail=self.screen.tail(),
        )

    async def aclose(self, *, grace: float = 3.0, kill_wait: float = 2.0) -> None:
        """End the process tree and release every fd; shielded, bounded, idempotent.

        Sends SIGTERM (the CLI then stops its own children, including Bash tools in
        process groups of their own) and waits up to *grace* seconds. Then every process
        of the tree still alive, found before and after signalling (by parent links and
        by the environment mark every descendant inherits, so orphans too), gets SIGKILL,
        and up to *kill_wait* seconds go to waiting for them and reaping the CLI.

        Args:
            grace: Seconds to wait for the CLI to exit after SIGTERM.
            kill_wait: Seconds to wait for the tree to be gone after SIGKILL.
        """
        with trio.CancelScope(shield=True):
            tree = set(self._tree())
            if not self._try_reap():
                signal.pidfd_send_signal(self._pidfd, signal.SIGTERM)
                with trio.move_on_after(grace):
                    await self.wait()
            tree.update(self._tree())
            if not self._try_reap():
                # Unreaped, the pid (and so the group id) cannot have been reused.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
            kill_all(tree)
            with trio.move_on_after(kill_wait):
                await self.wait()
                await wait_gone(tree)
            self._release()

    def _tree(self) -> list[ProcessRef]:
        return [*descendants(self.pid), *marked(self._tree_mark)]

    def _try_reap(self) -> bool:
        if self.returncode is not None:
            return True
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            self.returncode = -1
            return True
        if pid == 0:
            return False
        self.returncode = os.waitstatus_to_exitcode(status)
        return True

    def _release(self) -> None:
        if self._closed:
            return
        self._closed = True
        trio.lowlevel.notify_closing(self._pidfd)
        os.close(self._pidfd)
        self._stream.close()


@asynccontextmanager
async def open_claude_pty(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | os.PathLike[str],
    startup_timeout: float = 30.0,
    close_timeout: float = 5.0,
    columns: int = 120,
    rows: int = 40,
) -> AsyncIterator[PtyClaudeProcess]:
    """Start *argv* on a PTY, drain it, and wait until the CLI is ready for input.

    The block owns a nursery running `PtyClaudeProcess.drain`. Leaving it, raising in it,
    or cancelling it ends the process tree (`PtyClaudeProcess.aclose`, shielded and
    bounded by *close_timeout* plus a kill wait). A single error from inside is raised as
    itself, not wrapped in an exception group.

    Args:
        argv: The command line; ``argv[0]`` is the CLI's path.
        env: The whole environment of the CLI.
        cwd: Its working directory.
        startup_timeout: Seconds to wait for the idle input box.
        close_timeout: Seconds the CLI gets to exit after SIGTERM before SIGKILL.
        columns: The terminal width.
        rows: The terminal height.

    Raises:
        ProcessError: If the CLI cannot start or exits before it is ready.
        SessionError: If it shows a first-run dialog instead of the prompt.
        trio.TooSlowError: If it is not ready within *startup_timeout*.
    """
    proc = PtyClaudeProcess.spawn(argv, env=env, cwd=cwd, columns=columns, rows=rows)
    try:
        with single_error_unwrapped():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(proc.drain)
                with trio.fail_after(startup_timeout):
                    await proc.wait_ready()
                yield proc
                nursery.cancel_scope.cancel()
    finally:
        await proc.aclose(grace=close_timeout)
