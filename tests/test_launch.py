"""How a claude process is started: environment layers, private files, argv."""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from claude_trio import ConversationOptions, JsonlWatcher, open_claude_pty
from claude_trio._environment import (
    DEFAULT_MAX_RETRIES,
    EXCLUDED_NAMES,
    PASS_THROUGH_NAMES,
    check_env_conflicts,
    config_dir_of,
    is_passed_through,
    library_defaults,
)
from claude_trio._launch import prepared_launch
from claude_trio._private import write_private
from claude_trio._relay import is_first_party
from claude_trio.testing import IsolatedConfig, MockAnthropicAPI, RequestKind, echo_mcp_server

CLI = Path("/usr/bin/claude-not-run")
SID = "6b1a4a3e-8f54-4a55-9a5e-0f8f5d6c1e11"

#: The variables the library sets itself with every option at its default.
DEFAULTS = {
    "TERM": "xterm-256color",
    "LANG": "C.UTF-8",
    "CLAUDE_CODE_MAX_RETRIES": "2",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "CLAUDE_CODE_DISABLE_BACKGROUND_TASKS": "1",
    "CLAUDE_CODE_DISABLE_FILE_MENTIONS": "1",
}

#: A caller's environment as it may look inside Claude Code's Bash tool, with secrets.
CALLER = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/someone",
    "LANG": "de_DE.UTF-8",
    "ANTHROPIC_API_KEY": "sk-ant-from-environ",
    "ANTHROPIC_BASE_URL": "https://proxy.example",
    "CLAUDE_CODE_USE_BEDROCK": "1",
    "AWS_REGION": "eu-west-1",
    "AWS_PROFILE": "dev",
    "CLOUDSDK_CONFIG": "/home/someone/.gcloud",
    "GOOGLE_APPLICATION_CREDENTIALS": "/home/someone/adc.json",
    "GOOGLE_CLOUD_PROJECT": "proj",
    "CLOUD_ML_REGION": "us-east5",
    "VERTEX_REGION_CLAUDE_4_5_SONNET": "europe-west1",
    "DISABLE_TELEMETRY": "1",
    "MAX_THINKING_TOKENS": "1024",
    "BASH_DEFAULT_TIMEOUT_MS": "5000",
    "MCP_TIMEOUT": "9000",
    "HTTPS_PROXY": "http://proxy:3128",
    "https_proxy": "http://proxy:3128",
    "ALL_PROXY": "socks5://proxy:1080",
    "all_proxy": "socks5://proxy:1080",
    "NO_PROXY": "localhost",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4317",
    # Never passed:
    "CLAUDECODE": "1",
    "CLAUDE_CODE_ENTRYPOINT": "cli",
    "CLAUDE_CODE_SSE_PORT": "41234",
    "CLAUDE_CODE_SESSION_ID": "00000000-0000-4000-8000-000000000000",
    "CLAUDE_CODE_CHILD_SESSION": "1",
    "CLAUDE_CODE_SESSION_ACCESS_TOKEN": "secret-session-token",
    "CLAUDE_CODE_REMOTE": "true",
    "CLAUDE_CODE_REMOTE_SESSION_ID": "remote",
    "CLAUDE_CODE_BRIDGE_SESSION_ID": "bridge",
    "CLAUDE_CODE_RESUME_INTERRUPTED_TURN": "1",
    "CLAUDE_CODE_API_KEY_FILE_DESCRIPTOR": "3",
    "CLAUDE_CODE_SIMPLE": "1",
    "CLAUDE_TRIO_CLI": "/opt/claude",
    "CLAUDE_TRIO_TREE": "abc",
    "AI_AGENT": "claude-code",
    "IS_SANDBOX": "1",
    "PYTHONPATH": "/src",
    "LD_PRELOAD": "/evil.so",
    "NODE_OPTIONS": "--inspect",
    "TERM": "dumb",
    "RANDOM_THING": "x",
}
PASSED = {
    "PATH",
    "HOME",
    "LANG",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "CLAUDE_CODE_USE_BEDROCK",
    "AWS_REGION",
    "AWS_PROFILE",
    "CLOUDSDK_CONFIG",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "CLOUD_ML_REGION",
    "VERTEX_REGION_CLAUDE_4_5_SONNET",
    "DISABLE_TELEMETRY",
    "MAX_THINKING_TOKENS",
    "BASH_DEFAULT_TIMEOUT_MS",
    "MCP_TIMEOUT",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
}


