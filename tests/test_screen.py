"""The terminal screen, and the chrome rules on the first samples the real CLI drew.

``tests/test_chrome.py`` checks the rules against every sample, imitations included.
"""

from __future__ import annotations

import pytest

from claude_trio._chrome import find_dialog, find_input_box, is_busy, is_ready
from claude_trio._screen import TerminalScreen

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
