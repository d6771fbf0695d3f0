"""The Anthropic side of the gateway, sans I/O: request checks, replies, stream order."""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic._models import construct_type
from anthropic.types import Message, RawMessageStreamEvent
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from claude_trio import (
    AssistantMessage,
    InputError,
    ResultMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
    UserMessage,
    hash_history,
    parse_history,
)
from claude_trio._gateway_errors import GatewayError, error_for
from claude_trio._messages_api import (
    IGNORED_FIELDS,
    REFUSED_FIELDS,
    MessageStreamEncoder,
    backend_messages,
    message_json,
    parse_messages_request,
    stop_reason,
)

USER = {"role": "user", "content": "hi"}


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "sonnet", "max_tokens": 100, "messages": [USER], **fields}


def turn_events() -> list[Any]:
    """A turn in which the CLI said something, ran Bash, and answered."""
    return [
        AssistantMessage(
            id="m1", model="claude-x", content=[ThinkingBlock(thinking="hmm", signature="sig")]
        ),
        AssistantMessage(id="m1", model="claude-x", content=[TextBlock(text="I will call Bash.")]),
        AssistantMessage(
            id="m1",
            model="claude-x",
            content=[ToolUseBlock(id="toolu_1", name="Bash", input={"command": "echo hello"})],
            stop_reason="tool_use",
        ),
        UserMessage(content=[ToolResultBlock(tool_use_id="toolu_1", content="hello")]),
        AssistantMessage(
            id="m2",
            model="claude-x",
            content=[TextBlock(text="tool said: hello")],
            stop_reason="end_turn",
        ),
        ResultMessage(
            usage=Usage(input_tokens=7, output_tokens=5, cache_read_input_tokens=3),
            stop_reason="end_turn",
        ),
    ]


def test_a_minimal_request_is_taken_and_ignored_fields_are_named() -> None:
    request = parse_messages_request(
        body(temperature=0.2, top_k=3, system="be brief"), max_messages=10
    )
    assert request.model == "sonnet"
    assert request.system == "be brief"
    assert request.stream is False
    assert request.ignored == ("max_tokens", "temperature", "top_k")
    assert request.messages == (USER,)


def test_system_blocks_are_joined() -> None:
    system = [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]
    assert parse_messages_request(body(system=system), max_messages=10).system == "one\n\ntwo"
    with pytest.raises(GatewayError) as caught:
        parse_messages_request(body(system=[{"type": "image"}]), max_messages=10)
    assert caught.value.param == "system.0"


@pytest.mark.parametrize("name", sorted(REFUSED_FIELDS))
def test_each_refused_field_is_refused_unless_neutral(name: str) -> None:
    with pytest.raises(GatewayError) as caught:
        parse_messages_request(
            body(**{name: {"type": "any"} if name == "tool_choice" else ["x"]}), max_messages=10
        )
    assert caught.value.status == 400
    assert caught.value.param == name
    assert "claude-trio" in caught.value.message
    neutral: object = None
    if name in ("stop_sequences", "tools"):
        neutral = []
    elif name == "tool_choice":
        neutral = {"type": "auto"}
    parse_messages_request(body(**{name: neutral}), max_messages=10)


def test_client_tools_are_refused_saying_so() -> None:
    tool = {"name": "get_weather", "input_schema": {"type": "object"}}
    with pytest.raises(GatewayError, match="client-defined tools"):
        parse_messages_request(body(tools=[tool]), max_messages=10)


