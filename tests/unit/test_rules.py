import pytest

from agent import judge
from agent.model import UNKNOWN, Fact


def facts(**kv):
    return [Fact("site", k.replace("__", "."), v, "test") for k, v in kv.items()]


def site(d):
    return [Fact("site", k, v, "test") for k, v in d.items()]


def test_shipped_rules_load_and_pass_their_embedded_tests():
    rules = judge.load()
    assert {"dns-failure", "sip-port-blocked"} <= {r.id for r in rules}
    assert judge.self_test(rules) == []


def test_sip_port_blocked_matches_and_explains_in_both_languages():
    f = site(
        {
            "registrar.host": "sip.ovh.test",
            "registrar.udp.5060.reachable": False,
            "registrar.udp.5962.reachable": True,
            "dns.registrar.resolves": True,
        }
    )
    fr = judge.judge(judge.load(), f, [], "fr")
    en = judge.judge(judge.load(), f, [], "en")
    assert [x.rule for x in fr] == ["sip-port-blocked"]
    assert "5060" in fr[0].title and "sip.ovh.test" in fr[0].explanation
    assert fr[0].title != en[0].title and "blocked" in en[0].title
    assert fr[0].remedies and fr[0].matched == {
        "registrar.udp.5060.reachable": False,
        "registrar.udp.5962.reachable": True,
    }


def test_healthy_facts_give_no_finding():
    f = site(
        {
            "registrar.host": "h",
            "dns.registrar.resolves": True,
            "registrar.udp.5060.reachable": True,
            "registrar.udp.5962.reachable": True,
        }
    )
    assert judge.judge(judge.load(), f, [], "fr") == []


def test_unknown_is_not_false():
    # DNS failed, so reachability is unknown: only the root cause is reported.
    f = site(
        {
            "registrar.host": "h",
            "dns.registrar.resolves": False,
            "registrar.udp.5060.reachable": UNKNOWN,
            "registrar.udp.5962.reachable": UNKNOWN,
        }
    )
    assert [x.rule for x in judge.judge(judge.load(), f, [], "en")] == ["dns-failure"]
    trace = []
    cond = {"not": {"fact": "registrar.udp.5060.reachable", "eq": True}}
    assert judge.evaluate_condition(cond, {}, trace) is None
    assert trace == ["registrar.udp.5060.reachable eq True: unknown -> unknown"]


def test_root_cause_first():
    text = RULE.replace('id = "r1"', 'id = "symptom"') + RULE.replace(
        'id = "r1"', 'id = "cause"'
    ).replace('severity = "critical"', 'severity = "info"').replace(
        "[[rule]]", '[[rule]]\nexplains = ["symptom"]'
    )
    rules = judge.parse_rules(text, "t.toml")
    out = judge.judge(rules, site({"dns.registrar.resolves": False}), [], "en")
    assert [f.rule for f in out] == ["cause", "symptom"]


RULE = """
[[rule]]
id = "r1"
severity = "critical"
symptoms = ["network"]
guide = { slug = "g", section = "1" }
when = { fact = "dns.registrar.resolves", eq = false }
fr = { title = "t", explanation = "e" }
en = { title = "t", explanation = "e" }
[[rule.test]]
facts = { "dns.registrar.resolves" = false }
expect = true
[[rule.test]]
facts = { "dns.registrar.resolves" = true }
expect = false
"""


@pytest.mark.parametrize(
    "change, message",
    [
        (('"dns.registrar.resolves", eq', '"no.such.fact", eq'), "unknown fact key 'no.such.fact'"),
        (("eq = false", "equals = false"), "needs exactly one operator"),
        (('severity = "critical"', 'severity = "fatal"'), "severity must be one of"),
        (('symptoms = ["network"]', 'symptoms = ["tired"]'), "symptoms must be"),
        (('fr = { title = "t", explanation = "e" }', ""), "[rule.fr] needs title"),
        (('id = "r1"', 'id = "R 1"'), "lower-case-with-dashes"),
        (("when = {", "when = {{"), "t.toml"),
    ],
)
def test_bad_rule_file_names_file_and_line(change, message):
    with pytest.raises(judge.RuleError) as e:
        judge.parse_rules(RULE.replace(*change), "t.toml")
    assert message in str(e.value) and str(e.value).startswith("t.toml")


def test_error_points_at_the_rule_line():
    with pytest.raises(judge.RuleError, match=r"^t.toml:3: "):
        judge.parse_rules(RULE.replace("eq = false", "eq = false, ne = true"), "t.toml")


def test_embedded_test_failure_is_reported():
    rules = judge.parse_rules(RULE.replace("eq = false", "eq = true"), "t.toml")
    assert judge.self_test(rules) == [
        "r1: test 1 expected True, got False",
        "r1: test 2 expected False, got True",
    ]


def test_duplicate_ids_refused(tmp_path):
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(RULE)
    b.write_text(RULE)
    with pytest.raises(judge.RuleError, match="already defined"):
        judge.load([a, b])


def test_operators():
    f = {"lan.phones_found": 3, "lan.gateway": "10.66.0.1"}
    ev = judge.evaluate_condition
    assert ev({"fact": "lan.phones_found", "ge": 3}, f, []) is True
    assert ev({"fact": "lan.phones_found", "lt": 3}, f, []) is False
    assert ev({"fact": "lan.phones_found", "in": [1, 2]}, f, []) is False
    assert ev({"fact": "lan.gateway", "regex": r"^10\."}, f, []) is True
    assert ev({"fact": "lan.gateway", "lt": 3}, f, []) is None  # type mismatch: unknown
    assert ev({"fact": "registrar.host", "known": False}, f, []) is True
    assert (
        ev(
            {"any": [{"fact": "registrar.host", "eq": "x"}, {"fact": "lan.phones_found", "eq": 3}]},
            f,
            [],
        )
        is True
    )


def test_one_bad_rule_does_not_hide_the_others(tmp_path):
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(RULE)
    bad.write_text(
        RULE.replace('id = "r1"', 'id = "r2"').replace("eq = false", "eq = false, x = 1")
        + RULE.replace('id = "r1"', 'id = "r3"')
    )
    rules, errors = judge.load_all([good, bad])
    assert sorted(r.id for r in rules) == ["r1", "r3"]
    assert [str(e) for e in errors] == [
        f"{bad}:3: fact 'dns.registrar.resolves' needs exactly one operator of "
        + ", ".join(judge.OPERATORS)
    ]


def test_text_operator_ignores_case_accents_and_quotes():
    ev = judge.evaluate_condition
    cond = {"fact": "display.message", "text": "échec enregistrement"}
    assert ev(cond, {"display.message": "  ECHEC   Enregistrement"}, []) is True
    assert ev(cond, {"display.message": "« Échec enregistrement »"}, []) is True
    assert ev(cond, {"display.message": "Pas de base"}, []) is False
    assert ev(cond, {}, []) is None
