"""The chrome rules, against every screen the real CLI drew (tests/samples).

Each sample is classified below by hand (`EXPECTED`); every rule must read exactly that
from it. The ``chrome_imitate_*`` samples are screens where the model's reply (or a
tool's output, or the user's own message) imitates a piece of chrome: no rule may react
to the imitation. The hypothesis tests then paint random transcript text, drawn the way
the CLI draws a reply, a tool's output or the user's message, over the transcript rows
of real screens: no rule may change its answer.
"""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_trio._chrome import (
    PLACEHOLDERS,
    Dialog,
    InputBox,
    PermissionPrompt,
    box_has_text,
    box_holds,
    find_dialog,
    find_input_box,
    find_permission_prompt,
    is_busy,
    is_ready,
    prompt_came_back,
    status_lines,
)
from claude_trio._retry import find_retry_notice

from .conftest import SAMPLES


@attrs.frozen
class Expect:
    """What a sample shows: one of idle, busy, a permission prompt or a dialog."""

    kind: str  # "idle" | "busy" | "prompt" | "dialog"
    box: str | None = None
    retry: tuple[str, int] | None = None
    prompt: tuple[str, str, int] | None = None  # title, question, number of options
    dialog: str | None = None


def idle(box: str = "") -> Expect:
    return Expect("idle", box=box)


def busy(retry: tuple[str, int] | None = None, box: str = "") -> Expect:
    return Expect("busy", box=box, retry=retry)


def prompt(title: str, question: str, options: int) -> Expect:
    return Expect("prompt", prompt=(title, question, options))


def dialog(name: str) -> Expect:
    return Expect("dialog", dialog=name)


RESEND = "Resend your message to try again"
BASH = prompt("Bash command", "Do you want to proceed?", 4)

