"""The key API over real mutual TLS against a real kes-server process."""

from __future__ import annotations

import base64
import secrets
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.paths import load_vectors
from tests.support.server import RunningServer, start_server

pytestmark = pytest.mark.e2e


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unique(prefix: str = "key") -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


def message(resp: httpx.Response) -> str:
    body: dict[str, Any] = resp.json()
    return str(body["message"])


@pytest.fixture(name="root")
def _root(kes_server: RunningServer) -> Iterator[httpx.Client]:
    with kes_server.client() as client:
        yield client


def test_version_and_status(root: httpx.Client) -> None:
    version = root.get("/version")
    assert version.status_code == 200 and version.json()["version"].startswith("v")
    status = root.get("/v1/status").json()
    assert status["kms"]["state"] == "available"
    assert isinstance(status["uptime"], int)


def test_handshake_without_client_certificate_is_refused(kes_server: RunningServer) -> None:
    ctx = ssl.create_default_context(cafile=str(kes_server.ca_file))
    with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
        with httpx.Client(base_url=kes_server.url, verify=ctx) as client:
            client.get("/version")


def test_unknown_identity_is_denied(kes_server: RunningServer) -> None:
    stranger = kes_server.new_client("stranger")
    with kes_server.client(stranger) as client:
        resp = client.post(f"/v1/key/create/{unique()}")
        assert resp.status_code == 403
        assert message(resp) == "prohibited by policy"
        assert resp.headers["content-type"].startswith("application/json")
        # /version is open to every client with a certificate.
        assert client.get("/version").status_code == 200


def test_create_twice_and_delete_twice(root: httpx.Client) -> None:
    name = unique()
    assert root.post(f"/v1/key/create/{name}").status_code == 200
    again = root.post(f"/v1/key/create/{name}")
    assert again.status_code == 400 and message(again) == "key does already exist"
    assert root.delete(f"/v1/key/delete/{name}").status_code == 200
    assert root.delete(f"/v1/key/delete/{name}").status_code == 200
    missing = root.post(f"/v1/key/generate/{name}", json={})
    assert missing.status_code == 404 and message(missing) == "key does not exist"


@pytest.mark.parametrize(
    "vector", load_vectors("ciphertexts.json")["vectors"], ids=lambda v: v["id"]
)
def test_every_ciphertext_vector_decrypts_over_http(
    root: httpx.Client, vector: dict[str, Any]
) -> None:
    name = unique("vec")
    imported = root.post(f"/v1/key/import/{name}", json={"bytes": vector["key_b64"]})
    assert imported.status_code == 200, imported.text
    body = {"ciphertext": vector["ciphertext_b64"], "context": vector["context_b64"] or None}
    resp = root.post(f"/v1/key/decrypt/{name}", json=body)
    if vector["expect"] == "ok":
        assert resp.status_code == 200, resp.text
        assert resp.json()["plaintext"] == vector["plaintext_b64"]
    else:
        expected = vector.get("error_v0_17") or vector["error_v0_19_2_plus"]
        assert (resp.status_code, message(resp)) == (expected["status"], expected["message"])


@pytest.mark.parametrize("context", [b"", b"short context", secrets.token_bytes(512 * 1024)])
def test_generate_round_trips(root: httpx.Client, context: bytes) -> None:
    name = unique()
    root.post(f"/v1/key/create/{name}").raise_for_status()
    gen = root.post(f"/v1/key/generate/{name}", json={"context": b64(context)})
    assert gen.status_code == 200, gen.text
    data_key = base64.b64decode(gen.json()["plaintext"])
    assert len(data_key) == 32
    dec = root.post(
        f"/v1/key/decrypt/{name}",
        json={"ciphertext": gen.json()["ciphertext"], "context": b64(context)},
    )
    assert dec.status_code == 200 and base64.b64decode(dec.json()["plaintext"]) == data_key
    if context:
        wrong = root.post(
            f"/v1/key/decrypt/{name}",
            json={"ciphertext": gen.json()["ciphertext"], "context": b64(context + b"!")},
        )
        assert wrong.status_code == 400
        assert message(wrong) == "decryption failed: ciphertext is not authentic"


def test_body_limits(root: httpx.Client) -> None:
    """Over the route's limit is ``400 invalid json``, as KES (it reads at most the limit)."""
    name = unique()
    root.post(f"/v1/key/create/{name}").raise_for_status()
    big = b64(secrets.token_bytes(1024 * 1024))
    over = root.post(f"/v1/key/generate/{name}", json={"context": big})
    assert (over.status_code, message(over)) == (400, "invalid json")
    half = b64(secrets.token_bytes(512 * 1024))
    too_much = root.post(f"/v1/key/encrypt/{name}", json={"plaintext": half, "context": half})
    assert (too_much.status_code, message(too_much)) == (400, "invalid json")
    assert root.post(f"/v1/key/encrypt/{name}", json={"plaintext": big}).status_code == 400
    # The server is still healthy afterwards.
    assert root.post(f"/v1/key/generate/{name}", json={}).status_code == 200


