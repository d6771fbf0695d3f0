"""The fake claude CLI of claude_trio.testing: the behaviour FACTS.md records, fast.

Most tests drive the fake through `open_claude_pty` against the mock Anthropic API and
read its session file with `JsonlWatcher`. The first-run tests are parametrised over the
fake and the real CLI (the ``cli`` fixture), since both must give the library the same
errors.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
import unicodedata
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from claude_trio import ProcessError, PtyClaudeProcess, SessionError, open_claude_pty
from claude_trio._chrome import is_ready
from claude_trio._normalize import TurnFailed, TurnInterrupted, normalize
from claude_trio._watcher import JsonlWatcher

# Until claude_trio.testing re-exports it:
from claude_trio.testing import (
    IsolatedConfig,
    MockAnthropicAPI,
    RecordedRequest,
    isolated_config,
    magic_word_handler,
    open_mock_anthropic_api,
    write_fake_cli,
)
from claude_trio.testing._fake_replay import is_human

from .conftest import LEAK_MARK
from .strategies import samples_dir

Record = dict[str, Any]

PASTE_START = b"\x1b[200~"
PASTE_END = b"\x1b[201~"
REAL_CLI_BOUND = 20
_RETRY_LINE = re.compile(r"✻ (?P<status>[^\n]*?) · retrying in (\d+)s · attempt (\d+)/(\d+)")
_PERMISSION = re.compile(r"Do you want to proceed\?\n\s*❯ 1\. Yes")


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
async def mock_api() -> AsyncIterator[MockAnthropicAPI]:
    """The mock Messages API, answering by magic words."""
    async with open_mock_anthropic_api(handler=magic_word_handler) as api:
        yield api


def _config(
    tmp_path: Path, project_dir: Path, leak_mark: str, base_url: str, **env: str
) -> IsolatedConfig:
    return isolated_config(
        tmp_path,
        base_url=base_url,
        cwd=project_dir,
        extra_env={
            LEAK_MARK: leak_mark,
            "CLAUDE_CODE_MAX_RETRIES": "0",
            "FAKE_CLAUDE_RETRY_SCALE": "0.01",
            **env,
        },
    )


@pytest.fixture
def config(
    tmp_path: Path, project_dir: Path, leak_mark: str, mock_api: MockAnthropicAPI
) -> IsolatedConfig:
    """An isolated config dir pointed at the mock API."""
    return _config(tmp_path, project_dir, leak_mark, mock_api.base_url)


def _edit_settings(config: IsolatedConfig, **changes: Any) -> None:
    settings = json.loads(config.claude_json.read_text())
    settings.update(changes)
    config.claude_json.write_text(json.dumps(settings))


# --- helpers ----------------------------------------------------------------------------------


class Run:
    """A CLI on a PTY whose session file is being tailed."""

    def __init__(self, proc: PtyClaudeProcess, watcher: JsonlWatcher, session_id: str) -> None:
        self.proc = proc
        self.watcher = watcher
        self.session_id = session_id
        self.records: list[Record] = []

    async def until_turn_end(self) -> list[Record]:
        """Read records up to the next end of a turn (completed, failed or interrupted)."""
        records: list[Record] = []
        async for line in self.watcher:
            if not line:
                continue
            record = json.loads(line)
            records.append(record)
            self.records.append(record)
            if normalize(line).ends_turn:
                return records
        raise AssertionError("the watcher ended")

    async def turn(self, text: str) -> list[Record]:
        """Type *text* and read its turn's records."""
        await self.proc.type_message(text)
        return await self.until_turn_end()

    async def paste(self, *pastes: str, enter: bool = True) -> None:
        """Paste each text (bracketed), then press Enter."""
        data = b"".join(PASTE_START + text.encode() + PASTE_END for text in pastes)
        await self.proc.send_bytes(data + (b"\r" if enter else b""))

    async def screen(self, pattern: str | re.Pattern[str]) -> str:
        """Wait until the screen matches *pattern*; return it."""
        while True:
            text = self.proc.screen.text()
            if re.search(pattern, text):
                return text
            if self.proc.output_ended:
                raise AssertionError(f"the CLI ended without showing {pattern!r}:\n{text}")
            await self.proc.wait_output()


@asynccontextmanager
async def running(
    cli: Path,
    config: IsolatedConfig,
    *args: str,
    session_id: str | None = None,
    resume: bool = False,
    env: dict[str, str] | None = None,
) -> AsyncIterator[Run]:
    """Start *cli* for a new session (or ``--resume`` one) and tail its session file."""
    session_id = session_id or str(uuid.uuid4())
    path = config.session_file(session_id)
    offset = path.stat().st_size if resume else 0
    argv = [str(cli), "--resume" if resume else "--session-id", session_id, *args]
    async with (
        JsonlWatcher(path, offset=offset) as watcher,
        open_claude_pty(argv, env={**config.env, **(env or {})}, cwd=config.cwd) as proc,
    ):
        yield Run(proc, watcher, session_id)


