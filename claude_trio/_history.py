"""The caller's message history: check it, fingerprint it, and re-seed a CLI with it.

Pure and sans-I/O; it never imports trio. Every function takes ``messages`` in the shape
of the Anthropic Messages API: a list of ``{"role": "user" | "assistant", "content": …}``
where the content is a string or a list of ``text``, ``image``, ``tool_use``,
``tool_result``, ``thinking`` and ``redacted_thinking`` blocks. The last message is the
user's new prompt; everything before it is the history.

* `check_messages` validates a request before any process is touched.
* `parse_history` checks and parses a request once into a `History`, which every other
  function here takes in place of ``messages``.
* `hash_history` fingerprints the visible conversation of a history (the human turns and
  the assistant's text), so the backend can find the live process that holds it.
* `fold_history` folds the history and the new message into one first prompt
  (``injection_mode="concat_message"``).
* `transcript_records` and `resume_prompt` turn the history into the CLI's own session
  records and the text to type after ``claude --resume`` (``injection_mode="native_jsonl"``);
  `claude_trio._inject` writes the records.

What the CLI 2.1.328 did with hand-written records (FACTS.md §6, re-measured for this
module): it resumes one record per assistant block sharing ``message.id`` (what it writes
itself) as well as one record holding several blocks, and sends either as one assistant
message. It sends thinking blocks as they are, so a signature that does not verify would
fail the request at the real API. A history that ends with a user message gets a synthetic
assistant ``"No response requested."`` before the new prompt; a tool call without a result
at the end gets a synthetic error result, and one in the middle makes the CLI drop that
whole assistant message. An assistant message with only an empty text becomes
``"No response requested."``. Images (base64 or url) and user messages that mix tool
results and text are sent as written. Any ``model`` string is accepted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import unicodedata
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias

import attrs

from ._errors import InputError
from ._locate import PINNED_CLI_VERSION
from ._sanitize import prepare_text, validate_session_id

#: The ``model`` written into the assistant records of a hand-written transcript. The CLI
#: accepts any name; this one says where the message came from.
HISTORY_MODEL: Final = "claude-trio-history"

_FINGERPRINT_TAG: Final = "claude-trio history fingerprint 2"
_WHITESPACE: Final = re.compile(r"\s+")
_BLOCK_TYPES: Final = ("text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking")
_ROLE_BLOCKS: Final[Mapping[str, frozenset[str]]] = {
    "user": frozenset({"text", "image", "tool_result"}),
    "assistant": frozenset({"text", "tool_use", "thinking", "redacted_thinking"}),
}
_SHOWN_CHARS: Final = 60
_FOLD_PREAMBLE: Final = (
    "The conversation so far is in <conversation_history> below, and the user's new "
    "message is in <new_message> after it. Take the history as context and answer the new "
    "message as you normally would, using your tools as usual; do not write these tags "
    "yourself."
)
_FOLD_TAG: Final = re.compile(r"<(?=/?(?:conversation_history|message|new_message)\b)")
_AN_IMAGE: Final = "[an image]"


# --- the checked form --------------------------------------------------------------------------


@attrs.frozen
class _Text:
    text: str


@attrs.frozen
class _Image:
    kind: Literal["base64", "url"]
    media_type: str | None
    data: str  # the base64 data, or the url


@attrs.frozen
class _ToolUse:
    id: str
    name: str
    input_json: str  # canonical JSON of the input object


@attrs.frozen
class _ToolResult:
    tool_use_id: str
    content: str | tuple[_Text | _Image, ...]
    is_error: bool


@attrs.frozen
class _Thinking:
    thinking: str
    signature: str | None


@attrs.frozen
class _RedactedThinking:
    data: str


_Block: TypeAlias = _Text | _Image | _ToolUse | _ToolResult | _Thinking | _RedactedThinking


@attrs.frozen
class _Message:
    role: Literal["user", "assistant"]
    content: str | tuple[_Block, ...]

    @property
    def blocks(self) -> tuple[_Block, ...]:
        return (_Text(self.content),) if isinstance(self.content, str) else self.content


# --- public functions --------------------------------------------------------------------------


def check_messages(messages: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
    """Check that *messages* can be sent through the CLI, and return them in canonical form.

    Call it before any process is touched: every problem with the input is found here.
    The last message is the new prompt, which is typed into the CLI's terminal, so it
    must be a user message holding text and nothing that cannot be typed.

    The canonical form is a tuple of fresh dicts that share nothing with the input: each
    message is ``{"role", "content"}`` where a string content stays a string and a list
    keeps only the API fields of each block (``cache_control``, ``citations`` and other
    extra keys are dropped; a ``tool_result`` always has ``content`` and ``is_error``).
    Passing it back to any function of this module gives the same result as the input.

    Args:
        messages: The request's ``messages``, in the Anthropic Messages API shape.

    Returns:
        The canonical copy.

    Raises:
        InputError: If *messages* is empty or not a list of message objects; a role or a
            content block type is unknown, or a block is in the wrong role's message; a
            block lacks a required field or has one of the wrong type; a tool-use id is
            used twice; or the last message is not from the user, holds a ``tool_result``
            or an ``image``, or has no text to type.

    .. versionadded:: 0.1.0
    """
    return parse_history(messages).messages


def hash_history(messages: Sequence[Mapping[str, Any]] | History) -> str:
    """Return a fingerprint of the visible conversation of a history.

    The backend keys each live ``claude`` process by the fingerprint of the history it
    holds, and looks up the fingerprint of ``messages[:-1]`` for a new request. Two
    histories get the same fingerprint when their **human turns** and the **assistant's
    text** between them are the same; nothing else is compared:

    * A human turn is a run of user messages that hold something other than tool
      results, not separated by an assistant message (the API merges consecutive user
      messages into one turn, so ``[user A, user B]`` is the turn ``[A, B]``, while
      ``[user A, assistant, user B]`` is two turns). Each is reduced to its text blocks
      and images, in order; a string content counts as one text block. Each text has
      CRLF and lone CR turned into LF, is put in NFC and loses the whitespace at its very
      end, as the CLI does to typed text. An image counts by a hash of its base64 data or
      its url.
    * An assistant reply is everything between two human turns: its text blocks, joined,
      with every run of whitespace removed. Thinking, tool calls and tool results do not
      count, so a caller may send a reply back as a plain string or as blocks, merged or
      split, with or without its tool calls. An edited or regenerated reply counts as a
      different conversation.
    * ``cache_control``, ``citations`` and other fields the CLI does not keep are ignored.

    Any change to an earlier user text, to the text of a reply, or to the order of the
    turns changes the fingerprint. The empty history has a fingerprint of its own.

    Args:
        messages: A history in the Anthropic Messages API shape (or a `History`, whose
            whole ``messages`` count); it may be empty and may end with either role.

    Returns:
        The SHA-256 of a canonical encoding of the visible conversation, as 64 hex digits.

    Raises:
        InputError: If *messages* is not a list of well-formed messages (see
            `check_messages`; the rules about the last message do not apply here).

    .. versionadded:: 0.1.0
    """
    return _fingerprint(_parsed(messages))


def _fingerprint(messages: Sequence[_Message], reply: str | None = None) -> str:
    turns: list[list[Any]] = []
    for message in messages:
        if message.role == "assistant":
            text = "".join(block.text for block in message.blocks if isinstance(block, _Text))
            if turns and turns[-1][0] == "assistant":
                turns[-1][1] += _WHITESPACE.sub("", text)
            else:
                turns.append(["assistant", _WHITESPACE.sub("", text)])
            continue
        parts = [
            _human_part(block) for block in message.blocks if isinstance(block, _Text | _Image)
        ]
        if not parts:
            continue  # tool results only: part of the assistant's reply
        if turns and turns[-1][0] == "user":
            turns[-1][1].extend(parts)
        else:
            turns.append(["user", parts])
    if reply is not None:
        if turns and turns[-1][0] == "assistant":
            turns[-1][1] += _WHITESPACE.sub("", reply)
        else:
            turns.append(["assistant", _WHITESPACE.sub("", reply)])
    encoded = json.dumps([_FINGERPRINT_TAG, turns], ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()


@attrs.frozen(eq=False)
class History:
    """A request's ``messages``, checked and parsed once; make one with `parse_history`.

    Every function of this module that takes ``messages`` takes a `History` too, and
    then parses nothing again.

    Attributes:
        messages: The canonical form (as `check_messages` returns it).
        prompt: The text to type for the last message into a process that holds the
            rest (text blocks joined by a blank line).
        key: The fingerprint of the conversation before the last message
            (`hash_history` of ``messages[:-1]``): what a live process must hold to take
            this request.
    """

    messages: tuple[dict[str, Any], ...]
    prompt: str
    key: str
    _parsed: tuple[_Message, ...] = attrs.field(repr=False, alias="parsed")

    def key_after(self, reply: str) -> str:
        """Return the fingerprint of these messages followed by the assistant's *reply*.

        Args:
            reply: The text of the reply the turn produced (its text blocks joined).
        """
        return _fingerprint(self._parsed, reply)


def parse_history(messages: Sequence[Mapping[str, Any]]) -> History:
    """Check *messages* as `check_messages` does and parse them, once, into a `History`.

    Raises:
        InputError: As `check_messages` does.
    """
    parsed = _parse(messages)
    _check_prompt(parsed)
    return History(
        messages=tuple(_message_json(message) for message in parsed),
        prompt=_text_of(parsed[-1]),
        key=_fingerprint(parsed[:-1]),
        parsed=parsed,
    )


def prompt_text(messages: Sequence[Mapping[str, Any]] | History) -> str:
    """Return the text to type for the last message, into a process that holds the rest.

    A string content is returned as it is; text blocks are joined by a blank line.

    Raises:
        InputError: As `check_messages` does.
    """
    return _text_of(_checked(messages)[-1])


def fold_history(messages: Sequence[Mapping[str, Any]] | History) -> str:
    """Fold a history and the new message into one first prompt for a fresh CLI.

    This is ``injection_mode="concat_message"``. The history goes inside
    ``<conversation_history>``, one ``<message from="user">`` or
    ``<message from="assistant">`` per message, and the new message inside
    ``<new_message>``, after a short instruction to answer it. Nothing in it looks like a
    tool call the model could imitate: each tool call becomes one plain sentence with its
    result (``The assistant ran the tool Bash with the input {…}; it returned: …``),
    thinking blocks are dropped and images become ``[an image]``. A ``<`` that would open
    or close one of these tags inside the text is written ``&lt;``. With no history, the
    new message's text is returned alone. The result depends on nothing but *messages*.

    Args:
        messages: The request's messages; the last one is the new prompt.

    Returns:
        The text to type as the first message of a new session.

    Raises:
        InputError: As `check_messages` does.

    .. versionadded:: 0.1.0
    """
    parsed = _checked(messages)
    history, prompt = parsed[:-1], _text_of(parsed[-1])
    calls = {
        block.id for message in history for block in message.blocks if isinstance(block, _ToolUse)
    }
    results: dict[str, _ToolResult] = {}
    for message in history:
        for block in message.blocks:
            if isinstance(block, _ToolResult):
                results.setdefault(block.tool_use_id, block)
    sections = []
    for message in history:
        body = _fold_body(message, calls, results)
        if body:
            sections.append(f'<message from="{message.role}">\n{_escape(body)}\n</message>')
    if not sections:
        return prompt
    transcript = "\n\n".join(sections)
    return (
        f"{_FOLD_PREAMBLE}\n\n<conversation_history>\n{transcript}\n</conversation_history>"
        f"\n\n<new_message>\n{_escape(prompt)}\n</new_message>"
    )


def transcript_records(
    messages: Sequence[Mapping[str, Any]] | History,
    *,
    session_id: str,
    cwd: str | os.PathLike[str],
    start_time: dt.datetime,
    model: str = HISTORY_MODEL,
    new_uuid: Callable[[], uuid.UUID] = uuid.uuid4,
) -> list[dict[str, Any]]:
    """Return the history as session records that ``claude --resume`` takes as its own.

    This is ``injection_mode="native_jsonl"``. The records cover ``messages[:-1]``, less
    any user messages at its very end that hold only text: those are typed together
    with the new message (see `resume_prompt`), which is what the API does with
    consecutive user messages; left in the file, they would make the CLI put a synthetic
    ``"No response requested."`` after them. What the records leave out:

    * ``thinking`` and ``redacted_thinking`` blocks: their signatures were made for
      another conversation and would not verify.
    * A ``tool_use`` without a ``tool_result`` of the same id in the next message, and a
      ``tool_result`` without its ``tool_use`` in the message before: the API refuses
      either, and the CLI would drop the whole assistant message around an unanswered
      call.
    * Text blocks that are empty or only whitespace (the API refuses them), and messages
      left with no content.

    Each user message is one record (a string content stays a string); each assistant
    message is one record per content block sharing one ``message.id``, as the CLI writes
    them, with ``stop_reason`` ``"tool_use"`` if it calls a tool and ``"end_turn"``
    otherwise, and zero ``usage``. The records are chained by ``parentUuid`` from
    ``null``, carry fresh ``uuid`` s, and have timestamps 1 ms apart from *start_time*.
    A trailing user message that holds a tool result or an image stays in the file, and
    the CLI then adds its ``"No response requested."``.

    Args:
        messages: The request's messages; the last one is the new prompt and is not
            written.
        session_id: The session the records belong to (a UUID).
        cwd: The absolute working directory the CLI will run in.
        start_time: The timestamp of the first record; timezone-aware.
        model: The ``model`` of the assistant records.
        new_uuid: Where record uuids and message ids come from; pass a seeded source for
            reproducible records.

    Returns:
        The records, ready to be written one JSON object per line; empty if nothing of
        the history is left to write (then start a new session and type `resume_prompt`).

    Raises:
        InputError: As `check_messages` does.
        SessionError: If *session_id* is not a UUID.
        ValueError: If *cwd* is relative or *start_time* is naive.
    """
    sid = validate_session_id(session_id)
    directory = os.fspath(cwd)
    if not os.path.isabs(directory):
        raise ValueError(f"cwd must be an absolute path, got {directory!r}")
    if start_time.tzinfo is None or start_time.utcoffset() is None:
        raise ValueError("start_time must be timezone-aware")
    history, _ = _split_for_resume(_checked(messages))
    clock = start_time.astimezone(dt.UTC)
    records: list[dict[str, Any]] = []
    parent: str | None = None

    def append(kind: str, message: dict[str, Any]) -> None:
        nonlocal parent
        record_uuid = str(new_uuid())
        stamp = clock + dt.timedelta(milliseconds=len(records))
        records.append(
            {
                "parentUuid": parent,
                "isSidechain": False,
                "type": kind,
                "message": message,
                "uuid": record_uuid,
                "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "userType": "external",
                "cwd": directory,
                "sessionId": sid,
                "version": PINNED_CLI_VERSION,
            }
        )
        parent = record_uuid

    for message in history:
        if message.role == "user":
            append("user", _message_json(message))
            continue
        message_id = f"msg_{new_uuid().hex}"
        calls = any(isinstance(block, _ToolUse) for block in message.blocks)
        for block in message.blocks:
            append(
                "assistant",
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [_block_json(block)],
                    "stop_reason": "tool_use" if calls else "end_turn",
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": 0,
                        "output_tokens": 0,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                    },
                },
            )
    return records


def resume_prompt(messages: Sequence[Mapping[str, Any]] | History) -> str:
    """Return the text to type after resuming the records of `transcript_records`.

    It is the new message's text, after the text of the user messages at the end of the
    history that `transcript_records` leaves out, each separated by a blank line.

    Raises:
        InputError: As `check_messages` does.
    """
    return _split_for_resume(_checked(messages))[1]


# --- parsing -----------------------------------------------------------------------------------


def _parsed(messages: Sequence[Mapping[str, Any]] | History) -> tuple[_Message, ...]:
    """The parsed messages: a `History`'s own, or *messages* parsed now."""
    return messages._parsed if isinstance(messages, History) else _parse(messages)


