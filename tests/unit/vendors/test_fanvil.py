"""Fanvil adapter: documented web-server shapes, failure answers, and the lab personality."""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from agent.config import Config, Credential
from agent.model import Device
from agent.net.http import HttpError, LockedOut, Session
from agent.vendors import base, registry
from agent.vendors.fanvil import ADAPTER, parse_information
from lab.personalities import Request, Response
from lab.personalities import fanvil as face
from tests.unit.vendors.helpers import face_transport, make_phone, read

DATA = Path(__file__).parent / "data" / "fanvil"
DEVICE = Device("10.66.0.31", vendor="fanvil")
SECRET = "Sup3r:Secret?"
# information_*.html: System Time 2024-05-13 14:03:22, UTC+1 with summer time = 12:03:22 UTC
MAY = calendar.timegm((2024, 5, 13, 12, 3, 22, 0, 0, 0))
Answer = tuple[int, str, bytes]


def doc(name: str, ctype: str = "text/html") -> Answer:
    return 200, ctype, (DATA / name).read_bytes()


class Fixed:
    """Fixed answers by method and path; a login POST gets ``login``, a logout the form."""

    def __init__(self, routes: dict[str, Answer], login: Answer | None = None) -> None:
        self.routes = {
            "GET /": doc("login_form.html"),
            "GET /information.htm": doc("information_registered.html"),
            "GET /config.txt": doc("config_v65.txt", "text/plain"),
        } | routes
        self.login = login or doc("frameset.html")
        self.seen: list[httpx.Request] = []

    def forms(self) -> list[dict[str, str]]:
        return [dict(parse_qsl(r.content.decode())) for r in self.seen if r.method == "POST"]

    def transport(self) -> httpx.MockTransport:
        def serve(r: httpx.Request) -> httpx.Response:
            self.seen.append(r)
            key = f"{r.method} {r.url.path}"
            if key == "POST /":
                logout = b"DefaultLogout" in r.content
                status, ctype, body = doc("login_form.html") if logout else self.login
            else:
                status, ctype, body = self.routes.get(key, (404, "text/html", b"404 Not Found"))
            return httpx.Response(status, headers={"Content-Type": ctype}, content=body)

        return httpx.MockTransport(serve)


def run(
    transport: httpx.AsyncBaseTransport,
    now: float = MAY,
    logins: tuple[tuple[str, str], ...] = (("admin", SECRET),),
) -> tuple[dict[str, Any], Session]:
    session = Session(DEVICE.ip, [Credential(u, p) for u, p in logins], transport=transport)
    ctx = base.Context(DEVICE, Config(), session, now=now)
    return asyncio.run(ADAPTER.read(ctx)), session


HEALTHY = {
    "sip.account": "0033972101010@sip.ovh.net",
    "sip.registered": True,
    "sip.register_expires_s": 1800,
    "sip.transport": "udp",
    "phone.forward.always": False,
    "phone.forward.busy": False,
    "phone.forward.noanswer": False,
    "phone.dnd": False,
    "phone.clock_skew_s": 0.0,
    "phone.provisioning_url": "http://fanvil.prov.voip.ovh.net/",
    "phone.outbound_proxy": "",
    "phone.ip": "10.66.0.31",
}


def test_registry_finds_the_adapter() -> None:
    assert registry.adapter_for("fanvil") is ADAPTER


def test_healthy_registered_phone_every_key() -> None:
    fixed = Fixed({})
    values, session = run(fixed.transport())
    assert values == HEALTHY
    assert session.log == [
        "GET /",
        "POST /",
        "GET /information.htm",
        "GET /config.txt",
        "POST /",
    ]


