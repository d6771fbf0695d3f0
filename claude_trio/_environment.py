"""The environment a ``claude`` process is started with.

The environment is built in four layers; each one beats the ones before it:

1. **Pass-through**: the variables of the caller's environment (`os.environ`) that
   `is_passed_through` accepts: the exact names in `PASS_THROUGH_NAMES` and the names that
   start with one of `PASS_THROUGH_PREFIXES`, less `EXCLUDED_NAMES`, `EXCLUDED_PREFIXES`
   and `EXCLUDED_SUFFIXES`. Nothing else of the caller's environment reaches the CLI.
2. **Library defaults** (`library_defaults`): ``TERM=xterm-256color``, ``LANG=C.UTF-8``
   (only when the pass-through layer has no ``LANG``), ``CLAUDE_CODE_MAX_RETRIES=2``,
   ``CLAUDE_CODE_DISABLE_FILE_MENTIONS=1``,
   ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`` and ``DISABLE_AUTOUPDATER=1`` (unless
   ``nonessential_traffic``), ``CLAUDE_CODE_DISABLE_BACKGROUND_TASKS=1`` (unless
   ``background_tasks``).
3. **Options**: ``max_retries`` (``CLAUDE_CODE_MAX_RETRIES``), ``config_dir``
   (``CLAUDE_CONFIG_DIR``); ``nonessential_traffic=True`` removes both quiet variables
   and ``background_tasks=True`` removes ``CLAUDE_CODE_DISABLE_BACKGROUND_TASKS``, even
   when they came from the caller's environment.
4. **Explicit env**: the options' ``env``, set as given (an empty string blanks a
   variable; the CLI treats an empty value as unset).

An option given explicitly (not left at its default) that contradicts an entry of the
explicit ``env`` is an error (`check_env_conflicts`), so nothing is silently overridden.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

#: Exact names taken from the caller's environment.
PASS_THROUGH_NAMES: Final = frozenset(
    {
        # Process basics, locale, XDG directories.
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
        # Where the CLI keeps its config (the ``config_dir`` option beats it).
        "CLAUDE_CONFIG_DIR",
        # TLS trust.
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "NODE_EXTRA_CA_CERTS",
        # Proxies, in both cases.
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "all_proxy",
        # Google Vertex AI (with CLAUDE_CODE_USE_VERTEX and ANTHROPIC_VERTEX_PROJECT_ID).
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_QUOTA_PROJECT",
        "GCLOUD_PROJECT",
        "CLOUD_ML_REGION",
        # Tuning variables the 2.1.328 binary reads.
        "MAX_THINKING_TOKENS",
        "API_TIMEOUT_MS",
        "BASH_DEFAULT_TIMEOUT_MS",
        "BASH_MAX_TIMEOUT_MS",
        "BASH_MAX_OUTPUT_LENGTH",
        "MCP_TIMEOUT",
        "MCP_TOOL_TIMEOUT",
        "MAX_MCP_OUTPUT_TOKENS",
        "DO_NOT_TRACK",
    }
)

#: Name prefixes taken from the caller's environment (less the exclusions below).
PASS_THROUGH_PREFIXES: Final = (
    "ANTHROPIC_",  # API key, auth token, base URL, models, custom headers
    "CLAUDE_CODE_",  # the CLI's own settings, CLAUDE_CODE_USE_BEDROCK / _VERTEX / …
    "AWS_",  # Amazon Bedrock credentials and region
    "CLOUDSDK_",  # gcloud configuration for Vertex AI
    "VERTEX_REGION_",  # per-model Vertex regions
    "DISABLE_",  # DISABLE_TELEMETRY, DISABLE_PROMPT_CACHING, …
    "OTEL_",  # OpenTelemetry exporters, used when CLAUDE_CODE_ENABLE_TELEMETRY is set
)

#: Names never taken from the caller's environment, though a prefix above matches some.
#: A running Claude Code sets these for the processes it starts, or writes them into its
#: own environment, so a library used from inside Claude Code (its Bash tool, a hook, an
#: SDK host) would pass the parent's session to the child: it would count as a nested
#: session of the parent, link its session to the parent's, report the parent's
#: entrypoint (User-Agent, billing header, JSONL ``entrypoint``), attach to the parent's
#: IDE, or take over the parent's ``--bare`` / safe mode.
EXCLUDED_NAMES: Final = frozenset(
    {
        # Set by Claude Code for every process it starts (read as "I am a child session").
        "CLAUDECODE",
        "CLAUDE_CODE_CHILD_SESSION",
        "CLAUDE_CODE_CHILD_NOTES_DIR",
        "CLAUDE_CODE_EXECPATH",
        "CLAUDE_CODE_INVOKED_SKILLS",
        "CLAUDE_CODE_LAUNCHED_BY_SESSION_IDS",
        # Written by Claude Code into its own environment.
        "CLAUDE_CODE_ENTRYPOINT",
        "CLAUDE_CODE_ENVIRONMENT_KIND",
        "CLAUDE_CODE_SIMPLE",
        "CLAUDE_CODE_SAFE_MODE",
        # The IDE extension's port: the child would connect to the user's editor.
        "CLAUDE_CODE_SSE_PORT",
        # State of a background session being relaunched, or of a server-spawned worker.
        "CLAUDE_CODE_RESUME_INTERRUPTED_TURN",
        "CLAUDE_CODE_RESUME_INTERRUPTED_TURN_MAX_AGE_MS",
        "CLAUDE_CODE_RESUME_PROMPT",
        "CLAUDE_CODE_RESUME_SHOWS_CUT_OFF_CALLS",
        "CLAUDE_CODE_RESUME_REASON",
        "CLAUDE_CODE_RESUME_SOURCE_ALIVE",
        "CLAUDE_CODE_RESUME_HINT_COMMAND",
        "CLAUDE_CODE_RESUME_FROM_SESSION",
        "CLAUDE_CODE_DISABLE_DEFERRED_TOOL_RESUME",
        "CLAUDE_CODE_CONTAINER_ID",
        "CLAUDE_CODE_SPAWNED_BY_SERVER",
        "CLAUDE_CODE_SPAWN_TIMESTAMP_MS",
        "CLAUDE_CODE_MESSAGING_SOCKET",
        "CLAUDE_CODE_MESSAGING_TOKEN",
        "CLAUDE_CODE_WORKER_EPOCH",
    }
)

#: Name prefixes never taken from the caller's environment.
EXCLUDED_PREFIXES: Final = (
    "CLAUDE_TRIO_",  # this library's own variables (CLI path, process-tree mark, tests)
    "CLAUDE_CODE_SESSION_",  # the parent's session: id, kind, name, access token, …
    "CLAUDE_CODE_REMOTE",  # a remote (cloud) session's state
    "CLAUDE_CODE_BRIDGE_",  # remote-control bridge state
    "CLAUDE_CODE_RELAUNCH_",  # a background session's relaunch state
)

#: Name suffixes never taken from the caller's environment: file descriptor numbers.
#: The child inherits no descriptor but 0-2 (ptyprocess closes the others), so these
#: would name nothing, or the wrong file.
EXCLUDED_SUFFIXES: Final = ("_FILE_DESCRIPTOR",)

#: How often the CLI retries a failed request unless told otherwise. The CLI's own
#: default of 10 takes minutes on a 401 (FACTS.md §11).
DEFAULT_MAX_RETRIES: Final = 2

_TERM: Final = "xterm-256color"
_LANG: Final = "C.UTF-8"
_RETRIES_VAR: Final = "CLAUDE_CODE_MAX_RETRIES"
_CONFIG_VAR: Final = "CLAUDE_CONFIG_DIR"
_NONESSENTIAL_VAR: Final = "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"
_AUTOUPDATER_VAR: Final = "DISABLE_AUTOUPDATER"
_BACKGROUND_VAR: Final = "CLAUDE_CODE_DISABLE_BACKGROUND_TASKS"
_MENTIONS_VAR: Final = "CLAUDE_CODE_DISABLE_FILE_MENTIONS"
# How the CLI reads a boolean variable (its own list of false words).
_FALSE_WORDS: Final = frozenset({"", "0", "false", "no", "off"})


def is_passed_through(name: str) -> bool:
    """Whether a variable of the caller's environment is given to the CLI (layer 1)."""
    if name in EXCLUDED_NAMES or name.startswith(EXCLUDED_PREFIXES):
        return False
    if name.endswith(EXCLUDED_SUFFIXES):
        return False
    return name in PASS_THROUGH_NAMES or name.startswith(PASS_THROUGH_PREFIXES)


