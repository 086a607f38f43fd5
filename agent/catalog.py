"""The fact vocabulary (``agent/facts/*.toml``): what each key means and which probe emits it."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

TYPES = {"bool", "int", "float", "str", "list"}


@dataclass(frozen=True)
class FactSpec:
    key: str
    type: str
    subject: str
    probe: str
    en: str
    fr: str
    pattern: re.Pattern[str]


@cache
def catalog() -> tuple[FactSpec, ...]:
    files = sorted(resources.files("agent.facts").iterdir(), key=lambda p: p.name)
    specs = []
    seen: dict[str, str] = {}
    for f in (f for f in files if f.name.endswith(".toml")):
        specs += _parse(tomllib.loads(f.read_text("utf-8")), f"agent/facts/{f.name}", seen)
    return tuple(specs)


def _parse(data: dict, origin: str, seen: dict[str, str]) -> list[FactSpec]:
    specs = []
    for key, d in data.items():
        if key in seen:
            raise ValueError(f"{origin}: fact {key} already defined in {seen[key]}")
        seen[key] = origin
        if d.get("type") not in TYPES or d.get("subject") not in ("site", "device"):
            raise ValueError(f"{origin}: bad type or subject for {key}")
        rx = re.escape(key).replace(r"\{port\}", r"\d+")
        specs.append(
            FactSpec(key, d["type"], d["subject"], d["probe"], d["en"], d["fr"], re.compile(rx))
        )
    return specs


def lookup(key: str) -> FactSpec | None:
    return next((s for s in catalog() if s.pattern.fullmatch(key)), None)
