"""The OpenAI Chat Completions layer: request mapping, refusals, and the response shapes.

Every response object is validated with the official ``openai`` SDK's models, and the
SDK itself talks to the layer through an in-process transport.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.chat.completion_create_params import CompletionCreateParamsBase

from claude_trio import (
    AssistantMessage,
    Event,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
    UserMessage,
    check_messages,
)
from claude_trio._chat_api import (
    ChatRequest,
    ChatStreamEncoder,
    chat_completion,
    finish_reason,
    parse_chat_request,
)
from claude_trio._gateway_errors import GatewayError, openai_error_body

from .strategies import assistant_messages, events, result_messages

MAX = 50
# The SDK's own HTTP library (httpx for openai 1.x, httpx2 after), for an in-process transport.
http: Any = importlib.import_module(openai.DefaultHttpxClient.__mro__[1].__module__.split(".")[0])
PNG = "iVBORw0KGgo="


def parse(body: dict[str, Any], *, max_messages: int = MAX) -> ChatRequest:
    return parse_chat_request(body, max_messages=max_messages)


def body(*messages: Any, **fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "messages": list(messages), **fields}


def user(content: Any, **extra: Any) -> dict[str, Any]:
    return {"role": "user", "content": content, **extra}


def assistant(content: Any, **extra: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": content, **extra}


HI = user("hi")


def refused(request: object, *, max_messages: int = MAX) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        parse_chat_request(request, max_messages=max_messages)
    assert info.value.status == 400
    return info.value


# --- the field table ---------------------------------------------------------------------------


def table_rows() -> dict[str, tuple[str, str]]:
    """The rows of the field table in `parse_chat_request`'s docstring."""
    doc = parse_chat_request.__doc__
    assert doc is not None
    lines = [line.strip() for line in doc.splitlines()]
    rules = [index for index, line in enumerate(lines) if re.fullmatch(r"=+ =+ =+", line)]
    assert len(rules) == 3, "one table: a top rule, a header rule and a bottom rule"
    rows: dict[str, tuple[str, str]] = {}
    for line in lines[rules[1] + 1 : rules[2]]:
        match = re.fullmatch(r"``(\w+)``\s+(honoured|ignored|refused)\s+(.+)", line)
        assert match is not None, line
        assert match[1] not in rows, f"{match[1]} twice"
        rows[match[1]] = (match[2], match[3])
    return rows


ROWS = table_rows()
# A value of each ignored field's type, and a value that is none of them.
SAMPLES = {"string": "x", "integer": 7, "number": 0.5, "boolean": True, "object": {}}
WRONG_TYPE = ["x"]
# A value that asks for something, for each refused field.
ASKING = {
    "audio": {"voice": "alloy", "format": "wav"},
    "function_call": {"name": "lookup"},
    "functions": [{"name": "lookup", "parameters": {}}],
    "logit_bias": {"50256": -100},
    "logprobs": True,
    "modalities": ["text", "audio"],
    "moderation": {"model": "omni-moderation-latest"},
    "n": 2,
    "prediction": {"type": "content", "content": "x"},
    "response_format": {"type": "json_object"},
    "stop": ["\n"],
    "tool_choice": "required",
    "tools": [{"type": "function", "function": {"name": "lookup"}}],
    "top_logprobs": 2,
    "web_search_options": {},
}


def neutral_values(cell: str) -> list[Any]:
    return [json.loads(value) for value in re.findall(r"``(.*?)``", cell)]


def test_the_table_is_what_the_code_does() -> None:
    from claude_trio._chat_api import _FIELDS

    assert {name: row[0] for name, row in ROWS.items()} == {
        name: field.treatment for name, field in _FIELDS.items()
    }
    for name, (treatment, cell) in ROWS.items():
        field = _FIELDS[name]
        if treatment == "refused":
            assert neutral_values(cell) == list(field.neutral), name
        else:
            assert cell.split(":")[0] == field.kind, name


