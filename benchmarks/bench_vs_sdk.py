"""claude-trio against the official ``claude-agent-sdk``, side by side, in one run.

The same 10-turn conversation goes through three clients of the same ``claude`` binary
(found with `claude_trio.find_cli`, so ``CLAUDE_TRIO_CLI`` or ``PATH``), all talking to
the same mock Anthropic API on 127.0.0.1, which answers every turn with ``ok``:

* ``trio complete()``: claude-trio's `ClaudeCodeBackend.complete`, given the whole
  history each turn (the Messages API shape); one interactive ``claude`` on a PTY,
  spawned by the first call and reused by the next ones.
* ``trio prewarm=1``: the same with ``BackendOptions(prewarm=1)``: a spare ``claude``
  is started when the backend opens, and the first turn takes it. Its first turn is
  timed from the ``complete()`` call once `ClaudeCodeBackend.wait_prewarmed` has
  returned (a server keeps its spare ready before the request comes); the time the spare
  took to get ready is printed apart. The backend refills the spare during the warm
  turns, and that work is in this client's CPU figures.
* ``SDK query()``: the SDK's ``query()``, one ``claude -p`` process per turn. The first
  turn starts a session; each later turn passes ``resume=<session_id of the previous
  turn's ResultMessage>``, the SDK's documented way to continue a conversation with
  ``query()`` (the CLI then reads the history back from its session file).
* ``SDK client``: the SDK's ``ClaudeSDKClient``, one ``claude`` in stream-json mode for
  the whole conversation; each turn is ``client.query(text)`` then
  ``receive_response()``.

The SDK is pointed at the same binary (``cli_path``) and each client keeps its own
defaults otherwise: the CLI's default system prompt and tools (the SDK's
``system_prompt={"type": "preset", "preset": "claude_code"}``, since its default is an
empty one), permissions bypassed (claude-trio's ``dangerously_skip_permissions``, the
SDK's ``permission_mode="bypassPermissions"``).

Each client runs in a fresh Python process of its own (this script with ``--worker``),
in a fresh isolated config (`claude_trio.testing.isolated_config`: ``CLAUDE_CONFIG_DIR``
and ``HOME`` in a temporary directory, never ``~/.claude``; the worker's whole
environment is that config's), under ``trio.run`` for claude-trio and
``anyio.run(backend="asyncio")`` for the SDK. A worker of its own per client keeps the
numbers apart: the CPU time and the peak RSS are that worker's alone, without the mock
API (which runs in this parent process) or the other library's imports. Measured:

* first turn: from entering the client (``ClaudeCodeBackend.__aenter__``,
  ``ClaudeSDKClient.connect()``, or the ``query()`` call) to the first turn's
  ``ResultMessage``; spawn included;
* warm turn (turns 2 to 10): from the call to its ``ResultMessage``, min/median/max;
  "to end" is until the events stop (for ``query()`` that includes the CLI's exit);
* library CPU per warm turn: ``time.process_time()`` of the worker (every thread of
  it, not the ``claude`` child) from the call to the end of the turn's events, median;
* RSS: the worker's ``VmRSS`` once its imports are done (before any turn), and its peak
  (``VmHWM``) at the end;
* close: leaving the client (``ClaudeCodeBackend.__aexit__``, the ``ClaudeSDKClient``
  block); ``query()`` closes its process within each turn (in "to end");
* import: the worker importing the library with its event loop (``trio`` and
  ``claude_trio``, or ``anyio`` and ``claude_agent_sdk``), once per process;
* the ratios of each SDK figure to claude-trio's (above 1: the SDK takes more).

Two rounds, the order of the clients reversed in the second. Checked after every
client: each turn's request to the mock carried every earlier prompt (the model saw the
whole conversation), and no process of the run is left alive.

Run: ``python benchmarks/bench_vs_sdk.py [--turns N] [--rounds N] [--quick]`` with
``claude-agent-sdk`` installed (``nox -s bench`` installs it).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.metadata
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Only the standard library at the top: each worker imports just its own client, so its
# RSS holds that library and nothing of the other one (or of the mock API).
if TYPE_CHECKING:
    from claude_trio.testing import MessageReply, MockAnthropicAPI, RecordedRequest

#: The clients, in the order of the first round (the second round reverses it).
LIBRARIES = ("trio complete()", "trio prewarm=1", "SDK query()", "SDK client")
#: Every claude this benchmark starts (and its children) carries this variable.
MARK_VAR = "CLAUDE_TRIO_BENCH_MARK"
#: A bound on one turn (spawn included), and on one worker.
STEP_LIMIT = 120.0
WORKER_LIMIT = 900.0


@dataclasses.dataclass
class Turn:
    """One timed turn: seconds to the `ResultMessage`, to the end, and CPU seconds."""

    result: float
    end: float
    cpu: float
    text: str
    session_id: str


def prompt(tag: str, number: int) -> str:
    return f"[{tag}] turn {number:02d}: say ok"


def rss_kb(field: str) -> int:
    """A ``Vm*`` field of this process's ``/proc/self/status``, in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