EXPECTED: dict[str, Expect] = {
    # --- the samples of FACTS.md and README_retry.txt (120x40) ---
    "dialog_bypass_permissions.txt": dialog("bypass permissions warning"),
    "dialog_custom_api_key.txt": dialog("custom API key"),
    "dialog_onboarding_connectivity_fail.txt": dialog("onboarding"),
    "dialog_permission_bash.txt": BASH,
    "dialog_trust_folder.txt": dialog("trust folder"),
    "screen_error_DOWN_0.txt": idle(RESEND),
    "screen_error_ERR401_0.txt": idle("Once fixed, resend your message"),
    "screen_error_ERR429_0.txt": idle(RESEND),
    "screen_error_ERR529_3.txt": idle(RESEND),
    "screen_interrupted_esc.txt": idle(),
    "screen_retry_429_minutes.txt": busy(
        ("429 mock: Number of request tokens has exceeded your per-minute rate limit", 2)
    ),
    "screen_retry_529_hint.txt": busy(("529 Overloaded", 3)),
    "screen_retry_api_error.txt": busy(("API error", 1)),
    "screen_retry_usage_limit.txt": busy(("5-hour limit reached", 1)),
    "usage_limit_gateway_screen.txt": idle(),
    # --- README_chrome.txt: the CLI's own states ---
    "chrome_idle_120x40.txt": idle(),
    "chrome_idle_80x24.txt": idle(),
    "chrome_idle_manual_120x40.txt": idle(),
    "chrome_idle_manual_80x24.txt": idle(),
    "chrome_idle_multiline_input_120x40.txt": idle("first line\nsecond line\n  third indented"),
    "chrome_idle_multiline_input_80x24.txt": idle("first line\nsecond line\n  third indented"),
    "chrome_idle_manual_multiline_input_120x40.txt": idle(
        "first line\nsecond line\n  third indented"
    ),
    "chrome_idle_manual_multiline_input_80x24.txt": idle(
        "first line\nsecond line\n  third indented"
    ),
    "chrome_idle_wrapped_input_120x40.txt": idle("WORDS"),
    "chrome_idle_wrapped_input_80x24.txt": idle("WORDS"),
    "chrome_idle_manual_wrapped_input_120x40.txt": idle("WORDS"),
    "chrome_idle_manual_wrapped_input_80x24.txt": idle("WORDS"),
    "chrome_ctrl_c_hint_120x40.txt": idle(),
    "chrome_editor_loaded_scrolled_120x40.txt": idle(
        "\n".join(f"line {n} with a tab    here" for n in range(135, 150))
    ),
    "chrome_slash_menu_120x40.txt": idle("/"),
    "chrome_typed_not_submitted_120x40.txt": idle("imitate please"),
    "chrome_typed_not_submitted_80x24.txt": idle("imitate please"),
    "chrome_typed_not_submitted_b_80x24.txt": idle("imitate please"),
    "chrome_busy_120x40.txt": busy(),
    "chrome_busy_80x24.txt": busy(),
    "chrome_busy_60x20.txt": busy(),
    "chrome_busy_late_120x40.txt": busy(),
    "chrome_busy_late_80x24.txt": busy(),
    "chrome_busy_late_60x20.txt": busy(),
    "chrome_busy_no_text_120x40.txt": busy(),
    "chrome_busy_no_text_80x24.txt": busy(),
    "chrome_thinking_busy_120x40.txt": busy(),
    "chrome_queued_busy_80x24.txt": busy(box="Press up to edit queued messages"),
    "chrome_after_slow_120x40.txt": idle(),
    "chrome_after_slow_80x24.txt": idle(),
    "chrome_after_slow_60x20.txt": idle(),
    "chrome_retry_120x40.txt": busy(("API error", 2)),
    "chrome_retry_80x24.txt": busy(("API error", 2)),
    "chrome_retry_bypass_80x24.txt": busy(("API error", 2)),
    "chrome_retry_bypass_50x20.txt": busy(("API error", 2)),
    "chrome_retry_bypass_hint_80x24.txt": busy(("529 Overloaded", 3)),
    "chrome_retry_bypass_hint_50x20.txt": busy(("529 Overloaded", 3)),
    "chrome_api_error_final_120x40.txt": idle(RESEND),
    "chrome_api_error_final_80x24.txt": idle(RESEND),
    "chrome_api_error_final_50x20.txt": idle(RESEND),
    "chrome_api_error_repeated_80x24.txt": idle(RESEND),
    "chrome_interrupted_120x40.txt": idle(),
    "chrome_interrupted_80x24.txt": idle(),
    "chrome_restored_120x40.txt": idle("restore me please"),
    "chrome_restored_80x24.txt": idle("restore me please"),
    "chrome_perm_120x40.txt": BASH,
    "chrome_perm_80x24.txt": BASH,
    "chrome_perm_full_120x40.txt": BASH,
    "chrome_perm_full_80x24.txt": BASH,
    "chrome_perm_long_120x40.txt": BASH,
    "chrome_perm_long_80x24.txt": BASH,
    "chrome_perm_write_120x40.txt": prompt("Create file", "Do you want to create new.txt?", 3),
    "chrome_perm_write_80x24.txt": prompt("Create file", "Do you want to create new.txt?", 3),
    "chrome_perm_denied_120x40.txt": idle(),
    "chrome_perm_denied_80x24.txt": idle(),
    "chrome_perm_full_denied_120x40.txt": idle(),
    "chrome_perm_full_denied_80x24.txt": idle(),
    "chrome_perm_long_denied_120x40.txt": idle(),
    "chrome_perm_long_denied_80x24.txt": idle(),
    "chrome_perm_write_denied_120x40.txt": idle(),
    "chrome_perm_write_denied_80x24.txt": idle(),
    "chrome_dialog_trust_120x40.txt": dialog("trust folder"),
    "chrome_dialog_trust_80x24.txt": dialog("trust folder"),
    "chrome_dialog_apikey_120x40.txt": dialog("custom API key"),
    "chrome_dialog_apikey_80x24.txt": dialog("custom API key"),
    "chrome_dialog_bypass_120x40.txt": dialog("bypass permissions warning"),
    "chrome_dialog_bypass_80x24.txt": dialog("bypass permissions warning"),
    "chrome_dialog_onboarding_120x40.txt": dialog("onboarding"),
    "chrome_dialog_onboarding_80x24.txt": dialog("onboarding"),
    "chrome_dialog_onboarding_after_enter_120x40.txt": dialog("onboarding"),
    "chrome_dialog_root_120x40.txt": dialog("skip-permissions refused for root"),
    "chrome_dialog_root_80x24.txt": dialog("skip-permissions refused for root"),
}

