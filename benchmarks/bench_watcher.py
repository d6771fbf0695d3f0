"""Append-to-yield latency of `JsonlWatcher`.

How it is measured: a writer takes ``time.monotonic_ns()`` just before each ``write()``
of one ~1 KB JSON line and puts that timestamp in the line; the reader takes
``time.monotonic_ns()`` the moment ``async for`` hands it the line, before parsing it,
and records the difference. ``CLOCK_MONOTONIC`` is shared by all processes, so the
writer can be another process.

Scenarios:

* ``inotify, writer process``: a separate Python process appends one line every
  ``--gap`` seconds (default 0.5 ms), like the CLI appending to its session file.
* ``inotify, writer task``: a task in the same trio run writes one line, then waits for
  the reader to acknowledge it before the next (ping-pong; no thread).
* ``poll, writer process``: as the first, with the poll fallback at its default interval,
  on fewer appends.

Run: ``python benchmarks/bench_watcher.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

from claude_trio import JsonlWatcher

_PAD = "x" * 1000

_WRITER = """
import json, os, sys, time
path, count, gap, pad = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), "x" * 1000
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
for i in range(count):
    time.sleep(gap)
    t0 = time.monotonic_ns()
    os.write(fd, ('{"t0": %d, "i": %d, "pad": "%s"}\\n' % (t0, i, pad)).encode())
os.close(fd)
"""


def summarise(name: str, latencies_ns: list[int]) -> None:
    ms = sorted(value / 1e6 for value in latencies_ns)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    print(
        f"{name:<28} n={len(ms):>6}  p50={cuts[49]:7.3f} ms  p99={cuts[98]:7.3f} ms  "
        f"mean={statistics.fmean(ms):7.3f} ms  max={ms[-1]:7.3f} ms"
    )


def empty(path: Path) -> None:
    path.write_bytes(b"")


async def with_writer_process(path: Path, count: int, gap: float, *, poll: bool) -> list[int]:
    empty(path)
    latencies: list[int] = []
    async with JsonlWatcher(path, force_poll=poll) as watcher, trio.open_nursery() as nursery:
        command = [sys.executable, "-c", _WRITER, str(path), str(count), str(gap)]
        nursery.start_soon(trio.run_process, command)
        async for line in watcher:
            arrived = time.monotonic_ns()
            latencies.append(arrived - json.loads(line)["t0"])
            if len(latencies) == count:
                break
    return latencies


async def with_writer_task(path: Path, count: int) -> list[int]:
    empty(path)
    latencies: list[int] = []
    ack_send, ack_receive = trio.open_memory_channel[None](0)

    async def write_lines() -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        try:
            for i in range(count):
                t0 = time.monotonic_ns()
                os.write(fd, f'{{"t0": {t0}, "i": {i}, "pad": "{_PAD}"}}\n'.encode())
                await ack_receive.receive()
        finally:
            os.close(fd)

    async with JsonlWatcher(path) as watcher, trio.open_nursery() as nursery:
        nursery.start_soon(write_lines)
        async for line in watcher:
            arrived = time.monotonic_ns()
            latencies.append(arrived - json.loads(line)["t0"])
            await ack_send.send(None)
            if len(latencies) == count:
                break
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer appends, for smoke runs")
    parser.add_argument("--gap", type=float, default=0.0005, help="seconds between appends")
    args = parser.parse_args()
    appends, poll_appends = (1000, 100) if args.quick else (10_000, 500)
    print(f"python {sys.version.split()[0]}, trio {trio.__version__}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "session.jsonl")
        summarise(
            "inotify, writer process",
            await with_writer_process(path, appends, args.gap, poll=False),
        )
        summarise("inotify, writer task", await with_writer_task(path, appends))
        summarise(
            "poll 25 ms, writer process",
            await with_writer_process(path, poll_appends, args.gap * 10, poll=True),
        )


if __name__ == "__main__":
    trio.run(main)
