"""The smoke suite: claude_trio against the logged-in ``claude`` and a real account.

Opt-in: it runs only with ``RUN_CLAUDE_SMOKE=1`` (``RUN_CLAUDE_SMOKE=1 nox -s tests``, or
``RUN_CLAUDE_SMOKE=1 pytest tests/test_smoke.py``), because it needs a logged-in CLI and
spends a little of the account's usage: about a dozen short turns. It never runs in CI.

These tests are the one exception to "tests never touch ``~/.claude``": they use the
user's real config directory (``CLAUDE_CONFIG_DIR``, else ``~/.claude``), since that is
where the login lives. They run in a scratch working directory under pytest's
``tmp_path``, trusted with ``trust_cwd=True`` (so the CLI records that directory as
trusted in the user's ``.claude.json``), and remove the session files they create. The
tool call runs with ``dangerously_skip_permissions`` in that scratch directory; the
CLI's bypass-mode warning must have been accepted once (``claude
--dangerously-skip-permissions`` by hand), or that test fails naming the setting.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from claude_trio import (
    AssistantMessage,
    BackendOptions,
    ClaudeCodeBackend,
    Conversation,
    ConversationOptions,
    Event,
    ResultMessage,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
    open_conversation,
)
from claude_trio._environment import config_dir_of
from claude_trio._paths import project_key, remove_session_files

from .helpers import Message, assistant_texts

pytestmark = pytest.mark.skipif(
    os.environ.get("RUN_CLAUDE_SMOKE") != "1",
    reason="the smoke suite drives your logged-in claude on your account: "
    "set RUN_CLAUDE_SMOKE=1 to run it",
)

#: Seconds one real turn may take.
REAL_TURN = 180

PONG = "Reply with the single word: pong"


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """An empty working directory for the CLI (trusted by ``trust_cwd=True``).

    Afterwards the CLI's folder for it under ``<config>/projects/`` goes too.
    """
    path = tmp_path / "scratch"
    path.mkdir()
    path = path.resolve()
    yield path
    shutil.rmtree(config_dir_of(os.environ) / "projects" / project_key(path), ignore_errors=True)


def _options(cli: Path, cwd: Path, **overrides: Any) -> BackendOptions:
    settings: dict[str, Any] = {"cwd": cwd, "cli_path": str(cli), "trust_cwd": True}
    return BackendOptions(**{**settings, **overrides})


async def _ask(backend: ClaudeCodeBackend, messages: list[Message]) -> list[Event]:
    with trio.fail_after(REAL_TURN):
        events = [event async for event in backend.complete(messages)]
    result = events[-1]
    assert isinstance(result, ResultMessage)
    assert not result.is_error, events
    return events


def _said(events: list[Event]) -> str:
    return " ".join(assistant_texts(events))


@contextlib.asynccontextmanager
async def _conversation(options: ConversationOptions) -> AsyncIterator[Conversation]:
    """`open_conversation`, then its session file removed once the CLI has exited."""
    session_file: Path | None = None
    try:
        async with open_conversation(options) as conversation:
            session_file = conversation.session_file
            yield conversation
    finally:
        if session_file is not None:
            remove_session_files(session_file)


async def test_one_turn(claude_cli: Path, scratch: Path) -> None:
    async with ClaudeCodeBackend(_options(claude_cli, scratch)) as backend:
        events = await _ask(backend, [{"role": "user", "content": PONG}])
    assert "pong" in _said(events).lower()
    result = events[-1]
    assert isinstance(result, ResultMessage)
    assert result.duration_ms is not None  # ended by the CLI's turn_duration record
    assert result.usage.output_tokens > 0


async def test_turns_reuse_one_process(claude_cli: Path, scratch: Path) -> None:
    history: list[Message] = [
        {"role": "user", "content": "Remember the number 41. Reply with just: OK"}
    ]
    async with ClaudeCodeBackend(_options(claude_cli, scratch)) as backend:
        first = await _ask(backend, history)
        history += [
            {"role": "assistant", "content": _said(first)},
            {"role": "user", "content": "Which number did I ask you to remember? Just the number."},
        ]
        second = await _ask(backend, history)
        stats = backend.statistics()
    assert "41" in _said(second)
    assert (stats.spawned, stats.reused, stats.reseeded) == (1, 1, 0)


async def test_a_bash_tool_call(claude_cli: Path, scratch: Path) -> None:
    # As root the CLI refuses bypass mode unless IS_SANDBOX=1 (FACTS.md §0).
    env = {"IS_SANDBOX": "1"} if os.geteuid() == 0 else {}
    options = _options(claude_cli, scratch, dangerously_skip_permissions=True, env=env)
    prompt = (
        "Use the Bash tool to run exactly this command: echo smoke\n"
        "Then reply with the command's output and nothing else."
    )
    async with ClaudeCodeBackend(options) as backend:
        events = await _ask(backend, [{"role": "user", "content": prompt}])
    calls = [
        block
        for event in events
        if isinstance(event, AssistantMessage)
        for block in event.content
        if isinstance(block, ToolUseBlock)
    ]
    assert [call.name for call in calls][:1] == ["Bash"], events
    assert "echo smoke" in str(calls[0].input.get("command"))
    results = [
        block
        for event in events
        if isinstance(event, UserMessage) and not isinstance(event.content, str)
        for block in event.content
        if isinstance(block, ToolResultBlock)
    ]
    assert results
    assert "smoke" in str(results[0].content)
    assert not results[0].is_error
    assert "smoke" in _said(events)


async def test_interrupt_then_another_turn(claude_cli: Path, scratch: Path) -> None:
    options = _options(claude_cli, scratch).conversation_options()
    async with _conversation(options) as conversation:
        await conversation.send(
            "Write a 1500-word essay on the history of the bicycle. No tools, no headings."
        )
        await trio.sleep(2)  # let the reply start streaming
        await conversation.interrupt()
        with trio.fail_after(REAL_TURN):
            stopped = [event async for event in conversation.receive_turn()]
        result = stopped[-1]
        assert isinstance(result, ResultMessage)
        assert result.interrupted, stopped
        with trio.fail_after(REAL_TURN):
            after = [event async for event in conversation.turn(PONG)]
    assert "pong" in _said(after).lower()
    last = after[-1]
    assert isinstance(last, ResultMessage)
    assert not last.is_error
    assert not last.interrupted


async def test_a_history_with_no_process_is_reseeded(claude_cli: Path, scratch: Path) -> None:
    history: list[Message] = [
        {"role": "user", "content": "My favourite colour is teal. Reply with just: OK"},
        {"role": "assistant", "content": "OK"},
        {"role": "user", "content": "What is my favourite colour? Reply with one word."},
    ]
    async with ClaudeCodeBackend(_options(claude_cli, scratch)) as backend:
        events = await _ask(backend, history)
        stats = backend.statistics()
    assert (stats.spawned, stats.reseeded) == (1, 1)
    assert "teal" in _said(events).lower()
