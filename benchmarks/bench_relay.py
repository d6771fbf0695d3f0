"""Live token streaming (relay): when a caller first sees text, and what the relay costs.

Issue 13. With ``partial_messages=True`` the CLI's API traffic goes through a loopback
relay (`open_relay`), and a turn yields `StreamEvent` s (``text_delta`` …) as the API
streams, ahead of the whole `AssistantMessage`, which still comes from the CLI's session
file (flushed on a 100 ms timer, a content block only once it is complete).

Turns (the real CLI against the mock API on 127.0.0.1). For each reply, two conversations
are open, one with the relay and one without, and their turns run one at a time,
alternating which goes first. Each conversation's first turn is reported apart, then
``--turns`` warm turns. Replies: ``long``, about 200 words streamed one word per
``text_delta`` over 8 s (``text_reply(text, seconds=8)``), and ``short``, seven words at
once. Times are from the call of `Conversation.turn` to:

* ``request``: the turn's request reaching the mock (the CLI's own latency; the mock
  reports each arrival's wall-clock time on its stdout);
* ``first text``: the first event carrying text: with the relay the first `StreamEvent`
  with a ``text_delta``, without it the first `AssistantMessage` with a `TextBlock`;
* ``stream end``: the ``message_stop`` `StreamEvent` (relay only);
* ``message``: the `AssistantMessage` with the reply's `TextBlock`;
* ``result``: the `ResultMessage` (the whole turn).

Every turn checks that the message's text, and the deltas joined, equal the reply.

The relay alone: the same request (a body of about 36 KB, the size of the CLI's own,
with the headers that make it a turn's) sent by a small h11 client on one kept-alive
connection, directly to the mock or through a relay route (`open_relay`, a sink that
counts events), alternating in batches of 10. Replies: ``json``, a non-streamed message
(the relay forwards it without reading it, as it does the CLI's non-streamed requests);
``sse``, the long reply streamed at once; ``paced``, 20 deltas over 0.2 s. Per request:
the first byte of the response and its end, from the request's first byte sent; and the
CPU of this process per request (``time.process_time`` around each batch): the client,
and when relayed the relay, which runs in the same trio thread; the mock is the same
child process as above, not counted. The difference is the relay's CPU per request.

The mock runs in a child process (``bench_relay.py --mock``) for both parts: it paces a
slow stream on its own clock, as a remote API would, and its CPU is not the library's.

Everything listens on 127.0.0.1. Every CLI runs in an isolated config under a temporary
directory (its ``TMPDIR`` too) that is removed at the end, and carries a marker variable,
as does the mock's process: the script ends by checking that no marked process is left.

Run: ``python benchmarks/bench_relay.py [--quick] [--turns N] [--requests N]
[--skip-turns] [--skip-relay]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import attrs
import h11
import trio

from claude_trio import (
    PINNED_CLI_VERSION,
    APIConnectionError,
    AssistantMessage,
    Conversation,
    ConversationOptions,
    RateLimits,
    ResultMessage,
    StreamEvent,
    TextBlock,
    find_cli,
    open_conversation,
    open_relay,
)
from claude_trio.testing import (
    MOCK_API_KEY,
    IsolatedConfig,
    MessageReply,
    RecordedRequest,
    isolated_config,
    open_mock_anthropic_api,
    text_reply,
)

#: Every claude this benchmark starts carries this variable (checked at the end).
MARK_VAR: Final = "CLAUDE_TRIO_BENCH_MARK"
START_LIMIT: Final = 30.0
TURN_LIMIT: Final = 60.0
#: A pause between turns, so one CLI's after-turn work does not land in the next turn.
SETTLE: Final = 0.3
LONG_SECONDS: Final = 8.0
SENTENCE: Final = (
    "the relay reads each event of the stream as it passes and hands it to the turn "
    "before the command line gets the bytes that carry it so a caller sees the words "
    "of a long answer while the model is still writing them"
)
WORDS: Final = SENTENCE.split()
#: About 200 words, one ``text_delta`` each.
LONG_TEXT: Final = " ".join(WORDS[i % len(WORDS)] for i in range(200))
SHORT_TEXT: Final = "a short answer of seven words, done."
PACED_TEXT: Final = " ".join(WORDS[:20])
PACED_SECONDS: Final = 0.2
REPLIES: Final[dict[str, MessageReply]] = {
    "long": text_reply(LONG_TEXT, seconds=LONG_SECONDS),
    "short": text_reply(SHORT_TEXT),
    "json": text_reply(SHORT_TEXT),
    "sse": text_reply(LONG_TEXT),
    "paced": text_reply(PACED_TEXT, seconds=PACED_SECONDS),
}
EXPECTED: Final = {"long": LONG_TEXT, "short": SHORT_TEXT}


def answer(request: RecordedRequest) -> MessageReply | None:
    """The mock's reply: named by the prompt's first word (``long 3`` -> ``long``)."""
    kind = (request.prompt or "").partition(" ")[0]
    return REPLIES.get(kind)


def quantile(values: Sequence[float], q: int) -> float:
    """The *q*-th percentile (inclusive method; the largest value for tiny samples)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def spread(values: Sequence[float], *, p99: bool = False, digits: int = 0) -> str:
    """``median / p90`` (``/ p99``) in ms."""
    if not values:
        return "-"
    picks = [statistics.median(values), quantile(values, 90)]
    if p99:
        picks.append(quantile(values, 99))
    return " / ".join(f"{value * 1000:.{digits}f}" for value in picks)