def test_every_field_of_the_openai_sdk_is_in_the_table() -> None:
    sdk_fields = set(CompletionCreateParamsBase.__annotations__) | {"stream"}
    assert sdk_fields - set(ROWS) == set()


def test_the_table_covers_what_the_tests_ask() -> None:
    assert set(ASKING) == {name for name, row in ROWS.items() if row[0] == "refused"}
    kinds = {row[1] for row in ROWS.values() if row[0] == "ignored"}
    assert kinds <= set(SAMPLES)


@pytest.mark.parametrize("name", sorted(n for n, row in ROWS.items() if row[0] == "ignored"))
def test_an_ignored_field_is_accepted_and_reported(name: str) -> None:
    value = SAMPLES[ROWS[name][1]]
    assert parse(body(HI, **{name: value})).ignored == (name,)
    assert parse(body(HI, **{name: None})).ignored == ()
    error = refused(body(HI, **{name: WRONG_TYPE}))
    assert error.param == name
    assert name in error.message


@pytest.mark.parametrize("name", sorted(n for n, row in ROWS.items() if row[0] == "refused"))
def test_a_refused_field_is_accepted_only_at_a_value_that_asks_for_nothing(name: str) -> None:
    for value in neutral_values(ROWS[name][1]):
        request = parse(body(HI, **{name: value}))
        assert request.ignored == ()
        assert request.messages == ({"role": "user", "content": "hi"},)
    error = refused(body(HI, **{name: ASKING[name]}))
    assert error.param == name
    assert error.message.startswith(f"{name} ")
    assert "not supported" in error.message


@pytest.mark.parametrize(
    ("name", "value"),
    [("n", True), ("n", 1.0), ("logprobs", 0), ("stop", "\n"), ("tool_choice", "required")],
)
def test_a_neutral_value_is_compared_as_json(name: str, value: Any) -> None:
    assert refused(body(HI, **{name: value})).param == name


def test_tools_are_refused_saying_why() -> None:
    error = refused(body(HI, tools=ASKING["tools"], tool_choice="auto"))
    assert error.param == "tools"
    assert "client-defined tools are not supported" in error.message


def test_the_ignored_fields_are_sorted() -> None:
    request = parse(body(user("hi", name="ann"), user="u", temperature=0, max_tokens=9, seed=1))
    assert request.ignored == ("max_tokens", "messages.name", "seed", "temperature", "user")


def test_an_unknown_field_is_refused_as_the_api_does() -> None:
    error = refused(body(HI, frobnicate=1))
    assert error.message == "Unrecognized request argument supplied: frobnicate"
    assert error.param == "frobnicate"


@pytest.mark.parametrize("request_body", [None, [], "text", 3])
def test_the_body_must_be_an_object(request_body: object) -> None:
    error = refused(request_body)
    assert error.param is None
    assert "JSON object" in error.message


@pytest.mark.parametrize("name", ["model", "messages"])
def test_model_and_messages_are_required(name: str) -> None:
    request = body(HI)
    del request[name]
    assert refused(request).param == name
    assert refused({**body(HI), name: None}).param == name


@pytest.mark.parametrize("model", ["", " ", "a b", "claude\n", "x\x00y", 7, ["m"], "\ud800"])
def test_the_model_must_be_a_name(model: object) -> None:
    assert refused(body(HI, model=model)).param == "model"


def test_the_model_is_passed_on() -> None:
    assert parse(body(HI, model="claude-opus-4-1[1m]")).model == "claude-opus-4-1[1m]"


# --- stream and stream_options -----------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(None, False), (False, False), (True, True)])
def test_stream_is_honoured(value: bool | None, expected: bool) -> None:
    request = parse(body(HI, stream=value))
    assert request.stream is expected
    assert request.include_usage is False


