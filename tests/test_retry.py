"""_retry: the CLI's retry line, its durations and its usage-limit messages."""

from __future__ import annotations

import datetime as dt
import json
import math
import pickle
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from claude_trio._errors import RateLimitError
from claude_trio._retry import (
    RetryNotice,
    find_retry_notice,
    parse_duration,
    parse_usage_limit,
    rate_limit_error,
    usage_limit_reset,
)

SAMPLES = Path(__file__).parent / "samples"
UTC = dt.UTC
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
NOW = dt.datetime(2026, 11, 30, 0, 30, 27, tzinfo=UTC)


def _screen(name: str) -> str:
    return (SAMPLES / name).read_text()


def _chrome(screen: str) -> str:
    """The rows between the transcript and the input box, as the caller would pick them."""
    lines = screen.splitlines()
    box = max(i for i, line in enumerate(lines[1:], 1) if line.startswith("❯"))
    return "\n".join(lines[box - 5 : box - 1])


def _records() -> list[dict[str, Any]]:
    lines = (SAMPLES / "usage_limit_records.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _text(record: dict[str, Any]) -> str:
    text = record["message"]["content"][0]["text"]
    assert isinstance(text, str)
    return text


def _stamp(record: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(record["timestamp"])


def _cli_duration(ms: int, *, most_significant_only: bool = False) -> str:
    """The CLI's own duration formatter, ported from the 2.1.328 binary."""
    if ms < 60000:
        return "0s" if ms == 0 else f"{ms // 1000}s"
    days, hours, minutes = ms // 86400000, ms % 86400000 // 3600000, ms % 3600000 // 60000
    seconds = math.floor(ms % 60000 / 1000 + 0.5)
    if seconds == 60:
        seconds, minutes = 0, minutes + 1
    if minutes == 60:
        minutes, hours = 0, hours + 1
    if hours == 24:
        hours, days = 0, days + 1
    if most_significant_only:
        for value, unit in ((days, "d"), (hours, "h"), (minutes, "m")):
            if value:
                return f"{value}{unit}"
        return f"{seconds}s"
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m {seconds}s"
    return f"{minutes}m {seconds}s"


# ---------------------------------------------------------------------------------------
# parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0s", 0.0),
        ("17s", 17.0),
        ("45s", 45.0),
        ("0.5s", 0.5),
        ("1m 0s", 60.0),
        ("1m 30s", 90.0),
        ("1m 10s", 70.0),
        ("7m", 420.0),
        ("1h", 3600.0),
        ("2h 5m", 7500.0),
        ("1h 0m 5s", 3605.0),
        ("1d", 86400.0),
        ("1d 2h 3m", 93780.0),
        (" 17s ", 17.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "17",
        "s",
        "17 s",
        "17sec",
        "17 seconds",
        "1m  30s",
        "30s 1m",
        "1m 1m",
        "1.5m",
        "-5s",
        "+5s",
        "5S",
        "1m30s",
        "1m, 30s",
        "5s 5ms",
        "½s",
        "٣s",
    ],
)
def test_parse_duration_rejects(text: str) -> None:
    assert parse_duration(text) is None


@given(st.integers(min_value=0, max_value=40 * 86400))
def test_parse_duration_reads_the_cli_formatter(seconds: int) -> None:
    assert parse_duration(_cli_duration(seconds * 1000)) == seconds - (
        seconds % 60 if seconds >= 86400 else 0
    )


@given(st.integers(min_value=300, max_value=40 * 86400))
def test_parse_duration_reads_the_largest_unit_only_form(seconds: int) -> None:
    shown = parse_duration(_cli_duration(seconds * 1000, most_significant_only=True))
    assert shown is not None
    unit = 86400 if seconds >= 86400 else 3600 if seconds >= 3600 else 60
    assert shown % unit == 0
    assert abs(shown - seconds) < unit


# ---------------------------------------------------------------------------------------
# find_retry_notice on captured screens


@pytest.mark.parametrize(
    ("sample", "notice"),
    [
        ("screen_retry_api_error.txt", RetryNotice("API error", None, 34.0, 1, 3)),
        (
            "screen_retry_429_minutes.txt",
            RetryNotice(
                "429 mock: Number of request tokens has exceeded your per-minute rate limit",
                429,
                70.0,
                2,
                2,
            ),
        ),
        ("screen_retry_529_hint.txt", RetryNotice("529 Overloaded", 529, 3.0, 3, 4)),
        (
            "screen_retry_usage_limit.txt",
            RetryNotice("5-hour limit reached", None, 7.0, 1, 2, resets="3:54am"),
        ),
    ],
)
def test_samples(sample: str, notice: RetryNotice) -> None:
    screen = _screen(sample)
    assert find_retry_notice(_chrome(screen)) == notice
    assert find_retry_notice(screen) == notice


@pytest.mark.parametrize("sample", ["usage_limit_gateway_screen.txt"])
def test_screens_without_a_retry(sample: str) -> None:
    assert find_retry_notice(_screen(sample)) is None


def test_the_529_hint_line_is_not_a_notice() -> None:
    hint = [line for line in _screen("screen_retry_529_hint.txt").splitlines() if "⎿" in line]
    assert hint == ["  ⎿ \u00a0If it persists, check your inference gateway (127.0.0.1:45631)."]
    assert find_retry_notice(hint[0]) is None


# ---------------------------------------------------------------------------------------
# find_retry_notice on every form the binary can draw


@pytest.mark.parametrize(
    ("line", "notice"),
    [
        (
            "✻ 401 invalid x-api-key · retrying in 17s · attempt 6/10",
            RetryNotice("401 invalid x-api-key", 401, 17.0, 6, 10),
        ),
        (
            "✻ 401 invalid x-api-key · retrying… · attempt 3/4",
            RetryNotice("401 invalid x-api-key", 401, 0.0, 3, 4),
        ),
        (
            "✻ 500 Internal server error · retrying in 3s · attempt 3/4",
            RetryNotice("500 Internal server error", 500, 3.0, 3, 4),
        ),
        (
            "✻ 500 mock: this is a deliberately long error message that should not fit on one"
            " line … · retrying in 1s · attempt 1/1",
            RetryNotice(
                "500 mock: this is a deliberately long error message that should not fit on one"
                " line …",
                500,
                1.0,
                1,
                1,
            ),
        ),
        (
            "✻ API error · retrying in 7m · attempt 1/300",
            RetryNotice("API error", None, 420.0, 1, 300),
        ),
        (
            "✻ API error · retrying in 2h · attempt 1/300",
            RetryNotice("API error", None, 7200.0, 1, 300),
        ),
        (
            "✻ API error · retrying in 1m 0s · attempt 1/2",
            RetryNotice("API error", None, 60.0, 1, 2),
        ),
        (
            "✻ Weekly limit reached · retrying in 30s (Dec 3, 2:30am) · attempt 2/10",
            RetryNotice("Weekly limit reached", None, 30.0, 2, 10, resets="Dec 3, 2:30am"),
        ),
        (
            "✻ Usage limit reached · retrying… (3pm) · attempt 1/2",
            None,
        ),
        (
            "✻ Connection refused — a firewall or proxy may be blocking it (ECONNREFUSED)"
            " · retrying in 2s · attempt 3/10",
            RetryNotice(
                "Connection refused — a firewall or proxy may be blocking it (ECONNREFUSED)",
                None,
                2.0,
                3,
                10,
            ),
        ),
        (
            "✻ 429 spend limit reached · resets Dec 3 · retrying in 5s · attempt 3/3",
            RetryNotice("429 spend limit reached · resets Dec 3", 429, 5.0, 3, 3),
        ),
        ("API error · retrying in 5s · attempt 1/3", RetryNotice("API error", None, 5.0, 1, 3)),
        (
            "✶ API error · retrying in 5s · attempt 1/3   ",
            RetryNotice("API error", None, 5.0, 1, 3),
        ),
        ("✻ API error · retrying... · attempt 2/2", RetryNotice("API error", None, 0.0, 2, 2)),
        ("✻ 999 odd · retrying in 5s · attempt 1/3", RetryNotice("999 odd", None, 5.0, 1, 3)),
        ("✻ 4290 x · retrying in 5s · attempt 1/3", RetryNotice("4290 x", None, 5.0, 1, 3)),
    ],
)
def test_line_forms(line: str, notice: RetryNotice | None) -> None:
    assert find_retry_notice(line) == notice


@pytest.mark.parametrize(
    "line",
    [
        "● I am retrying in 5s · attempt 1/3",
        "● Note · retrying in 5s · attempt 1/3",
        "⏺ API error · retrying in 5s · attempt 1/3",
        "  ✻ API error · retrying in 5s · attempt 1/3",
        "  API error · retrying in 5s · attempt 1/3",
        "  ⎿  API error · retrying in 5s · attempt 1/3",
        "❯ API error · retrying in 5s · attempt 1/3",
        "│ API error · retrying in 5s · attempt 1/3 │",
        "The CLI printed ✻ API error · retrying in 5s · attempt 1/3 earlier",
        'He said "✻ API error · retrying in 5s · attempt 1/3"',
        "✻ API error · retrying in 5s · attempt 1/3 and then it worked",
        "✻ API error · retrying in 5s · attempt 1/3.",
        "✻ API error · retrying in 5 seconds · attempt 1/3",
        "✻ API error · retrying in 5s · attempt 1 of 3",
        "✻ API error · retrying in 5s · attempt /3",
        "✻ API error · retrying in 5s",
        "✻ API error - retrying in 5s - attempt 1/3",
        "✻ API error · retrying in soon · attempt 1/3",
        "✻ API error · retrying in 30s 1m · attempt 1/3",
        "✻ API error · Retrying in 5s · attempt 1/3",
        "✻  · retrying in 5s · attempt 1/3",
        "✻ · retrying in 5s · attempt 1/3",
        "✻ Transfiguring… (2s · ↓ 3 tokens)",
        "✶ Waiting for API response · will retry in 3s · check your network",
        "✻ Working at lower priority · waiting for capacity · next try in 30s · attempt 2 · esc",
        "",
    ],
)
def test_lines_that_are_not_notices(line: str) -> None:
    assert find_retry_notice(line) is None


_STATUS = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
    min_size=1,
    max_size=60,
).filter(lambda s: s == s.strip() and s[0] not in "✻✶✳✢✽·*●⏺⎿❯│─")


