"""CPU cost of idle `JsonlWatcher` instances.

Starts 100 watchers, each iterated by its own task: half follow an existing, idle session
file, half wait for a file whose directory does not exist yet. Once every task is blocked,
it measures the process's CPU time (``time.process_time()``, user + system, cross-checked
with ``resource.getrusage``) over a wall-clock window and prints it as a percentage of
one core. Then it does the same with every watcher on one shared inotify instance
(`open_inotify_hub`), and with the poll fallback, for comparison.

Run: ``python benchmarks/bench_idle_watchers.py [--quick]``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import trio
import trio.testing

from claude_trio import InotifyHub, JsonlWatcher, open_inotify_hub

WATCHERS = 100


async def follow(watcher: JsonlWatcher) -> None:
    async with watcher:
        async for _line in watcher:
            pass


def rusage_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def make_watchers(root: Path, *, poll: bool, hub: InotifyHub | None) -> list[JsonlWatcher]:
    root.mkdir()
    watchers = []
    for n in range(WATCHERS):
        if n % 2:
            path = root / f"missing-{n}" / "session.jsonl"
        else:
            path = root / f"idle-{n}.jsonl"
            path.write_bytes(b'{"type": "user"}\n' * 10)
        watchers.append(JsonlWatcher(path, force_poll=poll, inotify_hub=hub))
    return watchers


async def measure(root: Path, seconds: float, *, poll: bool, hub: InotifyHub | None = None) -> None:
    watchers = make_watchers(root, poll=poll, hub=hub)
    async with trio.open_nursery() as nursery:
        for watcher in watchers:
            nursery.start_soon(follow, watcher)
        await trio.testing.wait_all_tasks_blocked()
        polling = sum(watcher.polling for watcher in watchers)
        wall0, cpu0, rusage0 = time.perf_counter(), time.process_time(), rusage_seconds()
        await trio.sleep(seconds)
        wall = time.perf_counter() - wall0
        cpu, rusage = time.process_time() - cpu0, rusage_seconds() - rusage0
        nursery.cancel_scope.cancel()
    mode = "poll 25 ms" if poll else "one hub" if hub is not None else "inotify"
    print(
        f"{mode:<10} {WATCHERS} watchers ({polling} polling) over {wall:.2f} s: "
        f"CPU {cpu * 1000:.1f} ms = {100 * cpu / wall:.3f} % of one core "
        f"(getrusage: {100 * rusage / wall:.3f} %)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 2 s window instead of 10 s")
    args = parser.parse_args()
    seconds = 2.0 if args.quick else 10.0
    print(f"python {sys.version.split()[0]}, trio {trio.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        await measure(Path(tmp, "a"), seconds, poll=False)
        async with open_inotify_hub() as hub:
            await measure(Path(tmp, "c"), seconds, poll=False, hub=hub)
        await measure(Path(tmp, "b"), seconds, poll=True)


if __name__ == "__main__":
    trio.run(main)
