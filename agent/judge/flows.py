"""Symptom flows (``[[flow]]`` in ``rules/*.toml``): the symptom lists a person picks from,
per phone family, as in the control panel's "Dépannage Plug & Phone" wizard.

A choice tells the engine some user facts and names, in order, the rules worth showing:
measured checks first, then last the rule holding the guide's manual procedure.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from agent import catalog
from agent.judge.engine import evaluate_condition
from agent.judge.loader import SYMPTOMS, Rule, RuleError

GENERIC = "generic"


@dataclass(frozen=True)
class Choice:
    id: str
    symptom: str
    fr: str
    en: str
    facts: dict[str, Any]
    rules: tuple[str, ...]

    def label(self, lang: str) -> str:
        return self.fr if lang == "fr" else self.en


@dataclass(frozen=True)
class Flow:
    family: str
    models: str
    choices: tuple[Choice, ...]
    origin: str


def _choice(raw: Any, where: str) -> Choice:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: a choice must be a table")
    cid = raw.get("id")
    where = f"{where}: choice {cid!r}"
    if not isinstance(cid, str) or not cid:
        raise RuleError(f"{where}: needs an id")
    if raw.get("symptom") not in SYMPTOMS:
        raise RuleError(f"{where}: symptom must be one of {', '.join(SYMPTOMS)}")
    if not raw.get("fr") or not raw.get("en"):
        raise RuleError(f"{where}: needs fr and en labels")
    if not isinstance(raw["fr"], str) or not isinstance(raw["en"], str):
        raise RuleError(f"{where}: the fr and en labels must be text")
    facts = raw.get("facts", {})
    if not isinstance(facts, dict):
        raise RuleError(f"{where}: facts must be a table")
    for key in facts:
        spec = catalog.lookup(key)
        if spec is None or spec.probe != "user":
            raise RuleError(f"{where}: {key!r} is not a user fact of the catalogue")
    rules = raw.get("rules")
    if not isinstance(rules, list) or not rules or not all(isinstance(r, str) for r in rules):
        raise RuleError(f"{where}: needs a non-empty list of rule ids")
    return Choice(cid, raw["symptom"], raw["fr"], raw["en"], dict(facts), tuple(rules))


def parse_flows(text: str, origin: str) -> tuple[list[Flow], list[RuleError]]:
    try:
        data = tomllib.loads(text)
    except ValueError as e:  # TOMLDecodeError; an integer of over 4300 digits (tomllib)
        return [], [RuleError(f"{origin}: {e}")]
    except RecursionError:  # tomllib recurses into nested arrays and tables
        return [], [RuleError(f"{origin}: nested too deeply")]
    flows, errors = [], []
    raws = data.get("flow", [])
    if not isinstance(raws, list):
        return [], [RuleError(f"{origin}: 'flow' must be an array of tables ([[flow]])")]
    for raw in raws:
        family = raw.get("family") if isinstance(raw, dict) else None
        where = f"{origin}: flow {family!r}"
        try:
            if not isinstance(family, str) or not family:
                raise RuleError(f"{where}: needs a family")
            if not isinstance(raw.get("choice", []), list):
                raise RuleError(f"{where}: 'choice' must be an array of tables")
            choices = tuple(_choice(c, where) for c in raw.get("choice", []))
            if not choices:
                raise RuleError(f"{where}: has no choice")
            flows.append(Flow(family, raw.get("models", ""), choices, origin))
        except RuleError as e:
            errors.append(e)
    return flows, errors


@cache
def _packaged() -> tuple[tuple[Flow, ...], tuple[RuleError, ...]]:
    flows, errors = [], []
    for f in sorted(resources.files("agent.rulesdata").iterdir(), key=lambda p: p.name):
        if f.name.endswith(".toml"):
            fl, er = parse_flows(f.read_text(encoding="utf-8"), f"rules/{f.name}")
            flows += fl
            errors += er
    return tuple(flows), tuple(errors)


def load_flows() -> tuple[list[Flow], list[RuleError]]:
    flows, errors = _packaged()
    return list(flows), list(errors)


def flow_for(family: str | None, flows: list[Flow]) -> Flow | None:
    """The family's symptom list, else the generic one."""
    by_family = {f.family: f for f in flows}
    return by_family.get(family or "") or by_family.get(GENERIC)


def user_facts(choice: Choice, family: str) -> dict[str, Any]:
    """The facts choosing ``choice`` on a phone of ``family`` tells the engine."""
    facts = {"user.symptom": choice.symptom, **choice.facts}
    if family != GENERIC:
        facts["user.phone_family"] = family
    return facts


def self_test(flows: list[Flow], rules: list[Rule]) -> list[str]:
    """Each choice's rules exist, and its facts make its last rule (the procedure) match."""
    by_id = {r.id: r for r in rules}
    failures = []
    for flow in flows:
        for c in flow.choices:
            name = f"flow {flow.family}/{c.id}"
            missing = [r for r in c.rules if r not in by_id]
            if missing:
                failures.append(f"{name}: unknown rule(s) {', '.join(missing)}")
                continue
            last = by_id[c.rules[-1]]
            if evaluate_condition(last.when, user_facts(c, flow.family), []) is not True:
                failures.append(f"{name}: its facts do not make {last.id!r} match")
    return failures
