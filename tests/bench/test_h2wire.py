"""The benchmark's hand-written HTTP/2, checked against independent implementations.

``bench/h2wire.py`` replaces the ``h2`` package on both sides of the bench
(the load generator's client, the bare baseline's server) because the package
costs more CPU per request than the servers measured. Hand-written framing is
easy to get subtly wrong, and a wrong client would silently measure nothing,
so each side is run against a real peer it did not write: the load generator
against kes-server's HTTP/2 (its own, on the ``h2`` state machine), the baseline against
httpx's HTTP/2 client.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from pathlib import Path

import hpack
import httpx
import pytest

from bench import h2wire, loadgen, servers
from tests.support.server import start_server


def test_literal_block_decodes_with_hpack() -> None:
    fields = [(":method", "POST"), (":path", "/v1/key/generate/" + "k" * 200), ("x-y", "z")]
    decoded = [(str(n), str(v)) for n, v in hpack.Decoder().decode(h2wire.literal_block(fields))]
    assert decoded == fields


def test_frames_survive_any_split() -> None:
    stream = h2wire.settings(((h2wire.SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20),))
    stream += h2wire.data_frames(3, bytes(40000))
    reader = h2wire.FrameReader()
    frames = [f for i in range(0, len(stream), 7) for f in reader.feed(stream[i : i + 7])]
    assert [(kind, flags, sid) for kind, flags, sid, _ in frames] == [
        (h2wire.SETTINGS, 0, 0),
        (h2wire.DATA, 0, 3),
        (h2wire.DATA, 0, 3),
        (h2wire.DATA, h2wire.END_STREAM, 3),
    ]
    assert b"".join(p for kind, _, _, p in frames if kind == h2wire.DATA) == bytes(40000)
    assert h2wire.parse_settings(frames[0][3]) == {h2wire.SETTINGS_INITIAL_WINDOW_SIZE: 1 << 20}


@pytest.mark.parametrize("status", [200, 403, 404, 500, 503])
def test_response_status_of_any_encoding(status: int) -> None:
    """What a server may send after the load generator's SETTINGS_HEADER_TABLE_SIZE=0."""
    encoder = hpack.Encoder()
    encoder.header_table_size = 0
    encoder.encode([(":status", "200"), ("content-type", "application/json")])
    block = encoder.encode([(":status", str(status)), ("content-type", "application/json")])
    assert h2wire.response_status(block) == status
    assert h2wire.response_status(h2wire.literal_block([(":status", str(status))])) == status


def _measure(target: loadgen.Target, *, http2: bool, lists: int = 0) -> loadgen.LoadResult:
    data = asyncio.run(loadgen.prepare(target, lists=lists))
    spec = loadgen.LoadSpec(
        target, "generate", connections=2, duration=0.5, warmup=0.1, http2=http2, data=data
    )
    return loadgen.run_load(spec)


@pytest.mark.e2e
def test_load_generator_h2_against_kes_server(tmp_path: Path) -> None:
    with start_server(tmp_path, store="mem") as server:
        target = loadgen.Target(
            "127.0.0.1",
            server.port,
            str(server.ca_file),
            str(server.root_cert),
            str(server.root_key),
        )
        result = _measure(target, http2=True)
    assert result.errors == 0, result.error_samples
    assert result.requests > 0
    assert result.statuses == {"200": result.requests}


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "h2"])
def test_load_generator_against_the_baseline(tmp_path: Path, http2: bool) -> None:
    certs = servers.make_certs(tmp_path / "certs")
    with servers.baseline_server(certs, tmp_path) as srv:
        result = _measure(srv.target, http2=http2)
    assert result.errors == 0, result.error_samples
    assert result.requests > 0
    assert result.statuses == {"200": result.requests}


def test_baseline_h2_serves_httpx(tmp_path: Path) -> None:
    certs = servers.make_certs(tmp_path / "certs")
    with servers.baseline_server(certs, tmp_path) as srv:
        ctx = ssl.create_default_context(cafile=str(certs.server_cert))
        ctx.load_cert_chain(str(certs.client_cert), str(certs.client_key))
        url = f"https://localhost:{srv.target.port}"
        context = base64.b64encode(b"bucket/object").decode()
        with httpx.Client(base_url=url, verify=ctx, http2=True) as client:
            made = client.post("/v1/key/generate/k", json={"context": context})
            back = client.post(
                "/v1/key/decrypt/k",
                json={"ciphertext": made.json()["ciphertext"], "context": context},
            )
            missing = client.get("/nope")
    assert made.http_version == "HTTP/2"
    assert made.status_code == 200 and made.headers["content-type"] == "application/json"
    assert back.status_code == 200
    assert back.json()["plaintext"] == made.json()["plaintext"]
    assert missing.status_code == 404 and json.loads(missing.content) == {"message": "not found"}
