"""Fixed data for deterministic console tests and snapshots (no clocks, no random ids)."""

from __future__ import annotations

from typing import Any

from kes_client import KeyInfo
from kes_tui.model import Directory

ROOT = "a" * 64
APP = "3ecf" + "1" * 60
BACKUP = "b7e2" + "2" * 60
MINIO = "9f00" + "3" * 60
STRANGER = "dead" + "4" * 60

DIRECTORY = Directory(
    self_identity=ROOT,
    admin=True,
    identities={APP: "my-app", BACKUP: "backup", MINIO: "minio"},
    policies={
        "my-app": (("/v1/key/generate/my-app-*", "/v1/key/decrypt/my-app-*"), ()),
        "backup": (("/v1/key/*/*", "/v1/key/list/*"), ("/v1/key/delete/*",)),
        "minio": (
            ("/v1/key/create/minio-*", "/v1/key/generate/minio-*", "/v1/key/decrypt/minio-*"),
            ("/v1/key/create/minio-root",),
        ),
        "readonly": (("/v1/key/list/*", "/v1/status", "/v1/metrics"), ()),
    },
)

KEYS = [
    KeyInfo("my-app-key"),
    KeyInfo("my-app-2024"),
    KeyInfo("minio-default"),
    KeyInfo("minio-tenant-1"),
    KeyInfo("backup-primary"),
]


def audit_event(
    second: int, identity: str, method: str, path: str, status: int, latency_ns: int
) -> dict[str, Any]:
    """An audit event in the server's v0.18+ shape at a fixed time."""
    return {
        "time": f"2026-11-23T21:50:{second:02d}.{second * 37 % 1000:03d}000000Z",
        "request": {"ip": "10.0.4.17", "method": method, "path": path, "identity": identity},
        "response": {"code": status, "time": latency_ns},
    }


def audit_events() -> list[dict[str, Any]]:
    """A realistic minute of traffic: generate/decrypt, a denied call, an error."""
    plan = [
        (APP, "POST", "/v1/key/generate/my-app-key", 200, 812_000),
        (APP, "POST", "/v1/key/decrypt/my-app-key", 200, 640_000),
        (MINIO, "POST", "/v1/key/generate/minio-default", 200, 1_240_000),
        (BACKUP, "GET", "/v1/key/list/*", 200, 2_310_000),
        (APP, "DELETE", "/v1/key/delete/my-app-key", 403, 95_000),
        (ROOT, "GET", "/v1/status", 200, 410_000),
        (MINIO, "POST", "/v1/key/create/minio-root", 403, 88_000),
        (STRANGER, "GET", "/v1/key/list/*", 403, 70_000),
        (APP, "POST", "/v1/key/decrypt/my-app-2024", 400, 530_000),
        (ROOT, "POST", "/v1/key/create/backup-primary", 200, 14_200_000),
        (MINIO, "POST", "/v1/key/decrypt/minio-default", 200, 720_000),
        (BACKUP, "POST", "/v1/key/generate/backup-primary", 502, 1_020_000_000),
    ]
    return [audit_event(i, *entry) for i, entry in enumerate(plan * 2)]


def error_events() -> list[dict[str, Any]]:
    return [
        {"message": "2026/11/23 21:50:03 http: TLS handshake error from 10.0.4.99: bad cert"},
        {"message": "2026/11/23 21:50:11 keystore: fs: write /var/kes/keys/x: no space left"},
        {"message": "2026/11/23 21:50:42 http: failed to connect to key store: timeout"},
    ]


METRICS = """\
kes_http_request_success 1200
kes_http_request_error 31
kes_http_request_failure 2
kes_http_request_active 3
kes_http_response_time_bucket{le="0.01"} 1100
kes_http_response_time_bucket{le="0.05"} 1200
kes_http_response_time_bucket{le="0.1"} 1225
kes_http_response_time_bucket{le="+Inf"} 1233
kes_http_response_time_sum 4.1
kes_http_response_time_count 1233
kes_log_audit_events 1233
kes_log_error_events 3
"""
