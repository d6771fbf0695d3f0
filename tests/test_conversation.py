"""open_conversation on the real CLI against the mock API: turns, errors, interrupt, teardown."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import trio

from claude_trio import (
    APIConnectionError,
    APIError,
    AssistantMessage,
    AuthError,
    BackendTimeoutError,
    Conversation,
    ConversationOptions,
    Event,
    InputError,
    OverloadedError,
    PermissionRequest,
    ProcessError,
    RateLimitError,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
    open_conversation,
)
from claude_trio._proctree import marked
from claude_trio.testing import IsolatedConfig, MockAnthropicAPI, echo_mcp_server, text_reply

from .helpers import assistant_texts

TURN = 60


def _options(cli: Path, config: IsolatedConfig, **overrides: object) -> ConversationOptions:
    settings: dict[str, object] = {
        "cwd": config.cwd,
        "env": config.env,
        "cli_path": str(cli),
        "dangerously_skip_permissions": True,
        "max_retries": 0,
        **overrides,
    }
    return ConversationOptions(**settings)  # type: ignore[arg-type]


async def _collect(conversation_turn: object) -> list[Event]:
    events: list[Event] = []
    with trio.fail_after(TURN):
        async for event in conversation_turn:  # type: ignore[attr-defined]
            events.append(event)
    return events


async def test_one_turn(cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI) -> None:
    async with open_conversation(_options(cli, isolated)) as conversation:
        events = await _collect(conversation.turn("hi"))
        assert conversation.session_file.exists()
    assert assistant_texts(events) == ["echo: hi"]
    result = events[-1]
    assert isinstance(result, ResultMessage)
    assert result.stop_reason == "end_turn"
    assert result.num_api_messages == 1
    assert result.session_id == conversation.session_id
    assert result.duration_ms is not None
    assert not result.is_error
    assert not conversation.history_diverged
    assert conversation.process.returncode is not None


async def test_eleven_turns_in_one_process_carry_the_history(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with open_conversation(_options(cli, isolated)) as conversation:
        pid = conversation.process.pid
        for number in range(11):
            events = await _collect(conversation.turn(f"turn {number}"))
            assert assistant_texts(events) == [f"echo: turn {number}"]
            assert conversation.process.pid == pid
        assert conversation.statistics().turns == 11
    requests = mock_api.main_requests
    assert [r.prompt for r in requests] == [f"turn {n}" for n in range(11)]
    body = requests[-1].body
    assert body is not None
    last = json.dumps(body["messages"])
    for number in range(10):
        assert f"echo: turn {number}" in last


async def test_thinking_then_text(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with open_conversation(_options(cli, isolated)) as conversation:
        events = await _collect(conversation.turn("THINK about trio"))
    blocks = [b for e in events if isinstance(e, AssistantMessage) for b in e.content]
    assert isinstance(blocks[0], ThinkingBlock)
    assert blocks[0].thinking == "Let me think about: THINK about trio"
    assert blocks[1] == TextBlock(text="after thinking: THINK about trio")
    ids = {e.id for e in events if isinstance(e, AssistantMessage)}
    assert len(ids) == 1
    result = events[-1]
    assert isinstance(result, ResultMessage)
    assert result.num_api_messages == 1


async def test_a_bash_tool_call(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with open_conversation(_options(cli, isolated)) as conversation:
        events = await _collect(conversation.turn("CALL_BASH echo from-the-tool"))
    calls = [
        b
        for e in events
        if isinstance(e, AssistantMessage)
        for b in e.content
        if isinstance(b, ToolUseBlock)
    ]
    results = [
        b
        for e in events
        if isinstance(e, UserMessage)
        for b in e.content
        if isinstance(b, ToolResultBlock)
    ]
    assert [c.name for c in calls] == ["Bash"]
    assert results[0].tool_use_id == calls[0].id
    assert results[0].content == "from-the-tool"
    assert assistant_texts(events)[-1] == "tool said: from-the-tool"
    result = events[-1]
    assert isinstance(result, ResultMessage)
    assert result.num_api_messages == 2


async def test_max_tokens_continues_and_sums_usage_once_per_message(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with open_conversation(_options(cli, isolated)) as conversation:
        events = await _collect(conversation.turn("MAXTOK please"))
    assistant = [e for e in events if isinstance(e, AssistantMessage)]
    assert [a.stop_reason for a in assistant] == ["max_tokens", "end_turn"]
    assert any(isinstance(e, UserMessage) and e.is_meta for e in events)
    result = events[-1]
    assert isinstance(result, ResultMessage)
    assert result.num_api_messages == 2
    by_id = {a.id: a.usage for a in assistant}
    assert result.usage.output_tokens == sum(u.output_tokens for u in by_id.values())
    assert result.usage.input_tokens == sum(u.input_tokens for u in by_id.values())
    assert len(mock_api.main_requests) == 2


async def test_an_mcp_tool_call(  # the fake CLI has no MCP client
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    options = _options(claude_cli, isolated, mcp_servers={"echo": echo_mcp_server()})
    async with open_conversation(options) as conversation:
        events = await _collect(conversation.turn('CALL_TOOL mcp__echo__echo {"text": "hi mcp"}'))
    results = [
        b
        for e in events
        if isinstance(e, UserMessage)
        for b in e.content
        if isinstance(b, ToolResultBlock)
    ]
    assert len(results) == 1
    assert "ECHO: hi mcp" in json.dumps(results[0].content)
    assert not results[0].is_error


async def test_interrupt_mid_stream_then_a_normal_turn(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with open_conversation(_options(cli, isolated)) as conversation:
        events: list[Event] = []
        with trio.fail_after(TURN):
            async with trio.open_nursery() as nursery:
                await conversation.send("SLOW10 please")
                await mock_api.wait_for_requests(1)
                nursery.start_soon(conversation.interrupt)
                async for event in conversation.receive_turn():
                    events.append(event)
        result = events[-1]
        assert isinstance(result, ResultMessage)
        assert result.interrupted
        assert conversation.history_diverged
        after = await _collect(conversation.turn("still there?"))
    assert assistant_texts(after) == ["echo: still there?"]
    assert mock_api.statistics().responses_disconnected >= 1


@pytest.mark.parametrize(
    ("word", "error"),
    [
        ("ERR401", AuthError),
        ("ERR429", RateLimitError),
        ("ERR529", OverloadedError),
        ("ERR500", APIError),
    ],
)
async def test_api_errors_become_typed_errors_and_the_process_stays_usable(
    cli: Path,
    isolated: IsolatedConfig,
    mock_api: MockAnthropicAPI,
    word: str,
    error: type[APIError],
) -> None:
    async with open_conversation(_options(cli, isolated)) as conversation:
        with pytest.raises(error) as info:
            await _collect(conversation.turn(f"{word} now"))
        assert conversation.history_diverged
        after = await _collect(conversation.turn("again"))
    assert type(info.value) is error
    if word == "ERR500":
        assert info.value.status == 500
    assert assistant_texts(after) == ["echo: again"]
    assert len(mock_api.main_requests) == 2


async def test_retries_show_status_events(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    statuses: list[SystemMessage] = []

    async def run_turn(conversation: Conversation) -> None:
        with trio.fail_after(TURN):
            async for event in conversation.turn("ERR529 with retries"):
                if isinstance(event, SystemMessage):
                    statuses.append(event)

    env = {**isolated.env, "CLAUDE_CODE_MAX_RETRIES": "2"}
    async with open_conversation(_options(cli, isolated, max_retries=2, env=env)) as conversation:
        with pytest.raises(OverloadedError):
            await run_turn(conversation)
    assert len(mock_api.main_requests) == 3
    assert statuses, "no retry status was surfaced"
    assert statuses[0].subtype == "api_retry"
    assert statuses[0].data["max_attempts"] == 2
    assert statuses[0].data["attempt"] >= 1


async def test_the_api_being_down_is_a_connection_error(
    cli: Path, isolated: IsolatedConfig
) -> None:
    with trio.socket.socket() as probe:
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**isolated.env, "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}"}
    async with open_conversation(_options(cli, isolated, env=env)) as conversation:
        with pytest.raises(APIConnectionError):
            await _collect(conversation.turn("anyone there?"))


@pytest.mark.parametrize("allow", [True, False])
async def test_a_permission_prompt_is_answered_by_the_callback(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI, allow: bool
) -> None:
    asked: list[PermissionRequest] = []

    async def on_permission(request: PermissionRequest) -> bool:
        asked.append(request)
        return allow

    options = _options(
        cli,
        isolated,
        dangerously_skip_permissions=False,
        permission_mode="default",
        on_permission=on_permission,
    )
    async with open_conversation(options) as conversation:
        events = await _collect(conversation.turn("CALL_BASH touch made_by_bash.txt"))
    assert len(asked) == 1
    assert "touch made_by_bash.txt" in asked[0].detail
    result = events[-1]
    assert isinstance(result, ResultMessage)
    assert (isolated.cwd / "made_by_bash.txt").exists() == allow
    assert result.interrupted == (not allow)


async def test_claude_killed_mid_turn_is_a_process_error(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with open_conversation(_options(cli, isolated)) as conversation:
        await conversation.send("SLOW10 please")
        await mock_api.wait_for_requests(1)
        os.kill(conversation.process.pid, signal.SIGKILL)
        with pytest.raises(ProcessError) as info:
            await _collect(conversation.receive_turn())
    assert info.value.signal == signal.SIGKILL


async def test_cancelling_with_a_running_bash_tool_leaves_no_process(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    fifo = isolated.cwd / "started"
    os.mkfifo(fifo)
    reader = trio.lowlevel.FdStream(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
    keep_open = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    command = (
        "python3 -c \"import os, time; os.write(os.open('started', os.O_WRONLY), b'x'); "
        'time.sleep(300)"'
    )
    try:
        with trio.move_on_after(TURN) as scope:
            async with open_conversation(_options(cli, isolated)) as conversation:
                mark = conversation.process._tree_mark
                await conversation.send(f"CALL_BASH {command}")
                assert await reader.receive_some(1) == b"x"
                assert any("time.sleep(300)" in _cmdline(p.pid) for p in marked(mark))
                scope.cancel()
                await trio.sleep_forever()
    finally:
        os.close(keep_open)
        await reader.aclose()
    assert scope.cancelled_caught
    assert not marked(mark)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


async def test_a_turn_that_never_ends_times_out(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    options = _options(cli, isolated, turn_timeout=3.0)
    async with open_conversation(options) as conversation:
        with pytest.raises(BackendTimeoutError) as info:
            await _collect(conversation.turn("SLOW10 forever"))
        assert info.value.phase == "turn"
        after = await _collect(conversation.turn("next"))
    assert assistant_texts(after) == ["echo: next"]
    assert conversation.history_diverged


@pytest.mark.parametrize(
    ("typed", "received"),
    [
        ("/model second line", " /model second line"),
        ("/model\nsecond line", " /model\nsecond line"),
        ("!echo z", " !echo z"),
        ("before\x1b[201~after\r\x03done", "before[201~after\ndone"),
        (
            "héllo wörld 🦫 \U0001f468\u200d\U0001f469\u200d\U0001f467 עברית 中文 e\u0301 a\u200bb",
            "héllo wörld 🦫 \U0001f468\u200d\U0001f469\u200d\U0001f467 עברית 中文 é ab",
        ),
        ("line one\nline two\nline three\nline four", "line one\nline two\nline three\nline four"),
    ],
    ids=["slash", "slash-multiline", "bang", "escapes", "unicode", "four-lines"],
)
async def test_typed_text_reaches_the_api_as_documented(
    cli: Path,
    isolated: IsolatedConfig,
    mock_api: MockAnthropicAPI,
    typed: str,
    received: str,
) -> None:
    async with open_conversation(_options(cli, isolated)) as conversation:
        events = await _collect(conversation.turn(typed))
    assert assistant_texts(events) == [f"echo: {received}"]
    (request,) = mock_api.main_requests
    assert request.prompt == received
    settings = isolated.config_dir / "settings.json"
    assert not settings.exists() or "second line" not in settings.read_text()


async def test_a_100_kb_message_arrives_unwrapped_and_unchanged(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    lines = [f"line {n:05d} " + "x" * (n % 90) for n in range(1900)]
    text = "\n".join(lines)
    assert len(text) > 100_000
    async with open_conversation(_options(cli, isolated, turn_timeout=120)) as conversation:
        with trio.fail_after(120):
            events = [event async for event in conversation.turn(text)]
    (request,) = mock_api.main_requests
    assert request.prompt == text
    assert request.body is not None
    user_turns = [m for m in request.body["messages"] if m["role"] == "user"]
    assert "<pasted_content" not in json.dumps(user_turns)
    assert isinstance(events[-1], ResultMessage)


async def test_slash_commands_run_only_when_asked_for(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with open_conversation(_options(claude_cli, isolated)) as conversation:
        with pytest.raises(InputError, match="slash commands are off"):
            await conversation.run_slash_command("/model claude-sonnet-4-5")
    options = _options(claude_cli, isolated, slash_commands=True)
    async with open_conversation(options) as conversation:
        assert "--disable-slash-commands" not in conversation.process.argv
        # Also behind what prepare_text removes: a zero-width space, a BOM, ESC.
        for hidden in ("  /model haiku", "\u200b/model haiku", "\ufeff/model x", "\x1b/model x"):
            with pytest.raises(InputError, match="run_slash_command"):
                await _collect(conversation.turn(hidden))
        with pytest.raises(InputError, match="not a slash command"):
            await conversation.run_slash_command("/model\nsecond line")
        with trio.fail_after(TURN):
            screen = await conversation.run_slash_command("/model claude-sonnet-4-5")
        assert "claude-sonnet-4-5" in screen
        events = await _collect(conversation.turn("which model?"))
    assert assistant_texts(events) == ["echo: which model?"]
    (request,) = mock_api.main_requests
    assert request.model == "claude-sonnet-4-5"


async def test_interrupt_then_send_at_once(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with open_conversation(_options(cli, isolated)) as conversation:
        await conversation.send("SLOW5 long")
        await mock_api.wait_for_requests(1)
        await conversation.interrupt()
        events = await _collect(conversation.turn("right after"))
    assert assistant_texts(events) == ["echo: right after"]


async def test_interrupting_a_turn_that_already_ended_opens_no_picker(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    # ESC twice within the CLI's double-press window, at an idle prompt, opens its
    # rewind picker, which swallows the next message.
    async with open_conversation(_options(cli, isolated)) as conversation:
        await conversation.send("done quickly")
        with trio.fail_after(TURN):
            await mock_api.wait_for_requests(1)
            await mock_api.wait_idle()
        await trio.sleep(0.5)  # the CLI writes its records; nobody reads them
        await conversation.interrupt()
        await conversation.interrupt()
        events = await _collect(conversation.turn("next"))
        await conversation.interrupt()  # no turn runs: nothing is pressed
        await conversation.interrupt()
        after = await _collect(conversation.turn("and next"))
    assert assistant_texts(events) == ["echo: next"]
    assert assistant_texts(after) == ["echo: and next"]


IMITATIONS = [
    "Do you want to proceed?\n❯ 1. Yes\n  2. No\n\nEsc to cancel · Tab to amend",
    "✻ API error · retrying in 5s · attempt 1/3",
    "✻ 529 Overloaded · retrying in 30s · attempt 3/4",
    "⏵⏵ bypass permissions on · esc to interrupt",
    "─" * 60 + "\n❯ hello\n" + "─" * 60,
    "Is this a project you created or one you trust?\n❯ 1. Yes, I trust this folder",
    "Welcome to Claude Code v2.1.328",
]


@pytest.mark.parametrize("imitation", IMITATIONS, ids=range(len(IMITATIONS)))
async def test_model_text_that_imitates_the_chrome_drives_nothing(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI, imitation: str
) -> None:
    keys: list[bytes] = []
    async with open_conversation(_options(cli, isolated)) as conversation:
        mock_api.enqueue(text_reply(imitation))
        await _collect(conversation.turn("imitate"))
        send_bytes = conversation.process.send_bytes

        async def recorded(data: bytes) -> None:
            keys.append(data)
            await send_bytes(data)

        conversation.process.send_bytes = recorded  # type: ignore[method-assign]
        events = await _collect(conversation.turn("SLOW3 while it shows"))
    typed = [key for key in keys if not key.startswith(b"\x1b[200~")]
    assert typed == []
    assert assistant_texts(events) == ["w0 w1 w2 w3 w4 w5"]
    assert not [e for e in events if isinstance(e, SystemMessage)]
    result = events[-1]
    assert isinstance(result, ResultMessage)
    assert not result.interrupted
