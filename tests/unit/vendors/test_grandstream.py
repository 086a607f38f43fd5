"""Grandstream adapter: against documented answers (data/grandstream), the LibreNMS HT802 SNMP
recording (no SNMP agent is started: a stand-in client answers from it), and the lab's face."""

from __future__ import annotations

import asyncio
import email.utils
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
from agent.vendors import base, grandstream
from lab.personalities import grandstream as face
from tests.unit.vendors.helpers import face_transport, make_phone

DATA = Path(__file__).parent / "data" / "grandstream"
IP = "192.168.1.43"
DATE = "Wed, 01 May 2024 10:00:00 GMT"
NOW = email.utils.parsedate_to_datetime(DATE).timestamp() + 30  # the phone is 30 s late
PASSWORD = "Gs-lab-9"
REG, DND, FWD, BUSY, DELAYED = (grandstream.OIDS[k] for k in grandstream.OIDS)


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def snmprec(name: str = "ht802.snmprec") -> dict[str, str]:
    """{oid: text} from a snmpsim recording, as SnmpClient would answer."""
    out = {}
    for line in sample(name).decode().splitlines():
        oid, kind, value = line.split("|", 2)
        out[oid] = bytes.fromhex(value).decode() if kind == "4x" else value
    return out


class FakeSnmp:
    """Answers GETs from a recording (None: no answer); counts calls and closes."""

    def __init__(self, answers: dict[str, str] | None = None, error: bool = False) -> None:
        self.answers, self.error, self.asked, self.closed = answers, error, [], False

    def __call__(self, timeout: float) -> FakeSnmp:
        return self

    async def get(self, ip: str, community: str, oids: list[str]) -> dict[str, str] | None:
        self.asked.append((ip, community, tuple(oids)))
        if self.error:
            raise OSError("network unreachable")
        if self.answers is None:
            return None
        return {o: self.answers[o] for o in oids if o in self.answers}

    def close(self) -> None:
        self.closed = True


def js(name: str, status: int = 200) -> tuple[int, str, bytes]:
    return (status, "application/json", sample(name))


def html(body: bytes, status: int = 200) -> tuple[int, str, bytes]:
    return (status, "text/html", body)


DOCUMENTED = {
    "/cgi-bin/access": html(b"<html><body>404 Not Found</body></html>", 404),
    "/cgi-bin/dologin": js("login_success.json"),
    "/cgi-bin/api.values.get": js("values_registered.json"),
}