@pytest.mark.parametrize("value", ["true", 1, {}])
def test_stream_must_be_a_boolean(value: object) -> None:
    assert refused(body(HI, stream=value)).param == "stream"


@pytest.mark.parametrize(("value", "expected"), [(None, False), (False, False), (True, True)])
def test_include_usage_is_honoured(value: bool | None, expected: bool) -> None:
    request = parse(body(HI, stream=True, stream_options={"include_usage": value}))
    assert request.include_usage is expected
    assert request.ignored == ()


def test_include_obfuscation_is_ignored() -> None:
    request = parse(body(HI, stream=True, stream_options={"include_obfuscation": False}))
    assert request.ignored == ("stream_options.include_obfuscation",)


@pytest.mark.parametrize("stream", [None, False])
def test_stream_options_need_a_stream(stream: bool | None) -> None:
    error = refused(body(HI, stream=stream, stream_options={"include_usage": True}))
    assert error.param == "stream_options"
    assert "only allowed when 'stream' is true" in error.message
    assert parse(body(HI, stream=stream, stream_options=None)).include_usage is False


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"include_usage": "yes"}, "stream_options.include_usage"),
        ({"include_obfuscation": 1}, "stream_options.include_obfuscation"),
        ({"chunk_size": 3}, "stream_options.chunk_size"),
        ([], "stream_options"),
    ],
)
def test_stream_options_are_checked(options: object, param: str) -> None:
    assert refused(body(HI, stream=True, stream_options=options)).param == param


# --- messages: the list ------------------------------------------------------------------------


@pytest.mark.parametrize("messages", ["hi", {"role": "user"}, 3])
def test_messages_must_be_an_array(messages: object) -> None:
    assert refused({"model": "m", "messages": messages}).param == "messages"


def test_messages_must_not_be_empty() -> None:
    error = refused(body())
    assert error.param == "messages"
    assert "empty" in error.message


def test_messages_are_counted_against_max_messages() -> None:
    messages = [{"role": "system", "content": "be brief"}, user("a"), assistant("b"), user("c")]
    assert len(parse(body(*messages), max_messages=4).messages) == 3
    error = refused(body(*messages), max_messages=3)
    assert error.param == "messages"
    assert "4 messages" in error.message
    assert "at most 3" in error.message


def test_a_message_must_be_an_object() -> None:
    assert refused(body(HI, "hello")).param == "messages.1"


@pytest.mark.parametrize("role", [None, "robot", 3, "System"])
def test_an_unknown_role_is_refused(role: object) -> None:
    error = refused(body(HI, {"role": role, "content": "x"}, HI))
    assert error.param == "messages.1.role"


@pytest.mark.parametrize(
    "message",
    [
        {"role": "tool", "content": "42", "tool_call_id": "call_1"},
        {"role": "function", "content": "42", "name": "lookup"},
    ],
)
def test_tool_results_are_refused(message: dict[str, Any]) -> None:
    error = refused(body(HI, message, HI))
    assert error.param == "messages.1.role"
    assert "client-defined tools, which are not supported" in error.message


@pytest.mark.parametrize(
    ("message", "param"),
    [
        (user("hi", tool_call_id="x"), "messages.0.tool_call_id"),
        ({"role": "system", "content": "s", "refusal": None}, "messages.0.refusal"),
        (assistant("a", extra=1), "messages.0.extra"),
    ],
)
def test_an_unknown_message_field_is_refused(message: dict[str, Any], param: str) -> None:
    error = refused(body(message, HI))
    assert error.param == param
    assert error.message == f"Unknown parameter: '{param}'"


def test_the_last_message_must_be_the_users() -> None:
    error = refused(body({"role": "system", "content": "s"}, HI, assistant("a")))
    assert error.param == "messages.2.role"
    assert "the last message must be the user's" in error.message


def test_system_messages_alone_are_not_a_request() -> None:
    error = refused(body({"role": "system", "content": "s"}, {"role": "developer", "content": "d"}))
    assert error.param == "messages"
    assert "no user message" in error.message


