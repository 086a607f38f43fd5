"""Yealink adapter: against documented answers (data/yealink) and against the lab's Yealink face."""

from __future__ import annotations

import asyncio
import base64
import email.utils
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
from agent.vendors import base, yealink
from lab.personalities import yealink as face
from tests.unit.vendors.helpers import face_transport, make_phone

DATA = Path(__file__).parent / "data" / "yealink"
DEVICE = Device("192.168.1.42", vendor="yealink", model="SIP-T46S", firmware="66.86.0.15")
DATE = "Wed, 01 May 2024 10:00:00 GMT"
NOW = email.utils.parsedate_to_datetime(DATE).timestamp() + 30  # the phone is 30 s late
COOKIE = {"Set-Cookie": "JSESSIONID=5f3a9c0d1e2b; Path=/"}
PASSWORD = "Yl-lab-7"


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def html(body: bytes, status: int = 200, **headers: str) -> tuple[int, str, bytes, dict]:
    return (status, "text/html", body, headers)


def route(r: httpx.Request) -> str:
    q = dict(parse_qsl(r.url.query.decode()))
    if r.url.path != "/servlet":
        return r.url.path
    return "phonecfg" if "phonecfg" in q else f"{q.get('p')}/{q.get('q')}"


DOCUMENTED = {
    "phonecfg": (200, "text/plain", sample("phonecfg_healthy.ini"), {}),
    "login/loginForm": html(sample("login_form.html"), **COOKIE),
    "login/login": html(sample("login_done.html")),
    "status/load": html(sample("status_registered.html")),
    "settings-autop/load": html(sample("settings_autop.html")),
    "account-register/load": html(sample("account_register.html")),
}


def documented(**over: Any) -> httpx.MockTransport:
    """Fixed answers by route, shaped as Yealink documents them (SOURCES.md)."""
    routes = {**DOCUMENTED, **{k.replace("__", "/"): v for k, v in over.items()}}

    def serve(r: httpx.Request) -> httpx.Response:
        status, ctype, body, headers = routes.get(route(r), html(b"not found", 404))
        hdrs = {"Content-Type": ctype, "Date": DATE, **headers}
        return httpx.Response(status, headers=hdrs, content=body)

    return httpx.MockTransport(serve)


def attempt(transport, logins=(("admin", "admin"),), now: float = NOW) -> tuple[Any, Session]:
    """The adapter's values (or the HttpError it raised) and the session it used."""
    session = Session(DEVICE.ip, [Credential(u, p) for u, p in logins], transport=transport)
    ctx = base.Context(DEVICE, Config(), session, now=now)
    try:
        return asyncio.run(yealink.ADAPTER.read(ctx)), session
    except HttpError as e:
        return e, session


def run(transport, logins=(("admin", "admin"),), now: float = NOW) -> tuple[dict, Session]:
    result, session = attempt(transport, logins, now)
    if isinstance(result, HttpError):
        raise result
    return result, session


# ------------------------------------------------------------------ documented answers


def test_healthy_registered_phone_every_key():
    values, session = run(documented())
    assert values == {
        "sip.account": "0033972000001@sip.ovh.net",
        "phone.clock_skew_s": -30.0,
        "phone.dnd": False,
        "phone.forward.always": False,
        "phone.forward.always_target": "",
        "phone.forward.busy": False,
        # phone.forward.noanswer: its section mirrors [Forward_always], so it stays unknown
        "sip.registered": True,
        "phone.ip": "192.168.1.42",
        "phone.provisioning_url": "http://yealink.prov.voip.ovh.net/",
        "phone.outbound_proxy": "91.121.129.20:5962",
        "sip.transport": "udp",
        "sip.register_expires_s": 1800,
    }
    assert set(values) <= set(base.PHONE_KEYS)
    assert session.log[0] == f"GET {yealink.ACTION_URI}"


def test_dnd_on_and_forward_always_with_target():
    values, _ = run(
        documented(phonecfg=(200, "text/plain", sample("phonecfg_dnd_forward.ini"), {}))
    )
    assert values["phone.dnd"] is True
    assert values["phone.forward.always"] is True
    assert values["phone.forward.always_target"] == "0033612345678"
    assert values["phone.forward.busy"] is True
    assert values["phone.forward.noanswer"] is False