def _options(cwd: Path, **overrides: Any) -> ConversationOptions:
    return ConversationOptions(cwd=cwd, **overrides)


# --- layer 1: pass-through -------------------------------------------------------------


def test_only_listed_variables_pass_through(tmp_path: Path) -> None:
    env = _options(tmp_path).child_env(environ=CALLER)
    assert set(env) == PASSED | set(DEFAULTS)
    for name in PASSED:
        assert env[name] == CALLER[name]


@pytest.mark.parametrize(
    "name",
    [
        "CLAUDECODE",
        "CLAUDE_CODE_ENTRYPOINT",
        "CLAUDE_CODE_SSE_PORT",
        "CLAUDE_CODE_SESSION_ID",
        "CLAUDE_CODE_CHILD_SESSION",
        "CLAUDE_CODE_SESSION_ACCESS_TOKEN",
        "CLAUDE_CODE_REMOTE",
        "CLAUDE_CODE_BRIDGE_SESSION_ID",
        "CLAUDE_CODE_RELAUNCH_HOME_TRUST",
        "CLAUDE_CODE_OAUTH_TOKEN_FILE_DESCRIPTOR",
        "CLAUDE_TRIO_CLI",
        "CLAUDE_TRIO_TEST_MARK",
        "IS_SANDBOX",
        "AI_AGENT",
        "TERM",
        "PYTHONPATH",
    ],
)
def test_what_is_never_passed_through(name: str) -> None:
    assert not is_passed_through(name)


def test_exclusions_win_over_listed_prefixes() -> None:
    assert is_passed_through("CLAUDE_CODE_USE_VERTEX")
    assert is_passed_through("CLAUDE_CODE_MAX_OUTPUT_TOKENS")
    assert all(not is_passed_through(name) for name in EXCLUDED_NAMES)
    assert all(is_passed_through(name) for name in PASS_THROUGH_NAMES)


_names = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True),
    st.sampled_from(sorted(CALLER)),
    st.builds(
        "".join,
        st.tuples(
            st.sampled_from(["ANTHROPIC_", "CLAUDE_CODE_", "CLAUDE_", "AWS_", "DISABLE_", "X_"]),
            st.from_regex(r"[A-Z0-9_]{0,20}", fullmatch=True),
        ),
    ),
)


@given(st.dictionaries(_names, st.text(st.characters(exclude_characters="\0"), max_size=8)))
def test_nothing_unlisted_reaches_the_cli(environ: dict[str, str]) -> None:
    env = _options(Path("/")).child_env(environ=environ)
    for name, value in env.items():
        if name in DEFAULTS:
            continue
        assert is_passed_through(name), name
        assert value == environ[name]
    assert "CLAUDECODE" not in env


# --- layer 2: library defaults ---------------------------------------------------------


def test_defaults_with_an_empty_environment(tmp_path: Path) -> None:
    assert _options(tmp_path).child_env(environ={}) == DEFAULTS


def test_defaults_beat_pass_through(tmp_path: Path) -> None:
    environ = {
        "CLAUDE_CODE_MAX_RETRIES": "9",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "",
        "DISABLE_AUTOUPDATER": "0",
        "CLAUDE_CODE_DISABLE_BACKGROUND_TASKS": "0",
        "TERM": "dumb",
    }
    assert _options(tmp_path).child_env(environ=environ) == DEFAULTS


def test_lang_is_a_default_only_when_unset(tmp_path: Path) -> None:
    assert _options(tmp_path).child_env(environ={"LANG": "fr_FR.UTF-8"})["LANG"] == "fr_FR.UTF-8"
    assert _options(tmp_path).child_env(environ={})["LANG"] == "C.UTF-8"


