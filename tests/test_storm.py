"""The fault suite: cancellations at random moments and faults injected mid-turn.

After each fault the caller has the documented typed error within a bound, no process,
zombie, fd, session file or temporary file is left, and the backend serves the next call.
CI runs ``CLAUDE_TRIO_STORM`` = 50 cancellations per CLI (the default), and a fifth of
that through the relay (``partial_messages``); ``nox -s stress`` runs 500 and repeats
each injected fault more often.
"""

from __future__ import annotations

import math
import os
import random
import signal
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from claude_trio import (
    APIConnectionError,
    BackendError,
    BackendOptions,
    BackendTimeoutError,
    ClaudeCodeBackend,
    Event,
    MessageParseError,
    ProcessError,
    SessionError,
)
from claude_trio.testing import (
    IsolatedConfig,
    MockAnthropicAPI,
    isolated_config,
    magic_word_handler,
    open_mock_anthropic_api,
)

from .conftest import LEAK_MARK
from .helpers import (
    TURN,
    Message,
    ask,
    assistant_texts,
    backend_options,
    message_texts,
    partial_texts,
    pids_of_sessions,
)

STORM = int(os.environ.get("CLAUDE_TRIO_STORM", "50"))
FAULT_REPEATS = max(1, STORM // 25)
# Teardown is SIGTERM, close_timeout of grace, then SIGKILL and a 2 s wait.
CLOSE_TIMEOUT = 5.0
TEARDOWN_BOUND = CLOSE_TIMEOUT + 2.0 + 1.0


def _options(cli: Path, config: IsolatedConfig, **overrides: Any) -> BackendOptions:
    return backend_options(cli, config, **{"close_timeout": CLOSE_TIMEOUT, **overrides})


async def _wait_closed(backend: ClaudeCodeBackend) -> None:
    """Wait until no process of *backend* is closing."""
    for _ in range(int(TEARDOWN_BOUND / 0.005)):
        if not backend.statistics().closing:
            return
        await trio.sleep(0.005)
    raise AssertionError(f"processes still closing after {TEARDOWN_BOUND} s")


def _marked(mark: str) -> list[str]:
    needle = f"{LEAK_MARK}={mark}".encode()
    alive = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if needle in Path(entry.path, "environ").read_bytes().split(b"\0"):
                alive.append(entry.name)
        except OSError:
            continue
    return alive


def _private_temp_dirs() -> set[str]:
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("claude-trio-")}


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


