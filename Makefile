# dbt — a binary-translating virtual machine monitor for x86.
#
#   make setup      virtual environment, every dependency (Debian packages too), the guests
#   make test       the test suite (what CI runs after make setup)
#   make guests     build the shipped guest kernels from source
#   make difftest   the long differential campaign against Unicorn
#   make bench      the benchmark harness (prints measured ratios)
#   make lint       ruff and mypy

PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PY      := $(BIN)/python
# Debian packages the build and the tests need.
DEBIAN_PACKAGES := gcc binutils make qemu-system-x86
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup packages venv guests test difftest bench lint clean

setup: packages venv guests

packages:
	@missing=""; \
	for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,tools]'
	@touch $@

guests:
	$(MAKE) -C guests

test: venv
	$(BIN)/pytest -q -n 2 tests

difftest: venv
	$(BIN)/pytest -q -m slow tests/difftest --difftest-cases=400000

bench: venv guests
	$(PY) -m dbt.bench

lint: venv
	$(BIN)/ruff check dbt tests
	$(BIN)/mypy dbt

clean:
	$(MAKE) -C guests clean
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
