# Two entry points for a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: run test quick bench resilience lint typecheck schemas clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

# The official AsyncAPI parser, pinned in package-lock.json, to validate schemas/asyncapi.json.
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $(NODE_STAMP)

run: $(STAMP)  ## embedded broker + worker + the scripted demo
	$(BIN)/consent-streams demo

test: $(STAMP) $(NODE_STAMP)  ## lint, types, contract drift and validity, then the whole suite
	$(BIN)/ruff check streams schemas tests bench
	$(BIN)/mypy
	$(BIN)/python -m schemas.generate --check
	node schemas/validate-asyncapi.mjs schemas/asyncapi.json
	$(BIN)/python -m streams.web.openapi --check
	$(BIN)/pytest -q --durations=15

# The inner loop, under a minute: no broker, no worker, a few examples per property test.
quick: $(STAMP)  ## ruff, mypy and the tests that need no broker
	$(BIN)/ruff check streams schemas tests bench
	$(BIN)/mypy
	CONSENT_QUICK=1 $(BIN)/pytest -q -m "not integration" --durations=5

bench: $(STAMP)  ## throughput, latency, recovery and memory, side by side
	$(BIN)/consent-streams bench $(BENCH_ARGS)

resilience: $(STAMP)  ## the full resilience suite (make test runs the short version)
	CONSENT_RESILIENCE=full $(BIN)/pytest tests/resilience -q -s

lint: $(STAMP)
	$(BIN)/ruff check streams schemas tests bench
	$(BIN)/ruff format --check streams schemas tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

schemas: $(STAMP)  ## regenerate JSON Schema and AsyncAPI from the models
	$(BIN)/python -m schemas.generate

clean:
	rm -rf $(VENV) node_modules .consent-data .pytest_cache .mypy_cache .ruff_cache
