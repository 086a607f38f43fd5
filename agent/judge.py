"""The rules engine: load ``rules/*.toml`` (data), evaluate them on facts, produce findings.

Three-valued logic: a condition on a fact that is missing or *unknown* is itself
unknown, never false. A rule matches only when its condition is true; ``--explain``
shows why every rule did or did not match. Findings are ordered root cause first.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from agent import catalog
from agent.model import UNKNOWN, Fact, Finding

SEVERITIES = ("critical", "warning", "info")
SYMPTOMS = {
    "no-ring",
    "error-message",
    "registration",
    "no-dial-tone",
    "cannot-call-out",
    "one-way-audio",
    "network",
}
OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "regex", "known")
LANGS = ("fr", "en")


class RuleError(ValueError):
    """A rule file is invalid; the message names the file and line."""


@dataclass(frozen=True)
class Text:
    title: str
    explanation: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    id: str
    subject: str  # "site" | "device"
    severity: str
    symptoms: tuple[str, ...]
    guide: str
    when: dict[str, Any]
    text: dict[str, Text]
    actions: tuple[str, ...] = ()
    explains: tuple[str, ...] = ()
    tests: tuple[dict[str, Any], ...] = ()
    origin: str = ""


@dataclass
class Evaluation:
    rule: Rule
    subject: str | None
    result: bool | None  # None = unknown
    trace: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- loading


def _fail(origin: str, text: str, rule_id: str | None, msg: str) -> RuleError:
    line = 0
    if rule_id:
        m = re.search(rf'^\s*id\s*=\s*"{re.escape(rule_id)}"', text, re.M)
        line = text.count("\n", 0, m.start()) + 1 if m else 0
    where = f"{origin}:{line}" if line else origin
    return RuleError(f"{where}: {msg}")


def _check_condition(cond: Any, fail) -> None:
    if not isinstance(cond, dict) or not cond:
        raise fail("a condition must be a non-empty table")
    if "all" in cond or "any" in cond:
        key = "all" if "all" in cond else "any"
        if len(cond) != 1 or not isinstance(cond[key], list) or not cond[key]:
            raise fail(f"'{key}' must be the only key and a non-empty list")
        for c in cond[key]:
            _check_condition(c, fail)
        return
    if "not" in cond:
        if len(cond) != 1:
            raise fail("'not' must be the only key")
        _check_condition(cond["not"], fail)
        return
    key = cond.get("fact")
    ops = [k for k in cond if k != "fact"]
    if not isinstance(key, str):
        raise fail('a leaf condition needs fact = "key"')
    if catalog.lookup(key) is None:
        raise fail(f"unknown fact key {key!r} (not in agent/facts.toml)")
    if len(ops) != 1 or ops[0] not in OPERATORS:
        raise fail(f"fact {key!r} needs exactly one operator of {', '.join(OPERATORS)}")
    if ops[0] == "regex":
        try:
            re.compile(cond["regex"])
        except (re.error, TypeError) as e:
            raise fail(f"bad regex for {key!r}: {e}") from None


def parse_rules(text: str, origin: str) -> list[Rule]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RuleError(f"{origin}: {e}") from None
    rules = []
    for raw in data.get("rule", []):
        rid = raw.get("id")

        def fail(msg: str, rid: str | None = rid) -> RuleError:
            return _fail(origin, text, rid, msg)

        if not isinstance(rid, str) or not re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", rid):
            raise fail("every rule needs an id in lower-case-with-dashes")
        if raw.get("severity") not in SEVERITIES:
            raise fail(f"severity must be one of {', '.join(SEVERITIES)}")
        if raw.get("subject", "site") not in ("site", "device"):
            raise fail("subject must be 'site' or 'device'")
        bad = set(raw.get("symptoms", [])) - SYMPTOMS
        if bad or not raw.get("symptoms"):
            raise fail(f"symptoms must be a non-empty subset of {sorted(SYMPTOMS)}")
        if not isinstance(raw.get("guide"), str):
            raise fail('guide = "slug#section" is required')
        _check_condition(raw.get("when"), fail)
        texts = {}
        for lang in LANGS:
            t = raw.get(lang)
            if not isinstance(t, dict) or not t.get("title") or not t.get("explanation"):
                raise fail(f"[rule.{lang}] needs title and explanation")
            texts[lang] = Text(t["title"], t["explanation"], tuple(t.get("steps", [])))
        rules.append(
            Rule(
                id=rid,
                subject=raw.get("subject", "site"),
                severity=raw["severity"],
                symptoms=tuple(raw["symptoms"]),
                guide=raw["guide"],
                when=raw["when"],
                text=texts,
                actions=tuple(raw.get("actions", [])),
                explains=tuple(raw.get("explains", [])),
                tests=tuple(raw.get("test", [])),
                origin=origin,
            )
        )
    return rules


def load(paths: Iterable[Path] | None = None) -> list[Rule]:
    """Load every rule file; raise :class:`RuleError` on the first invalid one."""
    if paths is None:
        return list(_packaged())
    rules: list[Rule] = []
    for p in paths:
        rules.extend(parse_rules(Path(p).read_text(encoding="utf-8"), str(p)))
    _check_unique(rules)
    return rules


@cache
def _packaged() -> tuple[Rule, ...]:
    rules: list[Rule] = []
    for f in sorted(resources.files("agent.rulesdata").iterdir(), key=lambda p: p.name):
        if f.name.endswith(".toml"):
            rules.extend(parse_rules(f.read_text(encoding="utf-8"), f"rules/{f.name}"))
    _check_unique(rules)
    return tuple(rules)


def _check_unique(rules: list[Rule]) -> None:
    seen: dict[str, str] = {}
    for r in rules:
        if r.id in seen:
            raise RuleError(f"{r.origin}: rule id {r.id!r} already defined in {seen[r.id]}")
        seen[r.id] = r.origin


# ---------------------------------------------------------------- evaluation


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
                "regex": lambda: re.search(want, str(value)) is not None,
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


def _used_keys(cond: dict[str, Any]) -> list[str]:
    if "all" in cond or "any" in cond:
        return [k for c in cond.get("all", cond.get("any", [])) for k in _used_keys(c)]
    if "not" in cond:
        return _used_keys(cond["not"])
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
            used = {k: view.get(k, UNKNOWN) for k in _used_keys(rule.when)}
            out.append(Evaluation(rule, subject, result, trace, used))
    return out


_PLACEHOLDER = re.compile(r"\{([\w.-]+)\}")


def fill(template: str, values: dict[str, Any]) -> str:
    """Replace ``{fact.key}`` with the fact's value ("?" when unknown or absent)."""

    def one(m: re.Match[str]) -> str:
        v = values.get(m.group(1), UNKNOWN)
        if v is UNKNOWN or v is None:
            return "?"
        return ", ".join(map(str, v)) if isinstance(v, list) else str(v)

    return _PLACEHOLDER.sub(one, template)


def render(ev: Evaluation, facts: list[Fact], lang: str) -> Finding:
    site = {f.key: f.value for f in facts if f.subject == "site"}
    values = dict(site)
    if ev.subject:
        values.update({f.key: f.value for f in facts if f.subject == ev.subject})
        values["device"] = ev.subject
    t = ev.rule.text[lang]
    return Finding(
        rule=ev.rule.id,
        device=ev.subject,
        severity=ev.rule.severity,
        title=fill(t.title, values),
        explanation=fill(t.explanation, values),
        remedies=[fill(s, values) for s in t.steps],
        guide=ev.rule.guide,
        matched={k: (None if v is UNKNOWN else v) for k, v in ev.facts.items()},
    )


def judge(rules: list[Rule], facts: list[Fact], devices: list[str], lang: str) -> list[Finding]:
    """Findings for the rules that matched, root causes first, then by severity."""
    matched = [e for e in evaluate(rules, facts, devices) if e.result is True]
    ids = {e.rule.id for e in matched}
    explained = {x for e in matched for x in e.rule.explains if x in ids}

    def order(e: Evaluation) -> tuple[int, int, int, str, str]:
        return (
            0 if any(x in ids for x in e.rule.explains) else 1,
            1 if e.rule.id in explained else 0,
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
