"""``kes identity``: who a certificate is, and which policy governs it.

``of`` and ``new`` work offline (they only touch certificate files) and
reuse the server's pure core, so the CLI computes identities exactly the
way the server does.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import IO

import click

from kes_client._names import identity_problem
from kes_client.cli._output import (
    echo_done,
    echo_json,
    is_tty,
    render_pairs,
    render_table,
)
from kes_client.cli._params import DURATION
from kes_client.cli._settings import AliasGroup, connection_options, get_client, json_option

__all__ = ["identity", "identity_of", "identity_new"]


@click.group(
    cls=AliasGroup,
    aliases={"ls": "list", "rm": "forget", "delete": "forget"},
)
def identity() -> None:
    """Compute identities, create certificates, assign identities to policies."""


def _identity(pem: bytes, hash_name: str) -> str:
    """Identity of the first certificate in ``pem``, hashed with ``hash_name``.

    The server always uses SHA-256; v0.17's ``--hash`` only changes what is
    printed, so other hashes are taken over the very same SPKI bytes.
    """
    from kes_server.core.identity import identity_of_pem, spki_der
    from kes_server.core.pem import load_certificate_chain

    if hash_name == "SHA256":
        return identity_of_pem(pem)
    return hashlib.new(hash_name.lower(), spki_der(load_certificate_chain(pem)[0])).hexdigest()


@identity.command("of")
@click.option(
    "--hash",
    "hash_name",
    type=click.Choice(["SHA256", "SHA384", "SHA512"], case_sensitive=False),
    default="SHA256",
    show_default=True,
    help="Hash to print (the server always uses SHA256).",
)
@click.argument("certificate", type=click.File("rb"), default="-")
def identity_of(certificate: IO[bytes], hash_name: str) -> None:
    """Print the identity of CERTIFICATE (a PEM file; default: stdin).

    The identity is the hex SHA-256 of the certificate's public key, the
    value policies and the server configuration refer to.

    \b
    Example:
      kes identity of client.cert
    """
    try:
        ident = _identity(certificate.read(), hash_name.upper())
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    if is_tty():
        click.echo()
        click.echo(f"  Identity:  {click.style(ident, bold=True)}")
    else:
        # As upstream: bare value for $(kes identity of ...), no newline.
        click.echo(ident, nl=False)


@identity.command("new")
@click.option(
    "--key",
    "key_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("private.key"),
    show_default=True,
    help="Where to write the private key.",
)
@click.option(
    "--cert",
    "cert_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("public.crt"),
    show_default=True,
    help="Where to write the certificate.",
)
@click.option("--server", is_flag=True, help="Make a server certificate (server-auth usage).")
@click.option("--ip", "ips", multiple=True, help="IP address to add as subject alt. name.")
@click.option("--dns", "dns", multiple=True, help="DNS name to add as subject alt. name.")
@click.option(
    "-t",
    "--time",
    "validity",
    type=DURATION,
    default="720h",
    show_default=True,
    help="Validity, as a Go duration (720h, 8760h).",
)
@click.option("-f", "--force", is_flag=True, help="Overwrite existing files.")
@click.argument("subject", required=False)
def identity_new(
    key_path: Path,
    cert_path: Path,
    server: bool,
    ips: tuple[str, ...],
    dns: tuple[str, ...],
    validity: float,
    force: bool,
    subject: str | None,
) -> None:
    """Create a private key and a self-signed certificate for SUBJECT.

    Prints the new identity, ready to be assigned to a policy. The key file
    is created with mode 0600.

    \b
    Example:
      kes identity new --key app.key --cert app.cert my-app
    """
    from kes_client.identity_files import write_identity  # cryptography: only when needed

    days = max(1, math.ceil(validity / 86400))
    name = subject or ("localhost" if server else "kes-client")
    try:
        ident = write_identity(
            key_path, cert_path, name, days=days, server=server, dns=dns, ips=ips, force=force
        )
    except FileExistsError as exc:
        raise click.ClickException(f"{exc}; use --force to overwrite it") from None
    except ValueError as exc:  # e.g. an --ip that is not an IP address
        raise click.BadParameter(str(exc)) from exc
    if is_tty():
        click.echo(
            render_pairs(
                [
                    ("Private key", str(key_path)),
                    ("Certificate", str(cert_path)),
                    ("Identity", ident),
                ]
            )
        )
    else:
        click.echo(ident)


def _identities(
    _ctx: click.Context, _param: click.Parameter, value: str | tuple[str, ...]
) -> str | tuple[str, ...]:
    """Refuse what cannot be an identity before it reaches the server (usage error, exit 2)."""
    for text in (value,) if isinstance(value, str) else value:
        problem = identity_problem(text)
        if problem:
            raise click.BadParameter(f"{text!r} is not an identity: {problem}")
    return value


@identity.command("assign")
@connection_options
@click.argument("ident", metavar="IDENTITY", callback=_identities)
@click.argument("policy")
def assign(ident: str, policy: str) -> None:
    """Assign IDENTITY to POLICY (replacing any earlier assignment).

    \b
    Example:
      kes identity assign "$(kes identity of app.cert)" my-app
    """
    get_client().assign_identity(policy, ident)
    echo_done(f"Assigned policy '{policy}' to {ident}")


@identity.command("list")
@connection_options
@json_option
@click.argument("pattern", default="*")
def list_(pattern: str, as_json: bool) -> None:
    """List identities matching PATTERN (a glob, default '*') with their policy.

    \b
    Example:
      kes identity list
    """
    identities = sorted(get_client().list_identities(pattern), key=lambda info: info.identity)
    if as_json:
        for info in identities:
            echo_json({"identity": info.identity, "policy": info.policy})
        return
    if not identities:
        if is_tty():
            click.echo("No identities.")
        return
    rows = [(info.identity, info.policy) for info in identities]
    click.echo(render_table(("Identity", "Policy"), rows))


@identity.command("forget")
@connection_options
@click.argument("identities", metavar="IDENTITY...", nargs=-1, required=True, callback=_identities)
def forget(identities: tuple[str, ...]) -> None:
    """Remove the policy assignment of each IDENTITY.

    \b
    Example:
      kes identity forget 3ecfcdf38fcbe141ae26a1030f81e96b753365a46760ae6b578698a97c59fd22
    """
    client = get_client()
    for ident in identities:
        client.forget_identity(ident)
        echo_done(f"Forgot {ident}")


@identity.command("self")
@connection_options
@json_option
def self_(as_json: bool) -> None:
    """Show the identity of the client certificate in use and its policy.

    \b
    Example:
      kes identity self
    """
    info = get_client().self_identity()
    rules = info.rules
    if as_json:
        obj: dict[str, object] = {
            "identity": info.identity,
            "admin": info.admin,
            "policy": info.policy,
        }
        if rules is not None:
            obj["allow"] = list(rules.allow)
            obj["deny"] = list(rules.deny)
        echo_json(obj)
        return
    pairs = [("Identity", info.identity)]
    if info.admin:
        pairs.append(("Role", "admin (every API is allowed)"))
    else:
        pairs.append(("Policy", info.policy or "(none)"))
    if rules is not None and not info.admin:
        pairs.append(("Allow", ", ".join(rules.allow) or "(none)"))
        pairs.append(("Deny", ", ".join(rules.deny) or "(none)"))
    click.echo(render_pairs(pairs))
