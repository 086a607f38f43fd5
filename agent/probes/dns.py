"""DNS as the phones need it: the provisioning hosts, the registrar's lookup time, the servers.

Every host is looked up at once, each with its own timeout; the provisioning hosts
are tested whether or not the registrar resolves (its failure is the registrar
probe's fact, ``dns.registrar.resolves``).
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from agent.model import UNKNOWN, Fact
from agent.probes import Context, registrar

SRC = "dns"

# ovh-guides.md §4.2/§5 and ovh-control-panel-and-api.md §1.8: the auto-configuration
# hosts per phone family, and the Gigaset phonebook host.
PROVISIONING_HOSTS = (
    "cisco.prov.voip.ovh.net",
    "lk.prov.voip.ovh.net",
    "lgn.prov.voip.ovh.net",
    "th.prov.voip.ovh.net",
    "gigaset.prov.voip.ovh.net",
    "pb.voip.ovh.net",
)

# (host, timeout) -> (addresses, milliseconds); raises OSError or TimeoutError
Resolver = Callable[[str, float], Awaitable[tuple[list[str], float]]]

# [ \t], not \s: from every line start, \s* ran over all the blank lines that follow,
# quadratic (10 s for a 64 KiB file of them; tests/fuzz)
_NAMESERVER = re.compile(r"^[ \t]*nameserver[ \t]+(\S+)", re.MULTILINE)
_SYSTEMD_STUB = "127.0.0.53"
_SYSTEMD_UPSTREAM = Path("/run/systemd/resolve/resolv.conf")


def parse_resolv_conf(text: str) -> list[str]:
    """The ``nameserver`` addresses of a resolv.conf, in order, without duplicates."""
    found = [m.split("%")[0] for m in _NAMESERVER.findall(text)]
    return list(dict.fromkeys(found))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _windows_servers() -> list[str]:
    import winreg  # type: ignore[import-not-found]  # Windows only

    base = r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters"
    found: list[str] = []

    def values(key: object) -> None:
        for name in ("NameServer", "DhcpNameServer"):
            try:
                text = winreg.QueryValueEx(key, name)[0]
            except OSError:
                continue
            found.extend(re.split(r"[\s,]+", str(text).strip()))

    with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, base) as root:
        values(root)
        with winreg.OpenKey(root, "Interfaces") as ifaces:
            for i in range(winreg.QueryInfoKey(ifaces)[0]):
                with winreg.OpenKey(ifaces, winreg.EnumKey(ifaces, i)) as k:
                    values(k)
    return list(dict.fromkeys(s for s in found if s))


def dns_servers(
    platform: str = sys.platform, resolv_conf: Path = Path("/etc/resolv.conf")
) -> list[str]:
    """The agent host's DNS servers; [] where the platform does not say.

    Linux and macOS: ``/etc/resolv.conf`` (behind systemd-resolved's stub 127.0.0.53, its
    upstream servers); Windows: the TCP/IP registry keys.
    """
    if platform.startswith("win"):
        try:
            return _windows_servers()
        except (ImportError, OSError):
            return []
    servers = parse_resolv_conf(_read(resolv_conf))
    if servers == [_SYSTEMD_STUB]:
        return parse_resolv_conf(_read(_SYSTEMD_UPSTREAM)) or servers
    return servers


async def _lookup(resolver: Resolver, host: str, timeout: float) -> tuple[float | None, str]:
    """(milliseconds, evidence); milliseconds None when ``host`` did not resolve."""
    try:
        addrs, ms = await resolver(host, timeout)
    except TimeoutError:
        return None, f"{host}: no answer within {timeout:g} s"
    except OSError as e:
        return None, f"{host}: {e.strerror or e}"
    if not addrs:
        return None, f"{host}: no address"
    return ms, f"{host} {ms:.0f} ms"


def _hosts(ctx: Context) -> list[str]:
    hosts = getattr(ctx.config, "provisioning_hosts", PROVISIONING_HOSTS)
    return list(dict.fromkeys(h.strip() for h in hosts if isinstance(h, str) and h.strip()))


async def probe(
    ctx: Context, resolver: Resolver | None = None, servers: Callable[[], list[str]] = dns_servers
) -> list[Fact]:
    resolver = resolver or registrar.resolve
    timeout = ctx.config.timeout * 2
    hosts = _hosts(ctx)
    reg = ctx.config.registrar
    results = await asyncio.gather(*(_lookup(resolver, h, timeout) for h in [reg, *hosts]))
    (reg_ms, reg_why), prov = results[0], results[1:]

    facts = []
    if not hosts:
        facts.append(
            Fact("site", "dns.provisioning.resolves", UNKNOWN, SRC, "no provisioning hosts set")
        )
    else:
        failed = [why for ms, why in prov if ms is None]
        fine = [why for ms, why in prov if ms is not None]
        parts = [f"{len(hosts) - len(failed)}/{len(hosts)} resolved"]
        if failed:
            parts.append("failed: " + "; ".join(failed))
        if fine:
            parts.append("resolved: " + ", ".join(fine))
        facts.append(Fact("site", "dns.provisioning.resolves", not failed, SRC, "; ".join(parts)))

    if reg_ms is None:
        facts.append(Fact("site", "dns.registrar.ms", UNKNOWN, SRC, reg_why))
    else:
        facts.append(Fact("site", "dns.registrar.ms", round(reg_ms, 1), SRC, reg_why))

    found = servers()
    if found:
        facts.append(Fact("site", "dns.servers", found, SRC))
    else:
        facts.append(
            Fact("site", "dns.servers", UNKNOWN, SRC, f"DNS servers not readable on {sys.platform}")
        )
    return facts
