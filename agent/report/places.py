"""Where each finding's fault sits on the picture of the site: a phone, the office network,
the router, the Internet link, or OVHcloud's side. The mapping is data (``places.toml``)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from agent import judge
from agent.judge.engine import evaluate_condition
from agent.model import UNKNOWN, Finding

PLACES = ("phone", "lan", "router", "internet", "ovhcloud")  # from the office out
BY_FACT = "by-fact"


@dataclass(frozen=True)
class Mapping:
    default: dict[str, str]  # device | site | line -> place
    facts: dict[str, str]  # key prefix -> place (for "by-fact" rules)
    rules: dict[str, str]  # rule id -> place or "by-fact"


def parse(text: str) -> Mapping:
    """The mapping of a places file; ValueError naming what is wrong."""
    data = tomllib.loads(text)
    default = data.get("default", {})
    facts = data.get("facts", {})
    rules = data.get("rules", {})
    if set(default) != {"device", "site", "line"}:
        raise ValueError("[default] needs exactly device, site and line")
    for where, table, allowed in (
        ("default", default, PLACES),
        ("facts", facts, PLACES),
        ("rules", rules, (*PLACES, BY_FACT)),
    ):
        for key, place in table.items():
            if place not in allowed:
                raise ValueError(f"[{where}] {key} = {place!r}: not one of {', '.join(allowed)}")
    return Mapping(dict(default), dict(facts), dict(rules))


@cache
def mapping() -> Mapping:
    return parse(resources.files("agent.report").joinpath("places.toml").read_text("utf-8"))


@cache
def _rules() -> dict[str, judge.Rule]:
    loaded, _errors = judge.load_all()
    return {r.id: r for r in loaded}


def _leaves(cond: dict[str, Any]) -> list[dict[str, Any]]:
    if "all" in cond or "any" in cond:
        return [leaf for c in cond.get("all", cond.get("any", [])) for leaf in _leaves(c)]
    if "not" in cond:
        return []  # a negated fact says where the fault is not
    return [cond]


def fact_place(key: str, m: Mapping | None = None) -> str | None:
    m = m or mapping()
    prefixes = [p for p in m.facts if key.startswith(p)]
    return m.facts[max(prefixes, key=len)] if prefixes else None


def _by_fact(finding: Finding, m: Mapping) -> list[str]:
    """The places of the facts that made the finding's rule true (each condition of its
    ``when`` evaluated alone on the values the finding matched)."""
    rule = _rules().get(finding.rule)
    if rule is None:
        return []
    values = {k: (UNKNOWN if v is None else v) for k, v in finding.matched.items()}
    found: list[str] = []
    for leaf in _leaves(rule.when):
        if evaluate_condition(leaf, values, []) is True:
            place = fact_place(leaf["fact"], m)
            if place and place not in found:
                found.append(place)
    return found


def _subject_default(finding: Finding, m: Mapping) -> str:
    if finding.device:
        return m.default["device"]
    if finding.line:
        return m.default["line"]
    rule = _rules().get(finding.rule)
    return m.default["device" if rule and rule.subject == "device" else "site"]


def places_of(finding: Finding, m: Mapping | None = None) -> list[str]:
    """Where the finding's fault sits: one place, or two for a "by-fact" rule whose line
    and phone facts were both true. A phone place needs the finding's phone: a line with
    no phone on the LAN puts it on OVHcloud's side."""
    m = m or mapping()
    place = m.rules.get(finding.rule)
    found = _by_fact(finding, m) if place == BY_FACT else [place] if place else []
    found = found or [_subject_default(finding, m)]
    if not finding.device:
        found = [m.default["line"] if p == "phone" else p for p in found]
    return list(dict.fromkeys(found))
