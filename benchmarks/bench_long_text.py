"""Long text: chunked bracketed pastes against the CLI's Ctrl-G ``$EDITOR`` route.

Issue 12, item 4. Two ways to put a long user message into the input box of the real
CLI, each followed by Enter:

* ``paste``: what the library does today, `PtyClaudeProcess.type_message`: `prepare_text`
  cleans the text and cuts it into pastes of at most 800 characters and 2 line breaks,
  written back to back, then ``\\r``.
* ``editor``: a prototype kept inside this file. The CLI is started with ``EDITOR`` set to
  a small shell script in a private 0700 directory. The text (cleaned by `prepare_text`
  too, so the two routes carry the same text) goes to a 0600 file there; Ctrl-G
  (``\\x07``) makes the CLI write its box to ``$TMPDIR/claude-<uid>/claude-prompt-<uuid>.md``
  and run the script on that path; the script copies the text over it, once, and the
  CLI loads the file into the box. When the box shows text, ``\\r`` submits it.

Timing: for each size (1, 10, 50, 100, 300 KB; multi-line text and one single line) and
route, a fresh CLI per repetition, from the first library call (cleaning included) to
the request reaching the mock (``request``) and to the CLI's box being idle again after
the mock's answer (``turn``).

Exactness: adversarial texts, each in a fresh CLI, sent three ways (``paste``; ``editor``
with the `prepare_text` text; ``editor raw`` with the caller's text as it is), and what
the mock received compared with the input and with what `prepare_text` predicts.

Every CLI runs with ``--disable-slash-commands`` (as the library runs it), in an isolated
config under a temporary directory that is also its ``TMPDIR``; everything is removed at
the end. At most one CLI runs at a time.

Run: ``python benchmarks/bench_long_text.py [--quick] [--reps N] [--skip-timing]
[--skip-exactness]``.
"""

from __future__ import annotations

import argparse
import os
import random
import shlex
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import attrs
import trio

from claude_trio import (
    PINNED_CLI_VERSION,
    InputError,
    PtyClaudeProcess,
    find_cli,
    open_claude_pty,
    prepare_text,
)
from claude_trio._chrome import find_input_box, is_ready
from claude_trio.testing import (
    IsolatedConfig,
    MessageReply,
    MockAnthropicAPI,
    RecordedRequest,
    isolated_config,
    open_mock_anthropic_api,
    text_reply,
    tool_use_reply,
)

KB: Final = 1024
SIZES: Final = (1 * KB, 10 * KB, 50 * KB, 100 * KB, 300 * KB)
QUICK_SIZES: Final = (1 * KB, 10 * KB, 100 * KB)
#: Ctrl-G: the CLI's "edit the prompt in $EDITOR" key.
CTRL_G: Final = b"\x07"
#: Bounds, so a wedged CLI fails one measurement instead of hanging the benchmark.
START_LIMIT: Final = 30.0
BOX_LIMIT: Final = 10.0
REQUEST_LIMIT: Final = 60.0
TURN_LIMIT: Final = 60.0
#: How long to wait for a request that may never come (a text the CLI holds or runs).
MAYBE_LIMIT: Final = 6.0
REPLY: Final = "ok"


# --- the editor route (prototype) ----------------------------------------------------------


@attrs.define
class EditorShim:
    """A private directory with an ``EDITOR`` script that fills the CLI's prompt file.

    The script acts only on a path of the form ``<prompt_dir>/claude-prompt-*.md`` and
    only when a text is pending (it takes it by renaming it, so once); anything else (a
    ``git commit`` in the Bash tool, which inherits ``EDITOR``) makes it exit 1.
    """

    directory: Path
    script: Path
    pending: Path

    @classmethod
    def create(cls, parent: Path, prompt_dir: Path) -> EditorShim:
        directory = Path(tempfile.mkdtemp(prefix="editor-", dir=parent))
        os.chmod(directory, 0o700)
        pending = directory / "pending"
        taken = directory / "taken"
        script = directory / "fill-prompt"
        body = (
            "#!/bin/sh\n"
            "# claude-trio: put the pending text into the CLI's prompt file, once.\n"
            f'case "$1" in {shlex.quote(str(prompt_dir))}/claude-prompt-*.md) ;; '
            "*) exit 1 ;; esac\n"
            f"mv -f -- {shlex.quote(str(pending))} {shlex.quote(str(taken))} || exit 1\n"
            f'cat -- {shlex.quote(str(taken))} > "$1" || exit 1\n'
            f"rm -f -- {shlex.quote(str(taken))}\n"
        )
        _write_private(script, body.encode(), mode=0o700)
        return cls(directory=directory, script=script, pending=pending)

    def stage(self, text: str) -> None:
        """Make *text* the next text the script writes (a 0600 file, created anew)."""
        self.pending.unlink(missing_ok=True)
        _write_private(self.pending, text.encode("utf-8", "surrogatepass"), mode=0o600)

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _write_private(path: Path, data: bytes, *, mode: int) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


