"""prepare_text: nothing unsafe survives, nothing else changes, chunks stay unwrapped.

The rules are the "Typing user text" table of docs/conversation.rst; tests/test_fidelity.py
checks the same rules against the real CLI.
"""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claude_trio import InputError
from claude_trio._sanitize import (
    EXIT_WORDS,
    PASTE_CHUNK_CHARS,
    _image_name_cut,
    _strip_invisible,
    paste_length,
    paste_line_break_limit,
    prepare_text,
)

ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"

#: Never left in a prepared text: controls, line breaks other than LF, bidi controls
#: (the CLI would hold the prompt), and what the CLI removes in every context.
_NEVER = (
    {chr(c) for c in range(0x20)} - {"\n", "\t"}
    | {chr(c) for c in range(0x7F, 0xA0)}
    | set("\u2028\u2029\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    | set("\u00ad\u034f\u115f\u1160\u180e\u200b\u2060\u2061\u2064\u206f\u3164\ufeff\uffa0\ufff9")
    | set("\ufe00\U000e0001\U000e0100\U0001d173")
)
#: Kept only where the CLI keeps them (next to emoji, in flags, after Arabic letters).
_CONDITIONAL = set("\u200c\u200d\ufe0e\ufe0f") | {chr(c) for c in range(0xE0020, 0xE0080)}

_PIECES = [
    "\n",
    "\r\n",
    "\r",
    "\t",
    "\x0b",
    "\x85",
    "\u2028",
    "\x1b[201~",
    "e\u0301",
    "/",
    "!",
    "\\",
    "exit",
    " :q ",
    "x" * 700,
    "\U0001f600" * 300,
    "\t" * 150,
    FAMILY,
    ENGLAND,
    "\u2764\ufe0f",
    "1\ufe0f\u20e3",
    "\u0645\u06cc\u200c",
    "\u0915\u094d\u200d",
    "<pasted_content>",
    "</PASTED-content ",
    "logo.png",
    " /a/b.jpeg\n",
    "'/x y/z.gif'",
    "\ud800",
]

texts = st.lists(
    st.characters(codec="utf-8")
    | st.sampled_from(sorted(_NEVER | _CONDITIONAL))
    | st.sampled_from(_PIECES),
    min_size=1,
    max_size=300,
).map("".join)


@settings(deadline=None, max_examples=300)
@given(texts, st.integers(min_value=12, max_value=60))
def test_prepared_text_is_safe_stable_and_pastes_unwrapped(text: str, rows: int) -> None:
    try:
        prepared = prepare_text(text, rows=rows)
    except InputError as exc:
        refusal = str(exc)
    else:
        refusal = ""
    if refusal:
        assert any(reason in refusal for reason in ("empty", "exits", "pasted_content"))
        return
    typed = prepared.text
    assert not set(typed) & _NEVER
    assert unicodedata.is_normalized("NFC", typed)
    # What is left is what the CLI leaves alone: it removes nothing more.
    assert _strip_invisible(typed) == (typed, 0)
    assert typed[0] not in "/!"
    assert not typed.endswith("\\")
    assert typed.strip() not in EXIT_WORDS
    assert "".join(prepared.chunks) == typed
    limit = paste_line_break_limit(rows)
    for chunk in prepared.chunks:
        assert 0 < paste_length(chunk) <= PASTE_CHUNK_CHARS
        assert chunk.count("\n") <= limit
        assert _image_name_cut(chunk) is None
    expanded = typed.replace("\t", "    ")
    assert prepared.expected_record == expanded.rstrip()


@settings(deadline=None)
@given(
    st.text(
        st.characters(
            codec="utf-8",
            exclude_categories=("Cs", "Cc", "Cf", "Mn", "Me", "Mc", "Zl", "Zp"),
            exclude_characters="\u115f\u1160\u3164\uffa0<\\",
        ),
        min_size=1,
        max_size=2000,
    ).filter(
        # The CLI's invisible table also holds unassigned code points (U+E0000,
        # U+FFF0…): text with them is not safe text, and `_strip_invisible` says which.
        lambda t: (
            t.strip()
            and t[0] not in "/!"
            and t.strip() not in EXIT_WORDS
            and _strip_invisible(t)[1] == 0
        )
    )
)
def test_safe_text_passes_unchanged(text: str) -> None:
    text = unicodedata.normalize("NFC", text)
    prepared = prepare_text(text)
    assert prepared.text == text
    assert prepared.removed == 0
    assert not prepared.prefixed
    assert not prepared.suffixed


@pytest.mark.parametrize("text", ["/model x", "!echo hi", "/etc/passwd", "/", "!"])
def test_command_prefixes_get_one_leading_space(text: str) -> None:
    prepared = prepare_text(text)
    assert prepared.text == " " + text
    assert prepared.prefixed
    assert prepared.expected_record == " " + text


@pytest.mark.parametrize("text", ["\n/model x", " !x", "a/b", "#", "?", "& x", "@a.txt"])
def test_other_first_characters_are_left_alone(text: str) -> None:
    assert prepare_text(text).text == text


@pytest.mark.parametrize(
    ("text", "record"),
    [("C:\\temp\\", "C:\\temp\\"), ("\\", "\\"), ("two \\\\", "two \\\\"), ("\u200b\\", "\\")],
)
def test_a_final_backslash_gets_a_space_the_cli_trims(text: str, record: str) -> None:
    prepared = prepare_text(text)
    assert prepared.text == record + " "
    assert prepared.suffixed
    assert prepared.expected_record == record


@pytest.mark.parametrize("text", ["a \\\nb", "C:\\x\\ ", "C:\\x\\\n", "\\\t"])
def test_a_backslash_before_whitespace_needs_nothing(text: str) -> None:
    prepared = prepare_text(text)
    assert prepared.text == text
    assert not prepared.suffixed


@pytest.mark.parametrize("word", sorted(EXIT_WORDS))
@pytest.mark.parametrize("around", ["{}", "  {}\n", "\t{}\u00a0", "\u200b{}\u2066"])
def test_words_that_make_the_cli_exit_are_refused(word: str, around: str) -> None:
    with pytest.raises(InputError, match="exits"):
        prepare_text(around.format(word))


@pytest.mark.parametrize("text", ["exit now", "Exit", "EXIT", "quit!", ":wq!!", "exit\u2800"])
def test_exit_words_within_other_text_pass(text: str) -> None:
    assert prepare_text(text).text == text


def test_escape_sequences_cannot_end_the_paste() -> None:
    prepared = prepare_text("before\x1b[201~after\x03")
    assert prepared.text == "before[201~after"
    assert prepared.removed == 2


def test_line_breaks_become_lf_and_surrogates_fffd() -> None:
    assert prepare_text("a\r\nb\rc\x0bd\x0ce\x85f\u2028g\u2029h").text == "a\nb\nc\nd\ne\nf\ng\nh"
    assert prepare_text("a\ud800b\udfff").text == "a\ufffdb\ufffd"


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("a\U000e0041\U000e0042b", "ab"),  # tag characters
        ("\U000e0001en text", "en text"),  # language tag
        ("co\u00adop", "coop"),  # soft hyphen
        ("a\u061cb a\u200eb a\u200fb", "ab ab ab"),  # marks the CLI would hold for
        ("a\u202ab\u202ec a\u2066b\u2069", "abc ab"),  # bidi embeddings and isolates
        ("a\u180eb", "ab"),  # Mongolian vowel separator
        ("f\u2061(x) a\u2062b a\u2063b 1\u20642 a\u206ab", "f(x) ab ab 12 ab"),
        ("a\ufe00b a\ufe0fb \u2229\ufe00", "ab ab \u2229"),  # selectors not after emoji
        ("\u845b\U000e0100", "\u845b"),  # ideographic variation selector
        ("a\u034fb", "ab"),  # combining grapheme joiner
        ("a\u115fb\u1160c\u3164d\uffa0e", "abcde"),  # Hangul fillers
        ("a\ufff9b\ufffac\ufffbd", "abcd"),  # interlinear annotation
        ("a\U0001d173b", "ab"),  # musical format
        ("a\u200bb\u2060c\ufeffd", "abcd"),  # zero-width space, word joiner, BOM
        ("\u0915\u094d\u200d\u0937", "\u0915\u094d\u0937"),  # joiner outside emoji
        ("x\u200dy \u200d\U0001f525", "xy \U0001f525"),
        ("\U0001f600\u200d\u200d\U0001f600", "\U0001f600\u200d\U0001f600"),
        ("a\u200cb", "ab"),  # non-joiner after a Latin letter
        ("\U0001f3f4\U000e0075\U000e0073\U000e0063\U000e0061\U000e007f", "\U0001f3f4"),
        ("e\u00ad\u0301", "\u00e9"),  # NFC after the removal
    ],
)
def test_invisible_characters_are_removed(text: str, cleaned: str) -> None:
    prepared = prepare_text(text)
    assert prepared.text == cleaned
    assert prepared.removed > 0


