"""Read the CLI's retry status line and its usage-limit messages.

Pure functions, no I/O. The forms are those the CLI 2.1.328 was measured to draw
(``tests/samples/README_retry.txt``):

* While it waits to send a failed request again, the CLI draws one line in its chrome,
  just above the input box: ``✻ <status> · retrying in <wait> · attempt <n>/<max>``.
  ``<status>`` is ``API error`` for the attempts below ``min(3, max)``, then the error
  itself (``429 <message>``, ``529 Overloaded``, ``401 invalid x-api-key``), cut with
  ``…`` when the line is too long. A 429 that carries the subscription headers shows
  ``5-hour limit reached`` (``Weekly limit reached``…) instead, and the wait is followed
  by the reset's clock time: ``retrying in 7s (3:54am)``.
* ``<wait>`` counts down every second: ``17s``, ``1m 0s``, ``1m 30s``; from five minutes
  on only its largest unit (``7m``, ``2h``); at zero the part reads ``retrying…``.
* A subscription usage limit ends the turn with ``You've hit your <limit> · resets
  <when>``, where ``<when>`` is ``3am``, ``4:55am (Europe/Paris)``, ``Dec 3, 2:30am
  (UTC)`` or ``Jan 9, 2027, 12:31am (UTC)``: the reset in the CLI's time zone, floored to
  the minute. The session record of that error holds the exact reset too.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import zoneinfo
from collections.abc import Mapping
from typing import Final

import attrs

from ._errors import APIError, AuthError, OverloadedError, RateLimitError

_UNIT_SECONDS: Final = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_UNITS: Final = "dhms"
_DURATION_PART_RE: Final = re.compile(r"(\d{1,9})([dhm])|(\d{1,9}(?:\.\d{1,3})?)s", re.ASCII)
_DURATION: Final = r"\d{1,9}(?:\.\d{1,3})?[dhms](?: \d{1,9}(?:\.\d{1,3})?[dhms]){0,3}"
_GLYPHS: Final = "✻✶✳✢✽·*"
_RETRY_LINE_RE: Final = re.compile(
    rf"(?:[{_GLYPHS}] )?"
    rf"(?P<status>(?![{_GLYPHS}●⏺⎿❯│─])\S(?:.*\S)?)"
    rf" · (?:retrying in (?P<wait>{_DURATION})(?: \((?P<resets>[^()]+)\))?|retrying(?:…|\.\.\.))"
    r" · attempt (?P<attempt>\d{1,6})/(?P<of>\d{1,6})",
    re.ASCII,
)
_HTTP_STATUS_RE: Final = re.compile(r"([1-5]\d\d)(?: |$)", re.ASCII)
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)
_RESETS_RE: Final = re.compile(
    r"(?<!\w)resets "
    rf"(?:(?P<month>{'|'.join(_MONTHS)}) (?P<day>\d{{1,2}}),? (?:(?P<year>\d{{4}}),? )?(?:at )?)?"
    r"(?P<hour>\d{1,2})(?::(?P<minute>\d\d))?[ \u202f]?(?P<half>[ap]m|[AP]M)(?!\w)"
    r"(?: \((?P<zone>[^()\s]+)\))?",
    re.ASCII,
)
_SHOWN_FLOOR: Final = _dt.timedelta(minutes=1)


@attrs.frozen
class RetryNotice:
    """The CLI's line saying that it will send a failed request again.

    Attributes:
        status: What failed, as the line says it: ``API error``, ``429 <message>``,
            ``529 Overloaded``, ``5-hour limit reached``…
        http_status: The HTTP status when ``status`` starts with one, else None.
        retry_in: Seconds until the next attempt, as announced (0 for ``retrying…``).
        attempt: The number of the retry being waited for, from 1.
        max_attempts: How many retries the CLI will make in all.
        resets: The clock time a usage limit resets at, as shown (``3:54am``), or None.
    """

    status: str
    http_status: int | None
    retry_in: float
    attempt: int
    max_attempts: int
    resets: str | None = None


def parse_duration(text: str) -> float | None:
    """Return the seconds a CLI duration such as ``17s``, ``1m 30s`` or ``2h 5m`` stands for.

    Units are ``d``, ``h``, ``m`` and ``s``, largest first, each at most once, separated by
    one space; only seconds may have a fraction. Anything else gives None.
    """
    total = 0.0
    previous = -1
    for part in text.strip().split(" "):
        match = _DURATION_PART_RE.fullmatch(part)
        if match is None:
            return None
        unit = match[2] or "s"
        rank = _UNITS.index(unit)
        if rank <= previous:
            return None
        previous = rank
        total += float(match[1] or match[3]) * _UNIT_SECONDS[unit]
    return total


def find_retry_notice(chrome_lines: str) -> RetryNotice | None:
    """Return the retry notice among the CLI's chrome lines, or None if none shows.

    Only a whole line counts: from its first column, an optional spinner glyph, the
    status, ``retrying in <wait>`` (or ``retrying…``) and ``attempt <n>/<max>`` at its
    end. Text that merely contains those words, indented or quoted, does not. When
    several lines match, the lowest one wins.
    """
    found: RetryNotice | None = None
    for line in chrome_lines.splitlines():
        match = _RETRY_LINE_RE.fullmatch(line.rstrip())
        if match is None:
            continue
        retry_in = 0.0 if match["wait"] is None else parse_duration(match["wait"])
        if retry_in is None:
            continue
        status = match["status"]
        code = _HTTP_STATUS_RE.match(status)
        found = RetryNotice(
            status=status,
            http_status=int(code[1]) if code else None,
            retry_in=retry_in,
            attempt=int(match["attempt"]),
            max_attempts=int(match["of"]),
            resets=match["resets"],
        )
    return found


def parse_usage_limit(text: str, *, now: _dt.datetime) -> _dt.datetime | None:
    """Return when the usage limit that ``text`` reports resets, or None if it names no reset.

    ``text`` is the CLI's message (``You've hit your 5-hour limit · resets 4:55am
    (Europe/Paris)``); its first ``resets <when>`` is read. The time zone is the one named
    in parentheses, else that of ``now``. A bare clock time is its next occurrence from
    ``now``, and a date without a year is in ``now``'s year, as the CLI shows them. The CLI
    floors the reset to the minute, so the real one may be up to 59 s later.

    Args:
        text: The message.
        now: When the message was written (timezone-aware); the record's timestamp.

    Raises:
        ValueError: ``now`` is naive.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    match = _RESETS_RE.search(text)
    if match is None:
        return None
    hour, minute = int(match["hour"]), int(match["minute"] or 0)
    if not 1 <= hour <= 12 or minute > 59:
        return None
    hour = hour % 12 + (12 if match["half"].lower() == "pm" else 0)
    zone = _zone(match["zone"], now.tzinfo)
    local_now = now.astimezone(zone)
    if match["month"] is not None:
        year = int(match["year"]) if match["year"] else local_now.year
        month = _MONTHS.index(match["month"]) + 1
        try:
            return _dt.datetime(year, month, int(match["day"]), hour, minute, tzinfo=zone)
        except ValueError:
            return None
    when = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if when <= now - _SHOWN_FLOOR:
        when += _dt.timedelta(days=1)
    return when


