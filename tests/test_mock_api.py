"""The mock Anthropic Messages API, checked with the official ``anthropic`` SDK as client."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import math
import signal
import subprocess
import sys
import time
from functools import partial
from typing import TYPE_CHECKING, Any

import anthropic
import attrs
import httpx2
import pytest
import trio

from claude_trio._ratelimits import RateLimits, rate_limits_from_headers
from claude_trio.testing import (
    ErrorReply,
    MessageReply,
    MockAnthropicAPI,
    RecordedRequest,
    ReplyText,
    ReplyThinking,
    ReplyToolUse,
    ReplyUsage,
    RequestKind,
    error_reply,
    magic_word_handler,
    max_tokens_reply,
    open_mock_anthropic_api,
    text_reply,
    thinking_reply,
    tool_use_reply,
)

from .conftest import SAMPLES

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

API_KEY = "sk-ant-api03-mockkey-0123456789abcdefghijklmnopqrstuvwxyz"
REMINDER = "<system-reminder>\nAttribution for git commits…\n</system-reminder>\n"
USER_HI: list[anthropic.types.MessageParam] = [{"role": "user", "content": "hi"}]
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)
_HOP_HEADERS = {"host", "content-length", "connection", "accept-encoding"}


def _sample(name: str) -> list[dict[str, Any]]:
    lines = (SAMPLES / name).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _client(api: MockAnthropicAPI) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=api.base_url, api_key=API_KEY, max_retries=0)


def _http(api: MockAnthropicAPI) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(base_url=api.base_url)


def _recorded(
    body: dict[str, Any] | None, *, kind: RequestKind = RequestKind.MAIN
) -> RecordedRequest:
    return RecordedRequest(
        method="POST",
        path="/v1/messages?beta=true",
        headers={},
        body=body,
        kind=kind,
        request_id="req_test",
        time=0.0,
        wall_time=0.0,
    )


def _cli_body(*messages: dict[str, Any], stream: bool = True) -> dict[str, Any]:
    """A main-turn body shaped like the real CLI's (FACTS.md §5, §11)."""
    return {
        "model": "claude-opus-5-5",
        "max_tokens": 128000,
        "stream": stream,
        "system": [{"type": "text", "text": "You are Claude Code, Anthropic's official CLI."}],
        "messages": list(messages),
    }


def _user(*texts: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text} for text in texts]}


SYSTEM_ENTRY = {"role": "system", "content": [{"type": "text", "text": "# Environment\n..."}]}


async def _replay(http: httpx2.AsyncClient, record: dict[str, Any]) -> httpx2.Response:
    headers = {k: v for k, v in record["headers"].items() if k.lower() not in _HOP_HEADERS}
    content = json.dumps(record["body"]).encode() if "body" in record else None
    return await http.request(record["method"], record["path"], headers=headers, content=content)


async def _events(response: httpx2.Response) -> list[tuple[str, dict[str, Any]]]:
    return [
        (sse.event or "", sse.json()) async for sse in anthropic.AsyncStream.raw_events(response)
    ]


def _sse_text(events: list[tuple[str, dict[str, Any]]]) -> str:
    return "".join(
        data["delta"]["text"]
        for name, data in events
        if name == "content_block_delta" and data["delta"]["type"] == "text_delta"
    )


async def _ask(client: anthropic.AsyncAnthropic, *, stream: bool) -> anthropic.types.Message:
    if not stream:
        return await client.messages.create(model="m", max_tokens=9, messages=USER_HI)
    async with client.messages.stream(model="m", max_tokens=9, messages=USER_HI) as events:
        return await events.get_final_message()


@pytest.fixture
async def api() -> AsyncIterator[MockAnthropicAPI]:
    async with open_mock_anthropic_api() as running:
        yield running


# --- streaming, parsed by the SDK ------------------------------------------------------


