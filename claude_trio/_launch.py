"""How a ``claude`` process is started: its command line and its private files.

Long or secret values never go on the command line, which any local user can read in
``/proc/<pid>/cmdline`` and which Linux caps at 128 KiB per string: the system prompts and
the MCP server configs are written to files in a private temporary directory (mode 0700,
files 0600, created exclusively) that `prepared_launch` removes when its block ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

import attrs

from ._options import ConversationOptions
from ._private import private_directory, write_private

_SYSTEM_PROMPT_FILE: Final = "system-prompt.txt"
_APPEND_SYSTEM_PROMPT_FILE: Final = "append-system-prompt.txt"
_MCP_CONFIG_FILE: Final = "mcp-config.json"
_SETTINGS_FILE: Final = "settings.json"
_ASSUME_FIRST_PARTY: Final = "_CLAUDE_CODE_ASSUME_FIRST_PARTY_BASE_URL"
_PROXY_VARIABLES: Final = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
)


@attrs.frozen(kw_only=True)
class Launch:
    """What to run: the command line and the environment of one ``claude`` process.

    Valid only inside the `prepared_launch` block that made it: the files its argv
    names are removed when the block ends.

    Attributes:
        argv: The command line; ``argv[0]`` is the CLI.
        env: The whole environment (read-only).
        private_dir: The private directory holding the files argv names, or None when
            no file was needed.
    """

    argv: tuple[str, ...]
    env: Mapping[str, str]
    private_dir: Path | None


@contextlib.contextmanager
def prepared_launch(
    options: ConversationOptions,
    *,
    cli: Path,
    session_id: str,
    resume: bool,
    environ: Mapping[str, str] = os.environ,
    temp_dir: str | os.PathLike[str] | None = None,
    settings: bytes | None = None,
    editor: Path | None = None,
    api_base_url: str | None = None,
    first_party_upstream: bool = False,
) -> Iterator[Launch]:
    """Prepare the argv, environment and private files for one ``claude`` process.

    The system prompt, the appended system prompt and the MCP server configs go into
    files in a new private directory (mode 0700, files 0600, each created exclusively
    and never readable by others), passed as ``--system-prompt-file``,
    ``--append-system-prompt-file`` and ``--mcp-config <file> --strict-mcp-config``. The
    block must last as long as the process may read them (the CLI reads them at start).
    The directory is removed when the block ends, also when it raises.

    Args:
        options: The conversation's options.
        cli: The ``claude`` executable.
        session_id: The session to create (``--session-id``) or resume (``--resume``).
        resume: Whether to resume *session_id*.
        environ: The caller's environment (see `child_env`).
        temp_dir: Where to create the private directory; the system's temporary
            directory by default.
        settings: A ``--settings`` file's content (the permission hook's), written
            privately too and passed after the options' ``extra_args``.
        editor: The script of an `EditorRoute`, set as the CLI's ``VISUAL``; the caller
            has checked that the environment sets no editor of its own.
        api_base_url: A relay route's URL (``partial_messages``), set as the CLI's
            ``ANTHROPIC_BASE_URL``; the relay forwards to the one the environment had.
            With a proxy set, ``127.0.0.1`` is added to ``NO_PROXY`` and ``no_proxy``,
            so that the CLI reaches the relay directly.
        first_party_upstream: Whether the relay forwards to the Anthropic API itself.
            The CLI then gets ``_CLAUDE_CODE_ASSUME_FIRST_PARTY_BASE_URL=1`` (unless the
            environment sets it), so that it sends what it sends to
            ``api.anthropic.com`` directly: it tells the first-party API by the base
            URL's host, and leaves headers, betas and billing fields out for any other.

    Yields:
        The launch.

    Raises:
        ValueError: If an option contradicts the explicit ``env``, or a prompt cannot
            be encoded as UTF-8, or an MCP server config is not JSON-serialisable.
    """
    env = options.child_env(environ=environ)
    if editor is not None:
        env["VISUAL"] = os.fspath(editor)
    if api_base_url is not None:
        env["ANTHROPIC_BASE_URL"] = api_base_url
        if any(env.get(name) for name in _PROXY_VARIABLES):
            for name in ("NO_PROXY", "no_proxy"):
                env[name] = ",".join(filter(None, (env.get(name), "127.0.0.1")))
        if first_party_upstream:
            env.setdefault(_ASSUME_FIRST_PARTY, "1")
    files: dict[str, bytes] = {}
    if options.system_prompt is not None:
        files[_SYSTEM_PROMPT_FILE] = _utf8(options.system_prompt, "system_prompt")
    if options.append_system_prompt is not None:
        files[_APPEND_SYSTEM_PROMPT_FILE] = _utf8(
            options.append_system_prompt, "append_system_prompt"
        )
    if options.mcp_servers:
        files[_MCP_CONFIG_FILE] = _mcp_config(options.mcp_servers)
    if settings is not None:
        files[_SETTINGS_FILE] = settings
    with _private_files(files, temp_dir) as paths:
        argv = build_argv(options, cli=cli, session_id=session_id, resume=resume, files=paths)
        yield Launch(
            argv=tuple(argv),
            env=types.MappingProxyType(env),
            private_dir=next(iter(paths.values())).parent if paths else None,
        )


def build_argv(
    options: ConversationOptions,
    *,
    cli: Path,
    session_id: str,
    resume: bool,
    files: Mapping[str, Path],
) -> list[str]:
    """Return the command line; *files* maps the private file names to their paths."""
    argv = [os.fspath(cli), "--resume" if resume else "--session-id", session_id]
    if not options.slash_commands:
        argv.append("--disable-slash-commands")
    if options.model:
        argv.append("--model=" + options.model)  # one argument: a name never reads as a flag
    if _SYSTEM_PROMPT_FILE in files:
        argv += ["--system-prompt-file", os.fspath(files[_SYSTEM_PROMPT_FILE])]
    if _APPEND_SYSTEM_PROMPT_FILE in files:
        argv += ["--append-system-prompt-file", os.fspath(files[_APPEND_SYSTEM_PROMPT_FILE])]
    if options.allowed_tools:
        argv.append("--allowedTools=" + ",".join(options.allowed_tools))
    if options.disallowed_tools:
        argv.append("--disallowedTools=" + ",".join(options.disallowed_tools))
    if _MCP_CONFIG_FILE in files:
        # --mcp-config takes several values: the flag after it ends the list.
        argv += ["--mcp-config", os.fspath(files[_MCP_CONFIG_FILE]), "--strict-mcp-config"]
    if options.permission_mode is not None:
        argv += ["--permission-mode", options.permission_mode]
    if options.dangerously_skip_permissions:
        argv.append("--dangerously-skip-permissions")
    argv += options.extra_args
    if _SETTINGS_FILE in files:
        # Only the last --settings counts: ours goes after the caller's arguments.
        argv += ["--settings", os.fspath(files[_SETTINGS_FILE])]
    return argv


# --- helpers -------------------------------------------------------------------------------


def _utf8(text: str, name: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{name} cannot be written as UTF-8: {exc}") from None


def _mcp_config(servers: Mapping[str, Mapping[str, object]]) -> bytes:
    config = {"mcpServers": {name: dict(server) for name, server in servers.items()}}
    try:
        return json.dumps(config).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"mcp_servers is not JSON-serialisable: {exc}") from None


@contextlib.contextmanager
def _private_files(
    files: Mapping[str, bytes], temp_dir: str | os.PathLike[str] | None
) -> Iterator[dict[str, Path]]:
    """Write *files* into a new 0700 directory; remove it all on exit."""
    if not files:
        yield {}
        return
    with private_directory("claude-trio-", temp_dir) as directory:
        paths = {}
        for name, data in files.items():
            paths[name] = path = directory / name
            write_private(path, data)
        yield paths
