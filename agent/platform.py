"""The few operating-system facts the agent needs, behind one small interface.

Everything here works on Linux, macOS and Windows; where a fact cannot be read on
a platform the function returns an empty result rather than failing.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Address:
    interface: str
    ip: str
    prefixlen: int
    mac: str | None


def _prefixlen(netmask: str) -> int:
    return sum(bin(int(o)).count("1") for o in netmask.split("."))


def ipv4_addresses() -> list[Address]:
    """IPv4 addresses of the host's interfaces that are up (loopback included)."""
    import netifaces  # netifaces-plus

    out = []
    for name in netifaces.interfaces():
        addrs = netifaces.ifaddresses(name)
        link = addrs.get(netifaces.AF_LINK, [{}])
        mac = (link[0].get("addr") or None) if link else None
        for a in addrs.get(netifaces.AF_INET, []):
            if "addr" in a and "netmask" in a:
                out.append(Address(name, a["addr"], _prefixlen(a["netmask"]), mac))
    return out


def default_gateway() -> str | None:
    import netifaces

    gw = netifaces.gateways().get("default", {}).get(netifaces.AF_INET)
    return gw[0] if gw else None


_MAC = re.compile(r"([0-9a-fA-F]{1,2}[:-]){5}[0-9a-fA-F]{1,2}")
_IP = re.compile(r"\b(\d{1,3}(?:\.\d{1,3}){3})\b")


def neighbours(timeout: float = 2.0) -> dict[str, str]:
    """The OS neighbour (ARP) table: IPv4 -> MAC, lower-case, colon-separated."""
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/net/arp", encoding="ascii") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            return {}
        table = {}
        for line in lines:
            cols = line.split()
            if len(cols) >= 4 and cols[2] != "0x0":
                with contextlib.suppress(ValueError):
                    table[cols[0]] = normalise_mac(cols[3])
        return {ip: mac for ip, mac in table.items() if mac != "00:00:00:00:00:00"}
    try:  # Windows "arp -a", macOS/BSD "arp -an"
        args = ["arp", "-a"] if sys.platform == "win32" else ["arp", "-an"]
        text = subprocess.run(args, capture_output=True, text=True, timeout=timeout).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    table = {}
    for line in text.splitlines():
        ip, mac = _IP.search(line), _MAC.search(line)
        if ip and mac:
            with contextlib.suppress(ValueError):
                table[ip.group(1)] = normalise_mac(mac.group(0))
    return table


def normalise_mac(text: str) -> str:
    """``0:e:8:A1:b2:C3`` / ``00-0E-08-..`` / ``000e08a1b2c3`` -> ``00:0e:08:a1:b2:c3``."""
    t = text.strip().lower().replace("-", ":").replace(".", "")
    if ":" not in t and len(t) == 12:
        parts = [t[i : i + 2] for i in range(0, 12, 2)]
    else:
        parts = [p.zfill(2) for p in t.split(":")]
    if len(parts) != 6 or not all(re.fullmatch(r"[0-9a-f]{2}", p) for p in parts):
        raise ValueError(f"not a MAC address: {text!r}")
    return ":".join(parts)
