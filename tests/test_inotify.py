"""The shared inotify hub: one instance for many watchers, and the watcher suite on it."""

from __future__ import annotations

import errno
import functools
import itertools
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import inotify_simple
import pytest
import trio
import trio.lowlevel
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_trio import InotifyEvent, InotifyHub, JsonlWatcher, SessionError, open_inotify_hub
from claude_trio import _inotify as inotify_module

from . import test_watcher as plain
from .helpers import inotify_fds
from .test_watcher import (
    append,
    forward,
    no_leaked_fds,  # noqa: F401  (autouse here too: every fd is checked)
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and inotify")

TIMEOUT = 10
IN_CREATE = int(inotify_simple.flags.CREATE)
IN_DELETE = int(inotify_simple.flags.DELETE)


def kernel_watches(fd: str) -> dict[int, int]:
    """The watches the kernel holds on inotify *fd*: wd -> mask, from fdinfo."""
    watches = {}
    for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
        if line.startswith("inotify wd:"):
            fields = dict(field.split(":", 1) for field in line.split()[1:])
            watches[int(fields["wd"])] = int(fields["mask"], 16)
    return watches


@pytest.fixture
async def hub() -> AsyncIterator[InotifyHub]:
    async with open_inotify_hub() as hub:
        yield hub


def on_hub(hub: InotifyHub, path: Path, **kwargs: Any) -> JsonlWatcher:
    return JsonlWatcher(path, inotify_hub=hub, **kwargs)


# ---------------------------------------------------------------- one instance for all


async def test_200_watchers_use_one_inotify_instance(tmp_path: Path) -> None:
    before = inotify_fds()
    paths = []
    for n in range(200):
        if n % 3 == 0:
            path = tmp_path / f"file-{n}.jsonl"
            path.write_bytes(b"")
        elif n % 3 == 1:
            path = tmp_path / f"file-{n}.jsonl"
        else:
            path = tmp_path / f"missing-{n}" / "session.jsonl"
        paths.append(path)
    send, receive = trio.open_memory_channel[str](len(paths))
    with trio.fail_after(TIMEOUT):
        async with open_inotify_hub() as hub, trio.open_nursery() as nursery:
            watchers = [on_hub(hub, path) for path in paths]
            for watcher in watchers:
                await watcher.__aenter__()
                nursery.start_soon(forward, watcher, send.clone())
            await trio.testing.wait_all_tasks_blocked()
            assert len(inotify_fds()) == len(before) + 1
            assert not any(watcher.polling for watcher in watchers)
            assert hub.statistics().listeners == 200
            for n, path in enumerate(paths):
                path.parent.mkdir(exist_ok=True)
                append(path, f"{n}\n".encode())
            assert sorted([await receive.receive() for _ in paths], key=int) == [
                str(n) for n in range(200)
            ]
            assert len(inotify_fds()) == len(before) + 1
            nursery.cancel_scope.cancel()
            for watcher in watchers:
                await watcher.aclose()
            assert hub.statistics().listeners == hub.statistics().watches == 0
    assert inotify_fds() == before


# ---------------------------------------------------------------- shared kernel watches


async def test_two_watchers_in_one_directory_both_see_their_appends(
    tmp_path: Path, hub: InotifyHub
) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    with trio.fail_after(TIMEOUT):
        async with on_hub(hub, first) as watcher_a, on_hub(hub, second) as watcher_b:
            # One kernel watch on the directory, held by both.
            assert hub.statistics().watches == 1
            append(first, b"a1\n")
            assert await anext(watcher_a) == "a1"
            append(second, b"b1\n")
            assert await anext(watcher_b) == "b1"
            assert hub.statistics().watches == 3
            append(second, b"b2\n")
            append(first, b"a2\n")
            assert await anext(watcher_b) == "b2"
            assert await anext(watcher_a) == "a2"


async def test_listeners_sharing_an_inode_keep_their_own_masks(tmp_path: Path) -> None:
    before = set(inotify_fds())
    with trio.fail_after(TIMEOUT):
        async with open_inotify_hub() as hub:
            (fd,) = set(inotify_fds()) - before
            creates, deletes = hub.open_listener(), hub.open_listener()
            wd = creates.add_watch(str(tmp_path), IN_CREATE)
            assert deletes.add_watch(str(tmp_path), IN_DELETE) == wd
            # IN_MASK_ADD: the second watch widened the kernel's mask, not replaced it.
            assert kernel_watches(fd)[wd] & (IN_CREATE | IN_DELETE) == IN_CREATE | IN_DELETE
            (tmp_path / "x").write_bytes(b"")
            assert [e.mask & IN_CREATE for e in await creates.wait()] == [IN_CREATE]
            (tmp_path / "x").unlink()
            assert [e.mask & IN_DELETE for e in await deletes.wait()] == [IN_DELETE]
            with trio.move_on_after(0.1):
                pytest.fail(f"a DELETE reached the CREATE listener: {await creates.wait()}")
            creates.rm_watch(wd)
            assert wd in kernel_watches(fd)
            (tmp_path / "y").write_bytes(b"")
            (tmp_path / "y").unlink()
            assert {e.wd for e in await deletes.wait()} == {wd}
            deletes.close()
            assert kernel_watches(fd) == {}
            creates.close()


async def test_closing_one_watcher_does_not_blind_the_other(
    tmp_path: Path, hub: InotifyHub
) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(b"a\n")
    with trio.fail_after(TIMEOUT):
        async with on_hub(hub, second) as survivor:
            async with on_hub(hub, first) as leaving:
                assert await anext(leaving) == "a"
            # The directory watch they shared is still there for the survivor.
            assert hub.statistics().watches == 1
            append(second, b"1\n")
            assert await anext(survivor) == "1"
            # Replacement is seen through the directory watch alone.
            (tmp_path / "new").write_bytes(b"other\n")
            (tmp_path / "new").replace(second)
            with pytest.raises(SessionError, match="replaced"):
                await anext(survivor)


async def test_a_watcher_whose_directories_appear_later(tmp_path: Path, hub: InotifyHub) -> None:
    project = tmp_path / "config" / "projects" / "key"
    path = project / "session.jsonl"
    send, receive = trio.open_memory_channel[str](0)
    with trio.fail_after(TIMEOUT):
        async with on_hub(hub, path) as watcher, trio.open_nursery() as nursery:
            nursery.start_soon(forward, watcher, send)
            for directory in (project.parent.parent, project.parent, project):
                await trio.testing.wait_all_tasks_blocked()
                directory.mkdir()
            await trio.testing.wait_all_tasks_blocked()
            append(path, b"1\n")
            assert await receive.receive() == "1"
            # The ancestors' watches were let go as the watch moved down.
            assert hub.statistics().watches == 2
            nursery.cancel_scope.cancel()


async def test_deleted_directory_moves_every_user_up(tmp_path: Path, hub: InotifyHub) -> None:
    project = tmp_path / "project"
    project.mkdir()
    paths = [project / "a.jsonl", project / "b.jsonl"]
    send, receive = trio.open_memory_channel[str](0)
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            for path in paths:
                watcher = await on_hub(hub, path).__aenter__()
                nursery.start_soon(forward, watcher, send.clone())
            await trio.testing.wait_all_tasks_blocked()
            project.rmdir()
            await trio.testing.wait_all_tasks_blocked()
            project.mkdir()
            await trio.testing.wait_all_tasks_blocked()
            for path in paths:
                append(path, f"{path.name}\n".encode())
            assert {await receive.receive(), await receive.receive()} == {"a.jsonl", "b.jsonl"}
            # IN_IGNORED dropped the dead directory's descriptor: project and two files.
            assert hub.statistics().watches == 3
            nursery.cancel_scope.cancel()


# ---------------------------------------------------------------- waking, losing nothing


async def test_an_event_while_nobody_waits_is_kept(tmp_path: Path, hub: InotifyHub) -> None:
    path = tmp_path / "session.jsonl"
    with trio.fail_after(TIMEOUT):
        async with on_hub(hub, path) as watcher:
            path.write_bytes(b"1\n")
            # The hub reads the CREATE now, while the watcher is not iterating.
            await trio.sleep(0.05)
            assert await anext(watcher) == "1"


async def test_cancelled_wait_loses_no_line(tmp_path: Path, hub: InotifyHub) -> None:
    path = tmp_path / "session.jsonl"
    with trio.fail_after(TIMEOUT):
        async with on_hub(hub, path) as watcher:
            for n in range(20):
                with trio.move_on_after(0.001 * (n % 4)):
                    await anext(watcher)
                    pytest.fail("a line out of nowhere")
                append(path, f"{n}\n".encode())
                assert await anext(watcher) == str(n)


async def test_queue_overflow_wakes_every_listener(tmp_path: Path, hub: InotifyHub) -> None:
    limit = int(await trio.Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    busy, quiet = tmp_path / "busy", tmp_path / "quiet"
    busy.mkdir()
    quiet.mkdir()
    path = quiet / "session.jsonl"
    path.write_bytes(b"")
    bystander = hub.open_listener()
    send, receive = trio.open_memory_channel[str](0)
    with trio.fail_after(TIMEOUT):
        async with (
            on_hub(hub, busy / "s.jsonl") as noisy,
            on_hub(hub, path) as watcher,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(forward, watcher, send)
            await trio.testing.wait_all_tasks_blocked()
            # Without a checkpoint the hub cannot read: the kernel's queue overflows, and
            # the append's IN_MODIFY is dropped.
            (busy / "0").write_bytes(b"")
            for n in range(limit + 10):
                os.rename(busy / str(n % 2), busy / str(1 - n % 2))
            append(path, b"after\n")
            assert await bystander.wait() == [InotifyEvent(-1, inotify_module.IN_Q_OVERFLOW)]
            assert await receive.receive() == "after"
            assert not noisy.polling
            nursery.cancel_scope.cancel()
    bystander.close()


json_lines = st.lists(st.text(max_size=20).map(repr), min_size=1, max_size=10)


@settings(deadline=None, max_examples=25)
@given(contents=st.lists(json_lines, min_size=1, max_size=4), data=st.data())
async def test_lines_equal_the_files_under_concurrent_appends_and_cancels(
    contents: list[list[str]], data: st.DataObject
) -> None:
    """Watchers in one directory on one hub, appends split anywhere and interleaved, and
    each ``anext`` cancelled at a random moment: every watcher reads its file's lines."""
    chunks: list[list[bytes]] = []
    for lines in contents:
        stream = "".join(line + "\n" for line in lines).encode()
        cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=5)))
        bounds = [0, *cuts, len(stream)]
        chunks.append([stream[a:b] for a, b in itertools.pairwise(bounds) if b > a])
    order = data.draw(st.permutations([i for i, pieces in enumerate(chunks) for _ in pieces]))
    # Never 0: a deadline already past at every call would cancel each one at its start.
    patience = data.draw(st.lists(st.floats(0.0001, 0.002), min_size=1, max_size=8))

    async def read_all(watcher: JsonlWatcher, count: int, got: list[str]) -> None:
        for delay in itertools.cycle(patience):
            if len(got) == count:
                return
            with trio.move_on_after(delay):
                got.append(await anext(watcher))

    with tempfile.TemporaryDirectory() as tmp, trio.fail_after(TIMEOUT):
        paths = [Path(tmp, f"{index}.jsonl") for index in range(len(contents))]
        results: list[list[str]] = [[] for _ in paths]
        async with open_inotify_hub() as hub, trio.open_nursery() as nursery:
            watchers = [await on_hub(hub, path).__aenter__() for path in paths]
            for watcher, lines, got in zip(watchers, contents, results, strict=True):
                nursery.start_soon(read_all, watcher, len(lines), got)
            for index in order:
                append(paths[index], chunks[index].pop(0))
                await trio.lowlevel.checkpoint()
        for watcher in watchers:
            await watcher.aclose()
    assert results == contents


