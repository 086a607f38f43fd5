"""The text report: the phones table and the diagnosis, plain (log, pipe, NO_COLOR) and
rich (terminal)."""

from __future__ import annotations

import io

from rich.console import Console

from agent.model import UNKNOWN, Device, Fact, Finding, ProbeError, Report
from agent.report import text

BOX_DRAWING = range(0x2500, 0x2580)


def phones() -> list[Device]:
    return [
        Device(
            "10.66.0.11",
            "80:5e:c0:bf:2b:a5",
            "yealink",
            "SIP-T46S",
            "66.86.0.15",
            ["sip", "snmp", "arp"],
        ),
        Device("10.66.0.12", "00:0e:08:a7:6f:34", "cisco", "SPA504G", "7.6.2c", ["sip", "arp"]),
        Device("10.66.0.13", "7c:2f:80:50:82:dd", "gigaset", "C530 IP", "42.245", ["mdns"]),
    ]


def diagnosis() -> Report:
    facts = [
        Fact("10.66.0.11", "sip.registered", True, "vendor.yealink"),
        Fact("10.66.0.11", "line.registered", True, "inbound"),
        Fact("10.66.0.12", "sip.registered", True, "vendor.cisco"),
        Fact("10.66.0.12", "line.registered", False, "inbound"),
        Fact("10.66.0.13", "sip.registered", False, "vendor.gigaset"),
        Fact("10.66.0.13", "sip.last_status", 401, "vendor.gigaset"),
        Fact("line:1004", "line.dnd", True, "provider"),
    ]
    findings = [
        Finding(
            "sip-port-blocked",
            None,
            "critical",
            "Le port SIP 5060 est bloqué vers OVHcloud",
            "Le routeur bloque le port 5060.",
            ["Ouvrez le port", "Ou utilisez 5962"],
            "guide A",
        ),
        Finding(
            "registration-auth-failed",
            "10.66.0.13",
            "critical",
            "Identifiant SIP refusé",
            "403",
            ["Vérifiez"],
            "guide B",
            line="1003",
        ),
        Finding("firmware-outdated", "10.66.0.13", "warning", "Vieux firmware", "x", [], "guide C"),
        Finding("dnd-on", None, "warning", "Ne pas déranger", "y", [], "guide D", line="1004"),
    ]
    errors = [ProbeError("probe.device", "http://admin:pw@10.66.0.12/ refused", "10.66.0.12")]
    return Report(4.9, ["10.66.0.0/24"], phones(), facts, findings, errors, {})


def render(report: Report, lang: str, plain: bool, diag: bool = True, width: int = 140) -> str:
    out = Console(
        record=True,
        no_color=plain,
        force_terminal=not plain,
        width=width,
        soft_wrap=plain,
        highlight=False,
    )
    text.render(report, lang, out, diag)
    return out.export_text(styles=not plain)


# ---------------------------------------------------------------- the phones table
def test_discover_table_plain():
    out = render(Report(1.5, ["10.66.0.0/24"], phones()), "en", plain=True, diag=False)
    lines = out.splitlines()
    assert lines[0] == "Phones found (3)"
    header = ["IP", "address", "MAC", "address", "Vendor", "Model", "Firmware", "Found", "by"]
    assert lines[1].split() == header
    assert set(lines[2]) <= {"-", " "}  # the header underlined, nothing else
    assert lines[3].split() == [
        "10.66.0.11",
        "80:5e:c0:bf:2b:a5",
        "Yealink",
        "SIP-T46S",
        "66.86.0.15",
        "arp,",
        "sip,",
        "snmp",
    ]
    assert "Registration" not in out and "Findings" not in out  # a discovery has neither
    assert "Network scanned: 10.66.0.0/24 — took 1.5 s" in out


def test_plain_output_has_no_colour_nor_box_drawing():
    out = render(diagnosis(), "fr", plain=True)
    assert "\x1b" not in out
    assert not any(ord(c) in BOX_DRAWING for c in out)
    assert "|" not in out and "+--" not in out  # aligned columns, nothing to read out


def test_diagnosis_table_has_registration_and_findings_count():
    out = render(diagnosis(), "en", plain=True)
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("10.66.0.")}
    assert "Registered" in out and "Findings" in out
    assert rows["10.66.0.11"].split()[5] == "yes" and rows["10.66.0.11"].endswith(" 0")
    # the phone says registered, OVHcloud does not: both are told
    assert "phone: yes, OVHcloud: no" in rows["10.66.0.12"]
    assert "no (401)" in rows["10.66.0.13"] and rows["10.66.0.13"].endswith(" 2")
    fr = render(diagnosis(), "fr", plain=True)
    assert "Enregistré" in fr and "Constats" in fr and "non (401)" in fr


