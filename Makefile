# TripGuard: `make run` starts the embedded default; `make test` runs the whole suite on SQLite and PostgreSQL.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(PYTHON) -m uv
PYTEST_ARGS ?=
export TRIPGUARD_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: install run test test-sqlite test-postgres fuzz lint chromium catalogs gallery bench clean proto mutation

# The virtualenv is rebuilt from the lock whenever the lock changes. Byte code is compiled at install (the
# libraries) and at every make (TripGuard's own, only what changed): a process start then reads it instead of
# compiling every module again, which it does where PYTHONDONTWRITEBYTECODE is set (0.45 against 1.1 CPU-seconds
# for `tripguard --help`; every worker, CLI command and cluster restart starts so).
$(BIN)/.installed: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install -q uv || $(PYTHON) -m pip install -q --user uv
	$(UV) sync --frozen --quiet --compile-bytecode
	@touch $@

install: $(BIN)/.installed
	@$(BIN)/python -m compileall -q -j 0 tripguard bench >/dev/null

# `make run PORT=9000 HOST=0.0.0.0` (or PORT=9000 make run): where it listens; links it prints and sends follow.
PORT ?= 8000
HOST ?= 127.0.0.1
run: install
	$(BIN)/tripguard db upgrade
	TRIPGUARD_BASE_URL=$${TRIPGUARD_BASE_URL:-http://$(HOST):$(PORT)} $(BIN)/tripguard demo bootstrap
	TRIPGUARD_BASE_URL=$${TRIPGUARD_BASE_URL:-http://$(HOST):$(PORT)} TRIPGUARD_DEMO_CITY=$${TRIPGUARD_DEMO_CITY:-true} \
	  $(BIN)/tripguard serve --host $(HOST) --port $(PORT)

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser), the
# Noto CJK fonts so Chinese pages (and the console gallery's screenshots) render with real glyphs, and
# WenQuanYi Micro Hei, the TrueType CJK font the privacy labels and reports embed in their PDFs, and
# poppler-utils (pdftoppm), with which the report tests look at a PDF as a reader would.
chromium:
	@if [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/fonts/opentype/noto ] || [ ! -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || [ ! -x /usr/bin/pdftoppm ]; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium fonts-noto-cjk fonts-wqy-microhei poppler-utils >/dev/null; \
	fi

# ruff over the package, its tests, the benchmarks and the scripts, mypy --strict over the same but the
# tests (pyproject.toml sets both) and the layers (import-linter's contracts in .importlinter): any finding
# or broken contract fails `make test`. `.pre-commit-config.yaml` runs the same checks before each commit.
lint: install
	$(BIN)/ruff check tripguard tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: install lint chromium
	TRIPGUARD_TEST_BACKEND=sqlite $(BIN)/pytest -n 2 -q -p no:cacheprovider $(PYTEST_ARGS)
	TRIPGUARD_TEST_BACKEND=postgres $(BIN)/pytest -n 2 -q -p no:cacheprovider $(PYTEST_ARGS)

test-sqlite: install chromium
	TRIPGUARD_TEST_BACKEND=sqlite $(BIN)/pytest -n 2 -q -p no:cacheprovider $(PYTEST_ARGS)

test-postgres: install chromium
	TRIPGUARD_TEST_BACKEND=postgres $(BIN)/pytest -n 2 -q -p no:cacheprovider $(PYTEST_ARGS)

# The wide random API fuzz: fresh draws (not the fixed ones of `make test`), FUZZ_EXAMPLES per operation and
# principal, on both backends. A finding: fix it, then add the request to PAST_FINDINGS in
# tests/test_openapi_fuzz.py (docs/operations.md, "Fuzzing").
FUZZ_EXAMPLES ?= 200
fuzz: install
	TRIPGUARD_FUZZ=1 TRIPGUARD_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) TRIPGUARD_TEST_BACKEND=sqlite $(BIN)/pytest -n 2 -q -p no:cacheprovider tests/test_openapi_fuzz.py tests/test_hostile_sweep.py $(PYTEST_ARGS)
	TRIPGUARD_FUZZ=1 TRIPGUARD_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) TRIPGUARD_TEST_BACKEND=postgres $(BIN)/pytest -n 2 -q -p no:cacheprovider tests/test_openapi_fuzz.py tests/test_hostile_sweep.py $(PYTEST_ARGS)

# Extract messages and refresh the zh_CN / en catalogs (fails on an untranslated Chinese string).
catalogs: install
	$(BIN)/python scripts/update_catalogs.py

# The regulator schema's generated Python (otipc_pb2.py and its .pyi stub), from tripguard/regulator/proto/otipc.proto.
proto: install
	$(BIN)/python scripts/gen_proto.py

# Screenshots of every console page in zh and en, and the gallery table in docs/console.md.
gallery: install chromium
	$(BIN)/python scripts/console_gallery.py

clean:
	rm -rf $(VENV) var .hypothesis mutants

# Mutation testing of the security-critical modules ([tool.mutmut] in pyproject.toml lists them and their
# tests; docs/benchmarks.md, "Mutation testing"). SQLite only; each mutant runs the tests that execute its
# function. MUTANTS narrows it to names or globs (`make mutation MUTANTS='tripguard.vault.keybackup*'`);
# results stay in mutants/ and a rerun goes on where the last stopped. Hours on 2 cores: run it niced.
MUTANTS ?=
mutation: install
	TRIPGUARD_TEST_BACKEND=sqlite nice $(BIN)/mutmut run --max-children 1 $(MUTANTS)
	$(BIN)/mutmut results

# movingpandas and trackintel (the side-by-side stop detection) live in the `bench` group only.
bench: install
	$(UV) sync --frozen --quiet --group bench
	$(BIN)/python -m bench.audit
	$(BIN)/python -m bench.vault
	$(BIN)/python -m bench.monitor
	$(BIN)/python -m bench.latency
	$(BIN)/python -m bench.thresholds
	$(BIN)/python -m bench.sos
	$(BIN)/python -m bench.sos --beside-ingest
	$(BIN)/python -m bench.quality
	$(BIN)/python -m bench.replay
	$(BIN)/python -m bench.scale --trips 10000 --seconds 20
	$(BIN)/python -m bench.regulator --backend postgres
	$(BIN)/python -m bench.regulator --backend sqlite
