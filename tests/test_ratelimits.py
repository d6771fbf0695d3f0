"""_ratelimits: the rate limits a response reports in its headers."""

from __future__ import annotations

import datetime as dt
import email.utils

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from claude_trio._ratelimits import RateLimitBucket, RateLimits, rate_limits_from_headers

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def _headers(*pairs: tuple[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs]


def _limits(status: int, *pairs: tuple[str, str]) -> RateLimits:
    limits = rate_limits_from_headers(status, _headers(*pairs), now=NOW)
    assert limits is not None
    return limits


API_HEADERS = (
    ("Anthropic-RateLimit-Requests-Limit", "4000"),
    ("anthropic-ratelimit-requests-remaining", "3999"),
    ("anthropic-ratelimit-requests-reset", "2026-11-30T12:00:01Z"),
    ("anthropic-ratelimit-tokens-limit", "2000000"),
    ("anthropic-ratelimit-tokens-remaining", "1990000"),
    ("anthropic-ratelimit-tokens-reset", "2026-11-30T12:00:00.5+00:00"),
    ("anthropic-ratelimit-input-tokens-limit", "2000000"),
    ("anthropic-ratelimit-input-tokens-remaining", "1991000"),
    ("anthropic-ratelimit-input-tokens-reset", "2026-11-30T13:00:00+01:00"),
    ("anthropic-ratelimit-output-tokens-limit", "400000"),
    ("anthropic-ratelimit-output-tokens-remaining", "399000"),
    ("anthropic-ratelimit-output-tokens-reset", "2026-11-30T12:00:02Z"),
    ("content-type", "text/event-stream"),
)


def test_standard_api_headers_on_a_200() -> None:
    limits = _limits(200, *API_HEADERS)
    assert limits.status == 200
    assert limits.observed_at == NOW
    assert (limits.retry_after, limits.reset_at) == (None, None)
    assert sorted(limits.buckets) == ["input-tokens", "output-tokens", "requests", "tokens"]
    assert limits.buckets["requests"] == RateLimitBucket(
        limit=4000, remaining=3999, reset_at=dt.datetime(2026, 11, 30, 12, 0, 1, tzinfo=UTC)
    )
    assert limits.buckets["tokens"].reset_at == NOW + dt.timedelta(seconds=0.5)
    assert limits.buckets["input-tokens"].reset_at == NOW
    assert limits.buckets["input-tokens"].reset_at.tzinfo is UTC
    assert limits.unified == {}
    assert (limits.unified_status, limits.unified_reset_at) == (None, None)
    with pytest.raises(TypeError):
        limits.buckets["x"] = RateLimitBucket()  # type: ignore[index]
    assert hash(limits) == hash(attrs.evolve(limits))
    assert limits == _limits(200, *API_HEADERS)


def test_the_binding_reset_is_the_earliest_exhausted_bucket() -> None:
    limits = _limits(
        200,
        ("anthropic-ratelimit-requests-remaining", "0"),
        ("anthropic-ratelimit-requests-reset", "2026-11-30T12:00:30Z"),
        ("anthropic-ratelimit-tokens-remaining", "0"),
        ("anthropic-ratelimit-tokens-reset", "2026-11-30T12:00:10Z"),
        ("anthropic-ratelimit-output-tokens-remaining", "5"),
        ("anthropic-ratelimit-output-tokens-reset", "2026-11-30T12:00:01Z"),
    )
    assert limits.reset_at == NOW + dt.timedelta(seconds=10)
    assert limits.retry_after is None
    assert limits.seconds_until_reset(NOW) == 10.0
    assert limits.seconds_until_reset(NOW + dt.timedelta(minutes=1)) == 0.0


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [
        ((("retry-after", "30"),), 30.0),
        ((("Retry-After", "1.25"),), 1.25),
        ((("retry-after", email.utils.format_datetime(NOW + dt.timedelta(seconds=90))),), 90.0),
        ((("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT"),), 0.0),
        ((("retry-after", "30"), ("retry-after-ms", "1500")), 1.5),
        ((("retry-after-ms", "soon"), ("retry-after", "7")), 7.0),
        ((("retry-after", "-3"),), None),
        ((("retry-after", "1e3"),), None),
    ],
    ids=["seconds", "fraction", "http-date", "past-date", "ms-wins", "bad-ms", "negative", "exp"],
)
def test_a_429_says_how_long_to_wait(
    headers: tuple[tuple[str, str], ...], retry_after: float | None
) -> None:
    limits = _limits(429, *headers)
    assert limits.status == 429
    assert limits.retry_after == retry_after
    assert limits.buckets == {}