async def timed_turn(
    events: AsyncIterator[object],
    started: float,
    cpu_started: float,
    result_type: type,
    text_of: Callable[[object], str],
) -> Turn:
    """Read *events* to their end; time the result and the end from *started*.

    Runs under trio and under asyncio alike (it only iterates).
    """
    result: Any = None
    result_at = 0.0
    text = ""
    async for event in events:
        if isinstance(event, result_type):
            result, result_at = event, time.perf_counter()
        else:
            text += text_of(event)
    ended, cpu_ended = time.perf_counter(), time.process_time()
    assert result is not None, "the turn ended without a ResultMessage"
    return Turn(
        result=result_at - started,
        end=ended - started,
        cpu=cpu_ended - cpu_started,
        text=text,
        session_id=str(result.session_id),
    )


# --- the workers: one client each, in a Python process of its own -----------------------------


async def run_claude_trio(spec: dict[str, Any]) -> tuple[list[Turn], float, dict[str, Any]]:
    """claude-trio: `ClaudeCodeBackend.complete` with the whole history each turn."""
    import trio

    import claude_trio
    from claude_trio import (
        AssistantMessage,
        BackendOptions,
        ClaudeCodeBackend,
        ResultMessage,
        TextBlock,
    )

    def text_of(event: object) -> str:
        if isinstance(event, AssistantMessage):
            return "".join(b.text for b in event.content if isinstance(b, TextBlock))
        return ""

    prewarm = int(spec["library"] == "trio prewarm=1")
    options = BackendOptions(
        cwd=spec["cwd"],
        env=spec["env"],
        cli_path=spec["cli"],
        dangerously_skip_permissions=True,
        idle_ttl=None,
        prewarm=prewarm,
    )
    turns: list[Turn] = []
    messages: list[dict[str, Any]] = []
    spare_ready = 0.0
    with trio.fail_after(WORKER_LIMIT):
        started, cpu_started = time.perf_counter(), time.process_time()
        async with ClaudeCodeBackend(options) as backend:
            if prewarm:
                await backend.wait_prewarmed()
                spare_ready = time.perf_counter() - started
                started, cpu_started = time.perf_counter(), time.process_time()
            for number in range(spec["turns"]):
                messages.append({"role": "user", "content": prompt(spec["tag"], number)})
                if number:
                    started, cpu_started = time.perf_counter(), time.process_time()
                with trio.fail_after(STEP_LIMIT):
                    turn = await timed_turn(
                        backend.complete(messages), started, cpu_started, ResultMessage, text_of
                    )
                turns.append(turn)
                messages.append({"role": "assistant", "content": turn.text})
            stats = backend.statistics()
            closing = time.perf_counter()
    closed = time.perf_counter() - closing
    # One process answered every turn: with a spare, the spare (its replacement may be
    # starting still when the turns are over).
    calls_spawned = stats.spawned - stats.prewarmed
    assert calls_spawned == 1 - prewarm, f"claude-trio started {calls_spawned} processes"
    assert stats.prewarm_used == prewarm
    return (
        turns,
        closed,
        {
            "version": claude_trio.__version__,
            "processes": stats.spawned,
            "spare_ready": spare_ready,
        },
    )


def sdk_options(spec: dict[str, Any], **changes: Any) -> Any:
    from claude_agent_sdk import ClaudeAgentOptions

    return ClaudeAgentOptions(
        cli_path=spec["cli"],
        cwd=spec["cwd"],
        env=dict(spec["env"]),
        permission_mode="bypassPermissions",
        system_prompt={"type": "preset", "preset": "claude_code"},
        **changes,
    )


