"""How ``claude-trio doctor`` judges its checks and shows them. Sans-I/O.

The ``judge_*`` functions turn what a check saw into a `Verdict`; `render_table` and
`exit_status` turn the `CheckResult` rows into the report and the exit status. Nothing
here runs a process: `claude_trio._doctor` does that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from ._errors import (
    APIConnectionError,
    AuthError,
    BackendError,
    BackendTimeoutError,
    CLINotFoundError,
    ProcessError,
    RateLimitError,
    SessionError,
)
from ._events import Event, ResultMessage, assistant_texts
from ._locate import CLI_ENV_VAR, PINNED_CLI_VERSION

#: The fix for a CLI that fails what the library relies on.
PIN_FIX: Final = (
    f"pin the CLI to {PINNED_CLI_VERSION} (npm install --prefix .claude-cli "
    f"@anthropic-ai/claude-code@{PINNED_CLI_VERSION}, then {CLI_ENV_VAR}="
    ".claude-cli/node_modules/.bin/claude), or report this output to the claude_trio "
    "maintainers if the pinned release fails it too"
)

#: How the detail of a check that was not run starts.
NOT_RUN_PREFIX: Final = "not run:"
_DETAIL_WIDTH: Final = 72


@attrs.frozen
class CheckResult:
    """The outcome of one doctor check.

    Attributes:
        name: The check (``version``, ``turn end``…).
        ok: Whether it passed. A pass that comes with a *fix* is a warning.
        detail: What was seen, in a line or a few.
        fix: What to do about a failure or a warning; None when there is nothing to do.
        seconds: How long the check took.
    """

    name: str
    ok: bool
    detail: str
    fix: str | None = None
    seconds: float = 0.0

    @property
    def status(self) -> str:
        """``pass``, ``warn`` (a pass with a fix), ``skip`` (not run, which counts as a
        failure: its detail starts with ``not run:``) or ``FAIL``."""
        if not self.ok:
            return "skip" if self.detail.startswith(NOT_RUN_PREFIX) else "FAIL"
        return "warn" if self.fix else "pass"


@attrs.frozen
class Verdict:
    """What a ``judge_*`` function made of a check: a `CheckResult` less name and time."""

    ok: bool
    detail: str
    fix: str | None = None


def judge_version(output: str, returncode: int) -> Verdict:
    """Judge the output of ``claude --version``: another release than the pin is a warning."""
    if returncode != 0:
        return Verdict(
            False,
            f"claude --version exited with status {returncode}: {output.strip()[:200]}",
            fix="run the CLI by hand to see why it does not start, or reinstall it",
        )
    version = output.strip().split(" ", 1)[0]
    if not version:
        return Verdict(False, "claude --version printed nothing", fix=PIN_FIX)
    if version != PINNED_CLI_VERSION:
        return Verdict(
            True, f"{version}, not the release measured ({PINNED_CLI_VERSION})", fix=PIN_FIX
        )
    return Verdict(True, f"{version} (the release claude_trio was measured on)")


def reply_text(events: Iterable[Event]) -> str:
    """The text blocks of the assistant messages among *events*, joined by spaces."""
    return " ".join(assistant_texts(events))


def judge_turn(events: Sequence[Event], expected: str, *, first_after: float | None) -> Verdict:
    """Judge a turn's events up to the reply: the mock's *expected* text must be among them."""
    text = reply_text(events)
    if expected not in text:
        return Verdict(
            False,
            f"the reply events held {text[:80]!r}, not {expected!r}",
            fix="the CLI's session records were not read as events: " + PIN_FIX,
        )
    when = "" if first_after is None else f", the first after {first_after:.2f} s"
    return Verdict(True, f"{expected!r} in {len(events)} event(s){when}")


def judge_turn_end(events: Sequence[Event], *, ended: bool, bound: float) -> Verdict:
    """Judge how a turn ended: by the CLI's ``turn_duration`` record, within *bound*."""
    if not ended or not events or not isinstance(events[-1], ResultMessage):
        return Verdict(
            False,
            f"the turn did not end within {bound:g} s of the prompt: the CLI's turn-end "
            "record was not recognised, so turns would end only by turn_timeout",
            fix=PIN_FIX,
        )
    result = events[-1]
    if result.is_error:
        return Verdict(
            False,
            f"the turn ended with an API error (stop_reason={result.stop_reason})",
            fix="the CLI did not reach the bundled mock API: " + PIN_FIX,
        )
    if result.duration_ms is None:
        return Verdict(
            False,
            "the turn ended without the CLI's turn_duration record",
            fix=PIN_FIX,
        )
    return Verdict(True, f"turn_duration record read (the CLI timed it {result.duration_ms} ms)")


def judge_interrupt(interrupted: Sequence[Event], after: Sequence[Event], expected: str) -> Verdict:
    """Judge an interrupted turn's events and those of the turn typed after it."""
    last = interrupted[-1] if interrupted else None
    if not isinstance(last, ResultMessage) or not last.interrupted:
        return Verdict(
            False,
            f"the interrupted turn did not end as interrupted (last event: {last!r:.120})",
            fix=PIN_FIX,
        )
    if expected not in reply_text(after):
        return Verdict(
            False,
            f"the turn after the interrupt answered {reply_text(after)[:80]!r}, not {expected!r}",
            fix=PIN_FIX,
        )
    return Verdict(True, "ended as interrupted; the next turn answered")


