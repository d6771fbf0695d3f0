"""Hypothesis strategies shared by the tests, and the real CLI samples they draw from."""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from claude_trio import (
    AssistantMessage,
    CacheCreation,
    ContentBlock,
    Event,
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
)
from claude_trio._records import KNOWN_RECORDS

# --- the real CLI's session files --------------------------------------------------------------

#: ``tests/samples``: what the real CLI 2.1.328 wrote and drew (see its README.txt).
SAMPLES_DIR = Path(__file__).resolve().parent / "samples"


def samples_dir() -> Path:
    """Return `SAMPLES_DIR`, or fail loudly when it is not there."""
    if not SAMPLES_DIR.is_dir():
        raise FileNotFoundError(
            f"The CLI samples are missing: {SAMPLES_DIR} does not exist; they are part "
            "of the repository (tests/samples)."
        )
    return SAMPLES_DIR


def session_files() -> list[Path]:
    """Every session JSONL sample (not the ``mock_requests_*`` API logs)."""
    directory = samples_dir()
    handwritten = directory / "resume_minimal_handwritten_input.jsonl"
    return [*sorted(directory.glob("session_*.jsonl")), handwritten]


@functools.cache
def sample_records() -> tuple[str, ...]:
    """Every line of every session sample, as text."""
    return tuple(
        line for path in session_files() for line in path.read_text("utf-8").split("\n") if line
    )


# --- JSON --------------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
json_objects: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    st.text(max_size=8), json_values, max_size=5
)

#: Record types the CLI writes, plus some it does not.
record_types = st.sampled_from([cls.record_type for cls in KNOWN_RECORDS]) | st.text(max_size=12)


@st.composite
def record_like_objects(draw: st.DrawFn) -> dict[str, Any]:
    """JSON objects shaped roughly like session records, with arbitrary values."""
    record: dict[str, Any] = draw(json_objects)
    record["type"] = draw(record_types)
    for key in draw(st.sets(st.sampled_from(_RECORD_KEYS), max_size=6)):
        record[key] = draw(json_values | record_like_message())
    return record


_RECORD_KEYS = [
    "message",
    "uuid",
    "parentUuid",
    "sessionId",
    "timestamp",
    "subtype",
    "durationMs",
    "isApiErrorMessage",
    "error",
    "apiError",
    "apiErrorStatus",
    "isMeta",
    "totalCostUSD",
    "modelUsage",
    "attachment",
]


@st.composite
def record_like_message(draw: st.DrawFn) -> dict[str, Any]:
    """A ``message`` object with plausible keys and arbitrary values."""
    message: dict[str, Any] = draw(json_objects)
    message["role"] = draw(st.sampled_from(["user", "assistant"]) | json_values)
    message["content"] = draw(
        st.text(max_size=10)
        | st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["text", "thinking", "tool_use", "tool_result", "x"])},
                optional={
                    "text": json_values,
                    "id": json_values,
                    "input": json_values,
                    "content": json_values,
                },
            ),
            max_size=3,
        )
        | json_values
    )
    if draw(st.booleans()):
        message["usage"] = draw(
            st.fixed_dictionaries(
                {"input_tokens": json_values, "output_tokens": json_values},
            )
            | json_values
        )
    return message


@st.composite
def mutated_sample_records(draw: st.DrawFn) -> dict[str, Any]:
    """A real sample record with one value somewhere inside replaced or removed."""
    record: dict[str, Any] = copy.deepcopy(json.loads(draw(st.sampled_from(sample_records()))))
    parent: Any = record
    while True:
        if isinstance(parent, dict) and parent:
            key: Any = draw(st.sampled_from(sorted(parent)))
        elif isinstance(parent, list) and parent:
            key = draw(st.integers(0, len(parent) - 1))
        else:
            break
        child = parent[key]
        if isinstance(child, dict | list) and child and draw(st.booleans()):
            parent = child
            continue
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[key]
        else:
            parent[key] = draw(json_values)
        break
    return record


