"""Read the rate limits an Anthropic API response reports in its headers.

Pure, no I/O. The API reports each rate-limit bucket of an API key in three headers,
``anthropic-ratelimit-<bucket>-limit``, ``-remaining`` and ``-reset`` (RFC 3339), for
the buckets ``requests``, ``tokens``, ``input-tokens``, ``output-tokens`` and others that
may come. A subscription (the CLI logged in to claude.ai) gets the "unified" headers
instead; the CLI 2.1.328 binary reads these (``<w>`` is one of the windows ``5h``,
``7d``, ``7d_oi`` and ``overage``):

* ``anthropic-ratelimit-unified-status`` (``allowed``, ``allowed_warning``, ``rejected``),
  ``-reset`` (Unix epoch seconds), ``-fallback``, ``-representative-claim``,
  ``-upgrade-paths``;
* ``anthropic-ratelimit-unified-<w>-status``, ``-<w>-reset``, ``-<w>-utilization``,
  ``-<w>-surpassed-threshold``;
* ``anthropic-ratelimit-unified-overage-status``, ``-overage-reset``,
  ``-overage-utilization``, ``-overage-surpassed-threshold``, ``-overage-in-use``,
  ``-overage-disabled-reason``, ``-overage-scope``, ``-overage-period``,
  ``-overage-period-channel-utilization``, ``-overage-period-monthly-utilization``,
  ``-overage-daily-cap-paused``;
* ``anthropic-ratelimit-unified-grace-status``, ``-grace-5h-utilization``,
  ``-grace-7d-utilization``;
* ``anthropic-ratelimit-unified-slow-status``, ``-slow-offer``, ``-slow-retry-after``,
  ``-slow-max-wait``, ``-slow-budget-reset``, ``-slow-budget-utilization``.

`RateLimits.unified` keeps every one of them as sent, so new ones need no change here.
A throttled response also says how long to wait: ``retry-after`` (seconds or an
HTTP-date) or ``retry-after-ms``.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import re
from types import MappingProxyType
from typing import TYPE_CHECKING, Final, final

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

_PREFIX: Final = "anthropic-ratelimit-"
_UNIFIED: Final = "unified-"
_BUCKET_RE: Final = re.compile(r"(?P<bucket>[a-z0-9_-]+?)-(?P<field>limit|remaining|reset)")
_INTEGER_RE: Final = re.compile(r"\d{1,18}", re.ASCII)
_SECONDS_RE: Final = re.compile(r"\d{1,12}(?:\.\d{1,9})?", re.ASCII)
_MAX_TEXT: Final = 256


def _read_only_buckets(value: Mapping[str, RateLimitBucket]) -> Mapping[str, RateLimitBucket]:
    return MappingProxyType(dict(value))


def _read_only_strings(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


@final
@attrs.frozen(kw_only=True)
class RateLimitBucket:
    """One rate-limit bucket of an API key, from ``anthropic-ratelimit-<bucket>-*``.

    Attributes:
        limit: The most the bucket allows per period, or None if not sent (or unreadable).
        remaining: What is left of it now, or None.
        reset_at: When the bucket is full again (aware, UTC), or None.
    """

    limit: int | None = None
    remaining: int | None = None
    reset_at: _dt.datetime | None = None


@final
@attrs.frozen(kw_only=True)
class RateLimits:
    """The rate limits one API response reported.

    Attributes:
        status: The HTTP status of the response.
        observed_at: When the response was read (aware, UTC).
        retry_after: Seconds the API asked to wait before the next request
            (``retry-after-ms``, else ``retry-after``); for a 429 that sent neither, the
            time until `reset_at`. None otherwise.
        reset_at: When the limit that binds resets (aware, UTC): the unified reset when
            the unified status is ``rejected``, else the earliest reset of the buckets
            with nothing remaining, else None.
        buckets: The API key's buckets by name (``requests``, ``tokens``,
            ``input-tokens``…), as many as the response sent. Read-only.
        unified: Every ``anthropic-ratelimit-unified-*`` header, keyed by the rest of its
            name (``status``, ``reset``, ``5h-utilization``…), its value as sent.
            Read-only.
    """

    status: int
    observed_at: _dt.datetime
    retry_after: float | None = None
    reset_at: _dt.datetime | None = None
    buckets: Mapping[str, RateLimitBucket] = attrs.field(
        factory=dict, converter=_read_only_buckets, hash=False
    )
    unified: Mapping[str, str] = attrs.field(factory=dict, converter=_read_only_strings, hash=False)

    @property
    def unified_status(self) -> str | None:
        """The subscription's status (``allowed``, ``allowed_warning``, ``rejected``), if sent."""
        return self.unified.get("status")

    @property
    def unified_reset_at(self) -> _dt.datetime | None:
        """When the subscription's binding window resets (aware, UTC), if sent and readable.

        The header is Unix epoch seconds, as the CLI reads it; RFC 3339 is accepted too.
        """
        text = self.unified.get("reset")
        return None if text is None else _epoch_or_rfc3339(text)

    def seconds_until_reset(self, now: _dt.datetime) -> float | None:
        """Return the seconds from ``now`` (aware) until `reset_at`, at least 0, or None."""
        if self.reset_at is None:
            return None
        return max((self.reset_at - now).total_seconds(), 0.0)


