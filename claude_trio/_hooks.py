"""Tool permissions answered through the CLI's ``http`` hooks instead of its screen.

Claude Code 2.1.328 POSTs a hook's input as JSON to the ``url`` of an ``http`` hook and
reads the decision from the JSON it answers. Measured on the real CLI (``--permission-mode
default``, hooks given per process with ``--settings <file>``):

``PermissionRequest``
    Sent only when the CLI would ask (a Bash ``touch``, not an ``echo``), about 0.15 s
    *before* it paints its "Do you want to proceed?" dialog. The dialog stays on screen
    until the answer is applied (0.1 to 0.7 s for an instant answer), so whoever watches
    the screen must not answer it as well. ``decision.behavior = "allow"`` runs the tool
    (screen: ``Allowed by PermissionRequest hook``); ``"deny"`` makes the tool result an
    error holding ``message`` and the turn goes on (the model answers; the turn ends with
    ``turn_duration``); ``"deny"`` with ``interrupt: true`` gives the records of ESC on
    the dialog (the rejection text, ``[Request interrupted by user for tool use]``, no
    ``turn_duration``). Both deny and allow leave a ``hook_permission_decision``
    attachment record, except deny with interrupt. The body has no ``tool_use_id``.
``PreToolUse``
    Sent before *every* tool call, whether or not the CLI would ask. ``permissionDecision
    = "allow"`` runs it with no dialog at all; ``"deny"`` makes the tool result the error
    ``PreToolUse:<tool> hook error: <permissionDecisionReason>`` and the turn goes on;
    ``"ask"``, ``{}`` or no decision leave it to the CLI (the usual dialog).

When the request fails (refused, a timeout, a status other than 2xx, a body that is not
JSON), ``onFailure: "continue"`` (the CLI's default) falls back to the dialog, and
``onFailure: "block"`` denies the tool (the turn goes on). The CLI sends no credential of
its own (``User-Agent: axios/1.15.2``); the headers the hook names are sent as they are,
so a random bearer token in them tells our server the caller read our settings file.
``disableAllHooks`` in the user's or the project's settings, or an ``allowedHttpHookUrls``
list there that our URL does not match, silently turns the hook off (the dialog shows).

This module has a sans-I/O part (`hook_settings`, `parse_hook_request`, `hook_response`)
and a small HTTP/1.1 server on trio, `open_permission_hook_server`.
"""

from __future__ import annotations

import errno
import hmac
import json
import math
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final, Literal, TypeAlias

import attrs
import trio

from ._options import PermissionCallback, PermissionRequest
from ._util import check_trio, single_error_unwrapped

HookEvent: TypeAlias = Literal["PermissionRequest", "PreToolUse"]
OnFailure: TypeAlias = Literal["block", "continue"]
_EVENTS: Final = ("PermissionRequest", "PreToolUse")

HOOK_PATH: Final = "/claude-trio/permission"
#: Seconds the CLI waits for the hook beyond the server's own timeout, so that the
#: server's answer (a deny when the callback is late) always reaches the CLI first.
CLI_TIMEOUT_MARGIN: Final = 10.0
DEFAULT_DENY_MESSAGE: Final = "The permission to use this tool was denied."

# Limits of the server. A request is one small POST; tool_input may hold a whole file
# (Write), hence the large body limit.
_MAX_HEAD: Final = 16 * 1024
_MAX_BODY: Final = 32 * 1024 * 1024
_READ_TIMEOUT: Final = 10.0
_DRAIN_TIMEOUT: Final = 1.0
_RECEIVE_SIZE: Final = 64 * 1024
_ACCEPT_CAPACITY_ERRNOS: Final = frozenset(
    {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}
)
_ACCEPT_RETRY: Final = 0.1
# Keys of tool_input that hold what a permission dialog shows, most telling first.
_DETAIL_KEYS: Final = ("command", "file_path", "notebook_path", "path", "url", "query", "pattern")


