"""Options of a conversation: how to start claude and how long to wait for it."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

import attrs

PermissionMode: TypeAlias = Literal["default", "acceptEdits", "plan", "auto", "bypassPermissions"]
_PERMISSION_MODES: Final = ("default", "acceptEdits", "plan", "auto", "bypassPermissions")

# Variables a conversation takes from the caller's environment; everything else is left
# out, so a stray ANTHROPIC_API_KEY or CLAUDECODE cannot change what the CLI does.
_INHERITED_ENV: Final = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TMPDIR",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_DATA_HOME",
    "XDG_STATE_HOME",
    "XDG_RUNTIME_DIR",
    "CLAUDE_CONFIG_DIR",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
    "https_proxy",
    "http_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
)


@attrs.frozen(kw_only=True)
class PermissionRequest:
    """A tool permission prompt the CLI shows mid-turn.

    Attributes:
        tool: The tool's title as the prompt shows it (``Bash command`` …).
        detail: The text between the title and the question (the command, the file).
        screen: The whole rendered screen.
    """

    tool: str
    detail: str
    screen: str


PermissionCallback: TypeAlias = Callable[[PermissionRequest], Awaitable[bool]]


def _positive(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be a positive number of seconds, got {value!r}")


def _non_negative_int(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name} must be a non-negative integer, got {value!r}")


def _permission_mode(_: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and value not in _PERMISSION_MODES:
        raise ValueError(f"{attribute.name} must be one of {_PERMISSION_MODES}, got {value!r}")


def _tool_names(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError("give tools as a list of names, not one string")
    names = tuple(value)
    for name in names:
        if not isinstance(name, str) or not name.strip() or ("," in name and "(" not in name):
            raise ValueError(f"not a tool name: {name!r}")
    return names


def _to_path(value: str | os.PathLike[str]) -> Path:
    return Path(value).absolute()


def _to_optional_path(value: str | os.PathLike[str] | None) -> Path | None:
    return None if value is None else _to_path(value)


def _to_args(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _env(value: Mapping[str, str]) -> Mapping[str, str]:
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str) or "=" in key or "\0" in item:
            raise ValueError(f"bad environment entry {key!r}={item!r}")
    return dict(value)


@attrs.frozen(kw_only=True)
class ConversationOptions:
    """How to run one ``claude`` and how long to wait for it. Validated on creation.

    Attributes:
        cwd: The working directory of the CLI (the project it works on).
        cli_path: The ``claude`` executable; else ``CLAUDE_TRIO_CLI``, else ``PATH``.
        env: Variables for the CLI's environment, set over a small base taken from the
            caller's (``PATH``, ``HOME``, locale, proxies, ``CLAUDE_CONFIG_DIR``).
        config_dir: The CLI's config directory (``CLAUDE_CONFIG_DIR``); by default the
            one in *env* or the caller's environment, else ``~/.claude``.
        model: The model to ask for (``--model``).
        system_prompt: Replaces Claude Code's system prompt (``--system-prompt``).
        append_system_prompt: Added to the system prompt (``--append-system-prompt``).
        allowed_tools: Tools allowed without asking (``--allowedTools``).
        disallowed_tools: Tools removed from the model's list (``--disallowedTools``).
        mcp_servers: MCP servers by name, each a dict as ``--mcp-config`` takes it.
        permission_mode: ``--permission-mode``; the CLI's default is ``auto``.
        dangerously_skip_permissions: ``--dangerously-skip-permissions``. As root the
            CLI also needs ``IS_SANDBOX=1`` in *env*.
        on_permission: Asked when a tool permission prompt shows mid-turn; returns True
            to allow. Without it every prompt is denied.
        max_retries: How often the CLI retries a failed API request
            (``CLAUDE_CODE_MAX_RETRIES``). The CLI's own default of 10 takes minutes.
        startup_timeout: Seconds for the CLI to show its input box.
        prompt_timeout: Seconds from Enter until the CLI records the prompt.
        turn_timeout: Seconds a whole turn may take; None for no limit.
        close_timeout: Seconds the CLI gets to exit after SIGTERM before SIGKILL.
        columns: Width of the CLI's terminal.
        rows: Height of the CLI's terminal (at least 12).
        extra_args: More command-line arguments, passed as they are.
        slash_commands: Let `Conversation.run_slash_command` run the CLI's slash commands.
            By default the CLI runs with ``--disable-slash-commands``, and user text that
            starts with ``/`` is sent with one leading space. With this on, user text that
            starts with ``/`` (after whitespace) is refused with `InputError` instead,
            since the CLI would run it as a command.
    """

    cwd: Path = attrs.field(converter=_to_path)
    cli_path: str | None = None
    env: Mapping[str, str] = attrs.field(factory=dict, converter=_env)
    config_dir: Path | None = attrs.field(default=None, converter=_to_optional_path)
    model: str | None = None
    system_prompt: str | None = None
    append_system_prompt: str | None = None
    allowed_tools: tuple[str, ...] = attrs.field(default=(), converter=_tool_names)
    disallowed_tools: tuple[str, ...] = attrs.field(default=(), converter=_tool_names)
    mcp_servers: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    permission_mode: PermissionMode | None = attrs.field(default=None, validator=_permission_mode)
    dangerously_skip_permissions: bool = False
    on_permission: PermissionCallback | None = None
    max_retries: int = attrs.field(default=2, validator=_non_negative_int)
    startup_timeout: float = attrs.field(default=30.0, validator=_positive)
    prompt_timeout: float = attrs.field(default=30.0, validator=_positive)
    turn_timeout: float | None = attrs.field(default=600.0, validator=_positive)
    close_timeout: float = attrs.field(default=5.0, validator=_positive)
    columns: int = attrs.field(default=120)
    rows: int = attrs.field(default=40)
    extra_args: tuple[str, ...] = attrs.field(default=(), converter=_to_args)
    slash_commands: bool = False

    @columns.validator
    def _check_columns(self, _: attrs.Attribute[int], value: int) -> None:
        if value < 40:
            raise ValueError(f"columns must be at least 40, got {value}")

    @rows.validator
    def _check_rows(self, _: attrs.Attribute[int], value: int) -> None:
        if value < 12:
            raise ValueError(f"rows must be at least 12 (for multi-line pastes), got {value}")

    @mcp_servers.validator
    def _check_mcp(
        self, _: attrs.Attribute[object], value: Mapping[str, Mapping[str, Any]]
    ) -> None:
        for name, server in value.items():
            if not name or not isinstance(server, Mapping):
                raise ValueError(f"MCP server {name!r} must map a name to a dict")

    def child_env(self) -> dict[str, str]:
        """Return the whole environment the CLI is started with."""
        env = {key: os.environ[key] for key in _INHERITED_ENV if key in os.environ}
        env.setdefault("TERM", "xterm-256color")
        env.setdefault("LANG", "C.UTF-8")
        env.update(self.env)
        env["TERM"] = env.get("TERM") or "xterm-256color"
        env["CLAUDE_CODE_MAX_RETRIES"] = str(self.max_retries)
        if self.config_dir is not None:
            env["CLAUDE_CONFIG_DIR"] = str(self.config_dir)
        return env

    def resolved_config_dir(self) -> Path:
        """Return the config directory the CLI will use with `child_env`."""
        env = self.child_env()
        if env.get("CLAUDE_CONFIG_DIR"):
            return Path(env["CLAUDE_CONFIG_DIR"])
        return Path(env.get("HOME") or Path.home()) / ".claude"


InjectionMode: TypeAlias = Literal["native_jsonl", "concat_message"]
_INJECTION_MODES: Final = ("native_jsonl", "concat_message")


def _injection_mode(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in _INJECTION_MODES:
        raise ValueError(f"{attribute.name} must be one of {_INJECTION_MODES}, got {value!r}")


def _at_least_one(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer, got {value!r}")


@attrs.frozen(kw_only=True)
class BackendOptions:
    """How `ClaudeCodeBackend` runs its ``claude`` processes. Validated on creation.

    The first group of attributes is passed to each conversation as in
    `ConversationOptions`; the rest is the pool policy.

    Attributes:
        cwd: The working directory of every CLI (the project).
        model: ``--model``.
        system_prompt: ``--system-prompt`` (replaces Claude Code's system prompt).
        append_system_prompt: ``--append-system-prompt``.
        allowed_tools: ``--allowedTools``.
        disallowed_tools: ``--disallowedTools``.
        mcp_servers: MCP servers by name, each a dict as ``--mcp-config`` takes it.
        permission_mode: ``--permission-mode``.
        dangerously_skip_permissions: ``--dangerously-skip-permissions``.
        on_permission: Answers tool permission prompts; without it they are denied.
        env: Variables for the CLIs' environment.
        cli_path: The ``claude`` executable.
        config_dir: The CLI's config directory (``CLAUDE_CONFIG_DIR``).
        max_retries: ``CLAUDE_CODE_MAX_RETRIES``.
        startup_timeout: Seconds for a CLI to become ready.
        prompt_timeout: Seconds for a CLI to record a typed prompt.
        turn_timeout: Seconds a turn may take; None for no limit.
        close_timeout: Seconds a CLI gets to exit after SIGTERM.
        injection_mode: How a history with no live process is given to a new one:
            ``"native_jsonl"`` writes it as a session transcript and resumes it;
            ``"concat_message"`` folds it into the first prompt.
        max_live: The most ``claude`` processes alive at once. The least recently used
            idle one is closed to make room; its history is re-seeded when it returns.
        idle_ttl: Seconds an idle process is kept; None keeps it until evicted.
    """

    cwd: Path = attrs.field(converter=_to_path)
    model: str | None = None
    system_prompt: str | None = None
    append_system_prompt: str | None = None
    allowed_tools: tuple[str, ...] = attrs.field(default=(), converter=_tool_names)
    disallowed_tools: tuple[str, ...] = attrs.field(default=(), converter=_tool_names)
    mcp_servers: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    permission_mode: PermissionMode | None = attrs.field(default=None, validator=_permission_mode)
    dangerously_skip_permissions: bool = False
    on_permission: PermissionCallback | None = None
    env: Mapping[str, str] = attrs.field(factory=dict, converter=_env)
    cli_path: str | None = None
    config_dir: Path | None = attrs.field(default=None, converter=_to_optional_path)
    max_retries: int = attrs.field(default=2, validator=_non_negative_int)
    startup_timeout: float = attrs.field(default=30.0, validator=_positive)
    prompt_timeout: float = attrs.field(default=30.0, validator=_positive)
    turn_timeout: float | None = attrs.field(default=600.0, validator=_positive)
    close_timeout: float = attrs.field(default=5.0, validator=_positive)
    injection_mode: InjectionMode = attrs.field(default="native_jsonl", validator=_injection_mode)
    max_live: int = attrs.field(default=4, validator=_at_least_one)
    idle_ttl: float | None = attrs.field(default=600.0, validator=_positive)

    def conversation_options(self) -> ConversationOptions:
        """Return the `ConversationOptions` each of the backend's processes runs with.

        Raises:
            ValueError: If the combination is invalid (the same checks as
                `ConversationOptions`).
        """
        return ConversationOptions(
            cwd=self.cwd,
            cli_path=self.cli_path,
            env=self.env,
            config_dir=self.config_dir,
            model=self.model,
            system_prompt=self.system_prompt,
            append_system_prompt=self.append_system_prompt,
            allowed_tools=self.allowed_tools,
            disallowed_tools=self.disallowed_tools,
            mcp_servers=self.mcp_servers,
            permission_mode=self.permission_mode,
            dangerously_skip_permissions=self.dangerously_skip_permissions,
            on_permission=self.on_permission,
            max_retries=self.max_retries,
            startup_timeout=self.startup_timeout,
            prompt_timeout=self.prompt_timeout,
            turn_timeout=self.turn_timeout,
            close_timeout=self.close_timeout,
        )
