"""Tests for the event models and their Anthropic Messages API JSON."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import anthropic.types
import attrs
import pydantic
import pytest
from hypothesis import given, settings

from claude_trio import (
    AssistantMessage,
    CacheCreation,
    ContentBlock,
    Event,
    MessageParseError,
    ResultMessage,
    ServerToolUse,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
    UserMessage,
    from_anthropic,
    make_converter,
    to_anthropic,
)

from .strategies import (
    assistant_messages,
    content_blocks,
    events,
    result_messages,
    stream_events,
    system_messages,
    user_messages,
)

_EVENT: Any = Event

USAGE = Usage(
    input_tokens=10,
    output_tokens=5,
    cache_creation_input_tokens=3,
    cache_read_input_tokens=2,
    cache_creation=CacheCreation(ephemeral_5m_input_tokens=3, ephemeral_1h_input_tokens=0),
    server_tool_use=ServerToolUse(web_search_requests=1, web_fetch_requests=0),
    service_tier="standard",
)
STAMP = dt.datetime(2026, 11, 24, 11, 18, 55, 558000, tzinfo=dt.UTC)
MESSAGE = AssistantMessage(
    id="msg_1",
    model="claude-opus-5-5",
    content=[TextBlock("hi"), ToolUseBlock(id="toolu_1", name="Bash", input={"command": "ls"})],
    stop_reason="tool_use",
    usage=USAGE,
    session_id="s",
    uuid="u2",
    parent_uuid="u1",
    timestamp=STAMP,
)


# --- the models -------------------------------------------------------------------------------


def test_events_are_frozen() -> None:
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        MESSAGE.id = "other"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        TextBlock("x").text = "y"  # type: ignore[misc]


def test_content_is_a_tuple() -> None:
    assert isinstance(MESSAGE.content, tuple)
    assert UserMessage(content=[TextBlock("a")]).content == (TextBlock("a"),)
    assert UserMessage(content="plain").content == "plain"
    result = ToolResultBlock(tool_use_id="t", content=[{"type": "text", "text": "x"}])
    assert result.content == ({"type": "text", "text": "x"},)


def test_blocks_and_messages_hash_despite_json_payloads() -> None:
    a = ToolUseBlock(id="t", name="Bash", input={"command": "ls"})
    b = ToolUseBlock(id="t", name="Bash", input={"command": "ls"})
    assert a == b
    assert hash(a) == hash(b)
    assert a != ToolUseBlock(id="t", name="Bash", input={"command": "pwd"})
    assert hash(MESSAGE) == hash(attrs.evolve(MESSAGE))
    assert len({MESSAGE, attrs.evolve(MESSAGE)}) == 1


def test_block_type_names() -> None:
    assert [cls.type for cls in (TextBlock, ThinkingBlock, ToolUseBlock, ToolResultBlock)] == [
        "text",
        "thinking",
        "tool_use",
        "tool_result",
    ]


# --- exact API shapes -------------------------------------------------------------------------


def test_assistant_message_api_shape() -> None:
    assert to_anthropic(MESSAGE) == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-opus-5-5",
        "content": [
            {"type": "text", "text": "hi"},
            {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_creation_input_tokens": 3,
            "cache_read_input_tokens": 2,
            "cache_creation": {"ephemeral_5m_input_tokens": 3, "ephemeral_1h_input_tokens": 0},
            "server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 0},
            "service_tier": "standard",
        },
    }


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (TextBlock("hello"), {"type": "text", "text": "hello"}),
        (
            ThinkingBlock("hmm", signature="sig"),
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        ),
        (
            ToolUseBlock(id="toolu_9", name="Read", input={"file_path": "a.txt"}),
            {"type": "tool_use", "id": "toolu_9", "name": "Read", "input": {"file_path": "a.txt"}},
        ),
        (
            ToolResultBlock(tool_use_id="toolu_9", content="1\tcontent", is_error=False),
            {
                "type": "tool_result",
                "tool_use_id": "toolu_9",
                "content": "1\tcontent",
                "is_error": False,
            },
        ),
        (
            ToolResultBlock(
                tool_use_id="toolu_8", content=[{"type": "text", "text": "ECHO"}], is_error=True
            ),
            {
                "type": "tool_result",
                "tool_use_id": "toolu_8",
                "content": [{"type": "text", "text": "ECHO"}],
                "is_error": True,
            },
        ),
    ],
)
def test_block_api_shape(block: ContentBlock, expected: dict[str, Any]) -> None:
    shape = to_anthropic(block)
    assert shape == expected
    assert next(iter(shape)) == "type"
    assert from_anthropic(shape) == block


def test_user_message_api_shape_drops_metadata() -> None:
    message = UserMessage(
        content=[ToolResultBlock(tool_use_id="t", content="ok")],
        is_meta=True,
        prompt_id="p",
        session_id="s",
        uuid="u",
        parent_uuid="p0",
        timestamp=STAMP,
    )
    assert to_anthropic(message) == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "t", "content": "ok", "is_error": False}
        ],
    }
    assert to_anthropic(UserMessage(content="hello")) == {"role": "user", "content": "hello"}


def test_system_and_result_shapes_keep_every_field() -> None:
    system = SystemMessage(
        subtype="local_command",
        content="out",
        level="info",
        data={"type": "system"},
        session_id="s",
        uuid="u",
        parent_uuid=None,
        timestamp=STAMP,
    )
    assert to_anthropic(system) == {
        "type": "system",
        "subtype": "local_command",
        "content": "out",
        "level": "info",
        "data": {"type": "system"},
        "session_id": "s",
        "uuid": "u",
        "parent_uuid": None,
        "timestamp": "2026-11-24T11:18:55.558Z",
    }
    result = ResultMessage(usage=Usage(input_tokens=1), num_api_messages=1, is_error=True)
    shape = to_anthropic(result)
    assert shape["type"] == "result"
    assert shape["usage"]["input_tokens"] == 1
    assert (shape["num_api_messages"], shape["is_error"], shape["total_cost_usd"]) == (
        1,
        True,
        None,
    )


def test_from_anthropic_reads_sdk_output_and_ignores_extra_keys() -> None:
    sdk = anthropic.types.Message.model_validate(
        {
            "id": "msg_2",
            "type": "message",
            "role": "assistant",
            "model": "claude-opus-5-5",
            "content": [{"type": "text", "text": "hey", "citations": None}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "container": None,
            "usage": {"input_tokens": 4, "output_tokens": 2, "inference_geo": "us"},
        }
    )
    message = from_anthropic(sdk.model_dump(mode="json"))
    assert message == AssistantMessage(
        id="msg_2",
        model="claude-opus-5-5",
        content=[TextBlock("hey")],
        stop_reason="end_turn",
        usage=Usage(input_tokens=4, output_tokens=2),
    )


API: dict[str, Any] = {
    "type": "message",
    "role": "assistant",
    "id": "x",
    "model": "m",
    "content": [],
}


@pytest.mark.parametrize(
    "data",
    [
        {**API, "id": 1},
        {**API, "content": [{"type": "unknown_block"}]},
        {**API, "content": "a string is not assistant content"},
        {**API, "usage": {"input_tokens": "1", "output_tokens": 1}},
        {key: value for key, value in API.items() if key != "model"},
        {"type": "text"},
        {"type": "tool_result", "tool_use_id": "t", "content": 5},
        {"role": "user", "content": None},
        {"role": "system", "content": "x"},
        {"type": "nope"},
        {},
    ],
)
def test_from_anthropic_rejects_bad_shapes(data: dict[str, Any]) -> None:
    with pytest.raises(MessageParseError):
        from_anthropic(data)


def test_event_union_dispatches_on_type_and_role() -> None:
    converter = make_converter()
    for event in (
        attrs.evolve(MESSAGE, session_id=None, uuid=None, parent_uuid=None, timestamp=None),
        UserMessage(content="x"),
        SystemMessage(subtype="x"),
        ResultMessage(),
    ):
        assert converter.structure(converter.unstructure(event, _EVENT), _EVENT) == event
    with pytest.raises(ValueError, match="unknown 'type' 'text'"):
        converter.structure({"type": "text", "text": "a block is not an event"}, _EVENT)


# --- properties ------------------------------------------------------------------------------


def without_metadata(event: Event) -> Event:
    """*event* as it comes back from API JSON: session metadata is not part of it."""
    if isinstance(event, AssistantMessage):
        return attrs.evolve(event, session_id=None, uuid=None, parent_uuid=None, timestamp=None)
    if isinstance(event, UserMessage):
        return UserMessage(content=event.content)
    return event


@settings(deadline=None)
@given(events())
def test_event_json_round_trip(event: Event) -> None:
    shape = to_anthropic(event)
    text = json.dumps(shape)
    assert json.loads(text) == shape
    expected = without_metadata(event)
    assert from_anthropic(json.loads(text)) == expected
    assert make_converter().structure(json.loads(text), _EVENT) == expected


@settings(deadline=None)
@given(events(metadata=False))
def test_api_fields_round_trip_exactly(event: Event) -> None:
    assert from_anthropic(to_anthropic(event)) == event


@settings(deadline=None)
@given(system_messages)
def test_system_messages_round_trip_with_metadata(message: SystemMessage) -> None:
    assert from_anthropic(json.loads(json.dumps(to_anthropic(message)))) == message


@settings(deadline=None)
@given(result_messages)
def test_result_messages_round_trip(message: ResultMessage) -> None:
    assert from_anthropic(json.loads(json.dumps(to_anthropic(message)))) == message


@settings(deadline=None)
@given(stream_events)
def test_stream_events_round_trip_in_the_sdks_shape(event: StreamEvent) -> None:
    shape = to_anthropic(event)
    assert shape == {
        "type": "stream_event",
        "uuid": event.uuid,
        "session_id": event.session_id,
        "event": event.event,
        "parent_tool_use_id": event.parent_tool_use_id,
    }
    assert from_anthropic(json.loads(json.dumps(shape))) == event


def assert_keys_known(data: Any, model: type[pydantic.BaseModel]) -> None:
    """The SDK models accept unknown keys; check that we send none."""
    assert set(data) <= set(model.model_fields), set(data) - set(model.model_fields)


_SDK_BLOCKS: dict[str, type[pydantic.BaseModel]] = {
    "text": anthropic.types.TextBlock,
    "thinking": anthropic.types.ThinkingBlock,
    "tool_use": anthropic.types.ToolUseBlock,
}


@settings(deadline=None)
@given(assistant_messages())
def test_assistant_messages_validate_as_sdk_messages(message: AssistantMessage) -> None:
    message = attrs.evolve(
        message, content=[b for b in message.content if not isinstance(b, ToolResultBlock)]
    )
    shape = to_anthropic(message)
    sdk = anthropic.types.Message.model_validate(shape)
    assert sdk.model_dump(mode="json", exclude_unset=True) == shape
    assert_keys_known(shape, anthropic.types.Message)
    assert_keys_known(shape["usage"], anthropic.types.Usage)
    for block in shape["content"]:
        assert_keys_known(block, _SDK_BLOCKS[block["type"]])
        _SDK_BLOCKS[block["type"]].model_validate(block)


_MESSAGE_PARAM: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(anthropic.types.MessageParam)
_BLOCK_PARAMS: dict[str, Any] = {
    "text": anthropic.types.TextBlockParam,
    "thinking": anthropic.types.ThinkingBlockParam,
    "tool_use": anthropic.types.ToolUseBlockParam,
    "tool_result": anthropic.types.ToolResultBlockParam,
}
_BLOCK_ADAPTERS = {name: pydantic.TypeAdapter(param) for name, param in _BLOCK_PARAMS.items()}


def validate_block_param(block: dict[str, Any]) -> None:
    """Validate *block* strictly against its SDK TypedDict, unknown keys included."""
    param = _BLOCK_PARAMS[block["type"]]
    _BLOCK_ADAPTERS[block["type"]].validate_python(block, strict=True)
    known = param.__required_keys__ | param.__optional_keys__
    assert set(block) <= known, set(block) - known


@settings(deadline=None)
@given(user_messages())
def test_user_messages_validate_as_sdk_message_params(message: UserMessage) -> None:
    shape = to_anthropic(message)
    assert set(shape) == {"role", "content"}
    validated = _MESSAGE_PARAM.validate_python(shape)
    assert validated["role"] == "user"
    if not isinstance(shape["content"], str):
        for block in shape["content"]:
            validate_block_param(block)


@settings(deadline=None)
@given(content_blocks)
def test_blocks_validate_as_sdk_block_params(block: ContentBlock) -> None:
    validate_block_param(to_anthropic(block))