# --- turns through the real CLI ------------------------------------------------------------


@attrs.frozen
class TurnTiming:
    """Seconds from the call of `Conversation.turn` (see the module's docstring)."""

    request: float
    first_text: float
    stream_end: float | None
    message: float
    result: float


async def timed_turn(
    conversation: Conversation, mock: MockProcess, kind: str, number: int, relay: bool
) -> TurnTiming:
    text = f"{kind} {number} {'relay' if relay else 'plain'}"
    first_delta: float | None = None
    stream_end: float | None = None
    message: float | None = None
    result: float | None = None
    deltas: list[str] = []
    texts: list[str] = []
    wall = time.time()
    started = trio.current_time()
    with trio.fail_after(TURN_LIMIT):
        async for event in conversation.turn(text):
            now = trio.current_time() - started
            if isinstance(event, StreamEvent):
                if event.parent_tool_use_id is not None:
                    continue
                raw = event.event
                if raw["type"] == "content_block_delta" and raw["delta"]["type"] == "text_delta":
                    if first_delta is None:
                        first_delta = now
                    deltas.append(raw["delta"]["text"])
                elif raw["type"] == "message_stop":
                    stream_end = now
            elif isinstance(event, AssistantMessage):
                blocks = [block.text for block in event.content if isinstance(block, TextBlock)]
                if blocks and message is None:
                    message = now
                texts.extend(blocks)
            elif isinstance(event, ResultMessage):
                result = now
    expected = EXPECTED[kind]
    if "".join(texts) != expected:
        raise AssertionError(f"{text}: the messages' text is {''.join(texts)[:60]!r}…")
    if relay and "".join(deltas) != expected:
        raise AssertionError(f"{text}: the deltas joined are {''.join(deltas)[:60]!r}…")
    if not relay and deltas:
        raise AssertionError(f"{text}: StreamEvents without the relay")
    arrived = mock.arrivals.get(text)
    if arrived is None or message is None or result is None:
        raise AssertionError(f"{text}: no request, message or result ({arrived}, {result})")
    first_text = first_delta if relay else message
    assert first_text is not None
    return TurnTiming(arrived - wall, first_text, stream_end, message, result)


@attrs.define
class MockProcess:
    """The mock API in a child process: its URL, and when each prompt's request arrived
    (wall-clock time)."""

    base_url: str
    arrivals: dict[str, float] = attrs.Factory(dict)


