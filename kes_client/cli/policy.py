"""``kes policy``: the allow/deny rules that govern identities."""

from __future__ import annotations

from typing import IO

import click

from kes_client._models import Policy
from kes_client.cli._output import echo_done, echo_json, is_tty, render_table
from kes_client.cli._settings import AliasGroup, connection_options, get_client, json_option

__all__ = ["policy"]


@click.group(
    cls=AliasGroup,
    aliases={"add": "write", "create": "write", "read": "show", "ls": "list", "rm": "delete"},
)
def policy() -> None:
    """Manage policies: which API paths an identity may call."""


def _parse_policy(text: str, source: str) -> Policy:
    """Read ``{"allow": [...], "deny": [...]}``, rejecting anything else early (exit 2).

    The server would answer a bare ``invalid json``; pointing at the file and
    the offending field is kinder.
    """
    try:
        return Policy.parse(text)
    except ValueError as exc:
        raise click.BadParameter(f"{source}: {exc}") from None


@policy.command("write")
@connection_options
@click.argument("name")
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
def write(name: str, file: IO[str]) -> None:
    """Create or replace policy NAME from FILE (JSON; default: stdin).

    \b
    Example:
      echo '{"allow": ["/v1/key/generate/my-app-*"]}' | kes policy write my-app
    """
    source = "stdin" if file.name in ("-", "<stdin>") else f"'{file.name}'"
    get_client().write_policy(name, _parse_policy(file.read(), source))
    echo_done(f"Wrote policy '{name}'")


@policy.command("show")
@connection_options
@json_option
@click.argument("name")
def show(name: str, as_json: bool) -> None:
    """Show the allow and deny rules of policy NAME.

    \b
    Example:
      kes policy show my-app
    """
    rules = get_client().read_policy(name)
    if as_json:
        echo_json(rules.to_json())
        return
    for title, patterns, colour in (("Allow", rules.allow, "green"), ("Deny", rules.deny, "red")):
        click.echo(click.style(f"{title}:", bold=True))
        for pattern in patterns:
            click.echo("  " + click.style("·", fg=colour) + " " + pattern)
        if not patterns:
            click.echo("  (none)")


@policy.command("list")
@connection_options
@json_option
@click.argument("pattern", default="*")
def list_(pattern: str, as_json: bool) -> None:
    """List policies whose names match PATTERN (a glob, default '*').

    \b
    Example:
      kes policy list
    """
    policies = sorted(get_client().list_policies(pattern), key=lambda info: info.name)
    if as_json:
        for info in policies:
            echo_json({"name": info.name})
        return
    if not policies:
        if is_tty():
            click.echo("No policies.")
        return
    click.echo(render_table(("Policy",), [(info.name,) for info in policies]))


@policy.command("delete")
@connection_options
@click.argument("names", metavar="NAME...", nargs=-1, required=True)
def delete(names: tuple[str, ...]) -> None:
    """Delete policies; identities assigned to them lose their access.

    \b
    Example:
      kes policy delete my-app
    """
    client = get_client()
    for name in names:
        client.delete_policy(name)
        echo_done(f"Deleted policy '{name}'")
