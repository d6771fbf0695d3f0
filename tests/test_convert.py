"""Tests for claude_trio._convert: the cattrs converter for session records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import cattrs
import pytest
from hypothesis import given, settings

from claude_trio import MessageParseError, make_converter
from claude_trio import _records as rec
from claude_trio._convert import parse_record, unstructure_record, wire_key

from .strategies import mutated_sample_records, record_like_objects, session_files

_RECORD: Any = rec.Record


def walk(value: object) -> list[object]:
    """*value* and every attrs instance, list and tuple item below it."""
    found = [value]
    cls: Any = type(value)
    if attrs.has(cls):
        for field in attrs.fields(cls):
            found += walk(getattr(value, field.name))
    elif isinstance(value, list | tuple):
        for item in value:
            found += walk(item)
    elif isinstance(value, dict):
        for item in value.values():
            if attrs.has(type(item)):
                found += walk(item)
    return found


@pytest.mark.parametrize("path", session_files(), ids=lambda path: path.name)
def test_samples_fit_the_models_exactly(path: Path) -> None:
    strict = make_converter(forbid_extra_keys=True)
    lines = path.read_text("utf-8").rstrip("\n").split("\n")
    assert lines
    for number, line in enumerate(lines, 1):
        record = strict.structure(json.loads(line), _RECORD)
        unknown = [
            part
            for part in walk(record)
            if isinstance(part, rec.UnknownRecord | rec.UnknownBlockRecord)
        ]
        assert not unknown, f"{path.name}:{number}: the models do not know {unknown}"
        parsed = parse_record(line, path=path, line_number=number)
        assert parsed.record == record
        assert parsed.ignored == ()


def lost_in_round_trip(raw: object, back: object, path: str = "$") -> list[str]:
    """Where *back* differs from *raw*, other than keys left out at a None/False value."""
    if isinstance(raw, dict) and isinstance(back, dict):
        problems = [f"{path}.{key}: added" for key in back.keys() - raw.keys()]
        for key, value in raw.items():
            if key not in back:
                if value is not None and value is not False:
                    problems.append(f"{path}.{key}: dropped {value!r}")
            else:
                problems += lost_in_round_trip(value, back[key], f"{path}.{key}")
        return problems
    if isinstance(raw, list) and isinstance(back, list) and len(raw) == len(back):
        return [
            p
            for i, (a, b) in enumerate(zip(raw, back, strict=True))
            for p in lost_in_round_trip(a, b, f"{path}[{i}]")
        ]
    same_kind = type(raw) is type(back) or {type(raw), type(back)} == {int, float}
    return [] if raw == back and same_kind else [f"{path}: {raw!r} != {back!r}"]


@pytest.mark.parametrize("path", session_files(), ids=lambda path: path.name)
def test_records_unstructure_to_what_the_cli_wrote(path: Path) -> None:
    for line in path.read_text("utf-8").rstrip("\n").split("\n"):
        raw = json.loads(line)
        record = parse_record(raw).record
        back = unstructure_record(record)
        assert lost_in_round_trip(raw, back) == []
        assert parse_record(back).record == record


def test_wire_keys() -> None:
    keys = {field.name: wire_key(rec.UserRecord, field) for field in attrs.fields(rec.UserRecord)}
    assert keys["parent_uuid"] == "parentUuid"
    assert keys["session_id"] == "sessionId"
    assert keys["session_id_copy"] == "session_id"
    assert keys["source_tool_assistant_uuid"] == "sourceToolAssistantUUID"
    assert keys["is_meta"] == "isMeta"
    cost = {f.name: wire_key(rec.CostStateRecord, f) for f in attrs.fields(rec.CostStateRecord)}
    assert cost["total_cost_usd"] == "totalCostUSD"
    assert cost["total_api_duration"] == "totalAPIDuration"
    usage = {f.name: wire_key(rec.ModelUsageRecord, f) for f in attrs.fields(rec.ModelUsageRecord)}
    assert (
        usage["cache_creation_ephemeral_5m_input_tokens"] == "cacheCreationEphemeral5mInputTokens"
    )
    assert usage["cost_usd"] == "costUSD"
    message = {
        f.name: wire_key(rec.AssistantMessageRecord, f)
        for f in attrs.fields(rec.AssistantMessageRecord)
    }
    assert message["stop_reason"] == "stop_reason"


def test_unknown_types_are_kept_raw() -> None:
    raw = {"type": "summary", "summary": "Fixing bugs", "leafUuid": "u"}
    parsed = parse_record(json.dumps(raw))
    assert parsed.record == rec.UnknownRecord(raw=raw)
    assert unstructure_record(parsed.record) == raw
    assert parse_record({"no": "type"}).record == rec.UnknownRecord(raw={"no": "type"})

    block = {"type": "redacted_thinking", "data": "opaque"}
    user = parse_record(
        {
            "type": "user",
            "message": {"role": "user", "content": [block, {"type": "text", "text": "x"}]},
        }
    ).record
    assert isinstance(user, rec.UserRecord)
    assert user.message.content == (
        rec.UnknownBlockRecord(raw=block),
        rec.TextBlockRecord(text="x"),
    )
    assert unstructure_record(user)["message"]["content"] == [block, {"type": "text", "text": "x"}]


def test_unknown_keys_are_ignored_but_reported() -> None:
    raw = {
        "type": "user",
        "newTopLevel": 1,
        "message": {
            "role": "user",
            "content": [{"type": "text", "text": "x", "cache_control": {}}],
        },
    }
    parsed = parse_record(raw)
    assert sorted(parsed.ignored) == ["message.content[].cache_control", "newTopLevel"]
    with pytest.raises(cattrs.ClassValidationError):
        make_converter(forbid_extra_keys=True).structure(raw, _RECORD)
    cost = parse_record(
        {"type": "cost-state", "modelUsage": {"m": {"inputTokens": 1, "contextWindow": 9}}}
    )
    assert cost.ignored == ("modelUsage.*.contextWindow",)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("durationMs", "97"),
        ("durationMs", 97.0),
        ("durationMs", True),
        ("isMeta", 1),
        ("uuid", 5),
        ("timestamp", 1795519116),
        ("subtype", None),
    ],
)
def test_primitives_are_not_coerced(field: str, value: object) -> None:
    raw = {"type": "system", "subtype": "turn_duration", "durationMs": 97, field: value}
    with pytest.raises(MessageParseError) as info:
        parse_record(raw)
    assert info.value.detail


def test_floats_accept_integers() -> None:
    record = parse_record({"type": "cost-state", "totalCostUSD": 0}).record
    assert isinstance(record, rec.CostStateRecord)
    assert record.total_cost_usd == 0.0
    assert type(record.total_cost_usd) is float


def test_parse_errors_carry_location() -> None:
    with pytest.raises(MessageParseError) as info:
        parse_record(b'{"type": "user"}\n', path=Path("/x/s.jsonl"), line_number=3)
    error = info.value
    assert (error.path, error.line_number, error.line) == ("/x/s.jsonl", 3, '{"type": "user"}')
    assert "message" in error.detail
    assert isinstance(error.__cause__, cattrs.BaseValidationError)


def test_make_converter_builds_independent_converters() -> None:
    first, second = make_converter(), make_converter()
    assert first is not second
    line = '{"type": "mode", "mode": "normal", "sessionId": "s"}'
    first.register_structure_hook(rec.ModeRecord, lambda value, _: rec.ModeRecord(mode="hooked"))
    assert first.structure(json.loads(line), rec.ModeRecord).mode == "hooked"
    assert second.structure(json.loads(line), rec.ModeRecord).mode == "normal"
    assert parse_record(line).record == rec.ModeRecord(mode="normal", session_id="s")


@settings(deadline=None)
@given(record_like_objects())
def test_parsed_records_round_trip(raw: dict[str, Any]) -> None:
    try:
        record = parse_record(raw).record
    except MessageParseError:
        return
    assert parse_record(unstructure_record(record)).record == record


@settings(deadline=None, max_examples=300)
@given(mutated_sample_records())
def test_mutated_records_round_trip_or_fail_cleanly(raw: dict[str, Any]) -> None:
    try:
        record = parse_record(raw).record
    except MessageParseError:
        return
    assert parse_record(json.dumps(unstructure_record(record))).record == record
