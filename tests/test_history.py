"""The history functions: validation, the fingerprint, folding, transcript records."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
import pickle
import random
import re
import unicodedata
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_trio._convert import parse_record
from claude_trio._errors import InputError, SessionError
from claude_trio._history import (
    HISTORY_MODEL,
    check_messages,
    fold_history,
    hash_history,
    prompt_text,
    resume_prompt,
    transcript_records,
)

Message = dict[str, Any]

SESSION = "87a0dfa7-a4cd-4bfb-bcb0-6b0b955eb69d"
START = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.UTC)
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")
TOOL_SYNTAX = ("tool_use", "tool_result", "<invoke", "function_calls", "[Tool", "antml", "<tool")


def user(content: Any) -> Message:
    return {"role": "user", "content": content}


def assistant(content: Any) -> Message:
    return {"role": "assistant", "content": content}


def text(value: str, **extra: Any) -> dict[str, Any]:
    return {"type": "text", "text": value, **extra}


def tool_use(tool_id: str, name: str = "Bash", **arguments: Any) -> dict[str, Any]:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": arguments}


def tool_result(tool_id: str, content: Any = "ok", **extra: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_id, "content": content, **extra}


def thinking(value: str = "let me think") -> dict[str, Any]:
    return {"type": "thinking", "thinking": value, "signature": "c2lnbmF0dXJl"}


def image(data: str = PNG) -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}


def seeded_uuids(seed: int = 0) -> Callable[[], uuid.UUID]:
    rng = random.Random(seed)
    return lambda: uuid.UUID(int=rng.getrandbits(128), version=4)


def records_of(messages: list[Message], **overrides: Any) -> list[dict[str, Any]]:
    arguments: dict[str, Any] = {
        "session_id": SESSION,
        "cwd": "/home/user/project",
        "start_time": START,
        "new_uuid": seeded_uuids(),
        **overrides,
    }
    return transcript_records(messages, **arguments)


CODEWORD = [
    user("remember the codeword Beaver"),
    assistant("OK"),
    user("what was the codeword?"),
]

TOOL_HISTORY = [
    user("run echo hi"),
    assistant([thinking(), text("I will call Bash."), tool_use("toolu_1", command="echo hi")]),
    user([tool_result("toolu_1", "hi")]),
    assistant([text("It printed hi.")]),
    user("what did it print?"),
]


# --- strategies --------------------------------------------------------------------------------

# Text without CR (so CRLF variants can be made), and plain words for the fold checks.
plain_texts = st.text(st.characters(codec="utf-8", exclude_characters="\r"), max_size=30)
words = st.text(st.characters(categories=["L", "N", "Zs"]), max_size=20)
prompts = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=20)


@st.composite
def conversations(draw: st.DrawFn, texts: st.SearchStrategy[str] = plain_texts) -> list[Message]:
    """A valid request: turns of human text, tool loops and replies, then a text prompt."""
    messages: list[Message] = []
    ids = iter(range(1000))
    for _ in range(draw(st.integers(0, 3))):
        parts = draw(st.lists(texts, min_size=1, max_size=2))
        if len(parts) == 1 and draw(st.booleans()):
            messages.append(user(parts[0]))
        else:
            messages.append(user([text(part) for part in parts]))
        for _ in range(draw(st.integers(0, 2))):
            calls = [f"toolu_{next(ids)}" for _ in range(draw(st.integers(1, 2)))]
            blocks = [thinking(draw(texts))] if draw(st.booleans()) else []
            blocks += [text(draw(texts))] if draw(st.booleans()) else []
            blocks += [tool_use(call, command=draw(texts)) for call in calls]
            messages.append(assistant(blocks))
            messages.append(user([tool_result(call, draw(texts)) for call in calls]))
        messages.append(assistant([text(draw(texts))]))
    messages.append(user(draw(prompts)))
    return messages


def replies() -> st.SearchStrategy[Message]:
    """An assistant reply in any of the forms a caller may send back."""
    return st.one_of(
        plain_texts.map(assistant),
        st.lists(plain_texts.map(text), max_size=3).map(assistant),
        st.tuples(plain_texts, plain_texts).map(lambda p: assistant([thinking(p[0]), text(p[1])])),
        st.tuples(plain_texts, st.uuids()).map(
            lambda p: assistant([text(p[0]), tool_use(f"toolu_{p[1].hex}", command="ls")])
        ),
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
field_names = st.sampled_from(
    ["role", "content", "type", "text", "source", "id", "name", "input", "tool_use_id",
     "is_error", "thinking", "signature", "data", "media_type", "url"]
)  # fmt: skip
field_values = st.sampled_from(
    ["user", "assistant", "system", "text", "image", "tool_use", "tool_result", "thinking",
     "redacted_thinking", "base64", "url", "document"]
) | json_values  # fmt: skip
blockish = st.dictionaries(
    field_names,
    field_values | st.lists(st.dictionaries(field_names, field_values), max_size=2),
    max_size=5,
)
messageish = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system"]) | json_values},
        optional={"content": st.text(max_size=8) | st.lists(blockish | json_values, max_size=3)},
    ),
)


def _containers(value: Any) -> list[dict[str, Any] | list[Any]]:
    found: list[dict[str, Any] | list[Any]] = []
    if isinstance(value, dict | list):
        found.append(value)
        for item in value.values() if isinstance(value, dict) else value:
            found += _containers(item)
    return found


@st.composite
def mutated_conversations(draw: st.DrawFn) -> list[Message]:
    """A valid request with one value replaced, one key removed or one item added."""
    messages = draw(conversations())
    target = draw(st.sampled_from(_containers(messages)))
    keys = list(target) if isinstance(target, dict) else list(range(len(target)))
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    if action == "add" or not keys:
        if isinstance(target, dict):
            target[draw(field_names)] = draw(field_values)
        else:
            target.append(draw(field_values | blockish))
    elif action == "replace":
        target[draw(st.sampled_from(keys))] = draw(field_values | blockish)
    else:
        del target[draw(st.sampled_from(keys))]
    return messages


requestish = st.one_of(json_values, st.lists(messageish, max_size=4), mutated_conversations())


# --- check_messages ----------------------------------------------------------------------------


def test_check_returns_a_canonical_copy() -> None:
    messages = [
        user([text("hi", cache_control={"type": "ephemeral"}, citations=None), image()]),
        assistant([thinking(), text("hello"), tool_use("t1", command="ls")]),
        user([tool_result("t1", [text("a.txt")], cache_control={"type": "ephemeral"})]),
        assistant("done"),
        user("next"),
    ]
    original = copy.deepcopy(messages)
    checked = check_messages(messages)
    assert isinstance(checked, tuple)
    assert checked[0]["content"][0] == {"type": "text", "text": "hi"}
    assert checked[2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "t1",
        "content": [{"type": "text", "text": "a.txt"}],
        "is_error": False,
    }
    assert checked[3] == {"role": "assistant", "content": "done"}
    assert checked[4] == {"role": "user", "content": "next"}
    assert messages == original
    checked[1]["content"][2]["input"]["command"] = "rm"
    assert messages[1]["content"][2]["input"]["command"] == "ls"
    assert check_messages(list(checked)) == checked


@given(conversations())
@settings(deadline=None)
def test_check_is_idempotent_and_keeps_the_meaning(messages: list[Message]) -> None:
    checked = check_messages(messages)
    assert check_messages(list(checked)) == checked
    assert hash_history(list(checked)) == hash_history(messages)
    assert fold_history(list(checked)) == fold_history(messages)
    assert records_of(list(checked)) == records_of(messages)


BAD_INPUTS: list[tuple[Any, str, str]] = [
    ("hello", "", "must be a list of message objects, got str"),
    ({"role": "user", "content": "hi"}, "", "must be a list of message objects, got dict"),
    ([], "", "messages is empty"),
    (["hi"], "messages[0]", "must be an object with 'role' and 'content', got str"),
    ([{"role": "system", "content": "x"}], "messages[0].role", "system prompt through the options"),
    ([{"role": "robot", "content": "x"}], "messages[0].role", "unknown role 'robot'"),
    ([{"content": "x"}], "messages[0].role", "unknown role None"),
    ([{"role": "user"}], "messages[0]", "needs 'content'"),
    ([user(5)], "messages[0].content", "string or a list of content blocks, got int"),
    ([user(["x"])], "messages[0].content[0]", "content block must be an object, got str"),
    ([user([{"type": "document"}])], "messages[0].content[0].type", "unknown content block type"),
    ([user([{"text": "x"}])], "messages[0].content[0].type", "unknown content block type None"),
    ([user([{"type": "text"}])], "messages[0].content[0]", "'text' block needs 'text'"),
    ([user([{"type": "text", "text": 3}])], "messages[0].content[0].text", "expected a string"),
    ([user([{"type": "image"}])], "messages[0].content[0].source", "needs a 'source' object"),
    (
        [user([{"type": "image", "source": {"type": "file", "file_id": "f"}}]), user("x")],
        "messages[0].content[0].source.type",
        "must be 'base64' or 'url'",
    ),
    (
        [user([{"type": "image", "source": {"type": "base64", "data": PNG}}])],
        "messages[0].content[0].source",
        "needs 'media_type'",
    ),
    ([user([tool_use("t")])], "messages[0].content[0]", "cannot be in a user message"),
    ([assistant([tool_result("t")]), user("x")], "messages[0].content[0]", "assistant message"),
    ([assistant([image()]), user("x")], "messages[0].content[0]", "cannot be in a assistant"),
    ([user([thinking()])], "messages[0].content[0]", "cannot be in a user message"),
    (
        [assistant([{"type": "tool_use", "id": "t", "name": "Bash"}]), user("x")],
        "messages[0].content[0].input",
        "needs 'input' (an object)",
    ),
    (
        [assistant([tool_use("", command="x")]), user("x")],
        "messages[0].content[0].id",
        "must not be empty",
    ),
    (
        [assistant([tool_use("t", n=float("nan"))]), user("x")],
        "messages[0].content[0].input",
        "must be JSON",
    ),
    (
        [assistant([tool_use("t", command="a"), tool_use("t", command="b")]), user("x")],
        "messages[0].content[1].id",
        "used twice (first at messages[0].content[0])",
    ),
    (
        [user([tool_result("t", is_error="yes")]), user("x")],
        "messages[0].content[0].is_error",
        "must be true or false",
    ),
    (
        [user([tool_result("t", [{"type": "document"}])]), user("x")],
        "messages[0].content[0].content[0].type",
        "only 'text' and 'image' blocks",
    ),
    ([user("\ud800 lone")], "messages[0].content", "lone surrogate"),
    ([user("hi"), assistant("hello")], "messages[1].role", "must be the user's new message"),
    (
        [user([tool_result("t", "x")])],
        "messages[0].content[0]",
        "holds a tool_result, but the CLI is typed into through a terminal",
    ),
    (
        [user([text("look"), image()])],
        "messages[0].content[1]",
        "holds an image, but the CLI is typed into through a terminal and only text can be typed",
    ),
    ([user("   \n")], "messages[0]", "has no text to type"),
    ([user([])], "messages[0]", "has no text to type"),
    ([user("\x1b\x07")], "messages[0]", "has no text to type"),
]


@pytest.mark.parametrize(("messages", "where", "words"), BAD_INPUTS)
def test_check_rejects_with_a_clear_message(messages: Any, where: str, words: str) -> None:
    with pytest.raises(InputError) as caught:
        check_messages(messages)
    assert caught.value.where == where
    assert words in caught.value.message
    assert str(caught.value).startswith(f"{where}: " if where else caught.value.message)
    assert isinstance(caught.value, ValueError)


def test_input_error_pickles_and_reads_alone() -> None:
    with pytest.raises(InputError) as caught:
        check_messages([user("hi"), assistant("hello")])
    copy_ = pickle.loads(pickle.dumps(caught.value))
    assert type(copy_) is InputError
    assert vars(copy_) == vars(caught.value)
    assert str(copy_) == str(caught.value)
    assert str(caught.value).startswith("messages[1].role: the last message must be")
    assert str(InputError("messages is empty")) == "messages is empty"


@pytest.mark.parametrize(
    "function",
    [
        check_messages,
        hash_history,
        fold_history,
        prompt_text,
        resume_prompt,
        records_of,
    ],
)
@given(requestish)
@settings(deadline=None, max_examples=300)
def test_random_input_gives_a_value_or_input_error(
    function: Callable[[Any], object], messages: Any
) -> None:
    with contextlib.suppress(InputError):
        function(messages)


def test_the_last_message_is_what_is_typed() -> None:
    assert prompt_text(CODEWORD) == "what was the codeword?"
    assert prompt_text([user([text("one"), text("two")])]) == "one\n\ntwo"


# --- hash_history ------------------------------------------------------------------------------


def _humans(messages: list[Message]) -> list[int]:
    return [
        index
        for index, message in enumerate(messages)
        if message["role"] == "user"
        and (
            isinstance(message["content"], str)
            or any(block["type"] != "tool_result" for block in message["content"])
        )
    ]


def _reply_text(message: Message) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(block["text"] for block in content if block["type"] == "text")


def _reformatted_reply(message: Message, data: st.DataObject) -> Message:
    """The same reply as a caller may send it back: split, merged, re-spaced, with extras."""
    words = _reply_text(message).split()
    spaced = "".join(word + data.draw(st.sampled_from([" ", "\n", "  ", "\t"])) for word in words)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(spaced)), max_size=3)))
    pieces = [spaced[i:j] for i, j in zip([0, *cuts], [*cuts, len(spaced)], strict=True)]
    blocks: list[dict[str, Any]] = [text(piece) for piece in pieces if piece]
    if data.draw(st.booleans()):
        blocks.insert(0, thinking("some thought"))
    if data.draw(st.booleans()):
        blocks.append(tool_use(f"toolu_{uuid.uuid4().hex}", command="ls"))
    if not blocks or (data.draw(st.booleans()) and all(b["type"] == "text" for b in blocks)):
        return assistant(spaced)
    return assistant(blocks)


def _equivalent(messages: list[Message], data: st.DataObject) -> list[Message]:
    """The same history as a caller may reformat it."""
    result = []
    for message in messages:
        if message["role"] == "assistant":
            result.append(_reformatted_reply(message, data))
            continue
        content = message["content"]
        blocks = [text(content)] if isinstance(content, str) else copy.deepcopy(content)
        for block in blocks:
            if block["type"] != "text":
                continue
            value = block["text"]
            value = unicodedata.normalize(data.draw(st.sampled_from(["NFC", "NFD"])), value)
            value = value.replace("\n", data.draw(st.sampled_from(["\n", "\r\n", "\r"])))
            block["text"] = value + data.draw(st.sampled_from(["", " ", "\n", "  \n\t"]))
            if data.draw(st.booleans()):
                block["cache_control"] = {"type": "ephemeral"}
                block["citations"] = None
        if len(blocks) == 1 and blocks[0]["type"] == "text" and data.draw(st.booleans()):
            result.append(user(blocks[0]["text"]))
        else:
            result.append(user(blocks))
    return result


@given(conversations(), st.data())
@settings(deadline=None)
def test_fingerprint_is_stable_over_equivalent_shapes(
    messages: list[Message], data: st.DataObject
) -> None:
    assert hash_history(_equivalent(messages, data)) == hash_history(messages)


@given(conversations(), replies(), replies())
@settings(deadline=None)
def test_fingerprint_counts_the_replys_text_only(
    messages: list[Message], reply: Message, other: Message
) -> None:
    with_reply, with_other = hash_history([*messages, reply]), hash_history([*messages, other])
    same_text = "".join(_reply_text(reply).split()) == "".join(_reply_text(other).split())
    assert (with_reply == with_other) == same_text
    if _reply_text(reply).strip():
        assert with_reply != hash_history(messages)


@given(conversations(), st.data())
@settings(deadline=None)
def test_fingerprint_changes_with_any_earlier_user_text(
    messages: list[Message], data: st.DataObject
) -> None:
    index = data.draw(st.sampled_from(_humans(messages)))
    changed = copy.deepcopy(messages)
    content = changed[index]["content"]
    if isinstance(content, str):
        changed[index]["content"] = content + data.draw(prompts)
    else:
        block = data.draw(st.sampled_from([b for b in content if b["type"] == "text"]))
        block["text"] += data.draw(prompts)
    assert hash_history(changed) != hash_history(messages)
    assert hash_history(changed[: index + 1]) != hash_history(messages[: index + 1])


def test_fingerprint_cases() -> None:
    empty = hash_history([])
    assert re.fullmatch(r"[0-9a-f]{64}", empty)
    assert hash_history([assistant("only a reply")]) != empty
    assert hash_history([user("")]) != empty
    a, b = user("alpha"), user("beta")
    reply = assistant("ok")
    # Order matters.
    assert hash_history([a, reply, b]) != hash_history([b, reply, a])
    # Consecutive user messages are one turn, as the API merges them.
    assert hash_history([a, b]) == hash_history([user([text("alpha"), text("beta")])])
    assert hash_history([a, b]) != hash_history([a, reply, b])
    # The reply's text counts; tool exchanges and how the text is split do not.
    with_tools = [
        a,
        assistant([text("calling"), tool_use("t1", command="ls")]),
        user([tool_result("t1", "a.txt")]),
        assistant("there is a.txt"),
        b,
    ]
    same = [a, assistant([text("calling\nthere "), text("is a.txt")]), b]
    assert hash_history(with_tools) == hash_history(same)
    assert hash_history(with_tools) != hash_history([a, assistant("there is a.txt"), b])
    # Two clients that opened with the same words and got different replies differ.
    assert hash_history([a, assistant("one")]) != hash_history([a, assistant("two")])
    # A user message mixing a tool result and text counts by its text.
    mixed = [a, assistant([tool_use("t1", command="ls")]), user([tool_result("t1"), text("and")])]
    assert hash_history(mixed) == hash_history([a, assistant(""), user("and")])
    # Images count by their data.
    assert hash_history([user([image()])]) != hash_history([user([image(PNG[:-4])])])
    assert hash_history([user([image(), text("x")])]) != hash_history([user([text("x")])])
    # Leading whitespace is kept, as the CLI keeps it.
    assert hash_history([user(" alpha")]) != hash_history([a])


# --- fold_history ------------------------------------------------------------------------------


def test_fold_of_the_codeword_history() -> None:
    folded = fold_history(CODEWORD)
    assert folded.index("remember the codeword Beaver") < folded.index("OK")
    assert folded.rstrip().endswith("<new_message>\nwhat was the codeword?\n</new_message>")
    assert '<message from="user">\nremember the codeword Beaver\n</message>' in folded
    assert '<message from="assistant">\nOK\n</message>' in folded


def test_fold_renders_tools_as_prose() -> None:
    folded = fold_history(
        [
            *TOOL_HISTORY[:-1],
            assistant([tool_use("toolu_2", "Read", file_path="a.txt")]),
            user([tool_result("toolu_2", [text("line"), image()], is_error=True)]),
            assistant([tool_use("toolu_3", "Grep", pattern="x")]),
            user([tool_result("toolu_9", "")]),
            user("go on"),
        ]
    )
    assert (
        'The assistant ran the tool Bash with the input {"command": "echo hi"}; it returned: hi'
        in folded
    )
    assert (
        'The assistant ran the tool Read with the input {"file_path": "a.txt"}; it failed with:\n'
        "line\n\n[an image]" in folded
    )
    assert "the tool Grep with the input" in folded
    assert "but no result was recorded." in folded
    assert "A tool returned nothing." in folded
    assert "let me think" not in folded
    for syntax in TOOL_SYNTAX:
        assert syntax not in folded


def test_fold_without_history_is_the_prompt() -> None:
    assert fold_history([user("just this")]) == "just this"
    assert fold_history([assistant([thinking()]), user("just this")]) == "just this"


def test_fold_escapes_its_own_tags() -> None:
    folded = fold_history(
        [user("a </message> b <new_message> </conversation_history>"), assistant("ok"), user("q")]
    )
    assert folded.count("</message>") == 2
    assert folded.count("\n<new_message>\n") == 1
    assert "a &lt;/message> b &lt;new_message> &lt;/conversation_history>" in folded


@given(conversations(words))
@settings(deadline=None)
def test_fold_keeps_every_text_and_no_tool_syntax(messages: list[Message]) -> None:
    folded = fold_history(messages)
    assert folded == fold_history(copy.deepcopy(messages))
    for message in messages:
        content = message["content"]
        blocks = [text(content)] if isinstance(content, str) else content
        for block in blocks:
            if block["type"] == "text":
                assert block["text"] in folded
    for syntax in TOOL_SYNTAX:
        assert syntax not in folded


# --- transcript_records ------------------------------------------------------------------------


def test_codeword_records_look_like_the_cli_s() -> None:
    records = records_of(CODEWORD)
    assert [r["type"] for r in records] == ["user", "assistant"]
    first, second = records
    assert first["parentUuid"] is None
    assert second["parentUuid"] == first["uuid"]
    assert first["message"] == {"role": "user", "content": "remember the codeword Beaver"}
    assert second["message"]["content"] == [{"type": "text", "text": "OK"}]
    assert second["message"]["model"] == HISTORY_MODEL
    assert second["message"]["stop_reason"] == "end_turn"
    assert second["message"]["id"].startswith("msg_")
    assert first["timestamp"] == "2026-11-24T10:00:00.000Z"
    assert second["timestamp"] == "2026-11-24T10:00:00.001Z"
    for record in records:
        assert record["sessionId"] == SESSION
        assert record["isSidechain"] is False
        assert record["userType"] == "external"
        assert record["cwd"] == "/home/user/project"
        assert record["version"] == "2.1.328"
        assert parse_record(json.dumps(record)).ignored == ()


def test_records_split_assistant_blocks_and_pair_tools() -> None:
    records = records_of(TOOL_HISTORY)
    kinds = [(r["type"], [b["type"] for b in _blocks(r)]) for r in records]
    assert kinds == [
        ("user", ["text"]),
        ("assistant", ["text"]),
        ("assistant", ["tool_use"]),
        ("user", ["tool_result"]),
        ("assistant", ["text"]),
    ]
    call, result = records[2], records[3]
    assert records[1]["message"]["id"] == call["message"]["id"] != records[4]["message"]["id"]
    assert records[1]["message"]["stop_reason"] == call["message"]["stop_reason"] == "tool_use"
    assert call["message"]["content"][0]["id"] == result["message"]["content"][0]["tool_use_id"]
    assert result["message"]["content"][0] == tool_result("toolu_1", "hi", is_error=False)


def test_records_drop_what_the_cli_cannot_resume() -> None:
    messages = [
        user([text("first"), text("  ")]),
        assistant([thinking(), {"type": "redacted_thinking", "data": "xx"}]),
        user([tool_result("nobody", "orphan"), image()]),
        assistant([text("calling"), tool_use("unanswered", command="ls"), text("")]),
        user("no wait"),
        assistant([tool_use("answered", command="ls")]),
        user([tool_result("answered", "ok"), tool_result("answered", "again")]),
        assistant(" "),
        user("trailing one"),
        user([text("trailing two")]),
        user("the prompt"),
    ]
    records = records_of(messages)
    assert [r["message"]["content"] for r in records] == [
        [{"type": "text", "text": "first"}],
        [image()],
        [{"type": "text", "text": "calling"}],
        "no wait",
        [tool_use("answered", command="ls")],
        [tool_result("answered", "ok", is_error=False)],
    ]
    assert resume_prompt(messages) == "trailing one\n\ntrailing two\n\nthe prompt"


def test_records_keep_a_trailing_user_message_that_cannot_be_typed() -> None:
    messages = [user("look"), assistant("ok"), user([image(), text("this")]), user("and?")]
    records = records_of(messages)
    assert records[-1]["message"]["content"] == [image(), text("this")]
    assert resume_prompt(messages) == "and?"


def test_records_of_a_history_that_is_all_typed() -> None:
    messages = [user("one"), user("two")]
    assert records_of(messages) == []
    assert resume_prompt(messages) == "one\n\ntwo"
    assert records_of([user("alone")]) == []
    assert resume_prompt([user("alone")]) == "alone"


def test_records_are_reproducible_with_a_seeded_source() -> None:
    assert records_of(TOOL_HISTORY) == records_of(TOOL_HISTORY)
    assert records_of(TOOL_HISTORY) != records_of(TOOL_HISTORY, new_uuid=seeded_uuids(1))


def test_records_validate_their_arguments() -> None:
    with pytest.raises(SessionError):
        records_of(CODEWORD, session_id="../../etc/passwd")
    assert records_of(CODEWORD, session_id=SESSION.upper())[0]["sessionId"] == SESSION
    with pytest.raises(ValueError, match="absolute"):
        records_of(CODEWORD, cwd="project")
    with pytest.raises(ValueError, match="timezone-aware"):
        records_of(CODEWORD, start_time=dt.datetime(2026, 1, 1))
    with pytest.raises(InputError):
        records_of(CODEWORD[:-1])


def test_timestamps_are_utc_with_milliseconds() -> None:
    start = dt.datetime(
        2026, 11, 24, 11, 59, 59, 999_999, tzinfo=dt.timezone(dt.timedelta(hours=1))
    )
    records = records_of(TOOL_HISTORY, start_time=start)
    assert [r["timestamp"] for r in records[:2]] == [
        "2026-11-24T10:59:59.999Z",
        "2026-11-24T11:00:00.000Z",
    ]


def _blocks(record: dict[str, Any]) -> list[dict[str, Any]]:
    return _content(record["message"])


@given(conversations(), st.integers(0, 2**32))
@settings(deadline=None)
def test_records_chain_and_pair(messages: list[Message], seed: int) -> None:
    records = records_of(messages, new_uuid=seeded_uuids(seed))
    uuids = [r["uuid"] for r in records]
    assert len(set(uuids)) == len(uuids)
    assert [r["parentUuid"] for r in records] == [None, *uuids][: len(uuids)]
    stamps = [r["timestamp"] for r in records]
    assert all(TIMESTAMP.match(stamp) for stamp in stamps)
    assert stamps == sorted(set(stamps))
    # Group assistant records into API messages by id, then check each call is answered
    # by the next user record and each result answers the message before it.
    groups: list[tuple[str, list[dict[str, Any]]]] = []
    for record in records:
        assert json.loads(json.dumps(record)) == record
        assert parse_record(record).ignored == ()
        blocks = _blocks(record)
        assert all(block["type"] not in ("thinking", "redacted_thinking") for block in blocks)
        if record["type"] == "assistant":
            assert len(blocks) == 1
            message_id = record["message"]["id"]
            if groups and groups[-1][0] == message_id:
                groups[-1][1].extend(blocks)
                continue
            groups.append((message_id, blocks))
        else:
            groups.append(("user", blocks))
    for index, (kind, blocks) in enumerate(groups):
        calls = {b["id"] for b in blocks if b["type"] == "tool_use"}
        following = groups[index + 1][1] if index + 1 < len(groups) else []
        if kind != "user":
            answered = {b["tool_use_id"] for b in following if b["type"] == "tool_result"}
            assert calls == answered
            assert index + 1 < len(groups) or not calls
        for block in blocks:
            if block["type"] == "text":
                assert block["text"].strip()
    # Every text of the history is written, in order, but the trailing user texts that
    # are typed with the prompt instead.
    history = [message for message in messages[:-1] if _kept(message)]
    typed = [messages[-1]["content"]]
    while history and history[-1]["role"] == "user" and _only_text(history[-1]):
        typed.insert(0, "\n\n".join(b["text"] for b in _kept(history.pop())))
    expected = [b["text"] for m in history for b in _content(m) if b["type"] == "text"]
    written = [b["text"] for _, blocks in groups for b in blocks if b["type"] == "text"]
    assert written == [t for t in expected if t.strip()]
    assert resume_prompt(messages) == "\n\n".join(typed)


def _kept(message: Message) -> list[dict[str, Any]]:
    return [
        block
        for block in _content(message)
        if block["type"] not in ("thinking", "redacted_thinking")
        and (block["type"] != "text" or block["text"].strip())
    ]


def _only_text(message: Message) -> bool:
    return all(block["type"] == "text" for block in _content(message))


def _content(message: Message) -> list[dict[str, Any]]:
    content = message["content"]
    return [text(content)] if isinstance(content, str) else list(content)
