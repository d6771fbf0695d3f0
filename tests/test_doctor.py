"""``claude-trio doctor``: the judging and the report, the fake CLI, one run on the real CLI."""

from __future__ import annotations

import argparse
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import trio

from claude_trio import (
    PINNED_CLI_VERSION,
    AssistantMessage,
    BackendTimeoutError,
    CLINotFoundError,
    ResultMessage,
    SessionError,
    TextBlock,
)
from claude_trio._doctor import (
    LIVE_CHECKS,
    LIVE_PROMPT,
    OFFLINE_CHECKS,
    add_doctor_arguments,
    doctor,
    live_announcement,
    run_check,
    run_doctor,
)
from claude_trio._doctor_report import (
    CheckResult,
    exit_status,
    judge_interrupt,
    judge_resume,
    judge_turn,
    judge_turn_end,
    judge_version,
    render_table,
    verdict_for_error,
)
from claude_trio.testing import MOCK_API_KEY, IsolatedConfig, MockAnthropicAPI


def _script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def _said(text: str) -> AssistantMessage:
    return AssistantMessage(id="msg_1", model="m", content=[TextBlock(text=text)])


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_doctor_arguments(parser)
    return parser.parse_args(argv)


# --- judging and rendering, no process --------------------------------------------------


def test_the_pinned_version_passes_and_another_warns_with_the_pin_fix() -> None:
    pinned = judge_version(f"{PINNED_CLI_VERSION} (Claude Code)\n", 0)
    assert (pinned.ok, pinned.fix) == (True, None)
    other = judge_version("9.9.9 (Claude Code)\n", 0)
    assert other.ok
    assert "9.9.9" in other.detail
    assert other.fix is not None
    assert f"@anthropic-ai/claude-code@{PINNED_CLI_VERSION}" in other.fix
    assert "report" in other.fix
    broken = judge_version("segfault", 139)
    assert not broken.ok
    assert "139" in broken.detail
    assert not judge_version("", 0).ok


def test_a_warning_is_a_pass_and_a_failure_sets_the_exit_status() -> None:
    passed = CheckResult("cli", True, "/bin/claude", seconds=0.01)
    warned = CheckResult("version", True, "9.9.9", fix="pin it", seconds=0.2)
    failed = CheckResult("turn", False, "no reply\nsecond line", fix="do this", seconds=3.5)
    assert [r.status for r in (passed, warned, failed)] == ["pass", "warn", "FAIL"]
    assert exit_status([passed, warned]) == 0
    assert exit_status([passed, warned, failed]) == 1

    table = render_table([passed, warned, failed]).splitlines()
    assert table[0].split() == ["check", "result", "time", "detail"]
    assert table[1].split() == ["cli", "pass", "0.01", "s", "/bin/claude"]
    assert table[2].split() == ["version", "warn", "0.20", "s", "9.9.9"]
    # A row shows the first line of the detail; the fixes section shows all of it.
    assert table[3].split() == ["turn", "FAIL", "3.50", "s", "no", "reply"]
    assert table[4:] == [
        "",
        "version (warn):",
        "    fix: pin it",
        "turn (FAIL):",
        "    no reply",
        "    second line",
        "    fix: do this",
        "",
        "1 of 3 checks failed: turn",
    ]
    assert (
        render_table([passed, warned]).splitlines()[-1] == "all 2 checks passed (1 with a warning)"
    )
    skipped = CheckResult("resume", False, "not run: an earlier check failed")
    assert skipped.status == "skip"
    assert exit_status([passed, skipped]) == 1
    assert render_table([failed, skipped]).splitlines()[-1] == (
        "1 of 2 checks failed: turn; 1 not run"
    )


def test_a_long_detail_is_cut_in_its_row() -> None:
    row = render_table([CheckResult("turn", False, "x" * 300)]).splitlines()[1]
    assert len(row) < 100
    assert row.endswith("x…")


def test_a_turn_passes_on_the_expected_reply_only() -> None:
    assert judge_turn([_said("echo: hi")], "echo: hi", first_after=0.5).ok
    wrong = judge_turn([_said("something else")], "echo: hi", first_after=None)
    assert not wrong.ok
    assert "something else" in wrong.detail


