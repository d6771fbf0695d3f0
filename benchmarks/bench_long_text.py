"""Long text: the library's two routes for a long user message, pastes and the editor key.

Issue 12, item 4. `Conversation.send` puts a message into the real CLI's input box one
of two ways, each followed by Enter (docs/conversation.rst, "Long messages"):

* ``paste``: `prepare_text` cleans the text and cuts it into bracketed pastes of at most
  800 characters and 2 line breaks, written back to back (``editor_threshold=None``:
  always this route).
* ``editor``: the cleaned text (`PreparedText.expected_record`) is staged as a 0600 file
  for the conversation's one-shot ``VISUAL`` script (``claude_trio/_editor.py``), and
  Ctrl-G makes the CLI run it on its prompt file and load the text into the box
  (``editor_threshold=0``: every message this way, except one whose cleaned text ends
  in a backslash, which is pasted).

Both routes carry the text as `prepare_text` cleans it: the library never sends a
caller's raw text, so there is no "raw" editor column any more (the prototype kept in
this file before measured one).

Timing: for each size (1, 10, 50, 100, 300 KB; multi-line text and one single line) and
route, a fresh CLI per repetition (`open_conversation`), from the call of
`Conversation.turn` (cleaning included) to the request reaching the mock (``request``,
the mock's arrival time) and to the turn's `ResultMessage` (``turn``). Each repetition
asserts `ConversationStatistics.editor_messages` (0 for ``paste``, 1 for ``editor``),
so the table shows the route that really ran, and checks the text the mock received.

Exactness: adversarial texts, sent in turn through one conversation per route (a new one
only if a text leaves the CLI unusable), and what the mock received compared with the
input and with `PreparedText.expected_record` (what `prepare_text` predicts the model
receives). Last, the prompt files and editor directories left behind, if any.

Every CLI runs as the library runs it (``--disable-slash-commands``), with
``--dangerously-skip-permissions``, in an isolated config under a temporary directory
that is also its ``TMPDIR``; everything is removed at the end. At most one CLI runs at a
time.

Run: ``python benchmarks/bench_long_text.py [--quick] [--reps N] [--skip-timing]
[--skip-exactness]``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import attrs
import trio

from claude_trio import (
    PINNED_CLI_VERSION,
    BackendError,
    Conversation,
    ConversationOptions,
    InputError,
    ResultMessage,
    find_cli,
    open_conversation,
    prepare_text,
)
from claude_trio.testing import (
    IsolatedConfig,
    MessageReply,
    MockAnthropicAPI,
    RecordedRequest,
    isolated_config,
    open_mock_anthropic_api,
    text_reply,
)

KB: Final = 1024
SIZES: Final = (1 * KB, 10 * KB, 50 * KB, 100 * KB, 300 * KB)
QUICK_SIZES: Final = (1 * KB, 10 * KB, 100 * KB)
COLUMNS: Final = 120
ROWS: Final = 40
#: Each route's ``editor_threshold``: None always pastes, 0 always uses the editor key.
ROUTES: Final[dict[str, int | None]] = {"paste": None, "editor": 0}
#: Bounds, so a wedged CLI fails one measurement instead of hanging the benchmark.
START_LIMIT: Final = 30.0
#: From Enter until the CLI records the prompt (a text the CLI holds ends here).
PROMPT_LIMIT: Final = 60.0
#: A whole turn, typing included (300 KB of lines is about 40 s of pastes).
TURN_LIMIT: Final = 180.0
REPLY: Final = "ok"
EDITOR_DIR_PREFIX: Final = "claude-trio-editor-"


@attrs.define
class Bench:
    api: MockAnthropicAPI
    config: IsolatedConfig
    tmp: Path
    cli: Path

    def options(self, route: str) -> ConversationOptions:
        return ConversationOptions(
            cwd=self.config.cwd,
            cli_path=str(self.cli),
            env={**self.config.env, "TMPDIR": str(self.tmp)},
            dangerously_skip_permissions=True,
            max_retries=0,
            startup_timeout=START_LIMIT,
            prompt_timeout=PROMPT_LIMIT,
            turn_timeout=TURN_LIMIT,
            columns=COLUMNS,
            rows=ROWS,
            editor_threshold=ROUTES[route],
        )

    @asynccontextmanager
    async def conversation(self, route: str) -> AsyncIterator[Conversation]:
        async with open_conversation(self.options(route)) as conversation:
            yield conversation


async def run_turn(conversation: Conversation, text: str) -> float:
    """Run one turn to its `ResultMessage`; return that message's trio time."""
    ended: float | None = None
    # A backstop: the conversation's own turn_timeout should end a stuck turn first.
    with trio.fail_after(TURN_LIMIT + 30):
        async for event in conversation.turn(text):
            if isinstance(event, ResultMessage):
                ended = trio.current_time()
    if ended is None:
        raise RuntimeError("the turn ended without a ResultMessage")
    return ended


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
    """One repetition: a fresh CLI, one timed turn, the route and the text checked."""
    expected = prepare_text(text, rows=ROWS).expected_record
    try:
        async with bench.conversation(route) as conversation:
            before = len(bench.api.main_requests)
            started = trio.current_time()
            ended = await run_turn(conversation, text)
            editor_messages = conversation.statistics().editor_messages
    except (BackendError, trio.TooSlowError, RuntimeError) as exc:
        timing.failures.append(f"{type(exc).__name__}: {first_line(exc)}")
        return
    wanted = ROUTES[route] == 0
    if editor_messages != int(wanted):
        raise AssertionError(
            f"route {route}: editor_messages is {editor_messages}, expected {int(wanted)}"
        )
    requests = bench.api.main_requests[before:]
    if not requests:
        timing.failures.append("no request reached the mock")
        return
    timing.request.append(requests[0].time - started)
    timing.turn.append(ended - started)
    got = requests[0].prompt or ""
    if got != expected:
        timing.failures.append(f"text differs ({len(got)} vs {len(expected)})")