async def wait_screen(proc: PtyClaudeProcess, check: Callable[[str], bool], limit: float) -> bool:
    """Wait until *check* holds for the screen text; False after *limit* seconds."""
    with trio.move_on_after(limit):
        while True:
            if check(proc.screen.text()):
                return True
            if proc.output_ended:
                return False
            await proc.wait_output()
    return False


def box_filled(screen: str) -> bool:
    box = find_input_box(screen)
    return box is not None and bool(box.text) and not box.is_placeholder


async def editor_submit(proc: PtyClaudeProcess, shim: EditorShim, text: str) -> bool:
    """Load *text* through Ctrl-G and press Enter once the box shows it.

    Returns whether the box filled (Enter is pressed either way).
    """
    shim.stage(text)
    await proc.send_bytes(CTRL_G)
    filled = await wait_screen(proc, box_filled, BOX_LIMIT)
    await proc.send_bytes(b"\r")
    return filled


# --- running the CLI -----------------------------------------------------------------------


@attrs.define
class Bench:
    api: MockAnthropicAPI
    config: IsolatedConfig
    shim: EditorShim
    tmp: Path
    argv_base: tuple[str, ...]

    @asynccontextmanager
    async def cli(self) -> AsyncIterator[PtyClaudeProcess]:
        argv = [
            *self.argv_base[:1],
            "--session-id",
            str(uuid.uuid4()),
            *self.argv_base[1:],
        ]
        env = {**self.config.env, "TMPDIR": str(self.tmp), "EDITOR": str(self.shim.script)}
        async with open_claude_pty(
            argv, env=env, cwd=self.config.cwd, startup_timeout=START_LIMIT
        ) as proc:
            yield proc


async def wait_turn_end(api: MockAnthropicAPI, proc: PtyClaudeProcess, completed: int) -> None:
    """Wait until the mock finished answering and the CLI's box is idle again."""
    with trio.fail_after(TURN_LIMIT):

        def done(screen: str) -> bool:
            return api.statistics().responses_completed >= completed and is_ready(screen)

        if not await wait_screen(proc, done, TURN_LIMIT):
            raise RuntimeError("the CLI did not come back to its input box")


# --- timing --------------------------------------------------------------------------------

WORDS: Final = (
    *("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"),
    *("lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi"),
    *("the", "of", "and", "to", "in", "is", "that", "for", "it", "with", "as", "was", "on"),
    *("be", "at", "by", "this", "had", "not", "are", "but", "from", "or", "have", "an"),
)


def make_text(size: int, *, multiline: bool, seed: int) -> str:
    """Deterministic words, *size* characters; lines of 40-100 chars when *multiline*."""
    rng = random.Random(seed)
    parts: list[str] = []
    length = 0
    line = 0
    limit = rng.randint(40, 100)
    while length < size:
        word = rng.choice(WORDS)
        if multiline and line + len(word) > limit:
            parts.append("\n")
            length += 1
            line = 0
            limit = rng.randint(40, 100)
        elif parts:
            parts.append(" ")
            length += 1
            line += 1
        parts.append(word)
        length += len(word)
        line += len(word)
    return "".join(parts)[:size].rstrip() + "."


@attrs.define
class Timing:
    request: list[float] = attrs.Factory(list)
    turn: list[float] = attrs.Factory(list)
    failures: list[str] = attrs.Factory(list)


