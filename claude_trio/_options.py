"""Options of a conversation: how to start claude and how long to wait for it."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias

import attrs

from ._environment import check_env_conflicts, child_env, config_dir_of

PermissionMode: TypeAlias = Literal["default", "acceptEdits", "plan", "auto", "bypassPermissions"]
_PERMISSION_MODES: Final = ("default", "acceptEdits", "plan", "auto", "bypassPermissions")


@attrs.frozen(kw_only=True)
class PermissionRequest:
    """A tool permission prompt the CLI shows mid-turn.

    Attributes:
        tool: The tool: its name (``Bash``) when the CLI's permission hook asks, its
            title as the prompt shows it (``Bash command``) when the screen is read.
        detail: What the tool would do: the command, the file, the URL (and the
            description the model gave), or the prompt's text between title and question.
        screen: The whole rendered screen when the prompt was read from it; "" when the
            permission hook asked.
    """

    tool: str
    detail: str
    screen: str


PermissionCallback: TypeAlias = Callable[[PermissionRequest], Awaitable[bool]]


def _positive(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be a positive number of seconds, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not value >= 0:
        raise ValueError(f"{attribute.name} must be a number of seconds >= 0, got {value!r}")


def _optional_non_negative_int(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{attribute.name} must be a non-negative integer, got {value!r}")


def is_model_name(name: object) -> bool:
    """Whether *name* can go to ``--model``: a non-empty printable string with no whitespace."""
    return (
        isinstance(name, str)
        and bool(name)
        and name.isprintable()
        and not any(ch.isspace() for ch in name)
    )


def _model_name(_: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and not is_model_name(value):
        raise ValueError(f"{attribute.name} must be a model name (printable, no spaces): {value!r}")


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
            to allow. Without it every prompt is denied. What it raises ends the turn and
            reaches the turn's caller as itself.
        permission_timeout: Seconds `on_permission` may take; then the prompt is denied
            and the turn fails with `BackendTimeoutError` (phase ``"permission"``).
        max_retries: How often the CLI retries a failed API request
            (``CLAUDE_CODE_MAX_RETRIES``); None means 2, or the value *env* gives. The
            CLI's own default of 10 takes minutes. Giving both this and
            ``CLAUDE_CODE_MAX_RETRIES`` in *env*, with different values, is a
            `ValueError`.
        max_retry_wait: The longest wait before a retry that the turn sits through, in
            seconds. When the CLI announces a longer one (a 429 with a long
            ``retry-after``), the turn is ended at once with `RateLimitError` or
            `OverloadedError` carrying the announced wait. None sits through any wait.
        nonessential_traffic: Let the CLI auto-update and make its nonessential requests
            (telemetry, a title-generation model call per turn). Off by default
            (``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1``, ``DISABLE_AUTOUPDATER=1``).
        background_tasks: Let the CLI run Bash commands and agents in the background.
            Off by default (``CLAUDE_CODE_DISABLE_BACKGROUND_TASKS=1``): a background
            task makes the CLI start turns nobody asked for.
        trust_cwd: Answer the CLI's "do you trust this folder?" dialog with yes, for a
            working directory the CLI has not been told to trust. Without it that
            dialog ends the start with `SessionError`.
        startup_timeout: Seconds for the CLI to show its input box.
        prompt_timeout: Seconds from Enter until the CLI records the prompt.
        turn_timeout: Seconds a whole turn may take; None for no limit.
        input_timeout: Seconds the CLI may go without reading what is typed into its
            terminal before `BackendTimeoutError` (phase ``"input"``). A long message
            may take longer in all; this bounds a stall.
        close_timeout: Seconds the CLI gets to exit after SIGTERM before SIGKILL.
        editor_threshold: A message that takes more pastes than this goes into the CLI
            through its external-editor key (Ctrl-G) instead, which costs about a second
            whatever the size, where each paste costs about 15 ms (a paste holds at
            most 800 characters and two line breaks: 64 pastes are about 8 KB of
            multi-line text). The model receives the same text either way. None always
            pastes. Messages are pasted anyway when the options' ``env`` sets
            ``VISUAL``, ``EDITOR`` or ``CLAUDE_CODE_TMPDIR``: see :doc:`conversation`.
        columns: Width of the CLI's terminal.
        rows: Height of the CLI's terminal (at least 12).
        extra_args: More command-line arguments, passed as they are.
        slash_commands: Let `Conversation.run_slash_command` run the CLI's slash commands.
            By default the CLI runs with ``--disable-slash-commands``, and user text that
            starts with ``/`` is sent with one leading space. With this on, user text that
            starts with ``/`` (after whitespace) is refused with `InputError` instead,
            since the CLI would run it as a command.
        partial_messages: Stream the API's responses to the caller as they arrive:
            turns also yield `StreamEvent` s (text and thinking deltas …) ahead of each
            whole `AssistantMessage`, and a rate-limited turn's `RateLimitError` carries
            the API's exact ``retry_after`` and ``reset_at``. The CLI's API traffic then
            goes through a relay on 127.0.0.1 that forwards it unchanged to the address
            the CLI would use (``ANTHROPIC_BASE_URL``, else the Anthropic API). Needs the
            ``relay`` extra (``pip install 'claude-trio[relay]'``). See :doc:`/relay`.
    """

    cwd: Path = attrs.field(converter=_to_path)
    cli_path: str | None = None
    env: Mapping[str, str] = attrs.field(factory=dict, converter=_env)
    config_dir: Path | None = attrs.field(default=None, converter=_to_optional_path)
    model: str | None = attrs.field(default=None, validator=_model_name)
    system_prompt: str | None = None
    append_system_prompt: str | None = None
    allowed_tools: tuple[str, ...] = attrs.field(default=(), converter=_tool_names)
    disallowed_tools: tuple[str, ...] = attrs.field(default=(), converter=_tool_names)
    mcp_servers: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    permission_mode: PermissionMode | None = attrs.field(default=None, validator=_permission_mode)
    dangerously_skip_permissions: bool = False
    on_permission: PermissionCallback | None = None
    permission_timeout: float = attrs.field(default=60.0, validator=_positive)
    max_retries: int | None = attrs.field(default=None, validator=_optional_non_negative_int)
    max_retry_wait: float | None = attrs.field(default=10.0, validator=_non_negative)
    nonessential_traffic: bool = False
    background_tasks: bool = False
    trust_cwd: bool = False
    startup_timeout: float = attrs.field(default=30.0, validator=_positive)
    prompt_timeout: float = attrs.field(default=30.0, validator=_positive)
    turn_timeout: float | None = attrs.field(default=600.0, validator=_positive)
    input_timeout: float = attrs.field(default=30.0, validator=_positive)
    close_timeout: float = attrs.field(default=5.0, validator=_positive)
    editor_threshold: int | None = attrs.field(default=64, validator=_optional_non_negative_int)
    columns: int = attrs.field(default=120)
    rows: int = attrs.field(default=40)
    extra_args: tuple[str, ...] = attrs.field(default=(), converter=_to_args)
    slash_commands: bool = False
    partial_messages: bool = False

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

    def __attrs_post_init__(self) -> None:
        check_env_conflicts(
            self.env,
            config_dir=self.config_dir,
            max_retries=self.max_retries,
            nonessential_traffic=self.nonessential_traffic,
            background_tasks=self.background_tasks,
        )

    def child_env(self, *, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
        """Return the whole environment the CLI is started with.

        Four layers, each beating the ones before: the variables passed through from
        *environ* (the caller's environment), the library's defaults, the options, and
        *env* as given. :doc:`/backend` lists each layer's variables.
        """
        return child_env(
            env=self.env,
            config_dir=self.config_dir,
            max_retries=self.max_retries,
            nonessential_traffic=self.nonessential_traffic,
            background_tasks=self.background_tasks,
            environ=environ,
        )

    def resolved_config_dir(self) -> Path:
        """Return the config directory the CLI will use with `child_env`."""
        return config_dir_of(self.child_env())


InjectionMode: TypeAlias = Literal["native_jsonl", "concat_message"]
_INJECTION_MODES: Final = ("native_jsonl", "concat_message")


def _injection_mode(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    if value not in _INJECTION_MODES:
        raise ValueError(f"{attribute.name} must be one of {_INJECTION_MODES}, got {value!r}")


def _at_least_one(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer, got {value!r}")


@attrs.frozen(kw_only=True)
class BackendOptions(ConversationOptions):
    """How `ClaudeCodeBackend` runs its ``claude`` processes. Validated on creation.

    Every attribute of `ConversationOptions` is here too and is given to each of the
    backend's conversations as it is; the attributes below are the pool policy.

    Attributes:
        injection_mode: How a history with no live process is given to a new one:
            ``"native_jsonl"`` writes it as a session transcript and resumes it;
            ``"concat_message"`` folds it into the first prompt.
        max_live: The most ``claude`` processes alive at once. The least recently used
            idle one is closed to make room; its history is re-seeded when it returns.
        idle_ttl: Seconds an idle process is kept; None keeps it until evicted.
        pool_timeout: Seconds a call waits for room when ``max_live`` processes are all
            busy, before `BackendTimeoutError` (phase ``"pool"``). A call made while
            iterating another call's events, with ``max_live=1``, ends so.
        prewarm: How many spare ``claude`` processes to keep started and ready, with
            fresh sessions, so that a conversation's first turn costs what a warm turn
            costs. A call with no history (or, with ``"concat_message"``, any re-seed)
            whose model and system prompt are the backend's own takes a spare; the
            spares are refilled in the background, count against ``max_live``, and
            expire and are evicted like idle processes. 0 (the default) starts
            processes only when a call needs one. At most ``max_live``.
        keep_sessions: Keep the session files of the processes the backend started
            (and the transcripts it wrote to re-seed them) in the CLI's config
            directory. By default they are removed when their process closes.
    """

    injection_mode: InjectionMode = attrs.field(default="native_jsonl", validator=_injection_mode)
    max_live: int = attrs.field(default=4, validator=_at_least_one)
    idle_ttl: float | None = attrs.field(default=600.0, validator=_positive)
    pool_timeout: float = attrs.field(default=30.0, validator=_positive)
    prewarm: int = attrs.field(default=0)
    keep_sessions: bool = False

    @prewarm.validator
    def _check_prewarm(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value is None:
            raise ValueError("prewarm must be a non-negative integer, got None")
        _optional_non_negative_int(self, attribute, value)
        if value > self.max_live:
            raise ValueError(
                f"prewarm ({value}) must be at most max_live ({self.max_live}): "
                "spare processes count against it"
            )

    def conversation_options(self) -> ConversationOptions:
        """Return the `ConversationOptions` each of the backend's processes runs with."""
        return ConversationOptions(
            **{field.name: getattr(self, field.name) for field in _CONVERSATION_FIELDS}
        )


_CONVERSATION_FIELDS: Final = attrs.fields(ConversationOptions)
