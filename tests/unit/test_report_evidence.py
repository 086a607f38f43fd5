"""--verbose: the evidence view, and secrets masked however they come."""

from __future__ import annotations

from rich.console import Console

from agent.config import Config, Credential
from agent.model import UNKNOWN, Device, Fact, ProbeError, Report
from agent.report import evidence
from agent.report.evidence import MASK, Masker, clean, config_secrets, mask, secret_key

WEB_PASSWORD = "w3b-Pa55word-9f8e"
COMMUNITY = "c0mmunity-Xy7"
API_SECRET = "apisecret0123456789abcdef"
CONSUMER = "consumerkey0123456789abcdef"


def config() -> Config:
    return Config(
        snmp_communities=["public", COMMUNITY],
        credentials=[Credential("admin", WEB_PASSWORD, device="10.66.0.11")],
        provider_application_key="appkey0123456789",
        provider_application_secret=API_SECRET,
        provider_consumer_key=CONSUMER,
    )


# ---------------------------------------------------------------- by key name
def test_secret_key_names():
    for name in (
        "password",
        "Password",
        "auth_pass",
        "xpassword",
        "sip.password",
        "snmp_community",
        "communities",
        "application_secret",
        "consumer_key",
        "api_key",
        "apiKey",
        "v3_auth_key",
        "Authorization",
        "X-Auth-Token",
        "key",
        "pin",
        "sip-pwd",
        "xuser",
    ):
        assert secret_key(name), name
    for name in (
        "sysDescr",
        "sysObjectID",
        "udp.5060",
        "agent",
        "allow",
        "lan.public_ip",
        "sip.registered",
        "line.registration_user_agents",
        "monkey",
        "txt.model",
    ):
        assert not secret_key(name), name


def test_nested_values_under_a_secret_key_are_masked_whole():
    data = {
        "snmp": {"sysDescr": "Yealink T46S", "community": "public"},
        "web": [{"user": "admin", "password": "hunter2"}, {"auth": {"a": 1}}],
        "provider": {"credentials": {"application_secret": "s", "consumer_key": "c"}},
        "level1": {"level2": {"level3": {"token": ["a", "b"]}}},
        "empty_password": "",
    }
    out = mask(data)
    assert out["snmp"] == {"sysDescr": "Yealink T46S", "community": MASK}
    assert out["web"] == [{"user": "admin", "password": MASK}, {"auth": MASK}]
    assert out["provider"] == {"credentials": MASK}
    assert out["level1"]["level2"]["level3"]["token"] == MASK
    assert out["empty_password"] == ""  # nothing to hide: an empty value stays visible
    assert data["snmp"]["community"] == "public"  # the original is untouched


def test_tuples_and_sets_are_walked():
    out = mask(({"password": "x"}, {"secret-a", "b"}))
    assert out == [{"password": MASK}, ["b", "secret-a"]]


# ---------------------------------------------------------------- inside text
def test_query_strings_and_assignments():
    m = Masker()
    assert (
        m.text("GET /admin/status.xml&xuser=admin&xpassword=hunter2")
        == "GET /admin/status.xml&xuser=***&xpassword=***"
    )
    assert m.text("login?user=1&password=abc&next=/") == "login?user=1&password=***&next=/"
    assert m.text("auth_pass=s3cret; realm=x") == "auth_pass=***; realm=x"
    assert m.text('{"password": "abc", "name": "x"}') == '{"password": "***", "name": "x"}'
    assert m.text("community: public") == "community: ***"
    assert m.text("application_secret=abc consumer_key=def") == (
        "application_secret=*** consumer_key=***"
    )
    assert m.text("api-key: 1234") == "api-key: ***"


def test_headers_and_urls():
    m = Masker()
    msg = 'INVITE\r\nAuthorization: Digest username="1001", response="abc"\r\nVia: x'
    assert m.text(msg) == "INVITE\r\nAuthorization: ***\r\nVia: x"
    assert m.text("Proxy-Authorization: Basic YWRtaW46cGFzcw==") == "Proxy-Authorization: ***"
    assert m.text("sent Bearer abcdef123456") == "sent Bearer ***"
    assert m.text("X-Ovh-Consumer: ck123 rest") == "X-Ovh-Consumer: *** rest"
    assert m.text("http://admin:pw@10.66.0.11/cgi") == "http://admin:***@10.66.0.11/cgi"
    # nothing secret: unchanged
    plain = "OPTIONS sip:1001@sip.ovh.test via 100.64.66.1:5060: 404 Not Found"
    assert m.text(plain) == plain


def test_the_configurations_own_secrets_are_scrubbed_wherever_they_appear():
    cfg = config()
    secrets = config_secrets(cfg)
    assert {WEB_PASSWORD, COMMUNITY, API_SECRET, CONSUMER, "public"} <= set(secrets)
    m = Masker(secrets)
    text = f"the phone echoed {WEB_PASSWORD} and x{API_SECRET}y, community {COMMUNITY}"
    out = m.text(text)
    for secret in (WEB_PASSWORD, API_SECRET, COMMUNITY):
        assert secret not in out
    assert out == "the phone echoed *** and x***y, community ***"
    # a short or common secret only as a whole word: the fact key stays readable
    assert m.text("lan.public_ip from a public address") == "lan.public_ip from a *** address"
    # in keys and nested values too
    assert m({f"k-{CONSUMER}": [f"v {COMMUNITY}"]}) == {"k-***": ["v ***"]}


