"""JsonlWatcher, each behaviour on both the inotify path and the poll fallback."""

from __future__ import annotations

import errno
import functools
import itertools
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_trio import JsonlWatcher, _watcher
from claude_trio._errors import MessageParseError, SessionError

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and inotify")

TIMEOUT = 10
# Short, so the poll path keeps the property test fast; the default is 25 ms.
POLL_INTERVAL = 0.003

MODES = pytest.mark.parametrize("polling", [False, True], ids=["inotify", "poll"])


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture(autouse=True)
def no_leaked_fds() -> Iterator[None]:
    """Like conftest's leak check, which watches inotify fds, but for every fd (the file's too)."""
    before = open_fds()
    yield
    assert open_fds() <= before


def make_watcher(path: Path, polling: bool, **kwargs: Any) -> JsonlWatcher:
    return JsonlWatcher(path, force_poll=polling, poll_interval=POLL_INTERVAL, **kwargs)


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as file:
        file.write(data)


async def take(watcher: JsonlWatcher, count: int) -> list[str]:
    lines: list[str] = []
    if count:
        async for line in watcher:
            lines.append(line)
            if len(lines) == count:
                break
    return lines


async def forward(watcher: JsonlWatcher, send: trio.MemorySendChannel[str]) -> None:
    async with send:
        async for line in watcher:
            await send.send(line)


# ---------------------------------------------------------------- property: any chunking

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)
# ensure_ascii=False puts multi-byte UTF-8 in the stream, so some splits cut a character.
jsonl_lines = st.lists(json_values.map(lambda v: json.dumps(v, ensure_ascii=False)), max_size=12)


