"""The data that flows through the pipeline: sightings, devices, facts, findings, report.

Probes observe and emit :class:`Fact`; rules judge facts and emit :class:`Finding`.
A fact's value may be :data:`UNKNOWN`, which is not the same as ``False``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = "1"


class _Unknown:
    """Singleton for "could not be observed" — distinct from False/None."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __bool__(self) -> bool:
        raise TypeError("UNKNOWN has no truth value; test `is UNKNOWN` explicitly")


UNKNOWN: Any = _Unknown()


@dataclass
class Sighting:
    """One discovery method saw something at an address."""

    method: str  # "mdns" | "snmp" | "sip" | "arp" | ...
    ip: str
    mac: str | None = None
    attrs: dict[str, str] = field(default_factory=dict)  # raw identity evidence


@dataclass
class Device:
    """A device on the LAN: merged sightings plus identification."""

    ip: str
    mac: str | None = None
    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None
    found_by: list[str] = field(default_factory=list)
    evidence: dict[str, dict[str, str]] = field(default_factory=dict)  # method -> attrs
    identified_by: list[str] = field(default_factory=list)

    def add(self, s: Sighting) -> None:
        if s.method not in self.found_by:
            self.found_by.append(s.method)
        self.evidence.setdefault(s.method, {}).update(s.attrs)
        if s.mac and not self.mac:
            self.mac = s.mac

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["found_by"] = sorted(self.found_by)
        return d


@dataclass
class Fact:
    """An observation: ``subject`` is ``"site"``, a device IP, or ``line:<number>`` for a
    line OVHcloud knows but no phone found on the LAN was matched to."""

    subject: str
    key: str
    value: Any
    source: str
    evidence: str = ""

    def to_dict(self) -> dict[str, Any]:
        value = None if self.value is UNKNOWN else self.value
        d = {"subject": self.subject, "key": self.key, "value": value, "source": self.source}
        if self.value is UNKNOWN:
            d["unknown"] = True
        if self.evidence:
            d["evidence"] = self.evidence
        return d


@dataclass
class Finding:
    """A rule matched: what is wrong, why we think so, what to do."""

    rule: str
    device: str | None
    severity: str  # critical | warning | info
    title: str
    explanation: str
    remedies: list[str]
    guide: str
    matched: dict[str, Any] = field(default_factory=dict)
    line: str | None = None  # the OVHcloud line (service name) it is about, when known

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


LINE_PREFIX = "line:"  # subject of a line's facts when no LAN phone was matched to it


@dataclass
class ProbeError:
    """A step that could not complete, and why (never raised to the user)."""

    step: str
    reason: str
    subject: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    duration_s: float = 0.0
    scope: list[str] = field(default_factory=list)
    devices: list[Device] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    errors: list[ProbeError] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    explain: list[dict[str, Any]] | None = None  # why each rule matched or not (--explain)

    def site_facts(self) -> dict[str, Any]:
        return {
            f.key: (None if f.value is UNKNOWN else f.value)
            for f in self.facts
            if f.subject == "site"
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "duration_s": round(self.duration_s, 3),
            "scope": self.scope,
            "site": self.site_facts(),
            "devices": [d.to_dict() for d in self.devices],
            "facts": [f.to_dict() for f in self.facts],
            "findings": [f.to_dict() for f in self.findings],
            "errors": [e.to_dict() for e in self.errors],
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            **({"explain": self.explain} if self.explain is not None else {}),
        }