def kind(record: Record) -> str:
    """A name for what a record is, finer than its ``type``."""
    record_type = str(record.get("type"))
    if record_type == "attachment":
        return f"attachment:{record['attachment']['type']}"
    if record_type == "system":
        return f"system:{record.get('subtype')}"
    if record_type == "user":
        content = record["message"]["content"]
        if record.get("isMeta"):
            return "user:meta"
        if is_human(record):
            return "user:human"
        if isinstance(content, list) and content and content[0].get("type") == "tool_result":
            return "user:tool_result" + (":refused" if record.get("toolDenialKind") else "")
        return "user:interrupt" if isinstance(content, list) else "user:other"
    if record_type == "assistant":
        if record.get("isApiErrorMessage"):
            return f"assistant:error:{record.get('error')}"
        if record["message"].get("stop_reason") is None:
            return "assistant:partial"
        return f"assistant:{record['message']['content'][0]['type']}"
    return record_type


def shape(record: Record) -> tuple[frozenset[str], ...]:
    """The key sets of a record and of its ``message``, ``usage`` and ``attachment``."""
    message = _part(record, "message")
    return tuple(
        frozenset(part)
        for part in (record, message, _part(message, "usage"), _part(record, "attachment"))
    )


def _part(record: Record, key: str) -> Record:
    value = record.get(key)
    return value if isinstance(value, dict) else {}


def shapes(records: Iterable[Record]) -> dict[str, set[tuple[frozenset[str], ...]]]:
    """Every shape seen, by kind."""
    found: dict[str, set[tuple[frozenset[str], ...]]] = {}
    for record in records:
        found.setdefault(kind(record), set()).add(shape(record))
    return found


def sample(name: str) -> list[Record]:
    """The records of a real session sample."""
    return [json.loads(line) for line in (samples_dir() / name).read_text().splitlines()]


def _file(config: IsolatedConfig, run: Run) -> list[Record]:
    lines = config.session_file(run.session_id).read_text().splitlines()
    return [json.loads(line) for line in lines]


def assert_chained(records: list[Record]) -> None:
    """Each chain record's parent is the chain record written before it."""
    previous = None
    for record in records:
        if "uuid" in record:
            assert record["parentUuid"] == previous, kind(record)
            previous = record["uuid"]


def last_prompt_message(request: RecordedRequest) -> Record:
    """The last ``user`` message of a request."""
    return next(m for m in reversed(request.messages) if m.get("role") == "user")


# --- the script -------------------------------------------------------------------------------


def test_write_fake_cli_writes_an_executable_script(tmp_path: Path) -> None:
    path = write_fake_cli(tmp_path)
    assert path == tmp_path / "claude"
    assert path.stat().st_mode & 0o777 == 0o755
    assert path.read_text().startswith(f"#!{sys.executable} ")


async def test_it_runs_as_a_module_and_as_a_script(fake_cli: Path) -> None:
    with trio.fail_after(REAL_CLI_BOUND):
        module = await trio.run_process(
            [sys.executable, "-m", "claude_trio.testing._fake_cli", "--version"],
            capture_stdout=True,
        )
        script = await trio.run_process([str(fake_cli), "--version"], capture_stdout=True)
    assert module.stdout == script.stdout == b"2.1.328 (Claude Code)\n"


# --- start-up and readiness -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        ((), "⏵⏵ auto mode on (shift+tab to cycle)"),
        (("--permission-mode", "default"), "⏸ manual mode on · ? for shortcuts"),
        (("--dangerously-skip-permissions",), "⏵⏵ bypass permissions on"),
    ],
)
async def test_the_idle_box_is_ready_and_hints_the_mode(
    fake_cli: Path, config: IsolatedConfig, args: tuple[str, ...], hint: str
) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config, *args) as run:
            screen = run.proc.screen.text()
    assert is_ready(screen)
    assert re.search(r"^─{120}\n❯\u00a0?\n─{120}\n  " + re.escape(hint), screen, re.MULTILINE)
    assert "Claude Code v2.1.328" in screen
    assert not any(config.config_dir.glob("projects/*/*.jsonl")), "no file before a prompt"


