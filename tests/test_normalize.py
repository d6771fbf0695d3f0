"""Tests for claude_trio._normalize: records to events and turn signals."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_trio import (
    APIConnectionError,
    APIError,
    AssistantMessage,
    AuthError,
    CostState,
    MessageParseError,
    Normalized,
    OverloadedError,
    RateLimitError,
    RecordStatistics,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    TurnAccumulator,
    TurnEnd,
    TurnFailed,
    TurnInterrupted,
    Usage,
    UsageTally,
    UserMessage,
    merge_assistant_messages,
    normalize,
    sum_usage,
)
from claude_trio._convert import parse_record
from claude_trio._normalize import normalize_record
from claude_trio._records import CostStateRecord

from .strategies import (
    assistant_messages,
    mutated_sample_records,
    record_like_objects,
    sample_records,
    samples_dir,
    session_files,
)

# --- hand-checked expectations per sample ---------------------------------------------------
#
# Every line of a sample that yields an event or a signal, rendered by `describe`; all other
# lines (attachments, api-request*, mode, …) must yield nothing. Checked by hand against the
# raw JSONL and FACTS.md §4, §7, §8.

EXPECTED_LINES: dict[str, dict[int, str]] = {
    "session_api_error_401.jsonl": {
        4: "user 'ERR401 test'",
        24: "failed AuthError 401",
        30: "user 'hello after error'",
        33: "failed AuthError 401",
        34: "cost 0.0",
        36: "cost 0.0",
    },
    "session_api_error_429.jsonl": {
        4: "user 'ERR429 test'",
        24: "failed RateLimitError 429",
        30: "user 'hello after error'",
        33: "failed RateLimitError 429",
        34: "cost 0.0",
        36: "cost 0.0",
    },
    "session_api_error_conn_refused.jsonl": {
        4: "user 'DOWN test'",
        24: "failed APIConnectionError None",
        29: "cost 0.0",
        30: "cost 0.0",
    },
    "session_interrupted_esc_ctrlc.jsonl": {
        5: "user 'SLOW10 please'",
        24: "assistant msg_mock_e72 [text] None",
        25: "user [text]; interrupted",
        27: "user 'after interrupt'",
        30: "assistant msg_mock_a9c [text] end_turn",
        32: "end 97ms",
        38: "user 'SLOW10 again'",
        40: "assistant msg_mock_974 [text] None",
        41: "user [text]; interrupted",
        42: "cost 0.03661199999999999",
        44: "cost 0.03661199999999999",
    },
    "session_mcp_echo.jsonl": {
        6: "user 'CALL_TOOL mcp__echo_'",
        24: "assistant msg_mock_24e [text] tool_use",
        25: "assistant msg_mock_24e [tool_use] tool_use",
        26: "user [tool_result]",
        28: "assistant msg_mock_211 [text] end_turn",
        29: "end 262ms",
        35: "user 'CALL_BASH python3 -c'",
        38: "assistant msg_mock_203 [text] tool_use",
        39: "assistant msg_mock_203 [tool_use] tool_use",
        41: "user [tool_result]",
        42: "user [text]; interrupted for tool use",
        43: "cost 0.038892",
        46: "cost 0.038892",
    },
    "session_multiturn_11.jsonl": {
        4: "user 'immediate 0'",
        20: "assistant msg_mock_729 [text] end_turn",
        22: "end 209ms",
        **{
            line: f"user 'turn {n}'"
            for n, line in enumerate((28, 33, 38, 43, 48, 53, 58, 63, 68, 77))
        },
        30: "assistant msg_mock_9fb [text] end_turn",
        31: "end 60ms",
        35: "assistant msg_mock_de8 [text] end_turn",
        36: "end 63ms",
        40: "assistant msg_mock_9d3 [text] end_turn",
        41: "end 56ms",
        45: "assistant msg_mock_c18 [text] end_turn",
        46: "end 103ms",
        50: "assistant msg_mock_562 [text] end_turn",
        51: "end 63ms",
        55: "assistant msg_mock_bf9 [text] end_turn",
        56: "end 56ms",
        60: "assistant msg_mock_d46 [text] end_turn",
        61: "end 61ms",
        65: "assistant msg_mock_754 [text] end_turn",
        66: "end 62ms",
        70: "assistant msg_mock_847 [text] end_turn",
        71: "end 57ms",
        79: "assistant msg_mock_90f [text] end_turn",
        80: "end 55ms",
        81: "cost 0.13912799999999997",
        83: "cost 0.13912799999999997",
    },
    "session_resumed_handwritten.jsonl": {
        1: "user 'hand hello'",
        2: "assistant msg_hand_1 [text] end_turn",
        5: "user 'resumed question'",
        21: "assistant msg_mock_ecc [text] end_turn",
        23: "end 185ms",
        28: "cost 0.01226",
        29: "cost 0.01226",
    },
    "session_thinking_maxtokens_slow.jsonl": {
        5: "user 'THINK about it'",
        20: "assistant msg_mock_80e [thinking] end_turn",
        21: "assistant msg_mock_80e [text] end_turn",
        23: "end 146ms",
        29: "user 'MAXTOK please'",
        31: "assistant msg_mock_148 [text] max_tokens",
        32: "user meta 'Output token limit h'",
        34: "assistant msg_mock_0d6 [text] end_turn",
        35: "end 109ms",
        37: "user 'SLOW4 go'",
        39: "assistant msg_mock_4d8 [text] end_turn",
        40: "end 4063ms",
        41: "cost 0.051608",
        43: "cost 0.051608",
    },
    "session_tool_use_bash_read.jsonl": {
        5: "user 'CALL_BASH echo hi'",
        21: "assistant msg_mock_f21 [text] tool_use",
        22: "assistant msg_mock_f21 [tool_use] tool_use",
        27: "user [tool_result]",
        30: "assistant msg_mock_44d [text] end_turn",
        31: "end 300ms",
        37: "user 'CALL_READ a.txt'",
        40: "assistant msg_mock_257 [text] tool_use",
        41: "assistant msg_mock_257 [tool_use] tool_use",
        42: "user [tool_result]",
        44: "assistant msg_mock_5e6 [text] end_turn",
        45: "end 143ms",
        46: "cost 0.051268",
        48: "cost 0.051268",
    },
    "resume_minimal_handwritten_input.jsonl": {
        1: "user 'hand hello'",
        # No message id in a hand-written record: the record uuid stands in.
        2: "assistant 059c183b-f71 [text] None",
    },
}

#: Per turn (records up to each end of turn): input tokens, output tokens, distinct API
#: messages, stop_reason, duration_ms, is_error, interrupted. Usage is per distinct
#: message id: a thinking+text reply counts once, a max_tokens turn sums its two requests.
EXPECTED_TURNS: dict[str, list[tuple[int, int, int, str | None, int | None, bool, bool]]] = {
    "session_api_error_401.jsonl": [(0, 0, 0, None, None, True, False)] * 2,
    "session_api_error_429.jsonl": [(0, 0, 0, None, None, True, False)] * 2,
    "session_api_error_conn_refused.jsonl": [(0, 0, 0, None, None, True, False)],
    "session_interrupted_esc_ctrlc.jsonl": [
        (2959, 1, 1, None, None, False, True),
        (3005, 21, 1, "end_turn", 97, False, False),
        (3054, 1, 1, None, None, False, True),
    ],
    "session_mcp_echo.jsonl": [
        (2978 + 3065, 44 + 13, 2, "end_turn", 262, False, False),
        (3115, 56, 1, "tool_use", None, False, True),
    ],
    "session_multiturn_11.jsonl": [
        (2959, 12, 1, "end_turn", 209, False, False),
        (2990, 11, 1, "end_turn", 60, False, False),
        (3019, 11, 1, "end_turn", 63, False, False),
        (3048, 11, 1, "end_turn", 56, False, False),
        (3077, 11, 1, "end_turn", 103, False, False),
        (3107, 11, 1, "end_turn", 63, False, False),
        (3136, 11, 1, "end_turn", 56, False, False),
        (3165, 11, 1, "end_turn", 61, False, False),
        (3194, 11, 1, "end_turn", 62, False, False),
        (3224, 11, 1, "end_turn", 57, False, False),
        (3253, 11, 1, "end_turn", 55, False, False),
    ],
    # The hand-written pair before the resumed turn has no end marker of its own.
    "session_resumed_handwritten.jsonl": [(1 + 3000, 1 + 13, 2, "end_turn", 185, False, False)],
    "session_thinking_maxtokens_slow.jsonl": [
        (2959, 46, 1, "end_turn", 146, False, False),
        (3027 + 3103, 12 + 56, 2, "end_turn", 109, False, False),
        (3178, 13, 1, "end_turn", 4063, False, False),
    ],
    "session_tool_use_bash_read.jsonl": [
        (2960 + 3046, 47 + 11, 2, "end_turn", 300, False, False),
        (3084 + 3162, 39 + 16, 2, "end_turn", 143, False, False),
    ],
    "resume_minimal_handwritten_input.jsonl": [],
}


def describe(item: Normalized) -> str:
    """Render what one record gave, compactly."""
    parts: list[str] = []
    for event in item.events:
        if isinstance(event, UserMessage):
            meta = "meta " if event.is_meta else ""
            body = (
                repr(event.content[:20])
                if isinstance(event.content, str)
                else "[" + ", ".join(block.type for block in event.content) + "]"
            )
            parts.append(f"user {meta}{body}")
        elif isinstance(event, AssistantMessage):
            kinds = ", ".join(block.type for block in event.content)
            parts.append(f"assistant {event.id[:12]} [{kinds}] {event.stop_reason}")
        elif isinstance(event, SystemMessage):
            parts.append(f"system {event.subtype}")
        else:
            parts.append(f"unexpected {event!r}")
    signal = item.signal
    if isinstance(signal, TurnEnd):
        parts.append(f"end {signal.duration_ms}ms")
    elif isinstance(signal, TurnFailed):
        parts.append(f"failed {type(signal.error).__name__} {signal.error.status}")
    elif isinstance(signal, TurnInterrupted):
        parts.append("interrupted" + (" for tool use" if signal.for_tool_use else ""))
    elif isinstance(signal, CostState):
        parts.append(f"cost {signal.total_cost_usd}")
    return "; ".join(parts)


def normalized_lines(path: Path) -> Iterator[tuple[int, Normalized]]:
    with path.open("rb") as file:
        for number, line in enumerate(file, 1):
            yield number, normalize(line, path=path, line_number=number)


def test_every_sample_has_expectations() -> None:
    assert sorted(path.name for path in session_files()) == sorted(EXPECTED_LINES)


@pytest.mark.parametrize("name", sorted(EXPECTED_LINES))
def test_sample_events_and_signals(name: str) -> None:
    path = samples_dir() / name
    if not path.is_file():
        pytest.fail(f"sample {path} is missing")
    seen = {number: describe(item) for number, item in normalized_lines(path)}
    assert {number: text for number, text in seen.items() if text} == EXPECTED_LINES[name]
    assert all(item.known and not item.ignored for _, item in normalized_lines(path))


@pytest.mark.parametrize("name", sorted(EXPECTED_TURNS))
def test_sample_turn_results(name: str) -> None:
    results: list[ResultMessage] = []
    turn = TurnAccumulator()
    for _, item in normalized_lines(samples_dir() / name):
        turn.add(item)
        if item.ends_turn:
            results.append(turn.result())
            turn = TurnAccumulator()
    summary = [
        (
            r.usage.input_tokens,
            r.usage.output_tokens,
            r.num_api_messages,
            r.stop_reason,
            r.duration_ms,
            r.is_error,
            r.interrupted,
        )
        for r in results
    ]
    assert summary == EXPECTED_TURNS[name]
    assert all(r.session_id for r in results)


# The CLI's own cost-state totals (modelUsage) agree with usage summed once per message id,
# over every API message this process received. Two known differences: the resumed file
# holds a hand-written message the process never requested (1 in, 1 out), and each
# interrupted stream's record keeps the usage of message_start (1 output token), while the
# CLI's own total counts 4 more output tokens over the two interrupted replies.
CLI_TOTAL_OFFSETS = {
    "session_resumed_handwritten.jsonl": (1, 1),
    "session_interrupted_esc_ctrlc.jsonl": (0, -4),
}


@pytest.mark.parametrize("path", session_files()[:-1], ids=lambda path: path.name)
def test_usage_per_message_id_matches_cli_cost_state(path: Path) -> None:
    lines = path.read_text("utf-8").rstrip("\n").split("\n")
    messages = [
        event
        for line in lines
        for event in normalize(line).events
        if isinstance(event, AssistantMessage)
    ]
    cost_states = [
        record for line in lines if isinstance(record := parse_record(line).record, CostStateRecord)
    ]
    model_usage = cost_states[-1].model_usage or {}
    cli_in = sum(entry.input_tokens or 0 for entry in model_usage.values())
    cli_out = sum(entry.output_tokens or 0 for entry in model_usage.values())
    total = sum_usage(messages)
    extra_in, extra_out = CLI_TOTAL_OFFSETS.get(path.name, (0, 0))
    assert (total.input_tokens, total.output_tokens) == (cli_in + extra_in, cli_out + extra_out)
    per_record = sum(message.usage.output_tokens for message in messages)
    if len({message.id for message in messages}) < len(messages):
        assert per_record > total.output_tokens  # adding per record would double-count


# --- record kinds in detail ---------------------------------------------------------------------


def sample_line(name: str, number: int) -> str:
    return (samples_dir() / name).read_text("utf-8").split("\n")[number - 1]


def sample_json(name: str, number: int) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(sample_line(name, number))
    return record


def test_assistant_message_fields() -> None:
    item = normalize(sample_line("session_thinking_maxtokens_slow.jsonl", 20))
    (message,) = item.events
    assert isinstance(message, AssistantMessage)
    assert message.id == "msg_mock_80efb29ebe0e43aeb1ac"
    assert message.model == "claude-opus-5-5"
    assert message.content == (
        ThinkingBlock(
            "Let me think about: THINK about it",
            signature="mocksig_88de6f3cbdff469fa4078c3ebe7925f6",
        ),
    )
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    assert message.usage.input_tokens == 2959
    assert message.usage.output_tokens == 46
    assert message.usage.service_tier == "standard"
    assert message.session_id == "dfae3430-2b7c-4f6f-9508-3e5982dbf07b"
    assert message.uuid == "61580413-d09e-46b9-8702-bd446aadbbd8"
    assert message.parent_uuid == "c7fd4afd-4e77-4686-a38b-43d465439661"
    assert message.timestamp is not None
    assert message.timestamp.isoformat() == "2026-11-24T11:18:55.558000+00:00"
    assert item.signal is None
    assert item.record_type == "assistant"


def test_tool_use_and_results() -> None:
    (call,) = normalize(sample_line("session_mcp_echo.jsonl", 25)).events
    assert isinstance(call, AssistantMessage)
    assert call.content == (
        ToolUseBlock(
            id="toolu_mock_e983bbb4ebd94bf08178", name="mcp__echo__echo", input={"text": "hi mcp"}
        ),
    )
    (result,) = normalize(sample_line("session_mcp_echo.jsonl", 26)).events
    assert isinstance(result, UserMessage)
    assert result.content == (
        ToolResultBlock(
            tool_use_id="toolu_mock_e983bbb4ebd94bf08178",
            content=({"type": "text", "text": "ECHO: hi mcp"},),
            is_error=False,
        ),
    )
    (refused,) = normalize(sample_line("session_mcp_echo.jsonl", 41)).events
    assert isinstance(refused, UserMessage)
    assert not isinstance(refused.content, str)
    (block,) = refused.content
    assert isinstance(block, ToolResultBlock)
    assert block.is_error
    assert isinstance(block.content, str)
    assert block.content.startswith("The user doesn't want to proceed")


def test_interrupt_markers() -> None:
    item = normalize(sample_line("session_interrupted_esc_ctrlc.jsonl", 25))
    assert item.ends_turn
    assert isinstance(item.signal, TurnInterrupted)
    assert attrs.evolve(item.signal, timestamp=None) == TurnInterrupted(
        for_tool_use=False,
        message_id="msg_mock_e7224d53ba7342a8a965",
        session_id="5b52f5a7-6da5-44c9-9c75-e1b6e2d94df1",
        uuid="f282c444-383b-4bfa-9fba-9c317b66a4ee",
    )
    (message,) = item.events
    assert isinstance(message, UserMessage)
    assert message.content == (TextBlock("[Request interrupted by user]"),)

    tool = normalize(sample_line("session_mcp_echo.jsonl", 42))
    assert isinstance(tool.signal, TurnInterrupted)
    assert tool.signal.for_tool_use


def test_typed_marker_text_is_not_an_interrupt() -> None:
    record = sample_json("session_multiturn_11.jsonl", 28)
    record["message"]["content"] = "[Request interrupted by user]"
    item = normalize(record)
    assert item.signal is None
    assert not item.ends_turn


def test_meta_user_message() -> None:
    (message,) = normalize(sample_line("session_thinking_maxtokens_slow.jsonl", 32)).events
    assert isinstance(message, UserMessage)
    assert message.is_meta
    assert message.prompt_id == "c5d76408-9d8e-494a-807c-408f57b42946"
    (human,) = normalize(sample_line("session_thinking_maxtokens_slow.jsonl", 29)).events
    assert isinstance(human, UserMessage)
    assert not human.is_meta


def test_turn_end() -> None:
    item = normalize(sample_line("session_multiturn_11.jsonl", 22))
    assert item.events == ()
    assert isinstance(item.signal, TurnEnd)
    assert (item.signal.duration_ms, item.signal.message_count) == (209, 13)
    assert item.ends_turn


def test_other_system_records_become_system_messages() -> None:
    record = sample_json("session_multiturn_11.jsonl", 22)
    del record["durationMs"], record["messageCount"]
    record |= {"subtype": "local_command", "content": "<local-command-stdout/>", "level": "info"}
    item = normalize(record)
    (message,) = item.events
    assert isinstance(message, SystemMessage)
    assert (message.subtype, message.content, message.level) == (
        "local_command",
        "<local-command-stdout/>",
        "info",
    )
    assert message.data == record
    assert item.signal is None
    # From a record model, the data is rebuilt in the CLI's own keys.
    from_model = normalize_record(parse_record(record).record)
    assert isinstance(from_model.events[0], SystemMessage)
    assert from_model.events[0].data["subtype"] == "local_command"
    assert from_model.events[0].data["sessionId"] == record["sessionId"]


def test_cost_state() -> None:
    item = normalize(sample_line("session_tool_use_bash_read.jsonl", 46))
    assert item.events == ()
    assert item.signal == CostState(
        total_cost_usd=0.051268,
        total_duration_ms=2172,
        total_api_duration_ms=144,
        total_api_duration_without_retries_ms=116,
        total_tool_duration_ms=117,
        lines_added=0,
        lines_removed=0,
        has_unknown_model_cost=False,
        session_id="2a21b1a4-23fe-499e-ae47-4c29910799a4",
    )
    assert not item.ends_turn


SIDE_RECORD_TYPES = {
    "attachment",
    "api-request",
    "api-request-blob",
    "api-request-shape",
    "mode",
    "permission-mode",
    "last-prompt",
    "file-history-snapshot",
    "tools-used",
    "atis-latch",
    "queue-operation",
}


def test_side_records_give_nothing() -> None:
    seen = set()
    for line in sample_records():
        item = normalize(line)
        if item.record_type in SIDE_RECORD_TYPES:
            seen.add(item.record_type)
            assert (item.events, item.signal, item.known) == ((), None, True)
    queued = normalize(
        {"type": "queue-operation", "operation": "enqueue", "content": "next", "sessionId": "s"}
    )
    assert (queued.events, queued.signal, queued.known, queued.ignored) == ((), None, True, ())
    assert seen == SIDE_RECORD_TYPES - {"queue-operation"}


# --- API errors -------------------------------------------------------------------------------


def error_record(**changes: Any) -> dict[str, Any]:
    """The 401 sample's error record, with *changes* (None removes a key)."""
    record = sample_json("session_api_error_401.jsonl", 24)
    for key, value in changes.items():
        if key == "text":
            record["message"]["content"] = [{"type": "text", "text": value}]
        elif value is None:
            record.pop(key, None)
        else:
            record[key] = value
    return record


