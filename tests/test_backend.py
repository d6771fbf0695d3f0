"""ClaudeCodeBackend on the real CLI against the mock: reuse, re-seed, pool policy, options."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from contextlib import aclosing
from pathlib import Path
from typing import Any

import anyio
import pytest
import trio

from claude_trio import (
    BackendOptions,
    ClaudeCodeBackend,
    Event,
    InputError,
    ResultMessage,
    open_backend,
)
from claude_trio.testing import IsolatedConfig, MockAnthropicAPI, text_reply

from .conftest import LEAK_MARK
from .helpers import (
    TURN,
    Message,
    ask,
    assistant_texts,
    backend_options,
    inotify_fds,
    session_header,
    user_texts,
)


def _reply(events: Sequence[Event]) -> str:
    return "".join(assistant_texts(events))


def _options(cli: Path, config: IsolatedConfig, **overrides: Any) -> BackendOptions:
    return backend_options(cli, config, **{"max_retries": 0, **overrides})


async def test_three_turns_reuse_one_process(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with ClaudeCodeBackend(_options(claude_cli, isolated)) as backend:
        history: list[Message] = [{"role": "user", "content": "remember Beaver"}]
        for question in ["what was it?", "and again?"]:
            events = await ask(backend, history)
            reply = _reply(events)
            history += [
                {"role": "assistant", "content": [{"type": "text", "text": reply}]},
                {"role": "user", "content": [{"type": "text", "text": question}]},
            ]
        await ask(backend, history)
        stats = backend.statistics()
    assert (stats.spawned, stats.reused, stats.reseeded) == (1, 2, 0)
    assert len({session_header(r) for r in mock_api.main_requests}) == 1
    assert user_texts(mock_api.main_requests[-1]) == [
        "remember Beaver",
        "what was it?",
        "and again?",
    ]


@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_stopping_at_the_result_frees_the_process_at_once(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    history: list[Message] = []
    async with ClaudeCodeBackend(_options(claude_cli, isolated)) as backend:
        for number in range(3):
            history.append({"role": "user", "content": f"question {number}"})
            with trio.fail_after(TURN):
                async for event in backend.complete(history):
                    if isinstance(event, ResultMessage):
                        break  # no aclosing(): the generator is left to the collector
            history.append({"role": "assistant", "content": f"echo: question {number}"})
        stats = backend.statistics()
    assert (stats.spawned, stats.reused) == (1, 2)


async def test_the_reply_may_come_back_in_another_form(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with ClaudeCodeBackend(_options(claude_cli, isolated)) as backend:
        await ask(backend, [{"role": "user", "content": "first"}])
        history: list[Message] = [
            {"role": "user", "content": [{"type": "text", "text": "first"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "x"},
                    {"type": "text", "text": "echo:"},
                    {"type": "text", "text": "\nfirst "},
                ],
            },
            {"role": "user", "content": "second"},
        ]
        await ask(backend, history)
        assert backend.statistics().reused == 1


async def test_an_edited_or_regenerated_reply_reseeds(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with ClaudeCodeBackend(_options(claude_cli, isolated)) as backend:
        await ask(backend, [{"role": "user", "content": "first"}])
        # A regenerate: the same messages again.
        await ask(backend, [{"role": "user", "content": "first"}])
        # An edited reply.
        edited: list[Message] = [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "echo: something else"},
            {"role": "user", "content": "second"},
        ]
        await ask(backend, edited)
        stats = backend.statistics()
    assert (stats.spawned, stats.reused, stats.reseeded) == (3, 0, 1)
    assert "echo: something else" in json.dumps(mock_api.main_requests[-1].body)


async def test_two_clients_with_the_same_opening_keep_their_own_context(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    mock_api.enqueue(text_reply("reply for client A"), text_reply("reply for client B"))
    async with ClaudeCodeBackend(_options(claude_cli, isolated)) as backend:
        opening: list[Message] = [{"role": "user", "content": "hi"}]
        first_a = _reply(await ask(backend, opening))
        first_b = _reply(await ask(backend, opening))
        assert {first_a, first_b} == {"reply for client A", "reply for client B"}
        for reply in (first_b, first_a):
            follow_up = [
                *opening,
                {"role": "assistant", "content": reply},
                {"role": "user", "content": "next"},
            ]
            await ask(backend, follow_up)
            request = mock_api.main_requests[-1]
            sent = json.dumps(request.body)
            assert reply in sent
            assert ({first_a, first_b} - {reply}).pop() not in sent
        stats = backend.statistics()
    assert (stats.spawned, stats.reused, stats.reseeded) == (2, 2, 0)


async def test_namespaces_never_share_a_process(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    sessions = {}
    async with ClaudeCodeBackend(_options(claude_cli, isolated)) as backend:
        for tenant in ("alice", "bob"):
            history: list[Message] = [{"role": "user", "content": "hi"}]
            reply = _reply(await ask(backend, history, namespace=tenant))
            sessions[tenant] = session_header(mock_api.main_requests[-1])
            history += [{"role": "assistant", "content": reply}, {"role": "user", "content": "2"}]
            await ask(backend, history, namespace=tenant)
            assert session_header(mock_api.main_requests[-1]) == sessions[tenant]
        stats = backend.statistics()
    assert sessions["alice"] != sessions["bob"]
    assert (stats.spawned, stats.reused) == (2, 2)


async def test_a_call_with_another_model_gets_its_own_process(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    async with ClaudeCodeBackend(_options(claude_cli, isolated)) as backend:
        history: list[Message] = [{"role": "user", "content": "hi"}]
        reply = _reply(await ask(backend, history))
        history += [{"role": "assistant", "content": reply}, {"role": "user", "content": "2"}]
        await ask(backend, history, model="claude-sonnet-4-5")
        stats = backend.statistics()
    assert (stats.spawned, stats.reused, stats.reseeded) == (2, 0, 1)
    assert mock_api.main_requests[-1].model == "claude-sonnet-4-5"


@pytest.mark.parametrize("mode", ["native_jsonl", "concat_message"])
async def test_a_new_backend_continues_a_history_it_never_saw(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI, mode: str
) -> None:
    history: list[Message] = [
        {"role": "user", "content": "remember the codeword Beaver"},
        {"role": "assistant", "content": [{"type": "text", "text": "OK, Beaver."}]},
        {"role": "user", "content": "what was the codeword?"},
    ]
    async with open_backend(_options(claude_cli, isolated, injection_mode=mode)) as backend:
        events = await ask(backend, history)
        assert backend.statistics().reseeded == 1
    assert _reply(events).startswith("echo: ")
    (request,) = mock_api.main_requests
    sent = json.dumps(request.body)
    assert sent.count("remember the codeword Beaver") == 1
    assert sent.count("what was the codeword?") == 1
    assert sent.index("Beaver") < sent.index("what was the codeword?")
    if mode == "native_jsonl":
        assert user_texts(request) == ["remember the codeword Beaver", "what was the codeword?"]
        assert "OK, Beaver." in sent
    else:
        prompt = request.prompt or ""
        assert "Beaver" in prompt
        assert (
            prompt.rstrip().endswith("what was the codeword?") or "what was the codeword?" in prompt
        )


async def test_eviction_keeps_max_live_and_every_history_continues(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    histories: dict[str, list[Message]] = {
        name: [{"role": "user", "content": f"I am {name}"}] for name in ("ann", "bob", "cy")
    }
    async with ClaudeCodeBackend(_options(claude_cli, isolated, max_live=2)) as backend:
        for _ in range(2):
            for name, history in histories.items():
                events = await ask(backend, history)
                assert backend.statistics().live <= 2
                history += [
                    {"role": "assistant", "content": _reply(events)},
                    {"role": "user", "content": f"who am I, {name}?"},
                ]
        stats = backend.statistics()
    assert stats.evicted >= 2
    assert stats.reseeded >= 1
    for name in histories:
        asked = [r for r in mock_api.main_requests if r.prompt == f"who am I, {name}?"]
        assert len(asked) == 1
        assert user_texts(asked[0])[0] == f"I am {name}"


async def test_an_idle_process_expires(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI, leak_mark: str
) -> None:
    async with ClaudeCodeBackend(_options(claude_cli, isolated, idle_ttl=0.5)) as backend:
        await ask(backend, [{"role": "user", "content": "hi"}])
        (claude_pid,) = _claude_pids(leak_mark)
        pidfd = os.pidfd_open(claude_pid)
        try:
            with trio.fail_after(10):
                await trio.lowlevel.wait_readable(pidfd)
        finally:
            trio.lowlevel.notify_closing(pidfd)
            os.close(pidfd)
        assert backend.statistics().expired == 1
        events = await ask(
            backend,
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "echo: hi"},
                {"role": "user", "content": "back again"},
            ],
        )
        assert _reply(events) == "echo: back again"
        assert backend.statistics().reseeded == 1


def _argv(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def _claude_pids(mark: str) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            environ = Path(entry.path, "environ").read_bytes().split(b"\0")
            argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"{LEAK_MARK}={mark}".encode() in environ and b"--disable-slash-commands" in argv:
            found.append(int(entry.name))
    return found


async def test_ten_concurrent_calls_on_distinct_histories(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    replies: dict[int, str] = {}

    async def one(backend: ClaudeCodeBackend, number: int) -> None:
        events = await ask(backend, [{"role": "user", "content": f"caller {number}"}])
        replies[number] = _reply(events)

    async with ClaudeCodeBackend(_options(claude_cli, isolated, max_live=10)) as backend:
        async with trio.open_nursery() as nursery:
            for number in range(10):
                nursery.start_soon(one, backend, number)
        stats = backend.statistics()
    assert replies == {n: f"echo: caller {n}" for n in range(10)}
    assert stats.spawned == 10
    assert len({session_header(r) for r in mock_api.main_requests}) == 10


async def test_a_busy_history_forks_instead_of_sharing_a_process(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    history: list[Message] = [{"role": "user", "content": "SLOW2 same question"}]
    async with ClaudeCodeBackend(_options(claude_cli, isolated)) as backend:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, backend, history)
            nursery.start_soon(ask, backend, history)
        assert backend.statistics().spawned == 2
    assert len({session_header(r) for r in mock_api.main_requests}) == 2


async def test_stopping_mid_turn_then_retrying_reaches_the_api_once(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    first: list[Message] = [{"role": "user", "content": "hello"}]
    async with ClaudeCodeBackend(_options(claude_cli, isolated)) as backend:
        reply = _reply(await ask(backend, first))
        history = [
            *first,
            {"role": "assistant", "content": reply},
            {"role": "user", "content": "SLOW4 tell me more"},
        ]
        with trio.fail_after(TURN):
            async with aclosing(backend.complete(history)) as abandoned:
                async for _event in abandoned:
                    break
        assert backend.statistics().discarded == 1
        events = await ask(backend, history)
    assert _reply(events).startswith("w0")
    retry = mock_api.main_requests[-1]
    assert user_texts(retry) == ["hello", "SLOW4 tell me more"]


async def test_cancelling_mid_turn_discards_the_process(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    history: list[Message] = [{"role": "user", "content": "SLOW4 a long answer"}]
    async with ClaudeCodeBackend(_options(claude_cli, isolated)) as backend:

        async def run() -> None:
            async for _event in backend.complete(history):
                pass

        with trio.fail_after(TURN):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run)
                await mock_api.wait_for_requests(1)
                nursery.cancel_scope.cancel()
        stats = backend.statistics()
        assert (stats.busy, stats.discarded) == (0, 1)
        events = await ask(backend, [{"role": "user", "content": "fresh start"}])
    assert _reply(events) == "echo: fresh start"


async def test_a_failed_turn_is_never_reused(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    history: list[Message] = [{"role": "user", "content": "ERR529 first try"}]
    async with ClaudeCodeBackend(_options(claude_cli, isolated)) as backend:
        with pytest.raises(Exception, match="529"):
            await ask(backend, history)
        mock_api.handler = None
        events = await ask(backend, [{"role": "user", "content": "ERR529 first try"}])
        stats = backend.statistics()
    assert stats.spawned == 2
    assert _reply(events) == "echo: ERR529 first try"
    assert user_texts(mock_api.main_requests[-1]) == ["ERR529 first try"]


async def test_every_option_reaches_the_cli(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI, leak_mark: str
) -> None:
    options = _options(
        claude_cli,
        isolated,
        model="claude-sonnet-4-5",
        system_prompt="You are a test double.",
        disallowed_tools=["Write"],
        allowed_tools=["Bash(echo:*)"],
        permission_mode="bypassPermissions",
    )
    async with ClaudeCodeBackend(options) as backend:
        await ask(backend, [{"role": "user", "content": "hi"}])
        (pid,) = _claude_pids(leak_mark)
        argv = _argv(pid)
    (request,) = mock_api.main_requests
    assert request.model == "claude-sonnet-4-5"
    assert "You are a test double." in request.system_text
    assert request.body is not None
    tools = {tool["name"] for tool in request.body["tools"]}
    assert "Write" not in tools
    assert "Bash" in tools
    assert "--model=claude-sonnet-4-5" in argv
    for flag in (
        "--system-prompt-file",
        "--permission-mode",
        "--disable-slash-commands",
    ):
        assert flag in argv
    assert "--disallowedTools=Write" in argv
    assert "--allowedTools=Bash(echo:*)" in argv


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "assistant", "content": "hi"}],
        [{"role": "robot", "content": "hi"}],
        [{"role": "user", "content": [{"type": "video", "data": "x"}]}],
    ],
)
async def test_bad_input_is_refused_before_any_process(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI, messages: Any
) -> None:
    async with ClaudeCodeBackend(_options(claude_cli, isolated)) as backend:
        with pytest.raises(InputError):
            backend.complete(messages)
        assert backend.statistics().spawned == 0


async def test_works_from_anyio_code_on_trio(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    replies: list[str] = []

    async def one(backend: ClaudeCodeBackend, text: str) -> None:
        with anyio.fail_after(TURN):
            events = [
                event async for event in backend.complete([{"role": "user", "content": text}])
            ]
        replies.append(_reply(events))

    async with (
        ClaudeCodeBackend(_options(claude_cli, isolated)) as backend,
        anyio.create_task_group() as group,
    ):
        group.start_soon(one, backend, "from anyio 1")
        group.start_soon(one, backend, "from anyio 2")
    assert sorted(replies) == ["echo: from anyio 1", "echo: from anyio 2"]


def test_asyncio_is_refused_at_once(tmp_path: Path) -> None:
    async def main() -> None:
        async with ClaudeCodeBackend(BackendOptions(cwd=tmp_path)):
            pass

    with pytest.raises(RuntimeError, match="runs on trio"):
        asyncio.run(main())


async def test_every_conversation_of_a_backend_shares_one_inotify_instance(
    fake_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    before = len(inotify_fds())
    async with ClaudeCodeBackend(_options(fake_cli, isolated, max_live=6)) as backend:
        async with trio.open_nursery() as nursery:
            for number in range(6):
                nursery.start_soon(ask, backend, [{"role": "user", "content": f"n{number}"}])
        assert backend.statistics().live == 6
        assert len(inotify_fds()) == before + 1
    assert len(inotify_fds()) == before
