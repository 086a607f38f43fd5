"""Low-level helpers for network namespaces: create, delete, run in, open sockets in."""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = Path("/run/netns")
NETNS_ETC_DIR = Path("/etc/netns")


class NetnsError(RuntimeError):
    """A namespace command failed."""


def exec_argv(ns: str, argv: Sequence[str]) -> list[str]:
    """Return the argv that runs ``argv`` inside namespace ``ns``."""
    return ["ip", "netns", "exec", ns, *argv]


def run(argv: Sequence[str], *, stdin: str | None = None, check: bool = True) -> str:
    """Run a short command (never in a lab daemon's place) and return its stdout."""
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def ip(ns: str, *args: str) -> str:
    """Run ``ip -n NS ARGS`` (the namespace is entered before anything is created)."""
    return run(["ip", "-n", ns, *args])


def ip_batch(ns: str, commands: Sequence[str]) -> None:
    """Run several ``ip`` commands inside ``ns`` in one process."""
    run(["ip", "-n", ns, "-batch", "-"], stdin="\n".join(commands) + "\n")


def add(ns: str) -> None:
    """Create namespace ``ns`` and bring its loopback up."""
    run(["ip", "netns", "add", ns])
    ip(ns, "link", "set", "lo", "up")


def exists(ns: str) -> bool:
    """Tell whether namespace ``ns`` exists."""
    return (NETNS_RUN_DIR / ns).exists()


def delete(ns: str) -> None:
    """Delete namespace ``ns`` (if present) and its /etc/netns directory."""
    if exists(ns):
        run(["ip", "netns", "del", ns], check=False)
    shutil.rmtree(NETNS_ETC_DIR / ns, ignore_errors=True)


def write_resolv_conf(ns: str, nameserver: str) -> None:
    """Give ``ns`` its own resolv.conf (``ip netns exec`` bind-mounts it over /etc)."""
    etc = NETNS_ETC_DIR / ns
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "resolv.conf").write_text(f"nameserver {nameserver}\n")


def sysctl(ns: str, key: str, value: str) -> None:
    """Set a sysctl inside ``ns``."""
    run(exec_argv(ns, ["sysctl", "-qw", f"{key}={value}"]))


def nft(ns: str, ruleset: str) -> None:
    """Load an nftables ruleset inside ``ns``."""
    run(exec_argv(ns, ["nft", "-f", "-"]), stdin=ruleset)


_libc = ctypes.CDLL(None, use_errno=True)


def socket_in(
    ns: str, family: int = socket.AF_INET, kind: int = socket.SOCK_DGRAM
) -> socket.socket:
    """Open a socket that lives in namespace ``ns``.

    A short-lived thread enters the namespace (setns only affects the calling thread) and creates
    the socket there; the socket keeps that namespace for its whole life, whichever thread uses it.
    """
    result: dict[str, object] = {}

    def worker() -> None:
        try:
            fd = os.open(NETNS_RUN_DIR / ns, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns({ns}): {os.strerror(err)}")
            finally:
                os.close(fd)
            result["sock"] = socket.socket(family, kind)
        except OSError as exc:
            result["error"] = exc

    thread = threading.Thread(target=worker, name=f"setns-{ns}")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["sock"]  # type: ignore[return-value]