@pytest.mark.parametrize("name", IGNORED_FIELDS)
def test_each_ignored_field_is_reported(name: str) -> None:
    assert name in parse_messages_request(body(**{name: 1}), max_messages=10).ignored


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"surprise": 1}, "surprise"),
        ({"model": ""}, "model"),
        ({"model": 3}, "model"),
        ({"stream": "yes"}, "stream"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
    ],
)
def test_malformed_requests_name_the_field(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(GatewayError) as caught:
        parse_messages_request(body(**fields), max_messages=10)
    assert (caught.value.status, caught.value.param) == (400, param)


def test_too_many_messages_are_refused() -> None:
    messages = [USER, {"role": "assistant", "content": "x"}] * 3 + [USER]
    with pytest.raises(GatewayError, match="more than this gateway takes"):
        parse_messages_request(body(messages=messages), max_messages=6)
    assert len(parse_messages_request(body(messages=messages), max_messages=7).messages) == 7


def test_a_bad_message_maps_to_400_with_its_place() -> None:
    messages = [{"role": "user", "content": [{"type": "text"}]}]
    with pytest.raises(GatewayError) as caught:
        parse_messages_request(body(messages=messages), max_messages=10)
    error = caught.value
    assert isinstance(error.__cause__, InputError) or error.__suppress_context__
    assert (error.status, error.param) == (400, "messages.0.content.0")
    # The request is parsed once: the same mapping as for an InputError from elsewhere.
    with pytest.raises(InputError) as parsed:
        parse_history(messages)
    assert error_for(parsed.value).param == error.param


def test_the_reply_shows_the_cli_tools_and_parses_in_the_sdk() -> None:
    reply = message_json(turn_events(), message_id="msg_1", model="sonnet", show_cli_tools=True)
    assert [block["type"] for block in reply["content"]] == [
        "thinking",
        "text",
        "server_tool_use",
        "mcp_tool_result",
        "text",
    ]
    assert reply["model"] == "claude-x"
    assert reply["usage"]["cache_read_input_tokens"] == 3
    parsed = construct_type(type_=Message, value=reply)
    assert isinstance(parsed, Message)
    assert parsed.content[2].type == "server_tool_use"
    assert parsed.content[2].input == {"command": "echo hello"}


def test_hidden_tools_leave_text_and_thinking() -> None:
    reply = message_json(turn_events(), message_id="msg_1", model="sonnet", show_cli_tools=False)
    assert [block["type"] for block in reply["content"]] == ["thinking", "text", "text"]
    Message.model_validate(reply)  # strict: every field the SDK requires, of its type


def test_stop_reasons() -> None:
    assert stop_reason("tool_use") == "end_turn"
    assert stop_reason(None) == "end_turn"
    assert stop_reason("max_tokens") == "max_tokens"
    assert stop_reason("refusal") == "refusal"


def _stream(events: list[Any], show: bool) -> list[tuple[str, dict[str, Any]]]:
    encoder = MessageStreamEncoder(message_id="msg_1", model="sonnet", show_cli_tools=show)
    out = encoder.start()
    for event in events:
        if isinstance(event, ResultMessage):
            out += encoder.finish(event)
        else:
            out += encoder.feed(event)
    return out


def _accumulate(frames: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Rebuild the message from stream events, as a client does."""
    message: dict[str, Any] = {}
    partial: dict[int, str] = {}
    for kind, data in frames:
        if kind == "message_start":
            message = json.loads(json.dumps(data["message"]))
        elif kind == "content_block_start":
            assert data["index"] == len(message["content"])
            message["content"].append(dict(data["content_block"]))
        elif kind == "content_block_delta":
            block, delta = message["content"][data["index"]], data["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            else:
                assert delta["type"] == "input_json_delta"
                partial[data["index"]] = partial.get(data["index"], "") + delta["partial_json"]
        elif kind == "content_block_stop":
            if data["index"] in partial:
                message["content"][data["index"]]["input"] = json.loads(partial[data["index"]])
        elif kind == "message_delta":
            message.update(data["delta"])
            message["usage"] = data["usage"]
    return message


@pytest.mark.parametrize("show", [True, False])
def test_the_stream_rebuilds_the_non_streaming_reply(show: bool) -> None:
    frames = _stream(turn_events(), show)
    kinds = [kind for kind, _ in frames]
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert all(kind == data["type"] for kind, data in frames)
    adapter: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
    for _kind, data in frames:
        block = data.get("content_block", {})
        if block.get("type") not in ("server_tool_use", "mcp_tool_result"):
            # Strict: the SDK's own model of each event (the CLI's tool blocks name tools
            # the non-beta models do not list, so those are checked by the rebuild below).
            adapter.validate_python(data)
    whole = message_json(turn_events(), message_id="msg_1", model="sonnet", show_cli_tools=show)
    rebuilt = _accumulate(frames)
    assert rebuilt["content"] == whole["content"]
    assert rebuilt["stop_reason"] == whole["stop_reason"] == "end_turn"
    assert rebuilt["usage"] == whole["usage"]


def test_block_indexes_run_in_order() -> None:
    frames = _stream(turn_events(), True)
    starts = [data["index"] for kind, data in frames if kind == "content_block_start"]
    stops = [data["index"] for kind, data in frames if kind == "content_block_stop"]
    assert starts == stops == list(range(5))


def test_own_blocks_in_history_become_tool_calls_with_the_same_fingerprint() -> None:
    reply = message_json(turn_events(), message_id="msg_1", model="sonnet", show_cli_tools=True)
    first = [{"role": "user", "content": "CALL_BASH echo hello"}]
    history = [*first, {"role": "assistant", "content": reply["content"]}, USER]
    converted = backend_messages(history)
    assert [m["role"] for m in converted] == ["user", "assistant", "user", "assistant", "user"]
    assert converted[1]["content"][-1] == {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "Bash",
        "input": {"command": "echo hello"},
    }
    assert converted[2]["content"][0]["type"] == "tool_result"
    parsed = parse_history(converted)
    text = "I will call Bash.tool said: hello"
    assert parsed.key == parse_history([*first]).key_after(text)
    assert hash_history(converted[:-1]) == parsed.key


@given(st.lists(st.sampled_from(["text", "tool"]), min_size=1, max_size=6))
def test_any_mix_of_own_blocks_keeps_the_fingerprint(shape: list[str]) -> None:
    content: list[dict[str, Any]] = []
    texts = []
    for index, kind in enumerate(shape):
        if kind == "text":
            content.append({"type": "text", "text": f"t {index}"})
            texts.append(f"t {index}")
        else:
            tool_id = f"toolu_{index}"
            content.append({"type": "server_tool_use", "id": tool_id, "name": "Bash", "input": {}})
            content.append(
                {
                    "type": "mcp_tool_result",
                    "tool_use_id": tool_id,
                    "is_error": False,
                    "content": [{"type": "text", "text": "out"}],
                }
            )
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": content},
        USER,
    ]
    parsed = parse_history(backend_messages(history))
    assert parsed.key == parse_history(history[:1]).key_after("".join(texts))