def test_a_turn_end_needs_the_turn_duration_record_in_time() -> None:
    done = ResultMessage(duration_ms=12)
    assert judge_turn_end([_said("x"), done], ended=True, bound=15).ok
    hung = judge_turn_end([_said("x")], ended=False, bound=15)
    assert not hung.ok
    assert "15 s" in hung.detail
    assert "turn_timeout" in hung.detail
    assert not judge_turn_end([ResultMessage(is_error=True)], ended=True, bound=15).ok
    untimed = judge_turn_end([ResultMessage(duration_ms=None)], ended=True, bound=15)
    assert not untimed.ok
    assert "turn_duration" in untimed.detail


def test_an_interrupt_must_end_as_interrupted_and_leave_the_next_turn_working() -> None:
    stopped = [ResultMessage(interrupted=True)]
    assert judge_interrupt(stopped, [_said("echo: next")], "echo: next").ok
    assert not judge_interrupt([ResultMessage()], [_said("echo: next")], "echo: next").ok
    assert not judge_interrupt(stopped, [_said("nothing")], "echo: next").ok


def test_a_reseed_must_carry_every_earlier_message() -> None:
    history = [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
    ]
    sent: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": "<system-reminder>x"}]},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": [{"type": "text", "text": "a1"}]},
        {"role": "user", "content": [{"type": "text", "text": "q2"}]},
    ]
    assert judge_resume([_said("echo: q2")], sent, history, reseeded=1).ok
    lost = judge_resume([_said("echo: q2")], [sent[0], sent[3]], history, reseeded=1)
    assert not lost.ok
    assert "'q1'" in lost.detail
    assert "'a1'" in lost.detail
    assert not judge_resume([_said("echo: q2")], sent, history, reseeded=0).ok


def test_errors_become_failures_with_their_fix() -> None:
    dialog = verdict_for_error(SessionError("shows a dialog", fix="set the key"))
    assert (dialog.ok, dialog.fix) == (False, "set the key")
    missing = verdict_for_error(CLINotFoundError("not found\nInstall it with npm"))
    assert missing.fix == "Install it with npm"
    assert "not found" in missing.detail
    timeout = verdict_for_error(BackendTimeoutError("no box", phase="startup", timeout=3))
    assert timeout.fix is not None
    assert "pin" in timeout.fix


async def test_a_check_that_hangs_fails_within_its_bound() -> None:
    async def hang() -> None:
        await trio.sleep_forever()

    with trio.fail_after(5):
        result = await run_check("stuck", hang, bound=0.2)  # type: ignore[arg-type]
    assert not result.ok
    assert "0.2 s" in result.detail
    assert 0.2 <= result.seconds < 2


def test_arguments() -> None:
    args = _parse()
    assert (args.cli_path, args.live, args.timeout) == (None, False, 60.0)
    args = _parse("--live", "--cli-path", "/x/claude", "--timeout", "2.5")
    assert (args.cli_path, args.live, args.timeout) == ("/x/claude", True, 2.5)
    for bad in ("0", "-1", "soon"):
        with pytest.raises(SystemExit):
            _parse("--timeout", bad)


# --- the fake CLI ------------------------------------------------------------------------


async def test_every_check_passes_on_the_fake_cli(fake_cli: Path) -> None:
    lines: list[str] = []
    with trio.fail_after(120):
        results = await doctor(str(fake_cli), out=lines.append)
    assert [r.name for r in results] == list(OFFLINE_CHECKS)
    assert [r.status for r in results] == ["pass"] * len(OFFLINE_CHECKS), render_table(results)
    assert exit_status(results) == 0
    assert lines == render_table(results).splitlines()[: len(results) + 1]


async def test_another_version_warns_but_passes(fake_cli: Path, tmp_path: Path) -> None:
    newer = _script(
        tmp_path,
        "claude",
        'if [ "$1" = "--version" ]; then echo "9.9.9 (Claude Code)"; exit 0; fi\n'
        f'exec "{fake_cli}" "$@"\n',
    )
    with trio.fail_after(120):
        results = await doctor(str(newer), out=lambda line: None)
    version = results[1]
    assert version.status == "warn"
    assert version.fix is not None
    assert "pin" in version.fix
    assert exit_status(results) == 0


async def test_a_hung_cli_fails_each_check_in_bounded_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hung = _script(tmp_path, "claude", "exec sleep 600\n")
    started = trio.current_time()
    with trio.fail_after(90):
        status = await run_doctor(_parse("--cli-path", str(hung), "--timeout", "1"))
    assert status == 1
    assert trio.current_time() - started < 60
    out = capsys.readouterr().out
    for name in OFFLINE_CHECKS[1:]:
        assert f"{name} (FAIL):" in out
    assert "did not finish within 1 s" in out
    assert out.rstrip().endswith(f"7 of 8 checks failed: {', '.join(OFFLINE_CHECKS[1:])}")