def test_a_429_without_retry_after_waits_until_the_reset() -> None:
    limits = _limits(
        429,
        ("anthropic-ratelimit-tokens-limit", "100"),
        ("anthropic-ratelimit-tokens-remaining", "0"),
        ("anthropic-ratelimit-tokens-reset", "2026-11-30T12:00:42Z"),
    )
    assert limits.retry_after == 42.0
    assert limits.reset_at == NOW + dt.timedelta(seconds=42)
    late = rate_limits_from_headers(
        429,
        _headers(
            ("anthropic-ratelimit-tokens-remaining", "0"),
            ("anthropic-ratelimit-tokens-reset", "2026-11-30T11:00:00Z"),
        ),
        now=NOW,
    )
    assert late is not None
    assert late.retry_after == 0.0


def test_unified_subscription_headers() -> None:
    reset = int((NOW + dt.timedelta(hours=2)).timestamp())
    limits = _limits(
        429,
        ("anthropic-ratelimit-unified-status", "rejected"),
        ("anthropic-ratelimit-unified-reset", str(reset)),
        ("anthropic-ratelimit-unified-5h-status", "rejected"),
        ("anthropic-ratelimit-unified-5h-utilization", "1.02"),
        ("anthropic-ratelimit-unified-5h-reset", str(reset)),
        ("anthropic-ratelimit-unified-7d_oi-utilization", "0.4"),
        ("Anthropic-Ratelimit-Unified-Representative-Claim", "five_hour"),
        ("anthropic-ratelimit-unified-fallback", "available"),
        ("anthropic-ratelimit-unified-", "nameless"),
        ("anthropic-ratelimit-requests-remaining", "0"),
        ("anthropic-ratelimit-requests-reset", "2026-11-30T12:00:05Z"),
    )
    assert limits.unified == {
        "status": "rejected",
        "reset": str(reset),
        "5h-status": "rejected",
        "5h-utilization": "1.02",
        "5h-reset": str(reset),
        "7d_oi-utilization": "0.4",
        "representative-claim": "five_hour",
        "fallback": "available",
    }
    assert limits.unified_status == "rejected"
    assert limits.unified_reset_at == NOW + dt.timedelta(hours=2)
    assert limits.reset_at == NOW + dt.timedelta(hours=2)
    assert limits.retry_after == 7200.0
    assert list(limits.buckets) == ["requests"]


