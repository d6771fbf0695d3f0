"""The OpenAI Chat Completions API over a turn: request parsing and response encoding.

Sans-I/O: nothing here reads a socket, waits or imports trio. The gateway's
``/v1/chat/completions`` route calls `parse_chat_request` on the decoded JSON body, runs
the turn with the `ChatRequest` it returns, and shapes the turn's events with
`chat_completion` (``"stream": false``) or a `ChatStreamEncoder` (``"stream": true``,
one dict per server-sent event).

The OpenAI route carries text only: the reply is the text blocks of the turn's assistant
messages; thinking, the CLI's tool calls and their results are left out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias

import attrs

from ._deltas import BlockOpened, BlockText, DeltaMerger, Step, WholeEvent
from ._errors import InputError
from ._events import AssistantMessage, Event, ResultMessage, TextBlock, Usage
from ._gateway_errors import GatewayError
from ._history import History, parse_history

#: What the text of two API messages of one turn is joined with, so words do not run
#: together (the backend's history fingerprint ignores whitespace).
MESSAGE_SEPARATOR: Final = "\n\n"

#: The image types the Messages API takes as base64 data.
IMAGE_MEDIA_TYPES: Final = ("image/jpeg", "image/png", "image/gif", "image/webp")

_Treatment: TypeAlias = Literal["honoured", "ignored", "refused"]
_Kind: TypeAlias = Literal["string", "integer", "number", "boolean", "object", "array", "any"]


@attrs.frozen
class _Field:
    treatment: _Treatment
    kind: _Kind = "any"
    neutral: tuple[object, ...] = ()  # refused fields: the values that ask for nothing
    why: str = ""  # refused fields: why another value cannot be served


_NO_TOOLS: Final = (
    "client-defined tools are not supported by this gateway yet (the claude CLI runs its own tools)"
)

# The code's side of the table in `parse_chat_request`'s docstring; a test keeps them in step.
_FIELDS: Final[Mapping[str, _Field]] = {
    "model": _Field("honoured", "string"),
    "messages": _Field("honoured", "array"),
    "stream": _Field("honoured", "boolean"),
    "stream_options": _Field("honoured", "object"),
    "audio": _Field("refused", neutral=(None,), why="audio output is not supported"),
    "frequency_penalty": _Field("ignored", "number"),
    "function_call": _Field("refused", neutral=(None, "none", "auto"), why=_NO_TOOLS),
    "functions": _Field("refused", neutral=(None, []), why=_NO_TOOLS),
    "logit_bias": _Field("refused", neutral=(None, {}), why="logit_bias is not supported"),
    "logprobs": _Field("refused", neutral=(None, False), why="logprobs are not available"),
    "max_completion_tokens": _Field("ignored", "integer"),
    "max_tokens": _Field("ignored", "integer"),
    "metadata": _Field("ignored", "object"),
    "modalities": _Field(
        "refused", neutral=(None, ["text"]), why="the only output modality is text"
    ),
    "moderation": _Field("refused", neutral=(None,), why="moderation is not available"),
    "n": _Field("refused", neutral=(None, 1), why="this gateway returns exactly one choice"),
    "parallel_tool_calls": _Field("ignored", "boolean"),
    "prediction": _Field("refused", neutral=(None,), why="predicted outputs are not supported"),
    "presence_penalty": _Field("ignored", "number"),
    "prompt_cache_key": _Field("ignored", "string"),
    "prompt_cache_options": _Field("ignored", "object"),
    "prompt_cache_retention": _Field("ignored", "string"),
    "reasoning_effort": _Field("ignored", "string"),
    "response_format": _Field(
        "refused",
        neutral=(None, {"type": "text"}),
        why="structured output (JSON mode, JSON schema) is not supported",
    ),
    "safety_identifier": _Field("ignored", "string"),
    "seed": _Field("ignored", "integer"),
    "service_tier": _Field("ignored", "string"),
    "stop": _Field(
        "refused", neutral=(None, "", []), why="stop sequences cannot be given to the claude CLI"
    ),
    "store": _Field("ignored", "boolean"),
    "temperature": _Field("ignored", "number"),
    "tool_choice": _Field("refused", neutral=(None, "none", "auto"), why=_NO_TOOLS),
    "tools": _Field("refused", neutral=(None, []), why=_NO_TOOLS),
    "top_logprobs": _Field("refused", neutral=(None,), why="logprobs are not available"),
    "top_p": _Field("ignored", "number"),
    "user": _Field("ignored", "string"),
    "verbosity": _Field("ignored", "string"),
    "web_search_options": _Field(
        "refused", neutral=(None,), why="the web search tool of the OpenAI API is not available"
    ),
}

_MESSAGE_KEYS: Final[Mapping[str, frozenset[str]]] = {
    "system": frozenset({"role", "content", "name"}),
    "developer": frozenset({"role", "content", "name"}),
    "user": frozenset({"role", "content", "name"}),
    "assistant": frozenset(
        {"role", "content", "name", "refusal", "tool_calls", "function_call", "audio"}
    ),
}
_PART_KEYS: Final[Mapping[str, frozenset[str]]] = {
    "text": frozenset({"type", "text", "prompt_cache_breakpoint"}),
    "image_url": frozenset({"type", "image_url", "prompt_cache_breakpoint"}),
    "refusal": frozenset({"type", "refusal"}),
}
_STREAM_OPTION_KEYS: Final = frozenset({"include_usage", "include_obfuscation"})
_DATA_URL: Final = re.compile(
    r"data:(?P<type>[^;,]*)(?P<params>(?:;[^;,]*)*),(?P<data>.*)", re.S | re.I
)
_LENGTH_STOPS: Final = frozenset({"max_tokens", "model_context_window_exceeded"})


# --- requests ----------------------------------------------------------------------------------


@attrs.frozen
class ChatRequest:
    """A Chat Completions request, checked and mapped onto a turn of the backend.

    Attributes:
        history: The conversation, parsed once: what the gateway passes to
            `claude_trio.ClaudeCodeBackend.complete`.
        messages: The conversation in the Anthropic Messages API shape, in the canonical
            form of `claude_trio.check_messages`: ready for
            `claude_trio.ClaudeCodeBackend.complete`.
        system: The system prompt: the leading ``system`` and ``developer`` messages
            joined by a blank line; None when there were none (or only empty ones).
        model: The requested model, passed on as it is.
        stream: Whether to answer with server-sent events.
        include_usage: Whether the stream ends with a usage chunk
            (``stream_options.include_usage``).
        ignored: The fields that were given (not null) but are not honoured, sorted; a
            field of the messages is named by its path without indexes
            (``messages.name``).
    """

    history: History = attrs.field(repr=False, eq=False)
    messages: tuple[dict[str, Any], ...]
    system: str | None
    model: str
    stream: bool
    include_usage: bool
    ignored: tuple[str, ...]


def parse_chat_request(body: object, *, max_messages: int) -> ChatRequest:
    """Check a Chat Completions request body and map it onto a turn.

    Every field the API defines is either honoured, accepted and ignored (and then named
    in `ChatRequest.ignored`), or refused unless it has a value that asks for nothing;
    a field the API does not define is refused as the API does (``Unrecognized request
    argument supplied``):

    ========================== ========= ==========================================================
    field                      treatment accepted
    ========================== ========= ==========================================================
    ``model``                  honoured  string: the backend's ``model``
    ``messages``               honoured  array: the conversation (see below)
    ``stream``                 honoured  boolean
    ``stream_options``         honoured  object: ``include_usage`` honoured (see below)
    ``frequency_penalty``      ignored   number
    ``max_completion_tokens``  ignored   integer
    ``max_tokens``             ignored   integer
    ``metadata``               ignored   object
    ``parallel_tool_calls``    ignored   boolean
    ``presence_penalty``       ignored   number
    ``prompt_cache_key``       ignored   string
    ``prompt_cache_options``   ignored   object
    ``prompt_cache_retention`` ignored   string
    ``reasoning_effort``       ignored   string
    ``safety_identifier``      ignored   string
    ``seed``                   ignored   integer
    ``service_tier``           ignored   string
    ``store``                  ignored   boolean
    ``temperature``            ignored   number
    ``top_p``                  ignored   number
    ``user``                   ignored   string
    ``verbosity``              ignored   string
    ``audio``                  refused   ``null``
    ``function_call``          refused   ``null``, ``"none"``, ``"auto"``
    ``functions``              refused   ``null``, ``[]``
    ``logit_bias``             refused   ``null``, ``{}``
    ``logprobs``               refused   ``null``, ``false``
    ``modalities``             refused   ``null``, ``["text"]``
    ``moderation``             refused   ``null``
    ``n``                      refused   ``null``, ``1``
    ``prediction``             refused   ``null``
    ``response_format``        refused   ``null``, ``{"type": "text"}``
    ``stop``                   refused   ``null``, ``""``, ``[]``
    ``tool_choice``            refused   ``null``, ``"none"``, ``"auto"``
    ``tools``                  refused   ``null``, ``[]``
    ``top_logprobs``           refused   ``null``
    ``web_search_options``     refused   ``null``
    ========================== ========= ==========================================================

    ``model`` and ``messages`` are required; ``stream_options`` is allowed only with
    ``"stream": true`` (``include_obfuscation`` is ignored: no obfuscation is added). A
    refused field is accepted at the values listed, which ask for nothing; an ignored
    field must still have its type.

    The messages are mapped onto the Messages API shape:

    * ``system`` and ``developer`` messages at the start become the system prompt (their
      texts joined by a blank line). One after the first user or assistant message is
      refused: the claude CLI takes its system prompt once, when it starts.
    * A ``user`` message's content is a string or an array of ``text`` parts and
      ``image_url`` parts; an image is a ``data:`` URL of base64 JPEG, PNG, GIF or WebP
      data, or an ``http(s)`` URL (its ``detail`` is ignored). Other parts
      (``input_audio``, ``file``) are refused.
    * An ``assistant`` message's content is a string or an array of ``text`` and
      ``refusal`` parts; its ``refusal`` text is added after the content. Tool calls
      (``tool_calls``, ``function_call``) and ``audio`` are refused, as are the ``tool``
      and ``function`` roles: client-defined tools are not supported yet.
    * ``name`` (of any message) and ``prompt_cache_breakpoint`` (of a part) are ignored.
    * The last message must be the user's, and text only (the claude CLI is typed into);
      images may come earlier.

    Args:
        body: The decoded JSON body.
        max_messages: The most messages (``system`` ones included) a request may hold.

    Returns:
        The request mapped onto a turn.

    Raises:
        GatewayError: With status 400, for any problem with the body; ``param`` names the
            field at fault (``messages.3.content.0``) when there is one.
    """
    if not isinstance(body, Mapping):
        raise _bad(f"the request body must be a JSON object, got {_type(body)}")
    for name in body:
        if name not in _FIELDS:
            raise _bad(f"Unrecognized request argument supplied: {name}", str(name))
    for name in ("model", "messages"):
        if body.get(name) is None:
            raise _bad(f"you must provide a {name!r} parameter", name)
    ignored = _check_fields(body)
    model = _model(body["model"])
    stream = body.get("stream") is True
    include_usage = _stream_options(body.get("stream_options"), stream, ignored)
    mapped = _map_messages(body["messages"], max_messages=max_messages)
    ignored |= mapped.ignored
    try:
        history = parse_history(mapped.messages)
    except InputError as exc:
        raise _translated(exc, mapped.origin) from None
    return ChatRequest(
        history=history,
        messages=history.messages,
        system=MESSAGE_SEPARATOR.join(mapped.system) if mapped.system else None,
        model=model,
        stream=stream,
        include_usage=include_usage,
        ignored=tuple(sorted(ignored)),
    )


def _check_fields(body: Mapping[str, Any]) -> set[str]:
    """Check every field against `_FIELDS`; return the ignored ones that were given."""
    ignored: set[str] = set()
    for name, field in _FIELDS.items():
        value = body.get(name)
        if field.treatment == "refused":
            if not any(_same(value, neutral) for neutral in field.neutral):
                raise _bad(f"{name} {_show(value)} is not supported: {field.why}", name)
        elif value is not None:
            _check_kind(value, field.kind, name)
            if field.treatment == "ignored":
                ignored.add(name)
    return ignored


def _model(model: str) -> str:
    # It becomes a command-line argument of the CLI: no control characters, no spaces.
    if not model or not model.isprintable() or any(ch.isspace() for ch in model):
        raise _bad(f"model {_show(model)} is not a model name", "model")
    return _check_text(model, "model")


def _stream_options(options: Mapping[str, Any] | None, stream: bool, ignored: set[str]) -> bool:
    """Check ``stream_options``; return ``include_usage``."""
    if options is None:
        return False
    if not stream:
        raise _bad("stream_options is only allowed when 'stream' is true", "stream_options")
    for key in options:
        if key not in _STREAM_OPTION_KEYS:
            raise _bad(f"Unknown parameter: 'stream_options.{key}'", f"stream_options.{key}")
    for key in _STREAM_OPTION_KEYS:
        if options.get(key) is not None:
            _check_kind(options[key], "boolean", f"stream_options.{key}")
    if options.get("include_obfuscation") is not None:
        ignored.add("stream_options.include_obfuscation")
    return options.get("include_usage") is True


@attrs.define
class _Mapped:
    system: list[str] = attrs.Factory(list)
    messages: list[dict[str, Any]] = attrs.Factory(list)
    origin: list[int] = attrs.Factory(list)  # the OpenAI index of each Anthropic message
    ignored: set[str] = attrs.Factory(set)


def _map_messages(value: object, *, max_messages: int) -> _Mapped:
    if not isinstance(value, list):
        raise _bad(f"messages must be an array of message objects, got {_type(value)}", "messages")
    if not value:
        raise _bad("messages must not be empty: it needs at least the user's message", "messages")
    if len(value) > max_messages:
        raise _bad(
            f"messages holds {len(value)} messages; this gateway takes at most {max_messages}",
            "messages",
        )
    mapped = _Mapped()
    for index, message in enumerate(value):
        where = f"messages.{index}"
        if not isinstance(message, Mapping):
            raise _bad(f"a message must be an object, got {_type(message)}", where)
        role = message.get("role")
        if role in ("tool", "function"):
            raise _bad(
                f"{role!r} messages carry the results of client-defined tools, which are not "
                "supported by this gateway yet",
                f"{where}.role",
            )
        if not isinstance(role, str) or role not in _MESSAGE_KEYS:
            shown = "missing" if role is None else _show(role)
            raise _bad(
                f"role {shown}: a message is from 'system', 'developer', 'user' or 'assistant'",
                f"{where}.role",
            )
        for key in message:
            if key not in _MESSAGE_KEYS[role]:
                raise _bad(f"Unknown parameter: '{where}.{key}'", f"{where}.{key}")
        if message.get("name") is not None:
            _check_kind(message["name"], "string", f"{where}.name")
            mapped.ignored.add("messages.name")
        if role in ("system", "developer"):
            if mapped.messages:
                raise _bad(
                    f"a {role} message may only come before the first user or assistant "
                    "message: the claude CLI takes its system prompt once, when it starts, "
                    "so it cannot change in the middle of a conversation",
                    f"{where}.role",
                )
            text = _system_text(message, where, mapped.ignored)
            if text:
                mapped.system.append(text)
            continue
        if role == "user":
            content = _user_content(message, where, mapped.ignored)
        else:
            content = _assistant_content(message, where)
        mapped.messages.append({"role": role, "content": content})
        mapped.origin.append(index)
    if not mapped.messages:
        raise _bad("messages holds no user message: it needs the user's message last", "messages")
    return mapped


def _system_text(message: Mapping[str, Any], where: str, ignored: set[str]) -> str:
    content = _content(message, where)
    if isinstance(content, str):
        return _check_text(content, f"{where}.content")
    texts = []
    for index, part in enumerate(content):
        place = f"{where}.content.{index}"
        kind = _part_type(part, place, ("text",))
        _part_keys(part, kind, place, ignored)
        texts.append(_check_text(_string_field(part, "text", place), f"{place}.text"))
    return MESSAGE_SEPARATOR.join(text for text in texts if text)


def _user_content(
    message: Mapping[str, Any], where: str, ignored: set[str]
) -> str | list[dict[str, Any]]:
    content = _content(message, where)
    if isinstance(content, str):
        return content
    blocks: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        place = f"{where}.content.{index}"
        kind = _part_type(part, place, ("text", "image_url"))
        _part_keys(part, kind, place, ignored)
        if kind == "text":
            blocks.append({"type": "text", "text": _string_field(part, "text", place)})
        else:
            blocks.append(_image(part.get("image_url"), f"{place}.image_url", ignored))
    return blocks


def _assistant_content(message: Mapping[str, Any], where: str) -> str | list[dict[str, Any]]:
    for key in ("tool_calls", "function_call"):
        if message.get(key) not in (None, []):
            raise _bad(
                f"an assistant message with {key} answers client-defined tools, which are "
                "not supported by this gateway yet",
                f"{where}.{key}",
            )
    if message.get("audio") is not None:
        raise _bad("audio replies are not supported", f"{where}.audio")
    refusal = message.get("refusal")
    if refusal is not None:
        _check_kind(refusal, "string", f"{where}.refusal")
    content = message.get("content")
    if content is None:
        if refusal is None:
            raise _bad(
                "an assistant message needs 'content' (or 'refusal') when it has no tool calls",
                f"{where}.content",
            )
        return str(refusal)
    content = _content(message, where)
    blocks: list[dict[str, Any]]
    if isinstance(content, str):
        if refusal is None:
            return content
        blocks = [{"type": "text", "text": content}]
    else:
        blocks = []
        for index, part in enumerate(content):
            place = f"{where}.content.{index}"
            kind = _part_type(part, place, ("text", "refusal"))
            _part_keys(part, kind, place, set())
            blocks.append({"type": "text", "text": _string_field(part, kind, place)})
    if refusal is not None:
        blocks.append({"type": "text", "text": refusal})
    return blocks


def _content(message: Mapping[str, Any], where: str) -> str | list[Any]:
    if "content" not in message or message["content"] is None:
        raise _bad("a message needs 'content'", f"{where}.content")
    content = message["content"]
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad(
            f"content must be a string or an array of parts, got {_type(content)}",
            f"{where}.content",
        )
    if not content:
        raise _bad("content must not be an empty array", f"{where}.content")
    return content


def _part_type(part: object, where: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(part, Mapping):
        raise _bad(f"a content part must be an object, got {_type(part)}", where)
    kind = part.get("type")
    if kind in allowed:
        return str(kind)
    if kind in ("input_audio", "file"):
        why = f"{kind!r} parts are not supported: the claude CLI takes text and images"
    else:
        why = f"a content part here has type {' or '.join(map(repr, allowed))}, not {_show(kind)}"
    raise _bad(why, f"{where}.type")


def _part_keys(part: Mapping[str, Any], kind: str, where: str, ignored: set[str]) -> None:
    for key in part:
        if key not in _PART_KEYS[kind]:
            raise _bad(f"Unknown parameter: '{where}.{key}'", f"{where}.{key}")
    if part.get("prompt_cache_breakpoint") is not None:
        ignored.add("messages.content.prompt_cache_breakpoint")


def _image(value: object, where: str, ignored: set[str]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(f"an 'image_url' part needs an 'image_url' object, got {_type(value)}", where)
    for key in value:
        if key not in ("url", "detail"):
            raise _bad(f"Unknown parameter: '{where}.{key}'", f"{where}.{key}")
    if value.get("detail") is not None:
        _check_kind(value["detail"], "string", f"{where}.detail")
        ignored.add("messages.content.image_url.detail")
    url = _string_field(value, "url", where)
    if url.lower().startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise _bad(
            "an image URL must be a data: URL of base64 data or an http(s) URL", f"{where}.url"
        )
    media_type = match["type"].lower()
    if not match["params"].lower().endswith(";base64"):
        raise _bad("a data: URL of an image must hold base64 data (';base64,')", f"{where}.url")
    if media_type not in IMAGE_MEDIA_TYPES:
        raise _bad(
            f"image type {media_type!r} is not supported; "
            f"use one of {', '.join(IMAGE_MEDIA_TYPES)}",
            f"{where}.url",
        )
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": media_type, "data": match["data"]},
    }


def _string_field(value: Mapping[str, Any], key: str, where: str) -> str:
    if key not in value:
        raise _bad(f"missing required parameter: '{where}.{key}'", f"{where}.{key}")
    _check_kind(value[key], "string", f"{where}.{key}")
    return _check_text(value[key], f"{where}.{key}")


def _check_kind(value: object, kind: _Kind, where: str) -> None:
    fits = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "object": isinstance(value, Mapping),
        "array": isinstance(value, list),
        "any": True,
    }[kind]
    if not fits:
        article = "an" if kind[0] in "aeiou" else "a"
        raise _bad(f"{where} must be {article} {kind}, got {_type(value)}", where)


def _check_text(text: str, where: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad("the text is not valid Unicode (a lone surrogate)", where) from None
    return text


def _same(value: object, neutral: object) -> bool:
    # JSON equality: true is not 1, 1.0 is not 1.
    return json.dumps(value, sort_keys=True) == json.dumps(neutral, sort_keys=True)


def _translated(exc: InputError, origin: Sequence[int]) -> GatewayError:
    """An `InputError` about the mapped messages, placed in the OpenAI request."""
    match = re.fullmatch(r"messages\[(\d+)\](.*)", exc.where, re.S)
    if match is None:
        return _bad(exc.message, "messages")
    index = origin[int(match[1])]
    rest = re.sub(r"\[(\d+)\]", r".\1", match[2])
    return _bad(exc.message, f"messages.{index}{rest}")


def _bad(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(400, message, param=param)


def _type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _show(value: object) -> str:
    try:
        shown = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        shown = repr(value)
    return shown if len(shown) <= 60 else f"{shown[:60]}…"


# --- responses ---------------------------------------------------------------------------------


def finish_reason(stop_reason: str | None) -> str:
    """The OpenAI ``finish_reason`` for an Anthropic ``stop_reason``.

    ``max_tokens`` (and ``model_context_window_exceeded``) become ``"length"``,
    ``refusal`` becomes ``"content_filter"``, and everything else (``end_turn``,
    ``stop_sequence``, ``tool_use``: the CLI's own tools, None) is ``"stop"``.
    """
    if stop_reason in _LENGTH_STOPS:
        return "length"
    if stop_reason == "refusal":
        return "content_filter"
    return "stop"


def chat_usage(usage: Usage) -> dict[str, Any]:
    """The OpenAI ``usage`` object for a turn's `claude_trio.Usage`.

    The prompt tokens are all the input tokens, cached or not; the cache reads are also
    reported as ``prompt_tokens_details.cached_tokens``.
    """
    prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
    }


class _TextJoin:
    """The reply's text, piece by piece: what each event adds to it."""

    def __init__(self) -> None:
        self._last_id: str | None = None
        self._started = False

    def piece(self, event: Event) -> str:
        if not isinstance(event, AssistantMessage):
            return ""
        text = "".join(block.text for block in event.content if isinstance(block, TextBlock))
        if not text:
            return ""
        if self._started and event.id != self._last_id:
            text = MESSAGE_SEPARATOR + text
        self._started = True
        self._last_id = event.id
        return text

    def opened(self, message_id: str) -> str:
        """What a streamed text block of *message_id* starts with: the separator or nothing."""
        text = MESSAGE_SEPARATOR if self._started and message_id != self._last_id else ""
        self._started = True
        self._last_id = message_id
        return text

    def added(self, message_id: str) -> None:
        """Text of *message_id* went out (a retry continuing a cut block has its own id)."""
        self._last_id = message_id


def chat_completion(
    events: Sequence[Event], *, completion_id: str, model: str, created: int
) -> dict[str, Any]:
    """The ``chat.completion`` object for a finished turn.

    The message's content is the text blocks of the turn's assistant messages, in order;
    the text of two different API messages (``AssistantMessage.id``) is separated by a
    blank line. The finish reason and the usage come from the `claude_trio.ResultMessage`.

    Args:
        events: Everything the turn yielded, ending with its `claude_trio.ResultMessage`.
        completion_id: The ``id`` (``chatcmpl-…``).
        model: The ``model`` to report.
        created: The ``created`` time, in Unix seconds.

    Raises:
        ValueError: If *events* does not end with a `claude_trio.ResultMessage`.
    """
    if not events or not isinstance(events[-1], ResultMessage):
        raise ValueError("the events of a finished turn end with a ResultMessage")
    result = events[-1]
    join = _TextJoin()
    text = "".join(join.piece(event) for event in events)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason(result.stop_reason),
            }
        ],
        "usage": chat_usage(result.usage),
        "system_fingerprint": None,
    }