def test_library_defaults_follow_the_options() -> None:
    assert library_defaults() == {k: v for k, v in DEFAULTS.items() if k != "LANG"}
    assert library_defaults(nonessential_traffic=True, background_tasks=True) == {
        "TERM": "xterm-256color",
        "CLAUDE_CODE_MAX_RETRIES": str(DEFAULT_MAX_RETRIES),
        "CLAUDE_CODE_DISABLE_FILE_MENTIONS": "1",
    }


# --- layer 3: options ------------------------------------------------------------------


def test_options_beat_defaults_and_pass_through(tmp_path: Path) -> None:
    environ = {
        "CLAUDE_CONFIG_DIR": "/elsewhere",
        "CLAUDE_CODE_MAX_RETRIES": "9",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_BACKGROUND_TASKS": "1",
    }
    options = _options(
        tmp_path,
        config_dir=tmp_path / "cfg",
        max_retries=5,
        nonessential_traffic=True,
        background_tasks=True,
    )
    env = options.child_env(environ=environ)
    assert env == {
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "CLAUDE_CONFIG_DIR": str(tmp_path / "cfg"),
        "CLAUDE_CODE_MAX_RETRIES": "5",
        "CLAUDE_CODE_DISABLE_FILE_MENTIONS": "1",
    }


def test_max_retries_zero_is_given(tmp_path: Path) -> None:
    env = _options(tmp_path, max_retries=0).child_env(environ={})
    assert env["CLAUDE_CODE_MAX_RETRIES"] == "0"


# --- layer 4: explicit env -------------------------------------------------------------


def test_explicit_env_beats_everything(tmp_path: Path) -> None:
    explicit = {
        "CLAUDE_CODE_MAX_RETRIES": "0",
        "TERM": "screen-256color",
        "LANG": "C",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "",
        "DISABLE_AUTOUPDATER": "0",
        "CLAUDE_CODE_DISABLE_BACKGROUND_TASKS": "",
        "ANTHROPIC_API_KEY": "",
        "IS_SANDBOX": "1",
        "CLAUDE_CONFIG_DIR": "/explicit",
    }
    env = _options(tmp_path, env=explicit).child_env(environ=CALLER)
    for name, value in explicit.items():
        assert env[name] == value
    assert "CLAUDECODE" not in env


def test_agreeing_option_and_env_are_fine(tmp_path: Path) -> None:
    options = _options(
        tmp_path,
        max_retries=3,
        config_dir=tmp_path,
        env={"CLAUDE_CODE_MAX_RETRIES": "3", "CLAUDE_CONFIG_DIR": f"{tmp_path}/."},
        nonessential_traffic=True,
        background_tasks=True,
    )
    env = options.child_env(environ={})
    assert env["CLAUDE_CODE_MAX_RETRIES"] == "3"
    assert env["CLAUDE_CONFIG_DIR"] == f"{tmp_path}/."


@pytest.mark.parametrize(
    ("options", "env"),
    [
        ({"max_retries": 3}, {"CLAUDE_CODE_MAX_RETRIES": "2"}),
        ({"max_retries": 3}, {"CLAUDE_CODE_MAX_RETRIES": "three"}),
        ({"config_dir": "/a"}, {"CLAUDE_CONFIG_DIR": "/b"}),
        ({"config_dir": "/a"}, {"CLAUDE_CONFIG_DIR": ""}),
        ({"nonessential_traffic": True}, {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}),
        ({"nonessential_traffic": True}, {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "0"}),
        ({"background_tasks": True}, {"CLAUDE_CODE_DISABLE_BACKGROUND_TASKS": "true"}),
    ],
)
def test_conflicts_raise(tmp_path: Path, options: dict[str, Any], env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="conflicts with env"):
        check_env_conflicts(env, **options)
    with pytest.raises(ValueError, match=r"disagree|conflicts"):
        _options(tmp_path, env=env, **options).child_env(environ={})


