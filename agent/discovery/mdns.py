"""mDNS / DNS-SD: enumerate service types, browse them, resolve the instances in scope."""

from __future__ import annotations

import asyncio
import contextlib

from agent.discovery import Context
from agent.model import Sighting
from agent.platform import normalise_mac

ENUMERATE = "_services._dns-sd._udp.local."
KNOWN_TYPES = ["_sip._udp.local.", "_sip._tcp.local.", "_http._tcp.local.", "_https._tcp.local."]
MAX_SERVICES = 512  # a spoofing neighbour cannot make us resolve forever


async def discover(ctx: Context) -> list[Sighting]:
    from zeroconf import IPVersion, ServiceStateChange
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

    window = ctx.config.mdns_window
    azc = AsyncZeroconf(interfaces=[n.local_ip for n in ctx.networks], ip_version=IPVersion.V4Only)
    seen: set[tuple[str, str]] = set()
    types: set[str] = set(KNOWN_TYPES)
    browsers: list[AsyncServiceBrowser] = []

    def on_change(zeroconf, service_type, name, state_change):
        if state_change is not ServiceStateChange.Added or len(seen) >= MAX_SERVICES:
            return
        if service_type == ENUMERATE:
            if name.endswith(("._tcp.local.", "._udp.local.")) and name not in types:
                types.add(name)
                browsers.append(AsyncServiceBrowser(azc.zeroconf, [name], handlers=[on_change]))
            return
        seen.add((service_type, name))

    sightings: list[Sighting] = []
    try:
        browsers.append(
            AsyncServiceBrowser(azc.zeroconf, [ENUMERATE, *KNOWN_TYPES], handlers=[on_change])
        )
        await asyncio.sleep(window)
        timeout_ms = int(ctx.config.timeout * 1000)
        infos = [AsyncServiceInfo(t, n) for t, n in sorted(seen)]
        await asyncio.gather(
            *(i.async_request(azc.zeroconf, timeout_ms) for i in infos), return_exceptions=True
        )
        for info in infos:
            sightings.extend(_sightings(ctx, info))
    finally:
        for b in browsers:
            with contextlib.suppress(Exception):
                await b.async_cancel()
        await azc.async_close()
    return sightings


def _sightings(ctx: Context, info) -> list[Sighting]:
    attrs = {
        "type": info.type,
        "name": info.name.removesuffix("." + info.type),
    }
    if info.server:
        attrs["server"] = info.server
    for key, value in (info.properties or {}).items():
        k = _text(key)
        if k and value is not None:
            attrs[f"txt.{k.lower()[:32]}"] = _text(value)[:256]
    mac = attrs.get("txt.mac")
    try:
        mac = normalise_mac(mac) if mac else None
    except ValueError:
        mac = None
    # Only addresses in scope: a spoofed record pointing elsewhere is ignored.
    return [
        Sighting("mdns", ip, mac=mac, attrs=dict(attrs))
        for ip in info.parsed_addresses()
        if ctx.in_scope(ip)
    ]


def _text(b: bytes | str) -> str:
    if isinstance(b, str):
        return b
    return b.decode("utf-8", errors="replace")