def test_noanswer_section_mirroring_always_stays_unknown():
    mirror = (
        b"[Forward_always]\nState=On\nTarget=0033612345678\n"
        b"[Forward_noanswer]\nRingtimes=0\nState=On\nTarget=0033612345678\n"
    )
    values, _ = run(documented(phonecfg=(200, "text/plain", mirror, {})))
    assert values["phone.forward.always"] is True and "phone.forward.noanswer" not in values
    own = mirror.replace(b"State=On\nTarget=0033612345678\n", b"State=Off\nTarget=\n", 1)
    values, _ = run(documented(phonecfg=(200, "text/plain", own, {})))
    assert values["phone.forward.always"] is False and values["phone.forward.noanswer"] is True


def test_not_registered_says_so_and_no_sip_code_is_invented():
    values, _ = run(documented(status__load=html(sample("status_failed.html"))))
    assert values["sip.registered"] is False
    assert "sip.last_status" not in values and "sip.last_reason" not in values


def test_no_outbound_proxy_and_tls():
    page = (
        b'<select name="AccountOutboundSwitch"><option value="0" selected>Off</option></select>'
        b'<input name="AccountOutboundProxy" value="ignored"/><select name="Transport1">'
        b'<option value="0">UDP</option><option selected value="2">TLS</option></select>'
    )
    values, _ = run(documented(**{"account-register__load": html(page)}))
    assert values["phone.outbound_proxy"] == ""
    assert values["sip.transport"] == "tls"
    assert "sip.register_expires_s" not in values


def test_action_uri_refused_403_still_reads_the_web_ui():
    values, _ = run(documented(phonecfg=html(b"<html>403 Forbidden</html>", 403)))
    assert "phone.dnd" not in values and "phone.forward.always" not in values
    assert values["sip.registered"] is True


def test_older_web_ui_without_rsa_login_keeps_the_web_keys_unknown():
    values, _ = run(documented(login__loginForm=html(b"<html><form></form></html>")))
    assert values["phone.dnd"] is False
    assert "sip.registered" not in values and "phone.provisioning_url" not in values


def test_session_cookie_and_encrypted_login_are_sent():
    seen: list[httpx.Request] = []
    inner = documented()

    def spy(r: httpx.Request) -> httpx.Response:
        seen.append(r)
        return inner.handler(r)

    run(httpx.MockTransport(spy))
    post = next(r for r in seen if route(r) == "login/login")
    form = dict(parse_qsl(post.content.decode()))
    assert form["username"] == "admin" and "admin" not in form["pwd"]
    assert len(form["rsakey"]) == 256 and len(form["rsaiv"]) == 256  # 1024-bit RSA, hex
    assert post.headers["cookie"] == "JSESSIONID=5f3a9c0d1e2b"
    status = next(r for r in seen if route(r) == "status/load")
    assert status.headers["cookie"] == "JSESSIONID=5f3a9c0d1e2b"


# ------------------------------------------------------------------ refusals and lockouts


def test_lockout_on_the_action_uri_raises_lockedout():
    locked = (401, "text/html", b"Account locked: too many attempts", {"WWW-Authenticate": "Basic"})
    with pytest.raises(LockedOut):
        run(documented(phonecfg=locked))


@pytest.mark.parametrize(
    "answer",
    [html(b'<div id="_RES_INFO_">{"authstatus":"locked"}</div>'), html(b"", 423)],
)
def test_lockout_on_the_web_login_raises_lockedout(answer):
    with pytest.raises(LockedOut):
        run(documented(phonecfg=html(b"", 403), login__login=answer))


def test_web_login_refused_stays_within_the_budget():
    result, session = attempt(
        documented(phonecfg=html(b"", 403), login__login=html(sample("login_error.html"))),
        logins=(("admin", "a"), ("admin", "b"), ("admin", "c")),
    )
    assert isinstance(result, HttpError) and "nothing readable" in str(result)
    assert session.failed_logins == 2
    assert len(session.log) == 5  # 1 Action URI + 2 x (form + post): no third login


# ------------------------------------------------------------------ malformed answers


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body><h1>Yealink</h1></body></html>",
        b"",
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><l>&b;</l>',
        b"\xff\xfe\x00garbage",
    ],
)
def test_malformed_action_uri_answer_is_an_httperror(body):
    with pytest.raises(HttpError, match="expected the phonecfg INI answer"):
        run(documented(phonecfg=(200, "text/html", body, {}), login__loginForm=html(b"", 404)))