def documented(seen: list[httpx.Request] | None = None, **over: Any) -> httpx.MockTransport:
    """Fixed answers by path, shaped as Grandstream's clients show them (SOURCES.md)."""
    names = {
        "access": grandstream.ACCESS,
        "dologin": grandstream.LOGIN,
        "values": grandstream.VALUES,
    }
    routes = {**DOCUMENTED, **{names[k]: v for k, v in over.items()}}

    def serve(r: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(r)
        status, ctype, body = routes.get(r.url.path, html(b"not found", 404))
        return httpx.Response(status, headers={"Content-Type": ctype, "Date": DATE}, content=body)

    return httpx.MockTransport(serve)


def attempt(
    transport,
    snmp: FakeSnmp | None = None,
    logins=(("admin", "admin"),),
    now: float = NOW,
    found_by=("sip", "snmp"),
) -> tuple[Any, Session]:
    """The adapter's values (or the HttpError it raised) and the session it used."""
    device = Device(IP, vendor="grandstream", model="HT802", found_by=list(found_by))
    session = Session(IP, [Credential(u, p) for u, p in logins], transport=transport)
    adapter = grandstream.Grandstream(snmp=snmp or FakeSnmp())
    ctx = base.Context(device, Config(), session, now=now)
    try:
        return asyncio.run(adapter.read(ctx)), session
    except HttpError as e:
        return e, session


def run(transport, snmp: FakeSnmp | None = None, **kw: Any) -> tuple[dict, Session]:
    result, session = attempt(transport, snmp, **kw)
    if isinstance(result, HttpError):
        raise result
    return result, session


# ------------------------------------------------------------------ documented answers


def test_healthy_registered_phone_every_key():
    snmp = FakeSnmp(snmprec())
    values, session = run(documented(), snmp)
    assert values == {
        "phone.clock_skew_s": -30.0,
        "sip.registered": True,
        "phone.ip": "192.168.1.43",
        "sip.transport": "udp",
        "sip.register_expires_s": 1800,  # P32 = 30 minutes
        "phone.outbound_proxy": "91.121.129.20:5962",
        "phone.provisioning_url": "https://grandstream.prov.voip.ovh.net/ht802",
        "phone.dnd": False,  # dnd1 = 0 in the LibreNMS HT802 recording
        # forwarding: the recording has no forward1/busyForward1/delayedForward1: unknown
    }
    assert set(values) <= set(base.PHONE_KEYS)
    assert session.log[:3] == [
        "POST /cgi-bin/access",
        "POST /cgi-bin/dologin",
        "GET /cgi-bin/api.values.get",
    ]
    assert snmp.closed and snmp.asked[0][1] == "public"


def test_login_form_session_id_and_requested_p_values_are_sent():
    seen: list[httpx.Request] = []
    run(documented(seen))
    login = next(r for r in seen if r.url.path == "/cgi-bin/dologin")
    assert dict(parse_qsl(login.content.decode())) == {"username": "admin", "password": "admin"}
    assert login.headers["referer"] == f"http://{IP}:80/"
    query = dict(parse_qsl(next(r for r in seen if "values" in r.url.path).url.query.decode()))
    assert query["sid"] == "5c1a0e7d3b9f42a8c6d1e0f7a2b4c9d8"
    assert query["request"].split(":") == list(grandstream.KEYS)


def test_newer_firmware_challenge_login_sends_the_hashed_password():
    seen: list[httpx.Request] = []
    run(documented(seen, access=js("access_token.json")))
    login = next(r for r in seen if r.url.path == "/cgi-bin/dologin")
    token = json.loads(sample("access_token.json"))["body"]
    form = dict(parse_qsl(login.content.decode()))
    assert form["password"] == hashlib.sha256(("admin" + token).encode()).hexdigest()
    access = next(r for r in seen if r.url.path == "/cgi-bin/access")
    assert (
        dict(parse_qsl(access.content.decode()))["access"] == hashlib.sha256(b"admin").hexdigest()
    )


def test_dnd_on_and_forward_always_with_its_target_from_the_ht8xx_mib():
    answers = {**snmprec(), DND: "1", FWD: "0033612345678", BUSY: "", DELAYED: "0033600000000"}
    values, _ = run(documented(), FakeSnmp(answers))
    assert values["phone.dnd"] is True
    assert values["phone.forward.always"] is True
    assert values["phone.forward.always_target"] == "0033612345678"
    assert values["phone.forward.busy"] is False
    assert values["phone.forward.noanswer"] is True
    assert values["sip.registered"] is True  # the web API's answer is preferred


def test_not_registered_says_so_and_no_sip_code_is_invented():
    values, _ = run(documented(values=js("values_not_registered.json")))
    assert values["sip.registered"] is False
    assert "sip.last_status" not in values and "sip.last_reason" not in values
    assert values["phone.outbound_proxy"] == "" and values["phone.provisioning_url"] == ""
    assert values["sip.transport"] == "tcp" and values["sip.register_expires_s"] == 3600


@pytest.mark.parametrize(
    ("p212", "p237", "url"),
    [
        ("HTTPS", "prov.example.net/gs", "https://prov.example.net/gs"),  # metaconfig names
        ("0", "10.0.0.5", "tftp://10.0.0.5"),
        ("9", "prov.example.net", "prov.example.net"),  # unknown protocol: the path as is
        ("1", "http://prov.example.net/x", "http://prov.example.net/x"),
    ],
)
def test_config_server_path_and_protocol(p212, p237, url):
    body = {"P130": "2", "P32": "5", "P237": p237, "P212": p212}
    assert grandstream.parse_values(body)["phone.provisioning_url"] == url
    assert grandstream.parse_values(body)["sip.transport"] == "tls"


def test_keys_echoed_empty_are_unknown_not_false():
    body = {k: "" for k in grandstream.KEYS}  # what a firmware that lacks them answers
    assert grandstream.parse_values(body) == {}


# ------------------------------------------------------------------ SNMP fallback (recording)


def test_http_refused_falls_back_to_snmp_registration():
    refused = html(b"<html>403 Forbidden</html>", 403)
    values, _ = run(documented(dologin=refused, access=refused), FakeSnmp(snmprec()))
    assert values == {"phone.clock_skew_s": -30.0, "sip.registered": True, "phone.dnd": False}


def test_snmp_port_1_not_registered_as_recorded_on_port_2():
    rec = snmprec()
    answers = {**rec, REG: rec["1.3.6.1.4.1.42397.1.2.2.2.2.0"]}  # "Not Registered" (hex)
    values, _ = run(documented(dologin=html(b"", 404)), FakeSnmp(answers))
    assert values["sip.registered"] is False and "sip.last_status" not in values


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({REG: "Registered", DND: "0"}, {"sip.registered": True, "phone.dnd": False}),
        ({REG: " Not Registered ", DND: "1"}, {"sip.registered": False, "phone.dnd": True}),
        ({REG: "Registering", DND: "2"}, {}),
        ({REG: "", DND: ""}, {}),
        ({"." + FWD: ""}, {"phone.forward.always": False, "phone.forward.always_target": ""}),
        ({BUSY: "0033612345678"}, {"phone.forward.busy": True}),
        ({}, {}),
    ],
)
def test_snmp_value_parsing(answers, expected):
    assert grandstream.parse_snmp(answers) == expected