# ---------------------------------------------------------------- ends and failures


async def test_closing_the_hub_wakes_its_waiting_watchers(tmp_path: Path) -> None:
    before = inotify_fds()
    outcomes: list[str] = []

    async def wait_for_a_line(watcher: JsonlWatcher) -> None:
        with pytest.raises(trio.ClosedResourceError, match="InotifyHub was closed") as info:
            await anext(watcher)
        outcomes.append(str(info.value))
        await watcher.aclose()

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery, open_inotify_hub() as hub:
            for n in range(3):
                watcher = await on_hub(hub, tmp_path / f"{n}" / "s.jsonl").__aenter__()
                nursery.start_soon(wait_for_a_line, watcher)
            await trio.testing.wait_all_tasks_blocked()
        assert len(outcomes) == 3
        with pytest.raises(trio.ClosedResourceError):
            async with on_hub(hub, tmp_path / "late.jsonl"):
                pytest.fail("entered")
    assert inotify_fds() == before


async def test_a_failing_hub_breaks_its_watchers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Failing(inotify_simple.INotify):  # type: ignore[misc]
        def read(self, timeout: int | None = None, read_delay: int | None = None) -> Any:
            raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(inotify_module, "INotify", Failing)
    path = tmp_path / "session.jsonl"
    with trio.fail_after(TIMEOUT):
        async with open_inotify_hub() as hub, on_hub(hub, path) as watcher:
            path.write_bytes(b"1\n")
            with pytest.raises(trio.BrokenResourceError) as info:
                await anext(watcher)
            assert isinstance(info.value.__cause__, OSError)
            with pytest.raises(trio.BrokenResourceError):
                async with on_hub(hub, tmp_path / "later.jsonl"):
                    pytest.fail("entered")


