"""mDNS / DNS-SD: enumerate service types, browse them, resolve the instances in scope.

One sighting per address in scope: ``type`` lists its service types (comma-separated),
``name`` is its first instance's name, ``txt.<key>`` its TXT keys as sent, and ``model``,
``firmware``, ``vendor`` and the MAC read from the many ways TXT records spell them.

A spoofing or broken neighbour cannot make it work forever or hold much: at most
:data:`MAX_TYPES` service types browsed, :data:`MAX_SERVICES` instances resolved,
:data:`MAX_TXT_KEYS` TXT keys of :data:`MAX_TXT_VALUE` characters read per instance,
:data:`MAX_ADDRESSES` addresses per instance, :data:`MAX_ATTRS` attributes per address;
an address out of scope is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Iterable
from typing import Any

from agent.discovery import Context, imported
from agent.model import Sighting
from agent.platform import normalise_mac

ENUMERATE = "_services._dns-sd._udp.local."
KNOWN_TYPES = ["_sip._udp.local.", "_sip._tcp.local.", "_http._tcp.local.", "_https._tcp.local."]
MAX_SERVICES = 512  # instances resolved
MAX_TYPES = 64  # service types browsed
MAX_TXT_KEYS = 32  # TXT keys read per instance
MAX_TXT_KEY = 32  # characters of a key
MAX_TXT_VALUE = 256  # characters of a value
MAX_ADDRESSES = 8  # addresses read per instance
MAX_NAME = 255  # a DNS name is at most 255 bytes
MAX_ATTRS = 96  # attributes kept per address, all instances together
_TYPE = re.compile(r"_[A-Za-z0-9-]{1,15}\._(?:tcp|udp)\.local\.")  # RFC 6335 service names

# TXT key spellings, most specific first (device web pages, HomeKit/Cast "md", printers'
# "ty"/"product"/"usb_MDL", "fw"/"fwver"/"sw"/"version"); a MAC only if it parses as one.
TXT_KEYS = {
    "model": (
        "model",
        "modelname",
        "model_name",
        "device_model",
        "hwmodel",
        "mdl",
        "md",
        "usb_mdl",
        "ty",
        "product",
    ),
    "firmware": (
        "fw",
        "firmware",
        "fwver",
        "fw_version",
        "fwversion",
        "firmware_version",
        "swversion",
        "sw_version",
        "sw",
        "version",
        "ver",
    ),
    "vendor": ("vendor", "manufacturer", "mfg", "mfr", "brand", "usb_mfg"),
    # not HomeKit's "id": it looks like a MAC but is a random device id
    "mac": ("mac", "macaddress", "mac_address", "macaddr", "hwaddr", "hw_addr", "deviceid"),
}


async def discover(ctx: Context) -> list[Sighting]:
    """Browse for ``mdns_window`` seconds, resolving each instance as soon as it is heard
    (usually at once: responders send its SRV, TXT and address records along with the
    PTR), so the window bounds the whole method."""
    await imported("zeroconf.asyncio")
    from zeroconf import IPVersion, ServiceStateChange
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

    loop = asyncio.get_running_loop()
    window = ctx.config.mdns_window
    end = loop.time() + window
    azc = AsyncZeroconf(interfaces=[n.local_ip for n in ctx.networks], ip_version=IPVersion.V4Only)
    infos: dict[tuple[str, str], Any] = {}
    resolving: set[asyncio.Task[Any]] = set()
    types: set[str] = set(KNOWN_TYPES)
    browsers: list[AsyncServiceBrowser] = []

    def on_change(zeroconf, service_type, name, state_change):
        if state_change is not ServiceStateChange.Added or len(name) > MAX_NAME:
            return
        if service_type == ENUMERATE:
            if _TYPE.fullmatch(name) and name not in types and len(types) < MAX_TYPES:
                types.add(name)
                browsers.append(AsyncServiceBrowser(azc.zeroconf, [name], handlers=[on_change]))
            return
        key = (service_type, name)
        left_ms = int((end - loop.time()) * 1000)
        if key in infos or len(infos) >= MAX_SERVICES or left_ms <= 0:
            return
        info = infos[key] = AsyncServiceInfo(service_type, name)
        task = asyncio.ensure_future(info.async_request(azc.zeroconf, left_ms))
        resolving.add(task)
        task.add_done_callback(resolving.discard)

    try:
        browsers.append(
            AsyncServiceBrowser(azc.zeroconf, [ENUMERATE, *KNOWN_TYPES], handlers=[on_change])
        )
        await asyncio.sleep(max(0.0, end - loop.time()))
        return sightings([infos[k] for k in sorted(infos, key=_order)], ctx.in_scope)
    finally:
        for task in list(resolving):
            task.cancel()
        await asyncio.gather(*resolving, return_exceptions=True)
        for b in browsers:
            with contextlib.suppress(Exception):
                await b.async_cancel()
        await azc.async_close()


def sightings(infos: Iterable[Any], in_scope: Callable[[str], bool]) -> list[Sighting]:
    """One sighting per in-scope address, merging the instances resolved there."""
    merged: dict[str, Sighting] = {}
    for info in infos:
        try:
            attrs, mac = instance_attrs(info)
            addresses = list(info.parsed_addresses())[:MAX_ADDRESSES]
        except Exception:  # a record zeroconf accepted but we cannot read: skip it
            continue
        for ip in addresses:
            if not isinstance(ip, str) or not in_scope(ip):
                continue  # a spoofed record pointing elsewhere
            s = merged.setdefault(ip, Sighting("mdns", ip, attrs={}))
            types = [t for t in s.attrs.get("type", "").split(",") if t]
            if attrs["type"] not in types and len(types) < MAX_TYPES:
                types.append(attrs["type"])
            for key, value in attrs.items():  # the first instance's values win
                if key not in s.attrs and len(s.attrs) < MAX_ATTRS:
                    s.attrs[key] = value
            s.attrs["type"] = ",".join(types)
            s.mac = s.mac or mac
    return list(merged.values())


def instance_attrs(info: Any) -> tuple[dict[str, str], str | None]:
    """(attributes, MAC) of one resolved instance."""
    stype = _clean(str(info.type), MAX_NAME)
    attrs = {"type": stype, "name": _clean(str(info.name).removesuffix("." + stype), MAX_NAME)}
    if info.server:
        attrs["server"] = _clean(str(info.server), MAX_NAME)
    txt, mac = txt_attrs(info.properties or {})
    return {**txt, **attrs}, mac


def txt_attrs(properties: Any) -> tuple[dict[str, str], str | None]:
    """TXT keys as ``txt.<key>`` plus ``model``/``firmware``/``vendor`` read from their
    common spellings, and the MAC; bounded in keys and sizes, never raising."""
    raw: dict[str, str] = {}
    items = properties.items() if isinstance(properties, dict) else ()
    for n, (key, value) in enumerate(items):
        if n >= MAX_TXT_KEYS:
            break
        k = _clean(_text(key), MAX_TXT_KEY).lower()
        if not k or k in raw or not re.fullmatch(r"[\w.-]+", k):
            continue
        v = _clean(_text(value), MAX_TXT_VALUE) if value is not None else ""
        raw[k] = v
    attrs = {f"txt.{k}": v for k, v in raw.items()}
    mac = None
    for name, spellings in TXT_KEYS.items():
        for key in spellings:
            value = raw.get(key)
            if not value:
                continue
            if name == "mac":
                with contextlib.suppress(ValueError):
                    mac = normalise_mac(value)
                if mac:
                    break
                continue
            attrs[name] = value.strip("()").strip()
            break
    return attrs, mac


def _order(item: tuple[str, str]) -> tuple[int, str, str]:
    """Phone-ish service types first, so ``name`` comes from the most telling one."""
    t, n = item
    return (KNOWN_TYPES.index(t) if t in KNOWN_TYPES else len(KNOWN_TYPES), t, n)


def _text(b: Any) -> str:
    if isinstance(b, str):
        return b
    if isinstance(b, bytes | bytearray):
        return bytes(b[: 4 * MAX_TXT_VALUE]).decode("utf-8", errors="replace")
    return ""


def _clean(text: str, limit: int) -> str:
    """Printable characters only, cut at ``limit``."""
    return "".join(c for c in text[: 4 * limit] if c.isprintable()).strip()[:limit]
