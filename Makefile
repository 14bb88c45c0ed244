# Two commands on a fresh machine with Python 3.11+ and make: `make run`, `make test`.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test install lock clean

# Reinstalls only when the lock changes: a second run installs nothing.
$(STAMP): requirements.lock
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/python -m setup.launcher

test: $(STAMP)
	$(VENV)/bin/python -m ruff check .
	$(VENV)/bin/python -m ruff format --check .
	$(VENV)/bin/python -m tests.prepare
	$(VENV)/bin/python -m pytest

# Re-pin after editing pyproject.toml (needs uv: `pip install uv`).
lock:
	uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .pytest-tmp
