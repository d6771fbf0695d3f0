"""What the gateway answers when a request cannot be served: status, type and message.

Sans-I/O. `GatewayError` is a refusal the gateway decides itself (a bad request, a
missing token, a body too large); `error_for` maps any exception a turn raised onto
one; `anthropic_error_body` and `openai_error_body` shape it for each route.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

from ._errors import (
    APIConnectionError,
    APIError,
    AuthError,
    BackendError,
    BackendTimeoutError,
    InputError,
    OverloadedError,
    RateLimitError,
)

#: The Anthropic error ``type`` for each status the gateway answers with.
ANTHROPIC_ERROR_TYPES: Final[Mapping[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}

#: The OpenAI error ``type`` for each status the gateway answers with.
OPENAI_ERROR_TYPES: Final[Mapping[int, str]] = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    529: "server_error",
}

_OPENAI_CODES: Final[Mapping[int, str]] = {
    401: "invalid_api_key",
    403: "forbidden",
    404: "not_found",
    413: "request_too_large",
    429: "rate_limit_exceeded",
    529: "overloaded",
}

#: Seconds a client is told to wait when every process stayed busy.
POOL_FULL_RETRY_AFTER: Final = 5


class GatewayError(Exception):
    """A request the gateway answers with an error instead of a turn.

    Attributes:
        status: The HTTP status.
        message: What went wrong, for the client.
        param: The request field at fault, when one is (``messages.2.content``).
        retry_after: Whole seconds for a ``retry-after`` header, when the client should
            try again later.
    """

    def __init__(
        self, status: int, message: str, *, param: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """The extra response headers (``retry-after``)."""
        if self.retry_after is None:
            return []
        return [(b"retry-after", str(self.retry_after).encode("ascii"))]


def error_for(exc: BaseException) -> GatewayError:
    """Map what a turn raised onto the error a client gets.

    ================================= ====== ==============================================
    raised                            status notes
    ================================= ====== ==============================================
    `GatewayError`                    its    its own status
    `InputError`                      400    ``param`` is the place in ``messages``
    `AuthError`                       500    the gateway's CLI could not log in
    `RateLimitError`                  429    ``retry-after`` when known
    `OverloadedError`                 529
    `APIError` with a 4xx/5xx status  same   other statuses become 500
    `APIConnectionError`              500
    `BackendTimeoutError` (``pool``)  429    ``retry-after: 5``: every process was busy
    other `BackendError`              500    timeouts, a dead or failed CLI
    anything else                     500    the message does not leak internals
    ================================= ====== ==============================================
    """
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, InputError):
        return GatewayError(400, str(exc), param=_param(exc.where))
    if isinstance(exc, AuthError):
        # The gateway's own login, not the client's token: a 401 would tell the client
        # that its key is wrong.
        return GatewayError(500, f"the claude CLI behind this gateway could not log in: {exc}")
    if isinstance(exc, RateLimitError):
        return GatewayError(429, str(exc), retry_after=_whole_seconds(exc.retry_after))
    if isinstance(exc, OverloadedError):
        return GatewayError(529, str(exc), retry_after=_whole_seconds(exc.retry_after))
    if isinstance(exc, APIConnectionError):
        return GatewayError(500, f"the claude CLI could not reach its API: {exc}")
    if isinstance(exc, APIError):
        status = (
            exc.status if exc.status is not None and exc.status in ANTHROPIC_ERROR_TYPES else 500
        )
        return GatewayError(status, str(exc), retry_after=_whole_seconds(exc.retry_after))
    if isinstance(exc, BackendTimeoutError) and exc.phase == "pool":
        return GatewayError(
            429,
            f"every claude process is busy: {exc.message}; try again later",
            retry_after=POOL_FULL_RETRY_AFTER,
        )
    if isinstance(exc, BackendError):
        return GatewayError(500, f"{type(exc).__name__}: {exc.message}")
    return GatewayError(500, f"internal error in the gateway ({type(exc).__name__})")


def anthropic_error_body(error: GatewayError) -> dict[str, object]:
    """The Messages API error object for *error*."""
    error_type = ANTHROPIC_ERROR_TYPES.get(error.status, "api_error")
    return {"type": "error", "error": {"type": error_type, "message": error.message}}


def openai_error_body(error: GatewayError) -> dict[str, object]:
    """The OpenAI API error object for *error*."""
    return {
        "error": {
            "message": error.message,
            "type": OPENAI_ERROR_TYPES.get(error.status, "server_error"),
            "param": error.param,
            "code": _OPENAI_CODES.get(error.status),
        }
    }


def _param(where: str) -> str | None:
    if not where:
        return None
    # InputError.where is ``messages[2].content[0]``; the APIs write ``messages.2.content.0``.
    return "messages" + where.removeprefix("messages").replace("[", ".").replace("]", "")


def _whole_seconds(seconds: float | None) -> int | None:
    return None if seconds is None else max(0, math.ceil(seconds))
