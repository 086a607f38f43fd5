"""The fact vocabulary (``agent/facts.toml``): what each key means and which probe emits it."""

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
    data = tomllib.loads(resources.files("agent").joinpath("facts.toml").read_text("utf-8"))
    specs = []
    for key, d in data.items():
        if d["type"] not in TYPES or d["subject"] not in ("site", "device"):
            raise ValueError(f"agent/facts.toml: bad type or subject for {key}")
        rx = re.escape(key).replace(r"\{port\}", r"\d+")
        specs.append(
            FactSpec(key, d["type"], d["subject"], d["probe"], d["en"], d["fr"], re.compile(rx))
        )
    return tuple(specs)


def lookup(key: str) -> FactSpec | None:
    return next((s for s in catalog() if s.pattern.fullmatch(key)), None)
