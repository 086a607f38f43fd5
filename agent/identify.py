"""Identify vendor, model and firmware from declarative fingerprints.

Each vendor family declares in ``agent/vendors/<id>.toml`` its MAC prefixes and
matchers over the evidence discovery gathered (``sip.agent``, ``snmp.sysObjectID``,
``snmp.sysDescr``, ``snmp.entMfgName``, ``pnp.vendor``, ``pnp.agent``, ``lldp.sysdesc``,
``mdns.name``, ``mdns.vendor``, ``mdns.txt.<key>``...) and the private SNMP objects that
name it (``[[snmp_oid]]``, read by the SNMP sweep). ``not_phones.toml`` names what is not
a phone whatever else matches (switches, printers). One generic engine applies them all;
no code here names a vendor.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

from agent.config import Credential
from agent.model import Device

# Where model/firmware are read first when several sources give them.
FIELD_PRIORITY = ("sip.agent", "pnp.agent", "snmp.sysDescr", "lldp.sysdesc", "mdns.name")
# Once a vendor is recognised, vendor-neutral fields read after its own matchers: the PnP
# SUBSCRIBE's Event parameters, ENTITY-MIB, LLDP-MED inventory, mDNS TXT (normalised).
GENERIC_MODEL = ("pnp.model", "snmp.entModelName", "lldp.model", "mdns.model")
GENERIC_FIRMWARE = ("pnp.version", "snmp.entSoftwareRev", "lldp.software", "mdns.firmware")
# Values that name nothing (Gigaset's PnP Event says vendor="OEM";model="OEM").
PLACEHOLDERS = {"", "oem", "unknown", "n/a", "na", "none", "null", "generic", "-", "0"}
# A device that says itself what it is (SIP User-Agent, PnP SUBSCRIBE) is never excluded
# by not_phones.toml: only phones send ua-profile SUBSCRIBEs.
SELF_ID = {"sip.agent", "pnp.agent", "pnp.vendor", "pnp.model"}
NOT_PHONE = "not-phone:"  # identified_by prefix of an excluded device
NOT_PHONES = "not_phones.toml"
NOT_PHONES_OUI = "not_phones_oui.toml"  # MAC prefixes of PC, printer, network makers
NOT_VENDORS = {"firmware.toml", NOT_PHONES, NOT_PHONES_OUI}  # data beside the vendor files
_ATTR = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,31}")
_OID = re.compile(r"\d+(?:\.\d+)+")
_MAKER = re.compile(r"[A-Za-z][A-Za-z0-9]+")
# Characters of an evidence value the matchers read: a User-Agent, sysDescr or LLDP
# description that names a phone does it in its first hundred or so.
MAX_MATCHED = 512


class FingerprintError(ValueError):
    """A vendor data file is invalid."""


@dataclass(frozen=True)
class Matcher:
    field: str
    regex: re.Pattern[str] | None = None
    prefix: str | None = None
    entry: int = -1  # the [[match]] it came from: one with a list of fields counts once
    kind: str = ""  # not_phones.toml: what the device is instead (printer, network)

    def match(self, value: str) -> dict[str, str] | None:
        r"""Named groups ({} when none) if ``value`` matches, else None. Only the first
        :data:`MAX_MATCHED` characters are read: a pattern such as ``(\S+)\s+(\d…)`` is
        quadratic in the text it searches (a 50 KB User-Agent took 24 s: nightly fuzz)."""
        if self.prefix is not None:
            return {} if value.startswith(self.prefix) else None
        assert self.regex is not None
        m = self.regex.search(value[:MAX_MATCHED])
        if not m:
            return None
        return {k: v.strip() for k, v in m.groupdict().items() if v}


@dataclass(frozen=True)
class Vendor:
    id: str
    name: str
    oui: frozenset[str]
    matchers: tuple[Matcher, ...]
    mdns_txt: dict[str, str] = field(default_factory=dict)
    family: str = "unknown"
    default_logins: tuple[Credential, ...] = ()
    family_by_model: tuple[tuple[re.Pattern[str], str], ...] = ()
    snmp_oids: tuple[tuple[str, str], ...] = ()  # (OID, attribute name) the SNMP sweep reads
    oui_shared: frozenset[str] = frozenset()  # MAC prefixes it also puts on non-phones

    def family_of(self, model: str | None) -> str:
        """The control panel's troubleshooting family for ``model``."""
        for rx, fam in self.family_by_model:
            if model and rx.search(model):
                return fam
        return self.family


