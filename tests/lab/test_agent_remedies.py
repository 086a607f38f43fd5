"""Remedies in the lab office (root only): `phonediag remedy` run on the agent host against
the OVHcloud API stand-in (whose state is the registrar's) and the phones' own faces.

Each remedy is judged by what is observed afterwards, never by its return value: a new
`phonediag diagnose`, the registrar's line options, the phone's own state, and a real call
from another phone. Declining or a failed action must leave everything as it was."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import secrets_sweep

from lab import Lab, netns

FORWARD_TO = "0612345678"
# A firewall on the office PC that drops what the phone at {ip} opens towards it.
BLOCK_FROM = """table inet pcfw {{
  chain input {{
    type filter hook input priority 0; ip saddr {ip} meta l4proto tcp ct state new drop;
  }}
}}
"""


def read_until(proc: subprocess.Popen[str], marker: str) -> str:
    """What the command printed up to and including ``marker`` (its prompt)."""
    shown = ""
    while marker not in shown and (char := proc.stdout.read(1)):
        shown += char
    return shown


def phonediag(lab: Lab, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    r = lab.run(["phonediag", *args], timeout=240, input=stdin)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def findings(lab: Lab, ip: str) -> list[str]:
    r = phonediag(lab, "diagnose", "--json")
    return [f["rule"] for f in json.loads(r.stdout)["findings"] if f["device"] == ip]


def phone(lab: Lab, role: str) -> dict[str, Any]:
    return next(p for p in lab.phones if p["role"] == role)


def reaches(lab: Lab, caller: str, callee: str) -> bool:
    """Whether a call from ``caller`` to ``callee``'s line reaches ``callee``'s phone."""
    seen = len(lab.incoming_calls(callee))
    lab.call(caller, callee)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # the callee's controller records asynchronously
        if lab.incoming_calls(callee)[seen:]:
            return True
        time.sleep(0.1)
    return False


def answered(lab: Lab, caller: str, callee: str) -> bool:
    """Whether ``callee``'s phone answers a call from ``caller`` (DND rejects it: 486)."""
    return "CALL_ESTABLISHED" in lab.call(caller, callee)


def audit(lab: Lab) -> list[dict[str, Any]]:
    return json.loads(phonediag(lab, "remedy", "log", "--json").stdout)


def steps(rows: list[dict[str, Any]], run: int) -> list[tuple[str, str]]:
    return [(r["step"], r["outcome"]) for r in rows if r["run"] == run]


def test_line_forward_left_on_fixed_verified_by_a_call_then_undone():
    with Lab.up("forwarding-left-on") as lab:
        p1 = phone(lab, "phone1")
        ip, line = p1["ip"], p1["line"]
        listed = json.loads(phonediag(lab, "remedy", "list", "--device", ip, "--json").stdout)
        offered = {(o["rule"], o["remedy"]): o["status"] for o in listed}
        assert offered[("forwarding-left-on", "disable-line-forwarding")] == "ready"
        assert offered[("forwarding-left-on", "forwarding-off-by-code")] == "manual"
        assert not reaches(lab, "phone2", "phone1")  # the forward takes every call away

        # declining changes nothing: the registrar and a new diagnosis still see the forward
        declined = phonediag(lab, "remedy", "apply", "disable-line-forwarding", "--device", ip,
                             stdin="non\n")  # fmt: skip
        assert declined.returncode == 0, declined.stderr
        assert "forwardUnconditional: true -> false" in declined.stdout  # the plan was shown
        assert "Refusé : rien n'a été modifié." in declined.stdout
        assert lab.line_options(line)["forwardUnconditional"] == "true"
        assert "forwarding-left-on" in findings(lab, ip)

        applied = phonediag(lab, "remedy", "apply", "disable-line-forwarding", "--device", ip,
                            "--yes", "--json")  # fmt: skip
        assert applied.returncode == 0, applied.stdout + applied.stderr
        result = json.loads(applied.stdout)
        assert (result["status"], result["verification"], result["fixed"]) == (
            "applied",
            "verified",
            True,
        )
        assert lab.line_options(line) == {
            "forwardUnconditional": "false",
            "forwardUnconditionalNumber": FORWARD_TO,  # kept, for the undo
        }
        assert "forwarding-left-on" not in findings(lab, ip)
        assert reaches(lab, "phone2", "phone1")  # a call now rings phone1

        undone = phonediag(lab, "remedy", "undo", str(result["audit_run"]), "--yes")
        assert undone.returncode == 0, undone.stdout + undone.stderr
        assert "forwardUnconditional: false -> true" in undone.stdout
        assert lab.line_options(line)["forwardUnconditional"] == "true"
        assert lab.line_options(line)["forwardUnconditionalNumber"] == FORWARD_TO
        assert "forwarding-left-on" in findings(lab, ip)
        assert not reaches(lab, "phone2", "phone1")

        rows = audit(lab)
        first, applied_run = rows[0]["run"], result["audit_run"]
        assert steps(rows, first) == [("planned", ""), ("consent", "no")]
        assert steps(rows, applied_run) == [
            ("planned", ""), ("consent", "yes"), ("applied", "ok"), ("verified", "verified"),
        ]  # fmt: skip
        planned = next(r for r in rows if r["run"] == applied_run)
        assert planned["before"]["forwardUnconditional"] is True
        assert planned["before"]["forwardUnconditionalNumber"] == FORWARD_TO
        assert planned["after"] == {"forwardUnconditional": False}
        assert (planned["target"], planned["line"]) == (ip, line)
        undo_rows = [r for r in rows if r["undo_of"] == applied_run]
        assert [r["step"] for r in undo_rows] == ["planned", "consent", "undone"]
        secret = lab.api_credentials["application_secret"]
        assert secret not in json.dumps(rows)


