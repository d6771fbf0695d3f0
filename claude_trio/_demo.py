"""``claude-trio demo``: the real claude CLI against the bundled mock API, offline."""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence

import trio

from ._conversation import open_conversation
from ._errors import BackendError
from ._events import (
    AssistantMessage,
    Event,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)
from ._options import ConversationOptions

_DESCRIPTION = (
    "Start claude against the bundled mock Anthropic API (no account, no network), type "
    "each PROMPT and print what comes back. Magic words in a prompt steer the mock: THINK, "
    "CALL_BASH <command>, MAXTOK, SLOW<n>, ERR401, ERR429, ERR529, ERR500."
)


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``demo`` command's arguments to *parser*.

    Args:
        parser: The ``demo`` subcommand's parser; its description is set too.
    """
    parser.description = _DESCRIPTION
    parser.add_argument("prompts", nargs="*", metavar="PROMPT", default=["hi"])
    parser.add_argument(
        "--cli-path", help="the claude executable (default: CLAUDE_TRIO_CLI or PATH)"
    )


async def run_demo(args: argparse.Namespace) -> int:
    """Run the demo the parsed *args* describe; return the exit status.

    Args:
        args: Parsed by a parser that `add_demo_arguments` set up.

    Raises:
        BackendError: If claude cannot be started (a turn's error is printed instead).
    """
    await _demo(args.prompts, args.cli_path)
    return 0


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
                lines.append(f"  tool call {block.name} {block.input}")
            elif isinstance(block, ToolResultBlock):
                lines.append(f"  tool result: {block.content}")
        return lines
    if isinstance(event, SystemMessage):
        return [f"  [{event.subtype}] {event.content or ''}"]
    usage = event.usage
    return [
        f"  [result] stop_reason={event.stop_reason} api_messages={event.num_api_messages}"
        f" input_tokens={usage.input_tokens} output_tokens={usage.output_tokens}"
        f" duration_ms={event.duration_ms}"
    ]


async def _demo(prompts: Sequence[str], cli_path: str | None) -> None:
    from .testing import isolated_config, magic_word_handler, open_mock_anthropic_api

    async with open_mock_anthropic_api(handler=magic_word_handler) as api:
        print(f"mock Anthropic API on {api.base_url}")
        with tempfile.TemporaryDirectory(prefix="claude-trio-demo-") as scratch:
            config = isolated_config(scratch, base_url=api.base_url)
            options = ConversationOptions(
                cwd=config.cwd,
                env=config.env,
                cli_path=cli_path,
                dangerously_skip_permissions=True,
                max_retries=0,
            )
            started = trio.current_time()
            async with open_conversation(options) as conversation:
                print(
                    f"claude ready after {trio.current_time() - started:.2f} s "
                    f"(session {conversation.session_id})"
                )
                for prompt in prompts:
                    print(f"> {prompt}")
                    sent = trio.current_time()
                    first: float | None = None
                    try:
                        async for event in conversation.turn(prompt):
                            if first is None and isinstance(event, AssistantMessage):
                                first = trio.current_time() - sent
                            for line in describe(event):
                                print(line)
                    except BackendError as exc:
                        print(f"  error: {type(exc).__name__}: {exc}")
                    took = trio.current_time() - sent
                    if first is not None:
                        print(f"  (first answer after {first:.3f} s, turn {took:.3f} s)")
                closing = trio.current_time()
            print(
                f"claude closed in {trio.current_time() - closing:.2f} s; "
                f"the mock saw {len(api.main_requests)} turn request(s)"
            )
