"""_sse: content decoding, event-stream cutting and Messages API events, in bounded memory."""

from __future__ import annotations

import gzip
import itertools
import json
import tracemalloc
import zlib
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_trio import _sse
from claude_trio._sse import (
    ContentDecoder,
    SseDecoder,
    SseMessage,
    content_decoder,
    parse_stream_event,
)
from claude_trio.testing import ReplyUsage, text_reply, thinking_reply
from claude_trio.testing._replies import encode_stream

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

PIECE = 64 * 1024


def _chunks(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    edges = [0, *points, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(edges)]


def _decode_all(decoder: ContentDecoder, chunks: Iterable[bytes]) -> bytes:
    out = bytearray()
    for chunk in chunks:
        for piece in decoder.decode(chunk):
            assert 0 < len(piece) <= PIECE
            out += piece
    for piece in decoder.flush():
        assert 0 < len(piece) <= PIECE
        out += piece
    return bytes(out)


def _feed_all(decoder: SseDecoder, chunks: Iterable[bytes]) -> list[SseMessage]:
    return [message for chunk in chunks for message in decoder.feed(chunk)]


def _decoder(encoding: str | None) -> ContentDecoder:
    decoder = content_decoder(encoding)
    assert decoder is not None
    return decoder


# --- content decoding ---------------------------------------------------------------------


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "deflate-raw": _raw_deflate,
}


@settings(max_examples=60)
@given(
    data=st.binary(max_size=3000) | st.binary(max_size=40).map(lambda b: b * 5000),
    encoding=st.sampled_from(sorted(ENCODERS)),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
)
def test_gzip_and_deflate_round_trip_in_any_chunking(
    data: bytes, encoding: str, cuts: list[int]
) -> None:
    encoded = ENCODERS[encoding](data)
    header = encoding.removesuffix("-raw")
    assert _decode_all(_decoder(header), _chunks(encoded, cuts)) == data


@given(data=st.binary(max_size=200_000), cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_identity_passes_bytes_through_in_capped_pieces(data: bytes, cuts: list[int]) -> None:
    for encoding in (None, "", "identity", " Identity "):
        assert _decode_all(_decoder(encoding), _chunks(data, cuts)) == data


def test_gzip_members_one_after_another_and_stacked_codings() -> None:
    members = gzip.compress(b"first ") + gzip.compress(b"second")
    assert _decode_all(_decoder("gzip"), [members]) == b"first second"
    stacked = gzip.compress(zlib.compress(b"inner"))
    assert _decode_all(_decoder("deflate, GZIP"), [stacked[:5], stacked[5:]]) == b"inner"


def test_a_bomb_is_decoded_in_bounded_memory() -> None:
    size = 64 << 20
    bomb = gzip.compress(b"\0" * size, 9)
    decoder = _decoder("gzip")
    total = 0
    tracemalloc.start()
    try:
        for start in range(0, len(bomb), PIECE):
            for piece in decoder.decode(bomb[start : start + PIECE]):
                total += len(piece)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert list(decoder.flush()) == []
    assert total == size
    assert peak < 1 << 20  # for 64 MiB out


@pytest.mark.parametrize(
    "encoding", ["compress", "gzip;q=1", "br, bogus", "zstd-dict", "x-compress"]
)
def test_unknown_encodings_give_none(encoding: str) -> None:
    assert content_decoder(encoding) is None


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", b"not gzip at all"),
        ("gzip", gzip.compress(b"hello")[:-3]),
        ("gzip", gzip.compress(b"hello") + b"trailing junk"),
        ("deflate", zlib.compress(b"hello")[:8] + b"\xff" * 8),
        ("deflate", zlib.compress(b"hello world")[:-6]),
        ("deflate", b"x"),
    ],
    ids=["garbage", "truncated", "junk-member", "corrupt-deflate", "short-deflate", "one-byte"],
)
def test_a_corrupt_or_cut_body_raises_value_error(encoding: str, body: bytes) -> None:
    with pytest.raises(ValueError, match=encoding):
        _decode_all(_decoder(encoding), [body])