OVERLOADED = (
    "API Error: 529 Overloaded. This is a server-side issue, usually temporary — try again in "
    "a moment. If it persists, check your inference gateway (127.0.0.1:40123)."
)


@pytest.mark.parametrize(
    ("changes", "error_class", "status"),
    [
        ({}, AuthError, 401),
        ({"apiErrorStatus": None}, AuthError, 401),
        (
            {"error": "rate_limit", "apiErrorStatus": 429, "text": "API Error: Request rejected"},
            RateLimitError,
            429,
        ),
        (
            {"error": "server_error", "apiErrorStatus": None, "text": OVERLOADED},
            OverloadedError,
            529,
        ),
        (
            {
                "error": "server_error",
                "apiErrorStatus": None,
                "text": "API Error: Repeated 529 Overloaded errors. The API is at capacity.",
            },
            OverloadedError,
            529,
        ),
        (
            {
                "error": "server_error",
                "apiErrorStatus": None,
                "text": "API Error: 500 mock internal error. This is a server-side issue…",
            },
            APIError,
            500,
        ),
        (
            {
                "error": "server_error",
                "apiError": "connection_failed",
                "apiErrorStatus": None,
                "text": "API Error: Connection refused (ECONNREFUSED)",
            },
            APIConnectionError,
            None,
        ),
        ({"error": "something_new", "apiErrorStatus": None, "text": "odd"}, APIError, None),
    ],
)
def test_api_error_mapping(
    changes: dict[str, Any], error_class: type[APIError], status: int | None
) -> None:
    item = normalize(error_record(**changes))
    assert item.events == ()
    assert isinstance(item.signal, TurnFailed)
    assert type(item.signal.error) is error_class
    assert item.signal.error.status == status
    assert str(item.signal.error) == item.signal.text
    assert item.ends_turn


