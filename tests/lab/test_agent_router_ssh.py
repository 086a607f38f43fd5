"""The office router read over SSH ([router] ssh = "root@10.66.0.1" in the lab's agent
config; lab/services/sshd.py): its UDP timeouts and SIP helper as facts, its host key
pinned on first use and said, a changed key refused before any login (sshd's own log
says no authentication was even asked), ``phonediag ssh forget`` and a new pin; and the
router's reading alone makes the NAT findings, without the reflector or the NAT test."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from lab import Lab
from lab.services import sshd

ROUTER = "10.66.0.1"
AGENT = "10.66.0.100"
ROUTER_RULES = {"router-host-key-changed", "nat-udp-timeout-short", "sip-alg-detected"}


def diagnose(lab: Lab, *args: str) -> tuple[int, dict]:
    r = lab.run(["phonediag", "diagnose", "--json", "--lang", "en", *args], timeout=180)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, json.loads(r.stdout)


def phonediag(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    r = lab.run(["phonediag", *args, "--lang", "en"], timeout=60)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def router_findings(report: dict) -> dict[str, dict]:
    return {f["rule"]: f for f in report["findings"] if f["rule"] in ROUTER_RULES}


def router_errors(report: dict) -> list[dict]:
    return [e for e in report["errors"] if e["step"] == "probe.router"]


def sshd_log(lab: Lab) -> str:
    return sshd.log_file(lab.state.dir).read_text(errors="replace")


def test_healthy_router_pinned_then_a_changed_key_refused_then_forgotten():
    with Lab.up("healthy") as lab:
        first_key = sshd.host_fingerprint(lab.state.dir)
        known_hosts = lab.state.dir / "known_hosts"  # beside the lab's store
        assert not known_hosts.exists()

        # First run: the router's settings read, its key pinned and said; nothing wrong.
        rc, report = diagnose(lab)
        site = report["site"]
        assert site["router.ssh_host"] == ROUTER
        assert site["router.udp_timeout"] == 180  # the lab router's stream timeout
        assert site["router.udp_timeout_unreplied"] == 30  # Linux's default
        assert site["router.sip_helper"] is False
        assert "router.sip_helper_seen" not in site
        assert site["router.ssh_hostkey"] == first_key
        assert site["router.ssh_hostkey_pinned_now"] is True
        assert site["router.ssh_hostkey_changed"] is False
        assert router_findings(report) == {} and router_errors(report) == []
        assert rc == 0, report["findings"]
        facts = {f["key"]: f for f in report["facts"] if f["subject"] == "site"}
        assert "nf_conntrack_udp_timeout_stream: 180" in facts["router.udp_timeout"]["evidence"]
        assert "nft: no ct helper of type sip" in facts["router.sip_helper"]["evidence"]
        assert known_hosts.stat().st_mode & 0o777 == 0o600
        assert known_hosts.read_text().startswith(f"{ROUTER} ssh-ed25519 ")
        assert f"Accepted publickey for root from {AGENT}" in sshd_log(lab)
        shown = phonediag(lab, "report", "show", "last")
        said = f"Router {ROUTER}: SSH host key pinned on this first connection ({first_key})"
        assert said in shown.stdout, shown.stdout

        # Known and equal: proceeds, says nothing.
        rc, report = diagnose(lab)
        assert report["site"]["router.ssh_hostkey_pinned_now"] is False
        assert report["site"]["router.ssh_hostkey_changed"] is False
        assert router_errors(report) == [] and rc == 0

        # The router answers with another key: refused before any authentication.
        new_key = lab.router_host_key_change()
        assert new_key != first_key
        before = len(sshd_log(lab))
        rc, report = diagnose(lab)
        log = sshd_log(lab)[before:]
        assert rc == 1
        found = router_findings(report)
        assert set(found) == {"router-host-key-changed"}, report["findings"]
        finding = found["router-host-key-changed"]
        assert finding["severity"] == "warning" and finding["device"] is None
        assert first_key in finding["explanation"] and new_key in finding["explanation"]
        assert any(f"phonediag ssh forget {ROUTER}" in s for s in finding["remedies"])
        site = report["site"]
        assert site["router.ssh_hostkey_changed"] is True
        assert (site["router.ssh_hostkey"], site["router.ssh_hostkey_pinned"]) == (
            new_key,
            first_key,
        )
        assert site["router.udp_timeout"] is None and site["router.sip_helper"] is None
        [error] = router_errors(report)
        assert "refused" in error["reason"] and new_key in error["reason"], error
        # sshd's log since the restart (its readiness check's bare TCP connection, then the
        # agent's): one SSH client, its key exchange, its goodbye, and no authentication
        # request of any kind (no "none", no key offered, no password)
        assert log.count("remote software version AsyncSSH") == 1, log
        port = re.findall(rf"Received disconnect from {AGENT} port (\d+):9: Host key is not", log)
        assert len(port) == 1 and f"Connection from {AGENT} port {port[0]} on" in log, log
        for word in ("userauth-request", "Accepted", "Failed", "Postponed", "publickey"):
            assert word not in log, (word, log)
        assert known_hosts.read_text().count("\n") == 1  # the old key still pinned

        # The technician checked the router: forget the old key; the next run pins the new one.
        r = phonediag(lab, "ssh", "forget", ROUTER)
        assert r.returncode == 0 and first_key in r.stdout, (r.stdout, r.stderr)
        r = phonediag(lab, "ssh", "list")
        assert r.returncode == 0 and "No SSH host key pinned" in r.stdout, r.stdout
        rc, report = diagnose(lab)
        assert report["site"]["router.ssh_hostkey_pinned_now"] is True
        assert report["site"]["router.ssh_hostkey"] == new_key
        assert router_findings(report) == {} and router_errors(report) == [] and rc == 0
        r = phonediag(lab, "ssh", "list")
        assert ROUTER in r.stdout and new_key in r.stdout


def _without_reflector(lab: Lab, tmp_path: Path) -> str:
    text = re.sub(r'(?m)^reflector = ".*"\n', "", lab.config_path.read_text())
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("scenario", ["sip-alg", "short-nat-timeout"])
def test_the_routers_own_settings_make_the_finding_without_the_reflector(scenario, tmp_path):
    """No reflector and no NAT-lifetime test (the lab's budget is 0): the router's
    reading alone says what the outside measurements would."""
    with Lab.up(scenario) as lab:
        rc, report = diagnose(lab, "--config", _without_reflector(lab, tmp_path))
    site = report["site"]
    assert site["nat.sip_alg"] is None and site["nat.udp_timeout_s"] is None  # not measured
    assert router_errors(report) == [] and rc == 1
    found = router_findings(report)
    if scenario == "sip-alg":
        assert site["router.sip_helper"] is True
        assert "sip5060" in site["router.sip_helper_seen"]
        assert 'ct helper set "sip5060"' in site["router.sip_helper_seen"]
        assert set(found) == {"sip-alg-detected"}, report["findings"]
        f = found["sip-alg-detected"]
        said = f"The router {ROUTER}, read over SSH, uses the Linux kernel's SIP helper"
        assert said in f["explanation"]
        assert any("nf_conntrack_sip" in step for step in f["remedies"])
    else:
        assert site["router.udp_timeout"] == 30 and site["router.udp_timeout_unreplied"] == 30
        assert site["router.sip_helper"] is False
        assert set(found) == {"nat-udp-timeout-short"}, report["findings"]
        f = found["nat-udp-timeout-short"]
        assert f"its setting, read over SSH on {ROUTER}, is 30 s" in f["explanation"]
        assert "?" not in f["explanation"]