async def time_one(bench: Bench, route: str, text: str, timing: Timing) -> None:
    async with bench.cli() as proc:
        before = len(bench.api.main_requests)
        completed = bench.api.statistics().responses_completed
        started = time.perf_counter()
        prepared = prepare_text(text, rows=proc.rows)
        if route == "paste":
            await proc.paste_and_submit(prepared.chunks)
        elif not await editor_submit(proc, bench.shim, prepared.text):
            timing.failures.append("box never filled")
            return
        with trio.fail_after(REQUEST_LIMIT):
            requests = await bench.api.wait_for_requests(before + 1)
        timing.request.append(time.perf_counter() - started)
        await wait_turn_end(bench.api, proc, completed + 1)
        timing.turn.append(time.perf_counter() - started)
        got = requests[before].prompt or ""
        if got != prepared.expected_record:
            timing.failures.append(f"text differs ({len(got)} vs {len(prepared.expected_record)})")


def median_ms(values: Sequence[float]) -> str:
    return f"{statistics.median(values) * 1000:8.0f}" if values else f"{'-':>8}"


async def run_timing(bench: Bench, sizes: Sequence[int], reps: int) -> None:
    print(f"\n## Timing ({reps} repetitions each, fresh CLI each; median ms, [min-max])")
    header = (
        f"{'size':>7} {'shape':<6} {'pastes':>6} | {'paste req':>9} {'paste turn':>10} | "
        f"{'editor req':>10} {'editor turn':>11} | {'ratio req':>9}"
    )
    print(header)
    print("-" * len(header))
    for size in sizes:
        for multiline in (True, False):
            text = make_text(size, multiline=multiline, seed=size + multiline)
            timings = {"paste": Timing(), "editor": Timing()}
            for rep in range(reps):
                # Alternate the order so neither route always runs on a warmer machine.
                routes = ("paste", "editor") if rep % 2 == 0 else ("editor", "paste")
                for route in routes:
                    await time_one(bench, route, text, timings[route])
            paste, editor = timings["paste"], timings["editor"]
            ratio = (
                statistics.median(paste.request) / statistics.median(editor.request)
                if paste.request and editor.request
                else float("nan")
            )
            chunks = len(prepare_text(text).chunks)
            shape = "lines" if multiline else "1 line"
            print(
                f"{size // KB:>5}KB {shape:<6} {chunks:>6} | {median_ms(paste.request):>9} "
                f"{median_ms(paste.turn):>10} | {median_ms(editor.request):>10} "
                f"{median_ms(editor.turn):>11} | {ratio:>8.2f}x"
            )
            for route, timing in timings.items():
                spread = ", ".join(f"{value * 1000:.0f}" for value in timing.request)
                problems = f"  FAILURES: {timing.failures}" if timing.failures else ""
                print(f"{'':>22}{route} request ms: [{spread}]{problems}")


# --- exactness -----------------------------------------------------------------------------

BIG: Final = make_text(100 * KB, multiline=True, seed=7)

CASES: Final[tuple[tuple[str, str], ...]] = (
    ("backslash at line ends", "line one \\\nline two\\\nlast\\"),
    ("CRLF", "first\r\nsecond\r\nthird"),
    ("tabs", "a\tb\t\tc\n\tindented line"),
    ("leading /model x", "/model x"),
    ("leading /model + lines", "/model\nsecond line"),
    ("leading !", "!echo bench-bang"),
    ("command-name tags", "<command-name>/model</command-name>\n<command-args>x</command-args>"),
    ("NFD combining", "Cafe\u0301 re\u0301sume\u0301 e\u0301"),
    ("NFC accents", "Caf\u00e9 r\u00e9sum\u00e9"),
    ("emoji ZWJ", "family \U0001f468\u200d\U0001f469\u200d\U0001f467 heart \u2764\ufe0f ok"),
    ("RTL", "Hebrew \u05e9\u05dc\u05d5\u05dd, Arabic \u0645\u0631\u062d\u0628\u0627 end"),
    ("bidi controls", "abc \u202edcba\u202c end"),
    ("C0 controls / ESC", "a\x1bb\x03c\x07d\x1b[201~e"),
    ("imitates TUI", "❯ fake prompt\n" + "─" * 40 + "\n  ⏵⏵ bypass permissions on\n❯ 1. Yes"),
    ("ref look-alike", "see [Pasted text #1 +3 lines] and [...Truncated text #1 +3 lines...]"),
    ("pasted_content tag", '<pasted_content id="ab12">x</pasted_content id="ab12">'),
    ("trailing spaces", "trailing   \nspaces inside   \nend   "),
    ("empty lines", "\n\npara one\n\n\n\npara two\n\n"),
    ("only newlines", "\n\n\n\n\n"),
    ("exit word", "exit"),
    ("100 KB lines", BIG),
    ("100 KB + ref look-alike", "[...Truncated text #1 +3 lines...]\n" + BIG),
)
QUICK_CASES: Final = frozenset(
    {"tabs", "leading /model x", "leading !", "NFD combining", "trailing spaces", "100 KB lines"}
)


