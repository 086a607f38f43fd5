"""mDNS / DNS-SD: enumerate service types, browse them, resolve the instances in scope.

One sighting per address in scope: ``type`` lists its service types (comma-separated),
``name`` is its first instance's name, ``txt.<key>`` its TXT keys as sent, and ``model``,
``firmware``, ``vendor`` and the MAC read from the many ways TXT records spell them.

A spoofing or broken neighbour cannot make it work forever or hold much: at most
:data:`MAX_TYPES` service types browsed, :data:`MAX_SERVICES` instances resolved (and
:data:`MAX_PER_SOURCE` announced by any one address), :data:`MAX_TXT_KEYS` TXT keys of
:data:`MAX_TXT_VALUE` characters read per instance, :data:`MAX_ADDRESSES` addresses per
instance, :data:`MAX_ATTRS` attributes per address; an address out of scope is ignored.

Nor can it speak for another device: mDNS has no authentication, and anyone on the LAN can
publish an instance whose address record names a phone, with a TXT record claiming another
maker and model. A device answers for itself, from its own address (RFC 6762 §6, §11), so an
instance counts at an address only when that address itself sent the instance's SRV record
and the address record (:class:`Witness`); its TXT record counts only when no other address
sent one for that instance.
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
MAX_PER_SOURCE = 64  # instances resolved per announcing address (a flood takes no more)
MAX_WITNESSED = 32768  # record names whose senders are remembered (a window's worth of flood)
MAX_SENDERS = 4  # senders remembered per record name
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


class Witness:
    """Who sent which record: for each SRV and TXT record name, the addresses that sent one;
    for each (host name, address) of an address record, whether that address sent it itself;
    for each instance, the address that first announced it (its PTR). Bounded: past
    :data:`MAX_WITNESSED` names, new ones are not remembered (so not vouched for)."""

    def __init__(self) -> None:
        self.srv: dict[str, set[str]] = {}
        self.txt: dict[str, set[str]] = {}
        self.own_address: set[tuple[str, str]] = set()
        self.announced_by: dict[str, str] = {}
        self.per_source: dict[str, int] = {}

    def _add(self, table: dict[str, set[str]], name: str, source: str) -> None:
        senders = table.get(name)
        if senders is None:
            if len(table) >= MAX_WITNESSED:
                return
            senders = table[name] = set()
        if len(senders) < MAX_SENDERS:
            senders.add(source)

    def note(self, source: str, records: Iterable[tuple[str, str, str]]) -> None:
        """One response from ``source``: its records as (kind, name, data) with kind
        ``ptr`` (data: the instance), ``srv``, ``txt``, ``a`` (data: the address)."""
        for kind, name, data in records:
            name = name.lower()
            if kind == "srv":
                self._add(self.srv, name, source)
            elif kind == "txt":
                self._add(self.txt, name, source)
            elif kind == "a" and data == source and len(self.own_address) < MAX_WITNESSED:
                self.own_address.add((name, data))
            elif kind == "ptr":
                instance = data.lower()
                if instance not in self.announced_by and len(self.announced_by) < MAX_WITNESSED:
                    self.announced_by[instance] = source

    def vouched(self, instance: str, server: str, ip: str) -> bool:
        """Whether ``ip`` itself sent ``instance``'s SRV record and the address record
        naming ``ip`` for ``server``."""
        senders = self.srv.get(instance.lower(), set())
        return ip in senders and (server.lower(), ip) in self.own_address

    def txt_trusted(self, instance: str, ip: str) -> bool:
        """Whether ``instance``'s TXT records came from ``ip`` only."""
        return self.txt.get(instance.lower(), set()) <= {ip}

    def admit(self, instance: str) -> bool:
        """Count one more instance for the address that announced it; False past
        :data:`MAX_PER_SOURCE` (or when no announcement was seen: nothing to count it to)."""
        source = self.announced_by.get(instance.lower(), "")
        count = self.per_source.get(source, 0)
        if count >= MAX_PER_SOURCE:
            return False
        self.per_source[source] = count + 1
        return True


_KINDS = {1: "a", 12: "ptr", 16: "txt", 33: "srv"}  # DNS record types (RFC 1035, 2782)