@pytest.mark.parametrize(
    ("content", "param"),
    [
        (None, "messages.0.content"),
        (3, "messages.0.content"),
        ({"type": "text", "text": "x"}, "messages.0.content"),
        ([], "messages.0.content"),
        (["x"], "messages.0.content.0"),
        ([{"text": "x"}], "messages.0.content.0.type"),
        ([{"type": "text"}], "messages.0.content.0.text"),
        ([{"type": "text", "text": 3}], "messages.0.content.0.text"),
        (
            [{"type": "text", "text": "x", "cache_control": {}}],
            "messages.0.content.0.cache_control",
        ),
    ],
)
def test_user_content_is_checked(content: object, param: str) -> None:
    assert refused(body(user(content))).param == param


def test_user_content_needs_to_be_there() -> None:
    assert refused(body({"role": "user"})).param == "messages.0.content"


# --- messages: the mapping ---------------------------------------------------------------------


def test_leading_system_and_developer_messages_become_the_system_prompt() -> None:
    request = parse(
        body(
            {"role": "system", "content": "You are terse."},
            {
                "role": "developer",
                "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
            },
            {"role": "system", "content": ""},
            user("hi"),
        )
    )
    assert request.system == "You are terse.\n\nA\n\nB"
    assert request.messages == ({"role": "user", "content": "hi"},)


def test_no_system_message_is_no_system_prompt() -> None:
    assert parse(body(HI)).system is None
    assert parse(body({"role": "system", "content": ""}, HI)).system is None


@pytest.mark.parametrize("role", ["system", "developer"])
def test_a_system_message_after_the_conversation_started_is_refused(role: str) -> None:
    error = refused(body(HI, assistant("hello"), {"role": role, "content": "now be rude"}, HI))
    assert error.param == "messages.2.role"
    assert "only come before the first user or assistant message" in error.message
    assert "system prompt once" in error.message


@pytest.mark.parametrize(
    ("content", "param"),
    [
        (
            [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}],
            "messages.0.content.0.type",
        ),
        ([{"type": "text", "text": "\ud800"}], "messages.0.content.0.text"),
        ("\udfff", "messages.0.content"),
    ],
)
def test_system_content_is_text(content: object, param: str) -> None:
    assert refused(body({"role": "system", "content": content}, HI)).param == param


def test_user_text_and_images_become_blocks() -> None:
    parts = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": None}},
        {"type": "image_url", "image_url": {"url": "http://example.com/dog.webp"}},
        {"type": "image_url", "image_url": {"url": f"DATA:IMAGE/JPEG;base64,{PNG}"}},
    ]
    request = parse(body(user(parts), assistant("a cat"), user("thanks")))
    assert request.messages[0] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            {"type": "image", "source": {"type": "url", "url": "http://example.com/dog.webp"}},
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG},
            },
        ],
    }
    assert request.ignored == ()


def test_the_mapped_messages_are_in_canonical_form() -> None:
    request = parse(
        body(user([{"type": "text", "text": "a"}]), assistant([{"type": "text", "text": "b"}]), HI)
    )
    assert request.messages == check_messages(request.messages)
    assert isinstance(request.messages, tuple)


def image(url: object, **extra: Any) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, **extra}}