async def test_a_cli_that_stops_reading_fails_what_needs_typing(
    fake_cli: Path, tmp_path: Path
) -> None:
    deaf = _script(tmp_path, "claude", f'FAKE_CLAUDE_FAULT=stop-reading exec "{fake_cli}" "$@"\n')
    with trio.fail_after(90):
        results = await doctor(str(deaf), bound=2, out=lambda line: None)
    status = {result.name: result.status for result in results}
    assert status == {
        "cli": "pass",
        "version": "pass",
        "dialogs": "pass",  # the fake stops reading only once it shows its prompt
        "readiness": "pass",
        "turn": "FAIL",
        "turn end": "FAIL",
        "interrupt": "FAIL",
        "resume": "FAIL",
    }
    assert all(result.fix for result in results if not result.ok)


async def test_a_missing_cli_fails_with_the_install_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = await run_doctor(_parse("--cli-path", str(tmp_path / "nowhere")))
    assert status == 1
    out = capsys.readouterr().out
    assert "cli (FAIL):" in out
    assert "    fix: Install the Claude Code CLI" in out
    assert "         npm install --prefix .claude-cli" in out  # a fix's next lines
    rows = out.splitlines()[2 : len(OFFLINE_CHECKS) + 1]
    assert [" skip " in row for row in rows] == [True] * (len(OFFLINE_CHECKS) - 1)
    assert "version (skip)" not in out  # a check not run has no section of its own
    assert out.rstrip().endswith("1 of 8 checks failed: cli; 7 not run")


async def test_without_the_testing_kit_the_offline_checks_name_the_extra(
    fake_cli: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "claude_trio.testing", None)  # import fails
    results = await doctor(str(fake_cli), out=lambda line: None)
    assert [r.status for r in results] == ["pass", "pass", "FAIL"] + ["skip"] * 5
    assert results[2].fix is not None
    assert "claude-trio[testing]" in results[2].fix
    assert exit_status(results) == 1


async def test_live_announces_the_account_and_sends_one_short_turn(
    fake_cli: Path,
    isolated: IsolatedConfig,
    mock_api: MockAnthropicAPI,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The "user's own" config is a temporary one: the test never touches ~/.claude.
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(isolated.config_dir))
    monkeypatch.setenv("HOME", str(isolated.config_dir))
    monkeypatch.setenv("ANTHROPIC_BASE_URL", mock_api.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", MOCK_API_KEY)
    with trio.fail_after(60):
        status = await run_doctor(_parse("--live", "--cli-path", str(fake_cli)))
    out = capsys.readouterr().out
    assert status == 0, out
    announcement = "\n".join(live_announcement())
    assert out.startswith(announcement)
    assert str(isolated.config_dir) in announcement
    assert "uses your account" in announcement
    assert LIVE_PROMPT in announcement
    header = out.index("check ")
    rows = out[header:].splitlines()[1 : 1 + len(LIVE_CHECKS) + 1]
    names = [row.split()[0] for row in rows if not row.startswith(" ")]
    assert names == ["cli", "version", "readiness", "live"]
    assert out.index("with your account") < out.index("live turn ")
    (request,) = mock_api.main_requests
    assert request.prompt == LIVE_PROMPT
    # The session file the live turn wrote is removed again, and the scratch's folder.
    assert list(isolated.config_dir.glob("projects/*")) == []


# --- the real CLI ------------------------------------------------------------------------


@pytest.mark.real_cli
async def test_every_check_passes_on_the_real_cli(claude_cli: Path) -> None:
    with trio.fail_after(300):
        done = await trio.run_process(
            [sys.executable, "-m", "claude_trio", "doctor", "--cli-path", str(claude_cli)],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()
    for name in OFFLINE_CHECKS:
        assert any(line.startswith(f"{name} ") and " pass " in line for line in out.splitlines())
    assert out.rstrip().endswith(f"all {len(OFFLINE_CHECKS)} checks passed")


async def test_the_doctor_command_fails_with_the_fix_for_a_missing_cli(tmp_path: Path) -> None:
    with trio.fail_after(60):
        done = await trio.run_process(
            [sys.executable, "-m", "claude_trio", "doctor", "--cli-path", str(tmp_path / "no")],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    out = done.stdout.decode()
    assert done.returncode == 1, out
    assert "Traceback" not in done.stderr.decode()
    assert "cli " in out
    assert "FAIL" in out
    assert "fix:" in out
