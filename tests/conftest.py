"""Shared fixtures: the real CLI, the mock API, an isolated config, and leak checks."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from claude_trio import CLINotFoundError, find_cli
from claude_trio.testing import (
    IsolatedConfig,
    MockAnthropicAPI,
    isolated_config,
    magic_word_handler,
    open_mock_anthropic_api,
    write_fake_cli,
)

from .helpers import processes_with
from .strategies import SAMPLES_DIR

#: Every process a test starts through `isolated` carries this variable, and so do its
#: descendants (they inherit the environment): after the test none may be left alive.
LEAK_MARK = "CLAUDE_TRIO_TEST_MARK"

SAMPLES = SAMPLES_DIR

_WATCHED_FD_KINDS = (
    "anon_inode:[pidfd]",
    "anon_inode:inotify",
    "/dev/ptmx",
    "/dev/pts/",
    "socket:",
)


@pytest.fixture(scope="session")
def claude_cli() -> Path:
    """The real claude CLI; the suite fails (never skips) without it."""
    try:
        return find_cli()
    except CLINotFoundError as exc:
        pytest.fail(f"the real-CLI tests need the claude CLI: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def fake_cli(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fake ``claude`` script."""
    return write_fake_cli(tmp_path_factory.mktemp("fake-cli"))


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.real_cli)])
def cli(request: pytest.FixtureRequest, fake_cli: Path) -> Path:
    """Each CLI in turn: the fake, then the real one (which the suite requires)."""
    if request.param == "fake":
        return fake_cli
    path = request.getfixturevalue("claude_cli")
    assert isinstance(path, Path)
    return path


@pytest.fixture
async def mock_api() -> AsyncIterator[MockAnthropicAPI]:
    """A fresh mock Anthropic API on an ephemeral loopback port, steered by magic words."""
    async with open_mock_anthropic_api(handler=magic_word_handler) as api:
        yield api


@pytest.fixture
def leak_mark() -> str:
    """A value unique to this test, put in the environment of every CLI it starts."""
    return uuid.uuid4().hex


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """An empty working directory for the CLI."""
    path = tmp_path / "project"
    path.mkdir()
    return path


@pytest.fixture
def isolated(
    tmp_path: Path, project_dir: Path, mock_api: MockAnthropicAPI, leak_mark: str
) -> IsolatedConfig:
    """A CLI config dir under tmp_path, pointed at the mock, trusting project_dir."""
    return isolated_config(
        tmp_path,
        base_url=mock_api.base_url,
        cwd=project_dir,
        extra_env={LEAK_MARK: leak_mark, "CLAUDE_CODE_MAX_RETRIES": "0"},
    )


def _marked_processes(mark: str) -> list[str]:
    return processes_with(f"{LEAK_MARK}={mark}")


def _watched_fds() -> dict[str, str]:
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        if target.startswith(_WATCHED_FD_KINDS):
            fds[name] = target
    return fds


def _children_of_self() -> list[str]:
    me = str(os.getpid())
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2 :].split()[1] == me:
            found.append(stat.strip())
    return found


@pytest.fixture(autouse=True)
def no_leaks(leak_mark: str) -> Iterator[None]:
    """Fail the test if it leaves a process (zombies included) or an fd behind."""
    fds_before = _watched_fds()
    children_before = _children_of_self()
    yield
    left = _marked_processes(leak_mark)
    assert not left, f"processes outlived the test: {left}"
    children = [c for c in _children_of_self() if c not in children_before]
    assert not children, f"unreaped children (zombies are state Z): {children}"
    leaked = {fd: target for fd, target in _watched_fds().items() if fds_before.get(fd) != target}
    assert not leaked, f"file descriptors leaked: {leaked}"