# --- events ------------------------------------------------------------------------------------

#: What `anthropic.types.StopReason` accepts.
stop_reasons = st.sampled_from(
    [
        None,
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "tool_use",
        "pause_turn",
        "refusal",
        "model_context_window_exceeded",
    ]
)
counts = st.integers(0, 10**9)
ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=24)
texts = st.text(max_size=40)
timestamps = st.none() | st.datetimes(
    timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=-5, minutes=-30))])
    | st.none()
)

text_blocks = st.builds(TextBlock, texts)
thinking_blocks = st.builds(ThinkingBlock, texts, signature=texts)
tool_use_blocks = st.builds(ToolUseBlock, id=ids, name=ids, input=json_objects)
#: Tool results hold a string or a list of API text blocks.
tool_result_blocks = st.builds(
    ToolResultBlock,
    tool_use_id=ids,
    content=texts
    | st.lists(st.builds(lambda text: {"type": "text", "text": text}, texts), max_size=3),
    is_error=st.booleans(),
)
content_blocks: st.SearchStrategy[ContentBlock] = st.one_of(
    text_blocks, thinking_blocks, tool_use_blocks, tool_result_blocks
)

usages = st.builds(
    Usage,
    input_tokens=counts,
    output_tokens=counts,
    cache_creation_input_tokens=counts,
    cache_read_input_tokens=counts,
    cache_creation=st.none()
    | st.builds(CacheCreation, ephemeral_5m_input_tokens=counts, ephemeral_1h_input_tokens=counts),
    server_tool_use=st.none()
    | st.builds(ServerToolUse, web_search_requests=counts, web_fetch_requests=counts),
    service_tier=st.sampled_from([None, "standard", "priority", "batch"]),
)


def assistant_messages(*, metadata: bool = True) -> st.SearchStrategy[AssistantMessage]:
    """Assistant messages; without *metadata*, only the API fields are set."""
    return st.builds(
        AssistantMessage,
        id=ids,
        model=ids,
        content=st.lists(content_blocks, max_size=4),
        stop_reason=stop_reasons,
        stop_sequence=st.none() | texts,
        usage=usages,
        **_metadata(metadata),
    )


def user_messages(*, metadata: bool = True) -> st.SearchStrategy[UserMessage]:
    """User messages; without *metadata*, only the API fields are set."""
    extra: dict[str, st.SearchStrategy[Any]] = _metadata(metadata)
    if metadata:
        extra |= {"is_meta": st.booleans(), "prompt_id": st.none() | ids}
    return st.builds(UserMessage, content=texts | st.lists(content_blocks, max_size=4), **extra)


def _metadata(enabled: bool) -> dict[str, st.SearchStrategy[Any]]:
    if not enabled:
        return {}
    return {
        "session_id": st.none() | ids,
        "uuid": st.none() | ids,
        "parent_uuid": st.none() | ids,
        "timestamp": timestamps,
    }


system_messages = st.builds(
    SystemMessage,
    subtype=ids,
    content=st.none() | texts,
    level=st.none() | texts,
    data=json_objects,
    **_metadata(True),
)
result_messages = st.builds(
    ResultMessage,
    usage=usages,
    num_api_messages=counts,
    stop_reason=stop_reasons,
    duration_ms=st.none() | counts,
    session_id=st.none() | ids,
    total_cost_usd=st.none() | st.floats(0, 1e6, allow_nan=False),
    is_error=st.booleans(),
    interrupted=st.booleans(),
)


stream_events = st.builds(
    StreamEvent,
    uuid=ids,
    session_id=ids,
    event=json_objects,
    parent_tool_use_id=st.none() | ids,
)


def events(*, metadata: bool = True) -> st.SearchStrategy[Event]:
    """Any event."""
    return st.one_of(
        assistant_messages(metadata=metadata),
        user_messages(metadata=metadata),
        system_messages,
        result_messages,
    )