def passed_through(environ: Mapping[str, str]) -> dict[str, str]:
    """Return the part of *environ* that is given to the CLI (layer 1)."""
    return {name: value for name, value in environ.items() if is_passed_through(name)}


def library_defaults(
    *, nonessential_traffic: bool = False, background_tasks: bool = False
) -> dict[str, str]:
    """Return the library's default variables (layer 2), ``LANG`` aside.

    ``LANG=C.UTF-8`` is a default too, but only when the caller's environment has none;
    `child_env` applies it.

    Args:
        nonessential_traffic: Leave out ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC`` and
            ``DISABLE_AUTOUPDATER``. With them the CLI sends only the turns' requests: no
            ``HEAD /api/hello``, no session-title request, no update check.
        background_tasks: Leave out ``CLAUDE_CODE_DISABLE_BACKGROUND_TASKS``, which
            removes the Bash tool's ``run_in_background`` and background agents.
    """
    # A typed "@path" would make the CLI read that local file into the request: text
    # that comes from elsewhere (a gateway's client) must not reach local files.
    defaults = {"TERM": _TERM, _RETRIES_VAR: str(DEFAULT_MAX_RETRIES), _MENTIONS_VAR: "1"}
    if not nonessential_traffic:
        defaults[_NONESSENTIAL_VAR] = "1"
        defaults[_AUTOUPDATER_VAR] = "1"
    if not background_tasks:
        defaults[_BACKGROUND_VAR] = "1"
    return defaults