class ChatStreamEncoder:
    """The ``chat.completion.chunk`` objects of a streamed turn, one per server-sent event.

    Call `start` once, `feed` with each event of the turn, and `finish` with its
    `claude_trio.ResultMessage`; send each chunk as ``data: <json>``, then ``data: [DONE]``. The
    content deltas, joined, are exactly the content `chat_completion` gives for the
    same events.

    With `claude_trio.StreamEvent` s (``partial_messages=True``) the text goes out as its
    deltas arrive, and the `claude_trio.AssistantMessage` that follows is not sent again
    (thinking is left out, as always). How the two views are merged, and what happens
    when a stream is cut short or disagrees with the session file, is described in
    :ref:`gateway-deltas`.

    Args:
        completion_id: The ``id`` of every chunk (``chatcmpl-…``).
        model: The ``model`` to report.
        created: The ``created`` time, in Unix seconds.
        include_usage: Whether every chunk has ``"usage": null`` and the stream ends with
            a chunk holding no choices and the usage (``stream_options.include_usage``).
    """

    def __init__(
        self, *, completion_id: str, model: str, created: int, include_usage: bool
    ) -> None:
        self._id = completion_id
        self._model = model
        self._created = created
        self._include_usage = include_usage
        self._join = _TextJoin()
        self._merger = DeltaMerger()
        self._state: Literal["new", "started", "finished"] = "new"

    def start(self) -> list[dict[str, Any]]:
        """The first chunk: the assistant's role and empty content.

        Raises:
            RuntimeError: If called twice.
        """
        self._expect("new", "start")
        self._state = "started"
        return [self._chunk({"role": "assistant", "content": ""})]

    def feed(self, event: Event) -> list[dict[str, Any]]:
        """The chunks for one event of the turn: a content delta for the text it lets out
        (an assistant message's, or a stream event's), nothing for anything else.

        Raises:
            RuntimeError: If called before `start` or after `finish`.
        """
        self._expect("started", "feed")
        return self._content(self._merger.feed(event))

    def finish(self, result: ResultMessage) -> list[dict[str, Any]]:
        """The last chunks: any text still to send, the finish reason, then the usage when
        it was asked for.

        Raises:
            RuntimeError: If called before `start`, or twice.
        """
        self._expect("started", "finish")
        self._state = "finished"
        chunks = self._content(self._merger.finish())
        chunks.append(self._chunk({}, finish_reason(result.stop_reason)))
        if self._include_usage:
            last = self._chunk({})
            last["choices"] = []
            last["usage"] = chat_usage(result.usage)
            chunks.append(last)
        return chunks

    def _content(self, steps: list[Step]) -> list[dict[str, Any]]:
        """One content chunk for the text that *steps* send, if any."""
        pieces = []
        for step in steps:
            if isinstance(step, WholeEvent):
                pieces.append(self._join.piece(step.event))
            elif isinstance(step, BlockOpened) and step.kind == "text":
                pieces.append(self._join.opened(step.message_id))
            elif isinstance(step, BlockText) and step.kind == "text":
                pieces.append(step.text)
                self._join.added(step.message_id)
        text = "".join(pieces)
        return [self._chunk({"content": text})] if text else []

    def _expect(self, state: str, method: str) -> None:
        if self._state != state:
            raise RuntimeError(f"ChatStreamEncoder.{method}() called when {self._state}")

    def _chunk(self, delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}],
        }
        if self._include_usage:
            chunk["usage"] = None
        return chunk