def _checked(messages: Sequence[Mapping[str, Any]] | History) -> tuple[_Message, ...]:
    """Like `_parsed`, with the checks of the last message (a `History` passed them)."""
    if isinstance(messages, History):
        return messages._parsed
    parsed = _parse(messages)
    _check_prompt(parsed)
    return parsed


def _parse(messages: object) -> tuple[_Message, ...]:
    if isinstance(messages, str | bytes | bytearray) or not isinstance(messages, Sequence):
        raise InputError(f"messages must be a list of message objects, got {_type(messages)}")
    parsed = tuple(_message(item, f"messages[{index}]") for index, item in enumerate(messages))
    _check_tool_ids(parsed)
    return parsed


def _message(item: object, where: str) -> _Message:
    if not isinstance(item, Mapping):
        raise InputError(
            f"a message must be an object with 'role' and 'content', got {_type(item)}",
            where=where,
        )
    role = item.get("role")
    if role != "user" and role != "assistant":
        hint = " (give a system prompt through the options)" if role == "system" else ""
        raise InputError(
            f"unknown role {_show(role)}: a message is from 'user' or 'assistant'{hint}",
            where=f"{where}.role",
        )
    if "content" not in item:
        raise InputError("a message needs 'content'", where=where)
    content = item["content"]
    if isinstance(content, str):
        return _Message(role, _string(content, f"{where}.content"))
    if isinstance(content, bytes | bytearray) or not isinstance(content, Sequence):
        raise InputError(
            f"content must be a string or a list of content blocks, got {_type(content)}",
            where=f"{where}.content",
        )
    blocks = tuple(
        _block(block, role, f"{where}.content[{index}]") for index, block in enumerate(content)
    )
    return _Message(role, blocks)


