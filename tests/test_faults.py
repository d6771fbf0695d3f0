"""Failures of the backend and its conversations: each ends in its typed error, quickly,
leaves nothing behind, and hurts no other conversation."""

from __future__ import annotations

import datetime
import os
import signal
import stat
from collections.abc import Sequence
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest
import trio

from claude_trio import (
    BackendError,
    BackendOptions,
    BackendTimeoutError,
    ClaudeCodeBackend,
    CLINotFoundError,
    CLIVersionWarning,
    ConversationOptions,
    Event,
    OverloadedError,
    PermissionRequest,
    ProcessError,
    RateLimitError,
    ResultMessage,
    SessionError,
    SystemMessage,
    open_conversation,
)
from claude_trio._normalize import normalize as real_normalize
from claude_trio._retry import find_retry_notice, retry_refused_error
from claude_trio.testing import IsolatedConfig, MockAnthropicAPI, error_reply

from .helpers import (
    TURN,
    Message,
    ask,
    assistant_texts,
    backend_options,
    pids_of_sessions,
    session_header,
    user_texts,
)

RESEED: list[Message] = [
    {"role": "user", "content": "remember Beaver"},
    {"role": "assistant", "content": "ok"},
    {"role": "user", "content": "what was it?"},
]


class AppError(Exception):
    """An error of the caller's own."""


async def _collect(
    backend: ClaudeCodeBackend, messages: Sequence[Message], into: list[SystemMessage]
) -> None:
    """Run a turn, keeping its status events in *into*, up to its end or its error."""
    with trio.fail_after(TURN):
        async for event in backend.complete(messages):
            if isinstance(event, SystemMessage):
                into.append(event)


def _session_files(config: IsolatedConfig) -> list[Path]:
    return sorted((config.config_dir / "projects").rglob("*.jsonl"))


def _script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


# --- pool failure paths -------------------------------------------------------------------