def rate_limits_from_headers(
    status: int, headers: Iterable[tuple[bytes, bytes]], *, now: _dt.datetime
) -> RateLimits | None:
    """Return the rate limits a response's headers report, or None if they report none.

    Header names are matched without regard to case; names and values are read as
    latin-1, and of a repeated header the first counts. A value that cannot be read is
    left out (its field is None), so no header can make this raise.

    Args:
        status: The response's HTTP status.
        headers: The response's headers, as raw ``(name, value)`` pairs.
        now: When the response was read (timezone-aware); HTTP-dates in ``retry-after``
            count from it.

    Returns:
        The `RateLimits`, or None when there is neither a ``retry-after`` (``-ms``) nor
        any ``anthropic-ratelimit-*`` header.

    Raises:
        ValueError: ``now`` is naive.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(_dt.UTC)
    wanted: dict[str, str] = {}
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1").strip().lower()
        if name.startswith(_PREFIX) or name in ("retry-after", "retry-after-ms"):
            wanted.setdefault(name, raw_value.decode("latin-1").strip())
    if not wanted:
        return None
    unified = {
        name.removeprefix(_PREFIX + _UNIFIED): value
        for name, value in wanted.items()
        if name.startswith(_PREFIX + _UNIFIED) and len(name) > len(_PREFIX + _UNIFIED)
    }
    buckets = _buckets(wanted)
    limits = RateLimits(status=status, observed_at=now, buckets=buckets, unified=unified)
    reset_at = _binding_reset(limits)
    retry_after = _retry_after(wanted, now)
    if retry_after is None and status == 429 and reset_at is not None:
        retry_after = max((reset_at - now).total_seconds(), 0.0)
    return attrs.evolve(limits, reset_at=reset_at, retry_after=retry_after)


def _buckets(headers: Mapping[str, str]) -> dict[str, RateLimitBucket]:
    fields: dict[str, dict[str, str]] = {}
    for name, value in headers.items():
        rest = name.removeprefix(_PREFIX)
        if rest == name or rest.startswith(_UNIFIED):
            continue
        match = _BUCKET_RE.fullmatch(rest)
        if match is not None:
            fields.setdefault(match["bucket"], {})[match["field"]] = value
    return {
        bucket: RateLimitBucket(
            limit=_integer(values.get("limit")),
            remaining=_integer(values.get("remaining")),
            reset_at=_rfc3339(values.get("reset")),
        )
        for bucket, values in fields.items()
    }


def _binding_reset(limits: RateLimits) -> _dt.datetime | None:
    if limits.unified_status == "rejected" and limits.unified_reset_at is not None:
        return limits.unified_reset_at
    exhausted = [
        bucket.reset_at
        for bucket in limits.buckets.values()
        if bucket.remaining == 0 and bucket.reset_at is not None
    ]
    return min(exhausted, default=None)


def _retry_after(headers: Mapping[str, str], now: _dt.datetime) -> float | None:
    milliseconds = _seconds(headers.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    text = headers.get("retry-after")
    if text is None:
        return None
    seconds = _seconds(text)
    if seconds is not None:
        return seconds
    when = _http_date(text)
    return None if when is None else max((when - now).total_seconds(), 0.0)


def _integer(text: str | None) -> int | None:
    if text is None or _INTEGER_RE.fullmatch(text) is None:
        return None
    return int(text)


def _seconds(text: str | None) -> float | None:
    if text is None or _SECONDS_RE.fullmatch(text) is None:
        return None
    return float(text)


def _rfc3339(text: str | None) -> _dt.datetime | None:
    if text is None or len(text) > _MAX_TEXT:
        return None
    try:
        when = _dt.datetime.fromisoformat(text)
        return None if when.tzinfo is None else when.astimezone(_dt.UTC)
    except (ValueError, OverflowError):
        return None


def _epoch_or_rfc3339(text: str) -> _dt.datetime | None:
    seconds = _seconds(text)
    if seconds is None:
        return _rfc3339(text)
    try:
        return _dt.datetime.fromtimestamp(seconds, _dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _http_date(text: str) -> _dt.datetime | None:
    if len(text) > _MAX_TEXT:
        return None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return when.replace(tzinfo=_dt.UTC) if when.tzinfo is None else when