def parse_vendor(text: str, origin: str) -> Vendor:
    try:
        data = tomllib.loads(text)
        matchers = parse_matchers(data, origin)
        return Vendor(
            id=data["id"],
            name=data["name"],
            oui=frozenset(o.upper().replace(":", "") for o in data.get("oui", [])),
            matchers=tuple(matchers),
            mdns_txt=dict(data.get("mdns_txt", {})),
            family=data.get("family", "unknown"),
            default_logins=tuple(
                Credential(c["username"], c.get("password", ""), data["id"])
                for c in data.get("default_logins", [])
            ),
            family_by_model=tuple(
                (re.compile(f["regex"]), f["family"]) for f in data.get("family_by_model", [])
            ),
            snmp_oids=tuple(_snmp_oid(o, origin) for o in data.get("snmp_oid", [])),
            oui_shared=frozenset(o.upper().replace(":", "") for o in data.get("oui_shared", [])),
        )
    except (tomllib.TOMLDecodeError, KeyError, TypeError, re.error) as e:
        raise FingerprintError(f"{origin}: {e}") from None


def parse_matchers(data: dict, origin: str) -> list[Matcher]:
    """The ``[[match]]`` entries; ``field`` may list several fields (one match counts)."""
    matchers = []
    for i, m in enumerate(data.get("match", [])):
        if ("regex" in m) == ("prefix" in m):
            raise FingerprintError(f"{origin}: a match needs exactly one of regex/prefix")
        rx = re.compile(m["regex"]) if "regex" in m else None
        fields = m["field"] if isinstance(m["field"], list) else [m["field"]]
        if not fields or not all(isinstance(f, str) for f in fields):
            raise FingerprintError(f"{origin}: a match's field is a name or a list of names")
        matchers += [Matcher(f, rx, m.get("prefix"), i, m.get("kind", "")) for f in fields]
    return matchers


def _snmp_oid(entry: dict, origin: str) -> tuple[str, str]:
    oid, name = entry["oid"].strip(".").strip(), entry["name"]
    if not _OID.fullmatch(oid) or not _ATTR.fullmatch(name):
        raise FingerprintError(f"{origin}: snmp_oid needs a numeric oid and a plain name")
    return oid, name


@cache
def vendors() -> tuple[Vendor, ...]:
    pkg = resources.files("agent.vendors")
    return tuple(
        parse_vendor(f.read_text(encoding="utf-8"), f"agent/vendors/{f.name}")
        for f in sorted(pkg.iterdir(), key=lambda p: p.name)
        if f.name.endswith(".toml") and f.name not in NOT_VENDORS
    )


@cache
def exclusions() -> tuple[Matcher, ...]:
    """What is not a phone whatever else matches (``agent/vendors/not_phones.toml``)."""
    f = resources.files("agent.vendors") / NOT_PHONES
    try:
        return tuple(parse_matchers(tomllib.loads(f.read_text(encoding="utf-8")), NOT_PHONES))
    except (tomllib.TOMLDecodeError, KeyError, TypeError, re.error) as e:
        raise FingerprintError(f"agent/vendors/{NOT_PHONES}: {e}") from None


def snmp_identity_oids() -> dict[str, str]:
    """{OID: attribute name} of the private SNMP objects the vendor files declare."""
    return {oid: name for v in vendors() for oid, name in v.snmp_oids}


def evidence_fields(device: Device) -> dict[str, str]:
    """Flatten a device's evidence into ``method.attr`` fields."""
    out = {f"{m}.{k}": v for m, attrs in device.evidence.items() for k, v in attrs.items()}
    if device.mac:
        out["oui"] = device.mac.replace(":", "").upper()[:6]
    return out


