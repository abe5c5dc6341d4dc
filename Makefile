# Everything bootstraps from python3 + make on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-hours bench install clean lint

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/qbo-collector demo

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# the tests that depend most on the time of day, at three awkward moments of the wall clock (README)
HOURS_TESTS := tests/integration/test_dispatch_*.py tests/integration/test_provider_webhooks.py tests/integration/test_demo.py
test-hours: $(STAMP)
	@for at in 2026-12-06T21:30:00+00:00 2026-12-08T05:30:00+00:00 2026-12-09T12:30:00+00:00; do \
	  echo "== wall clock $$at"; QBO_COLLECTOR_TEST_WALL_CLOCK=$$at $(BIN)/python -m pytest -q $(HOURS_TESTS) || exit 1; done

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done
	@echo "== bench/dispatch.py --attach-pdf"; $(BIN)/python bench/dispatch.py --attach-pdf
	@echo "== bench/dispatch.py --families"; $(BIN)/python bench/dispatch.py --families

clean:
	rm -rf $(VENV) var .pytest_cache
