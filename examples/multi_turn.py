"""Hold a two-turn conversation; both turns are answered by the same ``claude`` process.

The caller keeps the history, as with the Messages API, and sends all of it each time.
The backend recognises the history its live process already holds and types only the new
message into it, so the second turn starts no process and re-sends nothing.

Run it in a project directory, with a ``claude`` you have logged in to:

.. code-block:: console

   $ python examples/multi_turn.py
"""

from __future__ import annotations

import os
from typing import Any

import trio

from claude_trio import (
    AssistantMessage,
    BackendOptions,
    BackendStatistics,
    ClaudeCodeBackend,
    TextBlock,
    open_backend,
)

QUESTIONS = ("Remember the codeword Beaver.", "What was the codeword?")


async def ask(backend: ClaudeCodeBackend, messages: list[dict[str, Any]]) -> str:
    """Print and return the text of the answer to the last message of *messages*."""
    print(f"> {messages[-1]['content']}")
    answer = ""
    async for event in backend.complete(messages):
        if isinstance(event, AssistantMessage):
            for block in event.content:
                if isinstance(block, TextBlock):
                    print(block.text)
                    answer += block.text
    return answer


async def main(options: BackendOptions) -> BackendStatistics:
    """Ask each of `QUESTIONS` in one conversation; return the backend's statistics."""
    messages: list[dict[str, Any]] = []
    async with open_backend(options) as backend:
        for question in QUESTIONS:
            messages.append({"role": "user", "content": question})
            answer = await ask(backend, messages)
            messages.append({"role": "assistant", "content": answer})
        statistics = backend.statistics()
    print(f"[{statistics.spawned} process started, {statistics.reused} turn reused it]")
    return statistics


if __name__ == "__main__":
    trio.run(main, BackendOptions(cwd=os.getcwd()))
