"""The operator's own programs: ``$PAGER`` to read an event, ``$EDITOR`` to write a policy.

Both variables may hold a command with arguments (``less -R``, ``code --wait``),
so the file is handed over the way git does it: through ``sh -c '<cmd> "$1"'``.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["editor_command", "pager_command"]


def _command(program: str, path: str) -> list[str]:
    return ["sh", "-c", f'{program} "$1"', "kes-tui", path]


def pager_command(path: str, environ: Mapping[str, str]) -> list[str]:
    """``$PAGER FILE`` (``less`` when unset)."""
    return _command(environ.get("PAGER", "").strip() or "less", path)


def editor_command(path: str, environ: Mapping[str, str]) -> list[str]:
    """``$VISUAL FILE``, else ``$EDITOR FILE`` (``vi`` when neither is set)."""
    program = environ.get("VISUAL", "").strip() or environ.get("EDITOR", "").strip()
    return _command(program or "vi", path)
