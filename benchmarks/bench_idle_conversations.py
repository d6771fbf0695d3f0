"""What idle conversations cost the Python process: CPU per second, as a share of a core.

One `ClaudeCodeBackend` opens N conversations (one turn each, concurrently, so N live
``claude`` processes with an idle input box), waits ``--settle`` seconds for the CLIs'
after-start work to end, then measures the worker's own CPU time
(``time.process_time()``, every thread, not the ``claude`` children) over a wall-clock
``--window``, with the bytes the CLIs drew meanwhile. The backend has one inotify
instance for all N session files (counted from ``/proc/self/fd``).

The mock API runs in the parent process and the backend in a worker of its own, so the
figure is the library's alone. The real CLI takes about 250 MB of RSS per idle process,
so a 2-core, 23 GB machine runs 20 of them; the fake CLI (``claude_trio.testing``, a
small Python script with the same TUI chrome) runs 100.

Run: ``python benchmarks/bench_idle_conversations.py [--cli real|fake] [-n N]
[--window SECONDS] [--settle SECONDS] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

#: The worker's whole run is bounded by this many seconds beyond the window.
LIMIT = 600


def inotify_instances() -> int:
    """The inotify descriptors this process holds."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{name}") == "anon_inode:inotify"
        except OSError:
            continue
    return count


async def worker(spec: dict[str, Any]) -> None:
    """Open N conversations, let them idle, print the measurement as one JSON line."""
    import claude_trio._screen as screen_module
    from claude_trio import BackendOptions, ClaudeCodeBackend

    drawn = [0]
    feed = screen_module.TerminalScreen.feed

    def counting_feed(self: screen_module.TerminalScreen, data: bytes) -> None:
        drawn[0] += len(data)
        feed(self, data)

    screen_module.TerminalScreen.feed = counting_feed  # type: ignore[method-assign]
    count = spec["n"]
    options = BackendOptions(
        cwd=spec["cwd"],
        env=spec["env"],
        cli_path=spec["cli"],
        dangerously_skip_permissions=True,
        idle_ttl=None,
        max_live=count,
        startup_timeout=300,
    )
    with trio.fail_after(LIMIT + spec["window"] + spec["settle"]):
        async with ClaudeCodeBackend(options) as backend:

            async def one(number: int) -> None:
                events = backend.complete([{"role": "user", "content": f"conversation {number}"}])
                async for _ in events:
                    pass

            opening = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for number in range(count):
                    nursery.start_soon(one, number)
            opened = time.perf_counter() - opening
            await trio.sleep(spec["settle"])
            live = backend.statistics().live
            instances = inotify_instances()
            drawn_before = drawn[0]
            cpu, wall = time.process_time(), time.perf_counter()
            await trio.sleep(spec["window"])
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(
        json.dumps(
            {
                "live": live,
                "opened": opened,
                "cpu": cpu,
                "wall": wall,
                "drawn": drawn[0] - drawn_before,
                "inotify": instances,
            }
        )
    )


async def parent(args: argparse.Namespace) -> None:
    from claude_trio import find_cli
    from claude_trio.testing import (
        isolated_config,
        open_mock_anthropic_api,
        text_reply,
        write_fake_cli,
    )

    async with open_mock_anthropic_api(handler=lambda _: text_reply("ok")) as api:
        with tempfile.TemporaryDirectory(prefix="claude-trio-bench-idle-") as tmp:
            root = Path(tmp)
            (root / "fake").mkdir()
            (root / "config").mkdir()
            cli = write_fake_cli(root / "fake") if args.cli == "fake" else find_cli()
            config = isolated_config(root / "config", base_url=api.base_url)
            spec = {
                "cwd": str(config.cwd),
                "env": dict(config.env),
                "cli": str(cli),
                "n": args.n,
                "window": args.window,
                "settle": args.settle,
            }
            done = await trio.run_process(
                [sys.executable, __file__, "--worker"],
                stdin=json.dumps(spec).encode(),
                capture_stdout=True,
                env={**os.environ, **config.env},
            )
    result = json.loads(done.stdout.decode().strip().splitlines()[-1])
    share = 100 * result["cpu"] / result["wall"]
    print(
        f"{args.cli} CLI, {result['live']} idle conversations (opened in "
        f"{result['opened']:.1f} s, {args.settle:.0f} s to settle), one inotify instance "
        f"for them: {result['inotify'] == 1}\n"
        f"   library CPU over {result['wall']:.1f} s: {result['cpu'] * 1000:.1f} ms = "
        f"{share:.3f} % of a core ({share / result['live']:.4f} % per conversation); "
        f"the CLIs drew {result['drawn']} bytes meanwhile"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli", choices=("real", "fake"), default="fake")
    parser.add_argument("-n", type=int, help="conversations (default: 100 fake, 20 real)")
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds before")
    parser.add_argument("--quick", action="store_true", help="10 conversations, 5 s")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        trio.run(worker, json.loads(sys.stdin.read()))
        return
    if args.quick:
        args.n, args.window, args.settle = args.n or 10, 5.0, 3.0
    args.n = args.n or (100 if args.cli == "fake" else 20)
    trio.run(parent, args)


if __name__ == "__main__":
    main()
