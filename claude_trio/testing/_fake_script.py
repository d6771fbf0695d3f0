"""`write_fake_cli`: an executable ``claude`` script that runs the fake CLI.

It lives apart from ``_fake_cli`` so that importing it (``claude_trio.testing`` does)
never imports the module that ``python -m claude_trio.testing._fake_cli`` runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Final

__all__ = ["write_fake_cli"]

_LAUNCHER: Final = """#!{python} -IS
# A fake `claude` CLI for tests, written by claude_trio.testing.write_fake_cli.
# The packages are stubbed so that only the fake's own stdlib-only modules load, not
# claude_trio's heavy package imports: it starts in tens of milliseconds.
import sys
import types

for name, path in {packages!r}:
    module = types.ModuleType(name)
    module.__path__ = [path]
    sys.modules[name] = module
from claude_trio.testing._fake_cli import main

sys.exit(main())
"""


def write_fake_cli(directory: str | os.PathLike[str]) -> Path:
    """Write an executable fake ``claude`` into *directory* and return its path.

    The script runs this package's imitation of the Claude Code CLI 2.1.328 with
    this interpreter (``sys.executable``): pass the path wherever a CLI path goes
    (``cli_path=``, ``CLAUDE_TRIO_CLI``). It behaves as the real CLI was measured to
    behave: the first-run dialogs, the idle input box, bracketed pastes, the session JSONL
    written in batches, API errors and retries, interrupts and Bash tools. It calls the
    API at ``ANTHROPIC_BASE_URL`` (use `open_mock_anthropic_api`), or replays a real
    session file given by ``FAKE_CLAUDE_REPLAY``. It refuses to start without
    ``CLAUDE_CONFIG_DIR``, so it never touches ``~/.claude``.

    Args:
        directory: An existing directory; the script is written there as ``claude``
            (replacing a file of that name).

    Returns:
        The script's path (mode 0755).

    Raises:
        OSError: If the script cannot be written.

    .. versionadded:: 0.1.0
    """
    package = Path(__file__).resolve().parent.parent
    script = Path(directory) / "claude"
    packages = (("claude_trio", str(package)), ("claude_trio.testing", str(package / "testing")))
    script.write_text(_LAUNCHER.format(python=sys.executable, packages=packages))
    script.chmod(0o755)
    return script