#: The imitations: the text each one must show (it is in the transcript, indented).
IMITATED: dict[str, tuple[str, ...]] = {
    "perm": ("Do you want to proceed?", "❯ 1. Yes"),
    "retry": ("✻ API error · retrying in 5s · attempt 1/3",),
    "esc": ("esc to interrupt",),
    "box": ("─" * 60, "❯ hello"),
    "trust": ("Is this a project you created or one you trust",),
    "welcome": ("Welcome to Claude Code v",),
    "apikey": ("Detected a custom API key in your environment",),
    "bypass": ("running in Bypass Permissions mode", "cannot be used with root/sudo"),
    "fenced": ("Do you want to proceed?", "attempt 3/4", "esc to interrupt", "❯ hello"),
    "toolout": ("Do you want to proceed?", "❯ hello", "esc to interrupt", "attempt 1/3"),
    "user": ("Do you want to proceed?", "❯ hello", "esc to interrupt", "one you trust"),
}
for _name in IMITATED:
    for _size in ("120x40", "80x24"):
        EXPECTED[f"chrome_imitate_{_name}_{_size}.txt"] = idle()
        EXPECTED[f"chrome_imitate_{_name}_busy_{_size}.txt"] = busy()


def _sample(name: str) -> str:
    path = SAMPLES / name
    assert path.exists(), f"missing sample {path}: the samples are part of the repository"
    return path.read_text()


def _screens() -> list[str]:
    return sorted(
        path.name
        for path in Path(SAMPLES).glob("*.txt")
        if not path.name.startswith("README") and not path.name.endswith(".py.txt")
    )


def test_every_sample_screen_is_classified() -> None:
    assert sorted(EXPECTED) == _screens()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_rules_read_the_sample(name: str) -> None:
    screen = _sample(name)
    expect = EXPECTED[name]
    box = find_input_box(screen)
    found_prompt = find_permission_prompt(screen)
    found_dialog = find_dialog(screen)
    notice = find_retry_notice(status_lines(screen))

    assert is_ready(screen) == (expect.kind == "idle")
    assert is_busy(screen) == (expect.kind == "busy")
    if expect.kind in ("idle", "busy"):
        assert box is not None
        if expect.box == "WORDS":
            assert box.text.split() == [f"word{index}" for index in range(40)]
        else:
            assert box.text == expect.box
        rows = screen.split("\n")
        assert set(rows[box.bottom]) == {"─"}
        # The upper rule is plain, or says how many rows are scrolled off above it.
        assert set(rows[box.top].replace(" ↑ 135 more ", "─")) == {"─"}
        assert all(not row.strip() for row in rows[box.bottom + 1 :][len(box.hints) :])
    else:
        assert box is None
        assert status_lines(screen) == ""
    assert (None if notice is None else (notice.status, notice.attempt)) == expect.retry
    if expect.prompt is None:
        assert found_prompt is None
    else:
        assert found_prompt is not None
        got = (found_prompt.title, found_prompt.question, len(found_prompt.options))
        assert got == expect.prompt
        assert found_prompt.selected == 0
        assert found_prompt.options[0] == "Yes"
        assert found_prompt.options[-1] == "No"
    assert (None if found_dialog is None else found_dialog.name) == expect.dialog


@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n.startswith("chrome_imitate_")))
def test_imitation_samples_show_the_imitation(name: str) -> None:
    screen = _sample(name)
    key = name.removeprefix("chrome_imitate_").split("_")[0]
    shown = [text for text in IMITATED[key] if text in screen]
    if "_busy_" in name:
        # A later turn may have scrolled part of it away, not all.
        assert shown, f"{name} shows none of the imitation"
    else:
        assert shown == list(IMITATED[key]), f"{name} does not show all of the imitation"


# --- details of what is read ----------------------------------------------------------------


