"""Fixtures for the SDK/CLI end-to-end tests (the server itself is the session ``kes_server``)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from kes_client import Client
from tests.support.server import RunningServer


def unique(prefix: str = "key") -> str:
    """A name no other test uses, since all e2e tests share one server."""
    return f"{prefix}-{secrets.token_hex(5)}"


@pytest.fixture(name="root_client")
def _root_client(kes_server: RunningServer) -> Iterator[Client]:
    with Client(
        kes_server.url,
        cert=kes_server.root_cert,
        key=kes_server.root_key,
        ca=kes_server.ca_file,
        timeout=10.0,
    ) as client:
        yield client
