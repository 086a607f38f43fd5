"""SIP PnP listener: the SUBSCRIBE (``Event: ua-profile``) a phone multicasts to
224.0.1.75:5060 when it boots, looking for a provisioning server.

Passive only: it joins the group on each scoped interface for a bounded window, reads,
and never answers (answering would provision the phone). Each SUBSCRIBE from an address
in scope becomes ``Sighting("pnp", source, MAC, {vendor, model, version, profile, agent,
domain})``: the Event parameters (``vendor="Yealink";model="T21D";version="34.72.14.6"``),
the MAC from the Request-URI's or From's user (``MAC%3a00135E874B49``, ``MAC=00304fa99948``,
``MAC001565f4f9e1``), the User-Agent, and the URI's domain when it is a name. Memory is
bounded whatever arrives: datagrams past :data:`MAX_MESSAGE` bytes or :data:`MAX_MESSAGES`
in number are dropped unread, at most :data:`MAX_SOURCES` sightings are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
from typing import Any

from agent.discovery import Context
from agent.model import Sighting

GROUP, PORT = "224.0.1.75", 5060  # sip.mcast.net (RFC 3261 §10.2.6), the PnP port
MAX_MESSAGE = 4096  # a SUBSCRIBE is a few hundred bytes
MAX_MESSAGES = 2048  # datagrams parsed per window (a flood gets no further)
MAX_SOURCES = 1024  # sightings kept (a /22 holds 1022 hosts)
MAX_TEXT = 128  # characters kept of one value
EVENT_PARAMS = ("vendor", "model", "version", "profile-type")

_PARAM = re.compile(r';\s*([\w.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]*)')
_MAC = re.compile(r"(?i)^mac\s*[:=]?\s*((?:[0-9a-f]{2}[:-]?){5}[0-9a-f]{2})$")


def window(cfg: Any) -> float:
    """How long to listen: ``[discovery] pnp_window``, by default the mDNS window (the
    pipeline's per-method budget allows for the longer of the two)."""
    return max(0.0, cfg.pnp_window if cfg.pnp_window is not None else cfg.mdns_window)


async def discover(ctx: Context) -> list[Sighting]:
    local = sorted({n.local_ip for n in ctx.networks})
    if not local:
        return []
    listener = _Listener(ctx.in_scope)
    try:
        sock = open_socket(local)
    except OSError as e:  # the run's errors say so; the other methods go on
        raise OSError(f"cannot listen on {GROUP}:{PORT}: {e}") from None
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: listener, sock=sock)
    try:
        await asyncio.sleep(window(ctx.config))
    finally:
        transport.close()
    return list(listener.sightings.values())


def open_socket(local_ips: list[str]) -> socket.socket:
    """A UDP socket on port 5060 that receives the group on each of ``local_ips``.

    Bound to the group address (Linux, macOS), sharing the port with any other SIP
    socket on this host (SO_REUSEADDR/SO_REUSEPORT) and never reading unicast SIP meant
    for them. Where a group address cannot be bound (Windows), the wildcard address is
    bound *without* sharing: it fails if another program holds 5060, rather than take
    that program's SIP traffic from it."""
    try:
        sock = _bound((GROUP, PORT), share=True)
    except OSError:
        sock = _bound(("", PORT), share=False)
    try:
        joined = 0
        for ip in local_ips:
            with contextlib.suppress(OSError):
                sock.setsockopt(
                    socket.IPPROTO_IP,
                    socket.IP_ADD_MEMBERSHIP,
                    socket.inet_aton(GROUP) + socket.inet_aton(ip),
                )
                joined += 1
        if not joined:
            raise OSError(f"could not join {GROUP} on any interface")
        sock.setblocking(False)
        return sock
    except BaseException:
        sock.close()
        raise