def _block(value: object, role: str, where: str) -> _Block:
    if not isinstance(value, Mapping):
        raise InputError(f"a content block must be an object, got {_type(value)}", where=where)
    kind = value.get("type")
    if not isinstance(kind, str) or kind not in _BLOCK_TYPES:
        raise InputError(
            f"unknown content block type {_show(kind)}; expected one of {', '.join(_BLOCK_TYPES)}",
            where=f"{where}.type",
        )
    if kind not in _ROLE_BLOCKS[role]:
        raise InputError(f"a {kind!r} block cannot be in a {role} message", where=where)
    if kind == "text":
        return _Text(_field(value, "text", "a 'text' block", where))
    if kind == "image":
        return _image(value, where)
    if kind == "tool_use":
        return _tool_use(value, where)
    if kind == "tool_result":
        return _tool_result(value, where)
    if kind == "thinking":
        what = "a 'thinking' block"
        signature = _field(value, "signature", what, where) if "signature" in value else None
        return _Thinking(_field(value, "thinking", what, where), signature)
    return _RedactedThinking(_field(value, "data", "a 'redacted_thinking' block", where))


def _image(value: Mapping[str, Any], where: str) -> _Image:
    source = value.get("source")
    if not isinstance(source, Mapping):
        raise InputError(
            f"an 'image' block needs a 'source' object, got {_type(source)}",
            where=f"{where}.source",
        )
    where = f"{where}.source"
    kind = source.get("type")
    if kind == "base64":
        media_type = _field(source, "media_type", "a base64 image source", where)
        return _Image("base64", media_type, _field(source, "data", "a base64 image source", where))
    if kind == "url":
        return _Image("url", None, _field(source, "url", "a url image source", where))
    raise InputError(
        f"an image source's type must be 'base64' or 'url', got {_show(kind)}",
        where=f"{where}.type",
    )