@pytest.mark.parametrize(
    ("part", "param", "words"),
    [
        (image("data:image/png,abc"), "messages.0.content.0.image_url.url", "base64"),
        (image("data:image/tiff;base64,abc"), "messages.0.content.0.image_url.url", "image/tiff"),
        (image("data:;base64,abc"), "messages.0.content.0.image_url.url", "not supported"),
        (image("ftp://example.com/a.png"), "messages.0.content.0.image_url.url", "http(s)"),
        (image("a.png"), "messages.0.content.0.image_url.url", "data: URL"),
        (image(3), "messages.0.content.0.image_url.url", "string"),
        (image("https://x/a.png", detail=1), "messages.0.content.0.image_url.detail", "string"),
        (image("https://x/a.png", size=1), "messages.0.content.0.image_url.size", "Unknown"),
        ({"type": "image_url"}, "messages.0.content.0.image_url", "object"),
        (
            {"type": "image_url", "image_url": "https://x/a.png"},
            "messages.0.content.0.image_url",
            "object",
        ),
        ({"type": "image_url", "image_url": {}}, "messages.0.content.0.image_url.url", "missing"),
    ],
)
def test_an_image_is_checked(part: dict[str, Any], param: str, words: str) -> None:
    error = refused(body(user([part]), assistant("a"), HI))
    assert error.param == param
    assert words in error.message


@pytest.mark.parametrize(
    "part",
    [
        {"type": "input_audio", "input_audio": {"data": "abc", "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-1"}},
    ],
)
def test_audio_and_file_parts_are_refused(part: dict[str, Any]) -> None:
    error = refused(body(user([{"type": "text", "text": "x"}, part]), assistant("a"), HI))
    assert error.param == "messages.0.content.1.type"
    assert f"'{part['type']}' parts are not supported" in error.message


@pytest.mark.parametrize("kind", ["refusal", "image", "video", None])
def test_an_unknown_user_part_is_refused(kind: object) -> None:
    error = refused(body(user([{"type": kind, "text": "x", "refusal": "x"}]), assistant("a"), HI))
    assert error.param == "messages.0.content.0.type"


def test_an_image_in_the_last_message_is_refused_at_its_openai_place() -> None:
    parts = [{"type": "text", "text": "look"}, image("https://example.com/a.png")]
    error = refused(
        body({"role": "system", "content": "s"}, {"role": "developer", "content": "d"}, user(parts))
    )
    assert error.param == "messages.2.content.1"
    assert "only text can be typed" in error.message


@pytest.mark.parametrize("text", ["exit", "   ", ":q"])
def test_a_last_message_the_cli_cannot_take_is_refused_at_its_openai_place(text: str) -> None:
    error = refused(body({"role": "system", "content": "s"}, HI, assistant("a"), user(text)))
    assert error.param == "messages.3"


def test_a_lone_surrogate_in_history_is_refused_at_its_openai_place() -> None:
    error = refused(body({"role": "developer", "content": "d"}, user("\ud800"), assistant("a"), HI))
    assert error.param == "messages.1.content"


def test_assistant_content_becomes_text() -> None:
    history = [
        assistant("plain"),
        assistant([{"type": "text", "text": "a"}, {"type": "refusal", "refusal": "no"}]),
        assistant(None, refusal="I can't"),
        assistant("partly", refusal="then refused"),
        assistant([{"type": "text", "text": "b"}], refusal="c", tool_calls=[], function_call=None),
        assistant(""),
    ]
    messages: list[dict[str, Any]] = []
    for reply in history:
        messages += [HI, reply]
    request = parse(body(*messages, HI))
    replies = [message["content"] for message in request.messages if message["role"] == "assistant"]
    assert replies == [
        "plain",
        [{"type": "text", "text": "a"}, {"type": "text", "text": "no"}],
        "I can't",
        [{"type": "text", "text": "partly"}, {"type": "text", "text": "then refused"}],
        [{"type": "text", "text": "b"}, {"type": "text", "text": "c"}],
        "",
    ]
    assert request.ignored == ()