async def test_a_missing_cli_raises_cli_not_found(
    isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    options = backend_options(Path("/nonexistent/claude"), isolated)
    async with ClaudeCodeBackend(options) as backend:
        for messages in ([{"role": "user", "content": "hi"}], RESEED):
            with pytest.raises(CLINotFoundError):
                await ask(backend, messages)
        assert backend.statistics().live == 0
    assert _session_files(isolated) == []
    assert mock_api.main_requests == ()


async def test_a_cli_that_cannot_start_leaves_no_transcript(
    tmp_path: Path, isolated: IsolatedConfig
) -> None:
    # Answers --version as the pinned release, then fails as a broken install would.
    broken = _script(
        tmp_path,
        "claude",
        'if [ "$1" = "--version" ]; then echo "2.1.328 (Claude Code)"; exit 0; fi\n'
        "echo 'claude: broken install' >&2\nexit 3\n",
    )
    async with ClaudeCodeBackend(backend_options(broken, isolated)) as backend:
        with pytest.raises(ProcessError) as caught:
            await ask(backend, RESEED)
        assert caught.value.exit_status == 3
        assert backend.statistics().live == 0
    assert _session_files(isolated) == []


@pytest.mark.parametrize("delay", [0.0, 0.001, 0.01, 0.05, 0.1, 0.2, 0.35, 0.6])
async def test_cancelling_a_start_lets_the_cancellation_through(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI, delay: float
) -> None:
    async with ClaudeCodeBackend(backend_options(cli, isolated)) as backend:
        with trio.move_on_after(delay) as scope:
            await ask(backend, RESEED)
        stats = backend.statistics()
        # A process whose turn was cancelled may still be closing: it is never reused.
        assert stats.busy == 0
        assert stats.live <= 1
        assert stats.discarded == (1 if scope.cancelled_caught and stats.spawned else 0)
        # The backend serves the next call.
        events = await ask(backend, [{"role": "user", "content": "next"}])
        assert assistant_texts(events) == ["echo: next"]
    assert _session_files(isolated) == []


# --- containment ----------------------------------------------------------------------------


async def test_a_raising_on_permission_reaches_its_caller_as_itself_and_nobody_else(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async def refuse(request: PermissionRequest) -> bool:
        raise AppError(f"no {request.tool}")

    options = backend_options(
        cli,
        isolated,
        dangerously_skip_permissions=False,
        permission_mode="default",
        on_permission=refuse,
    )
    other: list[Event] = []
    async with ClaudeCodeBackend(options) as backend:
        async with trio.open_nursery() as nursery:

            async def bystander() -> None:
                other.extend(await ask(backend, [{"role": "user", "content": "SLOW3 wait"}]))

            nursery.start_soon(bystander)
            with pytest.raises(AppError, match="no Bash"):
                await ask(backend, [{"role": "user", "content": "CALL_BASH touch x.txt"}])
        assert backend.statistics().failed == 1
        # The backend goes on: the same history re-seeds into a new process.
        events = await ask(
            backend,
            [
                {"role": "user", "content": "CALL_BASH touch x.txt"},
                {"role": "assistant", "content": "refused"},
                {"role": "user", "content": "fine"},
            ],
        )
        assert assistant_texts(events) == ["echo: fine"]
    assert assistant_texts(other) == ["w0 w1 w2 w3 w4 w5"]
    assert not (isolated.cwd / "x.txt").exists()


async def test_a_slow_on_permission_ends_in_a_timeout(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async def never(request: PermissionRequest) -> bool:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    options = backend_options(
        cli,
        isolated,
        dangerously_skip_permissions=False,
        permission_mode="default",
        on_permission=never,
        permission_timeout=0.5,
    )
    async with ClaudeCodeBackend(options) as backend:
        started = trio.current_time()
        with pytest.raises(BackendTimeoutError) as caught:
            await ask(backend, [{"role": "user", "content": "CALL_BASH touch y.txt"}])
        assert caught.value.phase == "permission"
        assert trio.current_time() - started < 15
    assert not (isolated.cwd / "y.txt").exists()


async def test_a_failing_conversation_task_fails_only_its_turn(
    cli: Path,
    isolated: IsolatedConfig,
    mock_api: MockAnthropicAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def normalize(line: str, **kwargs: Any) -> Any:
        if "BREAK_ME" in line:
            raise RuntimeError("a bug in the record reader")
        return real_normalize(line, **kwargs)

    monkeypatch.setattr("claude_trio._conversation.normalize", normalize)
    other: list[Event] = []
    async with ClaudeCodeBackend(backend_options(cli, isolated)) as backend:
        async with trio.open_nursery() as nursery:

            async def bystander() -> None:
                other.extend(await ask(backend, [{"role": "user", "content": "SLOW2 wait"}]))

            nursery.start_soon(bystander)
            with pytest.raises(BackendError) as caught:
                await ask(backend, [{"role": "user", "content": "BREAK_ME"}])
        assert isinstance(caught.value.__cause__, RuntimeError)
        assert not isinstance(caught.value, trio.EndOfChannel)
        assert backend.statistics().failed == 1
        events = await ask(backend, [{"role": "user", "content": "after"}])
        assert assistant_texts(events) == ["echo: after"]
    assert assistant_texts(other) == ["w0 w1 w2 w3"]


@pytest.mark.real_cli
async def test_sigkill_of_one_busy_conversation_spares_the_other(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    killed_history: list[Message] = [{"role": "user", "content": "SLOW6 first"}]
    other: list[Event] = []
    failures: list[BaseException] = []
    async with ClaudeCodeBackend(backend_options(claude_cli, isolated)) as backend:
        async with trio.open_nursery() as nursery:

            async def bystander() -> None:
                other.extend(await ask(backend, [{"role": "user", "content": "SLOW3 other"}]))

            async def victim() -> None:
                try:
                    await ask(backend, killed_history)
                except BackendError as exc:
                    failures.append(exc)

            nursery.start_soon(bystander)
            nursery.start_soon(victim)
            with trio.fail_after(TURN):
                requests = await mock_api.wait_for_requests(2)
            request = next(r for r in requests if r.prompt == "SLOW6 first")
            pids = pids_of_sessions({session_header(request)})
            assert len(pids) == 1
            os.kill(pids[0], signal.SIGKILL)
        assert len(failures) == 1
        assert isinstance(failures[0], ProcessError)
        assert failures[0].signal == signal.SIGKILL
        assert assistant_texts(other) == ["w0 w1 w2 w3 w4 w5"]
        # The killed history goes on by re-seeding; its prompt reaches the API once.
        count_before = len(mock_api.main_requests)
        events_after = await ask(backend, [{"role": "user", "content": "SLOW6 first"}])
        assert assistant_texts(events_after) == [" ".join(f"w{n}" for n in range(12))]
        assert len(mock_api.main_requests) == count_before + 1
        assert mock_api.main_requests[-1].prompt == "SLOW6 first"
        assert user_texts(mock_api.main_requests[-1]).count("SLOW6 first") == 1
    assert _session_files(isolated) == []


# --- chains, bounds, exits ------------------------------------------------------------------


async def _raise_chained_inside(backend: ClaudeCodeBackend) -> None:
    async with backend:
        try:
            raise KeyError("inner")
        except KeyError as err:
            raise AppError("outer") from err


async def test_a_callers_exception_keeps_its_chain(tmp_path: Path) -> None:
    with pytest.raises(AppError) as caught:
        await _raise_chained_inside(ClaudeCodeBackend(BackendOptions(cwd=tmp_path)))
    assert isinstance(caught.value.__cause__, KeyError)
    assert caught.value.__suppress_context__


async def test_a_nested_call_on_a_full_pool_times_out(
    fake_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    options = backend_options(fake_cli, isolated, max_live=1, pool_timeout=0.5)
    async with ClaudeCodeBackend(options) as backend:
        outer = backend.complete([{"role": "user", "content": "SLOW1 outer"}])
        with trio.fail_after(TURN):
            async with aclosing(outer):
                async for event in outer:
                    if isinstance(event, ResultMessage):
                        continue
                    with pytest.raises(BackendTimeoutError) as caught:
                        await ask(backend, [{"role": "user", "content": "inner"}])
                    assert caught.value.phase == "pool"
                    break


async def test_a_cli_that_stops_reading_ends_in_an_input_timeout(
    fake_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    env = {**isolated.env, "FAKE_CLAUDE_FAULT": "stop-reading"}
    options = ConversationOptions(
        cwd=isolated.cwd, env=env, cli_path=str(fake_cli), input_timeout=0.5
    )
    async with open_conversation(options) as conversation:
        started = trio.current_time()
        with pytest.raises(BackendTimeoutError) as caught:
            await conversation.send("x" * 300_000)
        assert caught.value.phase == "input"
        assert trio.current_time() - started < 10
        assert conversation.history_diverged


async def test_a_cli_that_exits_after_its_last_record_completes_the_turn(
    fake_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    env = {**isolated.env, "FAKE_CLAUDE_FAULT": "exit-after-turn"}
    options = ConversationOptions(cwd=isolated.cwd, env=env, cli_path=str(fake_cli))
    for number in range(20):
        async with open_conversation(options) as conversation:
            events = [event async for event in conversation.turn(f"turn {number}")]
            assert assistant_texts(events) == [f"echo: turn {number}"]
            assert isinstance(events[-1], ResultMessage)


# --- the environment, the trust dialog, the CLI's version -----------------------------------


def test_an_explicit_env_setting_is_never_overridden(tmp_path: Path) -> None:
    options = BackendOptions(cwd=tmp_path, env={"CLAUDE_CODE_MAX_RETRIES": "0"})
    assert options.conversation_options().child_env()["CLAUDE_CODE_MAX_RETRIES"] == "0"
    assert BackendOptions(cwd=tmp_path).child_env()["CLAUDE_CODE_MAX_RETRIES"] == "2"
    with pytest.raises(ValueError, match="max_retries"):
        BackendOptions(cwd=tmp_path, max_retries=3, env={"CLAUDE_CODE_MAX_RETRIES": "0"})


@pytest.mark.real_cli
async def test_explicit_env_retries_reach_the_cli(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    env = {**isolated.env, "CLAUDE_CODE_MAX_RETRIES": "0"}
    async with ClaudeCodeBackend(backend_options(claude_cli, isolated, env=env)) as backend:
        with pytest.raises(BackendError):
            await ask(backend, [{"role": "user", "content": "ERR529"}])
    assert len(mock_api.main_requests) == 1


async def test_an_untrusted_folder_names_the_option_or_is_trusted_with_it(
    cli: Path, tmp_path: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    fresh = tmp_path / "elsewhere"
    fresh.mkdir()
    async with ClaudeCodeBackend(backend_options(cli, isolated, cwd=fresh)) as backend:
        with pytest.raises(SessionError) as caught:
            await ask(backend, [{"role": "user", "content": "hi"}])
        assert "trust_cwd=True" in str(caught.value)
    async with ClaudeCodeBackend(
        backend_options(cli, isolated, cwd=fresh, trust_cwd=True)
    ) as backend:
        events = await ask(backend, [{"role": "user", "content": "hi"}])
    assert assistant_texts(events) == ["echo: hi"]


async def test_an_unmeasured_cli_version_warns_once(
    fake_cli: Path, tmp_path: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    newer = _script(
        tmp_path,
        "claude-newer",
        f'if [ "$1" = "--version" ]; then echo "9.9.9 (Claude Code)"; exit 0; fi\n'
        f'exec "{fake_cli}" "$@"\n',
    )
    history: list[Message] = [{"role": "user", "content": "hi"}]
    async with ClaudeCodeBackend(backend_options(newer, isolated)) as backend:
        with pytest.warns(CLIVersionWarning, match="9.9.9"):
            first = await ask(backend, history)
        history += [{"role": "assistant", "content": "echo: hi"}, {"role": "user", "content": "2"}]
        second = await ask(backend, history)
    notices = [e for e in first if isinstance(e, SystemMessage) and e.subtype == "cli_version"]
    assert len(notices) == 1
    assert notices[0].data["version"] == "9.9.9"
    assert not [e for e in second if isinstance(e, SystemMessage) and e.subtype == "cli_version"]


async def test_session_files_are_removed_unless_kept(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with ClaudeCodeBackend(backend_options(cli, isolated)) as backend:
        await ask(backend, RESEED)
        assert len(_session_files(isolated)) == 1
    assert _session_files(isolated) == []
    async with ClaudeCodeBackend(backend_options(cli, isolated, keep_sessions=True)) as backend:
        await ask(backend, RESEED)
    kept = _session_files(isolated)
    assert len(kept) == 1
    assert stat.S_IMODE(kept[0].stat().st_mode) == 0o600


# --- retries and rate limits ----------------------------------------------------------------


def _without_retries_env(config: IsolatedConfig) -> dict[str, str]:
    return {k: v for k, v in config.env.items() if k != "CLAUDE_CODE_MAX_RETRIES"}


async def test_a_long_retry_after_reaches_the_caller_in_seconds(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    # Defaults: max_retries 2, max_retry_wait 10 s; the mock's 429 says retry-after: 30.
    options = backend_options(cli, isolated, env=_without_retries_env(isolated))
    statuses: list[SystemMessage] = []
    async with ClaudeCodeBackend(options) as backend:
        started = trio.current_time()
        with pytest.raises(RateLimitError) as caught:
            await _collect(backend, [{"role": "user", "content": "ERR429 x"}], statuses)
        elapsed = trio.current_time() - started
        events = await ask(backend, [{"role": "user", "content": "after the limit"}])
    assert elapsed < 10
    assert caught.value.retry_after is not None
    assert 30 <= caught.value.retry_after <= 40
    assert [s.subtype for s in statuses] == ["api_retry"]
    assert statuses[0].data["attempt"] == 1
    assert statuses[0].data["retry_in_seconds"] == caught.value.retry_after
    assert assistant_texts(events) == ["echo: after the limit"]
    assert [r.prompt for r in mock_api.main_requests] == ["ERR429 x", "after the limit"]


async def test_each_announced_retry_is_one_event_of_its_turn(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    env = {**_without_retries_env(isolated), "CLAUDE_CODE_MAX_RETRIES": "3"}
    options = backend_options(cli, isolated, env=env)
    async with ClaudeCodeBackend(options) as backend:
        history: list[Message] = []
        for turn in range(2):
            mock_api.enqueue(error_reply(429, retry_after=1), error_reply(429, retry_after=1))
            history.append({"role": "user", "content": f"turn {turn}"})
            events = await ask(backend, history)
            history.append({"role": "assistant", "content": f"echo: turn {turn}"})
            retries = [e for e in events if isinstance(e, SystemMessage)]
            assert [e.data["attempt"] for e in retries] == [1, 2]
            assert all(1 <= e.data["retry_in_seconds"] <= 3 for e in retries)
            assert assistant_texts(events) == [f"echo: turn {turn}"]


def test_a_retry_wait_past_the_bound_names_its_error() -> None:
    now = datetime.datetime(2026, 11, 30, 0, 30, tzinfo=datetime.UTC)
    limit = _retry_error("✻ 5-hour limit reached · retrying in 7s (3:54am) · attempt 1/2", now)
    assert isinstance(limit, RateLimitError)
    assert limit.reset_at == datetime.datetime(2026, 11, 30, 3, 54, tzinfo=datetime.UTC)
    assert limit.retry_after == 7
    overloaded = _retry_error("✻ 529 Overloaded · retrying in 12s · attempt 3/4", now)
    assert isinstance(overloaded, OverloadedError)
    assert overloaded.retry_after == 12
    unnamed = _retry_error("✻ API error · retrying in 1m 30s · attempt 1/2", now)
    assert isinstance(unnamed, RateLimitError)
    assert unnamed.status is None
    assert unnamed.retry_after == 90


def _retry_error(line: str, now: datetime.datetime) -> BackendError:
    notice = find_retry_notice(line)
    assert notice is not None
    return retry_refused_error(notice, limit=5, now=now)
