"""The exceptions claude_trio raises.

Every error derives from `BackendError`. Each carries typed attributes, reads well
through ``str()`` alone, and survives pickling (attributes are passed back through
``__reduce__``), so a worker process can hand one to its parent.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

_MAX_LINE_SHOWN = 200


class BackendError(Exception):
    """Root of every error raised by claude_trio.

    Catch this to handle anything the library reports; the subclasses say what went
    wrong and carry the details a caller can act on.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self._fields()))

    def _fields(self) -> dict[str, object]:
        return {}


def _rebuild(cls: type[BackendError], message: str, fields: dict[str, object]) -> BackendError:
    error = cls.__new__(cls)
    BackendError.__init__(error, message)
    for name, value in fields.items():
        setattr(error, name, value)
    return error


class CLINotFoundError(BackendError, FileNotFoundError):
    """The ``claude`` executable could not be found or is not executable.

    Attributes:
        searched: Every place that was looked at, in order, as human-readable text.
    """

    def __init__(self, message: str, *, searched: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.searched = searched

    def _fields(self) -> dict[str, object]:
        return {"searched": self.searched}


class ProcessError(BackendError):
    """The ``claude`` process exited, or could not be started, when it should not have.

    Attributes:
        exit_status: The exit code, when the process exited normally; otherwise None.
        signal: The number of the signal that killed it, when one did; otherwise None.
        screen_tail: The last lines the CLI drew on its terminal, for diagnosis.
    """

    def __init__(
        self,
        message: str,
        *,
        exit_status: int | None = None,
        signal: int | None = None,
        screen_tail: str = "",
    ) -> None:
        super().__init__(message)
        self.exit_status = exit_status
        self.signal = signal
        self.screen_tail = screen_tail

    def __str__(self) -> str:
        parts = [self.message]
        if self.exit_status is not None:
            parts.append(f"exit status {self.exit_status}")
        if self.signal is not None:
            parts.append(f"killed by signal {self.signal}")
        text = "; ".join(parts)
        if self.screen_tail.strip():
            text += "\n--- last screen lines ---\n" + self.screen_tail.rstrip()
        return text

    def _fields(self) -> dict[str, object]:
        return {
            "exit_status": self.exit_status,
            "signal": self.signal,
            "screen_tail": self.screen_tail,
        }


class SessionError(BackendError):
    """The CLI is not in a state the library can drive.

    Raised for a first-run dialog the config did not pre-answer, a session id that is
    invalid or already live, or a session file that cannot be resumed.

    Attributes:
        screen: The rendered terminal screen at the time, when there was one.
        fix: The configuration key or option that would prevent this, when known.
    """

    def __init__(self, message: str, *, screen: str = "", fix: str | None = None) -> None:
        super().__init__(message)
        self.screen = screen
        self.fix = fix

    def __str__(self) -> str:
        text = self.message
        if self.fix:
            text += f" (fix: {self.fix})"
        return text

    def _fields(self) -> dict[str, object]:
        return {"screen": self.screen, "fix": self.fix}


class BackendTimeoutError(BackendError, TimeoutError):
    """A wait bounded by an option ran out.

    Attributes:
        phase: What was being waited for: ``"startup"`` (the input box), ``"input"``
            (the CLI reading what is typed into its terminal), ``"prompt"`` (the CLI
            recording a typed message), ``"turn"`` (the end of a turn), ``"settle"``
            (the end of an abandoned turn), ``"permission"`` (the ``on_permission``
            callback), ``"pool"`` (room among ``max_live`` busy processes) or
            ``"version"`` (``claude --version``).
        timeout: The bound, in seconds.
        screen_tail: The last lines of the CLI's screen at the time.
    """

    def __init__(self, message: str, *, phase: str, timeout: float, screen_tail: str = "") -> None:
        super().__init__(message)
        self.phase = phase
        self.timeout = timeout
        self.screen_tail = screen_tail

    def __str__(self) -> str:
        text = f"{self.message} (after {self.timeout:g} s)"
        if self.screen_tail.strip():
            text += "\n--- last screen lines ---\n" + self.screen_tail.rstrip()
        return text

    def _fields(self) -> dict[str, object]:
        return {"phase": self.phase, "timeout": self.timeout, "screen_tail": self.screen_tail}


class APIError(BackendError):
    """The Anthropic API, as the CLI reached it, answered a turn with an error.

    Attributes:
        status: The HTTP status, when the CLI names one; otherwise None.
        retry_after: Seconds the API asked to wait before trying again, when the CLI
            announced it (the turn was ended rather than sit through a wait longer than
            ``max_retry_wait``); otherwise None.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    def _fields(self) -> dict[str, object]:
        return {"status": self.status, "retry_after": self.retry_after}


class AuthError(APIError):
    """The API rejected the credentials (HTTP 401, ``authentication_failed``)."""


class RateLimitError(APIError):
    """The API refused the turn for a rate limit (HTTP 429) or a subscription usage limit.

    Attributes:
        retry_after: Seconds to wait before trying again, when known: the wait the CLI
            announced, or the time until ``reset_at``.
        reset_at: When the limit resets (timezone-aware), when the CLI shows it (a
            subscription's usage limit).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = 429,
        retry_after: float | None = None,
        reset_at: _dt.datetime | None = None,
    ) -> None:
        super().__init__(message, status=status, retry_after=retry_after)
        self.reset_at = reset_at

    def _fields(self) -> dict[str, object]:
        return {**super()._fields(), "reset_at": self.reset_at}


class OverloadedError(APIError):
    """The API is over capacity (HTTP 529); trying again later may succeed."""


class APIConnectionError(APIError):
    """The CLI could not reach the API at all (connection refused, DNS, TLS)."""


class MessageParseError(BackendError, ValueError):
    """A line of the session JSONL could not be understood.

    Attributes:
        path: The file the line came from, when known.
        line_number: The 1-based line number in that file, when known.
        line: The offending line, cut to a sane length.
        detail: What exactly was wrong with it.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line_number: int | None = None,
        line: str = "",
        detail: str = "",
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line_number = line_number
        self.line = _cut(line)
        self.detail = detail

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f" in {self.path}"
            if self.line_number is not None:
                where += f":{self.line_number}"
        text = f"{self.message}{where}"
        if self.detail:
            text += f": {self.detail}"
        if self.line:
            text += f"\n    {self.line!r}"
        return text

    def _fields(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line_number": self.line_number,
            "line": self.line,
            "detail": self.detail,
        }


def _cut(line: str) -> str:
    if len(line) <= _MAX_LINE_SHOWN:
        return line
    return f"{line[:_MAX_LINE_SHOWN]}…[{len(line) - _MAX_LINE_SHOWN} more chars]"


class InputError(BackendError, ValueError):
    """The caller's input cannot be sent through the CLI.

    Raised before anything is typed: for a slash command that is not allowed or not well
    formed, for user text that would run a slash command, and for ``messages`` that are
    not a conversation the CLI can take. For ``messages``: raised before any process is
    started, for a list that is empty or not a
    list of message objects, an unknown role or content block type, a block without its
    required fields, or a last message the CLI cannot take as a prompt (not from the
    user, holding a tool result or an image, or holding no text). A gateway answers it
    with HTTP 400.

    Attributes:
        where: Where in the input the problem is, as a path such as
            ``messages[2].content[0].source``; empty when it concerns the whole list.
    """

    def __init__(self, message: str, *, where: str = "") -> None:
        super().__init__(message)
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message

    def _fields(self) -> dict[str, object]:
        return {"where": self.where}
