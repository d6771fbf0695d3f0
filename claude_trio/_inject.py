"""Put a hand-made transcript where ``claude --resume`` will find it.

The records come from `claude_trio._history.transcript_records`; this module only writes
them. The file is private to the user (0600, in a 0700 project directory), never replaces
an existing session, and appears complete or not at all: the CLI must never resume half a
transcript. It is written to a temporary file in the same directory, synced, then linked
to its final name, which fails if that name exists (a rename would replace it).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from ._errors import SessionError
from ._history import HISTORY_MODEL, History, resume_prompt, transcript_records
from ._paths import session_path
from ._sanitize import validate_session_id

_PRIVATE_DIR: Final = 0o700
_PRIVATE_FILE: Final = 0o600
# Errors of a file system that has no hard links; the file is then created in place.
_NO_LINKS: Final = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK})


@attrs.frozen
class TranscriptSeed:
    """A session prepared from a caller's history, ready to be resumed.

    Attributes:
        session_id: The session's id.
        path: The transcript file, or None when nothing of the history needed writing:
            then start a new session with this id instead of resuming it.
        prompt: The text to type as the first message (`resume_prompt`).
    """

    session_id: str
    path: Path | None
    prompt: str


def seed_transcript(
    config_dir: str | os.PathLike[str],
    cwd: str | os.PathLike[str],
    session_id: str,
    messages: Sequence[Mapping[str, Any]] | History,
    *,
    model: str = HISTORY_MODEL,
    now: dt.datetime | None = None,
) -> TranscriptSeed:
    """Write the history of *messages* as session *session_id*, for ``native_jsonl``.

    Args:
        config_dir: The CLI's config directory (``CLAUDE_CONFIG_DIR``).
        cwd: The working directory the CLI will run in; its real path is used, as the CLI
            and `open_conversation` use it.
        session_id: A fresh session id (a UUID).
        messages: The request's messages (or their `History`); the last one is the new
            prompt.
        model: The ``model`` of the written assistant records.
        now: The timestamp of the first record; the current time by default.

    Returns:
        Where the transcript is, and what to type after ``claude --resume``.

    Raises:
        InputError: If *messages* cannot be sent through the CLI.
        SessionError: If *session_id* is not a UUID or its session file exists.
        OSError: If the file cannot be written.
    """
    sid = validate_session_id(session_id)
    real_cwd = Path(cwd).resolve()
    records = transcript_records(
        messages,
        session_id=sid,
        cwd=real_cwd,
        start_time=now or dt.datetime.now(dt.UTC),
        model=model,
    )
    prompt = resume_prompt(messages)
    if not records:
        return TranscriptSeed(session_id=sid, path=None, prompt=prompt)
    path = write_transcript(config_dir, real_cwd, sid, records)
    return TranscriptSeed(session_id=sid, path=path, prompt=prompt)


def write_transcript(
    config_dir: str | os.PathLike[str],
    cwd: str | os.PathLike[str],
    session_id: str,
    records: Sequence[Mapping[str, Any]],
) -> Path:
    """Write *records* as the session file of *session_id*, all at once and privately.

    The file goes to `session_path` of the real path of *cwd*; missing directories on the
    way are created with mode 0700. The file has mode 0600, one JSON object per line.

    Args:
        config_dir: The CLI's config directory (``CLAUDE_CONFIG_DIR``).
        cwd: The working directory the CLI will run in.
        session_id: The session's id (a UUID); each record's ``sessionId`` must match it.
        records: The records, such as `transcript_records` returns; at least one.

    Returns:
        The path of the new file.

    Raises:
        SessionError: If *session_id* is not a UUID, or the session file already exists
            (it is never replaced).
        ValueError: If *records* is empty, a record is not a JSON object, or belongs to
            another session.
        OSError: If the file cannot be written.
    """
    sid = validate_session_id(session_id)
    path = session_path(config_dir, Path(cwd).resolve(), sid)
    data = _encode(records, sid)
    if path.exists():
        raise SessionError(f"session {sid} already exists at {path}; it is never overwritten")
    _make_private_dirs(path.parent)
    _publish(path, data, sid)
    return path


def _encode(records: Sequence[Mapping[str, Any]], session_id: str) -> bytes:
    if not records:
        raise ValueError("no records to write: start a new session instead of resuming one")
    lines = []
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise ValueError(f"record {index} is not a JSON object")
        if record.get("sessionId", session_id) != session_id:
            raise ValueError(f"record {index} belongs to session {record.get('sessionId')!r}")
        try:
            line = json.dumps(dict(record), ensure_ascii=False, allow_nan=False)
            lines.append(line.encode("utf-8") + b"\n")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"record {index} is not JSON: {exc}") from exc
    return b"".join(lines)


def _make_private_dirs(directory: Path) -> None:
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=_PRIVATE_DIR)


def _publish(path: Path, data: bytes, session_id: str) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    _write_new(temporary, data)
    try:
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise SessionError(
                f"session {session_id} already exists at {path}; it is never overwritten"
            ) from None
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            _write_new(path, data)
    finally:
        temporary.unlink(missing_ok=True)
    _sync_directory(path.parent)


def _write_new(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _PRIVATE_FILE)
    except FileExistsError:
        raise SessionError(f"{path} already exists; it is never overwritten") from None
    try:
        os.fchmod(fd, _PRIVATE_FILE)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # Some file systems cannot sync a directory; the data itself is synced already.
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
