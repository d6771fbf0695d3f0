"""Long messages through the CLI's external-editor key instead of pastes.

Ctrl-G in the CLI's input box writes the box to a prompt file
(``$TMPDIR/claude-<uid>/claude-prompt-<uuid>.md``), runs ``$VISUAL`` (or ``$EDITOR``) on
it, and loads the file back into the box when the editor exits. Measured on 2.1.328
(``benchmarks/bench_long_text.py``), that takes about a second whatever the size, while
pastes cost about 15 ms each and a multi-line message needs one per two line breaks: a
100 KB message takes 12 s of pastes and 1.3 s through the editor.

The library's "editor" is a shell script in a private directory (0700) that the CLI
runs with ``VISUAL`` pointing at it. A message is *staged* there as a 0600 file; the
script takes it by renaming it, so it fills at most one prompt file per message, and
only a path of the CLI's prompt-file form: run by anything else (a ``git commit`` in the
CLI's Bash tool inherits ``VISUAL``), it exits 1 and changes nothing.

The route is used only where nothing of the caller's is overridden: when neither
``VISUAL`` nor ``EDITOR`` nor ``CLAUDE_CODE_TMPDIR`` is in the CLI's environment, and when
the script's path has no space (the CLI splits the editor setting on spaces).
"""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final, final

from ._private import private_directory, write_private

#: The key that opens the editor.
CTRL_G: Final = b"\x07"
#: The CLI's own settings this route would override, or whose prompt directory it
#: cannot predict: with any of them set, messages are pasted.
CALLER_SETTINGS: Final = ("VISUAL", "EDITOR", "CLAUDE_CODE_TMPDIR")
# The CLI runs an editor whose name looks like a known one (code, vim, nano...) with
# other arguments: the script's name must look like none of them.
_SCRIPT_NAME: Final = "fill-prompt"


@final
class EditorRoute:
    """The private directory of one conversation's editor script.

    Made by `editor_route`. `stage` puts the next message there for the script to take.

    Attributes:
        script: The script the CLI runs as ``$VISUAL``.
        prompt_dir: The directory of the CLI's prompt files, the only place the script
            writes to.
    """

    def __init__(self, directory: Path, prompt_dir: Path) -> None:
        self._directory = directory
        self.prompt_dir = prompt_dir
        self.script = directory / _SCRIPT_NAME
        self._pending = directory / "pending"
        self._taken = directory / "taken"

    def write_script(self) -> None:
        """Write the script (mode 0700)."""
        quote = shlex.quote
        prompts = quote(str(self.prompt_dir))
        pending, taken = quote(str(self._pending)), quote(str(self._taken))
        body = (
            "#!/bin/sh\n"
            "# claude-trio: load one staged message into the claude CLI's prompt file.\n"
            f'case "$1" in {prompts}/claude-prompt-*.md) ;; *) exit 1 ;; esac\n'
            f'case "${{1#{prompts}/}}" in */*) exit 1 ;; esac\n'
            f"mv -f -- {pending} {taken} 2>/dev/null || exit 1\n"
            f'cat -- {taken} > "$1" || {{ rm -f -- {taken}; exit 1; }}\n'
            f"rm -f -- {taken}\n"
        )
        write_private(self.script, body.encode(), mode=0o700)

    def stage(self, text: str) -> None:
        """Make *text* the message the script loads next (a new 0600 file).

        Raises:
            OSError: If the file cannot be written.
        """
        self.withdraw()
        write_private(self._pending, text.encode("utf-8"), mode=0o600)

    @property
    def taken(self) -> bool:
        """Whether the script has taken the staged message (or none is staged)."""
        return not self._pending.exists()

    def withdraw(self) -> bool:
        """Remove the staged message unless the script took it; return whether it was
        still there (then the CLI never loaded it)."""
        try:
            self._pending.unlink()
        except FileNotFoundError:
            return False
        return True


def editor_prompt_dir(env: Mapping[str, str]) -> Path | None:
    """Where the CLI writes its prompt files with environment *env*, or None when the
    route must not be used (the caller set one of `CALLER_SETTINGS`)."""
    if any(name in env for name in CALLER_SETTINGS):
        return None
    # The CLI takes the temporary directory as node's os.tmpdir() does.
    temp = env.get("TMPDIR") or "/tmp"
    return Path(temp.rstrip("/") or "/") / f"claude-{os.getuid()}"


@contextlib.contextmanager
def editor_route(
    env: Mapping[str, str], *, temp_dir: str | os.PathLike[str] | None = None
) -> Iterator[EditorRoute | None]:
    """Create the editor script for a CLI with environment *env*; None if the route
    cannot be used (see the module description). The directory, and anything staged
    in it, is removed when the block ends.

    Raises:
        OSError: If the private directory cannot be created.
    """
    prompt_dir = editor_prompt_dir(env)
    if prompt_dir is None:
        yield None
        return
    with private_directory("claude-trio-editor-", temp_dir) as directory:
        if " " in str(directory) or not str(directory).isprintable():
            yield None
            return
        route = EditorRoute(directory, prompt_dir)
        route.write_script()
        yield route
