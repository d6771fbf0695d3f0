"""What `ClaudeCodeBackend` costs: turn overhead, re-seed time, memory per live process.

All on the real CLI against the mock API, which answers every turn with the one word
``ok``; the CLI runs in an isolated config in a temporary directory (never
``~/.claude``), found through ``CLAUDE_TRIO_CLI`` or ``PATH``. Times are
``time.perf_counter()`` around our calls.

1. Warm turn latency. One backend and one raw `open_conversation` live side by side; each
   round sends the next turn of a growing history to ``backend.complete(messages)`` and
   the same text to ``conversation.turn(text)``, and times each from the call to its
   `ResultMessage`. The first rounds are a warm-up. The backend's overhead is the
   difference (fingerprinting the history, finding the slot, its bookkeeping); since that
   is within the noise, the fingerprint (`hash_history`) is also timed alone.
2. Re-seed time. For each ``injection_mode`` and a history of 10, 100 and 1000 messages
   (alternating user/assistant, ~100 characters each) plus a new prompt, a fresh backend
   is asked to continue it: the time from ``complete()`` to the `ResultMessage`,
   spawn included. "fresh" is a one-message conversation (no history), and "spawn alone"
   is entering ``open_conversation``, for comparison.
3. Memory. A backend with ``max_live=4`` gets 1, 2, then 4 one-turn conversations. For
   each step it prints the RSS (``VmRSS`` of ``/proc/<pid>/status``) and the PSS
   (``/proc/<pid>/smaps_rollup``; shared pages split between sharers) summed over each
   ``claude`` process tree, and the Python side's growth: ``tracemalloc``'s traced
   memory, leaving out what the in-process mock API and its HTTP server allocate.
   Sampled after the CLIs have been idle for ``--settle`` seconds.

Run: ``python benchmarks/bench_backend.py [--quick] [--only 1|2|3 …]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

from claude_trio import (
    PINNED_CLI_VERSION,
    BackendOptions,
    Event,
    ResultMessage,
    find_cli,
    hash_history,
    open_backend,
    open_conversation,
)
from claude_trio.testing import (
    MessageReply,
    MockAnthropicAPI,
    RecordedRequest,
    isolated_config,
    open_mock_anthropic_api,
    text_reply,
)

#: Every claude this benchmark starts (and its children) carries this variable.
MARK_VAR = "CLAUDE_TRIO_BENCH_MARK"
#: A bound on each measured step, so a wedged CLI fails the benchmark instead of hanging.
STEP_LIMIT = 300.0
#: Allocations by these files belong to the in-process mock API, not to claude_trio.
MOCK_FILES = ("*/claude_trio/testing/*", "*/hypercorn/*", "*/h11/*", "*/h2/*", "*/wsproto/*")

Message = Mapping[str, Any]


def answer_ok(request: RecordedRequest) -> MessageReply:
    """The mock's answer to every turn."""
    return text_reply("ok")


def quantiles(seconds: Sequence[float]) -> tuple[float, float]:
    """Median and p90 in milliseconds."""
    ms = [value * 1000 for value in seconds]
    p90 = statistics.quantiles(ms, n=10, method="inclusive")[8] if len(ms) > 1 else ms[0]
    return statistics.median(ms), p90


def history(size: int) -> list[Message]:
    """*size* alternating user/assistant messages, then a new user prompt."""
    filler = "lorem ipsum dolor sit amet " * 3
    messages: list[Message] = [
        {
            "role": "user" if number % 2 == 0 else "assistant",
            "content": f"message {number}: {filler}".strip(),
        }
        for number in range(size)
    ]
    messages.append({"role": "user", "content": "and now?"})
    return messages


async def timed(events: AsyncGenerator[Event, None]) -> tuple[float, float]:
    """Seconds until the `ResultMessage` of *events* arrived, and until they ended.

    Reads to the end: the backend's generator releases its process only when it
    finishes (or is closed), not when it hands out the `ResultMessage`.
    """
    started = time.perf_counter()
    result = None
    async for event in events:
        if isinstance(event, ResultMessage):
            result = time.perf_counter() - started
    assert result is not None, "the turn ended without a ResultMessage"
    return result, time.perf_counter() - started


# --- 1. warm turn latency ----------------------------------------------------------------------