def test_login_is_fanvils_nonce_digest_and_the_session_ends() -> None:
    fixed = Fixed({})
    run(fixed.transport())
    login, logout = fixed.forms()
    digest = hashlib.md5(f"admin:{SECRET}:0123456789abcdef".encode()).hexdigest()
    assert login == {
        "nonce": "0123456789abcdef",
        "URL": "/",
        "goto": "Logon",
        "LOG_Language": "0",
        "encoded": f"admin:{digest}",
    }
    assert "auth=0123456789abcdef" in fixed.seen[2].headers["cookie"]
    assert logout == {"DefaultLogout": "Logout"}
    assert all(SECRET not in r.content.decode() for r in fixed.seen)  # never in clear


def test_dnd_forward_always_outbound_proxy_tls() -> None:
    values, _ = run(Fixed({"GET /config.txt": doc("config_dnd_forward.txt")}).transport())
    assert values["phone.dnd"] is True  # line 1's own DND flag
    assert values["phone.forward.always"] is True
    assert values["phone.forward.always_target"] == "0611223344"
    assert values["phone.forward.noanswer"] is True and values["phone.forward.busy"] is False
    assert values["phone.outbound_proxy"] == "91.121.129.159:5962"
    assert values["sip.transport"] == "tls"


def test_not_registered_has_no_sip_code() -> None:
    fixed = Fixed({"GET /information.htm": doc("information_failed.html")})
    values, _ = run(fixed.transport())
    assert values["sip.registered"] is False
    assert "sip.last_status" not in values and "sip.last_reason" not in values


@pytest.mark.parametrize("word", ["Timeout", "Unapplied", "Failed", "Unregistered"])
def test_status_words(word: str) -> None:
    page = f"<table><tr><td>Line 1</td><td>u@h</td><td>{word}</td></tr></table>"
    assert parse_information(page, {}, MAY) == {"sip.registered": False}


def test_line_one_not_line_two() -> None:
    page = (
        "<table><tr><td>SIP2</td><td>x@h</td><td>Registered</td></tr>"
        "<tr><td>SIP1</td><td>u@h</td><td>Timeout</td></tr>"
        "<tr><td>VPN</td><td>Disabled</td></tr></table>"
    )
    assert parse_information(page, {}, MAY) == {"sip.registered": False}


def test_legacy_configuration_keys() -> None:
    fixed = Fixed(
        {
            "GET /config.txt": doc("config_legacy.txt", "text/plain"),
            "GET /information.htm": (404, "text/html", b"404"),
        }
    )
    values, _ = run(fixed.transport())
    assert values == {
        "sip.account": "0033972101010@sip.ovh.net",
        "sip.register_expires_s": 3600,
        "sip.transport": "udp",
        "phone.outbound_proxy": "sip.ovh.net:5060",
        "phone.provisioning_url": "192.168.1.10",
        "phone.forward.always": False,
        "phone.forward.busy": False,
        "phone.forward.noanswer": False,
    }


def test_clock_needs_the_phones_time_zone() -> None:
    fixed = Fixed({"GET /config.txt": (404, "text/html", b"404")})
    values, _ = run(fixed.transport())
    assert "phone.clock_skew_s" not in values  # local time without its zone: unknown
    assert values["sip.registered"] is True


def test_clock_skew_in_winter_and_a_wrong_clock() -> None:
    cfg = {"time zone name": "UTC+1", "dst type": "1", "dst min offset": "60"}
    page = "<table><tr><td>System Time:</td><td>2024-01-10 09:00:00</td></tr></table>"
    jan = calendar.timegm((2024, 1, 10, 8, 0, 0, 0, 0, 0))
    assert parse_information(page, cfg, jan) == {"phone.clock_skew_s": 0.0}
    late = parse_information(page, cfg | {"dst type": "0"}, jan - 86400)
    assert late == {"phone.clock_skew_s": 86400.0}


# ---------------------------------------------------------------- refusals and failures


