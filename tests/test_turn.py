"""TurnManager: which records start a turn, which belong to it, and where it ends."""

from __future__ import annotations

import json
import uuid
from typing import Any

from claude_trio import AssistantMessage, Event, Normalized, TextBlock, TurnManager, normalize

from .strategies import samples_dir


def _records(name: str) -> list[dict[str, Any]]:
    lines = (samples_dir() / name).read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _normalized(record: dict[str, Any]) -> Normalized:
    return normalize(json.dumps(record))


def _texts(events: object) -> list[str]:
    return [
        block.text
        for event in events  # type: ignore[attr-defined]
        if isinstance(event, AssistantMessage)
        for block in event.content
        if isinstance(block, TextBlock)
    ]


def _turns(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The records split before each typed prompt."""
    turns: list[list[dict[str, Any]]] = [[]]
    for record in records:
        if record.get("promptSource") == "typed":
            turns.append([])
        turns[-1].append(record)
    return turns[1:]


def test_each_typed_prompt_of_a_real_session_is_one_turn() -> None:
    turns = _turns(_records("session_multiturn_11.jsonl"))
    assert len(turns) == 11
    for records in turns:
        prompt = records[0]["message"]["content"]
        manager = TurnManager(prompt)
        events = [event for record in records for event in manager.feed(_normalized(record))]
        assert manager.done
        assert manager.prompt_matched
        assert _texts(events) == [f"echo: {prompt}"]


def test_a_prompt_that_looks_like_a_command_record_starts_its_turn() -> None:
    records = _turns(_records("session_multiturn_11.jsonl"))[3]
    typed = "<command-name>/model</command-name> is what I typed"
    records[0] = {**records[0], "message": {"role": "user", "content": typed}}
    manager = TurnManager(typed)
    for record in records:
        manager.feed(_normalized(record))
    assert manager.started
    assert manager.prompt_matched
    assert manager.done


def test_records_of_another_prompts_chain_are_not_this_turns() -> None:
    records = _turns(_records("session_multiturn_11.jsonl"))[2]
    prompt = records[0]["message"]["content"]
    stranger = next(r for r in records if r["type"] == "assistant")
    stranger = {
        **stranger,
        "uuid": str(uuid.uuid4()),
        "parentUuid": str(uuid.uuid4()),  # chained to a record this turn never saw
        "message": {**stranger["message"], "content": [{"type": "text", "text": "not yours"}]},
    }
    manager = TurnManager(prompt)
    events: list[Event] = []
    for record in [*records[:2], stranger, *records[2:]]:
        events += manager.feed(_normalized(record))
    assert manager.done
    assert _texts(events) == [f"echo: {prompt}"]


def test_records_before_the_typed_prompt_are_not_the_turns() -> None:
    turns = _turns(_records("session_multiturn_11.jsonl"))
    previous, current = turns[4], turns[5]
    prompt = current[0]["message"]["content"]
    manager = TurnManager(prompt)
    for record in previous[1:]:
        assert manager.feed(_normalized(record)) == ()
    assert not manager.started
    events = [event for record in current for event in manager.feed(_normalized(record))]
    assert _texts(events) == [f"echo: {prompt}"]
