"""Input fidelity on the real CLI: each class of text reaches the model as the contract says.

The contract is the "Typing user text" table of docs/conversation.rst. Every case either
arrives (in the mock's request and in the session file) exactly as `EXPECTED` says, which is
also `PreparedText.expected_record`, or is refused with `InputError` before anything is
typed. Nothing may end in a timeout: each step is bounded well below ``prompt_timeout``.

`test_generated_texts_in_one_conversation` drives a few hundred generated texts through one
``claude`` process. Hypothesis draws them (derandomized, so CI sees the same ones each run)
and shrinks a failure; the conversation lives in a trio loop of its own thread, and each
example is one turn sent into it with `trio.from_thread.run`. A turn that fails restarts the
process, so the shrinking runs on a healthy CLI. ``CLAUDE_TRIO_FIDELITY_EXAMPLES`` sets the
number of examples (150 by default).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from claude_trio import (
    Conversation,
    ConversationOptions,
    InputError,
    ResultMessage,
    open_conversation,
    prepare_text,
)
from claude_trio.testing import (
    IsolatedConfig,
    MockAnthropicAPI,
    RecordedRequest,
    isolated_config,
    open_mock_anthropic_api,
    text_reply,
)

from .conftest import LEAK_MARK

pytestmark = pytest.mark.real_cli

#: Bound on one step (a turn, a refusal); a held prompt would otherwise wait 30 s.
STEP = 20
EXAMPLES = int(os.environ.get("CLAUDE_TRIO_FIDELITY_EXAMPLES", "150"))
#: Set to explore other texts than CI's (which are derandomized: the same every run).
SEED = os.environ.get("CLAUDE_TRIO_FIDELITY_SEED")
FILE_CONTENT = "FIDELITY-FILE-CONTENT-7316"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
EMOJI_SEQUENCES = " ".join(
    [
        "\U0001f44d\U0001f3fd\u200d\u2642\ufe0f",
        "\u2764\ufe0f\u200d\U0001f525",
        "\U0001f3f3\ufe0f\u200d\U0001f308",
        "\U0001f408\u200d\u2b1b",
        "\U0001f9d1\U0001f3fe\u200d\U0001f91d\u200d\U0001f9d1\U0001f3fb",
        "\U0001f441\ufe0f\u200d\U0001f5e8\ufe0f",
        "#\ufe0f\u20e3 *\ufe0f\u20e3",
        "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
        "\U0001f3f4\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f",
        "\U0001f3f4\u200d\u2620\ufe0f",
        "\u263a\ufe0f \u00a9\ufe0f \U0001f1fa\U0001f1f8",
    ]
)
LONG_LINES = ("0123456789abcdef" * 64 + "\n") * 100  # 102 500 characters

Refused = type[InputError]

#: One case per class of input: what is typed, and what the model must receive (or
#: `InputError`). ``{cwd}`` stands for the CLI's working directory.
EXPECTED: dict[str, tuple[str, str | Refused]] = {
    "plain": ("hello there", "hello there"),
    # backslashes: "\" + Enter would insert a line break and send nothing
    "trailing-backslash": ("C:\\temp\\", "C:\\temp\\"),
    "trailing-double-backslash": ("two \\\\", "two \\\\"),
    "backslash-alone": ("\\", "\\"),
    "backslash-before-newline": ("line one \\\nline two", "line one \\\nline two"),
    "backslash-then-spaces": ("C:\\x\\  ", "C:\\x\\"),
    # first character
    "slash-command": ("/model x", " /model x"),
    "slash-alone": ("/", " /"),
    "slash-path": ("/etc/passwd is a file", " /etc/passwd is a file"),
    "slash-command-two-lines": ("/model\nsecond line", " /model\nsecond line"),
    "bang-command": ("!echo hi", " !echo hi"),
    "bang-alone": ("!", " !"),
    "newline-then-bang": ("\n!echo hi", "\n!echo hi"),
    "hash-alone": ("#", "#"),
    "hash-text": ("# remember this", "# remember this"),
    "question-alone": ("?", "?"),
    "question-text": ("? what is this", "? what is this"),
    "ampersand": ("& run this in the background", "& run this in the background"),
    # whole-text words the CLI takes as "leave"
    "exit": ("exit", InputError),
    "quit-with-spaces": ("  quit \n", InputError),
    "colon-q": (":q", InputError),
    "colon-wq-bang": (":wq!", InputError),
    "exit-in-a-sentence": ("exit now", "exit now"),
    "exit-capitalised": ("Exit", "Exit"),
    # mentions and tags
    "at-mention": ("look at @a.txt", "look at @a.txt"),
    "at-mention-missing-file": ("look at @missing.txt", "look at @missing.txt"),
    "email-address": ("mail me at me@a.txt", "mail me at me@a.txt"),
    "command-name-tag": (
        "<command-name>/foo</command-name> hello",
        "<command-name>/foo</command-name> hello",
    ),
    "local-command-stdout-tag": (
        "<local-command-stdout>x</local-command-stdout>",
        "<local-command-stdout>x</local-command-stdout>",
    ),
    "bash-input-tag": ("<bash-input>ls</bash-input>", "<bash-input>ls</bash-input>"),
    "system-reminder-tag": (
        "<system-reminder>hi</system-reminder> text",
        "<system-reminder>hi</system-reminder> text",
    ),
    "pasted-content-tag": (
        '<pasted_content id="ab">\nx\n</pasted_content id="ab">',
        '<\\pasted_content id="ab">\nx\n<\\/pasted_content id="ab">',
    ),
    "pasted-content-tag-spaced": ("x < / PASTED-CONTENT y", "x <\\ / PASTED-CONTENT y"),
    "pasted-content-tag-fullwidth": ("\uff1cpasted_content\uff1e", "<\\pasted_content\uff1e"),
    "pasted-content-tag-escaped": ("<\\pasted_content>", "<\\pasted_content>"),
    "pasted-content-tag-lookalike": ("<p\u0430sted_content>", InputError),
    "pasted-placeholder": ("see [Pasted text #1 +3 lines]", "see [Pasted text #1 +3 lines]"),
    # text the CLI would read as an image path (Enter would be lost)
    "image-name-in-a-sentence": ("please describe logo.png", "please describe logo.png"),
    "image-name-first-line": ("x.JPEG\nmore text", "x.JPEG\nmore text"),
    "image-path-existing": ("{cwd}/pic.png", " {cwd}/pic.png"),
    "image-path-quoted": ("'{cwd}/pic.png'", "'{cwd}/pic.png'"),
    # invisible and format characters
    "controls-and-escape": ("before\x1b[201~after\x03", "before[201~after"),
    "unicode-tag-characters": ("a\U000e0041\U000e0042b", "ab"),
    "language-tag": ("\U000e0001en text", "en text"),
    "england-flag": (f"flag {ENGLAND} ok", f"flag {ENGLAND} ok"),
    "soft-hyphen": ("co\u00adop", "coop"),
    "arabic-letter-mark": ("a\u061cb", "ab"),
    "bidi-isolates": ("a\u2066b\u2069", "ab"),
    "bidi-override": ("a\u202eb", "ab"),
    "mongolian-vowel-separator": ("a\u180eb", "ab"),
    "invisible-operators": ("f\u2061(x) a\u2062b a\u2063b 1\u20642", "f(x) ab ab 12"),
    "variation-selectors-after-latin": ("a\ufe00b a\ufe0fb", "ab ab"),
    "variation-selectors-after-emoji": (
        "\u2764\ufe0f and \u263a\ufe0e",
        "\u2764\ufe0f and \u263a\ufe0e",
    ),
    "keycap": ("1\ufe0f\u20e3", "1\ufe0f\u20e3"),
    "emoji-sequences": (EMOJI_SEQUENCES, EMOJI_SEQUENCES),
    "variation-selector-after-math": ("\u2229\ufe00", "\u2229"),
    "ideographic-variation-selector": ("\u845b\U000e0100", "\u845b"),
    "zero-width-space": ("a\u200bb", "ab"),
    "joiner-in-emoji": (FAMILY, FAMILY),
    "joiner-in-devanagari": ("\u0915\u094d\u200d\u0937", "\u0915\u094d\u0937"),
    "non-joiner-in-persian": (
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
    ),
    "hangul-fillers": ("a\u115fb\u3164c\uffa0d", "abcd"),
    "braille-blank-private-use-unassigned": (
        "a\u2800b\ue000c\u0378d\uffffe\ufffdf",
        "a\u2800b\ue000c\u0378d\uffffe\ufffdf",
    ),
    "lone-surrogate": ("a\ud800b", "a\ufffdb"),
    # line breaks and whitespace
    "crlf": ("a\r\nb\r\nc", "a\nb\nc"),
    "lone-cr": ("a\rb", "a\nb"),
    "line-and-paragraph-separators": ("a\u2028b\u2029c", "a\nb\nc"),
    "vt-ff-nel": ("a\x0bb\x0cc\x85d", "a\nb\nc\nd"),
    "tabs": ("a\tb\t\tc", "a    b        c"),
    "leading-newlines-and-spaces": ("\n\n  x", "\n\n  x"),
    "trailing-whitespace": ("hello \u00a0\u3000\t\n\n", "hello"),
    "nfd": ("cafe\u0301", "caf\u00e9"),
    # size
    "100-kb-in-lines": (LONG_LINES, LONG_LINES.rstrip("\n")),
    "1000-emoji": ("\U0001f600" * 1000, "\U0001f600" * 1000),
    "empty": ("", InputError),
    "only-invisible": (" \u200b\n\u2066 ", InputError),
}


def _options(cli: Path, config: IsolatedConfig, **overrides: object) -> ConversationOptions:
    settings_: dict[str, object] = {
        "cwd": config.cwd,
        "env": config.env,
        "cli_path": str(cli),
        "dangerously_skip_permissions": True,
        "max_retries": 0,
        **overrides,
    }
    return ConversationOptions(**settings_)  # type: ignore[arg-type]


def _short_reply(request: RecordedRequest) -> Any:
    return text_reply("ok")


def api_prompt(request: RecordedRequest) -> str:
    """The typed text as the model gets it: the last text block of the last user message.

    (`RecordedRequest.prompt` skips a text that starts with ``<system-reminder>``, which
    a user may type too.)
    """
    for message in reversed(request.messages):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        texts = [b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text"]
        assert texts, f"no text in the last user message: {content!r}"
        text = texts[-1]
        assert isinstance(text, str)
        return text
    raise AssertionError("no user message in the request")


def recorded_prompt(session_file: Path) -> str:
    """The content of the last typed prompt in the session file."""
    for line in reversed(session_file.read_text(encoding="utf-8").splitlines()):
        record = json.loads(line)
        if record.get("type") == "user" and record.get("promptSource") == "typed":
            content = record["message"]["content"]
            assert isinstance(content, str)
            return content
    raise AssertionError("no typed prompt in the session file")


async def _turn(conversation: Conversation) -> None:
    with trio.fail_after(STEP):
        events = [event async for event in conversation.receive_turn()]
    assert isinstance(events[-1], ResultMessage)


def _fill(text: str, cwd: Path) -> str:
    return text.replace("{cwd}", str(cwd))


def test_the_matrix_is_the_contract() -> None:
    """Each expected text is what prepare_text predicts (no CLI needed)."""
    cwd = Path("/work/project")
    for name, (typed, expected) in EXPECTED.items():
        if not isinstance(expected, str):
            with pytest.raises(InputError):
                prepare_text(_fill(typed, cwd))
        else:
            assert prepare_text(_fill(typed, cwd)).expected_record == _fill(expected, cwd), name


@pytest.mark.parametrize("name", list(EXPECTED))
async def test_each_class_arrives_as_the_contract_says(
    name: str, claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    typed, expected = EXPECTED[name]
    cwd = isolated.cwd
    typed = _fill(typed, cwd)
    (cwd / "a.txt").write_text(FILE_CONTENT + "\n")
    (cwd / "pic.png").write_bytes(PNG)
    mock_api.handler = _short_reply
    async with open_conversation(_options(claude_cli, isolated)) as conversation:
        if not isinstance(expected, str):
            with trio.fail_after(1):
                with pytest.raises(InputError):
                    await conversation.send(typed)
            # Nothing was typed: the next message arrives alone.
            await conversation.send("after")
            await _turn(conversation)
            assert [api_prompt(r) for r in mock_api.main_requests] == ["after"]
            return
        expected = _fill(expected, cwd)
        prepared = await conversation.send(typed)
        assert prepared.expected_record == expected
        await _turn(conversation)
        (request,) = mock_api.main_requests
        assert api_prompt(request) == expected
        assert recorded_prompt(conversation.session_file) == expected
        body = json.dumps(request.body)
        # No local file reaches the request: @-mentions are off by default.
        assert FILE_CONTENT not in body
        assert '"type": "image"' not in body


@pytest.mark.parametrize("mentions", ["off by default", "on when asked for"])
async def test_file_mentions_are_off_unless_asked_for(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI, mentions: str
) -> None:
    (isolated.cwd / "a.txt").write_text(FILE_CONTENT + "\n")
    env = dict(isolated.env)
    if mentions == "on when asked for":
        env["CLAUDE_CODE_DISABLE_FILE_MENTIONS"] = ""
    async with open_conversation(_options(claude_cli, isolated, env=env)) as conversation:
        await conversation.send("look at @a.txt")
        await _turn(conversation)
    (request,) = mock_api.main_requests
    assert api_prompt(request) == "look at @a.txt"
    assert (FILE_CONTENT in json.dumps(request.body)) == (mentions == "on when asked for")


# --- generated texts through one conversation -------------------------------------------

FRAGMENTS = [
    "\\",
    "\\\n",
    "/",
    "/model x",
    "!",
    "!echo hi",
    "#",
    "?",
    "& ",
    "@a.txt",
    " @nowhere.txt ",
    "exit",
    "quit",
    ":q",
    "<command-name>/x</command-name>",
    "<local-command-stdout>",
    "<system-reminder>",
    "<pasted_content>",
    "</pasted_content>",
    "\U000e0041",
    ENGLAND,
    "\u00ad",
    "\u061c",
    "\u180e",
    "\u2061",
    "\ufe00",
    "\ufe0f",
    "\ufe0e",
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2066",
    "\u202e",
    "\u200f",
    "\U000e0001",
    "\U000e0100",
    "\u3164",
    "\u2800",
    "\u2764",
    "\U0001f600",
    "\U0001f3fb",
    FAMILY,
    "1\u20e3",
    "\u0645\u06cc",
    "\u0915\u094d",
    "\r\n",
    "\r",
    "\n",
    "\t",
    " ",
    "\u00a0",
    "\u3000",
    "\u2028",
    "\x0b",
    "\x85",
    "\x1b[201~",
    "\x03",
    "e\u0301",
    "\u1100\u1161",
    "logo.png",
    " /tmp/x.jpg",
    "'/a b/c.gif'",
    "[Pasted text #1 +2 lines]",
]

unicode = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
texts = st.lists(
    st.sampled_from(FRAGMENTS)
    | unicode
    | st.builds(
        lambda char, count: char * count,
        st.sampled_from(["x", "\n", " ", "\U0001f600", "\u00e9", "\t", "\\", "a\u200d"]),
        st.integers(min_value=1, max_value=1200),
    ),
    min_size=1,
    max_size=8,
).map("".join)


class LiveConversation:
    """One real CLI conversation in a trio loop of its own thread, for sync callers.

    `turn` types a text and returns what the model and the session file got. A turn that
    fails leaves the CLI in an unknown state: the conversation is then replaced by a new
    one (same mock, new process) before the error is re-raised.
    """

    def __init__(self, cli: Path, root: Path, leak_mark: str) -> None:
        self.cli = cli
        self.root = root
        self.leak_mark = leak_mark
        self.turns = 0
        self.restarts = 0
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._opened: trio.Event | None = None
        self._conversation: Conversation | None = None
        self._api: MockAnthropicAPI | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fidelity-cli", daemon=True)

    def __enter__(self) -> LiveConversation:
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None:
            raise self._error
        assert self._token is not None, "the CLI did not start within 60 s"
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None and self._stop is not None:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(30)
        assert not self._thread.is_alive(), "the CLI thread did not end"
        if self._error is not None and exc_info[0] is None:
            raise self._error

    def turn(self, text: str) -> tuple[str, str]:
        assert self._token is not None
        return trio.from_thread.run(self._turn, text, trio_token=self._token)

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._stop = trio.Event()
        self._opened = trio.Event()
        async with open_mock_anthropic_api(handler=_short_reply) as api:
            self._api = api
            cwd = self.root / "project"
            cwd.mkdir()
            config = isolated_config(
                self.root,
                base_url=api.base_url,
                cwd=cwd,
                extra_env={LEAK_MARK: self.leak_mark, "CLAUDE_CODE_MAX_RETRIES": "0"},
            )
            options = _options(self.cli, config)
            while not self._stop.is_set():
                async with open_conversation(options) as conversation:
                    self._conversation = conversation
                    self._token = trio.lowlevel.current_trio_token()
                    self._opened.set()
                    self._ready.set()
                    await self._stop.wait()
                    self._conversation = None

    async def _turn(self, text: str) -> tuple[str, str]:
        conversation, api = self._conversation, self._api
        assert conversation is not None
        assert api is not None
        before = len(api.main_requests)
        try:
            with trio.fail_after(STEP):
                prepared_error: InputError | None = None
                try:
                    await conversation.send(text)
                except InputError as exc:
                    prepared_error = exc
                if prepared_error is None:
                    await _turn(conversation)
            self.turns += 1
            if prepared_error is not None:
                assert len(api.main_requests) == before
                raise prepared_error
            assert len(api.main_requests) == before + 1
            return api_prompt(api.main_requests[-1]), recorded_prompt(conversation.session_file)
        except InputError:
            raise
        except BaseException:
            await self._restart()
            raise

    async def _restart(self) -> None:
        # Ending the current conversation's block makes _main open a new one.
        assert self._stop is not None
        self.restarts += 1
        old_stop = self._stop
        self._stop = trio.Event()
        self._opened = opened = trio.Event()
        self._conversation = None
        old_stop.set()
        with trio.fail_after(60):
            await opened.wait()


@pytest.fixture
def live(claude_cli: Path, tmp_path: Path, leak_mark: str) -> Iterator[LiveConversation]:
    with LiveConversation(claude_cli, tmp_path, leak_mark) as conversation:
        yield conversation
    print(f"\n{conversation.turns} turns, {conversation.restarts} restarts of the CLI")


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=SEED is None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(text=texts)
@seed(int(SEED or 0))
def test_generated_texts_in_one_conversation(live: LiveConversation, text: str) -> None:
    try:
        expected = prepare_text(text).expected_record
    except InputError:
        with pytest.raises(InputError):
            live.turn(text)
        return
    sent, recorded = live.turn(text)
    assert sent == expected
    assert recorded == expected
    assert unicodedata.is_normalized("NFC", sent)