async def test_it_is_ready_quickly(fake_cli: Path, config: IsolatedConfig) -> None:
    started = time.monotonic()
    with trio.fail_after(10):
        async with running(fake_cli, config):
            ready = time.monotonic() - started
    assert ready < 1.0, "the fake must start in well under a second (target: 150 ms)"


# --- first-run dialogs and refusals (both CLIs) ---------------------------------------------


async def _start_error(cli: Path, config: IsolatedConfig, *args: str, **env: str) -> Exception:
    argv = [str(cli), *args]
    with trio.fail_after(REAL_CLI_BOUND), pytest.raises((SessionError, ProcessError)) as info:
        async with open_claude_pty(argv, env={**config.env, **env}, cwd=config.cwd):
            pytest.fail("the CLI must not get ready")
    assert isinstance(info.value, Exception)
    return info.value


async def test_untrusted_folder_shows_the_trust_dialog(cli: Path, config: IsolatedConfig) -> None:
    _edit_settings(config, projects={})
    error = await _start_error(cli, config)
    assert isinstance(error, SessionError)
    assert "trust folder" in str(error)
    assert "Quick safety check" in error.screen


async def test_unapproved_key_shows_the_api_key_dialog(cli: Path, config: IsolatedConfig) -> None:
    _edit_settings(config, customApiKeyResponses={"approved": [], "rejected": []})
    error = await _start_error(cli, config)
    assert isinstance(error, SessionError)
    assert error.fix is not None
    assert "customApiKeyResponses" in error.fix


async def test_unaccepted_bypass_shows_the_warning(cli: Path, config: IsolatedConfig) -> None:
    _edit_settings(config, bypassPermissionsModeAccepted=False)
    error = await _start_error(cli, config, "--dangerously-skip-permissions", IS_SANDBOX="1")
    assert isinstance(error, SessionError)
    assert "bypass permissions warning" in str(error)


async def test_onboarding_is_a_session_error(cli: Path, config: IsolatedConfig) -> None:
    _edit_settings(config, hasCompletedOnboarding=False)
    error = await _start_error(cli, config)
    assert isinstance(error, SessionError)
    assert "onboarding" in str(error)


@pytest.mark.skipif(os.geteuid() != 0, reason="the CLI refuses skip-permissions only for root")
@pytest.mark.parametrize(
    "args", [("--dangerously-skip-permissions",), ("--permission-mode", "bypassPermissions")]
)
async def test_root_without_is_sandbox_is_refused(
    cli: Path, config: IsolatedConfig, args: tuple[str, ...]
) -> None:
    env = {k: v for k, v in config.env.items() if k != "IS_SANDBOX"}
    with trio.fail_after(REAL_CLI_BOUND), pytest.raises(SessionError) as info:
        async with open_claude_pty([str(cli), *args], env=env, cwd=config.cwd):
            pytest.fail("the CLI must refuse")
    assert info.value.fix is not None
    assert "IS_SANDBOX=1" in info.value.fix


async def test_an_unknown_flag_exits_naming_it(cli: Path, config: IsolatedConfig) -> None:
    error = await _start_error(cli, config, "--no-such-flag-at-all")
    assert isinstance(error, ProcessError)
    assert error.exit_status == 1
    assert "unknown option '--no-such-flag-at-all'" in error.screen_tail


async def test_a_session_id_in_use_is_refused(cli: Path, config: IsolatedConfig) -> None:
    session_id = str(uuid.uuid4())
    path = config.session_file(session_id)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"type": "mode", "mode": "normal", "sessionId": session_id}) + "\n")
    error = await _start_error(cli, config, "--session-id", session_id)
    assert isinstance(error, ProcessError)
    assert error.exit_status == 1
    assert f"Session ID {session_id} is already in use" in error.screen_tail


@pytest.mark.parametrize("content", [None, '{"type": "user", "message": {"role": "user"}}\n'])
async def test_resuming_nothing_is_refused(
    cli: Path, config: IsolatedConfig, content: str | None
) -> None:
    session_id = str(uuid.uuid4())
    if content is not None:
        path = config.session_file(session_id)
        path.parent.mkdir(parents=True)
        path.write_text(content)
    error = await _start_error(cli, config, "--resume", session_id)
    assert isinstance(error, ProcessError)
    assert error.exit_status == 1
    assert f"No conversation found with session ID: {session_id}" in error.screen_tail


async def _show_trust_dialog(cli: Path, config: IsolatedConfig) -> PtyClaudeProcess:
    _edit_settings(config, projects={})
    return PtyClaudeProcess.spawn([str(cli)], env=config.env, cwd=config.cwd)


