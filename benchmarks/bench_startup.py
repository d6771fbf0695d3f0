"""Where the ``claude`` start-up goes: spawn to ready, per variant of flags, env and cwd.

Each variant runs in its own isolated config (a temporary directory, never
``~/.claude``) against the mock API on 127.0.0.1. One unmeasured start first (the CLI's
first start in a fresh config does one-time work: migrations, a ``.claude.json``
backup, the official plugin marketplace attempt), then the measured rounds: each round
starts every variant once, in turn (each round beginning with the next variant), so a
change in the machine's load hits them all alike. A start is timed with
``time.perf_counter()`` around entering ``open_conversation`` (fork/exec of ``claude`` on
a PTY until the CLI shows its input box), then the block is left at once. At ready, the
CLI's CPU time so far is read from ``/proc/<pid>/stat``.

Variants marked ``ref`` change what the CLI does (settings, MCP servers, CLAUDE.md,
hooks …) and are no candidates for a default: they are there to show how much of the
time the features they switch off cost.

Also, unless ``--no-profile``: the CLI's own start-up profile (``CLAUDE_CODE_PROFILE_STARTUP=1``
makes it write ``startup-perf/<session>.json`` into its config dir), medians of its
phases over the baseline's starts. With ``--strace`` (needs ``strace``): one traced
baseline start listing the subprocesses and DNS look-ups before and after ready.

Run: ``python benchmarks/bench_startup.py [--quick] [--rounds N] [--strace]``; the CLI
comes from ``CLAUDE_TRIO_CLI`` or ``PATH`` (`claude_trio.find_cli`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trio

from claude_trio import PINNED_CLI_VERSION, ConversationOptions, find_cli, open_conversation
from claude_trio.testing import (
    IsolatedConfig,
    MessageReply,
    MockAnthropicAPI,
    RecordedRequest,
    isolated_config,
    open_mock_anthropic_api,
    text_reply,
)

#: A bound on one start, so a wedged CLI fails the benchmark instead of hanging it.
START_LIMIT = 60.0


@dataclass(frozen=True)
class Variant:
    """One way to start the CLI."""

    name: str
    env: Mapping[str, str] = field(default_factory=dict)
    args: Sequence[str] = ()
    git: bool = False
    ref: bool = False


#: The measured variants; the first one is the baseline the others are compared with.
VARIANTS: tuple[Variant, ...] = (
    Variant("library defaults (baseline)"),
    Variant("cwd is a git repo (1 commit)", git=True),
    Variant(
        "no official marketplace install",
        env={"CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1"},
    ),
    Variant(
        "no IDE auto-connect/-install",
        env={"CLAUDE_CODE_AUTO_CONNECT_IDE": "0", "CLAUDE_CODE_IDE_SKIP_AUTO_INSTALL": "1"},
    ),
    Variant(
        "no update/installation checks",
        env={"DISABLE_UPDATES": "1", "DISABLE_INSTALLATION_CHECKS": "1"},
    ),
    Variant("no startup work gate", env={"CLAUDE_CODE_DISABLE_STARTUP_WORK_GATE": "1"}),
    Variant(
        "no feature flags (ref)",
        env={"CLAUDE_CODE_DISABLE_FEATURE_FLAGS": "1", "DISABLE_GROWTHBOOK": "1"},
        ref=True,
    ),
    Variant("--strict-mcp-config (ref)", args=("--strict-mcp-config",), ref=True),
    Variant("--setting-sources '' (ref)", args=("--setting-sources", ""), ref=True),
    Variant("--bare (ref)", args=("--bare",), ref=True),
)

#: The variants of ``--quick``.
QUICK = frozenset(
    {
        "library defaults (baseline)",
        "cwd is a git repo (1 commit)",
        "no official marketplace install",
        "no IDE auto-connect/-install",
        "--bare (ref)",
    }
)

#: The CLI's own start-up phases (``CLAUDE_CODE_PROFILE_STARTUP``), as (label, first
#: mark, last mark); the marks are milliseconds since the process started.
PHASES: tuple[tuple[str, str | None, str], ...] = (
    ("runtime boot (Bun) to profiler", None, "profiler_initialized"),
    ("loading the bundled JS modules", "cli_before_main_import", "main_tsx_entry"),
    ("arguments, settings, MDM", "main_tsx_entry", "init_function_start"),
    ("init: config, env, network/TLS setup", "init_function_start", "init_function_end"),
    ("migrations, remote settings, plugin kick", "init_function_end", "action_handler_start"),
    ("session setup (messaging socket, keys)", "action_handler_start", "action_after_setup"),
    ("tools, commands, model", "action_after_setup", "action_model_resolved"),
    ("setup screens, MCP configs, plugins, hooks", "action_model_resolved", "action_after_hooks"),
    ("first render (REPL mount)", "action_after_hooks", "fullscreen_canary_armed"),
)


def answer_ok(request: RecordedRequest) -> MessageReply:
    """The mock's answer to any request (none is expected before ready)."""
    return text_reply("ok")


