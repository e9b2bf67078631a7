"""``kes tool``: v0.17's home of offline helpers (``kes tool identity of|new``).

Guides written for v0.17 (the TLS proxy guide among them) say
``kes tool identity of``; v0.19 moved the commands to ``kes identity``.
Both spellings run the very same command objects.
"""

from __future__ import annotations

import click

from kes_client.cli.identity import identity_new, identity_of

__all__ = ["tool"]


@click.group()
def tool() -> None:
    """Offline helpers (v0.17 spelling of 'kes identity of|new')."""


@tool.group("identity")
def tool_identity() -> None:
    """Compute identities and create self-signed certificates."""


tool_identity.add_command(identity_of, "of")
tool_identity.add_command(identity_new, "new")