def test_wrong_form_login_stays_within_the_budget() -> None:
    fixed = Fixed({}, login=doc("login_failed.html"))
    logins = (("admin", "wrong1"), ("admin", "wrong2"), ("admin", "wrong3"))
    with pytest.raises(HttpError, match="refused the web login") as err:
        run(fixed.transport(), logins=logins)
    assert len(fixed.forms()) == 2  # the session's budget of 2, never the phone's 3
    assert fixed.forms()[1]["nonce"] == "fedcba9876543210"  # the fresh nonce
    assert "wrong" not in str(err.value)


def test_wrong_basic_login_401_within_the_budget() -> None:
    fixed = Fixed({"GET /": (401, "text/html", b"401 Unauthorized")})
    with pytest.raises(HttpError, match="refused the web login"):
        run(fixed.transport(), logins=(("admin", "a"), ("admin", "b"), ("admin", "c")))
    assert len(fixed.seen) == 3  # unauthenticated, then 2 logins


@pytest.mark.parametrize(
    "answer",
    [
        (429, "text/html", b"busy"),
        (401, "text/html", b"Login locked: too many failed attempts"),
        (403, "text/html", b"Account locked"),
    ],
)
def test_lockout_answers(answer: Answer) -> None:
    fixed = Fixed({"GET /": answer})
    with pytest.raises(LockedOut):
        run(fixed.transport())


def test_locked_login_page_is_a_lockout() -> None:
    fixed = Fixed({}, login=doc("login_locked.html"))
    with pytest.raises(LockedOut):
        run(fixed.transport(), logins=(("admin", "x"), ("admin", "y")))
    assert len(fixed.forms()) == 1


def test_busy_web_server() -> None:
    fixed = Fixed({"GET /": (503, "text/html", b"Server Too Busy")})
    with pytest.raises(HttpError, match="busy"):
        run(fixed.transport())


JUNK = (200, "text/html", b"<!DOCTYPE html><html><body>Login</body></html>")


@pytest.mark.parametrize(
    "routes",
    [
        {"GET /": JUNK},  # not a Fanvil login form
        {"GET /": (200, "text/html", b"")},
        {"GET /information.htm": JUNK, "GET /config.txt": JUNK},
        {"GET /information.htm": (200, "text/html", b""), "GET /config.txt": (200, "", b"")},
        {"GET /information.htm": (500, "", b""), "GET /config.txt": (200, "", b'{"a": 1}')},
        {
            "GET /information.htm": (200, "text/html", b"<table><tr><td>SIP1<td>Regis"),
            "GET /config.txt": JUNK,
        },
    ],
)
def test_malformed_answers_are_http_errors(routes: dict[str, Answer]) -> None:
    with pytest.raises(HttpError):
        run(Fixed(routes).transport())


def test_truncated_or_odd_configuration_leaves_keys_out() -> None:
    cut = (DATA / "config_v65.txt").read_bytes()[:700]  # stops inside the SIP line list
    odd = b"<<VOIP CONFIG FILE>>Version:2\nSIP1 Transport :9\nSIP1 Register TTL :soon\n"
    values, _ = run(Fixed({"GET /config.txt": (200, "text/plain", cut)}).transport())
    assert values["sip.registered"] is True and "phone.dnd" not in values
    values, _ = run(Fixed({"GET /config.txt": (200, "text/plain", odd)}).transport())
    assert "sip.transport" not in values and "sip.register_expires_s" not in values


