"""Snom adapter: against documented answers (data/snom) and against the lab's Snom face."""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.config import Config, Credential
from agent.model import Device
from agent.net.http import HttpError, LockedOut, Session
from agent.vendors import base, snom
from lab.personalities import snom as face
from tests.unit.vendors.helpers import face_transport, make_phone

DATA = Path(__file__).parent / "data" / "snom"
DEVICE = Device("192.168.1.43", vendor="snom", model="D785", firmware="10.1.54.13")
DATE = "Wed, 01 May 2024 10:00:00 GMT"
NOW = email.utils.parsedate_to_datetime(DATE).timestamp() - 90  # the phone is 90 s fast
PASSWORD = "Sn-lab-7"
XML, HTML = "application/xml", "text/html"


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


Route = tuple[int, str, bytes, dict[str, str]]
DOCUMENTED: dict[str, Route] = {
    "/settings.xml": (200, XML, sample("settings_healthy.xml"), {}),
    "/info.htm": (200, HTML, sample("info_registered.htm"), {}),
}


def documented(**over: Route) -> httpx.MockTransport:
    """Fixed answers by path, shaped as Snom documents them (SOURCES.md)."""
    routes = {**DOCUMENTED, **{f"/{k.replace('_', '.', 1)}": v for k, v in over.items()}}

    def serve(r: httpx.Request) -> httpx.Response:
        status, ctype, body, headers = routes.get(r.url.path, (404, HTML, b"not found", {}))
        hdrs = {"Content-Type": ctype, "Date": DATE, **headers}
        return httpx.Response(status, headers=hdrs, content=body)

    return httpx.MockTransport(serve)


def attempt(transport, logins=(("admin", "0000"),), now: float = NOW) -> tuple[Any, Session]:
    """The adapter's values (or the HttpError it raised) and the session it used."""
    session = Session(DEVICE.ip, [Credential(u, p) for u, p in logins], transport=transport)
    ctx = base.Context(DEVICE, Config(), session, now=now)
    try:
        return asyncio.run(snom.ADAPTER.read(ctx)), session
    except HttpError as e:
        return e, session


def run(transport, logins=(("admin", "0000"),), now: float = NOW) -> tuple[dict, Session]:
    result, session = attempt(transport, logins, now)
    if isinstance(result, HttpError):
        raise result
    return result, session


# ------------------------------------------------------------------ documented answers


def test_healthy_registered_phone_every_key():
    values, session = run(documented())
    assert values == {
        "sip.account": "0033972000001@sip.ovh.net",
        "sip.registered": True,
        "sip.register_expires_s": 1800,
        "sip.transport": "udp",
        "phone.outbound_proxy": "91.121.129.20:5962",
        "phone.provisioning_url": "https://snom.prov.voip.ovh.net/{mac}.xml",
        "phone.dnd": False,
        "phone.forward.always": False,
        "phone.forward.always_target": "",
        "phone.forward.busy": False,
        "phone.forward.noanswer": False,
        "phone.clock_skew_s": 90.0,
        "phone.ip": "192.168.1.43",
    }
    assert set(values) <= set(base.PHONE_KEYS)
    assert session.log == ["GET /settings.xml", "GET /info.htm"]


def test_dnd_on_and_forward_always_with_target():
    values, _ = run(documented(settings_xml=(200, XML, sample("settings_dnd_forward.xml"), {})))
    assert values["phone.dnd"] is True
    assert values["phone.forward.always"] is True
    assert values["phone.forward.always_target"] == "0033612345678"
    assert values["phone.forward.busy"] is True and values["phone.forward.noanswer"] is False


def test_line_two_never_speaks_for_line_one():
    values, _ = run(documented())  # identity 2 has DND and forwarding on, and is not registered
    assert values["phone.dnd"] is False and values["phone.forward.always"] is False
    assert values["sip.registered"] is True