def test_bash_prompt_detail_leaves_out_the_frame_and_the_wrapped_tip() -> None:
    for size in ("120x40", "80x24"):
        found = find_permission_prompt(_sample(f"chrome_perm_{size}.txt"))
        assert found is not None
        assert found.detail == "mock bash call\ntouch made_by_bash.txt"
        assert found.options[:2] == (
            "Yes",
            f"Yes, and always allow access to {_project(size)} from this project",
        )


def _project(size: str) -> str:
    found = re.search(r"/tmp/chrome-\w+/project", _sample(f"chrome_perm_{size}.txt"))
    assert found is not None
    return found[0]


def test_long_bash_prompt_reads_the_real_question_not_the_one_in_the_command() -> None:
    for size in ("120x40", "80x24"):
        found = find_permission_prompt(_sample(f"chrome_perm_long_{size}.txt"))
        assert found is not None
        assert found.detail.startswith("a long command\nover two lines\ntouch file0.txt")
        assert "│" not in found.detail
        assert found.detail.endswith("proceed?'")
        assert found.question == "Do you want to proceed?"


def test_write_prompt_keeps_the_file_preview_in_detail() -> None:
    found = find_permission_prompt(_sample("chrome_perm_write_80x24.txt"))
    assert found is not None
    assert found.detail.splitlines() == [
        "../../chrome-write-test/new.txt",
        "1 Do you want to proceed?",
        "2 ❯ 1. Yes",
        "3 line three",
    ]
    assert found.options[1].endswith("for this session (shift+tab)")
    assert found.options[2] == "No"


def test_prompt_rows_are_its_frame() -> None:
    screen = _sample("chrome_perm_120x40.txt")
    found: PermissionPrompt | None = find_permission_prompt(screen)
    assert found is not None
    rows = screen.split("\n")
    assert rows[found.top] == "─" * 120
    assert rows[found.bottom] == " Esc to cancel · Tab to amend"


def test_status_lines_are_the_rows_above_the_box() -> None:
    lines = status_lines(_sample("chrome_retry_bypass_hint_50x20.txt")).split("\n")
    assert lines[0] == "✻ 529 Overloaded · retrying in 3s · attempt 3/4"
    assert lines[-1].strip() == "◐ medium · /effort"
    assert len(lines) == 4
    assert status_lines(_sample("chrome_busy_120x40.txt"), count=1).strip() == (
        "◐ medium · /effort"
    )


def test_placeholders_are_flagged() -> None:
    box = find_input_box(_sample("screen_error_ERR401_0.txt"))
    assert box is not None
    assert box.is_placeholder
    assert box.text in PLACEHOLDERS
    empty = find_input_box(_sample("chrome_idle_120x40.txt"))
    assert empty is not None
    assert not empty.is_placeholder


def test_box_holds_a_wrapped_prompt() -> None:
    box = find_input_box(_sample("chrome_idle_wrapped_input_80x24.txt"))
    words = " ".join(f"word{index}" for index in range(40))
    assert box_holds(box, words)
    assert box_holds(box, "  word0 word1\nsomething else")
    assert not box_holds(box, "word1")
    assert not box_holds(box, "   ")
    assert not box_holds(None, words)


def test_prompt_came_back_after_an_early_interrupt() -> None:
    for size in ("120x40", "80x24"):
        assert prompt_came_back(_sample(f"chrome_restored_{size}.txt"), "restore me please")
        assert not prompt_came_back(_sample(f"chrome_busy_no_text_{size}.txt"), "restore me please")
    assert not prompt_came_back(_sample("chrome_perm_120x40.txt"), "CALL_BASH touch x")
    assert not prompt_came_back(_sample("chrome_restored_120x40.txt"), "something else")


def test_dialog_keeps_the_old_shape() -> None:
    found = find_dialog(_sample("chrome_dialog_trust_80x24.txt"))
    assert found is not None
    assert attrs.fields(Dialog) == attrs.fields(type(found))
    assert [field.name for field in attrs.fields(Dialog)] == ["name", "fix"]
    assert "hasTrustDialogAccepted" in found.fix