def test_api_error_signal_fields() -> None:
    item = normalize(sample_line("session_api_error_conn_refused.jsonl", 24))
    assert isinstance(item.signal, TurnFailed)
    assert item.signal.kind == "server_error"
    assert item.signal.api_error == "connection_failed"
    assert item.signal.text.startswith("API Error: Connection refused")
    assert item.signal.session_id == "d1c9cd84-2c48-490f-8855-74aa7b4de868"


# --- malformed input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"\n",
        b"not json",
        b"[1, 2]",
        b'"a string"',
        b"\xff\xfe\x00garbage",
        b'{"type": ["assistant"]}',
        b'{"type": "assistant", "message": "not an object"}',
        b'{"type": "assistant", "message": {"role": "assistant", "content": [{"type": "text"}]}}',
        b'{"type": "user", "message": {"role": "user", "content": 5}}',
        b'{"type": "system", "subtype": "turn_duration", "durationMs": "97"}',
        b'{"type": "user", "message": {"role": "user", "content": "x"}, "timestamp": "yesterday"}',
        b"[" * 100_000,
    ],
)
def test_malformed_lines_raise_message_parse_error(line: bytes) -> None:
    with pytest.raises(MessageParseError) as info:
        normalize(line, path="/tmp/s.jsonl", line_number=7)
    assert info.value.path == "/tmp/s.jsonl"
    assert info.value.line_number == 7
    assert "/tmp/s.jsonl:7" in str(info.value)


