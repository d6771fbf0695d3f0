"""``claude-trio demo``: the real claude CLI against the bundled mock API, offline.

The same short conversation runs twice: through a `ClaudeCodeBackend`, printing its
events, then through the gateway with the official ``anthropic`` SDK, printing the
replies. Both halves print each turn's time to the first event and to its end.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, cast

import trio

from ._backend import ClaudeCodeBackend
from ._errors import BackendError
from ._events import (
    AssistantMessage,
    Event,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
    assistant_texts,
)
from ._options import BackendOptions

if TYPE_CHECKING:
    from .testing import RecordedRequest

#: The name the echo MCP server is configured under, and the tool the CLI makes of it.
MCP_SERVER: Final = "echo"
MCP_TOOL: Final = f"mcp__{MCP_SERVER}__echo"

#: The conversation the demo runs when no PROMPT is given: a plain turn, a Bash call
#: and a call of the echo MCP server's tool (magic words of the bundled mock).
DEMO_PROMPTS: Final = (
    "Hello! Who are you?",
    "CALL_BASH echo hello",
    f'CALL_TOOL {MCP_TOOL} {{"text": "hi from the demo"}}',
)

#: The model the gateway half asks for (any name reaches the mock).
GATEWAY_MODEL: Final = "sonnet"

_DESCRIPTION = (
    "Start claude against the bundled mock Anthropic API (no account, no network) and run "
    "a short conversation, a Bash call and an MCP call included: first through "
    "ClaudeCodeBackend, printing its events, then through the gateway with the anthropic "
    "SDK (skipped when that package is not installed). PROMPTs replace the conversation. "
    "Magic words in a prompt steer the mock: THINK, CALL_BASH <command>, CALL_TOOL <name> "
    "<json>, MAXTOK, SLOW<n>, ERR401, ERR429, ERR529, ERR500."
)


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``demo`` command's arguments to *parser*.

    Args:
        parser: The ``demo`` subcommand's parser; its description is set too.
    """
    parser.description = _DESCRIPTION
    parser.add_argument(
        "prompts",
        nargs="*",
        metavar="PROMPT",
        help="the user's messages, one turn each (default: the demo conversation)",
    )
    parser.add_argument(
        "--cli-path", help="the claude executable (default: CLAUDE_TRIO_CLI or PATH)"
    )


async def run_demo(args: argparse.Namespace) -> int:
    """Run the demo the parsed *args* describe; return the exit status.

    A turn that fails is printed and the demo goes on.

    Args:
        args: Parsed by a parser that `add_demo_arguments` set up.

    Returns:
        0.

    Raises:
        BackendError: If claude cannot be started at all.
    """
    from .testing import (
        echo_mcp_server,
        isolated_config,
        magic_word_handler,
        open_mock_anthropic_api,
    )

    prompts = tuple(args.prompts) or DEMO_PROMPTS
    async with open_mock_anthropic_api(handler=magic_word_handler) as api:
        print(f"mock Anthropic API on {api.base_url} (offline: no account, no network)")
        with tempfile.TemporaryDirectory(prefix="claude-trio-demo-") as scratch:
            config = isolated_config(scratch, base_url=api.base_url)
            options = BackendOptions(
                cwd=config.cwd,
                env=config.env,
                cli_path=args.cli_path,
                dangerously_skip_permissions=True,
                max_retries=0,
                mcp_servers={MCP_SERVER: echo_mcp_server()},
            )
            print("\n== through ClaudeCodeBackend")
            await _through_backend(options, prompts)
            print(mcp_tool_line(api.main_requests))
            print("\n== through the gateway, with the anthropic SDK")
            await _through_gateway(options, prompts)
    return 0


# --- Showing events (sans-I/O) ------------------------------------------------------


def describe(event: Event) -> list[str]:
    """Return the lines that show *event* compactly (none for an event not worth a line)."""
    if isinstance(event, UserMessage) and isinstance(event.content, str):
        return [f"  [note from the CLI] {event.content[:70]}…"] if event.is_meta else []
    if isinstance(event, AssistantMessage | UserMessage):
        lines = []
        for block in event.content:
            if isinstance(block, TextBlock):
                lines.append(f"  claude: {block.text}")
            elif isinstance(block, ThinkingBlock):
                lines.append(f"  (thinking) {block.thinking}")
            elif isinstance(block, ToolUseBlock):
                lines.append(f"  tool call {block.name} {json.dumps(block.input)}")
            elif isinstance(block, ToolResultBlock):
                error = " (error)" if block.is_error else ""
                lines.append(f"  tool result{error}: {result_text(block.content)}")
        return lines
    if isinstance(event, SystemMessage):
        return [f"  [{event.subtype}] {event.content or ''}"]
    if isinstance(event, StreamEvent):
        return []
    usage = event.usage
    return [
        f"  [result] stop_reason={event.stop_reason} api_messages={event.num_api_messages}"
        f" input_tokens={usage.input_tokens} output_tokens={usage.output_tokens}"
        f" duration_ms={event.duration_ms}"
    ]


def result_text(content: str | Iterable[Mapping[str, Any]]) -> str:
    """A tool result's text: the string, or its text blocks joined (others by type)."""
    if isinstance(content, str):
        return content.strip()
    return " ".join(
        str(part.get("text", "")).strip()
        if part.get("type") == "text"
        else f"[{part.get('type', 'block')}]"
        for part in content
    )


