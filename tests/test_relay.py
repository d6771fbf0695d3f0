"""The loopback relay (``partial_messages``): forwarding, partial events, rate limits.

The relay alone is driven with httpx as its client and the mock API as its upstream;
the conversations and the backend run the fake and the real CLI through it. What the
CLI's requests look like to the relay (which are a turn's) is in
``tests/samples/mock_requests_*.jsonl``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import tempfile
import tracemalloc
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import brotli
import httpx2 as httpx
import pytest
import trio
from backports import zstd

from claude_trio import (
    APIConnectionError,
    APIError,
    AssistantMessage,
    ClaudeCodeBackend,
    ConversationOptions,
    Event,
    RateLimitError,
    ResultMessage,
    StreamEvent,
    open_conversation,
    open_relay,
)
from claude_trio.testing import (
    MOCK_API_KEY,
    IsolatedConfig,
    MockAnthropicAPI,
    ReplyUsage,
    error_reply,
    isolated_config,
    text_reply,
    tool_use_reply,
)
from claude_trio.testing._replies import encode_stream

from .helpers import TURN, backend_options, message_texts, partial_texts

SAMPLES = Path(__file__).parent / "samples"

#: The turn request's betas, as the CLI sends them (a side request lacks the first).
BETAS = "claude-code-20250219,interleaved-thinking-2025-05-14"


#: A tool, as the CLI lists its own: a turn's request has tools, a title request none.
TOOLS = [{"name": "Bash", "description": "Run a command", "input_schema": {"type": "object"}}]


def _body(prompt: str, *, stream: bool = True, tools: bool = True) -> bytes:
    content = [{"type": "text", "text": "<system-reminder>x</system-reminder>"}]
    return json.dumps(
        {
            "model": "claude-mock",
            "max_tokens": 1000,
            "stream": stream,
            "tools": TOOLS if tools else [],
            "messages": [{"role": "user", "content": [*content, {"type": "text", "text": prompt}]}],
        },
        separators=(",", ":"),
    ).encode()


def _headers(**extra: str) -> list[tuple[str, str]]:
    return [
        ("x-api-key", MOCK_API_KEY),
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", BETAS),
        ("content-type", "application/json"),
        ("X-Claude-Code-Session-Id", "6f1c1c64-52a4-4a9e-8d55-0d7c8d1c2b7e"),
        *extra.items(),
    ]


class _Sink:
    """Collects what a route reports."""

    def __init__(self) -> None:
        self.events: list[tuple[dict[str, Any], str | None]] = []
        self.limits: list[Any] = []
        self.failures: list[APIConnectionError] = []
        self.requests: list[int] = []

    async def partial_event(
        self, event: dict[str, Any], parent_tool_use_id: str | None, request_id: int
    ) -> None:
        self.events.append((event, parent_tool_use_id))
        self.requests.append(request_id)

    def rate_limits(self, limits: Any) -> None:
        self.limits.append(limits)

    async def upstream_failed(self, error: APIConnectionError) -> None:
        self.failures.append(error)


def _text_of(events: Sequence[dict[str, Any]]) -> str:
    return "".join(
        event["delta"]["text"]
        for event in events
        if event["type"] == "content_block_delta" and event["delta"]["type"] == "text_delta"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- the relay alone ---------------------------------------------------------------------


async def test_a_request_reaches_the_upstream_byte_for_byte(mock_api: MockAnthropicAPI) -> None:
    body = _body("byte for byte é ✓")
    async with httpx.AsyncClient() as client:
        client.headers.clear()
        direct = await client.post(
            mock_api.base_url + "/v1/messages?beta=true", headers=_headers(), content=body
        )
        async with open_relay() as relay:
            with relay.route(upstream=mock_api.base_url, sink=_Sink()) as route:
                relayed = await client.post(
                    route.base_url + "/v1/messages?beta=true", headers=_headers(), content=body
                )
    first, second = mock_api.requests
    assert first.path == second.path == "/v1/messages?beta=true"
    assert first.raw_body == second.raw_body == body
    # The same headers in the same order; Host names the upstream both times.
    assert first.raw_headers == second.raw_headers
    assert (b"x-api-key", MOCK_API_KEY.encode()) in second.raw_headers
    assert relayed.status_code == direct.status_code == 200
    # The response comes back as the upstream sent it, its rate-limit headers included.
    for name in ("content-type", "request-id", "anthropic-ratelimit-requests-limit"):
        assert name in relayed.headers
    assert relayed.headers["content-type"] == direct.headers["content-type"]


async def test_a_turn_response_is_handed_out_as_stream_events_before_the_client_reads_it(
    mock_api: MockAnthropicAPI,
) -> None:
    mock_api.enqueue(text_reply("one two three four five six seven"))
    sink = _Sink()
    async with open_relay() as relay, httpx.AsyncClient() as client:
        with relay.route(upstream=mock_api.base_url, sink=sink) as route:
            response = await client.post(
                route.base_url + "/v1/messages", headers=_headers(), content=_body("hi")
            )
        stats = relay.statistics()
    events = [event for event, parent in sink.events]
    assert [parent for _, parent in sink.events] == [None] * len(events)
    assert events[0]["type"] == "message_start"
    assert events[-1]["type"] == "message_stop"
    assert _text_of(events) == "one two three four five six seven"
    assert sum(event["type"] == "content_block_delta" for event in events) > 1
    # The client got the very bytes the events came from.
    assert response.text.count("event: content_block_delta") == sum(
        event["type"] == "content_block_delta" for event in events
    )
    assert stats.turn_requests == 1
    assert stats.partial_events == len(events)
    assert sink.limits
    assert sink.limits[-1].status == 200


async def test_side_requests_are_forwarded_but_never_read(mock_api: MockAnthropicAPI) -> None:
    sink = _Sink()
    side_betas = [("anthropic-beta", "interleaved-thinking-2025-05-14")]
    async with open_relay() as relay, httpx.AsyncClient() as client:
        with relay.route(upstream=mock_api.base_url, sink=sink) as route:
            url = route.base_url + "/v1/messages"
            no_claude_code_beta = [h for h in _headers() if h[0] != "anthropic-beta"] + side_betas
            for headers, body in (
                (no_claude_code_beta, _body("a title, say")),
                (_headers(), _body("no tools", tools=False)),
                (_headers(), _body("not streamed", stream=False)),
                (_headers(), json.dumps({**json.loads(_body("probe")), "max_tokens": 1}).encode()),
            ):
                response = await client.post(url, headers=headers, content=body)
                assert response.status_code == 200
            head = await client.head(route.base_url + "/api/hello")
        stats = relay.statistics()
    assert head.status_code == 200
    assert sink.events == []
    assert stats.side_requests == 5
    assert stats.turn_requests == 0
    assert len(mock_api.requests) == 5


async def test_a_subagents_requests_are_tagged_with_the_tool_call_that_started_it(
    mock_api: MockAnthropicAPI,
) -> None:
    task_input = {"description": "look", "prompt": "Find the codeword in notes.txt"}
    mock_api.enqueue(
        tool_use_reply("Agent", input=task_input, text="Asking an agent."),
        text_reply("agent says hi"),
        text_reply("agent again"),
        text_reply("nobody's agent"),
    )
    sink = _Sink()
    async with open_relay() as relay, httpx.AsyncClient() as client:
        with relay.route(upstream=mock_api.base_url, sink=sink) as route:
            url = route.base_url + "/v1/messages"
            await client.post(url, headers=_headers(), content=_body("main thread"))
            main = list(sink.events)
            # The sub-agent's requests (tool results in later ones) open with its prompt.
            agent = _headers(**{"x-claude-code-agent-id": "afc8932fd0759d4a"})
            for _ in range(2):
                await client.post(url, headers=agent, content=_body(task_input["prompt"]))
            tagged = sink.events[len(main) :]
            stranger = _headers(**{"x-claude-code-agent-id": "0123456789abcdef"})
            await client.post(url, headers=stranger, content=_body("an unknown agent"))
            untagged = sink.events[len(main) + len(tagged) :]
    tool_use = next(
        event["content_block"]
        for event, _ in main
        if event["type"] == "content_block_start" and event["content_block"]["type"] == "tool_use"
    )
    assert {parent for _, parent in main} == {None}
    assert {parent for _, parent in tagged} == {tool_use["id"]}
    # Each response's events share one request id, new for each response.
    firsts = [
        sink.requests[i] for i, (e, _) in enumerate(sink.events) if e["type"] == "message_start"
    ]
    assert firsts == sorted(set(firsts))
    assert len(firsts) == 4
    assert sorted(set(sink.requests)) == firsts
    assert _text_of([event for event, _ in tagged]) == "agent says hiagent again"
    # An agent tied to no call still streams, with no parent named.
    assert {parent for _, parent in untagged} == {None}
    assert _text_of([event for event, _ in untagged]) == "nobody's agent"


async def test_an_unreachable_upstream_is_answered_502_and_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sink = _Sink()
    # A password in the URL is never shown either.
    port = _free_port()
    upstream = f"http://user:hunter2secret@127.0.0.1:{port}/prefix"
    async with open_relay() as relay, httpx.AsyncClient() as client:
        with relay.route(upstream=upstream, sink=sink) as route:
            with trio.fail_after(5):
                response = await client.post(
                    route.base_url + "/v1/messages", headers=_headers(), content=_body("x")
                )
        stats = relay.statistics()
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "api_error"
    (failure,) = sink.failures
    assert f"http://127.0.0.1:{port}/prefix" in str(failure)
    assert stats.upstream_errors == 1
    for secret in (MOCK_API_KEY, "hunter2secret"):
        assert secret not in caplog.text
        assert secret not in str(failure)


async def test_unknown_routes_and_oversized_bodies_are_refused_without_going_upstream(
    mock_api: MockAnthropicAPI,
) -> None:
    async with open_relay(max_request_bytes=1000) as relay, httpx.AsyncClient() as client:
        with relay.route(upstream=mock_api.base_url, sink=_Sink()) as route:
            too_big = await client.post(
                route.base_url + "/v1/messages", headers=_headers(), content=_body("x" * 2000)
            )
            just_fits = await client.post(
                route.base_url + "/v1/messages", headers=_headers(), content=_body("x" * 100)
            )
        unknown = await client.post(
            relay.base_url + "/r/not-a-route/v1/messages", headers=_headers(), content=b"{}"
        )
        gone = await client.post(
            route.base_url + "/v1/messages", headers=_headers(), content=_body("closed")
        )
        stats = relay.statistics()
    assert too_big.status_code == 413
    assert just_fits.status_code == 200
    assert unknown.status_code == gone.status_code == 404
    assert len(mock_api.requests) == 1
    assert stats.rejected == 3


async def test_a_client_that_hangs_up_mid_stream_cuts_the_upstream_off(
    mock_api: MockAnthropicAPI,
) -> None:
    mock_api.enqueue(text_reply(" ".join(f"w{i}" for i in range(40)), seconds=20))
    sink = _Sink()
    async with open_relay() as relay:
        with relay.route(upstream=mock_api.base_url, sink=sink) as route:
            port = int(relay.base_url.rsplit(":", 1)[1])
            body = _body("x")
            head = "".join(f"{name}: {value}\r\n" for name, value in _headers())
            request = (
                f"POST {route.base_url.split(str(port), 1)[1]}/v1/messages HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\n{head}content-length: {len(body)}\r\n\r\n"
            ).encode() + body
            with trio.fail_after(10):
                client = await trio.open_tcp_stream("127.0.0.1", port)
                async with client:
                    await client.send_all(request)
                    while len(sink.events) <= 3:
                        assert await client.receive_some(65536)
                with trio.fail_after(5):
                    await mock_api.wait_idle()
                    while relay.statistics().in_flight:  # noqa: ASYNC110
                        await trio.sleep(0.01)
    assert mock_api.statistics().responses_disconnected == 1
    assert len(sink.events) < 20


async def test_the_relay_stops_with_its_block(mock_api: MockAnthropicAPI) -> None:
    async with open_relay() as relay:
        port = int(relay.base_url.rsplit(":", 1)[1])
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", port), timeout=2),
    ):
        pass


async def test_bad_upstreams_and_bounds_are_refused() -> None:
    async with open_relay() as relay:
        for upstream in ("ftp://example.com", "not a url", "http://"):
            with pytest.raises(ValueError, match="upstream"):
                relay.route(upstream=upstream, sink=_Sink())
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="connect_timeout"):
            async with open_relay(connect_timeout=bad):
                pass


# --- through the CLI ---------------------------------------------------------------------


async def test_deltas_stream_ahead_of_the_whole_message(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    options = ConversationOptions(
        cwd=isolated.cwd, env=isolated.env, cli_path=str(cli), partial_messages=True
    )
    seen: list[tuple[float, Event]] = []
    async with open_conversation(options) as conversation:
        started = trio.current_time()
        with trio.fail_after(TURN):
            async for event in conversation.turn("SLOW4 please"):
                seen.append((trio.current_time() - started, event))
    events = [event for _, event in seen]
    first_delta = next(
        t
        for t, e in seen
        if isinstance(e, StreamEvent) and e.event["type"] == "content_block_delta"
    )
    whole = next(t for t, e in seen if isinstance(e, AssistantMessage))
    print(f"\nfirst delta at {first_delta:.2f} s, AssistantMessage at {whole:.2f} s")
    assert whole - first_delta > 2.0  # of a 4 s stream: the first word comes at 0.5 s
    assert isinstance(events[-1], ResultMessage)
    assert partial_texts(events) == message_texts(events) == [" ".join(f"w{i}" for i in range(8))]
    kinds = [e.event["type"] for e in events if isinstance(e, StreamEvent)]
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    assert {e.session_id for e in events if isinstance(e, StreamEvent)} == {conversation.session_id}
    assert len({e.uuid for e in events if isinstance(e, StreamEvent)}) == len(kinds)
    # The mock saw the CLI's own credentials and betas, not the relay's.
    (request,) = mock_api.main_requests
    assert request.headers["x-api-key"] == MOCK_API_KEY
    assert "claude-code-20250219" in request.headers["anthropic-beta"]
    assert "httpx" not in request.headers.get("user-agent", "")


async def test_each_turn_gets_its_own_deltas_tool_calls_included(
    cli: Path, isolated: IsolatedConfig
) -> None:
    options = backend_options(cli, isolated, partial_messages=True)
    async with ClaudeCodeBackend(options) as backend:
        history: list[dict[str, Any]] = []
        for prompt in ("first turn", "CALL_BASH echo relayed", "third turn"):
            history.append({"role": "user", "content": prompt})
            events = []
            with trio.fail_after(TURN):
                async for event in backend.complete(history):
                    events.append(event)
            texts = message_texts(events)
            assert partial_texts(events) == texts
            history.append({"role": "assistant", "content": "\n".join(texts)})
            if prompt.startswith("CALL_BASH"):
                assert texts == ["I will call Bash.", "tool said: relayed"]
            else:
                assert texts == [f"echo: {prompt}"]
        stats = backend.relay_statistics()
        assert stats is not None
        assert stats.turn_requests == 4
        assert backend.rate_limits() is not None
        assert backend.rate_limits().status == 200  # type: ignore[union-attr]
    assert backend.statistics().reused == 2


async def test_without_the_option_no_relay_runs(cli: Path, isolated: IsolatedConfig) -> None:
    async with ClaudeCodeBackend(backend_options(cli, isolated)) as backend:
        events = []
        with trio.fail_after(TURN):
            async for event in backend.complete([{"role": "user", "content": "hi"}]):
                events.append(event)
        assert not any(isinstance(e, StreamEvent) for e in events)
        assert backend.relay_statistics() is None
        assert backend.rate_limits() is None


@pytest.mark.parametrize("retries", ["0", "2"])
async def test_a_429_gives_the_exact_retry_after_and_reset(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI, retries: str
) -> None:
    # With no retries the CLI records the 429; with retries it announces a wait longer
    # than max_retry_wait on screen, and the library ends the turn. Both get the API's.
    reset = "2026-12-01T09:30:00Z"
    limited = error_reply(
        429,
        retry_after=None,
        headers=(
            ("retry-after", "42.5"),
            ("anthropic-ratelimit-requests-remaining", "0"),
            ("anthropic-ratelimit-requests-reset", reset),
            ("anthropic-ratelimit-tokens-remaining", "0"),
            ("anthropic-ratelimit-tokens-reset", reset),
        ),
    )
    mock_api.enqueue(limited, limited, limited)
    env = {**isolated.env, "CLAUDE_CODE_MAX_RETRIES": retries}
    options = backend_options(cli, isolated, env=env, partial_messages=True)
    async with ClaudeCodeBackend(options) as backend:
        started = trio.current_time()
        with trio.fail_after(TURN), pytest.raises(RateLimitError) as caught:
            async for _ in backend.complete([{"role": "user", "content": "hi"}]):
                pass
        elapsed = trio.current_time() - started
        limits = backend.rate_limits()
    assert elapsed < 20  # the 42.5 s wait was not sat through
    assert caught.value.retry_after == 42.5
    assert caught.value.reset_at == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert limits is not None
    assert limits.status == 429
    assert limits.retry_after == 42.5


async def test_an_unreachable_api_fails_the_turn_quickly(
    cli: Path, tmp_path: Path, project_dir: Path, leak_mark: str
) -> None:
    from .conftest import LEAK_MARK

    config = isolated_config(
        tmp_path,
        base_url=f"http://127.0.0.1:{_free_port()}",
        cwd=project_dir,
        extra_env={LEAK_MARK: leak_mark},
    )
    async with ClaudeCodeBackend(backend_options(cli, config, partial_messages=True)) as backend:
        started = trio.current_time()
        with trio.fail_after(TURN), pytest.raises(APIConnectionError):
            async for _ in backend.complete([{"role": "user", "content": "hi"}]):
                pass
        elapsed = trio.current_time() - started
        print(f"\nAPIConnectionError after {elapsed:.2f} s")
        assert elapsed < 5


async def test_nothing_the_relay_logs_holds_the_key(
    cli: Path, isolated: IsolatedConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with ClaudeCodeBackend(backend_options(cli, isolated, partial_messages=True)) as backend:
        with trio.fail_after(TURN), pytest.raises(APIError):
            async for _ in backend.complete([{"role": "user", "content": "ERR500"}]):
                pass
        with trio.fail_after(TURN):
            async for _ in backend.complete([{"role": "user", "content": "fine"}]):
                pass
    assert MOCK_API_KEY not in caplog.text


async def test_the_relay_writes_no_file_and_logs_no_header(
    mock_api: MockAnthropicAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    temp = Path(tempfile.gettempdir())
    before = set(os.listdir(temp))
    mock_api.enqueue(error_reply(500))
    async with open_relay() as relay, httpx.AsyncClient() as client:
        with relay.route(upstream=mock_api.base_url, sink=_Sink()) as route:
            for _ in range(2):
                await client.post(route.base_url + "/v1/messages", headers=_headers(), content=b"{")
        dead = f"http://127.0.0.1:{_free_port()}"
        with relay.route(upstream=dead, sink=_Sink()) as route:
            await client.post(
                route.base_url + "/v1/messages", headers=_headers(), content=_body("")
            )
    # The relay did log (an unreachable upstream is a warning), and wrote no file.
    assert any(record.name == "claude_trio.relay" for record in caplog.records)
    assert MOCK_API_KEY not in caplog.text
    assert set(os.listdir(temp)) - before <= {tmp_path.parent.name, tmp_path.name}


def _recorded(name: str) -> list[tuple[list[tuple[str, str]], bytes, dict[str, Any]]]:
    """The requests of a sample the real CLI sent: headers to send again, body, record."""
    requests = []
    for line in (SAMPLES / name).read_text().splitlines():
        record = json.loads(line)
        if record["method"] != "POST":
            continue
        headers = [
            (key, value)
            for key, value in record["headers"].items()
            if key.lower() not in ("host", "content-length", "connection", "accept-encoding")
        ]
        requests.append((headers, json.dumps(record["body"]).encode(), record))
    return requests


async def test_the_real_clis_requests_are_told_apart(mock_api: MockAnthropicAPI) -> None:
    """Replays what the CLI 2.1.328 sent: a title request, turn requests, a sub-agent's."""
    sink = _Sink()
    async with open_relay() as relay, httpx.AsyncClient() as client:
        with relay.route(upstream=mock_api.base_url, sink=sink) as route:
            for headers, body, record in _recorded("mock_requests_with_nonessential_traffic.jsonl"):
                before = len(sink.events)
                await client.post(route.base_url + record["path"], headers=headers, content=body)
                streamed = len(sink.events) - before
                assert (streamed > 0) is (record["kind"] == "main"), record["body"]["model"]
            agent_sample = _recorded("mock_requests_subagent.jsonl")
            prompt = agent_sample[1][2]["body"]["messages"][0]["content"][1]["text"]
            mock_api.enqueue(tool_use_reply("Agent", input={"description": "d", "prompt": prompt}))
            parents = []
            for headers, body, record in agent_sample:
                before = len(sink.events)
                await client.post(route.base_url + record["path"], headers=headers, content=body)
                parents.append({parent for _, parent in sink.events[before:]})
        stats = relay.statistics()
    tool_use_id = next(
        event["content_block"]["id"]
        for event, _ in sink.events
        if event["type"] == "content_block_start" and event["content_block"]["type"] == "tool_use"
    )
    assert parents == [{None}, {tool_use_id}, {tool_use_id}, {None}]
    assert stats.side_requests == 2