@pytest.mark.parametrize(
    ("options", "env"),
    [
        ({}, {"CLAUDE_CODE_MAX_RETRIES": "7", "CLAUDE_CONFIG_DIR": "/b"}),
        ({"nonessential_traffic": True}, {"DISABLE_AUTOUPDATER": "1"}),
        ({"nonessential_traffic": True}, {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": ""}),
        ({"background_tasks": True}, {"CLAUDE_CODE_DISABLE_BACKGROUND_TASKS": "off"}),
        ({"max_retries": 0}, {"CLAUDE_CODE_MAX_RETRIES": " 0"}),
        ({"config_dir": "/a"}, {"CLAUDE_CONFIG_DIR": "/a/b/.."}),
    ],
)
def test_no_conflict(options: dict[str, Any], env: dict[str, str]) -> None:
    check_env_conflicts(env, **options)


def test_config_dir_of() -> None:
    assert config_dir_of({"CLAUDE_CONFIG_DIR": "/c", "HOME": "/h"}) == Path("/c")
    assert config_dir_of({"CLAUDE_CONFIG_DIR": "", "HOME": "/h"}) == Path("/h/.claude")


# --- private files and argv ------------------------------------------------------------


SECRET_PROMPT = "SYSTEM-SECRET-1b2c"
SECRET_APPEND = "APPEND-SECRET-3d4e"
SECRET_TOKEN = "MCP-TOKEN-5f6a"
MCP = {"echo": {"type": "stdio", "command": "echo-mcp", "env": {"TOKEN": SECRET_TOKEN}}}


def _secret_options(cwd: Path, **overrides: Any) -> ConversationOptions:
    return _options(
        cwd,
        system_prompt=SECRET_PROMPT,
        append_system_prompt=SECRET_APPEND,
        mcp_servers=MCP,
        **overrides,
    )


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077])
def test_private_files_modes_and_contents(tmp_path: Path, mask: int) -> None:
    with (
        _umask(mask),
        prepared_launch(
            _secret_options(tmp_path), cli=CLI, session_id=SID, resume=False, temp_dir=tmp_path
        ) as launch,
    ):
        directory = launch.private_dir
        assert directory is not None
        assert directory.parent == tmp_path
        info = directory.stat()
        assert stat.S_IMODE(info.st_mode) == 0o700
        assert info.st_uid == os.geteuid()
        files = sorted(directory.iterdir())
        assert len(files) == 3
        for path in files:
            mode = path.lstat().st_mode
            assert stat.S_ISREG(mode)
            assert stat.S_IMODE(mode) == 0o600
        argv = list(launch.argv)
        prompt_file = Path(argv[argv.index("--system-prompt-file") + 1])
        append_file = Path(argv[argv.index("--append-system-prompt-file") + 1])
        mcp_index = argv.index("--mcp-config")
        mcp_file = Path(argv[mcp_index + 1])
        assert argv[mcp_index + 2] == "--strict-mcp-config"
        assert {prompt_file, append_file, mcp_file} == set(files)
        assert prompt_file.read_text() == SECRET_PROMPT
        assert append_file.read_text() == SECRET_APPEND
        assert json.loads(mcp_file.read_text()) == {"mcpServers": MCP}
    assert not directory.exists()


def test_no_option_value_is_on_argv(tmp_path: Path) -> None:
    with prepared_launch(
        _secret_options(tmp_path), cli=CLI, session_id=SID, resume=False
    ) as launch:
        joined = "\0".join(launch.argv)
        for secret in (SECRET_PROMPT, SECRET_APPEND, SECRET_TOKEN, "mcpServers", "echo-mcp"):
            assert secret not in joined
        assert "--system-prompt" not in launch.argv
        assert "--append-system-prompt" not in launch.argv


def test_private_dir_is_removed_when_the_block_raises(tmp_path: Path) -> None:
    seen: list[Path] = []

    def use_and_fail() -> None:
        with prepared_launch(
            _secret_options(tmp_path), cli=CLI, session_id=SID, resume=False, temp_dir=tmp_path
        ) as launch:
            assert launch.private_dir is not None
            assert launch.private_dir.exists()
            seen.append(launch.private_dir)
            raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        use_and_fail()
    assert len(seen) == 1
    assert not seen[0].exists()
    assert list(tmp_path.iterdir()) == []


