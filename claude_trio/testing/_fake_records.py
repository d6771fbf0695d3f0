"""The session JSONL of the fake ``claude``: records shaped like the real CLI's, written in batches.

Every record has the keys, key order and chaining of the records in the real samples
(FACTS.md §4): chain records (``user``, ``assistant``, ``system``, ``attachment``) carry
``uuid``/``parentUuid`` and the common tail of keys; side records carry ``sessionId``
only. Records are queued and appended together when the flush timer fires, as the CLI's
``FLUSH_INTERVAL_MS=100`` writer does; the file and its directory appear at the first
flush, never at start-up.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from ._fake_screen import VERSION

JsonObject = dict[str, Any]

INTERRUPTED: Final = "[Request interrupted by user]"
INTERRUPTED_FOR_TOOL: Final = "[Request interrupted by user for tool use]"
REJECTED: Final = (
    "The user doesn't want to proceed with this tool use. The tool use was rejected (eg. if it"
    " was a file edit, the new_string was NOT written to the file). STOP what you are doing and"
    " wait for the user to tell you how to proceed."
)
MAX_TOKENS_NOTE: Final = (
    "Output token limit hit. Resume directly — no apology, no recap of what you were doing."
    " Pick up mid-thought if that is where the cut happened. Break remaining work into smaller"
    " pieces."
)
BETAS: Final = (
    "claude-code-20250219",
    "interleaved-thinking-2025-05-14",
    "context-management-2025-06-27",
    "per-turn-control-2026-07-01",
    "mid-conversation-tool-changes-2026-07-01",
    "thinking-token-count-2026-05-13",
    "advanced-tool-use-2025-11-20",
    "effort-2025-11-24",
    "thinking-display-updates-2026-08-18",
)
DEFERRED_TOOLS: Final = (
    "CronCreate",
    "CronDelete",
    "CronList",
    "EnterPlanMode",
    "EnterWorktree",
    "ExitPlanMode",
    "ExitWorktree",
    "Monitor",
    "NotebookEdit",
    "SendMessage",
    "TaskStop",
    "WebFetch",
    "WebSearch",
)
AGENTS: Final = ("claude", "claude-code-guide", "Explore", "general-purpose", "Plan")
_INPUT_PRICE: Final = 4e-6
_OUTPUT_PRICE: Final = 2e-5


def now_iso() -> str:
    """The current UTC time the way the CLI writes it: ``2026-11-24T11:18:37.393Z``."""
    stamp = dt.datetime.now(dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def new_uuid() -> str:
    """A fresh random UUID as text."""
    return str(uuid.uuid4())


def digest(value: object) -> str:
    """The SHA-256 of *value*'s compact JSON, as the CLI's request hashes look."""
    data = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(data.encode()).hexdigest()


def reminder(text: str) -> str:
    """*text* inside ``<system-reminder>`` tags."""
    return f"<system-reminder>\n{text}\n</system-reminder>"


def full_usage(usage: Mapping[str, Any]) -> JsonObject:
    """The 12-key ``usage`` of an assistant record, from the API's usage."""
    return {
        "input_tokens": usage.get("input_tokens", 0),
        "cache_creation_input_tokens": usage.get("cache_creation_input_tokens", 0),
        "cache_read_input_tokens": usage.get("cache_read_input_tokens", 0),
        "output_tokens": usage.get("output_tokens", 0),
        "output_tokens_details": {"thinking_tokens": 0},
        "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
        "service_tier": usage.get("service_tier", "standard"),
        "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
        "inference_geo": "",
        "iterations": [],
        "speed": "standard",
        "fallback_credit": None,
    }


class SessionWriter:
    """The session file: queued records, appended together by `flush`.

    Args:
        path: ``<config>/projects/<key>/<session id>.jsonl``.
        schedule_flush: Called when the first record of a batch is queued; the owner
            calls `flush` about 100 ms later.
    """

    def __init__(self, path: Path, schedule_flush: Callable[[], None]) -> None:
        self.path = path
        self._schedule_flush = schedule_flush
        self._queue: list[str] = []
        self.started = path.exists()

    def add(self, record: Mapping[str, Any]) -> None:
        """Queue one record."""
        if not self._queue:
            self._schedule_flush()
        self._queue.append(json.dumps(record, ensure_ascii=False, separators=(",", ":")))

    def has_records(self) -> bool:
        """Whether the session has a file, or records queued for it."""
        return self.started or bool(self._queue)

    def prepare(self) -> None:
        """Create the project directory (and its ``memory/``), as the CLI does on Enter."""
        (self.path.parent / "memory").mkdir(parents=True, exist_ok=True)

    def flush(self) -> None:
        """Append every queued record in one write."""
        if not self._queue:
            return
        data = ("\n".join(self._queue) + "\n").encode()
        self._queue.clear()
        self.prepare()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        self.started = True


