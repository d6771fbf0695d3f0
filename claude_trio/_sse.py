"""Read a streamed Messages API response body as server-sent events, in bounded memory.

Pure, no I/O: the relay hands over the body bytes as they pass through it and gets the
events back. Three steps, each usable alone:

* `content_decoder` undoes the body's ``Content-Encoding`` (gzip, deflate, and brotli or
  zstd when a library for them is installed). Output comes in pieces of at most 64 KiB,
  however much a piece of input expands, so a decompression bomb costs time, not memory.
* `SseDecoder` cuts the decoded bytes into events by the WHATWG ``text/event-stream``
  rules, and gives up (`SseDecoder.overflowed`) rather than hold an event larger than
  its bound.
* `parse_stream_event` reads an event's data as the Messages API's JSON event.
"""

from __future__ import annotations

import importlib
import itertools
import json
import re
import zlib
from functools import cache
from typing import TYPE_CHECKING, Any, Final, Protocol, cast, final

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator

_PIECE: Final = 64 * 1024
# python-zstandard cannot cap the output of one call, but a zstd block yields at most
# 128 KiB and takes at least 4 bytes: input this small yields a few blocks at most.
_ZSTANDARD_SLICE: Final = 16
_GZIP_WBITS: Final = 16 + zlib.MAX_WBITS
_BOM: Final = b"\xef\xbb\xbf"
_LINE_END_RE: Final = re.compile(rb"\r\n|\r|\n")


class _Stage(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]: ...

    def end(self) -> Iterator[bytes]: ...


@final
class ContentDecoder:
    """Undoes a response's ``Content-Encoding`` incrementally; get one from `content_decoder`.

    Feed the body as it arrives to `decode`, then call `flush` once at its end. Each call
    returns an iterator: consume it fully before the next call. Every piece it yields is
    at most 64 KiB, and memory held stays bounded whatever the input expands to.
    """

    def __init__(self, stages: tuple[_Stage, ...]) -> None:
        self._stages = stages

    def decode(self, data: bytes) -> Iterator[bytes]:
        """Yield the decoded bytes that ``data``, the next piece of the body, completes.

        Raises:
            ValueError: The body is not validly encoded.
        """
        pieces: Iterator[bytes] = _slices(data)
        for stage in self._stages:
            pieces = _through(stage, pieces)
        return pieces

    def flush(self) -> Iterator[bytes]:
        """Yield what is left at the end of the body.

        Raises:
            ValueError: The body is not validly encoded, or ends within a compressed
                stream.
        """
        pieces: Iterator[bytes] = iter(())
        for stage in self._stages:
            pieces = itertools.chain(_through(stage, pieces), stage.end())
        return pieces


def content_decoder(content_encoding: str | None) -> ContentDecoder | None:
    """Return a decoder for a body sent with this ``Content-Encoding`` header value.

    ``None``, ``""`` and ``identity`` need no decoding. ``gzip`` (``x-gzip``) and
    ``deflate`` are always known; ``deflate`` is zlib-wrapped, or raw deflate as some
    servers send it, told apart by its first two bytes as browsers do. ``br`` is known
    when ``brotli`` or ``brotlicffi`` (1.2 or later, which can cap their output) is
    installed, ``zstd`` with ``compression.zstd`` (Python 3.14), ``backports.zstd`` or
    ``zstandard``. A list (``gzip, br``) is undone last coding first.

    Returns:
        The decoder, or None when some coding of the list is unknown or unavailable.
    """
    codings = [coding.strip().lower() for coding in (content_encoding or "").split(",")]
    stages: list[_Stage] = []
    for coding in reversed(codings):
        if coding in ("", "identity"):
            continue
        stage = _STAGES.get(coding, _unknown)()
        if stage is None:
            return None
        stages.append(stage)
    return ContentDecoder(tuple(stages))


def _slices(data: bytes) -> Iterator[bytes]:
    for start in range(0, len(data), _PIECE):
        yield data[start : start + _PIECE]


