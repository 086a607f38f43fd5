# phonediag — set-up, tests and demo. Both `make test` and `make demo` do all their
# set-up themselves on a fresh Debian 12 machine as root (Debian packages, .venv).
#
# Network safety: everything that sends packets runs inside `unshare -n` (a private
# network namespace holding only loopback); the lab builds its own namespaces from
# there. Nothing can reach the machine's real network, even through a bug.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SANDBOX := unshare -n sh -c 'ip link set lo up && exec "$$@"' sandbox

.PHONY: all setup system venv test unit lint docs demo clean

all: test

setup: system venv

system:
	sh lab/install-deps.sh

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

lint: venv
	$(VENV)/bin/ruff check agent lab tests benchmarks
	$(VENV)/bin/ruff format --check agent lab tests benchmarks

test: setup lint
	$(VENV)/bin/phonediag rules test
	$(SANDBOX) $(PY) -m pytest -q

unit: venv
	$(SANDBOX) $(PY) -m pytest -q tests/unit

docs: venv
	$(PY) -m agent.docs

demo: setup
	$(SANDBOX) sh lab/demo.sh

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