def test_older_firmware_global_dnd_and_redirect_event():
    legacy = (200, XML, sample("settings_v8_legacy.xml"), {})
    values, _ = run(documented(settings_xml=legacy))
    assert values["phone.dnd"] is True
    assert values["phone.forward.always"] is True
    assert values["phone.forward.always_target"] == "0033612345678"
    assert values["phone.forward.busy"] is False and values["phone.forward.noanswer"] is False
    assert values["sip.account"] == "0033972000001@sip.ovh.net"
    assert values["phone.outbound_proxy"] == "" and "sip.transport" not in values
    assert values["sip.register_expires_s"] == 3600
    assert values["phone.provisioning_url"] == "tftp://192.168.1.10"


@pytest.mark.parametrize(
    ("event", "expected"),
    [("busy", (False, True, False)), ("time", (False, False, True)), ("none", (False,) * 3)],
)
def test_redirect_event_values(event, expected):
    body = sample("settings_v8_legacy.xml").replace(b">all<", f">{event}<".encode())
    values, _ = run(documented(settings_xml=(200, XML, body, {})))
    kinds = ("always", "busy", "noanswer")
    assert tuple(values[f"phone.forward.{k}"] for k in kinds) == expected


def test_not_registered_with_the_sip_answer_the_page_shows():
    values, _ = run(documented(info_htm=(200, HTML, sample("info_failed.htm"), {})))
    assert values["sip.registered"] is False
    assert values["sip.last_status"] == 403
    assert values["sip.last_reason"] == "Wrong login or password"


def test_not_registered_without_a_code_invents_none():
    values, _ = run(documented(info_htm=(200, HTML, sample("info_not_registered.htm"), {})))
    assert values["sip.registered"] is False
    assert "sip.last_status" not in values and "sip.last_reason" not in values


@pytest.mark.parametrize(
    ("host", "outbound", "transport", "proxy"),
    [
        ("sip.ovh.net;transport=tcp", "", "tcp", ""),
        ("sip.ovh.net", "sips:proxy.ovh.net:5061", "tls", "proxy.ovh.net:5061"),
        ("sip.ovh.net", "<sip:proxy.ovh.net;lr;transport=TLS>", "tls", "proxy.ovh.net"),
        ("sip.ovh.net", "proxy.ovh.net", None, "proxy.ovh.net"),
    ],
)
def test_transport_and_outbound_proxy_forms(host, outbound, transport, proxy):
    body = (
        f'<settings><phone-settings><user_name idx="1">0033972000001</user_name>'
        f'<user_host idx="1">{host}</user_host>'
        f'<user_outbound idx="1">{outbound.replace("<", "&lt;").replace(">", "&gt;")}'
        f"</user_outbound></phone-settings></settings>"
    ).encode()
    values, _ = run(documented(settings_xml=(200, XML, body, {})))
    assert values.get("sip.transport") == transport
    assert values["phone.outbound_proxy"] == proxy
    assert values["sip.account"] == "0033972000001@sip.ovh.net"


# ------------------------------------------------------------------ refusals and lockouts


def refusing(status: int = 401, body: bytes = b"401 Unauthorized") -> httpx.MockTransport:
    """A challenge to a request without login, ``status`` and ``body`` to one with a login."""

    def serve(r: httpx.Request) -> httpx.Response:
        hdrs = {"WWW-Authenticate": 'Basic realm="snom"', "Date": DATE}
        if "authorization" not in r.headers:
            return httpx.Response(401, headers=hdrs, content=b"401 Unauthorized")
        return httpx.Response(status, headers=hdrs, content=body)

    return httpx.MockTransport(serve)


def test_wrong_login_is_an_httperror_within_the_budget():
    result, session = attempt(refusing(), logins=(("admin", "a"), ("admin", "b"), ("x", "c")))
    assert isinstance(result, HttpError) and not isinstance(result, LockedOut)
    assert "HTTP 401" in str(result) and "logins refused" in str(result)
    assert session.failed_logins == 2
    assert session.log == ["GET /settings.xml"] * 3  # no third login, no second page


@pytest.mark.parametrize(
    "transport", [refusing(401, b"Account locked: too many attempts"), refusing(423, b"")]
)
def test_lockout_raises_lockedout(transport):
    with pytest.raises(LockedOut):
        run(transport)


