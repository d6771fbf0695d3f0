"""prepare_text: nothing unsafe survives, nothing else changes, chunks stay unwrapped."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_trio._sanitize import PASTE_CHUNK_CHARS, paste_line_break_limit, prepare_text

_UNSAFE = (
    {chr(c) for c in range(0x20)} - {"\n", "\t"}
    | {"\x7f"}
    | {chr(c) for c in range(0x80, 0xA0)}
    | {
        "\u200b",
        "\u200c",
        "\u200d",
        "\u200e",
        "\u200f",
        "\u202a",
        "\u202e",
        "\u2066",
        "\u2069",
        "\u2060",
        "\ufeff",
    }
)

texts = st.lists(
    st.characters(codec="utf-8")
    | st.sampled_from(sorted(_UNSAFE))
    | st.sampled_from(["\n", "\r\n", "\r", "\x1b[201~", "e\u0301", "/", "!", "x" * 700]),
    min_size=1,
    max_size=300,
).map("".join)


@settings(deadline=None, max_examples=300)
@given(texts, st.integers(min_value=12, max_value=60))
def test_no_unsafe_character_survives_and_chunks_rebuild_the_text(text: str, rows: int) -> None:
    try:
        prepared = prepare_text(text, rows=rows)
    except ValueError:
        assert not "".join(c for c in text if c not in _UNSAFE and c != "\r").strip()
        return
    assert not set(prepared.text) & _UNSAFE
    assert "\r" not in prepared.text
    assert "\x1b" not in prepared.text
    assert "".join(prepared.chunks) == prepared.text
    limit = paste_line_break_limit(rows)
    for chunk in prepared.chunks:
        assert 0 < len(chunk) <= PASTE_CHUNK_CHARS
        assert chunk.count("\n") <= limit
    assert prepared.text[0] not in "/!"
    assert unicodedata.is_normalized("NFC", prepared.text)


@settings(deadline=None)
@given(
    st.text(
        st.characters(
            codec="utf-8", exclude_categories=("Cs", "Cc", "Cf", "Mn", "Me", "Mc", "Zl", "Zp")
        ),
        min_size=1,
        max_size=2000,
    ).filter(lambda t: t.strip() and t[0] not in "/!")
)
def test_safe_text_passes_unchanged(text: str) -> None:
    text = unicodedata.normalize("NFC", text)
    prepared = prepare_text(text)
    assert prepared.text == text
    assert prepared.removed == 0
    assert not prepared.prefixed


@pytest.mark.parametrize("text", ["/model x", "!echo hi", "/etc/passwd"])
def test_command_prefixes_get_one_leading_space(text: str) -> None:
    prepared = prepare_text(text)
    assert prepared.text == " " + text
    assert prepared.prefixed


def test_escape_sequences_cannot_end_the_paste() -> None:
    prepared = prepare_text("before\x1b[201~after\x03")
    assert prepared.text == "before[201~after"
    assert prepared.removed == 2


def test_long_text_is_split_at_800_chars_and_two_line_breaks() -> None:
    prepared = prepare_text("x" * 2000)
    assert [len(c) for c in prepared.chunks] == [800, 800, 400]
    prepared = prepare_text("a\nb\nc\nd\ne")
    assert prepared.chunks == ("a\nb\nc", "\nd\ne")


def test_a_combining_mark_stays_with_its_base() -> None:
    text = "x" * 799 + "q\u0301" + "y"  # q + acute has no precomposed form
    prepared = prepare_text(text)
    assert prepared.chunks[0] == "x" * 799
    assert prepared.chunks[1].startswith("q\u0301")


@pytest.mark.parametrize("text", ["", "   ", "\x1b\x03", "\u200b\n"])
def test_empty_messages_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        prepare_text(text)


def test_tiny_terminals_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 11"):
        prepare_text("hi", rows=10)
    assert prepare_text("a\nb", rows=11).chunks == ("a\nb",)
    assert prepare_text("a\nb\nc", rows=11).chunks == ("a\nb", "\nc")


def test_a_joiner_survives_only_inside_an_emoji_sequence() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert prepare_text(f"a {family} b").text == f"a {family} b"
    assert prepare_text("x\u200dy \u200d\U0001f525").text == "xy \U0001f525"