def _witnessing_zeroconf(interfaces: list[str], witness: Witness) -> Any:
    """An AsyncZeroconf whose every response is first shown to ``witness``, with the address
    it came from. zeroconf tells no listener where a record came from: its record manager
    (``zeroconf._handlers.record_manager``) sees each response with its source, so a subclass
    of it is put in place before the instance starts listening (``Zeroconf.start``)."""
    import socket

    from zeroconf import IPVersion, Zeroconf
    from zeroconf._handlers.record_manager import RecordManager
    from zeroconf.asyncio import AsyncZeroconf

    class Witnessed(RecordManager):
        def async_updates_from_response(self, msg: Any) -> None:
            try:
                source = msg.source[0] if msg.source else ""
                records = []
                for r in msg.answers():
                    kind = _KINDS.get(r.type)
                    if kind == "a":
                        records.append((kind, r.name, socket.inet_ntoa(r.address)))
                    elif kind == "ptr":
                        records.append((kind, r.name, r.alias))
                    elif kind:
                        records.append((kind, r.name, ""))
                witness.note(source, records)
            except Exception:  # a record we cannot read vouches for nothing
                pass
            super().async_updates_from_response(msg)

    class WitnessedZeroconf(Zeroconf):
        def start(self) -> None:
            self.record_manager = Witnessed(self)
            super().start()

    return AsyncZeroconf(zc=WitnessedZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only))


async def discover(ctx: Context) -> list[Sighting]:
    """Browse for ``mdns_window`` seconds, resolving each instance as soon as it is heard
    (usually at once: responders send its SRV, TXT and address records along with the
    PTR), so the window bounds the whole method."""
    await imported("zeroconf.asyncio")
    from zeroconf import ServiceStateChange
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo

    loop = asyncio.get_running_loop()
    window = ctx.config.mdns_window
    end = loop.time() + window
    witness = Witness()
    azc = _witnessing_zeroconf([n.local_ip for n in ctx.networks], witness)
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
        if not witness.admit(name):
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
        return sightings([infos[k] for k in sorted(infos, key=_order)], ctx.in_scope, witness)
    finally:
        for task in list(resolving):
            task.cancel()
        await asyncio.gather(*resolving, return_exceptions=True)
        for b in browsers:
            with contextlib.suppress(Exception):
                await b.async_cancel()
        await azc.async_close()


def sightings(
    infos: Iterable[Any], in_scope: Callable[[str], bool], witness: Witness | None = None
) -> list[Sighting]:
    """One sighting per in-scope address, merging the instances resolved there; with a
    ``witness``, only the instances that address vouched for itself (its TXT keys only if
    no other address sent a TXT record for it)."""
    merged: dict[str, Sighting] = {}
    for info in infos:
        try:
            attrs, mac = instance_attrs(info)
            addresses = list(info.parsed_addresses())[:MAX_ADDRESSES]
            name, server = str(info.name), str(info.server or "")
        except Exception:  # a record zeroconf accepted but we cannot read: skip it
            continue
        for ip in addresses:
            if not isinstance(ip, str) or not in_scope(ip):
                continue  # a spoofed record pointing elsewhere
            said, said_mac = attrs, mac
            if witness is not None:
                if not witness.vouched(name, server, ip):
                    continue  # another device speaking for this address
                if not witness.txt_trusted(name, ip):
                    said, said_mac = _without_txt(attrs), None
            s = merged.setdefault(ip, Sighting("mdns", ip, attrs={}))
            types = [t for t in s.attrs.get("type", "").split(",") if t]
            if said["type"] not in types and len(types) < MAX_TYPES:
                types.append(said["type"])
            for key, value in said.items():  # the first instance's values win
                if key not in s.attrs and len(s.attrs) < MAX_ATTRS:
                    s.attrs[key] = value
            s.attrs["type"] = ",".join(types)
            s.mac = s.mac or said_mac
    return list(merged.values())


def _without_txt(attrs: dict[str, str]) -> dict[str, str]:
    """An instance's attributes less what its TXT record said."""
    return {k: v for k, v in attrs.items() if k in ("type", "name", "server")}


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