def identify(device: Device, catalog: tuple[Vendor, ...] | None = None) -> None:
    """Fill ``vendor``, ``model``, ``firmware`` and ``identified_by`` of ``device``."""
    catalog = catalog if catalog is not None else vendors()
    fields = evidence_fields(device)
    best: tuple[int, Vendor, list[str], dict[str, dict[str, str]]] | None = None
    for v in catalog:
        score, why, groups = 0, [], {}
        counted: set[int] = set()  # a [[match]] listing several fields counts once
        if fields.get("oui") in v.oui or fields.get("oui") in v.oui_shared:
            score, why = 1, ["oui"]
        for m in v.matchers:
            if m.entry >= 0 and m.entry in counted:
                continue
            value = fields.get(m.field)
            got = m.match(value) if value is not None else None
            if got is not None:
                score += 2
                why.append(m.field)
                groups.setdefault(m.field, got)
                counted.add(m.entry)
        if score and (best is None or score > best[0]):
            best = (score, v, why, groups)
    excluded = _excluded(fields)
    if excluded and not SELF_ID & fields.keys():
        device.vendor = device.model = device.firmware = None
        device.identified_by = [excluded]
        return
    maker = _non_phone_maker(fields, best is not None)
    if maker is not None:
        device.vendor = device.model = device.firmware = None
        device.identified_by = [f"{NOT_PHONE}{maker.kind}:oui"]
        return
    if best is None:
        _unknown_maker(device, fields)
        return
    _score, v, why, groups = best
    device.vendor, device.identified_by = v.id, sorted(set(why))
    ordered = [groups[f] for f in FIELD_PRIORITY if f in groups]
    ordered += [g for f, g in groups.items() if f not in FIELD_PRIORITY]
    txt = {k: fields.get(f"mdns.txt.{key}") for k, key in v.mdns_txt.items()}
    if txt.get("model") or txt.get("firmware"):
        ordered.append({k: val for k, val in txt.items() if val})
    ordered.append(_generic(fields))
    device.model = next((g["model"] for g in ordered if g.get("model")), None)
    device.firmware = next((g["firmware"] for g in ordered if g.get("firmware")), None)


def _excluded(fields: dict[str, str]) -> str | None:
    """``not-phone:<kind>:<field>`` when an exclusion matches, else None."""
    for m in exclusions():
        value = fields.get(m.field)
        if value is not None and m.match(value) is not None:
            return f"{NOT_PHONE}{m.kind or 'other'}:{m.field}"
    return None


def _named(value: str | None) -> str | None:
    return None if value is None or value.strip().lower() in PLACEHOLDERS else value.strip()


def _generic(fields: dict[str, str]) -> dict[str, str]:
    """Model and firmware from the vendor-neutral fields (placeholders skipped)."""
    out = {}
    for key, names in (("model", GENERIC_MODEL), ("firmware", GENERIC_FIRMWARE)):
        value = next((v for f in names if (v := _named(fields.get(f)))), None)
        if value:
            out[key] = value
    return out


def _unknown_maker(device: Device, fields: dict[str, str]) -> None:
    """No vendor file knows it: the maker a PnP SUBSCRIBE names (with its model and
    firmware), else the first word of its User-Agent (SIP, then PnP)."""
    maker = _named(fields.get("pnp.vendor"))
    if maker and _MAKER.fullmatch(maker):
        device.vendor, device.identified_by = maker.lower(), ["pnp.vendor"]
        generic = _generic(fields)
        device.model, device.firmware = generic.get("model"), generic.get("firmware")
        return
    for field_name in ("sip.agent", "pnp.agent"):
        agent = fields.get(field_name)
        found = _MAKER.match(agent) if agent else None
        if found:
            device.vendor = found.group(0).lower()
            device.identified_by = [field_name]
            return


