"""Finding the claude executable: option, then CLAUDE_TRIO_CLI, then PATH."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from claude_trio import CLI_ENV_VAR, CLINotFoundError, find_cli


def _executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_option_wins_over_env_and_path(tmp_path: Path) -> None:
    option = _executable(tmp_path / "from-option")
    env_cli = _executable(tmp_path / "from-env")
    (tmp_path / "bin").mkdir()
    _executable(tmp_path / "bin" / "claude")
    env = {CLI_ENV_VAR: str(env_cli), "PATH": str(tmp_path / "bin")}
    assert find_cli(option, env=env) == option


def test_env_wins_over_path(tmp_path: Path) -> None:
    env_cli = _executable(tmp_path / "from-env")
    (tmp_path / "bin").mkdir()
    _executable(tmp_path / "bin" / "claude")
    assert find_cli(env={CLI_ENV_VAR: str(env_cli), "PATH": str(tmp_path / "bin")}) == env_cli


def test_path_is_last(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    on_path = _executable(tmp_path / "bin" / "claude")
    assert find_cli(env={"PATH": str(tmp_path / "bin")}) == on_path


def test_nothing_found_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(CLINotFoundError) as info:
        find_cli(env={"PATH": str(tmp_path)})
    message = str(info.value)
    assert "npm install" in message
    assert "@anthropic-ai/claude-code@" in message
    assert CLI_ENV_VAR in message
    assert isinstance(info.value, FileNotFoundError)


@pytest.mark.parametrize("source", ["option", "env"])
def test_a_bad_explicit_path_never_falls_through(tmp_path: Path, source: str) -> None:
    (tmp_path / "bin").mkdir()
    _executable(tmp_path / "bin" / "claude")
    not_executable = tmp_path / "plain-file"
    not_executable.write_text("")
    env = {"PATH": str(tmp_path / "bin")}
    for bad, problem in [
        (tmp_path / "missing", "does not exist"),
        (not_executable, "is not executable"),
    ]:
        option = bad if source == "option" else None
        env_used = env if source == "option" else {**env, CLI_ENV_VAR: str(bad)}
        with pytest.raises(CLINotFoundError, match=problem):
            find_cli(option, env=env_used)