def _tool_use(value: Mapping[str, Any], where: str) -> _ToolUse:
    tool_id = _field(value, "id", "a 'tool_use' block", where, nonempty=True)
    name = _field(value, "name", "a 'tool_use' block", where, nonempty=True)
    if not isinstance(value.get("input"), Mapping):
        raise InputError(
            f"a 'tool_use' block needs 'input' (an object), got {_type(value.get('input'))}",
            where=f"{where}.input",
        )
    try:
        input_json = json.dumps(
            dict(value["input"]), ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )
    except (TypeError, ValueError, RecursionError) as exc:
        raise InputError(f"a tool input must be JSON: {exc}", where=f"{where}.input") from None
    return _ToolUse(tool_id, name, _string(input_json, f"{where}.input"))


def _tool_result(value: Mapping[str, Any], where: str) -> _ToolResult:
    tool_use_id = _field(value, "tool_use_id", "a 'tool_result' block", where, nonempty=True)
    is_error = value.get("is_error", False)
    if not isinstance(is_error, bool):
        raise InputError(
            f"'is_error' must be true or false, got {_type(is_error)}", where=f"{where}.is_error"
        )
    content = value.get("content", "")
    if isinstance(content, str):
        return _ToolResult(tool_use_id, _string(content, f"{where}.content"), is_error)
    if isinstance(content, bytes | bytearray) or not isinstance(content, Sequence):
        raise InputError(
            f"a tool result's content must be a string or a list of blocks, got {_type(content)}",
            where=f"{where}.content",
        )
    parts: list[_Text | _Image] = []
    for index, item in enumerate(content):
        place = f"{where}.content[{index}]"
        if not isinstance(item, Mapping):
            raise InputError(f"a content block must be an object, got {_type(item)}", where=place)
        kind = item.get("type")
        if kind == "text":
            parts.append(_Text(_field(item, "text", "a 'text' block", place)))
        elif kind == "image":
            parts.append(_image(item, place))
        else:
            raise InputError(
                f"a tool result may hold only 'text' and 'image' blocks, got {_show(kind)}",
                where=f"{place}.type",
            )
    return _ToolResult(tool_use_id, tuple(parts), is_error)