def test_timeouts_are_http_errors() -> None:
    def hang(r: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("slow", request=r)

    with pytest.raises(HttpError):
        run(httpx.MockTransport(hang))


# ---------------------------------------------------------------- the lab personality

STATE: dict[str, Any] = {
    "vendor": "fanvil",
    "model": "V65",
    "firmware": "2.12.8.2",
    "mac": "0c:38:3e:12:34:56",
    "ip": "10.66.0.31",
    "line": "0033972101010",
    "registrar": "sip.ovh.test",
    "admin": {"username": "admin", "password": SECRET},
    "dnd": False,
    "forward": {"always": "", "busy": "", "noanswer": ""},
    "clock_offset_s": 0,
    "provisioning_url": "http://fanvil.prov.voip.ovh.net/",
    "outbound_proxy": "",
    "transport": "udp",
    "expires": 1800,
}


def face_read(tmp_path: Path, logins=(("admin", SECRET),), **changes: Any) -> dict[str, Any]:
    phone = make_phone(tmp_path, **(STATE | changes))
    return read(ADAPTER, DEVICE, face_transport(face.handle, phone), logins=logins)


def test_personality_round_trips_a_healthy_phone(tmp_path: Path) -> None:
    values = face_read(tmp_path)
    assert abs(values.pop("phone.clock_skew_s")) < 5
    expected = {k: v for k, v in HEALTHY.items() if k != "phone.clock_skew_s"}
    assert values == expected | {"sip.account": "0033972101010@sip.ovh.test"}


def test_personality_dnd_forward_clock_proxy(tmp_path: Path) -> None:
    values = face_read(
        tmp_path,
        dnd=True,
        forward={"always": "0611223344", "busy": "0622", "noanswer": ""},
        clock_offset_s=-3600 * 5,
        outbound_proxy="91.121.129.159:5962",
        transport="tls",
    )
    assert values["phone.dnd"] is True
    assert values["phone.forward.always"] is True
    assert values["phone.forward.always_target"] == "0611223344"
    assert values["phone.forward.busy"] is True and values["phone.forward.noanswer"] is False
    assert abs(values["phone.clock_skew_s"] + 18000) < 5
    assert values["phone.outbound_proxy"] == "91.121.129.159:5962"
    assert values["sip.transport"] == "tls"


def test_personality_not_registered(tmp_path: Path) -> None:
    failed = {"registered": False, "status": 403, "reason": "Wrong login or password"}
    values = face_read(tmp_path, _registration=failed)
    assert values["sip.registered"] is False
    assert "sip.last_status" not in values  # the phone shows "Trying", no SIP code


def test_personality_wrong_login_then_lockout(tmp_path: Path) -> None:
    wrong = (("admin", "admin"), ("admin", "1234"), ("root", "root"))
    with pytest.raises(HttpError, match="refused the web login"):
        face_read(tmp_path, logins=wrong)  # 2 failures: the phone's limit is 3
    with pytest.raises(LockedOut):
        face_read(tmp_path, logins=wrong)  # a second run reaches it: the answer says locked
    with pytest.raises(LockedOut):
        face_read(tmp_path)  # locked for 5 minutes, even with the right login


def test_personality_pages_and_session(tmp_path: Path) -> None:
    phone = make_phone(tmp_path, **STATE)
    basic = httpx.BasicAuth("admin", SECRET)
    auth = next(basic.auth_flow(httpx.Request("GET", "http://x/"))).headers["Authorization"]

    def ask(method: str, path: str, body: bytes = b"", cookie: str = "") -> Response:
        headers = {"authorization": auth} | ({"cookie": cookie} if cookie else {})
        return face.handle(Request(method, path, {}, headers, body), phone)

    assert face.handle(Request("GET", "/", {}, {}), phone).status == 401
    assert ask("GET", "/nothing.htm").status == 404
    assert b'name="nonce"' in ask("GET", "/config.txt").body  # no session: the login form
    form = ask("GET", "/")
    nonce = form.headers["Set-Cookie"].split(";")[0].split("=")[1]
    digest = hashlib.md5(f"admin:{SECRET}:{nonce}".encode()).hexdigest()
    body = f"nonce={nonce}&URL=%2F&LOG_Language=0&goto=Logon&encoded=admin%3A{digest}".encode()
    assert b"FRAMESET" in ask("POST", "/", body, f"auth={nonce}").body
    assert ask("GET", "/config.txt", cookie=f"auth={nonce}").body.startswith(b"<<VOIP CONFIG")
    assert b"V65" in ask("GET", "/title.htm", cookie=f"auth={nonce}").body
    ask("POST", "/", b"DefaultLogout=Logout", f"auth={nonce}")
    assert b'name="nonce"' in ask("GET", "/information.htm", cookie=f"auth={nonce}").body


def _xml(items: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8" ?><FanvilConfiguration cmd="set">{items}</FanvilConfiguration>'.encode()  # noqa: E501


def test_personality_http_api_writes_dnd_and_forwarding(tmp_path: Path) -> None:
    phone = make_phone(tmp_path, **STATE)
    basic = httpx.BasicAuth("admin", SECRET)
    auth = next(basic.auth_flow(httpx.Request("GET", "http://x/"))).headers["Authorization"]
    body = _xml(
        "<Item>sip.line.1.EnableDND = 1</Item><Item>sip.line.1.AlwaysFWD = 1</Item>"
        "<Item>sip.line.1.AlwaysFWDNum = 0699887766</Item>"
    )
    refused = face.handle(Request("POST", "/xmlService", {}, {}, body), phone)
    assert refused.status == 401 and "Digest" in refused.headers["WWW-Authenticate"]
    ok = face.handle(Request("POST", "/xmlService", {}, {"authorization": auth}, body), phone)
    assert b"<RetCode>0</RetCode>" in ok.body
    saved = json.loads(phone.state_file.read_text())
    assert saved["dnd"] is True and saved["forward"]["always"] == "0699887766"
    values = read(ADAPTER, DEVICE, face_transport(face.handle, phone), logins=(("admin", SECRET),))
    assert values["phone.dnd"] is True and values["phone.forward.always_target"] == "0699887766"
    off = _xml("<Item>sip.line.1.EnableDND = 0</Item><Item>sip.line.1.AlwaysFWD = 0</Item>")
    face.handle(Request("POST", "/xmlService", {}, {"authorization": auth}, off), phone)
    saved = json.loads(phone.state_file.read_text())
    assert saved["dnd"] is False and saved["forward"]["always"] == ""


def test_personality_refuses_an_xml_bomb(tmp_path: Path) -> None:
    phone = make_phone(tmp_path, **STATE)
    basic = httpx.BasicAuth("admin", SECRET)
    auth = next(basic.auth_flow(httpx.Request("GET", "http://x/"))).headers["Authorization"]
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b'<FanvilConfiguration cmd="set"><Item>sip.line.1.EnableDND = &lol2;</Item>'
        b"</FanvilConfiguration>"
    )
    before = phone.state_file.read_text()
    answer = face.handle(Request("POST", "/xmlService", {}, {"authorization": auth}, bomb), phone)
    assert b"<RetCode>-1</RetCode>" in answer.body
    assert phone.state_file.read_text() == before


def test_state_file_is_not_written_by_reading(tmp_path: Path) -> None:
    phone = make_phone(tmp_path, **STATE)
    before = json.loads(phone.state_file.read_text())
    read(ADAPTER, DEVICE, face_transport(face.handle, phone), logins=(("admin", SECRET),))
    assert json.loads(phone.state_file.read_text()) == before


def test_personality_lock_expires(tmp_path: Path) -> None:
    phone = make_phone(tmp_path, **STATE)
    face._FAILS[str(phone.state_file)] = [time.time() - face.LOCK_S - 1] * 3
    values = read(ADAPTER, DEVICE, face_transport(face.handle, phone), logins=(("admin", SECRET),))
    assert values["sip.registered"] is True


def test_provisioning_credentials_are_never_reported() -> None:
    cfg = (
        (DATA / "config_v65.txt")
        .read_bytes()
        .replace(
            b"http://fanvil.prov.voip.ovh.net/", b"https://user:p4ss@fanvil.prov.voip.ovh.net/x"
        )
    )
    values, _ = run(Fixed({"GET /config.txt": (200, "text/plain", cfg)}).transport())
    assert values["phone.provisioning_url"] == "https://fanvil.prov.voip.ovh.net/x"
    assert all("p4ss" not in str(v) for v in values.values())
