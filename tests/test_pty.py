"""PtyClaudeProcess on the real CLI: readiness, dialogs as errors, teardown without leaks."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
import trio

from claude_trio import ProcessError, PtyClaudeProcess, SessionError, open_claude_pty
from claude_trio.testing import IsolatedConfig


def _spawn(cli: Path, config: IsolatedConfig, *extra: str) -> PtyClaudeProcess:
    argv = [str(cli), "--session-id", str(uuid.uuid4()), *extra]
    return PtyClaudeProcess.spawn(argv, env=config.env, cwd=config.cwd)


async def _ready_then_close(proc: PtyClaudeProcess) -> str:
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(proc.drain)
            with trio.fail_after(30):
                await proc.wait_ready()
            screen = proc.screen.text()
            nursery.cancel_scope.cancel()
    except ExceptionGroup as group:
        (error,) = group.exceptions
        raise error from None
    finally:
        await proc.aclose()
    return screen


def _argv(cli: Path, *extra: str) -> list[str]:
    return [str(cli), "--session-id", str(uuid.uuid4()), *extra]


async def test_open_claude_pty_owns_the_process(cli: Path, isolated: IsolatedConfig) -> None:
    async with open_claude_pty(
        _argv(cli, "--dangerously-skip-permissions"), env=isolated.env, cwd=isolated.cwd
    ) as proc:
        assert proc.returncode is None
        assert "bypass permissions on" in proc.screen.text()
    assert proc.returncode is not None


async def test_open_claude_pty_raises_dialogs_unwrapped(
    cli: Path, isolated: IsolatedConfig
) -> None:
    settings = json.loads(isolated.claude_json.read_text())
    settings["projects"] = {}
    isolated.claude_json.write_text(json.dumps(settings))
    with pytest.raises(SessionError, match="trust folder"):
        async with open_claude_pty(_argv(cli), env=isolated.env, cwd=isolated.cwd):
            pytest.fail("the trust dialog must not count as ready")


async def test_an_error_in_the_block_ends_the_process(cli: Path, isolated: IsolatedConfig) -> None:
    with pytest.raises(KeyError, match="boom"):
        async with open_claude_pty(_argv(cli), env=isolated.env, cwd=isolated.cwd) as proc:
            raise KeyError("boom")
    assert proc.returncode is not None


async def test_reaches_the_idle_prompt_and_closes(cli: Path, isolated: IsolatedConfig) -> None:
    proc = _spawn(cli, isolated, "--dangerously-skip-permissions")
    screen = await _ready_then_close(proc)
    assert "bypass permissions on" in screen
    assert proc.returncode is not None
    assert _reaped(proc.pid)


def _reaped(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


async def test_untrusted_folder_is_a_session_error_naming_the_fix(
    cli: Path, isolated: IsolatedConfig
) -> None:
    settings = json.loads(isolated.claude_json.read_text())
    settings["projects"] = {}
    isolated.claude_json.write_text(json.dumps(settings))
    proc = _spawn(cli, isolated)
    with pytest.raises(SessionError) as info:
        await _ready_then_close(proc)
    assert "trust folder" in str(info.value)
    assert info.value.fix is not None
    assert "hasTrustDialogAccepted" in info.value.fix
    assert "Quick safety check" in info.value.screen


async def test_unapproved_api_key_is_a_session_error(cli: Path, isolated: IsolatedConfig) -> None:
    settings = json.loads(isolated.claude_json.read_text())
    settings["customApiKeyResponses"] = {"approved": [], "rejected": []}
    isolated.claude_json.write_text(json.dumps(settings))
    with pytest.raises(SessionError) as info:
        await _ready_then_close(_spawn(cli, isolated))
    assert info.value.fix is not None
    assert "customApiKeyResponses" in info.value.fix


@pytest.mark.skipif(os.geteuid() != 0, reason="the CLI refuses skip-permissions only for root")
async def test_root_without_is_sandbox_names_the_variable(
    cli: Path, isolated: IsolatedConfig
) -> None:
    env = {k: v for k, v in isolated.env.items() if k != "IS_SANDBOX"}
    proc = PtyClaudeProcess.spawn(
        [str(cli), "--dangerously-skip-permissions"], env=env, cwd=isolated.cwd
    )
    with pytest.raises(SessionError) as info:
        await _ready_then_close(proc)
    assert info.value.fix is not None
    assert "IS_SANDBOX=1" in info.value.fix


async def test_cancelled_while_starting_still_ends_the_process(
    cli: Path, isolated: IsolatedConfig
) -> None:
    proc = _spawn(cli, isolated)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(proc.drain)
            with trio.CancelScope() as scope:
                scope.cancel()
                await proc.wait_ready()
            assert scope.cancelled_caught
            assert proc.returncode is None
            nursery.cancel_scope.cancel()
    finally:
        with trio.fail_after(10):
            await proc.aclose()
    assert proc.returncode is not None


async def test_exit_before_ready_is_a_process_error_with_the_screen(
    cli: Path, isolated: IsolatedConfig
) -> None:
    proc = _spawn(cli, isolated, "--no-such-flag-at-all")
    with pytest.raises(ProcessError) as info:
        await _ready_then_close(proc)
    assert info.value.exit_status not in (None, 0)
    assert "no-such-flag-at-all" in info.value.screen_tail


def test_a_missing_executable_is_a_process_error(tmp_path: Path) -> None:
    with pytest.raises(ProcessError, match="could not start"):
        PtyClaudeProcess.spawn([str(tmp_path / "nope")], env={}, cwd=tmp_path)


async def test_aclose_twice_is_harmless(cli: Path, isolated: IsolatedConfig) -> None:
    proc = _spawn(cli, isolated)
    await _ready_then_close(proc)
    first = proc.returncode
    await proc.aclose()
    assert proc.returncode == first
