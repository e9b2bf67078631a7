"""docs/tui.md describes the console that exists: every key and every option."""

from __future__ import annotations

import re

from click.testing import CliRunner

from kes_tui.app import KesApp
from kes_tui.cli import cli
from kes_tui.screens.help import binding_sections
from tests.support.paths import REPO_ROOT

TUI_MD = (REPO_ROOT / "docs" / "tui.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    return TUI_MD.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_every_key_of_the_help_screen_is_documented() -> None:
    documented = section("Keys")
    missing = []
    for title, rows in binding_sections(KesApp.BINDINGS):
        for keys, description in rows:
            for key in keys.split(" / "):
                if f"`{key}`" not in documented and not (
                    key.isdigit() and "`1` … `6`" in documented
                ):
                    missing.append(f"{title}: {key} ({description})")
    assert not missing, missing


def test_every_option_is_documented() -> None:
    help_text = CliRunner().invoke(cli, ["--help"]).output
    options = set(re.findall(r"(--[a-z][a-z-]+)", help_text)) - {"--help"}
    table = section("Start")
    assert options and all(f"`{option}" in table for option in options), options