@given(
    _STATUS,
    st.integers(min_value=0, max_value=10 * 86400),
    st.integers(min_value=1, max_value=300),
    st.integers(min_value=1, max_value=300),
)
def test_drawn_lines_read_back(status: str, seconds: int, attempt: int, of: int) -> None:
    wait = _cli_duration(seconds * 1000, most_significant_only=seconds >= 300)
    part = "retrying…" if seconds == 0 else f"retrying in {wait}"
    notice = find_retry_notice(f"✻ {status} · {part} · attempt {attempt}/{of}")
    assert notice is not None
    assert (notice.status, notice.attempt, notice.max_attempts) == (status, attempt, of)
    assert notice.retry_in == parse_duration(wait)


def test_the_lowest_notice_wins() -> None:
    lines = "✻ API error · retrying in 5s · attempt 1/3\n✻ API error · retrying in 9s · attempt 2/3"
    assert find_retry_notice(lines) == RetryNotice("API error", None, 9.0, 2, 3)


def test_a_notice_among_prose_lines() -> None:
    lines = "\n".join(
        [
            "● Sure: when the API fails I am retrying in 5s · attempt 1/3 style.",
            "  API error · retrying in 5s · attempt 1/3",
            "",
            "✻ 529 Overloaded · retrying in 17s · attempt 6/10",
            "  ⎿  If it persists, check your inference gateway (127.0.0.1:1).",
        ]
    )
    assert find_retry_notice(lines) == RetryNotice("529 Overloaded", 529, 17.0, 6, 10)