async def write_in_chunks(path: Path, chunks: list[bytes], delays: list[float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        for chunk, delay in zip(chunks, delays, strict=True):
            os.write(fd, chunk)
            await trio.sleep(delay)
    finally:
        os.close(fd)


def prepare(path: Path, layout: str) -> None:
    if layout != "nothing exists":
        path.parent.mkdir(parents=True)
    if layout == "file exists":
        path.write_bytes(b"")


@MODES
@settings(deadline=None, max_examples=60)
@given(
    lines=jsonl_lines,
    layout=st.sampled_from(["file exists", "directory exists", "nothing exists"]),
    data=st.data(),
)
async def test_any_chunking_yields_the_original_lines(
    polling: bool, lines: list[str], layout: str, data: st.DataObject
) -> None:
    stream = b"".join(line.encode() + b"\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=16), label="cuts"))
    bounds = [0, *cuts, len(stream)]
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    delays = data.draw(
        st.lists(st.floats(0, 0.002), min_size=len(chunks), max_size=len(chunks)), label="delays"
    )
    with tempfile.TemporaryDirectory() as tmp, trio.fail_after(TIMEOUT):
        path = Path(tmp, "projects", "-key", "session.jsonl")
        prepare(path, layout)
        async with make_watcher(path, polling) as watcher, trio.open_nursery() as nursery:
            nursery.start_soon(write_in_chunks, path, chunks, delays)
            assert await take(watcher, len(lines)) == lines
            assert watcher.offset == len(stream)
            assert watcher.line_number == len(lines)


@MODES
async def test_lines_written_by_another_process(tmp_path: Path, polling: bool) -> None:
    path = tmp_path / "session.jsonl"
    lines = [json.dumps({"n": n, "pad": "é" * n}, ensure_ascii=False) for n in range(200)]
    writer = (
        "import sys, time\n"
        "data = sys.stdin.buffer.read()\n"
        "with open(sys.argv[1], 'ab', buffering=0) as f:\n"
        "    for i in range(0, len(data), 777):\n"
        "        f.write(data[i:i + 777])\n"
        "        time.sleep(0.0005)\n"
    )
    stream = "".join(line + "\n" for line in lines).encode()
    with trio.fail_after(TIMEOUT):
        async with make_watcher(path, polling) as watcher, trio.open_nursery() as nursery:
            command = [sys.executable, "-c", writer, str(path)]
            nursery.start_soon(functools.partial(trio.run_process, command, stdin=stream))
            assert await take(watcher, len(lines)) == lines


# ---------------------------------------------------------------- waiting for the file


@MODES
async def test_waits_for_the_file_and_its_missing_directories(
    tmp_path: Path, polling: bool
) -> None:
    project = tmp_path / "config" / "projects" / "-home-user-x"
    path = project / "session.jsonl"
    send, receive = trio.open_memory_channel[str](0)
    with trio.fail_after(TIMEOUT):
        async with make_watcher(path, polling) as watcher, trio.open_nursery() as nursery:
            nursery.start_soon(forward, watcher, send)
            for directory in (project.parent.parent, project.parent, project, project / "memory"):
                await trio.testing.wait_all_tasks_blocked()
                directory.mkdir()
            await trio.testing.wait_all_tasks_blocked()
            append(path, b'{"first": 1}\n')
            assert await receive.receive() == '{"first": 1}'
            append(path, b'{"second": 2}\n')
            assert await receive.receive() == '{"second": 2}'
            nursery.cancel_scope.cancel()


@MODES
async def test_file_created_together_with_its_directories(tmp_path: Path, polling: bool) -> None:
    path = tmp_path / "a" / "b" / "c" / "session.jsonl"
    with trio.fail_after(TIMEOUT):
        async with make_watcher(path, polling) as watcher, trio.open_nursery() as nursery:
            nursery.start_soon(write_in_chunks, path, [b"1\n2\n"], [0.0])
            assert await take(watcher, 2) == ["1", "2"]


@MODES
async def test_directory_removed_and_recreated_while_waiting(tmp_path: Path, polling: bool) -> None:
    project = tmp_path / "project"
    project.mkdir()
    path = project / "session.jsonl"
    send, receive = trio.open_memory_channel[str](0)
    with trio.fail_after(TIMEOUT):
        async with make_watcher(path, polling) as watcher, trio.open_nursery() as nursery:
            nursery.start_soon(forward, watcher, send)
            await trio.testing.wait_all_tasks_blocked()
            project.rmdir()
            await trio.testing.wait_all_tasks_blocked()
            project.mkdir()
            await trio.testing.wait_all_tasks_blocked()
            append(path, b"x\n")
            assert await receive.receive() == "x"
            nursery.cancel_scope.cancel()


@MODES
async def test_directory_moved_away_then_replaced_while_waiting(
    tmp_path: Path, polling: bool
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    path = project / "session.jsonl"
    send, receive = trio.open_memory_channel[str](0)
    with trio.fail_after(TIMEOUT):
        async with make_watcher(path, polling) as watcher, trio.open_nursery() as nursery:
            nursery.start_soon(forward, watcher, send)
            await trio.testing.wait_all_tasks_blocked()
            project.rename(tmp_path / "old-project")
            await trio.testing.wait_all_tasks_blocked()
            (tmp_path / "old-project" / "session.jsonl").write_bytes(b"wrong\n")
            project.mkdir()
            await trio.testing.wait_all_tasks_blocked()
            project.rmdir()
            await trio.testing.wait_all_tasks_blocked()
            project.mkdir()
            await trio.testing.wait_all_tasks_blocked()
            append(path, b"right\n")
            assert await receive.receive() == "right"
            nursery.cancel_scope.cancel()


# ---------------------------------------------------------------- offsets and numbering


@MODES
async def test_starts_at_an_offset_and_skips_the_history(tmp_path: Path, polling: bool) -> None:
    path = tmp_path / "session.jsonl"
    history = b'{"old": 1}\n{"old": 2}\n'
    path.write_bytes(history)
    with trio.fail_after(TIMEOUT):
        async with make_watcher(path, polling, offset=len(history), line_number=2) as watcher:
            assert (watcher.offset, watcher.line_number) == (len(history), 2)
            append(path, b'{"new": 3}\n')
            assert await anext(watcher) == '{"new": 3}'
            assert (watcher.offset, watcher.line_number) == (len(history) + 11, 3)


@MODES
async def test_offset_in_the_middle_of_the_history(tmp_path: Path, polling: bool) -> None:
    path = tmp_path / "session.jsonl"
    path.write_bytes(b"1\n22\n333\n")
    with trio.fail_after(TIMEOUT):
        async with make_watcher(path, polling, offset=2, line_number=1) as watcher:
            append(path, b"4444\n")
            assert await take(watcher, 3) == ["22", "333", "4444"]
            assert (watcher.offset, watcher.line_number) == (len(b"1\n22\n333\n4444\n"), 4)


@pytest.mark.parametrize(("content", "offset"), [(b"12\n34\n", 4), (b"12\n", 4)])
async def test_offset_that_does_not_fit_the_file(
    tmp_path: Path, content: bytes, offset: int
) -> None:
    path = tmp_path / "session.jsonl"
    path.write_bytes(content)
    before = open_fds()
    with trio.fail_after(TIMEOUT), pytest.raises(SessionError):
        async with JsonlWatcher(path, offset=offset):
            pytest.fail("entered")
    assert open_fds() == before


@MODES
async def test_partial_line_is_held_back(tmp_path: Path, polling: bool) -> None:
    path = tmp_path / "session.jsonl"
    send, receive = trio.open_memory_channel[str](0)
    with trio.fail_after(TIMEOUT):
        async with make_watcher(path, polling) as watcher, trio.open_nursery() as nursery:
            nursery.start_soon(forward, watcher, send)
            append(path, '{"text": "d\u00e9'.encode()[:-1])
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.WouldBlock):
                receive.receive_nowait()
            assert watcher.offset == 0
            append(path, '{"text": "d\u00e9'.encode()[-1:] + b'j\xc3\xa0"}\n')
            assert await receive.receive() == '{"text": "d\u00e9j\u00e0"}'
            nursery.cancel_scope.cancel()


@MODES
async def test_blank_lines_are_yielded(tmp_path: Path, polling: bool) -> None:
    path = tmp_path / "session.jsonl"
    path.write_bytes(b"a\n\n\nb\n")
    with trio.fail_after(TIMEOUT):
        async with make_watcher(path, polling) as watcher:
            assert await take(watcher, 4) == ["a", "", "", "b"]
            assert watcher.line_number == 4


@MODES
async def test_very_long_line(tmp_path: Path, polling: bool) -> None:
    path = tmp_path / "session.jsonl"
    big = json.dumps({"content": "xé" * (3 * 1024 * 1024)}, ensure_ascii=False).encode()
    stream = big + b"\n" + b'{"after": true}\n'
    step = 100_003
    chunks = [stream[i : i + step] for i in range(0, len(stream), step)]
    with trio.fail_after(TIMEOUT):
        async with make_watcher(path, polling) as watcher, trio.open_nursery() as nursery:
            nursery.start_soon(write_in_chunks, path, chunks, [0.0] * len(chunks))
            lines = await take(watcher, 2)
    assert lines == [big.decode(), '{"after": true}']


@MODES
async def test_undecodable_line_raises_and_iteration_goes_on(tmp_path: Path, polling: bool) -> None:
    path = tmp_path / "session.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": "\xff\xfe"}\n{"c": 3}\n')
    with trio.fail_after(TIMEOUT):
        async with make_watcher(path, polling) as watcher:
            assert await anext(watcher) == '{"a": 1}'
            with pytest.raises(MessageParseError) as info:
                await anext(watcher)
            assert isinstance(info.value, ValueError)
            assert (info.value.path, info.value.line_number) == (str(path), 2)
            assert "\ufffd" in info.value.line
            assert await anext(watcher) == '{"c": 3}'
            assert watcher.line_number == 3


# ---------------------------------------------------------------- replacement and truncation


@MODES
async def test_replaced_file_drains_the_old_one_then_raises(tmp_path: Path, polling: bool) -> None:
    path = tmp_path / "session.jsonl"
    path.write_bytes(b"1\n")
    with trio.fail_after(TIMEOUT):
        async with make_watcher(path, polling) as watcher:
            assert await anext(watcher) == "1"
            append(path, b"2\n3-unfinished")
            replacement = tmp_path / "new.jsonl"
            replacement.write_bytes(b"other\n")
            replacement.replace(path)
            assert await anext(watcher) == "2"
            with pytest.raises(SessionError, match=r"replaced.*12 bytes"):
                await anext(watcher)
            with pytest.raises(SessionError, match="replaced"):
                await anext(watcher)


@MODES
async def test_deleted_and_recreated_file_raises(tmp_path: Path, polling: bool) -> None:
    path = tmp_path / "session.jsonl"
    path.write_bytes(b"1\n")
    with trio.fail_after(TIMEOUT):
        async with make_watcher(path, polling) as watcher:
            assert await anext(watcher) == "1"
            path.unlink()
            path.write_bytes(b"1\n2\n")
            with pytest.raises(SessionError, match="replaced"):
                await anext(watcher)


@MODES
async def test_unlinked_file_is_still_followed(tmp_path: Path, polling: bool) -> None:
    path = tmp_path / "session.jsonl"
    with trio.fail_after(TIMEOUT), path.open("ab", buffering=0) as writer:
        async with make_watcher(path, polling) as watcher:
            writer.write(b"1\n")
            assert await anext(watcher) == "1"
            path.unlink()
            writer.write(b"2\n")
            assert await anext(watcher) == "2"


@MODES
async def test_truncated_file_raises(tmp_path: Path, polling: bool) -> None:
    path = tmp_path / "session.jsonl"
    path.write_bytes(b"1\n2\n")
    with trio.fail_after(TIMEOUT):
        async with make_watcher(path, polling) as watcher:
            assert await take(watcher, 2) == ["1", "2"]
            os.truncate(path, 1)
            with pytest.raises(SessionError, match="truncated"):
                await anext(watcher)


async def test_path_that_is_a_directory(tmp_path: Path) -> None:
    before = open_fds()
    with trio.fail_after(TIMEOUT), pytest.raises(SessionError, match="not a regular file"):
        async with JsonlWatcher(tmp_path):
            pytest.fail("entered")
    assert open_fds() == before


# ---------------------------------------------------------------- cancellation and closing


@MODES
@pytest.mark.parametrize("exists", [False, True], ids=["missing", "present"])
async def test_cancel_while_waiting_closes_every_fd(
    tmp_path: Path, polling: bool, exists: bool
) -> None:
    path = tmp_path / "sub" / "session.jsonl"
    if exists:
        path.parent.mkdir()
        path.write_bytes(b"1\n")
    before = open_fds()

    async def follow() -> None:
        async with make_watcher(path, polling) as watcher:
            async for _line in watcher:
                pass

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow)
            await trio.testing.wait_all_tasks_blocked()
            assert len(open_fds()) == len(before) + (not polling) + exists
            nursery.cancel_scope.cancel()
    assert open_fds() == before


@MODES
async def test_cancelled_iteration_loses_no_line(tmp_path: Path, polling: bool) -> None:
    path = tmp_path / "session.jsonl"
    with trio.fail_after(TIMEOUT):
        async with make_watcher(path, polling) as watcher:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(anext, watcher)
                await trio.testing.wait_all_tasks_blocked()
                nursery.cancel_scope.cancel()
            append(path, b"1\n2\n")
            assert await anext(watcher) == "1"
            with trio.CancelScope() as scope:
                scope.cancel()
                await anext(watcher)
            assert await anext(watcher) == "2"


@MODES
async def test_aclose_twice_and_use_after_close(tmp_path: Path, polling: bool) -> None:
    path = tmp_path / "session.jsonl"
    path.write_bytes(b"1\n")
    before = open_fds()
    with trio.fail_after(TIMEOUT):
        watcher = make_watcher(path, polling)
        assert await anext(watcher) == "1"
        await watcher.aclose()
        await watcher.aclose()
        assert open_fds() == before
        with pytest.raises(trio.ClosedResourceError):
            await anext(watcher)
        with pytest.raises(trio.ClosedResourceError):
            async with watcher:
                pytest.fail("entered")


@MODES
async def test_aclose_from_another_task_wakes_the_iterator(tmp_path: Path, polling: bool) -> None:
    path = tmp_path / "session.jsonl"
    with trio.fail_after(TIMEOUT):
        watcher = make_watcher(path, polling)

        async def close_when_blocked() -> None:
            await trio.testing.wait_all_tasks_blocked()
            await watcher.aclose()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(close_when_blocked)
            with pytest.raises(trio.ClosedResourceError):
                await anext(watcher)


@MODES
async def test_two_iterating_tasks_is_an_error(tmp_path: Path, polling: bool) -> None:
    path = tmp_path / "session.jsonl"
    with trio.fail_after(TIMEOUT):
        async with make_watcher(path, polling) as watcher, trio.open_nursery() as nursery:
            nursery.start_soon(anext, watcher)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BusyResourceError):
                await anext(watcher)
            nursery.cancel_scope.cancel()