@dataclass
class Slot:
    """A variant's config, options and measurements."""

    variant: Variant
    config: IsolatedConfig
    options: ConversationOptions
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    requests_before_ready: list[int] = field(default_factory=list)


def make_slot(variant: Variant, root: Path, api: MockAnthropicAPI, cli: Path) -> Slot:
    """Create *variant*'s directory, working directory and options under *root*."""
    root.mkdir()
    cwd = root / "project"
    cwd.mkdir()
    if variant.git:
        git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
        git += ["-c", "init.defaultBranch=main", "-C", str(cwd)]
        subprocess.run([*git, "init", "-q"], check=True)
        (cwd / "README").write_text("bench\n")
        subprocess.run([*git, "add", "README"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    config = isolated_config(root, base_url=api.base_url, cwd=cwd, extra_env=variant.env)
    options = ConversationOptions(
        cwd=config.cwd,
        env=config.env,
        cli_path=str(cli),
        max_retries=0,
        extra_args=tuple(variant.args),
    )
    return Slot(variant=variant, config=config, options=options)


async def timed_start(slot: Slot, api: MockAnthropicAPI, *, record: bool = True) -> float:
    """Start the CLI once; return the seconds from spawn to ready."""
    before = len(api.requests)
    with trio.fail_after(START_LIMIT):
        started = time.perf_counter()
        async with open_conversation(slot.options) as conversation:
            elapsed = time.perf_counter() - started
            seen = len(api.requests) - before
            cpu = cpu_seconds(conversation.process.pid)
    if record:
        slot.seconds.append(elapsed)
        slot.cpu_seconds.append(cpu)
        slot.requests_before_ready.append(seen)
    return elapsed


def cpu_seconds(pid: int) -> float:
    """CPU time of process *pid* and of its children it has reaped (user + system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def stats_row(name: str, slot: Slot, base: Slot | None) -> str:
    ms = sorted(value * 1000 for value in slot.seconds)
    cpu = statistics.median(slot.cpu_seconds) * 1000
    median = statistics.median(ms)
    delta = cpu_delta = ""
    if base is not None:
        delta = f"{median - statistics.median(base.seconds) * 1000:+.0f}"
        cpu_delta = f"{cpu - statistics.median(base.cpu_seconds) * 1000:+.0f}"
    requests = sum(slot.requests_before_ready)
    return (
        f"{name:<34} {len(ms):>3} {median:>7.0f} {ms[0]:>7.0f} {ms[-1]:>7.0f} {delta:>7}"
        f" {cpu:>7.0f} {cpu_delta:>7} {requests:>4}"
    )


async def measure(slots: Sequence[Slot], api: MockAnthropicAPI, rounds: int) -> None:
    for slot in slots:
        await timed_start(slot, api, record=False)  # the config's one-time first start
    for number in range(rounds):
        shift = number % len(slots)  # each round starts with another variant
        for slot in [*slots[shift:], *slots[:shift]]:
            await timed_start(slot, api)


def print_variants(slots: Sequence[Slot]) -> None:
    print("\nspawn -> ready in ms: median, min, max, and the median's delta to the baseline;")
    print("cpu: median CPU ms the CLI (and its reaped children) had used at ready, and delta;")
    print("req: requests the mock saw before ready, over all starts")
    print(
        f"{'variant':<34} {'n':>3} {'median':>7} {'min':>7} {'max':>7} {'delta':>7}"
        f" {'cpu':>7} {'delta':>7} {'req':>4}"
    )
    for number, slot in enumerate(slots):
        print(stats_row(slot.variant.name, slot, None if number == 0 else slots[0]))


async def profile(slot: Slot, api: MockAnthropicAPI, runs: int) -> None:
    """Print the medians of the CLI's own start-up phases over *runs* starts."""
    env = {**slot.config.env, "CLAUDE_CODE_PROFILE_STARTUP": "1"}
    options = ConversationOptions(
        cwd=slot.options.cwd,
        env=env,
        cli_path=slot.options.cli_path,
        max_retries=0,
    )
    profiled = Slot(variant=slot.variant, config=slot.config, options=options)
    perf_dir = slot.config.config_dir / "startup-perf"
    shutil.rmtree(perf_dir, ignore_errors=True)
    for _ in range(runs):
        await timed_start(profiled, api)
    marks_by_run: list[dict[str, float]] = []
    for path in sorted(perf_dir.glob("*.json")):
        data = json.loads(path.read_text())
        marks_by_run.append({mark["name"]: mark["startTime"] for mark in data.get("marks", [])})
    if not marks_by_run:
        print("\n(the CLI wrote no start-up profile)")
        return
    print(f"\nthe CLI's own start-up phases (CLAUDE_CODE_PROFILE_STARTUP=1), median of {runs}:")
    print(f"{'phase':<46} {'ms':>6} {'ends at':>8}")
    for label, first, last in PHASES:
        spans = [
            run[last] - (0.0 if first is None else run[first])
            for run in marks_by_run
            if last in run and (first is None or first in run)
        ]
        ends = [run[last] for run in marks_by_run if last in run]
        if spans:
            print(f"{label:<46} {statistics.median(spans):>6.0f} {statistics.median(ends):>8.0f}")
    ready = statistics.median(profiled.seconds) * 1000
    print(f"{'(spawn -> ready seen by the library)':<46} {'':>6} {ready:>8.0f}")


async def traced(slot: Slot, api: MockAnthropicAPI, scratch: Path) -> None:
    """Start the baseline once under strace; list its subprocesses and DNS look-ups."""
    strace = shutil.which("strace")
    if strace is None:
        print("\n(no strace: --strace skipped)")
        return
    log = scratch / "strace.log"
    wrapper = scratch / "claude-under-strace"
    wrapper.write_text(
        "#!/bin/sh\nexec "
        + shlex.join(
            [
                strace,
                *("-f", "-ttt", "-s", "200", "-o", str(log)),
                *("-e", "trace=execve,sendmmsg,sendto", str(slot.options.cli_path)),
            ]
        )
        + ' "$@"\n'
    )
    wrapper.chmod(0o700)
    options = ConversationOptions(
        cwd=slot.options.cwd,
        env=slot.config.env,
        cli_path=str(wrapper),
        max_retries=0,
    )
    with trio.fail_after(START_LIMIT):
        started = time.time()
        async with open_conversation(options):
            ready = time.time()
            await trio.sleep(3.0)  # let the after-ready work run, to list it too
    ready_ms = (ready - started) * 1000
    print(f"\none start under strace (slower than untraced): ready at +{ready_ms:.0f} ms")
    first: float | None = None
    for line in log.read_text(errors="replace").splitlines():
        parts = line.split(None, 2)
        if len(parts) < 3 or "resumed>" in parts[2]:
            continue
        stamp = float(parts[1])
        first = stamp if first is None else first
        what = describe(parts[2])
        if what:
            when = "before" if stamp <= ready else "after "
            print(f"  +{(stamp - first) * 1000:5.0f} ms {when} ready  {what}")


def describe(call: str) -> str | None:
    """A short description of an ``execve`` or a DNS query in an strace line."""
    if call.startswith("execve(") and "= -1" not in call:
        words = re.findall(r'"((?:[^"\\]|\\.)*)"', call)[1:]
        shown: list[str] = []
        skip = False
        for word in words:
            if skip:
                skip = False
                continue
            if word == "-c":  # git's many -c overrides
                skip = True
                continue
            shown.append(word)
        return "exec " + " ".join(shown)[:110]
    if call.startswith("sendmmsg(") and "iov_base=" in call:
        labels = re.findall(r"\\(?:[0-9]{1,3}|t|n|v|f|r)([a-z0-9-]+)", call.split("iov_base=")[1])
        name = ".".join(label for label in labels if len(label) > 1)
        return f"DNS query {name}" if name else None
    return None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 5 variants")
    parser.add_argument("--rounds", type=int, help="starts per variant (default 10, quick 3)")
    parser.add_argument("--no-profile", action="store_true", help="skip the CLI's own profile")
    parser.add_argument("--strace", action="store_true", help="also one start under strace")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 10)
    variants = [v for v in VARIANTS if v.name in QUICK] if args.quick else list(VARIANTS)
    cli = find_cli()
    version = await trio.run_process([str(cli), "--version"], capture_stdout=True, check=False)
    print(
        f"python {sys.version.split()[0]}, trio {trio.__version__}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f}; claude {cli} ({version.stdout.decode().strip()}, pinned "
        f"{PINNED_CLI_VERSION}); {rounds} starts per variant, interleaved"
    )
    async with open_mock_anthropic_api(handler=answer_ok) as api:
        with tempfile.TemporaryDirectory(prefix="claude-trio-bench-startup-") as tmp:
            scratch = Path(await trio.Path(tmp).resolve())
            slots = [
                make_slot(variant, scratch / f"v{number}", api, cli)
                for number, variant in enumerate(variants)
            ]
            await measure(slots, api, rounds)
            print_variants(slots)
            if not args.no_profile:
                await profile(slots[0], api, max(3, rounds // 2))
            if args.strace:
                await traced(slots[0], api, scratch)


if __name__ == "__main__":
    trio.run(main)
