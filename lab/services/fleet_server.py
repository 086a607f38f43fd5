"""The fleet scenario's one process: every fleet host's SIP, SNMP, mDNS, PnP and HTTP.

``python -m lab.services.fleet_server --config fleet.json`` (started by lab/services/fleet.py in
the fleet namespace, where every host has its own macvlan and address). By each host's
``methods``:

- ``sip-udp`` / ``sip-tcp``: SIP on ADDR:5060 over UDP / TCP, answered by fleet_sip.answer with
  the phone's User-Agent, from ADDR (one socket per address);
- ``snmp``: SNMP v2c on ADDR:161, community ``public`` (fleet_snmp: the system group, one
  interface; the switch adds its LLDP-MIB);
- ``mdns``: the host's services, published by its own zeroconf instance bound to ADDR;
- ``pnp``: a PnP SUBSCRIBE from ADDR:5060 to 224.0.1.75:5060 at start, then every 0.5 s; what
  comes back is logged and otherwise ignored (nothing is answered);
- ``http``: a small web page on ADDR:80 (the printer).

A host with a ``behaviour`` (the hostile scenario, lab/hostile.py) is served by that behaviour
instead (lab/services/fleet_hostile.py: silent, slow, garbage, huge, reset, outscope,
mdns-flood); its ``methods`` are only ``arp``.

Once everything is bound and every mDNS service registered (answered), it logs ``READY``.
Garbage never stops it: every handler catches its own errors, TCP peers get a read timeout
and a size limit. SIGTERM ends it at once (a phone switched off sends no goodbye).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab.services import fleet_hostile, fleet_sip, fleet_snmp
from lab.services.fleet import COMMUNITY, READY_MARK
from lab.topology import fleet_dev

SIP_PORT = 5060
SNMP_PORT = 161
HTTP_PORT = 80
# A phone in its PnP phase resends its unanswered SUBSCRIBE at SIP's T1 (RFC 3261: 0.5 s);
# a lab simplification: it never backs off, so that a short listening window always hears it.
PNP_INTERVAL = 0.5
TCP_IDLE = 10.0  # seconds a TCP peer may stay silent
TCP_WRITE = 5.0
TCP_MAX_MESSAGE = 64 * 1024

log = logging.getLogger("fleet")


# -- SIP ---------------------------------------------------------------------------------------
class SipUdp(asyncio.DatagramProtocol):
    """One phone's SIP over UDP."""

    def __init__(self, host: dict[str, Any]) -> None:
        self.host = host
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            reply = fleet_sip.answer(
                data, ip=self.host["ip"], user_agent=self.host["user_agent"], source=addr
            )
            if reply and self.transport is not None:
                self.transport.sendto(reply, addr)
        except Exception:
            log.exception("sip/udp %s from %s", self.host["ip"], addr)

    def error_received(self, exc: Exception) -> None:  # ICMP errors: the peer went away
        pass


async def sip_tcp(host: dict[str, Any], reader: asyncio.StreamReader, writer: Any) -> None:
    """One TCP connection to a phone's SIP: answer each request, close when idle or abusive."""
    peer = writer.get_extra_info("peername") or ("0.0.0.0", 0)
    buffer = b""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(4096), TCP_IDLE)
            if not chunk:
                return
            buffer += chunk
            while True:
                buffer = buffer.lstrip(b"\r\n")  # keep-alive CRLFs (RFC 5626)
                parts = fleet_sip.split_head(buffer)
                if parts is None:
                    if len(buffer) > fleet_sip.MAX_HEADERS:
                        return
                    break
                head, rest = parts
                length = fleet_sip.content_length(head)
                if length > TCP_MAX_MESSAGE:
                    return
                if len(rest) < length:
                    break
                message, buffer = head + b"\r\n\r\n", rest[length:]
                reply = fleet_sip.answer(
                    message,
                    ip=host["ip"],
                    user_agent=host["user_agent"],
                    source=(peer[0], peer[1]),
                    transport="TCP",
                )
                if reply:
                    writer.write(reply)
                    await asyncio.wait_for(writer.drain(), TCP_WRITE)
    except (TimeoutError, ConnectionError, OSError):
        pass
    except Exception:
        log.exception("sip/tcp %s from %s", host["ip"], peer)
    finally:
        with contextlib.suppress(Exception):
            writer.close()


