"""The fleet scenario's one process, seen from the lab: start it, tell when it is ready.

``start(ns, hosts, state_dir)`` writes ``fleet.json`` (the hosts of lab/fleet.py) and runs
``python -m lab.services.fleet_server --config fleet.json`` in the fleet namespace, where every
host already has its own macvlan and address (lab/topology.py). That one process answers for
every host, by its ``methods`` (see fleet_server.py). Once everything is bound and every mDNS
service registered, it logs ``READY``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab import procs
from lab.state import Proc

REPO = Path(__file__).resolve().parents[2]
READY_MARK = "READY"
COMMUNITY = "public"  # as lab/services/snmpd.py


def config_path(state_dir: Path) -> Path:
    """Where ``start`` writes the fleet's hosts."""
    return state_dir / "fleet.json"


def log_path(state_dir: Path) -> Path:
    """The fleet process's log."""
    return state_dir / "logs" / "fleet.log"


def start(ns: str, hosts: Sequence[dict[str, Any]], state_dir: Path) -> Proc:
    """Write the config and start the fleet process in namespace ``ns``."""
    config = config_path(state_dir)
    config.write_text(json.dumps({"hosts": list(hosts), "community": COMMUNITY}, indent=1))
    argv = [sys.executable, "-m", "lab.services.fleet_server", "--config", str(config)]
    return procs.spawn(
        "fleet", "fleet", ns, argv, log_path(state_dir), env={"PYTHONPATH": str(REPO)}
    )


def ready(proc: Proc) -> bool:
    """True once the fleet process logged READY."""
    try:
        return READY_MARK in Path(proc.log).read_text(errors="replace")
    except FileNotFoundError:
        return False