def test_keys_from_the_environment_are_scrubbed(monkeypatch):
    monkeypatch.setenv("OVH_APPLICATION_SECRET", "envsecret-0123456789")
    assert "envsecret-0123456789" in config_secrets(Config())
    assert config_secrets(None) == []


def test_control_characters_are_shown_not_sent():
    assert clean("Yealink\x1b[2J\x07 T46S") == "Yealink\\x1b[2J\\x07 T46S"
    assert clean("a" * 500, 10) == "a" * 9 + "…"


# ---------------------------------------------------------------- the view
def report() -> Report:
    phone = Device(
        "10.66.0.11",
        "80:5e:c0:bf:2b:a5",
        "yealink",
        "SIP-T46S",
        "66.86.0.15",
        ["sip", "snmp", "mdns", "arp"],
        {
            "sip": {
                "udp.5060": "404 Not Found",
                "agent": "Yealink SIP-T46S 66.86.0.15",
                "allow": "INVITE, ACK, OPTIONS",
            },
            "snmp": {"sysDescr": "Yealink SIP-T46S 66.86.0.15", "version": "2c"},
            "mdns": {"txt.model": "SIP-T46S", "txt.password": "leaked"},
            "arp": {"via": "sweep"},
            "merge": {"same_mac_as": "10.66.0.12"},
        },
        ["oui", "sip.agent"],
    )
    read = f"GET /servlet?m=mod_data&p=status; GET /cgi?xuser=admin&xpassword={WEB_PASSWORD}"
    facts = [
        Fact("10.66.0.11", "sip.registered", True, "vendor.yealink", read),
        Fact("10.66.0.11", "sip.account", "1001@sip.ovh.test", "vendor.yealink", read),
        Fact("10.66.0.11", "phone.dnd", UNKNOWN, "vendor.yealink", "not readable"),
        Fact("site", "lan.public_ip", "100.64.66.2", "stun", "STUN server sees us"),
        Fact("site", "dns.servers", ["10.66.0.1"], "dns", ""),
        Fact("line:1002", "line.dnd", True, "provider", "/telephony/x/line/1002"),
    ]
    errors = [
        ProbeError("probe.device", f"http://admin:{WEB_PASSWORD}@10.66.0.11/ 401", "10.66.0.11"),
        ProbeError("probe.stun", "no answer within 1.5 s"),
        ProbeError("probe.weird", "oops"),
    ]
    timings = {"discover.sip": 1.18, "probe.stun": 3.2}
    return Report(4.9, ["10.66.0.0/24"], [phone], facts, [], errors, timings)


def view(lang: str, plain: bool = True) -> str:
    out = Console(record=True, no_color=plain, width=120, force_terminal=not plain)
    evidence.render(report(), lang, out, config())
    return out.export_text()


def test_the_view_shows_each_methods_evidence_and_each_fact():
    text = view("en")
    assert "Evidence (--verbose)" in text
    assert "== phone 10.66.0.11, Yealink SIP-T46S ==".lower() in text.lower()
    assert "Seen by SIP OPTIONS" in text and "udp.5060: 404 Not Found" in text
    assert "allow: INVITE, ACK, OPTIONS" in text
    assert "Seen by SNMP" in text and "sysDescr: Yealink SIP-T46S 66.86.0.15" in text
    assert "txt.model: SIP-T46S" in text and "txt.password: ***" in text
    assert "Address merging" in text and "same_mac_as: 10.66.0.12" in text
    assert "Identified by: oui, sip.agent" in text
    assert "Observations: vendor.yealink" in text
    assert "sip.registered = yes" in text and "phone.dnd = unknown — not readable" in text
    assert "xpassword=***" in text
    # the office, a line without a phone, failures with their step's name, durations
    assert "lan.public_ip = 100.64.66.2" in text and "dns.servers = 10.66.0.1" in text
    assert "Line 1002, phone not found on this network" in text
    assert "probe.device (Phones' own state) [10.66.0.11]: http://admin:***@10.66.0.11/ 401" in text
    assert "probe.stun (NAT test (STUN)): no answer within 1.5 s" in text
    assert "probe.weird: oops" in text  # an unknown step shows as it is
    assert "SIP sweep (discover.sip): 1.18 s" in text
    for secret in (WEB_PASSWORD, "leaked"):
        assert secret not in text


def test_the_view_in_french():
    text = view("fr")
    assert "Détails (--verbose)" in text and "Vu par SIP OPTIONS" in text
    assert "sip.registered = oui" in text and "phone.dnd = inconnu" in text
    assert "Ligne 1002, téléphone non trouvé sur ce réseau" in text
    assert "Recherche SIP (discover.sip)" in text


def test_plain_view_has_no_escape_codes_nor_box_drawing():
    out = Console(record=True, no_color=True, width=120)
    evidence.render(report(), "en", out, config())
    raw = out.export_text(styles=True)
    assert "\x1b" not in raw
    assert not any(0x2500 <= ord(c) <= 0x257F for c in raw)


def test_device_text_cannot_inject_markup_or_escapes():
    r = report()
    r.devices[0].evidence["snmp"]["sysDescr"] = "[/][bold]x\x1b]0;pwned\x07"
    out = Console(record=True, no_color=False, width=120, force_terminal=True)
    evidence.render(r, "en", out, config())  # no MarkupError
    text = out.export_text()
    assert "sysDescr: [/][bold]x\\x1b]0;pwned\\x07" in text
