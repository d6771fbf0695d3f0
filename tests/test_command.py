"""The ``claude-trio`` command: ask, chat and serve as subprocesses, exit codes, output."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

from claude_trio import (
    APIConnectionError,
    AssistantMessage,
    AuthError,
    BackendError,
    BackendTimeoutError,
    CLINotFoundError,
    InputError,
    MessageParseError,
    OverloadedError,
    ProcessError,
    RateLimitError,
    ResultMessage,
    SessionError,
    StreamEvent,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    _command,
)
from claude_trio._command_ask import EventPrinter, error_lines, tool_call_line, tool_result_line
from claude_trio._pty import PtyClaudeProcess
from claude_trio._spinner import ERASE, Spinner
from claude_trio.testing import MOCK_API_KEY, IsolatedConfig, MockAnthropicAPI

from .helpers import TURN, processes_with, session_header

COMMAND = (sys.executable, "-m", "claude_trio")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "command.rst"


# --- helpers -------------------------------------------------------------------------------


def command_env(config: IsolatedConfig, **more: str) -> dict[str, str]:
    """The command's environment: the isolated config's (mock URL, key, config dir)."""
    return {**config.env, **more}


async def run_command(
    args: Sequence[str], config: IsolatedConfig, *, stdin: bytes = b"", **env: str
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m claude_trio ARGS`` to its end, stdin not a terminal."""
    with trio.fail_after(TURN):
        result = await trio.run_process(
            [*COMMAND, *args],
            env=command_env(config, **env),
            cwd=config.cwd,
            stdin=stdin,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert not claude_processes(config), "the command left a claude behind"
    return result


def claude_processes(config: IsolatedConfig) -> list[str]:
    """The live processes started with this test's config dir (the CLIs the command ran)."""
    return processes_with(f"CLAUDE_CONFIG_DIR={config.config_dir}", zombies=False)


def common(cli: Path, config: IsolatedConfig) -> list[str]:
    return ["--cli-path", str(cli), "--cwd", str(config.cwd), "--dangerously-skip-permissions"]


def err_lines(result: subprocess.CompletedProcess[bytes]) -> list[str]:
    return result.stderr.decode().splitlines()


def assert_no_traceback(result: subprocess.CompletedProcess[bytes]) -> None:
    assert b"Traceback" not in result.stderr, result.stderr.decode()


async def _read_all(stream: trio.abc.ReceiveStream) -> bytes:
    data = b""
    with trio.fail_after(TURN):
        while chunk := await stream.receive_some():
            data += chunk
    return data


async def _wait_for(proc: PtyClaudeProcess, wanted: str) -> None:
    """Wait until *wanted* shows on the command's screen."""
    with trio.move_on_after(TURN) as bound:
        while wanted not in (text := proc.screen.text()):
            assert not proc.output_ended, f"the chat ended waiting for {wanted!r}:\n{text}"
            await proc.wait_output()
    assert not bound.cancelled_caught, f"no {wanted!r} on screen:\n{proc.screen.text()}"


# --- ask -----------------------------------------------------------------------------------


async def test_ask_prints_the_answer_and_reaches_the_env_api(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    result = await run_command(["ask", *common(cli, isolated), "hello there"], isolated)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == "echo: hello there\n"
    assert_no_traceback(result)
    # ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY of the command's environment reached the CLI.
    (request,) = mock_api.main_requests
    assert request.prompt == "hello there"
    assert {k.lower(): v for k, v in request.headers.items()}["x-api-key"] == MOCK_API_KEY


async def test_ask_reads_the_prompt_from_stdin(
    fake_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    result = await run_command(
        ["ask", *common(fake_cli, isolated)], isolated, stdin=b"from the pipe\n"
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == "echo: from the pipe\n"
    assert [r.prompt for r in mock_api.main_requests] == ["from the pipe"]


async def test_ask_json_prints_one_event_per_line(fake_cli: Path, isolated: IsolatedConfig) -> None:
    result = await run_command(
        ["ask", "--json", *common(fake_cli, isolated), "CALL_BASH echo hi"], isolated
    )
    assert result.returncode == 0, result.stderr.decode()
    events = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(events) >= 4
    assert events[-1]["type"] == "result"
    assert events[-1]["is_error"] is False
    blocks = [block for event in events[:-1] for block in event.get("content", [])]
    kinds = [block["type"] for block in blocks if isinstance(block, dict)]
    assert kinds.count("tool_use") == 1
    assert kinds.count("tool_result") == 1
    assert {"type": "text", "text": "tool said: hi"} in blocks
    assert result.stderr == b""  # no spinner, no tool lines: stderr is not a terminal


async def test_ask_shows_a_tool_call_compactly(cli: Path, isolated: IsolatedConfig) -> None:
    result = await run_command(["ask", *common(cli, isolated), "CALL_BASH echo hi"], isolated)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().splitlines() == ["I will call Bash.", "tool said: hi"]
    lines = err_lines(result)
    assert "● Bash(echo hi)" in lines
    assert "  ⎿ hi" in lines


async def test_ask_without_a_terminal_denies_a_permission_prompt(
    fake_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    args = ["ask", "--cli-path", str(fake_cli), "--permission-mode", "default"]
    result = await run_command([*args, "CALL_BASH echo hi"], isolated)
    assert result.returncode == 0, result.stderr.decode()
    text = result.stderr.decode()
    assert "claude-trio: denied Bash" in text
    assert "stdin is not a terminal" in text
    assert "tool said: hi" not in result.stdout.decode()


async def test_ask_on_a_terminal_asks_before_a_tool_runs(
    fake_cli: Path, isolated: IsolatedConfig
) -> None:
    argv = [*COMMAND, "ask", "--cli-path", str(fake_cli), "--permission-mode", "default"]
    proc = PtyClaudeProcess.spawn(
        [*argv, "CALL_BASH echo hi"], env=command_env(isolated), cwd=isolated.cwd
    )
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(proc.drain)
            await _wait_for(proc, "Allow? [y/N]")
            assert "claude-trio: Bash" in proc.screen.text()
            await proc.send_bytes(b"y\r")
            await _wait_for(proc, "tool said: hi")
            with trio.fail_after(TURN):
                assert await proc.wait() == 0
            nursery.cancel_scope.cancel()
    finally:
        await proc.aclose()
    assert not claude_processes(isolated)


async def test_ctrl_c_ends_ask_with_130(
    fake_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    process = await trio.lowlevel.open_process(
        [*COMMAND, "ask", *common(fake_cli, isolated), "SLOW5 slowly"],
        env=command_env(isolated),
        cwd=isolated.cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        with trio.fail_after(TURN):
            await mock_api.wait_for_requests(1)
        process.send_signal(signal.SIGINT)
        with trio.fail_after(TURN):
            assert await process.wait() == 130
        assert (await _read_all(process.stderr)).decode() == "claude-trio: interrupted\n"
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert not claude_processes(isolated)


# --- exit codes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "status", "first_line"),
    [
        ("ERR401", 5, "claude-trio: AuthError: "),
        ("ERR429", 6, "claude-trio: RateLimitError: "),
        ("ERR529", 7, "claude-trio: OverloadedError: "),
        ("exit", 4, "claude-trio: InputError: "),
    ],
)
async def test_expected_failures_exit_by_class_without_a_traceback(
    fake_cli: Path, isolated: IsolatedConfig, prompt: str, status: int, first_line: str
) -> None:
    # With retries (the command passes CLAUDE_CODE_MAX_RETRIES on), the CLI announces the
    # 429's retry-after, longer than max_retry_wait: the error carries the wait.
    retries = "2" if prompt == "ERR429" else "0"
    result = await run_command(
        ["ask", *common(fake_cli, isolated), prompt], isolated, CLAUDE_CODE_MAX_RETRIES=retries
    )
    assert result.returncode == status, result.stderr.decode()
    assert_no_traceback(result)
    errors = [line for line in err_lines(result) if line.startswith("claude-trio: ")]
    assert len(errors) == 1
    assert errors[0].startswith(first_line)
    if prompt == "ERR429":
        assert re.search(r"\(retry after \d+ s\)", errors[0])


async def test_a_missing_cli_exits_3_with_the_fix(isolated: IsolatedConfig) -> None:
    result = await run_command(["ask", "--cli-path", "/nonexistent/claude", "hi"], isolated)
    assert result.returncode == 3
    assert_no_traceback(result)
    first, fix = err_lines(result)
    assert first.startswith("claude-trio: CLINotFoundError: ")
    assert "/nonexistent/claude" in first
    assert fix.startswith("claude-trio: fix: install the Claude Code CLI")


async def test_json_mode_reports_an_error_as_a_json_line(
    fake_cli: Path, isolated: IsolatedConfig
) -> None:
    result = await run_command(["ask", "--json", *common(fake_cli, isolated), "ERR401"], isolated)
    assert result.returncode == 5
    last = json.loads(result.stdout.decode().splitlines()[-1])
    assert last["type"] == "error"
    assert last["error"]["type"] == "AuthError"


async def test_usage_errors_exit_2(isolated: IsolatedConfig) -> None:
    no_cwd = await run_command(["ask", "--cwd", str(isolated.cwd / "missing"), "hi"], isolated)
    assert no_cwd.returncode == 2
    assert "--cwd" in no_cwd.stderr.decode()
    bad_flag = await run_command(["ask", "--no-such-flag", "hi"], isolated)
    assert bad_flag.returncode == 2
    assert_no_traceback(bad_flag)


def test_exit_status_by_error_class() -> None:
    cases: list[tuple[BackendError, int]] = [
        (CLINotFoundError("x"), 3),
        (InputError("x"), 4),
        (AuthError("x"), 5),
        (RateLimitError("x"), 6),
        (OverloadedError("x"), 7),
        (APIConnectionError("x"), 7),
        (BackendTimeoutError("x", phase="turn", timeout=1), 8),
        (ProcessError("x"), 9),
        (SessionError("x"), 9),
        (MessageParseError("x"), 9),
        (BackendError("x"), 9),
    ]
    assert [_command.exit_status_for(error) for error, _ in cases] == [s for _, s in cases]
    documented = {code for code, _ in _command.EXIT_CODES}
    assert {status for _, status in cases} <= documented


def _table_rows(text: str) -> list[tuple[int, str]]:
    """The rows of the first ``Code  Meaning`` table in *text*."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"\s*Code\s+Meaning\s*$", line))
    rows = []
    for line in lines[start + 2 :]:
        if re.match(r"\s*=+\s+=+\s*$", line):
            break
        code, meaning = line.strip().split(None, 1)
        rows.append((int(code), meaning))
    return rows


def test_the_exit_code_table_is_the_same_in_the_docstring_and_the_docs() -> None:
    expected = [(code, meaning) for code, meaning in _command.EXIT_CODES]
    assert _command.__doc__ is not None
    assert _table_rows(_command.__doc__) == expected
    assert _table_rows(DOCS.read_text()) == expected


def test_error_lines_say_when_to_retry_and_the_fix() -> None:
    reset = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    limited = RateLimitError("usage limit", retry_after=90, reset_at=reset)
    assert error_lines(limited) == [
        "claude-trio: RateLimitError: usage limit (retry after 90 s)"
        " (the limit resets at 2026-01-02T03:04:05+00:00)"
    ]
    trust = SessionError("the trust dialog", fix="pass trust_cwd=True, or trust it")
    assert error_lines(trust) == [
        "claude-trio: SessionError: the trust dialog",
        "claude-trio: fix: pass --trust-cwd, or trust it",
    ]
    crashed = ProcessError("claude exited", exit_status=1, screen_tail="a\nb")
    assert error_lines(crashed) == ["claude-trio: ProcessError: claude exited; exit status 1"]


# --- output pieces ---------------------------------------------------------------------------


def test_tool_lines_are_compact() -> None:
    call = ToolUseBlock(id="t1", name="Bash", input={"command": "echo hi", "description": "d"})
    assert tool_call_line(call) == "● Bash(echo hi)"
    other = ToolUseBlock(id="t2", name="mcp__x__y", input={"a": 1})
    assert tool_call_line(other) == '● mcp__x__y({"a":1})'
    long = ToolResultBlock(tool_use_id="t1", content="x" * 300 + "\nsecond\nthird")
    line = tool_result_line(long)
    assert line.startswith("  ⎿ xxx")
    assert line.endswith("… (+2 lines)")
    assert len(line) < 130
    failed = ToolResultBlock(
        tool_use_id="t1", content=({"type": "text", "text": "no"},), is_error=True
    )
    assert tool_result_line(failed) == "  ⎿ error: no"


def _shown(spinner: Spinner) -> bool:
    return spinner.shown


async def test_the_spinner_erases_itself_before_text_is_printed() -> None:
    err, out = io.StringIO(), io.StringIO()
    spinner = Spinner(err, label="claude", enabled=True)
    spinner.draw()
    assert _shown(spinner)
    assert err.getvalue().startswith(ERASE + "⠋ claude 0.0s")
    printer = EventPrinter(out=out, err=err, spinner=spinner)
    printer.show(AssistantMessage(id="m", model="x", content=[TextBlock("hi")]))
    assert err.getvalue().endswith(ERASE)
    assert not _shown(spinner)
    assert out.getvalue() == "hi\n"
    with spinner.paused():
        spinner.draw()
    assert not _shown(spinner)
    quiet = Spinner(io.StringIO(), label="claude", enabled=False)
    quiet.draw()
    assert not quiet.shown


def _piece(kind: str, parent: str | None = None, **fields: Any) -> StreamEvent:
    return StreamEvent(
        uuid="u", session_id="s", event={"type": kind, **fields}, parent_tool_use_id=parent
    )


def _text_delta(text: str, parent: str | None = None) -> StreamEvent:
    return _piece(
        "content_block_delta", parent, index=0, delta={"type": "text_delta", "text": text}
    )


async def test_streamed_text_is_printed_as_it_comes_and_once() -> None:
    err, out = io.StringIO(), io.StringIO()
    spinner = Spinner(err, label="claude", enabled=True)
    printer = EventPrinter(out=out, err=err, spinner=spinner)
    printer.show(_piece("message_start", message={"id": "msg_1"}))
    printer.show(_text_delta("hel"))
    assert out.getvalue() == "hel"
    spinner.draw()
    assert not _shown(spinner)  # held off while the line is open
    printer.show(_text_delta("lo", parent="toolu_agent"))  # a sub-agent's: not printed
    printer.show(_text_delta("lo"))
    printer.show(_piece("content_block_stop", index=0))
    assert out.getvalue() == "hello\n"
    spinner.draw()
    assert _shown(spinner)
    # The whole message follows: its text went out already.
    printer.show(AssistantMessage(id="msg_1", model="x", content=[TextBlock("hello")]))
    # A message that was not streamed (a retry without streaming) is printed whole.
    printer.show(AssistantMessage(id="msg_2", model="x", content=[TextBlock("again")]))
    printer.show(_piece("message_start", message={"id": "msg_3"}))
    printer.show(_text_delta("cut sh"))
    printer.end_line()
    assert out.getvalue() == "hello\nagain\ncut sh\n"


async def test_ask_stream_prints_the_answer_once(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    result = await run_command(
        ["ask", "--stream", *common(cli, isolated), "SLOW1 please"], isolated
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode() == "w0 w1\n"
    json_result = await run_command(
        ["ask", "--stream", "--json", *common(cli, isolated), "hi"], isolated
    )
    kinds = [json.loads(line)["type"] for line in json_result.stdout.decode().splitlines()]
    assert kinds.count("stream_event") > 3
    assert kinds.index("stream_event") < kinds.index("message") < kinds.index("result")


async def test_text_mode_notes_an_interrupted_turn() -> None:
    err, out = io.StringIO(), io.StringIO()
    EventPrinter(out=out, err=err, spinner=None).show(ResultMessage(interrupted=True))
    assert err.getvalue() == "(the turn was interrupted)\n"
    assert out.getvalue() == ""


# --- chat ----------------------------------------------------------------------------------


async def test_chat_reuses_one_process_and_survives_ctrl_c(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    argv = [*COMMAND, "chat", *common(cli, isolated)]
    proc = PtyClaudeProcess.spawn(argv, env=command_env(isolated), cwd=isolated.cwd)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(proc.drain)
            await _wait_for(proc, "claude-trio chat:")
            for word in ("first", "second"):
                await proc.send_bytes(f"{word} turn\r".encode())
                await _wait_for(proc, f"echo: {word} turn")
            first, second = mock_api.main_requests
            assert session_header(first) == session_header(second)

            await proc.send_bytes(b"SLOW5 slowly\r")
            await mock_api.wait_for_requests(3)
            await proc.send_bytes(b"\x03")  # Ctrl-C: SIGINT to the command's group
            await _wait_for(proc, "(interrupted)")
            await proc.send_bytes(b"after it\r")
            await _wait_for(proc, "echo: after it")

            await proc.send_bytes(b"\x03")  # at the prompt: a hint, not an exit
            await _wait_for(proc, "type /exit or press Ctrl-D")
            await proc.send_bytes(b"/exit\r")
            with trio.fail_after(TURN):
                status = await proc.wait()
            assert status == 0, proc.screen.text()
            nursery.cancel_scope.cancel()
    finally:
        await proc.aclose()
    assert "w9" not in proc.screen.text()  # the slow reply never arrived whole
    assert "Traceback" not in proc.screen.text()
    assert not claude_processes(isolated)


async def test_chat_leaves_at_end_of_input(fake_cli: Path, isolated: IsolatedConfig) -> None:
    result = await run_command(
        ["chat", *common(fake_cli, isolated)], isolated, stdin=b"one\nERR401\ntwo\n"
    )
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert "echo: one" in out
    assert "echo: two" in out
    assert "claude-trio: AuthError: " in result.stderr.decode()  # the turn failed, not the chat


# --- serve ---------------------------------------------------------------------------------

TOKEN = "test-token-0123456789"


def _post(url: str, body: Mapping[str, Any], token: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=TURN) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def test_serve_answers_then_stops_gracefully_on_sigterm(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    argv = [*COMMAND, "serve", "--port", "0", "--token", TOKEN, "--grace", "20"]
    process = await trio.lowlevel.open_process(
        [*argv, *common(cli, isolated)],
        env=command_env(isolated),
        cwd=isolated.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        with trio.fail_after(TURN):
            first = b""
            while not first.endswith(b"\n"):
                chunk = await process.stdout.receive_some(1)
                assert chunk, "serve ended before printing its URL"
                first += chunk
        match = re.fullmatch(r"claude-trio gateway on (http://127\.0\.0\.1:\d+)\n", first.decode())
        assert match, first
        url = match[1] + "/v1/messages"
        body = {"model": "sonnet", "max_tokens": 100}

        refused, _ = await trio.to_thread.run_sync(
            _post, url, {**body, "messages": [{"role": "user", "content": "hi"}]}, "wrong-token"
        )
        assert refused == 401
        status, reply = await trio.to_thread.run_sync(
            _post, url, {**body, "messages": [{"role": "user", "content": "hello"}]}, TOKEN
        )
        assert status == 200, reply
        assert reply["content"][-1] == {"type": "text", "text": "echo: hello"}

        # A turn in flight when SIGTERM comes is finished within the grace.
        async with trio.open_nursery() as nursery:
            slow: list[tuple[int, dict[str, Any]]] = []

            async def post_slow() -> None:
                message = {"role": "user", "content": "SLOW2 go"}
                slow.append(
                    await trio.to_thread.run_sync(
                        _post, url, {**body, "messages": [message]}, TOKEN
                    )
                )

            nursery.start_soon(post_slow)
            await mock_api.wait_for_requests(2)
            started = trio.current_time()
            process.send_signal(signal.SIGTERM)
            with trio.fail_after(TURN):
                returncode = await process.wait()
            took = trio.current_time() - started
        assert returncode == 0
        assert took < 20
        ((slow_status, slow_reply),) = slow
        assert slow_status == 200, slow_reply
        assert slow_reply["content"][-1]["text"].startswith("w0 w1")
        log = (await _read_all(process.stderr)).decode()
        requests = [line for line in log.splitlines() if "POST /v1/messages" in line]
        assert len(requests) == 3, log
        assert "Traceback" not in log
    finally:
        with trio.CancelScope(shield=True):
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert not claude_processes(isolated)


async def test_serve_refuses_a_public_host_without_a_token(isolated: IsolatedConfig) -> None:
    result = await run_command(["serve", "--host", "0.0.0.0", "--port", "0"], isolated)
    assert result.returncode == 2
    assert "--token" in result.stderr.decode()
    assert "not a loopback address" in result.stderr.decode()
    assert result.stdout == b""


async def test_serve_says_when_it_cannot_listen(isolated: IsolatedConfig) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = await run_command(["serve", "--port", str(port)], isolated)
    assert result.returncode == 1
    assert_no_traceback(result)
    assert err_lines(result) == [
        f"claude-trio: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


def test_ctrl_c_in_any_task_is_an_interrupt_whatever_the_others_raised(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Seen on a loaded machine: SIGINT landed in a conversation's tail task, and the turn
    # then raised the CLI's exit on SIGTERM (143) beside it.
    group = BaseExceptionGroup(
        "nursery",
        [ProcessError("claude exited during a turn", exit_status=143), KeyboardInterrupt()],
    )
    args = argparse.Namespace(command="ask", json=False)
    assert _command._report(group, args) == 130
    assert capsys.readouterr().err == "claude-trio: interrupted\n"
