"""The gateway streams deltas: stream events merged with whole messages, sans I/O.

Synthetic turns (the relay's stream events, then the session file's records) go through
the encoders of both routes, and through the gateway's ASGI app over a stub backend; the
official SDKs read the result. The reference is always the same turn without its stream
events: what the gateway sends when the relay is off.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import AsyncGenerator, Sequence
from typing import Any, cast

import anthropic
import attrs
import httpx2
import pytest
import trio
from anthropic.types import Message
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionChunk

from claude_trio import (
    AssistantMessage,
    BackendOptions,
    Event,
    RateLimitError,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
    UserMessage,
)
from claude_trio._chat_api import ChatStreamEncoder, chat_completion
from claude_trio._command import build_parser
from claude_trio._command_serve import serve_backend_options
from claude_trio._deltas import BlockClosed, BlockOpened, BlockText, DeltaMerger, WholeEvent
from claude_trio._gateway import Gateway, GatewayOptions
from claude_trio._messages_api import MessageStreamEncoder, message_json, sse

MODEL = "claude-x"
Frames = list[tuple[str, dict[str, Any]]]

# --- building turns ------------------------------------------------------------------------------


@attrs.frozen
class Text:
    text: str
    chunk: int = 3  # characters per delta


@attrs.frozen
class Thinking:
    thinking: str
    signature: str = "sig"
    chunk: int = 4


@attrs.frozen
class Tool:
    id: str
    command: str = "echo hi"


Spec = Text | Thinking | Tool


def stream_event(event: dict[str, Any], parent: str | None = None) -> StreamEvent:
    return StreamEvent(
        uuid=str(uuid.uuid4()), session_id="s", event=event, parent_tool_use_id=parent
    )


def pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def block_events(index: int, spec: Spec) -> list[dict[str, Any]]:
    """The stream events of one block: start, deltas, stop."""
    events: list[dict[str, Any]] = []

    def delta(body: dict[str, Any]) -> None:
        events.append({"type": "content_block_delta", "index": index, "delta": body})

    if isinstance(spec, Text):
        start: dict[str, Any] = {"type": "text", "text": ""}
    elif isinstance(spec, Thinking):
        start = {"type": "thinking", "thinking": "", "signature": ""}
    else:
        start = {"type": "tool_use", "id": spec.id, "name": "Bash", "input": {}}
    events.append({"type": "content_block_start", "index": index, "content_block": start})
    if isinstance(spec, Text):
        for piece in pieces(spec.text, spec.chunk):
            delta({"type": "text_delta", "text": piece})
    elif isinstance(spec, Thinking):
        for piece in pieces(spec.thinking, spec.chunk):
            delta({"type": "thinking_delta", "thinking": piece})
        delta({"type": "signature_delta", "signature": spec.signature})
    else:
        partial = json.dumps({"command": spec.command})
        for piece in pieces(partial, 5):
            delta({"type": "input_json_delta", "partial_json": piece})
    events.append({"type": "content_block_stop", "index": index})
    return events


def streamed(
    message_id: str, specs: Sequence[Spec], *, parent: str | None = None
) -> list[StreamEvent]:
    """The whole stream of one API message."""
    stop = "tool_use" if any(isinstance(s, Tool) for s in specs) else "end_turn"
    raw: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "content": [],
                "stop_reason": None,
                "usage": {"input_tokens": 5, "output_tokens": 1},
            },
        }
    ]
    for index, spec in enumerate(specs):
        raw += block_events(index, spec)
    raw += [
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": 9},
        },
        {"type": "message_stop"},
    ]
    return [stream_event(event, parent) for event in raw]


def content_of(spec: Spec) -> TextBlock | ThinkingBlock | ToolUseBlock:
    if isinstance(spec, Text):
        return TextBlock(text=spec.text)
    if isinstance(spec, Thinking):
        return ThinkingBlock(thinking=spec.thinking, signature=spec.signature)
    return ToolUseBlock(id=spec.id, name="Bash", input={"command": spec.command})


def records(message_id: str, specs: Sequence[Spec]) -> list[Event]:
    """The session file's records of one API message, then its tool results."""
    stop = "tool_use" if any(isinstance(s, Tool) for s in specs) else "end_turn"
    usage = Usage(input_tokens=5, output_tokens=9)
    said: list[Event] = [
        AssistantMessage(
            id=message_id, model=MODEL, content=[content_of(s)], stop_reason=stop, usage=usage
        )
        for s in specs
    ]
    results = [
        UserMessage(content=[ToolResultBlock(tool_use_id=s.id, content=f"ran {s.command}")])
        for s in specs
        if isinstance(s, Tool)
    ]
    return [*said, *results]


