# escrutinio — two commands: `make demo` (set up + main job) and `make test` (set up + tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DB ?= out/escrutinio.duckdb

.PHONY: demo test test-fast lint bench setup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,live]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/escrutinio --db $(DB) ingest peru-2021-runoff peru-2021-first-round
	$(BIN)/escrutinio --db $(DB) status --contest pe-2021-presidencial-2v --level department
	$(BIN)/escrutinio --db $(DB) history --contest pe-2021-presidencial-2v
	$(BIN)/escrutinio --db $(DB) project --contest pe-2021-presidencial-2v \
	  -s hist_actas_electorales_20210608T1121_cadd76f.csv.gz
	@echo "Replay of count night 2021 at http://127.0.0.1:8000/ (Ctrl-C to stop)"
	$(BIN)/escrutinio --db out/replay.duckdb serve --replay \
	  --bundle peru-2021-runoff --bundle peru-2021-first-round

test: $(STAMP)
	scripts/system-deps.sh
	$(BIN)/ruff check src tests benchmarks validation scripts
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# the analyses, sources and the store on DuckDB: no browser, no server, no PostgreSQL
test-fast: $(STAMP)
	$(BIN)/ruff check src tests benchmarks validation scripts
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .mypy_cache