# -- SNMP --------------------------------------------------------------------------------------
class SnmpUdp(asyncio.DatagramProtocol):
    """One host's SNMP agent."""

    def __init__(self, mib: fleet_snmp.Mib, community: str) -> None:
        self.mib = mib
        self.community = community
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = fleet_snmp.answer(data, self.mib, self.community)  # never raises
        if reply and self.transport is not None:
            self.transport.sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        pass


# -- PnP ---------------------------------------------------------------------------------------
class Listener(asyncio.DatagramProtocol):
    """The PnP phone's SIP socket: it sends, and only logs what comes back."""

    def __init__(self, ip: str) -> None:
        self.ip = ip

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        first = data.split(b"\n", 1)[0][:80].decode(errors="replace").strip()
        log.info("pnp %s: ignored %r from %s:%s", self.ip, first, *addr)

    def error_received(self, exc: Exception) -> None:
        pass


async def pnp(host: dict[str, Any]) -> None:
    """Send the phone's PnP SUBSCRIBE now and every PNP_INTERVAL seconds, for ever."""
    loop = asyncio.get_running_loop()
    ip = host["ip"]
    transport, _ = await loop.create_datagram_endpoint(
        lambda: Listener(ip), local_addr=(ip, SIP_PORT)
    )
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(ip))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    subscriber = fleet_sip.PnpSubscriber(
        ip=ip,
        mac=host["mac"],
        vendor=host["vendor_name"],
        model=host["model"],
        version=host["firmware"],
        user_agent=host["user_agent"],
    )
    while True:
        try:
            transport.sendto(subscriber.next(), fleet_sip.PNP_GROUP)
        except OSError as exc:
            log.warning("pnp %s: %s", ip, exc)
        await asyncio.sleep(PNP_INTERVAL)


