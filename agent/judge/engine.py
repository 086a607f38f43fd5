"""Evaluate rules on facts: three-valued logic, explanations, findings root cause first."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from agent import catalog
from agent.judge.loader import SEVERITIES, Rule
from agent.model import LINE_PREFIX, UNKNOWN, Fact, Finding


@dataclass
class Evaluation:
    rule: Rule
    subject: str | None
    result: bool | None  # None = unknown
    trace: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


def normalise_text(text: str) -> str:
    """Lower-case, accents and quotes removed, spaces folded: to compare display strings."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    plain = re.sub(r"[«»“”\"'’`]", " ", plain)
    return re.sub(r"\s+", " ", plain).strip()


def _and(values: list[bool | None]) -> bool | None:
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def _or(values: list[bool | None]) -> bool | None:
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def _leaf(cond: dict[str, Any], facts: dict[str, Any], trace: list[str]) -> bool | None:
    key = cond["fact"]
    op = next(k for k in cond if k != "fact")
    want = cond[op]
    value = facts.get(key, UNKNOWN)
    if op == "known":
        result: bool | None = (value is not UNKNOWN) == bool(want)
    elif value is UNKNOWN:
        result = None
    else:
        try:
            result = {
                "eq": lambda: value == want,
                "ne": lambda: value != want,
                "lt": lambda: value < want,
                "le": lambda: value <= want,
                "gt": lambda: value > want,
                "ge": lambda: value >= want,
                "in": lambda: value in want,
                "contains": lambda: want in value,
                "regex": lambda: re.search(want, str(value)) is not None,
                "text": lambda: (
                    re.search(normalise_text(want), normalise_text(str(value))) is not None
                ),
            }[op]()
        except TypeError:
            result = None
    shown = "unknown" if value is UNKNOWN else repr(value)
    verdict = {True: "true", False: "false", None: "unknown"}[result]
    trace.append(f"{key} {op} {want!r}: {shown} -> {verdict}")
    return result


def evaluate_condition(
    cond: dict[str, Any], facts: dict[str, Any], trace: list[str]
) -> bool | None:
    if "all" in cond:
        return _and([evaluate_condition(c, facts, trace) for c in cond["all"]])
    if "any" in cond:
        return _or([evaluate_condition(c, facts, trace) for c in cond["any"]])
    if "not" in cond:
        r = evaluate_condition(cond["not"], facts, trace)
        return None if r is None else not r
    return _leaf(cond, facts, trace)


def used_keys(cond: dict[str, Any]) -> list[str]:
    if "all" in cond or "any" in cond:
        return [k for c in cond.get("all", cond.get("any", [])) for k in used_keys(c)]
    if "not" in cond:
        return used_keys(cond["not"])
    return [cond["fact"]]


def evaluate(rules: list[Rule], facts: list[Fact], devices: list[str]) -> list[Evaluation]:
    """Evaluate every rule: site rules once, device rules per device (with site facts)."""
    site = {f.key: f.value for f in facts if f.subject == "site"}
    out = []
    for rule in rules:
        subjects: list[str | None] = [None] if rule.subject == "site" else list(devices)
        for subject in subjects:
            view = dict(site)
            if subject is not None:
                view.update({f.key: f.value for f in facts if f.subject == subject})
            trace: list[str] = []
            result = evaluate_condition(rule.when, view, trace)
            used = {k: view.get(k, UNKNOWN) for k in used_keys(rule.when)}
            out.append(Evaluation(rule, subject, result, trace, used))
    return out


_PLACEHOLDER = re.compile(r"\{([\w.-]+)\}")
_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")


def _known(values: dict[str, Any], key: str) -> bool:
    v = values.get(key, UNKNOWN)
    return v is not UNKNOWN and v is not None


def fill(template: str, values: dict[str, Any]) -> str:
    """Replace ``{fact.key}`` with the fact's value ("?" when unknown or absent). A
    ``[segment]`` is kept (without its brackets) only when all of its facts are known."""

    def one(m: re.Match[str]) -> str:
        if not _known(values, m.group(1)):
            return "?"
        v = values[m.group(1)]
        return ", ".join(map(str, v)) if isinstance(v, list) else str(v)

    def optional(m: re.Match[str]) -> str:
        keys = _PLACEHOLDER.findall(m.group(1))
        return m.group(1) if all(_known(values, k) for k in keys) else ""

    text = _OPTIONAL.sub(optional, template)
    return re.sub(r"  +", " ", _PLACEHOLDER.sub(one, text)).strip()


def render(ev: Evaluation, facts: list[Fact], lang: str) -> Finding:
    site = {f.key: f.value for f in facts if f.subject == "site"}
    values = dict(site)
    is_line = bool(ev.subject and ev.subject.startswith(LINE_PREFIX))
    if ev.subject:
        values.update({f.key: f.value for f in facts if f.subject == ev.subject})
        values["device"] = ev.subject.removeprefix(LINE_PREFIX)
    t = ev.rule.text[lang]
    line = values.get("line.number")
    return Finding(
        rule=ev.rule.id,
        device=None if is_line else ev.subject,
        line=line if isinstance(line, str) else None,
        severity=ev.rule.severity,
        title=fill(t.title, values),
        explanation=fill(t.explanation, values),
        remedies=[step for s in t.steps if (step := fill(s, values))],
        guide=ev.rule.guide,
        matched={k: (None if v is UNKNOWN else v) for k, v in ev.facts.items()},
    )


def _only_user_facts(rule: Rule) -> bool:
    specs = [catalog.lookup(k) for k in used_keys(rule.when)]
    return all(s is not None and s.probe == "user" for s in specs)


def judge(rules: list[Rule], facts: list[Fact], devices: list[str], lang: str) -> list[Finding]:
    """Findings for the rules that matched, root causes first, then by severity."""
    matched = [e for e in evaluate(rules, facts, devices) if e.result is True]
    ids = {e.rule.id for e in matched}
    explained = {x for e in matched for x in e.rule.explains if x in ids}

    def order(e: Evaluation) -> tuple[int, int, int, int, str, str]:
        return (
            0 if any(x in ids for x in e.rule.explains) else 1,
            1 if e.rule.id in explained else 0,
            1 if _only_user_facts(e.rule) else 0,  # measured before what the person said
            SEVERITIES.index(e.rule.severity),
            e.rule.id,
            e.subject or "",
        )

    return [render(e, facts, lang) for e in sorted(matched, key=order)]


def self_test(rules: list[Rule]) -> list[str]:
    """Run every rule's embedded test cases; return the failures (empty when all pass)."""
    failures = []
    for rule in rules:
        if not rule.tests:
            failures.append(f"{rule.id}: has no test case")
        for i, case in enumerate(rule.tests, 1):
            facts = case.get("facts", {})
            got = evaluate_condition(rule.when, facts, [])
            if (got is True) != bool(case.get("expect")):
                failures.append(f"{rule.id}: test {i} expected {case.get('expect')}, got {got}")
    return failures
