"""Private models of the session JSONL records, exactly as the CLI (2.1.328) writes them.

One class per record ``type`` (the class attribute ``record_type``), each field one key the
CLI was seen to write (``claude-cli/FACTS.md`` §4 and the samples). Attributes are
snake_case; the wire keys are camelCase for the CLI's own records (classes deriving from
`CamelCase`) and unchanged for the Anthropic-shaped parts inside them (``message``,
``usage``, content blocks). A field whose wire key does not follow that rule names it in
its metadata under `WIRE_KEY`. `claude_trio._convert` turns these names into cattrs
overrides; the models themselves never import cattrs or json.

Only what the library reads is typed in depth; payloads it passes over (attachments,
snapshots, request logs) are kept as raw JSON. Everything the CLI may leave out is
optional: the CLI itself accepts records with far fewer keys (FACTS.md §6).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, TypeAlias, final, get_args

import attrs

#: Metadata key naming a field's wire key when the class's case rule does not give it.
WIRE_KEY = "wire_key"


def _wire(key: str, default: Any = None) -> Any:
    return attrs.field(default=default, metadata={WIRE_KEY: key})


class CamelCase:
    """Marker base: this model's wire keys are the camelCase forms of its attributes."""

    __slots__ = ()


# --- Anthropic-shaped parts (wire keys = attribute names) ---------------------------------


@final
@attrs.frozen(kw_only=True)
class TextBlockRecord:
    """A ``text`` content block."""

    block_type: ClassVar[str] = "text"

    text: str


@final
@attrs.frozen(kw_only=True)
class ThinkingBlockRecord:
    """A ``thinking`` content block."""

    block_type: ClassVar[str] = "thinking"

    thinking: str
    signature: str


@final
@attrs.frozen(kw_only=True)
class ToolUseBlockRecord:
    """A ``tool_use`` content block."""

    block_type: ClassVar[str] = "tool_use"

    id: str
    name: str
    input: dict[str, Any]


@final
@attrs.frozen(kw_only=True)
class ToolResultBlockRecord:
    """A ``tool_result`` content block; ``content`` is a string or a list of blocks."""

    block_type: ClassVar[str] = "tool_result"

    tool_use_id: str
    content: str | list[Any] | None = None
    is_error: bool | None = None


@final
@attrs.frozen(kw_only=True)
class UnknownBlockRecord:
    """A content block of a type this version does not model, kept as raw JSON."""

    raw: dict[str, Any]


BlockRecord: TypeAlias = (
    TextBlockRecord
    | ThinkingBlockRecord
    | ToolUseBlockRecord
    | ToolResultBlockRecord
    | UnknownBlockRecord
)

#: The block models that have a ``type`` tag.
KNOWN_BLOCKS: tuple[type[Any], ...] = tuple(
    cls for cls in get_args(BlockRecord) if cls is not UnknownBlockRecord
)

#: A user message's content: a typed prompt is a string, anything else a list of blocks.
UserContent: TypeAlias = str | tuple[BlockRecord, ...]


@final
@attrs.frozen(kw_only=True)
class CacheCreationRecord:
    """``usage.cache_creation``."""

    ephemeral_1h_input_tokens: int
    ephemeral_5m_input_tokens: int


@final
@attrs.frozen(kw_only=True)
class ServerToolUseRecord:
    """``usage.server_tool_use``."""

    web_search_requests: int
    web_fetch_requests: int