def test_phone_dnd_on_a_yealink_fixed_and_undone_a_failed_write_changes_nothing():
    with Lab.up("healthy") as lab:
        p1 = phone(lab, "phone1")
        ip = p1["ip"]
        lab.set_phone_state("phone1", dnd=True)
        assert "dnd-on" in findings(lab, ip)
        applied = phonediag(lab, "remedy", "apply", "disable-phone-dnd", "--device", ip, "--yes",
                            "--lang", "en")  # fmt: skip
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "phone.dnd: true -> false" in applied.stdout and "Verified" in applied.stdout
        assert lab.phone_state("phone1")["dnd"] is False
        assert "dnd-on" not in findings(lab, ip)
        assert reaches(lab, "phone2", "phone1")
        run = next(r["run"] for r in audit(lab) if r["step"] == "applied")
        undone = phonediag(lab, "remedy", "undo", str(run), "--yes", "--lang", "en")
        assert undone.returncode == 0, undone.stdout + undone.stderr
        assert lab.phone_state("phone1")["dnd"] is True
        assert "dnd-on" in findings(lab, ip)

        # The phone's web password is changed while the plan waits for consent: the write is
        # refused, the command says so and that nothing was changed, and the phone is as it was.
        admin = lab.phone_state("phone1")["admin"]
        proc = subprocess.Popen(
            lab.agent_argv(["phonediag", "remedy", "apply", "disable-phone-dnd", "--device", ip]),
            env=lab.agent_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        shown = ""
        while "[oui/non]" not in shown and (char := proc.stdout.read(1)):
            shown += char
        assert "phone.dnd: true -> false" in shown
        lab.set_phone_state("phone1", admin={**admin, "password": "changed-meanwhile"})
        out, err = proc.communicate("oui\n", timeout=120)
        secrets_sweep.output("phonediag remedy interactive", shown + out + err)
        assert proc.returncode == 1, out + err
        assert "ÉCHEC" in out and "HTTP 401" in out and "Rien n'a été modifié." in out
        assert lab.phone_state("phone1")["dnd"] is True
        lab.set_phone_state("phone1", admin=admin)
        assert "dnd-on" in findings(lab, ip)  # re-read by the agent: still on
        last = audit(lab)[-1]
        assert (last["step"], last["outcome"]) == ("failed", "failed")
        assert admin["password"] not in json.dumps(audit(lab))


def test_a_cisco_dnd_turned_off_by_a_resync_verified_by_a_call_then_undone():
    """dnd-on: phone2 is a Cisco SPA504G. Cisco documents no page that writes DND, but its
    phones resync from a profile URL they are given: phonediag serves a one-setting profile
    to that phone only and reads the phone again. Blocked by a firewall on the agent's host,
    the phone fetches nothing and nothing changes."""
    with Lab.up("dnd-on") as lab:
        ip = phone(lab, "phone2")["ip"]
        listed = json.loads(phonediag(lab, "remedy", "list", "--device", ip, "--json").stdout)
        offered = {o["remedy"]: o["status"] for o in listed if o["rule"] == "dnd-on"}
        assert offered == {"disable-phone-dnd": "ready", "phone-dnd-off-by-hand": "manual"}
        assert not answered(lab, "phone1", "phone2")  # DND rejects the call (486)

        # the agent host's firewall keeps the phone out: it cannot fetch the profile
        netns.nft(lab.ns("agent"), BLOCK_FROM.format(ip=ip))
        blocked = phonediag(lab, "remedy", "apply", "disable-phone-dnd", "--device", ip, "--yes")
        assert blocked.returncode == 1, blocked.stdout + blocked.stderr
        assert "ÉCHEC" in blocked.stdout and "firewall" in blocked.stdout
        assert "Rien n'a été modifié." in blocked.stdout or "relu" in blocked.stdout
        assert lab.phone_state("phone2")["dnd"] is True
        lab.exec("agent", ["nft", "delete", "table", "inet", "pcfw"])

        applied = phonediag(lab, "remedy", "apply", "disable-phone-dnd", "--device", ip,
                            "--yes", "--json")  # fmt: skip
        result = json.loads(applied.stdout)
        assert (applied.returncode, result["verification"]) == (0, "verified"), result
        assert lab.phone_state("phone2")["dnd"] is False
        assert "dnd-on" not in findings(lab, ip)
        assert answered(lab, "phone1", "phone2")

        undone = phonediag(lab, "remedy", "undo", str(result["audit_run"]), "--yes")
        assert undone.returncode == 0, undone.stdout + undone.stderr
        assert lab.phone_state("phone2")["dnd"] is True
        assert "dnd-on" in findings(lab, ip)
        rows = audit(lab)
        assert steps(rows, result["audit_run"]) == [
            ("planned", ""), ("consent", "yes"), ("applied", "ok"), ("verified", "verified"),
        ]  # fmt: skip
        assert [r["step"] for r in rows if r["undo_of"] == result["audit_run"]] == [
            "planned", "consent", "undone",
        ]  # fmt: skip
        admin = lab.phone_state("phone2")["admin"]["password"]
        assert admin not in json.dumps(rows) and admin not in blocked.stdout + applied.stdout


def test_a_wrong_password_fixed_by_reprovisioning_the_person_restarts_the_phone():
    """wrong-password: phone3 (Gigaset C530 IP) cannot register. Re-provisioning asks
    OVHcloud for a new configuration for the office's public IP; OVHcloud cannot restart a
    Gigaset (501) and the phone's interface documents no restart, so phonediag asks the
    person to power-cycle it, waits, and checks: the phone fetched its configuration and
    registers."""
    with Lab.up("wrong-password") as lab:
        p3 = phone(lab, "phone3")
        assert "registration-auth-failed" in findings(lab, p3["ip"])
        proc = subprocess.Popen(
            lab.agent_argv(["phonediag", "remedy", "apply", "reprovision-phone", "--device",
                            p3["ip"], "--wait", "40"]),
            env=lab.agent_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        shown = read_until(proc, "[oui/non]")
        assert "100.64.66.2" in shown  # the office's public IP, for resetConfig
        proc.stdin.write("oui\n")
        proc.stdin.flush()
        shown = read_until(proc, "appuyez sur Entrée")
        assert "débranchez puis rebranchez" in shown
        lab.power_cycle("phone3")  # the person does it
        out, err = proc.communicate("\n", timeout=180)
        secrets_sweep.output("phonediag remedy interactive", shown + out + err)
        assert proc.returncode == 0, shown + out + err
        assert "Vérifié" in out, out
        assert lab.phone_registration("phone3")["registered"] is True
        assert [(f["mac"], f["ip"], f["status"]) for f in lab.provisioning_fetches()] == [
            (p3["mac"].replace(":", "").lower(), "100.64.66.2", 200)
        ]
        api_log = (lab.state.dir / "logs" / "ovhapi.log").read_text()
        assert f'{p3["line"]}: resetConfig {{"ip": "100.64.66.2"}}' in api_log
        assert "phone/reboot 501" in api_log
        run = audit(lab)[0]["run"]
        undo = phonediag(lab, "remedy", "undo", str(run), "--lang", "en")
        assert undo.returncode == 2 and "cannot be undone" in undo.stderr
        assert steps(audit(lab), run) == [
            ("planned", ""), ("consent", "yes"), ("applied", "ok"), ("verified", "verified"),
        ]  # fmt: skip


def test_a_stuck_phone_restarted_and_a_lost_password_reprovisioned_through_the_lan():
    """healthy office, phone1 (Yealink): its SIP stack gets stuck (not registered): the
    restart through its Action URI brings it back. Then it loses its line's password: the
    restart alone does not help, re-provisioning (resetConfig + the same restart) does, with
    no one touching the phone."""
    with Lab.up("healthy") as lab:
        p1 = phone(lab, "phone1")
        ip = p1["ip"]
        lab.drop_registration("phone1")
        assert "phone-not-registered" in findings(lab, ip)
        listed = json.loads(phonediag(lab, "remedy", "list", "--device", ip, "--json").stdout)
        offered = {o["remedy"]: o["status"] for o in listed if o["rule"] == "phone-not-registered"}
        assert offered["restart-phone"] == "ready" and offered["reprovision-phone"] == "ready"
        r = phonediag(lab, "remedy", "apply", "restart-phone", "--device", ip, "--yes", "--json",
                      "--wait", "40")  # fmt: skip
        result = json.loads(r.stdout)
        assert (r.returncode, result["verification"]) == (0, "verified"), result
        assert lab.phone_registration("phone1")["registered"] is True
        assert [f["status"] for f in lab.provisioning_fetches()] == [403]  # no reset asked

        lab.set_phone_state("phone1", sip_password="lost")
        lab.power_cycle("phone1")
        time.sleep(4)
        assert "phone-not-registered" in findings(lab, ip)
        r = phonediag(lab, "remedy", "apply", "reprovision-phone", "--device", ip, "--yes",
                      "--json", "--wait", "40")  # fmt: skip
        result = json.loads(r.stdout)
        assert (r.returncode, result["verification"]) == (0, "verified"), result
        assert result["notes"] == []  # nothing left to a person
        assert lab.phone_state("phone1")["sip_password"] != "lost"
        assert [f["status"] for f in lab.provisioning_fetches()][-1] == 200
        assert "phone/reboot" not in (lab.state.dir / "logs" / "ovhapi.log").read_text()
        report = json.loads(phonediag(lab, "diagnose", "--json").stdout)
        assert report["findings"] == [], report["findings"]


def test_snom_and_fanvil_settings_and_a_line_dnd_in_a_seven_family_office():
    """The other two families with a documented write path, over their real faces, and the
    line's own DND through the API: each fixed, verified by a new diagnosis, undone."""
    with Lab.up("healthy", phones=7) as lab:
        snom, fanvil, yealink = phone(lab, "phone6"), phone(lab, "phone7"), phone(lab, "phone1")
        assert (snom["vendor"], fanvil["vendor"]) == ("snom", "fanvil")
        lab.set_phone_state("phone6", dnd=True)
        lab.set_phone_state("phone7", forward={"always": "201"})
        lab.set_line_option(yealink["line"], "doNotDisturb", True)
        cases = (
            ("disable-phone-dnd", snom, "dnd-on", lambda: lab.phone_state("phone6")["dnd"]),
            ("disable-phone-forwarding", fanvil, "forwarding-left-on",
             lambda: lab.phone_state("phone7")["forward"]["always"]),
            ("disable-line-dnd", yealink, "dnd-on",
             lambda: lab.line_options(yealink["line"])["doNotDisturb"]),
        )  # fmt: skip
        before = {remedy: state() for remedy, _p, _rule, state in cases}
        assert before == {"disable-phone-dnd": True, "disable-phone-forwarding": "201",
                          "disable-line-dnd": "true"}  # fmt: skip
        runs = {}
        for remedy, p, rule, state in cases:
            assert rule in findings(lab, p["ip"])
            r = phonediag(lab, "remedy", "apply", remedy, "--device", p["ip"], "--yes", "--json")
            result = json.loads(r.stdout)
            assert (r.returncode, result["verification"]) == (0, "verified"), (remedy, result)
            assert state() in (False, "", "false"), remedy
            runs[remedy] = result["audit_run"]
        report = json.loads(phonediag(lab, "diagnose", "--json").stdout)
        assert report["findings"] == [], report["findings"]
        for remedy, _p, _rule, state in cases:
            r = phonediag(lab, "remedy", "undo", str(runs[remedy]), "--yes")
            assert r.returncode == 0, r.stdout + r.stderr
            assert state() == before[remedy], remedy
