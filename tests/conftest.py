"""Session-wide real servers for end-to-end tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.support.server import RunningServer, start_server

# The session-wide moto server fixture (AWS Secrets Manager tests).
pytest_plugins = ["tests.support.moto"]

# CI must not turn red on a random example no developer saw: derandomize there
# (the same examples every run); locally each run explores new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(name="kes_server", scope="session")
def _kes_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One fs-backed, ``--auth off`` server shared by the read-mostly e2e tests."""
    with start_server(tmp_path_factory.mktemp("kes-e2e")) as server:
        yield server
