"""The provider's STUN server: coturn in STUN-only mode, two addresses for RFC 5780."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lab import procs
from lab.state import Proc

PORT = 3478
ALT_PORT = 3479


def start(ns: str, ips: Sequence[str], state_dir: Path) -> Proc:
    """Start turnserver in the foreground (``-n``: no config file), its userdb in the state dir."""
    argv = [
        "turnserver", "-n", "--stun-only",
        *(f"--listening-ip={ip}" for ip in ips),
        f"--listening-port={PORT}", f"--alt-listening-port={ALT_PORT}",
        "--no-cli", "--no-tls", "--no-dtls", "--no-tcp-relay",
        "--log-file=stdout", "--simple-log",
        f"--userdb={state_dir / 'turndb'}",
        f"--pidfile={state_dir / 'turnserver.pid'}",
    ]  # fmt: skip
    return procs.spawn("turnserver", "prov", ns, argv, state_dir / "logs" / "turnserver.log")
