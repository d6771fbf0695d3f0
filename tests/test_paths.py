"""The project-key rule FACTS.md §4 measured."""

from __future__ import annotations

import pytest

from claude_trio import project_key


@pytest.mark.parametrize(
    ("cwd", "key"),
    [
        ("/home/user/my.proj_a b", "-home-user-my-proj-a-b"),
        ("/home/user/ünï cödé", "-home-user--n--c-d-"),
        ("/tmp/x", "-tmp-x"),
    ],
)
def test_every_char_outside_alnum_becomes_one_dash(cwd: str, key: str) -> None:
    assert project_key(cwd) == key


def test_relative_paths_are_refused() -> None:
    with pytest.raises(ValueError, match="absolute"):
        project_key("relative/dir")