@pytest.mark.parametrize("plaintext", [b"", b"Hello World"])
@pytest.mark.parametrize("context", [b"", b"ctx"])
def test_encrypt_decrypt(root: httpx.Client, plaintext: bytes, context: bytes) -> None:
    name = unique()
    root.post(f"/v1/key/create/{name}").raise_for_status()
    enc = root.post(
        f"/v1/key/encrypt/{name}", json={"plaintext": b64(plaintext), "context": b64(context)}
    )
    assert enc.status_code == 200
    ciphertext = base64.b64decode(enc.json()["ciphertext"])
    assert ciphertext.startswith(b'{"aead":')  # the v0.17 JSON format
    dec = root.post(
        f"/v1/key/decrypt/{name}",
        json={"ciphertext": enc.json()["ciphertext"], "context": b64(context)},
    )
    assert base64.b64decode(dec.json()["plaintext"]) == plaintext


def _wrap(text: str) -> str:
    """Base64 as PEM tools write it: CRLF every 8 characters and a trailing newline."""
    return "\r\n".join(text[i : i + 8] for i in range(0, len(text), 8)) + "\n"


def test_line_wrapped_base64_is_accepted(root: httpx.Client) -> None:
    """Go's decoder skips CR and LF, so KES accepts wrapped base64 in every field."""
    name = unique()
    key = secrets.token_bytes(32)
    assert root.post(f"/v1/key/import/{name}", json={"bytes": _wrap(b64(key))}).status_code == 200
    context = _wrap(b64(b"wrapped context"))
    enc = root.post(
        f"/v1/key/encrypt/{name}", json={"plaintext": _wrap(b64(b"hello")), "context": context}
    )
    assert enc.status_code == 200, enc.text
    dec = root.post(
        f"/v1/key/decrypt/{name}",
        json={"ciphertext": _wrap(enc.json()["ciphertext"]), "context": context},
    )
    assert dec.status_code == 200, dec.text
    assert base64.b64decode(dec.json()["plaintext"]) == b"hello"
    spaced = root.post(f"/v1/key/encrypt/{name}", json={"plaintext": "aGVs bG8="})
    assert (spaced.status_code, message(spaced)) == (400, "invalid json")


def test_bad_requests(root: httpx.Client) -> None:
    name = unique()
    root.post(f"/v1/key/create/{name}").raise_for_status()
    cases = [
        (root.post(f"/v1/key/generate/{name}", content=b""), 400, "invalid json"),
        (root.post(f"/v1/key/generate/{name}", content=b"{"), 400, "invalid json"),
        (root.post(f"/v1/key/generate/{name}", json={"context": "!!"}), 400, "invalid json"),
        (
            root.post(f"/v1/key/import/{unique()}", json={"bytes": b64(b"short")}),
            400,
            "invalid key",
        ),
        (root.post("/v1/key/create/"), 400, "invalid key name"),
        (
            root.post("/v1/key/create/bad.name"),
            400,
            "invalid argument: name contains invalid character",
        ),
        (
            root.post(f"/v1/key/decrypt/{name}", json={"ciphertext": b64(b"garbage")}),
            400,
            "decryption failed: ciphertext is not authentic",
        ),
    ]
    for resp, status, text in cases:
        assert (resp.status_code, message(resp)) == (status, text)
    wrong_method = root.get(f"/v1/key/create/{name}")
    assert wrong_method.status_code == 405 and wrong_method.headers["accept"] == "POST"
    unknown = root.get("/v1/nope")
    assert unknown.status_code == 404 and unknown.text.strip() == "404 page not found"


def test_list_patterns(root: httpx.Client) -> None:
    prefix = f"lst{secrets.token_hex(3)}"
    names = [
        f"{prefix}-key",
        f"{prefix}-key1",
        f"{prefix}-key2",
        f"{prefix}-key_2020-01-10",
        f"{prefix}-key_2020-05-10",
        f"{prefix}-other",
    ]
    for n in names:
        root.post(f"/v1/key/create/{n}").raise_for_status()

    def listing(pattern: str) -> set[str]:
        resp = root.get(f"/v1/key/list/{quote(pattern, safe='')}")  # as url.PathEscape
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/x-ndjson"
        import json

        return {json.loads(line)["name"] for line in resp.text.splitlines() if line}

    assert set(names) <= listing("*")
    assert listing(f"{prefix}-key*") == set(names) - {f"{prefix}-other"}
    assert listing(f"{prefix}-key?") == {f"{prefix}-key1", f"{prefix}-key2"}
    assert listing(f"{prefix}-key_2020-0[1-4]-[0-1][0-9]") == {f"{prefix}-key_2020-01-10"}
    assert listing(f"{prefix}-nothing*") == set()