def test_an_empty_body_is_not_an_error() -> None:
    for encoding in ("gzip", "deflate"):
        assert _decode_all(_decoder(encoding), [b""]) == b""


@pytest.mark.parametrize(
    ("library", "encoding"),
    [("brotli", "br"), ("brotlicffi", "br"), ("backports.zstd", "zstd"), ("zstandard", "zstd")],
)
def test_br_and_zstd_with_each_library(
    library: str, encoding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = pytest.importorskip(library)
    monkeypatch.setattr(_sse, "_optional_module", lambda name: module if name == library else None)
    compress = module.ZstdCompressor().compress if library == "zstandard" else module.compress
    data = b"streamed " * 40_000
    blob = compress(data) + (compress(b" and more") if encoding == "zstd" else b"")
    expected = data + (b" and more" if encoding == "zstd" else b"")
    assert _decode_all(_decoder(encoding), _chunks(blob, range(0, len(blob), 777))) == expected
    bomb = compress(b"\0" * (16 << 20))
    assert _decode_all(_decoder(encoding), [bomb]) == b"\0" * (16 << 20)
    with pytest.raises(ValueError, match=encoding):
        _decode_all(_decoder(encoding), [blob[: len(blob) // 2]])
    with pytest.raises(ValueError, match=encoding):
        _decode_all(_decoder(encoding), [b"\x00\x01\x02 not compressed at all" * 4])


def test_br_and_zstd_without_a_library_give_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sse, "_optional_module", lambda name: None)
    assert content_decoder("br") is None
    assert content_decoder("zstd") is None
    assert content_decoder("gzip, zstd") is None


# --- the event stream ---------------------------------------------------------------------

_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"),
    max_size=12,
)
_TERMINATORS = st.sampled_from(["\n", "\r", "\r\n"])


@st.composite
def _events(draw: st.DrawFn) -> tuple[str, str, str | None]:
    """One event as (type, data, id): what a stream that encodes it must decode to."""
    event = draw(st.sampled_from(["", "message", "content_block_delta", "é vent"]))
    lines = draw(st.lists(_TEXT, min_size=1, max_size=3))
    event_id = draw(st.none() | _TEXT.filter(lambda text: "\0" not in text))
    return event, "\n".join(lines), event_id


@st.composite
def _streams(draw: st.DrawFn) -> tuple[bytes, list[SseMessage]]:
    """A stream with CR/LF/CRLF mixes, comments, BOM, multibyte text, and its events."""
    lines: list[str] = []
    expected: list[SseMessage] = []
    last_id: str | None = None
    for event, data, event_id in draw(st.lists(_events(), max_size=6)):
        if draw(st.booleans()):
            lines.append(":" + draw(_TEXT))
        if event:
            lines.append(f"event:{draw(st.sampled_from(['', ' ']))}{event}")
        for line in data.split("\n"):
            space = " " if line.startswith(" ") or draw(st.booleans()) else ""
            lines.append(f"data:{space}{line}")
        if event_id is not None:
            lines.append(f"id: {event_id}")
            last_id = event_id
        if draw(st.booleans()):
            lines.append(f"retry: {draw(st.integers(0, 9999))}")
        lines.append("")
        expected.append(SseMessage(event=event or "message", data=data, id=last_id))
    if draw(st.booleans()):
        lines += ["event: lost", "", "id", ""]  # without data, no event
    encoded = bytearray(b"\xef\xbb\xbf" if draw(st.booleans()) else b"")
    previous = ""
    for line in lines:
        terminator = draw(_TERMINATORS)
        if previous == "\r" and not line and terminator == "\n":
            terminator = "\r\n"  # a CR then a lone LF is one CRLF: a real writer avoids it
        encoded += line.encode() + terminator.encode()
        previous = terminator
    return bytes(encoded), expected


@settings(max_examples=300)
@given(stream=_streams(), cuts=st.lists(st.integers(min_value=0), max_size=20))
def test_any_chunking_gives_the_events_of_the_whole_stream(
    stream: tuple[bytes, list[SseMessage]], cuts: list[int]
) -> None:
    encoded, expected = stream
    whole = SseDecoder().feed(encoded)
    assert whole == expected
    assert _feed_all(SseDecoder(), _chunks(encoded, cuts)) == expected
    one_by_one = SseDecoder()
    assert _feed_all(one_by_one, [encoded[i : i + 1] for i in range(len(encoded))]) == expected
    assert not one_by_one.overflowed


@settings(max_examples=200)
@given(
    data=st.binary(max_size=400)
    | st.lists(
        st.sampled_from([b"data:", b" x", b"\r", b"\n", b":", b"\xef\xbb\xbf", b"\xc3"])
    ).map(b"".join),
    cuts=st.lists(st.integers(min_value=0), max_size=10),
    bound=st.integers(min_value=1, max_value=64),
)
def test_any_bytes_any_chunking_same_events_and_same_overflow(
    data: bytes, cuts: list[int], bound: int
) -> None:
    whole = SseDecoder(max_event_bytes=bound)
    chunked = SseDecoder(max_event_bytes=bound)
    assert whole.feed(data) == _feed_all(chunked, _chunks(data, cuts))
    assert whole.overflowed == chunked.overflowed


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        (b"data: a\ndata:  b\n\n", [SseMessage(event="message", data="a\n b")]),
        (b"data\n\ndata:\n\n", [SseMessage(event="message", data="")] * 2),
        (b"event: x\ndata: 1\r\n\r\n", [SseMessage(event="x", data="1")]),
        (b": comment\rdata: c\r\r", [SseMessage(event="message", data="c")]),
        (b"data: \xe2\x82\n\n", [SseMessage(event="message", data="\ufffd")]),
        (b"\xef\xbb\xbf\xef\xbb\xbfdata: bom\n\n", []),
        (
            b"id: 1\ndata: a\n\ndata: b\n\n",
            [SseMessage(event="message", data=x, id="1") for x in "ab"],
        ),
        (b"id: \x00\ndata: a\n\n", [SseMessage(event="message", data="a")]),
        (b"data: a\n", []),
        (b"event: e\n\ndata: d\n\n", [SseMessage(event="message", data="d")]),
        (b"Data: no\nfoo: bar\ndata:yes\n\n", [SseMessage(event="message", data="yes")]),
    ],
    ids=[
        "join",
        "empty-data",
        "crlf",
        "cr",
        "bad-utf8",
        "second-bom",
        "id-carries",
        "nul-id",
        "unfinished",
        "type-reset",
        "unknown-fields",
    ],
)
def test_whatwg_rules(stream: bytes, expected: list[SseMessage]) -> None:
    assert SseDecoder().feed(stream) == expected


