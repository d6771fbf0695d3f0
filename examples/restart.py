"""Continue a conversation in a new backend, after the process that held it is gone.

The first backend answers one message and is closed, which ends its ``claude``. The
caller kept the history (it could as well have saved it to disk and restarted). A second
backend gets that history plus a new question: no live process holds it, so the backend
starts one and re-seeds it. With ``injection_mode="native_jsonl"`` the history is written
as a CLI session file and resumed, so the model sees it as real earlier turns.

Run it in a project directory, with a ``claude`` you have logged in to:

.. code-block:: console

   $ python examples/restart.py
"""

from __future__ import annotations

import os
from typing import Any

import attrs
import trio

from claude_trio import AssistantMessage, BackendOptions, TextBlock, open_backend


async def answer(options: BackendOptions, messages: list[dict[str, Any]]) -> str:
    """Answer *messages* with a backend of its own; print and return the reply's text."""
    print(f"> {messages[-1]['content']}")
    text = ""
    async with open_backend(options) as backend:
        async for event in backend.complete(messages):
            if isinstance(event, AssistantMessage):
                for block in event.content:
                    if isinstance(block, TextBlock):
                        print(block.text)
                        text += block.text
        statistics = backend.statistics()
    print(f"[processes started: {statistics.spawned}, re-seeded: {statistics.reseeded}]")
    return text


async def main(options: BackendOptions) -> list[dict[str, Any]]:
    """Ask, close, then ask a follow-up in a new backend; return the whole conversation."""
    options = attrs.evolve(options, injection_mode="native_jsonl")
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Remember the codeword Beaver."}]
    reply = await answer(options, messages)
    # The first claude has exited. Only `messages` remembers the conversation.
    messages += [
        {"role": "assistant", "content": reply},
        {"role": "user", "content": "What was the codeword?"},
    ]
    reply = await answer(options, messages)
    messages.append({"role": "assistant", "content": reply})
    return messages


if __name__ == "__main__":
    trio.run(main, BackendOptions(cwd=os.getcwd()))