def test_parse_error_names_the_field() -> None:
    line = sample_line("session_thinking_maxtokens_slow.jsonl", 20).replace(
        '"output_tokens": 46', '"output_tokens": "46"'
    )
    with pytest.raises(MessageParseError) as info:
        normalize(line)
    assert "$.message.usage.output_tokens" in info.value.detail
    assert info.value.line.startswith('{"parentUuid"')


def test_not_a_record_at_all() -> None:
    with pytest.raises(MessageParseError):
        normalize(42)  # type: ignore[arg-type]


def test_unknown_record_type_and_fields_are_counted() -> None:
    unknown = normalize(b'{"type": "summary", "summary": "x", "leafUuid": "u"}')
    assert (unknown.known, unknown.record_type, unknown.events, unknown.signal) == (
        False,
        "summary",
        (),
        None,
    )
    untyped = normalize(b'{"foo": 1}')
    assert (untyped.known, untyped.record_type) == (False, "")

    record = sample_json("session_thinking_maxtokens_slow.jsonl", 21)
    record["brandNew"] = 1
    record["message"]["usage"]["new_counter"] = 2
    record["message"]["content"].append({"type": "redacted_thinking", "data": "…"})
    extended = normalize(record)
    assert sorted(extended.ignored) == [
        "brandNew",
        "message.content[type=redacted_thinking]",
        "message.usage.new_counter",
    ]
    (message,) = extended.events
    assert isinstance(message, AssistantMessage)
    assert message.content == (TextBlock("after thinking: THINK about it"),)

    stats = RecordStatistics()
    for item in (unknown, untyped, extended, normalize(sample_line("session_mcp_echo.jsonl", 1))):
        stats = stats.counted(item)
    assert stats == RecordStatistics(
        records=4,
        unknown_records=2,
        ignored_fields=3,
        unknown_types=frozenset({"summary", ""}),
        ignored_paths=frozenset(extended.ignored),
    )


