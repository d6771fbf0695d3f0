"""The error hierarchy: typed attributes, useful str(), picklable."""

from __future__ import annotations

import datetime as dt
import pickle

import pytest

from claude_trio import (
    APIConnectionError,
    APIError,
    AuthError,
    BackendError,
    CLINotFoundError,
    MessageParseError,
    OverloadedError,
    ProcessError,
    RateLimitError,
    SessionError,
)

_EXAMPLES: list[BackendError] = [
    BackendError("plain"),
    CLINotFoundError("no cli", searched=("PATH=/bin",)),
    ProcessError("claude died", exit_status=1, signal=None, screen_tail="Error: boom"),
    SessionError("dialog", screen="Quick safety check", fix="trust it"),
    APIError("API Error: 500 boom", status=500),
    AuthError("Invalid API key", status=401),
    RateLimitError(
        "slow down", retry_after=30.0, reset_at=dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
    ),
    OverloadedError("API Error: 529 Overloaded", status=529),
    APIConnectionError("Connection refused"),
    MessageParseError("bad line", path="/x.jsonl", line_number=3, line="{", detail="not JSON"),
]


@pytest.mark.parametrize("error", _EXAMPLES, ids=lambda e: type(e).__name__)
def test_pickle_round_trip_keeps_type_message_and_attributes(error: BackendError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
    assert isinstance(copy, BackendError)


def test_api_errors_share_a_root_callers_can_branch_on() -> None:
    for cls in (AuthError, RateLimitError, OverloadedError, APIConnectionError):
        assert issubclass(cls, APIError)
    assert issubclass(MessageParseError, ValueError)
    assert issubclass(CLINotFoundError, FileNotFoundError)


def test_process_error_str_has_status_and_screen_tail() -> None:
    text = str(ProcessError("claude exited", exit_status=2, screen_tail="last line"))
    assert "exit status 2" in text
    assert text.endswith("last line")
    assert "signal 9" in str(ProcessError("claude exited", signal=9))


def test_message_parse_error_cuts_long_lines_and_says_where() -> None:
    error = MessageParseError("bad", path="/s.jsonl", line_number=7, line="x" * 10_000)
    assert len(error.line) < 300
    assert "10000" not in error.line
    assert "9800 more chars" in error.line
    assert "/s.jsonl:7" in str(error)


def test_rate_limit_defaults_to_429_and_unknown_reset() -> None:
    error = RateLimitError("limited")
    assert (error.status, error.retry_after, error.reset_at) == (429, None, None)
