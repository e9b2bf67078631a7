"""End-to-end tests share the session server defined in tests/conftest.py, and one OpenBao."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.vault import OpenBao, openbao


@pytest.fixture(name="bao", scope="session")
def _bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBao]:
    """One OpenBao for the session; tests use their own prefixes (faults get their own)."""
    with openbao(tmp_path_factory.mktemp("openbao")) as server:
        yield server