# --- properties ------------------------------------------------------------------------------


def only_parse_errors(data: object) -> None:
    try:
        result = normalize(data)  # type: ignore[arg-type]
    except MessageParseError:
        return
    assert isinstance(result, Normalized)


@settings(deadline=None)
@given(st.binary())
def test_random_bytes_never_crash(data: bytes) -> None:
    only_parse_errors(data)


@settings(deadline=None)
@given(st.text())
def test_random_text_never_crashes(data: str) -> None:
    only_parse_errors(data)


@settings(deadline=None)
@given(record_like_objects())
def test_record_like_objects_never_crash(record: dict[str, Any]) -> None:
    only_parse_errors(record)
    only_parse_errors(json.dumps(record).encode())


@settings(deadline=None, max_examples=300)
@given(mutated_sample_records())
def test_mutated_sample_records_never_crash(record: dict[str, Any]) -> None:
    only_parse_errors(record)


@settings(deadline=None)
@given(st.sampled_from(sample_records()), st.data())
def test_truncated_lines_are_parse_errors(line: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(1, len(line) - 1))
    with pytest.raises(MessageParseError):
        normalize(line[:cut])


def assistant_record(message: AssistantMessage) -> dict[str, Any]:
    """The JSONL record the CLI would write for *message*."""
    from claude_trio._convert import to_anthropic

    record: dict[str, Any] = {
        "type": "assistant",
        "message": to_anthropic(message),
        "sessionId": message.session_id,
        "uuid": message.uuid,
        "parentUuid": message.parent_uuid,
    }
    if message.timestamp is not None:
        record["timestamp"] = message.timestamp.isoformat()
    return record


