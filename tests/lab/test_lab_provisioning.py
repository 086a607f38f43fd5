"""Phones that reboot, fetch their profile from OVHcloud's provisioning server, resync and
lose their registration (root only).

A reboot asked on a phone's web page (or a power cycle) un-REGISTERs its real baresip, asks the
provisioning server (the API stand-in, at 100.64.66.5:80) for ``<mac12>.xml``, and registers
again: with the line's real password only if ``resetConfig`` was called for the office's
public address. A Cisco SPA resyncs from a profile URL served on the LAN. Run in a
loopback-only namespace, e.g.
    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m pytest tests/lab -k provisioning'
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import pytest

from lab import Lab, netns, topology

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root (network namespaces)"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="the lab needs iproute2's `ip`"),
]

PUBLIC_IP = topology.ROUTER_WAN_IP  # the office's address as the provider sees it (NAT)

# GET URLs from the agent host, with HTTP Basic USER:PASSWORD ("" for none); one JSON line
# [status, body] per URL.
HTTP_GET = """
import base64, json, sys, urllib.error, urllib.request
login, urls = sys.argv[1], sys.argv[2:]
headers = {"Authorization": "Basic " + base64.b64encode(login.encode()).decode()} if login else {}
for url in urls:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as r:
            status, body = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    print(json.dumps([status, body.decode(errors="replace")]))
"""


# Log in to a Yealink web UI as a browser does (RSA-wrapped AES key, JSESSIONID) and print
# the status page.
YEALINK_STATUS = """
import base64, http.cookiejar, os, re, sys, urllib.parse, urllib.request
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
ip, user, password = sys.argv[1:4]
jar = http.cookiejar.CookieJar()
web = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
base = f"http://{ip}/servlet?"
page = web.open(base + "m=mod_listener&p=login&q=loginForm", timeout=5).read().decode()
n, e = (int(re.search(f'g_rsa_{k} = "([0-9a-f]+)"', page)[1], 16) for k in "ne")
sid = next(c.value for c in jar if c.name == "JSESSIONID")
rsa_key = rsa.RSAPublicNumbers(e, n).public_key()
key, iv = os.urandom(16), os.urandom(16)
plain = f"{os.urandom(4).hex()};{sid};{password}".encode()
plain += b"\\0" * (-len(plain) % 16)
aes = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
form = {"username": user, "pwd": base64.b64encode(aes.update(plain) + aes.finalize()).decode(),
        "rsakey": rsa_key.encrypt(key.hex().encode(), padding.PKCS1v15()).hex(),
        "rsaiv": rsa_key.encrypt(iv.hex().encode(), padding.PKCS1v15()).hex()}
login = web.open(base + "m=mod_listener&p=login&q=login", urllib.parse.urlencode(form).encode())
assert b'"authstatus":"done"' in login.read(), "login refused"
print(web.open(base + "m=mod_data&p=status&q=load", timeout=5).read().decode())
"""


# -- helpers ---------------------------------------------------------------------------------
def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy (or ``timeout``); return the last."""
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return result


def http_get(lab: Lab, urls: list[str], login: str = "") -> list[tuple[int, str]]:
    out = lab.run([sys.executable, "-c", HTTP_GET, login, *urls], timeout=30)
    assert out.returncode == 0, out.stderr
    return [tuple(json.loads(line)) for line in out.stdout.splitlines()]  # type: ignore[misc]


def yealink_account_state(lab: Lab, role: str) -> int:
    """Line 1's state on the Yealink status page (g_dataAccStatus: 2 registered)."""
    admin = lab.phone_state(role)["admin"]
    ip = lab.phone_state(role)["ip"]
    out = lab.run([sys.executable, "-c", YEALINK_STATUS, ip, admin["username"], admin["password"]])
    assert out.returncode == 0, out.stderr
    match = re.search(r"Account1[^:]*:[^:]*:(\d)", out.stdout)
    assert match, out.stdout
    return int(match[1])


def cisco_registration_state(lab: Lab, role: str) -> str:
    admin, ip = lab.phone_state(role)["admin"], lab.phone_state(role)["ip"]
    login = (
        f"&xuser={quote(admin['username'], safe='')}&xpassword={quote(admin['password'], safe='')}"
    )
    [(status, body)] = http_get(lab, [f"http://{ip}/admin/status.xml{login}"])
    match = re.search(r"<Registration_State>([^<]*)<", body)
    assert status == 200 and match, body
    return match[1]


def line_of(lab: Lab, role: str) -> str:
    return str(lab.phone_state(role)["line"])


def bound(lab: Lab, line: str) -> bool:
    return any(str(b["aor"]).split("@")[0] == line for b in lab.registrations())


def registered(lab: Lab, role: str) -> bool:
    reg = lab.phone_registration(role)
    return bool(reg and reg["registered"])


def fetches_of(lab: Lab, role: str) -> list[dict[str, Any]]:
    mac12 = lab.phone_state(role)["mac"].replace(":", "").lower()
    return [f for f in lab.provisioning_fetches() if f["mac"] == mac12]


