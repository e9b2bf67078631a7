"""Session-wide real servers for end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server import RunningServer, start_server


@pytest.fixture(name="kes_server", scope="session")
def _kes_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One fs-backed, ``--auth off`` server shared by the read-mostly e2e tests."""
    with start_server(tmp_path_factory.mktemp("kes-e2e")) as server:
        yield server
