"""Read and validate rule files. A bad rule gives one error naming its file and line;
the other rules, in that file and in the others, still load."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from agent import catalog

SEVERITIES = ("critical", "warning", "info")
SYMPTOMS = (
    "no-ring",
    "error-message",
    "registration",
    "no-dial-tone",
    "cannot-call-out",
    "one-way-audio",
    "network",
)
OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "regex", "text", "known")
LANGS = ("fr", "en")
MAX_DEPTH = 32  # all/any/not nested at most this deep
_ID = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


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
    guide: str  # "slug § section"
    when: dict[str, Any]
    text: dict[str, Text]
    actions: tuple[str, ...] = ()  # automatic remedy ids
    explains: tuple[str, ...] = ()  # rules this one is the root cause of
    covers: tuple[str, ...] = ()  # guide items this rule encodes (docs/coverage.md)
    tests: tuple[dict[str, Any], ...] = ()
    origin: str = ""


Fail = Callable[[str], RuleError]


def _failer(origin: str, text: str, rule_id: object) -> Fail:
    line = 0
    if isinstance(rule_id, str):
        # [ \t]*, not \s*: from every line start, \s* ran over all the blank lines that
        # follow, quadratic (14 s for 64 KiB of them when the id is not found; tests/fuzz)
        m = re.search(rf'^[ \t]*id[ \t]*=[ \t]*"{re.escape(rule_id)}"', text, re.M)
        line = text.count("\n", 0, m.start()) + 1 if m else 0
    where = f"{origin}:{line}" if line else origin
    return lambda msg: RuleError(f"{where}: {msg}")


def _check_condition(cond: Any, fail: Fail, depth: int = 0) -> None:
    if not isinstance(cond, dict) or not cond:
        raise fail("a condition must be a non-empty table")
    if depth > MAX_DEPTH:
        raise fail(f"conditions nested more than {MAX_DEPTH} deep")
    for combinator in ("all", "any"):
        if combinator in cond:
            if len(cond) != 1 or not isinstance(cond[combinator], list) or not cond[combinator]:
                raise fail(f"'{combinator}' must be the only key and a non-empty list")
            for c in cond[combinator]:
                _check_condition(c, fail, depth + 1)
            return
    if "not" in cond:
        if len(cond) != 1:
            raise fail("'not' must be the only key")
        _check_condition(cond["not"], fail, depth + 1)
        return
    key = cond.get("fact")
    ops = [k for k in cond if k != "fact"]
    if not isinstance(key, str):
        raise fail('a leaf condition needs fact = "key"')
    if catalog.lookup(key) is None:
        raise fail(f"unknown fact key {key!r} (not in agent/facts/*.toml)")
    if len(ops) != 1 or ops[0] not in OPERATORS:
        raise fail(f"fact {key!r} needs exactly one operator of {', '.join(OPERATORS)}")
    op = ops[0]
    if op in ("regex", "text"):
        try:
            re.compile(cond[op])
        # OverflowError: a{99999999999}; RecursionError: thousands of nested groups
        except (re.error, TypeError, OverflowError, RecursionError) as e:
            raise fail(f"bad regex for {key!r}: {type(e).__name__}: {e}") from None
    if op == "in" and not isinstance(cond[op], list):
        raise fail(f"'in' for {key!r} needs a list")


def _parse_rule(raw: Any, text: str, origin: str) -> Rule:
    rid = raw.get("id") if isinstance(raw, dict) else None
    fail = _failer(origin, text, rid)
    if not isinstance(raw, dict) or not isinstance(rid, str) or not _ID.fullmatch(rid):
        raise fail("every rule needs an id in lower-case-with-dashes")
    if raw.get("severity") not in SEVERITIES:
        raise fail(f"severity must be one of {', '.join(SEVERITIES)}")
    if raw.get("subject", "site") not in ("site", "device"):
        raise fail("subject must be 'site' or 'device'")
    symptoms = raw.get("symptoms")
    if not isinstance(symptoms, list) or not symptoms or any(s not in SYMPTOMS for s in symptoms):
        raise fail(f"symptoms must be a non-empty subset of {', '.join(SYMPTOMS)}")
    guide = raw.get("guide")
    if not (isinstance(guide, dict) and guide.get("slug") and guide.get("section")):
        raise fail('guide = { slug = "...", section = "..." } is required')
    _check_condition(raw.get("when"), fail)
    texts = {}
    for lang in LANGS:
        t = raw.get(lang)
        if not isinstance(t, dict) or not t.get("title") or not t.get("explanation"):
            raise fail(f"[rule.{lang}] needs title and explanation")
        if not all(isinstance(t[k], str) for k in ("title", "explanation")):
            raise fail(f"[rule.{lang}] title and explanation must be text")
        if not _texts(t.get("steps", [])):
            raise fail(f"[rule.{lang}] steps must be a list of text")
        texts[lang] = Text(t["title"], t["explanation"], tuple(t.get("steps", [])))
    if len(texts["fr"].steps) != len(texts["en"].steps):
        raise fail("[rule.fr] and [rule.en] must have the same number of steps")
    tests = raw.get("test", [])
    if not isinstance(tests, list) or not all(isinstance(t, dict) for t in tests):
        raise fail("[[rule.test]] entries must be tables")
    expects = [t.get("expect") for t in tests]  # a list: an expect may be any (unhashable) value
    if True not in expects or False not in expects:
        raise fail("needs at least one [[rule.test]] with expect = true and one with false")
    for name in ("actions", "explains", "covers"):
        if not _texts(raw.get(name, [])):
            raise fail(f"{name} must be a list of text")
    return Rule(
        id=rid,
        subject=raw.get("subject", "site"),
        severity=raw["severity"],
        symptoms=tuple(symptoms),
        guide=f"{guide['slug']} § {guide['section']}",
        when=raw["when"],
        text=texts,
        actions=tuple(raw.get("actions", [])),
        explains=tuple(raw.get("explains", [])),
        covers=tuple(raw.get("covers", [])),
        tests=tuple(tests),
        origin=origin,
    )


def _texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def parse_rules_lenient(text: str, origin: str) -> tuple[list[Rule], list[RuleError]]:
    """Parse one rule file, keeping the valid rules and collecting an error per bad one."""
    try:
        data = tomllib.loads(text)
    except ValueError as e:  # TOMLDecodeError; an integer of over 4300 digits (tomllib)
        return [], [RuleError(f"{origin}: {e}")]
    except RecursionError:  # tomllib recurses into nested arrays and tables
        return [], [RuleError(f"{origin}: nested too deeply")]
    rules: list[Rule] = []
    errors: list[RuleError] = []
    raws = data.get("rule", [])
    if not isinstance(raws, list):
        return [], [RuleError(f"{origin}: 'rule' must be an array of tables ([[rule]])")]
    for raw in raws:
        try:
            rules.append(_parse_rule(raw, text, origin))
        except RuleError as e:
            errors.append(e)
    return rules, errors


def parse_rules(text: str, origin: str) -> list[Rule]:
    """Parse one rule file; raise its first :class:`RuleError`."""
    rules, errors = parse_rules_lenient(text, origin)
    if errors:
        raise errors[0]
    return rules


def _combine(files: list[tuple[str, str]]) -> tuple[list[Rule], list[RuleError]]:
    rules: list[Rule] = []
    errors: list[RuleError] = []
    for origin, text in files:
        r, e = parse_rules_lenient(text, origin)
        rules += r
        errors += e
    seen: dict[str, str] = {}
    unique = []
    for r in rules:
        if r.id in seen:
            errors.append(
                RuleError(f"{r.origin}: rule id {r.id!r} already defined in {seen[r.id]}")
            )
        else:
            seen[r.id] = r.origin
            unique.append(r)
    for r in unique:
        errors += [
            RuleError(f"{r.origin}: rule {r.id!r} explains unknown rule {x!r}")
            for x in r.explains
            if x not in seen
        ]
    return unique, errors


def _read(p: Path) -> tuple[str, str] | RuleError:
    try:
        return str(p), p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return RuleError(f"{p}: cannot read: {e}")


def load_all(paths: Iterable[Path | str] | None = None) -> tuple[list[Rule], list[RuleError]]:
    """Every valid rule, and one error per invalid rule or unreadable file."""
    if paths is None:
        rules, errors = _packaged()
        return list(rules), list(errors)
    read = [_read(Path(p)) for p in paths]
    rules, errors = _combine([r for r in read if isinstance(r, tuple)])
    return rules, [r for r in read if isinstance(r, RuleError)] + errors


def load(paths: Iterable[Path | str] | None = None) -> list[Rule]:
    """Every rule; raise the first :class:`RuleError` if any rule is invalid."""
    rules, errors = load_all(paths)
    if errors:
        raise errors[0]
    return rules


@cache
def _packaged() -> tuple[tuple[Rule, ...], tuple[RuleError, ...]]:
    files = [
        (f"rules/{f.name}", f.read_text(encoding="utf-8"))
        for f in sorted(resources.files("agent.rulesdata").iterdir(), key=lambda p: p.name)
        if f.name.endswith(".toml")
    ]
    rules, errors = _combine(files)
    return tuple(rules), tuple(errors)