async def test_stream_of_scripted_blocks_accumulates_to_the_script(api: MockAnthropicAPI) -> None:
    usage = ReplyUsage(321, 45, cache_creation_input_tokens=7, cache_read_input_tokens=1000)
    scripted = MessageReply(
        (
            ReplyThinking("first I think", signature="sig-123"),
            ReplyText("then I answer, twice."),
            ReplyToolUse("Bash", input={"command": "ls -la", "list": [1, "two"]}, id="toolu_x"),
        ),
        stop_reason="tool_use",
        usage=usage,
        model="claude-scripted",
    )
    api.enqueue(scripted)
    with trio.fail_after(5):
        async with _client(api) as client:
            stream = client.messages.stream(model="claude-x", max_tokens=50, messages=USER_HI)
            async with stream as events:
                message = await events.get_final_message()
    thinking, text, tool = message.content
    assert thinking.type == "thinking"
    assert (thinking.thinking, thinking.signature) == ("first I think", "sig-123")
    assert text.type == "text"
    assert text.text == "then I answer, twice."
    assert tool.type == "tool_use"
    assert (tool.id, tool.name, tool.input) == (
        "toolu_x",
        "Bash",
        {"command": "ls -la", "list": [1, "two"]},
    )
    assert message.stop_reason == "tool_use"
    assert message.model == "claude-scripted"
    assert message.id.startswith("msg_mock_")
    assert (
        message.usage.input_tokens,
        message.usage.output_tokens,
        message.usage.cache_creation_input_tokens,
        message.usage.cache_read_input_tokens,
    ) == (321, 45, 7, 1000)


