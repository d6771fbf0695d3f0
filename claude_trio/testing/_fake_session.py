"""The running fake ``claude``: its TUI, keys, signals and exit (asyncio, stdlib only).

One asyncio loop serves everything: the PTY input (``add_reader`` on stdin), the flush
timer of the session file, the turn task (``_fake_turns``), and SIGTERM/SIGHUP/SIGINT.
An interrupt (ESC or Ctrl-C during a turn) cancels the turn task, which records what the
real CLI records for it (FACTS.md §7).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import subprocess
import sys
import traceback
import uuid
from typing import TYPE_CHECKING, Final

from ._fake_dialogs import read_settings, write_settings
from ._fake_input import (
    PILL_CHARS,
    Action,
    BashInput,
    Command,
    InputEvent,
    Key,
    KeyReader,
    Notice,
    Pasted,
    Prompt,
    PromptBox,
    Typed,
    classify,
)
from ._fake_records import Recorder, SessionWriter
from ._fake_screen import compose, hint, input_area, permission_prompt
from ._fake_turns import TurnRunner

if TYPE_CHECKING:
    from ._fake_cli import FakeOptions
    from ._fake_screen import Terminal

_ESCAPE_WAIT: Final = 0.05
_FLUSH_INTERVAL: Final = 0.1
_EXIT_KEY_WINDOW: Final = 1.0
_SPINNER_INTERVAL: Final = 1.0
_TURN_STOP_WAIT: Final = 2.0
_TRANSCRIPT_LIMIT: Final = 2000


def run_session(options: FakeOptions, terminal: Terminal, transcript: list[str]) -> int:
    """Run the TUI until the CLI exits; returns the exit status."""
    return asyncio.run(FakeSession(options, terminal, transcript).run())


class FakeSession:
    """The state of the TUI and the glue between keys, turns and the screen."""

    def __init__(self, options: FakeOptions, terminal: Terminal, transcript: list[str]) -> None:
        self.options = options
        self.terminal = terminal
        self.transcript = transcript
        self.box = PromptBox()
        self.placeholder = ""
        self.notice: str | None = None
        self.status: list[str] = []
        self.permission: tuple[str, str] | None = None
        self.turn: asyncio.Task[None] | None = None
        self.interrupting = False
        self._stdin = sys.stdin.fileno()
        self._reader = KeyReader()
        self._queue: collections.deque[Action] = collections.deque()
        self._exit_key: str | None = None
        self._exit_key_handle: asyncio.TimerHandle | None = None
        self._escape_handle: asyncio.TimerHandle | None = None
        self._flush_handle: asyncio.TimerHandle | None = None
        self._render_pending = False
        self._spinner: asyncio.TimerHandle | None = None
        self._exiting = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit: asyncio.Future[int] | None = None
        self.writer = SessionWriter(options.session_file, self._schedule_flush)
        self.recorder = Recorder(
            self.writer,
            session_id=options.session_id,
            cwd=options.cwd,
            entrypoint=options.entrypoint,
            permission_mode=options.permission_mode,
            model=options.model,
            git_branch=_git_branch(options.cwd),
            is_git_repo=_git_root(options.cwd) is not None,
        )
        self.runner = TurnRunner(self)

    # --- life cycle ------------------------------------------------------------------------

    async def run(self) -> int:
        """Serve keys and turns until an exit; then stop children, flush, and leave."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._exit = loop.create_future()
        if self.options.fault != "stop-reading":
            loop.add_reader(self._stdin, self._on_readable)
        for signum, code in ((signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 0)):
            loop.add_signal_handler(signum, self.finish, code)
        loop.add_signal_handler(signal.SIGWINCH, self._on_resize)
        self.render()
        if self.options.initial_prompt:
            self._start(Prompt(self.options.initial_prompt))
        code = await self._exit
        try:
            await self._shutdown(code)
        except Exception:
            self._crash_report()
            return 70
        return code

    def finish(self, code: int) -> None:
        """Make the CLI exit with *code* (idempotent)."""
        if self._exit is not None and not self._exit.done():
            self._exit.set_result(code)

    async def _shutdown(self, code: int) -> None:
        self._exiting = True
        assert self._loop is not None
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(self._stdin)
        if self.turn is not None and not self.turn.done():
            self.interrupting = False
            self.turn.cancel()
            await asyncio.wait({self.turn}, timeout=_TURN_STOP_WAIT)
        await self.runner.stop_children()
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self.runner.exit_records()
        self.writer.flush()
        self._remember_session()
        self.terminal.leave_tui()
        if code == 0 and self.writer.started:
            self.terminal.write(f"\r\nResume this session with:\r\n{self.options.resume_hint}\r\n")

    def _remember_session(self) -> None:
        path = self.options.claude_json
        settings = read_settings(path)
        projects = settings.setdefault("projects", {})
        if not isinstance(projects, dict):
            return
        entry = projects.setdefault(self.options.cwd, {})
        if isinstance(entry, dict):
            entry.update(lastSessionId=self.options.session_id, lastCost=0, lastDuration=0)
            with contextlib.suppress(OSError):
                write_settings(path, settings)

    def _crash_report(self) -> None:
        self.terminal.leave_tui()
        report = "fake claude crashed:\n" + traceback.format_exc()
        self.terminal.write(report.replace("\n", "\r\n"))

    # --- the screen ------------------------------------------------------------------------

    def render(self) -> None:
        """Redraw soon (several changes in one loop pass give one frame)."""
        if self._render_pending or self._exiting or self._loop is None:
            return
        self._render_pending = True
        self._loop.call_soon(self._draw)

    def _draw(self) -> None:
        self._render_pending = False
        if self._exiting:
            return
        columns, rows = self.terminal.columns, self.terminal.rows
        if len(self.transcript) > _TRANSCRIPT_LIMIT:
            del self.transcript[: len(self.transcript) - _TRANSCRIPT_LIMIT]
        if self.permission is not None:
            command, description = self.permission
            bottom = permission_prompt(
                columns=columns, command=command, description=description, cwd=self.options.cwd
            )
        else:
            notice = self.notice or self.box.notice
            bottom = input_area(
                columns=columns,
                box_text=self.box.shown(),
                placeholder=self.placeholder,
                hint_line=hint(self.options.permission_mode, running=self.running, notice=notice),
                status=self.status,
            )
        self.terminal.draw(compose(self.transcript, bottom, columns=columns, rows=rows))

    def show_permission(self, prompt: tuple[str, str] | None) -> None:
        """Show the permission prompt for ``(command, description)``, or take it down."""
        self.permission = prompt
        self.render()

    def _on_resize(self) -> None:
        with contextlib.suppress(OSError):
            size = os.get_terminal_size(self.terminal_fd)
            self.terminal.resize(size.columns, size.lines)
        self.render()

    @property
    def terminal_fd(self) -> int:
        """The fd of the terminal the fake draws on."""
        return sys.stdout.fileno()

    def start_spinner(self) -> None:
        """Keep the status line ticking while a turn runs."""
        if self._spinner is None and self._loop is not None:
            self._spinner = self._loop.call_later(_SPINNER_INTERVAL, self._tick)

    def _tick(self) -> None:
        self._spinner = None
        if self.running:
            self.runner.refresh_status()
            self.render()
            self.start_spinner()

    # --- the session file -------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if self._flush_handle is None and self._loop is not None and not self._exiting:
            self._flush_handle = self._loop.call_later(_FLUSH_INTERVAL, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        self.writer.flush()

    # --- input --------------------------------------------------------------------------------

    def _on_readable(self) -> None:
        try:
            data = os.read(self._stdin, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            assert self._loop is not None
            self._loop.remove_reader(self._stdin)
            self.finish(0)
            return
        self._dispatch(self._reader.feed(data))
        if self._reader.holds_escape and self._escape_handle is None and self._loop is not None:
            self._escape_handle = self._loop.call_later(_ESCAPE_WAIT, self._flush_escape)

    def _flush_escape(self) -> None:
        self._escape_handle = None
        self._dispatch(self._reader.flush_escape())

    def _dispatch(self, events: list[InputEvent]) -> None:
        for event in events:
            self._on_event(event)
        self.render()

    def _on_event(self, event: InputEvent) -> None:
        if self.permission is not None:
            self.runner.tools_runner.answer(event)
            return
        name = event.name if isinstance(event, Key) else None
        if name not in ("ctrl-c", "ctrl-d"):
            self._reset_exit_key()
        if isinstance(event, Pasted):
            self.box.paste(event.text, rows=self.terminal.rows)
        elif isinstance(event, Typed):
            if len(event.text) > PILL_CHARS:
                self.box.paste(event.text, rows=self.terminal.rows)
            else:
                self.box.type(event.text)
        elif name == "enter":
            self._enter()
        elif name == "newline":
            self.box.newline()
        elif name == "backspace":
            self.box.backspace()
        elif name == "escape":
            if self.running:
                self.interrupt()
        elif name == "ctrl-c":
            if self.running:
                self.interrupt()
            elif not self.box.is_empty():
                self.box.clear()
            else:
                self._press_exit_key("Ctrl-C")
        elif name == "ctrl-d" and not self.running and self.box.is_empty():
            self._press_exit_key("Ctrl-D")
        elif name == "ctrl-g" and not self.running:
            self._edit_in_editor()

    def _edit_in_editor(self) -> None:
        """Ctrl-G: the box goes to ``$VISUAL`` (or ``$EDITOR``) in a prompt file, and what
        the editor leaves there comes back (FACTS §3a). The real CLI falls back to
        ``code``, ``vi`` or ``nano``; the fake does nothing without a setting."""
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
        if not editor:
            return
        directory = os.path.join(os.environ.get("TMPDIR") or "/tmp", f"claude-{os.getuid()}")
        os.makedirs(directory, mode=0o700, exist_ok=True)
        path = os.path.join(directory, f"claude-prompt-{uuid.uuid4()}.md")
        with open(path, "w", encoding="utf-8") as file:
            file.write(self.box.editable())
        try:
            done = subprocess.run(
                [*editor.split(" "), path],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            if done.returncode == 0:
                with open(path, encoding="utf-8") as file:
                    self.box.load(file.read(), rows=self.terminal.rows)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def _press_exit_key(self, label: str) -> None:
        if self._exit_key == label:
            self.finish(0)
            return
        self._reset_exit_key()
        self._exit_key = label
        self.notice = f"Press {label} again to exit"
        if self._loop is not None:
            self._exit_key_handle = self._loop.call_later(_EXIT_KEY_WINDOW, self._expire_exit_key)

    def _expire_exit_key(self) -> None:
        self._exit_key_handle = None
        self._reset_exit_key()
        self.render()

    def _reset_exit_key(self) -> None:
        if self._exit_key_handle is not None:
            self._exit_key_handle.cancel()
            self._exit_key_handle = None
        if self._exit_key is not None:
            self._exit_key = None
            self.notice = None

    def _enter(self) -> None:
        if self.box.held:
            self.box.held = False
            return
        if self.box.ends_with_backslash():
            self.box.drop_backslash()
            self.box.newline()
            return
        submission = self.box.take()
        if submission is None:
            return
        action = classify(submission, disable_slash_commands=self.options.disable_slash_commands)
        self.placeholder = ""
        if self.running:
            self._queue.append(action)
            if isinstance(action, Prompt):
                self.recorder.queue_operation("enqueue", action.text)
        else:
            self._start(action)

    # --- turns --------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether a turn is running."""
        return self.turn is not None and not self.turn.done()

    def interrupt(self) -> None:
        """ESC: stop the running turn, which records the interrupt."""
        if self.turn is not None and not self.turn.done() and not self.interrupting:
            self.interrupting = True
            self.turn.cancel()

    def _start(self, action: Action) -> None:
        if isinstance(action, Notice):
            self.transcript += [f"❯ {action.text}", ""]
        elif isinstance(action, Command):
            if not self.options.disable_slash_commands and action.name in ("exit", "quit"):
                self.finish(0)
                return
            self.transcript += [f"● Unknown command: /{action.name}", ""]
            if action.args:
                self.transcript += [f"● Args from unknown skill: {action.args}", ""]
        elif isinstance(action, Prompt | BashInput):
            self.turn = asyncio.ensure_future(self.runner.run_turn(action))
            self.turn.add_done_callback(self._turn_done)
            self.start_spinner()
        self.render()

    def _turn_done(self, task: asyncio.Task[None]) -> None:
        self.status = []
        self.interrupting = False
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self.transcript += [f"● fake claude failed: {exc!r}", ""]
            traceback.print_exception(exc, file=sys.stderr)
            self.finish(70)
            return
        if self.options.fault == "exit-after-turn" and not task.cancelled():
            # A CLI that writes its last records and exits at once.
            self.writer.flush()
            os._exit(0)
        self.render()
        if self._queue and not self._exiting:
            action = self._queue.popleft()
            if isinstance(action, Prompt):
                self.recorder.queue_operation("dequeue")
            self._start(action)


def _git_root(cwd: str) -> str | None:
    path = os.path.abspath(cwd)
    while True:
        if os.path.exists(os.path.join(path, ".git")):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def _git_branch(cwd: str) -> str:
    root = _git_root(cwd)
    if root is None:
        return "HEAD"
    try:
        with open(os.path.join(root, ".git", "HEAD")) as file:
            head = file.read().strip()
    except OSError:
        return "HEAD"
    prefix = "ref: refs/heads/"
    return head[len(prefix) :] if head.startswith(prefix) else "HEAD"