class ProfileServer:
    """A tiny HTTP server on the agent host serving one profile; records who fetched it."""

    def __init__(self, lab: Lab, body: bytes) -> None:
        sock = netns.socket_in(lab.ns("agent"), socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((topology.AGENT_IP, 0))
        sock.listen(8)
        self.requests: list[tuple[str, str]] = []  # (client ip, path)
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                served.requests.append((self.client_address[0], self.path))
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(sock.getsockname(), Handler, bind_and_activate=False)
        self.server.socket.close()
        self.server.socket = sock
        self.url = f"http://{topology.AGENT_IP}:{sock.getsockname()[1]}/3f2a9c/spa.xml"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def healthy() -> Iterator[Lab]:
    with Lab.up("healthy") as lab:
        yield lab


# -- tests -----------------------------------------------------------------------------------
def test_yealink_reboot_re_registers_and_keeps_settings_without_reset(healthy: Lab) -> None:
    lab, role = healthy, "phone1"
    before, line = lab.phone_state(role), line_of(healthy, role)
    rows = len(lab.last_registrations(line))
    admin = before["admin"]
    status_url = f"http://{before['ip']}/servlet?m=mod_listener&p=login&q=loginForm"
    answers = http_get(
        lab,
        [f"http://{before['ip']}/servlet?key=Reboot", status_url],
        f"{admin['username']}:{admin['password']}",
    )
    assert answers[0][0] == 200 and "OK" in answers[0][1]
    assert answers[1][0] == 503  # booting: the web server does not answer yet
    assert wait_for(lambda: not bound(lab, line), 3.0), "the line never un-registered"
    assert not registered(lab, role)
    assert wait_for(lambda: registered(lab, role) and bound(lab, line))
    assert len(lab.last_registrations(line)) > rows
    assert lab.phone_registration(role) == {"registered": True, "status": 200, "reason": "OK"}
    fetched = fetches_of(lab, role)
    assert [(f["ip"], f["status"]) for f in fetched] == [(PUBLIC_IP, 403)]
    assert lab.phone_state(role) == before


def test_wrong_password_is_fixed_by_reset_config_and_a_power_cycle() -> None:
    with Lab.up("wrong-password") as lab:
        role = "phone3"
        line, right = line_of(lab, role), lab.state.passwords[line_of(lab, role)]
        assert lab.phone_state(role)["sip_password"] != right
        assert not registered(lab, role)

        lab.power_cycle(role)  # no resetConfig: the provisioning server refuses
        assert wait_for(lambda: fetches_of(lab, role))[-1]["status"] == 403
        assert wait_for(lambda: (lab.phone_registration(role) or {}).get("status") == 401)
        assert not registered(lab, role) and not bound(lab, line)

        path = f"/telephony/{lab.api_account}/line/{line}/phone/resetConfig"
        assert lab.api_call("POST", path, {"ip": PUBLIC_IP}) == (
            200,
            {"resetCodeInfo": None, "resetPhoneMethod": "http"},
        )
        lab.power_cycle(role)
        assert wait_for(lambda: registered(lab, role) and bound(lab, line)), lab.phone_registration(
            role
        )
        state = lab.phone_state(role)
        assert state["sip_password"] == right
        last = fetches_of(lab, role)[-1]
        assert (last["ip"], last["status"]) == (PUBLIC_IP, 200)
        assert state["provisioning_url"].endswith(f"/{last['mac']}.xml")


def test_cisco_resync_from_a_lan_url_turns_dnd_off() -> None:
    with Lab.up("dnd-on") as lab:
        role = "phone2"
        state = lab.phone_state(role)
        assert state["dnd"] is True
        admin = state["admin"]
        served = ProfileServer(lab, b"<flat-profile><DND_Setting>No</DND_Setting></flat-profile>")
        try:
            base = f"http://{state['ip']}/admin/resync?{served.url}&xuser={admin['username']}"
            [(status, _)] = http_get(lab, [f"{base}&xpassword=wrong{quote(admin['password'])}"])
            assert status == 401
            time.sleep(1.0)
            assert served.requests == [] and lab.phone_state(role)["dnd"] is True

            [(status, _)] = http_get(lab, [f"{base}&xpassword={quote(admin['password'], safe='')}"])
            assert status == 200
            assert wait_for(lambda: lab.phone_state(role)["dnd"] is False, 5.0)
            assert served.requests == [(state["ip"], "/3f2a9c/spa.xml")]
        finally:
            served.close()
        assert {k: v for k, v in lab.phone_state(role).items() if k != "dnd"} == {
            k: v for k, v in state.items() if k != "dnd"
        }
        events = lab.call("phone1", role)
        assert "CALL_ESTABLISHED" in events, events


def test_a_dropped_registration_shows_on_the_faces_until_a_power_cycle(healthy: Lab) -> None:
    lab = healthy
    lines = {role: line_of(lab, role) for role in ("phone1", "phone2")}
    assert yealink_account_state(lab, "phone1") == 2
    assert cisco_registration_state(lab, "phone2") == "Registered"
    for role in lines:
        lab.drop_registration(role)
    for role, line in lines.items():
        assert wait_for(lambda r=role, n=line: not registered(lab, r) and not bound(lab, n), 3.0)
        assert lab.phone_registration(role) == {"registered": False, "status": None, "reason": None}
    assert yealink_account_state(lab, "phone1") == 1
    assert cisco_registration_state(lab, "phone2") == "Not Registered"
    time.sleep(1.0)  # it stays so (no re-REGISTER on its own)
    assert not registered(lab, "phone1") and not bound(lab, lines["phone1"])

    for role in lines:
        lab.power_cycle(role)
    for role, line in lines.items():
        assert wait_for(lambda r=role, n=line: registered(lab, r) and bound(lab, n))
    assert yealink_account_state(lab, "phone1") == 2
    assert cisco_registration_state(lab, "phone2") == "Registered"