# -- HTTP (the printer) ------------------------------------------------------------------------
async def http(host: dict[str, Any], reader: asyncio.StreamReader, writer: Any) -> None:
    """A tiny embedded web server: one page for any GET, then close."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TCP_IDLE)
        method = head.split(b" ", 1)[0]
        page = f"<html><head><title>{host['http']['title']}</title></head><body></body></html>"
        status = "200 OK" if method in (b"GET", b"HEAD") else "405 Method Not Allowed"
        body = page.encode() if method == b"GET" else b""
        writer.write(
            (
                f"HTTP/1.1 {status}\r\nServer: {host['http']['server']}\r\n"
                f"Content-Type: text/html\r\nContent-Length: {len(page)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            + body
        )
        await asyncio.wait_for(writer.drain(), TCP_WRITE)
    except (TimeoutError, ConnectionError, OSError, asyncio.IncompleteReadError):
        pass
    except asyncio.LimitOverrunError:
        pass
    except Exception:
        log.exception("http %s", host["ip"])
    finally:
        with contextlib.suppress(Exception):
            writer.close()


# -- mDNS --------------------------------------------------------------------------------------
async def mdns(host: dict[str, Any]) -> tuple[Any, list[Any]]:
    """Publish the host's services from its own zeroconf instance, bound to its address only.

    Return (the instance, its announcements still being sent) once every service is in the
    instance's registry, that is, answered. The names are unique by construction (MAC in the
    host name and, where needed, in the instance name), so the RFC 6762 probing (about 1.3 s)
    is skipped: ``cooperating_responders``.
    """
    from zeroconf import IPVersion
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

    ip = host["ip"]
    azc = AsyncZeroconf(interfaces=[ip], ip_version=IPVersion.V4Only)
    # zeroconf's listen socket is bound to *:5353. Tie it to the host's own interface, so it
    # takes only the copy of each query that reaches this host (not the copy every other mDNS
    # host's macvlan receives too), and its unicast answers (to QU questions) leave from this
    # host's interface and address (the main table would pick the first macvlan's).
    listen = getattr(azc.zeroconf.engine, "_listen_socket", None)
    if listen is not None:
        listen.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, fleet_dev(ip).encode())
    infos = [
        AsyncServiceInfo(
            f"{svc['type']}.local.",
            f"{svc['name']}.{svc['type']}.local.",
            addresses=[socket.inet_aton(ip)],
            port=int(svc["port"]),
            properties=svc["txt"],
            server=svc["server"],
        )
        for svc in host["mdns"]
    ]
    announcing = await asyncio.gather(
        *(azc.async_register_service(info, cooperating_responders=True) for info in infos)
    )
    return azc, list(announcing)


# -- the process -------------------------------------------------------------------------------
async def serve(config: dict[str, Any]) -> None:
    """Bind everything, log READY, run until SIGTERM/SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started = time.monotonic()
    hosts: list[dict[str, Any]] = config["hosts"]
    community = config.get("community", COMMUNITY)
    neighbours = [h for h in hosts if "lldp" in h["methods"]]
    keep: list[Any] = []
    tasks: list[asyncio.Task[Any]] = []
    counts = dict.fromkeys(("sip-udp", "sip-tcp", "snmp", "mdns", "pnp", "http", "hostile"), 0)
    for host in hosts:
        ip, methods = host["ip"], set(host["methods"])
        if host.get("behaviour"):
            keep.extend(await fleet_hostile.start(host, community))
            counts["hostile"] += 1
            continue
        if "sip-udp" in methods:
            transport, _ = await loop.create_datagram_endpoint(
                lambda h=host: SipUdp(h), local_addr=(ip, SIP_PORT)
            )
            keep.append(transport)
        if "sip-tcp" in methods:
            server = await asyncio.start_server(
                lambda r, w, h=host: sip_tcp(h, r, w), ip, SIP_PORT, backlog=64
            )
            keep.append(server)
        if "snmp" in methods:
            mib = fleet_snmp.host_mib(host, neighbours, started)
            transport, _ = await loop.create_datagram_endpoint(
                lambda m=mib: SnmpUdp(m, community), local_addr=(ip, SNMP_PORT)
            )
            keep.append(transport)
        if "http" in methods:
            server = await asyncio.start_server(
                lambda r, w, h=host: http(h, r, w), ip, HTTP_PORT, backlog=16
            )
            keep.append(server)
        if "pnp" in methods:
            tasks.append(asyncio.create_task(pnp(host)))
        for method in counts:
            counts[method] += method in methods
    log.info("bound in %.2f s; publishing mDNS", time.monotonic() - started)
    zeroconfs = await asyncio.gather(*(mdns(h) for h in hosts if "mdns" in h["methods"]))
    keep.extend(zeroconfs)
    summary = ", ".join(f"{n} {m}" for m, n in counts.items())
    elapsed = time.monotonic() - started
    log.info("%s: %d hosts (%s) in %.2f s", READY_MARK, len(hosts), summary, elapsed)
    await stop.wait()
    log.info("stopping")
    logging.shutdown()
    os._exit(0)  # no zeroconf goodbyes, no slow teardown: the lab is going away


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lab.services.fleet_server --config FILE``."""
    parser = argparse.ArgumentParser(prog="python -m lab.services.fleet_server")
    parser.add_argument("--config", required=True, type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    logging.getLogger("zeroconf").setLevel(logging.WARNING)
    config = json.loads(args.config.read_text())
    try:
        asyncio.run(serve(config))
    except Exception:
        log.exception("fleet failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