async def test_enter_on_the_trust_dialog_exits(fake_cli: Path, config: IsolatedConfig) -> None:
    # Only the fake: the real CLI ignores an Enter sent as soon as the dialog shows.
    proc = await _show_trust_dialog(fake_cli, config)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(proc.drain)
            with trio.fail_after(REAL_CLI_BOUND):
                while "Quick safety check" not in proc.screen.text():
                    assert not proc.output_ended, proc.screen.text()
                    await proc.wait_output()
                await proc.send_bytes(b"\r")
                assert await proc.wait() == 1
    finally:
        await proc.aclose()


async def test_down_enter_on_the_trust_dialog_trusts(
    fake_cli: Path, config: IsolatedConfig
) -> None:
    proc = await _show_trust_dialog(fake_cli, config)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(proc.drain)
            with trio.fail_after(10):
                while "Quick safety check" not in proc.screen.text():
                    assert not proc.output_ended, proc.screen.text()
                    await proc.wait_output()
                await proc.send_bytes(b"\x1b[B")
                await proc.send_bytes(b"\r")
                while "Quick safety check" in proc.screen.text():
                    assert not proc.output_ended, proc.screen.text()
                    await proc.wait_output()
                await proc.wait_ready()
            nursery.cancel_scope.cancel()
    finally:
        await proc.aclose()
    projects = json.loads(config.claude_json.read_text())["projects"]
    assert projects[str(config.cwd)]["hasTrustDialogAccepted"] is True


# --- records ----------------------------------------------------------------------------------

