"""The tools of the fake ``claude``: Bash (in its own process group), Read, and refusals.

Bash runs ``/bin/bash -c <command>`` as a session leader, so that, as with the real CLI
(FACTS.md §7), a ``killpg`` of the CLI does not reach it and the CLI ends it itself on
an interrupt or at exit. Under ``--permission-mode default`` a Bash call first shows the
permission prompt: ``1`` (or Enter) runs it, ESC refuses it (FACTS.md §9). Any other
tool gets a ``tool_result`` error.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from . import _fake_chain as chain
from ._fake_input import InputEvent, Key, Typed
from ._fake_records import REJECTED, JsonObject, Recorder
from ._fake_screen import block

if TYPE_CHECKING:
    from ._fake_cli import FakeOptions

_ASKING_MODES: Final = frozenset({"default", "acceptEdits", "plan"})
_QUIET_COMMANDS: Final = frozenset(
    {"touch", "mkdir", "rm", "mv", "cp", "chmod", "chown", "ln", "cd", "true"}
)
BASH_TIMEOUT: Final = 120.0
_BASH_TIMEOUT_MAX: Final = 600.0
_CHILD_GRACE: Final = 0.5


class Refused(Exception):
    """The user refused a tool call at the permission prompt."""


class ToolRunner:
    """Runs tool calls and records their results; owns the Bash children.

    Args:
        options: The CLI's options (permission mode, cwd).
        recorder: Where the results go.
        transcript: The screen's transcript, to show what ran.
        show_prompt: Called with ``(command, description)`` to show the permission
            prompt, and with None to take it down again.
    """

    def __init__(
        self,
        options: FakeOptions,
        recorder: Recorder,
        transcript: list[str],
        show_prompt: Callable[[tuple[str, str] | None], None],
    ) -> None:
        self.options = options
        self.recorder = recorder
        self.transcript = transcript
        self._show_prompt = show_prompt
        self.children: set[asyncio.subprocess.Process] = set()
        self._permission: asyncio.Future[bool] | None = None

    async def run(
        self, prompt_id: str, name: str, arguments: dict[str, Any], tool_use_id: str, source: str
    ) -> JsonObject:
        """Run one tool call, record its result, and return the ``tool_result`` block.

        Raises:
            Refused: If the user refused the call at the permission prompt.
        """
        mode = self.options.permission_mode
        if name == "Bash":
            command = str(arguments.get("command", ""))
            description = str(arguments.get("description", "")) or command
            if mode in _ASKING_MODES:
                if not await self._ask_permission(command, description):
                    raise Refused(name)
                decision: JsonObject = {
                    "decision": "accept",
                    "source": "user_temporary",
                    "grantScope": "once",
                    "reasonCode": "unknown",
                }
            else:
                reason = "subcommandResults" if mode == "auto" else "mode"
                decision = {"decision": "accept", "source": "config", "reasonType": reason}
            return await self._bash(prompt_id, command, arguments, tool_use_id, source, decision)
        if name == "Read":
            return self._read(prompt_id, arguments, tool_use_id, source)
        text = f"Error: No such tool available: {name}"
        self.transcript += [f"● {name}()", f"  ⎿  {text}", ""]
        return self._result(
            prompt_id,
            tool_use_id,
            f"<tool_use_error>{text}</tool_use_error>",
            True,
            text,
            source,
            {},
        )

    def refuse(
        self, prompt_id: str, tool_use_id: str, source: str, *, before_run: bool
    ) -> JsonObject:
        """Record a refused or interrupted call; return its ``tool_result`` block."""
        chain.tool_rejected(
            self.recorder,
            prompt_id=prompt_id,
            tool_use_id=tool_use_id,
            source=source,
            before_run=before_run,
        )
        return {
            "type": "tool_result",
            "content": REJECTED,
            "is_error": True,
            "tool_use_id": tool_use_id,
        }

    async def _bash(
        self,
        prompt_id: str,
        command: str,
        arguments: dict[str, Any],
        tool_use_id: str,
        source: str,
        decision: JsonObject,
    ) -> JsonObject:
        limit = BASH_TIMEOUT
        if isinstance(arguments.get("timeout"), int | float):
            limit = min(float(arguments["timeout"]) / 1000, _BASH_TIMEOUT_MAX)
        started = time.monotonic()
        stdout, stderr, code, timed_out = await self.run_bash(command, limit)
        self.recorder.tool_ms += int((time.monotonic() - started) * 1000)
        output = "\n".join(part for part in (stdout, stderr) if part)
        if timed_out:
            output = f"Command timed out after {limit:g}s\n{output}".rstrip()
        if code != 0 or timed_out:
            text, is_error = f"Exit code {code}\n{output}".rstrip(), True
        else:
            text, is_error = output or "(Bash completed with no output)", False
        words = command.split(maxsplit=1)
        result = {
            "stdout": stdout,
            "stderr": stderr,
            "interrupted": timed_out,
            "isImage": False,
            "noOutputExpected": bool(words) and words[0] in _QUIET_COMMANDS,
        }
        self.transcript += [f"● Bash({command})", *block("  ⎿  ", text.split("\n")[0]), ""]
        extra = {"sandboxed": False, "permissionDecision": decision}
        return self._result(prompt_id, tool_use_id, text, is_error, result, source, extra)

    def _read(
        self, prompt_id: str, arguments: dict[str, Any], tool_use_id: str, source: str
    ) -> JsonObject:
        file_path = str(arguments.get("file_path", ""))
        extra = {
            "permissionDecision": {"decision": "accept", "source": "config", "reasonType": "mode"}
        }
        try:
            data = Path(self.options.cwd, file_path).read_text("utf-8", "replace")
        except OSError:
            error = "<tool_use_error>File does not exist.</tool_use_error>"
            self.transcript += [f"● Read({file_path})", "  ⎿  File does not exist.", ""]
            return self._result(
                prompt_id, tool_use_id, error, True, "Error: File does not exist.", source, extra
            )
        lines = data.split("\n")
        text = "\n".join(f"{number}\t{line}" for number, line in enumerate(lines, 1))
        result = {
            "type": "text",
            "file": {
                "filePath": file_path,
                "content": data,
                "numLines": len(lines),
                "startLine": 1,
                "totalLines": len(lines),
            },
        }
        self.transcript += [f"● Read({file_path})", f"  ⎿  Read {len(lines)} lines", ""]
        return self._result(prompt_id, tool_use_id, text, False, result, source, extra)

    def _result(
        self,
        prompt_id: str,
        tool_use_id: str,
        text: str,
        is_error: bool,
        result: Any,
        source: str,
        extra: dict[str, Any],
    ) -> JsonObject:
        chain.tool_result(
            self.recorder,
            prompt_id=prompt_id,
            tool_use_id=tool_use_id,
            content=text,
            is_error=is_error,
            result=result,
            source=source,
            extra=extra,
        )
        return {
            "tool_use_id": tool_use_id,
            "type": "tool_result",
            "content": text,
            "is_error": is_error,
        }

    # --- the permission prompt -------------------------------------------------------------

    async def _ask_permission(self, command: str, description: str) -> bool:
        self._permission = asyncio.get_running_loop().create_future()
        self.transcript += [
            f"  {description[:1].upper()}{description[1:]}",
            f"  ⎿  $ {command}",
            "",
        ]
        self._show_prompt((command, description))
        try:
            return await self._permission
        finally:
            self._permission = None
            self._show_prompt(None)

    def answer(self, event: InputEvent) -> None:
        """Answer the permission prompt: ``1``-``3`` or Enter allow, ``4``, ESC or Ctrl-C refuse."""
        future = self._permission
        if future is None or future.done():
            return
        first = event.text[:1] if isinstance(event, Typed) else ""
        name = event.name if isinstance(event, Key) else ""
        if name == "enter" or first in ("1", "2", "3"):
            future.set_result(True)
        elif name in ("escape", "ctrl-c") or first == "4":
            future.set_result(False)

    # --- processes ---------------------------------------------------------------------------

    async def run_bash(self, command: str, limit: float) -> tuple[str, str, int, bool]:
        """Run ``/bin/bash -c command`` in a process group of its own, for at most *limit* s.

        Returns:
            Its stdout and stderr (without the final newline), exit status, and whether it
            was killed for running too long.
        """
        process = await asyncio.create_subprocess_exec(
            "/bin/bash",
            "-c",
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.options.cwd,
            start_new_session=True,
        )
        self.children.add(process)
        timed_out = False
        try:
            try:
                out, err = await asyncio.wait_for(process.communicate(), limit)
            except TimeoutError:
                await self._kill(process)
                out, err, timed_out = b"", b"", True
            except asyncio.CancelledError:
                await self._kill(process)
                raise
        finally:
            self.children.discard(process)
        code = process.returncode if process.returncode is not None else -1
        return _text(out), _text(err), code, timed_out

    async def _kill(self, process: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), _CHILD_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()

    async def stop_children(self) -> None:
        """End every Bash child (each in its own process group) and reap it."""
        for process in list(self.children):
            await self._kill(process)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace").rstrip("\n")
