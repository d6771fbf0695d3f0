"""Tools for testing code that uses claude_trio, offline (like `trio.testing`).

A mock Anthropic Messages API for the real CLI to talk to, an isolated CLI config
directory so tests never touch the user's own ``~/.claude``, and a fake ``claude`` that
behaves as the real one was measured to, for fast tests.
"""

from __future__ import annotations

from .._util import fixup_module_metadata
from ._config import MOCK_API_KEY, IsolatedConfig, isolated_config
from ._echo_mcp import echo_mcp_server
from ._fake_script import write_fake_cli
from ._mock_api import (
    MockAnthropicAPI,
    MockAnthropicAPIStatistics,
    RecordedRequest,
    RequestKind,
    magic_word_handler,
    open_mock_anthropic_api,
)
from ._replies import (
    ErrorReply,
    MessageReply,
    ReplyText,
    ReplyThinking,
    ReplyToolUse,
    ReplyUsage,
    error_reply,
    max_tokens_reply,
    text_reply,
    thinking_reply,
    tool_use_reply,
)

__all__ = [
    "MOCK_API_KEY",
    "ErrorReply",
    "IsolatedConfig",
    "MessageReply",
    "MockAnthropicAPI",
    "MockAnthropicAPIStatistics",
    "RecordedRequest",
    "ReplyText",
    "ReplyThinking",
    "ReplyToolUse",
    "ReplyUsage",
    "RequestKind",
    "echo_mcp_server",
    "error_reply",
    "isolated_config",
    "magic_word_handler",
    "max_tokens_reply",
    "open_mock_anthropic_api",
    "text_reply",
    "thinking_reply",
    "tool_use_reply",
    "write_fake_cli",
]

fixup_module_metadata(__name__, globals())
del fixup_module_metadata
