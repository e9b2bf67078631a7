"""Prometheus metrics with the KES v0.17 families, in their exact wire form.

KES clients (and upstream's integration test) read ``/v1/metrics`` as the Go
Prometheus text format and look for families such as
``kes_http_request_success`` of type counter holding exactly one unlabelled
sample of that very name. prometheus-client keeps the values for us, but its
own text writer renames counters to ``*_total`` and adds ``*_created``
samples, which those clients would not find. So we keep prometheus-client's
metric objects in a dedicated registry (no labelled default collectors) and
render them with ``render()`` below, which writes Go's names.
"""

from __future__ import annotations

import math
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 3.0, 5.0, 10.0)
STORE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)


def _go_float(value: float) -> str:
    """A sample value as Go's text format writes it (``+Inf``, ``NaN``, ``3``, ``0.25``)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class Metrics:
    """Every metric the server exposes; one instance per server process."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.started = time.monotonic()
        self.request_success = Counter(
            "kes_http_request_success", "Number of requests answered with status 200.", registry=r
        )
        self.request_error = Counter(
            "kes_http_request_error", "Number of requests answered with a 4xx status.", registry=r
        )
        self.request_failure = Counter(
            "kes_http_request_failure", "Number of requests answered with a 5xx status.", registry=r
        )
        self.request_active = Gauge(
            "kes_http_request_active", "Number of requests in flight.", registry=r
        )
        self.response_time = Histogram(
            "kes_http_response_time",
            "Response latency in seconds.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.log_error_events = Counter(
            "kes_log_error_events", "Number of error log events.", registry=r
        )
        self.log_audit_events = Counter(
            "kes_log_audit_events", "Number of audit log events.", registry=r
        )
        self.up_time = Gauge("kes_system_up_time", "Seconds since the server started.", registry=r)
        self.up_time.set_function(lambda: time.monotonic() - self.started)
        # pykes additions, all unlabelled so every family holds one metric.
        self.store_latency = Histogram(
            "kes_keystore_latency",
            "Key store operation latency in seconds.",
            buckets=STORE_BUCKETS,
            registry=r,
        )
        self.store_errors = Counter(
            "kes_keystore_errors", "Number of failed key store operations.", registry=r
        )
        self.cache_hits = Counter("kes_cache_hits", "Key cache hits.", registry=r)
        self.cache_misses = Counter("kes_cache_misses", "Key cache misses.", registry=r)
        self.trace_subscribers = Gauge(
            "kes_log_trace_subscribers", "Live audit and error trace subscribers.", registry=r
        )
        self.trace_dropped = Counter(
            "kes_log_trace_dropped", "Events dropped for slow trace subscribers.", registry=r
        )

    def observe(self, status: int, seconds: float) -> None:
        """Count one finished request (not /v1/metrics itself)."""
        if status == 200:
            self.request_success.inc()
        elif 400 <= status < 500:
            self.request_error.inc()
        elif status >= 500:
            self.request_failure.inc()
        self.response_time.observe(seconds)

    def cache_event(self, hit: bool) -> None:
        (self.cache_hits if hit else self.cache_misses).inc()

    def render(self) -> bytes:
        """The text exposition format (0.0.4) with Go-compatible family names."""
        out: list[str] = []
        for family in self.registry.collect():
            name, kind = family.name, family.type
            out.append(f"# HELP {name} {family.documentation}\n")
            out.append(f"# TYPE {name} {kind}\n")
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                sample_name = name if kind == "counter" else sample.name
                labels = ""
                if sample.labels:
                    inner = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                    labels = "{" + inner + "}"
                out.append(f"{sample_name}{labels} {_go_float(sample.value)}\n")
        return "".join(out).encode()
