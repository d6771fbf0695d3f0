"""Finding the ``claude`` executable."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from ._errors import CLINotFoundError

#: The CLI release this library is built and tested against.
PINNED_CLI_VERSION = "2.1.328"

#: The environment variable that names the ``claude`` executable to use.
CLI_ENV_VAR = "CLAUDE_TRIO_CLI"

_INSTALL_HINT = (
    "Install the Claude Code CLI, for example into a project-local prefix with\n"
    f"    npm install --prefix .claude-cli @anthropic-ai/claude-code@{PINNED_CLI_VERSION}\n"
    f"then point {CLI_ENV_VAR} at .claude-cli/node_modules/.bin/claude, pass "
    "cli_path=..., or put claude on PATH."
)


def find_cli(
    cli_path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> Path:
    """Return the path of the ``claude`` executable to run.

    The first of these that is set wins: the *cli_path* argument, the
    ``CLAUDE_TRIO_CLI`` environment variable, then ``claude`` on ``PATH``. A path that
    is set but does not name an executable file is an error; it never falls through to
    the next source, so a typo cannot silently pick up another install.

    Args:
        cli_path: An explicit path, usually from an options object.
        env: The environment to read ``CLAUDE_TRIO_CLI`` and ``PATH`` from; defaults to
            `os.environ`.

    Returns:
        The absolute path of the executable.

    Raises:
        CLINotFoundError: If nothing was found; the message says how to install the CLI.
    """
    environ = os.environ if env is None else env
    if cli_path is not None:
        return _checked(Path(cli_path), f"cli_path={os.fspath(cli_path)!r}")
    from_env = environ.get(CLI_ENV_VAR)
    if from_env:
        return _checked(Path(from_env), f"{CLI_ENV_VAR}={from_env!r}")
    search_path = environ.get("PATH", os.defpath)
    found = shutil.which("claude", path=search_path)
    if found is not None:
        return Path(found).absolute()
    raise CLINotFoundError(
        f"The claude CLI was not found (no cli_path, no {CLI_ENV_VAR}, not on PATH).\n"
        + _INSTALL_HINT,
        searched=("cli_path", CLI_ENV_VAR, f"PATH={search_path}"),
    )


def _checked(path: Path, source: str) -> Path:
    if path.is_file() and os.access(path, os.X_OK):
        return path.absolute()
    problem = "is not executable" if path.is_file() else "does not exist"
    raise CLINotFoundError(
        f"The claude CLI given by {source} {problem}.\n" + _INSTALL_HINT,
        searched=(source,),
    )
