"""Finding, signalling and waiting for every process a claude process started.

The CLI starts children in process groups of their own (the Bash tool, git), and a child
whose parent died is re-parented away from us, so neither the process group nor the
parent links find them all. Each claude gets a unique value in an environment variable
that every descendant inherits; /proc then finds the whole tree, orphans included.

Every process is named by its pid *and* its start time, so a pid that was reused by an
unrelated process is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import attrs
import trio

#: The environment variable that marks every process of one claude's tree.
TREE_MARK_VAR: Final = "CLAUDE_TRIO_TREE"


@attrs.frozen
class ProcessRef:
    """A process, named so that pid reuse cannot fool us.

    Attributes:
        pid: The process id.
        start: Its start time in clock ticks since boot (/proc/<pid>/stat field 22).
    """

    pid: int
    start: int

    def alive(self) -> bool:
        """Whether this very process still exists (zombies count as gone)."""
        stat = _stat(self.pid)
        return stat is not None and stat[2] != "Z" and int(stat[21]) == self.start


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    close = text.rindex(")")
    return [text[: text.index(" ")], text[text.index("(") + 1 : close], *text[close + 2 :].split()]


def _pids() -> list[int]:
    return [int(entry.name) for entry in os.scandir("/proc") if entry.name.isdigit()]


def marked(mark: str) -> list[ProcessRef]:
    """Return every live process whose environment holds ``CLAUDE_TRIO_TREE=<mark>``."""
    needle = f"{TREE_MARK_VAR}={mark}".encode()
    found = []
    for pid in _pids():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            stat = _stat(pid)
            if stat is not None and stat[2] != "Z":
                found.append(ProcessRef(pid, int(stat[21])))
    return found


def descendants(root: int) -> list[ProcessRef]:
    """Return every live descendant of *root*, by parent links."""
    children: dict[int, list[ProcessRef]] = {}
    for pid in _pids():
        stat = _stat(pid)
        if stat is not None and stat[2] != "Z":
            children.setdefault(int(stat[3]), []).append(ProcessRef(pid, int(stat[21])))
    found: list[ProcessRef] = []
    stack = list(children.get(root, []))
    while stack:
        ref = stack.pop()
        found.append(ref)
        stack.extend(children.get(ref.pid, []))
    return found


def kill_all(refs: Iterable[ProcessRef], sig: int = signal.SIGKILL) -> None:
    """Send *sig* to each process of *refs* that is still the same process."""
    for ref in refs:
        if ref.pid > 1 and ref.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(ref.pid, sig)


async def wait_gone(refs: Iterable[ProcessRef]) -> None:
    """Wait until every process of *refs* has exited; the caller bounds the wait."""
    for ref in refs:
        try:
            pidfd = os.pidfd_open(ref.pid)
        except ProcessLookupError:
            continue
        try:
            if ref.alive():
                await trio.lowlevel.wait_readable(pidfd)
        finally:
            trio.lowlevel.notify_closing(pidfd)
            os.close(pidfd)
