"""One turn of the fake ``claude``: prompt, API requests with retries, tools, records.

A turn runs as an asyncio task. It writes the records the real CLI writes (FACTS.md §4,
§7, §8): the prompt and, in the first turn of a process, the attachments; an
``api-request`` per request; one ``assistant`` record per content block once a message has
streamed whole; tool results and the next request after ``tool_use``; the ``isMeta``
note and a second request after ``max_tokens``; ``turn_duration`` at the end. An API
error ends the turn with the synthetic error record instead, and an interrupt (the task
is cancelled) with the partial message and the interrupt marker.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import time
from typing import TYPE_CHECKING, Any, Final

from . import _fake_chain as chain
from ._fake_api import ApiClient, ApiError, StreamState, backoff, error_text, retry_wait_text
from ._fake_context import SessionContext, first_turn_attachments, prompt_snapshot
from ._fake_input import BashInput, Prompt
from ._fake_records import (
    INTERRUPTED,
    INTERRUPTED_FOR_TOOL,
    MAX_TOKENS_NOTE,
    JsonObject,
    new_uuid,
    reminder,
)
from ._fake_replay import Replay
from ._fake_screen import VERSION, block
from ._fake_tools import BASH_TIMEOUT, Refused, ToolRunner

if TYPE_CHECKING:
    from ._fake_session import FakeSession

_CLI_PREFIX: Final = "You are Claude Code, Anthropic's official CLI for Claude."
_DEFAULT_PROMPT: Final = (
    "You are an agent working with the user toward their goals, using your own judgment along"
    " the way. (This is the fake Claude Code CLI of claude_trio.testing.)"
)
_MAX_529: Final = 3
_INTERRUPTED_LINE: Final = "  ⎿  Interrupted · What should Claude do instead?"


def _tool(name: str, description: str, properties: JsonObject, required: list[str]) -> JsonObject:
    return {
        "name": name,
        "description": description,
        "input_schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
        },
    }


_STRING: Final = {"type": "string"}
TOOLS: Final = (
    _tool(
        "Agent",
        "Launch a new agent.",
        {"description": _STRING, "prompt": _STRING},
        ["description", "prompt"],
    ),
    _tool(
        "AskUserQuestion",
        "Ask the user a question.",
        {"questions": {"type": "array"}},
        ["questions"],
    ),
    _tool(
        "Bash",
        "Executes a bash command and returns its output.",
        {"command": _STRING, "timeout": {"type": "number"}, "description": _STRING},
        ["command"],
    ),
    _tool(
        "Edit",
        "Performs exact string replacement in a file.",
        {"file_path": _STRING},
        ["file_path"],
    ),
    _tool("ListAgents", "Lists agents.", {}, []),
    _tool("Read", "Reads a file from the local filesystem.", {"file_path": _STRING}, ["file_path"]),
    _tool(
        "ReportFindings",
        "Report code-review findings.",
        {"findings": {"type": "array"}},
        ["findings"],
    ),
    _tool("ScheduleWakeup", "Schedule when to resume work.", {}, []),
    _tool("Skill", "Run a skill.", {"skill": _STRING}, ["skill"]),
    _tool("ToolSearch", "Load deferred tool schemas.", {"query": _STRING}, ["query"]),
    _tool("Workflow", "Run a workflow.", {}, []),
    _tool("DeferredToolPlaceholder", "A placeholder for deferred tools.", {}, []),
    _tool(
        "Write",
        "Writes a file to the local filesystem.",
        {"file_path": _STRING, "content": _STRING},
        ["file_path", "content"],
    ),
)


class _Failed(Exception):
    def __init__(self, error: ApiError, *, repeated_529: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.repeated_529 = repeated_529


class History:
    """The conversation as the API sees it: consecutive messages of one role are merged."""

    def __init__(self) -> None:
        self.messages: list[JsonObject] = []

    @classmethod
    def from_records(cls, records: tuple[JsonObject, ...]) -> History:
        """Rebuild the history of a resumed session (FACTS.md §6)."""
        history = cls()
        for record in records:
            message = record.get("message")
            if not isinstance(message, dict):
                continue
            if record.get("type") == "user":
                history.add_user(message.get("content", ""))
            elif record.get("type") == "assistant" and not record.get("isApiErrorMessage"):
                content = message.get("content")
                history.add_assistant(content if isinstance(content, list) else [])
        if history.messages and history.messages[-1]["role"] == "user":
            history.add_assistant([{"type": "text", "text": "No response requested."}])
        return history

    def add_user(self, content: str | list[JsonObject]) -> None:
        """Add user content, merged into the last message if it is the user's."""
        if self.messages and self.messages[-1]["role"] == "user":
            last = self.messages[-1]
            last["content"] = _blocks(last["content"]) + _blocks(content)
        else:
            self.messages.append({"role": "user", "content": copy.deepcopy(content)})

    def add_assistant(self, content: list[JsonObject]) -> None:
        """Add assistant blocks, merged into the last message if it is the assistant's."""
        if self.messages and self.messages[-1]["role"] == "assistant":
            self.messages[-1]["content"] = self.messages[-1]["content"] + copy.deepcopy(content)
        else:
            self.messages.append({"role": "assistant", "content": copy.deepcopy(content)})

    def for_request(self, *, reminder_text: str, system_text: str) -> list[JsonObject]:
        """The ``messages`` of a request: the reminder first, the ``system`` message second,
        a cache mark on the last block."""
        messages = copy.deepcopy(self.messages)
        if not messages:
            return []
        first = messages[0]
        if first["role"] == "user":
            first["content"] = [{"type": "text", "text": reminder_text}, *_blocks(first["content"])]
        messages.insert(
            1, {"role": "system", "content": system_text, "output_config": {"effort": "medium"}}
        )
        last = messages[-1]
        content = _blocks(last["content"])
        if content:
            content[-1] = {**content[-1], "cache_control": {"type": "ephemeral"}}
        last["content"] = content
        return messages


