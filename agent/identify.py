"""Identify vendor, model and firmware from declarative fingerprints.

Each vendor family declares in ``agent/vendors/<id>.toml`` its MAC prefixes and
matchers over the evidence discovery gathered (``sip.agent``, ``snmp.sysObjectID``,
``snmp.sysDescr``, ``mdns.name``, ``mdns.txt.<key>``...). One generic engine applies
them all; no code here names a vendor.
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
FIELD_PRIORITY = ("sip.agent", "snmp.sysDescr", "mdns.name")
NOT_VENDORS = {"firmware.toml"}  # data beside the vendor files that is not one
_MAKER = re.compile(r"[A-Za-z][A-Za-z0-9]+")


class FingerprintError(ValueError):
    """A vendor data file is invalid."""


@dataclass(frozen=True)
class Matcher:
    field: str
    regex: re.Pattern[str] | None = None
    prefix: str | None = None

    def match(self, value: str) -> dict[str, str] | None:
        """Named groups ({} when none) if ``value`` matches, else None."""
        if self.prefix is not None:
            return {} if value.startswith(self.prefix) else None
        assert self.regex is not None
        m = self.regex.search(value)
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

    def family_of(self, model: str | None) -> str:
        """The control panel's troubleshooting family for ``model``."""
        for rx, fam in self.family_by_model:
            if model and rx.search(model):
                return fam
        return self.family


def parse_vendor(text: str, origin: str) -> Vendor:
    try:
        data = tomllib.loads(text)
        matchers = []
        for m in data.get("match", []):
            if ("regex" in m) == ("prefix" in m):
                raise FingerprintError(f"{origin}: a match needs exactly one of regex/prefix")
            rx = re.compile(m["regex"]) if "regex" in m else None
            matchers.append(Matcher(m["field"], rx, m.get("prefix")))
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
        )
    except (tomllib.TOMLDecodeError, KeyError, TypeError, re.error) as e:
        raise FingerprintError(f"{origin}: {e}") from None


@cache
def vendors() -> tuple[Vendor, ...]:
    pkg = resources.files("agent.vendors")
    return tuple(
        parse_vendor(f.read_text(encoding="utf-8"), f"agent/vendors/{f.name}")
        for f in sorted(pkg.iterdir(), key=lambda p: p.name)
        if f.name.endswith(".toml") and f.name not in NOT_VENDORS
    )


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
        if fields.get("oui") in v.oui:
            score, why = 1, ["oui"]
        for m in v.matchers:
            value = fields.get(m.field)
            got = m.match(value) if value is not None else None
            if got is not None:
                score += 2
                why.append(m.field)
                groups.setdefault(m.field, got)
        if score and (best is None or score > best[0]):
            best = (score, v, why, groups)
    if best is None:
        agent = fields.get("sip.agent")
        maker = _MAKER.match(agent) if agent else None
        if maker:
            device.vendor = maker.group(0).lower()
            device.identified_by = ["sip.agent"]
        return
    _score, v, why, groups = best
    device.vendor, device.identified_by = v.id, sorted(set(why))
    ordered = [groups[f] for f in FIELD_PRIORITY if f in groups]
    ordered += [g for f, g in groups.items() if f not in FIELD_PRIORITY]
    txt = {k: fields.get(f"mdns.txt.{key}") for k, key in v.mdns_txt.items()}
    if txt.get("model") or txt.get("firmware"):
        ordered.append({k: val for k, val in txt.items() if val})
    device.model = next((g["model"] for g in ordered if g.get("model")), None)
    device.firmware = next((g["firmware"] for g in ordered if g.get("firmware")), None)


def is_phone_vendor(device: Device) -> bool:
    """True when a vendor file (not just a User-Agent's first word) recognised it."""
    return device.vendor in {v.id for v in vendors()}


def family(device: Device) -> str:
    """The control panel's troubleshooting family of an identified device."""
    v = vendor(device.vendor)
    return v.family_of(device.model) if v else "unknown"


def vendor(vendor_id: str | None) -> Vendor | None:
    return next((v for v in vendors() if v.id == vendor_id), None)