def _through(stage: _Stage, pieces: Iterable[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield from stage.feed(piece)


def _unknown() -> _Stage | None:
    return None


class _ZlibObject(Protocol):
    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    @property
    def unconsumed_tail(self) -> bytes: ...
    def decompress(self, data: bytes, max_length: int = ..., /) -> bytes: ...


@final
class _Zlib:
    """gzip (members one after another) or deflate (zlib-wrapped, else raw)."""

    def __init__(self, *, gzip: bool) -> None:
        self._gzip = gzip
        self._head = b""
        self._inflater: _ZlibObject | None = None
        self._started = False
        self._ended = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._inflater is None:
            self._head += data
            if not self._gzip and len(self._head) < 2:
                return
            data, self._head = self._head, b""
            self._inflater = zlib.decompressobj(self._wbits(data))
        while data:
            if self._ended:
                if not self._gzip:
                    return
                self._inflater = zlib.decompressobj(_GZIP_WBITS)
                self._ended = False
            self._started = True
            data = yield from self._inflate(self._inflater, data)

    def end(self) -> Iterator[bytes]:
        if self._head or (self._started and not self._ended):
            raise ValueError(f"the {self._name} body ends within its compressed stream")
        yield from ()

    def _wbits(self, head: bytes) -> int:
        if self._gzip:
            return _GZIP_WBITS
        cmf, flg = head[0], head[1]
        zlib_header = cmf & 0x0F == 8 and cmf >> 4 <= 7 and not flg & 0x20
        return zlib.MAX_WBITS if zlib_header and (cmf << 8 | flg) % 31 == 0 else -zlib.MAX_WBITS

    @property
    def _name(self) -> str:
        return "gzip" if self._gzip else "deflate"

    def _inflate(self, inflater: _ZlibObject, data: bytes) -> Generator[bytes, None, bytes]:
        """Inflate ``data`` in capped pieces; return the input left after a stream's end."""
        while True:
            try:
                out = inflater.decompress(data, _PIECE)
            except zlib.error as exc:
                raise ValueError(f"corrupt {self._name} body: {exc}") from exc
            if out:
                yield out
            data = inflater.unconsumed_tail
            if inflater.eof:
                self._ended = True
                return inflater.unused_data
            if not data and len(out) < _PIECE:
                return b""


class _BrotliDecompressor(Protocol):
    def process(self, data: bytes, output_buffer_limit: int = ...) -> bytes: ...
    def can_accept_more_data(self) -> bool: ...
    def is_finished(self) -> bool: ...


@final
class _Brotli:
    def __init__(self, decompressor: _BrotliDecompressor, error: type[Exception]) -> None:
        self._decompressor = decompressor
        self._error = error
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not data or self._decompressor.is_finished():
            return
        self._started = True
        while True:
            # The limit is loose (a call may pass it) and can_accept_more_data() only
            # tells about input: output is pending as long as a call fills the limit.
            try:
                out = self._decompressor.process(data, output_buffer_limit=_PIECE)
            except self._error as exc:
                raise ValueError(f"corrupt br body: {exc}") from exc
            data = b""
            yield from _slices(out)
            if self._decompressor.is_finished() or not out:
                return
            if len(out) < _PIECE and self._decompressor.can_accept_more_data():
                return

    def end(self) -> Iterator[bytes]:
        if self._started and not self._decompressor.is_finished():
            raise ValueError("the br body ends within its compressed stream")
        yield from ()


def _brotli() -> _Stage | None:
    for name in ("brotli", "brotlicffi"):
        module = _optional_module(name)
        if module is None:
            continue
        decompressor = module.Decompressor()
        if hasattr(decompressor, "can_accept_more_data"):
            return _Brotli(decompressor, module.error)
    return None


class _ZstdDecompressor(Protocol):
    @property
    def eof(self) -> bool: ...
    @property
    def needs_input(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    def decompress(self, data: bytes, max_length: int = ...) -> bytes: ...


class _ZstandardObject(Protocol):
    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    def decompress(self, data: bytes) -> bytes: ...


@final
class _Zstd:
    """zstd, frames one after another, through ``compression.zstd`` or its backport."""

    def __init__(self, new: Callable[[], _ZstdDecompressor], error: type[Exception]) -> None:
        self._new = new
        self._error = error
        self._decompressor = new()
        self._in_frame = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data or self._in_frame:
            self._in_frame = True
            try:
                out = self._decompressor.decompress(data, _PIECE)
            except self._error as exc:
                raise ValueError(f"corrupt zstd body: {exc}") from exc
            data = b""
            if out:
                yield out
            if self._decompressor.eof:
                data = self._decompressor.unused_data
                self._decompressor = self._new()
                self._in_frame = False
            elif self._decompressor.needs_input:
                return

    def end(self) -> Iterator[bytes]:
        if self._in_frame:
            raise ValueError("the zstd body ends within its compressed stream")
        yield from ()


@final
class _Zstandard:
    """zstd through python-zstandard, fed in slices small enough to bound each output."""

    def __init__(self, new: Callable[[], _ZstandardObject], error: type[Exception]) -> None:
        self._new = new
        self._error = error
        self._decompressor = new()
        self._in_frame = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        view = memoryview(data)
        while view:
            piece, view = view[:_ZSTANDARD_SLICE], view[_ZSTANDARD_SLICE:]
            self._in_frame = True
            try:
                out = self._decompressor.decompress(bytes(piece))
            except self._error as exc:
                raise ValueError(f"corrupt zstd body: {exc}") from exc
            yield from _slices(out)
            if self._decompressor.eof:
                view = memoryview(self._decompressor.unused_data + bytes(view))
                self._decompressor = self._new()
                self._in_frame = False

    def end(self) -> Iterator[bytes]:
        if self._in_frame:
            raise ValueError("the zstd body ends within its compressed stream")
        yield from ()


def _zstd() -> _Stage | None:
    for name in ("compression.zstd", "backports.zstd"):
        module = _optional_module(name)
        if module is not None:
            return _Zstd(module.ZstdDecompressor, module.ZstdError)
    module = _optional_module("zstandard")
    if module is None:
        return None
    context = module.ZstdDecompressor()
    return _Zstandard(context.decompressobj, module.ZstdError)


@cache
def _optional_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_STAGES: Final[dict[str, Callable[[], _Stage | None]]] = {
    "gzip": lambda: _Zlib(gzip=True),
    "x-gzip": lambda: _Zlib(gzip=True),
    "deflate": lambda: _Zlib(gzip=False),
    "br": _brotli,
    "zstd": _zstd,
}


@final
@attrs.frozen(kw_only=True)
class SseMessage:
    """One server-sent event.

    Attributes:
        event: The event type: the ``event`` field, or ``"message"`` when there is none.
        data: The ``data`` fields, joined by ``"\\n"``.
        id: The last event id the stream set (ids carry over from event to event, as in
            a browser's ``lastEventId``), or None if it set none.
    """

    event: str
    data: str
    id: str | None = None


@final
class SseDecoder:
    """Cut a ``text/event-stream`` into events, as a browser's ``EventSource`` does.

    Lines end in CRLF, LF or CR, and may be split anywhere between two `feed` calls, even
    inside a CRLF or a UTF-8 character. A leading byte order mark is skipped, lines that
    start with ``:`` are comments, an empty line ends an event, and an event without a
    ``data`` field is dropped. Invalid UTF-8 becomes U+FFFD.

    Memory is bounded: the bytes held for one event (the line being read, the ``data``
    lines, the event type and the id) may not pass ``max_event_bytes``. An event that
    does sets `overflowed`; the decoder then drops what it holds and returns nothing
    more, whatever it is fed.

    Args:
        max_event_bytes: The bound on the bytes held for one event.

    Attributes:
        overflowed: Whether an event passed the bound (then the decoder is spent).
        retry: The last reconnection time the stream set (its ``retry`` field), in
            milliseconds, or None.
    """

    def __init__(self, *, max_event_bytes: int = 1 << 20) -> None:
        if max_event_bytes < 1:
            raise ValueError(f"max_event_bytes must be positive, got {max_event_bytes!r}")
        self._max = max_event_bytes
        self.overflowed = False
        self.retry: int | None = None
        self._buffer = bytearray()
        self._started = False
        self._after_cr = False
        self._event: str | None = None
        self._data: list[str] = []
        self._held = 0
        self._id: str | None = None
        self._id_bytes = 0

    def feed(self, data: bytes) -> list[SseMessage]:
        """Return the events that ``data``, the next piece of the stream, completes."""
        if self.overflowed:
            return []
        if self._after_cr and data:
            self._after_cr = False
            if data.startswith(b"\n"):
                data = data[1:]
        scanned = len(self._buffer)
        self._buffer += data
        if not self._started:
            if len(self._buffer) < len(_BOM) and _BOM.startswith(self._buffer):
                return []
            self._started = True
            if self._buffer.startswith(_BOM):
                del self._buffer[: len(_BOM)]
            scanned = 0
        messages: list[SseMessage] = []
        start = 0
        for match in _LINE_END_RE.finditer(self._buffer, scanned):
            line = bytes(self._buffer[start : match.start()])
            start = match.end()
            if not self._take_line(line, messages):
                return messages
        if start and self._buffer.endswith(b"\r") and start == len(self._buffer):
            self._after_cr = True
        del self._buffer[:start]
        if len(self._buffer) + self._held + self._id_bytes > self._max:
            self._overflow()
        return messages

    def _take_line(self, line: bytes, messages: list[SseMessage]) -> bool:
        """Apply one line; return False when the event passes the bound."""
        if len(line) + self._held + self._id_bytes > self._max:
            self._overflow()
            return False
        if not line:
            if self._data:
                messages.append(
                    SseMessage(
                        event=self._event or "message", data="\n".join(self._data), id=self._id
                    )
                )
            self._event, self._data, self._held = None, [], 0
            return True
        if line.startswith(b":"):
            return True
        name, colon, value = line.decode("utf-8", "replace").partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._held += len(line)
        elif name == "event":
            self._event = value
            self._held += len(line)
        elif name == "id" and "\0" not in value:
            self._id, self._id_bytes = value, len(line)
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)
        return True

    def _overflow(self) -> None:
        self.overflowed = True
        self._buffer = bytearray()
        self._event, self._data, self._held = None, [], 0
        self._id, self._id_bytes = None, 0


def parse_stream_event(message: SseMessage) -> dict[str, Any] | None:
    """Return a Messages API stream event as its JSON object, or None.

    None for ``ping`` events, and for data that is not a JSON object with a string
    ``"type"`` (so nothing a server sends can make this raise).
    """
    if message.event == "ping":
        return None
    try:
        value = json.loads(message.data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        return None
    if value["type"] == "ping":
        return None
    return cast("dict[str, Any]", value)