def test_no_snmp_answer_and_no_web_api_is_an_httperror():
    for snmp in (FakeSnmp(None), FakeSnmp(error=True)):
        result, _ = attempt(documented(dologin=html(b"", 404)), snmp)
        assert isinstance(result, HttpError) and "nothing readable" in str(result)
        assert snmp.closed


def test_snmp_is_not_asked_of_a_phone_that_did_not_answer_snmp():
    snmp = FakeSnmp(snmprec())
    values, _ = run(documented(), snmp, found_by=("sip", "http"))
    assert snmp.asked == [] and "phone.dnd" not in values
    assert values["sip.registered"] is True


# ------------------------------------------------------------------ refusals and lockouts


def test_wrong_password_stays_within_the_budget():
    snmp = FakeSnmp(None)
    result, session = attempt(
        documented(dologin=js("login_wrong.json")),
        snmp,
        logins=(("admin", "a"), ("admin", "b"), ("admin", "c")),
    )
    assert isinstance(result, HttpError) and "nothing readable" in str(result)
    assert session.failed_logins == 2
    assert session.log.count("POST /cgi-bin/dologin") == 2  # no third password tried


def test_wrong_password_still_reads_snmp():
    values, session = run(documented(dologin=js("login_wrong.json")), FakeSnmp(snmprec()))
    assert values["sip.registered"] is True and session.failed_logins == 1


@pytest.mark.parametrize(
    "answer",
    [js("login_locked.json"), html(b"", 423), (401, "text/html", b"Account locked")],
)
def test_lockout_raises_lockedout(answer):
    with pytest.raises(LockedOut):
        run(documented(dologin=answer))


# ------------------------------------------------------------------ malformed answers


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body><h1>Grandstream</h1></body></html>",
        b"",
        b'{"response": "success", "body": {"sid": "ab',  # truncated
        b"[" * 100_000,  # deep nesting
        b'["success"]',
        b"\xff\xfe\x00garbage",
    ],
)
def test_malformed_login_answer_is_an_httperror(body):
    result, _ = attempt(documented(dologin=(200, "text/html", body)), FakeSnmp(None))
    assert isinstance(result, HttpError) and not isinstance(result, LockedOut)


@pytest.mark.parametrize(
    "answer",
    [
        html(b"<html><body>Session expired</body></html>"),
        html(b""),
        (200, "application/json", b'{"response": "success", "body": {"P130": "0", "P32'),
        (200, "application/json", b'{"response": "success", "body": ' + b"[" * 100_000),
        (200, "application/json", b'{"response": "success", "body": ["P130", "0"]}'),
        js("values_session_expired.json"),
        html(b"", 500),
    ],
)
def test_malformed_values_answer_leaves_the_keys_out(answer):
    result, _ = attempt(documented(values=answer), FakeSnmp(snmprec()))
    if isinstance(result, HttpError):  # the web API's fault is said, SNMP still read
        pytest.fail(f"SNMP values were lost: {result}")
    assert "sip.transport" not in result and "phone.outbound_proxy" not in result
    assert result["sip.registered"] is True  # from SNMP


def test_odd_value_types_are_left_out():
    body = {"P130": ["0"], "P32": {"x": 1}, "P48": None, "PAccountRegistered1": True}
    assert grandstream.parse_values(body) == {}
    assert grandstream.parse_values({"P130": 0, "P32": 60})["sip.register_expires_s"] == 3600


@pytest.mark.parametrize("date", ["", "yesterday", "Wed, 99 Foo 2024 99:99:99 GMT"])
def test_missing_or_garbled_date_leaves_the_clock_unknown(date):
    def serve(r: httpx.Request) -> httpx.Response:
        resp = documented().handler(r)
        resp.headers["Date"] = date
        return resp

    values, _ = run(httpx.MockTransport(serve))
    assert "phone.clock_skew_s" not in values and values["sip.registered"] is True


# ------------------------------------------------------------------ the lab's HT802 face

STATE = {
    "vendor": "grandstream",
    "model": "HT802",
    "firmware": "1.0.43.11",
    "mac": "c0:74:ad:11:22:33",
    "ip": "10.66.0.23",
    "line": "0033972000003",
    "registrar": "sip.ovh.test",
    "admin": {"username": "admin", "password": PASSWORD},
    "dnd": False,
    "forward": {"always": "", "busy": "", "noanswer": ""},
    "clock_offset_s": 0,
    "provisioning_url": "http://grandstream.prov.voip.ovh.test/ht802/",
    "outbound_proxy": "",
    "transport": "udp",
    "expires": 3600,
}


