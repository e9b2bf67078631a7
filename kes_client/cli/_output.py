"""How the CLI prints: aligned tables for people, compact JSON for programs.

Human output is the default everywhere; colour is added with ``click.style``
and ``click.echo`` strips it whenever stdout is not a terminal, so a pipe
never sees escape codes. ``--json`` output is one compact JSON document per
line, flushed at once, so it can feed ``jq`` live.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import click

__all__ = [
    "echo_done",
    "echo_json",
    "format_duration_ns",
    "is_tty",
    "render_pairs",
    "render_table",
    "status_colour",
]


def is_tty() -> bool:
    """Whether stdout is an interactive terminal (decides TTY-only decorations)."""
    try:
        return bool(sys.stdout.isatty())
    except (AttributeError, ValueError):  # replaced or closed stdout
        return False


def echo_done(message: str) -> None:
    """Confirm a change on a terminal only: in scripts, silence is success."""
    if is_tty():
        click.echo(click.style("✔ ", fg="green") + message)


def echo_json(value: Any) -> None:
    """Print one compact JSON document on its own line and flush it immediately."""
    click.echo(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
    sys.stdout.flush()


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces, header in bold.

    Cells must be plain text: widths are computed from their length, and
    escape codes inside a cell would break the alignment.
    """
    materialised = [[str(cell) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in materialised:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    last = len(headers) - 1
    lines = [
        "  ".join(
            click.style(header.ljust(widths[i]) if i < last else header, bold=True)
            for i, header in enumerate(headers)
        )
    ]
    for row in materialised:
        lines.append(
            "  ".join(cell.ljust(widths[i]) if i < last else cell for i, cell in enumerate(row))
        )
    return "\n".join(lines)


def render_pairs(pairs: Sequence[tuple[str, str]]) -> str:
    """``Label:  value`` lines with aligned values, for single records (status, a data key)."""
    width = max((len(label) for label, _ in pairs), default=0) + 1
    return "\n".join(
        click.style(f"{label}:".ljust(width), bold=True) + "  " + value for label, value in pairs
    )


def status_colour(code: int) -> str:
    """Colour of an HTTP status in traces: green success, yellow client, red server error."""
    if 200 <= code < 300:
        return "green"
    if 400 <= code < 500:
        return "yellow"
    return "red"


def format_duration_ns(ns: int) -> str:
    """Render nanoseconds like Go's ``time.Duration`` does (``1h2m3s``, ``1.5ms``)."""
    if ns == 0:
        return "0s"
    if ns < 1_000:
        return f"{ns}ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.3g}µs"
    if ns < 1_000_000_000:
        return f"{ns / 1_000_000:.3g}ms"
    total_s = ns / 1e9
    hours, rest = divmod(int(total_s), 3600)
    minutes, _ = divmod(rest, 60)
    seconds = total_s - hours * 3600 - minutes * 60
    sec_text = f"{seconds:.0f}s" if seconds == int(seconds) else f"{seconds:.3g}s"
    if hours:
        return f"{hours}h{minutes}m{sec_text}"
    if minutes:
        return f"{minutes}m{sec_text}"
    return sec_text
