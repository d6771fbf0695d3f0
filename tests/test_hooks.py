"""Permission hooks: the sans-I/O part, the loopback server, and the real CLI using it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx2
import pytest
import trio

from claude_trio import (
    ConversationOptions,
    Event,
    PermissionRequest,
    ResultMessage,
    ToolResultBlock,
    UserMessage,
    open_conversation,
)
from claude_trio import _hooks as hooks
from claude_trio._hooks import (
    CLI_TIMEOUT_MARGIN,
    HOOK_PATH,
    HookRequestError,
    PermissionHookServer,
    body_length,
    check_authorization,
    hook_response,
    hook_settings,
    http_response,
    open_permission_hook_server,
    parse_hook_request,
    parse_request_head,
    permission_detail,
)
from claude_trio.testing import IsolatedConfig, MockAnthropicAPI

# Bodies the real CLI 2.1.328 posted (paths shortened).
PERMISSION_REQUEST_BODY = {
    "session_id": "1384fb02-19aa-4515-84c1-86b7b4364fe8",
    "transcript_path": "/cfg/projects/-p/1384fb02-19aa-4515-84c1-86b7b4364fe8.jsonl",
    "cwd": "/p",
    "prompt_id": "e14a78b7-ff26-44e8-b8b0-039bfa9f8d65",
    "permission_mode": "default",
    "effort": {"level": "medium"},
    "hook_event_name": "PermissionRequest",
    "tool_name": "Bash",
    "tool_input": {"command": "touch x", "description": "mock bash call"},
    "permission_suggestions": [
        {"type": "addDirectories", "directories": ["/p"], "destination": "session"},
        {"type": "setMode", "mode": "acceptEdits", "destination": "session"},
    ],
}
PRE_TOOL_USE_BODY = {
    "session_id": "0153b681-851c-4468-a1c1-eb4c97a05f0e",
    "transcript_path": "/cfg/projects/-p/0153b681-851c-4468-a1c1-eb4c97a05f0e.jsonl",
    "cwd": "/p",
    "prompt_id": "93ad676d-5280-42d0-a859-0fdc3d1e7bc1",
    "permission_mode": "default",
    "effort": {"level": "medium"},
    "hook_event_name": "PreToolUse",
    "tool_name": "Bash",
    "tool_input": {"command": "touch x", "description": "mock bash call"},
    "tool_use_id": "toolu_mock_dbcee0d32a43493594e9",
}
TOKEN = "t0ken-for-tests"


def _body(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


# --- sans-I/O -----------------------------------------------------------------------------


def test_settings_install_one_http_hook_with_the_token() -> None:
    settings = hook_settings("http://127.0.0.1:9/x", TOKEN, timeout=60)
    assert settings == {
        "hooks": {
            "PermissionRequest": [
                {
                    "matcher": "*",
                    "hooks": [
                        {
                            "type": "http",
                            "url": "http://127.0.0.1:9/x",
                            "timeout": 60 + CLI_TIMEOUT_MARGIN,
                            "headers": {"Authorization": f"Bearer {TOKEN}"},
                            "onFailure": "block",
                        }
                    ],
                }
            ]
        }
    }
    assert json.loads(hooks.settings_json(settings)) == settings


def test_settings_for_pre_tool_use_and_fractional_timeouts() -> None:
    settings = hook_settings(
        "http://127.0.0.1:9/x", TOKEN, timeout=0.5, event="PreToolUse", on_failure="continue"
    )
    (entry,) = settings["hooks"]["PreToolUse"]
    (hook,) = entry["hooks"]
    assert hook["timeout"] == 11
    assert isinstance(hook["timeout"], int)
    assert hook["onFailure"] == "continue"


@pytest.mark.parametrize(
    "kwargs",
    [{"timeout": 0}, {"timeout": -1}, {"event": "Stop"}, {"on_failure": "ignore"}],
)
def test_settings_refuse_bad_arguments(kwargs: dict[str, Any]) -> None:
    arguments: dict[str, Any] = {"timeout": 5, **kwargs}
    with pytest.raises(ValueError, match=r"timeout|event|on_failure"):
        hook_settings("http://127.0.0.1:9/x", TOKEN, **arguments)


def test_new_tokens_are_long_and_distinct() -> None:
    tokens = {hooks.new_token() for _ in range(20)}
    assert len(tokens) == 20
    assert all(len(token) >= 40 for token in tokens)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (f"Bearer {TOKEN}", True),
        (f"  Bearer {TOKEN} ", True),
        (f"Bearer {TOKEN}x", False),
        (f"bearer {TOKEN}", False),
        (TOKEN, False),
        ("", False),
        (None, False),
        ("Bearer tøken", False),
        ("Bearer \udcff", False),
    ],
)
def test_check_authorization(value: str | None, ok: bool) -> None:
    assert check_authorization(value, TOKEN) is ok


def test_parse_a_permission_request() -> None:
    request = parse_hook_request(_body(PERMISSION_REQUEST_BODY))
    assert request.event == "PermissionRequest"
    assert request.tool_name == "Bash"
    assert request.tool_input == {"command": "touch x", "description": "mock bash call"}
    assert request.session_id == PERMISSION_REQUEST_BODY["session_id"]
    assert request.tool_use_id == ""
    assert request.cwd == "/p"
    assert request.permission_mode == "default"
    assert len(request.permission_suggestions) == 2
    assert request.raw == PERMISSION_REQUEST_BODY
    assert request.permission_request() == PermissionRequest(
        tool="Bash", detail="touch x\nmock bash call", screen=""
    )


def test_parse_a_pre_tool_use_request() -> None:
    request = parse_hook_request(_body(PRE_TOOL_USE_BODY), event="PreToolUse")
    assert request.event == "PreToolUse"
    assert request.tool_use_id == "toolu_mock_dbcee0d32a43493594e9"
    assert request.permission_suggestions == ()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        _body({**PERMISSION_REQUEST_BODY, "hook_event_name": "Stop"}),
        _body({k: v for k, v in PERMISSION_REQUEST_BODY.items() if k != "tool_name"}),
        _body({**PERMISSION_REQUEST_BODY, "tool_name": ""}),
        _body({**PERMISSION_REQUEST_BODY, "tool_input": "touch x"}),
    ],
)
def test_parse_refuses_what_is_not_a_permission_request(body: bytes) -> None:
    with pytest.raises(HookRequestError) as info:
        parse_hook_request(body)
    assert info.value.status == 400


def test_parse_refuses_the_other_event() -> None:
    with pytest.raises(HookRequestError):
        parse_hook_request(_body(PRE_TOOL_USE_BODY), event="PermissionRequest")


@pytest.mark.parametrize(
    ("tool", "tool_input", "detail"),
    [
        ("Bash", {"command": "ls -l"}, "ls -l"),
        ("Bash", {"command": "ls", "description": "list"}, "ls\nlist"),
        ("Write", {"file_path": "/p/a.txt", "content": "x" * 100}, "/p/a.txt"),
        ("NotebookEdit", {"notebook_path": "/p/n.ipynb", "new_source": "1"}, "/p/n.ipynb"),
        ("WebFetch", {"url": "https://example.com", "prompt": "read"}, "https://example.com"),
        ("mcp__echo__echo", {"text": "hi", "n": 1}, '{"n": 1, "text": "hi"}'),
        ("Tool", {}, "{}"),
    ],
)
def test_permission_detail(tool: str, tool_input: dict[str, Any], detail: str) -> None:
    assert permission_detail(tool, tool_input) == detail


def test_responses_for_permission_request() -> None:
    assert hook_response("PermissionRequest", True) == {
        "hookSpecificOutput": {
            "hookEventName": "PermissionRequest",
            "decision": {"behavior": "allow"},
        }
    }
    assert hook_response("PermissionRequest", False, message="no") == {
        "hookSpecificOutput": {
            "hookEventName": "PermissionRequest",
            "decision": {"behavior": "deny", "message": "no"},
        }
    }
    denied = hook_response("PermissionRequest", False, interrupt=True)
    decision = denied["hookSpecificOutput"]["decision"]
    assert decision["interrupt"] is True
    assert decision["message"] == hooks.DEFAULT_DENY_MESSAGE


def test_responses_for_pre_tool_use() -> None:
    assert hook_response("PreToolUse", True) == {
        "hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "allow"}
    }
    assert hook_response("PreToolUse", False, message="no", interrupt=True) == {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": "deny",
            "permissionDecisionReason": "no",
        }
    }
    with pytest.raises(ValueError, match="event"):
        hook_response("Stop", True)  # type: ignore[arg-type]


def test_parse_request_head() -> None:
    head = parse_request_head(
        b"POST /claude-trio/permission HTTP/1.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 12\r\nAuthorization:  Bearer x \r\nHost: 127.0.0.1:1"
    )
    assert head.method == "POST"
    assert head.target == HOOK_PATH
    assert head.headers["authorization"] == "Bearer x"
    assert body_length(head) == 12


@pytest.mark.parametrize(
    "raw",
    [
        b"POST /x\r\nHost: a",
        b"POST /x HTTP/2\r\nHost: a",
        b"POST /x HTTP/1.1\r\nHost a",
        b"POST /x HTTP/1.1\r\nHost: a\r\n continued",
        b"POST /x HTTP/1.1\r\nHost : a",
        b"POST /x HTTP/1.1\r\nHost: a\r\nhost: b",
        b"POST /x HTTP/1.1\r\nHost: \xc3\xa9",
    ],
)
def test_parse_request_head_refuses_malformed_heads(raw: bytes) -> None:
    with pytest.raises(HookRequestError):
        parse_request_head(raw)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (b"Transfer-Encoding: chunked", 501),
        (b"Host: a", 411),
        (b"Content-Length: -1", 400),
        (b"Content-Length: 1e3", 400),
        (b"Content-Length: 99999999999", 413),
    ],
)
def test_body_length_refusals(headers: bytes, status: int) -> None:
    head = parse_request_head(b"POST /x HTTP/1.1\r\n" + headers)
    with pytest.raises(HookRequestError) as info:
        body_length(head)
    assert info.value.status == status


def test_body_length_wants_ascii_digits() -> None:
    head = hooks._Head(method="POST", target="/x", headers={"content-length": "\u0661"})
    with pytest.raises(HookRequestError, match="Content-Length"):
        body_length(head)


def test_http_response() -> None:
    response = http_response(200, {"a": 1})
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: 8" in head
    assert b"Connection: close" in head
    assert json.loads(body) == {"a": 1}


# --- the server ---------------------------------------------------------------------------


def _tasks() -> set[trio.lowlevel.Task]:
    found: set[trio.lowlevel.Task] = set()
    root = trio.lowlevel.current_root_task()
    assert root is not None
    todo = [root]
    while todo:
        task = todo.pop()
        found.add(task)
        for nursery in task.child_nurseries:
            todo.extend(nursery.child_tasks)
    return found


def _port(server: PermissionHookServer) -> int:
    return int(server.url.split(":")[2].split("/")[0])


async def _post(
    server: PermissionHookServer,
    body: dict[str, Any] | bytes = PERMISSION_REQUEST_BODY,
    *,
    token: str | None = None,
    path: str = HOOK_PATH,
    method: str = "POST",
) -> httpx2.Response:
    url = server.url.replace(HOOK_PATH, path)
    headers = {"Authorization": f"Bearer {server.token if token is None else token}"}
    content = body if isinstance(body, bytes) else _body(body)
    async with httpx2.AsyncClient() as client:
        return await client.request(method, url, content=content, headers=headers, timeout=10)


async def test_server_allows_and_denies_through_the_callback() -> None:
    asked: list[PermissionRequest] = []

    async def callback(request: PermissionRequest) -> bool:
        asked.append(request)
        return "allowed" in request.detail

    tasks_before = _tasks()
    async with open_permission_hook_server(callback, timeout=5) as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.url.endswith(HOOK_PATH)
        settings = server.settings()
        hook = settings["hooks"]["PermissionRequest"][0]["hooks"][0]
        assert hook["url"] == server.url
        assert hook["headers"] == {"Authorization": f"Bearer {server.token}"}
        assert json.loads(server.settings_json()) == settings

        allowed_body = {**PERMISSION_REQUEST_BODY, "tool_input": {"command": "touch allowed"}}
        response = await _post(server, allowed_body)
        assert response.status_code == 200
        assert response.json() == hook_response("PermissionRequest", True)
        response = await _post(server)
        assert response.json() == hook_response("PermissionRequest", False)
        statistics = server.statistics()
    assert asked == [
        PermissionRequest(tool="Bash", detail="touch allowed", screen=""),
        PermissionRequest(tool="Bash", detail="touch x\nmock bash call", screen=""),
    ]
    assert (statistics.requests, statistics.allowed, statistics.denied) == (2, 1, 1)
    assert statistics.in_flight == 0
    assert _tasks() == tasks_before
    with pytest.raises(OSError, match="connect"):
        await trio.open_tcp_stream("127.0.0.1", _port(server))


async def test_server_answers_pre_tool_use_with_its_own_message() -> None:
    async def callback(request: PermissionRequest) -> bool:
        return False

    async with open_permission_hook_server(
        callback, timeout=5, event="PreToolUse", deny_message="not today"
    ) as server:
        response = await _post(server, PRE_TOOL_USE_BODY)
        assert response.json() == hook_response("PreToolUse", False, message="not today")
        # A request for the other event is not answered with a decision.
        response = await _post(server, PERMISSION_REQUEST_BODY)
        assert response.status_code == 400


async def test_server_refuses_requests_without_the_token() -> None:
    called = False

    async def callback(request: PermissionRequest) -> bool:
        nonlocal called
        called = True
        return True

    async with open_permission_hook_server(callback, timeout=5) as server:
        assert (await _post(server, token="wrong")).status_code == 401
        assert (await _post(server, token=server.token.upper())).status_code == 401
        async with httpx2.AsyncClient() as client:
            response = await client.post(server.url, content=_body(PERMISSION_REQUEST_BODY))
        assert response.status_code == 401
        # Paths and methods are checked only after the token.
        assert (await _post(server, token="wrong", path="/other")).status_code == 401
        assert (await _post(server, path="/other")).status_code == 404
        assert (await _post(server, method="PUT")).status_code == 405
        assert (await _post(server, b"{not json")).status_code == 400
        statistics = server.statistics()
    assert not called
    assert statistics.unauthorized == 4
    assert statistics.malformed == 3


async def test_a_late_callback_is_cancelled_and_denied() -> None:
    cancelled = False

    async def callback(request: PermissionRequest) -> bool:
        nonlocal cancelled
        try:
            await trio.sleep_forever()
        finally:
            cancelled = True

    async with open_permission_hook_server(callback, timeout=0.2) as server:
        with trio.fail_after(5):
            response = await _post(server)
        statistics = server.statistics()
    assert response.json() == hook_response("PermissionRequest", False)
    assert cancelled
    assert statistics.timed_out == 1
    assert statistics.denied == 1


async def test_callbacks_run_one_at_a_time() -> None:
    running = most = 0

    async def callback(request: PermissionRequest) -> bool:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await trio.sleep(0.05)
        running -= 1
        return True

    async with open_permission_hook_server(callback, timeout=5) as server:
        async with trio.open_nursery() as nursery:
            for _ in range(4):
                nursery.start_soon(_post, server)
        assert server.statistics().allowed == 4
    assert most == 1


async def test_what_the_callback_raises_ends_the_block_as_itself() -> None:
    class Boom(Exception):
        pass

    async def callback(request: PermissionRequest) -> bool:
        raise Boom("no")

    async def serve_one() -> None:
        async with open_permission_hook_server(callback, timeout=5) as server:
            # The failure cancels this block, possibly before the client sees the
            # connection close (which the CLI reads as a failed hook).
            with pytest.raises(httpx2.HTTPError):
                await _post(server)
            await trio.sleep_forever()

    tasks_before = _tasks()
    with pytest.raises(Boom):
        await serve_one()
    assert _tasks() == tasks_before


async def test_server_survives_bad_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hooks, "_READ_TIMEOUT", 0.3)

    async def callback(request: PermissionRequest) -> bool:
        return True

    async with open_permission_hook_server(callback, timeout=5) as server:
        port = _port(server)
        # Connects and says nothing: dropped after the read timeout.
        silent = await trio.open_tcp_stream("127.0.0.1", port)
        # Sends half a request and goes away.
        half = await trio.open_tcp_stream("127.0.0.1", port)
        await half.send_all(b"POST " + HOOK_PATH.encode() + b" HTTP/1.1\r\nContent-Le")
        await half.aclose()
        # Sends a huge head.
        big = await trio.open_tcp_stream("127.0.0.1", port)
        await big.send_all(b"POST / HTTP/1.1\r\nX: " + b"a" * (20 * 1024))
        assert (await big.receive_some(4096)).startswith(b"HTTP/1.1 431 ")
        await big.aclose()
        # Announces a body and sends less, then stalls.
        short = await trio.open_tcp_stream("127.0.0.1", port)
        head = f"POST {HOOK_PATH} HTTP/1.1\r\nAuthorization: Bearer {server.token}\r\n"
        await short.send_all(head.encode() + b"Content-Length: 100\r\n\r\n{")
        with trio.fail_after(3):
            assert await short.receive_some(4096) == b""
        await short.aclose()
        with trio.fail_after(3):
            assert await silent.receive_some(10) == b""
        await silent.aclose()
        # A request sent in pieces, byte by byte, still works.
        pieces = await trio.open_tcp_stream("127.0.0.1", port)
        body = _body(PERMISSION_REQUEST_BODY)
        request = head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        for index in range(0, len(request), 7):
            await pieces.send_all(request[index : index + 7])
        reply = b""
        with trio.fail_after(3):
            while chunk := await pieces.receive_some(4096):
                reply += chunk
        await pieces.aclose()
        assert reply.startswith(b"HTTP/1.1 200 OK")
        assert json.loads(reply.partition(b"\r\n\r\n")[2]) == hook_response(
            "PermissionRequest", True
        )
        assert (await _post(server)).status_code == 200


# --- the real CLI -------------------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _tool_results(events: list[Event]) -> list[ToolResultBlock]:
    return [
        block
        for event in events
        if isinstance(event, UserMessage) and not isinstance(event.content, str)
        for block in event.content
        if isinstance(block, ToolResultBlock)
    ]


@pytest.mark.real_cli
@pytest.mark.parametrize("event", ["PermissionRequest", "PreToolUse"])
async def test_the_real_cli_asks_the_hook(
    event: hooks.HookEvent,
    claude_cli: Path,
    isolated: IsolatedConfig,
    mock_api: MockAnthropicAPI,
    tmp_path: Path,
) -> None:
    hook_asked: list[PermissionRequest] = []
    screen_asked: list[PermissionRequest] = []

    async def decide(request: PermissionRequest) -> bool:
        hook_asked.append(request)
        return "allowed.txt" in request.detail

    async def on_screen(request: PermissionRequest) -> bool:
        # The hook decides: the screen path must never answer (it would race the hook).
        screen_asked.append(request)
        await trio.sleep_forever()

    async with open_permission_hook_server(
        decide, timeout=20, event=event, deny_message="denied by the test"
    ) as server:
        settings_file = tmp_path / "settings.json"
        _write_private(settings_file, server.settings_json())
        options = ConversationOptions(
            cwd=isolated.cwd,
            env=isolated.env,
            cli_path=str(claude_cli),
            max_retries=0,
            permission_mode="default",
            on_permission=on_screen,
            permission_timeout=120,
            extra_args=("--settings", str(settings_file)),
        )
        async with open_conversation(options) as conversation:
            turns: list[list[Event]] = []
            for name in ("allowed.txt", "denied.txt"):
                with trio.fail_after(60):
                    turns.append([e async for e in conversation.turn(f"CALL_BASH touch {name}")])
            records = [
                json.loads(line) for line in conversation.session_file.read_text().splitlines()
            ]
        statistics = server.statistics()

    assert [r.detail.split("\n")[0] for r in hook_asked] == [
        "touch allowed.txt",
        "touch denied.txt",
    ]
    assert all(r.tool == "Bash" for r in hook_asked)
    assert (statistics.allowed, statistics.denied, statistics.unauthorized) == (1, 1, 0)
    assert (isolated.cwd / "allowed.txt").exists()
    assert not (isolated.cwd / "denied.txt").exists()
    allowed, denied = (_tool_results(events) for events in turns)
    assert [block.is_error for block in allowed] == [False]
    assert [block.is_error for block in denied] == [True]
    for events in turns:
        result = events[-1]
        assert isinstance(result, ResultMessage)
        # A denial lets the model answer: the turn ends normally, not interrupted.
        assert not result.interrupted
        assert not result.is_error
    decisions = [
        r["attachment"]
        for r in records
        if r.get("type") == "attachment" and r["attachment"]["type"] == "hook_permission_decision"
    ]
    if event == "PreToolUse":
        # The CLI never painted a permission dialog.
        assert screen_asked == []
        assert denied[0].content == "PreToolUse:Bash hook error: denied by the test"
        assert decisions == []
    else:
        # The dialog is painted while the hook runs, and the hook's answer closes it.
        assert denied[0].content == "denied by the test"
        assert [d["decision"] for d in decisions] == ["allow", "deny"]
        assert all(d["hookEvent"] == "PermissionRequest" for d in decisions)
