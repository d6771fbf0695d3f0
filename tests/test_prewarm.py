"""``BackendOptions(prewarm=N)``: spare processes, on the fake and the real CLI.

A spare is a ``claude`` started with a fresh session and nothing typed. These tests
check that a first turn takes one (the mock sees the spare's session id), that no
record of that turn is lost, that a spare which dies, expires or is evicted is
replaced, that spares never take the room a call waits for, and which re-seeds may use
one.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from claude_trio import (
    AssistantMessage,
    BackendOptions,
    BackendTimeoutError,
    ClaudeCodeBackend,
    CLINotFoundError,
    ResultMessage,
)
from claude_trio.testing import IsolatedConfig, MockAnthropicAPI

from .helpers import (
    Message,
    ask,
    assistant_texts,
    backend_options,
    pids_of_sessions,
    session_header,
    user_texts,
)

#: Seconds a test gives the spares to start.
READY = 60


def _options(cli: Path, config: IsolatedConfig, **overrides: Any) -> BackendOptions:
    return backend_options(cli, config, **{"max_retries": 0, "prewarm": 1, **overrides})


async def _prewarmed(backend: ClaudeCodeBackend) -> set[str]:
    """Wait for the spares; return the session ids of the live processes."""
    with trio.fail_after(READY):
        await backend.wait_prewarmed()
    return set(backend.live_session_ids())


async def _until(condition: Callable[[], bool]) -> None:
    """Wait, bounded, until *condition* holds: statistics have no event to wait on."""
    with trio.fail_after(READY):
        while not condition():  # noqa: ASYNC110
            await trio.sleep(0.05)


async def test_a_spare_answers_the_first_turn_and_is_refilled(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with ClaudeCodeBackend(_options(cli, isolated)) as backend:
        spares = await _prewarmed(backend)
        assert len(spares) == 1
        assert not mock_api.main_requests  # a spare is started, never typed into
        events = await ask(backend, [{"role": "user", "content": "first words"}])
        assert {session_header(r) for r in mock_api.main_requests} == spares
        refilled = await _prewarmed(backend)
        stats = backend.statistics()
    # Every record of the turn came through: the reply, then the result, once each.
    assert assistant_texts(events) == ["echo: first words"]
    assert [type(e) for e in events if isinstance(e, AssistantMessage | ResultMessage)] == [
        AssistantMessage,
        ResultMessage,
    ]
    assert len(refilled - spares) == 1
    assert (stats.prewarm_used, stats.prewarmed, stats.spares) == (1, 2, 1)
    assert stats.spawned == 2  # the spare and its replacement, nothing started for the call


async def test_the_next_spare_starts_once_the_first_turn_is_over(
    fake_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with ClaudeCodeBackend(_options(fake_cli, isolated)) as backend:
        await _prewarmed(backend)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, backend, [{"role": "user", "content": "SLOW3 go"}])
            await _until(lambda: backend.statistics().busy == 1)
            # Another call comes and goes meanwhile, which wakes the refill.
            await ask(backend, [{"role": "user", "content": "hi"}], system_prompt="other")
            await trio.sleep(0.5)  # time enough for a refill to have started
            during = backend.statistics()
        await _prewarmed(backend)
        after = backend.statistics()
    assert (during.busy, during.live, during.prewarmed, during.spares) == (1, 2, 1, 0)
    assert (after.prewarmed, after.spares) == (2, 1)


async def test_the_next_turns_reuse_the_spare_like_any_process(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    history: list[Message] = [{"role": "user", "content": "one"}]
    async with ClaudeCodeBackend(_options(cli, isolated)) as backend:
        await _prewarmed(backend)
        for word in ("two", "three"):
            events = await ask(backend, history)
            history += [
                {"role": "assistant", "content": "".join(assistant_texts(events))},
                {"role": "user", "content": word},
            ]
        await ask(backend, history)
        stats = backend.statistics()
    assert (stats.prewarm_used, stats.reused) == (1, 2)
    assert len({session_header(r) for r in mock_api.main_requests}) == 1
    assert user_texts(mock_api.main_requests[-1]) == ["one", "two", "three"]


async def test_a_spare_that_dies_is_replaced(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with ClaudeCodeBackend(_options(cli, isolated)) as backend:
        spares = await _prewarmed(backend)
        (pid,) = pids_of_sessions(spares)
        os.kill(pid, signal.SIGKILL)
        await _until(lambda: backend.statistics().discarded == 1)
        replacement = await _prewarmed(backend)
        assert replacement
        assert not replacement & spares
        events = await ask(backend, [{"role": "user", "content": "still there?"}])
        await _prewarmed(backend)
        stats = backend.statistics()
    assert assistant_texts(events) == ["echo: still there?"]
    assert {session_header(r) for r in mock_api.main_requests} == replacement
    assert (stats.prewarmed, stats.prewarm_used, stats.failed) == (3, 1, 0)


async def test_a_spare_expires_and_is_replaced(
    fake_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with ClaudeCodeBackend(_options(fake_cli, isolated, idle_ttl=0.3)) as backend:
        first = await _prewarmed(backend)
        await _until(lambda: backend.statistics().expired >= 1)
        later = await _prewarmed(backend)
        stats = backend.statistics()
    assert not first & later
    assert stats.prewarmed >= 2
    assert stats.live <= 2  # the expired one may still be closing


async def test_another_namespace_takes_a_fresh_spare_never_a_used_process(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    opening: list[Message] = [{"role": "user", "content": "same opening"}]
    async with ClaudeCodeBackend(_options(cli, isolated)) as backend:
        await _prewarmed(backend)
        await ask(backend, opening, namespace="tenant-a")
        await _prewarmed(backend)
        await ask(backend, opening, namespace="tenant-b")
        stats = backend.statistics()
    sessions = [session_header(r) for r in mock_api.main_requests]
    assert len(sessions) == 2
    assert sessions[0] != sessions[1]
    assert (stats.prewarm_used, stats.reused) == (2, 0)


async def test_another_model_or_system_prompt_never_takes_a_spare(
    fake_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with ClaudeCodeBackend(_options(fake_cli, isolated)) as backend:
        spares = await _prewarmed(backend)
        await ask(backend, [{"role": "user", "content": "hi"}], system_prompt="Be terse.")
        await ask(backend, [{"role": "user", "content": "hi"}], model="claude-haiku-4-5")
        stats = backend.statistics()
    assert stats.prewarm_used == 0
    assert not {session_header(r) for r in mock_api.main_requests} & spares


@pytest.mark.parametrize(
    ("mode", "takes_spare"), [("concat_message", True), ("native_jsonl", False)]
)
async def test_which_reseed_takes_a_spare(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI, mode: str, takes_spare: bool
) -> None:
    history: list[Message] = [
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": "noted"},
        {"role": "user", "content": "what is my name?"},
    ]
    async with ClaudeCodeBackend(_options(cli, isolated, injection_mode=mode)) as backend:
        spares = await _prewarmed(backend)
        await ask(backend, history)
        stats = backend.statistics()
    assert stats.reseeded == 1
    assert stats.prewarm_used == int(takes_spare)
    assert (session_header(mock_api.main_requests[-1]) in spares) is takes_spare
    # Either way the model saw the whole history.
    seen = "\n".join(user_texts(mock_api.main_requests[-1]))
    assert "my name is Ada" in seen
    assert "what is my name?" in seen


async def test_spares_never_take_the_room_a_call_waits_for(
    fake_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    options = _options(fake_cli, isolated, max_live=1, system_prompt="S")
    replies: dict[str, list[str]] = {}

    async def call(name: str, **extra: Any) -> None:
        events = await ask(backend, [{"role": "user", "content": f"I am {name}"}], **extra)
        replies[name] = assistant_texts(events)

    async with ClaudeCodeBackend(options) as backend:
        await _prewarmed(backend)
        assert backend.statistics().live == 1
        # Another system prompt: the spare cannot serve these and must make way, and
        # each call in turn gets the only room, however often the spare is refilled.
        async with trio.open_nursery() as nursery:
            for name in ("ann", "bob", "cy"):
                nursery.start_soon(partial(call, name, system_prompt="T"))
        stats = backend.statistics()
    assert replies == {name: [f"echo: I am {name}"] for name in ("ann", "bob", "cy")}
    assert stats.live <= 1
    # The spare made way once, then each call evicted the one before: no spare slipped
    # into the room between them.
    assert (stats.evicted, stats.spawned, stats.prewarmed, stats.prewarm_used) == (3, 4, 1, 0)


async def test_a_failed_spare_start_is_raised_once_and_tried_again(
    tmp_path: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    missing = tmp_path / "no-such-claude"
    async with ClaudeCodeBackend(_options(missing, isolated)) as backend:
        with trio.fail_after(READY), pytest.raises(CLINotFoundError):
            await backend.wait_prewarmed()
        with pytest.raises(CLINotFoundError):
            await ask(backend, [{"role": "user", "content": "hi"}])
        stats = backend.statistics()
    assert (stats.spares, stats.prewarmed, stats.live) == (0, 0, 0)


async def test_waiting_for_spares_is_bounded(
    fake_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    options = _options(fake_cli, isolated, max_live=1, startup_timeout=3.0)
    async with ClaudeCodeBackend(options) as backend:
        await _prewarmed(backend)
        async with trio.open_nursery() as nursery:
            # The only room becomes a conversation's: no spare can start meanwhile.
            nursery.start_soon(ask, backend, [{"role": "user", "content": "SLOW8 go"}])
            await _until(lambda: backend.statistics().busy == 1)
            with pytest.raises(BackendTimeoutError) as raised:
                await backend.wait_prewarmed()
            assert backend.statistics().busy == 1
            nursery.cancel_scope.cancel()
    assert raised.value.phase == "prewarm"


async def test_prewarm_zero_starts_nothing_ahead(
    fake_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with ClaudeCodeBackend(_options(fake_cli, isolated, prewarm=0)) as backend:
        await backend.wait_prewarmed()
        await trio.sleep(0.5)
        stats = backend.statistics()
    assert (stats.live, stats.spawned, stats.spares) == (0, 0, 0)


@pytest.mark.parametrize(
    ("prewarm", "max_live", "message"),
    [
        (-1, 4, "non-negative integer"),
        (True, 4, "non-negative integer"),
        (1.0, 4, "non-negative integer"),
        ("1", 4, "non-negative integer"),
        (3, 2, "at most max_live"),
    ],
)
def test_bad_prewarm_is_refused(
    tmp_path: Path, prewarm: object, max_live: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        BackendOptions(cwd=tmp_path, prewarm=prewarm, max_live=max_live)  # type: ignore[arg-type]
