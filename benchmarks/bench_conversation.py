"""Phase timings of one `open_conversation` on the real CLI against the mock API.

Each run opens a conversation and times, with ``time.perf_counter()`` around our calls:

* ``spawn to ready``: entering ``open_conversation`` (fork/exec of ``claude`` on a PTY
  until the CLI shows its input box);
* ``cold first turn``: the first ``turn()`` call until its `ResultMessage` arrives;
* ``warm turn``: the same for each of the next turns on the live process;
* ``teardown``: leaving the block (SIGTERM, waiting for the tree to exit, reaping).

The mock answers every turn with the one word ``ok``, so the numbers are the CLI's and
the library's, not the mock's. The CLI runs in an isolated config in a temporary
directory (never ``~/.claude``), found through ``CLAUDE_TRIO_CLI`` or ``PATH``.

Run: ``python benchmarks/bench_conversation.py [--quick] [--runs N] [--warm N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence

import trio

from claude_trio import (
    PINNED_CLI_VERSION,
    Conversation,
    ConversationOptions,
    ResultMessage,
    find_cli,
    open_conversation,
)
from claude_trio.testing import (
    MessageReply,
    RecordedRequest,
    isolated_config,
    open_mock_anthropic_api,
    text_reply,
)

#: A bound on one whole run, so a wedged CLI fails the benchmark instead of hanging it.
RUN_LIMIT = 120.0


def answer_ok(request: RecordedRequest) -> MessageReply:
    """The mock's answer to every turn."""
    return text_reply("ok")


def summarise(name: str, seconds: Sequence[float]) -> str:
    ms = sorted(value * 1000 for value in seconds)
    p90 = statistics.quantiles(ms, n=10, method="inclusive")[8] if len(ms) > 1 else ms[0]
    return (
        f"{name:<16} {len(ms):>4} {statistics.median(ms):>9.1f} {p90:>9.1f} "
        f"{ms[0]:>9.1f} {ms[-1]:>9.1f}"
    )


async def timed_turn(conversation: Conversation, text: str) -> float:
    """Type *text*; return the seconds until the turn's `ResultMessage` arrived."""
    sent = time.perf_counter()
    async for event in conversation.turn(text):
        if isinstance(event, ResultMessage):
            return time.perf_counter() - sent
    raise AssertionError("the turn ended without a ResultMessage")


async def one_run(options: ConversationOptions, warm: int, times: dict[str, list[float]]) -> None:
    started = time.perf_counter()
    async with open_conversation(options) as conversation:
        times["spawn to ready"].append(time.perf_counter() - started)
        times["cold first turn"].append(await timed_turn(conversation, "turn 0"))
        for number in range(1, 1 + warm):
            times["warm turn"].append(await timed_turn(conversation, f"turn {number}"))
        closing = time.perf_counter()
    times["teardown"].append(time.perf_counter() - closing)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs instead of 10")
    parser.add_argument("--runs", type=int, help="conversations to open (default 10, quick 3)")
    parser.add_argument("--warm", type=int, default=3, help="warm turns per conversation")
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 10)
    cli = find_cli()
    print(
        f"python {sys.version.split()[0]}, trio {trio.__version__}, {os.cpu_count()} CPUs; "
        f"claude {cli} (pinned {PINNED_CLI_VERSION}); {runs} runs x (1 cold + {args.warm} "
        "warm turns)"
    )
    times: dict[str, list[float]] = {
        name: [] for name in ("spawn to ready", "cold first turn", "warm turn", "teardown")
    }
    async with open_mock_anthropic_api(handler=answer_ok) as api:
        with tempfile.TemporaryDirectory(prefix="claude-trio-bench-") as tmp:
            config = isolated_config(tmp, base_url=api.base_url)
            options = ConversationOptions(
                cwd=config.cwd,
                env=config.env,
                cli_path=str(cli),
                dangerously_skip_permissions=True,
                max_retries=0,
            )
            for _ in range(runs):
                with trio.fail_after(RUN_LIMIT):
                    await one_run(options, args.warm, times)
    print(f"{'phase':<16} {'n':>4} {'median ms':>9} {'p90 ms':>9} {'min ms':>9} {'max ms':>9}")
    for name, seconds in times.items():
        print(summarise(name, seconds))


if __name__ == "__main__":
    trio.run(main)