def is_phone_vendor(device: Device) -> bool:
    """True when a vendor file (not just a User-Agent's first word) recognised it, or when
    the device said itself it is a SIP telephone (a PnP SUBSCRIBE; LLDP's telephone
    capability); never for a device ``not_phones.toml`` excluded."""
    if any(w.startswith(NOT_PHONE) for w in device.identified_by):
        return False
    if device.vendor in {v.id for v in vendors()}:
        return True
    caps = device.evidence.get("lldp", {}).get("caps", "")
    return "pnp" in device.evidence or "telephone" in caps.split(",")


# MAC prefixes (OUIs) are weak evidence, and the policy for them is:
# - A phone vendor's prefix names the vendor when nothing stronger names another (score 1;
#   every matcher scores 2). `oui` lists prefixes the maker puts on phones and ATAs only;
#   `oui_shared` ones it also puts on other products (Cisco-Linksys routers, Grandstream's
#   access points and cameras, Poly's video systems).
# - is_phone(): a device seen only by ARP (nothing else says anything) is a phone when its
#   prefix is in a vendor's `oui`; an `oui_shared` prefix alone names the maker but does not
#   make a phone, since a Linksys router or a Poly video bar is as likely.
# - A prefix of a known non-phone maker (not_phones_oui.toml: PCs, printers, NAS, network
#   gear, virtual machines) makes a device not a phone, even one that answers SIP (a
#   softphone on a PC, a PBX on a server, a router's SIP server), unless a phone vendor's
#   fingerprint other than the MAC recognised it (a Poly phone made since HP bought Poly may
#   carry an HP prefix) or it sent a PnP SUBSCRIBE (only phones do).
# - A locally administered MAC (random, virtual) matches no list: it says nothing.


@dataclass(frozen=True)
class Maker:
    """A maker of things that are not desk phones (``not_phones_oui.toml``)."""

    id: str
    name: str
    kind: str  # computer | printer | storage | network | virtual-machine


@cache
def non_phone_ouis() -> dict[str, Maker]:
    """{OUI (6 upper-case hex digits): maker} from ``agent/vendors/not_phones_oui.toml``."""
    f = resources.files("agent.vendors") / NOT_PHONES_OUI
    try:
        data = tomllib.loads(f.read_text(encoding="utf-8"))
        out: dict[str, Maker] = {}
        for m in data["maker"]:
            maker = Maker(m["id"], m["name"], m["kind"])
            out.update((o.upper().replace(":", ""), maker) for o in m["oui"])
        return out
    except (tomllib.TOMLDecodeError, KeyError, TypeError, AttributeError) as e:
        raise FingerprintError(f"agent/vendors/{NOT_PHONES_OUI}: {e}") from None


def _non_phone_maker(fields: dict[str, str], recognised: bool) -> Maker | None:
    """The non-phone maker the MAC prefix names, unless a vendor file recognised the
    device (phone vendors' prefixes are never in that list) or it sent a PnP SUBSCRIBE."""
    if recognised or any(f.startswith("pnp.") for f in fields):
        return None
    return non_phone_ouis().get(fields.get("oui", ""))


def is_phone(device: Device) -> bool:
    """Whether discovery lists ``device`` as a phone (call after :func:`identify`): any
    device that speaks SIP or that :func:`is_phone_vendor` accepts, except the ones the
    MAC-prefix policy above rules out."""
    if any(w.startswith(NOT_PHONE) for w in device.identified_by):
        return False
    if device.identified_by == ["oui"] and not {"sip", "pnp"} & set(device.found_by):
        v = vendor(device.vendor)
        oui = evidence_fields(device).get("oui")
        if v is not None and oui not in v.oui:  # a shared prefix names the maker only
            caps = device.evidence.get("lldp", {}).get("caps", "")
            return "telephone" in caps.split(",")
    return "sip" in device.found_by or is_phone_vendor(device)


def family(device: Device) -> str:
    """The control panel's troubleshooting family of an identified device."""
    v = vendor(device.vendor)
    return v.family_of(device.model) if v else "unknown"


def vendor(vendor_id: str | None) -> Vendor | None:
    return next((v for v in vendors() if v.id == vendor_id), None)
