"""Drive the Claude Code CLI from trio: one interactive claude per conversation."""

from __future__ import annotations

from ._backend import BackendStatistics, ClaudeCodeBackend, CLIVersionWarning, open_backend
from ._chat_api import ChatRequest, ChatStreamEncoder, chat_completion, parse_chat_request
from ._conversation import Conversation, ConversationStatistics, open_conversation
from ._convert import from_anthropic, make_converter, to_anthropic
from ._errors import (
    APIConnectionError,
    APIError,
    AuthError,
    BackendError,
    BackendTimeoutError,
    CLINotFoundError,
    InputError,
    MessageParseError,
    OverloadedError,
    ProcessError,
    RateLimitError,
    SessionError,
)
from ._events import (
    AssistantMessage,
    CacheCreation,
    ContentBlock,
    Event,
    ResultMessage,
    ServerToolUse,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
    UserMessage,
)
from ._gateway import Gateway, GatewayOptions, GatewayStatistics, open_gateway, serve_gateway
from ._gateway_auth import load_tokens_file
from ._gateway_errors import GatewayError, error_for
from ._history import History, check_messages, fold_history, hash_history, parse_history
from ._inotify import (
    InotifyEvent,
    InotifyHub,
    InotifyHubStatistics,
    InotifyListener,
    open_inotify_hub,
)
from ._locate import CLI_ENV_VAR, PINNED_CLI_VERSION, find_cli
from ._messages_api import (
    MessagesRequest,
    MessageStreamEncoder,
    message_json,
    parse_messages_request,
)
from ._normalize import (
    CostState,
    Normalized,
    RecordStatistics,
    Signal,
    TurnAccumulator,
    TurnEnd,
    TurnFailed,
    TurnInterrupted,
    UsageTally,
    merge_assistant_messages,
    normalize,
    sum_usage,
)
from ._options import (
    BackendOptions,
    ConversationOptions,
    InjectionMode,
    PermissionMode,
    PermissionRequest,
)
from ._paths import project_key, session_path
from ._pty import PtyClaudeProcess, open_claude_pty
from ._ratelimits import RateLimitBucket, RateLimits
from ._relay import Relay, RelayRoute, RelaySink, RelayStatistics, open_relay
from ._sanitize import PASTE_CHUNK_CHARS, PreparedText, prepare_text, validate_session_id
from ._turn import TurnManager
from ._util import fixup_module_metadata
from ._version import __version__
from ._watcher import JsonlWatcher

__all__ = [
    "CLI_ENV_VAR",
    "PASTE_CHUNK_CHARS",
    "PINNED_CLI_VERSION",
    "APIConnectionError",
    "APIError",
    "AssistantMessage",
    "AuthError",
    "BackendError",
    "BackendOptions",
    "BackendStatistics",
    "BackendTimeoutError",
    "CLINotFoundError",
    "CLIVersionWarning",
    "CacheCreation",
    "ChatRequest",
    "ChatStreamEncoder",
    "ClaudeCodeBackend",
    "ContentBlock",
    "Conversation",
    "ConversationOptions",
    "ConversationStatistics",
    "CostState",
    "Event",
    "Gateway",
    "GatewayError",
    "GatewayOptions",
    "GatewayStatistics",
    "History",
    "InjectionMode",
    "InotifyEvent",
    "InotifyHub",
    "InotifyHubStatistics",
    "InotifyListener",
    "InputError",
    "JsonlWatcher",
    "MessageParseError",
    "MessageStreamEncoder",
    "MessagesRequest",
    "Normalized",
    "OverloadedError",
    "PermissionMode",
    "PermissionRequest",
    "PreparedText",
    "ProcessError",
    "PtyClaudeProcess",
    "RateLimitBucket",
    "RateLimitError",
    "RateLimits",
    "RecordStatistics",
    "Relay",
    "RelayRoute",
    "RelaySink",
    "RelayStatistics",
    "ResultMessage",
    "ServerToolUse",
    "SessionError",
    "Signal",
    "StreamEvent",
    "SystemMessage",
    "TextBlock",
    "ThinkingBlock",
    "ToolResultBlock",
    "ToolUseBlock",
    "TurnAccumulator",
    "TurnEnd",
    "TurnFailed",
    "TurnInterrupted",
    "TurnManager",
    "Usage",
    "UsageTally",
    "UserMessage",
    "__version__",
    "chat_completion",
    "check_messages",
    "error_for",
    "find_cli",
    "fold_history",
    "from_anthropic",
    "hash_history",
    "load_tokens_file",
    "make_converter",
    "merge_assistant_messages",
    "message_json",
    "normalize",
    "open_backend",
    "open_claude_pty",
    "open_conversation",
    "open_gateway",
    "open_inotify_hub",
    "open_relay",
    "parse_chat_request",
    "parse_history",
    "parse_messages_request",
    "prepare_text",
    "project_key",
    "serve_gateway",
    "session_path",
    "sum_usage",
    "to_anthropic",
    "validate_session_id",
]

fixup_module_metadata(__name__, globals())
del fixup_module_metadata