@pytest.mark.parametrize(
    ("message", "param", "words"),
    [
        (
            assistant(
                None,
                tool_calls=[
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    }
                ],
            ),
            "messages.1.tool_calls",
            "client-defined tools, which are not supported",
        ),
        (
            assistant("x", function_call={"name": "f", "arguments": "{}"}),
            "messages.1.function_call",
            "client-defined tools, which are not supported",
        ),
        (assistant(None, audio={"id": "audio_1"}), "messages.1.audio", "audio"),
        (assistant(None), "messages.1.content", "needs 'content'"),
        ({"role": "assistant"}, "messages.1.content", "needs 'content'"),
        (assistant("x", refusal=3), "messages.1.refusal", "string"),
        (
            assistant([{"type": "image_url", "image_url": {"url": "https://x"}}]),
            "messages.1.content.0.type",
            "'text' or 'refusal'",
        ),
        (assistant([{"type": "refusal"}]), "messages.1.content.0.refusal", "missing"),
        (
            assistant([{"type": "refusal", "refusal": "r", "text": "t"}]),
            "messages.1.content.0.text",
            "Unknown",
        ),
        (assistant([]), "messages.1.content", "empty"),
    ],
)
def test_an_assistant_message_is_checked(message: dict[str, Any], param: str, words: str) -> None:
    error = refused(body(HI, message, HI))
    assert error.param == param
    assert words in error.message


def test_names_and_cache_breakpoints_are_ignored() -> None:
    parts = [
        {"type": "text", "text": "a", "prompt_cache_breakpoint": {}},
        image("https://example.com/a.png", detail="low"),
    ]
    request = parse(
        body(
            {"role": "system", "content": "s", "name": "boss"},
            user(parts),
            assistant("b", name=None),
            HI,
        )
    )
    assert request.ignored == (
        "messages.content.image_url.detail",
        "messages.content.prompt_cache_breakpoint",
        "messages.name",
    )
    assert request.messages[0]["content"][0] == {"type": "text", "text": "a"}
    assert refused(body(user("x", name=3))).param == "messages.0.name"


# --- finish reasons and usage ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        (None, "stop"),
        ("tool_use", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("refusal", "content_filter"),
    ],
)
def test_finish_reason(stop_reason: str | None, expected: str) -> None:
    assert finish_reason(stop_reason) == expected


USAGE = Usage(
    input_tokens=10, output_tokens=7, cache_creation_input_tokens=100, cache_read_input_tokens=1000
)
OPENAI_USAGE = {
    "prompt_tokens": 1110,
    "completion_tokens": 7,
    "total_tokens": 1117,
    "prompt_tokens_details": {"cached_tokens": 1000},
}


def said(message_id: str, *blocks: Any) -> AssistantMessage:
    return AssistantMessage(id=message_id, model="claude-x", content=blocks)


TURN: list[Event] = [
    said("msg_1", ThinkingBlock("hmm", signature="s")),
    said("msg_1", TextBlock("Let me look.")),
    said("msg_1", ToolUseBlock(id="t1", name="Read", input={"file_path": "/a"})),
    UserMessage(content=[ToolResultBlock(tool_use_id="t1", content="text")]),
    SystemMessage(subtype="api_retry", content="retrying"),
    said("msg_2", TextBlock("It says")),
    said("msg_2", TextBlock(" text.")),
    said("msg_3", TextBlock("")),
    ResultMessage(usage=USAGE, stop_reason="end_turn", num_api_messages=3),
]
TURN_TEXT = "Let me look.\n\nIt says text."


def test_a_completion_is_what_the_sdk_reads() -> None:
    completion = chat_completion(TURN, completion_id="chatcmpl-1", model="m", created=1700000000)
    assert completion == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": TURN_TEXT, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": OPENAI_USAGE,
        "system_fingerprint": None,
    }
    parsed = ChatCompletion.model_validate(completion)
    assert parsed.choices[0].message.content == TURN_TEXT
    assert parsed.usage is not None
    assert parsed.usage.prompt_tokens_details is not None
    assert parsed.usage.prompt_tokens_details.cached_tokens == 1000