def sdk_text_of(event: object) -> str:
    from claude_agent_sdk import AssistantMessage, TextBlock

    if isinstance(event, AssistantMessage):
        return "".join(b.text for b in event.content if isinstance(b, TextBlock))
    return ""


async def run_sdk_query(spec: dict[str, Any]) -> tuple[list[Turn], float, dict[str, Any]]:
    """The SDK's ``query()``: a process per turn, continued with ``resume``."""
    import anyio
    from claude_agent_sdk import ResultMessage, query

    turns: list[Turn] = []
    session_id: str | None = None
    with anyio.fail_after(WORKER_LIMIT):
        for number in range(spec["turns"]):
            options = sdk_options(spec, resume=session_id)
            started, cpu_started = time.perf_counter(), time.process_time()
            with anyio.fail_after(STEP_LIMIT):
                events = query(prompt=prompt(spec["tag"], number), options=options)
                turn = await timed_turn(events, started, cpu_started, ResultMessage, sdk_text_of)
            turns.append(turn)
            session_id = turn.session_id
    return turns, 0.0, {"processes": len(turns)}


async def run_sdk_client(spec: dict[str, Any]) -> tuple[list[Turn], float, dict[str, Any]]:
    """The SDK's ``ClaudeSDKClient``: one process for the whole conversation."""
    import anyio
    from claude_agent_sdk import ClaudeSDKClient, ResultMessage

    turns: list[Turn] = []
    with anyio.fail_after(WORKER_LIMIT):
        started, cpu_started = time.perf_counter(), time.process_time()
        async with ClaudeSDKClient(sdk_options(spec)) as client:
            for number in range(spec["turns"]):
                if number:
                    started, cpu_started = time.perf_counter(), time.process_time()
                with anyio.fail_after(STEP_LIMIT):
                    await client.query(prompt(spec["tag"], number))
                    turn = await timed_turn(
                        client.receive_response(), started, cpu_started, ResultMessage, sdk_text_of
                    )
                turns.append(turn)
            closing = time.perf_counter()
    return turns, time.perf_counter() - closing, {"processes": 1}


def worker() -> None:
    """Run one client as the spec on stdin says; print the numbers as one JSON line."""
    spec = json.loads(sys.stdin.read())
    library = spec["library"]
    # Each library is imported (and timed) before the baseline is read, so "base" is the
    # process with its imports done and "peak" adds what running the conversation took.
    importing = time.perf_counter()
    if library.startswith("trio"):
        import trio

        import claude_trio  # noqa: F401

        imported = time.perf_counter() - importing
        baseline = rss_kb("VmRSS")
        turns, closed, extra = trio.run(run_claude_trio, spec)
    else:
        import anyio
        import claude_agent_sdk  # noqa: F401

        imported = time.perf_counter() - importing
        run = run_sdk_query if library == "SDK query()" else run_sdk_client
        baseline = rss_kb("VmRSS")
        turns, closed, extra = anyio.run(run, spec, backend="asyncio")
    for number, turn in enumerate(turns):
        assert turn.text.strip() == "ok", f"turn {number} answered {turn.text!r}"
    print(
        json.dumps(
            {
                "turns": [dataclasses.asdict(turn) for turn in turns],
                "closed": closed,
                "imported": imported,
                "rss_baseline_kb": baseline,
                "rss_peak_kb": rss_kb("VmHWM"),
                **extra,
            }
        )
    )


# --- the parent: the mock API, the workers, the checks and the tables --------------------------


def answer_ok(request: RecordedRequest) -> MessageReply:
    """The mock's answer to every turn."""
    from claude_trio.testing import text_reply

    return text_reply("ok")


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


def check_history(api: MockAnthropicAPI, tag: str, turns: int) -> None:
    """Each turn's request to the model carried every earlier prompt of *tag*, in order."""
    sent = [json.dumps(request.messages) for request in api.main_requests]
    for number in range(turns):
        later = prompt(tag, number + 1)
        wanted = [prompt(tag, k) for k in range(number + 1)]
        positions = [[body.find(text) for text in wanted] for body in sent if later not in body]
        assert any(-1 not in found and found == sorted(found) for found in positions), (
            f"no request to the model carried {wanted[-1]!r} and every prompt before it"
        )


