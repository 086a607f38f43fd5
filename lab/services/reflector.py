"""The provider's reflector: the product's own ``phonediag reflector`` (docs/reflector.md),
run where OVHcloud would host it, beyond the office NAT."""

from __future__ import annotations

import sys
from pathlib import Path

from lab import procs
from lab.state import Proc

NAME = "reflector.ovh.test"
UDP_PORTS = (5060, 5062, 30000)  # SIP, a non-SIP port, one port of OVHcloud's RTP range


def start(ns: str, ip: str, state_dir: Path) -> Proc:
    ports = [a for p in UDP_PORTS for a in ("--udp-port", str(p))]
    argv = [sys.executable, "-m", "agent.cli", "reflector", "--listen", ip, *ports]
    return procs.spawn("reflector", "prov", ns, argv, state_dir / "logs" / "reflector.log")
