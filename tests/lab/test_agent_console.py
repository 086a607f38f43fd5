"""The technician's console in the lab: `diagnose --verbose` shows the evidence (SIP
answers, SNMP values, the phones' pages, failures) with none of the lab's secrets, the
progress display goes to a terminal's standard error only, and `--json` stays clean."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import threading
import tomllib

import pytest
import secrets_sweep

from lab import Lab
from lab.scenarios import SCENARIOS

EVIDENCE = "Evidence (--verbose)"


@pytest.fixture(scope="module")
def lab():
    with Lab.up("wrong-password") as lab:
        yield lab


def secrets(lab: Lab) -> tuple[list[str], list[str]]:
    """(long secrets that must appear nowhere, short or common ones that must not show as
    a word of the evidence): web logins, SIP passwords, the API keys, SNMP communities."""
    config = tomllib.loads(lab.config_path.read_text())
    long = [c["password"] for c in config.get("credentials", [])]
    long += [lab.phone_state(p["role"])["admin"]["password"] for p in lab.phones]
    long += list(lab.state.passwords.values())  # the lines' SIP passwords
    provider = config.get("provider", {})
    long += [provider[k] for k in ("application_secret", "consumer_key") if k in provider]
    long += [lab.api_credentials["application_secret"], lab.api_credentials["consumer_key"]]
    communities = config["snmp"]["communities"]
    assert long and communities
    return sorted({s for s in long if s}), communities


def assert_no_secret(lab: Lab, *outputs: str) -> None:
    long, communities = secrets(lab)
    for out in outputs:
        for secret in long:
            assert secret not in out, f"a secret shows: …{out[max(0, out.find(secret) - 80) :]}"
        if EVIDENCE in out:
            shown = out[out.index(EVIDENCE) :]
            for community in communities:
                assert not re.search(rf"(?<![\w]){re.escape(community)}(?![\w])", shown)


def test_verbose_shows_the_evidence_and_no_secret(lab):
    r = lab.run(["phonediag", "diagnose", "--verbose", "--lang", "en"], timeout=120)
    assert r.returncode == 1, r.stderr  # the wrong password is a finding
    assert "Traceback" not in r.stderr, r.stderr
    out = r.stdout
    assert "\x1b" not in out  # not a terminal: plain
    report, evidence = out.split(EVIDENCE)
    assert "SIP login or password refused" in report
    assert "Registered" in report and "Findings" in report
    role = SCENARIOS["wrong-password"].fault_role(len(lab.phones))
    faulty = next(p for p in lab.phones if p["role"] == role)
    row = next(line for line in report.splitlines() if line.startswith(faulty["ip"] + " "))
    assert re.search(r"\bno \(40[13]\)", row), row
    # per phone, what each method saw: SIP OPTIONS status line and User-Agent, SNMP values
    yealink = next(p for p in lab.phones if p["vendor"] == "yealink")
    part = evidence.split("== Phone " + yealink["ip"])[1].split("\n== ")[0]
    assert "Seen by SIP OPTIONS" in part
    assert re.search(r"udp\.5060: \d{3} ", part), part
    assert f"agent: Yealink {yealink['model']}" in part
    assert "Seen by SNMP" in part and f"sysDescr: Yealink {yealink['model']}" in part
    assert "sysObjectID: .1.3.6.1.4.1.37459" in part
    assert "Seen by mDNS/DNS-SD" in part and "Seen by ARP" in part
    # the observations behind the verdict, with what was read from the phone's web face
    part = evidence.split("== Phone " + faulty["ip"])[1].split("\n== ")[0]
    assert f"Observations: vendor.{faulty['vendor']}" in part
    assert "sip.registered = no" in part and "GET " in part
    assert "Observations: inbound" in part and "line.registered = no" in part
    # the office's checks, with the registrar's own answer; step durations
    assert re.search(r"registrar\.udp\.5060\.reachable = yes — 200 OK from", evidence)
    assert "SIP sweep (discover.sip):" in evidence
    assert "NAT test (STUN) (probe.stun):" in evidence
    assert_no_secret(lab, r.stdout, r.stderr)
    # off a terminal, --verbose says each phase on one line of stderr, nothing more
    said = [line for line in r.stderr.splitlines() if line.startswith("phonediag: ")]
    assert [line.split(":")[1].strip() for line in said] == ["Finding phones", "Checks"], said


def test_discover_verbose_too(lab):
    r = lab.run(["phonediag", "discover", "--verbose", "--lang", "fr"], timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Téléphones trouvés (3)" in r.stdout and "Détails (--verbose)" in r.stdout
    assert "Vu par SIP OPTIONS" in r.stdout and "Vu par SNMP" in r.stdout
    assert "Recherche SIP (discover.sip)" in r.stdout
    assert r.stderr.startswith("phonediag : Recherche des téléphones : Balayage ARP")
    assert_no_secret(lab, r.stdout.replace("Détails (--verbose)", EVIDENCE), r.stderr)


def on_a_terminal(lab: Lab, argv: list[str]) -> tuple[int, str, str]:
    """Run ``argv`` with standard error on a pseudo-terminal (160 columns) and standard
    output on a pipe: (exit code, stdout, what the terminal received)."""
    import fcntl
    import pty
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    env = lab.agent_env()
    env.pop("NO_COLOR", None)
    env.update(TERM="xterm-256color", COLUMNS="160")
    received = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal's other end closed
                return
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.Popen(
            lab.agent_argv(argv),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        )
        os.close(slave)
        stdout, _ = proc.communicate(timeout=180)
        reader.join(timeout=10)
    finally:
        os.close(master)
    terminal = received.decode("utf-8", errors="replace")
    secrets_sweep.output(f"{' '.join(argv[:2])} on a terminal", stdout + terminal)
    return proc.returncode, stdout, terminal


def test_progress_on_a_terminal_goes_to_stderr_only(lab):
    rc, stdout, terminal = on_a_terminal(lab, ["phonediag", "diagnose", "--lang", "fr"])
    assert rc == 1, terminal
    # the live display: both phases and the steps' French names, drawn on the terminal
    assert "Recherche des téléphones" in terminal, terminal
    assert "Vérifications" in terminal, terminal
    assert "Recherche SIP" in terminal or "Balayage ARP" in terminal, terminal
    assert "Test NAT (STUN)" in terminal, terminal
    assert "Traceback" not in terminal
    # standard output is the plain report, nothing else
    assert stdout.startswith("Téléphones trouvés (3)"), stdout[:300]
    assert "Recherche des téléphones" not in stdout and "\x1b" not in stdout
    assert "Identifiant ou mot de passe SIP refusé" in stdout or "CRITIQUE" in stdout


def test_json_has_no_progress_noise_even_on_a_terminal(lab):
    rc, stdout, terminal = on_a_terminal(lab, ["phonediag", "diagnose", "--json", "--verbose"])
    assert rc == 1, terminal
    report = json.loads(stdout)  # nothing but the JSON document
    assert report["schema_version"] == "1" and len(report["devices"]) == 3
    assert "Recherche" not in terminal and "Finding phones" not in terminal, terminal
    assert terminal.strip() == "", terminal
    assert_no_secret(lab, stdout)  # nor any secret in the JSON report