_NEAR_MISSES = st.text(alphabet=st.sampled_from(list("✻✶ ·retyingamp0123456789shd/()…●⎿\n")))


@given(st.text(max_size=200) | _NEAR_MISSES)
def test_any_text_is_safe(text: str) -> None:
    notice = find_retry_notice(text)
    if notice is not None:
        assert notice.retry_in >= 0
        assert " · attempt " in text


# ---------------------------------------------------------------------------------------
# usage limits


@pytest.mark.parametrize("record", _records()[:7], ids=lambda r: _text(r)[:40])
def test_usage_limit_records(record: dict[str, Any]) -> None:
    exact = usage_limit_reset(record)
    shown = parse_usage_limit(_text(record), now=_stamp(record))
    if record["apiErrorParams"]["rate_limit_info"].get("resetsAt") is None:
        assert exact is None
        assert shown is None
        return
    assert exact is not None
    assert exact == dt.datetime.fromtimestamp(record["quotaLimits"]["resetsAt"], UTC)
    assert shown is not None
    assert shown.tzinfo is not None
    assert shown == exact.replace(second=0)


@pytest.mark.parametrize("record", _records()[7:], ids=lambda r: _text(r)[:40])
def test_records_that_are_not_usage_limits(record: dict[str, Any]) -> None:
    assert usage_limit_reset(record) is None
    assert parse_usage_limit(_text(record), now=_stamp(record)) is None


