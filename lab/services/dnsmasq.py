"""The router's DNS (and DHCP) for the LAN: dnsmasq knowing only the provider's name."""

from __future__ import annotations

from pathlib import Path

from lab import procs
from lab.state import Proc

DHCP_RANGE = ("10.66.0.150", "10.66.0.199")


def start(ns: str, listen: str, records: dict[str, str], state_dir: Path) -> Proc:
    """Start dnsmasq in the foreground on ``listen`` answering ``records`` (name -> IPv4)."""
    argv = [
        "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
        "--no-resolv", "--no-hosts", "--bind-interfaces", f"--listen-address={listen}",
        "--user=root", "--group=root", "--log-facility=-",
        f"--pid-file={state_dir / 'dnsmasq.pid'}",
        f"--dhcp-range={DHCP_RANGE[0]},{DHCP_RANGE[1]},12h",
        f"--dhcp-leasefile={state_dir / 'dnsmasq.leases'}",
        *(f"--address=/{name}/{ip}" for name, ip in records.items()),
    ]  # fmt: skip
    return procs.spawn("dnsmasq", "rtr", ns, argv, state_dir / "logs" / "dnsmasq.log")