def _field(
    value: Mapping[str, Any], key: str, what: str, where: str, *, nonempty: bool = False
) -> str:
    if key not in value:
        raise InputError(f"{what} needs {key!r} (a string)", where=where)
    text = _string(value[key], f"{where}.{key}")
    if nonempty and not text:
        raise InputError(f"{key!r} must not be empty", where=f"{where}.{key}")
    return text


def _string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise InputError(f"expected a string, got {_type(value)}", where=where)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("the text is not valid Unicode (a lone surrogate)", where=where) from None
    return value


def _check_tool_ids(messages: tuple[_Message, ...]) -> None:
    seen: dict[str, str] = {}
    for index, message in enumerate(messages):
        for position, block in enumerate(message.blocks):
            if isinstance(block, _ToolUse):
                where = f"messages[{index}].content[{position}]"
                if block.id in seen:
                    raise InputError(
                        f"tool_use id {block.id!r} is used twice (first at {seen[block.id]})",
                        where=f"{where}.id",
                    )
                seen[block.id] = where


def _check_prompt(messages: tuple[_Message, ...]) -> None:
    if not messages:
        raise InputError("messages is empty: it needs at least the user's new message")
    where = f"messages[{len(messages) - 1}]"
    last = messages[-1]
    if last.role != "user":
        raise InputError(
            "the last message must be the user's new message, but it is from the assistant: "
            "the CLI cannot continue a reply that was started for it",
            where=f"{where}.role",
        )
    for index, block in enumerate(last.blocks):
        if isinstance(block, _ToolResult | _Image):
            what = "a tool_result" if isinstance(block, _ToolResult) else "an image"
            raise InputError(
                f"the last message holds {what}, but the CLI is typed into through a terminal "
                "and only text can be typed: the new message must be text only (tool results "
                "and images may appear earlier in the history)",
                where=f"{where}.content[{index}]",
            )
    try:
        prepare_text(_text_of(last))
    except InputError as exc:
        raise InputError(exc.message, where=where) from None


