"""The console's pure view logic, tested without Textual or a server."""

from __future__ import annotations

from typing import Any

import pytest

from kes_tui.model import (
    AuditRow,
    EventStore,
    FilterError,
    MetricsHistory,
    OwnRequests,
    RateMeter,
    StreamState,
    audit_gap,
    audit_row,
    backoff_s,
    bar_rows,
    denied_backoff_s,
    error_row,
    format_latency,
    format_time,
    format_uptime,
    latency_percentiles,
    match_name,
    parse_filter,
    parse_key_material,
    parse_metrics,
    policy_matrix,
    quantile_bucket,
    status_class,
    top_talkers,
)
from kes_tui.model.directory import OPERATIONS, Directory
from tests.kes_tui import data


def rows(events: list[dict[str, Any]] | None = None) -> list[AuditRow]:
    names = data.DIRECTORY.names()
    return [audit_row(i, e, names) for i, e in enumerate(events or data.audit_events())]


class TestEvents:
    def test_audit_row_flattens_event(self) -> None:
        row = audit_row(7, data.audit_event(3, data.APP, "POST", "/v1/key/x", 403, 95_000), {})
        assert (row.seq, row.method, row.path, row.status, row.ip) == (
            7,
            "POST",
            "/v1/key/x",
            403,
            "10.0.4.17",
        )
        assert row.cells()[0] == "21:50:03.111"
        assert row.who == data.APP[:12]

    def test_friendly_name(self) -> None:
        row = audit_row(
            0, data.audit_event(1, data.ROOT, "GET", "/v1/status", 200, 1), {data.ROOT: "root"}
        )
        assert row.who == "root"

    def test_v017_event_without_ip_or_method(self) -> None:
        raw = {
            "time": "2022-01-06T15:50:28+01:00",
            "request": {"path": "/v1/status", "identity": ""},
            "response": {"code": 200, "time": 1},
        }
        row = audit_row(0, raw, {})
        assert row.cells()[:3] == ("15:50:28.000", "-", "-")

    def test_error_row_splits_go_prefix(self) -> None:
        row = error_row(0, {"message": "2026/11/23 21:50:28 http: boom"})
        assert (row.time, row.message) == ("21:50:28", "http: boom")
        assert error_row(1, {"message": "no prefix"}).message == "no prefix"

    @pytest.mark.parametrize(
        ("ns", "text"),
        [
            (850_000, "850µs"),
            (12_345_678, "12.3ms"),
            (250_000_000, "250ms"),
            (1_200_000_000, "1.20s"),
        ],
    )
    def test_format_latency(self, ns: int, text: str) -> None:
        assert format_latency(ns) == text

    def test_format_time_and_status(self) -> None:
        assert format_time("2026-11-23T21:50:28.123456789Z") == "21:50:28.123"
        assert [status_class(s) for s in (200, 403, 502, 301)] == [
            "ok",
            "client-error",
            "server-error",
            "other",
        ]
        assert format_uptime(93_784) == "1d 2h 03m"
        assert format_uptime(65) == "1m 05s"


class TestFilter:
    def select(self, text: str) -> list[str]:
        f = parse_filter(text)
        return [f"{r.status} {r.path}" for r in rows() if f.matches(r)]

    def test_status_forms(self) -> None:
        assert all(s.startswith("403") for s in self.select("status:403"))
        assert len(self.select("status:403")) == 6
        assert len(self.select("status:4xx")) == 8
        assert len(self.select("status:>=500")) == 2
        assert len(self.select("status:400-403")) == 8
        assert len(self.select("status:400,502")) == 4

    def test_identity_prefix_and_name(self) -> None:
        by_prefix = self.select("identity:3ecf")
        assert by_prefix == self.select("identity:my-app")
        assert len(by_prefix) == 8

    def test_negation_and_regex(self) -> None:
        assert "200 /v1/status" not in self.select("!path:/v1/status")
        assert len(self.select("!path:/v1/status")) == 22
        assert self.select(r"create/minio-r\w+") == ["403 /v1/key/create/minio-root"] * 2
        assert len(self.select("method:post status:200")) == 10

    def test_quoted_term_and_empty(self) -> None:
        assert len(self.select('"POST /v1/key/decrypt"')) == 6  # a quoted term keeps its space
        assert len(self.select("")) == 24

    @pytest.mark.parametrize(
        "text",
        ["status:abc", "path:[", "!", '"unterminated', "identity:", "latency:5", "latency:fast"],
    )
    def test_errors_are_reported(self, text: str) -> None:
        with pytest.raises(FilterError):
            parse_filter(text)

    def test_unknown_field_is_an_error_not_an_empty_view(self) -> None:
        with pytest.raises(FilterError, match="unknown field 'stauts'.*status"):
            parse_filter("stauts:403")
        # times and escaped colons are still plain text
        assert len(self.select("21:50:0")) == 10
        assert self.select(r"nothing\:here") == []

    def test_latency(self) -> None:
        assert len(self.select("latency:>10ms")) == 4  # 14.2 ms and 1.02 s, twice
        assert len(self.select("latency:<100us")) == 6
        assert self.select("latency:1ms-2ms") == ["200 /v1/key/generate/minio-default"] * 2
        assert len(self.select("!latency:>=1ms")) == 16

    def test_match_name(self) -> None:
        assert match_name("app-*", "app-1") and not match_name("app-*", "my-app-1")
        assert match_name("APP", "my-app-1")
        assert match_name("", "x")
        assert not match_name("[", "x")


