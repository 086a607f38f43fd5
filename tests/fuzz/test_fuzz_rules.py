"""Rule files (agent/judge/loader.py; a technician's own, through ``phonediag rules test
FILE``), symptom flows (agent/judge/flows.py) and the remedy catalogue
(agent/remedies/spec.py): any text or any table gives rules or RuleError (SpecError for
remedies), one per bad entry, never another exception."""

from __future__ import annotations

import contextlib
import math
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.judge import flows, loader
from agent.remedies import spec
from tests.fuzz.strategies import (
    hostile_text,
    mutated_text,
    mutated_tree,
    toml_document,
    toml_values,
)

ROOT = Path(__file__).parents[2]
RULE_FILES = {p.name: p.read_text("utf-8") for p in sorted((ROOT / "rules").glob("*.toml"))}
REMEDIES = (ROOT / "agent/remedies/remedies.toml").read_text(encoding="utf-8")
RULES = [r for text in RULE_FILES.values() for r in tomllib.loads(text).get("rule", [])]
FLOWS = [f for text in RULE_FILES.values() for f in tomllib.loads(text).get("flow", [])]
REMEDY_TABLES = tomllib.loads(REMEDIES)["remedy"]

texts = st.sampled_from(sorted(RULE_FILES.values()))
rule_tables = mutated_tree(st.sampled_from(RULES))
rule_documents = st.one_of(
    texts,
    mutated_text(texts, max_ops=3),
    st.lists(rule_tables | st.sampled_from(RULES), max_size=3).map(
        lambda rules: toml_document({"rule": rules}) if rules else ""
    ),
    st.dictionaries(st.sampled_from(["rule", "flow"]) | st.text(max_size=6), toml_values).map(
        toml_document
    ),
    hostile_text,
)


@given(rule_documents)
def test_rule_files(text: str) -> None:
    rules, errors = loader.parse_rules_lenient(text, "mine.toml")
    assert all(isinstance(r, loader.Rule) for r in rules)
    assert all(isinstance(e, loader.RuleError) for e in errors)
    try:
        loader.parse_rules(text, "mine.toml")
    except loader.RuleError as e:
        assert "mine.toml" in str(e)


@given(st.one_of(rule_tables, toml_values))
def test_one_rule_table(raw) -> None:
    try:
        rule = loader._parse_rule(raw, "", "mine.toml")
    except loader.RuleError:
        return
    assert rule.severity in loader.SEVERITIES and set(rule.symptoms) <= set(loader.SYMPTOMS)


@given(st.one_of(mutated_tree(st.sampled_from(FLOWS)), st.sampled_from(FLOWS), toml_values))
def test_flows(raw) -> None:
    text = toml_document({"flow": [raw]}) if isinstance(raw, dict) else toml_document({"flow": raw})
    found, errors = flows.parse_flows(text, "mine.toml")
    assert all(isinstance(f, flows.Flow) for f in found)
    assert all(isinstance(e, loader.RuleError) for e in errors)


@given(st.one_of(mutated_tree(st.sampled_from(REMEDY_TABLES)), toml_values))
def test_one_remedy(raw) -> None:
    try:
        remedy = spec.parse(raw)
    except spec.SpecError:
        return
    assert remedy.action in spec.ACTIONS and remedy.target in spec.TARGETS
    assert math.isfinite(remedy.settle_s) and remedy.settle_s >= 0


@given(
    st.one_of(
        mutated_text(st.just(REMEDIES), max_ops=3),
        st.lists(mutated_tree(st.sampled_from(REMEDY_TABLES)), max_size=3).map(
            lambda r: toml_document({"remedy": r}) if r else ""
        ),
        st.dictionaries(st.sampled_from(["remedy"]) | st.text(max_size=6), toml_values).map(
            toml_document
        ),
    )
)
def test_remedy_catalogue(text: str) -> None:
    with contextlib.suppress(spec.SpecError):
        spec.parse_catalogue(text)


DEEP_NOT = "{not = " * 400 + '{fact = "sip.registered", eq = true}' + "}" * 400


@pytest.mark.parametrize(
    "when",
    [
        DEEP_NOT,
        '{fact = "sip.last_reason", regex = "' + "(" * 2000 + ")" * 2000 + '"}',
        '{fact = "sip.last_reason", regex = "a{99999999999}"}',
    ],
    ids=["deep not", "deep regex", "huge repeat"],
)
def test_hostile_conditions_are_rule_errors(when: str) -> None:
    text = RULE_FILES["registration.toml"]
    rule = tomllib.loads(text)["rule"][0]
    rule["when"] = "WHEN"
    doc = toml_document({"rule": [rule]}).replace('"WHEN"', when)
    rules, errors = loader.parse_rules_lenient(doc, "mine.toml")
    assert len(rules) + len(errors) <= 1
    assert all(isinstance(e, loader.RuleError) for e in errors)


def test_regressions() -> None:
    """Found by the fuzzer: values of the wrong type that raised TypeError (a symptom or
    an expect that is a table, actions that are a number, a flow that is a number, facts
    that are a list) instead of a RuleError naming the rule; an id line looked up with a
    pattern quadratic in the blank lines that follow it (14 s for 64 KiB)."""
    from tests.fuzz.strategies import bounded

    base = dict(RULES[0])
    for change in (
        {"symptoms": [{"a": 1}]},
        {"test": [{"expect": [1]}, {"expect": {"a": 1}}]},
        {"actions": 5},
        {"en": {**base["en"], "steps": 5}},
        {"fr": {**base["fr"], "title": 5}},
        {"when": {"fact": "sip.last_reason", "regex": "a{99999999999}"}},
    ):
        with pytest.raises(loader.RuleError):
            loader._parse_rule({**base, **change}, "", "mine.toml")
    for doc in ("flow = 5\n", "[[flow]]\nfamily = 'x'\nchoice = 5\n",
                "[[flow]]\nfamily = 'x'\n[[flow.choice]]\nid = 'a'\nsymptom = 'no-ring'\n"
                "fr = 'a'\nen = 'b'\nfacts = [1]\nrules = ['x']\n"):  # fmt: skip
        found, errors = flows.parse_flows(doc, "mine.toml")
        assert found == [] and len(errors) == 1
    with pytest.raises(spec.SpecError):
        spec.parse_catalogue("remedy = 5\n")
    with pytest.raises(spec.SpecError):
        spec.parse({**REMEDY_TABLES[0], "settle_s": float("nan")})
    digits = "[[rule]]\nid = 'x'\nn = " + "9" * 5000 + "\n"  # tomllib: ValueError
    assert len(loader.parse_rules_lenient(digits, "mine.toml")[1]) == 1
    assert len(flows.parse_flows(digits, "mine.toml")[1]) == 1
    with pytest.raises(spec.SpecError):
        spec.parse_catalogue(digits)
    blank = "[[rule]]\nid = 'x'\n" + "\n" * 65536
    bounded(loader.parse_rules_lenient, blank, "mine.toml", seconds=0.5)