def lab(tmp_path: Path, **over: Any):
    return make_phone(tmp_path, **{**STATE, **over})


def lab_read(phone, logins=(("admin", PASSWORD),)) -> tuple[Any, Session]:
    return attempt(face_transport(face.handle, phone), FakeSnmp(None), logins, now=time.time())


def lab_post(phone, path: str, **form: str) -> dict:
    session = Session(IP, [], transport=face_transport(face.handle, phone))
    reply = asyncio.run(session.request("POST", path, data=form))
    return reply.json() if reply.status == 200 else {"status": reply.status}


def test_lab_round_trip_every_key(tmp_path):
    values, _ = lab_read(lab(tmp_path))
    assert abs(values.pop("phone.clock_skew_s")) <= 2
    assert values == {
        "sip.registered": True,
        "phone.ip": "10.66.0.23",
        "sip.transport": "udp",
        "sip.register_expires_s": 3600,
        "phone.outbound_proxy": "",
        "phone.provisioning_url": "http://grandstream.prov.voip.ovh.test/ht802/",
    }


def test_lab_state_is_what_the_adapter_reads(tmp_path):
    phone = lab(
        tmp_path,
        clock_offset_s=-3600,
        outbound_proxy="sip.ovh.test:5962",
        transport="tcp",
        expires=600,
        provisioning_url="https://grandstream.prov.voip.ovh.test/",
        dnd=True,
        forward={"always": "0033612345678", "busy": "", "noanswer": ""},
        _registration={"registered": False, "status": 403, "reason": "Wrong login or password"},
    )
    values, _ = lab_read(phone)
    assert abs(values["phone.clock_skew_s"] + 3600) <= 2
    assert values["sip.registered"] is False and "sip.last_status" not in values
    assert values["phone.outbound_proxy"] == "sip.ovh.test:5962"
    assert values["sip.transport"] == "tcp" and values["sip.register_expires_s"] == 600
    assert values["phone.provisioning_url"] == "https://grandstream.prov.voip.ovh.test/"
    # DND and forwarding are star-code states the web API does not show: unknown, not False
    assert "phone.dnd" not in values and "phone.forward.always" not in values


def test_lab_face_answers_as_documented(tmp_path):
    phone = lab(tmp_path)
    assert lab_post(phone, "/cgi-bin/access", access="x") == {"status": 404}
    assert lab_post(phone, "/cgi-bin/api.values.get", request="P48:P2") == {
        "response": "error",
        "body": "session-expired",
    }
    public = lab_post(phone, "/cgi-bin/api.values.get", request="phone_model:vendor_fullname")
    assert public["body"] == {"phone_model": "HT802", "vendor_fullname": "Grandstream"}
    login = lab_post(phone, "/cgi-bin/dologin", username="admin", password=PASSWORD)
    sid = login["body"]["sid"]
    assert login["response"] == "success" and login["body"]["ver"] == "1.0.43.11"
    got = lab_post(phone, "/cgi-bin/api.values.get", request="P32:P9999:P212", sid=sid)
    assert got["body"] == {"P32": "60", "P9999": "", "P212": "1"}
    lines = lab_post(phone, "/cgi-bin/api-get_line_status", sid=sid)
    assert [line["state"] for line in lines["body"]] == ["idle", "idle"]
    assert lab_post(phone, "/cgi-bin/nothing") == {"status": 404}


def test_lab_wrong_password_is_refused_without_a_retry_storm(tmp_path):
    phone = lab(tmp_path)
    result, session = lab_read(phone, (("admin", "a"), ("admin", "b"), ("admin", "c")))
    assert isinstance(result, HttpError) and "nothing readable" in str(result)
    assert session.failed_logins == 2 and session.log.count("POST /cgi-bin/dologin") == 2
    values, _ = lab_read(phone)  # two failures do not lock the phone
    assert values["sip.registered"] is True


def test_lab_lockout_after_five_failures(tmp_path):
    phone = lab(tmp_path)
    answers = [
        lab_post(phone, "/cgi-bin/dologin", username="admin", password="x")["body"]
        for _ in range(5)
    ]
    assert answers == ["wrong4", "wrong3", "wrong2", "wrong1", "locked"]
    result, _ = lab_read(phone)  # even the right password, for the lockout's duration
    assert isinstance(result, LockedOut)
    assert lab_post(phone, "/cgi-bin/dologin", username="admin", password=PASSWORD)["body"] == (
        "locked"
    )
