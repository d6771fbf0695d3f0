"""The chain records of the fake ``claude``: prompts, replies, tool results, turn ends.

Each function builds one kind of record exactly as the real samples hold it (FACTS.md §4,
§7, §8) on top of the recorder's chain (``parentUuid`` is the last chain record's
``uuid``), queues it, and returns its uuid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._fake_records import (
    INTERRUPTED,
    INTERRUPTED_FOR_TOOL,
    MAX_TOKENS_NOTE,
    REJECTED,
    JsonObject,
    Recorder,
    full_usage,
    new_uuid,
    now_iso,
)


def user_prompt(
    recorder: Recorder, text: str, *, prompt_id: str, position: int | None, uuid: str
) -> str:
    """A human prompt; returns its uuid."""
    record: JsonObject = {
        "parentUuid": recorder.last_uuid,
        "isSidechain": False,
        "promptId": prompt_id,
        "type": "user",
        "message": {"role": "user", "content": text},
        "uuid": uuid,
        "timestamp": now_iso(),
        "permissionMode": recorder.permission_mode,
        "origin": {"kind": "human"},
        "promptSource": "typed",
        "turnOrigin": "human",
    }
    if position is not None:
        record["turnPosition"] = {"promptIndex": position, "turnIndex": position}
    record.update(recorder.tail(snake=False))
    return recorder.add_chain(record)


def bash_input(recorder: Recorder, command: str, *, prompt_id: str) -> str:
    """The ``<bash-input>`` record of bash mode."""
    return recorder.add_chain(
        {
            "parentUuid": recorder.last_uuid,
            "isSidechain": False,
            "promptId": prompt_id,
            "type": "user",
            "message": {"role": "user", "content": f"<bash-input>{command}</bash-input>"},
            "uuid": new_uuid(),
            "timestamp": now_iso(),
            **recorder.tail(snake=False),
        }
    )


def bash_output(recorder: Recorder, content: str, *, prompt_id: str, position: int | None) -> str:
    """The ``<bash-stdout>…<bash-stderr>`` record of bash mode."""
    record: JsonObject = {
        "parentUuid": recorder.last_uuid,
        "isSidechain": False,
        "promptId": prompt_id,
        "type": "user",
        "message": {"role": "user", "content": content},
        "uuid": new_uuid(),
        "timestamp": now_iso(),
        "turnOrigin": "human",
    }
    if position is not None:
        record["turnPosition"] = {"promptIndex": position, "turnIndex": position}
    record.update(recorder.tail(snake=False))
    return recorder.add_chain(record)


def meta_continuation(recorder: Recorder, *, prompt_id: str) -> str:
    """The note the CLI adds after ``max_tokens`` before it asks again."""
    return recorder.add_chain(
        {
            "parentUuid": recorder.last_uuid,
            "isSidechain": False,
            "promptId": prompt_id,
            "type": "user",
            "message": {"role": "user", "content": MAX_TOKENS_NOTE},
            "isMeta": True,
            "turnCompanion": True,
            "uuid": new_uuid(),
            "timestamp": now_iso(),
            **recorder.tail(snake=True),
        }
    )


def interrupt_marker(
    recorder: Recorder, *, prompt_id: str, message_id: str | None, for_tool: bool
) -> str:
    """``[Request interrupted by user]`` (``… for tool use``): the end of an interrupted turn."""
    record: JsonObject = {
        "parentUuid": recorder.last_uuid,
        "isSidechain": False,
        "promptId": prompt_id,
        "type": "user",
        "message": {
            "role": "user",
            "content": [
                {"type": "text", "text": INTERRUPTED_FOR_TOOL if for_tool else INTERRUPTED}
            ],
        },
        "uuid": new_uuid(),
        "timestamp": now_iso(),
    }
    if message_id is not None:
        record["interruptedMessageId"] = message_id
    record.update(recorder.tail(snake=True))
    return recorder.add_chain(record)


def tool_result(
    recorder: Recorder,
    *,
    prompt_id: str,
    tool_use_id: str,
    content: str,
    is_error: bool,
    result: Any,
    source: str,
    extra: Mapping[str, Any],
) -> str:
    """The ``tool_result`` record of a tool that ran (or failed to)."""
    return recorder.add_chain(
        {
            "parentUuid": recorder.last_uuid,
            "isSidechain": False,
            "promptId": prompt_id,
            "type": "user",
            "message": {
                "role": "user",
                "content": [
                    {
                        "tool_use_id": tool_use_id,
                        "type": "tool_result",
                        "content": content,
                        "is_error": is_error,
                    }
                ],
            },
            "uuid": new_uuid(),
            "timestamp": now_iso(),
            "toolUseResult": result,
            **extra,
            "sourceToolAssistantUUID": source,
            **recorder.tail(snake=True),
        }
    )


def tool_rejected(
    recorder: Recorder, *, prompt_id: str, tool_use_id: str, source: str, before_run: bool
) -> str:
    """The ``tool_result`` of a tool call the user refused or interrupted."""
    record: JsonObject = {
        "parentUuid": recorder.last_uuid,
        "isSidechain": False,
        "promptId": prompt_id,
        "type": "user",
        "message": {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "content": REJECTED,
                    "is_error": True,
                    "tool_use_id": tool_use_id,
                }
            ],
        },
        "uuid": new_uuid(),
        "timestamp": now_iso(),
        "toolUseResult": "User rejected tool use",
        "toolDenialKind": "user-rejected",
    }
    if before_run:
        record["toolDenialBeforeRun"] = True
    record["sourceToolAssistantUUID"] = source
    record.update(recorder.tail(snake=True))
    return recorder.add_chain(record)


# --- assistant and system records --------------------------------------------------------


def assistant_blocks(
    recorder: Recorder,
    message: Mapping[str, Any],
    *,
    request_id: str | None,
    request_ref: str,
    stream_ms: Mapping[int, int],
    classifier: bool,
) -> list[str]:
    """One ``assistant`` record per content block of a complete API message."""
    usage = full_usage(message.get("usage", {}))
    recorder.input_tokens += int(usage["input_tokens"])
    recorder.output_tokens += int(usage["output_tokens"])
    uuids = []
    for index, content_block in enumerate(message.get("content", [])):
        record: JsonObject = {
            "parentUuid": recorder.last_uuid,
            "isSidechain": False,
            "message": {
                "id": message.get("id"),
                "type": "message",
                "role": "assistant",
                "model": message.get("model", recorder.model),
                "content": [content_block],
                "stop_reason": message.get("stop_reason"),
                "stop_sequence": message.get("stop_sequence"),
                "usage": usage,
                "stop_details": None,
            },
        }
        kind = content_block.get("type")
        if kind == "thinking":
            record.update(thinkingDurationMs=stream_ms.get(index, 0), thinkingDisplay="updates")
        elif kind == "tool_use":
            record["toolInputStreamMs"] = stream_ms.get(index, 0)
        if classifier:
            record["serverClassifierRequest"] = new_uuid()
        record.update(_assistant_meta(recorder, index, request_id, request_ref))
        uuids.append(recorder.add_chain(record))
    return uuids


def partial_assistant(
    recorder: Recorder, message: Mapping[str, Any], *, request_id: str | None, request_ref: str
) -> None:
    """The records of a stream cut by an interrupt: ``stop_reason`` null."""
    start_usage = message.get("usage", {})
    usage = {
        key: start_usage.get(key, 0)
        for key in (
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "output_tokens",
        )
    }
    for index, content_block in enumerate(message.get("content", [])):
        record: JsonObject = {
            "parentUuid": recorder.last_uuid,
            "isSidechain": False,
            "message": {
                "id": message.get("id"),
                "type": "message",
                "role": "assistant",
                "model": message.get("model", recorder.model),
                "content": [content_block],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": usage,
            },
        }
        meta = _assistant_meta(recorder, index, request_id, request_ref)
        head = list(meta.items())[:8]
        record.update(head)
        record["isAbortedMidStream"] = True
        record.update(list(meta.items())[8:])
        recorder.add_chain(record)


def _assistant_meta(
    recorder: Recorder, index: int, request_id: str | None, request_ref: str
) -> JsonObject:
    return {
        "apiBlockIndex": index,
        "requestId": request_id,
        "requestRef": request_ref,
        "requestedModel": recorder.model,
        "promptCacheRequested": "5m",
        "type": "assistant",
        "uuid": new_uuid(),
        "timestamp": now_iso(),
        "effort": "medium",
        "perTurnEffort": "medium",
        "madeBy": "model",
        **recorder.tail(snake=True),
    }


def api_error(
    recorder: Recorder,
    text: str,
    *,
    error: str,
    request_id: str | None,
    status: int | None,
    error_type: str | None,
    connection_failed: bool,
) -> str:
    """The synthetic ``isApiErrorMessage`` record that ends a failed turn (FACTS.md §8)."""
    record: JsonObject = {
        "parentUuid": recorder.last_uuid,
        "isSidechain": False,
        "type": "assistant",
        "uuid": new_uuid(),
        "timestamp": now_iso(),
        "message": {
            "diagnostics": None,
            "id": new_uuid(),
            "container": None,
            "model": "<synthetic>",
            "role": "assistant",
            "stop_details": None,
            "stop_reason": "stop_sequence",
            "stop_sequence": "",
            "type": "message",
            "usage": {
                "output_tokens_details": None,
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
                "service_tier": None,
                "cache_creation": {
                    "ephemeral_1h_input_tokens": 0,
                    "ephemeral_5m_input_tokens": 0,
                },
                "inference_geo": None,
                "iterations": None,
                "speed": None,
                "fallback_credit": None,
            },
            "content": [{"type": "text", "text": text}],
            "context_management": None,
        },
    }
    if connection_failed:
        record["apiError"] = "connection_failed"
    else:
        record["requestId"] = request_id
        if status == 429:
            record["apiErrorIsTransient"] = False
    record.update(error=error, isApiErrorMessage=True)
    if not connection_failed:
        record.update(apiErrorStatus=status, apiErrorType=error_type)
    record.update(
        perTurnEffort="medium",
        failedResponseHadNoToolCall=True,
        madeBy="model",
        **recorder.tail(snake=True),
    )
    return recorder.add_chain(record)


def turn_duration(recorder: Recorder, duration_ms: int) -> str:
    """``system``/``turn_duration``: the end of a completed turn."""
    return recorder.add_chain(
        {
            "parentUuid": recorder.last_uuid,
            "isSidechain": False,
            "type": "system",
            "subtype": "turn_duration",
            "durationMs": duration_ms,
            "messageCount": recorder.chain_count,
            "timestamp": now_iso(),
            "uuid": new_uuid(),
            "isMeta": False,
            **recorder.tail(snake=False),
        }
    )
