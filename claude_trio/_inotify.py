"""One inotify instance shared by many watchers: `open_inotify_hub`.

Linux allows each user few inotify instances (``fs.inotify.max_user_instances``, often
128), so a program that follows many files must not open one per file. A hub owns one
instance and one task that reads it. Each user takes an `InotifyListener` from the hub,
adds watches through it and waits on it, as if the listener were an instance of its own:
the hub hands each event to the listeners that hold the event's watch.

The kernel gives one watch descriptor per inode and instance, and ``inotify_add_watch``
on an inode already watched replaces the watch's mask. The hub therefore always adds
with ``IN_MASK_ADD`` (the kernel mask only grows), counts the listeners that hold each
descriptor, filters events by each listener's own mask, and removes the kernel watch
when its last listener lets go of it.
"""

from __future__ import annotations

import errno
import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final, final

import attrs
import trio

from ._util import check_trio, single_error_unwrapped

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

if sys.platform == "linux":
    from inotify_simple import INotify

IN_UNMOUNT: Final = 0x00002000
IN_Q_OVERFLOW: Final = 0x00004000
IN_IGNORED: Final = 0x00008000
_IN_MASK_CREATE: Final = 0x10000000
_IN_MASK_ADD: Final = 0x20000000
_IN_ONESHOT: Final = 0x80000000
# The kernel reports these whatever the mask asked for.
_ALWAYS: Final = IN_UNMOUNT | IN_Q_OVERFLOW | IN_IGNORED


@attrs.frozen
class InotifyEvent:
    """Something happened on a watch, as `InotifyListener.wait` reports it.

    Attributes:
        wd: The watch descriptor that `InotifyListener.add_watch` returned, or -1 when
            the kernel's event queue overflowed.
        mask: The event's ``IN_*`` bits. ``IN_IGNORED`` (0x8000) means the watch is gone
            (its directory was deleted, for example); ``IN_Q_OVERFLOW`` (0x4000) means
            events were lost, so look again at everything watched.
    """

    wd: int
    mask: int


@attrs.frozen(kw_only=True)
class InotifyHubStatistics:
    """What an `InotifyHub` holds now.

    Attributes:
        listeners: Open listeners.
        watches: Kernel watches, each counted once however many listeners share it.
    """

    listeners: int
    watches: int


def _read_events(inotify: INotify) -> list[InotifyEvent]:
    return [InotifyEvent(event.wd, event.mask) for event in inotify.read(timeout=0)]


