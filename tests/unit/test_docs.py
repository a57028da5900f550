"""README is a front door and the docs pages tell the truth: every command, flag and config key they name
exists, every page is linked, and every command `zfsync --help` lists is documented."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from zfsync import cli
from zfsync.config.keys import SCHEMA

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
TEXTS = {path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8") for path in [README, *PAGES]}


def subcommands() -> dict[str, argparse.ArgumentParser]:
    return cli.subcommands()


def test_the_readme_is_a_front_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150
    first_screen = "\n".join(lines[:40])
    assert "./scripts/demo" in first_screen and "./scripts/test" in first_screen
    assert "zfsync setup" in README.read_text(encoding="utf-8")


def test_every_docs_page_is_linked_from_the_readme_and_every_link_resolves():
    readme = TEXTS["README.md"]
    for page in PAGES:
        assert f"(docs/{page.name})" in readme, f"docs/{page.name} is not linked from README"
    for name, text in TEXTS.items():
        base = (ROOT / name).parent
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (base / target).exists(), f"{name} links to {target}, which does not exist"


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_every_command_and_flag_named_exists(name):
    commands = subcommands()
    text = TEXTS[name]
    for command in re.findall(r"`(?:[^`]*/)?zfsync ([a-z][a-z-]+)", text):
        assert command in commands, f"{name} names `zfsync {command}`, which is no command"
    for command, flags in re.findall(r"`(?:[^`]*/)?zfsync ([a-z][a-z-]+)((?: [^`]*)?)`", text):
        known = cli.flags(commands[command])
        for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", flags):
            assert flag in known | {"--config"}, f"{name}: `zfsync {command}` has no {flag}"


@pytest.mark.parametrize("name", sorted(TEXTS))
def test_every_config_key_named_exists(name):
    sections = "|".join(SCHEMA)
    for section, key in re.findall(rf"`({sections})\.([a-z_]+)", TEXTS[name]):
        assert key in SCHEMA[section], f"{name} names `{section}.{key}`, which is no config key"


def test_every_command_of_the_help_is_in_the_operators_guide():
    table = "\n".join(line for line in TEXTS["docs/operating.md"].splitlines() if line.startswith("| `zfsync"))
    for command in subcommands():
        assert f"`zfsync {command}" in table, f"`zfsync {command}` is missing from docs/operating.md's table"


def test_the_setup_flags_the_guide_lists_are_the_real_ones():
    guide = TEXTS["docs/operating.md"]
    known = cli.flags(subcommands()["setup"])
    paragraph = guide[guide.index("zfsync setup --non-interactive") :]
    paragraph = paragraph[: paragraph.index("\n\n")]
    named = set(re.findall(r"`(--[a-z-]+)`", paragraph))
    assert named and named <= known, named - known


def test_every_path_the_development_map_names_exists():
    """docs/development.md is the map of the code: a path it names that is gone (a moved module) fails here."""
    text = TEXTS["docs/development.md"]
    named = set(re.findall(r"`((?:zfsync|devtools|tests|deploy|scripts)/[\w./-]*)`", text))
    assert len(named) >= 10
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert missing == [], f"docs/development.md names paths that do not exist: {missing}"
    # A file named alone (`quota.py`) in a row about a folder lives in that folder (or one of its own).
    for row in re.findall(r"^\| `(zfsync/\w+)/`[^\n]*$", text, flags=re.M):
        line = next(line for line in text.splitlines() if line.startswith(f"| `{row}/`"))
        for name in re.findall(r"`([\w/]+\.py)`", line.split("|")[2]):
            assert (ROOT / name).exists() or any((ROOT / row).rglob(name)), f"{row}: {name}"
