"""Key and identity lists end with the ``Status``/``Error`` trailers, on both protocols.

KES v0.17 streams ``GET /v1/key/list/*`` and ``GET /v1/identity/list/*`` as
NDJSON, announces ``Trailer: Status,Error`` and ends with ``Status: 200`` and
an empty ``Error`` when the whole list was sent (API.md §2.11): that is how a
client tells a complete list from a cut one. httpx does not expose trailers,
so they are read raw: the chunked coding's trailer section on HTTP/1.1, the
trailing HEADERS frame on HTTP/2. A failure after the first line, which only
the trailers can report, is tested on the dispatcher
(tests/kes_server/api/test_dispatch_stream.py): no store fails mid-listing.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from tests.support.protocols import PROTOCOLS, raw_call
from tests.support.rawhttp import RawResponse
from tests.support.server import RunningServer, start_server

pytestmark = pytest.mark.e2e

#: Enough long names for a listing of several 64 KiB pieces (and beyond HTTP/2's
#: default 64 KiB flow-control window, so the server must wait for WINDOW_UPDATEs).
MANY = 1500
PREFIX = "trailer-" + "n" * 60
OK_TRAILERS = {"status": "200", "error": ""}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_server(tmp_path_factory.mktemp("trailers"), store="mem") as srv:
        yield srv


@pytest.fixture(scope="module")
def names(server: RunningServer) -> list[str]:
    async def create_all() -> list[str]:
        created = [f"{PREFIX}-{i:04d}" for i in range(MANY)]
        async with server.async_client(http2=True) as client:
            answers = await asyncio.gather(*(client.post(f"/v1/key/create/{n}") for n in created))
        assert {a.status_code for a in answers} == {200}
        return created

    return asyncio.run(create_all())


@pytest.fixture(scope="module")
def identities(server: RunningServer) -> list[str]:
    assigned = [f"{i:02x}" * 32 for i in range(3)]
    with server.client() as root:
        root.post("/v1/policy/write/trailers", json={"allow": []}).raise_for_status()
        for identity in assigned:
            root.post(f"/v1/identity/assign/trailers/{identity}").raise_for_status()
    return assigned


def _list(server: RunningServer, protocol: str, target: str) -> RawResponse:
    return raw_call(protocol, server.port, server.ssl_context(), b"GET", target.encode())


def _streamed(answer: RawResponse) -> list[dict[str, str]]:
    """The NDJSON lines of a complete list answer (asserting its head and trailers)."""
    assert answer.status == 200
    assert answer.content_type == "application/x-ndjson"
    assert answer.headers["trailer"] == "Status,Error"
    assert "content-length" not in answer.headers  # streamed, not sent whole
    assert answer.trailers == OK_TRAILERS
    return [json.loads(line) for line in answer.body.splitlines()]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_key_list_ends_with_status_200(
    server: RunningServer, names: list[str], protocol: str
) -> None:
    listed = _streamed(_list(server, protocol, f"/v1/key/list/{PREFIX}-*"))
    assert [row["name"] for row in listed] == names
    one = _streamed(_list(server, protocol, f"/v1/key/list/{names[7]}"))
    assert one == [{"name": names[7]}]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_identity_list_ends_with_status_200(
    server: RunningServer, identities: list[str], protocol: str
) -> None:
    listed = _streamed(_list(server, protocol, "/v1/identity/list/*"))
    assert sorted(row["identity"] for row in listed) == identities
    assert {row["policy"] for row in listed} == {"trailers"}


@pytest.mark.parametrize("target", ["/v1/key/list/none-*", "/v1/identity/list/none-*"])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_empty_list_is_200_with_an_empty_body_and_the_trailers(
    server: RunningServer, protocol: str, target: str
) -> None:
    answer = _list(server, protocol, target)
    assert _streamed(answer) == []
    assert answer.body == b""


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_list_refused_before_its_first_line_has_no_trailers(
    server: RunningServer, protocol: str
) -> None:
    """A bad pattern is an ordinary JSON error: nothing was streamed."""
    answer = _list(server, protocol, "/v1/key/list/a[")
    assert answer.status == 400 and answer.trailers == {}
    assert "trailer" not in answer.headers
    assert answer.body == b'{"message":"invalid argument: pattern contains invalid character"}'