def first_line(exc: BaseException) -> str:
    return str(exc).partition("\n")[0][:60]


def median_ms(values: Sequence[float]) -> str:
    return f"{statistics.median(values) * 1000:8.0f}" if values else f"{'-':>8}"


async def run_timing(bench: Bench, sizes: Sequence[int], reps: int) -> None:
    print(f"\n## Timing ({reps} repetitions each, fresh CLI each; median ms)")
    print(
        "paste: editor_threshold=None; editor: editor_threshold=0 (editor_messages asserted "
        "0 / 1); request: turn() called -> request at the mock; turn: -> ResultMessage"
    )
    header = (
        f"{'size':>7} {'shape':<6} {'pastes':>6} | {'paste req':>9} {'paste turn':>10} | "
        f"{'editor req':>10} {'editor turn':>11} | {'speed-up':>9}"
    )
    print(header)
    print("-" * len(header))
    for size in sizes:
        for multiline in (True, False):
            text = make_text(size, multiline=multiline, seed=size + multiline)
            timings = {route: Timing() for route in ROUTES}
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
            chunks = len(prepare_text(text, rows=ROWS).chunks)
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
    {
        "backslash at line ends",
        "tabs",
        "leading /model x",
        "leading !",
        "NFD combining",
        "trailing spaces",
        "exit word",
        "100 KB lines",
    }
)


@attrs.frozen
class Outcome:
    """What one text came to: the prompt the mock received (None: no request), a label
    when there was none, whether the editor key carried it, and whether the CLI can
    take another message."""

    received: str | None
    label: str = ""
    via_editor: bool = False
    spent: bool = False


def relation(got: str, text: str, record: str | None) -> str:
    names = []
    if got == text:
        names.append("input")
    if record is not None and got == record:
        names.append("record")
    if names:
        return "= " + "+".join(names)
    reference = record if record is not None else text
    at = next(
        (i for i, (a, b) in enumerate(zip(got, reference, strict=False)) if a != b),
        min(len(got), len(reference)),
    )
    return f"DIFF@{at} ({len(got)} vs {len(reference)})"


async def send_case(bench: Bench, conversation: Conversation, text: str) -> Outcome:
    """Send *text* as the next turn of *conversation* and see what the mock received."""
    before = len(bench.api.main_requests)
    editor_before = conversation.statistics().editor_messages
    try:
        await run_turn(conversation, text)
    except InputError as exc:
        # Refused before anything is typed: the conversation goes on.
        return Outcome(None, f"refused: {first_line(exc)}")
    except (BackendError, trio.TooSlowError, RuntimeError) as exc:
        requests = bench.api.main_requests[before:]
        got = requests[0].prompt if requests else None
        return Outcome(got, f"no request: {type(exc).__name__}", spent=True)
    via_editor = conversation.statistics().editor_messages > editor_before
    requests = bench.api.main_requests[before:]
    if not requests:
        return Outcome(None, "no request", via_editor=via_editor)
    return Outcome(requests[0].prompt or "", via_editor=via_editor)


