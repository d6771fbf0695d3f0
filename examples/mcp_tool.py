"""Give ``claude`` an MCP server and watch the model call its tool.

The server is the tiny stdio ``echo`` server bundled in `claude_trio.testing` (it needs
the ``testing`` extra: ``pip install 'claude-trio[testing]'``). The CLI shows its tool to
the model as ``mcp__echo__echo``; the call arrives as a `ToolUseBlock` in an
`AssistantMessage`, and the server's answer as a `ToolResultBlock` in a `UserMessage`.
The tool is allowed up front, so the CLI does not stop to ask for permission.

Run it in a project directory, with a ``claude`` you have logged in to:

.. code-block:: console

   $ python examples/mcp_tool.py
"""

from __future__ import annotations

import os

import attrs
import trio

from claude_trio import (
    AssistantMessage,
    BackendOptions,
    Event,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
    open_backend,
)
from claude_trio.testing import echo_mcp_server

TOOL = "mcp__echo__echo"
PROMPT = "Use the echo tool to echo 'hi mcp'."


def show(event: Event) -> None:
    """Print the text, tool calls and tool results of *event*."""
    if isinstance(event, AssistantMessage):
        for block in event.content:
            if isinstance(block, TextBlock):
                print(block.text)
            elif isinstance(block, ToolUseBlock):
                print(f"[calls {block.name} with {block.input}]")
    elif isinstance(event, UserMessage) and not isinstance(event.content, str):
        for block in event.content:
            if isinstance(block, ToolResultBlock):
                content = block.content
                if not isinstance(content, str):
                    content = "".join(part.get("text", "") for part in content)
                print(f"[{'error' if block.is_error else 'result'}: {content}]")


async def main(options: BackendOptions, prompt: str = PROMPT) -> list[Event]:
    """Ask *prompt* with the echo server attached; return the turn's events."""
    options = attrs.evolve(
        options,
        mcp_servers={**options.mcp_servers, "echo": echo_mcp_server()},
        allowed_tools=[*options.allowed_tools, TOOL],
    )
    events: list[Event] = []
    async with open_backend(options) as backend:
        print(f"> {prompt}")
        async for event in backend.complete([{"role": "user", "content": prompt}]):
            show(event)
            events.append(event)
    return events


if __name__ == "__main__":
    trio.run(main, BackendOptions(cwd=os.getcwd()))