class Recorder:
    """Builds the records of one session, keeps the chain, and queues them on a writer.

    Attributes:
        last_uuid: The uuid of the last chain record (the parent of the next one).
        chain_count: How many chain records the session holds.
    """

    def __init__(
        self,
        writer: SessionWriter,
        *,
        session_id: str,
        cwd: str,
        entrypoint: str,
        permission_mode: str,
        model: str,
        git_branch: str = "HEAD",
        is_git_repo: bool = False,
    ) -> None:
        self.writer = writer
        self.session_id = session_id
        self.cwd = cwd
        self.entrypoint = entrypoint
        self.permission_mode = permission_mode
        self.model = model
        self.git_branch = git_branch
        self.is_git_repo = is_git_repo
        self.last_uuid: str | None = None
        self.chain_count = 0
        self.tools_used: list[str] = []
        self._last_request: str | None = None
        self._shape_sent = False
        self.started_at = dt.datetime.now(dt.UTC)
        self.input_tokens = 0
        self.output_tokens = 0
        self.api_ms = 0
        self.tool_ms = 0

    # --- plumbing ------------------------------------------------------------------------

    def add_raw(self, record: Mapping[str, Any]) -> None:
        """Queue a record as it is, following its chain (used by replays and forks)."""
        self.writer.add(record)
        if isinstance(record.get("uuid"), str):
            self.last_uuid = record["uuid"]
            self.chain_count += 1

    def tail(self, *, snake: bool) -> JsonObject:
        """The keys every chain record ends with."""
        tail: JsonObject = {"session_id": self.session_id} if snake else {}
        tail.update(
            userType="external",
            entrypoint=self.entrypoint,
            cwd=self.cwd,
            sessionId=self.session_id,
            version=VERSION,
            gitBranch=self.git_branch,
        )
        return tail

    def add_chain(self, record: JsonObject) -> str:
        """Queue a chain record built on `last_uuid`; returns its uuid."""
        self.writer.add(record)
        self.last_uuid = record["uuid"]
        self.chain_count += 1
        return str(record["uuid"])

    def _side(self, record_type: str, **fields: Any) -> None:
        self.writer.add({"type": record_type, **fields, "sessionId": self.session_id})

    # --- side records --------------------------------------------------------------------

    def modes(self) -> None:
        """``mode`` and ``permission-mode``."""
        self._side("mode", mode="normal")
        self._side("permission-mode", permissionMode=self.permission_mode)

    def atis_latch(self) -> None:
        """An ``atis-latch`` record."""
        self._side("atis-latch", atis="")

    def after_turn(self, last_prompt: str) -> None:
        """``last-prompt``, ``mode`` and ``permission-mode``, written after a turn's end."""
        self.writer.add(
            {
                "type": "last-prompt",
                "lastPrompt": last_prompt,
                "leafUuid": self.last_uuid,
                "sessionId": self.session_id,
            }
        )
        self.modes()

    def file_history_snapshot(self, message_id: str) -> None:
        """The ``file-history-snapshot`` before a prompt."""
        self.writer.add(
            {
                "type": "file-history-snapshot",
                "messageId": message_id,
                "snapshot": {
                    "messageId": message_id,
                    "trackedFileBackups": {},
                    "timestamp": now_iso(),
                },
                "isSnapshotUpdate": False,
            }
        )

    def queue_operation(self, operation: str, content: str | None = None) -> None:
        """A ``queue-operation`` record (a prompt typed while a turn runs)."""
        record: JsonObject = {
            "type": "queue-operation",
            "operation": operation,
            "timestamp": now_iso(),
        }
        record["sessionId"] = self.session_id
        if content is not None:
            record["content"] = content
        self.writer.add(record)

    def tools_used_record(self, names: Iterable[str]) -> None:
        """``tools-used``: every tool the session has called so far."""
        for name in names:
            if name not in self.tools_used:
                self.tools_used.append(name)
        self._side("tools-used", tools=list(self.tools_used))

    def cost_state(self) -> None:
        """The session's ``cost-state``."""
        cost = self.input_tokens * _INPUT_PRICE + self.output_tokens * _OUTPUT_PRICE
        elapsed = dt.datetime.now(dt.UTC) - self.started_at
        usage = {}
        if self.input_tokens or self.output_tokens:
            usage[self.model] = {
                "inputTokens": self.input_tokens,
                "outputTokens": self.output_tokens,
                "thinkingTokens": 0,
                "cacheReadInputTokens": 0,
                "cacheCreationInputTokens": 0,
                "cacheCreationEphemeral5mInputTokens": 0,
                "cacheCreationEphemeral1hInputTokens": 0,
                "webSearchRequests": 0,
                "costUSD": cost,
            }
        self.writer.add(
            {
                "type": "cost-state",
                "sessionId": self.session_id,
                "totalCostUSD": cost,
                "totalAPIDuration": self.api_ms,
                "totalAPIDurationWithoutRetries": self.api_ms,
                "totalToolDuration": self.tool_ms,
                "totalLinesAdded": 0,
                "totalLinesRemoved": 0,
                "totalDuration": int(elapsed.total_seconds() * 1000),
                "startTime": int(self.started_at.timestamp() * 1000),
                "modelUsage": usage,
                "hasUnknownModelCost": False,
            }
        )

    def exit_records(self, last_prompt: str | None) -> None:
        """What the CLI appends when it exits: ``cost-state``, ``last-prompt``, ``cost-state``."""
        self.cost_state()
        if last_prompt is not None:
            self.writer.add(
                {
                    "type": "last-prompt",
                    "lastPrompt": last_prompt,
                    "leafUuid": self.last_uuid,
                    "sessionId": self.session_id,
                }
            )
        self.cost_state()

    # --- requests --------------------------------------------------------------------------

    def api_request(self, body: Mapping[str, Any], *, with_shape: bool) -> str:
        """``api-request`` (and, the first time, ``api-request-shape`` and blobs); its id."""
        messages = list(body.get("messages", []))
        shape = {"system": body.get("system", []), "tools": body.get("tools", [])}
        shape_hash = digest(shape)
        keep = 0 if self._last_request is None else max(len(messages) - 2, 0)
        tail = [digest(message) for message in messages[keep:]]
        if with_shape and not self._shape_sent:
            self._shape_sent = True
            self.writer.add(
                {
                    "type": "api-request-shape",
                    "sessionId": self.session_id,
                    "shapeHash": shape_hash,
                    "timestamp": now_iso(),
                    "version": VERSION,
                    "shape": shape,
                }
            )
            for message in messages[keep:]:
                self._side_blob(message)
        params: JsonObject = {"model": body.get("model"), "betas": list(BETAS)}
        for key in ("max_tokens", "thinking", "context_management", "output_config"):
            if key in body:
                params[key] = body[key]
        request_id = new_uuid()
        record: JsonObject = {
            "type": "api-request",
            "sessionId": self.session_id,
            "id": request_id,
            "timestamp": now_iso(),
            "version": VERSION,
            "querySource": "repl_main_thread",
            "shapeHash": shape_hash,
            "params": params,
        }
        if self._last_request is not None:
            record["base"] = self._last_request
        record.update(
            keep=keep,
            tail=tail,
            cacheControl=[
                {"path": ["system", 0], "value": {"type": "ephemeral"}},
                {"path": ["system", 1], "value": {"type": "ephemeral"}},
                {
                    "path": ["messages", max(len(messages) - 1, 0), "content", 0],
                    "value": {"type": "ephemeral"},
                },
            ],
            requestDigest=digest(body),
        )
        self.writer.add(record)
        return request_id

    def request_answered(self, request_id: str) -> None:
        """Note that request *request_id* was answered: later requests name it as their ``base``."""
        self._last_request = request_id

    def _side_blob(self, message: Mapping[str, Any]) -> None:
        self.writer.add(
            {
                "type": "api-request-blob",
                "sessionId": self.session_id,
                "hash": digest(message),
                "message": dict(message),
            }
        )