def test_the_gateway_screen_names_paris() -> None:
    line = next(
        line for line in _screen("usage_limit_gateway_screen.txt").splitlines() if "resets" in line
    )
    assert line == "  ⎿ \u00a0You've hit your 5-hour limit · resets 4:55am (Europe/Paris)"
    reset = parse_usage_limit(line, now=NOW)
    assert reset == dt.datetime(2026, 11, 30, 4, 55, tzinfo=PARIS)
    assert reset is not None
    assert reset.utcoffset() == dt.timedelta(hours=1)


@pytest.mark.parametrize(
    ("text", "reset"),
    [
        ("You've hit your 5-hour limit · resets 3am (UTC)", dt.datetime(2026, 11, 30, 3, 0)),
        ("You've hit your 5-hour limit · resets 12:31am (UTC)", dt.datetime(2026, 11, 30, 0, 31)),
        ("You've hit your 5-hour limit · resets 12pm (UTC)", dt.datetime(2026, 11, 30, 12, 0)),
        ("You've hit your 5-hour limit · resets 11:59pm", dt.datetime(2026, 11, 30, 23, 59)),
        ("You've hit your 5-hour limit · resets 12:30am (UTC)", dt.datetime(2026, 11, 30, 0, 30)),
        ("You've hit your 5-hour limit · resets 12:29am (UTC)", dt.datetime(2026, 12, 1, 0, 29)),
        (
            "You've hit your weekly limit · resets Dec 3, 2:30am (UTC)",
            dt.datetime(2026, 12, 3, 2, 30),
        ),
        (
            "You've hit your weekly limit · resets Dec 3 at 2:30 AM (UTC)",
            dt.datetime(2026, 12, 3, 2, 30),
        ),
        (
            "You've hit your weekly limit · resets Dec 3, 2:30\u202fam",
            dt.datetime(2026, 12, 3, 2, 30),
        ),
        (
            "You've hit your weekly limit · resets Jan 9, 2027, 12:31am (UTC)",
            dt.datetime(2027, 1, 9, 0, 31),
        ),
        (
            "You've hit your limit · resets 2:31am (UTC) · progress saved",
            dt.datetime(2026, 11, 30, 2, 31),
        ),
        ("You're out of usage credits · resets 5pm (UTC)", dt.datetime(2026, 11, 30, 17, 0)),
        (
            "You've hit your team's pooled group budget. It resets 5pm.",
            dt.datetime(2026, 11, 30, 17, 0),
        ),
        (
            "API Error: Request rejected (429) · spend limit reached · resets Dec 3, 5pm (UTC)",
            dt.datetime(2026, 12, 3, 17, 0),
        ),
        (
            "You've hit your 5-hour limit · resets 3am (Nowhere/Land)",
            dt.datetime(2026, 11, 30, 3, 0),
        ),
    ],
)
def test_parse_usage_limit(text: str, reset: dt.datetime) -> None:
    assert parse_usage_limit(text, now=NOW) == reset.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "You've hit your 5-hour limit",
        "API Error: Request rejected (429) · mock: Number of request tokens has exceeded",
        "You've hit your 5-hour limit · resets soon",
        "You've hit your 5-hour limit · resets 13pm (UTC)",
        "You've hit your 5-hour limit · resets 0am (UTC)",
        "You've hit your 5-hour limit · resets 3:60am (UTC)",
        "You've hit your 5-hour limit · resets 3 (UTC)",
        "You've hit your 5-hour limit · resets 3amish",
        "You've hit your weekly limit · resets Feb 30, 2:30am (UTC)",
        "the counter presets 3am",
        "",
    ],
)
def test_parse_usage_limit_rejects(text: str) -> None:
    assert parse_usage_limit(text, now=NOW) is None


