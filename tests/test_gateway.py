"""The gateway end to end: the official SDKs and curl, the gateway, the CLI, the mock API."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import trio

from claude_trio import BackendStatistics
from claude_trio._gateway import Gateway, GatewayOptions, open_gateway
from claude_trio.testing import IsolatedConfig, MockAnthropicAPI, error_reply

from .helpers import TURN, backend_options, pids_of_sessions, session_header

TOKEN_A = "token-alice-0123456789"
TOKEN_B = "token-bob-9876543210"
TOKENS = {TOKEN_A: "alice", TOKEN_B: "bob"}


@asynccontextmanager
async def serving(
    cli: Path, config: IsolatedConfig, *, gateway: dict[str, Any] | None = None, **backend: Any
) -> AsyncIterator[Gateway]:
    options = GatewayOptions(tokens=TOKENS, **(gateway or {}))
    async with open_gateway(backend_options(cli, config, **backend), options) as running:
        yield running


def client(gateway: Gateway, token: str = TOKEN_A) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url=gateway.base_url, api_key=token, max_retries=0, timeout=TURN
    )


def stats(gateway: Gateway) -> BackendStatistics:
    return gateway.backend.statistics()


async def create(gateway: Gateway, messages: list[dict[str, Any]], **extra: Any) -> Any:
    async with client(gateway, extra.pop("token", TOKEN_A)) as sdk:
        return await sdk.messages.create(
            model=extra.pop("model", "sonnet"),
            max_tokens=1024,
            messages=messages,  # type: ignore[arg-type]
            **extra,
        )


async def wait_until(condition: Callable[[], object], seconds: float) -> None:
    """Poll *condition* (a statistic: nothing to wait on) until it holds, within *seconds*."""
    with trio.fail_after(seconds):
        while not condition():  # noqa: ASYNC110
            await trio.sleep(0.05)


def texts(message: Any) -> list[str]:
    return [block.text for block in message.content if block.type == "text"]


# --- text, streaming and not, async and sync ---------------------------------------------------


async def test_text_through_the_async_sdk(cli: Path, isolated: IsolatedConfig) -> None:
    async with serving(cli, isolated) as gateway, client(gateway) as sdk:
        raw = await sdk.messages.with_raw_response.create(
            model="sonnet",
            max_tokens=1024,
            extra_body={"temperature": 0.5},
            messages=[{"role": "user", "content": "hello there"}],
        )
        message = await raw.parse()
        assert texts(message) == ["echo: hello there"]
        assert message.stop_reason == "end_turn"
        assert message.usage.output_tokens > 0
        assert message.id.startswith("msg_")
        assert raw.headers["claude-trio-ignored"] == "max_tokens, temperature"
        assert raw.headers["request-id"].startswith("req_")


async def test_streaming_through_the_async_sdk_in_the_api_order(
    cli: Path, isolated: IsolatedConfig
) -> None:
    async with serving(cli, isolated) as gateway, client(gateway) as sdk:
        kinds = []
        async with sdk.messages.stream(
            model="sonnet", max_tokens=1024, messages=[{"role": "user", "content": "stream me"}]
        ) as stream:
            async for event in stream:
                kinds.append(event.type)
            final = await stream.get_final_message()
    assert texts(final) == ["echo: stream me"]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0
    raw = [k for k in kinds if k not in ("text", "thinking", "input_json", "signature")]
    assert raw[0] == "message_start"
    assert raw[-2:] == ["message_delta", "message_stop"]
    assert raw[1:-2] == ["content_block_start", "content_block_delta", "content_block_stop"]


async def test_the_sync_sdk_streaming_and_not(cli: Path, isolated: IsolatedConfig) -> None:
    async with serving(cli, isolated) as gateway:

        def run() -> tuple[list[str], str]:
            with anthropic.Anthropic(
                base_url=gateway.base_url, api_key=TOKEN_A, max_retries=0, timeout=TURN
            ) as sdk:
                first = sdk.messages.create(
                    model="sonnet", max_tokens=100, messages=[{"role": "user", "content": "one"}]
                )
                with sdk.messages.stream(
                    model="sonnet", max_tokens=100, messages=[{"role": "user", "content": "two"}]
                ) as stream:
                    second = stream.get_final_text()
            return texts(first), second

        first, second = await trio.to_thread.run_sync(run)
    assert first == ["echo: one"]
    assert second == "echo: two"


# --- multi-turn, tools --------------------------------------------------------------------------


async def test_a_follow_up_reuses_the_process(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with serving(cli, isolated) as gateway:
        history: list[dict[str, Any]] = [{"role": "user", "content": "first"}]
        for prompt in ("second", "third"):
            reply = await create(gateway, history)
            history += [
                {"role": "assistant", "content": [b.model_dump() for b in reply.content]},
                {"role": "user", "content": prompt},
            ]
        last = await create(gateway, history)
        assert texts(last) == ["echo: third"]
        assert (stats(gateway).spawned, stats(gateway).reused) == (1, 2)
    assert len({session_header(r) for r in mock_api.main_requests}) == 1


async def test_a_cli_tool_call_shows_as_server_tool_use_and_continues(
    cli: Path, isolated: IsolatedConfig
) -> None:
    prompt = "CALL_BASH echo gateway-tool"
    async with serving(cli, isolated) as gateway:
        reply = await create(gateway, [{"role": "user", "content": prompt}])
        kinds = [block.type for block in reply.content]
        assert kinds == ["text", "server_tool_use", "mcp_tool_result", "text"]
        call, result = reply.content[1], reply.content[2]
        assert call.name == "Bash"
        assert call.input["command"] == "echo gateway-tool"
        dumped = result.model_dump()
        assert dumped["tool_use_id"] == call.id
        assert "gateway-tool" in dumped["content"][0]["text"]
        assert reply.content[3].text == "tool said: gateway-tool"
        assert reply.stop_reason == "end_turn"
        history: list[dict[str, Any]] = [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": [b.model_dump() for b in reply.content]},
            {"role": "user", "content": "and now?"},
        ]
        follow = await create(gateway, history)
        assert texts(follow) == ["echo: and now?"]
        assert (stats(gateway).spawned, stats(gateway).reused) == (1, 1)


async def test_a_streamed_tool_call_accumulates_in_the_sdk(
    fake_cli: Path, isolated: IsolatedConfig
) -> None:
    messages = [{"role": "user", "content": "CALL_BASH echo streamed"}]
    async with (
        serving(fake_cli, isolated) as gateway,
        client(gateway) as sdk,
        sdk.messages.stream(model="sonnet", max_tokens=100, messages=messages) as stream,  # type: ignore[arg-type]
    ):
        final = await stream.get_final_message()
    call = final.content[1]
    assert call.type == "server_tool_use"
    assert call.input["command"] == "echo streamed"


async def test_hiding_the_cli_tools(fake_cli: Path, isolated: IsolatedConfig) -> None:
    async with serving(fake_cli, isolated) as gateway:
        reply = await create(
            gateway,
            [{"role": "user", "content": "CALL_BASH echo hidden"}],
            extra_headers={"claude-trio-cli-tools": "hide"},
        )
        assert [block.type for block in reply.content] == ["text", "text"]
    async with serving(fake_cli, isolated, gateway={"show_cli_tools": False}) as gateway:
        reply = await create(gateway, [{"role": "user", "content": "CALL_BASH echo hidden"}])
        assert [block.type for block in reply.content] == ["text", "text"]


# --- tokens and tenants ------------------------------------------------------------------------


async def test_no_token_or_a_wrong_one_is_401(fake_cli: Path, isolated: IsolatedConfig) -> None:
    async with serving(fake_cli, isolated) as gateway:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await create(gateway, [{"role": "user", "content": "hi"}], token="token-mallory-000000")
        assert caught.value.status_code == 401
        assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
        status, _, data = await raw_post(gateway, "/v1/messages", _request(), {"x-api-key": ""})
        assert status == 401
        assert "needs a token" in json.loads(data)["error"]["message"]
        assert stats(gateway).spawned == 0
        async with openai.AsyncOpenAI(
            base_url=gateway.base_url + "/v1", api_key="token-mallory-000000", max_retries=0
        ) as oai:
            with pytest.raises(openai.AuthenticationError):
                await oai.chat.completions.create(
                    model="sonnet", messages=[{"role": "user", "content": "hi"}]
                )


async def test_two_tokens_with_the_same_history_never_share_a_process(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with serving(cli, isolated) as gateway:
        replies = {}
        for token in (TOKEN_A, TOKEN_B):
            replies[token] = await create(gateway, [{"role": "user", "content": "hi"}], token=token)
        for token in (TOKEN_A, TOKEN_B):
            history: list[dict[str, Any]] = [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [b.model_dump() for b in replies[token].content]},
                {"role": "user", "content": "again"},
            ]
            await create(gateway, history, token=token)
        assert (stats(gateway).spawned, stats(gateway).reused) == (2, 2)
    sessions = [session_header(request) for request in mock_api.main_requests]
    assert len(sessions) == 4
    assert sessions[0] != sessions[1]
    assert sessions[2:] == sessions[:2]


# --- errors ------------------------------------------------------------------------------------


def retrying(config: IsolatedConfig) -> dict[str, Any]:
    """Backend overrides that let the CLI retry (it announces a retry-after only then)."""
    env = {k: v for k, v in config.env.items() if k != "CLAUDE_CODE_MAX_RETRIES"}
    return {"env": env, "max_retries": 2}


async def test_a_429_is_passed_through_with_retry_after(
    cli: Path, isolated: IsolatedConfig
) -> None:
    async with serving(cli, isolated, **retrying(isolated)) as gateway:
        with pytest.raises(anthropic.RateLimitError) as caught:
            await create(gateway, [{"role": "user", "content": "ERR429 please"}])
        retry_after = int(caught.value.response.headers["retry-after"])
        assert 30 <= retry_after <= 60  # the mock asks 30 s; the CLI adds its jitter
        assert caught.value.body["type"] == "error"  # type: ignore[index]
        with pytest.raises(anthropic.RateLimitError) as caught:
            async with (
                client(gateway) as sdk,
                sdk.messages.stream(
                    model="sonnet", max_tokens=10, messages=[{"role": "user", "content": "ERR429"}]
                ) as stream,
            ):
                await stream.get_final_message()
        assert int(caught.value.response.headers["retry-after"]) >= 30


@pytest.mark.parametrize(
    ("word", "error", "status"),
    [
        ("ERR529", anthropic.InternalServerError, 529),
        ("ERR500", anthropic.InternalServerError, 500),
        # The CLI's own login failed: the gateway's fault, not the client's token.
        ("ERR401", anthropic.InternalServerError, 500),
    ],
)
async def test_api_errors_keep_their_status(
    fake_cli: Path, isolated: IsolatedConfig, word: str, error: type[Exception], status: int
) -> None:
    async with serving(fake_cli, isolated) as gateway:
        with pytest.raises(error) as caught:
            await create(gateway, [{"role": "user", "content": word}])
        assert caught.value.status_code == status  # type: ignore[attr-defined]


async def test_a_disconnect_mid_stream_discards_the_process(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    options = {"first_event_wait": 0.2, "ping_interval": 0.2}
    async with serving(cli, isolated, gateway=options) as gateway, client(gateway) as sdk:
        async with sdk.messages.stream(
            model="sonnet", max_tokens=10, messages=[{"role": "user", "content": "SLOW20"}]
        ) as stream:
            first = await stream.__anext__()
            assert first.type == "message_start"
            await wait_until(lambda: mock_api.main_requests, TURN)
            sessions = {session_header(mock_api.main_requests[0])}
            assert pids_of_sessions(sessions)
        await wait_until(lambda: not (stats(gateway).live or gateway.statistics().active), 15)
        assert stats(gateway).discarded == 1
        assert gateway.statistics().disconnected == 1
        assert not pids_of_sessions(sessions)


# --- OpenAI -------------------------------------------------------------------------------------


# The openai SDK stops reading at `data: [DONE]` and leaves its own async generators to the
# garbage collector, which trio reports as a ResourceWarning; the response itself is closed.
@pytest.mark.filterwarnings("ignore:Async generator:ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_openai_sdk_streaming_and_not(cli: Path, isolated: IsolatedConfig) -> None:
    async with (
        serving(cli, isolated) as gateway,
        openai.AsyncOpenAI(
            base_url=gateway.base_url + "/v1", api_key=TOKEN_B, max_retries=0, timeout=TURN
        ) as oai,
    ):
        completion = await oai.chat.completions.create(
            model="sonnet",
            messages=[
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "openai says hi"},
            ],
        )
        assert completion.choices[0].message.content == "echo: openai says hi"
        assert completion.choices[0].finish_reason == "stop"
        assert completion.usage is not None
        assert completion.usage.completion_tokens > 0
        history = [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "openai says hi"},
            {"role": "assistant", "content": completion.choices[0].message.content},
            {"role": "user", "content": "and streams"},
        ]
        pieces, usage = [], None
        async with await oai.chat.completions.create(  # type: ignore[call-overload]
            model="sonnet",
            messages=history,
            stream=True,
            stream_options={"include_usage": True},
        ) as stream:
            async for chunk in stream:
                if chunk.choices:
                    pieces.append(chunk.choices[0].delta.content or "")
                if chunk.usage is not None:
                    usage = chunk.usage
        assert "".join(pieces) == "echo: and streams"
        assert usage is not None
        assert usage.completion_tokens > 0
        assert (stats(gateway).spawned, stats(gateway).reused) == (1, 1)
        models = await oai.models.list()
        assert "sonnet" in [model.id for model in models.data]


# --- token by token (partial_messages) ----------------------------------------------------------


async def test_partial_messages_stream_text_as_it_comes(
    cli: Path, isolated: IsolatedConfig
) -> None:
    """With the relay, a long answer reaches the SDK delta by delta, ahead of its end."""
    async with serving(cli, isolated, partial_messages=True) as gateway, client(gateway) as sdk:
        pieces: list[tuple[float, str]] = []
        async with sdk.messages.stream(
            model="sonnet", max_tokens=100, messages=[{"role": "user", "content": "SLOW3 now"}]
        ) as stream:
            async for event in stream:
                if event.type == "text":
                    pieces.append((trio.current_time(), event.text))
            final = await stream.get_final_message()
    assert texts(final) == ["w0 w1 w2 w3 w4 w5"]
    assert "".join(text for _, text in pieces) == "w0 w1 w2 w3 w4 w5"
    assert len(pieces) > 1
    assert pieces[-1][0] - pieces[0][0] > 1.5  # live: the words came 0.5 s apart


def _shape(message: Any) -> list[Any]:
    """A reply's blocks without their ids and signatures (each turn has its own)."""
    return [
        {
            k: v
            for k, v in block.model_dump(warnings=False).items()
            if k not in ("id", "tool_use_id", "signature")
        }
        for block in message.content
    ]