class HookRequestError(ValueError):
    """A hook request that is not one this module can answer.

    Attributes:
        status: The HTTP status to answer it with.
    """

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@attrs.frozen(kw_only=True)
class HookRequest:
    """What the CLI posted to a permission hook.

    Attributes:
        event: ``"PermissionRequest"`` or ``"PreToolUse"``.
        tool_name: The tool (``Bash``, ``Write``, ``mcp__server__tool`` …).
        tool_input: The tool's input as the model gave it.
        session_id: The CLI session.
        tool_use_id: The tool call (``PreToolUse`` only; ``""`` otherwise).
        cwd: The CLI's working directory.
        permission_mode: The CLI's permission mode (``"default"`` …).
        permission_suggestions: The "always allow" choices (``PermissionRequest`` only).
        raw: The whole request body.
    """

    event: HookEvent
    tool_name: str
    tool_input: Mapping[str, Any]
    session_id: str = ""
    tool_use_id: str = ""
    cwd: str = ""
    permission_mode: str = ""
    permission_suggestions: tuple[Any, ...] = ()
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False)

    def permission_request(self) -> PermissionRequest:
        """Return the request as `PermissionRequest` (``tool`` is the tool's name)."""
        return PermissionRequest(
            tool=self.tool_name,
            detail=permission_detail(self.tool_name, self.tool_input),
            screen="",
        )


# --- sans-I/O ----------------------------------------------------------------------------


def new_token() -> str:
    """Return a fresh random token for the hook's ``Authorization`` header."""
    return secrets.token_urlsafe(32)


def authorization_value(token: str) -> str:
    """Return the ``Authorization`` header value the hook sends for *token*."""
    return f"Bearer {token}"


def cli_timeout(timeout: float) -> int:
    """Return the hook ``timeout`` (whole seconds) for a server that answers in *timeout*."""
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return math.ceil(timeout + CLI_TIMEOUT_MARGIN)


def hook_settings(
    url: str,
    token: str,
    *,
    timeout: float,
    event: HookEvent = "PermissionRequest",
    on_failure: OnFailure = "block",
) -> dict[str, Any]:
    """Return the settings (for ``claude --settings``) that install the hook.

    Args:
        url: Where the hook POSTs (a loopback URL; the CLI refuses private and
            link-local addresses but allows 127.0.0.1 and ::1).
        token: The bearer token it sends (write the settings only to a private file:
            ``--settings`` with inline JSON would show it in ``/proc/<pid>/cmdline``).
        timeout: Seconds the server takes at most to answer; the CLI is told to wait
            `CLI_TIMEOUT_MARGIN` seconds more.
        event: The hook event to answer (see the module docstring).
        on_failure: What the CLI does when the request fails: ``"block"`` denies the
            tool, ``"continue"`` shows its own dialog.
    """
    if event not in _EVENTS:
        raise ValueError(f"event must be one of {_EVENTS}, got {event!r}")
    if on_failure not in ("block", "continue"):
        raise ValueError(f"on_failure must be 'block' or 'continue', got {on_failure!r}")
    hook = {
        "type": "http",
        "url": url,
        "timeout": cli_timeout(timeout),
        "headers": {"Authorization": authorization_value(token)},
        "onFailure": on_failure,
    }
    return {"hooks": {event: [{"matcher": "*", "hooks": [hook]}]}}


def settings_json(settings: Mapping[str, Any]) -> bytes:
    """Return *settings* as the bytes of a ``--settings`` file."""
    return json.dumps(settings, ensure_ascii=False).encode("utf-8")


