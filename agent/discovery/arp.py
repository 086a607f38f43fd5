"""ARP: who answers at layer 2, and with which MAC address (its OUI names the maker).

With raw-socket rights (root, or CAP_NET_RAW on Linux) :func:`sweep` asks every in-scope
address itself, with scapy, at the shared rate, while the other methods run. Without
them, or if scapy cannot work here, it steps aside quietly and :func:`discover` reads the
OS neighbour table instead, after the other sweeps have filled it; each sighting notes
how it was made (``via``) and, when the sweep was skipped, why (``sweep``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import struct
import threading
from dataclasses import dataclass, field

from agent import platform
from agent.discovery import Context
from agent.model import Sighting
from agent.scope import ScopedNetwork

ETH_P_ARP = 0x0806
MAX_WAIT = 1.0  # seconds after the last request: the kernel itself re-asks after 1 s
NO_RIGHTS = "skipped: needs root or CAP_NET_RAW"


@dataclass
class Swept:
    """What the active sweep found, or why it did not run (``skipped``)."""

    sightings: list[Sighting] = field(default_factory=list)
    skipped: str | None = None


async def sweep(ctx: Context) -> Swept:
    """ARP-request every in-scope address; never raises (a failure becomes ``skipped``)."""
    if not platform.raw_socket_rights():
        return Swept(skipped=NO_RIGHTS)
    try:
        scapy = await asyncio.to_thread(_load_scapy)
        wait = min(ctx.config.timeout, MAX_WAIT)
        found = await asyncio.gather(*(_sweep_net(ctx, scapy, n, wait) for n in ctx.networks))
    except Exception as e:  # scapy missing or broken, no such interface, no pcap...
        return Swept(skipped=f"skipped: {type(e).__name__}: {e}"[:200])
    return Swept([s for net in found for s in net])


async def discover(ctx: Context, swept: Swept | None = None) -> list[Sighting]:
    """The sweep's sightings, plus the OS neighbour table for the addresses it did not
    reach (the whole table when it was skipped)."""
    table = await asyncio.to_thread(platform.neighbours)
    found = {s.ip: s for s in swept.sightings} if swept else {}
    for ip, mac in table.items():
        if ip in found or not ctx.in_scope(ip):
            continue
        attrs = {"via": "table"}
        if swept is not None and swept.skipped:
            attrs["sweep"] = swept.skipped
        found[ip] = Sighting("arp", ip, mac=mac, attrs=attrs)
    return list(found.values())


class _Scapy:
    """The few scapy names the sweep uses, imported once, off the event loop."""

    def __init__(self) -> None:
        logging.getLogger("scapy").setLevel(logging.ERROR)  # no warnings on the console
        from scapy.config import conf
        from scapy.layers.l2 import ARP
        from scapy.sendrecv import AsyncSniffer

        self.conf, self.ARP, self.AsyncSniffer = conf, ARP, AsyncSniffer

    def open(self, iface: str):
        """A layer-2 socket on ``iface`` that hears only ARP, never promiscuous."""
        try:
            return self.conf.L2socket(iface=iface, type=ETH_P_ARP, promisc=False)
        except TypeError:  # libpcap-based sockets (macOS, Windows) filter with BPF
            return self.conf.L2socket(iface=iface, filter="arp", promisc=False)


def _load_scapy() -> _Scapy:
    return _Scapy()


def request(mac: str, ip: str, target: str) -> bytes:
    """An Ethernet broadcast ARP who-has ``target`` tell ``ip`` (padded to 60 bytes)."""
    hw = bytes.fromhex(mac.replace(":", ""))
    frame = b"\xff" * 6 + hw + struct.pack("!H", ETH_P_ARP)
    frame += struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
    frame += hw + ipaddress.IPv4Address(ip).packed + b"\x00" * 6
    frame += ipaddress.IPv4Address(target).packed
    return frame.ljust(60, b"\x00")


async def _sweep_net(ctx: Context, scapy: _Scapy, net: ScopedNetwork, wait: float):
    targets = ctx.scoped(net.hosts())
    if not targets:
        return []
    mac = _local_mac(net)
    if mac is None:
        raise OSError(f"no MAC address for {net.interface}")
    sock = await asyncio.to_thread(scapy.open, net.interface)
    loop = asyncio.get_running_loop()
    wanted = set(targets)
    answers: dict[str, list[str]] = {}
    all_in = asyncio.Event()
    started = threading.Event()

    def heard(pkt) -> None:  # in the sniffer's thread
        arp = pkt.getlayer(scapy.ARP)
        if arp is None or arp.op != 2 or arp.pdst != net.local_ip or arp.psrc not in wanted:
            return
        macs = answers.setdefault(arp.psrc, [])
        if arp.hwsrc not in macs and len(macs) < 4:
            macs.append(str(arp.hwsrc).lower())
        if len(answers) == len(wanted):
            loop.call_soon_threadsafe(all_in.set)

    sniffer = scapy.AsyncSniffer(
        opened_socket=sock, store=False, prn=heard, started_callback=started.set
    )
    try:
        sniffer.start()
        await asyncio.to_thread(started.wait, 2.0)
        for ip in targets:
            await ctx.pace()
            sock.send(request(mac, net.local_ip, ip))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), wait)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(sniffer.stop)
        with contextlib.suppress(Exception):
            sock.close()
    return [_sighting(ip, macs) for ip, macs in sorted(answers.items())]


def _sighting(ip: str, macs: list[str]) -> Sighting:
    attrs = {"via": "sweep"}
    if len(macs) > 1:  # several hosts claim the address: an IP conflict
        attrs["macs"] = ", ".join(macs)
    return Sighting("arp", ip, mac=macs[0], attrs=attrs)


def _local_mac(net: ScopedNetwork) -> str | None:
    for a in platform.ipv4_addresses():
        if a.interface == net.interface and a.mac:
            with contextlib.suppress(ValueError):
                return platform.normalise_mac(a.mac)
    return None
