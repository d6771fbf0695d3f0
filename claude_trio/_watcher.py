"""Tailing one JSONL file that another process appends to: `JsonlWatcher`.

The CLI creates its session file only when the first message is submitted, possibly
together with the ``projects/<key>/`` directory that holds it, and then appends whole
records in batches. The watcher waits for the file (and its directories) to appear,
follows it from a byte offset, and hands out one complete line at a time; it never
parses JSON.

On Linux it sleeps on an inotify descriptor through `trio.lowlevel.wait_readable`, its
own or, given an `InotifyHub`, the hub's shared one; the file itself is read with
`os.pread`, which never blocks meaningfully on a regular file. Elsewhere, or when asked
to, it polls on a short timer instead.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import sys
from typing import TYPE_CHECKING, final

import trio

from ._errors import MessageParseError, SessionError
from ._inotify import InotifyHub, InotifyListener, OwnInotify

if TYPE_CHECKING:
    from typing import Self

if sys.platform == "linux":
    from inotify_simple import INotify
    from inotify_simple import flags as _flags

    # The nearest existing ancestor directory: something appeared in it, or it went away.
    _DIR_MASK = (
        _flags.CREATE | _flags.MOVED_TO | _flags.DELETE_SELF | _flags.MOVE_SELF | _flags.ONLYDIR
    )
    _DIR_GONE = _flags.DELETE_SELF | _flags.MOVE_SELF | _flags.IGNORED
    _FILE_MASK = _flags.MODIFY

_READ_SIZE = 64 * 1024
_DEFAULT_POLL_INTERVAL = 0.025
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC


@final
class JsonlWatcher(trio.abc.AsyncResource):
    """An async iterator over the complete lines of a file that another process appends to.

    ::

        async with JsonlWatcher(path, offset=known_size) as watcher:
            async for line in watcher:
                record = json.loads(line)

    Constructing the watcher does no I/O. Entering it (or the first iteration, if it is
    never entered) *arms* it: it opens an inotify instance (or a listener on
    *inotify_hub*), watches the file's directory, or the nearest ancestor that exists if
    the directories are missing too, and opens the file if it is already there. From then
    on no append can be missed, so a caller that arms the watcher before making the other
    process write may rely on seeing everything written after *offset*.

    Each iteration returns the next line, decoded as UTF-8, without its ``\\n``. A
    trailing line without its newline yet is held back until the newline arrives,
    however the writer splits its writes. Blank lines are returned as ``""``, so that
    `line_number` stays true to the file. The iterator never ends by itself, since the
    file may always grow: stop by breaking out of the loop, cancelling, or `aclose`.

    **What it owns:** an inotify descriptor (Linux) and a read-only descriptor on the
    file, both closed by `aclose`, by leaving the ``async with`` block, or when the
    object is garbage collected. With *inotify_hub* it owns no inotify descriptor: it
    holds an `InotifyListener` of the hub instead, whose watches the same calls remove.
    It starts no task: the waiting happens inside the caller's iteration, so it needs no
    nursery (a hub's reading task runs in the hub's own block).

    **Cancellation:** a cancelled iteration loses nothing; the next one returns the line
    the cancelled one would have returned. Cancelling while waiting leaves the watcher
    usable; close it (leave the ``async with``) to release the descriptors.

    **Replacement and truncation:** the watcher follows the file it opened, by inode.
    If the path is unlinked it keeps reading the open file, in case the writer still
    appends to it. If a different file appears at the path (deleted and re-created,
    or renamed over), the watcher returns the complete lines left in the old file and
    then raises `SessionError`; it never replays the new file from its start. If the
    file shrinks below the read position it raises `SessionError` too. Truncation that
    is followed by regrowth past the read position before the watcher looks is not
    detectable. Once raised, the same error is raised again by every later iteration.

    **Polling:** when *force_poll* is true, on systems without inotify, or when the
    per-user inotify limits are exhausted (``EMFILE`` from ``inotify_init1``,
    ``ENOSPC`` from ``inotify_add_watch``, or a hub that is not
    `InotifyHub.available`), it checks the file every *poll_interval* seconds instead of
    sleeping on inotify; `polling` says which mode it is in.

    Args:
        path: The file to follow. A relative path is made absolute at once, so a later
            `os.chdir` does not change which file is followed.
        offset: The byte offset to start reading at; 0 or the position just after a
            ``\\n`` (for example the size of a transcript written before resuming it).
        line_number: How many lines lie before *offset*, so that `line_number` numbers
            the lines that follow as the file does. The watcher does not read the
            history to count them.
        force_poll: Poll even where inotify is available (for tests and comparisons).
        poll_interval: Seconds between checks when polling.
        inotify_hub: Watch through this hub's shared inotify instance (see
            `open_inotify_hub`) rather than an instance of the watcher's own, so that
            many watchers stay within ``fs.inotify.max_user_instances``. The watcher
            must be used inside the hub's block: once the hub is closed, an iteration
            that has to wait raises `trio.ClosedResourceError`.

    Raises:
        ValueError: If *offset* or *line_number* is negative, or *poll_interval* is not
            a positive finite number.

    .. versionadded:: 0.1.0
    """

    __slots__ = (
        "_buf",
        "_busy",
        "_closed",
        "_closing",
        "_dir_wd",
        "_failure",
        "_fd",
        "_file_wd",
        "_hub",
        "_identity",
        "_inotify",
        "_line_number",
        "_offset",
        "_path",
        "_path_changed",
        "_poll_interval",
        "_polling",
        "_rearm",
        "_scanned",
        "_started",
        "_watched_dir",
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        offset: int = 0,
        line_number: int = 0,
        force_poll: bool = False,
        poll_interval: float = _DEFAULT_POLL_INTERVAL,
        inotify_hub: InotifyHub | None = None,
    ) -> None:
        self._closed = True
        if offset < 0:
            raise ValueError(f"offset must be >= 0, not {offset}")
        if line_number < 0:
            raise ValueError(f"line_number must be >= 0, not {line_number}")
        if not (poll_interval > 0 and math.isfinite(poll_interval)):
            raise ValueError(f"poll_interval must be a positive number, not {poll_interval}")
        self._path = os.path.abspath(os.fspath(path))
        self._offset = offset
        self._line_number = line_number
        self._polling = force_poll or sys.platform != "linux"
        self._poll_interval = poll_interval
        self._hub = inotify_hub
        self._inotify: InotifyListener | OwnInotify | None = None
        self._dir_wd: int | None = None
        self._watched_dir: str | None = None
        self._file_wd: int | None = None
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None
        self._buf = bytearray()
        self._scanned = 0
        self._started = False
        self._rearm = False
        self._path_changed = False
        self._failure: str | None = None
        self._busy = False
        self._closing = trio.Event()
        self._closed = False

    # ------------------------------------------------------------------ public surface

    @property
    def path(self) -> str:
        """The absolute path of the file being followed."""
        return self._path

    @property
    def offset(self) -> int:
        """The byte offset just after the last line returned (or skipped as undecodable).

        Starts at the *offset* given to the constructor. Pass it as *offset* to a new
        watcher to carry on where this one stopped.
        """
        return self._offset

    @property
    def line_number(self) -> int:
        """The 1-based number of the last line returned (or skipped as undecodable).

        Starts at the *line_number* given to the constructor, so before the first line
        it is the number of lines before *offset*. Use it to build a
        `MessageParseError` for a line that does not parse.
        """
        return self._line_number

    @property
    def polling(self) -> bool:
        """Whether the watcher polls on a timer instead of waiting on inotify."""
        return self._polling

    def __repr__(self) -> str:
        state = "closed" if self._closed else "polling" if self._polling else "inotify"
        return (
            f"<JsonlWatcher {self._path!r} offset={self._offset} "
            f"line_number={self._line_number} {state}>"
        )

    async def __aenter__(self) -> Self:
        """Arm the watcher (see the class description); not a checkpoint.

        Raises:
            trio.ClosedResourceError: If the watcher was already closed.
            SessionError: If the path names something other than a regular file, or a
                file shorter than *offset* or with no line starting at *offset*.
            OSError: If the file or a directory above it cannot be opened or watched
                (for example `PermissionError`).
        """
        self._check_open()
        try:
            self._start()
        except BaseException:
            self._close_now()
            raise
        return self

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        """Wait for the next complete line and return it.

        Arms the watcher first if it was not entered. Waits until the file exists and
        holds a complete line past the read position. Cancelling the wait loses no data.

        Returns:
            The line, decoded as UTF-8, without the trailing newline.

        Raises:
            trio.ClosedResourceError: If the watcher is closed, before or during the wait,
                or its *inotify_hub* is.
            trio.BusyResourceError: If another task is iterating over this watcher.
            MessageParseError: If the line is not valid UTF-8 (it carries `path` and
                `line_number`). The line is consumed, so iterating again goes on with
                the next line.
            SessionError: If the file was truncated below the read position or replaced
                by another file (see the class description), or the path names
                something other than a regular file, or *offset* does not fit the file.
            trio.BrokenResourceError: If reading the file or the inotify descriptor
                (the watcher's own or its hub's) failed; the `OSError` is its
                ``__cause__``.
            OSError: If the file or a directory above it cannot be opened or watched for
                a reason other than not existing yet (for example `PermissionError`).
        """
        if self._busy:
            raise trio.BusyResourceError("another task is already iterating this JsonlWatcher")
        self._busy = True
        try:
            return await self._receive_line()
        finally:
            self._busy = False

    async def aclose(self) -> None:
        """Close every descriptor the watcher opened (the inotify instance and the file).

        With an *inotify_hub*, close the watcher's listener instead of an instance,
        which removes its watches from the hub.

        A task waiting for a line at that moment gets `trio.ClosedResourceError`, and so
        does every later iteration. Closing twice is fine. It closes even when cancelled,
        and then checkpoints, as trio's ``aclose`` methods do.
        """
        self._close_now()
        await trio.lowlevel.checkpoint()

    def __del__(self) -> None:
        self._close_now()

    # ------------------------------------------------------------------ the loop

    async def _receive_line(self) -> str:
        await trio.lowlevel.checkpoint_if_cancelled()
        self._check_open()
        self._start()
        waited = False
        while True:
            line = self._pop_line()
            if line is not None:
                if not waited:
                    await trio.lowlevel.cancel_shielded_checkpoint()
                return line
            if not self._fill():
                await self._wait()
                waited = True
                self._check_open()

    def _pop_line(self) -> str | None:
        end = self._buf.find(b"\n", self._scanned)
        if end < 0:
            self._scanned = len(self._buf)
            return None
        raw = self._buf[:end]
        del self._buf[: end + 1]
        self._scanned = 0
        self._offset += end + 1
        self._line_number += 1
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MessageParseError(
                "session file line is not valid UTF-8",
                path=self._path,
                line_number=self._line_number,
                line=raw.decode("utf-8", errors="replace"),
                detail=str(exc),
            ) from exc

    def _fill(self) -> bool:
        """Read what the file gained since last time; return whether any bytes arrived."""
        if self._rearm:
            self._rearm = False
            self._look()
        if self._fd is None:
            return False
        size = max(_READ_SIZE, len(self._buf))
        try:
            data = os.pread(self._fd, size, self._offset + len(self._buf))
        except OSError as exc:
            raise trio.BrokenResourceError(f"reading {self._path} failed: {exc}") from exc
        if data:
            self._buf += data
            return True
        self._check_at_end(self._fd)
        return False

    async def _wait(self) -> None:
        if self._inotify is None:
            with trio.move_on_after(self._poll_interval):
                await self._closing.wait()
            self._rearm = True
            self._path_changed = True
            return
        for event in await self._inotify.wait():
            # Anything but a write to the file (a directory event, a stale watch, or a
            # queue overflow with wd -1) means: look at the path again.
            if event.wd != self._file_wd:
                self._rearm = True
                self._path_changed = True
                if event.wd == self._dir_wd and event.mask & _DIR_GONE:
                    self._watched_dir = None

    # ------------------------------------------------------------------ arming

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        if not self._polling:
            try:
                self._inotify = (
                    self._hub.open_listener()
                    if self._hub is not None
                    else OwnInotify(INotify(nonblocking=True))
                )
            except OSError as exc:
                if exc.errno != errno.EMFILE:
                    raise
                self._polling = True
        self._look()

    def _look(self) -> None:
        """Watch the nearest existing directory above the file, then try to open it."""
        if self._inotify is not None:
            self._watch_nearest_dir()
        if self._fd is None:
            self._open_file()

    def _watch_nearest_dir(self) -> None:
        assert self._inotify is not None
        while True:
            target = self._nearest_dir()
            if target != self._watched_dir:
                try:
                    wd = self._inotify.add_watch(target, _DIR_MASK)
                except (FileNotFoundError, NotADirectoryError):
                    continue
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    self._fall_back_to_polling()
                    return
                if self._dir_wd is not None and self._dir_wd != wd:
                    self._inotify.rm_watch(self._dir_wd)
                self._dir_wd, self._watched_dir = wd, target
            # A directory created between the check and the watch sent us no event.
            if self._nearest_dir() == target:
                return

    def _nearest_dir(self) -> str:
        directory = os.path.dirname(self._path)
        while not os.path.isdir(directory):
            parent = os.path.dirname(directory)
            if parent == directory:
                break
            directory = parent
        return directory

    def _open_file(self) -> None:
        try:
            fd = os.open(self._path, _OPEN_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise SessionError(f"{self._path} exists but is not a regular file")
            self._check_start(fd, info.st_size)
            if self._inotify is not None:
                self._watch_file(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._identity = (info.st_dev, info.st_ino)

    def _check_start(self, fd: int, size: int) -> None:
        if size < self._offset:
            raise SessionError(
                f"{self._path} is {size} bytes long, shorter than the start offset {self._offset}"
            )
        if self._offset and os.pread(fd, 1, self._offset - 1) != b"\n":
            raise SessionError(
                f"offset {self._offset} is not at the start of a line in {self._path}"
            )

    def _watch_file(self, fd: int) -> None:
        assert self._inotify is not None
        # Through /proc the watch lands on the inode we opened, even if the path has
        # been replaced since.
        try:
            self._file_wd = self._inotify.add_watch(f"/proc/self/fd/{fd}", _FILE_MASK)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.ENOENT):
                raise
            self._fall_back_to_polling()

    def _fall_back_to_polling(self) -> None:
        inotify, self._inotify = self._inotify, None
        if inotify is not None:
            inotify.close()
        self._polling = True
        self._dir_wd = self._file_wd = self._watched_dir = None

    # ------------------------------------------------------------------ at end of file

    def _check_at_end(self, fd: int) -> None:
        """Raise if the file shrank or the path now names another file.

        Called only when a read found nothing new, so the old file has been drained.
        """
        if self._failure is not None:
            raise SessionError(self._failure)
        position = self._offset + len(self._buf)
        try:
            size = os.fstat(fd).st_size
        except OSError as exc:
            raise trio.BrokenResourceError(f"fstat of {self._path} failed: {exc}") from exc
        if size < position:
            self._fail(
                f"{self._path} was truncated to {size} bytes, below the read position {position}"
            )
        if not self._path_changed:
            return
        self._path_changed = False
        try:
            info = os.stat(self._path)
        except (FileNotFoundError, NotADirectoryError):
            return
        if (info.st_dev, info.st_ino) != self._identity:
            self._fail(f"{self._path} was replaced by another file")

    def _fail(self, message: str) -> None:
        if self._buf:
            message += f" ({len(self._buf)} bytes of an unfinished last line were dropped)"
        self._failure = message
        raise SessionError(message)

    # ------------------------------------------------------------------ closing

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("this JsonlWatcher was closed")

    def _close_now(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        inotify, self._inotify = self._inotify, None
        fd, self._fd = self._fd, None
        try:
            if inotify is not None:
                inotify.close()
        finally:
            if fd is not None:
                os.close(fd)
        self._buf.clear()