@pytest.mark.parametrize(
    "page",
    [
        b'var g_dataAccStatus = g_json.ParseJSON("{\\"Account1\\":\\"00339',  # truncated
        b'var g_dataAccStatus = g_json.ParseJSON("' + b"[" * 100_000 + b'")',  # deep nesting
        b'var g_dataAccStatus = g_json.ParseJSON("[1, 2]")',
        b'var g_dataAccStatus = g_json.ParseJSON("{\\"Account1\\":\\"x@y:abc\\"}")',
        b"<html><body>session expired</body></html>",
        b"",
    ],
)
def test_malformed_status_page_leaves_the_keys_out(page):
    values, _ = run(documented(status__load=html(page)))
    assert "sip.registered" not in values and "phone.ip" not in values
    assert values["phone.dnd"] is False  # the rest is still read


def test_hostile_pages_are_parsed_in_linear_time():
    hostile = b"<" * 200_000 + b'<input name="Expires1" id="tdWANIP" ' * 15_000
    start = time.monotonic()
    values, _ = run(
        documented(
            status__load=html(hostile),
            **{"account-register__load": html(hostile), "settings-autop__load": html(hostile)},
        )
    )
    assert time.monotonic() - start < 5
    assert "sip.register_expires_s" not in values and "phone.ip" not in values


@pytest.mark.parametrize("n", ["zz-not-hex", "0f", "1" * 2000])
def test_malformed_rsa_key_on_the_login_page_is_an_httperror(n):
    page = f'var g_rsa_n = "{n}";\nvar g_rsa_e = "10001";'.encode()
    with pytest.raises(HttpError, match="malformed RSA key"):
        run(documented(login__loginForm=html(page, **COOKIE)))


@pytest.mark.parametrize("date", ["", "yesterday", "Wed, 99 Foo 2024 99:99:99 GMT"])
def test_missing_or_garbled_date_leaves_the_clock_unknown(date):
    def serve(r: httpx.Request) -> httpx.Response:
        resp = documented().handler(r)
        resp.headers["Date"] = date
        return resp

    values, _ = run(httpx.MockTransport(serve))
    assert "phone.clock_skew_s" not in values and values["sip.registered"] is True


# ------------------------------------------------------------------ the lab's Yealink face

STATE = {
    "vendor": "yealink",
    "model": "SIP-T46S",
    "firmware": "66.86.0.15",
    "mac": "80:5e:c0:11:22:33",
    "ip": "10.66.0.21",
    "line": "0033972000001",
    "registrar": "sip.ovh.test",
    "admin": {"username": "admin", "password": PASSWORD},
    "dnd": False,
    "forward": {"always": "", "busy": "", "noanswer": ""},
    "clock_offset_s": 0,
    "provisioning_url": "http://yealink.prov.voip.ovh.test/",
    "outbound_proxy": "",
    "transport": "udp",
    "expires": 3600,
}


def lab(tmp_path: Path, **over: Any):
    return make_phone(tmp_path, **{**STATE, **over})


def lab_read(phone, logins=(("admin", PASSWORD),)) -> tuple[dict, Session]:
    return run(face_transport(face.handle, phone), logins, now=time.time())


def lab_get(phone, path: str, password: str = PASSWORD) -> int:
    transport = face_transport(face.handle, phone)
    session = Session(DEVICE.ip, [Credential("admin", password)], transport=transport)
    return asyncio.run(session.get(path)).status


def test_lab_round_trip_every_key(tmp_path):
    values, _ = lab_read(lab(tmp_path))
    skew = values.pop("phone.clock_skew_s")
    assert abs(skew) <= 2
    assert values == {
        "sip.account": "0033972000001@sip.ovh.test",
        "phone.dnd": False,
        "phone.forward.always": False,
        "phone.forward.always_target": "",
        "phone.forward.busy": False,
        "sip.registered": True,
        "phone.ip": "10.66.0.21",
        "phone.provisioning_url": "http://yealink.prov.voip.ovh.test/",
        "phone.outbound_proxy": "",
        "sip.transport": "udp",
        "sip.register_expires_s": 3600,
    }


def test_lab_state_is_what_the_adapter_reads(tmp_path):
    phone = lab(
        tmp_path,
        dnd=True,
        forward={"always": "0033612345678", "busy": "", "noanswer": "0033600000000"},
        clock_offset_s=-3600,
        outbound_proxy="sip.ovh.test:5962",
        transport="tcp",
        expires=600,
        _registration={"registered": False, "status": 403, "reason": "Wrong login or password"},
    )
    values, _ = lab_read(phone)
    assert abs(values["phone.clock_skew_s"] + 3600) <= 2
    assert values["phone.dnd"] is True
    assert values["phone.forward.always"] is True
    assert values["phone.forward.always_target"] == "0033612345678"
    assert values["phone.forward.noanswer"] is True and values["phone.forward.busy"] is False
    assert values["sip.registered"] is False and "sip.last_status" not in values
    assert values["phone.outbound_proxy"] == "sip.ovh.test:5962"
    assert values["sip.transport"] == "tcp" and values["sip.register_expires_s"] == 600


