"""Fault tests: concurrency, crashes, shutdown and key store failures (issue 8)."""
