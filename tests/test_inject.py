"""Re-seeding a history: the transcript file, and what the real CLI sends after resuming it."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from claude_trio import ConversationOptions, Event, open_conversation
from claude_trio._errors import SessionError
from claude_trio._history import fold_history, prompt_text, transcript_records
from claude_trio._inject import seed_transcript, write_transcript
from claude_trio._paths import project_key, session_path
from claude_trio.testing import IsolatedConfig, MockAnthropicAPI, RecordedRequest

from .helpers import assistant_texts

TURN = 60
NOW = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
TOOL_SYNTAX = ("tool_use", "tool_result", "<invoke", "function_calls", "[Tool", "antml", "<tool")

Message = dict[str, Any]


def user(content: Any) -> Message:
    return {"role": "user", "content": content}


def assistant(content: Any) -> Message:
    return {"role": "assistant", "content": content}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


CODEWORD = [
    user("remember the codeword Beaver"),
    assistant("OK"),
    user("what was the codeword?"),
]
BASH_CALL = {
    "type": "tool_use",
    "id": "toolu_01bash",
    "name": "Bash",
    "input": {"command": "echo hi"},
}
TOOL_HISTORY = [
    user("run echo hi"),
    assistant(
        [
            {"type": "thinking", "thinking": "I should run it", "signature": "c2ln"},
            text("I will call Bash."),
            BASH_CALL,
        ]
    ),
    user([{"type": "tool_result", "tool_use_id": "toolu_01bash", "content": "hi"}]),
    assistant([text("It printed hi.")]),
    user("what did it print?"),
]


def _records(messages: list[Message], session_id: str, cwd: Path) -> list[dict[str, Any]]:
    return transcript_records(messages, session_id=session_id, cwd=cwd, start_time=NOW)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- the file, without the CLI -----------------------------------------------------------------


@pytest.fixture
def umask_zero() -> Iterator[None]:
    """A umask that would let group and others read anything not made private on purpose."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("umask_zero")
def test_the_file_is_private_complete_and_alone(tmp_path: Path) -> None:
    config, cwd, sid = tmp_path / "cfg", tmp_path / "project", str(uuid.uuid4())
    cwd.mkdir()
    records = _records(TOOL_HISTORY, sid, cwd)
    path = write_transcript(config, cwd, sid, records)
    assert path == session_path(config, cwd, sid)
    assert _mode(path) == 0o600
    for directory in (config, config / "projects", path.parent):
        assert _mode(directory) == 0o700
    assert os.listdir(path.parent) == [path.name]
    data = path.read_bytes()
    assert data.endswith(b"\n")
    assert [json.loads(line) for line in data.splitlines()] == records


def test_an_existing_session_is_never_overwritten(tmp_path: Path) -> None:
    cwd, sid = tmp_path, str(uuid.uuid4())
    records = _records(CODEWORD, sid, cwd)
    path = write_transcript(tmp_path, cwd, sid, records)
    before = path.read_bytes()
    with pytest.raises(SessionError, match="already exists"):
        write_transcript(tmp_path, cwd, sid, records[:1])
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]


def test_a_session_created_meanwhile_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd, sid = tmp_path, str(uuid.uuid4())
    path = session_path(tmp_path, cwd, sid)
    link = os.link
    seen: list[bytes] = []

    def racing_link(source: Path, target: Path) -> None:
        seen.append(Path(source).read_bytes())
        assert not Path(target).exists()
        Path(target).write_text("theirs\n")
        link(source, target)

    monkeypatch.setattr(os, "link", racing_link)
    records = _records(CODEWORD, sid, cwd)
    with pytest.raises(SessionError, match="already exists"):
        write_transcript(tmp_path, cwd, sid, records)
    # The temporary file was complete before it was linked, and is gone.
    assert [json.loads(line) for line in seen[0].splitlines()] == records
    assert path.read_text() == "theirs\n"
    assert os.listdir(path.parent) == [path.name]


@pytest.mark.usefixtures("umask_zero")
def test_a_file_system_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(source: Path, target: Path) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    sid = str(uuid.uuid4())
    records = _records(CODEWORD, sid, tmp_path)
    path = write_transcript(tmp_path, tmp_path, sid, records)
    assert _mode(path) == 0o600
    assert [json.loads(line) for line in path.read_text().splitlines()] == records
    assert os.listdir(path.parent) == [path.name]
    with pytest.raises(SessionError, match="already exists"):
        write_transcript(tmp_path, tmp_path, sid, records)


