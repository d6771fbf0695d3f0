"""The terminal screen, and the chrome rules on the first samples the real CLI drew.

``tests/test_chrome.py`` checks the rules against every sample, imitations included.
"""

from __future__ import annotations

import itertools

import pyte
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wcwidth import wcwidth

from claude_trio._chrome import find_dialog, find_input_box, is_busy, is_ready
from claude_trio._screen import TerminalScreen, _row_text, _Screen

from .conftest import SAMPLES


def _sample(name: str) -> str:
    path = SAMPLES / name
    assert path.exists(), f"missing sample {path}: the samples are part of the repository"
    return "\n".join(line.rstrip() for line in path.read_text().splitlines())


@pytest.mark.parametrize(
    ("sample", "dialog", "fix_mentions"),
    [
        ("dialog_onboarding_connectivity_fail.txt", "onboarding", "hasCompletedOnboarding"),
        ("dialog_trust_folder.txt", "trust folder", "hasTrustDialogAccepted"),
        ("dialog_custom_api_key.txt", "custom API key", "customApiKeyResponses.approved"),
        (
            "dialog_bypass_permissions.txt",
            "bypass permissions warning",
            "bypassPermissionsModeAccepted",
        ),
    ],
)
def test_first_run_dialogs_are_named_with_their_fix(
    sample: str, dialog: str, fix_mentions: str
) -> None:
    text = _sample(sample)
    found = find_dialog(text)
    assert found is not None
    assert found.name == dialog
    assert fix_mentions in found.fix
    assert not is_ready(text)


@pytest.mark.parametrize(
    "sample",
    [
        "screen_interrupted_esc.txt",
        "screen_error_ERR401_0.txt",
        "screen_error_ERR429_0.txt",
        "screen_error_DOWN_0.txt",
    ],
)
def test_idle_input_box_is_ready(sample: str) -> None:
    text = _sample(sample)
    assert is_ready(text)
    assert find_dialog(text) is None


def test_permission_prompt_is_not_ready() -> None:
    assert not is_ready(_sample("dialog_permission_bash.txt"))


def test_root_refusal_names_is_sandbox() -> None:
    found = find_dialog(
        "--dangerously-skip-permissions cannot be used with root/sudo privileges for security"
    )
    assert found is not None
    assert "IS_SANDBOX=1" in found.fix


def test_screen_renders_escape_sequences_and_keeps_state_across_feeds() -> None:
    screen = TerminalScreen(columns=40, rows=5)
    screen.feed(b"hello\x1b[2;1Hwor")
    assert screen.text().splitlines()[:2] == ["hello", "wor"]
    screen.feed("ld ❯".encode()[:-1])  # a UTF-8 sequence cut between feeds
    screen.feed("ld ❯".encode()[-1:])
    assert screen.text().splitlines()[1] == "world ❯"
    assert screen.tail(1) == "world ❯"
    assert screen.bytes_seen == len(b"hello\x1b[2;1Hwor") + len("ld ❯".encode())


def test_input_box_contents() -> None:
    box = find_input_box(_sample("screen_error_ERR401_0.txt"))
    assert box is not None
    assert box.text == "Once fixed, resend your message"
    assert box.is_placeholder
    assert find_input_box("no box here\n❯ 1. Yes") is None


def test_busy_is_the_interrupt_hint_under_the_box() -> None:
    assert not is_busy(_sample("screen_interrupted_esc.txt"))
    assert not is_busy("  ⏵⏵ bypass permissions on · esc to interrupt · ← for agents")


