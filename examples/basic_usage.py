"""Ask one question through `ClaudeCodeBackend` and print the answer as it arrives.

`open_backend` starts ``claude`` on demand; `ClaudeCodeBackend.complete` takes the
conversation in the Anthropic Messages API shape and yields typed events, the last one a
`ResultMessage`.

Run it in a project directory, with a ``claude`` you have logged in to (it uses your own
subscription):

.. code-block:: console

   $ python examples/basic_usage.py
"""

from __future__ import annotations

import os

import trio

from claude_trio import (
    AssistantMessage,
    BackendOptions,
    Event,
    ResultMessage,
    TextBlock,
    open_backend,
)

PROMPT = "In one sentence: what is structured concurrency?"


async def main(options: BackendOptions, prompt: str = PROMPT) -> list[Event]:
    """Send *prompt* as a one-message conversation; return the turn's events."""
    events: list[Event] = []
    async with open_backend(options) as backend:
        print(f"> {prompt}")
        async for event in backend.complete([{"role": "user", "content": prompt}]):
            events.append(event)
            if isinstance(event, AssistantMessage):
                # One event per content block: text here, but also thinking or tool calls.
                for block in event.content:
                    if isinstance(block, TextBlock):
                        print(block.text)
            elif isinstance(event, ResultMessage):
                usage = event.usage
                print(f"[{usage.input_tokens} tokens in, {usage.output_tokens} out]")
    return events


if __name__ == "__main__":
    trio.run(main, BackendOptions(cwd=os.getcwd()))