@pytest.mark.parametrize("stop_reason", ["max_tokens", "refusal"])
def test_a_completion_says_why_it_stopped(stop_reason: str) -> None:
    completion = chat_completion(
        [said("m", TextBlock("x")), ResultMessage(stop_reason=stop_reason)],
        completion_id="c",
        model="m",
        created=0,
    )
    assert completion["choices"][0]["finish_reason"] == finish_reason(stop_reason)
    ChatCompletion.model_validate(completion)


def test_a_turn_without_text_is_an_empty_completion() -> None:
    completion = chat_completion([ResultMessage()], completion_id="c", model="m", created=0)
    assert completion["choices"][0]["message"]["content"] == ""
    assert completion["usage"] == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


@pytest.mark.parametrize("turn", [[], TURN[:-1], [*TURN, said("late", TextBlock("x"))]])
def test_a_completion_needs_a_finished_turn(turn: list[Event]) -> None:
    with pytest.raises(ValueError, match="end with a ResultMessage"):
        chat_completion(turn, completion_id="c", model="m", created=0)


# --- streams -----------------------------------------------------------------------------------


def stream(turn: Sequence[Event], *, include_usage: bool, model: str = "m") -> list[dict[str, Any]]:
    encoder = ChatStreamEncoder(
        completion_id="chatcmpl-1", model=model, created=1700000000, include_usage=include_usage
    )
    chunks = encoder.start()
    for event in turn[:-1]:
        chunks += encoder.feed(event)
    last = turn[-1]
    assert isinstance(last, ResultMessage)
    return chunks + encoder.finish(last)


def deltas(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks if chunk["choices"]
    )


def test_a_stream_is_what_the_sdk_reads() -> None:
    chunks = stream(TURN, include_usage=False)
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
        assert chunk["id"] == "chatcmpl-1"
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["created"] == 1700000000
        assert chunk["model"] == "m"
        assert chunk["system_fingerprint"] is None
        assert "usage" not in chunk
    choices = [chunk["choices"] for chunk in chunks]
    assert choices == [
        [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": ""},
                "logprobs": None,
                "finish_reason": None,
            }
        ],
        [
            {
                "index": 0,
                "delta": {"content": "Let me look."},
                "logprobs": None,
                "finish_reason": None,
            }
        ],
        [
            {
                "index": 0,
                "delta": {"content": "\n\nIt says"},
                "logprobs": None,
                "finish_reason": None,
            }
        ],
        [{"index": 0, "delta": {"content": " text."}, "logprobs": None, "finish_reason": None}],
        [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
    ]