def test_unknown_registration_shows_a_dash():
    r = diagnosis()
    r.facts = [Fact("10.66.0.11", "sip.registered", UNKNOWN, "vendor.yealink")]
    out = render(r, "en", plain=True)
    row = next(line for line in out.splitlines() if line.startswith("10.66.0.11"))
    assert row.split()[5] == "-"


def test_rich_table_has_a_frame_and_colours():
    out = render(diagnosis(), "en", plain=False)
    assert "╭" in out and "│" in out  # box drawing on a terminal
    assert "\x1b[" in out  # styles
    assert "80:5e:c0:bf:2b:a5" in out


def test_addresses_are_never_cut_on_a_narrow_terminal():
    out = render(diagnosis(), "fr", plain=False, width=80)
    for d in phones():
        assert d.ip in out and d.mac in out
    plain = render(diagnosis(), "fr", plain=True, width=60)  # a log: a long line instead
    for d in phones():
        line = next(x for x in plain.splitlines() if x.startswith(d.ip))
        assert d.mac in line and d.model in line


def test_device_text_is_not_markup():
    r = diagnosis()
    r.devices[0].model = "[/][bold]T46S"  # would raise a MarkupError if parsed
    r.devices[1].firmware = "7.6\x1b[2J"
    out = render(r, "en", plain=False)
    assert "[/][bold]T46S" in out
    assert "\x1b[2J" not in out and "\\x1b[2J" in out


# ---------------------------------------------------------------- the diagnosis
def test_findings_grouped_by_site_phone_and_line_root_cause_first():
    out = render(diagnosis(), "fr", plain=True)
    assert "4 constat(s) : 2 CRITIQUE, 2 ATTENTION" in out
    site = out.index("== réseau du bureau ==")
    phone = out.index("== téléphone 10.66.0.13, Gigaset C530 IP ==")
    line = out.index("== ligne 1004, téléphone non trouvé sur ce réseau ==")
    assert site < phone < line
    assert out.index("1. CRITIQUE Le port SIP 5060 est bloqué vers OVHcloud") < phone
    # the phone's two findings under its heading, numbered on; the line named where known
    assert phone < out.index("2. CRITIQUE Identifiant SIP refusé (ligne 1003)") < line
    assert phone < out.index("3. ATTENTION Vieux firmware") < line
    assert out.index("4. ATTENTION Ne pas déranger") > line
    assert "Que faire :\n     1. Ouvrez le port\n     2. Ou utilisez 5962" in out
    assert "Guide : guide A" in out


def test_one_line_for_all_of_a_phones_findings_goes_in_its_heading():
    r = diagnosis()
    r.findings = [f for f in r.findings if f.rule == "registration-auth-failed"]
    out = render(r, "en", plain=True)
    assert "== phone 10.66.0.13, Gigaset C530 IP, line 1003 ==" in out
    assert "1. CRITICAL Identifiant SIP refusé\n" in out


def test_severity_styles_on_a_terminal():
    out = render(diagnosis(), "en", plain=False)
    assert "\x1b[1;31mCRITICAL" in out  # bold red
    assert "\x1b[33mWARNING" in out  # yellow


def test_no_findings_and_no_phones():
    out = render(Report(2.0, ["10.66.0.0/24"]), "en", plain=True)
    assert "No phone found on 10.66.0.0/24." in out
    assert "Diagnosis" in out and "No problem found." in out


def test_errors_name_their_phone_and_mask_logins():
    out = render(diagnosis(), "en", plain=True)
    assert "Checks that could not complete" in out
    assert "  - probe.device [10.66.0.12]: http://admin:***@10.66.0.12/ refused" in out
    assert ":pw@" not in out


def test_console_is_plain_off_a_terminal(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert text.console(io.StringIO()).no_color
    monkeypatch.setenv("NO_COLOR", "1")

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert text.console(Tty()).no_color
    monkeypatch.delenv("NO_COLOR")
    assert not text.console(Tty()).no_color


def test_explain_is_unchanged():
    r = Report(explain=[{"rule": "dns-failure", "device": None, "result": None, "trace": ["a"]}])
    out = Console(record=True, no_color=True, width=100)
    text.explain(r, out)
    assert "unknown  dns-failure\n           a" in out.export_text()