def worker_spec(
    library: str, tag: str, cli: str, turns: int, root: Path, base_url: str, mark: str
) -> dict[str, Any]:
    """What one worker runs, in a fresh isolated config under *root*."""
    from claude_trio.testing import isolated_config

    root.mkdir()
    config = isolated_config(root, base_url=base_url, extra_env={MARK_VAR: mark})
    return {
        "library": library,
        "tag": tag,
        "cli": cli,
        "cwd": str(config.cwd),
        "env": dict(config.env),
        "turns": turns,
    }


async def run_worker(
    library: str, tag: str, cli: str, turns: int, root: Path, api: MockAnthropicAPI, mark: str
) -> dict[str, Any]:
    """Run *library* in a worker process; check what the mock saw and what is left."""
    import trio

    spec = worker_spec(library, tag, cli, turns, root, api.base_url, mark)
    try:
        with trio.fail_after(WORKER_LIMIT + 30):
            done = await trio.run_process(
                [sys.executable, __file__, "--worker"],
                stdin=json.dumps(spec).encode(),
                capture_stdout=True,
                env=spec["env"],
            )
    finally:
        await trio.sleep(0.2)
        left = marked_processes(mark)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert not left, f"{library} left processes alive: {left}"
    check_history(api, tag, turns)
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def summary(result: dict[str, Any]) -> dict[str, float]:
    """The figures of one worker, in ms and MB."""
    turns = result["turns"]
    warm = turns[1:]
    return {
        "first": turns[0]["result"] * 1000,
        "first_cpu": turns[0]["cpu"] * 1000,
        "min": min(t["result"] for t in warm) * 1000,
        "median": statistics.median(t["result"] for t in warm) * 1000,
        "max": max(t["result"] for t in warm) * 1000,
        "end": statistics.median(t["end"] for t in warm) * 1000,
        "cpu": statistics.median(t["cpu"] for t in warm) * 1000,
        "base": result["rss_baseline_kb"] / 1024,
        "peak": result["rss_peak_kb"] / 1024,
        "closed": result["closed"] * 1000,
        "imported": result["imported"] * 1000,
    }


