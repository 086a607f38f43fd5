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

.PHONY: all setup system venv test unit lint docs demo bench bench-deps bench-portal bench-deadline fuzz packages clean

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

test: setup lint packages
	$(VENV)/bin/phonediag rules test
	$(SANDBOX) $(PY) -m pytest -q --durations=25

unit: venv
	$(SANDBOX) $(PY) -m pytest -q tests/unit

# The three artefacts in dist/ (wheel + sdist, the Debian package, the single file), built
# once each by packaging/build.sh and smoke-tested by tests/lab/test_lab_packages.py (skipped
# when dist/ lacks them, as after `make unit`). Rebuilt only when a source changed.
PKG_SOURCES := pyproject.toml README.md docs/install.md \
	$(shell find agent rules packaging -type f ! -path '*/__pycache__/*' 2>/dev/null)

dist/.packages: $(PKG_SOURCES)
	sh packaging/build.sh
	touch $@

packages: dist/.packages

docs: venv
	$(PY) -m agent.docs

demo: setup
	$(SANDBOX) sh lab/demo.sh

# Peers for the benchmarks only (never needed by the tests): nmap, and SIPVicious in its
# own venv so that it cannot change the project's.
bench-deps:
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q nmap >/dev/null
	test -x .venv-bench/bin/sipvicious_svmap || \
		($(PYTHON) -m venv .venv-bench && .venv-bench/bin/pip install --quiet sipvicious)

bench: setup bench-deps
	$(SANDBOX) $(PY) -m benchmarks.discovery

# What an idle `phonediag serve` costs (CPU, memory), connected to the lab's broker.
bench-portal: setup
	$(SANDBOX) $(PY) -m benchmarks.portal_idle

# How closely a whole command keeps --deadline: a LAN where nothing answers and the lab's
# hostile office (docs/reliability.md).
bench-deadline: setup
	$(SANDBOX) $(PY) -m benchmarks.deadline

# The nightly fuzz run: tests/fuzz with over a million generated inputs (about an hour on
# 2 vCPUs, niced); prints the figures' Markdown table for docs/reliability.md. `make test`
# runs the same tests with a fast profile.
fuzz: venv
	$(SANDBOX) nice -n 19 $(PY) -m benchmarks.fuzz --jobs 2

clean:
	rm -rf $(VENV) .venv-bench .venv-build build dist *.egg-info .pytest_cache .ruff_cache