def test_unknown_framed_dialog_is_not_named() -> None:
    screen = _sample("chrome_dialog_apikey_120x40.txt").replace(
        "Detected a custom API key in your environment", "Something new entirely"
    )
    assert find_dialog(screen) is None


def test_a_box_needs_full_width_rules() -> None:
    rows = _sample("chrome_idle_120x40.txt").split("\n")
    rows[36] = "─" * 60
    assert find_input_box("\n".join(rows)) is None


def test_combining_marks_do_not_hide_the_rules() -> None:
    # pyte keeps a combining mark in its base character's cell: such a row is longer
    # (in code points) than the screen is wide.
    rows = _sample("chrome_idle_120x40.txt").split("\n")
    rows[12] = "● " + "e\u0301" * 118
    box = find_input_box("\n".join(rows))
    assert box is not None
    assert box.top == 36


def test_stray_kitty_u_rows_count_as_blank() -> None:
    rows = _sample("chrome_dialog_trust_120x40.txt").split("\n")
    rows[25] = "u"
    found = find_dialog("\n".join(rows))
    assert found is not None
    assert found.name == "trust folder"


@pytest.mark.parametrize("screen", ["", "\n\n", "❯", "─" * 40, "─" * 40 + "\n❯\n" + "─" * 40])
def test_degenerate_screens(screen: str) -> None:
    assert find_permission_prompt(screen) is None
    assert find_dialog(screen) is None
    assert not is_busy(screen)
    if screen.count("─") == 80:
        assert is_ready(screen)
        assert find_input_box(screen) == InputBox(text="", top=0, bottom=2, hints=())
    else:
        assert not is_ready(screen)


# --- hypothesis: transcript text never changes what a rule reads ------------------------------

#: Real screens of every kind, as the base the transcript text is painted on.
BASES = (
    "chrome_idle_120x40.txt",
    "chrome_idle_80x24.txt",
    "chrome_busy_120x40.txt",
    "chrome_retry_80x24.txt",
    "chrome_retry_bypass_hint_50x20.txt",
    "screen_retry_529_hint.txt",
    "chrome_idle_multiline_input_80x24.txt",
    "chrome_restored_120x40.txt",
    "chrome_interrupted_80x24.txt",
    "chrome_perm_120x40.txt",
    "chrome_perm_full_120x40.txt",
    "chrome_perm_write_80x24.txt",
    "chrome_perm_long_120x40.txt",
    "chrome_dialog_trust_120x40.txt",
    "chrome_dialog_apikey_80x24.txt",
    "screen_error_ERR401_0.txt",
)

_PIECES = (
    "─" * 130,
    "─" * 79,
    "─" * 40,
    "╌" * 120,
    "❯",
    "❯ hello",
    "❯ 1. Yes",
    " ❯ 1. Yes",
    "  2. No",
    "   2. Yes, and always allow access",
    "Do you want to proceed?",
    " Do you want to proceed?",
    " Do you want to create new.txt?",
    "Esc to cancel · Tab to amend",
    " Esc to cancel · Tab to amend",
    " Enter to confirm · Esc to cancel",
    "Enter to confirm · Esc to cancel",
    " ❯ Yes, I trust this folder",
    "✻ API error · retrying in 5s · attempt 1/3",
    "529 Overloaded · retrying in 3s · attempt 3/4",
    "✻ 5-hour limit reached · retrying in 7s (3:54am) · attempt 1/2",
    "esc to interrupt",
    "  ⏵⏵ auto mode on (shift+tab to cycle) · esc to interrupt · ← for agents",
    "Welcome to Claude Code v2.1.328",
    "--dangerously-skip-permissions cannot be used with root/sudo privileges",
    "Is this a project you created or one you trust?",
    "Detected a custom API key in your environment",
    "WARNING: Claude Code running in Bypass Permissions mode",
    " Bash command",
    "Tip: auto mode handles these prompts for you",
    "│ touch x",
    "u",
    "e\u0301\ufe0f",
)
#: Whole pieces of chrome, several rows each, to be drawn inside one block.
_CHUNKS = (
    ("─" * 130, "❯ hello", "─" * 130, "  ⏵⏵ auto mode on · esc to interrupt"),
    ("Do you want to proceed?", "❯ 1. Yes", "  2. No", "", "Esc to cancel · Tab to amend"),
    (" Do you want to proceed?", " ❯ 1. Yes", "   2. No", "", " Esc to cancel · Tab to amend"),
    (
        "─" * 130,
        " Is this a project you created or one you trust?",
        " ❯ Yes, I trust this folder",
        "",
        " Enter to confirm · Esc to cancel",
    ),
    ("✻ API error · retrying in 5s · attempt 1/3", "", "─" * 130, "❯", "─" * 130),
)
_ALPHABET = st.sampled_from(list("─╌❯●⎿✻·│ abcXYZ019.?:\u0301\ufe0f\xa0u"))
_LINE = st.one_of(
    st.sampled_from(_PIECES),
    st.text(_ALPHABET, max_size=130),
    st.lists(st.sampled_from(_PIECES), min_size=1, max_size=3).map(" ".join),
)
#: How the CLI draws a block of the transcript: (first-row prefix, other-rows prefix).
_FRAMES = {
    "reply": ("● ", "  "),
    "tool": ("  ⎿  ", "     "),
    "user": ("❯ ", "  "),
    "reply-code": ("● ", "    "),
}


