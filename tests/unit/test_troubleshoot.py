"""The troubleshooter's walk on a prepared diagnosis (no network): the symptom's findings in
the flow's order, measured before the guide's checklist; numbered steps then « Ça
fonctionne ! » / « Ça ne fonctionne toujours pas ? »; the support summary when unsolved;
--no never asks; bad answers are asked again."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from agent import judge
from agent.config import Config
from agent.model import Device, Fact, Report
from agent.troubleshoot import session, summary
from agent.troubleshoot.ui import UI

GIGASET = Device("10.66.0.13", mac="7c:2f:80:11:22:33", vendor="gigaset", model="C530 IP",
                 firmware="42.245.00.000", found_by=["sip", "mdns"])  # fmt: skip
YEALINK = Device("10.66.0.11", mac="80:5e:c0:aa:bb:cc", vendor="yealink", model="SIP-T46S")
SITE = {"lan.public_ip": "198.51.100.7", "registrar.udp.5060.reachable": True,
        "provider.access": "not-configured"}  # fmt: skip


def prepared(answers: dict, dnd: bool = True, gigaset: bool = True) -> Report:
    facts = [Fact("site", k, v, "test") for k, v in SITE.items()]
    facts += [Fact("site", k, v, "user") for k, v in answers.items()]
    facts += [Fact(GIGASET.ip, "phone.dnd", dnd, "test"),
              Fact(GIGASET.ip, "phone.family", "gigaset", "identify"),
              Fact(GIGASET.ip, "sip.registered", True, "test"),
              Fact(YEALINK.ip, "phone.dnd", False, "test")]  # fmt: skip
    rules, errors = judge.load_all()
    assert errors == []
    devices = [GIGASET, YEALINK] if gigaset else [YEALINK]
    facts = [f for f in facts if gigaset or f.subject != GIGASET.ip]
    return Report(devices=devices, facts=facts, timings={"probe.stun": 0.1, "discover.sip": 0.2},
                  findings=judge.judge(rules, facts, [d.ip for d in devices], "fr"))  # fmt: skip


def walk(monkeypatch, stdin, symptom="no-ring", decide=None, dnd=True, gigaset=True):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    out = io.StringIO()
    ui = UI("fr", decide, Console(file=out, no_color=True, width=200))
    s = session.Session(Config(), [], "fr", ui)
    monkeypatch.setattr(s, "_diagnose", lambda _label: prepared(s.answers, dnd, gigaset))
    result = s.run(symptom)
    return result, out.getvalue()


def test_dnd_found_on_the_right_phone_then_it_works(monkeypatch):
    result, shown = walk(monkeypatch, "1\n")  # « Ça fonctionne ! » after the steps
    assert result.solved and result.device.ip == GIGASET.ip  # the phone with the finding
    assert next(f.rule for f in result.walked) == "dnd-on"
    assert "Diagnostic : Le mode « Ne pas déranger » est actif" in shown
    assert "  1. " in shown and "Ça fonctionne !" in shown and "Problème résolu" in shown
    assert [(x.rule, x.what, x.outcome) for x in result.tried] == [("dnd-on", "steps", "works")]


def test_unsolved_ends_with_the_checklist_then_the_support_summary(monkeypatch):
    result, _shown = walk(monkeypatch, "2\n2\n")
    assert not result.solved
    # the Gigaset DND procedure is explained by dnd-on: not walked again; the guide's
    # checklist comes last
    assert [f.rule for f in result.walked] == ["dnd-on", "no-ring-checklist"]
    text = summary.build(result, "fr")
    for needle in ("Mon téléphone ne sonne plus", "Gigaset C530 IP", "MAC 7c:2f:80:11:22:33",
                   "IP locale 10.66.0.13", "198.51.100.7", "dnd-on", "probe.stun (fait)",
                   "steps -> still not working", "1007"):  # fmt: skip
        assert needle in text, needle
    assert YEALINK.ip not in text  # only the phone concerned


def test_the_symptom_is_asked_and_a_wrong_answer_asked_again(monkeypatch):
    choices = session.symptom_choices()
    assert choices[0].id == "no-ring"
    result, shown = walk(monkeypatch, "abc\n1\n1\n", symptom=None)
    assert result.choice.id == "no-ring" and result.solved
    assert "Répondez par un nombre" in shown and "Que se passe-t-il ?" in shown


def test_no_never_asks_and_nothing_is_solved(monkeypatch):
    result, shown = walk(monkeypatch, "", decide=False)
    assert not result.solved and "Votre choix" not in shown
    assert next(x.outcome for x in result.tried) == "still not working"


def test_a_healthy_office_says_so_and_goes_to_the_checklist(monkeypatch):
    result, shown = walk(monkeypatch, "1\n", dnd=False, gigaset=False)  # the Yealink alone
    assert "aucun problème" in shown
    assert [f.rule for f in result.walked] == ["no-ring-checklist"]
    assert result.solved


def test_end_of_input_is_not_a_yes(monkeypatch):
    result, _shown = walk(monkeypatch, "")
    assert not result.solved


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_every_troubleshooter_message_exists_in_both_languages(lang):
    from agent.troubleshoot.messages import MESSAGES

    assert all(set(v) == {"fr", "en"} and v[lang] for v in MESSAGES.values())
