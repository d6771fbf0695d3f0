"""Where the CLI keeps a session's files."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

_NOT_KEY_CHAR = re.compile(r"[^A-Za-z0-9]")
_MAX_PLAIN_KEY = 200


def project_key(cwd: str | os.PathLike[str]) -> str:
    """Return the directory name the CLI files a working directory's sessions under.

    Every character of the absolute path outside ``[A-Za-z0-9]`` becomes one ``-``. A
    key longer than 200 characters is cut to 200 and followed by ``-`` and a base-36
    hash of the path, as the CLI does.

    Args:
        cwd: The absolute working directory the CLI runs in (its real path, since the
            CLI resolves symlinks).

    Returns:
        The key, such as ``-home-user-my-proj`` for ``/home/user/my.proj``.

    Raises:
        ValueError: If *cwd* is relative.
    """
    text = os.fspath(cwd)
    if not os.path.isabs(text):
        raise ValueError(f"project_key needs an absolute path, got {text!r}")
    key = _NOT_KEY_CHAR.sub("-", text)
    if len(key) <= _MAX_PLAIN_KEY:
        return key
    return f"{key[:_MAX_PLAIN_KEY]}-{_base36(abs(_string_hash(text)))}"


def _string_hash(text: str) -> int:
    # The CLI's 32-bit "h = h * 31 + unit" over UTF-16 code units, as a signed int.
    value = 0
    units = text.encode("utf-16-le", "surrogatepass")
    for index in range(0, len(units), 2):
        value = (value * 31 + int.from_bytes(units[index : index + 2], "little")) & 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, rest = divmod(number, 36)
        text = digits[rest] + text
        if number == 0:
            return text


def session_path(
    config_dir: str | os.PathLike[str], cwd: str | os.PathLike[str], session_id: str
) -> Path:
    """Return the path of a session's JSONL file.

    Args:
        config_dir: The CLI's config directory (``CLAUDE_CONFIG_DIR``).
        cwd: The working directory the CLI runs in.
        session_id: The session's id (a UUID).

    Returns:
        ``<config_dir>/projects/<project_key(cwd)>/<session_id>.jsonl``.
    """
    return Path(config_dir) / "projects" / project_key(cwd) / f"{session_id}.jsonl"


def remove_session_files(session_file: Path) -> None:
    """Remove a session's JSONL file and what the CLI keeps for it beside that file.

    Beside ``<session id>.jsonl`` the CLI may keep a directory named by the session id
    (subagent transcripts, large tool results). Missing files are fine.

    Raises:
        OSError: If a file that is there cannot be removed.

    Args:
        session_file: The session's ``.jsonl`` path, as `session_path` gives it.
    """
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        session_file.unlink()
    beside = session_file.with_suffix("")
    if beside != session_file and beside.is_dir() and not beside.is_symlink():
        shutil.rmtree(beside, ignore_errors=True)