@final
@attrs.frozen(kw_only=True)
class UsageRecord:
    """``message.usage`` of an assistant record."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation: CacheCreationRecord | None = None
    server_tool_use: ServerToolUseRecord | None = None
    service_tier: str | None = None
    output_tokens_details: dict[str, Any] | None = None
    inference_geo: str | None = None
    iterations: list[Any] | None = None
    speed: str | None = None
    fallback_credit: Any = None


@final
@attrs.frozen(kw_only=True)
class UserMessageRecord:
    """``message`` of a user record."""

    role: str
    content: UserContent


@final
@attrs.frozen(kw_only=True)
class AssistantMessageRecord:
    """``message`` of an assistant record: one API message, usually with one block."""

    role: str
    content: tuple[BlockRecord, ...]
    id: str | None = None
    type: str | None = None
    model: str | None = None
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: UsageRecord | None = None
    stop_details: Any = None
    container: Any = None
    context_management: Any = None
    diagnostics: Any = None


# --- The CLI's records (camelCase wire keys) ---------------------------------------------


@attrs.frozen(kw_only=True)
class ChainRecord(CamelCase):
    """Keys common to the records that form the conversation chain (they carry a uuid)."""

    uuid: str | None = None
    parent_uuid: str | None = None
    session_id: str | None = None
    timestamp: dt.datetime | None = None
    is_sidechain: bool | None = None
    user_type: str | None = None
    entrypoint: str | None = None
    cwd: str | None = None
    version: str | None = None
    git_branch: str | None = None
    #: The CLI also writes the session id under the snake_case key ``session_id``.
    session_id_copy: str | None = _wire("session_id")


@final
@attrs.frozen(kw_only=True)
class UserRecord(ChainRecord):
    """A ``user`` record: a typed prompt, tool results, an interrupt marker, a meta note."""

    record_type: ClassVar[str] = "user"

    message: UserMessageRecord
    is_meta: bool = False
    prompt_id: str | None = None
    permission_mode: str | None = None
    origin: dict[str, Any] | None = None
    prompt_source: str | None = None
    turn_origin: str | None = None
    turn_position: dict[str, Any] | None = None
    turn_companion: bool | None = None
    interrupted_message_id: str | None = None
    tool_use_result: Any = None
    mcp_call_not_read_only: str | None = None
    source_tool_assistant_uuid: str | None = _wire("sourceToolAssistantUUID")
    permission_decision: dict[str, Any] | None = None
    tool_denial_kind: str | None = None
    tool_denial_before_run: bool | None = None
    sandboxed: bool | None = None


@final
@attrs.frozen(kw_only=True)
class AssistantRecord(ChainRecord):
    """An ``assistant`` record: one content block of an API reply, or an API-error notice."""

    record_type: ClassVar[str] = "assistant"

    message: AssistantMessageRecord
    request_id: str | None = None
    request_ref: str | None = None
    requested_model: str | None = None
    api_block_index: int | None = None
    is_api_error_message: bool = False
    error: str | None = None
    api_error: str | None = None
    api_error_status: int | None = None
    api_error_type: str | None = None
    api_error_is_transient: bool | None = None
    failed_response_had_no_tool_call: bool | None = None
    is_aborted_mid_stream: bool | None = None
    effort: str | None = None
    per_turn_effort: str | None = None
    made_by: str | None = None
    prompt_cache_requested: str | None = None
    server_classifier_request: str | None = None
    tool_input_stream_ms: int | None = None
    attribution_mcp_server: str | None = None
    attribution_mcp_tool: str | None = None
    thinking_duration_ms: int | None = None
    thinking_display: str | None = None


@final
@attrs.frozen(kw_only=True)
class SystemRecord(ChainRecord):
    """A ``system`` record; subtype ``turn_duration`` ends a completed turn."""

    record_type: ClassVar[str] = "system"

    subtype: str
    duration_ms: int | None = None
    message_count: int | None = None
    is_meta: bool | None = None
    content: str | None = None
    level: str | None = None


@final
@attrs.frozen(kw_only=True)
class AttachmentRecord(ChainRecord):
    """An ``attachment`` record (environment, date, skill listing …); no event."""

    record_type: ClassVar[str] = "attachment"

    attachment: dict[str, Any]
    rendered: list[Any] | None = None
    rendered_role: str | None = None
    rendered_beside_tool_result: bool | None = None


@attrs.frozen(kw_only=True)
class SideRecord(CamelCase):
    """Keys common to the side records, which are not part of the conversation chain."""

    session_id: str | None = None


@final
@attrs.frozen(kw_only=True)
class FileHistorySnapshotRecord(CamelCase):
    """A ``file-history-snapshot`` record (it has no session id)."""

    record_type: ClassVar[str] = "file-history-snapshot"

    message_id: str | None = None
    snapshot: dict[str, Any] | None = None
    is_snapshot_update: bool | None = None


@final
@attrs.frozen(kw_only=True)
class ModeRecord(SideRecord):
    """A ``mode`` record."""

    record_type: ClassVar[str] = "mode"

    mode: str | None = None


@final
@attrs.frozen(kw_only=True)
class PermissionModeRecord(SideRecord):
    """A ``permission-mode`` record."""

    record_type: ClassVar[str] = "permission-mode"

    permission_mode: str | None = None


@final
@attrs.frozen(kw_only=True)
class AtisLatchRecord(SideRecord):
    """An ``atis-latch`` record."""

    record_type: ClassVar[str] = "atis-latch"

    atis: str | None = None


@final
@attrs.frozen(kw_only=True)
class LastPromptRecord(SideRecord):
    """A ``last-prompt`` record."""

    record_type: ClassVar[str] = "last-prompt"

    last_prompt: str | None = None
    leaf_uuid: str | None = None


@final
@attrs.frozen(kw_only=True)
class ToolsUsedRecord(SideRecord):
    """A ``tools-used`` record."""

    record_type: ClassVar[str] = "tools-used"

    tools: list[Any] | None = None


@final
@attrs.frozen(kw_only=True)
class QueueOperationRecord(SideRecord):
    """A ``queue-operation`` record: a prompt submitted while a turn was running."""

    record_type: ClassVar[str] = "queue-operation"

    operation: str | None = None
    content: str | None = None
    timestamp: dt.datetime | None = None


@final
@attrs.frozen(kw_only=True)
class ApiRequestShapeRecord(SideRecord):
    """An ``api-request-shape`` record."""

    record_type: ClassVar[str] = "api-request-shape"

    shape_hash: str | None = None
    timestamp: dt.datetime | None = None
    version: str | None = None
    shape: dict[str, Any] | None = None


@final
@attrs.frozen(kw_only=True)
class ApiRequestBlobRecord(SideRecord):
    """An ``api-request-blob`` record."""

    record_type: ClassVar[str] = "api-request-blob"

    hash: str | None = None
    message: dict[str, Any] | None = None


@final
@attrs.frozen(kw_only=True)
class ApiRequestRecord(SideRecord):
    """An ``api-request`` record: the CLI's log of one request it sent."""

    record_type: ClassVar[str] = "api-request"

    id: str | None = None
    timestamp: dt.datetime | None = None
    version: str | None = None
    query_source: str | None = None
    shape_hash: str | None = None
    params: dict[str, Any] | None = None
    keep: int | None = None
    tail: list[Any] | None = None
    cache_control: list[Any] | None = None
    request_digest: str | None = None
    base: str | None = None


