"""Which of a conversation's API requests are its turns', and whose: sans-I/O rules.

The relay sees every request one ``claude`` process sends. Only the requests of the
conversation's turns give partial messages: the main thread's, and a sub-agent's (the
``Agent`` tool; ``Task`` in older CLIs) tagged with the id of the tool call that started
it. The CLI's requests for itself (a session title, a quota probe, ``count_tokens``,
``/api/hello``) give none. What tells them apart, measured on the CLI 2.1.328
(:doc:`/relay`, ``tests/samples/mock_requests_subagent.jsonl``):

* A turn's request is a streamed ``POST …/v1/messages`` with tools, whose
  ``anthropic-beta`` header lists ``claude-code-20250219``. The title request has no tools
  and other betas; the quota probe asks for ``max_tokens`` 1.
* A sub-agent's requests carry an ``x-claude-code-agent-id`` header, and their first
  message holds the prompt the ``Agent`` tool call gave, as a text block of its own.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

_CLAUDE_CODE_BETA: Final = "claude-code-20250219"
_AGENT_ID_HEADER: Final = b"x-claude-code-agent-id"
_MESSAGES_ROUTE: Final = "/v1/messages"
_SUBAGENT_TOOLS: Final = frozenset({"Task", "Agent"})
# Sub-agent calls and agents remembered per conversation, oldest dropped first.
_MAX_REMEMBERED: Final = 64


class RequestRole(enum.Enum):
    """What a request is to its conversation.

    Attributes:
        MAIN: A request of the conversation's own turns.
        SUBAGENT: A request of a sub-agent one of its turns started.
        SIDE: A request the CLI makes for itself, or one of a thread not recognised.
    """

    MAIN = "main"
    SUBAGENT = "subagent"
    SIDE = "side"


@attrs.frozen
class Classified:
    """A request's role, and for a sub-agent's the tool call that started it."""

    role: RequestRole
    parent_tool_use_id: str | None = None


def is_turn_request(method: str, route: str, headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request may be a turn's, by its method, route and headers alone.

    *route* is the path after the conversation's prefix, without the query.
    """
    if method != "POST" or not route.endswith(_MESSAGES_ROUTE):
        return False
    for name, value in headers:
        if name.lower() == b"anthropic-beta":
            betas = value.decode("latin-1").split(",")
            if any(beta.strip() == _CLAUDE_CODE_BETA for beta in betas):
                return True
    return False


def agent_id(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The ``x-claude-code-agent-id`` a sub-agent's requests carry, if any."""
    for name, value in headers:
        if name.lower() == _AGENT_ID_HEADER:
            return value.decode("latin-1").strip() or None
    return None


def _first_message_texts(body: Mapping[str, Any]) -> list[str]:
    """The texts of a request's first message."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict):
        return []
    content = messages[0].get("content")
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return []
    return [
        block["text"]
        for block in content
        if isinstance(block, dict) and isinstance(block.get("text"), str)
    ]


class ThreadTracker:
    """Classifies one conversation's turn requests, learning its sub-agents as they come.

    A sub-agent tool call seen in a main-thread response (`observe`) lets the first
    request of that sub-agent (by its ``x-claude-code-agent-id``) that holds the call's
    prompt be tied to the call; the agent's later requests follow by their agent id. A
    sub-agent request tied to no call keeps ``parent_tool_use_id`` None.
    """

    def __init__(self) -> None:
        # Sub-agent tool calls not yet tied to an agent: id -> prompt.
        self._pending: dict[str, str] = {}
        self._agents: dict[str, str | None] = {}
        # The tool call being streamed per content block index: (id, JSON so far).
        self._calls: dict[int, tuple[str, list[str]]] = {}

    def classify(
        self, headers: Iterable[tuple[bytes, bytes]], body: Mapping[str, Any] | None
    ) -> Classified:
        """Return the role of a turn request (one `is_turn_request` accepted).

        Args:
            headers: The request's headers.
            body: The request's JSON object, or None if it was not one.
        """
        if (
            body is None
            or body.get("stream") is not True
            or body.get("max_tokens") == 1
            or not body.get("tools")
        ):
            return Classified(RequestRole.SIDE)
        agent = agent_id(headers)
        if agent is None:
            return Classified(RequestRole.MAIN)
        if agent not in self._agents:
            texts = _first_message_texts(body)
            self._agents[agent] = next(
                (
                    tool_use_id
                    for tool_use_id, prompt in self._pending.items()
                    if prompt and any(prompt in text for text in texts)
                ),
                None,
            )
            self._pending.pop(self._agents[agent] or "", None)
            while len(self._agents) > _MAX_REMEMBERED:
                del self._agents[next(iter(self._agents))]
        return Classified(RequestRole.SUBAGENT, self._agents[agent])

    def observe(self, event: Mapping[str, Any]) -> None:
        """Learn the sub-agent tool calls from a main-thread stream event."""
        kind = event.get("type")
        index = event.get("index")
        if not isinstance(index, int):
            return
        if kind == "content_block_start":
            block = event.get("content_block")
            if (
                isinstance(block, dict)
                and block.get("type") == "tool_use"
                and block.get("name") in _SUBAGENT_TOOLS
                and isinstance(block.get("id"), str)
            ):
                self._calls[index] = (block["id"], [])
        elif kind == "content_block_delta" and index in self._calls:
            delta = event.get("delta")
            if isinstance(delta, dict) and isinstance(delta.get("partial_json"), str):
                self._calls[index][1].append(delta["partial_json"])
        elif kind == "content_block_stop" and index in self._calls:
            tool_use_id, parts = self._calls.pop(index)
            try:
                arguments = json.loads("".join(parts) or "{}")
            except ValueError:
                return
            prompt = arguments.get("prompt") if isinstance(arguments, dict) else None
            if isinstance(prompt, str):
                self._pending[tool_use_id] = prompt
                while len(self._pending) > _MAX_REMEMBERED:
                    del self._pending[next(iter(self._pending))]

    def end_of_stream(self) -> None:
        """Forget the tool calls of a stream that ended (or was cut) mid-block."""
        self._calls.clear()