def print_table(title: str, figures: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    print(
        f"   {'':<16} {'first':>8} {'warm turn to ResultMessage':>27} {'to end':>8} "
        f"{'CPU/warm':>9} {'RSS MB':>15} {'close':>7} {'import':>7}"
    )
    print(
        f"   {'client':<16} {'turn ms':>8} {'min':>8} {'median':>9} {'max':>8} "
        f"{'median':>8} {'turn ms':>9} {'base':>7} {'peak':>7} {'ms':>7} {'ms':>7}"
    )
    for library, f in figures.items():
        print(
            f"   {library:<16} {f['first']:>8.0f} {f['min']:>8.0f} {f['median']:>9.0f} "
            f"{f['max']:>8.0f} {f['end']:>8.0f} {f['cpu']:>9.2f} {f['base']:>7.1f} "
            f"{f['peak']:>7.1f} {f['closed']:>7.0f} {f['imported']:>7.0f}"
        )
    ours = figures[LIBRARIES[0]]
    print("   ratio to claude-trio complete() (above 1: the other takes more)")
    for library, f in figures.items():
        if library == LIBRARIES[0]:
            continue
        print(
            f"   {library:<16} first {f['first'] / ours['first']:.2f}x, "
            f"warm median {f['median'] / ours['median']:.2f}x, "
            f"warm to end {f['end'] / ours['end']:.2f}x, "
            f"CPU/warm turn {f['cpu'] / ours['cpu']:.2f}x, "
            f"peak RSS {f['peak'] / ours['peak']:.2f}x"
        )


async def parent(args: argparse.Namespace) -> None:
    import trio

    import claude_trio
    from claude_trio import PINNED_CLI_VERSION, find_cli
    from claude_trio.testing import open_mock_anthropic_api

    cli = str(find_cli())
    with trio.fail_after(STEP_LIMIT):
        probe = await trio.run_process([cli, "--version"], capture_stdout=True)
    version = probe.stdout.decode().strip()
    sdk_version = importlib.metadata.version("claude-agent-sdk")
    print(
        f"python {sys.version.split()[0]}, trio {trio.__version__}, {os.cpu_count()} CPUs; "
        f"claude {version} at {cli} (pinned {PINNED_CLI_VERSION}); "
        f"claude-trio {claude_trio.__version__}, claude-agent-sdk {sdk_version}; "
        f"{args.turns} turns, {args.rounds} rounds; mock API on 127.0.0.1 answering 'ok'"
    )
    mark = os.urandom(8).hex()
    results: dict[str, list[dict[str, Any]]] = {library: [] for library in LIBRARIES}
    async with open_mock_anthropic_api(handler=answer_ok) as api:
        with tempfile.TemporaryDirectory(prefix="claude-trio-vs-sdk-") as tmp:
            for round_number in range(1, args.rounds + 1):
                order = LIBRARIES if round_number % 2 else LIBRARIES[::-1]
                figures = {}
                for index, library in enumerate(order):
                    tag = f"r{round_number}-{index}-{mark}"
                    result = await run_worker(
                        library, tag, cli, args.turns, Path(tmp, tag), api, mark
                    )
                    results[library].append(result)
                    figures[library] = summary(result)
                    print(f"   round {round_number}: {library} done")
                print_table(
                    f"round {round_number} (order: {', '.join(order)})",
                    {library: figures[library] for library in LIBRARIES},
                )
    # Both rounds together: warm turns pooled, first turns and peaks averaged.
    pooled = {}
    for library, runs in results.items():
        merged = {
            "turns": [runs[0]["turns"][0]] + [t for run in runs for t in run["turns"][1:]],
            "closed": statistics.mean(run["closed"] for run in runs),
            "imported": statistics.mean(run["imported"] for run in runs),
            "rss_baseline_kb": statistics.mean(run["rss_baseline_kb"] for run in runs),
            "rss_peak_kb": statistics.mean(run["rss_peak_kb"] for run in runs),
        }
        pooled[library] = summary(merged)
        pooled[library]["first"] = statistics.mean(summary(run)["first"] for run in runs)
    print_table(
        f"all rounds: warm turns pooled ({len(results[LIBRARIES[0]]) * (args.turns - 1)} per "
        "client); first turn, RSS, close and import averaged",
        pooled,
    )
    for library, runs in results.items():
        firsts = ", ".join(f"{summary(run)['first']:.0f}" for run in runs)
        first_cpu = ", ".join(f"{summary(run)['first_cpu']:.0f}" for run in runs)
        spare = ""
        if runs[0].get("spare_ready"):
            ready = ", ".join(f"{run['spare_ready'] * 1000:.0f}" for run in runs)
            spare = f"; the spare was ready {ready} ms after the backend opened"
        print(
            f"   {library:<16} first turn per round: {firsts} ms "
            f"(CPU {first_cpu} ms); processes: {runs[0]['processes']}{spare}"
        )
    targets = (
        ("warm turn, complete() / query()", "trio complete()", "SDK query()", "median", 0.3),
        ("first turn, prewarm=1 / query()", "trio prewarm=1", "SDK query()", "first", 0.5),
        ("warm turn, complete() / SDK client", "trio complete()", "SDK client", "median", 1.0),
    )
    print("\n   the targets of issue 12 (all rounds)")
    for title, ours, theirs, figure, target in targets:
        ratio = pooled[ours][figure] / pooled[theirs][figure]
        verdict = "met" if ratio <= target else "missed"
        print(f"   {title:<36} {ratio:5.2f}x (target <= {target}x: {verdict})")
    cpu = pooled["trio complete()"]["cpu"]
    print(
        f"   {'library CPU per warm turn':<36} {cpu:5.2f} ms (target <= 2 ms: "
        f"{'met' if cpu <= 2 else 'missed'})"
    )
    left = marked_processes(mark)
    assert not left, f"processes outlived the benchmark: {left}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, help="turns per conversation (default 10)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, alternating the order")
    parser.add_argument("--quick", action="store_true", help="4 turns")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return
    args.turns = args.turns or (4 if args.quick else 10)
    if args.turns < 2:
        parser.error("--turns must be at least 2 (a first turn and a warm one)")
    import trio

    trio.run(parent, args)


if __name__ == "__main__":
    main()