async def test_stream_has_the_apis_exact_event_sequence(api: MockAnthropicAPI) -> None:
    api.enqueue(
        MessageReply(
            (ReplyThinking("a b"), ReplyText("c d e"), ReplyToolUse("T", input={"k": "v"})),
            stop_reason="tool_use",
        )
    )
    with trio.fail_after(5):
        async with _http(api) as http:
            body = {"model": "m", "max_tokens": 9, "stream": True, "messages": USER_HI}
            async with http.stream("POST", "/v1/messages?beta=true", json=body) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                events = await _events(response)
    for name, data in events:
        assert data["type"] == name
    shape = [
        (
            name,
            data.get("index"),
            data["content_block"]["type"]
            if name == "content_block_start"
            else data["delta"].get("type")
            if name == "content_block_delta"
            else None,
        )
        for name, data in events
    ]
    assert shape == [
        ("message_start", None, None),
        ("content_block_start", 0, "thinking"),
        ("ping", None, None),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "signature_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1, None),
        ("content_block_start", 2, "tool_use"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_stop", 2, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]
    start = events[0][1]["message"]
    assert (start["content"], start["stop_reason"]) == ([], None)
    assert {"cache_creation_input_tokens", "cache_read_input_tokens"} <= set(start["usage"])
    json_pieces = [
        data["delta"]["partial_json"]
        for name, data in events
        if data.get("index") == 2 and name == "content_block_delta"
    ]
    assert json_pieces[0] == ""
    assert json.loads("".join(json_pieces)) == {"k": "v"}
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert {"output_tokens", "cache_read_input_tokens"} <= set(delta["usage"])


async def test_non_streaming_request_gets_one_json_message(api: MockAnthropicAPI) -> None:
    api.enqueue(
        thinking_reply("hmm", text="done", signature="s1"),
        tool_use_reply("Read", input={"file_path": "a.txt"}, text="reading", tool_use_id="toolu_r"),
        max_tokens_reply("cut here"),
    )
    with trio.fail_after(5):
        async with _client(api) as client:
            first = await client.messages.create(model="m", max_tokens=9, messages=USER_HI)
            second = await client.messages.create(model="m", max_tokens=9, messages=USER_HI)
            third = await client.messages.create(model="m", max_tokens=9, messages=USER_HI)
    assert [block.to_dict() for block in first.content] == [
        {"type": "thinking", "thinking": "hmm", "signature": "s1"},
        {"type": "text", "text": "done"},
    ]
    assert first.stop_reason == "end_turn"
    assert [block.to_dict() for block in second.content] == [
        {"type": "text", "text": "reading"},
        {"type": "tool_use", "id": "toolu_r", "name": "Read", "input": {"file_path": "a.txt"}},
    ]
    assert second.stop_reason == "tool_use"
    assert (third.stop_reason, third.content[0].to_dict()) == (
        "max_tokens",
        {"type": "text", "text": "cut here"},
    )
    assert first.usage.cache_read_input_tokens == 0
    assert not api.requests[0].stream


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(
    ("status", "exception", "error_type"),
    [
        (401, anthropic.AuthenticationError, "authentication_error"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
async def test_errors_raise_the_sdks_exception(
    api: MockAnthropicAPI,
    status: int,
    exception: type[anthropic.APIStatusError],
    error_type: str,
    stream: bool,
) -> None:
    api.enqueue(error_reply(status))
    with trio.fail_after(5):
        async with _client(api) as client:
            with pytest.raises(exception) as caught:
                await _ask(client, stream=stream)
    error = caught.value
    assert error.status_code == status
    assert error.body == {
        "type": "error",
        "error": {"type": error_type, "message": error_reply(status).message},
        "request_id": api.requests[0].request_id,
    }
    headers = error.response.headers
    assert headers["request-id"] == api.requests[0].request_id
    if status == 429:
        assert headers["retry-after"] == "30"
        now = dt.datetime.now(dt.UTC)
        for bucket in ("requests", "tokens"):
            reset = dt.datetime.fromisoformat(headers[f"anthropic-ratelimit-{bucket}-reset"])
            assert now + dt.timedelta(seconds=28) < reset < now + dt.timedelta(seconds=32)
    else:
        assert "retry-after" not in headers


async def test_error_inside_a_stream_then_json_fallback(api: MockAnthropicAPI) -> None:
    api.handler = magic_word_handler
    prompt: list[anthropic.types.MessageParam] = [{"role": "user", "content": "ERRSTREAM now"}]
    with trio.fail_after(5):
        async with _client(api) as client:
            with pytest.raises(anthropic.APIStatusError) as caught:
                async with client.messages.stream(model="m", max_tokens=9, messages=prompt) as s:
                    await s.get_final_message()
            fallback = await client.messages.create(model="m", max_tokens=9, messages=prompt)
    assert (caught.value.status_code, caught.value.type) == (200, "overloaded_error")
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": api.requests[0].request_id,
    }
    assert fallback.content[0].to_dict() == {"type": "text", "text": "echo: ERRSTREAM now"}


def test_error_reply_rejects_non_error_status() -> None:
    with pytest.raises(ValueError, match="status"):
        error_reply(200)
    assert error_reply(418).error_type == "api_error"
    assert error_reply(429, retry_after=2.5).retry_after == 2.5
    assert error_reply(500).retry_after is None


# --- rate-limit headers ------------------------------------------------------------------


def _rate_limits(response: httpx2.Response) -> RateLimits:
    limits = rate_limits_from_headers(
        response.status_code, response.headers.raw, now=dt.datetime.now(dt.UTC)
    )
    assert limits is not None
    return limits


async def test_message_answers_carry_rate_limit_headers_that_count_down(
    api: MockAnthropicAPI,
) -> None:
    api.enqueue(text_reply("one"), error_reply(529, in_stream=True))
    body = {"model": "m", "max_tokens": 9, "stream": True, "messages": USER_HI}
    title = {**body, "system": "You are naming a coding session, briefly"}
    with trio.fail_after(5):
        async with _http(api) as http:
            answers = [
                await http.post("/v1/messages", json=body),
                await http.post("/v1/messages", json=title),
                await http.post("/v1/messages", json={**body, "max_tokens": 1}),
                await http.post("/v1/messages", json=body),
                await http.post("/v1/messages", json={**body, "stream": False}),
            ]
            tokens = await http.post("/v1/messages/count_tokens", json=body)
            hello = await http.head("/api/hello")
    kinds = [request.kind for request in api.requests[:5]]
    assert kinds == [
        RequestKind.MAIN,
        RequestKind.TITLE,
        RequestKind.QUOTA,
        *[RequestKind.MAIN] * 2,
    ]
    limits = [_rate_limits(answer) for answer in answers]
    assert [answer.status_code for answer in answers] == [200] * 5
    assert [limit.buckets["requests"].remaining for limit in limits] == [
        3999,
        3998,
        3997,
        3996,
        3995,
    ]
    assert {limit.buckets["requests"].limit for limit in limits} == {4000}
    remaining_tokens = [limit.buckets["tokens"].remaining or 0 for limit in limits]
    assert remaining_tokens == sorted(remaining_tokens, reverse=True)
    assert remaining_tokens[-1] < 2_000_000
    for limit in limits:
        reset = limit.buckets["tokens"].reset_at
        assert reset is not None
        assert 55 < (reset - limit.observed_at).total_seconds() <= 61
        assert (limit.reset_at, limit.retry_after, limit.unified) == (None, None, {})
    assert answers[4].headers.get_list("request-id") == [api.requests[4].request_id]
    for bare in (tokens, hello):
        assert rate_limits_from_headers(bare.status_code, bare.headers.raw, now=NOW) is None


async def test_a_replys_headers_replace_the_mocks_own(api: MockAnthropicAPI) -> None:
    reset = int(NOW.timestamp()) + 3600
    unified = {
        "anthropic-ratelimit-unified-status": "rejected",
        "anthropic-ratelimit-unified-reset": str(reset),
        "anthropic-ratelimit-unified-5h-utilization": "1.0",
    }
    api.enqueue(
        error_reply(429, headers={"Retry-After": "1.5", **unified}),
        text_reply("fine", headers=[("anthropic-ratelimit-requests-remaining", "7")]),
        MessageReply((ReplyText("x"),), headers=(("x-extra", "1"), ("x-extra", "2"))),
    )
    with trio.fail_after(5):
        async with _http(api) as http:
            body = {"model": "m", "max_tokens": 9, "messages": USER_HI}
            limited = await http.post("/v1/messages", json=body)
            fine = await http.post("/v1/messages", json={**body, "stream": True})
            extra = await http.post("/v1/messages", json=body)
    assert limited.status_code == 429
    assert limited.headers.get_list("retry-after") == ["1.5"]
    limits = _rate_limits(limited)
    assert limits.retry_after == 1.5
    assert (limits.unified_status, limits.unified["5h-utilization"]) == ("rejected", "1.0")
    assert limits.reset_at == dt.datetime.fromtimestamp(reset, dt.UTC)
    assert limits.buckets["requests"].remaining == 0
    assert fine.headers.get_list("anthropic-ratelimit-requests-remaining") == ["7"]
    assert _rate_limits(fine).buckets["tokens"].limit == 2_000_000
    assert extra.headers.get_list("x-extra") == ["1", "2"]
    assert error_reply(500, headers={"a": "b"}).headers == (("a", "b"),)
    assert error_reply(500).headers == text_reply("t").headers == ()


# --- the request, byte for byte ----------------------------------------------------------


async def test_the_raw_request_is_kept_byte_for_byte(api: MockAnthropicAPI) -> None:
    raw = '{"model": "m" ,\n "max_tokens":9,"messages":[{"role":"user","content":"h\\u00e9 é"}]}'
    sent = raw.encode()
    headers = [
        (b"Content-Type", b"application/json"),
        (b"X-Dup", b"first"),
        (b"x-other", "é".encode()),
        (b"x-dup", b"second"),
    ]
    with trio.fail_after(5):
        async with _http(api) as http:
            answer = await http.post("/v1/messages?beta=true", content=sent, headers=headers)
            bare = await http.head("/api/hello")
    (request, hello) = api.requests
    assert answer.status_code == 200
    assert request.raw_body == sent
    assert request.body is not None
    assert request.prompt == "hé é"
    names = [name for name, _ in request.raw_headers]
    assert names == [name.lower() for name in names]
    dups = [value for name, value in request.raw_headers if name == b"x-dup"]
    assert dups == [b"first", b"second"]
    assert (b"x-other", "é".encode()) in request.raw_headers
    assert (b"content-length", str(len(sent)).encode()) in request.raw_headers
    assert request.headers["x-dup"] == "first, second"
    assert (hello.raw_body, bare.status_code) == (b"", 200)
    assert (b"host", api.base_url.removeprefix("http://").encode()) in hello.raw_headers
    assert "raw_body" not in repr(request)


# --- slow streams, disconnects, shutdown -------------------------------------------------


async def test_slow_stream_spreads_over_the_scripted_time(api: MockAnthropicAPI) -> None:
    api.enqueue(text_reply("w0 w1 w2 w3", seconds=0.4))
    texts: list[str] = []
    in_flight_at_first_text = -1
    with trio.fail_after(5):
        async with _client(api) as client:
            start = trio.current_time()
            async with client.messages.stream(model="m", max_tokens=9, messages=USER_HI) as s:
                async for text in s.text_stream:
                    if not texts:
                        in_flight_at_first_text = api.statistics().responses_in_flight
                    texts.append(text)
            elapsed = trio.current_time() - start
    assert texts == ["w0 ", "w1 ", "w2 ", "w3"]
    assert elapsed >= 0.4
    assert in_flight_at_first_text == 1


async def test_client_that_disconnects_mid_stream_frees_the_response(
    api: MockAnthropicAPI,
) -> None:
    api.enqueue(text_reply("never finished " * 10, seconds=60))
    body = {"model": "m", "max_tokens": 9, "stream": True, "messages": USER_HI}
    payload = json.dumps(body).encode()
    head = f"POST /v1/messages HTTP/1.1\r\nHost: mock\r\nContent-Length: {len(payload)}\r\n\r\n"
    received = b""
    with trio.fail_after(5):
        async with _http(api) as http:
            port = int(api.base_url.rpartition(":")[2])
            async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                await client.send_all(head.encode() + payload)
                while b"event: message_start" not in received:
                    received += await client.receive_some()
            await api.wait_idle()
            stats = api.statistics()
            assert (stats.responses_disconnected, stats.responses_completed) == (1, 0)
            assert received.startswith(b"HTTP/1.1 200")
            after = await http.post("/v1/messages", json={**body, "stream": False})
            await api.wait_idle()
    assert after.json()["content"] == [{"type": "text", "text": "echo: hi"}]
    assert api.statistics().responses_completed == 1


@pytest.mark.parametrize("cancelled", [False, True], ids=["exit", "cancel"])
async def test_leaving_the_block_cuts_a_stream_promptly(cancelled: bool) -> None:
    failures: list[Exception] = []

    async def consume(
        client: anthropic.AsyncAnthropic, *, task_status: trio.TaskStatus[None]
    ) -> None:
        try:
            async with client.messages.stream(model="m", max_tokens=9, messages=USER_HI) as s:
                async for event in s:
                    if event.type == "message_start":
                        task_status.started()
        except httpx2.RemoteProtocolError as exc:
            failures.append(exc)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            with trio.CancelScope() as caller:
                async with open_mock_anthropic_api() as api:
                    client = _client(api)
                    api.enqueue(text_reply("slow " * 10, seconds=60))
                    await nursery.start(consume, client)
                    leaving = trio.current_time()
                    if cancelled:
                        caller.cancel()
                        await trio.sleep_forever()
            closed_in = trio.current_time() - leaving
        await client.close()
    assert closed_in < 1.0
    assert caller.cancelled_caught == cancelled
    assert len(failures) == 1
    assert api.statistics().responses_in_flight == 0


async def test_errors_and_cancellation_leave_the_block_unwrapped() -> None:
    with trio.fail_after(5):
        with pytest.raises(KeyError, match="boom"):
            async with open_mock_anthropic_api():
                raise KeyError("boom")
        with trio.move_on_after(0.05) as scope:
            async with open_mock_anthropic_api():
                await trio.sleep_forever()
        assert scope.cancelled_caught
        with pytest.raises(ValueError, match="close_timeout"):
            async with open_mock_anthropic_api(close_timeout=0):
                pass


async def test_base_url_is_loopback_with_an_ephemeral_port(api: MockAnthropicAPI) -> None:
    scheme, host, port = api.base_url.split(":")
    assert (scheme, host) == ("http", "//127.0.0.1")
    assert int(port) > 0
    with pytest.raises(TypeError, match="no public constructor"):
        MockAnthropicAPI(handler=None)


# --- background traffic and the request log ---------------------------------------------


async def test_cli_traffic_is_classified_and_background_keeps_the_queue(
    api: MockAnthropicAPI,
) -> None:
    records = _sample("mock_requests_with_nonessential_traffic.jsonl")
    main = next(record for record in records if record["kind"] == "main")
    quota = copy.deepcopy(main)
    quota["body"]["max_tokens"] = 1
    count = {
        "method": "POST",
        "path": "/v1/messages/count_tokens?beta=true",
        "headers": {"content-type": "application/json"},
        "body": {"model": "m", "messages": main["body"]["messages"]},
    }
    api.enqueue(text_reply("scripted for the first turn"))
    responses = []
    with trio.fail_after(5):
        async with _http(api) as http:
            for record in [*records, quota, count]:
                responses.append(await _replay(http, record))
            title_events = await _events(responses[1])
            quota_events = await _events(responses[-2])
    kinds = [request.kind for request in api.requests]
    assert kinds == [
        RequestKind.HELLO,
        RequestKind.TITLE,
        RequestKind.MAIN,
        RequestKind.TITLE,
        RequestKind.MAIN,
        RequestKind.QUOTA,
        RequestKind.COUNT_TOKENS,
    ]
    assert [response.status_code for response in responses] == [200] * 7
    assert [request.prompt for request in api.main_requests] == ["hello flags", "second"]
    assert _sse_text(await _events(responses[2])) == "scripted for the first turn"
    assert _sse_text(await _events(responses[4])) == "echo: second"
    assert json.loads(_sse_text(title_events))["title"]
    assert quota_events[-2][1]["delta"]["stop_reason"] == "max_tokens"
    assert responses[-1].json()["input_tokens"] > 0
    assert api.statistics().queued_replies == 0
    assert api.requests[0].method == "HEAD"
    assert api.requests[1].path == "/v1/messages?beta=true"


async def test_background_requests_never_take_scripted_replies(api: MockAnthropicAPI) -> None:
    seen: list[RecordedRequest] = []

    def handler(request: RecordedRequest) -> None:
        seen.append(request)

    api.handler = handler
    api.enqueue(error_reply(401))
    with trio.fail_after(5):
        async with _client(api) as client, _http(api) as http:
            hello = await http.head("/api/hello")
            tokens = await client.messages.count_tokens(model="m", messages=USER_HI)
            probe = await client.messages.create(model="m", max_tokens=1, messages=USER_HI)
            title = await client.messages.create(
                model="m",
                max_tokens=99,
                system="You are naming a coding session so the user can pick it out…",
                messages=USER_HI,
            )
            with pytest.raises(anthropic.AuthenticationError):
                await client.messages.create(model="m", max_tokens=99, messages=USER_HI)
    assert hello.status_code == 200
    assert tokens.input_tokens > 0
    assert probe.stop_reason == "max_tokens"
    assert title.content[0].type == "text"
    assert "title" in json.loads(title.content[0].text)
    assert [request.kind.is_background for request in api.requests] == [True] * 4 + [False]
    assert seen == []


async def test_request_log_records_what_was_sent(api: MockAnthropicAPI) -> None:
    body = _cli_body(_user(REMINDER, "log me"), SYSTEM_ENTRY)
    with trio.fail_after(5):
        async with _http(api) as http:
            before, wall_before = trio.current_time(), time.time()
            response = await http.post(
                "/v1/messages?beta=true",
                json=body,
                headers={"X-Claude-Code-Session-Id": "sess-1", "anthropic-version": "2023-06-01"},
            )
            after, wall_after = trio.current_time(), time.time()
            await response.aread()
            not_found = await http.get("/v1/models?limit=1")
            bad = await http.post("/v1/messages", content=b"{not json")
    (request, missing, invalid) = api.requests
    assert (request.method, request.path, request.kind) == (
        "POST",
        "/v1/messages?beta=true",
        RequestKind.MAIN,
    )
    assert request.headers["x-claude-code-session-id"] == "sess-1"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.body == body
    assert request.stream
    assert request.model == "claude-opus-5-5"
    assert request.system_text == "You are Claude Code, Anthropic's official CLI."
    assert before <= request.time <= after
    assert wall_before <= request.wall_time <= wall_after
    assert response.headers["request-id"] == request.request_id
    assert request.prompt == "log me"
    assert (missing.kind, not_found.status_code) == (RequestKind.OTHER, 404)
    assert missing.path == "/v1/models?limit=1"
    assert not_found.json()["error"]["type"] == "not_found_error"
    assert not_found.headers["request-id"] == missing.request_id
    assert (invalid.kind, invalid.body, bad.status_code) == (RequestKind.OTHER, None, 400)
    assert bad.json()["error"]["type"] == "invalid_request_error"


async def test_wait_for_requests_wakes_on_arrival(api: MockAnthropicAPI) -> None:
    got: list[tuple[RecordedRequest, ...]] = []

    async def waiter() -> None:
        got.append(await api.wait_for_requests(1))

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery, _client(api) as client:
            nursery.start_soon(waiter)
            await client.messages.count_tokens(model="m", messages=USER_HI)
            assert got == []
            await client.messages.create(model="m", max_tokens=9, messages=USER_HI)
    assert [request.kind for request in got[0]] == [RequestKind.MAIN]
    assert len(await api.wait_for_requests(2, kind=None)) == 2


# --- the prompt accessor -----------------------------------------------------------------


def test_prompt_of_a_real_cli_request() -> None:
    (record,) = _sample("mock_requests_one_turn.jsonl")
    request = _recorded(record["body"])
    assert request.messages[-1]["role"] == "system"
    assert request.prompt == "hello world"


@pytest.mark.parametrize(
    ("messages", "prompt"),
    [
        ([_user(REMINDER, "the prompt"), SYSTEM_ENTRY], "the prompt"),
        ([_user("the prompt", REMINDER)], "the prompt"),
        ([_user("  \n" + REMINDER, "x")], "x"),
        ([{"role": "user", "content": "as a string"}, SYSTEM_ENTRY], "as a string"),
        (
            [
                _user(REMINDER, "old"),
                SYSTEM_ENTRY,
                {"role": "assistant", "content": [{"type": "text", "text": "w0 w1 "}]},
                _user("[Request interrupted by user]", "after interrupt"),
            ],
            "after interrupt",
        ),
        ([_user("old"), {"role": "assistant", "content": "ok"}, _user(REMINDER)], None),
        (
            [
                _user("CALL_BASH echo hi"),
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "Bash", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t", "content": "hi"}],
                },
            ],
            None,
        ),
        ([SYSTEM_ENTRY], None),
        ([], None),
    ],
)
def test_prompt_is_the_last_typed_user_text(
    messages: list[dict[str, Any]], prompt: str | None
) -> None:
    assert _recorded(_cli_body(*messages)).prompt == prompt


def test_prompt_and_accessors_of_bodiless_requests() -> None:
    request = _recorded(None, kind=RequestKind.OTHER)
    assert (request.prompt, request.messages, request.stream, request.model) == (
        None,
        [],
        False,
        None,
    )
    assert request.tool_results == []
    assert request.system_text == ""
    assert RequestKind.OTHER.is_background
    assert not RequestKind.MAIN.is_background


# --- handlers ----------------------------------------------------------------------------


async def test_queue_then_handler_then_default(api: MockAnthropicAPI) -> None:
    prompts: list[str | None] = []

    def handler(request: RecordedRequest) -> MessageReply | None:
        prompts.append(request.prompt)
        return text_reply("from the handler") if request.prompt == "use handler" else None

    api.handler = handler
    api.enqueue(text_reply("from the queue"))
    answers = []
    with trio.fail_after(5):
        async with _client(api) as client:
            for text in ("first", "use handler", "plain"):
                content: list[anthropic.types.MessageParam] = [{"role": "user", "content": text}]
                reply = await client.messages.create(model="m", max_tokens=9, messages=content)
                answers.append(reply.content[0].to_dict()["text"])
    assert answers == ["from the queue", "from the handler", "echo: plain"]
    assert prompts == ["use handler", "plain"]


async def test_handler_that_raises_gives_a_500(
    api: MockAnthropicAPI, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(request: RecordedRequest) -> None:
        raise RuntimeError("handler bug")

    api.handler = handler
    with trio.fail_after(5):
        async with _client(api) as client:
            with pytest.raises(anthropic.InternalServerError, match="handler bug"):
                await client.messages.create(model="m", max_tokens=9, messages=USER_HI)
    assert any(record.levelno == logging.ERROR and record.exc_info for record in caplog.records)


async def test_tool_round_trip_with_magic_words(api: MockAnthropicAPI) -> None:
    api.handler = magic_word_handler
    history: list[anthropic.types.MessageParam] = [{"role": "user", "content": "CALL_BASH echo hi"}]
    with trio.fail_after(5):
        async with _client(api) as client:
            async with client.messages.stream(model="m", max_tokens=9, messages=history) as s:
                call = await s.get_final_message()
            intro, tool = call.content
            assert tool.type == "tool_use"
            history += [
                {"role": "assistant", "content": call.content},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": tool.id, "content": "hi"}],
                },
            ]
            answer = await client.messages.create(model="m", max_tokens=9, messages=history)
    assert intro.to_dict() == {"type": "text", "text": "I will call Bash."}
    assert (tool.name, tool.input) == (
        "Bash",
        {"command": "echo hi", "description": "mock bash call"},
    )
    assert call.stop_reason == "tool_use"
    assert answer.content[0].to_dict() == {"type": "text", "text": "tool said: hi"}
    assert api.main_requests[1].prompt is None
    assert api.main_requests[1].tool_results[0]["content"] == "hi"


def _magic(prompt: str, *, stream: bool = True) -> MessageReply | ErrorReply | None:
    return magic_word_handler(
        _recorded(_cli_body(_user(REMINDER, prompt), SYSTEM_ENTRY, stream=stream))
    )


@pytest.mark.parametrize("status", [401, 429, 500, 529])
def test_magic_error_words(status: int) -> None:
    reply = _magic(f"ERR{status} test")
    assert isinstance(reply, ErrorReply)
    assert (reply.status, reply.in_stream) == (status, False)
    assert (reply.retry_after is not None) == (status == 429)


def test_magic_words_build_their_replies() -> None:
    bash = _magic("CALL_BASH python3 -c 'print(1)'\nignored line")
    assert isinstance(bash, MessageReply)
    assert bash.stop_reason == "tool_use"
    assert isinstance(bash.content[1], ReplyToolUse)
    assert bash.content[1].input == {
        "command": "python3 -c 'print(1)'",
        "description": "mock bash call",
    }
    read = _magic("CALL_READ a.txt")
    assert isinstance(read, MessageReply)
    assert isinstance(read.content[1], ReplyToolUse)
    assert attrs.evolve(read.content[1], id="x") == ReplyToolUse(
        "Read", input={"file_path": "a.txt"}, id="x"
    )
    tool = _magic('CALL_TOOL mcp__echo__echo {"text": "hi mcp"}')
    assert isinstance(tool, MessageReply)
    assert isinstance(tool.content[1], ReplyToolUse)
    assert (tool.content[1].name, tool.content[1].input) == ("mcp__echo__echo", {"text": "hi mcp"})
    slow = _magic("SLOW4 go")
    assert isinstance(slow, MessageReply)
    assert slow.content == (ReplyText("w0 w1 w2 w3 w4 w5 w6 w7"),)
    assert math.isclose(slow.delay * 8, 4.0)
    cut = _magic("MAXTOK please")
    assert isinstance(cut, MessageReply)
    assert (cut.stop_reason, cut.content) == ("max_tokens", (ReplyText("this reply is cut"),))
    think = _magic("THINK about it")
    assert isinstance(think, MessageReply)
    assert isinstance(think.content[0], ReplyThinking)
    assert think.content[0].thinking == "Let me think about: THINK about it"
    assert think.content[1] == ReplyText("after thinking: THINK about it")
    streamed = _magic("ERRSTREAM")
    assert isinstance(streamed, ErrorReply)
    assert streamed.in_stream
    assert _magic("ERRSTREAM", stream=False) is None
    assert _magic("THINKING aloud, SLOWLY") is None
    assert _magic("just talk") is None
    assert _magic("ERR4011") is None


# --- the command line --------------------------------------------------------------------


async def _next_line(stream: trio.abc.ReceiveStream, buffer: bytearray) -> str:
    while b"\n" not in buffer:
        data = await stream.receive_some()
        assert data, f"stdout closed; got {bytes(buffer)!r}"
        buffer += data
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.decode()


async def test_command_line_serves_until_ctrl_c() -> None:
    command = [sys.executable, "-m", "claude_trio.testing", "mock-api", "--port", "0"]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(
                partial(
                    trio.run_process,
                    command,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    check=False,
                )
            )
            assert process.stdout is not None
            buffer = bytearray()
            base_url = await _next_line(process.stdout, buffer)
            async with anthropic.AsyncAnthropic(
                base_url=base_url, api_key=API_KEY, max_retries=0
            ) as client:
                prompt: list[anthropic.types.MessageParam] = [{"role": "user", "content": "MAXTOK"}]
                reply = await client.messages.create(model="m", max_tokens=9, messages=prompt)
            line = await _next_line(process.stdout, buffer)
            process.send_signal(signal.SIGINT)
            assert await process.wait() == 0
    assert base_url.startswith("http://127.0.0.1:")
    assert reply.stop_reason == "max_tokens"
    assert "main" in line
    assert "POST /v1/messages" in line
    assert "prompt='MAXTOK'" in line


def test_the_kit_imports_without_hypercorn_and_the_mock_says_what_it_needs() -> None:
    code = (
        "import sys; sys.modules['hypercorn'] = None\n"
        "import trio, claude_trio.testing as kit\n"
        "assert kit.echo_mcp_server()['type'] == 'stdio'\n"
        "async def main():\n"
        "    async with kit.open_mock_anthropic_api():\n"
        "        pass\n"
        "try:\n"
        "    trio.run(main)\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "pip install 'claude-trio[testing]'" in done.stdout
