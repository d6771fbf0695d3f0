"""The cattrs layer: session JSONL lines to record models, events to Anthropic JSON.

`make_converter` builds a fresh, fully configured `cattrs.Converter`; this module keeps one
private instance, configured at import and never changed afterwards. Nothing else in the
library touches cattrs.

Records (`claude_trio._records`):

* The ``type`` key selects the model through ``configure_tagged_union``; an unknown type
  becomes ``UnknownRecord(raw=…)``, and an unknown content-block type inside a message
  ``UnknownBlockRecord(raw=…)``. Neither is an error.
* camelCase wire keys map to snake_case attributes through one hook factory that builds
  ``override(rename=…)`` for every field (see `wire_key`).
* Keys no model knows are ignored; `parse_record` reports them so that callers can count
  them. A converter made with ``forbid_extra_keys=True`` rejects them instead (the tests
  use it to notice format drift in the CLI).
* Primitive fields are checked strictly: a string where a number belongs is an error, not a
  coercion.

Events (`claude_trio._events`) unstructure to the exact JSON of the Anthropic Messages API
(`to_anthropic`), and structure back from it (`from_anthropic`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Mapping
from operator import attrgetter
from types import MappingProxyType, UnionType
from typing import Any, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.strategies import configure_tagged_union

from . import _records as rec
from ._errors import MessageParseError
from ._events import (
    AssistantMessage,
    ContentBlock,
    Event,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    Usage,
    UserMessage,
)

__all__ = [
    "ParsedRecord",
    "from_anthropic",
    "make_converter",
    "parse_record",
    "to_anthropic",
    "wire_key",
]

_KnownRecord: Any = Union[rec.KNOWN_RECORDS]  # noqa: UP007 (built from a tuple at runtime)
_KnownBlock: Any = Union[rec.KNOWN_BLOCKS]  # noqa: UP007
_ResultContent: Any = str | tuple[dict[str, Any], ...]
_UserEventContent: Any = str | tuple[ContentBlock, ...]
_RecordUnion: Any = rec.Record
_EventUnion: Any = Event
_AnthropicUnion: Any = Event | ContentBlock

#: Event fields that are session metadata, not part of the Anthropic message shape.
_NOT_IN_API_SHAPE = frozenset(
    {"session_id", "uuid", "parent_uuid", "timestamp", "is_meta", "prompt_id", "prompt_source"}
)


# --- names ----------------------------------------------------------------------------------


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def wire_key(cls: type[Any], field: attrs.Attribute[Any]) -> str:
    """Return the JSON key under which the CLI writes *field* of record model *cls*.

    Args:
        cls: A model from `claude_trio._records`.
        field: One of its attrs fields.

    Returns:
        The key named in the field's metadata; otherwise the camelCase form of the
        attribute for `claude_trio._records.CamelCase` models, and the attribute name
        itself for the Anthropic-shaped parts.
    """
    explicit: str | None = field.metadata.get(rec.WIRE_KEY)
    if explicit is not None:
        return explicit
    if issubclass(cls, rec.CamelCase):
        return _camel(field.name)
    return field.name


def _is_record_model(cls: Any) -> bool:
    return (
        isinstance(cls, type)
        and attrs.has(cls)
        and cls.__module__ == rec.__name__
        and cls not in (rec.UnknownRecord, rec.UnknownBlockRecord)
    )


def _renames(cls: type[Any]) -> dict[str, Any]:
    return {
        field.name: override(rename=key)
        for field in attrs.fields(cls)
        if (key := wire_key(cls, field)) != field.name
    }


# --- strict primitives and raw JSON ----------------------------------------------------------


def _type_error(expected: str, value: object) -> TypeError:
    return TypeError(f"expected {expected}, got {type(value).__name__}")


def _structure_str(value: object, _: object) -> str:
    if type(value) is str:
        return value
    raise _type_error("a string", value)


def _structure_int(value: object, _: object) -> int:
    if type(value) is int:
        return value
    raise _type_error("an integer", value)


def _structure_float(value: object, _: object) -> float:
    if type(value) is float or type(value) is int:
        return float(value)
    raise _type_error("a number", value)


def _structure_count_or_null(value: object, _: object) -> int:
    return 0 if value is None else _structure_int(value, int)


def _structure_bool(value: object, _: object) -> bool:
    if type(value) is bool:
        return value
    raise _type_error("a boolean", value)


def _structure_datetime(value: object, _: object) -> dt.datetime:
    if type(value) is not str:
        raise _type_error("an ISO 8601 timestamp string", value)
    return dt.datetime.fromisoformat(value)


def _unstructure_datetime(value: dt.datetime) -> str:
    # The CLI writes UTC with milliseconds and a "Z"; keep that form so records round-trip.
    if value.utcoffset() == dt.timedelta(0):
        spec = "milliseconds" if value.microsecond % 1000 == 0 else "microseconds"
        return value.replace(tzinfo=None).isoformat(timespec=spec) + "Z"
    return value.isoformat()


def _structure_json_object(value: object, _: object) -> dict[str, Any]:
    if type(value) is dict:
        return value
    raise _type_error("a JSON object", value)


def _structure_json_array(value: object, _: object) -> list[Any]:
    if type(value) is list:
        return value
    raise _type_error("a JSON array", value)


def _configure_primitives(c: cattrs.Converter) -> None:
    c.register_structure_hook(str, _structure_str)
    c.register_structure_hook(int, _structure_int)
    c.register_structure_hook(float, _structure_float)
    c.register_structure_hook(bool, _structure_bool)
    c.register_structure_hook(dt.datetime, _structure_datetime)
    c.register_unstructure_hook(dt.datetime, _unstructure_datetime)
    c.register_structure_hook_func(lambda tp: tp == dict[str, Any], _structure_json_object)
    c.register_structure_hook_func(lambda tp: tp == list[Any], _structure_json_array)


# --- records ---------------------------------------------------------------------------------


def _structure_record_fn(cls: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    return make_dict_structure_fn(cls, converter, **_renames(cls))


def _unstructure_record_fn(cls: Any, converter: cattrs.Converter) -> Callable[[Any], Any]:
    return make_dict_unstructure_fn(cls, converter, _cattrs_omit_if_default=True, **_renames(cls))


def _register_text_or_blocks(c: cattrs.Converter, union: Any, blocks: Any) -> None:
    """Hooks for content that is a string or a list of blocks (*union* = str | *blocks*)."""
    structure_blocks = c.get_structure_hook(blocks)
    unstructure_blocks = c.get_unstructure_hook(blocks)

    def structure(value: object, _: object) -> Any:
        if type(value) is str:
            return value
        if type(value) is list:
            return structure_blocks(value, blocks)
        raise _type_error("a string or a list of content blocks", value)

    c.register_structure_hook(union, structure)
    c.register_unstructure_hook(
        union, lambda value: value if isinstance(value, str) else unstructure_blocks(value)
    )


def _configure_records(c: cattrs.Converter) -> None:
    c.register_structure_hook_factory(_is_record_model, _structure_record_fn)
    c.register_unstructure_hook_factory(_is_record_model, _unstructure_record_fn)
    for unknown in (rec.UnknownRecord, rec.UnknownBlockRecord):
        c.register_structure_hook(unknown, lambda value, cls: cls(raw=value))
        c.register_unstructure_hook(unknown, lambda value: dict(value.raw))

    def structure_result_content(value: object, _: object) -> str | list[Any] | None:
        if value is None or type(value) is str or type(value) is list:
            return value
        raise _type_error("a string or a list of content blocks", value)

    c.register_structure_hook(str | list[Any] | None, structure_result_content)

    configure_tagged_union(
        _KnownBlock,
        c,
        tag_name="type",
        tag_generator=attrgetter("block_type"),
        default=rec.UnknownBlockRecord,
    )
    _alias_with_unknown(c, rec.BlockRecord, _KnownBlock, rec.UnknownBlockRecord)

    _register_text_or_blocks(c, rec.UserContent, tuple[rec.BlockRecord, ...])

    configure_tagged_union(
        _KnownRecord,
        c,
        tag_name="type",
        tag_generator=attrgetter("record_type"),
        default=rec.UnknownRecord,
    )
    _alias_with_unknown(c, rec.Record, _KnownRecord, rec.UnknownRecord)


def _alias_with_unknown(c: cattrs.Converter, alias: Any, known: Any, unknown: type[Any]) -> None:
    """Make *alias* (= *known* | *unknown*) structure like *known* and unstructure by class."""
    c.register_structure_hook(alias, c.get_structure_hook(known))
    unstructure_known = c.get_unstructure_hook(known)

    def unstructure(value: Any) -> Any:
        if isinstance(value, unknown):
            return c.unstructure(value, unknown)
        return unstructure_known(value)

    c.register_unstructure_hook(alias, unstructure)


# --- events ----------------------------------------------------------------------------------


def _configure_events(c: cattrs.Converter) -> None:
    for block in get_args(ContentBlock):
        # Put "type" first, as the API does; the tagged union then sets the same key again.
        unstructure_block = make_dict_unstructure_fn(block, c)
        c.register_unstructure_hook(block, _with_constants(unstructure_block, {"type": block.type}))
    configure_tagged_union(ContentBlock, c, tag_name="type", tag_generator=attrgetter("type"))

    _register_text_or_blocks(c, _UserEventContent, tuple[ContentBlock, ...])

    def structure_result_content(value: object, _: object) -> str | tuple[dict[str, Any], ...]:
        if type(value) is str:
            return value
        if type(value) is list and all(type(item) is dict for item in value):
            return tuple(value)
        raise _type_error("a string or a list of JSON objects", value)

    c.register_structure_hook(_ResultContent, structure_result_content)
    c.register_unstructure_hook(
        _ResultContent,
        lambda value: value if isinstance(value, str) else [dict(item) for item in value],
    )

    # The API may send null for the cache counters; they are plain counts here.
    zero_if_null = override(struct_hook=_structure_count_or_null)
    c.register_structure_hook(
        Usage,
        make_dict_structure_fn(
            Usage,
            c,
            cache_creation_input_tokens=zero_if_null,
            cache_read_input_tokens=zero_if_null,
        ),
    )

    _register_api_shape(c, AssistantMessage, {"type": "message", "role": "assistant"})
    _register_api_shape(c, UserMessage, {"role": "user"})
    for cls, tag in (
        (SystemMessage, "system"),
        (ResultMessage, "result"),
        (StreamEvent, "stream_event"),
    ):
        unstructure_fields = make_dict_unstructure_fn(cls, c)
        c.register_unstructure_hook(cls, _with_constants(unstructure_fields, {"type": tag}))

    c.register_structure_hook(_EventUnion, _structure_by_tag(c, _EVENT_TAGS))
    c.register_structure_hook(_AnthropicUnion, _structure_by_tag(c, {**_EVENT_TAGS, **_BLOCK_TAGS}))
    c.register_unstructure_hook(_EventUnion, lambda value: c.unstructure(value, type(value)))


def _register_api_shape(c: cattrs.Converter, cls: type[Any], constants: dict[str, str]) -> None:
    omitted: dict[str, Any] = {
        field.name: override(omit=True)
        for field in attrs.fields(cls)
        if field.name in _NOT_IN_API_SHAPE
    }
    unstructure_fields = make_dict_unstructure_fn(cls, c, **omitted)
    c.register_unstructure_hook(cls, _with_constants(unstructure_fields, constants))


def _with_constants(
    unstructure_fields: Callable[[Any], dict[str, Any]], constants: dict[str, str]
) -> Callable[[Any], dict[str, Any]]:
    def unstructure(value: Any) -> dict[str, Any]:
        return {**constants, **unstructure_fields(value)}

    return unstructure


_EVENT_TAGS: Mapping[tuple[object, object], type[Any]] = {
    ("message", "assistant"): AssistantMessage,
    (None, "assistant"): AssistantMessage,
    (None, "user"): UserMessage,
    ("system", None): SystemMessage,
    ("result", None): ResultMessage,
    ("stream_event", None): StreamEvent,
}
_BLOCK_TAGS: Mapping[tuple[object, object], type[Any]] = {
    (block.type, None): block for block in get_args(ContentBlock)
}


def _structure_by_tag(
    c: cattrs.Converter, tags: Mapping[tuple[object, object], type[Any]]
) -> Callable[[object, object], Any]:
    def structure(value: object, _: object) -> Any:
        if type(value) is not dict:
            raise _type_error("a JSON object", value)
        cls = tags.get((value.get("type"), value.get("role")))
        if cls is None:
            raise ValueError(
                f"unknown 'type' {value.get('type')!r} and 'role' {value.get('role')!r}"
            )
        return c.structure(value, cls)

    return structure


# --- the converter -------------------------------------------------------------------------


def make_converter(*, forbid_extra_keys: bool = False) -> cattrs.Converter:
    """Build a new converter for session records and events.

    Each call returns a fresh converter; configure it further as you like without
    affecting anyone else.

    Args:
        forbid_extra_keys: Reject record and event JSON that has keys the models do not
            know, instead of ignoring them. The test suite uses this to notice changes in
            the CLI's format; the library itself ignores (and counts) unknown keys.

    Returns:
        A `cattrs.Converter` that structures the JSON of session records into
        ``claude_trio._records`` models and the JSON of the Anthropic Messages API into
        events, and unstructures events into that API JSON.
    """
    c = cattrs.Converter(forbid_extra_keys=forbid_extra_keys)
    _configure_primitives(c)
    _configure_records(c)
    _configure_events(c)
    return c


_CONVERTER = make_converter()


def to_anthropic(value: Event | ContentBlock) -> dict[str, Any]:
    """Return the JSON (as Python objects) of *value* in the Anthropic Messages API shape.

    An `AssistantMessage` becomes a ``Message`` (``{"id", "type": "message", "role":
    "assistant", "model", "content", "stop_reason", "stop_sequence", "usage"}``), a
    `UserMessage` a ``MessageParam`` (``{"role": "user", "content"}``), and a content block
    its API block. Session metadata (``uuid``, ``session_id`` …, ``is_meta``) is not part of
    that shape and is left out. `SystemMessage` and `ResultMessage` have no API counterpart;
    they become ``{"type": "system", …}`` and ``{"type": "result", …}`` with every field.

    Args:
        value: An event or a content block.

    Returns:
        A dict ready for `json.dumps`.
    """
    result: dict[str, Any] = _CONVERTER.unstructure(value, type(value))
    return result


def from_anthropic(data: Mapping[str, Any]) -> Event | ContentBlock:
    """Build an event or a content block from its JSON, the inverse of `to_anthropic`.

    The JSON says what it is: an API ``Message`` (``"type": "message"``) or an object with
    ``"role": "assistant"`` gives an `AssistantMessage`, ``"role": "user"`` a `UserMessage`,
    ``"type": "text"`` … a content block, and ``"type": "system"`` / ``"result"`` the
    other events. Keys outside the model (``container``, ``citations`` …) are ignored,
    and the session metadata of the messages is None.

    Args:
        data: The JSON object, as Python objects.

    Returns:
        The new event or block.

    Raises:
        MessageParseError: If *data* is none of these, or does not fit its model.
    """
    try:
        result: Event | ContentBlock = _CONVERTER.structure(data, _AnthropicUnion)
    except (cattrs.BaseValidationError, TypeError, ValueError) as exc:
        raise MessageParseError(
            "not an Anthropic message or content block",
            line=_preview(data),
            detail=_explain(exc),
        ) from exc
    return result


# --- parsing one line ------------------------------------------------------------------------


@attrs.frozen
class ParsedRecord:
    """One session record, parsed.

    Attributes:
        record: The record model (``UnknownRecord`` for an unknown type).
        raw: The JSON object the record was built from.
        ignored: Dotted paths of the keys in *raw* that no model knows, and
            ``…content[type=X]`` for content blocks of unknown type X.
    """

    record: rec.Record
    raw: dict[str, Any]
    ignored: tuple[str, ...] = ()


def parse_record(
    data: str | bytes | bytearray | Mapping[str, Any],
    *,
    path: str | os.PathLike[str] | None = None,
    line_number: int | None = None,
) -> ParsedRecord:
    """Parse one line of a session JSONL file (or its already-decoded JSON object).

    Args:
        data: The line (with or without its newline), or the decoded JSON object.
        path: The file the line came from, for the error message.
        line_number: The 1-based line number in that file, for the error message.

    Returns:
        The record, the JSON it came from, and the unknown keys it held.

    Raises:
        MessageParseError: If the line is not JSON, not a JSON object, has a ``type`` that
            is not a string, or is a known record type whose fields do not fit its model.
    """
    where: dict[str, Any] = {
        "path": None if path is None else os.fspath(path),
        "line_number": line_number,
    }
    raw: object = data
    if isinstance(data, str | bytes | bytearray):
        try:
            raw = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise MessageParseError(
                "session record is not JSON", line=_shown(data), detail=str(exc), **where
            ) from exc
    elif isinstance(data, Mapping) and type(data) is not dict:
        raw = dict(data)
    if type(raw) is not dict:
        raise MessageParseError(
            "session record is not a JSON object",
            line=_shown(data),
            detail=f"got {type(raw).__name__}",
            **where,
        )
    tag = raw.get("type")
    if tag is not None and type(tag) is not str:
        raise MessageParseError(
            "session record has a non-string 'type'",
            line=_shown(data),
            detail=f"got {type(tag).__name__}",
            **where,
        )
    try:
        record: rec.Record = _CONVERTER.structure(raw, _RecordUnion)
    except (cattrs.BaseValidationError, RecursionError) as exc:
        raise MessageParseError(
            f"malformed {tag!r} record", line=_shown(data), detail=_explain(exc), **where
        ) from exc
    if isinstance(record, rec.UnknownRecord):
        return ParsedRecord(record, raw)
    ignored: list[str] = []
    _collect_ignored(raw, _PLANS[type(record)], "", ignored)
    return ParsedRecord(record, raw, tuple(ignored))


def unstructure_record(record: rec.Record) -> dict[str, Any]:
    """Return the JSON object of *record* as the CLI would write it.

    Fields at their default (None, False) are left out, as the CLI leaves most of them out.
    """
    result: dict[str, Any] = _CONVERTER.unstructure(record, _RecordUnion)
    return result


def _shown(data: object) -> str:
    if isinstance(data, str):
        return data.rstrip("\n")
    if isinstance(data, bytes | bytearray):
        return bytes(data).decode("utf-8", "replace").rstrip("\n")
    return _preview(data)


def _preview(value: object) -> str:
    try:
        return json.dumps(value, default=repr)[:1000]
    except (ValueError, TypeError, RecursionError):
        return repr(value)[:1000]


def _explain(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc))
    return f"{type(exc).__name__}: {exc}"


# --- unknown keys ----------------------------------------------------------------------------
#
# For each record model, a plan says which wire keys it knows and where, below it, other
# models sit (one object, a list of content blocks, a mapping of objects). Walking the raw
# JSON with it finds the keys that the (lenient) converter silently dropped.


@attrs.frozen
class _Plan:
    known: frozenset[str]
    children: tuple[tuple[str, _Child], ...]


@attrs.frozen
class _Child:
    kind: str  # "object", "blocks" or "mapping"
    plan: _Plan | None = None


def _make_plans() -> tuple[Mapping[type[Any], _Plan], Mapping[str, _Plan]]:
    plans: dict[type[Any], _Plan] = {}

    def plan_of(cls: type[Any]) -> _Plan:
        if cls not in plans:
            fields = attrs.fields(attrs.resolve_types(cls))
            known = {wire_key(cls, field) for field in fields}
            if hasattr(cls, "record_type") or hasattr(cls, "block_type"):
                known.add("type")
            children = tuple(
                (wire_key(cls, field), child)
                for field in fields
                if (child := child_of(field.type)) is not None
            )
            plans[cls] = _Plan(frozenset(known), children)
        return plans[cls]

    def child_of(tp: Any) -> _Child | None:
        origin, args = get_origin(tp), get_args(tp)
        if _is_record_model(tp):
            return _Child("object", plan_of(tp))
        if origin is tuple and args[0] == rec.BlockRecord:
            return _Child("blocks")
        if origin is dict and _is_record_model(args[1]):
            return _Child("mapping", plan_of(args[1]))
        if origin in (Union, UnionType):
            return next((c for arg in args if (c := child_of(arg)) is not None), None)
        return None

    for record in rec.KNOWN_RECORDS:
        plan_of(record)
    blocks = {block.block_type: plan_of(block) for block in rec.KNOWN_BLOCKS}
    return MappingProxyType(plans), MappingProxyType(blocks)


_PLANS, _BLOCK_PLANS = _make_plans()


def _collect_ignored(raw: dict[str, Any], plan: _Plan, prefix: str, out: list[str]) -> None:
    out.extend(prefix + key for key in raw.keys() - plan.known)
    for key, child in plan.children:
        value = raw.get(key)
        if child.kind == "blocks":
            if type(value) is list:
                _collect_ignored_blocks(value, f"{prefix}{key}", out)
        elif type(value) is dict and child.plan is not None:
            if child.kind == "object":
                _collect_ignored(value, child.plan, f"{prefix}{key}.", out)
            else:
                for item in value.values():
                    if type(item) is dict:
                        _collect_ignored(item, child.plan, f"{prefix}{key}.*.", out)


def _collect_ignored_blocks(blocks: list[Any], prefix: str, out: list[str]) -> None:
    for block in blocks:
        if type(block) is not dict:
            continue
        tag = block.get("type")
        plan = _BLOCK_PLANS.get(tag) if type(tag) is str else None
        if plan is None:
            out.append(f"{prefix}[type={tag}]")
        else:
            _collect_ignored(block, plan, f"{prefix}[].", out)