def check_env_conflicts(
    env: Mapping[str, str],
    *,
    config_dir: str | os.PathLike[str] | None = None,
    max_retries: int | None = None,
    nonessential_traffic: bool = False,
    background_tasks: bool = False,
) -> None:
    """Raise `ValueError` if an explicit option contradicts the explicit *env*.

    Options left at their defaults (None, False) never conflict: explicit *env* beats the
    library's defaults. Meant to be called when the options are created.

    Args:
        env: The variables the caller gave explicitly.
        config_dir: The ``config_dir`` option; conflicts with a ``CLAUDE_CONFIG_DIR``
            naming another directory.
        max_retries: The ``max_retries`` option; conflicts with a
            ``CLAUDE_CODE_MAX_RETRIES`` of another number.
        nonessential_traffic: The ``nonessential_traffic`` option; True conflicts with a
            non-empty ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC`` (the CLI reads any
            non-empty value as set). ``DISABLE_AUTOUPDATER`` in *env* is no conflict: it
            keeps the update check off while the rest of the traffic is allowed.
        background_tasks: The ``background_tasks`` option; True conflicts with a
            ``CLAUDE_CODE_DISABLE_BACKGROUND_TASKS`` that the CLI reads as true.

    Raises:
        ValueError: Naming the option and the variable.
    """
    if max_retries is not None:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be a non-negative integer, got {max_retries!r}")
        given = env.get(_RETRIES_VAR)
        if given is not None and _as_int(given) != max_retries:
            raise ValueError(
                f"max_retries={max_retries} conflicts with env {_RETRIES_VAR}={given!r}: "
                "give only one of them"
            )
    if config_dir is not None:
        given = env.get(_CONFIG_VAR)
        if given is not None and not _same_dir(given, config_dir):
            raise ValueError(
                f"config_dir={os.fspath(config_dir)!r} conflicts with env "
                f"{_CONFIG_VAR}={given!r}: give only one of them"
            )
    if nonessential_traffic and env.get(_NONESSENTIAL_VAR):
        raise ValueError(
            f"nonessential_traffic=True conflicts with env "
            f"{_NONESSENTIAL_VAR}={env[_NONESSENTIAL_VAR]!r}, which turns that traffic off"
        )
    if background_tasks and env.get(_BACKGROUND_VAR, "").strip().lower() not in _FALSE_WORDS:
        raise ValueError(
            f"background_tasks=True conflicts with env "
            f"{_BACKGROUND_VAR}={env[_BACKGROUND_VAR]!r}, which turns background tasks off"
        )


def child_env(
    *,
    env: Mapping[str, str],
    config_dir: str | os.PathLike[str] | None,
    max_retries: int | None,
    nonessential_traffic: bool,
    background_tasks: bool,
    environ: Mapping[str, str] = os.environ,
) -> dict[str, str]:
    """Return the whole environment to start the CLI with, layer by layer.

    The arguments are the options of the same names, already checked with
    `check_env_conflicts` (`ConversationOptions` does that on creation).

    Args:
        env: The explicit variables (layer 4).
        config_dir: ``CLAUDE_CONFIG_DIR``, when given as an option.
        max_retries: ``CLAUDE_CODE_MAX_RETRIES``, when given as an option.
        nonessential_traffic: Drop the variables that turn nonessential traffic off.
        background_tasks: Drop the variable that turns background tasks off.
        environ: The caller's environment (layer 1).
    """
    result = passed_through(environ)
    if "LANG" not in result:
        result["LANG"] = _LANG
    result.update(
        library_defaults(
            nonessential_traffic=nonessential_traffic, background_tasks=background_tasks
        )
    )
    if max_retries is not None:
        result[_RETRIES_VAR] = str(max_retries)
    if config_dir is not None:
        result[_CONFIG_VAR] = os.fspath(config_dir)
    if nonessential_traffic:
        result.pop(_NONESSENTIAL_VAR, None)
        result.pop(_AUTOUPDATER_VAR, None)
    if background_tasks:
        result.pop(_BACKGROUND_VAR, None)
    result.update(env)
    return result


def config_dir_of(env: Mapping[str, str]) -> Path:
    """Return the config directory a CLI started with *env* uses.

    ``CLAUDE_CONFIG_DIR`` if set and not empty, else ``$HOME/.claude``. The CLI's
    ``.claude.json`` is in that directory when ``CLAUDE_CONFIG_DIR`` is set, else in
    ``$HOME``.
    """
    if env.get(_CONFIG_VAR):
        return Path(env[_CONFIG_VAR])
    return Path(env.get("HOME") or Path.home()) / ".claude"


# --- helpers -------------------------------------------------------------------------------


def _as_int(value: str) -> int | None:
    try:
        return int(value.strip())
    except ValueError:
        return None


def _same_dir(given: str, config_dir: str | os.PathLike[str]) -> bool:
    return os.path.abspath(given) == os.path.abspath(config_dir)