@pytest.mark.parametrize(
    "text",
    [
        FAMILY,  # joiners between emoji
        "\U0001f44d\U0001f3fd\u200d\u2642\ufe0f",  # skin tone and sign
        "\u2764\ufe0f\u200d\U0001f525",
        "\u2764\ufe0f and \u263a\ufe0e",  # presentation selectors after emoji
        "1\ufe0f\u20e3 #\ufe0f\u20e3",  # keycaps
        f"flag {ENGLAND} ok",
        "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # Scotland
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian non-joiner
        "\u00a9\ufe0f \u00ae\ufe0f",
        "a\u2800b\ue000c\u0378d\uffffe\ufffdf",  # blank, private use, unassigned
    ],
)
def test_invisible_characters_the_cli_keeps_are_kept(text: str) -> None:
    prepared = prepare_text(text)
    assert prepared.text == text
    assert prepared.removed == 0


@pytest.mark.parametrize(
    ("text", "typed"),
    [
        (
            '<pasted_content id="ab">\nx\n</pasted_content id="ab">',
            '<\\pasted_content id="ab">\nx\n<\\/pasted_content id="ab">',
        ),
        ("x < / PASTED-CONTENT y", "x <\\ / PASTED-CONTENT y"),
        ("\uff1cpasted_content\uff1e", "<\\pasted_content\uff1e"),
        ("\u2039pasted_content", "<\\pasted_content"),
        ("<pasted_content", "<\\pasted_content"),
    ],
)
def test_pasted_content_tags_are_escaped_as_the_cli_does(text: str, typed: str) -> None:
    assert prepare_text(text).text == typed


