"""The public face of ``kes_client``: a sorted ``__all__`` that matches reality."""

from __future__ import annotations

import subprocess
import sys
import types

import kes_client
from kes_server.core import errors


def test_all_is_sorted_and_complete() -> None:
    names = kes_client.__all__
    assert names == sorted(names, key=lambda name: (not name.isupper(), name))
    public = {
        name
        for name, value in vars(kes_client).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(names) == public


def test_the_whole_error_tree_is_reexported() -> None:
    for name in errors.__all__:
        if name in ("from_response", "ConfigError"):
            continue
        assert getattr(kes_client, name) is getattr(errors, name)


def test_sdk_does_not_load_the_cli_or_the_server_stack() -> None:
    # (click itself may be loaded: httpx imports it for its own optional CLI.)
    code = (
        "import sys, kes_client; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('httptools', 'uvloop', 'textual')"
        " or m.startswith(('kes_client.cli', 'kes_server.api', 'kes_server.cli',"
        " 'kes_server.transport', 'kes_server.keystore'))]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