RESULT = ResultMessage(
    usage=Usage(input_tokens=10, output_tokens=18), num_api_messages=2, stop_reason="end_turn"
)


def without_stream(events: Sequence[Event]) -> list[Event]:
    return [e for e in events if not isinstance(e, StreamEvent)]


# --- the Messages API route ----------------------------------------------------------------------


def encode(events: Sequence[Event], *, show: bool = True) -> tuple[Frames, list[Frames]]:
    """All frames of a streamed turn, and what each event let out."""
    encoder = MessageStreamEncoder(message_id="msg_gw", model="sonnet", show_cli_tools=show)
    frames = encoder.start()
    each = []
    for event in events:
        out = encoder.finish(event) if isinstance(event, ResultMessage) else encoder.feed(event)
        each.append(out)
        frames += out
    return frames, each


def sdk_read(frames: Frames) -> tuple[Message, list[Any]]:
    """The official SDK's stream accumulation of *frames*, served over a mock transport."""
    body = b"".join(sse(kind, data) for kind, data in frames)

    def reply(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    http = httpx2.Client(transport=httpx2.MockTransport(reply))
    with (
        anthropic.Anthropic(
            api_key="unused", base_url="http://gateway", http_client=http, max_retries=0
        ) as sdk,
        sdk.messages.stream(
            model="sonnet", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        events = list(stream)
        return stream.get_final_message(), events


def today(events: Sequence[Event], *, show: bool = True) -> Message:
    """The final message the SDK builds from the same turn without stream events."""
    frames, _ = encode(without_stream(events), show=show)
    final, _ = sdk_read(frames)
    whole = message_json(
        without_stream(events), message_id="msg_gw", model="sonnet", show_cli_tools=show
    )
    assert final.model_dump(exclude_none=True, warnings=False)["content"] == _plain(
        whole["content"]
    )
    return final


def _plain(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in block.items() if v is not None} for block in content]


def check(frames: Frames) -> None:
    """The frames are one well-formed message: indexes in order, each block opened once."""
    kinds = [kind for kind, _ in frames]
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    open_index: int | None = None
    started: list[int] = []
    for kind, data in frames:
        assert data["type"] == kind
        if kind == "content_block_start":
            assert open_index is None, "a block opened inside another"
            assert data["index"] == len(started)
            open_index = data["index"]
            started.append(open_index)
        elif kind == "content_block_delta":
            assert data["index"] == open_index
        elif kind == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
    assert open_index is None


def text_deltas(frames: Frames) -> list[str]:
    return [
        data["delta"]["text"]
        for kind, data in frames
        if kind == "content_block_delta" and data["delta"]["type"] == "text_delta"
    ]


def test_text_goes_out_delta_by_delta_and_once() -> None:
    turn = [
        *streamed("m1", [Text("Hello, streaming world!")]),
        *records("m1", [Text("Hello, streaming world!")]),
        RESULT,
    ]
    frames, each = encode(turn)
    check(frames)
    assert text_deltas(frames) == pieces("Hello, streaming world!", 3)
    # The first delta opens the block; each further delta goes out as it comes.
    assert each[0] == each[1] == []  # message_start, content_block_start: nothing yet
    assert [kind for kind, _ in each[2]] == ["content_block_start", "content_block_delta"]
    assert [kind for kind, _ in each[3]] == ["content_block_delta"]
    # The record that follows the stream is not sent again.
    record_at = next(i for i, e in enumerate(turn) if isinstance(e, AssistantMessage))
    assert each[record_at] == []
    final, _ = sdk_read(frames)
    assert final == today(turn)
    assert final.content[0].type == "text"
    assert final.content[0].text == "Hello, streaming world!"


def test_thinking_then_text_stream_with_the_signature() -> None:
    specs: list[Spec] = [Thinking("Let me think about it."), Text("The answer is 42.")]
    turn = [*streamed("m1", specs), *records("m1", specs), RESULT]
    frames, _ = encode(turn)
    check(frames)
    deltas = [data["delta"] for kind, data in frames if kind == "content_block_delta"]
    thinking = [d["thinking"] for d in deltas if d["type"] == "thinking_delta"]
    assert thinking == pieces("Let me think about it.", 4)
    assert [d["type"] for d in deltas].index("signature_delta") == len(thinking)
    assert sdk_read(frames)[0] == today(turn)


@pytest.mark.parametrize("show", [True, False])
def test_a_tool_loop_streams_text_and_keeps_tool_blocks_whole(show: bool) -> None:
    first: list[Spec] = [Thinking("I should run it."), Text("Running it."), Tool("toolu_1")]
    second: list[Spec] = [Text("It printed hi.")]
    turn = [
        *streamed("m1", first),
        *records("m1", first),
        *streamed("m2", second),
        *records("m2", second),
        RESULT,
    ]
    frames, _ = encode(turn, show=show)
    check(frames)
    assert text_deltas(frames) == [*pieces("Running it.", 3), *pieces("It printed hi.", 3)]
    starts = [
        data["content_block"]["type"] for kind, data in frames if kind == "content_block_start"
    ]
    if show:
        assert starts == ["thinking", "text", "server_tool_use", "mcp_tool_result", "text"]
    else:
        assert starts == ["thinking", "text", "text"]
    assert not any(
        data["delta"]["type"] == "input_json_delta"
        for kind, data in frames
        if kind == "content_block_delta" and data["index"] != 2
    )
    final, _ = sdk_read(frames)
    assert final == today(turn, show=show)


def test_the_next_response_waits_for_the_last_ones_tool_call_and_result() -> None:
    """The relay can run ahead of the session file: the order stays the file's."""
    first: list[Spec] = [Text("Running it."), Tool("toolu_1")]
    second: list[Spec] = [Text("It printed hi.")]
    said, result = records("m1", first)[:2], records("m1", first)[2]
    turn = [
        *streamed("m1", first),
        said[0],
        *streamed("m2", second)[:5],  # m2 streams before m1's tool call is recorded
        said[1],
        result,
        *streamed("m2", second)[5:],
        *records("m2", second),
        RESULT,
    ]
    frames, each = encode(turn)
    check(frames)
    assert sdk_read(frames)[0] == today(turn)
    # m2's text was held until m1's result came, then sent at once, then live.
    at_result = each[turn.index(result)]
    assert [kind for kind, _ in at_result] == [
        "content_block_start",  # mcp_tool_result
        "content_block_stop",
        "content_block_start",  # m2's text, with what it had so far
        "content_block_delta",
    ]
    assert at_result[-1][1]["delta"]["text"] == "It printe"


def test_sub_agent_stream_events_are_ignored() -> None:
    specs: list[Spec] = [Text("Main text.")]
    sub = streamed("sub1", [Text("the sub-agent talks")], parent="toolu_task")
    main = streamed("m1", specs)
    turn = [*main[:3], *sub, *main[3:], *records("m1", specs), RESULT]
    frames, each = encode(turn)
    check(frames)
    for event, out in zip(turn, each, strict=True):
        if isinstance(event, StreamEvent) and event.parent_tool_use_id is not None:
            assert out == []
    assert "".join(text_deltas(frames)) == "Main text."
    assert sdk_read(frames)[0] == today(turn)


def test_a_block_cut_short_is_finished_by_its_record() -> None:
    specs: list[Spec] = [Text("Hello there, world.")]
    cut = streamed("m1", specs)[:5]  # message_start, block start, three deltas
    turn = [*cut, *records("m1", specs), RESULT]
    frames, _ = encode(turn)
    check(frames)
    assert text_deltas(frames) == ["Hel", "lo ", "the", "re, world."]
    final, _ = sdk_read(frames)
    assert final == today(turn)
    assert len(final.content) == 1


def test_an_interrupted_stream_keeps_what_was_sent() -> None:
    """No record, no retry (an interrupt): the block ends as far as it went."""
    cut = streamed("m1", [Text("Hello there, world.")])[:4]
    interrupted = UserMessage(content=[TextBlock(text="[Request interrupted by user]")])
    turn: list[Event] = [*cut, interrupted, ResultMessage(interrupted=True)]
    frames, _ = encode(turn)
    check(frames)
    final, _ = sdk_read(frames)
    assert [block.type for block in final.content] == ["text"]
    assert final.content[0].text == "Hello "  # type: ignore[union-attr]
    assert today(turn).content == []


def sse_error() -> StreamEvent:
    return stream_event(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    )


def test_an_error_before_any_delta_then_a_non_streamed_retry() -> None:
    specs: list[Spec] = [Text("The retried answer.")]
    retry_notice = SystemMessage(subtype="api_error", level="error")
    turn = [
        *streamed("m1", specs)[:2],
        sse_error(),
        retry_notice,
        *records("m2", specs),  # the retry: another id, no stream events
        RESULT,
    ]
    frames, _ = encode(turn)
    check(frames)
    assert text_deltas(frames) == ["The retried answer."]  # whole, as without the relay
    assert sdk_read(frames)[0] == today(turn)


def test_an_error_after_deltas_then_a_retry_that_goes_on_with_them() -> None:
    specs: list[Spec] = [Text("Hello there, world.")]
    turn = [
        *streamed("m1", specs)[:4],  # "Hel", "lo " sent
        sse_error(),
        SystemMessage(subtype="api_error", level="error"),
        *records("m2", specs),
        RESULT,
    ]
    frames, _ = encode(turn)
    check(frames)
    assert text_deltas(frames) == ["Hel", "lo ", "there, world."]
    final, _ = sdk_read(frames)
    assert final == today(turn)
    assert len(final.content) == 1


def test_a_stream_that_stops_without_a_word_then_a_retry() -> None:
    """No error event: the retry's record, of a response that did not stream, cuts it."""
    specs: list[Spec] = [Text("Hello there, world.")]
    turn = [*streamed("m1", specs)[:4], *records("m2", specs), RESULT]
    frames, each = encode(turn)
    check(frames)
    assert [kind for kind, _ in each[4]] == ["content_block_delta", "content_block_stop"]
    final, _ = sdk_read(frames)
    assert final == today(turn)


def test_an_error_after_deltas_then_a_different_retry() -> None:
    """What was sent cannot be taken back: it stays, closed, before the retry's block."""
    turn = [
        *streamed("m1", [Text("Goodbye.")])[:4],
        sse_error(),
        *records("m2", [Text("Hello there.")]),
        RESULT,
    ]
    frames, _ = encode(turn)
    check(frames)
    final, _ = sdk_read(frames)
    assert [block.text for block in final.content] == ["Goodby", "Hello there."]  # type: ignore[union-attr]
    assert [block.text for block in today(turn).content] == ["Hello there."]  # type: ignore[union-attr]


def test_a_streamed_retry_goes_on_with_a_cut_block() -> None:
    specs: list[Spec] = [Text("Hello there, world.")]
    turn = [
        *streamed("m1", specs)[:4],
        *streamed("m2", specs),  # a new message_start cuts m1
        *records("m2", specs),
        RESULT,
    ]
    frames, _ = encode(turn)
    check(frames)
    assert "".join(text_deltas(frames)) == "Hello there, world."
    assert sdk_read(frames)[0] == today(turn)


def test_a_record_that_disagrees_with_its_deltas_wins() -> None:
    """Should not happen; the reply then holds the session file's text too."""
    longer = [*streamed("m1", [Text("Hello")]), *records("m1", [Text("Hello world")]), RESULT]
    frames, _ = encode(longer)
    check(frames)
    final, _ = sdk_read(frames)
    assert [b.text for b in final.content] == ["Hello", " world"]  # type: ignore[union-attr]
    other = [*streamed("m1", [Text("Hello")]), *records("m1", [Text("Bye")]), RESULT]
    frames, _ = encode(other)
    check(frames)
    final, _ = sdk_read(frames)
    assert [b.text for b in final.content] == ["Hello", "Bye"]  # type: ignore[union-attr]


def test_a_record_during_its_own_stream_ends_the_block() -> None:
    specs: list[Spec] = [Text("Hello there, world.")]
    stream = streamed("m1", specs)
    turn = [*stream[:4], *records("m1", specs), *stream[4:], RESULT]
    frames, _ = encode(turn)
    check(frames)
    assert "".join(text_deltas(frames)) == "Hello there, world."
    assert sdk_read(frames)[0] == today(turn)


# --- any turn, any interleaving -----------------------------------------------------------------

_words = st.text(alphabet="abc é\n", min_size=1, max_size=12)
_specs = st.one_of(
    st.builds(Text, _words, st.integers(1, 5)),
    st.builds(Thinking, _words, st.sampled_from(["s1", "s2"]), st.integers(1, 5)),
)


@st.composite
def turns(draw: st.DrawFn, *, in_order: bool = False) -> list[Event]:
    """Several API messages; the relay's events and the file's records interleaved in any
    order the two channels allow: each in its own order, and a message's records after its
    stream (the next stream may run ahead of them). *in_order*: each message's records
    come before the next stream."""
    tools = itertools.count()
    messages = []
    for number in range(draw(st.integers(1, 4))):
        specs: list[Spec] = list(draw(st.lists(_specs, max_size=3)))
        if draw(st.booleans()):
            specs.append(Tool(f"toolu_{next(tools)}"))
        if draw(st.booleans()) and specs:
            specs.insert(draw(st.integers(0, len(specs))), Tool(f"toolu_{next(tools)}"))
        messages.append((f"m{number}", specs))
    relay = [(n, e) for n, (mid, specs) in enumerate(messages) for e in streamed(mid, specs)]
    file = [(n, e) for n, (mid, specs) in enumerate(messages) for e in records(mid, specs)]
    ended = -1  # the last message whose stream has ended
    turn: list[Event] = []
    while relay or file:
        must = not file or file[0][0] > ended
        take_relay = relay and (must or (not in_order and draw(st.booleans())))
        if take_relay:
            number, event = relay.pop(0)
            turn.append(event)
            if event.event["type"] == "message_stop":
                ended = number
        else:
            turn.append(file.pop(0)[1])
    return [*turn, RESULT]


@settings(deadline=None)
@given(turns(), st.booleans())
def test_any_turn_rebuilds_todays_message(turn: list[Event], show: bool) -> None:
    frames, _ = encode(turn, show=show)
    check(frames)
    final, _ = sdk_read(frames)
    assert final == today(turn, show=show)
    text = "".join(
        e.event["delta"]["text"]
        for e in turn
        if isinstance(e, StreamEvent)
        and e.event["type"] == "content_block_delta"
        and e.event["delta"]["type"] == "text_delta"
    )
    assert "".join(text_deltas(frames)) == text  # every text delta forwarded, none twice
    chunks = chat_stream(turn)
    assert (
        chat_text(chunks)
        == chat_completion(without_stream(turn), completion_id="c", model="m", created=0)[
            "choices"
        ][0]["message"]["content"]
    )


@settings(deadline=None, max_examples=50)
@given(turns(in_order=True))
def test_in_order_each_text_delta_goes_out_when_it_comes(turn: list[Event]) -> None:
    """Records after their stream, as the relay promises: text is live, except after a
    tool call in the same response (its record must come first)."""
    _, each = encode(turn)
    tool_seen = False
    for event, out in zip(turn, each, strict=True):
        if not isinstance(event, StreamEvent):
            continue
        data = event.event
        if data["type"] == "message_start":
            tool_seen = False
        elif data["type"] == "content_block_start":
            tool_seen = tool_seen or data["content_block"]["type"] == "tool_use"
        elif data["type"] == "content_block_delta" and not tool_seen:
            live = data["delta"]["type"] in ("text_delta", "thinking_delta")
            assert not live or [d for _, d in out if d.get("delta") == data["delta"]]


@settings(deadline=None)
@given(turns(in_order=True), st.data())
def test_a_stream_cut_anywhere_then_retried_loses_and_reorders_nothing(
    turn: list[Event], data: st.DataObject
) -> None:
    """The relay's stream fails at any point (an ``error`` event), the CLI retries without
    streaming (another id, the same or another answer): the reply holds every block of
    today's reply, in order; only what was sent of the failed attempt may come on top."""
    starts = [i for i, e in enumerate(turn) if isinstance(e, StreamEvent)]
    cut_at = data.draw(st.sampled_from(starts))
    message_id = next(
        e.event["message"]["id"]
        for e in reversed(turn[: cut_at + 1])
        if isinstance(e, StreamEvent) and e.event["type"] == "message_start"
    )
    other = data.draw(st.booleans(), label="another answer")
    cut_turn: list[Event] = [*turn[: cut_at + 1], sse_error()]
    for event in turn[cut_at + 1 :]:
        if isinstance(event, AssistantMessage) and event.id == message_id:
            # The failed stream's records never come; the retry's come in their place.
            retry = attrs.evolve(event, id="retry")
            if other and isinstance(event.content[0], TextBlock):
                retry = attrs.evolve(retry, content=[TextBlock(text="other")])
            cut_turn.append(retry)
        elif not (isinstance(event, StreamEvent) and _stream_of(turn, event) == message_id):
            cut_turn.append(event)
    frames, _ = encode(cut_turn)
    check(frames)
    final, _ = sdk_read(frames)
    got = final.model_dump(warnings=False)["content"]
    expected = today(cut_turn).model_dump(warnings=False)["content"]
    extra = []
    position = 0
    for block in expected:  # today's blocks are a subsequence of the reply's
        while got[position] != block:
            extra.append(got[position])
            position += 1
        position += 1
    extra += got[position:]
    assert {block["type"] for block in extra} <= {"text", "thinking"}


def _stream_of(turn: list[Event], event: StreamEvent) -> str:
    """The id of the message whose stream *event* is part of."""
    current = ""
    for other in turn:
        if isinstance(other, StreamEvent) and other.event["type"] == "message_start":
            current = other.event["message"]["id"]
        if other is event:
            return current
    raise AssertionError("not in the turn")


# --- the merger's steps --------------------------------------------------------------------------


def test_without_stream_events_every_event_passes_whole_and_at_once() -> None:
    merger = DeltaMerger()
    turn = records("m1", [Thinking("hmm"), Text("hi"), Tool("toolu_1")])
    for event in turn:
        assert merger.feed(event) == [WholeEvent(event)]
    assert merger.finish() == []


def test_the_steps_of_a_streamed_block() -> None:
    merger = DeltaMerger()
    steps = []
    for event in streamed("m1", [Text("abcdef", chunk=3)]):
        steps += merger.feed(event)
    assert steps == [
        BlockOpened("text", "m1"),
        BlockText("text", "abc", "m1"),
        BlockText("text", "def", "m1"),
        BlockClosed(),
    ]


# --- the Chat Completions route ------------------------------------------------------------------


def chat_stream(turn: Sequence[Event]) -> list[dict[str, Any]]:
    encoder = ChatStreamEncoder(completion_id="c", model="m", created=0, include_usage=False)
    chunks = encoder.start()
    for event in turn:
        if isinstance(event, ResultMessage):
            chunks += encoder.finish(event)
        else:
            chunks += encoder.feed(event)
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    return chunks


def chat_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def test_chat_text_goes_out_as_it_streams() -> None:
    first: list[Spec] = [Thinking("Hidden thoughts."), Text("Running it."), Tool("toolu_1")]
    second: list[Spec] = [Text("It printed hi.")]
    turn = [
        *streamed("m1", first),
        *records("m1", first),
        *streamed("m2", second),
        *records("m2", second),
        RESULT,
    ]
    chunks = chat_stream(turn)
    contents = [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]]
    assert contents == ["Run", "nin", "g i", "t.", "\n\nIt ", "pri", "nte", "d h", "i."]
    assert chat_text(chunks) == "Running it.\n\nIt printed hi."
    assert chat_text(chunks) == chat_text(chat_stream(without_stream(turn)))
    assert "Hidden" not in chat_text(chunks)


def test_chat_a_retry_going_on_with_a_cut_block_has_no_separator() -> None:
    turn = [
        *streamed("m1", [Text("Hello there.")])[:4],
        sse_error(),
        *records("m2", [Text("Hello there.")]),
        *records("m2", [Text("More of m2.")]),
        *streamed("m3", [Text("Then m3.")]),
        *records("m3", [Text("Then m3.")]),
        RESULT,
    ]
    assert chat_text(chat_stream(turn)) == "Hello there.More of m2.\n\nThen m3."
    assert chat_text(chat_stream(turn)) == chat_text(chat_stream(without_stream(turn)))


# --- through the gateway's ASGI app --------------------------------------------------------------


@attrs.define
class StubBackend:
    """What the gateway uses of a backend: `complete` gives scripted events."""

    script: list[Event | BaseException | float]
    options: BackendOptions = attrs.field(factory=lambda: BackendOptions(cwd="."))

    async def complete(self, history: object, **_: object) -> AsyncGenerator[Event, None]:
        for item in self.script:
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, float):
                await trio.sleep(item)
                continue
            yield item


