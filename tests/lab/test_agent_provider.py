"""The provider's side of the line in the lab: the agent reads the OVHcloud API stand-in
(the real ``ovh`` client, signed calls over HTTPS) whose state is the registrar's, and
joins each line to the phone on the LAN."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from lab import Lab


def diagnose(lab: Lab, *args: str) -> tuple[dict, subprocess.CompletedProcess[str]]:
    r = lab.run(["phonediag", "diagnose", "--json", *args], timeout=120)
    assert "Traceback" not in r.stderr, r.stderr
    return json.loads(r.stdout), r


def facts_of(report: dict, subject: str) -> dict:
    return {f["key"]: f["value"] for f in report["facts"] if f["subject"] == subject}


def test_forward_dialled_earlier_is_found_then_cleared_by_the_way_out():
    """A user dialled *21*0612345678# earlier: the finding names the line, the destination
    and both ways out; dialling #21# (its first way out) clears it for the agent too."""
    with Lab.up("forwarding-left-on") as lab:
        phone1 = next(p for p in lab.phones if p["role"] == "phone1")
        report, r = diagnose(lab)
        assert r.returncode == 1
        forwards = [f for f in report["findings"] if f["rule"] == "forwarding-left-on"]
        assert [(f["device"], f["line"]) for f in forwards] == [(phone1["ip"], phone1["line"])]
        finding = forwards[0]
        assert phone1["line"] in finding["explanation"]
        assert "0612345678" in finding["explanation"]
        steps = " ".join(finding["remedies"])
        assert "#21#" in steps and "#002" in steps
        assert f"PUT /telephony/{lab.api_account}/line/{phone1['line']}/options" in steps
        facts = facts_of(report, phone1["ip"])
        assert facts["line.forward.unconditional"] is True
        assert facts["phone.forward.always"] is not True  # the phone itself is clean

        lab.dial("phone1", "#21#")
        report, r = diagnose(lab)
    assert report["findings"] == [], report["findings"]
    assert r.returncode == 0


def write_config(lab: Lab, tmp_path: Path, **provider: str | None) -> str:
    """The lab's agent config with [provider] keys changed (None: left out)."""
    text = lab.config_path.read_text()
    for key, value in provider.items():
        pattern = rf'(?m)^{key} = ".*"\n'
        text = re.sub(pattern, "" if value is None else f'{key} = "{value}"\n', text)
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return str(path)


def only_not_checked(report: dict, access: str) -> str:
    assert report["site"]["provider.access"] == access
    assert [(f["rule"], f["severity"]) for f in report["findings"]] == [
        ("provider-not-checked", "info")
    ]
    finding = report["findings"][0]
    assert "*#21#" in " ".join(finding["remedies"])
    return finding["explanation"]


def test_healthy_office_lines_joined_and_every_key_problem_explained(tmp_path):
    with Lab.up("healthy") as lab:
        report, r = diagnose(lab)
        assert (report["findings"], r.returncode) == ([], 0)
        assert report["site"]["provider.access"] == "ok"
        for phone in lab.phones:  # each line joined to its phone by the MAC OVHcloud holds
            facts = facts_of(report, phone["ip"])
            assert facts["line.number"] == phone["line"]
            assert facts["line.mac_matches"] is True
            assert facts["line.forward.unconditional"] is False
            assert facts["line.registered_from_other_ip"] is False
            assert facts["line.registration_user_agents"] == 1
        assert not [f for f in report["facts"] if f["subject"].startswith("line:")]

        keys = ("application_key", "application_secret", "consumer_key")
        no_keys = write_config(lab, tmp_path, **dict.fromkeys(keys))
        report, r = diagnose(lab, "--config", no_keys)
        assert "consumer_key" in only_not_checked(report, "not-configured")
        assert r.returncode == 0  # information, not a problem of the office

        wrong = write_config(lab, tmp_path, consumer_key="NoSuchConsumerKey0123456789abcde")
        report, r = diagnose(lab, "--config", wrong)
        assert "This credential does not exist" in only_not_checked(report, "refused")
        assert [e["step"] for e in report["errors"]] == ["probe.provider"]
        assert lab.api_credentials["application_secret"] not in r.stdout + r.stderr

        away = write_config(lab, tmp_path, endpoint="https://100.64.66.9/1.0")
        report, r = diagnose(lab, "--config", away)
        only_not_checked(report, "unreachable")
