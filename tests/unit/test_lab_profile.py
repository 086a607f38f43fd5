"""The lab phones' provisioning: flat-profiles, the faces' reboot/resync pages, and the
OVHcloud provisioning server of the API stand-in (served in-process on loopback).

Run like every unit test, inside ``unshare -n`` (loopback only).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests

from lab.personalities import Phone, Request, cisco, profile, snom, yealink
from lab.personalities.server import Face
from lab.services.ovhapi import Account, ApiServer, MemoryStore, make_server, signature
from lab.services.ovhapi.provisioning import Provisioning, ProvisioningServer

BA = "ovhtel-12345678-1"
AK, AS, CK = (
    "7kbG7Bk7S9Nt7ZSV",
    "EXEgWIz07P0HYwtQDs7cNIqCiQaWSuHF",
    "MtSwSrPpNjqfVSmJhLbPyr2i45lSwPU1",
)
MAC12 = "805ec0aabbcc"
ACCOUNT: dict[str, Any] = {
    "credentials": [
        {
            "application_key": AK,
            "application_secret": AS,
            "consumer_key": CK,
            "rules": [{"method": "POST", "path": "/telephony/*"}],
        }
    ],
    "billing_accounts": {
        BA: {
            "description": "Bureau",
            "lines": {
                "1001": {
                    "description": "Accueil",
                    "sip_password": "s3cret<&>",
                    "phone": {
                        "brand": "phone.yealink.t46s",
                        "description": "Yealink T46S",
                        "macAddress": "80-5E-C0-AA-BB-CC",
                        "maxline": 16,
                    },
                },
                "1002": {"description": "Salle", "phone": None},
            },
        }
    },
    "sip_domain": "sip.ovh.test",
}
STATE: dict[str, Any] = {
    "vendor": "cisco",
    "model": "SPA504G",
    "mac": "00:0e:08:aa:bb:cc",
    "line": "1002",
    "registrar": "sip.ovh.test",
    "sip_password": "old",
    "admin": {"username": "admin", "password": "s3cr!t"},
    "dnd": True,
    "forward": {"always": "0612345678", "busy": "", "noanswer": "0699"},
    "expires": 1800,
    "provisioning_url": "http://cisco.prov.voip.ovh.net/init.cfg",
}


def flat(body: str) -> bytes:
    return f'<?xml version="1.0"?>\n<flat-profile>\n{body}</flat-profile>\n'.encode()


# ---------------------------------------------------------------- applying a profile


def test_only_the_parameters_present_change_the_state() -> None:
    state = json.loads(json.dumps(STATE))
    changed = profile.apply(state, flat("<DND_Setting>No</DND_Setting>\n<Unknown_X>1</Unknown_X>"))
    assert changed == ["DND_Setting"]
    assert state == {**STATE, "dnd": False}


def test_a_full_profile_sets_the_line_and_clears_forwards() -> None:
    state = json.loads(json.dumps(STATE))
    body = flat(
        "<User_ID_1_>1003</User_ID_1_><Password_1_>n3w</Password_1_>"
        "<Proxy_1_>sip2.ovh.test</Proxy_1_><Register_Expires_1_>3600</Register_Expires_1_>"
        '<Cfwd_All_Dest group="User/Call_Forward" /><Cfwd_Busy_Dest>0611</Cfwd_Busy_Dest>'
        "<Cfwd_No_Ans_Dest></Cfwd_No_Ans_Dest><DND_Setting_1_>No</DND_Setting_1_>"
        "<Profile_Rule>http://cisco.prov.voip.ovh.net/000e08aabbcc.xml</Profile_Rule>"
    )
    profile.apply(state, body)
    assert (state["line"], state["sip_password"], state["registrar"]) == (
        "1003",
        "n3w",
        "sip2.ovh.test",
    )
    assert state["expires"] == 3600 and state["dnd"] is False
    assert state["forward"] == {"always": "", "busy": "0611", "noanswer": ""}
    assert state["provisioning_url"] == "http://cisco.prov.voip.ovh.net/000e08aabbcc.xml"


def test_bad_values_are_skipped_and_the_rest_applied() -> None:
    state = json.loads(json.dumps(STATE))
    changed = profile.apply(
        state,
        flat("<DND_Setting>Maybe</DND_Setting><Register_Expires_1_>soon</Register_Expires_1_>"
             "<Cfwd_All_Dest>0700</Cfwd_All_Dest>"),
    )  # fmt: skip
    assert changed == ["Cfwd_All_Dest"]
    assert state["dnd"] is True and state["expires"] == 1800
    assert state["forward"]["always"] == "0700"


@pytest.mark.parametrize(
    "body",
    [
        b"<flat-profile><DND_Setting>No</DND_Setting>",  # not closed
        b"not xml at all",
        b"<flat-status><DND_Setting>No</DND_Setting></flat-status>",  # another document
        flat("<DND_Setting>No</DND_Setting>" + "<Pad>x</Pad>" * 7000),  # over 64 KiB
        b'<?xml version="1.0"?><!DOCTYPE f [<!ENTITY a "No">]>'
        b"<flat-profile><DND_Setting>&a;</DND_Setting></flat-profile>",  # entities refused
    ],
)
def test_unusable_profiles_change_nothing(body: bytes) -> None:
    state = json.loads(json.dumps(STATE))
    with pytest.raises(profile.ProfileError):
        profile.apply(state, body)
    assert state == STATE


def test_profile_url_is_the_mac_next_to_the_provisioning_url() -> None:
    mac = "00:0E:08:AA:BB:CC"
    assert profile.profile_url("http://cisco.prov.voip.ovh.net/init.cfg", mac) == (
        "http://cisco.prov.voip.ovh.net/000e08aabbcc.xml"
    )
    assert profile.profile_url("http://gigaset.prov.voip.ovh.net/c530ip/", mac) == (
        "http://gigaset.prov.voip.ovh.net/c530ip/000e08aabbcc.xml"
    )


# ---------------------------------------------------------------- fetching a profile


@dataclass
class Served:
    port: int
    seen: list[tuple[str, str]] = field(default_factory=list)  # (Host, path)


@pytest.fixture
def web() -> Iterator[tuple[Served, dict[str, bytes]]]:
    """A tiny HTTP server on 127.0.0.1: path -> body (404 otherwise)."""
    pages: dict[str, bytes] = {}
    served = Served(0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.seen.append((self.headers.get("Host", ""), self.path))
            body = pages.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield served, pages
    finally:
        server.shutdown()
        server.server_close()


def test_fetch_reaches_ovh_hosts_through_the_provisioning_server(
    web: tuple[Served, dict[str, bytes]],
) -> None:
    served, pages = web
    pages["/c530ip/000e08aabbcc.xml"] = flat("<DND_Setting>No</DND_Setting>")
    url = "http://gigaset.prov.voip.ovh.net/c530ip/000e08aabbcc.xml"
    assert profile.fetch(url, f"127.0.0.1:{served.port}") == (
        200,
        pages["/c530ip/000e08aabbcc.xml"],
    )
    assert served.seen == [("gigaset.prov.voip.ovh.net", "/c530ip/000e08aabbcc.xml")]
    direct = f"http://127.0.0.1:{served.port}/missing.xml"
    assert profile.fetch(direct, "192.0.2.1:80")[0] == 404  # other hosts: directly
    with pytest.raises(ValueError):
        profile.fetch("https://127.0.0.1/x.xml")


def test_fetch_stops_reading_past_the_cap(web: tuple[Served, dict[str, bytes]]) -> None:
    served, pages = web
    pages["/big.xml"] = b"x" * (3 * profile.MAX_PROFILE)
    status, body = profile.fetch(f"http://127.0.0.1:{served.port}/big.xml")
    assert status == 200 and len(body) == profile.MAX_PROFILE + 1
    with pytest.raises(profile.ProfileError):
        profile.parse(body)


# ---------------------------------------------------------------- the faces' pages


class FakeFirmware:
    def __init__(self) -> None:
        self.boots: list[str] = []
        self.resyncs: list[str | None] = []
        self.booting = False

    def boot_async(self, reason: str) -> None:
        self.boots.append(reason)

    def resync_async(self, url: str | None, reason: str) -> None:
        self.resyncs.append(url)


def phone_with(tmp_path: Path, **changes: Any) -> tuple[Phone, FakeFirmware]:
    path = tmp_path / "phone-state.json"
    path.write_text(json.dumps({**STATE, **changes}))
    firmware = FakeFirmware()
    return Phone(path, firmware=firmware), firmware


def get(target: str, auth: str = "") -> Request:
    path, _, raw = target.partition("?")
    headers = {"authorization": auth} if auth else {}
    return Request(
        "GET", path, dict(parse_qsl(raw, keep_blank_values=True)), headers, b"", "10.66.0.100", raw
    )


BASIC = "Basic YWRtaW46czNjciF0"  # admin:s3cr!t


def test_cisco_resync_takes_the_url_before_the_login(tmp_path: Path) -> None:
    phone, fw = phone_with(tmp_path)
    url = "http://10.66.0.100:41234/3f2a9c/spa.xml"
    assert (
        cisco.handle(get(f"/admin/resync?{url}&xuser=admin&xpassword=s3cr%21t"), phone).status
        == 200
    )
    assert cisco.handle(get("/admin/resync&xuser=admin&xpassword=s3cr%21t"), phone).status == 200
    assert cisco.handle(get(f"/admin/resync?{url}", BASIC), phone).status == 200
    assert fw.resyncs == [url, None, url] and fw.boots == []
    assert cisco.handle(get("/admin/reboot&xuser=admin&xpassword=s3cr%21t"), phone).status == 200
    assert len(fw.boots) == 1


@pytest.mark.parametrize(
    "target",
    [
        "/admin/resync?http://10.66.0.100:41234/spa.xml&xuser=admin&xpassword=wrong",
        "/admin/resync?http://10.66.0.100:41234/spa.xml",
        "/admin/reboot&xuser=root&xpassword=s3cr%21t",
        "/admin/reboot",
    ],
)
def test_cisco_wrong_login_is_401_and_does_nothing(tmp_path: Path, target: str) -> None:
    phone, fw = phone_with(tmp_path)
    assert cisco.handle(get(target), phone).status == 401
    assert fw.resyncs == [] and fw.boots == []


def test_yealink_and_snom_reboot_pages(tmp_path: Path) -> None:
    phone, fw = phone_with(tmp_path, vendor="yealink", model="SIP-T46S")
    assert yealink.handle(get("/servlet?key=Reboot"), phone).status == 401
    assert yealink.handle(get("/servlet?key=Reboot", BASIC), phone).status == 200
    phone.state["action_uri_limit_ip"] = "10.66.0.1"
    assert yealink.handle(get("/servlet?key=Reboot", BASIC), phone).status == 403
    assert len(fw.boots) == 1
    phone, fw = phone_with(tmp_path, vendor="snom", model="D785")
    assert snom.handle(get("/advanced_network.htm?reboot=Reboot"), phone).status == 401
    assert snom.handle(get("/advanced_network.htm", BASIC), phone).status == 200
    assert fw.boots == []
    assert snom.handle(get("/advanced_network.htm?reboot=Reboot", BASIC), phone).status == 200
    assert len(fw.boots) == 1


def test_a_face_saves_the_state_owner_only(tmp_path: Path) -> None:
    phone, _ = phone_with(tmp_path)
    phone.state_file.chmod(0o600)
    phone.state["dnd"] = False
    phone.save()
    assert phone.state_file.stat().st_mode & 0o777 == 0o600
    assert json.loads(phone.state_file.read_text())["dnd"] is False


def test_face_answers_503_while_the_phone_boots(tmp_path: Path) -> None:
    phone, fw = phone_with(tmp_path)
    face = Face("cisco", phone.state_file, fw)  # type: ignore[arg-type]
    assert face.respond(get("/admin/status.xml", BASIC)).status != 503
    fw.booting = True
    assert face.respond(get("/admin/status.xml", BASIC)).status == 503
    assert face.respond(get("/admin/reboot", BASIC)).status == 503 and fw.boots == []


# ---------------------------------------------------------------- the provisioning server


@dataclass
class Office:
    api: ApiServer
    prov: Provisioning
    prov_port: int
    logs: list[str]

    def reset_config(self, ip: str, line: str = "1001") -> requests.Response:
        url = f"http://127.0.0.1:{self.api.server_address[1]}/1.0/telephony/{BA}/line/{line}/phone/resetConfig"
        body, ts = json.dumps({"ip": ip}), str(int(time.time()))
        headers = {
            "X-Ovh-Application": AK,
            "X-Ovh-Consumer": CK,
            "X-Ovh-Timestamp": ts,
            "X-Ovh-Signature": signature(AS, CK, "POST", url, body, ts),
            "Content-Type": "application/json",
        }
        return requests.post(url, data=body, headers=headers, timeout=5)

    def fetch(self, path: str, source: str = "127.0.0.1") -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(
            "127.0.0.1", self.prov_port, timeout=5, source_address=(source, 0)
        )
        try:
            conn.request("GET", path, headers={"Host": "cisco.prov.voip.ovh.net"})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    logs: list[str] = []
    api = make_server(Account.from_dict(ACCOUNT), MemoryStore(), "127.0.0.1", 0, log=logs.append)
    prov = Provisioning(api.api, tmp_path / "fetches.jsonl")
    prov_server = ProvisioningServer(("127.0.0.1", 0), prov)
    servers = [api, prov_server]
    for server in servers:
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield Office(api, prov, prov_server.server_address[1], logs)
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
    assert not [line for line in logs if "Traceback" in line], logs


def test_profile_only_for_the_address_given_to_reset_config(office: Office, tmp_path: Path) -> None:
    path = f"/any/dir/{MAC12}.xml"
    assert office.fetch(path)[0] == 403  # no resetConfig yet
    answer = office.reset_config("127.0.0.1")
    assert answer.status_code == 200
    assert answer.json() == {"resetCodeInfo": None, "resetPhoneMethod": "http"}
    status, body = office.fetch(path)
    assert status == 200
    assert profile.parse(body) == {
        "User_ID_1_": "1001",
        "Password_1_": "s3cret<&>",
        "Proxy_1_": "sip.ovh.test",
        "Register_Expires_1_": "1800",
        "DND_Setting": "No",
        "Cfwd_All_Dest": "",
        "Cfwd_Busy_Dest": "",
        "Cfwd_No_Ans_Dest": "",
        "Profile_Rule": f"http://cisco.prov.voip.ovh.net{path}",
    }
    assert office.fetch(f"/{MAC12.upper()}.xml")[0] == 200  # hex digits in any case
    assert office.fetch(path, source="127.0.0.2")[0] == 403  # another public address
    assert office.fetch("/000000000000.xml")[0] == 404  # no line has this phone
    assert office.fetch(f"/{MAC12}.cfg")[0] == 404
    office.prov.api.clock_offset = 3601  # the reset was more than an hour ago
    assert office.fetch(path)[0] == 403
    record = [json.loads(line) for line in (tmp_path / "fetches.jsonl").read_text().splitlines()]
    assert [(r["mac"], r["ip"], r["status"]) for r in record] == [
        (MAC12, "127.0.0.1", 403),
        (MAC12, "127.0.0.1", 200),
        (MAC12, "127.0.0.1", 200),
        (MAC12, "127.0.0.2", 403),
        ("000000000000", "127.0.0.1", 404),
        ("-", "127.0.0.1", 404),
        (MAC12, "127.0.0.1", 403),
    ]
    assert f"provisioning {MAC12} from 127.0.0.2: 403" in office.logs


def test_a_reset_for_another_address_serves_nothing(office: Office) -> None:
    assert office.reset_config("100.64.66.2").status_code == 200
    assert office.fetch(f"/{MAC12}.xml")[0] == 403


def test_account_sip_password_must_be_a_string() -> None:
    bad = json.loads(json.dumps(ACCOUNT))
    bad["billing_accounts"][BA]["lines"]["1001"]["sip_password"] = 1234
    with pytest.raises(ValueError, match="sip_password"):
        Account.from_dict(bad)