async def post(
    script: list[Event | BaseException | float], path: str, body: dict[str, Any], **options: Any
) -> tuple[int, bytes]:
    gateway = Gateway(cast(Any, StubBackend(script)), GatewayOptions(**options))
    data = json.dumps(body).encode()
    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(b"host", b"127.0.0.1:8080"), (b"content-length", str(len(data)).encode())],
    }
    received = False
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": data, "more_body": False}
        await trio.sleep_forever()
        raise AssertionError  # pragma: no cover

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with trio.fail_after(120):
        await gateway(cast(Any, scope), cast(Any, receive), cast(Any, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


MESSAGES_BODY = {
    "model": "sonnet",
    "max_tokens": 10,
    "stream": True,
    "messages": [{"role": "user", "content": "hi"}],
}


def parse_sse(body: bytes) -> Frames:
    frames = []
    for chunk in body.decode().split("\n\n"):
        if chunk.startswith("event: "):
            kind, data = chunk.split("\n", 1)
            frames.append((kind.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return frames


async def test_the_gateway_streams_deltas_and_names_the_model() -> None:
    specs: list[Spec] = [Text("Hello, streaming world!")]
    status, body = await post(
        [*streamed("m1", specs), *records("m1", specs), RESULT], "/v1/messages", MESSAGES_BODY
    )
    assert status == 200
    frames = parse_sse(body)
    check(frames)
    assert frames[0][1]["message"]["model"] == MODEL  # from the stream's message_start
    assert text_deltas(frames) == pieces("Hello, streaming world!", 3)
    assert sdk_read(frames)[0].content[0].text == "Hello, streaming world!"  # type: ignore[union-attr]


async def test_stream_events_before_content_do_not_commit_the_reply() -> None:
    """An error after message_start but before a delta keeps its status (a 429 stays one)."""
    error = RateLimitError("slow down", retry_after=3)
    status, body = await post(
        [*streamed("m1", [Text("x")])[:2], error], "/v1/messages", MESSAGES_BODY
    )
    assert status == 429
    assert json.loads(body)["error"]["type"] == "rate_limit_error"
    # A first delta is content: the reply is committed, the error comes as an event.
    status, body = await post(
        [*streamed("m1", [Text("xyz")])[:3], error], "/v1/messages", MESSAGES_BODY
    )
    assert status == 200
    assert [kind for kind, _ in parse_sse(body)][-1] == "error"


async def test_the_chat_route_streams_deltas(autojump_clock: trio.abc.Clock) -> None:
    specs: list[Spec] = [Text("Hello, streaming world!")]
    body = {"model": "sonnet", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    status, raw = await post(
        [*streamed("m1", specs), *records("m1", specs), RESULT], "/v1/chat/completions", body
    )
    assert status == 200
    chunks = [
        json.loads(line.removeprefix("data: "))
        for line in raw.decode().split("\n\n")
        if line.startswith("data: {")
    ]
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]] == pieces(
        "Hello, streaming world!", 3
    )
    assert raw.endswith(b"data: [DONE]\n\n")


async def test_pings_go_out_while_only_a_sub_agent_streams(autojump_clock: trio.abc.Clock) -> None:
    """Events that send nothing do not hold the pings back."""
    sub = streamed("sub", [Text("x" * 30, chunk=1)], parent="toolu_task")
    script: list[Event | BaseException | float] = [*records("m1", [Text("Working.")])]
    for event in sub:
        script += [1.0, event]
    script.append(RESULT)
    status, body = await post(script, "/v1/messages", MESSAGES_BODY, ping_interval=10.0)
    assert status == 200
    kinds = [kind for kind, _ in parse_sse(body)]
    assert kinds.count("ping") >= 3


# --- claude-trio serve ---------------------------------------------------------------------------


def test_serve_partial_messages_flag() -> None:
    parser = build_parser()
    assert serve_backend_options(
        parser.parse_args(["serve", "--partial-messages"])
    ).partial_messages
    assert not serve_backend_options(parser.parse_args(["serve"])).partial_messages