@pytest.mark.parametrize("relay", [False, True], ids=["direct", "relay"])
async def test_cancellation_storm(
    cli: Path,
    fake_cli: Path,
    isolated: IsolatedConfig,
    mock_api: MockAnthropicAPI,
    leak_mark: str,
    capsys: pytest.CaptureFixture[str],
    relay: bool,
) -> None:
    # Through the relay (partial_messages) the cuts also land mid-response, in the relay.
    calls = max(10, STORM // 5) if relay else STORM
    rng = random.Random(int(os.environ.get("CLAUDE_TRIO_STORM_SEED", "7")))
    temp_before = _private_temp_dirs()
    teardowns: list[float] = []
    cancelled = completed = 0
    label, max_delay = ("fake CLI", 1.5) if cli == fake_cli else ("real CLI", 3.0)
    if relay:
        label += " through the relay"
    options = _options(cli, isolated, max_live=2, partial_messages=relay)
    async with ClaudeCodeBackend(options) as backend:
        history: list[Message] = []
        for number in range(calls):
            kind = rng.choice(["fresh", "continue", "reseed"])
            if kind == "fresh" or not history:
                history = [{"role": "user", "content": f"SLOW0.5 fresh {number}"}]
            elif kind == "continue":
                history = [*history, {"role": "user", "content": f"continue {number}"}]
            else:
                history = [
                    {"role": "user", "content": f"seed {number}"},
                    {"role": "assistant", "content": "noted"},
                    {"role": "user", "content": f"SLOW0.5 reseed {number}"},
                ]
            # The real CLI takes about a second to start and answer: give it the time.
            deadline = trio.current_time() + rng.uniform(0.0, max_delay)
            with trio.move_on_at(deadline) as scope:
                events = await ask(backend, history)
            if scope.cancelled_caught:
                cancelled += 1
                history = []
                await _wait_closed(backend)
                teardowns.append(trio.current_time() - deadline)
            else:
                completed += 1
                if relay:
                    assert partial_texts(events) == message_texts(events)
                reply = "".join(assistant_texts(events))
                history = [*history, {"role": "assistant", "content": reply}]
            stats = backend.statistics()
            assert stats.busy == 0
            assert len(_marked(leak_mark)) <= 3 * max(stats.live, 1)
        # The backend serves the next call.
        events = await ask(backend, [{"role": "user", "content": "still there?"}])
        assert assistant_texts(events) == ["echo: still there?"]
    assert not list((isolated.config_dir / "projects").rglob("*.jsonl"))
    assert _private_temp_dirs() <= temp_before
    assert cancelled > 0
    with capsys.disabled():
        if teardowns:
            print(
                f"\n{label}: {calls} calls, {cancelled} cancelled, {completed} completed; "
                f"teardown after cancel: p50 {_percentile(teardowns, 0.5) * 1000:.0f} ms, "
                f"p99 {_percentile(teardowns, 0.99) * 1000:.0f} ms, "
                f"max {max(teardowns) * 1000:.0f} ms"
            )


# --- faults injected mid-turn ---------------------------------------------------------------


@asynccontextmanager
async def _turn_in_flight(
    backend: ClaudeCodeBackend, mock_api: MockAnthropicAPI, prompt: str
) -> AsyncIterator[tuple[list[BaseException | list[Event]], Path]]:
    """Start a turn of *prompt*; yield once its request reached the mock, with its file."""
    outcome: list[BaseException | list[Event]] = []
    async with trio.open_nursery() as nursery:

        async def run() -> None:
            try:
                outcome.append(await ask(backend, [{"role": "user", "content": prompt}]))
            except BackendError as exc:
                outcome.append(exc)

        count = len(mock_api.main_requests)
        nursery.start_soon(run)
        with trio.fail_after(TURN):
            await mock_api.wait_for_requests(count + 1)
            path = await _session_file_of(backend, backend.live_session_ids()[-1])
        yield outcome, path
    assert len(outcome) == 1


async def _session_file_of(backend: ClaudeCodeBackend, session_id: str) -> Path:
    """Wait for the session file of *session_id* to appear (the CLI writes it late)."""
    projects = backend.options.resolved_config_dir() / "projects"
    for _ in range(1000):
        found = list(projects.rglob(f"{session_id}.jsonl"))
        if found:
            return found[0]
        await trio.sleep(0.01)
    raise AssertionError(f"no session file for {session_id}")


def _truncate(path: Path) -> None:
    os.truncate(path, 0)


def _append_garbage(path: Path) -> None:
    with path.open("ab") as file:
        file.write(b"this is not a record\n")


def _delete(path: Path) -> None:
    path.unlink()


# A fault that lands before the tail has read the prompt's record loses the record: the
# turn then ends at its prompt_timeout, which these tests keep short.
PROMPT_TIMEOUT = 5.0
FAULTS: dict[str, tuple[Callable[[Path], None], tuple[type[BaseException], ...]]] = {
    "truncated": (_truncate, (SessionError, BackendTimeoutError)),
    "garbage line": (_append_garbage, (MessageParseError,)),
    # The CLI appends by path: a deleted file comes back as a new one, which the tail
    # reports as replaced; a turn that was already written in full completes.
    "deleted": (_delete, (SessionError, BackendTimeoutError)),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_a_session_file_fault_mid_turn(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI, fault: str
) -> None:
    inject, errors = FAULTS[fault]
    async with ClaudeCodeBackend(_options(cli, isolated, prompt_timeout=PROMPT_TIMEOUT)) as backend:
        for number in range(FAULT_REPEATS):
            async with _turn_in_flight(backend, mock_api, f"SLOW2 {fault} {number}") as (
                outcome,
                path,
            ):
                started = trio.current_time()
                inject(path)
            result = outcome[0]
            assert isinstance(result, errors) or (fault == "deleted" and isinstance(result, list))
            if isinstance(result, BackendTimeoutError):
                assert result.phase == "prompt"
            assert trio.current_time() - started < PROMPT_TIMEOUT + 10
            events = await ask(backend, [{"role": "user", "content": f"after {number}"}])
            assert assistant_texts(events) == [f"echo: after {number}"]
    assert not list((isolated.config_dir / "projects").rglob("*.jsonl"))


async def test_kill_9_mid_turn(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with ClaudeCodeBackend(_options(cli, isolated)) as backend:
        for number in range(FAULT_REPEATS):
            async with _turn_in_flight(backend, mock_api, f"SLOW3 victim {number}") as (
                outcome,
                _,
            ):
                started = trio.current_time()
                for slot_pid in pids_of_sessions(set(backend.live_session_ids())):
                    os.kill(slot_pid, signal.SIGKILL)
            result = outcome[0]
            assert isinstance(result, ProcessError)
            assert result.signal == signal.SIGKILL
            assert trio.current_time() - started < TEARDOWN_BOUND
            events = await ask(backend, [{"role": "user", "content": f"after {number}"}])
            assert assistant_texts(events) == [f"echo: after {number}"]


@pytest.mark.parametrize("relay", [False, True], ids=["direct", "relay"])
async def test_the_api_dying_mid_stream(
    cli: Path, tmp_path: Path, project_dir: Path, leak_mark: str, relay: bool
) -> None:
    for number in range(FAULT_REPEATS):
        root = tmp_path / f"api-{number}"
        root.mkdir()
        async with trio.open_nursery() as nursery:
            api_scope = trio.CancelScope()

            async def serve(
                scope: trio.CancelScope, task_status: trio.TaskStatus[MockAnthropicAPI]
            ) -> None:
                with scope:
                    async with open_mock_anthropic_api(handler=magic_word_handler) as api:
                        task_status.started(api)
                        await trio.sleep_forever()

            api = await nursery.start(serve, api_scope)
            config = isolated_config(
                root, base_url=api.base_url, cwd=project_dir, extra_env={LEAK_MARK: leak_mark}
            )
            options = _options(cli, config, partial_messages=relay)
            async with ClaudeCodeBackend(options) as backend:
                async with _turn_in_flight(backend, api, "SLOW5 the API dies") as (outcome, _):
                    started = trio.current_time()
                    api_scope.cancel()
                result = outcome[0]
                assert isinstance(result, APIConnectionError | BackendError), result
                assert trio.current_time() - started < 30
                if relay:
                    # The relay cuts the CLI's response off; the CLI's retry finds no API.
                    assert isinstance(result, APIConnectionError), result


async def test_an_unwritable_projects_directory(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    projects = isolated.config_dir / "projects"
    projects.mkdir(exist_ok=True)
    key_dir = isolated.session_file("00000000-0000-4000-8000-000000000000").parent
    if key_dir.exists():
        key_dir.rmdir()
    key_dir.write_text("a file where the CLI wants a directory")
    options = _options(cli, isolated, prompt_timeout=5.0)
    async with ClaudeCodeBackend(options) as backend:
        started = trio.current_time()
        with pytest.raises(SessionError):
            await ask(
                backend,
                [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b"},
                    {"role": "user", "content": "c"},
                ],
            )
        assert trio.current_time() - started < 1
        started = trio.current_time()
        with pytest.raises(BackendError) as caught:
            await ask(backend, [{"role": "user", "content": "fresh"}])
        assert trio.current_time() - started < 5.0 + TEARDOWN_BOUND
        del caught
    key_dir.unlink()
