"""ARP: who answers at layer 2, and with which MAC address (its OUI names the maker).

With raw-socket rights (root, or CAP_NET_RAW on Linux) :func:`sweep` asks every in-scope
address itself, at the shared rate, while the other methods run: through an AF_PACKET
socket on Linux (no import, no thread), through scapy elsewhere (libpcap; importing scapy
costs 0.3-0.5 s of CPU, taken from the other methods, so never on Linux). Without rights,
or if the link layer cannot be had here, it steps aside quietly and :func:`discover` reads
the OS neighbour table instead, after the other sweeps have filled it; each sighting notes
how it was made (``via``) and, when the sweep was skipped, why (``sweep``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
import sys
import threading
from collections.abc import Callable
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
        wait = min(ctx.config.sweep_timeout, MAX_WAIT)
        found = await asyncio.gather(*(_sweep_net(ctx, n, wait) for n in ctx.networks))
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


Heard = Callable[[bytes], None]  # called with each Ethernet frame heard, in the loop


class _PacketLink:
    """Linux: an AF_PACKET socket on one interface that hears only ARP, never promiscuous,
    read by the event loop itself."""

    def __init__(self, iface: str, heard: Heard) -> None:
        self.loop = asyncio.get_running_loop()
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
        try:
            self.sock.bind((iface, ETH_P_ARP))
            self.sock.setblocking(False)
            self.loop.add_reader(self.sock.fileno(), self._read, heard)
        except BaseException:
            self.sock.close()
            raise

    def _read(self, heard: Heard) -> None:
        for _ in range(256):  # what is queued now; the loop calls again for more
            try:
                frame = self.sock.recv(128)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            heard(frame)

    async def send(self, frame: bytes) -> None:
        await self.loop.sock_sendall(self.sock, frame)

    async def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()


class _ScapyLink:
    """Elsewhere (macOS, Windows): scapy's layer-2 socket, and its sniffer in a thread."""

    def __init__(self, scapy: _Scapy, iface: str, heard: Heard) -> None:
        self.scapy, self.iface, self.heard = scapy, iface, heard
        self.sock = None
        self.sniffer = None

    async def start(self) -> _ScapyLink:
        loop = asyncio.get_running_loop()
        self.sock = await asyncio.to_thread(self.scapy.open, self.iface)
        started = threading.Event()

        def heard(pkt) -> None:  # in the sniffer's thread
            with contextlib.suppress(Exception):
                loop.call_soon_threadsafe(self.heard, bytes(pkt))

        self.sniffer = self.scapy.AsyncSniffer(
            opened_socket=self.sock, store=False, prn=heard, started_callback=started.set
        )
        self.sniffer.start()
        await asyncio.to_thread(started.wait, 2.0)
        return self

    async def send(self, frame: bytes) -> None:
        self.sock.send(frame)

    async def close(self) -> None:
        if self.sniffer is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.sniffer.stop)
        if self.sock is not None:
            with contextlib.suppress(Exception):
                self.sock.close()


class _Scapy:
    """The few scapy names the fallback uses, imported once, off the event loop."""

    def __init__(self) -> None:
        logging.getLogger("scapy").setLevel(logging.ERROR)  # no warnings on the console
        from scapy.config import conf
        from scapy.sendrecv import AsyncSniffer

        self.conf, self.AsyncSniffer = conf, AsyncSniffer

    def open(self, iface: str):
        """A layer-2 socket on ``iface`` that hears only ARP, never promiscuous."""
        try:
            return self.conf.L2socket(iface=iface, type=ETH_P_ARP, promisc=False)
        except TypeError:  # libpcap-based sockets (macOS, Windows) filter with BPF
            return self.conf.L2socket(iface=iface, filter="arp", promisc=False)


def _load_scapy() -> _Scapy:
    return _Scapy()


async def _open_link(iface: str, heard: Heard) -> _PacketLink | _ScapyLink:
    if sys.platform.startswith("linux"):
        return _PacketLink(iface, heard)
    scapy = await asyncio.to_thread(_load_scapy)
    return await _ScapyLink(scapy, iface, heard).start()


def request(mac: str, ip: str, target: str) -> bytes:
    """An Ethernet broadcast ARP who-has ``target`` tell ``ip`` (padded to 60 bytes)."""
    hw = bytes.fromhex(mac.replace(":", ""))
    frame = b"\xff" * 6 + hw + struct.pack("!H", ETH_P_ARP)
    frame += struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
    frame += hw + socket.inet_aton(ip) + b"\x00" * 6
    frame += socket.inet_aton(target)
    return frame.ljust(60, b"\x00")


def parse_reply(frame: bytes) -> tuple[str, str, str] | None:
    """(sender IP, sender MAC, target IP) of an Ethernet ARP reply (IPv4 over Ethernet);
    None for any other frame."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x06":
        return None
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    if (htype, ptype, hlen, plen, op) != (1, 0x0800, 6, 4, 2):
        return None
    sender = str(ipaddress.IPv4Address(frame[28:32]))
    return sender, frame[22:28].hex(":"), str(ipaddress.IPv4Address(frame[38:42]))


async def _sweep_net(ctx: Context, net: ScopedNetwork, wait: float) -> list[Sighting]:
    targets = ctx.scoped(net.hosts())
    if not targets:
        return []
    mac = _local_mac(net)
    if mac is None:
        raise OSError(f"no MAC address for {net.interface}")
    wanted = set(targets)
    answers: dict[str, list[str]] = {}
    all_in = asyncio.Event()

    def heard(frame: bytes) -> None:
        reply = parse_reply(frame)
        if reply is None or reply[2] != net.local_ip or reply[0] not in wanted:
            return
        macs = answers.setdefault(reply[0], [])
        if reply[1] not in macs and len(macs) < 4:
            macs.append(reply[1])
        if len(answers) == len(wanted):
            all_in.set()

    link = await _open_link(net.interface, heard)
    try:
        for ip in targets:
            await ctx.pace()
            await link.send(request(mac, net.local_ip, ip))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_in.wait(), wait)
    finally:
        await link.close()
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
