"""The README's two quick-start commands are what CI runs and what nox provides."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    readme = (ROOT / "README.rst").read_text()
    start = readme.index(".. begin-quick-start")
    end = readme.index(".. end-quick-start")
    return re.findall(r"^\s+\$ (.+)$", readme[start:end], flags=re.MULTILINE)


def test_the_quick_start_has_exactly_two_commands() -> None:
    demo, tests = _commands()
    assert demo.endswith("nox -s demo")
    assert tests.endswith("nox -s tests")
    for command in (demo, tests):
        assert command.startswith("python3 -m pip install --quiet nox && ")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _commands()[1] in ci


def test_nox_has_the_sessions_the_readme_names() -> None:
    noxfile = (ROOT / "noxfile.py").read_text()
    for session in ("tests", "lint", "typecheck", "docs", "bench", "stress", "demo"):
        assert re.search(rf"^def {session}\(session", noxfile, flags=re.MULTILINE), session
