"""``kes server ...``: start a KES server, exactly as ``kes-server`` would.

The SDK must not import the server's I/O stack (an import-linter contract,
so a laptop install of the CLI stays light), so instead of calling into
``kes_server.cli`` this replaces the process with a new interpreter that
runs it, handing over every argument untouched. The program name is passed
along, so ``kes server --help`` says ``kes server``, not ``python -m kes_server``.
"""

from __future__ import annotations

import os
import sys

import click

__all__ = ["server"]

#: Runs ``kes-server`` with the remaining arguments under the name ``kes server``.
_RUN_SERVER = "from kes_server.cli import main; main(prog_name='kes server')"


@click.command(
    "server",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def server(args: tuple[str, ...]) -> None:
    """Run a KES server (same arguments as kes-server)."""
    argv = [sys.executable, "-c", _RUN_SERVER, *args]
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        raise click.ClickException(f"cannot start the server: {exc}") from exc
