# The two commands: `make serve` (study the course) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install serve test system-deps models figures bench clean

$(STAMP): pyproject.toml setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# the toolkit asks for torch>=2.3; constraints.txt keeps the course on the CPU build
	$(BIN)/pip install -q -c constraints.txt -e '.[course,test,bench,figures]'
	# the peers torchcfm and rectified-flow-pytorch (bench/flowmaps.py loads its MeanFlow module
	# alone) require torchvision and more, which would replace the CPU build of torch: install them alone
	$(BIN)/pip install -q --no-deps torchcfm rectified-flow-pytorch==0.14.0
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	@echo "Understand Flow Matching: open http://$(HOST):$(PORT)/ in your browser"
	$(BIN)/straightline serve --host $(HOST) --port $(PORT)

# System packages the tests use: Chromium (browser tests), bubblewrap (grader sandbox),
# PostgreSQL (the progress store's second backend), nginx (the documented reverse-proxy set-up,
# tests/web/test_web_security_proxy.py), and a C compiler with Python's headers for the
# exact-OT solver (setup.py). Installed only when missing.
system-deps:
	@missing=""; \
	command -v cc >/dev/null 2>&1 || missing="$$missing gcc"; \
	[ -f "$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ] || missing="$$missing python3-dev"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v bwrap >/dev/null 2>&1 || missing="$$missing bubblewrap"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing="$$missing nginx"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

test: system-deps $(STAMP)
	$(BIN)/python scripts/with_postgres.py $(BIN)/python -m pytest -q

models: $(STAMP)
	$(BIN)/straightline build-models

figures: $(STAMP)
	$(BIN)/straightline build-figures

bench: $(STAMP)
	$(BIN)/python bench/toy_suite.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info src/straightline/*.so .pytest_cache .hypothesis
