"""The knowledge base answers every item of the guides (ovh-guides.md §2, §3, §6, §8):
each display string, LED state, server error and event leads to a finding, and the
feature codes are in the steps people read."""

import pytest

from agent import judge
from agent.model import Fact

RULES = judge.load()


def findings(site=None, device=None):
    facts = [Fact("site", k, v, "test") for k, v in (site or {}).items()]
    facts += [Fact("10.0.0.5", k, v, "test") for k, v in (device or {}).items()]
    return [f.rule for f in judge.judge(RULES, facts, ["10.0.0.5"], "fr")]


@pytest.mark.parametrize(
    "message, family",
    [
        ("erreur réseau", None),
        ("Obtention de l'adresse IP", None),
        ("Checking DNS", "cisco"),
        ("Recherche DHCP", "cisco"),
        ("Echec Enregistrement", "siemens"),
        ("Pas de base", "siemens"),
        ("Échec connexion fournis. services", "siemens"),
        ("Waiting for Upgrade", "gigaset"),
        ("Undefined call server", "lg"),
        ("Absence réseau", "lg"),
        ("Connexion ...", "lg"),
        ("Erreur de téléchargement XML", "lg"),
        ("Pas de connexion IP", "thomson"),
        ("Local", "thomson"),
        ("Sens interdit", "lg"),
    ],
)
def test_every_display_string_has_its_rule(message, family):
    site = {"user.symptom": "error-message", "display.message": message}
    if family:
        site["user.phone_family"] = family
    got = findings(site)
    assert got and got != ["error-message-generic"], (message, got)


@pytest.mark.parametrize(
    "led",
    [
        "power-off",
        "power-red-blinking",
        "line1-off",
        "line1-green",
        "line1-blinking",
        "all-blinking",
        "button-not-blue",
        "mute-red",
        "keys-orange",
        "keys-green",
        "forbidden-red",
    ],
)
def test_every_led_state_has_its_rule(led):
    assert findings({"user.led": led, "user.symptom": "error-message"}), led


@pytest.mark.parametrize(
    "error",
    [
        "SIP/2.0 423 Interval Too Brief",
        "SIP/2.0 403 Wrong domain",
        "SIP/2.0 404 Domain not bound",
        "SIP/2.0 403 Wrong login or password",
        "SIP/2.0 403 Not Registered",
        "SIP/2.0 403 authentication failed",
    ],
)
def test_every_server_error_has_its_rule(error):
    assert findings({"provider.sip_error": error}), error


@pytest.mark.parametrize(
    "event",
    [
        "ShortExpire",
        "DifferentUserAgent",
        "DifferentRegisterInvitePort",
        "JitterIncomingWarn",
        "JitterOutgoingWarn",
    ],
)
def test_every_monitoring_event_has_its_rule(event):
    assert findings({"provider.events": [event]}), event


@pytest.mark.parametrize(
    "device, rule",
    [
        ({"line.forward.unconditional": True}, "forwarding-left-on"),
        ({"phone.forward.always": True}, "forwarding-left-on"),
        ({"line.dnd": True}, "dnd-on"),
        ({"phone.dnd": True}, "dnd-on"),
        (
            {"sip.last_status": 403, "sip.last_reason": "Wrong login or password"},
            "registration-auth-failed",
        ),
        ({"line.registration_user_agents": 2}, "duplicate-registration"),
        ({"firmware.outdated": True}, "firmware-outdated"),
    ],
)
def test_contract_rules_fire_on_their_facts(device, rule):
    assert rule in findings(device=device)


@pytest.mark.parametrize(
    "site, rule",
    [
        ({"nat.sip_alg": True}, "sip-alg-detected"),
        ({"nat.udp_timeout_s": 30.0}, "nat-udp-timeout-short"),
        (
            {"registrar.udp.5060.reachable": False, "registrar.udp.5962.reachable": True},
            "sip-port-blocked",
        ),
        ({"dns.registrar.resolves": False}, "dns-failure"),
    ],
)
def test_contract_site_rules_fire_on_their_facts(site, rule):
    assert rule in findings(site)


def test_forward_backup_alone_is_not_forwarding_left_on():
    assert "forwarding-left-on" not in findings(device={"line.forward.backup": True})


def test_nothing_known_means_no_finding():
    assert findings() == []


@pytest.mark.parametrize(
    "code",
    [
        "*#21#",
        "#21#",
        "#002",
        "*#69#",
        "#69#",
        "*#61#",
        "#61#",
        "*#26#",
        "#26#",
        "*#24#",
        "#24#",
        "*#82#",
        "#82#",
        "#33*",
        "123",
    ],
)
def test_feature_codes_reach_the_person(code):
    steps = [s for r in RULES for lang in ("fr", "en") for s in r.text[lang].steps]
    assert any(code in s for s in steps), code


def test_every_rule_answers_at_least_one_guide_item():
    assert [r.id for r in RULES if not r.covers] == []