def test_retry_field_and_utf8_split_inside_a_character() -> None:
    decoder = SseDecoder()
    encoded = "data: é€😀\n\n".encode()
    assert _feed_all(decoder, [encoded[:8], encoded[8:10], encoded[10:]]) == [
        SseMessage(event="message", data="é€😀")
    ]
    decoder.feed(b"retry: 1500\nretry: soon\n")
    assert decoder.retry == 1500


def test_an_event_over_the_bound_overflows_and_drops_its_memory() -> None:
    decoder = SseDecoder(max_event_bytes=1 << 20)
    assert decoder.feed(b"data: small\n\ndata: ") == [SseMessage(event="message", data="small")]
    chunk = b"x" * PIECE
    tracemalloc.start()
    try:
        for _ in range(64):  # 4 MiB of one event
            assert decoder.feed(chunk) == []
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert decoder.overflowed
    assert peak < 1.5 * (1 << 20)
    assert decoder.feed(b"\n\ndata: later\n\n") == []
    assert decoder._buffer == bytearray()


def test_many_lines_of_one_event_count_towards_the_bound() -> None:
    decoder = SseDecoder(max_event_bytes=100)
    line = b"data: 12345678\n"  # 14 bytes held, 7 fit in 100
    assert decoder.feed(line * 7 + b"\n") == [
        SseMessage(event="message", data="\n".join(["12345678"] * 7))
    ]
    assert not decoder.overflowed
    assert (decoder.feed(line * 8 + b"\n"), decoder.overflowed) == ([], True)
    with pytest.raises(ValueError, match="max_event_bytes"):
        SseDecoder(max_event_bytes=0)


