"""isolated_config pre-answers every first-run dialog and never leaves its root."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from claude_trio.testing import MOCK_API_KEY, isolated_config


def test_claude_json_pre_answers_every_dialog(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    link = tmp_path / "link"
    link.symlink_to(project)
    config = isolated_config(tmp_path, base_url="http://127.0.0.1:1", cwd=link)
    settings = json.loads(config.claude_json.read_text())
    assert settings["hasCompletedOnboarding"] is True
    assert settings["customApiKeyResponses"] == {"approved": [MOCK_API_KEY[-20:]], "rejected": []}
    # Trust is keyed by the real path: the CLI resolves symlinks.
    assert settings["projects"] == {str(project.resolve()): {"hasTrustDialogAccepted": True}}
    assert settings["bypassPermissionsModeAccepted"] is True
    assert stat.S_IMODE(config.claude_json.stat().st_mode) == 0o600
    assert config.cwd == project.resolve()


def test_env_points_everything_at_the_scratch_dir_and_the_mock(tmp_path: Path) -> None:
    config = isolated_config(tmp_path, base_url="http://127.0.0.1:5", extra_env={"X": "1"})
    env = config.env
    assert env["HOME"] == env["CLAUDE_CONFIG_DIR"] == str(config.config_dir)
    assert config.config_dir.is_relative_to(tmp_path.resolve())
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:5"
    assert env["ANTHROPIC_API_KEY"] == MOCK_API_KEY
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"
    # No marketplace install after start: no DNS, ssh or git clone beyond loopback.
    assert env["CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL"] == "1"
    assert env["X"] == "1"
    assert ("IS_SANDBOX" in env) == (os.geteuid() == 0)
    # Nothing of the caller's Anthropic settings leaks in.
    ours = {
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
        "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL",
    }
    assert not {k for k in env if k.startswith("CLAUDE_CODE_") and k not in ours}


def test_without_bypass_no_bypass_keys(tmp_path: Path) -> None:
    config = isolated_config(tmp_path, base_url="http://127.0.0.1:5", bypass_permissions=False)
    assert "bypassPermissionsModeAccepted" not in json.loads(config.claude_json.read_text())
    assert "IS_SANDBOX" not in config.env


def test_trust_adds_directories(tmp_path: Path) -> None:
    config = isolated_config(tmp_path, base_url="http://127.0.0.1:5")
    other = tmp_path / "other"
    other.mkdir()
    config.trust(other)
    projects = json.loads(config.claude_json.read_text())["projects"]
    assert set(projects) == {str(tmp_path.resolve()), str(other.resolve())}


def test_bad_inputs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="20 characters"):
        isolated_config(tmp_path, base_url="http://127.0.0.1:5", api_key="short")
    with pytest.raises(FileNotFoundError):
        isolated_config(tmp_path, base_url="http://127.0.0.1:5", cwd=tmp_path / "missing")
    isolated_config(tmp_path, base_url="http://127.0.0.1:5")
    with pytest.raises(FileExistsError):
        isolated_config(tmp_path, base_url="http://127.0.0.1:5")


def test_session_file_follows_the_project_key_rule(tmp_path: Path) -> None:
    project = tmp_path / "my.proj_a b"
    project.mkdir()
    config = isolated_config(tmp_path, base_url="http://127.0.0.1:5", cwd=project)
    sid = "6f9a4c1e-2b7d-4e8a-9c3f-1a2b3c4d5e6f"
    path = config.session_file(sid)
    assert path.parent.parent == config.config_dir / "projects"
    assert path.parent.name == str(project.resolve()).replace("/", "-").replace(".", "-").replace(
        "_", "-"
    ).replace(" ", "-")
    assert path.name == f"{sid}.jsonl"