_PIECES = [
    "a",
    "bc ",
    "❯",
    "漢",  # two cells
    "\u0301",  # combining: joins the cell before, on the row above at a row's start
    "e\u0301",
    "\r",
    "\n",
    "\b",
    "\t",
    "\x1b[H",
    "\x1b[3;5H",
    "\x1b[5;1H",
    "\x1b[A",
    "\x1b[2B",
    "\x1b[K",
    "\x1b[1K",
    "\x1b[2K",
    "\x1b[J",
    "\x1b[1J",
    "\x1b[2J",
    "\x1b[L",
    "\x1b[2M",
    "\x1b[@",
    "\x1b[P",
    "\x1b[2X",
    "\x1bM",  # reverse index: scrolls down at the top
    "\x1bD",
    "\x1b[2;4r",
    "\x1b[r",
    "\x1b[?7l",
    "\x1b[?7h",
    "\x1b[4h",  # insert mode
    "\x1b[4l",
    "\x1b[1m",
    "\x1b#8",  # alignment display
    "\x1bc",  # reset
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(_PIECES), max_size=30).map("".join), min_size=1, max_size=12)
)
def test_rendering_only_the_changed_rows_matches_a_full_render(feeds: list[str]) -> None:
    screen = TerminalScreen(columns=7, rows=5)
    for data in feeds:
        screen.feed(data.encode())
        emulator = screen._screen
        cached = screen.text()
        full = "\n".join(_row_text(emulator.buffer[y], 7) for y in range(5))
        assert cached == full


def test_changes_count_only_changes_of_the_text() -> None:
    screen = TerminalScreen(columns=20, rows=3)
    screen.feed(b"spinner \xe2\x9c\xbb")
    screen.text()
    before = screen.changes
    screen.feed(b"\x1b[1;1Hspinner")  # the same characters again, the row marked
    assert screen.text().startswith("spinner \u273b")
    assert screen.changes == before
    screen.feed(b"\x1b[1;9H*")
    assert screen.text().startswith("spinner *")
    assert screen.changes == before + 1


def _row_text_cell_by_cell(row: dict[int, str], columns: int) -> str:
    """The rule, one cell at a time: skip the stub after a two-cell character, and
    empty cells."""
    cells: list[str] = []
    stub = False
    for x in range(columns):
        data = row.get(x, " ")
        if stub or not data:
            stub = False
            continue
        cells.append(data)
        stub = wcwidth(data[0]) == 2
    return "".join(cells).rstrip()


@given(
    st.dictionaries(
        st.integers(0, 12),
        st.sampled_from(["a", " ", "", "漢", "❯", "é", "\u1100", "\u10ff", "🙂", "e\u0301"]),
    )
)
def test_row_text_follows_the_cell_rule(cells: dict[int, str]) -> None:
    row = {x: pyte.screens.Char(data) for x, data in cells.items()}
    assert _row_text(row, 10) == _row_text_cell_by_cell(cells, 10)


_SGR_PIECES = ["\x1b[1m", "\x1b[38;5;246m", "\x1b[48;2;1;2;3m", "\x1b[m", "\x1b[7m", "\x1b[27m"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(_PIECES + _SGR_PIECES), max_size=60).map("".join),
    st.lists(st.integers(0, 400), max_size=8),
)
def test_cutting_colours_changes_no_text_however_the_bytes_are_split(
    stream: str, cuts: list[int]
) -> None:
    data = stream.encode()
    reference = pyte.Screen(9, 5)
    pyte.ByteStream(reference).feed(data)
    screen = TerminalScreen(columns=9, rows=5)
    bounds = sorted({0, len(data), *(cut for cut in cuts if cut < len(data))})
    for start, end in itertools.pairwise(bounds):
        screen.feed(data[start:end])
        screen.text()  # an SGR sequence may be cut between two looks
    assert screen.text() == "\n".join(_row_text(reference.buffer[y], 9) for y in range(5))


_MODE_PIECES = [
    "\x1b(0",  # G0: DEC line drawing
    "\x1b(B",
    "\x0e",  # shift out: G1
    "\x0f",
    "\x7f",  # DEL: pyte stops drawing the rest of the text run
    "abcdefghij",
    "x" * 12,
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES + _SGR_PIECES + _MODE_PIECES), max_size=50))
def test_the_ascii_fast_path_draws_what_pyte_draws(pieces: list[str]) -> None:
    data = "".join(pieces).encode()
    reference = pyte.Screen(9, 5)
    pyte.ByteStream(reference).feed(data)
    ours = _Screen(9, 5)
    pyte.ByteStream(ours).feed(data)
    for y in range(5):
        assert [ours.buffer[y][x] for x in range(9)] == [reference.buffer[y][x] for x in range(9)]
    assert (ours.cursor.x, ours.cursor.y) == (reference.cursor.x, reference.cursor.y)