@pytest.mark.parametrize(
    "text",
    [
        "<\\pasted_content>",
        "<pastedcontent> <pasted_contents> <pasted content>",
        "a < pasted content",
        "<_pasted_content> <.x pasted_content",
        "<\u3053\u3053\u306b\u30da\u30fc\u30b9\u30c8\u3055\u308c\u305f\u5185\u5bb9\u3067\u3059>",
    ],
)
def test_other_angle_brackets_are_left_alone(text: str) -> None:
    assert prepare_text(text).text == text


@pytest.mark.parametrize(
    "text",
    [
        "<p\u0430sted_content>",
        "<\uff50asted_content>",
        "<p\u00e1sted_content",
        "<pasted\u30fccontent",
        "<\u2009pasted_content",
    ],
)
def test_tags_spelled_with_look_alikes_are_refused(text: str) -> None:
    with pytest.raises(InputError, match="pasted_content"):
        prepare_text(text)


@pytest.mark.parametrize(
    ("text", "chunks"),
    [
        ("please describe logo.png", ("please describe logo.pn", "g")),
        ("/abs/pic.PNG", (" /abs/pic.PN", "G")),
        ("'x.webp'", ("'x.web", "p'")),
        ("x.JPEG\nmore text", ("x.JPE", "G\nmore text")),
        ("/a/x.png /b/y.gif", (" /a/x.pn", "g /b/y.gif")),
        ("a\nb.jpg  ", ("a\nb.jp", "g  ")),
        ("x.pn\\g", ("x.pn\\", "g")),
    ],
)
def test_lines_that_name_images_are_split_before_the_last_letter(
    text: str, chunks: tuple[str, ...]
) -> None:
    prepared = prepare_text(text)
    assert prepared.chunks == chunks
    assert prepared.expected_record == "".join(chunks).rstrip()


@pytest.mark.parametrize(
    "text", ["see /a/b.png now", "see /a/b.png", "logo.png.", "logo.pngs", "/a b/c.png x"]
)
def test_text_around_image_names_is_one_paste(text: str) -> None:
    assert len(prepare_text(text).chunks) == 1


def test_long_text_is_split_at_800_chars_and_two_line_breaks() -> None:
    prepared = prepare_text("x" * 2000)
    assert [len(c) for c in prepared.chunks] == [800, 800, 400]
    prepared = prepare_text("a\nb\nc\nd\ne")
    assert prepared.chunks == ("a\nb\nc", "\nd\ne")


def test_chunks_count_utf16_units_and_tabs_as_four() -> None:
    prepared = prepare_text("\U0001f600" * 1000)
    assert [len(c) for c in prepared.chunks] == [400, 400, 200]
    prepared = prepare_text("\\" + "\t" * 200)
    assert [paste_length(c) for c in prepared.chunks] == [797, 4]
    assert paste_length("a\t\U0001f600") == 7


def test_a_combining_mark_stays_with_its_base() -> None:
    text = "x" * 799 + "q\u0301" + "y"  # q + acute has no precomposed form
    prepared = prepare_text(text)
    assert prepared.chunks[0] == "x" * 799
    assert prepared.chunks[1].startswith("q\u0301")


@pytest.mark.parametrize("text", ["", "   ", "\x1b\x03", "\u200b\n", " \u2066\u00ad\t"])
def test_empty_messages_are_refused(text: str) -> None:
    with pytest.raises(InputError, match="empty"):
        prepare_text(text)


def test_tiny_terminals_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 11"):
        prepare_text("hi", rows=10)
    assert prepare_text("a\nb", rows=11).chunks == ("a\nb",)
    assert prepare_text("a\nb\nc", rows=11).chunks == ("a\nb", "\nc")


def test_the_expected_record_expands_tabs_and_trims_the_end() -> None:
    prepared = prepare_text("a\tb \u00a0\u3000\t\n\n")
    assert prepared.expected_record == "a    b"
    assert prepare_text("\n\n  x").expected_record == "\n\n  x"
