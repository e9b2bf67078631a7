"""Contexts: named servers with the certificates to reach them, in one small YAML file.

An operator of a cluster talks to several servers (each kes-server of the
cluster, a management server, a staging one), each perhaps with its own CA
or client certificate. ``kes-tui --context NAME`` opens one; ``ctrl+o`` in
the console switches to another without restarting. The file::

    current: kes-1                  # optional: what --context defaults to
    contexts:
      kes-1:
        server: https://kes-1.example.net:7373
        cert: ~/.kes/admin.cert     # relative paths are relative to this file
        key: ~/.kes/admin.key
        ca: ~/.kes/ca.pem           # optional
      dev:
        server: 127.0.0.1:7373
        cert: /home/me/pykes/.kes-dev/root.cert
        key: /home/me/pykes/.kes-dev/root.key
        insecure: true              # optional: -k

is read from ``--contexts FILE``, else ``$KES_CONTEXTS``, else
``contexts.yml`` in the user's configuration directory
(``~/.config/pykes/contexts.yml`` on Linux).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
import yaml

from kes_client import AsyncClient
from kes_server.core.errors import KESError
from kes_server.core.identity import identity_of_pem

__all__ = ["Context", "ContextError", "Contexts", "default_contexts_file", "load_contexts"]

CONTEXTS_ENV_VAR = "KES_CONTEXTS"
_FIELDS = {"server", "cert", "key", "ca", "insecure"}


class ContextError(KESError):
    """The contexts file cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Context:
    """One named server and how to reach it."""

    name: str
    server: str
    cert: Path
    key: Path
    ca: Path | None = None
    insecure: bool = False

    def client(self) -> AsyncClient:
        """A client for this context (``CredentialsError`` if a TLS file is unusable)."""
        return AsyncClient(
            self.server, cert=self.cert, key=self.key, ca=self.ca, insecure=self.insecure
        )

    def identity(self) -> str:
        """The identity of the context's certificate ("" if it cannot be read)."""
        try:
            return identity_of_pem(self.cert.read_bytes())
        except (OSError, ValueError):
            return ""


@dataclass(frozen=True)
class Contexts:
    """The contexts of a file, in file order, and the one to open by default."""

    source: Path
    items: tuple[Context, ...] = ()
    current: str = ""

    def get(self, name: str) -> Context:
        for context in self.items:
            if context.name == name:
                return context
        known = ", ".join(c.name for c in self.items) or "none"
        raise ContextError(f"no context {name!r} in {self.source} (known: {known})")


def default_contexts_file(environ: Mapping[str, str] | None = None) -> Path:
    """``$KES_CONTEXTS``, else ``contexts.yml`` in the user's pykes configuration directory."""
    env = os.environ if environ is None else environ
    configured = env.get(CONTEXTS_ENV_VAR, "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_config_dir("pykes")) / "contexts.yml"


def _path(value: Any, where: str, base: Path) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise ContextError(f"{where}: must be a file path")
    path = Path(value.strip()).expanduser()
    return path if path.is_absolute() else base / path


def load_contexts(path: Path) -> Contexts:
    """Read a contexts file; a missing file is no contexts, a broken one is an error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Contexts(path)
    except OSError as exc:
        raise ContextError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ContextError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("contexts", {}), dict):
        raise ContextError(f"{path}: expected 'contexts:' mapping names to servers")
    base = path.parent
    items = []
    for name, fields in (data.get("contexts") or {}).items():
        where = f"{path}: contexts.{name}"
        if not isinstance(fields, dict):
            raise ContextError(f"{where}: expected server, cert and key")
        unknown = set(fields) - _FIELDS
        if unknown:
            raise ContextError(f"{where}: unknown fields: {', '.join(sorted(unknown))}")
        server = fields.get("server")
        if not isinstance(server, str) or not server.strip():
            raise ContextError(f"{where}.server: required (https://host:port)")
        items.append(
            Context(
                name=str(name),
                server=server.strip(),
                cert=_path(fields.get("cert"), f"{where}.cert", base),
                key=_path(fields.get("key"), f"{where}.key", base),
                ca=_path(fields["ca"], f"{where}.ca", base) if fields.get("ca") else None,
                insecure=fields.get("insecure") is True,
            )
        )
    current = data.get("current") or (items[0].name if items else "")
    contexts = Contexts(path, tuple(items), str(current))
    if items:
        contexts.get(contexts.current)  # a 'current' that names no context is an error
    return contexts