def usage_limit_reset(record: Mapping[str, object]) -> _dt.datetime | None:
    """Return the exact reset of a usage-limit error record of the session JSONL, in UTC.

    The CLI keeps it, in epoch seconds, in ``apiErrorParams.rate_limit_info.resetsAt``
    and ``quotaLimits.resetsAt`` of an ``isApiErrorMessage`` record whose ``apiError`` is
    ``usage_limit_reached``. None when the record has neither.
    """
    for path in (("apiErrorParams", "rate_limit_info", "resetsAt"), ("quotaLimits", "resetsAt")):
        value: object = record
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value > 0
        ):
            return _dt.datetime.fromtimestamp(value, _dt.UTC)
    return None


def rate_limit_error(
    text: str,
    *,
    notice: RetryNotice | None,
    now: _dt.datetime,
    record: Mapping[str, object] | None = None,
) -> RateLimitError:
    """Build the `RateLimitError` for a turn the CLI ended with a 429.

    ``reset_at`` comes from ``record`` (exact) when given, else from the ``resets`` of
    ``text``, else from the clock time of ``notice``. ``retry_after`` is the wait
    ``notice`` announced, else the time from ``now`` to ``reset_at``.

    Args:
        text: The error text the CLI wrote (the record's text).
        notice: The last retry notice seen during the turn, if any.
        now: When the error was written (timezone-aware).
        record: The ``isApiErrorMessage`` record of the session JSONL, if at hand.

    Raises:
        ValueError: ``now`` is naive.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    reset_at = usage_limit_reset(record) if record is not None else None
    if reset_at is None:
        reset_at = parse_usage_limit(text, now=now)
    if reset_at is None and notice is not None and notice.resets is not None:
        reset_at = parse_usage_limit(f"resets {notice.resets}", now=now)
    retry_after: float | None = None
    if notice is not None:
        retry_after = notice.retry_in
    elif reset_at is not None:
        retry_after = max((reset_at - now).total_seconds(), 0.0)
    return RateLimitError(text, retry_after=retry_after, reset_at=reset_at)


def _zone(name: str | None, default: _dt.tzinfo) -> _dt.tzinfo:
    if name is None:
        return default
    if name.upper() in ("UTC", "ETC/UTC", "GMT"):
        return _dt.UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return default


def retry_refused_error(notice: RetryNotice, *, limit: float, now: _dt.datetime) -> APIError:
    """Build the error for a turn ended because its retry would wait longer than *limit*.

    The class follows the status the retry line names: 429 or a usage limit gives
    `RateLimitError` (with ``reset_at`` when the line shows the reset's clock time), 529
    `OverloadedError`, 401 `AuthError`. The CLI names no status on its first retries
    (``API error``): a wait that long was asked for by the API (``retry-after``), which
    it does for rate limits, so that too is a `RateLimitError`, with ``status`` None.
    Every one carries the announced wait as ``retry_after``.

    Args:
        notice: The retry line.
        limit: The ``max_retry_wait`` it exceeded.
        now: The time now (timezone-aware), to place a reset clock time.
    """
    message = (
        f"the API failed the request ({notice.status}) and asked to wait "
        f"{notice.retry_in:g} s before retrying, longer than max_retry_wait={limit:g} s"
    )
    status = notice.http_status
    if status == 529:
        return OverloadedError(message, status=529, retry_after=notice.retry_in)
    if status == 401:
        return AuthError(message, status=401, retry_after=notice.retry_in)
    if status in (None, 429):
        error = rate_limit_error(message, notice=notice, now=now)
        error.status = status
        return error
    return APIError(message, status=status, retry_after=notice.retry_in)