def test_http2_identity(kes_server: RunningServer) -> None:
    with kes_server.client(http2=True) as client:
        resp = client.post(f"/v1/key/create/{unique()}")
        assert resp.http_version == "HTTP/2" and resp.status_code == 200


def test_fs_store_survives_restart(tmp_path: Path) -> None:
    with start_server(tmp_path) as server:
        name = unique()
        with server.client() as client:
            client.post(f"/v1/key/create/{name}").raise_for_status()
            gen = client.post(f"/v1/key/generate/{name}", json={"context": b64(b"c")}).json()
        server.restart()
        with server.client() as client:
            dec = client.post(
                f"/v1/key/decrypt/{name}",
                json={"ciphertext": gen["ciphertext"], "context": b64(b"c")},
            )
            assert dec.json()["plaintext"] == gen["plaintext"]
        assert server.stop() == 0


def test_config_policy_applies(tmp_path: Path) -> None:
    """Policies from the config file: the seed's my-app example through the API."""
    import yaml

    directory = tmp_path / "srv"
    directory.mkdir()
    with start_server(directory, store="mem", config={"keys": [{"name": "my-app-key"}]}) as server:
        app = server.new_client("app")
        cfg = yaml.safe_load(server.config_path.read_text())
        cfg["policy"] = {
            "my-app": {
                "allow": [
                    "/v1/key/create/my-app*",
                    "/v1/key/generate/my-app*",
                    "/v1/key/decrypt/my-app*",
                ],
                "deny": ["/v1/key/generate/my-app-internal*"],
                "identities": ["${APP_IDENTITY}"],
            }
        }
        server.config_path.write_text(yaml.safe_dump(cfg))
        server.env["APP_IDENTITY"] = app.identity
        server.restart()
        with server.client(app) as client:
            assert client.post("/v1/key/generate/my-app-key", json={}).status_code == 200
            assert client.post("/v1/key/create/my-app-2").status_code == 200
            assert client.post("/v1/key/create/other").status_code == 403
            assert client.post("/v1/key/generate/my-app-internal", json={}).status_code == 403
            assert client.delete("/v1/key/delete/my-app-key").status_code == 403


def test_refused_handshake_is_an_error_event(tmp_path: Path) -> None:
    with start_server(tmp_path) as server:
        ctx = ssl.create_default_context(cafile=str(server.ca_file))
        with pytest.raises(httpx.HTTPError), httpx.Client(base_url=server.url, verify=ctx) as c:
            c.get("/version")
        server.stop()
        assert "TLS handshake error from 127.0.0.1" in server.stderr_path.read_text()


def test_bulk_decrypt(root: httpx.Client) -> None:
    """v0.19 batch decrypt: plaintexts in request order; one failure fails the batch."""
    name = unique()
    root.post(f"/v1/key/create/{name}").raise_for_status()
    items = []
    for i, context in enumerate([b"", b"Hello World", b"ctx-3"]):
        plaintext = f"secret-{i}".encode()
        enc = root.post(
            f"/v1/key/encrypt/{name}", json={"plaintext": b64(plaintext), "context": b64(context)}
        ).json()
        items.append(({"ciphertext": enc["ciphertext"], "context": b64(context)}, plaintext))
    for n in (1, 2, 3):
        resp = root.post(f"/v1/key/bulk/decrypt/{name}", json=[body for body, _ in items[:n]])
        assert resp.status_code == 200
        assert [base64.b64decode(x["plaintext"]) for x in resp.json()] == [p for _, p in items[:n]]
    broken = [items[0][0], {"ciphertext": items[1][0]["ciphertext"]}]  # context missing
    resp = root.post(f"/v1/key/bulk/decrypt/{name}", json=broken)
    assert resp.status_code == 400


def test_api_listing(root: httpx.Client) -> None:
    rows = root.get("/v1/api").json()
    by_path = {r["path"]: r for r in rows}
    assert by_path["/v1/key/generate/*"] == {
        "method": "POST",
        "path": "/v1/key/generate/*",
        "max_body": 1 << 20,
        "timeout": 15_000_000_000,
    }
    assert by_path["/v1/log/audit/trace"]["timeout"] == 0


def test_auth_on_accepts_ca_issued_client_certs(tmp_path: Path) -> None:
    """--auth on: certificates from the configured CA work; policies still apply."""
    with start_server(tmp_path, auth=True) as server:
        with server.client() as root:
            assert root.post(f"/v1/key/create/{unique()}").status_code == 200
        with server.client(server.new_client("app")) as app:
            assert app.post(f"/v1/key/create/{unique()}").status_code == 403