def _blocks(content: Any) -> list[JsonObject]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return (
        [dict(item) for item in content if isinstance(item, dict)]
        if isinstance(content, list)
        else []
    )


class TurnRunner:
    """Runs the turns of one fake CLI process; owns its API client, history and children."""

    def __init__(self, session: FakeSession) -> None:
        options = session.options
        self.session = session
        self.options = options
        self.recorder = session.recorder
        self.api = ApiClient(
            options.base_url,
            api_key=options.api_key,
            session_id=options.session_id,
            entrypoint=options.entrypoint,
        )
        records = tuple(r for r in options.history if r.get("type") in ("user", "assistant"))
        self.history = History.from_records(records)
        for record in options.history if options.resumed else ():
            if isinstance(record.get("uuid"), str):
                self.recorder.last_uuid = record["uuid"]
                self.recorder.chain_count += 1
        system_prompt = (
            [options.system_prompt] if options.system_prompt is not None else [_DEFAULT_PROMPT]
        )
        if options.append_system_prompt is not None:
            system_prompt.append(options.append_system_prompt)
        self.tools = [tool for tool in TOOLS if tool["name"] not in options.disallowed_tools]
        self.context = SessionContext(
            cwd=options.cwd,
            model=options.model,
            is_git_repo=self.recorder.is_git_repo,
            system_prompt=system_prompt,
            tools=self.tools,
        )
        self.replay = (
            Replay(options.replay, session_id=options.session_id, cwd=options.cwd)
            if options.replay is not None
            else None
        )
        self.first_turn = True
        self.prompts = 0
        self.last_prompt: str | None = None
        self.tools_runner = ToolRunner(
            options, self.recorder, session.transcript, session.show_permission
        )
        self._started = 0.0
        self._state: StreamState | None = None
        self._retry: tuple[float, int, ApiError] | None = None

    # --- the status line ---------------------------------------------------------------------

    def refresh_status(self) -> None:
        """Put the spinner, or the retry countdown, on the status line."""
        now = time.monotonic()
        if self._retry is not None:
            deadline, attempt, error = self._retry
            of = self.options.max_retries
            # The first retries name no status; from the third (or the last) on, the error.
            status = "API error"
            if attempt >= min(3, of) and error.status is not None:
                status = f"{error.status} {error.message}"
            wait = retry_wait_text(deadline - now)
            when = f"retrying in {wait}" if wait else "retrying…"
            self.session.status = [f"✻ {status} · {when} · attempt {attempt}/{of}"]
        else:
            tokens = self._state.deltas if self._state is not None else 0
            self.session.status = [f"✻ Thinking… ({int(now - self._started)}s · ↓ {tokens} tokens)"]

    def _on_delta(self) -> None:
        self.refresh_status()
        self.session.render()

    # --- turns -------------------------------------------------------------------------------

    async def run_turn(self, action: Prompt | BashInput) -> None:
        """Run one turn for a typed prompt or a ``!`` command."""
        session, recorder = self.session, self.recorder
        self._started = time.monotonic()
        self._state = None
        self.refresh_status()
        session.writer.prepare()
        text = action.text if isinstance(action, Prompt) else "!" + action.command
        if self.replay is not None:
            self._replay(text)
            return
        first, self.first_turn = self.first_turn, False
        if first:
            self._open_session()
        self.prompts += 1
        position = None if self.options.resumed else self.prompts
        prompt_id = new_uuid()
        self.last_prompt = text
        if isinstance(action, BashInput):
            if not await self._bash_mode(action.command, prompt_id, position):
                return
        else:
            session.transcript += [*block("❯ ", text), ""]
            user_uuid = new_uuid()
            recorder.file_history_snapshot(user_uuid)
            chain.user_prompt(
                recorder, text, prompt_id=prompt_id, position=position, uuid=user_uuid
            )
            self.history.add_user(text)
        if first:
            first_turn_attachments(recorder, self.context)
        outcome = await self._converse(prompt_id, first_request=first)
        if outcome == "done":
            if first:
                prompt_snapshot(recorder, self.context, full=True)
            chain.turn_duration(recorder, int((time.monotonic() - self._started) * 1000))
            session.transcript += [f"✻ Worked for {int(time.monotonic() - self._started)}s", ""]
        if outcome != "interrupted":
            recorder.after_turn(text)

    def _open_session(self) -> None:
        if self.options.fork_records:
            for record in self.options.fork_records:
                copied = copy.deepcopy(record)
                for key in ("sessionId", "session_id"):
                    if key in copied:
                        copied[key] = self.options.session_id
                self.recorder.add_raw(copied)
        elif not self.options.resumed:
            self.recorder.modes()

    def _replay(self, text: str) -> None:
        assert self.replay is not None
        session = self.session
        if self.first_turn and not self.options.resumed:
            for record in self.replay.prelude():
                self.recorder.add_raw(record)
        self.first_turn = False
        session.transcript += [*block("❯ ", text), ""]
        records = self.replay.next_turn(text)
        if records is None:
            session.transcript += ["  ⎿  fake claude: FAKE_CLAUDE_REPLAY has no more turns", ""]
            return
        self.last_prompt = text
        for record in records:
            self.recorder.add_raw(record)
            message = record.get("message")
            if record.get("type") == "assistant" and isinstance(message, dict):
                for content in message.get("content", []):
                    if isinstance(content, dict) and content.get("type") == "text":
                        session.transcript += [*block("● ", str(content.get("text", ""))), ""]

    async def _bash_mode(self, command: str, prompt_id: str, position: int | None) -> bool:
        """Run ``!command`` and record it; False when it was interrupted (the turn ends)."""
        session, recorder = self.session, self.recorder
        session.transcript += block("! ", command)
        recorder.file_history_snapshot(new_uuid())
        chain.bash_input(recorder, command, prompt_id=prompt_id)
        self.history.add_user(f"<bash-input>{command}</bash-input>")
        try:
            stdout, stderr, _, _ = await self.tools_runner.run_bash(command, BASH_TIMEOUT)
        except asyncio.CancelledError:
            if not session.interrupting:
                raise
            session.interrupting = False
            chain.interrupt_marker(recorder, prompt_id=prompt_id, message_id=None, for_tool=False)
            self.history.add_user([{"type": "text", "text": INTERRUPTED}])
            session.transcript += [_INTERRUPTED_LINE, ""]
            return False
        content = f"<bash-stdout>{stdout}</bash-stdout><bash-stderr>{stderr}</bash-stderr>"
        chain.bash_output(recorder, content, prompt_id=prompt_id, position=position)
        self.history.add_user(content)
        session.transcript += [*block("  ⎿  ", stdout or stderr or "(No output)"), ""]
        return True

    def _body(self) -> JsonObject:
        options = self.options
        context = self.context
        body: JsonObject = {
            "model": options.model,
            "messages": self.history.for_request(
                reminder_text=reminder(context.attribution_text) + "\n",
                system_text=context.system_message_text,
            ),
            "system": [
                {
                    "type": "text",
                    "text": f"x-anthropic-billing-header: cc_version={VERSION}.0fe;"
                    f" cc_entrypoint={options.entrypoint};",
                },
                {"type": "text", "text": _CLI_PREFIX, "cache_control": {"type": "ephemeral"}},
                {
                    "type": "text",
                    "text": "\n\n".join(context.system_prompt),
                    "cache_control": {"type": "ephemeral"},
                },
            ],
            "tools": self.tools,
            "metadata": {
                "user_id": json.dumps(
                    {
                        "device_id": hashlib.sha256(str(options.config_dir).encode()).hexdigest(),
                        "account_uuid": "",
                        "session_id": options.session_id,
                    },
                    separators=(",", ":"),
                )
            },
            "max_tokens": 128000 if options.model == "claude-opus-5-5" else 32000,
            "thinking": {"type": "adaptive", "display": "updates"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        }
        if options.permission_mode == "auto":
            body["safeguards"] = [
                {
                    "type": "dangerous_tool_use",
                    "classifier_context": {
                        "v": 1,
                        "permission_mode": "auto",
                        "platform": "linux",
                        "live_cwd": options.cwd,
                    },
                }
            ]
        body["output_config"] = {"effort": "medium"}
        body["stream"] = True
        return body

    async def _converse(self, prompt_id: str, *, first_request: bool) -> str:
        session, recorder = self.session, self.recorder
        while True:
            body = self._body()
            request_ref = recorder.api_request(body, with_shape=first_request)
            state = StreamState(listener=self._on_delta)
            self._state = state
            try:
                await self._request(body, state)
            except asyncio.CancelledError:
                if not session.interrupting:
                    raise
                session.interrupting = False
                self._interrupted_stream(prompt_id, state, request_ref)
                return "interrupted"
            except _Failed as failure:
                self._failed(failure)
                return "failed"
            recorder.request_answered(request_ref)
            message = state.message
            content = [item for item in message.get("content", []) if isinstance(item, dict)]
            calls = [item for item in content if item.get("type") == "tool_use"]
            if calls:
                recorder.tools_used_record(str(call.get("name")) for call in calls)
            uuids = chain.assistant_blocks(
                recorder,
                message,
                request_id=state.request_id,
                request_ref=request_ref,
                stream_ms=state.stream_ms,
                classifier=self.options.permission_mode == "auto",
            )
            self.history.add_assistant(content)
            for item in content:
                if item.get("type") == "text":
                    session.transcript += [*block("● ", str(item.get("text", ""))), ""]
                elif item.get("type") == "thinking":
                    session.transcript += ["∴ Thinking…", ""]
            session.render()
            stop_reason = message.get("stop_reason")
            if stop_reason == "tool_use" and calls:
                if not await self._run_tools(prompt_id, content, uuids, str(message.get("id"))):
                    return "interrupted"
            elif stop_reason == "max_tokens":
                chain.meta_continuation(recorder, prompt_id=prompt_id)
                self.history.add_user(MAX_TOKENS_NOTE)
            else:
                return "done"

    async def _request(self, body: JsonObject, state: StreamState) -> None:
        attempt = overloaded = 0
        while True:
            state.reset()
            started = time.monotonic()
            try:
                await self.api.create(body, state)
            except ApiError as error:
                if error.in_stream:
                    await self._request_whole(body, state)
                    return
                overloaded += error.status == 529
                attempt += 1
                if (
                    not error.retryable
                    or attempt > self.options.max_retries
                    or overloaded >= _MAX_529
                ):
                    raise _Failed(error, repeated_529=overloaded >= _MAX_529) from None
                delay = backoff(attempt, error.retry_after) * self.options.retry_scale
                await self._wait_retry(delay, attempt, error)
            else:
                self.recorder.api_ms += int((time.monotonic() - started) * 1000)
                return

    async def _request_whole(self, body: JsonObject, state: StreamState) -> None:
        # After an SSE error event the CLI asks once more without streaming (FACTS.md §8).
        state.reset()
        try:
            await self.api.create({**body, "stream": False}, state)
        except ApiError as error:
            raise _Failed(error, repeated_529=False) from None

    async def _wait_retry(self, delay: float, attempt: int, error: ApiError) -> None:
        deadline = time.monotonic() + delay
        self._retry = (deadline, attempt, error)
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                self.refresh_status()
                self.session.render()
                await asyncio.sleep(min(remaining, 1.0))
        finally:
            self._retry = None
            self.refresh_status()

    def _failed(self, failure: _Failed) -> None:
        error = failure.error
        field, text = error_text(error, gateway=self.api.gateway, repeated_529=failure.repeated_529)
        chain.api_error(
            self.recorder,
            text,
            error=field,
            request_id=error.request_id,
            status=error.status,
            error_type=error.error_type,
            connection_failed=error.status is None,
        )
        session = self.session
        if error.status == 401:
            session.transcript += [*block("  ⎿  ", text), ""]
            session.placeholder = "Once fixed, resend your message"
        else:
            session.transcript += [*block("● ", text), ""]
            session.placeholder = "Resend your message to try again"

    def _interrupted_stream(self, prompt_id: str, state: StreamState, request_ref: str) -> None:
        session = self.session
        message = state.message
        if state.started:
            chain.partial_assistant(
                self.recorder, message, request_id=state.request_id, request_ref=request_ref
            )
            content = [item for item in message.get("content", []) if isinstance(item, dict)]
            self.history.add_assistant(content)
            for item in content:
                if item.get("type") == "text" and item.get("text"):
                    session.transcript += block("● ", str(item["text"]).rstrip())
        message_id = message.get("id")
        chain.interrupt_marker(
            self.recorder,
            prompt_id=prompt_id,
            message_id=message_id if isinstance(message_id, str) else None,
            for_tool=False,
        )
        self.history.add_user([{"type": "text", "text": INTERRUPTED}])
        session.transcript += [_INTERRUPTED_LINE, ""]

    async def _run_tools(
        self, prompt_id: str, content: list[JsonObject], uuids: list[str], message_id: str
    ) -> bool:
        """Run the message's tool calls; False when one was refused or interrupted."""
        session = self.session
        results: list[JsonObject] = []
        calls = [
            (index, item) for index, item in enumerate(content) if item.get("type") == "tool_use"
        ]
        for number, (index, call) in enumerate(calls):
            source = uuids[index] if index < len(uuids) else ""
            arguments = call.get("input")
            if not isinstance(arguments, dict):
                arguments = {}
            try:
                results.append(
                    await self.tools_runner.run(
                        prompt_id, str(call.get("name")), arguments, str(call.get("id")), source
                    )
                )
                continue
            except Refused:
                before_run = True
            except asyncio.CancelledError:
                if not session.interrupting:
                    raise
                session.interrupting = False
                before_run = False
            for _, left in calls[number:]:
                results.append(
                    self.tools_runner.refuse(
                        prompt_id, str(left.get("id")), source, before_run=before_run
                    )
                )
            chain.interrupt_marker(
                self.recorder, prompt_id=prompt_id, message_id=message_id, for_tool=True
            )
            self.history.add_user([*results, {"type": "text", "text": INTERRUPTED_FOR_TOOL}])
            command = arguments.get("command", call.get("name"))
            session.transcript += [
                "  Did not run 1 call",
                f"  ⎿  $ {command}",
                _INTERRUPTED_LINE,
                "",
            ]
            return False
        self.history.add_user(results)
        return True

    async def stop_children(self) -> None:
        """End every Bash child and reap it."""
        await self.tools_runner.stop_children()

    def exit_records(self) -> None:
        """Queue what the CLI appends at exit, if the session has a file."""
        if self.replay is not None:
            if self.replay.finished:
                for record in self.replay.tail():
                    self.recorder.add_raw(record)
        elif self.session.writer.has_records():
            self.recorder.exit_records(self.last_prompt)
