"""What the HTTP gateway costs, and how it carries many clients.

All on the real CLI against the mock API, which answers every turn with ``ok``; the CLI
runs in an isolated config in a temporary directory (never ``~/.claude``), found through
``CLAUDE_TRIO_CLI`` or ``PATH``. The clients are the official ``anthropic`` SDK
(``AsyncAnthropic``, no retries). Times are ``time.perf_counter()`` around each call.

1. Overhead per request. One gateway; two conversations run side by side, each on its
   own live process: one through the SDK and the gateway, one by calling
   ``gateway.backend.complete()`` directly on the same backend. Each round sends the next
   turn of both; after a warm-up, the medians are compared. The difference is what HTTP,
   JSON and the gateway add to a warm turn.
2. Concurrency. ``--clients`` clients (20 by default), each with its own history, send
   ``--turns`` turns each at the same time through the gateway (``max_live`` = clients).
   Printed: throughput (requests per second over the whole run), p50/p99/max latency of
   the warm turns and of the first ones (a spawn each), and the peak RSS of the whole
   tree (this Python process plus every ``claude`` under it), sampled every 0.2 s.

Run: ``python benchmarks/bench_gateway.py [--clients N] [--turns N] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anthropic
import trio

from claude_trio import BackendOptions, ResultMessage, find_cli
from claude_trio._gateway import Gateway, GatewayOptions, open_gateway
from claude_trio.testing import (
    MessageReply,
    RecordedRequest,
    isolated_config,
    open_mock_anthropic_api,
    text_reply,
)

TOKEN = "bench-token-0123456789"
STEP_LIMIT = 300.0


def answer_ok(request: RecordedRequest) -> MessageReply:
    """The mock's answer to every turn."""
    return text_reply("ok")


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value at *fraction* of the sorted *values* (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def tree_rss_kb() -> int:
    """VmRSS summed over this process and all its descendants, in kB."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    total, todo = 0, [os.getpid()]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def sdk(gateway: Gateway) -> anthropic.AsyncAnthropic:
    """A client of *gateway*."""
    return anthropic.AsyncAnthropic(
        base_url=gateway.base_url, api_key=TOKEN, max_retries=0, timeout=STEP_LIMIT
    )


async def sdk_turn(client: anthropic.AsyncAnthropic, history: list[dict[str, Any]]) -> float:
    """Send *history* through the gateway; append the reply; return the seconds it took."""
    started = time.perf_counter()
    with trio.fail_after(STEP_LIMIT):
        reply = await client.messages.create(
            model="sonnet",
            max_tokens=100,
            messages=history,  # type: ignore[arg-type]
        )
    took = time.perf_counter() - started
    history.append({"role": "assistant", "content": [b.model_dump() for b in reply.content]})
    return took


async def direct_turn(gateway: Gateway, history: list[dict[str, Any]]) -> float:
    """Send *history* to the gateway's backend directly; append the reply."""
    started = time.perf_counter()
    text = ""
    with trio.fail_after(STEP_LIMIT):
        async for event in gateway.backend.complete(history, model="sonnet"):
            if isinstance(event, ResultMessage):
                break
            for block in getattr(event, "content", ()):
                text += getattr(block, "text", "") or ""
    took = time.perf_counter() - started
    history.append({"role": "assistant", "content": text})
    return took


async def bench_overhead(backend: BackendOptions, rounds: int, warmup: int) -> None:
    """Part 1: a warm turn through the gateway against the same turn on the backend."""
    async with open_gateway(backend, GatewayOptions(tokens={TOKEN: "bench"})) as gateway:
        async with sdk(gateway) as client:
            via_gateway: list[float] = []
            direct: list[float] = []
            one: list[dict[str, Any]] = []
            two: list[dict[str, Any]] = []
            for index in range(rounds + warmup):
                one.append({"role": "user", "content": f"gateway turn {index}"})
                two.append({"role": "user", "content": f"direct turn {index}"})
                took_gateway = await sdk_turn(client, one)
                took_direct = await direct_turn(gateway, two)
                if index >= warmup:
                    via_gateway.append(took_gateway)
                    direct.append(took_direct)
        spawned = gateway.backend.statistics().spawned
    gateway_median = statistics.median(via_gateway)
    direct_median = statistics.median(direct)
    print(
        f"1. overhead per warm request ({rounds} rounds after {warmup} warm-up, {spawned} spawns)"
    )
    print(f"   backend.complete() direct : median {direct_median * 1000:7.1f} ms")
    print(f"   SDK -> gateway -> backend : median {gateway_median * 1000:7.1f} ms")
    print(f"   gateway overhead          : {(gateway_median - direct_median) * 1000:+7.1f} ms")


async def bench_concurrency(backend: BackendOptions, clients: int, turns: int) -> None:
    """Part 2: many clients on their own histories at once."""
    first: list[float] = []
    warm: list[float] = []
    peak = [tree_rss_kb()]

    async def sample(stop: trio.Event) -> None:
        while not stop.is_set():
            peak.append(tree_rss_kb())
            with trio.move_on_after(0.2):
                await stop.wait()

    async def client_run(gateway: Gateway, index: int) -> None:
        async with sdk(gateway) as client:
            history: list[dict[str, Any]] = []
            for turn in range(turns):
                history.append({"role": "user", "content": f"client {index} turn {turn}"})
                (warm if turn else first).append(await sdk_turn(client, history))

    options = GatewayOptions(tokens={TOKEN: "bench"})
    async with open_gateway(backend, options) as gateway:
        stop = trio.Event()
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sample, stop)
            async with trio.open_nursery() as talkers:
                for index in range(clients):
                    talkers.start_soon(client_run, gateway, index)
            wall = time.perf_counter() - started
            stop.set()
        stats = gateway.backend.statistics()
    requests = clients * turns
    print(f"2. {clients} concurrent clients x {turns} turns ({stats.spawned} spawns)")
    print(f"   throughput : {requests / wall:6.2f} requests/s ({requests} in {wall:.1f} s)")
    for name, values in (("first turn", first), ("warm turn ", warm)):
        if values:
            print(
                f"   {name} : p50 {percentile(values, 0.5) * 1000:7.0f} ms"
                f"  p99 {percentile(values, 0.99) * 1000:7.0f} ms"
                f"  max {max(values) * 1000:7.0f} ms"
            )
    print(f"   peak RSS   : {max(peak) / 1024:7.0f} MiB (this process and every claude)")


async def main(args: argparse.Namespace) -> None:
    """Run both parts against one mock API."""
    cli = str(find_cli())
    async with open_mock_anthropic_api(handler=answer_ok) as api:
        with tempfile.TemporaryDirectory(prefix="claude-trio-bench-") as scratch:
            config = isolated_config(scratch, base_url=api.base_url)

            def options(max_live: int) -> BackendOptions:
                return BackendOptions(
                    cwd=config.cwd,
                    env=config.env,
                    cli_path=cli,
                    dangerously_skip_permissions=True,
                    max_live=max_live,
                    pool_timeout=STEP_LIMIT,
                )

            print(f"claude at {cli}; {os.cpu_count()} CPUs")
            await bench_overhead(options(2), args.rounds, warmup=2)
            await bench_concurrency(options(args.clients), args.clients, args.turns)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=10)
    trio.run(main, parser.parse_args())