async def bench_overhead(options: BackendOptions, turns: int, warmup: int) -> None:
    print(f"\n1. warm turn latency: {warmup} warm-up rounds, then {turns} measured rounds")
    # (to ResultMessage, to end of the events) per measured round, for each path.
    via_backend: list[tuple[float, float]] = []
    via_conversation: list[tuple[float, float]] = []
    messages: list[Message] = []
    async with (
        open_backend(options) as backend,
        open_conversation(options.conversation_options()) as conversation,
    ):
        for number in range(warmup + turns):
            text = f"turn {number}"
            messages.append({"role": "user", "content": text})
            with trio.fail_after(STEP_LIMIT):
                # Alternate which goes first, so neither always follows the other's
                # after-turn work (the CLIs share the CPUs).
                if number % 2:
                    took_conversation = await timed(conversation.turn(text))
                    took_backend = await timed(backend.complete(messages))
                else:
                    took_backend = await timed(backend.complete(messages))
                    took_conversation = await timed(conversation.turn(text))
            messages.append({"role": "assistant", "content": f"echo: {text}"})
            if number >= warmup:
                via_backend.append(took_backend)
                via_conversation.append(took_conversation)
        spawned = backend.statistics().spawned
    assert spawned == 1, f"the backend started {spawned} processes for one conversation"
    print(
        f"   {'path':<38} {'to ResultMessage ms':>19} {'to end of events ms':>19}\n"
        f"   {'':<38} {'median':>9} {'p90':>9} {'median':>9} {'p90':>9}"
    )
    for name, pairs in [
        ("backend.complete(messages)", via_backend),
        ("open_conversation(...).turn(text)", via_conversation),
    ]:
        result_median, result_p90 = quantiles([pair[0] for pair in pairs])
        end_median, end_p90 = quantiles([pair[1] for pair in pairs])
        print(
            f"   {name:<38} {result_median:>9.1f} {result_p90:>9.1f} "
            f"{end_median:>9.1f} {end_p90:>9.1f}"
        )
    for index, what in enumerate(["ResultMessage", "end of events"]):
        ours = [pair[index] for pair in via_backend]
        theirs = [pair[index] for pair in via_conversation]
        medians = (statistics.median(ours) - statistics.median(theirs)) * 1000
        paired = statistics.median(b - c for b, c in zip(ours, theirs, strict=True)) * 1000
        print(
            f"   backend overhead to {what}: {medians:+.1f} ms (difference of medians), "
            f"{paired:+.1f} ms (median of per-round differences)"
        )
    print(f"   (the history grew to {len(messages)} messages)")
    # The backend's own CPU work per turn is mostly fingerprinting the history (twice: to
    # find the slot, and to re-key it after the turn); time it alone, without the noise.
    for size in (len(messages), 1000):
        sample = history(size)
        runs = 200
        started = time.perf_counter()
        for _ in range(runs):
            hash_history(sample[:-1])
        each = (time.perf_counter() - started) / runs * 1e6
        print(f"   hash_history of {size} messages: {each:.0f} µs")


# --- 2. re-seed time ---------------------------------------------------------------------------


async def time_spawn(options: BackendOptions) -> float:
    started = time.perf_counter()
    async with open_conversation(options.conversation_options()):
        return time.perf_counter() - started


async def time_reseed(
    options: BackendOptions, messages: Sequence[Message], api: MockAnthropicAPI
) -> float:
    async with open_backend(options) as backend:
        took, _ = await timed(backend.complete(messages))
        stats = backend.statistics()
    assert stats.spawned == 1
    assert stats.reseeded == (len(messages) > 1)
    # The model must have been sent the whole history, not a part of it.
    sent = json.dumps(api.main_requests[-1].body)
    assert all(str(message["content"]) in sent for message in messages)
    return took


async def bench_reseed(
    options: BackendOptions, api: MockAnthropicAPI, sizes: Sequence[int], repeats: int
) -> None:
    print(f"\n2. re-seed: complete() to ResultMessage, spawn included; {repeats} runs each")
    print(f"   {'case':<38} {'median ms':>9} {'p90 ms':>9}")
    rows: list[tuple[str, list[float]]] = []
    spawns = []
    for _ in range(repeats):
        with trio.fail_after(STEP_LIMIT):
            spawns.append(await time_spawn(options))
    rows.append(("spawn alone (open_conversation)", spawns))
    fresh = []
    for _ in range(repeats):
        with trio.fail_after(STEP_LIMIT):
            fresh.append(await time_reseed(options, history(0), api))
    rows.append(("fresh (no history)", fresh))
    for name, seconds in rows:
        median, p90 = quantiles(seconds)
        print(f"   {name:<38} {median:>9.1f} {p90:>9.1f}")
    for mode in ("native_jsonl", "concat_message"):
        mode_options = attrs.evolve(options, injection_mode=mode)
        for size in sizes:
            messages = history(size)
            took = []
            for _ in range(repeats):
                with trio.fail_after(STEP_LIMIT):
                    took.append(await time_reseed(mode_options, messages, api))
            median, p90 = quantiles(took)
            print(f"   {f'{mode}, {size} messages':<38} {median:>9.1f} {p90:>9.1f}")