def test_events_before_an_overflow_in_the_same_feed_are_returned() -> None:
    decoder = SseDecoder(max_event_bytes=20)
    events = decoder.feed(b"data: a\n\ndata: " + b"y" * 30 + b"\n\ndata: b\n\n")
    assert events == [SseMessage(event="message", data="a")]
    assert decoder.overflowed


# --- Messages API events ------------------------------------------------------------------


def _api_stream(text: str) -> bytes:
    reply = text_reply(text)
    chunks = encode_stream(reply, message_id="msg_1", model="m", usage=ReplyUsage(3, 4))
    return b"".join(data for _, data in chunks)


@settings(max_examples=50)
@given(
    text=st.text(min_size=1, max_size=80),
    cuts=st.lists(st.integers(min_value=0), max_size=12),
    encoding=st.sampled_from([None, "gzip", "deflate"]),
)
def test_a_messages_api_stream_parses_to_its_events_and_text(
    text: str, cuts: list[int], encoding: str | None
) -> None:
    body = _api_stream(text)
    if encoding is not None:
        body = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
    decoder, sse = _decoder(encoding), SseDecoder()
    events: list[dict[str, Any]] = []
    for chunk in _chunks(body, cuts):
        for piece in decoder.decode(chunk):
            events += filter(None, map(parse_stream_event, sse.feed(piece)))
    for piece in decoder.flush():
        events += filter(None, map(parse_stream_event, sse.feed(piece)))
    types = [event["type"] for event in events]
    deltas = types.count("content_block_delta")
    assert types == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert deltas >= 1
    assert "".join(event["delta"]["text"] for event in events[2 : 2 + deltas]) == text


def test_thinking_stream_keeps_its_order() -> None:
    chunks = encode_stream(
        thinking_reply("hmm ok", text="done", signature="sig"),
        message_id="msg_2",
        model="m",
        usage=ReplyUsage(1, 1),
    )
    messages = SseDecoder().feed(b"".join(data for _, data in chunks))
    assert [message.event for message in messages].count("ping") == 1
    parsed = [parse_stream_event(message) for message in messages]
    events = [event for event in parsed if event is not None]
    assert [event["type"] for event in events] == [
        message.event for message in messages if message.event != "ping"
    ]
    deltas = [event["delta"]["type"] for event in events if event["type"] == "content_block_delta"]
    assert deltas == ["thinking_delta", "thinking_delta", "signature_delta", "text_delta"]


@pytest.mark.parametrize(
    ("event", "data"),
    [
        ("ping", '{"type": "ping"}'),
        ("message", '{"type": "ping"}'),
        ("message_start", "not json"),
        ("message_start", "[1, 2]"),
        ("message_start", '{"type": 3}'),
        ("message_start", '{"no": "type"}'),
        ("message_start", "[" * 100_000),
        ("message_start", ""),
    ],
)
def test_anything_but_an_event_object_gives_none(event: str, data: str) -> None:
    assert parse_stream_event(SseMessage(event=event, data=data)) is None


def test_an_error_event_is_an_event() -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    message = SseMessage(event="error", data=json.dumps(body))
    assert parse_stream_event(message) == body
