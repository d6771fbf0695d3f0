"""An isolated CLI config directory with every first-run dialog pre-answered."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import attrs

from .._paths import session_path

#: A fake Anthropic API key in the shape of a real one. The CLI approves a key by its
#: last 20 characters, so those are what `isolated_config` pre-approves.
MOCK_API_KEY = "sk-ant-api03-mockkey-0123456789abcdefghijklmnopqrstuvwxyz"

_QUIET_ENV = {
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    # After it is ready the CLI tries to install the official plugin marketplace: a DNS
    # look-up, ssh to github.com and two git clones (docs/startup.rst). Tests stay on
    # loopback; the config is throwaway, so the "policy_blocked" it records is harmless.
    "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
}


@attrs.frozen(kw_only=True)
class IsolatedConfig:
    """A private ``CLAUDE_CONFIG_DIR`` and ``HOME`` for running the CLI in tests.

    Build one with `isolated_config`. The CLI writes everything it keeps (its
    ``.claude.json``, session files, shell snapshots, a desktop entry under
    ``$HOME/.local``) under `config_dir`, never under the user's real home.

    Attributes:
        config_dir: The directory given as both ``CLAUDE_CONFIG_DIR`` and ``HOME``.
        cwd: The real path of the working directory the CLI is trusted to run in.
        env: The complete environment to start the CLI with.
    """

    config_dir: Path
    cwd: Path
    env: Mapping[str, str]

    @property
    def claude_json(self) -> Path:
        """The CLI's main settings file, ``<config_dir>/.claude.json``."""
        return self.config_dir / ".claude.json"

    def session_file(self, session_id: str, *, cwd: str | os.PathLike[str] | None = None) -> Path:
        """Return where the CLI writes the JSONL of *session_id* run in *cwd*.

        Args:
            session_id: The session's id.
            cwd: The working directory of that session; defaults to `cwd`.
        """
        return session_path(self.config_dir, self.cwd if cwd is None else cwd, session_id)

    def trust(self, *directories: str | os.PathLike[str]) -> None:
        """Pre-answer the trust dialog for more working directories.

        Call this before starting a CLI in them; the CLI rewrites ``.claude.json``
        while it runs.

        Args:
            directories: Directories to trust; each is resolved to its real path.
        """
        settings = json.loads(self.claude_json.read_text())
        _trust_into(settings, directories)
        _write_json(self.claude_json, settings)


def isolated_config(
    root: str | os.PathLike[str],
    *,
    base_url: str,
    cwd: str | os.PathLike[str] | None = None,
    api_key: str = MOCK_API_KEY,
    bypass_permissions: bool = True,
    extra_env: Mapping[str, str] | None = None,
) -> IsolatedConfig:
    """Create a CLI config directory under *root* that reaches the prompt with no dialog.

    The written ``.claude.json`` pre-answers each first-run dialog that FACTS.md lists:
    onboarding (``hasCompletedOnboarding``; without it the CLI exits within a second when
    offline), trust of the real path of *cwd*, approval of the API key by its last 20
    characters, and, when *bypass_permissions* is true, the bypass-permissions warning.

    Args:
        root: An existing directory to create ``claude-config/`` in (usually a test's
            ``tmp_path``). Nothing outside it is written.
        base_url: The Anthropic API the CLI should talk to, such as the mock's
            ``base_url``.
        cwd: The working directory to trust; defaults to *root*.
        api_key: The API key to give the CLI and to pre-approve.
        bypass_permissions: Also accept the ``--dangerously-skip-permissions`` warning,
            and set ``IS_SANDBOX=1`` when running as root (the CLI refuses bypass mode as
            root otherwise).
        extra_env: More variables for the CLI's environment; they win over the defaults.

    Returns:
        The config, with the environment to run the CLI in.

    Raises:
        ValueError: If *api_key* is shorter than 20 characters.
        FileNotFoundError: If *root* or *cwd* does not exist.
    """
    if len(api_key) < 20:
        raise ValueError("api_key must be at least 20 characters long, as real keys are")
    root_path = Path(root).resolve(strict=True)
    cwd_path = Path(root_path if cwd is None else cwd).resolve(strict=True)
    config_dir = root_path / "claude-config"
    config_dir.mkdir(mode=0o700, exist_ok=False)

    settings: dict[str, object] = {
        "hasCompletedOnboarding": True,
        "customApiKeyResponses": {"approved": [api_key[-20:]], "rejected": []},
        "projects": {},
    }
    _trust_into(settings, [cwd_path])
    if bypass_permissions:
        settings["bypassPermissionsModeAccepted"] = True
    _write_json(config_dir / ".claude.json", settings)

    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "HOME": str(config_dir),
        "CLAUDE_CONFIG_DIR": str(config_dir),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": api_key,
        **_QUIET_ENV,
    }
    if bypass_permissions and os.geteuid() == 0:
        env["IS_SANDBOX"] = "1"
    env.update(extra_env or {})
    return IsolatedConfig(config_dir=config_dir, cwd=cwd_path, env=env)


def _trust_into(settings: dict[str, object], directories: Iterable[str | os.PathLike[str]]) -> None:
    projects = settings.setdefault("projects", {})
    assert isinstance(projects, dict)
    for directory in directories:
        real = str(Path(directory).resolve(strict=True))
        entry = projects.setdefault(real, {})
        entry["hasTrustDialogAccepted"] = True


def _write_json(path: Path, data: Mapping[str, object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(data, file, indent=2)
    os.replace(tmp, path)
