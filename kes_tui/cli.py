"""``kes-tui``: start the console with the same connection options as ``kes``.

Flags and environment variables mirror the CLI so an operator who has
exported ``KES_SERVER``/``KES_CLIENT_CERT``/``KES_CLIENT_KEY`` for ``kes``
(or the v0.4-v0.8 names ``KES_CLIENT_TLS_CERT_FILE``/``KES_CLIENT_TLS_KEY_FILE``)
can simply run ``kes-tui``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from kes_client import DEFAULT_SERVER, AsyncClient, CredentialsError, KESError
from kes_server.core.identity import identity_of_pem
from kes_tui.app import KesApp
from kes_tui.contexts import Context, default_contexts_file, load_contexts
from kes_tui.model import DEFAULT_CAPACITY, History, read_history

__all__ = ["build_app", "main"]

#: Current name first; the first one set wins (as in ``kes``).
CERT_ENV_VARS = ["KES_CLIENT_CERT", "KES_CLIENT_TLS_CERT_FILE"]
KEY_ENV_VARS = ["KES_CLIENT_KEY", "KES_CLIENT_TLS_KEY_FILE"]


def build_app(
    server: str | None,
    cert: str | None,
    key: str | None,
    *,
    ca: str | None = None,
    insecure: bool = False,
    read_only: bool = False,
    capacity: int = DEFAULT_CAPACITY,
    audit_file: str | None = None,
    context: str | None = None,
    contexts_file: str | None = None,
) -> KesApp:
    """Resolve settings, build the client and the app (shared by the CLI and tests).

    ``context`` names a context of the contexts file, whose settings then
    replace the connection options. Without it the options and ``KES_*``
    variables are used; when they name no certificate at all, the file's
    current context is. Raises ``KESError`` (``CredentialsError``,
    ``ContextError``) when nothing usable is configured, and ``OSError`` when
    ``audit_file`` cannot be read, before any terminal mode is entered.
    """
    source = Path(contexts_file).expanduser() if contexts_file else default_contexts_file()
    contexts = load_contexts(source)
    chosen: Context | None = contexts.get(context) if context else None
    if chosen is None:
        try:
            client = AsyncClient.from_env(server, cert=cert, key=key, ca=ca, insecure=insecure)
        except CredentialsError:
            if cert or key or not contexts.items:
                raise
            chosen = contexts.get(contexts.current)
    if chosen is not None:
        client, identity = chosen.client(), chosen.identity()
    else:
        identity = _identity_of(cert)
    history: tuple[History, str] | None = None
    if audit_file:
        with open(audit_file, encoding="utf-8", errors="replace") as lines:
            history = (read_history(lines, capacity), Path(audit_file).name)
    return KesApp(
        client,
        endpoint=client.server,
        identity=identity,
        read_only=read_only,
        capacity=capacity,
        history=history,
        contexts=contexts.items,
        context=chosen.name if chosen is not None else "",
        contexts_source=str(source),
    )


def _identity_of(cert: str | None) -> str:
    """The console's own identity, from its certificate ("" if it cannot be read)."""
    if not cert:
        return ""
    try:
        return identity_of_pem(Path(cert).read_bytes())
    except (OSError, ValueError):
        return ""


@click.command("kes-tui", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--server",
    envvar="KES_SERVER",
    show_envvar=True,
    metavar="URL",
    help=f"KES server endpoint [default: {DEFAULT_SERVER}].",
)
@click.option(
    "--cert", envvar=CERT_ENV_VARS, show_envvar=True, metavar="FILE", help="Client certificate."
)
@click.option(
    "--key", envvar=KEY_ENV_VARS, show_envvar=True, metavar="FILE", help="Client private key."
)
@click.option("--ca", metavar="FILE", help="CA certificate(s) to verify the server with.")
@click.option("-k", "--insecure", is_flag=True, help="Skip verification of the server certificate.")
@click.option("--read-only", is_flag=True, help="Hide every action that changes the server.")
@click.option(
    "--buffer",
    "capacity",
    type=click.IntRange(min=100),
    default=DEFAULT_CAPACITY,
    show_default=True,
    help="Events kept per trace before the oldest are dropped.",
)
@click.option(
    "--audit-file",
    metavar="FILE",
    help="Show the audit (and error) events of a server log file first, then live events "
    "(e.g. journalctl -u kes-server -o cat > FILE).",
)
@click.option(
    "--context",
    metavar="NAME",
    help="Open this context of the contexts file (replaces the connection options).",
)
@click.option(
    "--contexts",
    "contexts_file",
    envvar="KES_CONTEXTS",
    show_envvar=True,
    metavar="FILE",
    help="Contexts file: named servers with their certificates "
    "[default: contexts.yml in the user's pykes config directory].",
)
def cli(
    server: str | None,
    cert: str | None,
    key: str | None,
    ca: str | None,
    insecure: bool,
    read_only: bool,
    capacity: int,
    audit_file: str | None,
    context: str | None,
    contexts_file: str | None,
) -> None:
    """Live terminal console for a KES server: audit and error traces, keys,
    policies, identities and status. Press ? inside for every key."""
    try:
        app = build_app(
            server,
            cert,
            key,
            ca=ca,
            insecure=insecure,
            read_only=read_only,
            capacity=capacity,
            audit_file=audit_file,
            context=context,
            contexts_file=contexts_file,
        )
    except KESError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        message = f"cannot read --audit-file '{audit_file}': {exc.strerror or exc}"
        raise click.ClickException(message) from None
    app.run()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``kes-tui`` console script."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="kes-tui")