def _type(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _show(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= _SHOWN_CHARS else f"{shown[:_SHOWN_CHARS]}…"


# --- output ------------------------------------------------------------------------------------


def _text_of(message: _Message) -> str:
    if isinstance(message.content, str):
        return message.content
    return "\n\n".join(block.text for block in message.content if isinstance(block, _Text))


def _message_json(message: _Message) -> dict[str, Any]:
    content: str | list[dict[str, Any]]
    if isinstance(message.content, str):
        content = message.content
    else:
        content = [_block_json(block) for block in message.content]
    return {"role": message.role, "content": content}


def _block_json(block: _Block) -> dict[str, Any]:
    if isinstance(block, _Text):
        return {"type": "text", "text": block.text}
    if isinstance(block, _Image):
        if block.kind == "url":
            return {"type": "image", "source": {"type": "url", "url": block.data}}
        source = {"type": "base64", "media_type": block.media_type, "data": block.data}
        return {"type": "image", "source": source}
    if isinstance(block, _ToolUse):
        return {
            "type": "tool_use",
            "id": block.id,
            "name": block.name,
            "input": json.loads(block.input_json),
        }
    if isinstance(block, _ToolResult):
        content: str | list[dict[str, Any]]
        if isinstance(block.content, str):
            content = block.content
        else:
            content = [_block_json(part) for part in block.content]
        return {
            "type": "tool_result",
            "tool_use_id": block.tool_use_id,
            "content": content,
            "is_error": block.is_error,
        }
    if isinstance(block, _Thinking):
        thinking: dict[str, Any] = {"type": "thinking", "thinking": block.thinking}
        if block.signature is not None:
            thinking["signature"] = block.signature
        return thinking
    return {"type": "redacted_thinking", "data": block.data}


# --- fingerprint -------------------------------------------------------------------------------


def _human_part(block: _Text | _Image) -> list[str]:
    if isinstance(block, _Text):
        return ["text", _as_typed(block.text)]
    digest = hashlib.sha256(f"{block.kind}\0{block.data}".encode()).hexdigest()
    return ["image", digest]


def _as_typed(text: str) -> str:
    unified = text.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", unified).rstrip()


# --- concat_message ----------------------------------------------------------------------------


def _fold_body(message: _Message, calls: set[str], results: Mapping[str, _ToolResult]) -> str:
    parts: list[str] = []
    for block in message.blocks:
        if isinstance(block, _Text):
            parts.append(block.text)
        elif isinstance(block, _Image):
            parts.append(_AN_IMAGE)
        elif isinstance(block, _ToolUse):
            parts.append(_tool_sentence(block, results.get(block.id)))
        elif isinstance(block, _ToolResult) and block.tool_use_id not in calls:
            parts.append(_outcome("A tool", block))
    return "\n\n".join(part for part in parts if part.strip())


def _tool_sentence(call: _ToolUse, result: _ToolResult | None) -> str:
    shown_input = json.dumps(json.loads(call.input_json), ensure_ascii=False)
    sentence = f"The assistant ran the tool {call.name} with the input {shown_input}"
    if result is None:
        return f"{sentence}, but no result was recorded."
    return _outcome(sentence + ";", result, subject="it")


def _outcome(prefix: str, result: _ToolResult, *, subject: str = "") -> str:
    if isinstance(result.content, str):
        output = result.content
    else:
        output = "\n\n".join(
            part.text if isinstance(part, _Text) else _AN_IMAGE for part in result.content
        )
    lead = f"{prefix} {subject}".rstrip()
    verb = "failed with" if result.is_error else "returned"
    if not output.strip():
        return f"{lead} {'failed' if result.is_error else 'returned nothing'}."
    separator = "\n" if "\n" in output else " "
    return f"{lead} {verb}:{separator}{output}"


def _escape(text: str) -> str:
    return _FOLD_TAG.sub("&lt;", text)


# --- native_jsonl ------------------------------------------------------------------------------


def _split_for_resume(messages: tuple[_Message, ...]) -> tuple[list[_Message], str]:
    history = _resumable(messages[:-1])
    typed = [_text_of(messages[-1])]
    while history and history[-1].role == "user" and _only_text(history[-1]):
        typed.insert(0, _text_of(history.pop()))
    return history, "\n\n".join(typed)


def _only_text(message: _Message) -> bool:
    return all(isinstance(block, _Text) for block in message.blocks)


def _resumable(history: tuple[_Message, ...]) -> list[_Message]:
    kept: list[_Message] = []
    for index, message in enumerate(history):
        before = history[index - 1] if index > 0 else None
        after = history[index + 1] if index + 1 < len(history) else None
        if message.role == "assistant":
            answered = _result_ids(after) if after is not None and after.role == "user" else set()
            blocks = [block for block in message.blocks if _keep_in_reply(block, answered)]
        else:
            asked = (
                _call_ids(before) if before is not None and before.role == "assistant" else set()
            )
            blocks = _keep_in_user(message, asked)
        if isinstance(message.content, str) and message.content.strip():
            kept.append(message)
        elif blocks:
            kept.append(_Message(message.role, tuple(blocks)))
    return kept


def _keep_in_reply(block: _Block, answered: set[str]) -> bool:
    if isinstance(block, _Text):
        return bool(block.text.strip())
    if isinstance(block, _ToolUse):
        return block.id in answered
    return False


def _keep_in_user(message: _Message, asked: set[str]) -> list[_Block]:
    blocks: list[_Block] = []
    answered: set[str] = set()
    for block in message.blocks:
        if isinstance(block, _ToolResult):
            if block.tool_use_id in asked and block.tool_use_id not in answered:
                answered.add(block.tool_use_id)
                blocks.append(block)
        elif not isinstance(block, _Text) or block.text.strip():
            blocks.append(block)
    return blocks


def _call_ids(message: _Message) -> set[str]:
    return {block.id for block in message.blocks if isinstance(block, _ToolUse)}


def _result_ids(message: _Message) -> set[str]:
    return {block.tool_use_id for block in message.blocks if isinstance(block, _ToolResult)}