@final
class InotifyHub:
    """One inotify instance that many `InotifyListener` objects share.

    Made by `open_inotify_hub`, whose block owns the task that reads the instance (one
    made directly is closed from the start). Pass it to `JsonlWatcher`
    (``inotify_hub=hub``) so that all the watchers of a program use this one instance, or
    take listeners from it with `open_listener`.
    """

    __slots__ = ("_ended", "_inotify", "_listeners", "_unavailable", "_watches")

    def __init__(self) -> None:
        self._inotify: INotify | None = None
        self._unavailable: OSError | None = None
        self._listeners: set[InotifyListener] = set()
        # wd -> the listeners holding it: the kernel watch lives while this is not empty.
        self._watches: dict[int, set[InotifyListener]] = {}
        # Why every use raises: the exception's type, message and cause.
        self._ended: tuple[type[Exception], str, Exception | None] | None = (
            trio.ClosedResourceError,
            "this InotifyHub was not opened by open_inotify_hub",
            None,
        )

    @property
    def available(self) -> bool:
        """Whether the hub has an inotify instance.

        False on systems without inotify, and when the per-user limit of instances
        (``fs.inotify.max_user_instances``) was reached as the hub opened: then
        `open_listener` raises `OSError`, and a `JsonlWatcher` given this hub polls.
        """
        return self._unavailable is None

    def statistics(self) -> InotifyHubStatistics:
        """Count the open listeners and the kernel watches they hold."""
        return InotifyHubStatistics(listeners=len(self._listeners), watches=len(self._watches))

    def open_listener(self) -> InotifyListener:
        """Make a listener: the watches of one user, and the events on them.

        Close it (`InotifyListener.close`) to remove its watches.

        Raises:
            OSError: If the hub is not `available` (``EMFILE`` when the instance limit
                was reached, ``ENOSYS`` without inotify).
            trio.ClosedResourceError: If the hub was closed.
            trio.BrokenResourceError: If reading the inotify instance failed.
        """
        self._check()
        listener = InotifyListener(self)
        self._listeners.add(listener)
        return listener

    def __repr__(self) -> str:
        stats = self.statistics()
        return f"<InotifyHub listeners={stats.listeners} watches={stats.watches}>"

    def _open(self) -> None:
        self._ended = None
        if sys.platform != "linux":
            self._unavailable = OSError(errno.ENOSYS, "inotify exists only on Linux")
            return
        try:
            self._inotify = INotify(nonblocking=True)
        except OSError as exc:
            if exc.errno != errno.EMFILE:
                raise
            self._unavailable = exc

    def _check(self) -> INotify:
        if self._ended is not None:
            kind, message, cause = self._ended
            raise kind(message) from cause
        if self._inotify is None:
            assert self._unavailable is not None
            raise OSError(self._unavailable.errno, self._unavailable.strerror)
        return self._inotify

    def _add(self, listener: InotifyListener, path: str, mask: int) -> int:
        wd = int(self._check().add_watch(path, mask | _IN_MASK_ADD))
        self._watches.setdefault(wd, set()).add(listener)
        return wd

    def _release(self, listener: InotifyListener, wd: int) -> None:
        users = self._watches.get(wd)
        if users is None or listener not in users:
            return
        users.discard(listener)
        if users or self._inotify is None:
            return
        del self._watches[wd]
        try:
            self._inotify.rm_watch(wd)
        except OSError as exc:
            # EINVAL: the kernel already dropped it; its IN_IGNORED is on its way.
            if exc.errno != errno.EINVAL:
                raise

    def _dispatch(self, events: list[InotifyEvent]) -> None:
        for event in events:
            if event.mask & IN_Q_OVERFLOW:
                users = self._listeners
            elif event.mask & IN_IGNORED:
                users = self._watches.pop(event.wd, set())
            else:
                users = self._watches.get(event.wd, set())
            # A copy: a listener may be closed (even garbage-collected) meanwhile.
            for listener in list(users):
                listener._deliver(event)

    async def _read_forever(self, inotify: INotify) -> None:
        fd = inotify.fileno()
        while True:
            await trio.lowlevel.wait_readable(fd)
            try:
                events = _read_events(inotify)
            except OSError as exc:
                self._end(trio.BrokenResourceError, f"reading inotify events failed: {exc}", exc)
                return
            self._dispatch(events)

    def _end(self, kind: type[Exception], message: str, cause: Exception | None) -> None:
        if self._ended is None:
            self._ended = (kind, message, cause)
        for listener in list(self._listeners):
            listener._wakeup.set()

    def _close(self) -> None:
        self._end(trio.ClosedResourceError, "the InotifyHub was closed", None)
        self._listeners.clear()
        self._watches.clear()
        inotify, self._inotify = self._inotify, None
        if inotify is not None:
            trio.lowlevel.notify_closing(inotify.fileno())
            inotify.close()