async def exactness_route(
    bench: Bench, route: str, cases: Sequence[tuple[str, str]]
) -> tuple[dict[str, Outcome], int]:
    """Send every case in turn through conversations of *route*; a new CLI only when one
    is left unusable. Return the outcomes by case name and how many CLIs ran."""
    outcomes: dict[str, Outcome] = {}
    pending = list(cases)
    clis = 0
    while pending:
        clis += 1
        async with bench.conversation(route) as conversation:
            while pending:
                name, text = pending.pop(0)
                outcomes[name] = outcome = await send_case(bench, conversation, text)
                if outcome.spent or conversation.failure is not None:
                    break
    return outcomes, clis


async def run_exactness(bench: Bench, quick: bool) -> None:
    print("\n## Exactness (what the mock received; one conversation per route)")
    print(
        "= input: byte-exact; = record: what prepare_text predicts (expected_record: tabs "
        "as 4 spaces, end trimmed); (pasted): the editor route fell back to pastes"
    )
    cases = [(name, text) for name, text in CASES if not quick or name in QUICK_CASES]
    results: dict[str, dict[str, Outcome]] = {}
    clis: dict[str, int] = {}
    for route in ROUTES:
        results[route], clis[route] = await exactness_route(bench, route, cases)
    print(f"{'case':<26} | " + " | ".join(f"{route:<34}" for route in ROUTES))
    details: list[str] = []
    for name, text in cases:
        try:
            record: str | None = prepare_text(text, rows=ROWS).expected_record
        except InputError:
            record = None
        cells = []
        for route in ROUTES:
            outcome = results[route][name]
            if outcome.received is None:
                cells.append(outcome.label)
                continue
            cell = relation(outcome.received, text, record)
            if route == "editor" and not outcome.via_editor:
                cell += " (pasted)"
            if outcome.label:
                cell += f" then {outcome.label}"
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
    print("CLIs started: " + ", ".join(f"{route} {count}" for route, count in clis.items()))
    print("\nDetails (every cell that was not byte-exact):")
    print("\n".join(details))


# --- main ----------------------------------------------------------------------------------


def report_leftovers(tmp: Path) -> None:
    """The CLIs' prompt files and the library's editor directories still there (the
    library makes the latter in `tempfile.gettempdir`, here *tmp*)."""
    prompt_dir = tmp / f"claude-{os.getuid()}"
    prompts = sorted(path.name for path in prompt_dir.glob("claude-prompt-*"))
    dirs = sorted(path.name for path in tmp.glob(f"{EDITOR_DIR_PREFIX}*"))
    print(f"\n## Left behind\nprompt files in {prompt_dir}: {prompts}; editor directories: {dirs}")


def real_path(name: str) -> Path:
    return Path(name).resolve()


def answer(request: RecordedRequest) -> MessageReply:
    return text_reply(REPLY)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and cases")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per timing cell")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-exactness", action="store_true")
    args = parser.parse_args()
    cli = find_cli()
    print(
        f"python {sys.version.split()[0]}, trio {trio.__version__}, {os.cpu_count()} CPUs; "
        f"claude {cli} (pinned {PINNED_CLI_VERSION}); {COLUMNS}x{ROWS} PTY"
    )
    async with open_mock_anthropic_api(handler=answer) as api:
        with tempfile.TemporaryDirectory(prefix="claude-trio-bench-") as tmp_name:
            tmp = real_path(tmp_name)
            config = isolated_config(tmp, base_url=api.base_url)
            bench = Bench(api=api, config=config, tmp=tmp, cli=cli)
            # The library's editor directories go under tmp too, apart from any other
            # process's, so the last check sees only this run's.
            tempfile.tempdir = str(tmp)
            try:
                if not args.skip_timing:
                    await run_timing(bench, QUICK_SIZES if args.quick else SIZES, args.reps)
                if not args.skip_exactness:
                    await run_exactness(bench, args.quick)
                report_leftovers(tmp)
            finally:
                tempfile.tempdir = None


if __name__ == "__main__":
    trio.run(main)