async def test_a_watcher_without_watches_left_polls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class NoWatches(inotify_simple.INotify):  # type: ignore[misc]
        def add_watch(self, path: object, mask: int) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(inotify_module, "INotify", NoWatches)
    path = tmp_path / "session.jsonl"
    with trio.fail_after(TIMEOUT):
        async with (
            open_inotify_hub() as hub,
            on_hub(hub, path, poll_interval=plain.POLL_INTERVAL) as watcher,
        ):
            assert watcher.polling
            assert hub.statistics().listeners == 0
            append(path, b"1\n")
            assert await anext(watcher) == "1"


async def test_a_hub_without_an_instance_makes_watchers_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_more_instances(**kwargs: object) -> None:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(inotify_module, "INotify", no_more_instances)
    path = tmp_path / "session.jsonl"
    before = inotify_fds()
    with trio.fail_after(TIMEOUT):
        async with open_inotify_hub() as hub:
            assert not hub.available
            with pytest.raises(OSError, match=os.strerror(errno.EMFILE)):
                hub.open_listener()
            async with on_hub(hub, path, poll_interval=plain.POLL_INTERVAL) as watcher:
                assert watcher.polling
                append(path, b"1\n")
                assert await anext(watcher) == "1"
            assert inotify_fds() == before


async def test_listener_misuse(tmp_path: Path, hub: InotifyHub) -> None:
    listener = hub.open_listener()
    with pytest.raises(ValueError, match="IN_ONESHOT"):
        listener.add_watch(str(tmp_path), IN_CREATE | int(inotify_simple.flags.ONESHOT))
    listener.rm_watch(12345)
    listener.close()
    listener.close()
    with pytest.raises(trio.ClosedResourceError):
        await listener.wait()
    with pytest.raises(trio.ClosedResourceError):
        listener.add_watch(str(tmp_path), IN_CREATE)
    assert "closed" in repr(listener)
    assert "listeners=0" in repr(hub)


