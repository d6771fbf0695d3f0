"""Small helpers shared by the tests."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import trio

from claude_trio import (
    AssistantMessage,
    BackendOptions,
    ClaudeCodeBackend,
    Event,
    ResultMessage,
    StreamEvent,
    TextBlock,
)
from claude_trio._events import assistant_texts as assistant_texts
from claude_trio.testing import IsolatedConfig, RecordedRequest


def processes_with(entry: str, *, zombies: bool = True) -> list[str]:
    """The ``stat`` lines of the other processes whose environment holds *entry*
    (``NAME=value``); zombies too unless *zombies* is false."""
    needle = entry.encode()
    found = []
    for proc in os.scandir("/proc"):
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = Path(proc.path, "environ").read_bytes().split(b"\0")
            stat = Path(proc.path, "stat").read_text()
        except OSError:
            continue
        if needle in environ and (zombies or ") Z " not in stat):
            found.append(stat.strip())
    return found


#: Seconds a test gives one turn of the backend.
TURN = 60

Message = Mapping[str, Any]


def backend_options(cli: Path, config: IsolatedConfig, **overrides: Any) -> BackendOptions:
    """Backend options that run *cli* in the isolated *config*, bypass mode, and *overrides*."""
    settings: dict[str, Any] = {
        "cwd": config.cwd,
        "env": config.env,
        "cli_path": str(cli),
        "dangerously_skip_permissions": True,
        **overrides,
    }
    return BackendOptions(**settings)


async def ask(backend: ClaudeCodeBackend, messages: Sequence[Message], **call: Any) -> list[Event]:
    """Run one ``complete()`` to its end, within `TURN`; it must end with a `ResultMessage`."""
    events: list[Event] = []
    with trio.fail_after(TURN):
        async for event in backend.complete(messages, **call):
            events.append(event)
    assert isinstance(events[-1], ResultMessage)
    return events


def user_texts(request: RecordedRequest) -> list[str]:
    """Every user text block of a request that is not a system reminder, in order."""
    assert request.body is not None
    texts = []
    for message in request.body["messages"]:
        if message["role"] != "user":
            continue
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        texts += [
            block["text"]
            for block in blocks
            if block.get("type") == "text" and not block["text"].startswith("<system-reminder>")
        ]
    return texts


def session_header(request: RecordedRequest) -> str:
    """The session id the CLI sent the request for."""
    return {k.lower(): v for k, v in request.headers.items()}["x-claude-code-session-id"]


def pids_of_sessions(session_ids: set[str]) -> list[int]:
    """The processes whose command line names one of *session_ids* (the claude CLIs)."""
    wanted = {session_id.encode() for session_id in session_ids}
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted & set(argv):
            pids.append(int(entry.name))
    return pids


def inotify_fds() -> list[str]:
    """The descriptors of this process that are inotify instances."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:inotify":
                found.append(name)
        except OSError:
            continue
    return found


def partial_texts(events: Sequence[Event]) -> list[str]:
    """The text of each API message's deltas, in order (main thread only; messages
    without text left out)."""
    texts: dict[str, list[str]] = {}
    current = ""
    for event in events:
        if not isinstance(event, StreamEvent) or event.parent_tool_use_id is not None:
            continue
        raw = event.event
        if raw["type"] == "message_start":
            current = raw["message"]["id"]
            texts[current] = []
        elif raw["type"] == "content_block_delta" and raw["delta"]["type"] == "text_delta":
            texts[current].append(raw["delta"]["text"])
    return [text for pieces in texts.values() if (text := "".join(pieces))]


def message_texts(events: Sequence[Event]) -> list[str]:
    """The text of each API message's `AssistantMessage` s, in order (messages without
    text left out)."""
    texts: dict[str, str] = {}
    for event in events:
        if isinstance(event, AssistantMessage):
            for block in event.content:
                if isinstance(block, TextBlock):
                    texts[event.id] = texts.get(event.id, "") + block.text
    return [text for text in texts.values() if text]