@attrs.frozen
class Outcome:
    label: str
    received: str | None


def relation(got: str, text: str, prepared: str | None, record: str | None) -> str:
    names = []
    if got == text:
        names.append("input")
    if record is not None and got == record:
        names.append("record")
    if prepared is not None and got == prepared.rstrip() and got != record:
        names.append("prepared")
    if names:
        return "= " + "+".join(names)
    reference = record if record is not None else text
    at = next(
        (i for i, (a, b) in enumerate(zip(got, reference, strict=False)) if a != b),
        min(len(got), len(reference)),
    )
    return f"DIFF@{at} ({len(got)} vs {len(reference)})"


def last_notice(screen: str) -> str:
    box = find_input_box(screen)
    rows = screen.splitlines()[: box.top if box else None]
    for row in reversed(rows):
        if row.strip().startswith(("●", "⎿", "!")):
            return row.strip()[:60]
    return "(no notice)"


async def send_case(bench: Bench, route: str, text: str) -> Outcome:
    if route != "editor raw":
        try:
            prepared = prepare_text(text)
        except InputError as exc:
            return Outcome(f"refused: {str(exc)[:40]}", None)
    async with bench.cli() as proc:
        before = len(bench.api.main_requests)
        completed = bench.api.statistics().responses_completed
        filled = True
        if route == "paste":
            await proc.paste_and_submit(prepared.chunks)
        else:
            filled = await editor_submit(
                proc, bench.shim, text if route == "editor raw" else prepared.text
            )
        with trio.move_on_after(MAYBE_LIMIT if len(text) < KB else REQUEST_LIMIT):
            requests = await bench.api.wait_for_requests(before + 1)
            await wait_turn_end(bench.api, proc, completed + 1)
            got = requests[before].prompt or ""
            return Outcome("", got)
        if proc.output_ended:
            return Outcome("no request: the CLI exited", None)
        box = find_input_box(proc.screen.text())
        if not filled:
            return Outcome("no request: box stayed empty", None)
        if box is not None and box.text:
            return Outcome(f"no request: held in box {box.text[:25]!r}", None)
        return Outcome(f"no request: {last_notice(proc.screen.text())}", None)


async def run_exactness(bench: Bench, quick: bool) -> None:
    print("\n## Exactness (what the mock received; fresh CLI per cell)")
    print(
        "= input: byte-exact; = record: what prepare_text predicts (tabs as 4 spaces, end "
        "trimmed); = prepared: prepare_text's text with tabs kept, end trimmed"
    )
    routes = ("paste", "editor", "editor raw")
    print(f"{'case':<26} | " + " | ".join(f"{route:<34}" for route in routes))
    details: list[str] = []
    for name, text in CASES:
        if quick and name not in QUICK_CASES:
            continue
        try:
            prepared = prepare_text(text)
            record: str | None = prepared.expected_record
            cleaned: str | None = prepared.text
        except InputError:
            record = cleaned = None
        cells = []
        for route in routes:
            outcome = await send_case(bench, route, text)
            if outcome.received is None:
                cells.append(outcome.label)
                continue
            cell = relation(outcome.received, text, cleaned, record)
            cells.append(cell)
            if not cell.startswith("= input") and len(text) < 2 * KB:
                details.append(
                    f"  {name} / {route}: sent {text!r}\n      got  {outcome.received!r}"
                )
            elif cell.startswith("DIFF"):
                at = int(cell[5:].split(" ")[0])
                details.append(
                    f"  {name} / {route}: got …{outcome.received[max(at - 30, 0) : at + 50]!r}…"
                )
        print(f"{name:<26} | " + " | ".join(f"{cell[:34]:<34}" for cell in cells))
    print("\nDetails (every cell that was not byte-exact):")
    print("\n".join(details))


