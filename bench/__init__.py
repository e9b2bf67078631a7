"""Throughput and latency benchmarks for kes-server (``make bench``; see bench/README.md).

Not tests: nothing here asserts. ``bench.run`` measures, ``bench.report`` turns the
measurements into docs/performance.md.
"""
