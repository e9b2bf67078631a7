"""The ``kes`` command line client.

The root group owns everything cross-cutting: connection options (with
their ``KES_*`` environment variables), the one place where a ``KESError``
becomes ``Error: <message>`` and exit status 1, and quiet handling of
Ctrl-C. Each command group lives in its own module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from kes_client._tls import CERT_ENV_VARS, DEFAULT_SERVER, KEY_ENV_VARS, SERVER_ENV_VAR
from kes_client.cli._settings import AliasGroup, Settings
from kes_client.cli.identity import identity
from kes_client.cli.key import key
from kes_client.cli.log import log
from kes_client.cli.policy import policy
from kes_client.cli.server import server
from kes_client.cli.status import metric, status
from kes_client.cli.tool import tool
from kes_server import __version__
from kes_server.core.errors import KESError

__all__ = ["cli", "main"]


class KesGroup(AliasGroup):
    """Root group: turns library errors into one-line messages and exit codes."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KESError as exc:
            # One line, the server's own words: scripts grep for it.
            message = " ".join(str(exc).splitlines()) or type(exc).__name__
            click.echo(f"Error: {message}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            # Interrupting a one-shot command is not a crash: no traceback,
            # the conventional 128 + SIGINT status. (Traces exit 0 themselves.)
            click.echo(err=True)
            ctx.exit(130)


@click.group(
    "kes",
    cls=KesGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--server",
    envvar=SERVER_ENV_VAR,
    show_envvar=True,
    metavar="URL",
    help=f"KES server endpoint [default: {DEFAULT_SERVER}].",
)
@click.option(
    "--cert",
    envvar=list(CERT_ENV_VARS),
    show_envvar=True,
    metavar="FILE",
    help="Client certificate (PEM).",
)
@click.option(
    "--key",
    envvar=list(KEY_ENV_VARS),
    show_envvar=True,
    metavar="FILE",
    help="Private key of the client certificate (PEM).",
)
@click.option(
    "--ca",
    metavar="FILE",
    help="CA certificate(s) to verify the server with, instead of the system roots.",
)
@click.option("-k", "--insecure", is_flag=True, help="Skip verification of the server certificate.")
@click.version_option(__version__, "-v", "--version", prog_name="kes (pykes)")
@click.pass_context
def cli(
    ctx: click.Context,
    server: str | None,
    cert: str | None,
    key: str | None,
    ca: str | None,
    insecure: bool,
) -> None:
    """Command line client for KES, the key encryption service.

    Every command that talks to a server needs a client certificate and key,
    usually from KES_CLIENT_CERT and KES_CLIENT_KEY, and the server address
    from KES_SERVER.
    """
    settings = ctx.ensure_object(Settings)
    settings.server = server
    settings.cert = cert
    settings.key = key
    settings.ca = ca
    settings.insecure = settings.insecure or insecure


cli.aliases["metrics"] = "metric"
for _command in (key, policy, identity, log, status, metric, tool, server):
    cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``kes`` console script."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="kes")


if __name__ == "__main__":  # pragma: no cover
    main()
