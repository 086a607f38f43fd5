"""Firmware against the catalog (``agent/vendors/firmware.toml``): observed as a fact,
judged by the ``firmware-outdated`` rule. No catalog entry or no version: unknown."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from agent.model import UNKNOWN, Device, Fact
from agent.probes import Context

_PART = re.compile(r"\d+|[a-z]+")


@dataclass(frozen=True)
class Entry:
    vendor: str
    model: re.Pattern[str]
    minimum: str
    known_bad: tuple[str, ...]
    source: str


@cache
def catalog() -> tuple[Entry, ...]:
    text = resources.files("agent.vendors").joinpath("firmware.toml").read_text("utf-8")
    return tuple(
        Entry(
            e["vendor"],
            re.compile(rf"(?:{e['model']})\Z", re.I),
            e["minimum"],
            tuple(e.get("known_bad", [])),
            e["source"],
        )
        for e in tomllib.loads(text).get("firmware", [])
    )


def version_key(version: str) -> tuple[tuple[int, object], ...]:
    """'66.86.0.15' < '66.86.0.160'; '7.6.2c' > '7.6.2b'; numbers sort before letters."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in _PART.findall(version.lower()))


def find(device: Device, entries: tuple[Entry, ...]) -> Entry | None:
    return next(
        (e for e in entries if e.vendor == device.vendor and e.model.match(device.model or "")),
        None,
    )


def verdict(device: Device, entries: tuple[Entry, ...] | None = None) -> Fact:
    entries = catalog() if entries is None else entries
    subject = device.ip
    if not (device.vendor and device.model and device.firmware):
        return Fact(subject, "firmware.outdated", UNKNOWN, "firmware", "model or version unknown")
    entry = find(device, entries)
    if entry is None:
        why = f"no catalog entry for {device.vendor} {device.model}"
        return Fact(subject, "firmware.outdated", UNKNOWN, "firmware", why)
    if device.firmware in entry.known_bad:
        why = f"{device.firmware} is known bad ({entry.source})"
        return Fact(subject, "firmware.outdated", True, "firmware", why)
    old = version_key(device.firmware) < version_key(entry.minimum)
    why = f"{device.firmware} {'<' if old else '>='} {entry.minimum} ({entry.source})"
    return Fact(subject, "firmware.outdated", old, "firmware", why)


async def probe(ctx: Context) -> list[Fact]:
    out = []
    for d in ctx.devices:
        fact = verdict(d)
        out.append(fact)
        entry = find(d, catalog())
        if entry is not None:
            out.append(Fact(d.ip, "firmware.minimum", entry.minimum, "firmware", entry.source))
    return out