class TestStore:
    def test_bounded_with_dropped_counter(self) -> None:
        store: EventStore[AuditRow] = EventStore(capacity=10)
        store.extend(rows()[:15])
        assert len(store) == 10 and store.dropped == 5 and store.received == 15
        assert store.rows[0].seq == 5

    def test_filtered_view_follows_buffer(self) -> None:
        store: EventStore[AuditRow] = EventStore(capacity=10)
        store.set_filter(parse_filter("status:403"))
        added = store.extend(rows())
        assert added == 6
        assert all(r.status == 403 for r in store.view)
        assert all(r.seq >= store.rows[0].seq for r in store.view)  # evicted rows leave the view
        store.set_filter(parse_filter(""))
        assert len(store.view) == 10 and store.matched == 10

    def test_markers_pass_every_filter_and_own_rows_can_hide(self) -> None:
        store: EventStore[AuditRow] = EventStore()
        batch = rows()
        batch[0].own = True
        store.extend(batch)
        store.extend([audit_gap(store.next_seq, "21:51:00", "gap")])
        store.set_filter(parse_filter("status:502"))
        assert [r.marker for r in store.view] == [False, False, True]
        assert store.hidden == len(store) - 3
        store.set_filter(parse_filter(""))
        store.set_hide_own(True)
        assert len(store.view) == len(store) - 1 and batch[0] not in store.view

    def test_rate_meter(self) -> None:
        now = [100.0]
        meter = RateMeter(window_s=2.0, clock=lambda: now[0])
        meter.add(100)
        now[0] += 1
        meter.add(100)
        assert meter.rate == 100.0
        now[0] += 5
        assert meter.rate == 0.0


class TestDirectory:
    def test_names(self) -> None:
        names = data.DIRECTORY.names()
        assert names[data.ROOT] == "root" and names[data.APP] == "my-app"
        shared = Directory(identities={"a" * 64: "p", "b" * 64: "p"})
        assert shared.names() == {"a" * 64: "p/aaaa", "b" * 64: "p/bbbb"}

    def test_explain_uses_server_engine(self) -> None:
        d = data.DIRECTORY
        verdict = d.explain(data.BACKUP, "/v1/key/delete/backup-primary")
        assert (verdict.allowed, verdict.rule, verdict.policy) == (
            False,
            "/v1/key/delete/*",
            "backup",
        )
        assert d.explain(data.BACKUP, "/v1/key/generate/x").rule == "/v1/key/*/*"
        assert d.explain(data.APP, "/v1/key/delete/my-app-key").rule is None
        assert d.explain(data.ROOT, "/v1/anything").allowed is True
        assert d.explain(data.STRANGER, "/v1/status").allowed is False
        assert d.explain("", "/v1/status").allowed is False

    def test_missing_or_unreadable_policy(self) -> None:
        d = Directory(
            identities={data.APP: "gone", data.MINIO: "secret"}, policies={"secret": None}
        )
        assert "does not exist" in d.explain(data.APP, "/v1/status").reason
        assert d.explain(data.MINIO, "/v1/status").allowed is None

    def test_matrix(self) -> None:
        matrix = policy_matrix(data.DIRECTORY, "minio-default")
        assert [r.label for r in matrix] == ["root", "backup", "minio", "my-app"]
        minio = matrix[2]
        allowed = {op.label for op, v in zip(OPERATIONS, minio.cells, strict=True) if v.allowed}
        assert allowed == {"create", "generate", "decrypt"}
        assert all(v.allowed for v in matrix[0].cells)
        root_minio = policy_matrix(data.DIRECTORY, "minio-root")[2]
        assert root_minio.cells[0].rule == "/v1/key/create/minio-root"