def test_locked_answer_without_a_login_raises_lockedout():
    with pytest.raises(LockedOut):
        run(documented(settings_xml=(429, HTML, b"Too many requests", {})))


# ------------------------------------------------------------------ malformed answers

BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">'
    b"<!ENTITY c \"&b;&b;&b;&b;\">]><phone-settings><user_name idx='1'>&c;</user_name>"
    b"</phone-settings>"
)


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body><h1>snom D785</h1><p>Login</p></body></html>",  # HTML, not XML
        b"<html><body><p>well-formed but not settings</p></body></html>",
        b"",
        b'<?xml version="1.0"?><settings><phone-settings><user_name idx="1">00339',  # truncated
        BOMB,
        b"\xff\xfe\x00garbage",
    ],
)
def test_malformed_settings_leave_their_keys_out(body):
    values, _ = run(documented(settings_xml=(200, HTML, body, {})))
    assert values["sip.registered"] is True and values["phone.ip"] == "192.168.1.43"
    assert "sip.account" not in values and "phone.dnd" not in values


def test_nothing_readable_is_an_httperror_with_the_reasons():
    result, _ = attempt(
        documented(settings_xml=(200, XML, BOMB, {}), info_htm=(404, HTML, b"not found", {}))
    )
    assert isinstance(result, HttpError)
    assert "nothing readable" in str(result) and "malformed XML" in str(result)
    assert "/info.htm: HTTP 404" in str(result)


@pytest.mark.parametrize(
    "page",
    [
        b"<html><body><table><tr><td>Identity 1:</td><td>sip:0033",  # truncated
        b"<html><body>session expired</body></html>",
        b"",
        b"<tr><td>IP Address:</td><td>999.1.2.3</td></tr><tr><td>Identity 1:</td><td>???</td>",
    ],
)
def test_malformed_status_page_leaves_the_keys_out(page):
    values, _ = run(documented(info_htm=(200, HTML, page, {})))
    assert "sip.registered" not in values and "phone.ip" not in values
    assert values["phone.dnd"] is False  # the settings are still read


def test_hostile_pages_are_parsed_in_linear_time():
    hostile = b"<" * 200_000 + b"<tr <td>Identity 1:<" * 20_000 + b"<tr" * 50_000
    start = time.monotonic()
    values, _ = run(documented(info_htm=(200, HTML, hostile, {})))
    assert time.monotonic() - start < 5
    assert "sip.registered" not in values


@pytest.mark.parametrize("date", ["", "yesterday", "Wed, 99 Foo 2024 99:99:99 GMT"])
def test_missing_or_garbled_date_leaves_the_clock_unknown(date):
    def serve(r: httpx.Request) -> httpx.Response:
        resp = documented().handler(r)
        resp.headers["Date"] = date
        return resp

    values, _ = run(httpx.MockTransport(serve))
    assert "phone.clock_skew_s" not in values and values["sip.registered"] is True


# ------------------------------------------------------------------ the lab's Snom face

STATE = {
    "vendor": "snom",
    "model": "D785",
    "firmware": "10.1.54.13",
    "mac": "00:04:13:a1:b2:c3",
    "ip": "10.66.0.23",
    "line": "0033972000001",
    "registrar": "sip.ovh.test",
    "admin": {"username": "admin", "password": PASSWORD},
    "dnd": False,
    "forward": {"always": "", "busy": "", "noanswer": ""},
    "clock_offset_s": 0,
    "provisioning_url": "http://snom.prov.voip.ovh.test/{mac}.xml",
    "outbound_proxy": "",
    "transport": "udp",
    "expires": 3600,
}


def lab(tmp_path: Path, **over: Any):
    return make_phone(tmp_path, **{**STATE, **over})


def lab_read(phone, logins=(("admin", PASSWORD),)) -> tuple[dict, Session]:
    return run(face_transport(face.handle, phone), logins, now=time.time())


