"""Long messages through the CLI's editor key (``editor_threshold``), fake and real CLI.

The model must receive exactly what pastes would deliver (`PreparedText.expected_record`),
the script must fill nothing but the CLI's prompt file, once, and a message the CLI never
took is pasted instead.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

import claude_trio._conversation
import claude_trio._editor
from claude_trio import (
    ConversationOptions,
    Event,
    ResultMessage,
    open_conversation,
    prepare_text,
)
from claude_trio._editor import editor_prompt_dir, editor_route
from claude_trio.testing import IsolatedConfig, MockAnthropicAPI

from .helpers import TURN, user_texts

#: A message of about 12 KB on 150 lines: 75 pastes, over the default threshold of 64.
LONG = "".join(f"line {n:03d} \\ with <tags> and a tab\there and é\n" for n in range(150))


def _options(cli: Path, config: IsolatedConfig, **overrides: Any) -> ConversationOptions:
    settings: dict[str, Any] = {
        "cwd": config.cwd,
        "env": config.env,
        "cli_path": str(cli),
        "dangerously_skip_permissions": True,
        "max_retries": 0,
        **overrides,
    }
    return ConversationOptions(**settings)


async def _turn(conversation: Any, text: str) -> list[Event]:
    events: list[Event] = []
    with trio.fail_after(TURN):
        async for event in conversation.turn(text):
            events.append(event)
    assert isinstance(events[-1], ResultMessage)
    return events


def _editor_dirs() -> set[str]:
    return {name for name in os.listdir(tempfile.gettempdir()) if "claude-trio-editor-" in name}


@pytest.fixture
def no_stray_editor_dirs() -> Iterator[None]:
    before = _editor_dirs()
    yield
    assert _editor_dirs() == before


def test_a_long_message_needs_more_pastes_than_the_threshold() -> None:
    assert len(prepare_text(LONG, rows=40).chunks) > 64


@pytest.mark.usefixtures("no_stray_editor_dirs")
async def test_a_long_message_goes_through_the_editor_exactly(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with open_conversation(_options(cli, isolated)) as conversation:
        await _turn(conversation, LONG)
        await _turn(conversation, "and a short one")
        stats = conversation.statistics()
    first, second = mock_api.main_requests
    assert user_texts(first) == [prepare_text(LONG, rows=40).expected_record]
    assert user_texts(second)[-1] == "and a short one"
    assert stats.editor_messages == 1  # the short one was pasted


ADVERSARIAL = [
    "ends in a backslash \\",
    "a\\\nb\\\n",
    "/model claude-haiku-4-5",
    "/model x\nsecond line",
    "!echo not bash",
    "tab\tseparated\tcolumns",
    "NFD e\u0301 and a\u030a",
    "<command-name>/clear</command-name> tags",
    "[Pasted text #1 +3 lines] imitated",
    "[...Truncated text #1 +3 lines...]",
    "trailing spaces and lines   \n\n\n",
    "╭────╮\n│ > fake box │\n╰────╯\n❯ Do you want to proceed?\n 1. Yes",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467 family, \u05e9\u05dc\u05d5\u05dd rtl",
    # Found by test_fidelity's hypothesis run: the loaded box showed only blank rows.
    "µ½À¤ñ\x0c" + "\n" * 128,
    "top\n" + "\n" * 100 + "bottom",
]


async def test_what_the_editor_loads_is_what_pasting_delivers(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with open_conversation(_options(cli, isolated, editor_threshold=0)) as conversation:
        for text in ADVERSARIAL:
            await _turn(conversation, text)
        stats = conversation.statistics()
    received = [user_texts(request)[-1] for request in mock_api.main_requests]
    assert received == [prepare_text(text, rows=40).expected_record for text in ADVERSARIAL]
    # A text whose trimmed end is a backslash is pasted: Enter after a loaded one would
    # insert a line break.
    assert stats.editor_messages == len(ADVERSARIAL) - 2


@pytest.mark.parametrize("variable", ["VISUAL", "EDITOR", "CLAUDE_CODE_TMPDIR"])
async def test_a_caller_setting_of_its_own_means_pastes(
    fake_cli: Path,
    isolated: IsolatedConfig,
    mock_api: MockAnthropicAPI,
    tmp_path: Path,
    variable: str,
) -> None:
    env = {**isolated.env, variable: str(tmp_path / "their-editor")}
    async with open_conversation(_options(fake_cli, isolated, env=env)) as conversation:
        await _turn(conversation, LONG)
        stats = conversation.statistics()
    assert stats.editor_messages == 0
    assert user_texts(mock_api.main_requests[0]) == [prepare_text(LONG, rows=40).expected_record]


async def test_no_threshold_always_pastes(
    fake_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    options = _options(fake_cli, isolated, editor_threshold=None)
    async with open_conversation(options) as conversation:
        await _turn(conversation, LONG)
        stats = conversation.statistics()
    assert stats.editor_messages == 0
    assert user_texts(mock_api.main_requests[0]) == [prepare_text(LONG, rows=40).expected_record]


@pytest.mark.usefixtures("no_stray_editor_dirs")
async def test_a_message_the_cli_never_took_is_pasted(
    cli: Path,
    isolated: IsolatedConfig,
    mock_api: MockAnthropicAPI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The script expects the prompt files elsewhere: it refuses the CLI's.
    monkeypatch.setattr(claude_trio._editor, "editor_prompt_dir", lambda _env: tmp_path)
    monkeypatch.setattr(claude_trio._conversation, "_EDITOR_WAIT", 3.0)
    async with open_conversation(_options(cli, isolated)) as conversation:
        await _turn(conversation, LONG)
        await _turn(conversation, "next")
        stats = conversation.statistics()
    assert stats.editor_messages == 0
    assert not stats.history_diverged
    assert user_texts(mock_api.main_requests[0]) == [prepare_text(LONG, rows=40).expected_record]
    assert user_texts(mock_api.main_requests[1])[-1] == "next"


# --- the route itself -------------------------------------------------------------------


def _run(script: Path, *args: str) -> int:
    return subprocess.run([str(script), *args], check=False, timeout=10).returncode


def test_the_script_fills_one_prompt_file_once(tmp_path: Path) -> None:
    prompts = tmp_path / f"claude-{os.getuid()}"
    prompts.mkdir()
    with editor_route({"TMPDIR": str(tmp_path)}, temp_dir=tmp_path) as route:
        assert route is not None
        assert route.prompt_dir == prompts
        directory = route.script.parent
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_IMODE(route.script.stat().st_mode) == 0o700
        route.stage("the message\n")
        (staged,) = (path for path in directory.iterdir() if path != route.script)
        assert stat.S_IMODE(staged.stat().st_mode) == 0o600
        target = prompts / "claude-prompt-1234.md"
        target.write_text("what the box held")
        assert _run(route.script, str(target)) == 0
        assert target.read_text() == "the message\n"
        assert _run(route.script, str(target)) == 1  # taken: nothing staged any more
        assert not route.withdraw()
        assert sorted(directory.iterdir()) == [route.script]
    assert not directory.exists()


@pytest.mark.parametrize(
    "name",
    [
        "elsewhere/claude-prompt-1.md",
        "claude-0/COMMIT_EDITMSG",
        "claude-0/claude-prompt-1.txt",
        "claude-0/claude-prompt-x/../../victim.md",
        "claude-0/sub/claude-prompt-1.md",
    ],
)
def test_the_script_refuses_any_other_file(tmp_path: Path, name: str) -> None:
    target = tmp_path / name.replace("claude-0", f"claude-{os.getuid()}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("theirs")
    with editor_route({"TMPDIR": str(tmp_path)}, temp_dir=tmp_path) as route:
        assert route is not None
        route.stage("the message")
        assert _run(route.script, str(target)) == 1
        assert target.read_text() == "theirs"
        assert route.withdraw()  # still staged, untouched


def test_the_prompt_directory_follows_tmpdir_and_gives_way_to_the_caller() -> None:
    uid = os.getuid()
    assert editor_prompt_dir({}) == Path(f"/tmp/claude-{uid}")
    assert editor_prompt_dir({"TMPDIR": "/var/tmp/"}) == Path(f"/var/tmp/claude-{uid}")
    for variable in ("VISUAL", "EDITOR", "CLAUDE_CODE_TMPDIR"):
        assert editor_prompt_dir({variable: "x"}) is None
        with editor_route({variable: "x"}) as route:
            assert route is None


def test_a_script_path_with_a_space_is_not_used(tmp_path: Path) -> None:
    spaced = tmp_path / "with space"
    spaced.mkdir()
    with editor_route({}, temp_dir=spaced) as route:
        assert route is None
    assert list(spaced.iterdir()) == []