def message_texts(messages: Iterable[Mapping[str, Any]], role: str) -> list[str]:
    """The text blocks of *role*'s messages in an API request, system reminders left out."""
    texts = []
    for message in messages:
        if message.get("role") != role:
            continue
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for block in blocks if isinstance(blocks, list) else []:
            text = block.get("text") if isinstance(block, dict) else None
            if isinstance(text, str) and not text.startswith("<system-reminder>"):
                texts.append(text)
    return texts


def judge_resume(
    events: Sequence[Event],
    request_messages: Sequence[Mapping[str, Any]],
    history: Sequence[Mapping[str, str]],
    *,
    reseeded: int,
) -> Verdict:
    """Judge a re-seed: the mock's request must carry every earlier turn of *history*."""
    if reseeded != 1:
        return Verdict(False, f"the backend re-seeded {reseeded} process(es), not 1", fix=PIN_FIX)
    sent = {role: message_texts(request_messages, role) for role in ("user", "assistant")}
    missing = [
        message["content"]
        for message in history
        if not any(message["content"] in text for text in sent[message["role"]])
    ]
    if missing:
        return Verdict(
            False,
            f"the API request lacked {missing!r}: the re-seeded session file was not "
            "replayed (the CLI's transcript format may have changed)",
            fix=PIN_FIX,
        )
    expected = f"echo: {history[-1]['content']}"
    if expected not in reply_text(events):
        return Verdict(False, f"the reply was {reply_text(events)[:80]!r}", fix=PIN_FIX)
    return Verdict(True, f"the request carried all {len(history)} messages")


def verdict_for_error(error: BackendError | OSError) -> Verdict:
    """Turn an error a check raised into a failed `Verdict` with the fix that fits it."""
    detail = str(error)
    fix: str | None
    if isinstance(error, SessionError) and error.fix:
        fix = error.fix
    elif isinstance(error, CLINotFoundError):
        detail, _, fix = detail.partition("\n")
    elif isinstance(error, AuthError):
        fix = "log in: run `claude` by hand and use /login (or set a valid ANTHROPIC_API_KEY)"
    elif isinstance(error, RateLimitError):
        fix = "wait until your usage limit resets, then run the doctor again"
    elif isinstance(error, APIConnectionError):
        fix = "check the network and any proxy settings (HTTPS_PROXY) the CLI needs"
    elif isinstance(error, BackendTimeoutError | ProcessError):
        fix = PIN_FIX
    else:
        fix = "see the detail above"
    return Verdict(False, f"{type(error).__name__}: {detail}", fix=fix)


def exit_status(results: Iterable[CheckResult]) -> int:
    """0 when every check passed (warnings included), else 1."""
    return 0 if all(result.ok for result in results) else 1


def table_header(width: int) -> str:
    """The table's title row, for check names up to *width* characters."""
    return f"{'check':<{width}}  result  {'time':>8}  detail"


def table_row(result: CheckResult, width: int) -> str:
    """One row of the table: the check, its result, its time and its detail's first line."""
    detail = result.detail.strip().splitlines()[0] if result.detail.strip() else ""
    if len(detail) > _DETAIL_WIDTH:
        detail = detail[: _DETAIL_WIDTH - 1] + "…"
    return f"{result.name:<{width}}  {result.status:<6}  {result.seconds:6.2f} s  {detail}"


def fix_lines(results: Iterable[CheckResult]) -> list[str]:
    """The section after the table: each failure's whole detail and each fix."""
    lines = []
    for result in results:
        if result.status == "skip" or (result.ok and not result.fix):
            continue
        lines.append(f"{result.name} ({result.status}):")
        if not result.ok:
            lines += [f"    {line}" for line in result.detail.strip().splitlines()[:12]]
        if result.fix:
            first, *rest = result.fix.strip().splitlines()
            lines += [f"    fix: {first}", *(f"         {line}" for line in rest)]
    return lines


def summary_line(results: Sequence[CheckResult]) -> str:
    """The last line: how many checks passed."""
    failed = [result.name for result in results if result.status == "FAIL"]
    skipped = sum(result.status == "skip" for result in results)
    if failed or skipped:
        not_run = f"; {skipped} not run" if skipped else ""
        return f"{len(failed)} of {len(results)} checks failed: {', '.join(failed)}{not_run}"
    warned = sum(result.fix is not None for result in results)
    tail = f" ({warned} with a warning)" if warned else ""
    return f"all {len(results)} checks passed{tail}"


def render_table(results: Sequence[CheckResult]) -> str:
    """The whole report: the table, the failures and fixes, and a summary line."""
    width = max([len("check"), *(len(result.name) for result in results)])
    lines = [table_header(width), *(table_row(result, width) for result in results)]
    fixes = fix_lines(results)
    if fixes:
        lines += ["", *fixes]
    return "\n".join([*lines, "", summary_line(results)])