# --- side facts ----------------------------------------------------------------------------


async def probe_side_facts(bench: Bench) -> None:
    """The prompt file's mode, its cleanup, and EDITOR in the Bash tool's environment."""
    print("\n## Side facts")
    prompt_dir = bench.tmp / f"claude-{os.getuid()}"
    spy = bench.shim.directory / "spy"
    spy_script = bench.shim.directory / "spy-editor"
    _write_private(
        spy_script,
        (
            "#!/bin/sh\n"
            f'stat -c "%a %n" "$1" "$(dirname "$1")" > {shlex.quote(str(spy))}\n'
            f'printf "spy text" > "$1"\n'
        ).encode(),
        mode=0o700,
    )
    original = bench.shim.script
    bench.shim.script = spy_script
    try:
        async with bench.cli() as proc:
            await proc.send_bytes(CTRL_G)
            await wait_screen(proc, box_filled, BOX_LIMIT)
            box = find_input_box(proc.screen.text())
            seen = spy.read_text().strip()
            print(f"editor got: {seen!r}; box then: {box.text if box else None!r}")
            left = sorted(p.name for p in prompt_dir.glob("claude-prompt-*"))
            print(f"prompt files left in {prompt_dir} after the editor returned: {left}")
            await proc.send_bytes(b"\x15")  # Ctrl-U: clear the box
    finally:
        bench.shim.script = original
    bench.api.enqueue(
        tool_use_reply("Bash", input={"command": 'echo "EDITOR=$EDITOR VISUAL=$VISUAL"'}),
        text_reply(REPLY),
    )
    async with bench.cli() as proc:
        before = len(bench.api.main_requests)
        completed = bench.api.statistics().responses_completed
        await proc.type_message("run the tool")
        with trio.fail_after(REQUEST_LIMIT):
            requests = await bench.api.wait_for_requests(before + 2)
        await wait_turn_end(bench.api, proc, completed + 2)
        results = requests[before + 1].tool_results
        content = results[0].get("content") if results else None
        print(f"Bash tool sees: {content!r}")


# --- main ----------------------------------------------------------------------------------


def real_path(name: str) -> Path:
    return Path(name).resolve()


def answer(request: RecordedRequest) -> MessageReply:
    return text_reply(REPLY)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and cases, 3 reps")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per timing cell")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-exactness", action="store_true")
    args = parser.parse_args()
    cli = find_cli()
    print(
        f"python {sys.version.split()[0]}, trio {trio.__version__}, {os.cpu_count()} CPUs; "
        f"claude {cli} (pinned {PINNED_CLI_VERSION}); 120x40 PTY"
    )
    async with open_mock_anthropic_api(handler=answer) as api:
        with tempfile.TemporaryDirectory(prefix="claude-trio-bench-") as tmp_name:
            tmp = real_path(tmp_name)
            config = isolated_config(tmp, base_url=api.base_url)
            shim = EditorShim.create(tmp, tmp / f"claude-{os.getuid()}")
            argv = (str(cli), "--disable-slash-commands", "--dangerously-skip-permissions")
            bench = Bench(api=api, config=config, shim=shim, tmp=tmp, argv_base=argv)
            try:
                await probe_side_facts(bench)
                if not args.skip_timing:
                    await run_timing(bench, QUICK_SIZES if args.quick else SIZES, args.reps)
                if not args.skip_exactness:
                    await run_exactness(bench, args.quick)
            finally:
                shim.remove()


if __name__ == "__main__":
    trio.run(main)