def _bound(address: tuple[str, int], share: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if share:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        return sock
    except BaseException:
        sock.close()
        raise


class _Listener(asyncio.DatagramProtocol):
    """Collects PnP SUBSCRIBEs; answers nothing."""

    def __init__(self, in_scope: Any) -> None:
        self.in_scope = in_scope
        self.seen = 0
        self.sightings: dict[str, Sighting] = {}

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        if self.seen >= MAX_MESSAGES or len(data) > MAX_MESSAGE:
            return
        self.seen += 1
        ip = addr[0]
        if not self.in_scope(ip):
            return
        if ip not in self.sightings and len(self.sightings) >= MAX_SOURCES:
            return
        try:
            found = parse_subscribe(data)
        except Exception:  # whatever arrives, never a crash
            return
        if found is None:
            return
        mac, attrs = found
        old = self.sightings.get(ip)
        if old is not None:  # a phone resends: keep what the first said, add the rest
            attrs = {**attrs, **old.attrs}
            mac = old.mac or mac
        self.sightings[ip] = Sighting("pnp", ip, mac=mac, attrs=attrs)

    def error_received(self, exc: Exception) -> None:
        pass


def parse_subscribe(data: bytes) -> tuple[str | None, dict[str, str]] | None:
    """(MAC, attributes) of a PnP SUBSCRIBE (``Event: ua-profile``); None for anything else."""
    if not data.startswith(b"SUBSCRIBE ") or b"ua-profile" not in data.lower():
        return None
    from sipmessage import Request

    from agent.net.sip import parse_message

    msg = parse_message(data)
    if not isinstance(msg, Request) or msg.method != "SUBSCRIBE":
        return None
    event = _header(msg, "Event", 1024)
    if event is None or event.split(";", 1)[0].strip().lower() != "ua-profile":
        return None
    params = event_params(event)
    attrs = {k.replace("profile-type", "profile"): v for k, v in params.items() if v}
    agent = _header(msg, "User-Agent")
    if agent:
        attrs["agent"] = agent
    users, host = _uri_parts(msg)
    if host and not _is_address(host):
        attrs["domain"] = _clean(host)
    mac = next((m for m in map(mac_from_user, users) if m), None)
    return mac, attrs


def event_params(event: str) -> dict[str, str]:
    """The known parameters of an ``Event: ua-profile;...`` value, unquoted and cleaned."""
    out: dict[str, str] = {}
    for name, value in _PARAM.findall(event):
        key = name.lower()
        if key in EVENT_PARAMS and key not in out:
            out[key] = _clean(value.strip('"').replace('\\"', '"'))
    return out


def mac_from_user(user: str | None) -> str | None:
    """``MAC:00135E874B49`` (after %3a is decoded), ``MAC=00304fa99948``, ``MAC001565f4f9e1``
    -> ``00:13:5e:87:4b:49``; None for anything else (or an all-zero/multicast MAC)."""
    if not user:
        return None
    m = _MAC.match(user.replace("%3a", ":").replace("%3A", ":").strip()[:64])
    if not m:
        return None
    digits = re.sub(r"[^0-9a-fA-F]", "", m.group(1)).lower()
    if len(digits) != 12 or digits == "0" * 12 or int(digits[1], 16) & 1:
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def _uri_parts(msg: Any) -> tuple[list[str], str | None]:
    """The user parts of the Request-URI, From and To (in that order) and the
    Request-URI's host."""
    users: list[str] = []
    host = None
    with contextlib.suppress(Exception):
        users.append(msg.uri.user)
        host = msg.uri.host
    for name in ("from_address", "to_address"):
        with contextlib.suppress(Exception):
            users.append(getattr(msg, name).uri.user)
    return [u for u in users if u], host


def _header(msg: Any, name: str, limit: int = MAX_TEXT) -> str | None:
    try:
        value = msg.headers.get(name)
    except Exception:
        return None
    return _clean(str(value), limit) if value else None


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _clean(text: str, limit: int = MAX_TEXT) -> str:
    return "".join(c for c in text[: 4 * limit] if c.isprintable()).strip()[:limit]