@settings(deadline=None)
@given(assistant_messages())
def test_assistant_records_normalize_to_the_same_message(message: AssistantMessage) -> None:
    (event,) = normalize(json.dumps(assistant_record(message))).events
    assert event == message


# --- usage, merging, turns ----------------------------------------------------------------


def block_records(name: str, *numbers: int) -> list[AssistantMessage]:
    messages = []
    for number in numbers:
        (event,) = normalize(sample_line(name, number)).events
        assert isinstance(event, AssistantMessage)
        messages.append(event)
    return messages


def test_usage_tally_counts_each_message_id_once() -> None:
    thinking, text = block_records("session_thinking_maxtokens_slow.jsonl", 20, 21)
    tally = UsageTally()
    for message in (thinking, text, thinking, text):
        tally.add(message)
    assert tally.message_ids == ("msg_mock_80efb29ebe0e43aeb1ac",)
    assert tally.total() == thinking.usage
    (second,) = block_records("session_thinking_maxtokens_slow.jsonl", 31)
    tally.add(second)
    assert tally.total().input_tokens == 2959 + 3027
    assert sum_usage([thinking, text, second]) == tally.total()


def test_usage_sum_adds_every_counter() -> None:
    first, second = block_records("session_tool_use_bash_read.jsonl", 21, 30)
    a = attrs.evolve(first.usage, cache_read_input_tokens=5, cache_creation_input_tokens=7)
    b = attrs.evolve(second.usage, server_tool_use=None, service_tier=None)
    total = sum_usage([attrs.evolve(first, usage=a), attrs.evolve(second, usage=b)])
    assert total.input_tokens == 2960 + 3046
    assert total.output_tokens == 47 + 11
    assert (total.cache_read_input_tokens, total.cache_creation_input_tokens) == (5, 7)
    assert total.server_tool_use == a.server_tool_use
    assert total.service_tier == "standard"
    assert total.cache_creation is not None
    assert sum_usage([]) == Usage()