@final
@attrs.frozen(kw_only=True)
class ModelUsageRecord(CamelCase):
    """One model's entry in ``cost-state.modelUsage``."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    thinking_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_creation_ephemeral_5m_input_tokens: int | None = None
    cache_creation_ephemeral_1h_input_tokens: int | None = None
    web_search_requests: int | None = None
    cost_usd: float | None = _wire("costUSD")


@final
@attrs.frozen(kw_only=True)
class CostStateRecord(SideRecord):
    """A ``cost-state`` record: the session's cumulative cost and durations."""

    record_type: ClassVar[str] = "cost-state"

    total_cost_usd: float | None = _wire("totalCostUSD")
    total_api_duration: int | None = _wire("totalAPIDuration")
    total_api_duration_without_retries: int | None = _wire("totalAPIDurationWithoutRetries")
    total_tool_duration: int | None = None
    total_lines_added: int | None = None
    total_lines_removed: int | None = None
    total_duration: int | None = None
    start_time: int | None = None
    model_usage: dict[str, ModelUsageRecord] | None = None
    has_unknown_model_cost: bool | None = None


@final
@attrs.frozen(kw_only=True)
class UnknownRecord:
    """A record whose ``type`` this version does not know, kept as raw JSON."""

    raw: dict[str, Any]


Record: TypeAlias = (
    UserRecord
    | AssistantRecord
    | SystemRecord
    | AttachmentRecord
    | FileHistorySnapshotRecord
    | ModeRecord
    | PermissionModeRecord
    | AtisLatchRecord
    | LastPromptRecord
    | ToolsUsedRecord
    | QueueOperationRecord
    | ApiRequestShapeRecord
    | ApiRequestBlobRecord
    | ApiRequestRecord
    | CostStateRecord
    | UnknownRecord
)

#: Every record model with a ``type`` tag.
KNOWN_RECORDS: tuple[type[Any], ...] = tuple(
    cls for cls in get_args(Record) if cls is not UnknownRecord
)
