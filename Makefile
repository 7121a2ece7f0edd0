# Every target sets up what it needs itself; `make test` and `make demo` work on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
TCCLI_VENV ?= .venv-tccli
NODE_SDK ?= .node-sdk

.PHONY: check test demo demo-cloud lint venv tccli node-sdk chromium bench-emulator clean package

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml dev/pyproject.toml constraints.txt
	@test -x $(PY) || $$(scripts/find-python) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]' -e ./dev
	@touch $@

# tccli pulls the all-products SDK (~400 MB, same import path as the per-product packages we ship), so it lives in
# its own venv: the main venv tests exactly the SDK packages the functions ship with.
tccli: $(TCCLI_VENV)/.installed

$(TCCLI_VENV)/.installed:
	@test -x $(TCCLI_VENV)/bin/python || $$(scripts/find-python) -m venv $(TCCLI_VENV)
	$(TCCLI_VENV)/bin/python -m pip install -q tccli
	@touch $@

# The official Node.js SDK (tencentcloud-sdk-nodejs-cvm), pinned by tests/emulator/node/package-lock.json, for the
# test that drives the emulator with it (tests/emulator/test_node_sdk.py). Needs node and npm.
node-sdk: $(NODE_SDK)/.installed

$(NODE_SDK)/.installed: tests/emulator/node/package.json tests/emulator/node/package-lock.json
	@mkdir -p $(NODE_SDK)
	cp tests/emulator/node/package.json tests/emulator/node/package-lock.json $(NODE_SDK)/
	cd $(NODE_SDK) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Debian's chromium, for the status page's browser test (tests/integration/test_status_page.py). The
# machine's apt lists may be stale: `apt-get update` runs only when the first install fails.
chromium: /usr/bin/chromium

/usr/bin/chromium:
	apt-get install -y -q chromium >/dev/null || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)

# The fast loop while changing code: lint, import contracts, type check and the tests not marked slow (no tccli
# venv; about a minute).
check: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo
	$(VENV)/bin/mypy
	$(PY) -m pytest -m "not slow" -q $(PYTEST_ARGS)

# Everything, slow tests included (what CI runs: .ci/run).
test: venv tccli node-sdk chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo
	$(VENV)/bin/mypy
	IMAGESYNC_TCCLI=$(CURDIR)/$(TCCLI_VENV)/bin/tccli IMAGESYNC_NODE_SDK=$(CURDIR)/$(NODE_SDK) \
		$(PY) -m pytest $(PYTEST_ARGS)

demo: venv
	$(VENV)/bin/imagesync-dev demo

# The deploy package on the emulated SCF, deployed from serverless.yml, state on the machine's MariaDB (a fresh
# database imagesync_demo_cloud; DEMO_DATABASE_URL=... for another).
demo-cloud: venv package
	$(VENV)/bin/imagesync-dev demo --cloud $(if $(DEMO_DATABASE_URL),--database-url '$(DEMO_DATABASE_URL)')

# ruff, the import contracts of pyproject.toml's [tool.importlinter] (docs/architecture.md, "Layers"), mypy
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo
	$(VENV)/bin/mypy

bench-emulator: venv
	$(PY) scripts/bench_emulator.py

# dist/code.zip + dist/layer.zip for SCF (docs/deploy.md); prints their sizes, fails over SCF's limits.
package: venv
	$(PY) scripts/package.py

clean:
	rm -rf $(VENV) $(TCCLI_VENV) $(NODE_SDK) dist .pytest_cache .mypy_cache