# --- 3. memory ---------------------------------------------------------------------------------


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _field_kb(text: str | None, name: str) -> int:
    for line in (text or "").splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def marked_processes(mark: str) -> dict[int, int]:
    """Map each live process carrying ``MARK_VAR=<mark>`` to its parent's pid."""
    needle = f"{MARK_VAR}={mark}".encode()
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes().split(b"\0")
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        if needle in environ:
            found[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    return found


def trees(mark: str) -> dict[int, list[int]]:
    """Group the marked processes by the claude they descend from (our direct child)."""
    parents = marked_processes(mark)
    grouped: dict[int, list[int]] = {}
    for pid in parents:
        root = pid
        while parents.get(root) in parents:
            root = parents[root]
        if parents[root] == os.getpid():
            grouped.setdefault(root, []).append(pid)
    return grouped


def tree_memory_kb(pids: Sequence[int]) -> tuple[int, int]:
    """Summed VmRSS and Pss of *pids*, in kB."""
    rss = sum(_field_kb(_read(f"/proc/{pid}/status"), "VmRSS") for pid in pids)
    pss = sum(_field_kb(_read(f"/proc/{pid}/smaps_rollup"), "Pss") for pid in pids)
    return rss, pss


def python_traced_bytes() -> int:
    """Bytes traced by tracemalloc now, without the mock API's allocations."""
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, pattern, all_frames=True) for pattern in MOCK_FILES]
    )
    return sum(stat.size for stat in snapshot.statistics("filename"))


async def bench_memory(options: BackendOptions, mark: str, settle: float) -> None:
    print(f"\n3. memory with live conversations (sampled after {settle:.1f} s idle)")
    print(
        f"   {'live':>4} {'procs':>5} {'RSS MB':>8} {'RSS/conv':>8} {'PSS MB':>8} "
        f"{'PSS/conv':>8} {'py KB':>8} {'py/conv':>8} {'our RSS MB':>10}"
    )
    options = attrs.evolve(options, max_live=4, idle_ttl=None)
    tracemalloc.start(25)
    try:
        async with open_backend(options) as backend:
            await trio.sleep(settle)
            python_before = python_traced_bytes()
            for target in (1, 2, 4):
                while backend.statistics().live < target:
                    messages = [{"role": "user", "content": f"conversation {uuid.uuid4()}"}]
                    with trio.fail_after(STEP_LIMIT):
                        await timed(backend.complete(messages))
                # Let the CLIs finish their after-turn work (title, session flush) first.
                await trio.sleep(settle)
                grouped = trees(mark)
                assert len(grouped) == target, f"expected {target} claude trees, saw {grouped}"
                usage = [tree_memory_kb(pids) for pids in grouped.values()]
                rss = sum(tree[0] for tree in usage)
                pss = sum(tree[1] for tree in usage)
                python = (python_traced_bytes() - python_before) / 1024
                own = _field_kb(_read("/proc/self/status"), "VmRSS") / 1024
                print(
                    f"   {target:>4} {sum(map(len, grouped.values())):>5} {rss / 1024:>8.1f} "
                    f"{rss / 1024 / target:>8.1f} {pss / 1024:>8.1f} {pss / 1024 / target:>8.1f} "
                    f"{python:>8.1f} {python / target:>8.1f} {own:>10.1f}"
                )
    finally:
        tracemalloc.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and runs")
    parser.add_argument("--turns", type=int, help="measured rounds in 1 (default 30, quick 8)")
    parser.add_argument("--repeats", type=int, help="runs per case in 2 (default 5, quick 2)")
    parser.add_argument("--settle", type=float, default=2.0, help="idle seconds before 3")
    parser.add_argument(
        "--only", type=int, choices=(1, 2, 3), action="append", help="run only these parts"
    )
    args = parser.parse_args()
    turns = args.turns or (8 if args.quick else 30)
    repeats = args.repeats or (2 if args.quick else 5)
    cli = find_cli()
    print(
        f"python {sys.version.split()[0]}, trio {trio.__version__}, {os.cpu_count()} CPUs; "
        f"claude {cli} (pinned {PINNED_CLI_VERSION}); mock API on 127.0.0.1 answering 'ok'"
    )
    mark = uuid.uuid4().hex
    async with open_mock_anthropic_api(handler=answer_ok) as api:
        with tempfile.TemporaryDirectory(prefix="claude-trio-bench-") as tmp:
            config = isolated_config(tmp, base_url=api.base_url, extra_env={MARK_VAR: mark})
            options = BackendOptions(
                cwd=config.cwd,
                env=config.env,
                cli_path=str(cli),
                dangerously_skip_permissions=True,
                max_retries=0,
                idle_ttl=None,
            )
            parts = args.only or (1, 2, 3)
            if 1 in parts:
                await bench_overhead(options, turns, warmup=3)
            if 2 in parts:
                await bench_reseed(options, api, (10, 100, 1000), repeats)
            if 3 in parts:
                await bench_memory(options, mark, args.settle)
    left = marked_processes(mark)
    assert not left, f"processes outlived their backends: {left}"


if __name__ == "__main__":
    trio.run(main)
