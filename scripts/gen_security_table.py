#!/usr/bin/env python3
"""Render the bad-input table of docs/security.md from the last test run.

The security tests (tests/security/test_bad_inputs.py) record every hostile
request they send and the answer the real server gave into
``docs/_generated/bad_inputs.json``. This script turns those rows into a
Markdown table and puts it between the ``<!-- bad-inputs:start -->`` and
``<!-- bad-inputs:end -->`` markers of docs/security.md, so the document shows
observed behaviour rather than what someone believed it to be.

    scripts/gen_security_table.py           rewrite the table
    scripts/gen_security_table.py --check   exit 1 if the table is out of date

The test session calls ``update_doc()`` itself after a full run of the matrix.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "docs" / "_generated" / "bad_inputs.json"
DOC = REPO / "docs" / "security.md"
START = "<!-- bad-inputs:start -->"
END = "<!-- bad-inputs:end -->"
HEADER = (
    "| # | group | input | request | status | answer | over HTTP/2 |\n"
    "|---|---|---|---|---|---|---|\n"
)


def _cell(text: str) -> str:
    """Markdown-safe table cell: no pipes or line breaks, code spans for literals."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def render_table(rows: Iterable[Mapping[str, Any]]) -> str:
    """The Markdown table for ``rows`` (dicts with group, input, request, status, answer, h2).

    ``h2`` is how the same case was answered over HTTP/2: ``same``, the
    answer when it differs, or ``HTTP/1.1 only``.
    """
    lines = [HEADER]
    for number, row in enumerate(rows, 1):
        lines.append(
            f"| {number} | {_cell(str(row['group']))} | {_cell(str(row['input']))} "
            f"| {_code(_cell(str(row['request'])))} | {int(row['status'])} "
            f"| {_code(_cell(str(row['answer'])))} | {_cell(str(row['h2']))} |\n"
        )
    return "".join(lines)


def load_rows(path: Path = DATA) -> list[dict[str, Any]]:
    rows = json.loads(path.read_text(encoding="utf-8"))["rows"]
    if not isinstance(rows, list):
        raise ValueError(f"{path}: 'rows' is not a list")
    return rows


def table_in(doc: str) -> str:
    """The text between the markers of ``doc`` (ValueError when they are missing)."""
    try:
        head, rest = doc.split(START, 1)
        inner, _tail = rest.split(END, 1)
    except ValueError:
        raise ValueError(f"docs/security.md must contain {START} ... {END}") from None
    return inner.strip("\n") + "\n"


def with_table(doc: str, table: str) -> str:
    """``doc`` with the text between the markers replaced by ``table``."""
    table_in(doc)  # validates the markers
    head, rest = doc.split(START, 1)
    _inner, tail = rest.split(END, 1)
    return f"{head}{START}\n{table.rstrip()}\n{END}{tail}"


def update_doc(rows: list[dict[str, Any]], doc_path: Path = DOC) -> bool:
    """Rewrite the table in ``doc_path``; True when the file changed."""
    old = doc_path.read_text(encoding="utf-8")
    new = with_table(old, render_table(rows))
    if new != old:
        doc_path.write_text(new, encoding="utf-8")
        return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="fail if the table is out of date")
    args = parser.parse_args(argv)
    rows = load_rows()
    if args.check:
        current = table_in(DOC.read_text(encoding="utf-8"))
        if current != render_table(rows):
            print("docs/security.md: bad-input table is out of date", file=sys.stderr)
            return 1
        return 0
    changed = update_doc(rows)
    print(f"docs/security.md: {'updated' if changed else 'up to date'} ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
