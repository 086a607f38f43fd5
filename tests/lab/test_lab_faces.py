"""The phones' web faces and the faults carried by their state (root only).

Every phone answers HTTP on port 80; its state file drives the real SIP UA (DND rejects
calls); the wrong-password, duplicate-registration and outdated-firmware scenarios put one
real fault on one phone. Run in a loopback-only namespace, e.g.
    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m pytest tests/lab -x -q'
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import config as agent_config
from lab import Lab, procs
from lab.netns import NETNS_ETC_DIR, NETNS_RUN_DIR
from lab.personalities import Request
from lab.personalities.server import Face

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root (network namespaces)"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="the lab needs iproute2's `ip`"),
]

# Fetch URLs from the agent host; print "URL STATUS" (or "URL ERROR reason").
FETCH = """
import sys, urllib.error, urllib.request
for url in sys.argv[1:]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            print(url, r.status)
    except urllib.error.HTTPError as e:
        print(url, e.code)
    except OSError as e:
        print(url, "ERROR", repr(e).replace(" ", "_"))
"""

# POST a body over the face's 64 KiB cap, then GET again: 413, and the face still answers.
BIG_POST = """
import sys, urllib.error, urllib.request
url = sys.argv[1]
try:
    urllib.request.urlopen(urllib.request.Request(url, data=b"x" * 70000), timeout=5)
except urllib.error.HTTPError as e:
    print(e.code)
try:
    print(urllib.request.urlopen(url, timeout=5).status)
except urllib.error.HTTPError as e:
    print(e.code)