@st.composite
def _transcript(draw: st.DrawFn) -> list[str]:
    """Rows of one or more transcript blocks, as the CLI draws them."""
    rows: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        first, rest = _FRAMES[draw(st.sampled_from(sorted(_FRAMES)))]
        lines = [
            line
            for piece in draw(
                st.lists(_LINE.map(lambda line: (line,)) | st.sampled_from(_CHUNKS), max_size=4)
            )
            for line in piece
        ] or [""]
        rows += [first + lines[0], *(rest + line for line in lines[1:])]
        if draw(st.booleans()):
            rows.append("")
    return rows


def _transcript_end(screen: str) -> int:
    """The first row that is not transcript: the status rows, a prompt or a dialog."""
    box = find_input_box(screen)
    if box is not None:
        return max(box.top - 4, 0)
    found = find_permission_prompt(screen)
    if found is not None:
        return found.top
    rows = screen.split("\n")
    return next(index for index, row in enumerate(rows) if row.startswith("─"))


def _reading(screen: str) -> tuple[object, ...]:
    return (
        find_input_box(screen),
        is_ready(screen),
        is_busy(screen),
        status_lines(screen),
        find_retry_notice(status_lines(screen)),
        find_permission_prompt(screen),
        find_dialog(screen),
    )


@settings(max_examples=400, deadline=None)
@given(
    base=st.sampled_from(BASES),
    painted=_transcript(),
    where=st.floats(0, 1),
    width=st.sampled_from([0, 2]),
)
def test_transcript_text_never_changes_a_reading(
    base: str, painted: list[str], where: float, width: int
) -> None:
    screen = _sample(base)
    rows = screen.split("\n")
    columns = max(len(row) for row in rows if set(row) == {"─"})
    end = _transcript_end(screen)
    if end == 0:
        return
    start = int(where * (end - 1))
    for offset, row in enumerate(painted[: end - start]):
        # The CLI wraps at the width; an overlong row is cut here (at most its
        # last two cells change, as a wide character would).
        rows[start + offset] = row[: columns - width].rstrip()
    assert _reading("\n".join(rows)) == _reading(screen)


@settings(max_examples=400, deadline=None)
@given(
    base=st.sampled_from(BASES),
    blocks=st.lists(_transcript(), min_size=1, max_size=4),
    blank_below=st.integers(0, 3),
    width=st.sampled_from([0, 2]),
)
def test_transcript_alone_is_never_chrome(
    base: str, blocks: list[list[str]], blank_below: int, width: int
) -> None:
    # The screen with its chrome gone (a redraw, an exit): only transcript rows, down to
    # the bottom or nearly. Nothing may be read as a box, a prompt or a dialog.
    rows = _sample(base).split("\n")
    columns = max(len(row) for row in rows if set(row) == {"─"})
    painted = [row for block in blocks for row in block]
    painted = painted[-(len(rows) - blank_below) :] if len(rows) > blank_below else []
    top = len(rows) - blank_below - len(painted)
    screen_rows = [""] * len(rows)
    for offset, row in enumerate(painted):
        screen_rows[top + offset] = row[: columns - width].rstrip()
    screen = "\n".join(screen_rows)
    assert find_input_box(screen) is None
    assert not is_ready(screen)
    assert not is_busy(screen)
    assert status_lines(screen) == ""
    assert find_permission_prompt(screen) is None
    assert find_dialog(screen) is None


