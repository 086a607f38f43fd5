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


def raw_socket_rights() -> bool:
    """Whether this process may open raw/link-layer sockets (root, or CAP_NET_RAW on Linux).

    A False here means the active ARP sweep is skipped, not that anything failed."""
    import os

    if sys.platform == "win32":
        with contextlib.suppress(Exception):
            import ctypes

            return bool(ctypes.windll.shell32.IsUserAnAdmin())  # type: ignore[attr-defined]
        return False
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return True
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << 13))  # CAP_NET_RAW
    return False


SO_SNDBUFFORCE = 32  # Linux: ignores net.core.wmem_max, needs CAP_NET_ADMIN


def set_send_buffer(sock, size: int) -> int:
    """Raise ``sock``'s send buffer towards ``size`` bytes; return what the OS granted.

    Linux: SO_SNDBUFFORCE when allowed (root), else SO_SNDBUF, which the kernel caps at
    net.core.wmem_max. Elsewhere SO_SNDBUF, halving the request while the OS refuses it
    (macOS answers ENOBUFS above kern.ipc.maxsockbuf). Never raises."""
    import socket

    def granted() -> int:
        try:
            return int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
        except OSError:
            return 0

    before = granted()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, size)
            return granted()
    want = size
    while want > before:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, want)
            break
        except OSError:
            want //= 2
    return max(before, granted())


def open_files_budget(reserve: int = 64) -> int:
    """How many more file descriptors this process may open (raising the soft limit to
    the hard one, at most 8192, where the OS allows it). Windows: 512."""
    try:
        import resource
    except ImportError:
        return 512
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if soft != resource.RLIM_INFINITY and soft < want:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
    if soft == resource.RLIM_INFINITY:
        soft = 8192
    return max(16, soft - reserve)