def test_private_dir_is_removed_when_writing_fails(tmp_path: Path) -> None:
    options = _options(tmp_path, system_prompt="ok", append_system_prompt="\ud800")
    with (
        pytest.raises(ValueError, match="append_system_prompt"),
        prepared_launch(options, cli=CLI, session_id=SID, resume=False, temp_dir=tmp_path),
    ):
        pass
    options = _options(tmp_path, system_prompt="ok", mcp_servers={"x": {"obj": object()}})
    with (
        pytest.raises(ValueError, match="JSON"),
        prepared_launch(options, cli=CLI, session_id=SID, resume=False, temp_dir=tmp_path),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


def test_files_are_created_exclusively(tmp_path: Path) -> None:
    target = tmp_path / "f"
    write_private(target, b"one")
    with pytest.raises(FileExistsError):
        write_private(target, b"two")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FileExistsError):
        write_private(link, b"two")
    assert not (tmp_path / "elsewhere").exists()
    assert target.read_bytes() == b"one"


def test_no_private_dir_without_files(tmp_path: Path) -> None:
    with prepared_launch(
        _options(tmp_path), cli=CLI, session_id=SID, resume=False, temp_dir=tmp_path
    ) as launch:
        assert launch.private_dir is None
        assert list(tmp_path.iterdir()) == []


def test_argv_as_before_for_the_other_options(tmp_path: Path) -> None:
    options = _options(
        tmp_path,
        model="claude-sonnet-4-5",
        allowed_tools=["Read", "Bash(git log:*)"],
        disallowed_tools=["WebFetch"],
        permission_mode="acceptEdits",
        dangerously_skip_permissions=True,
        extra_args=["--verbose"],
    )
    with prepared_launch(options, cli=CLI, session_id=SID, resume=True) as launch:
        assert launch.argv == (
            str(CLI),
            "--resume",
            SID,
            "--disable-slash-commands",
            "--model=claude-sonnet-4-5",
            "--allowedTools=Read,Bash(git log:*)",
            "--disallowedTools=WebFetch",
            "--permission-mode",
            "acceptEdits",
            "--dangerously-skip-permissions",
            "--verbose",
        )
    with prepared_launch(
        _options(tmp_path, slash_commands=True), cli=CLI, session_id=SID, resume=False
    ) as launch:
        assert launch.argv == (str(CLI), "--session-id", SID)


def test_launch_env_is_read_only_and_conflicts_create_nothing(tmp_path: Path) -> None:
    with prepared_launch(_options(tmp_path), cli=CLI, session_id=SID, resume=False) as launch:
        assert isinstance(launch.env, Mapping)
        with pytest.raises(TypeError):
            launch.env["X"] = "y"  # type: ignore[index]
    with pytest.raises(ValueError, match="conflicts"):
        _secret_options(
            tmp_path / "cwd",
            nonessential_traffic=True,
            env={"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"},
        )
    assert list(tmp_path.iterdir()) == []


# --- on the real CLI -------------------------------------------------------------------

_QUIET = ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "DISABLE_AUTOUPDATER", "DISABLE_TELEMETRY")


def _env_without_quiet(config: IsolatedConfig) -> dict[str, str]:
    """The isolated config's env less the quiet variables: the library must supply them."""
    return {name: value for name, value in config.env.items() if name not in _QUIET}


async def _one_turn(
    cli: Path, config: IsolatedConfig, options: ConversationOptions, prompt: str
) -> Path | None:
    session_id = str(uuid.uuid4())
    path = config.session_file(session_id)
    environ = {"PATH": os.environ.get("PATH", os.defpath)}
    with (
        trio.fail_after(90),
        prepared_launch(
            options, cli=cli, session_id=session_id, resume=False, environ=environ
        ) as launch,
    ):
        assert sum(len(arg) for arg in launch.argv) < 2000
        async with (
            open_claude_pty(launch.argv, env=launch.env, cwd=config.cwd) as proc,
            JsonlWatcher(path) as lines,
        ):
            await proc.type_message(prompt)
            async for line in lines:
                record = json.loads(line)
                if record.get("type") == "system" and record.get("subtype") == "turn_duration":
                    break
        return launch.private_dir