@final
class InotifyListener:
    """The watches of one user of an `InotifyHub`, and the events on them.

    It behaves like an inotify instance of its own: `add_watch` the paths, then `wait`
    for events on them. Events that arrive while nobody waits are kept (identical ones
    merged) for the next `wait`, so checking something and then waiting never sleeps
    through a change made after the check.

    Made by `InotifyHub.open_listener`. `close` removes its watches; the kernel watch
    goes when no other listener of the hub holds it.
    """

    __slots__ = ("_closed", "_hub", "_masks", "_pending", "_wakeup")

    def __init__(self, hub: InotifyHub) -> None:
        self._hub = hub
        self._masks: dict[int, int] = {}
        self._pending: dict[InotifyEvent, None] = {}
        self._wakeup = trio.Event()
        self._closed = False

    def add_watch(self, path: str, mask: int) -> int:
        """Watch *path* for the ``IN_*`` events in *mask*, as ``inotify_add_watch`` does.

        Adding a path this listener already watches (the same inode) adds *mask* to its
        mask and returns the same descriptor. A watch shared with other listeners keeps
        the events each one asked for.

        Returns:
            The watch descriptor, which `InotifyEvent.wd` carries.

        Raises:
            ValueError: If *mask* holds ``IN_ONESHOT`` or ``IN_MASK_CREATE``, which would
                act on the watches of other listeners.
            OSError: What ``inotify_add_watch`` raises (``ENOENT``, ``ENOTDIR`` with
                ``IN_ONLYDIR``, ``ENOSPC`` when the user's watches are exhausted...).
            trio.ClosedResourceError: If the listener or its hub was closed.
            trio.BrokenResourceError: If reading the hub's inotify instance failed.
        """
        if mask & (_IN_ONESHOT | _IN_MASK_CREATE):
            raise ValueError("IN_ONESHOT and IN_MASK_CREATE cannot be used on a shared instance")
        self._check_open()
        wd = self._hub._add(self, path, mask)
        self._masks[wd] = self._masks.get(wd, 0) | mask
        return wd

    def rm_watch(self, wd: int) -> None:
        """Stop watching *wd*; nothing happens if this listener does not hold it."""
        if self._masks.pop(wd, None) is not None:
            self._hub._release(self, wd)

    async def wait(self) -> list[InotifyEvent]:
        """Wait for events on this listener's watches and return them.

        Returns at once with the events that arrived since the last call, if any.
        Identical events are merged; a queue overflow reaches every listener as an
        event with *wd* -1. A cancelled wait loses no event.

        Raises:
            trio.ClosedResourceError: If the listener or its hub is closed, before or
                during the wait.
            trio.BrokenResourceError: If reading the hub's inotify instance failed;
                the `OSError` is its ``__cause__``.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        self._check_open()
        if self._pending:
            await trio.lowlevel.cancel_shielded_checkpoint()
        else:
            await self._wakeup.wait()
            self._check_open()
        events, self._pending = list(self._pending), {}
        self._wakeup = trio.Event()
        return events

    def close(self) -> None:
        """Remove this listener's watches and wake its `wait` with an error.

        Closing twice is fine, and so is closing after the hub was closed.
        """
        if self._closed:
            return
        self._closed = True
        self._hub._listeners.discard(self)
        self._wakeup.set()
        for wd in list(self._masks):
            self.rm_watch(wd)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"watches={sorted(self._masks)}"
        return f"<InotifyListener {state}>"

    def _check_open(self) -> None:
        if self._closed:
            raise trio.ClosedResourceError("this InotifyListener was closed")
        self._hub._check()

    def _deliver(self, event: InotifyEvent) -> None:
        if event.mask & IN_IGNORED:
            if self._masks.pop(event.wd, None) is None:
                return
        elif event.wd >= 0 and not event.mask & (self._masks.get(event.wd, 0) | _ALWAYS):
            return
        self._pending[event] = None
        self._wakeup.set()


@final
class OwnInotify:
    """An inotify instance used by one `JsonlWatcher` alone, with the listener's methods."""

    __slots__ = ("_inotify", "_waiting")

    def __init__(self, inotify: INotify) -> None:
        self._inotify = inotify
        self._waiting = False

    def add_watch(self, path: str, mask: int) -> int:
        return int(self._inotify.add_watch(path, mask))

    def rm_watch(self, wd: int) -> None:
        try:
            self._inotify.rm_watch(wd)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise

    async def wait(self) -> list[InotifyEvent]:
        self._waiting = True
        try:
            await trio.lowlevel.wait_readable(self._inotify.fileno())
        finally:
            self._waiting = False
        try:
            return _read_events(self._inotify)
        except OSError as exc:
            raise trio.BrokenResourceError(f"reading inotify events failed: {exc}") from exc

    def close(self) -> None:
        # Only a waiting task needs waking, and then this is not a garbage collection.
        if self._waiting:
            trio.lowlevel.notify_closing(self._inotify.fileno())
        self._inotify.close()


@asynccontextmanager
async def open_inotify_hub() -> AsyncIterator[InotifyHub]:
    """Open one inotify instance for many watchers, and read it for the block's duration.

    ::

        async with open_inotify_hub() as hub:
            async with JsonlWatcher(path, inotify_hub=hub) as watcher:
                ...

    The block owns a nursery with one task, which reads the instance and wakes the
    listeners whose watches the events concern. Leaving the block closes the instance:
    a listener (or `JsonlWatcher`) still waiting on it gets `trio.ClosedResourceError`,
    and so does every later use. If reading the instance fails, which inotify does not
    do in practice, the block goes on and each use raises `trio.BrokenResourceError`.

    Where inotify is missing, or the per-user limit of instances is reached, the hub
    opens without an instance (`InotifyHub.available` is false) and the watchers that
    use it poll.

    Yields:
        The `InotifyHub`.

    Raises:
        OSError: If ``inotify_init1`` fails for a reason other than ``EMFILE``.
    """
    check_trio("open_inotify_hub")
    hub = InotifyHub()
    hub._open()
    try:
        with single_error_unwrapped():
            async with trio.open_nursery() as nursery:
                if hub._inotify is not None:
                    nursery.start_soon(hub._read_forever, hub._inotify)
                yield hub
                nursery.cancel_scope.cancel()
    finally:
        hub._close()