class TestMetrics:
    def test_quantiles_say_only_what_the_buckets_know(self) -> None:
        sample = parse_metrics(data.METRICS, at=0.0)
        assert sample.requests == 1233
        p50 = quantile_bucket(0.5, sample.buckets)
        # 1,100 of 1,233 requests took < 10 ms: p50 is "< 10 ms", not an invented 5 ms.
        assert p50 is not None and p50.describe() == "< 10 ms"
        p95 = quantile_bucket(0.95, sample.buckets)
        assert p95 is not None and p95.describe() == "10 ms - 50 ms"
        top = quantile_bucket(0.999, sample.buckets)
        assert top is not None and top.describe() == "> 100 ms"
        assert quantile_bucket(0.5, ()) is None

    def test_history_rates_recent_buckets_and_mean(self) -> None:
        history = MetricsHistory()
        history.add(parse_metrics(data.METRICS, at=0.0))
        assert history.mean_latency() == pytest.approx(4.1 / 1233)  # all-time, one scrape
        later = data.METRICS.replace("1200\n", "1400\n", 1).replace('"+Inf"} 1233', '"+Inf"} 1433')
        later = (
            later.replace('le="0.05"} 1200', 'le="0.05"} 1400')
            .replace('le="0.1"} 1225', 'le="0.1"} 1425')
            .replace("_count 1233", "_count 1433")
            .replace("_sum 4.1", "_sum 8.1")
        )
        history.add(parse_metrics(later, at=2.0))
        assert history.rates[-1] == 100.0
        p50 = history.percentile_buckets()[0.5]
        # the recent 200 requests all took 10-50 ms
        assert p50 is not None and p50.describe() == "10 ms - 50 ms"
        assert history.mean_latency() == pytest.approx(4.0 / 200)

    def test_audit_percentiles_are_exact(self) -> None:
        latencies = [300_000 + 1_000 * i for i in range(100)]  # 0.300 ms ... 0.399 ms
        assert latency_percentiles(latencies, (0.5, 0.99, 1.0)) == {
            0.5: 349_000,
            0.99: 398_000,
            1.0: 399_000,
        }
        assert latency_percentiles([]) == {}


def test_backoff_and_stream_state() -> None:
    assert [backoff_s(n) for n in (1, 2, 3, 10)] == [1, 2, 4, 30]
    # A denied trace is asked for again less and less often (each try is a 403 in the log).
    assert [denied_backoff_s(n) for n in (1, 2, 3, 10)] == [30, 60, 120, 900]
    assert StreamState("reconnecting", retry_at=10.0).describe(now=6.2) == "retry in 4s"
    assert StreamState("live").describe() == "live"


def test_rate_bars_start_at_zero() -> None:
    assert bar_rows([], 4, 2) == ["    ", "    "]  # no data: nothing drawn, not a full block
    assert bar_rows([7.0], 3, 1) == ["  █"]  # one sample: the newest column, on the right
    # 18 and 19 req/s are nearly the same height, not "nothing" and "everything"
    assert bar_rows([18.0, 19.0], 2, 2)[1] == "██"
    assert bar_rows([0.0, 0.01, 10.0], 3, 1) == [" ▁█"]  # any traffic is visible


def test_top_talkers_and_top_denied() -> None:
    busiest, denied = top_talkers(rows(), n=2)
    assert busiest == [("my-app", 8), ("minio", 6)]
    assert denied == [("my-app", 2), ("minio", 2)]
    assert top_talkers([]) == ([], [])


def test_own_requests_are_claimed_once_and_expire() -> None:
    now = [0.0]
    own = OwnRequests(ttl_s=30.0, clock=lambda: now[0])
    own.sent("/v1/status")
    own.sent("/v1/status")
    assert own.claim("/v1/status") and own.claim("/v1/status")
    assert not own.claim("/v1/status")  # a third call is somebody else's
    own.sent("/v1/metrics")
    now[0] = 31.0
    assert not own.claim("/v1/metrics")  # its event never came: it expired


def test_key_material() -> None:
    assert parse_key_material("00" * 32) == bytes(32)
    assert parse_key_material("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=") == bytes(32)
    with pytest.raises(ValueError, match="32 bytes"):
        parse_key_material("AAAA")
    with pytest.raises(ValueError):
        parse_key_material("not key material!")