def test_a_stream_ends_with_the_usage_when_asked() -> None:
    chunks = stream(TURN, include_usage=True)
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    assert [chunk["usage"] for chunk in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == OPENAI_USAGE
    assert deltas(chunks) == TURN_TEXT


def test_a_stream_says_why_it_stopped() -> None:
    chunks = stream([ResultMessage(stop_reason="max_tokens")], include_usage=False)
    assert [chunk["choices"][0]["finish_reason"] for chunk in chunks] == [None, "length"]


def test_feeding_anything_but_assistant_text_adds_nothing() -> None:
    encoder = ChatStreamEncoder(completion_id="c", model="m", created=0, include_usage=False)
    encoder.start()
    for event in TURN:
        if not (
            isinstance(event, AssistantMessage)
            and any(isinstance(b, TextBlock) for b in event.content)
        ):
            assert encoder.feed(event) == []


@pytest.mark.parametrize(
    "calls",
    [
        ["feed"],
        ["finish"],
        ["start", "start"],
        ["start", "finish", "finish"],
        ["start", "finish", "feed"],
    ],
)
def test_the_encoder_is_used_in_order(calls: list[str]) -> None:
    encoder = ChatStreamEncoder(completion_id="c", model="m", created=0, include_usage=False)
    steps: dict[str, Callable[[], object]] = {
        "start": encoder.start,
        "feed": lambda: encoder.feed(said("a", TextBlock("x"))),
        "finish": lambda: encoder.finish(ResultMessage()),
    }
    for call in calls[:-1]:
        steps[call]()
    with pytest.raises(RuntimeError):
        steps[calls[-1]]()


@st.composite
def turns(draw: st.DrawFn) -> list[Event]:
    """A turn's events, with few message ids so that messages share them."""
    turn: list[Event] = []
    for event in draw(
        st.lists(events(metadata=False) | assistant_messages(metadata=False), max_size=12)
    ):
        if isinstance(event, AssistantMessage):
            event = attrs.evolve(event, id=draw(st.sampled_from(["msg_a", "msg_b", "msg_c"])))
        if not isinstance(event, ResultMessage):
            turn.append(event)
    return [*turn, draw(result_messages)]


def expected_text(turn: list[Event]) -> str:
    """The text blocks of the turn, a blank line between two API messages' texts."""
    pieces = [
        (event.id, block.text)
        for event in turn
        if isinstance(event, AssistantMessage)
        for block in event.content
        if isinstance(block, TextBlock) and block.text
    ]
    expected = ""
    for index, (message_id, text) in enumerate(pieces):
        if index and pieces[index - 1][0] != message_id:
            expected += "\n\n"
        expected += text
    return expected


@given(turns(), st.booleans())
def test_a_stream_carries_the_text_of_the_completion(
    turn: list[Event], include_usage: bool
) -> None:
    completion = chat_completion(turn, completion_id="chatcmpl-1", model="m", created=1700000000)
    assert completion["choices"][0]["message"]["content"] == expected_text(turn)
    chunks = stream(turn, include_usage=include_usage)
    assert deltas(chunks) == completion["choices"][0]["message"]["content"]
    finished = [
        chunk for chunk in chunks if chunk["choices"] and chunk["choices"][0]["finish_reason"]
    ]
    assert [chunk["choices"][0]["finish_reason"] for chunk in finished] == [
        completion["choices"][0]["finish_reason"]
    ]
    if include_usage:
        assert chunks[-1]["usage"] == completion["usage"]
    ChatCompletion.model_validate(completion)
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)


# --- through the openai SDK --------------------------------------------------------------------


def gateway(turn: list[Event]) -> Callable[[Any], Any]:
    """A stand-in for the gateway's route: this module between the SDK and a canned turn."""

    def handle(request: Any) -> Any:
        try:
            chat = parse(json.loads(request.content))
        except GatewayError as error:
            return http.Response(error.status, json=openai_error_body(error))
        if not chat.stream:
            completion = chat_completion(
                turn, completion_id="chatcmpl-1", model=chat.model, created=1700000000
            )
            return http.Response(200, json=completion)
        chunks = stream(turn, include_usage=chat.include_usage, model=chat.model)
        lines = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks] + ["data: [DONE]\n\n"]
        return http.Response(
            200, content="".join(lines).encode(), headers={"content-type": "text/event-stream"}
        )

    return handle


@pytest.fixture
def client() -> Iterator[openai.OpenAI]:
    transport = http.MockTransport(gateway(TURN))
    with http.Client(transport=transport) as http_client:
        yield openai.OpenAI(
            api_key="token",
            base_url="http://gateway.test/v1",
            http_client=http_client,
            max_retries=0,
        )


def test_the_sdk_gets_a_completion(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="claude-sonnet-4-5",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        temperature=0.2,
        max_tokens=100,
    )
    assert completion.choices[0].message.content == TURN_TEXT
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "claude-sonnet-4-5"
    assert completion.usage is not None
    assert completion.usage.total_tokens == 1117


def test_the_sdk_gets_a_stream(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="claude-sonnet-4-5",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == TURN_TEXT
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 1110


def test_the_sdk_gets_the_place_of_a_refusal(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="claude-sonnet-4-5",
            messages=[{"role": "user", "content": "hi"}],
            tools=[{"type": "function", "function": {"name": "lookup"}}],
        )
    assert info.value.param == "tools"
    assert info.value.status_code == 400