@pytest.mark.parametrize(
    ("session_id", "records", "error", "words"),
    [
        ("../../../etc/x", None, SessionError, "not a valid session id"),
        ("not-a-uuid", None, SessionError, "not a valid session id"),
        (None, [], ValueError, "no records to write"),
        (None, [{"sessionId": str(uuid.UUID(int=1))}], ValueError, "belongs to session"),
        (None, ["not an object"], ValueError, "not a JSON object"),
        (None, [{"x": float("nan")}], ValueError, "not JSON"),
    ],
)
def test_bad_arguments_write_nothing(
    tmp_path: Path, session_id: str | None, records: Any, error: type[Exception], words: str
) -> None:
    sid = session_id or str(uuid.uuid4())
    if records is None:
        records = [{"type": "user"}]
    with pytest.raises(error, match=words):
        write_transcript(tmp_path / "cfg", tmp_path, sid, records)
    assert not (tmp_path / "cfg").exists()


def test_the_real_path_of_cwd_is_used(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    sid = str(uuid.uuid4())
    seed = seed_transcript(tmp_path / "cfg", tmp_path / "link", sid, CODEWORD, now=NOW)
    assert seed.path is not None
    assert seed.path == session_path(tmp_path / "cfg", real, sid)
    assert json.loads(seed.path.read_text().splitlines()[0])["cwd"] == str(real)
    assert seed.prompt == "what was the codeword?"
    assert seed.session_id == sid


def test_a_history_with_nothing_to_write(tmp_path: Path) -> None:
    seed = seed_transcript(tmp_path / "cfg", tmp_path, str(uuid.uuid4()), [user("a"), user("b")])
    assert seed.path is None
    assert seed.prompt == "a\n\nb"
    assert not (tmp_path / "cfg").exists()


# --- on the real CLI against the mock ----------------------------------------------------------


def _options(cli: Path, config: IsolatedConfig, cwd: Path | None = None) -> ConversationOptions:
    return ConversationOptions(
        cwd=cwd or config.cwd, env=config.env, cli_path=str(cli), max_retries=0
    )


def _api_history(request: RecordedRequest) -> list[Message]:
    """The request's messages without the CLI's own: system entries and reminders."""
    history = []
    for message in request.messages:
        if message["role"] == "system":
            continue
        content = message["content"]
        if isinstance(content, list):
            content = [
                {key: value for key, value in block.items() if key != "cache_control"}
                for block in content
                if not (
                    block.get("type") == "text"
                    and block["text"].lstrip().startswith("<system-reminder>")
                )
            ]
        history.append({"role": message["role"], "content": content})
    return history


async def _turn(
    cli: Path,
    config: IsolatedConfig,
    prompt: str,
    *,
    resume: str | None = None,
    session_id: str | None = None,
    cwd: Path | None = None,
) -> list[Event]:
    with trio.fail_after(TURN):
        async with open_conversation(
            _options(cli, config, cwd), resume=resume, session_id=session_id
        ) as conversation:
            return [event async for event in conversation.turn(prompt)]


async def _resumed(
    cli: Path, config: IsolatedConfig, messages: list[Message], cwd: Path | None = None
) -> tuple[list[Event], Path]:
    sid = str(uuid.uuid4())
    seed = seed_transcript(config.config_dir, cwd or config.cwd, sid, messages)
    assert seed.path is not None
    return await _turn(cli, config, seed.prompt, resume=sid, cwd=cwd), seed.path


async def test_native_jsonl_continues_the_codeword_history(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    sid = str(uuid.uuid4())
    records = _records(CODEWORD, sid, isolated.cwd)
    path = write_transcript(isolated.config_dir, isolated.cwd, sid, records)
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    events = await _turn(claude_cli, isolated, prompt_text(CODEWORD), resume=sid)
    assert assistant_texts(events) == ["echo: what was the codeword?"]
    assert len(mock_api.main_requests) == 1
    assert _api_history(mock_api.main_requests[-1]) == [
        user("remember the codeword Beaver"),
        assistant([text("OK")]),
        user([text("what was the codeword?")]),
    ]
    # The CLI appended its turn to our file and kept it private.
    assert len(path.read_text().splitlines()) > len(records)
    assert _mode(path) == 0o600


async def test_native_jsonl_tool_call_and_result(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    events, _ = await _resumed(claude_cli, isolated, TOOL_HISTORY)
    assert assistant_texts(events) == ["echo: what did it print?"]
    assert len(mock_api.main_requests) == 1
    assert _api_history(mock_api.main_requests[-1]) == [
        user("run echo hi"),
        assistant([text("I will call Bash."), BASH_CALL]),
        user(
            [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01bash",
                    "content": "hi",
                    "is_error": False,
                }
            ]
        ),
        assistant([text("It printed hi.")]),
        user([text("what did it print?")]),
    ]


async def test_native_jsonl_multi_block_reply_is_one_message(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    messages = [
        user("hello"),
        assistant(
            [
                {"type": "thinking", "thinking": "hmm", "signature": "c2ln"},
                text("part one"),
                text("part two"),
                {"type": "redacted_thinking", "data": "eHh4"},
                text("part three"),
            ]
        ),
        user("next"),
    ]
    await _resumed(claude_cli, isolated, messages)
    assert _api_history(mock_api.main_requests[-1]) == [
        user("hello"),
        assistant([text("part one"), text("part two"), text("part three")]),
        user([text("next")]),
    ]


async def test_native_jsonl_keeps_an_image(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    picture = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
    }
    messages = [
        user([picture, text("what is this?")]),
        assistant("A pixel."),
        user("what colour?"),
    ]
    await _resumed(claude_cli, isolated, messages)
    assert _api_history(mock_api.main_requests[-1]) == [
        user([picture, text("what is this?")]),
        assistant([text("A pixel.")]),
        user([text("what colour?")]),
    ]


async def test_native_jsonl_types_trailing_user_messages_with_the_prompt(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    messages = [
        user("remember Beaver"),
        assistant("OK"),
        user("and also Otter"),
        user("what were the codewords?"),
    ]
    await _resumed(claude_cli, isolated, messages)
    history = _api_history(mock_api.main_requests[-1])
    assert history == [
        user("remember Beaver"),
        assistant([text("OK")]),
        user([text("and also Otter\n\nwhat were the codewords?")]),
    ]
    assert "No response requested." not in json.dumps(history)


async def test_a_history_with_nothing_to_resume_starts_a_new_session(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    sid = str(uuid.uuid4())
    seed = seed_transcript(isolated.config_dir, isolated.cwd, sid, [user("one"), user("two")])
    assert seed.path is None
    await _turn(claude_cli, isolated, seed.prompt, session_id=sid)
    assert _api_history(mock_api.main_requests[-1]) == [user([text("one\n\ntwo")])]


async def test_native_jsonl_in_a_cwd_with_a_long_key(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI, tmp_path: Path
) -> None:
    cwd = tmp_path.joinpath(*(f"{letter * 60}.d" for letter in "abcd"))
    cwd.mkdir(parents=True)
    isolated.trust(cwd)
    key = project_key(cwd.resolve())
    assert len(key) > 200
    events, path = await _resumed(claude_cli, isolated, CODEWORD, cwd=cwd)
    assert path.parent.name == key
    assert len(key) == 200 + 1 + len(key.rsplit("-", 1)[1])
    assert assistant_texts(events) == ["echo: what was the codeword?"]
    assert _api_history(mock_api.main_requests[-1]) == [
        user("remember the codeword Beaver"),
        assistant([text("OK")]),
        user([text("what was the codeword?")]),
    ]


@pytest.mark.parametrize(
    "messages",
    [
        CODEWORD,
        [
            user("remember the codeword Beaver, then list the files"),
            assistant([text("OK."), {**BASH_CALL, "input": {"command": "ls"}}]),
            user([{"type": "tool_result", "tool_use_id": "toolu_01bash", "content": "a.txt"}]),
            assistant(
                [{"type": "thinking", "thinking": "noted", "signature": "c2ln"}, text("Done.")]
            ),
            user("what was the codeword?"),
        ],
    ],
    ids=["plain", "with-a-tool-call"],
)
async def test_concat_message_folds_the_history_into_the_first_prompt(
    claude_cli: Path,
    isolated: IsolatedConfig,
    mock_api: MockAnthropicAPI,
    messages: list[Message],
) -> None:
    folded = fold_history(messages)
    events = await _turn(claude_cli, isolated, folded)
    assert len(mock_api.main_requests) == 1
    request = mock_api.main_requests[-1]
    assert request.prompt == folded
    assert assistant_texts(events) == [f"echo: {folded}"]
    assert "Beaver" in folded
    assert folded.rstrip().endswith("what was the codeword?\n</new_message>")
    history = _api_history(request)
    assert [message["role"] for message in history] == ["user"]
    for syntax in TOOL_SYNTAX:
        assert syntax not in folded
    blocks = [b for m in history if isinstance(m["content"], list) for b in m["content"]]
    assert {block["type"] for block in blocks} == {"text"}
