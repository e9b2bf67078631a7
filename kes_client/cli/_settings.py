"""Shared CLI plumbing: connection settings, the lazily built client, aliases.

The root ``kes`` group stores one ``Settings`` in ``ctx.obj``; commands that
talk to a server ask it for a ``Client``, which is built on first use so
that offline commands (``kes identity of``, ``kes server``) never need a
certificate. The connection options (``--server``, ``--cert``, ``--key``,
``--ca``, ``-k``) are accepted both before the command (``kes -k key list``)
and after it (``kes key list -k --ca ca.pem``): upstream's per-command flags
are what guides and muscle memory use. Given in both places, the later wins.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from kes_client._client import Client

__all__ = [
    "AliasGroup",
    "Settings",
    "connection_options",
    "decode_b64",
    "get_client",
    "json_option",
]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Settings:
    """Connection settings gathered from global options and env vars."""

    server: str | None = None
    cert: str | None = None
    key: str | None = None
    ca: str | None = None
    insecure: bool = False
    _client: Client | None = field(default=None, repr=False)

    def client(self) -> Client:
        """The one ``Client`` of this invocation, closed when the CLI exits."""
        if self._client is None:
            self._client = Client.from_env(
                self.server, cert=self.cert, key=self.key, ca=self.ca, insecure=self.insecure
            )
            click.get_current_context().find_root().call_on_close(self._client.close)
        return self._client


def get_client() -> Client:
    """The client for the running command (builds it on first use)."""
    return click.get_current_context().ensure_object(Settings).client()


def _setting(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A callback storing a subcommand's connection option into the shared ``Settings``."""

    def store(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        if value:
            setattr(ctx.ensure_object(Settings), name, value)
        return value

    return store


#: (flags, Settings field, is a flag, help): the root group's connection options.
_CONNECTION = (
    (("--server",), "server", False, "KES server endpoint (URL or host:port)."),
    (("--cert",), "cert", False, "Client certificate (PEM)."),
    (("--key",), "key", False, "Private key of the client certificate (PEM)."),
    (("--ca",), "ca", False, "CA certificate(s) to verify the server with."),
    (("-k", "--insecure"), "insecure", True, "Skip verification of the server certificate."),
)


def connection_options(func: F) -> F:
    """The root group's connection options, accepted after the command too.

    They have no environment variables here: ``KES_*`` is read once, by the
    root group, so an option written after the command always wins over it.
    """
    for flags, name, is_flag, help_text in reversed(_CONNECTION):
        func = click.option(
            *flags,
            name,
            is_flag=is_flag,
            metavar=None if is_flag else ("URL" if name == "server" else "FILE"),
            expose_value=False,
            callback=_setting(name),
            help=help_text,
        )(func)
    return func


def json_option(func: F) -> F:
    """``--json``: machine-readable output, one compact JSON document per line."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print compact JSON instead of text."
    )(func)


def decode_b64(value: str, what: str) -> bytes:
    """Decode a base64 command-line argument or fail with a usage error naming it."""
    try:
        # Whitespace is dropped: `base64` wraps long output at 76 columns.
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise click.BadParameter(f"{what} is not valid base64") from exc


class AliasGroup(click.Group):
    """A group whose commands also answer to other names (v0.19 spellings).

    Aliases are not listed separately in ``--help``; the primary command's
    help line mentions them instead.
    """

    def __init__(self, *args: Any, aliases: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.aliases: dict[str, str] = dict(aliases or {})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in self.aliases:
            command = super().get_command(ctx, self.aliases[cmd_name])
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        # Report the primary name so usage lines and errors use it.
        _name, command, rest = super().resolve_command(ctx, args)
        return (command.name if command else _name), command, rest

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        by_target: dict[str, list[str]] = {}
        for alias, target in self.aliases.items():
            by_target.setdefault(target, []).append(alias)
        rows: list[tuple[str, str]] = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            label = name
            if name in by_target:
                label = f"{name} ({', '.join(by_target[name])})"
            rows.append((label, command.get_short_help_str(limit=formatter.width - 6)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
