"""Each script in examples/ runs its ``main`` on the real CLI against the mock API."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio

from claude_trio import (
    AssistantMessage,
    BackendOptions,
    BackendStatistics,
    Event,
    ResultMessage,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)
from claude_trio.testing import IsolatedConfig, MockAnthropicAPI, RecordedRequest

from .helpers import assistant_texts

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TESTED = ("basic_usage", "multi_turn", "mcp_tool", "restart")
TURN = 60


def _load(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` by path, as a module of its own."""
    spec = importlib.util.spec_from_file_location(f"_example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def options(claude_cli: Path, isolated: IsolatedConfig) -> BackendOptions:
    """Backend options that run the real CLI against the mock, in the isolated config."""
    return BackendOptions(
        cwd=isolated.cwd,
        env=isolated.env,
        cli_path=str(claude_cli),
        dangerously_skip_permissions=True,
        max_retries=0,
    )


def _text(events: list[Event]) -> str:
    return "".join(assistant_texts(events))


def _dialogue(request: RecordedRequest) -> list[tuple[str, str]]:
    """The (role, text) of the user's and assistant's text blocks, system reminders left out.

    The CLI also puts ``role: "system"`` entries (its environment notes) in ``messages``.
    """
    said = []
    for message in request.messages:
        if message["role"] not in ("user", "assistant"):
            continue
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        said += [
            (message["role"], block["text"])
            for block in blocks
            if block.get("type") == "text" and not block["text"].startswith("<system-reminder>")
        ]
    return said


def _session(request: RecordedRequest) -> str:
    return request.headers["x-claude-code-session-id"]


def test_every_example_is_tested() -> None:
    assert sorted(path.stem for path in EXAMPLES.glob("*.py")) == sorted(TESTED)


async def test_basic_usage(options: BackendOptions, mock_api: MockAnthropicAPI) -> None:
    example = _load("basic_usage")
    with trio.fail_after(TURN):
        events: list[Event] = await example.main(options)
    result = events[-1]
    assert isinstance(result, ResultMessage)
    assert not result.is_error
    assert _text(events) == f"echo: {example.PROMPT}"
    (request,) = mock_api.main_requests
    assert request.prompt == example.PROMPT


async def test_multi_turn_uses_one_process(
    options: BackendOptions, mock_api: MockAnthropicAPI
) -> None:
    example = _load("multi_turn")
    with trio.fail_after(2 * TURN):
        statistics: BackendStatistics = await example.main(options)
    assert (statistics.spawned, statistics.reused, statistics.reseeded) == (1, 1, 0)
    assert statistics.live == 1
    first, second = mock_api.main_requests
    assert _session(first) == _session(second)
    one, two = example.QUESTIONS
    assert _dialogue(second) == [("user", one), ("assistant", f"echo: {one}"), ("user", two)]


async def test_mcp_tool_result_comes_back_as_events(
    options: BackendOptions, mock_api: MockAnthropicAPI
) -> None:
    example = _load("mcp_tool")
    with trio.fail_after(TURN):
        events: list[Event] = await example.main(
            options, 'CALL_TOOL mcp__echo__echo {"text": "hi mcp"}'
        )
    (call,) = [
        block
        for event in events
        if isinstance(event, AssistantMessage)
        for block in event.content
        if isinstance(block, ToolUseBlock)
    ]
    assert (call.name, call.input) == ("mcp__echo__echo", {"text": "hi mcp"})
    (result,) = [
        block
        for event in events
        if isinstance(event, UserMessage) and not isinstance(event.content, str)
        for block in event.content
        if isinstance(block, ToolResultBlock)
    ]
    assert result.tool_use_id == call.id
    assert not result.is_error
    assert "ECHO: hi mcp" in json.dumps(result.content)
    assert isinstance(events[-1], ResultMessage)
    assert _text(events).endswith("tool said: ECHO: hi mcp")
    # The mock saw the tool's answer in the follow-up request.
    assert "ECHO: hi mcp" in json.dumps(mock_api.main_requests[-1].tool_results)


async def test_restart_reseeds_the_history_once_in_order(
    options: BackendOptions, mock_api: MockAnthropicAPI
) -> None:
    example = _load("restart")
    with trio.fail_after(2 * TURN):
        messages: list[dict[str, Any]] = await example.main(options)
    question, reply, follow_up, answer = (message["content"] for message in messages)
    assert [message["role"] for message in messages] == ["user", "assistant"] * 2
    assert reply == f"echo: {question}"
    assert answer == f"echo: {follow_up}"
    first, second = mock_api.main_requests
    assert _session(first) != _session(second)
    assert _dialogue(second) == [("user", question), ("assistant", reply), ("user", follow_up)]