def test_lab_writes_through_the_documented_action_uri(tmp_path):
    phone = lab(tmp_path)
    assert lab_get(phone, "/servlet?key=DNDOn") == 200
    target = "/servlet?phonecfg=set&Forward_always_enable=1&Forward_always_target=0033612345678"
    assert lab_get(phone, target) == 200
    saved = json.loads(phone.state_file.read_text())
    assert saved["dnd"] is True and saved["forward"]["always"] == "0033612345678"
    values, _ = lab_read(phone)
    assert values["phone.dnd"] is True and values["phone.forward.always_target"] == "0033612345678"
    assert lab_get(phone, "/servlet?key=DNDOff") == 200
    assert lab_get(phone, "/servlet?phonecfg=set&Forward_always_enable=0") == 200
    values, _ = lab_read(phone)
    assert values["phone.dnd"] is False and values["phone.forward.always"] is False


def test_lab_wrong_password_is_refused_without_a_retry_storm(tmp_path):
    phone = lab(tmp_path)
    assert lab_get(phone, "/servlet?key=DNDOn", password="wrong") == 401
    transport = face_transport(face.handle, phone)
    result, session = attempt(transport, (("admin", "a"), ("admin", "b"), ("admin", "c")))
    assert isinstance(result, HttpError) and "HTTP 401" in str(result)
    assert session.failed_logins == 2 and len(session.log) == 3  # no web login left to try
    assert json.loads(phone.state_file.read_text())["dnd"] is False


def test_lab_wrong_web_password_stays_within_the_budget(tmp_path):
    phone = lab(tmp_path, action_uri_limit_ip="192.168.50.*")
    transport = face_transport(face.handle, phone)
    result, session = attempt(transport, (("admin", "a"), ("admin", "b"), ("admin", "c")))
    assert isinstance(result, HttpError) and "HTTP 403" in str(result)
    assert session.failed_logins == 2
    assert len(session.log) == 5  # Action URI, then two (form, login) pairs


def test_lab_action_uri_allow_list(tmp_path):
    phone = lab(tmp_path, action_uri_limit_ip="192.168.50.*, 10.66.0.100")
    assert lab_get(phone, yealink.ACTION_URI) == 200
    phone = lab(tmp_path, action_uri_limit_ip="192.168.50.*", dnd=True)
    assert lab_get(phone, yealink.ACTION_URI) == 403
    values, _ = lab_read(phone)
    assert "phone.dnd" not in values and values["sip.registered"] is True


def test_lab_pages_need_the_session_and_unknown_paths_are_404(tmp_path):
    phone = lab(tmp_path)
    transport = face_transport(face.handle, phone)
    with httpx.Client(transport=transport, base_url="http://10.66.0.21") as client:
        assert client.get(yealink.STATUS).status_code == 302
        assert client.get("/cgi-bin/nothing").status_code == 404
        r = client.post(yealink.LOGIN, data={"username": "admin", "pwd": "x", "rsakey": "zz"})
        assert "error" in r.text


# ------------------------------------------------------------------ the login's cryptography


def test_aes_zero_padding_known_answer_fips197():
    # One block, no padding needed: FIPS-197 appendix C.1 (CBC with a zero IV = ECB).
    plain = bytes.fromhex("00112233445566778899aabbccddeeff")
    out = yealink.aes_cbc_encrypt(bytes(range(16)), bytes(16), plain)
    assert out.hex() == "69c4e0d86a7b0430d8cdb78070b4c55a"
    assert len(yealink.aes_cbc_encrypt(bytes(16), bytes(16), b"abc")) == 16  # zero padded


def test_the_face_decrypts_what_the_adapter_encrypts():
    n, e = face._key()
    key, iv = bytes(range(16)), bytes(range(16, 32))
    plain = b"0.123;abc;p@ss;word"
    form = {
        "pwd": base64.b64encode(yealink.aes_cbc_encrypt(key, iv, plain)).decode(),
        "rsakey": yealink.rsa_encrypt(n, e, key.hex().encode()),
        "rsaiv": yealink.rsa_encrypt(n, e, iv.hex().encode()),
    }
    assert face._decrypt(form) == plain.decode()
    assert face._decrypt({**form, "pwd": "!!"}) == ""