def reply_text(events: Iterable[Event]) -> str:
    """The assistant's text blocks among *events*, joined by newlines."""
    return "\n".join(assistant_texts(events))


def describe_block(block: Mapping[str, Any]) -> str:
    """Show one content block of a Messages API reply (as JSON) in a line."""
    kind = block.get("type")
    if kind == "text":
        return f"  claude: {block.get('text', '')}"
    if kind == "server_tool_use":
        return f"  tool call {block.get('name')} {json.dumps(block.get('input'))}"
    if kind == "mcp_tool_result":
        error = " (error)" if block.get("is_error") else ""
        return f"  tool result{error}: {result_text(block.get('content') or [])}"
    if kind == "thinking":
        return f"  (thinking) {block.get('thinking', '')}"
    return f"  [{kind}]"


def timing_line(first: float | None, took: float, *, started: bool = False) -> str:
    """The line that ends a turn: the time to its first event and to its end.

    Args:
        first: Seconds from the request to its first event; None if none came.
        took: Seconds from the request to its end.
        started: Whether a claude process was started for the turn (its time counts).
    """
    shown = "no event" if first is None else f"first event after {first:.3f} s"
    spawn = ", claude started for it" if started else ""
    return f"  ({shown}, turn {took:.3f} s{spawn})"


def mcp_tool_line(requests: Sequence[RecordedRequest]) -> str:
    """Say under which name the CLI offered the echo server's tool to the model.

    The CLI lists MCP tools as "deferred" tools, by name only, in the request's text.
    """
    sent = " ".join(json.dumps(request.body) for request in requests)
    names = sorted(set(re.findall(rf"mcp__{MCP_SERVER}__\w+", sent)))
    if MCP_TOOL in names:
        return f"the CLI offered the echo MCP server's tool to the model as {MCP_TOOL}"
    return (
        f"the CLI had not offered {MCP_TOOL} to the model (seen: {names or 'none'}); it "
        "lists an MCP server's tools from the first request after the server connected"
    )


# --- The two halves (I/O) -----------------------------------------------------------


async def _through_backend(options: BackendOptions, prompts: Sequence[str]) -> None:
    messages: list[dict[str, Any]] = []
    async with ClaudeCodeBackend(options) as backend:
        for prompt in prompts:
            print(f"> {prompt}")
            messages.append({"role": "user", "content": prompt})
            sent = trio.current_time()
            first: float | None = None
            events: list[Event] = []
            spawned = backend.statistics().spawned
            try:
                async for event in backend.complete(messages):
                    first = trio.current_time() - sent if first is None else first
                    events.append(event)
                    for line in describe(event):
                        print(line)
            except BackendError as exc:
                print(f"  error: {type(exc).__name__}: {exc}")
            started = backend.statistics().spawned > spawned
            print(timing_line(first, trio.current_time() - sent, started=started))
            text = reply_text(events)
            if text:
                messages.append({"role": "assistant", "content": text})
            else:
                messages.pop()  # no answer to keep: the next turn goes on without it
        stats = backend.statistics()
    print(
        f"{stats.spawned} claude process(es) started for {len(prompts)} turn(s); "
        f"{stats.reused} turn(s) reused a live one"
    )


async def _through_gateway(options: BackendOptions, prompts: Sequence[str]) -> None:
    try:
        import anthropic
    except ImportError:
        print("the anthropic package is not installed: skipping the gateway half")
        return
    from ._gateway import GatewayOptions, open_gateway

    async with open_gateway(options, GatewayOptions()) as gateway:
        print(f"gateway on {gateway.base_url}")
        # A loopback gateway without tokens takes any key; the SDK wants one.
        client = anthropic.AsyncAnthropic(
            base_url=gateway.base_url, api_key="no-key-needed", max_retries=0
        )
        messages: list[dict[str, Any]] = []
        try:
            for prompt in prompts:
                print(f"> {prompt}")
                messages.append({"role": "user", "content": prompt})
                sent = trio.current_time()
                first: float | None = None
                content: list[dict[str, Any]] = []
                spawned = gateway.backend.statistics().spawned
                try:
                    async with client.messages.stream(
                        model=GATEWAY_MODEL,
                        max_tokens=1024,
                        messages=cast("Any", messages),
                    ) as stream:
                        async for _ in stream:
                            first = trio.current_time() - sent if first is None else first
                        reply = await stream.get_final_message()
                    content = [block.model_dump(exclude_none=True) for block in reply.content]
                except anthropic.APIError as exc:
                    print(f"  error: {type(exc).__name__}: {exc}")
                for block in content:
                    print(describe_block(block))
                started = gateway.backend.statistics().spawned > spawned
                print(timing_line(first, trio.current_time() - sent, started=started))
                if any(block.get("type") == "text" for block in content):
                    # The reply goes back whole: the gateway turns its own tool blocks
                    # back into the CLI's tool calls, so the same process goes on.
                    messages.append({"role": "assistant", "content": content})
                else:
                    messages.pop()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await client.close()
        stats = gateway.backend.statistics()
    print(
        f"{stats.spawned} claude process(es) started for {len(prompts)} request(s); "
        f"{stats.reused} request(s) reused a live one"
    )
