"""``kes server ...``: start a KES server, exactly as ``kes-server`` would.

The SDK must not import the server's I/O stack (an import-linter contract,
so a laptop install of the CLI stays light), so instead of calling into
``kes_server.cli`` this replaces the process with ``python -m kes_server``
and hands over every argument untouched.
"""

from __future__ import annotations

import os
import sys

import click

__all__ = ["server"]


@click.command(
    "server",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def server(args: tuple[str, ...]) -> None:
    """Run a KES server (same arguments as kes-server)."""
    argv = [sys.executable, "-m", "kes_server", *args]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        raise click.ClickException(f"cannot start the server: {exc}") from exc