async def test_malformed_http_is_answered_400() -> None:
    async with open_relay() as relay:
        port = int(relay.base_url.rsplit(":", 1)[1])
        with trio.fail_after(5):
            client = await trio.open_tcp_stream("127.0.0.1", port)
            async with client:
                await client.send_all(b"NOT HTTP AT ALL\r\n\r\n")
                answer = b""
                while chunk := await client.receive_some(65536):
                    answer += chunk
        assert relay.statistics().rejected == 1
    assert answer.startswith(b"HTTP/1.1 400 ")


async def test_without_the_relays_packages_the_option_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, isolated: IsolatedConfig, fake_cli: Path
) -> None:
    monkeypatch.setitem(sys.modules, "httpx2", None)
    with pytest.raises(ImportError, match=r"claude-trio\[relay\]"):
        async with ClaudeCodeBackend(backend_options(fake_cli, isolated, partial_messages=True)):
            pass


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
async def test_a_compressed_stream_is_forwarded_as_it_came_and_read_on_the_side(
    encoding: str,
) -> None:
    text = " ".join(f"word{i}" for i in range(300))
    sse = b"".join(
        data
        for _, data in encode_stream(
            text_reply(text), message_id="msg_z", model="m", usage=ReplyUsage(1, 1)
        )
    )
    compressors: dict[str, Any] = {
        "gzip": lambda: zlib.compressobj(wbits=31),
        "br": lambda: brotli.Compressor(),
        "zstd": lambda: zstd.ZstdCompressor(),
    }
    compressor = compressors[encoding]()
    flush = compressor.flush if encoding != "br" else compressor.finish
    feed = compressor.process if encoding == "br" else compressor.compress
    pieces = [feed(sse[i : i + 700]) for i in range(0, len(sse), 700)]
    pieces.append(flush())
    sent = b"".join(pieces)

    async def upstream(stream: trio.SocketStream) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += await stream.receive_some(65536)
        head, _, body = request.partition(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":")[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        while len(body) < length:
            body += await stream.receive_some(65536)
        await stream.send_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            + f"content-encoding: {encoding}\r\ntransfer-encoding: chunked\r\n\r\n".encode()
        )
        for piece in pieces:
            if piece:
                await stream.send_all(b"%x\r\n%s\r\n" % (len(piece), piece))
                await trio.sleep(0.001)
        await stream.send_all(b"0\r\n\r\n")

    sink = _Sink()
    async with trio.open_nursery() as nursery:
        (listener,) = await nursery.start(partial(trio.serve_tcp, host="127.0.0.1"), upstream, 0)
        port = listener.socket.getsockname()[1]
        async with open_relay() as relay:
            with relay.route(upstream=f"http://127.0.0.1:{port}", sink=sink) as route:
                client = await trio.open_tcp_stream(
                    "127.0.0.1", int(relay.base_url.rsplit(":", 1)[1])
                )
                async with client:
                    body = _body("z")
                    target = route.base_url.split(relay.base_url, 1)[1] + "/v1/messages"
                    head = "".join(f"{name}: {value}\r\n" for name, value in _headers())
                    await client.send_all(
                        f"POST {target} HTTP/1.1\r\nHost: x\r\n{head}"
                        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
                        + body
                    )
                    answer = b""
                    while chunk := await client.receive_some(65536):
                        answer += chunk
        nursery.cancel_scope.cancel()
    response_head, _, chunked = answer.partition(b"\r\n\r\n")
    assert f"content-encoding: {encoding}".encode() in response_head.lower()
    received = b""
    while chunked:
        size, _, rest = chunked.partition(b"\r\n")
        received += rest[: int(size, 16)]
        chunked = rest[int(size, 16) + 2 :]
    assert received == sent  # forwarded compressed, byte for byte
    assert _text_of([event for event, _ in sink.events]) == text


def test_a_compressed_chunk_is_read_in_bounded_pieces() -> None:
    from claude_trio._relay import _StreamReader

    event = b'event: message_stop\ndata: {"type": "message_stop"}\n\n'
    bomb = zlib.compressobj(wbits=31)
    body = bomb.compress(event * 3 + b"\0" * (32 << 20)) + bomb.flush()
    reader = _StreamReader.open("gzip")
    assert reader is not None
    tracemalloc.start()
    try:
        events = list(reader.feed(body))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The run of NULs outgrows the event bound: decoding stops there, 32 MiB never held.
    assert events == [{"type": "message_stop"}] * 3
    assert reader.sse.overflowed
    assert peak < 8 << 20, f"{peak / 2**20:.1f} MiB held for a {len(body)} byte chunk"
