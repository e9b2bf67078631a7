# pykes: every target creates what it needs (venv, Python packages, apt packages).
# ARGS is passed through to the tool, e.g. `make test ARGS="-k policy"`.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STATE  ?= .kes-dev
ARGS   ?=

.PHONY: help install install-test run test test-fast check lint fmt pytest apt-test bench compat clean

help:
	@echo "make run      set up and start a dev kes-server (then attach kes / kes-tui)"
	@echo "make test     set up and run lint, type checks and the whole test suite"
	@echo "make test-fast  unit tests only: no kes-server, nginx, etcd, OpenBao or moto processes"
	@echo "make install  create $(VENV) and install pykes (editable)"
	@echo "make check    ruff, mypy --strict, import contracts"
	@echo "make fmt      format the code"
	@echo "make bench    throughput/latency benchmarks; writes docs/performance.md (< 10 min)"
	@echo "make compat   upstream KES v0.17.6 tests, CLI and a request diff against kes-server"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(BIN)/kes-server --dev --state-dir $(STATE) $(ARGS)

apt-test:
	@scripts/ensure-apt.sh jq:jq curl:curl nginx:nginx etcd:etcd-server etcdctl:etcd-client \
		systemd-analyze:systemd gpg:gnupg

check: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

lint: check

fmt: install-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

pytest: install-test apt-test
	$(BIN)/pytest $(ARGS)

test: check pytest

# The unit lane: tests marked e2e (a kes-server subprocess), etcd, nginx, vault or aws
# are left out, and a test that starts a kes-server without the mark fails instead.
test-fast: install-test
	KES_UNIT_ONLY=1 $(BIN)/pytest -m "not e2e and not etcd and not nginx and not vault and not aws" $(ARGS)

.PHONY: cluster
cluster: install-test apt-test
	$(BIN)/python scripts/cluster.py $(ARGS)

# Benchmarks (bench/); the nginx/etcd rows use tests/support's launchers (test extra, apt-test).
bench: install-test apt-test
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python -m bench.run $(ARGS)

# By hand, not in CI: needs the real KES v0.17.6 built (docs/compatibility.md).
compat: install-test
	$(BIN)/python scripts/upstream_compat.py $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

.PHONY: screenshots snapshots

# SVG + PNG of every kes-tui screen against a dev server with a demo workload.
screenshots: install-test
	@scripts/ensure-apt.sh fc-list:fontconfig dpkg:libcairo2 dpkg:fonts-dejavu-core
	$(BIN)/python scripts/screenshots.py $(ARGS)

# Re-record the kes-tui SVG snapshots after an intended visual change.
snapshots: install-test
	$(BIN)/pytest tests/kes_tui/test_snapshots.py --snapshot-update $(ARGS)