def test_merge_assistant_messages() -> None:
    name = "session_tool_use_bash_read.jsonl"
    lines = range(20, 31)
    events = [event for n in lines for event in normalize(sample_line(name, n)).events]
    merged = merge_assistant_messages(events)
    assert [type(event).__name__ for event in merged] == [
        "AssistantMessage",
        "UserMessage",
        "AssistantMessage",
    ]
    first = merged[0]
    assert isinstance(first, AssistantMessage)
    assert [block.type for block in first.content] == ["text", "tool_use"]
    text_record, tool_record = events[0], events[1]
    assert isinstance(text_record, AssistantMessage)
    assert isinstance(tool_record, AssistantMessage)
    assert first.uuid == tool_record.uuid
    assert first.parent_uuid == text_record.parent_uuid
    assert first.usage == text_record.usage
    assert merge_assistant_messages(merged) == merged
    assert merge_assistant_messages([]) == []


def test_merge_keeps_different_messages_apart() -> None:
    a, b = block_records("session_thinking_maxtokens_slow.jsonl", 31, 34)
    assert merge_assistant_messages([a, b]) == [a, b]
    assert merge_assistant_messages([a, a]) == [attrs.evolve(a, content=a.content * 2)]


def test_turn_accumulator_takes_cost_after_the_end_and_keeps_the_first_end() -> None:
    assert TurnAccumulator().end is None
    assert TurnAccumulator().result() == ResultMessage()
    turn = TurnAccumulator()
    for number in (29, 30, 31, 32, 33, 34, 35):
        turn.add(normalize(sample_line("session_thinking_maxtokens_slow.jsonl", number)))
    assert isinstance(turn.end, TurnEnd)
    turn.add(normalize(sample_line("session_thinking_maxtokens_slow.jsonl", 41)))
    turn.add_signal(TurnInterrupted())
    result = turn.result()
    assert result == ResultMessage(
        usage=result.usage,
        num_api_messages=2,
        stop_reason="end_turn",
        duration_ms=109,
        session_id="dfae3430-2b7c-4f6f-9508-3e5982dbf07b",
        total_cost_usd=0.051608,
        is_error=False,
        interrupted=False,
    )
    assert (result.usage.input_tokens, result.usage.output_tokens) == (3027 + 3103, 12 + 56)


