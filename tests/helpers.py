"""Small helpers shared by the tests."""

from __future__ import annotations

from collections.abc import Iterable

from claude_trio import AssistantMessage, Event, TextBlock


def assistant_texts(events: Iterable[Event]) -> list[str]:
    """The text blocks of the assistant's messages among *events*, in order."""
    return [
        block.text
        for event in events
        if isinstance(event, AssistantMessage)
        for block in event.content
        if isinstance(block, TextBlock)
    ]