"""

STATE_KEYS = {
    "vendor",
    "model",
    "firmware",
    "mac",
    "ip",
    "line",
    "registrar",
    "admin",
    "dnd",
    "forward",
    "clock_offset_s",
    "provisioning_url",
    "outbound_proxy",
    "transport",
    "expires",
    "sip_password",
    "provisioning_server",
}
REGISTERED = {"registered": True, "status": 200, "reason": "OK"}


def fetch(lab: Lab, urls: list[str]) -> dict[str, str]:
    out = lab.run([sys.executable, "-c", FETCH, *urls], timeout=60)
    assert out.returncode == 0, out.stderr
    return dict(line.split(" ", 1) for line in out.stdout.splitlines())


def face_log(lab: Lab, role: str) -> str:
    return (lab.state.dir / "logs" / f"{role}-face.log").read_text()


def lines_bound(lab: Lab) -> list[str]:
    return [str(b["aor"]).split("@")[0] for b in lab.registrations()]


def assert_gone(names: list[str], started: list[procs.Proc], state: Path) -> None:
    assert not [n for n in names if (NETNS_RUN_DIR / n).exists()]
    assert not [n for n in names if (NETNS_ETC_DIR / n).exists()]
    assert not [p for p in started if procs.alive(p)]
    assert not [p for p in started if procs._group_alive(p.pid)]
    assert not state.exists()


@pytest.fixture(scope="module")
def healthy() -> Iterator[Lab]:
    with Lab.up("healthy") as lab:
        yield lab


def test_every_phone_answers_http_on_port_80(healthy: Lab) -> None:
    urls = [f"http://{p['ip']}{path}" for p in healthy.phones for path in ("/", "/no/such/page")]
    answers = fetch(healthy, urls)
    assert set(answers) == set(urls)
    for url, status in answers.items():
        assert status.isdigit() and int(status) < 500, (url, status)  # vendor page, 401 or 404
    for ph in healthy.phones:
        assert ph["offers"]["http"]


def test_face_caps_request_bodies(healthy: Lab) -> None:
    out = healthy.run([sys.executable, "-c", BIG_POST, f"http://{healthy.phones[0]['ip']}/"])
    first, second = out.stdout.split()
    assert first == "413" and int(second) < 500, out


def test_face_without_module_says_404_and_survives_a_broken_handler(tmp_path: Path) -> None:
    state = tmp_path / "phone-state.json"
    state.write_text(json.dumps({"vendor": "nobody", "admin": {}}))
    req = Request("GET", "/", {}, {})
    face = Face("nosuchfamily", state, None)
    assert face.respond(req).status == 404
    face.module = types.SimpleNamespace(handle=lambda req, phone: 1 / 0)  # type: ignore[assignment]
    assert face.respond(req).status == 500


def test_phone_state_and_agent_credentials(healthy: Lab) -> None:
    cfg = agent_config.load(healthy.config_path)
    for ph in healthy.phones:
        state = healthy.phone_state(ph["role"])
        assert set(state) >= STATE_KEYS
        assert all(state[k] == ph[k] for k in ("vendor", "model", "firmware", "mac", "ip", "line"))
        assert state["dnd"] is False and state["forward"]["always"] == ""
        assert (state["transport"], state["expires"], state["clock_offset_s"]) == ("udp", 1800, 0)
        assert state["provisioning_url"].startswith(f"http://{ph['vendor']}.prov.voip.ovh.net/")
        assert state["sip_password"] == healthy.state.passwords[ph["line"]]
        assert state["provisioning_server"] == "100.64.66.5:80"
        logins = cfg.logins_for(ph["vendor"], ph["ip"])
        assert [(c.username, c.password) for c in logins] == [
            (state["admin"]["username"], state["admin"]["password"])
        ]
    cisco = healthy.phone_state("phone2")
    assert cisco["provisioning_url"] == "http://cisco.prov.voip.ovh.net/init.cfg"


def test_healthy_phones_report_their_registration(healthy: Lab) -> None:
    for ph in healthy.phones:
        assert healthy.phone_registration(ph["role"]) == REGISTERED


def test_dnd_set_at_runtime_rejects_then_accepts(healthy: Lab) -> None:
    healthy.set_phone_state("phone3", dnd=True)
    try:
        assert healthy.phone_state("phone3")["dnd"] is True
        events = healthy.call("phone1", "phone3")
        assert "CALL_ESTABLISHED" not in events and "CALL_CLOSED" in events, events
    finally:
        healthy.set_phone_state("phone3", dnd=False)
    assert "CALL_ESTABLISHED" in healthy.call("phone1", "phone3")
    assert "DND: rejected call from sip:1001@" in face_log(healthy, "phone3")


def test_forward_always_diverts_calls(healthy: Lab) -> None:
    healthy.set_phone_state("phone2", forward={"always": "0033972101010"})
    try:
        events = healthy.call("phone1", "phone2")
        assert "CALL_ESTABLISHED" not in events, events
        assert healthy.phone_state("phone2")["forward"]["busy"] == ""  # merged, not replaced
    finally:
        healthy.set_phone_state("phone2", forward={"always": ""})
    assert "forwarded to 0033972101010" in face_log(healthy, "phone2")
    assert "CALL_ESTABLISHED" in healthy.call("phone1", "phone2")


def test_dnd_on_rejects_calls_to_that_phone_only() -> None:
    with Lab.up("dnd-on") as lab:
        assert lab.phone_state("phone2")["dnd"] is True
        assert not lab.phone_state("phone3")["dnd"]
        rejected = lab.call("phone1", "phone2")
        assert "CALL_ESTABLISHED" not in rejected and "CALL_CLOSED" in rejected, rejected
        assert "CALL_ESTABLISHED" in lab.call("phone1", "phone3")
        assert "DND: rejected call" in face_log(lab, "phone2")
        caller_log = (lab.state.dir / "logs" / "phone1-baresip.log").read_text()
        assert "486 Rejected" in caller_log  # baresip's answer to a hung-up incoming call


def test_wrong_password_leaves_that_line_unregistered() -> None:
    with Lab.up("wrong-password") as lab:
        faulty = lab.phones[2]
        bound = lines_bound(lab)
        assert faulty["line"] not in bound
        assert all(p["line"] in bound for p in lab.phones[:2]), bound
        reg = lab.phone_registration("phone3")
        assert reg is not None and reg["registered"] is False, reg
        assert reg["status"] in (401, 403), reg
        assert lab.phone_registration("phone1") == REGISTERED


def test_duplicate_registration_two_contacts_for_one_line() -> None:
    lab = Lab.up("duplicate-registration")
    left = list(lab.namespaces.values()), list(lab.state.procs), lab.state.dir
    try:
        line = lab.phones[0]["line"]
        mine = [b for b in lab.registrations() if str(b["aor"]).split("@")[0] == line]
        assert len(mine) == 2, mine
        agents = sorted(b["user_agent"] for b in mine)
        assert agents == sorted([lab.phones[0]["user_agent"], "Cisco/SPA504G-7.6.2c"])
        assert any("@10.66.0.50:" in b["address"] for b in mine), mine
        assert [u["ip"] for u in lab.extra_uas] == ["10.66.0.50"]
        assert "dup" in lab.namespaces
        assert lab.phone_registration("phone1") == REGISTERED
    finally:
        lab.down()
    assert_gone(*left)


def test_outdated_firmware_n670_is_up_registered_and_diagnosed() -> None:
    with Lab.up("outdated-firmware") as lab:
        n670 = lab.phones[2]
        assert (n670["model"], n670["firmware"]) == ("N670 IP PRO", "2.20.0")
        assert n670["user_agent"] == "Gigaset N670 IP PRO/2.20.0"
        assert n670["offers"] == {"sip": True, "snmp": False, "mdns": False, "http": True}
        assert n670["mac"].startswith("7c:2f:80")
        binding = next(b for b in lab.registrations() if b["aor"] == n670["line"])
        assert binding["user_agent"] == n670["user_agent"]
        assert lab.phone_registration("phone3") == REGISTERED
        answers = fetch(lab, [f"http://{n670['ip']}/"])
        assert answers[f"http://{n670['ip']}/"].isdigit()
        r = lab.run(["phonediag", "diagnose", "--json"], timeout=90)
        found = [(f["rule"], f["device"]) for f in json.loads(r.stdout)["findings"]]
        assert ("firmware-outdated", n670["ip"]) in found, found