@settings(max_examples=200, deadline=None)
@given(
    base=st.sampled_from(
        [
            "chrome_retry_80x24.txt",
            "chrome_retry_bypass_hint_50x20.txt",
            "screen_retry_529_hint.txt",
            "screen_retry_429_minutes.txt",
        ]
    ),
    painted=_transcript(),
)
def test_transcript_down_to_the_retry_line_leaves_it_alone(base: str, painted: list[str]) -> None:
    # With a long transcript its last rows sit right above the spinner or retry line,
    # inside what status_lines returns: the retry line must still be the one read.
    screen = _sample(base)
    rows = screen.split("\n")
    columns = len(rows[-3])
    retry_row = next(index for index, row in enumerate(rows) if "· attempt " in row)
    start = max(retry_row - len(painted), 0)
    for offset, row in enumerate(painted[: retry_row - start]):
        rows[start + offset] = row[:columns].rstrip()
    painted_screen = "\n".join(rows)
    assert find_retry_notice(status_lines(painted_screen)) == find_retry_notice(
        status_lines(screen)
    )
    assert _reading(painted_screen)[:3] == _reading(screen)[:3]
    assert _reading(painted_screen)[5:] == _reading(screen)[5:]


@settings(max_examples=300, deadline=None)
@given(st.lists(_LINE | st.text(max_size=40), max_size=40).map("\n".join))
def test_rules_never_raise(screen: str) -> None:
    _reading(screen)
    box_holds(find_input_box(screen), screen)
    prompt_came_back(screen, screen[:50])


@settings(max_examples=200, deadline=None)
@given(
    above=st.lists(st.sampled_from(_PIECES), max_size=8),
    options=st.lists(st.sampled_from(["Yes", "No", "❯ 1. Yes", "2. No", ""]), max_size=5),
    marked=st.integers(0, 5),
)
def test_prompt_parsing_never_raises_on_forged_frames(
    above: list[str], options: list[str], marked: int
) -> None:
    rows = ["─" * 80, " Bash command", *(" " + row for row in above), " Do you want to proceed?"]
    rows += [
        f" {'❯' if index == marked else ' '} {index + 1}. {text}"
        for index, text in enumerate(options)
    ]
    rows += ["", " Esc to cancel · Tab to amend"]
    found = find_permission_prompt("\n".join(rows))
    if found is not None:
        assert found.title == "Bash command"
        assert len(found.options) == len(options)
        assert found.selected == marked


def test_old_rules_fired_on_the_imitations() -> None:
    # What the issue was about: the whole-screen rules react to the model's text.
    screen = _sample("chrome_imitate_perm_busy_120x40.txt")
    assert re.search(r"Do you want to proceed\?\n\s*❯ 1\. Yes", screen)
    assert find_permission_prompt(screen) is None
    assert "esc to interrupt" in _sample("chrome_imitate_esc_120x40.txt")
    assert not is_busy(_sample("chrome_imitate_esc_120x40.txt"))


def test_a_scrolled_box_counts_its_hidden_rows_and_holds_text_when_blank_rows_show() -> None:
    screen = _sample("chrome_editor_loaded_scrolled_120x40.txt")
    box = find_input_box(screen)
    assert box is not None
    assert box.hidden_above == 135
    blank = "\n".join("" if row.startswith("  line 1") else row for row in screen.split("\n"))
    box = find_input_box(blank)
    assert box is not None
    assert (box.text, box.hidden_above) == ("", 135)
    assert box_has_text(box)
    plain = find_input_box(_sample("chrome_idle_120x40.txt"))
    assert plain is not None
    assert plain.hidden_above == 0
    assert not box_has_text(plain)