def test_turn_accumulator_ignores_repeated_records() -> None:
    turn = TurnAccumulator()
    line = sample_line("session_thinking_maxtokens_slow.jsonl", 20)
    for _ in range(3):
        turn.add(normalize(line))
    assert turn.result().usage.input_tokens == 2959
    assert turn.result().num_api_messages == 1


def test_turn_accumulator_takes_the_session_from_events() -> None:
    turn = TurnAccumulator()
    (message,) = block_records("session_mcp_echo.jsonl", 24)
    turn.add_event(message)
    assert turn.end is None
    assert turn.result().session_id == "f59e17bf-e823-420d-b05d-77121df6aa49"
    assert turn.result().stop_reason == "tool_use"


def test_turn_failed_result() -> None:
    turn = TurnAccumulator()
    for number in (4, 24):
        turn.add(normalize(sample_line("session_api_error_401.jsonl", number)))
    result = turn.result()
    assert result.is_error
    assert result.num_api_messages == 0
    assert result.session_id == "608a6a5b-7748-4931-ba5f-36828958e085"


def test_normalize_accepts_mappings_and_records() -> None:
    line = sample_line("session_mcp_echo.jsonl", 25)
    from_text = normalize(line)
    assert normalize(line.encode()) == from_text
    assert normalize(bytearray(line.encode())) == from_text
    assert normalize(json.loads(line)) == from_text
    assert normalize_record(parse_record(line).record) == from_text

    class ReadOnly(dict[str, Any]):
        pass

    assert normalize(ReadOnly(json.loads(line))) == from_text


def test_normalize_does_not_change_its_input() -> None:
    record = sample_json("session_mcp_echo.jsonl", 26)
    before = copy.deepcopy(record)
    normalize(record)
    assert record == before