def test_a_time_zone_is_kept_and_the_local_day_used() -> None:
    late = dt.datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    reset = parse_usage_limit("You've hit your 5-hour limit · resets 1am (Europe/Paris)", now=late)
    assert reset == dt.datetime(2026, 12, 1, 1, 0, tzinfo=PARIS)
    assert reset is not None
    assert reset.tzinfo == PARIS


def test_without_a_zone_the_clock_of_now_is_used() -> None:
    now = NOW.astimezone(PARIS)
    reset = parse_usage_limit("resets 4:55am", now=now)
    assert reset == dt.datetime(2026, 11, 30, 4, 55, tzinfo=PARIS)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_usage_limit("resets 3am", now=dt.datetime(2026, 11, 30))
    with pytest.raises(ValueError, match="timezone-aware"):
        rate_limit_error("x", notice=None, now=dt.datetime(2026, 11, 30))


@pytest.mark.parametrize(
    "record",
    [
        {},
        {"apiErrorParams": None},
        {"apiErrorParams": {"rate_limit_info": {"resetsAt": "1796010920"}}},
        {"apiErrorParams": {"rate_limit_info": {"resetsAt": True}}},
        {"apiErrorParams": {"rate_limit_info": {"resetsAt": 0}}},
        {"quotaLimits": {"resetsAt": float("nan")}},
        {"quotaLimits": []},
    ],
)
def test_usage_limit_reset_ignores_odd_records(record: dict[str, Any]) -> None:
    assert usage_limit_reset(record) is None


def test_usage_limit_reset_falls_back_to_quota_limits() -> None:
    record = {"quotaLimits": {"resetsAt": 1796010920}}
    assert usage_limit_reset(record) == dt.datetime(2026, 11, 30, 3, 55, 20, tzinfo=UTC)


# ---------------------------------------------------------------------------------------
# rate_limit_error


def test_rate_limit_error_from_a_plain_429() -> None:
    text = "API Error: Request rejected (429) · mock: Number of request tokens has exceeded"
    notice = find_retry_notice(_chrome(_screen("screen_retry_429_minutes.txt")))
    error = rate_limit_error(text, notice=notice, now=NOW)
    assert isinstance(error, RateLimitError)
    assert error.message == text
    assert error.status == 429
    assert error.retry_after == 70.0
    assert error.reset_at is None


def test_rate_limit_error_without_anything_known() -> None:
    error = rate_limit_error("API Error: Request rejected (429) · slow down", notice=None, now=NOW)
    assert error.retry_after is None
    assert error.reset_at is None


def test_rate_limit_error_prefers_the_record() -> None:
    record = _records()[0]
    now = _stamp(record)
    error = rate_limit_error(_text(record), notice=None, now=now, record=record)
    assert error.reset_at == dt.datetime(2026, 11, 30, 3, 55, 20, tzinfo=UTC)
    assert error.retry_after == pytest.approx((error.reset_at - now).total_seconds())
    from_text = rate_limit_error(_text(record), notice=None, now=now)
    assert from_text.reset_at == dt.datetime(2026, 11, 30, 4, 55, tzinfo=PARIS)


def test_rate_limit_error_takes_the_reset_from_the_notice() -> None:
    notice = find_retry_notice(_screen("screen_retry_usage_limit.txt"))
    text = _text(_records()[8])
    error = rate_limit_error(text, notice=notice, now=NOW)
    assert error.retry_after == 7.0
    assert error.reset_at == dt.datetime(2026, 11, 30, 3, 54, tzinfo=UTC)


def test_rate_limit_error_after_the_reset_waits_nothing() -> None:
    later = dt.datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    record = {"apiErrorParams": {"rate_limit_info": {"resetsAt": 1796010920}}}
    error = rate_limit_error("You've hit your 5-hour limit", notice=None, now=later, record=record)
    assert error.retry_after == 0.0


def test_rate_limit_error_survives_pickling() -> None:
    record = _records()[0]
    error = rate_limit_error(_text(record), notice=None, now=_stamp(record), record=record)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message, copy.retry_after, copy.reset_at) == (
        error.message,
        error.retry_after,
        error.reset_at,
    )