# ---------------------------------------------------------------- falling back to polling


async def test_falls_back_to_polling_without_inotify_instances(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_more_instances(**kwargs: object) -> None:
        raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))

    monkeypatch.setattr(_watcher, "INotify", no_more_instances)
    path = tmp_path / "session.jsonl"
    with trio.fail_after(TIMEOUT):
        async with JsonlWatcher(path, poll_interval=POLL_INTERVAL) as watcher:
            assert watcher.polling
            append(path, b"1\n")
            assert await anext(watcher) == "1"


async def test_falls_back_to_polling_without_inotify_watches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import inotify_simple

    class NoWatches(inotify_simple.INotify):  # type: ignore[misc]
        def add_watch(self, path: object, mask: int) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_watcher, "INotify", NoWatches)
    path = tmp_path / "session.jsonl"
    before = open_fds()
    with trio.fail_after(TIMEOUT):
        async with JsonlWatcher(path, poll_interval=POLL_INTERVAL) as watcher:
            assert watcher.polling
            assert open_fds() == before
            append(path, b"1\n")
            assert await anext(watcher) == "1"


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="offset"):
        JsonlWatcher("x", offset=-1)
    with pytest.raises(ValueError, match="line_number"):
        JsonlWatcher("x", line_number=-1)
    for interval in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="poll_interval"):
            JsonlWatcher("x", poll_interval=interval)


def test_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    watcher = JsonlWatcher("s.jsonl")
    assert watcher.path == str(tmp_path / "s.jsonl")
    assert "s.jsonl" in repr(watcher)