SCENARIOS = {
    "session_multiturn_11.jsonl": ["immediate 0", "turn 0"],
    "session_tool_use_bash_read.jsonl": ["CALL_BASH echo hi", "CALL_READ a.txt"],
    "session_thinking_maxtokens_slow.jsonl": ["THINK about it", "MAXTOK please", "SLOW1 go"],
    # The project's mock answers by the last text only: the sample's second prompt failed
    # because the sample's mock also saw the first one, which is merged into it.
    "session_api_error_401.jsonl": ["ERR401 test", "ERR401 again"],
    "session_api_error_429.jsonl": ["ERR429 test", "ERR429 again"],
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_records_have_the_shapes_of_the_samples(
    fake_cli: Path, config: IsolatedConfig, name: str
) -> None:
    (config.cwd / "a.txt").write_text("content of a.txt\n")
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            for prompt in SCENARIOS[name]:
                await run.turn(prompt)
    records = [
        json.loads(line) for line in config.session_file(run.session_id).read_text().splitlines()
    ]
    _assert_like_sample(records, sample(name))


def _assert_like_sample(records: list[Record], real: list[Record]) -> None:
    fake_shapes, real_shapes = shapes(records), shapes(real)
    assert set(fake_shapes) == set(real_shapes)
    for record_kind, found in fake_shapes.items():
        unknown = found - real_shapes[record_kind]
        assert not unknown, f"{record_kind}: keys differ from the sample's"
    assert_chained(records)
    for record in records:
        normalized = normalize(record)
        assert normalized.known
        assert not normalized.ignored, kind(record)


async def test_connection_refused_has_the_sampled_records(
    fake_cli: Path, tmp_path: Path, project_dir: Path, leak_mark: str
) -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = _config(tmp_path, project_dir, leak_mark, f"http://127.0.0.1:{port}")
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            records = await run.turn("DOWN test")
            screen = await run.screen("Resend your message to try again")
    assert "● API Error: Connection refused — a firewall or proxy may be blocking it" in screen
    error = records[-1]
    assert error["apiError"] == "connection_failed"
    assert error["error"] == "server_error"
    _assert_like_sample(_file(config, run), sample("session_api_error_conn_refused.jsonl"))


async def test_the_file_appears_at_the_first_prompt_in_one_batch(
    fake_cli: Path, config: IsolatedConfig
) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            path = config.session_file(run.session_id)
            assert not path.exists()
            records = await run.turn("hello world")
    assert [kind(r) for r in records[:5]] == [
        "mode",
        "permission-mode",
        "file-history-snapshot",
        "user:human",
        "attachment:environment",
    ]
    assert records[3]["message"]["content"] == "hello world"
    assert records[3]["turnPosition"] == {"promptIndex": 1, "turnIndex": 1}
    assert records[-1]["subtype"] == "turn_duration"
    assert path.stat().st_mode & 0o777 == 0o600


async def test_every_request_carries_the_history(
    fake_cli: Path, config: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            for prompt in ("one", "two", "three"):
                await run.turn(prompt)
    requests = mock_api.main_requests
    assert [len(r.messages) for r in requests] == [2, 4, 6]
    assert [r.prompt for r in requests] == ["one", "two", "three"]
    last = requests[-1]
    roles = ["user", "system", "assistant", "user", "assistant", "user"]
    assert [m["role"] for m in last.messages] == roles
    assert last.headers["x-claude-code-session-id"] == run.session_id
    assert last.headers["x-api-key"] == config.env["ANTHROPIC_API_KEY"]
    assert last.path == "/v1/messages?beta=true"
    assert last.stream


# --- API errors -------------------------------------------------------------------------------

ERRORS = [
    ("ERR401", "authentication_failed", "Invalid API key · Fix external API key", 401),
    ("ERR429", "rate_limit", "API Error: Request rejected (429) · mock: Number", 429),
    ("ERR500", "server_error", "API Error: 500 Internal server error. This is a server", 500),
    ("ERR529", "server_error", "API Error: 529 Overloaded. This is a server-side issue", 529),
]


@pytest.mark.parametrize(("word", "error", "text", "status"), ERRORS)
async def test_an_api_error_ends_the_turn_and_the_next_prompt_works(
    fake_cli: Path,
    config: IsolatedConfig,
    mock_api: MockAnthropicAPI,
    word: str,
    error: str,
    text: str,
    status: int,
) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            records = await run.turn(f"{word} test")
            placeholder = "Once fixed" if status == 401 else "Resend your message to try again"
            await run.screen(placeholder)
            after = await run.turn("hello after error")
    failed = records[-1]
    assert failed["isApiErrorMessage"] is True
    assert failed["error"] == error
    assert failed["apiErrorStatus"] == status
    assert failed["message"]["content"][0]["text"].startswith(text)
    signal_ = normalize(failed).signal
    assert isinstance(signal_, TurnFailed)
    assert signal_.error.status == status
    assert after[-1]["subtype"] == "turn_duration"
    # The failed prompt stays in the history, merged with the next one.
    texts = [b["text"] for b in last_prompt_message(mock_api.main_requests[-1])["content"]]
    assert texts[-2:] == [f"{word} test", "hello after error"]


async def test_retries_show_the_retry_line(
    fake_cli: Path, config: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    env = {"CLAUDE_CODE_MAX_RETRIES": "2", "FAKE_CLAUDE_RETRY_SCALE": "1"}
    with trio.fail_after(10):
        async with running(fake_cli, config, env=env) as run:
            await run.proc.type_message("ERR500 now")
            screen = await run.screen(_RETRY_LINE)
            records = await run.until_turn_end()
    line = _RETRY_LINE.search(screen)
    assert line is not None
    assert line.group(3, 4) == ("1", "2")
    assert len(mock_api.main_requests) == 3
    assert records[-1]["error"] == "server_error"


async def test_529_gives_up_after_three_overloads(
    fake_cli: Path, config: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config, env={"CLAUDE_CODE_MAX_RETRIES": "10"}) as run:
            records = await run.turn("ERR529 again")
    assert len(mock_api.main_requests) == 3
    assert records[-1]["message"]["content"][0]["text"].startswith(
        "API Error: Repeated 529 Overloaded errors."
    )


async def test_an_error_in_the_stream_is_asked_again_without_streaming(
    fake_cli: Path, config: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            records = await run.turn("ERRSTREAM please")
    assert [r.stream for r in mock_api.main_requests] == [True, False]
    reply = [r for r in records if kind(r) == "assistant:text"]
    assert reply[0]["message"]["content"] == [{"type": "text", "text": "echo: ERRSTREAM please"}]
    assert records[-1]["subtype"] == "turn_duration"


# --- interrupts, max_tokens, tools ------------------------------------------------------------


@pytest.mark.parametrize("key", [b"\x1b", b"\x03"])
async def test_an_interrupt_keeps_the_partial_reply(
    fake_cli: Path, config: IsolatedConfig, mock_api: MockAnthropicAPI, key: bytes
) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            await run.proc.type_message("SLOW10 please")
            await run.screen(r"↓ [1-9]\d* tokens")
            await run.proc.send_bytes(key)
            records = await run.until_turn_end()
            screen = await run.screen("Interrupted · What should Claude do instead?")
            after = await run.turn("after interrupt")
            assert run.proc.returncode is None
    partial, marker = records[-2:]
    assert partial["message"]["stop_reason"] is None
    assert partial["isAbortedMidStream"] is True
    assert partial["message"]["content"][0]["text"].startswith("w0 ")
    assert marker["message"]["content"] == [
        {"type": "text", "text": "[Request interrupted by user]"}
    ]
    assert marker["interruptedMessageId"] == partial["message"]["id"]
    assert isinstance(normalize(marker).signal, TurnInterrupted)
    assert not any(r.get("subtype") == "turn_duration" for r in records)
    assert "● w0" in screen
    assert after[-1]["subtype"] == "turn_duration"
    texts = [b["text"] for b in last_prompt_message(mock_api.main_requests[-1])["content"]]
    assert texts[-2:] == ["[Request interrupted by user]", "after interrupt"]
    _assert_like_sample(_file(config, run), sample("session_interrupted_esc_ctrlc.jsonl"))


async def test_max_tokens_continues_on_its_own(
    fake_cli: Path, config: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            records = await run.turn("MAXTOK please")
    kinds = [kind(r) for r in records if "uuid" in r and r["type"] != "attachment"]
    assert kinds[-4:] == ["assistant:text", "user:meta", "assistant:text", "system:turn_duration"]
    cut, note = [r for r in records if kind(r) in ("assistant:text", "user:meta")][:2]
    assert cut["message"]["stop_reason"] == "max_tokens"
    assert note["isMeta"] is True
    assert note["turnCompanion"] is True
    assert note["message"]["content"].startswith("Output token limit hit. Resume directly")
    assert len(mock_api.main_requests) == 2


async def test_a_bash_call_runs_and_its_result_goes_back(
    fake_cli: Path, config: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            records = await run.turn("CALL_BASH echo $$ && ps -o pgid= -p $$")
    result = next(r for r in records if kind(r) == "user:tool_result")
    pid, pgid = result["toolUseResult"]["stdout"].split()
    assert pid == pgid, "the Bash tool runs in a process group of its own"
    assert result["message"]["content"][0]["is_error"] is False
    assert result["sourceToolAssistantUUID"] == records[records.index(result) - 1]["uuid"]
    assert (
        mock_api.main_requests[-1].tool_results[0]["content"] == result["toolUseResult"]["stdout"]
    )
    reply = [r for r in records if kind(r) == "assistant:text"]
    assert reply[-1]["message"]["content"][0]["text"].startswith("tool said: ")


async def test_other_tools_get_an_error_result(fake_cli: Path, config: IsolatedConfig) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            records = await run.turn('CALL_TOOL Frobnicate {"x": 1}')
    result = next(r for r in records if kind(r) == "user:tool_result")
    block = result["message"]["content"][0]
    assert block["is_error"] is True
    assert "No such tool available: Frobnicate" in block["content"]
    assert records[-1]["subtype"] == "turn_duration"


@pytest.mark.parametrize(("answer", "runs"), [(b"1", True), (b"\r", True), (b"\x1b", False)])
async def test_the_permission_prompt_of_default_mode(
    fake_cli: Path, config: IsolatedConfig, answer: bytes, runs: bool
) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config, "--permission-mode", "default") as run:
            await run.proc.type_message("CALL_BASH touch made.txt")
            screen = await run.screen(_PERMISSION)
            assert not is_ready(screen)
            assert "touch made.txt" in screen
            await run.proc.send_bytes(answer)
            records = await run.until_turn_end()
    assert (config.cwd / "made.txt").exists() is runs
    if runs:
        assert records[-1]["subtype"] == "turn_duration"
        result = next(r for r in records if kind(r) == "user:tool_result")
        assert result["permissionDecision"]["source"] == "user_temporary"
    else:
        refused, marker = records[-2:]
        assert refused["message"]["content"][0]["is_error"] is True
        assert refused["toolUseResult"] == "User rejected tool use"
        signal_ = normalize(marker).signal
        assert isinstance(signal_, TurnInterrupted)
        assert signal_.for_tool_use


async def test_escape_stops_a_running_bash_tool(fake_cli: Path, config: IsolatedConfig) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            await run.proc.type_message("CALL_BASH sleep 60")
            await run.screen(r"↓ [1-9]\d* tokens")
            while not any(kind(r) == "assistant:tool_use" for r in run.records):
                await _next_record(run)
            await run.proc.send_bytes(b"\x1b")
            records = await run.until_turn_end()
    assert kind(records[-2]) == "user:tool_result:refused"
    assert records[-1]["message"]["content"][0]["text"] == (
        "[Request interrupted by user for tool use]"
    )


async def _next_record(run: Run) -> Record:
    async for line in run.watcher:
        if line:
            record: Record = json.loads(line)
            run.records.append(record)
            return record
    raise AssertionError("the watcher ended")


# --- exit -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
async def test_a_signal_ends_it_and_its_bash_children(
    fake_cli: Path, config: IsolatedConfig, signum: int, status: int
) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            await run.proc.type_message("CALL_BASH sleep 60")
            while not any(kind(r) == "assistant:tool_use" for r in run.records):
                await _next_record(run)
            os.kill(run.proc.pid, signum)
            assert await run.proc.wait() == status
    # The no_leaks fixture checks that `sleep 60` is gone too.
    tail = config.session_file(run.session_id).read_text().splitlines()
    assert json.loads(tail[-1])["type"] == "cost-state"


async def test_ctrl_c_twice_at_idle_exits_cleanly(fake_cli: Path, config: IsolatedConfig) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            await run.turn("hello")
            await run.proc.send_bytes(b"\x03")
            await run.screen("Press Ctrl-C again to exit")
            await run.proc.send_bytes(b"\x03")
            assert await run.proc.wait() == 0
            assert f"claude --resume {run.session_id}" in run.proc.screen.text()


async def test_slash_exit_exits(fake_cli: Path, config: IsolatedConfig) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            await run.paste("/exit")
            assert await run.proc.wait() == 0


# --- input ------------------------------------------------------------------------------------


async def _typed(run: Run, *pastes: str) -> str:
    await run.paste(*pastes)
    records = await run.until_turn_end()
    content = next(r for r in records if is_human(r))["message"]["content"]
    assert isinstance(content, str)
    return content


async def test_pastes_are_cleaned_as_the_cli_does(fake_cli: Path, config: IsolatedConfig) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            assert await _typed(run, "a\tb\t\tc") == "a    b        c"
            assert await _typed(run, "x\r\ny\rz") == "x\ny\nz"
            assert await _typed(run, "  lead and trail   \n\n") == "  lead and trail"
            assert await _typed(run, "cafe\u0301") == unicodedata.normalize("NFC", "café")
            assert await _typed(run, "a\x1bb\x03c\x04d\x07e\x15f") == "acdef"
            assert await _typed(run, "z\u200bw\u2060s\ufeffj") == "zwsj"
            assert await _typed(run, "family 👨\u200d👩\u200d👧") == "family 👨\u200d👩\u200d👧"
            assert await _typed(run, "A" * 700, "B" * 700) == "A" * 700 + "B" * 700
            assert await _typed(run, "l1\nl2\nl3") == "l1\nl2\nl3"


@pytest.mark.parametrize("text", ["X" * 801, "l1\nl2\nl3\nl4", "l1\nl2\nl3\n"])
async def test_big_pastes_are_wrapped(fake_cli: Path, config: IsolatedConfig, text: str) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            content = await _typed(run, "intro: ", text)
    match = re.fullmatch(
        r'intro: \n\n<pasted_content id="([0-9a-f]{4})">\n(.*)\n</pasted_content id="\1">\n',
        content,
        re.DOTALL,
    )
    assert match is not None
    assert match[2] == text.rstrip()


async def test_an_800_char_paste_is_not_wrapped(fake_cli: Path, config: IsolatedConfig) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            assert await _typed(run, "X" * 800) == "X" * 800


async def test_bidi_controls_hold_the_prompt(
    fake_cli: Path, config: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            await run.paste("left\u202eright")
            await run.screen("review and press Enter to send")
            assert not mock_api.main_requests
            await run.proc.send_bytes(b"\r")
            records = await run.until_turn_end()
    assert next(r for r in records if is_human(r))["message"]["content"] == "leftright"


async def test_every_enter_outside_a_paste_submits(fake_cli: Path, config: IsolatedConfig) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            await run.proc.send_bytes(b"first\rsecond\r")
            first = await run.until_turn_end()
            second = await run.until_turn_end()
    prompts = [r["message"]["content"] for r in first + second if is_human(r)]
    assert prompts == ["first", "second"]


@pytest.mark.parametrize(
    ("text", "flag", "shown"),
    [
        ("/notacommand hello", (), "Unknown command: /notacommand"),
        ("/model x", ("--disable-slash-commands",), "Unknown command: /model"),
        ("/ model", (), "Commands are in the form /command [args]"),
    ],
)
async def test_slash_commands_send_nothing(
    fake_cli: Path,
    config: IsolatedConfig,
    mock_api: MockAnthropicAPI,
    text: str,
    flag: tuple[str, ...],
    shown: str,
) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config, *flag) as run:
            await run.paste(text)
            await run.screen(re.escape(shown))
            after = await run.turn("next")
    prompts = [r["message"]["content"] for r in after if is_human(r)]
    assert prompts == ["next"]
    assert len(mock_api.main_requests) == 1
    assert next(r for r in after if is_human(r))["message"]["content"] == "next"


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        (" /model x", ("--disable-slash-commands",)),
        ("/etc/passwd is a file", ()),
        ("//model", ()),
        ("/usr is a dir", ()),
    ],
)
async def test_some_slashes_are_sent_verbatim(
    fake_cli: Path, config: IsolatedConfig, text: str, flag: tuple[str, ...]
) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config, *flag) as run:
            assert await _typed(run, text) == text


async def test_the_library_types_slashes_and_bangs_literally(
    fake_cli: Path, config: IsolatedConfig
) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config, "--disable-slash-commands") as run:
            for text in ("/model x", "!echo no"):
                records = await run.turn(text)
                assert next(r for r in records if is_human(r))["message"]["content"] == " " + text


async def test_bang_runs_bash_mode(
    fake_cli: Path, config: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            await run.paste("!echo z")
            records = await run.until_turn_end()
    contents = [r["message"]["content"] for r in records if r.get("type") == "user"]
    assert contents[:2] == [
        "<bash-input>echo z</bash-input>",
        "<bash-stdout>z</bash-stdout><bash-stderr></bash-stderr>",
    ]
    assert mock_api.main_requests[0].prompt == contents[1]
    assert records[-1]["subtype"] == "turn_duration"


# --- resume and replay --------------------------------------------------------------------------


async def test_resume_appends_to_the_same_file(
    fake_cli: Path, config: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    session_id = str(uuid.uuid4())
    path = config.session_file(session_id)
    path.parent.mkdir(parents=True)
    handwritten = sample("resume_minimal_handwritten_input.jsonl")
    path.write_text("".join(json.dumps({**r, "sessionId": session_id}) + "\n" for r in handwritten))
    with trio.fail_after(10):
        async with running(fake_cli, config, session_id=session_id, resume=True) as run:
            assert "● hand reply" in run.proc.screen.text()
            records = await run.turn("resumed question")
    user = next(r for r in records if is_human(r))
    assert user["parentUuid"] == handwritten[-1]["uuid"]
    assert user["sessionId"] == session_id
    assert "turnPosition" not in user
    messages = mock_api.main_requests[0].messages
    assert [m["role"] for m in messages] == ["user", "system", "assistant", "user"]
    assert messages[2]["content"] == [{"type": "text", "text": "hand reply"}]
    assert mock_api.main_requests[0].prompt == "resumed question"
    assert path.read_text().splitlines()[:2] == [
        json.dumps({**r, "sessionId": session_id}) for r in handwritten
    ]


def _rewrite(record: Record, session_id: str, cwd: str) -> Record:
    copied = dict(record)
    for key in ("sessionId", "session_id"):
        if key in copied:
            copied[key] = session_id
    if "cwd" in copied:
        copied["cwd"] = cwd
    return copied


@pytest.mark.parametrize("name", sorted(p.name for p in samples_dir().glob("session_*.jsonl")))
async def test_a_replayed_sample_gives_the_same_events(
    fake_cli: Path, tmp_path: Path, project_dir: Path, leak_mark: str, name: str
) -> None:
    real = sample(name)
    config = _config(
        tmp_path,
        project_dir,
        leak_mark,
        "http://127.0.0.1:9",
        FAKE_CLAUDE_REPLAY=str(samples_dir() / name),
    )
    session_id = str(uuid.uuid4())
    expected = [_rewrite(r, session_id, str(config.cwd)) for r in real]
    first_human = next(i for i, r in enumerate(real) if is_human(r))
    prelude = []
    if "uuid" in real[0] and not is_human(real[0]):
        prelude = [r for r in expected[:first_human] if r.get("type") in ("user", "assistant")]
        path = config.session_file(session_id)
        path.parent.mkdir(parents=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in prelude))
    prompts = [r["message"]["content"] for r in real if is_human(r)]
    with trio.fail_after(10):
        async with running(fake_cli, config, session_id=session_id, resume=bool(prelude)) as run:
            for prompt in prompts:
                await run.turn(prompt)
    lines = config.session_file(session_id).read_text().splitlines()
    got = [json.loads(line) for line in lines]
    assert got == expected
    assert [normalize(r) for r in got] == [normalize(r) for r in expected]


async def test_a_replay_takes_the_typed_prompt(
    fake_cli: Path, tmp_path: Path, project_dir: Path, leak_mark: str
) -> None:
    replay = str(samples_dir() / "session_multiturn_11.jsonl")
    config = _config(
        tmp_path, project_dir, leak_mark, "http://127.0.0.1:9", FAKE_CLAUDE_REPLAY=replay
    )
    with trio.fail_after(10):
        async with running(fake_cli, config) as run:
            records = await run.turn("something else")
    user = next(r for r in records if is_human(r))
    assert user["message"]["content"] == "something else"
    assert user["sessionId"] == run.session_id
    assert user["cwd"] == str(config.cwd)
