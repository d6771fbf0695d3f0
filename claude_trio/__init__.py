"""Drive the Claude Code CLI from trio: one interactive claude per conversation."""

from __future__ import annotations

from ._errors import (
    APIConnectionError,
    APIError,
    AuthError,
    BackendError,
    CLINotFoundError,
    MessageParseError,
    OverloadedError,
    ProcessError,
    RateLimitError,
    SessionError,
)
from ._locate import CLI_ENV_VAR, PINNED_CLI_VERSION, find_cli
from ._paths import project_key, session_path
from ._pty import PtyClaudeProcess, open_claude_pty
from ._sanitize import PASTE_CHUNK_CHARS, PreparedText, prepare_text
from ._util import fixup_module_metadata
from ._version import __version__
from ._watcher import JsonlWatcher

__all__ = [
    "CLI_ENV_VAR",
    "PASTE_CHUNK_CHARS",
    "PINNED_CLI_VERSION",
    "APIConnectionError",
    "APIError",
    "AuthError",
    "BackendError",
    "CLINotFoundError",
    "JsonlWatcher",
    "MessageParseError",
    "OverloadedError",
    "PreparedText",
    "ProcessError",
    "PtyClaudeProcess",
    "RateLimitError",
    "SessionError",
    "__version__",
    "find_cli",
    "open_claude_pty",
    "prepare_text",
    "project_key",
    "session_path",
]

fixup_module_metadata(__name__, globals())
del fixup_module_metadata
