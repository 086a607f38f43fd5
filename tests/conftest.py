"""Safety net: tests may only run where no packet can reach a real network.

`make test` runs pytest under `unshare -n` (a private namespace with only
loopback); lab tests build their own namespaces from there. Anywhere else, stop.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent import platform

# Every JSON report the agent prints or stores during the tests (in this process, its
# subprocesses and the lab's agent runs, which inherit the environment) is checked
# against the published schema first; a violation fails the command (exit 70).
os.environ["PHONEDIAG_CHECK_SCHEMA"] = "1"
# A run whose configuration names no store (no [store] path) keeps its history here, not in
# the machine's /var/lib/phonediag or a home folder; removed when the session ends.
_STORE_DIR = tempfile.mkdtemp(prefix="phonediag-test-store-")
os.environ["PHONEDIAG_STORE"] = str(Path(_STORE_DIR) / "phonediag.sqlite")


def pytest_configure(config: pytest.Config) -> None:
    """The secrets sweep (tests/secrets_sweep.py, DESIGN §7): it reads the store folder above
    at the end of a session with labs, before it goes (its hook runs first)."""
    from secrets_sweep import PLUGIN_NAME, SweepPlugin

    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(SweepPlugin(Path(_STORE_DIR)), PLUGIN_NAME)


@pytest.hookimpl(trylast=True)  # after the secrets sweep has read the store folder
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_STORE_DIR, ignore_errors=True)


def _outside_interfaces() -> list[str]:
    return sorted({a.interface for a in platform.ipv4_addresses() if not a.ip.startswith("127.")})


def pytest_sessionstart(session: pytest.Session) -> None:
    found = _outside_interfaces()
    if found:
        pytest.exit(
            "refusing to run: this network namespace has real interfaces "
            f"({', '.join(found)}). Run the tests with `make test` (inside `unshare -n`).",
            returncode=4,
        )


# ------------------------------------------------------------------ the run history
REPORTS = Path(__file__).parent / "unit" / "data" / "reports"


def _report_doc(name: str) -> dict[str, Any]:
    """A real report the agent printed in the lab (tests/unit/data/reports/NAME.json):
    ``diagnose-sip-alg`` (3 phones, the SIP ALG finding) or ``discover``."""
    return json.loads((REPORTS / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture
def report_doc() -> Callable[[str], dict[str, Any]]:
    """Loads a real report by name (a fresh copy each time): see :func:`_report_doc`."""
    return _report_doc


@pytest.fixture
def history_config(tmp_path: Path) -> Path:
    """A configuration whose local store (history and audit log) lives in ``tmp_path``."""
    path = tmp_path / "phonediag.toml"
    path.write_text(f'[store]\npath = "{tmp_path / "store" / "phonediag.sqlite"}"\n')
    return path


@pytest.fixture
def seeded_history(history_config: Path) -> Path:
    """``history_config`` with three runs stored: 1 a discovery, 2 the SIP ALG diagnosis,
    3 the same office after the ALG was turned off, phone .11 put in DND and upgraded."""
    from agent import config, history, store

    cfg = config.load(history_config)
    before = _report_doc("diagnose-sip-alg")
    after = copy.deepcopy(before)
    after["findings"] = [
        {
            "rule": "dnd-on",
            "device": "10.66.0.11",
            "severity": "warning",
            "title": "Le téléphone est en mode Ne pas déranger",
            "explanation": "...",
            "remedies": [],
            "guide": "no-ring",
            "matched": {"phone.dnd": True},
            "line": "0033972000001",
        }
    ]
    after["devices"][0]["firmware"] = "66.86.0.20"
    started = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    with history.History(store.path_for(cfg.store_path)) as h:
        h.add(json.dumps(_report_doc("discover")), "discover", "fr", 0, started, {})
        h.add(json.dumps(before), "diagnose", "fr", 1, started + timedelta(minutes=5), {})
        h.add(json.dumps(after), "diagnose", "fr", 1, started + timedelta(minutes=9), {})
    return history_config
