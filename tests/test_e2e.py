"""End to end on the real CLI: "hi" goes in, the mock's answer shows up in the session file."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path

import trio

from claude_trio import JsonlWatcher, open_claude_pty, project_key
from claude_trio.testing import IsolatedConfig, MockAnthropicAPI, isolated_config

from .conftest import LEAK_MARK


async def _say_hi(
    cli: Path, config: IsolatedConfig, api: MockAnthropicAPI
) -> list[dict[str, object]]:
    session_id = str(uuid.uuid4())
    path = config.session_file(session_id)
    records: list[dict[str, object]] = []
    argv = [str(cli), "--session-id", session_id, "--disable-slash-commands"]
    with trio.fail_after(60):
        async with open_claude_pty(argv, env=config.env, cwd=config.cwd) as proc:
            assert not path.exists(), "FACTS §4: the session file appears only at the first message"
            async with JsonlWatcher(path) as lines:
                await proc.type_message("hi")
                async for line in lines:
                    record = json.loads(line)
                    records.append(record)
                    if record.get("type") == "system" and record.get("subtype") == "turn_duration":
                        break
    return records


async def test_hi_reaches_the_mock_and_the_answer_lands_in_the_session_file(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    records = await _say_hi(claude_cli, isolated, mock_api)
    (request,) = mock_api.main_requests
    assert request.prompt == "hi"
    prompts = [r for r in records if r.get("type") == "user"]
    assert prompts[0]["message"] == {"role": "user", "content": "hi"}
    answers = [r for r in records if r.get("type") == "assistant"]
    assert len(answers) == 1
    message = answers[0]["message"]
    assert isinstance(message, dict)
    assert message["content"] == [{"type": "text", "text": "echo: hi"}]
    assert message["stop_reason"] == "end_turn"
    assert {r["sessionId"] for r in records if "sessionId" in r} == {records[0]["sessionId"]}


async def test_a_cwd_whose_key_passes_200_chars_uses_the_hashed_key(
    claude_cli: Path, tmp_path: Path, mock_api: MockAnthropicAPI, leak_mark: str
) -> None:
    deep = tmp_path
    while len(str(deep)) < 260:
        deep = deep / "a_long.directory-name"
    deep.mkdir(parents=True)
    config = isolated_config(
        tmp_path, base_url=mock_api.base_url, cwd=deep, extra_env={LEAK_MARK: leak_mark}
    )
    assert len(project_key(config.cwd)) > 200
    records = await _say_hi(claude_cli, config, mock_api)
    assert records, "the session file was not found at the path project_key() gives"


async def test_the_demo_command_prints_the_answer(claude_cli: Path) -> None:
    env = {**os.environ, "CLAUDE_TRIO_CLI": str(claude_cli)}
    with trio.fail_after(90):
        done = await trio.run_process(
            [sys.executable, "-m", "claude_trio", "demo", "hi", "THINK twice"],
            capture_stdout=True,
            capture_stderr=True,
            env=env,
            check=False,
        )
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert "claude: echo: hi" in out
    assert "(thinking) Let me think about: THINK twice" in out
    assert "1 claude process(es) started for 2 request(s)" in out