# See test_openai_sdk_streaming_and_not.
@pytest.mark.filterwarnings("ignore:Async generator:ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_partial_messages_give_the_same_replies(cli: Path, isolated: IsolatedConfig) -> None:
    """Thinking and a tool loop, streamed through the relay, rebuild the whole reply; the
    OpenAI route streams the text in pieces too."""
    async with serving(cli, isolated, partial_messages=True) as gateway, client(gateway) as sdk:
        for prompt in ("THINK it over", "CALL_BASH echo relayed"):
            messages: Any = [{"role": "user", "content": prompt}]
            whole = await sdk.messages.create(model="sonnet", max_tokens=100, messages=messages)
            kinds = []
            async with sdk.messages.stream(
                model="sonnet", max_tokens=100, messages=messages
            ) as stream:
                async for event in stream:
                    kinds.append(event.type)
                final = await stream.get_final_message()
            assert _shape(final) == _shape(whole)
            assert kinds.count("text") > len(texts(final))  # more deltas than blocks
        async with openai.AsyncOpenAI(
            base_url=gateway.base_url + "/v1", api_key=TOKEN_A, max_retries=0, timeout=TURN
        ) as oai:
            chunks = []
            async with await oai.chat.completions.create(
                model="sonnet", messages=[{"role": "user", "content": "SLOW2 now"}], stream=True
            ) as chunk_stream:
                async for chunk in chunk_stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        chunks.append(chunk.choices[0].delta.content)
    assert "".join(chunks) == "w0 w1 w2 w3"
    assert len(chunks) > 1


# --- curl ---------------------------------------------------------------------------------------


async def test_curl_streams_server_sent_events(cli: Path, isolated: IsolatedConfig) -> None:
    curl = shutil.which("curl")
    assert curl is not None, "the gateway tests use curl"
    async with serving(cli, isolated) as gateway:
        body = {
            "model": "sonnet",
            "max_tokens": 50,
            "stream": True,
            "messages": [{"role": "user", "content": "curl here"}],
        }
        done = await trio.run_process(
            [
                curl, "-sN", "--max-time", str(TURN), gateway.base_url + "/v1/messages",
                "-H", f"x-api-key: {TOKEN_A}", "-H", "content-type: application/json",
                "-d", json.dumps(body),
            ],
            capture_stdout=True,
        )  # fmt: skip
    lines = done.stdout.decode().splitlines()
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert events[0] == "message_start"
    assert events[-2:] == ["message_delta", "message_stop"]
    data = [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    deltas = [d["delta"]["text"] for d in data if d["type"] == "content_block_delta"]
    assert "".join(deltas) == "echo: curl here"


# --- several clients ----------------------------------------------------------------------------


#: Concurrent clients in `test_concurrent_clients_on_their_own_histories` (20 in
#: ``nox -s stress``).
CLIENTS = int(os.environ.get("CLAUDE_TRIO_GATEWAY_CLIENTS", "5"))


async def test_concurrent_clients_on_their_own_histories(
    cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    answers: dict[int, list[str]] = {}

    async def talk(gateway: Gateway, index: int) -> None:
        history: list[dict[str, Any]] = [{"role": "user", "content": f"client {index} first"}]
        got = []
        for turn in range(2):
            reply = await create(gateway, history)
            got += texts(reply)
            history += [
                {"role": "assistant", "content": [b.model_dump() for b in reply.content]},
                {"role": "user", "content": f"client {index} turn {turn + 2}"},
            ]
        answers[index] = got

    async with serving(cli, isolated, max_live=CLIENTS) as gateway:
        async with trio.open_nursery() as nursery:
            for index in range(CLIENTS):
                nursery.start_soon(talk, gateway, index)
        assert (stats(gateway).spawned, stats(gateway).reused) == (CLIENTS, CLIENTS)
    for index in range(CLIENTS):
        assert answers[index] == [f"echo: client {index} first", f"echo: client {index} turn 2"]
    # No cross-talk: each process saw only its own client's prompts.
    by_session: dict[str, set[str]] = {}
    for request in mock_api.main_requests:
        prompt = request.prompt or ""
        by_session.setdefault(session_header(request), set()).add(prompt.split()[1])
    assert sorted(by_session.values(), key=sorted) == sorted(
        ({str(index)} for index in range(CLIENTS)), key=sorted
    )


# --- limits and refusals (the gateway's own logic: the fake CLI is enough) ---------------------


async def raw_post(
    gateway: Gateway, path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """POST with a bare HTTP/1.1 client, so that nothing is checked before the gateway."""
    host, port = gateway.base_url.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    wanted = {
        "host": f"{host}:{port}",
        "x-api-key": TOKEN_A,
        "content-type": "application/json",
        **(headers or {}),
    }
    head = f"POST {path} HTTP/1.1\r\ncontent-length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in wanted.items()) + "connection: close\r\n\r\n"
    async with stream:
        await stream.send_all(head.encode() + body)
        data = b""
        with trio.fail_after(TURN):
            while chunk := await stream.receive_some():
                data += chunk
    header_block, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = header_block.decode().split("\r\n")
    response_headers = {
        k.lower(): v.strip() for k, v in (line.split(":", 1) for line in header_lines)
    }
    if response_headers.get("transfer-encoding") == "chunked":
        rest = _unchunk(rest)
    return int(status_line.split()[1]), response_headers, rest


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


def _request(**fields: Any) -> bytes:
    body = {"model": "sonnet", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    return json.dumps({**body, **fields}).encode()


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "error_type"),
    [
        ("/v1/messages", b"{not json", {}, 400, "invalid_request_error"),
        ("/v1/messages", _request(tools=[{"name": "x"}]), {}, 400, "invalid_request_error"),
        ("/v1/messages", _request(stop_sequences=["x"]), {}, 400, "invalid_request_error"),
        ("/v1/messages", _request(unknown=1), {}, 400, "invalid_request_error"),
        ("/v1/messages", _request(messages=[{"role": "assistant", "content": "x"}]), {}, 400,
         "invalid_request_error"),
        ("/v1/messages", _request(), {"x-api-key": "nope-nope-nope"}, 401,
         "authentication_error"),
        ("/v1/messages", _request(), {"origin": "https://evil.example"}, 403, "permission_error"),
        ("/v1/messages", _request(), {"host": "rebind.example:80"}, 403, "permission_error"),
        ("/v1/nothing", _request(), {}, 404, "not_found_error"),
        ("/v1/messages/count_tokens", _request(), {}, 404, "not_found_error"),
        ("/v1/models", b"", {"anthropic-version": "2023-06-01"}, 405, "invalid_request_error"),
        ("/v1/messages", _request(messages=[{"role": "user", "content": "x" * 3000}]), {}, 413,
         "request_too_large"),
    ],
)  # fmt: skip
async def test_refusals_get_the_api_error_json(
    fake_cli: Path,
    isolated: IsolatedConfig,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    error_type: str,
) -> None:
    async with serving(fake_cli, isolated, gateway={"max_body_bytes": 2000}) as gateway:
        got, response_headers, data = await raw_post(gateway, path, body, headers)
        assert got == status, data
        error = json.loads(data)
        assert error["type"] == "error"
        assert error["error"]["type"] == error_type
        assert error["error"]["message"]
        assert error["request_id"] == response_headers["request-id"]
        assert stats(gateway).spawned == 0


async def test_openai_route_errors_are_openai_shaped(
    fake_cli: Path, isolated: IsolatedConfig
) -> None:
    async with serving(fake_cli, isolated) as gateway:
        tools = [{"type": "function", "function": {"name": "f"}}]
        body = json.dumps(
            {"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": tools}
        )
        status, _, data = await raw_post(gateway, "/v1/chat/completions", body.encode())
    assert status == 400
    error = json.loads(data)["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "tools"


async def test_too_many_messages_are_refused(fake_cli: Path, isolated: IsolatedConfig) -> None:
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}] * 3
    async with serving(fake_cli, isolated, gateway={"max_messages": 4}) as gateway:
        status, _, data = await raw_post(
            gateway,
            "/v1/messages",
            _request(messages=[*messages, {"role": "user", "content": "c"}]),
        )
    assert status == 400
    assert "more than this gateway takes (4)" in json.loads(data)["error"]["message"]


def test_a_public_bind_needs_a_token() -> None:
    with pytest.raises(ValueError, match="without a token"):
        GatewayOptions(host="0.0.0.0")
    with pytest.raises(ValueError, match="at least 8"):
        GatewayOptions(host="0.0.0.0", tokens={"short": "x"})
    assert GatewayOptions(host="0.0.0.0", tokens={TOKEN_A: "a"}).host == "0.0.0.0"
    assert GatewayOptions(host="::1").tokens == {}


async def test_a_full_pool_answers_429_with_retry_after(
    fake_cli: Path, isolated: IsolatedConfig
) -> None:
    async with serving(fake_cli, isolated, max_live=1, pool_timeout=0.5) as gateway:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(create, gateway, [{"role": "user", "content": "SLOW3"}])
            await wait_until(lambda: stats(gateway).busy, TURN)
            with pytest.raises(anthropic.RateLimitError) as caught:
                await create(gateway, [{"role": "user", "content": "another"}])
        assert caught.value.response.headers["retry-after"] == "5"
        assert "busy" in caught.value.message


async def test_pings_during_a_long_turn_and_an_error_event_after_the_start(
    fake_cli: Path, isolated: IsolatedConfig
) -> None:
    options = {"first_event_wait": 0.3, "ping_interval": 0.3}
    async with serving(fake_cli, isolated, gateway=options) as gateway:
        status, _, data = await raw_post(gateway, "/v1/messages", _request(stream=True, messages=[
            {"role": "user", "content": "SLOW2 then more"}]))  # fmt: skip
        assert status == 200
        kinds = [line[7:] for line in data.decode().splitlines() if line.startswith("event: ")]
        assert kinds[0] == "message_start"
        assert "ping" in kinds
        assert kinds[-1] == "message_stop"
    # A turn that fails after the stream committed ends with an `error` event.
    async with serving(fake_cli, isolated, gateway={"first_event_wait": 0.1}) as gateway:
        status, _, data = await raw_post(
            gateway,
            "/v1/messages",
            _request(stream=True, messages=[{"role": "user", "content": "ERR500"}]),
        )
    lines = data.decode().splitlines()
    assert status == 200
    kinds = [line[7:] for line in lines if line.startswith("event: ")]
    assert kinds[0] == "message_start"
    assert kinds[-1] == "error"
    last = [line for line in lines if line.startswith("data: ")][-1]
    assert json.loads(last[6:])["error"]["type"] == "api_error"


async def test_the_model_goes_to_the_cli_and_default_leaves_it_alone(
    fake_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with serving(fake_cli, isolated, model="claude-opus-4-8") as gateway:
        await create(gateway, [{"role": "user", "content": "one"}], model="claude-haiku-4-5")
        await create(gateway, [{"role": "user", "content": "two"}], model="default")
        assert stats(gateway).spawned == 2
    models = [request.body["model"] for request in mock_api.main_requests if request.body]
    assert models == ["claude-haiku-4-5", "claude-opus-4-8"]


async def test_models_for_both_sdks(fake_cli: Path, isolated: IsolatedConfig) -> None:
    async with serving(fake_cli, isolated) as gateway, client(gateway) as sdk:
        page = await sdk.models.list()
        ids = [model.id for model in page.data]
        assert ids[:4] == ["default", "opus", "sonnet", "haiku"]
        one = await sdk.models.retrieve("claude-sonnet-5-5")
        assert one.id == "claude-sonnet-5-5"


async def test_one_log_line_per_request(
    fake_cli: Path, isolated: IsolatedConfig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="claude_trio.gateway")
    async with serving(fake_cli, isolated) as gateway:
        await create(gateway, [{"role": "user", "content": "logged"}])
        with pytest.raises(anthropic.AuthenticationError):
            await create(gateway, [{"role": "user", "content": "x"}], token="token-mallory-000")
    lines = [r.getMessage() for r in caplog.records if r.name == "claude_trio.gateway"]
    assert len(lines) == 2
    assert lines[0].startswith("POST /v1/messages 200 ")
    assert "tenant=alice" in lines[0]
    assert "out=-" not in lines[0]
    assert lines[1].startswith("POST /v1/messages 401 ")
    assert TOKEN_A not in " ".join(lines)
    assert "token-mallory" not in caplog.text


async def test_stop_lets_a_turn_in_flight_finish(fake_cli: Path, isolated: IsolatedConfig) -> None:
    async with serving(fake_cli, isolated) as gateway:
        result: list[Any] = []

        async def slow() -> None:
            result.append(await create(gateway, [{"role": "user", "content": "SLOW1"}]))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow)
            await wait_until(lambda: stats(gateway).busy, TURN)
            gateway.stop()
        assert texts(result[0]) == ["w0 w1"]
        with pytest.raises(anthropic.APIConnectionError):
            await create(gateway, [{"role": "user", "content": "too late"}])


async def test_a_custom_429_retry_after_rounds_up(
    fake_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    mock_api.handler = lambda request: error_reply(429, retry_after=44.2)
    async with serving(fake_cli, isolated, **retrying(isolated)) as gateway:
        with pytest.raises(anthropic.RateLimitError) as caught:
            await create(gateway, [{"role": "user", "content": "limited"}])
    assert int(caught.value.response.headers["retry-after"]) >= math.ceil(44.2)


async def test_an_error_in_the_block_comes_out_as_itself(
    fake_cli: Path, isolated: IsolatedConfig
) -> None:
    with pytest.raises(KeyError, match="mine"):
        async with serving(fake_cli, isolated):
            raise KeyError("mine")


async def test_a_busy_port_raises_the_oserror(fake_cli: Path, isolated: IsolatedConfig) -> None:
    async with serving(fake_cli, isolated) as first:
        port = int(first.base_url.rsplit(":", 1)[1])
        with pytest.raises(OSError, match="in use"):
            async with serving(fake_cli, isolated, gateway={"port": port}):
                pass


async def test_an_allowed_origin_gets_cors_and_others_403(
    fake_cli: Path, isolated: IsolatedConfig
) -> None:
    origin = "https://app.example"
    async with serving(fake_cli, isolated, gateway={"allowed_origins": [origin]}) as gateway:
        host, port = gateway.base_url.removeprefix("http://").rsplit(":", 1)
        stream = await trio.open_tcp_stream(host, int(port))
        async with stream:
            await stream.send_all(
                f"OPTIONS /v1/messages HTTP/1.1\r\nhost: {host}:{port}\r\norigin: {origin}\r\n"
                "access-control-request-method: POST\r\n"
                "access-control-request-headers: x-api-key, content-type\r\n"
                "connection: close\r\n\r\n".encode()
            )
            data = b""
            with trio.fail_after(TURN):
                while chunk := await stream.receive_some():
                    data += chunk
        head = data.decode().lower()
        assert head.startswith("http/1.1 204")
        assert f"access-control-allow-origin: {origin}" in head
        assert "access-control-allow-headers: x-api-key, content-type" in head
        status, headers, _ = await raw_post(gateway, "/v1/messages", _request(), {"origin": origin})
        assert status == 200
        assert headers["access-control-allow-origin"] == origin
        assert "retry-after" in headers["access-control-expose-headers"]
        status, _, _ = await raw_post(
            gateway, "/v1/messages", _request(), {"origin": "https://other.example"}
        )
        assert status == 403


async def test_bad_bodies_and_names_are_400(fake_cli: Path, isolated: IsolatedConfig) -> None:
    async with serving(fake_cli, isolated) as gateway:
        status, _, data = await raw_post(gateway, "/v1/messages", b"[" * 100_000)
        assert status == 400
        assert "nested too deeply" in json.loads(data)["error"]["message"]
        for model in ("two words", "nul\u0000", ""):
            status, _, data = await raw_post(gateway, "/v1/messages", _request(model=model))
            assert status == 400
            assert json.loads(data)["error"]["message"].startswith("model:")
        assert stats(gateway).spawned == 0


async def test_a_bad_block_is_named_by_the_clients_own_index(
    fake_cli: Path, isolated: IsolatedConfig
) -> None:
    own = [
        {"type": "text", "text": "I will call Bash."},
        {"type": "server_tool_use", "id": "toolu_1", "name": "Bash", "input": {}},
        {"type": "mcp_tool_result", "tool_use_id": "toolu_1", "content": []},
        {"type": "text", "text": "done"},
    ]
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": own},
        {"role": "user", "content": [{"type": "text"}]},
        {"role": "assistant", "content": "x"},
        {"role": "user", "content": "next"},
    ]
    async with serving(fake_cli, isolated) as gateway:
        status, _, data = await raw_post(gateway, "/v1/messages", _request(messages=messages))
    assert status == 400
    error = json.loads(data)["error"]
    assert error["message"].startswith("messages[2].content[0]: ")


async def test_localhost_with_a_trailing_dot_is_this_machine(
    fake_cli: Path, isolated: IsolatedConfig
) -> None:
    async with serving(fake_cli, isolated) as gateway:
        port = gateway.base_url.rsplit(":", 1)[1]
        status, _, _ = await raw_post(gateway, "/v1/models", b"", {"host": f"localhost.:{port}"})
    assert status == 405  # past the host check: POST is the wrong method there
