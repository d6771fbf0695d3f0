"""``claude-trio demo``: how it shows events, a run on the fake CLI, one on the real CLI."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from claude_trio import (
    AssistantMessage,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)
from claude_trio._demo import (
    DEMO_PROMPTS,
    MCP_TOOL,
    add_demo_arguments,
    describe,
    describe_block,
    mcp_tool_line,
    result_text,
    run_demo,
    timing_line,
)
from claude_trio.testing import RecordedRequest, RequestKind


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_demo_arguments(parser)
    return parser.parse_args(argv)


def _halves(out: str) -> tuple[str, str]:
    backend, _, gateway = out.partition("== through the gateway")
    assert "== through ClaudeCodeBackend" in backend
    return backend, gateway


# --- showing events, no process ---------------------------------------------------------


def test_events_are_shown_one_line_per_block() -> None:
    said = AssistantMessage(
        id="msg_1",
        model="m",
        content=[TextBlock(text="I will call Bash."), ToolUseBlock(id="t1", name="Bash", input={})],
    )
    assert describe(said) == ["  claude: I will call Bash.", "  tool call Bash {}"]
    result = UserMessage(
        content=[
            ToolResultBlock(
                tool_use_id="t1", content=({"type": "text", "text": "ECHO: hi"},), is_error=True
            )
        ]
    )
    assert describe(result) == ["  tool result (error): ECHO: hi"]
    assert describe(UserMessage(content="typed")) == []
    assert describe(SystemMessage(subtype="api_retry", content="retrying")) == [
        "  [api_retry] retrying"
    ]
    (line,) = describe(ResultMessage(stop_reason="end_turn", duration_ms=7))
    assert "stop_reason=end_turn" in line
    assert "duration_ms=7" in line


def test_gateway_blocks_and_tool_results_are_shown_in_a_line() -> None:
    assert result_text(" hello\n") == "hello"
    assert result_text([{"type": "text", "text": "a"}, {"type": "image"}]) == "a [image]"
    assert describe_block({"type": "text", "text": "hi"}) == "  claude: hi"
    assert (
        describe_block({"type": "server_tool_use", "name": "Bash", "input": {"command": "x"}})
        == '  tool call Bash {"command": "x"}'
    )
    assert (
        describe_block({"type": "mcp_tool_result", "content": [{"type": "text", "text": "ok"}]})
        == "  tool result: ok"
    )
    assert timing_line(0.5, 1.25) == "  (first event after 0.500 s, turn 1.250 s)"
    assert timing_line(None, 2, started=True) == "  (no event, turn 2.000 s, claude started for it)"


def _request(body: dict[str, Any]) -> RecordedRequest:
    return RecordedRequest(
        method="POST",
        path="/v1/messages",
        headers={},
        body=body,
        kind=RequestKind.MAIN,
        request_id="r",
        time=0.0,
        wall_time=0.0,
    )


def test_the_mcp_tool_name_is_read_from_the_requests() -> None:
    offered = {"messages": [{"role": "system", "content": f"deferred tools:\n{MCP_TOOL}"}]}
    assert MCP_TOOL in mcp_tool_line([_request({"messages": []}), _request(offered)])
    missing = mcp_tool_line([_request({"messages": []})])
    assert "had not offered" in missing


def test_arguments() -> None:
    args = _parse()
    assert (args.prompts, args.cli_path) == ([], None)
    assert _parse("a", "b", "--cli-path", "/c").prompts == ["a", "b"]
    assert "CALL_BASH echo hello" in DEMO_PROMPTS
    assert any(prompt.startswith(f"CALL_TOOL {MCP_TOOL} ") for prompt in DEMO_PROMPTS)


# --- the fake CLI (no MCP servers: its turns are plain and Bash) ----------------------------


async def test_both_halves_answer_on_the_fake_cli(
    fake_cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parse("--cli-path", str(fake_cli), "hello", "CALL_BASH echo hello")
    with trio.fail_after(120):
        assert await run_demo(args) == 0
    backend, gateway = _halves(capsys.readouterr().out)
    for half in (backend, gateway):
        assert "  claude: echo: hello\n" in half
        assert '  tool call Bash {"command": "echo hello"' in half
        assert "  tool result: hello\n" in half
        assert "  claude: tool said: hello\n" in half
        assert half.count("(first event after") == 2
        assert half.count("claude started for it") == 1
    assert "1 claude process(es) started for 2 turn(s); 1 turn(s) reused a live one" in backend
    assert "1 claude process(es) started for 2 request(s); 1 request(s) reused" in gateway


async def test_a_failed_turn_is_shown_and_the_demo_goes_on(
    fake_cli: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "anthropic", None)  # import anthropic fails
    args = _parse("--cli-path", str(fake_cli), "ERR500", "after")
    with trio.fail_after(120):
        assert await run_demo(args) == 0
    backend, gateway = _halves(capsys.readouterr().out)
    assert "  error: APIError" in backend
    assert "  claude: echo: after\n" in backend
    assert gateway.strip().splitlines()[1:] == [
        "the anthropic package is not installed: skipping the gateway half"
    ]


# --- the real CLI -------------------------------------------------------------------------


@pytest.mark.real_cli
async def test_the_demo_command_on_the_real_cli(claude_cli: Path) -> None:
    env = {**os.environ, "CLAUDE_TRIO_CLI": str(claude_cli)}
    with trio.fail_after(300):
        done = await trio.run_process(
            [sys.executable, "-m", "claude_trio", "demo"],
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    backend, gateway = _halves(out)
    for half in (backend, gateway):
        assert "  claude: echo: Hello! Who are you?\n" in half
        assert "  tool result: hello\n" in half
        assert "  claude: tool said: hello\n" in half
        assert f'  tool call {MCP_TOOL} {{"text": "hi from the demo"}}\n' in half
        assert "  tool result: ECHO: hi from the demo\n" in half
        assert "  claude: tool said: ECHO: hi from the demo\n" in half
        assert half.count("(first event after") == len(DEMO_PROMPTS)
    assert f"the CLI offered the echo MCP server's tool to the model as {MCP_TOOL}" in backend
    assert "1 claude process(es) started for 3 turn(s); 2 turn(s) reused a live one" in backend
    assert "1 claude process(es) started for 3 request(s); 2 request(s) reused" in gateway