def test_unified_reset_as_rfc3339_and_a_status_that_does_not_bind() -> None:
    allowed = _limits(
        200,
        ("anthropic-ratelimit-unified-status", "allowed_warning"),
        ("anthropic-ratelimit-unified-reset", "2026-11-30T15:00:00Z"),
    )
    assert allowed.unified_reset_at == dt.datetime(2026, 11, 30, 15, tzinfo=UTC)
    assert (allowed.reset_at, allowed.retry_after) == (None, None)
    fractional = _limits(200, ("anthropic-ratelimit-unified-reset", "1800000000.5"))
    assert fractional.unified_reset_at == dt.datetime.fromtimestamp(1800000000.5, UTC)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("anthropic-ratelimit-requests-limit", "many"),
        ("anthropic-ratelimit-requests-limit", "-5"),
        ("anthropic-ratelimit-requests-remaining", "1.5"),
        ("anthropic-ratelimit-requests-remaining", "9" * 40),
        ("anthropic-ratelimit-requests-reset", "tomorrow"),
        ("anthropic-ratelimit-requests-reset", "2026-11-30T12:00:00"),
        ("anthropic-ratelimit-requests-reset", "0001-01-01T00:00:00+01:00"),
        ("anthropic-ratelimit-requests-reset", "2026-11-30T12:00:00Z" * 20),
    ],
)
def test_malformed_values_are_left_out_one_by_one(name: str, value: str) -> None:
    limits = _limits(
        200,
        ("anthropic-ratelimit-requests-limit", "50"),
        ("anthropic-ratelimit-requests-remaining", "0"),
        ("anthropic-ratelimit-requests-reset", "2026-11-30T12:00:09Z"),
        (name, value),  # a repeated header: the first counts
    )
    assert limits.buckets["requests"] == RateLimitBucket(
        limit=50, remaining=0, reset_at=NOW + dt.timedelta(seconds=9)
    )
    alone = _limits(200, (name, value))
    assert attrs.asdict(alone.buckets["requests"]) == {
        "limit": None,
        "remaining": None,
        "reset_at": None,
    }
    assert alone.reset_at is None


@pytest.mark.parametrize(
    "value", ["soon", "99999999999999", "1e400", "Mon, 99 Foo 2026 99:99:99 GMT", "", "x" * 999]
)
def test_malformed_unified_reset_and_retry_after_are_left_out(value: str) -> None:
    limits = _limits(
        429,
        ("anthropic-ratelimit-unified-status", "rejected"),
        ("anthropic-ratelimit-unified-reset", value),
        ("retry-after", value),
        ("retry-after-ms", value),
    )
    assert limits.unified_reset_at is None
    assert (limits.reset_at, limits.retry_after) == (None, None)
    assert limits.unified["reset"] == value


def test_no_rate_limit_headers_gives_none() -> None:
    assert rate_limits_from_headers(200, [], now=NOW) is None
    plain = _headers(("content-type", "application/json"), ("x-ratelimit-remaining", "3"))
    assert rate_limits_from_headers(429, plain, now=NOW) is None
    with pytest.raises(ValueError, match="timezone-aware"):
        rate_limits_from_headers(200, plain, now=dt.datetime(2026, 1, 1))


def test_observed_at_is_utc() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    limits = rate_limits_from_headers(
        200, _headers(("retry-after", "1")), now=NOW.astimezone(paris)
    )
    assert limits is not None
    assert limits.observed_at == NOW
    assert limits.observed_at.tzinfo is UTC


_NAMES = st.sampled_from(
    [
        b"retry-after",
        b"Retry-After-Ms",
        b"anthropic-ratelimit-",
        b"anthropic-ratelimit-unified-",
        b"anthropic-ratelimit-unified-reset",
        b"anthropic-ratelimit-tokens-",
        b"anthropic-ratelimit--reset",
        b"ANTHROPIC-RATELIMIT-REQUESTS-RESET",
    ]
).flatmap(lambda prefix: st.binary(max_size=12).map(lambda tail: prefix + tail)) | st.binary(
    max_size=40
)
_VALUES = st.binary(max_size=40) | st.sampled_from(
    [b"0", b"12", b"1.5", b"2026-11-30T12:00:00Z", b"Sun, 06 Nov 1994 08:49:37 GMT", b"9" * 30]
)


@given(
    status=st.integers(min_value=100, max_value=599),
    headers=st.lists(st.tuples(_NAMES, _VALUES), max_size=12),
    now=st.datetimes(timezones=st.just(UTC)),
)
def test_never_raises_on_arbitrary_header_bytes(
    status: int, headers: list[tuple[bytes, bytes]], now: dt.datetime
) -> None:
    limits = rate_limits_from_headers(status, headers, now=now)
    if limits is not None:
        assert limits.observed_at == now
        assert limits.retry_after is None or limits.retry_after >= 0
        for bucket in limits.buckets.values():
            assert bucket.reset_at is None or bucket.reset_at.tzinfo is UTC
        limits.seconds_until_reset(now)
        hash(limits)