def check_authorization(value: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header value carries *token* (constant time)."""
    expected = authorization_value(token).encode("utf-8")
    got = (value or "").strip().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(got, expected)


def parse_hook_request(body: bytes, *, event: HookEvent | None = None) -> HookRequest:
    """Parse the JSON body the CLI posted to a permission hook.

    Args:
        body: The request body.
        event: The event expected; any of the two by default.

    Raises:
        HookRequestError: If the body is not such a request.
    """
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HookRequestError(f"the hook request is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise HookRequestError("the hook request is not a JSON object")
    name = data.get("hook_event_name")
    if name not in _EVENTS or (event is not None and name != event):
        raise HookRequestError(f"not a permission hook request: hook_event_name={name!r}")
    tool_name = data.get("tool_name")
    if not isinstance(tool_name, str) or not tool_name:
        raise HookRequestError("the hook request has no tool_name")
    tool_input = data.get("tool_input", {})
    if not isinstance(tool_input, dict):
        raise HookRequestError("the hook request's tool_input is not an object")
    suggestions = data.get("permission_suggestions") or ()
    return HookRequest(
        event=name,
        tool_name=tool_name,
        tool_input=tool_input,
        session_id=_text(data.get("session_id")),
        tool_use_id=_text(data.get("tool_use_id")),
        cwd=_text(data.get("cwd")),
        permission_mode=_text(data.get("permission_mode")),
        permission_suggestions=tuple(suggestions) if isinstance(suggestions, list) else (),
        raw=data,
    )


def permission_detail(tool_name: str, tool_input: Mapping[str, Any]) -> str:
    """Return what a permission dialog would show of a tool call, as text.

    The command, path, URL or query of the call (the first of those it has), then its
    description on a line of its own; else the whole input as compact JSON.
    """
    lines = []
    for key in _DETAIL_KEYS:
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            lines.append(value)
            break
    description = tool_input.get("description")
    if lines and isinstance(description, str) and description:
        lines.append(description)
    if not lines:
        return json.dumps(tool_input, ensure_ascii=False, sort_keys=True, default=str)
    return "\n".join(lines)


def hook_response(
    event: HookEvent,
    allow: bool,
    *,
    message: str = DEFAULT_DENY_MESSAGE,
    interrupt: bool = False,
) -> dict[str, Any]:
    """Return the JSON answer that allows or denies a tool call.

    Args:
        event: The event of the request answered.
        allow: Whether to allow the call.
        message: Why it was denied: the tool result's text, which the model reads.
        interrupt: Also end the turn, as ESC on the dialog does (``PermissionRequest``
            only; a ``PreToolUse`` deny always lets the turn go on).
    """
    if event == "PreToolUse":
        output: dict[str, Any] = {
            "hookEventName": "PreToolUse",
            "permissionDecision": "allow" if allow else "deny",
        }
        if not allow:
            output["permissionDecisionReason"] = message
        return {"hookSpecificOutput": output}
    if event != "PermissionRequest":
        raise ValueError(f"event must be one of {_EVENTS}, got {event!r}")
    decision: dict[str, Any] = {"behavior": "allow"}
    if not allow:
        decision = {"behavior": "deny", "message": message}
        if interrupt:
            decision["interrupt"] = True
    return {"hookSpecificOutput": {"hookEventName": "PermissionRequest", "decision": decision}}


@attrs.frozen
class _Head:
    method: str
    target: str
    headers: Mapping[str, str]


def parse_request_head(head: bytes) -> _Head:
    """Parse an HTTP/1.1 request line and header block (without the blank line).

    Header names are lower-cased. Raises `HookRequestError` on anything malformed,
    on repeated headers, and on obsolete line folding.
    """
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise HookRequestError("the request head is not ASCII") from None
    line, *lines = text.split("\r\n")
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HookRequestError(f"not an HTTP/1.x request line: {line[:80]!r}")
    headers: dict[str, str] = {}
    for raw in lines:
        name, colon, value = raw.partition(":")
        if not colon or not name or name != name.strip() or " " in name or "\t" in name:
            raise HookRequestError(f"bad header line: {raw[:80]!r}")
        key = name.lower()
        if key in headers:
            raise HookRequestError(f"repeated header: {name}")
        headers[key] = value.strip(" \t")
    return _Head(method=parts[0], target=parts[1], headers=headers)


def body_length(head: _Head) -> int:
    """Return the body length a request head announces; raise `HookRequestError`."""
    if "transfer-encoding" in head.headers:
        raise HookRequestError("chunked request bodies are not supported", status=501)
    value = head.headers.get("content-length")
    if value is None:
        raise HookRequestError("the request has no Content-Length", status=411)
    if not value.isascii() or not value.isdigit():
        raise HookRequestError(f"bad Content-Length: {value!r}")
    length = int(value)
    if length > _MAX_BODY:
        raise HookRequestError("the request body is too large", status=413)
    return length


_REASONS: Final = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    411: "Length Required",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
}


def http_response(status: int, payload: Mapping[str, Any] | None = None) -> bytes:
    """Return a whole HTTP/1.1 response with a JSON body that closes the connection."""
    body = json.dumps(payload if payload is not None else {}).encode("utf-8")
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


# --- the server ---------------------------------------------------------------------------


@attrs.define(kw_only=True)
class PermissionHookStatistics:
    """Counts of what a permission hook server did.

    Attributes:
        requests: Connections that sent something.
        in_flight: Authorised requests whose answer is not sent yet.
        allowed: Requests answered with allow.
        denied: Requests answered with deny (timeouts and callback errors included).
        timed_out: Requests the callback did not answer in time (denied).
        unauthorized: Requests without the token (answered 401).
        malformed: Requests that were not a permission hook request (answered 4xx/5xx).
    """

    requests: int = 0
    in_flight: int = 0
    allowed: int = 0
    denied: int = 0
    timed_out: int = 0
    unauthorized: int = 0
    malformed: int = 0


class PermissionHookServer:
    """A loopback HTTP server that answers the CLI's permission hook.

    Get one from `open_permission_hook_server`.

    Attributes:
        url: The hook's URL.
        token: The bearer token the hook must send.
        event: The hook event it answers.
        timeout: Seconds the callback gets; then the call is denied.
    """

    def __init__(
        self,
        *,
        callback: PermissionCallback,
        listener: trio.SocketListener,
        token: str,
        event: HookEvent,
        timeout: float,
        on_failure: OnFailure,
        deny_message: str,
        interrupt_on_deny: bool,
    ) -> None:
        host, port = listener.socket.getsockname()[:2]
        self.url = f"http://{host}:{port}{HOOK_PATH}"
        self.token = token
        self.event: HookEvent = event
        self.timeout = timeout
        self._callback = callback
        self._listener = listener
        self._on_failure: OnFailure = on_failure
        self._deny_message = deny_message
        self._interrupt = interrupt_on_deny
        self._lock = trio.Lock()
        self._statistics = PermissionHookStatistics()
        self._activity = trio.Event()

    def settings(self) -> dict[str, Any]:
        """Return the ``--settings`` object that points the CLI's hook here."""
        return hook_settings(
            self.url,
            self.token,
            timeout=self.timeout,
            event=self.event,
            on_failure=self._on_failure,
        )

    def settings_json(self) -> bytes:
        """Return `settings` as the bytes of a ``--settings`` file (write it 0600)."""
        return settings_json(self.settings())

    def statistics(self) -> PermissionHookStatistics:
        """Return a copy of the server's counts."""
        return attrs.evolve(self._statistics)

    async def wait_activity(self) -> None:
        """Wait until an authorised request next goes to the callback or is answered."""
        await self._activity.wait()

    def _touch(self) -> None:
        self._activity.set()
        self._activity = trio.Event()

    async def _serve(self, nursery: trio.Nursery) -> None:
        while True:
            try:
                stream = await self._listener.accept()
            except OSError as exc:
                # Out of file descriptors or memory, as trio.serve_listeners does: wait.
                if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                    raise
                await trio.sleep(_ACCEPT_RETRY)
                continue
            nursery.start_soon(self._handle, stream)

    async def _handle(self, stream: trio.SocketStream) -> None:
        async with stream:
            try:
                with trio.fail_after(_READ_TIMEOUT):
                    read = await self._read(stream)
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
                return
            if isinstance(read, bytes):
                answer, drain = read, True
            else:
                answer, drain = await self._answer(read), False
            try:
                await stream.send_all(answer)
                if drain:
                    # Read what the client still sends, so that closing does not reset
                    # the connection before it has read the error response.
                    await stream.send_eof()
                    with trio.move_on_after(_DRAIN_TIMEOUT):
                        while await stream.receive_some(_RECEIVE_SIZE):
                            pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

    async def _read(self, stream: trio.SocketStream) -> HookRequest | bytes:
        """Read one request: the parsed hook request, or the error response to send."""
        statistics = self._statistics
        data = b""
        while b"\r\n\r\n" not in data:
            if len(data) > _MAX_HEAD:
                statistics.requests += 1
                statistics.malformed += 1
                return http_response(431, {"error": "request head too large"})
            chunk = await stream.receive_some(_RECEIVE_SIZE)
            if not chunk:
                if data:
                    statistics.requests += 1
                    statistics.malformed += 1
                raise trio.BrokenResourceError("the client closed the connection")
            data += chunk
        statistics.requests += 1
        raw_head, _, body = data.partition(b"\r\n\r\n")
        try:
            head = parse_request_head(raw_head)
            if not check_authorization(head.headers.get("authorization"), self.token):
                statistics.unauthorized += 1
                return http_response(401, {"error": "unauthorized"})
            if head.target != HOOK_PATH:
                raise HookRequestError("no such path", status=404)
            if head.method != "POST":
                raise HookRequestError("only POST is served", status=405)
            length = body_length(head)
        except HookRequestError as exc:
            statistics.malformed += 1
            return http_response(exc.status, {"error": str(exc)})
        while len(body) < length:
            chunk = await stream.receive_some(_RECEIVE_SIZE)
            if not chunk:
                statistics.malformed += 1
                raise trio.BrokenResourceError("the client closed the connection")
            body += chunk
        try:
            return parse_hook_request(body[:length], event=self.event)
        except HookRequestError as exc:
            statistics.malformed += 1
            return http_response(exc.status, {"error": str(exc)})

    async def _answer(self, request: HookRequest) -> bytes:
        """Decide *request* and return the response."""
        statistics = self._statistics
        statistics.in_flight += 1
        self._touch()
        try:
            allowed = await self._decide(request)
        finally:
            statistics.in_flight -= 1
            self._touch()
        if allowed:
            statistics.allowed += 1
        else:
            statistics.denied += 1
        response = hook_response(
            self.event, allowed, message=self._deny_message, interrupt=self._interrupt
        )
        return http_response(200, response)

    async def _decide(self, request: HookRequest) -> bool:
        """Ask the callback within the timeout (one call at a time); False if late."""
        with trio.move_on_after(self.timeout):
            async with self._lock:
                return bool(await self._callback(request.permission_request()))
        self._statistics.timed_out += 1
        return False


@asynccontextmanager
async def open_permission_hook_server(
    callback: PermissionCallback,
    *,
    timeout: float,  # noqa: ASYNC109 - the callback's bound per request, not this call's
    event: HookEvent = "PermissionRequest",
    on_failure: OnFailure = "block",
    deny_message: str = DEFAULT_DENY_MESSAGE,
    interrupt_on_deny: bool = False,
    token: str | None = None,
) -> AsyncIterator[PermissionHookServer]:
    """Serve the CLI's permission hook on 127.0.0.1 (an ephemeral port) for the block.

    Each authorised request calls *callback* with a `PermissionRequest` (``screen`` is
    ``""``), one call at a time, and answers allow when it returns true. A callback that
    does not answer within *timeout* seconds (counted from the request's arrival) is
    cancelled and the call is denied. Requests without the bearer token get 401 and
    never reach the callback. What the callback raises is answered with nothing (the
    connection closes: the CLI then applies *on_failure*) and ends the block: it is
    raised out of it, as itself.

    The block owns the server's nursery; leaving it closes the listener and every
    connection.

    Args:
        callback: Decides; returns true to allow.
        timeout: Seconds the callback gets.
        event: The hook event to answer.
        on_failure: What the CLI does when a request fails (see `hook_settings`).
        deny_message: The text a denied tool call returns to the model.
        interrupt_on_deny: Make a deny also end the turn (``PermissionRequest`` only).
        token: The bearer token; a fresh random one by default.

    Yields:
        The server; give the CLI ``--settings <file>`` holding its `settings_json`.
    """
    check_trio("open_permission_hook_server")
    if event not in _EVENTS:
        raise ValueError(f"event must be one of {_EVENTS}, got {event!r}")
    cli_timeout(timeout)  # validates
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    listener = listeners[0]
    for extra in listeners[1:]:
        await extra.aclose()
    server = PermissionHookServer(
        callback=callback,
        listener=listener,
        token=token if token is not None else new_token(),
        event=event,
        timeout=timeout,
        on_failure=on_failure,
        deny_message=deny_message,
        interrupt_on_deny=interrupt_on_deny,
    )
    try:
        with single_error_unwrapped():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(server._serve, nursery)
                yield server
                nursery.cancel_scope.cancel()
    finally:
        await listener.aclose()