@pytest.mark.real_cli
async def test_real_cli_reads_the_files_and_makes_no_background_request(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    # 200 KB: over the 128 KiB a single argv string may have.
    prompt = "SYSTEM-MARKER " + "lorem ipsum dolor sit amet " * 7500 + " SYSTEM-END"
    assert len(prompt) > 200_000
    options = _options(
        isolated.cwd,
        env=_env_without_quiet(isolated),
        system_prompt=prompt,
        append_system_prompt="APPEND-MARKER",
        mcp_servers={"echo": echo_mcp_server()},
        dangerously_skip_permissions=True,
    )
    private_dir = await _one_turn(
        claude_cli, isolated, options, 'CALL_TOOL mcp__echo__echo {"text": "hi mcp"}'
    )
    assert private_dir is not None
    assert not private_dir.exists()
    first, second = mock_api.main_requests
    assert prompt in first.system_text
    assert "APPEND-MARKER" in first.system_text
    assert "ECHO: hi mcp" in json.dumps(second.tool_results)
    # FACTS §0: no HEAD /api/hello, no title request (multi-word prompts get one).
    await trio.sleep(0.5)
    assert [request.kind for request in mock_api.requests] == [RequestKind.MAIN] * 2


@pytest.mark.real_cli
async def test_real_cli_with_nonessential_traffic_sends_it(
    claude_cli: Path, isolated: IsolatedConfig, mock_api: MockAnthropicAPI
) -> None:
    # The control for the test above: the same check sees the traffic when it is allowed.
    # DISABLE_AUTOUPDATER stays set explicitly: no update check against the internet.
    env = {**_env_without_quiet(isolated), "DISABLE_AUTOUPDATER": "1", "DISABLE_TELEMETRY": "1"}
    options = _options(isolated.cwd, env=env, nonessential_traffic=True)
    await _one_turn(claude_cli, isolated, options, "hello flags")
    with trio.fail_after(30):
        await mock_api.wait_for_requests(1, kind=RequestKind.TITLE)
    kinds = {request.kind for request in mock_api.requests}
    assert {RequestKind.HELLO, RequestKind.TITLE, RequestKind.MAIN} <= kinds


def test_a_relay_route_becomes_the_base_url_and_bypasses_proxies(tmp_path: Path) -> None:
    options = ConversationOptions(cwd=tmp_path, env={"HTTPS_PROXY": "http://proxy:3128"})
    relay = "http://127.0.0.1:4000/r/token"
    with prepared_launch(
        options, cli=CLI, session_id=SID, resume=False, api_base_url=relay
    ) as launch:
        assert launch.env["ANTHROPIC_BASE_URL"] == relay
        assert launch.env["NO_PROXY"].split(",")[-1] == "127.0.0.1"
        assert launch.env["no_proxy"].split(",")[-1] == "127.0.0.1"
        assert "_CLAUDE_CODE_ASSUME_FIRST_PARTY_BASE_URL" not in launch.env
    plain = ConversationOptions(cwd=tmp_path)
    with prepared_launch(
        plain, cli=CLI, session_id=SID, resume=False, environ={}, api_base_url=relay
    ) as launch:
        assert "NO_PROXY" not in launch.env


def test_a_relay_to_the_anthropic_api_keeps_the_clis_first_party_requests(
    tmp_path: Path,
) -> None:
    relay = "http://127.0.0.1:4000/r/token"
    assert is_first_party(None)
    assert is_first_party("https://api.anthropic.com")
    assert not is_first_party("https://api.anthropic.com:8443")
    assert not is_first_party("http://127.0.0.1:9")
    for env, expected in (({}, "1"), ({"_CLAUDE_CODE_ASSUME_FIRST_PARTY_BASE_URL": "0"}, "0")):
        options = ConversationOptions(cwd=tmp_path, env=env)
        with prepared_launch(
            options,
            cli=CLI,
            session_id=SID,
            resume=False,
            api_base_url=relay,
            first_party_upstream=True,
        ) as launch:
            assert launch.env["_CLAUDE_CODE_ASSUME_FIRST_PARTY_BASE_URL"] == expected
