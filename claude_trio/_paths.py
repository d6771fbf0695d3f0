"""Where the CLI keeps a session's files."""

from __future__ import annotations

import os
import re
from pathlib import Path

_NOT_KEY_CHAR = re.compile(r"[^A-Za-z0-9]")
_MAX_PLAIN_KEY = 200


def project_key(cwd: str | os.PathLike[str]) -> str:
    """Return the directory name the CLI files a working directory's sessions under.

    Every character of the absolute path outside ``[A-Za-z0-9]`` becomes one ``-``.

    Args:
        cwd: The absolute working directory the CLI runs in (its real path, since the
            CLI resolves symlinks).

    Returns:
        The key, such as ``-home-user-my-proj`` for ``/home/user/my.proj``.

    Raises:
        ValueError: If *cwd* is relative, or so long that the CLI shortens its key with a
            hash this library does not reproduce yet.
    """
    text = os.fspath(cwd)
    if not os.path.isabs(text):
        raise ValueError(f"project_key needs an absolute path, got {text!r}")
    key = _NOT_KEY_CHAR.sub("-", text)
    if len(key) > _MAX_PLAIN_KEY:
        raise ValueError(
            f"the project key of {text!r} is {len(key)} characters long; the CLI shortens "
            f"keys over {_MAX_PLAIN_KEY} characters with a hash that is not supported yet"
        )
    return key


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