@asynccontextmanager
async def mock_process(mark: str) -> AsyncIterator[MockProcess]:
    """Run ``bench_relay.py --mock`` until the block ends (its stdin closes)."""
    env = {**os.environ, MARK_VAR: mark}
    process = await trio.lowlevel.open_process(
        [sys.executable, __file__, "--mock"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    stdout = process.stdout
    try:
        async with trio.open_nursery() as nursery:
            lines = _lines(stdout)
            with trio.fail_after(START_LIMIT):
                mock = MockProcess(base_url=(await anext(lines)).strip())

            async def collect() -> None:
                async for line in lines:
                    record = json.loads(line)
                    mock.arrivals.setdefault(record["prompt"], record["wall_time"])

            nursery.start_soon(collect)
            yield mock
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await process.stdin.aclose()
            with trio.move_on_after(10):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            await stdout.aclose()


async def _lines(stream: trio.abc.ReceiveStream) -> AsyncIterator[str]:
    buffer = b""
    while chunk := await stream.receive_some(65536):
        buffer += chunk
        *done, buffer = buffer.split(b"\n")
        for line in done:
            yield line.decode()


async def serve_mock() -> None:
    """The ``--mock`` child: the mock API until stdin closes; its URL, then a JSON line
    per main request (prompt, arrival time) on stdout."""

    def handler(request: RecordedRequest) -> MessageReply | None:
        print(json.dumps({"prompt": request.prompt, "wall_time": request.wall_time}), flush=True)
        return answer(request)

    async with open_mock_anthropic_api(handler=handler) as api:
        print(api.base_url, flush=True)
        async with trio.lowlevel.FdStream(os.dup(0)) as stdin:
            while await stdin.receive_some(1024):
                pass


@attrs.define
class Config:
    kind: str
    relay: bool
    first: TurnTiming | None = None
    warm: list[TurnTiming] = attrs.Factory(list)

    @property
    def label(self) -> str:
        return f"{self.kind:<6} {'on' if self.relay else 'off':<5}"


async def run_turns(
    mock: MockProcess, config: IsolatedConfig, tmp: Path, cli: Path, turns: int
) -> list[Config]:
    def options(relay: bool) -> ConversationOptions:
        return ConversationOptions(
            cwd=config.cwd,
            cli_path=str(cli),
            env={**config.env, "TMPDIR": str(tmp)},
            dangerously_skip_permissions=True,
            max_retries=0,
            startup_timeout=START_LIMIT,
            turn_timeout=TURN_LIMIT,
            partial_messages=relay,
        )

    results: list[Config] = []
    for index, (kind, count) in enumerate((("long", turns), ("short", 3 * turns))):
        configs = {relay: Config(kind, relay) for relay in (False, True)}
        async with (
            open_conversation(options(False)) as off,
            open_conversation(options(True)) as on,
        ):
            conversations = {False: off, True: on}
            for number in range(count + 1):
                # Alternate the order, so neither side always runs on a busier machine.
                order = (False, True) if (number + index) % 2 == 0 else (True, False)
                for relay in order:
                    await trio.sleep(SETTLE)
                    timing = await timed_turn(conversations[relay], mock, kind, number, relay)
                    if number == 0:
                        configs[relay].first = timing
                    else:
                        configs[relay].warm.append(timing)
        results.extend(configs.values())
    return results


def print_turns(configs: Sequence[Config]) -> None:
    print("\n## Turns (real CLI; ms from turn() called; warm: median / p90)")
    print(
        f"long: {len(LONG_TEXT.split())} words over {LONG_SECONDS:.0f} s, one text_delta a "
        f"word; short: {len(SHORT_TEXT.split())} words at once. first text: relay on = first "
        "text_delta StreamEvent, off = first AssistantMessage with a TextBlock"
    )
    header = (
        f"{'reply':<6} {'relay':<5} {'turn':<7} | {'request':>11} | {'first text':>11} | "
        f"{'stream end':>11} | {'message':>11} | {'result':>11}"
    )
    print(header)
    print("-" * len(header))
    for config in configs:
        if config.first is not None:
            first = config.first
            cells = (first.request, first.first_text, first.stream_end, first.message)
            print(
                f"{config.label} {'first':<7} | "
                + " | ".join(f"{ms(value):>11}" for value in (*cells, first.result))
            )
        warm = config.warm
        columns: list[list[float]] = [
            [t.request for t in warm],
            [t.first_text for t in warm],
            [t.stream_end for t in warm if t.stream_end is not None],
            [t.message for t in warm],
            [t.result for t in warm],
        ]
        print(
            f"{config.label} {f'warm {len(warm)}':<7} | "
            + " | ".join(f"{spread(values):>11}" for values in columns)
        )
    by_key = {(c.kind, c.relay): c for c in configs}
    for kind in ("long", "short"):
        off, on = by_key.get((kind, False)), by_key.get((kind, True))
        if off is None or on is None or not off.warm or not on.warm:
            continue
        first_off = statistics.median(t.first_text for t in off.warm)
        first_on = statistics.median(t.first_text for t in on.warm)
        result_off = statistics.median(t.result for t in off.warm)
        result_on = statistics.median(t.result for t in on.warm)
        print(
            f"{kind}: first text {ms(first_on)} ms with the relay against {ms(first_off)} ms "
            f"without ({ms(first_off - first_on)} ms sooner); whole turn "
            f"{ms(result_on - result_off)} ms longer with it (median of warm turns)"
        )


# --- the relay alone -----------------------------------------------------------------------

#: The headers of a turn's request, as the CLI sends them (tests/test_relay.py).
HEADERS: Final = (
    ("x-api-key", MOCK_API_KEY),
    ("anthropic-version", "2023-06-01"),
    ("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14"),
    ("content-type", "application/json"),
    ("X-Claude-Code-Session-Id", "6f1c1c64-52a4-4a9e-8d55-0d7c8d1c2b7e"),
)
TOOLS: Final = [
    {
        "name": f"Tool{index}",
        "description": "Run something. " + " ".join(WORDS) * 6,
        "input_schema": {"type": "object", "properties": {"arg": {"type": "string"}}},
    }
    for index in range(26)
]


def request_body(kind: str) -> bytes:
    """A turn's request for *kind* (about 36 KB, mostly tools, like the CLI's)."""
    reminder = {"type": "text", "text": "<system-reminder>x</system-reminder>"}
    return json.dumps(
        {
            "model": "claude-mock",
            "max_tokens": 32000,
            "stream": kind != "json",
            "system": [{"type": "text", "text": "You are a benchmark."}],
            "tools": TOOLS,
            "messages": [
                {"role": "user", "content": [reminder, {"type": "text", "text": f"{kind} x"}]}
            ],
        },
        separators=(",", ":"),
    ).encode()


@attrs.frozen
class Sample:
    first_byte: float
    total: float
    size: int


class Client:
    """HTTP/1.1 over one kept-alive trio TCP connection (h11)."""

    def __init__(self, stream: trio.SocketStream, host: str) -> None:
        self.stream = stream
        self.host = host
        self.conn = h11.Connection(h11.CLIENT)

    async def post(self, target: str, body: bytes) -> Sample:
        head = h11.Request(
            method="POST",
            target=target,
            headers=[("Host", self.host), *HEADERS, ("content-length", str(len(body)))],
        )
        data = self.conn.send(head) + self.conn.send(h11.Data(data=body))
        data += self.conn.send(h11.EndOfMessage())
        started = trio.current_time()
        await self.stream.send_all(data)
        first_byte: float | None = None
        size = 0
        status = 0
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                chunk = await self.stream.receive_some(65536)
                if first_byte is None:
                    first_byte = trio.current_time() - started
                if not chunk:
                    raise RuntimeError("the server closed the connection")
                self.conn.receive_data(chunk)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                size += len(event.data)
            elif isinstance(event, h11.EndOfMessage):
                total = trio.current_time() - started
                break
            else:
                raise RuntimeError(f"unexpected {event!r}")
        if status != 200 or first_byte is None:
            raise RuntimeError(f"status {status}")
        self.conn.start_next_cycle()
        return Sample(first_byte, total, size)


async def connect(base_url: str) -> Client:
    netloc = base_url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = netloc.rpartition(":")
    return Client(await trio.open_tcp_stream(host, int(port)), netloc)


class CountingSink:
    """A relay route's sink that counts what it gets."""

    def __init__(self) -> None:
        self.events = 0
        self.failures: list[APIConnectionError] = []

    async def partial_event(
        self, event: dict[str, Any], parent_tool_use_id: str | None, request_id: int
    ) -> None:
        self.events += 1

    def rate_limits(self, limits: RateLimits) -> None:
        pass

    async def upstream_failed(self, error: APIConnectionError) -> None:
        self.failures.append(error)


@attrs.define
class Series:
    samples: list[Sample] = attrs.Factory(list)
    cpu: float = 0.0


async def run_relay(base_url: str, requests: int, paced: int) -> None:
    batch = 10
    sink = CountingSink()
    results: dict[tuple[str, str], Series] = {}
    async with open_relay() as relay:
        with relay.route(upstream=base_url, sink=sink) as route:
            prefix = "/" + route.base_url.split("://", 1)[1].split("/", 1)[1]
            clients = {
                "direct": await connect(base_url),
                "relay": await connect(relay.base_url),
            }
            targets = {
                "direct": "/v1/messages?beta=true",
                "relay": prefix + "/v1/messages?beta=true",
            }
            try:
                for kind, count in (("json", requests), ("sse", requests), ("paced", paced)):
                    body = request_body(kind)
                    for way in clients:  # warm-up: connections, pools, first imports
                        for _ in range(3):
                            await clients[way].post(targets[way], body)
                    for number in range(0, count, batch):
                        ways = (
                            ("direct", "relay") if number // batch % 2 == 0 else ("relay", "direct")
                        )
                        for way in ways:
                            series = results.setdefault((kind, way), Series())
                            cpu = time.process_time()
                            for _ in range(min(batch, count - number)):
                                series.samples.append(await clients[way].post(targets[way], body))
                            series.cpu += time.process_time() - cpu
            finally:
                for client in clients.values():
                    await client.stream.aclose()
        stats = relay.statistics()
    if sink.failures or stats.upstream_errors or stats.rejected:
        raise AssertionError(f"the relay failed: {sink.failures}, {stats}")
    print(f"\n## The relay alone ({requests} requests each, paced {paced}; ms)")
    print(
        f"request body {len(request_body('sse')) / 1024:.0f} KB; json: non-streamed reply "
        f"({results['json', 'direct'].samples[0].size} B, forwarded unread); sse: "
        f"{len(LONG_TEXT.split())} deltas at once "
        f"({results['sse', 'direct'].samples[0].size / 1024:.0f} KB); paced: "
        f"{len(PACED_TEXT.split())} deltas over {PACED_SECONDS} s. CPU: this process per request, "
        "the client (+ the relay; the mock is another process)"
    )
    header = (
        f"{'reply':<6} {'way':<7} | {'first byte med/p90/p99':>24} | "
        f"{'total med/p90/p99':>24} | {'CPU/request':>11}"
    )
    print(header)
    print("-" * len(header))
    for kind in ("json", "sse", "paced"):
        direct, relayed = results[kind, "direct"], results[kind, "relay"]
        for way, series in (("direct", direct), ("relay", relayed)):
            print(
                f"{kind:<6} {way:<7} | "
                f"{spread([s.first_byte for s in series.samples], p99=True, digits=2):>24} | "
                f"{spread([s.total for s in series.samples], p99=True, digits=2):>24} | "
                f"{series.cpu / len(series.samples) * 1000:>9.2f}ms"
            )
        added_first = statistics.median(s.first_byte for s in relayed.samples) - statistics.median(
            s.first_byte for s in direct.samples
        )
        added_total = statistics.median(s.total for s in relayed.samples) - statistics.median(
            s.total for s in direct.samples
        )
        added_cpu = relayed.cpu / len(relayed.samples) - direct.cpu / len(direct.samples)
        print(
            f"{kind:<6} {'added':<7} | {added_first * 1000:>24.2f} | {added_total * 1000:>24.2f} | "
            f"{added_cpu * 1000:>9.2f}ms"
        )
    print(
        f"relay: {stats.requests} requests, {stats.turn_requests} read as a turn's, "
        f"{stats.side_requests} forwarded unread, {stats.partial_events} stream events "
        f"handed to the sink ({sink.events} counted)"
    )


# --- main ----------------------------------------------------------------------------------


def marked_processes(mark: str) -> list[int]:
    """The live processes carrying ``MARK_VAR=<mark>``."""
    needle = f"{MARK_VAR}={mark}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                environ = Path(entry.path, "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if needle in environ:
                found.append(int(entry.name))
    return found


def real_path(name: str) -> Path:
    return Path(name).resolve()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer turns and requests")
    parser.add_argument("--turns", type=int, help="warm long turns per side (short: 3x)")
    parser.add_argument("--requests", type=int, help="requests per reply and way")
    parser.add_argument("--skip-turns", action="store_true")
    parser.add_argument("--skip-relay", action="store_true")
    parser.add_argument("--mock", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mock:
        await serve_mock()
        return
    turns = args.turns or (2 if args.quick else 8)
    requests = args.requests or (40 if args.quick else 300)
    paced = max(requests // 4, 10)
    cli = find_cli()
    print(
        f"python {sys.version.split()[0]}, trio {trio.__version__}, {os.cpu_count()} CPUs; "
        f"claude {cli} (pinned {PINNED_CLI_VERSION})"
    )
    mark = secrets.token_hex(8)
    started = time.monotonic()
    left: list[int] = []
    try:
        async with mock_process(mark) as mock:
            if not args.skip_turns:
                with tempfile.TemporaryDirectory(prefix="claude-trio-bench-relay-") as tmp_name:
                    tmp = real_path(tmp_name)
                    extra = {MARK_VAR: mark}
                    config = isolated_config(tmp, base_url=mock.base_url, extra_env=extra)
                    print_turns(await run_turns(mock, config, tmp, cli, turns))
            if not args.skip_relay:
                await run_relay(mock.base_url, requests, paced)
    finally:
        await trio.sleep(0.2)
        left = marked_processes(mark)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    print(f"\nleft alive: {left or 'none'}; {time.monotonic() - started:.0f} s in all")
    if left:
        raise SystemExit(f"processes left alive: {left}")


if __name__ == "__main__":
    trio.run(main)