# ---------------------------------------------------------------- the watcher suite, on a hub


@pytest.fixture
async def plain_tests_on_a_hub(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    async with open_inotify_hub() as hub:

        def make_watcher(path: Path, polling: bool, **kwargs: Any) -> JsonlWatcher:
            assert not polling
            return on_hub(hub, path, poll_interval=plain.POLL_INTERVAL, **kwargs)

        monkeypatch.setattr(plain, "make_watcher", make_watcher)
        yield


def _on_a_hub(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """*test* from test_watcher, in its inotify mode only, with every watcher on a hub."""

    @functools.wraps(test)
    async def wrapper(*args: Any, **kwargs: Any) -> None:
        await test(*args, **kwargs)

    marks = [
        mark
        for mark in getattr(test, "pytestmark", [])
        if not (mark.name == "parametrize" and mark.args[0] == "polling")
    ]
    wrapper.pytestmark = [  # type: ignore[attr-defined]
        *marks,
        pytest.mark.parametrize("polling", [False], ids=["hub"]).mark,
        pytest.mark.usefixtures("plain_tests_on_a_hub").mark,
    ]
    return wrapper


test_lines_written_by_another_process = _on_a_hub(plain.test_lines_written_by_another_process)
test_waits_for_the_file_and_its_missing_directories = _on_a_hub(
    plain.test_waits_for_the_file_and_its_missing_directories
)
test_file_created_together_with_its_directories = _on_a_hub(
    plain.test_file_created_together_with_its_directories
)
test_directory_removed_and_recreated_while_waiting = _on_a_hub(
    plain.test_directory_removed_and_recreated_while_waiting
)
test_directory_moved_away_then_replaced_while_waiting = _on_a_hub(
    plain.test_directory_moved_away_then_replaced_while_waiting
)
test_starts_at_an_offset_and_skips_the_history = _on_a_hub(
    plain.test_starts_at_an_offset_and_skips_the_history
)
test_partial_line_is_held_back = _on_a_hub(plain.test_partial_line_is_held_back)
test_undecodable_line_raises_and_iteration_goes_on = _on_a_hub(
    plain.test_undecodable_line_raises_and_iteration_goes_on
)
test_replaced_file_drains_the_old_one_then_raises = _on_a_hub(
    plain.test_replaced_file_drains_the_old_one_then_raises
)
test_deleted_and_recreated_file_raises = _on_a_hub(plain.test_deleted_and_recreated_file_raises)
test_unlinked_file_is_still_followed = _on_a_hub(plain.test_unlinked_file_is_still_followed)
test_truncated_file_raises = _on_a_hub(plain.test_truncated_file_raises)
test_cancelled_iteration_loses_no_line = _on_a_hub(plain.test_cancelled_iteration_loses_no_line)
test_aclose_twice_and_use_after_close = _on_a_hub(plain.test_aclose_twice_and_use_after_close)
test_aclose_from_another_task_wakes_the_iterator = _on_a_hub(
    plain.test_aclose_from_another_task_wakes_the_iterator
)
test_two_iterating_tasks_is_an_error = _on_a_hub(plain.test_two_iterating_tasks_is_an_error)
