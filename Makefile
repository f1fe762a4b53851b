# Two commands matter: `make run` (the whole exchange, locally) and `make test` (the test suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# Debian's chromium: the browser tests drive it through playwright (never `playwright install`).
CHROMIUM := /usr/bin/chromium

.PHONY: deps run test test-fast lint format contracts clean backup restore-drill chaos chaos-short

deps: $(PY_STAMP) $(NODE_STAMP) $(CHROMIUM)

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

clean:
	rm -rf $(VENV) node_modules var

# The whole stack under load while processes die and the chain misbehaves; then the invariants
# (bench/chaos.py). SEED replays a schedule of faults.
SEED ?= 1
chaos: deps
	@$(PY) bench/chaos.py --seed $(SEED) --minutes 10

chaos-short: deps
	@$(PY) bench/chaos.py --seed $(SEED) --minutes 2