def lab_get(phone, path: str, password: str = PASSWORD) -> httpx.Response:
    transport = face_transport(face.handle, phone)
    auth = httpx.BasicAuth("admin", password)
    with httpx.Client(transport=transport, base_url="http://10.66.0.23", auth=auth) as client:
        return client.get(path)


def test_lab_round_trip_every_key(tmp_path):
    values, session = lab_read(lab(tmp_path))
    assert abs(values.pop("phone.clock_skew_s")) <= 2
    assert values == {
        "sip.account": "0033972000001@sip.ovh.test",
        "sip.registered": True,
        "sip.register_expires_s": 3600,
        "sip.transport": "udp",
        "phone.outbound_proxy": "",
        "phone.provisioning_url": "http://snom.prov.voip.ovh.test/{mac}.xml",
        "phone.dnd": False,
        "phone.forward.always": False,
        "phone.forward.always_target": "",
        "phone.forward.busy": False,
        "phone.forward.noanswer": False,
        "phone.ip": "10.66.0.23",
    }
    assert session.failed_logins == 0


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
    assert values["sip.registered"] is False
    assert values["sip.last_status"] == 403
    assert values["sip.last_reason"] == "Wrong login or password"
    assert values["phone.outbound_proxy"] == "sip.ovh.test:5962"
    assert values["sip.transport"] == "tcp" and values["sip.register_expires_s"] == 600


def test_lab_not_registered_without_an_answer(tmp_path):
    phone = lab(tmp_path, _registration={"registered": False, "status": None, "reason": None})
    values, _ = lab_read(phone)
    assert values["sip.registered"] is False and "sip.last_status" not in values


def test_lab_writes_through_the_documented_settings_url(tmp_path):
    phone = lab(tmp_path)
    assert lab_get(phone, "/dummy.htm?settings=save&dnd_mode=on&store_settings=save").is_success
    fwd = "/dummy.htm?settings=save&fwd_all_enabled1=on&fwd_all_target1=0033612345678"
    assert lab_get(phone, fwd).is_success
    saved = json.loads(phone.state_file.read_text())
    assert saved["dnd"] is True and saved["forward"]["always"] == "0033612345678"
    values, _ = lab_read(phone)
    assert values["phone.dnd"] is True and values["phone.forward.always_target"] == "0033612345678"
    assert lab_get(phone, "/dummy.htm?settings=save&dnd_mode1=off").is_success
    assert lab_get(phone, "/dummy.htm?settings=save&fwd_all_enabled1=off").is_success
    values, _ = lab_read(phone)
    assert values["phone.dnd"] is False and values["phone.forward.always"] is False


def test_lab_wrong_password_is_refused_without_a_retry_storm(tmp_path):
    phone = lab(tmp_path)
    assert lab_get(phone, "/dummy.htm?settings=save&dnd_mode=on", "wrong").status_code == 401
    transport = face_transport(face.handle, phone)
    result, session = attempt(transport, (("admin", "a"), ("admin", "b"), ("admin", "c")))
    assert isinstance(result, HttpError) and "HTTP 401" in str(result)
    assert session.failed_logins == 2 and len(session.log) == 3
    assert json.loads(phone.state_file.read_text())["dnd"] is False


def test_lab_digest_scheme_and_factory_phone_without_login(tmp_path):
    values, session = lab_read(lab(tmp_path, http_scheme="on"))
    assert values["sip.registered"] is True and values["phone.dnd"] is False
    assert session.working is not None and session.failed_logins == 0
    values, session = lab_read(lab(tmp_path, admin={"username": "", "password": ""}), logins=())
    assert values["sip.registered"] is True and session.working is None


def test_lab_identity_page_and_unknown_paths(tmp_path):
    phone = lab(tmp_path)
    root = lab_get(phone, "/")
    m = re.search(r"<TITLE>snom (\w+)</TITLE>", root.text, re.IGNORECASE)
    assert m and m.group(1) == "D785"  # what IssabelFoundation/endpointconfig2 reads
    assert lab_get(phone, "/cgi-bin/nothing").status_code == 404
    assert lab_get(phone, "/settings.xml", "wrong").status_code == 401
