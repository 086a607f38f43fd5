"""Poly adapter: against documented REST answers (data/poly) and against the lab's Poly face."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.config import Config, Credential
from agent.model import Device
from agent.net.http import HttpError, LockedOut, Session
from agent.vendors import base, poly, registry
from lab.personalities import poly as face
from tests.unit.vendors.helpers import face_transport, make_phone

DATA = Path(__file__).parent / "data" / "poly"
DEVICE = Device("192.168.1.43", vendor="poly", model="VVX 411", firmware="6.4.0.5060")
DATE = "Wed, 01 May 2024 10:00:00 GMT"
NOW = email.utils.parsedate_to_datetime(DATE).timestamp() + 30  # the phone is 30 s late
PASSWORD = "Pl-lab-7"
LOGINS = (("Polycom", PASSWORD),)
Answer = tuple[int, str, bytes]


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def js(name_or_body: str | bytes | dict, status: int = 200) -> Answer:
    if isinstance(name_or_body, dict):
        body = json.dumps(name_or_body).encode()
    elif isinstance(name_or_body, str):
        body = sample(name_or_body)
    else:
        body = name_or_body
    return status, "application/json", body


def config(overrides: dict[str, str], base_sample: str = "config_get_documented.json") -> Answer:
    """The documented config/get answer with some values changed."""
    doc = json.loads(sample(base_sample))
    for name, value in overrides.items():
        doc["data"][name] = {"Value": value, "Source": "config"}
    return js(doc)


DOCUMENTED: dict[str, Answer] = {
    "lineInfo": js("line_info_registered.json"),
    "lineInfo2": js("line_info_v2.json"),
    "network": js("network_info.json"),
    "config": js("config_get_documented.json"),
    "forward": js("config_get_user_forward_off.json"),
}
PATHS = {
    "/api/v1/mgmt/lineInfo": "lineInfo",
    "/api/v2/mgmt/lineInfo": "lineInfo2",
    "/api/v1/mgmt/network/info": "network",
}


def route(r: httpx.Request) -> str:
    if r.url.path == "/api/v1/mgmt/config/get":
        names = json.loads(r.content)["data"]
        return "forward" if "reg.1.fwdStatus" in names else "config"
    return PATHS.get(r.url.path, r.url.path)


class Fixed:
    """Fixed answers by route, shaped as Poly documents them; records every request."""

    def __init__(self, **over: Answer) -> None:
        self.routes = {**DOCUMENTED, **over}
        self.seen: list[httpx.Request] = []

    def __call__(self, r: httpx.Request) -> httpx.Response:
        self.seen.append(r)
        status, ctype, body = self.routes.get(route(r), (404, "text/html", b"<h1>404</h1>"))
        headers = {"Content-Type": ctype, "Date": DATE}
        if status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="Polycom"'
        return httpx.Response(status, headers=headers, content=body)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def attempt(transport, logins=LOGINS, now: float = NOW) -> tuple[Any, Session]:
    """The adapter's values (or the HttpError it raised) and the session it used."""
    session = Session(DEVICE.ip, [Credential(u, p) for u, p in logins], transport=transport)
    ctx = base.Context(DEVICE, Config(), session, now=now)
    try:
        return asyncio.run(poly.ADAPTER.read(ctx)), session
    except HttpError as e:
        return e, session


def run(transport, logins=LOGINS, now: float = NOW) -> tuple[dict, Session]:
    result, session = attempt(transport, logins, now)
    if isinstance(result, HttpError):
        raise result
    return result, session


# ------------------------------------------------------------------ documented answers


def test_registry_finds_the_adapter():
    assert registry.adapter_for("poly") is poly.ADAPTER


def test_healthy_registered_phone_every_key():
    fixed = Fixed()
    values, session = run(fixed.transport())
    assert values == {
        "phone.clock_skew_s": -30.0,
        "sip.registered": True,
        "phone.ip": "192.168.1.43",
        "phone.provisioning_url": "http://polycom.prov.voip.ovh.net/ip5000",
        "sip.transport": "udp",
        "sip.register_expires_s": 1800,
        "phone.outbound_proxy": "91.121.129.20:5962",
        "phone.forward.always": False,
        "phone.forward.always_target": "",
        "phone.forward.busy": False,
        "phone.forward.noanswer": False,
        # phone.dnd: the DND feature is enabled; whether DND is on is not readable
    }
    assert set(values) <= set(base.PHONE_KEYS)
    assert session.log == [
        "GET /api/v1/mgmt/lineInfo",
        "GET /api/v1/mgmt/network/info",
        "POST /api/v1/mgmt/config/get",
        "POST /api/v1/mgmt/config/get",
    ]
    posts = [r for r in fixed.seen if r.method == "POST"]
    for post in posts:
        assert post.headers["content-type"] == "application/json"
        assert 0 < len(json.loads(post.content)["data"]) <= poly.MAX_PARAMS


def test_forward_always_with_its_target_and_noanswer():
    values, _ = run(Fixed(forward=js("config_get_user_forward_on.json")).transport())
    assert values["phone.forward.always"] is True
    assert values["phone.forward.always_target"] == "0033612345678"
    assert values["phone.forward.busy"] is False
    assert values["phone.forward.noanswer"] is True


def test_forward_all_without_a_contact_forwards_nothing():
    answer = config({"divert.1.contact": ""}, "config_get_user_forward_on.json")
    doc = json.loads(answer[2])
    doc["data"]["reg.1.fwdContact"]["Value"] = ""
    values, _ = run(Fixed(forward=js(doc)).transport())
    assert values["phone.forward.always"] is False
    assert values["phone.forward.always_target"] == ""


def test_provisioned_diversion_when_the_firmware_lacks_the_user_parameters():
    fixed = Fixed(
        config=config(
            {
                "divert.1.contact": "0033600000000",
                "divert.busy.1.enabled": "1",
                "divert.noanswer.1.enabled": "0",
            }
        ),
        forward=js("config_get_user_forward_unknown.json"),
    )
    values, _ = run(fixed.transport())
    assert values["phone.forward.busy"] is True  # diverted to divert.1.contact
    # noanswer: provisioned diversion off, the user's own setting unreadable
    assert "phone.forward.noanswer" not in values
    assert "phone.forward.always" not in values  # divert.fwd.1.enabled=1: the user may have
    assert values["sip.registered"] is True


def test_user_forward_request_refused_as_a_whole_keeps_the_rest():
    values, _ = run(Fixed(forward=js({"Status": "4000"})).transport())
    assert values["sip.transport"] == "udp" and "phone.forward.always" not in values
    values, _ = run(Fixed(forward=(500, "text/html", b"<h1>error</h1>")).transport())
    assert values["phone.outbound_proxy"] == "91.121.129.20:5962"


def test_forward_all_disabled_and_dnd_feature_off_are_definite():
    values, _ = run(
        Fixed(
            config=config({"divert.fwd.1.enabled": "0", "feature.doNotDisturb.enable": "0"}),
            forward=js("config_get_user_forward_on.json"),
        ).transport()
    )
    assert values["phone.forward.always"] is False and "phone.forward.always_target" not in values
    assert values["phone.dnd"] is False


def test_dnd_enabled_feature_leaves_dnd_unknown():
    values, _ = run(Fixed(config=config({"feature.doNotDisturb.enable": "1"})).transport())
    assert "phone.dnd" not in values


def test_not_registered_says_so_and_no_sip_code_is_invented():
    values, _ = run(Fixed(lineInfo=js("line_info_unregistered.json")).transport())
    assert values["sip.registered"] is False
    assert "sip.last_status" not in values and "sip.last_reason" not in values


def test_line_not_registered_return_code():
    values, _ = run(Fixed(lineInfo=js("status_4002_line_not_registered.json")).transport())
    assert values["sip.registered"] is False


def test_v2_line_info_when_v1_is_gone():
    fixed = Fixed(lineInfo=(404, "text/html", b"not found"))
    values, session = run(fixed.transport())
    assert values["sip.registered"] is True
    assert session.log[:2] == ["GET /api/v1/mgmt/lineInfo", "GET /api/v2/mgmt/lineInfo"]


def test_rest_api_off_is_a_clear_error():
    fixed = Fixed(lineInfo=(404, "text/html", b""), lineInfo2=(404, "text/html", b""))
    result, session = attempt(fixed.transport())
    assert isinstance(result, HttpError) and "apps.restapi.enabled" in str(result)
    assert len(session.log) == 2


def test_line_on_other_index_and_odd_states():
    doc = json.loads(sample("line_info_registered.json"))
    doc["data"].insert(0, {"LineNumber": "2", "RegistrationStatus": "unregistered"})
    values, _ = run(Fixed(lineInfo=js(doc)).transport())
    assert values["sip.registered"] is True  # line 1, wherever it is listed
    doc["data"] = [{"LineNumber": "1", "RegistrationStatus": "registering"}]
    values, _ = run(Fixed(lineInfo=js(doc)).transport())
    assert "sip.registered" not in values


def test_outbound_proxy_none_or_global_and_other_transports():
    values, _ = run(
        Fixed(
            config=config(
                {
                    "reg.1.outboundProxy.address": "",
                    "reg.1.server.1.transport": "TLS",
                    "reg.1.server.1.expires": "",
                }
            )
        ).transport()
    )
    assert values["phone.outbound_proxy"] == ""
    assert values["sip.transport"] == "tls" and "sip.register_expires_s" not in values
    values, _ = run(
        Fixed(
            config=config(
                {
                    "reg.1.outboundProxy.address": "",
                    "voIpProt.SIP.outboundProxy.address": "sip.ovh.fr",
                    "voIpProt.SIP.outboundProxy.port": "0",
                    "reg.1.server.1.transport": "DNSnaptr",
                }
            )
        ).transport()
    )
    assert values["phone.outbound_proxy"] == "sip.ovh.fr" and "sip.transport" not in values


def test_line_without_its_own_server_uses_the_common_one():
    values, _ = run(
        Fixed(
            config=config(
                {
                    "reg.1.server.1.address": "",
                    "voIpProt.server.1.transport": "TCPOnly",
                    "voIpProt.server.1.expires": "600",
                }
            )
        ).transport()
    )
    assert values["sip.transport"] == "tcp" and values["sip.register_expires_s"] == 600


@pytest.mark.parametrize(
    ("address", "kind", "url"),
    [
        ("prov.example.test/polycom", "FTP", "ftp://prov.example.test/polycom"),
        ("ftp://PlcmSpIp:PlcmSpIp@prov.example.test", "FTP", "ftp://prov.example.test"),
        ("user:secret@prov.example.test", "HTTPS", "https://prov.example.test"),
        ("", "FTP", ""),
        ("10.0.0.5", "", "10.0.0.5"),
    ],
)
def test_provisioning_url_forms(address, kind, url):
    assert poly.provisioning_url(address, kind) == url


# ------------------------------------------------------------------ refusals and lockouts


def test_default_password_is_reported_not_retried():
    fixed = Fixed(lineInfo=js("status_4010_default_password.json"))
    result, session = attempt(fixed.transport())
    assert isinstance(result, HttpError) and not isinstance(result, LockedOut)
    assert "default password" in str(result)
    assert len(session.log) == 1


def test_wrong_credentials_stay_within_the_budget():
    refused: Answer = (401, "text/html", b"<html>401 Unauthorized</html>")
    fixed = Fixed(**{k: refused for k in DOCUMENTED})
    result, session = attempt(fixed.transport(), (("Polycom", "a"), ("Polycom", "b"), ("x", "c")))
    assert isinstance(result, HttpError) and "logins refused" in str(result)
    assert session.failed_logins == 2
    assert len(fixed.seen) == 3  # one unauthenticated try, then two logins: no storm


@pytest.mark.parametrize(
    "answer",
    [
        (423, "text/html", b""),
        (429, "text/html", b"slow down"),
        (401, "text/html", b"Account locked: too many failed logins"),
    ],
)
def test_lockout_answers_raise_lockedout(answer):
    with pytest.raises(LockedOut):
        run(Fixed(lineInfo=answer).transport())


def test_lockout_later_in_the_read_raises_lockedout():
    with pytest.raises(LockedOut):
        run(Fixed(config=(429, "text/html", b"")).transport())


# ------------------------------------------------------------------ malformed answers

MALFORMED = [
    (200, "text/html", b"<html><body><h1>Polycom Web Configuration Utility</h1></body></html>"),
    (200, "application/json", b""),
    (200, "application/json", b'{"data": [{"LineNumber": "1", "RegistrationStat'),  # truncated
    (200, "application/json", b"[" * 100_000 + b"]" * 100_000),  # nested too deep
    (200, "application/json", b'["Status", "2000"]'),
    (200, "application/json", b'{"Status": "2000", "data": {"odd": []}}'),
    (200, "application/json", b'{"Status": "2000", "data": [1, null, "x"]}'),
    (200, "application/json", b"\xff\xfe\x00garbage"),
    (500, "text/html", b"<h1>500</h1>"),
]


@pytest.mark.parametrize("answer", MALFORMED)
def test_malformed_line_info_leaves_its_key_out(answer):
    values, _ = run(Fixed(lineInfo=answer).transport())
    assert "sip.registered" not in values
    assert values["sip.transport"] == "udp"  # the rest is still read


@pytest.mark.parametrize("answer", MALFORMED)
def test_malformed_everything_is_an_httperror(answer):
    fixed = Fixed(**{k: answer for k in DOCUMENTED})
    result, _ = attempt(fixed.transport())
    assert isinstance(result, HttpError)


def test_odd_config_values_are_tolerated():
    doc = json.loads(sample("config_get_documented.json"))
    doc["data"]["reg.1.server.1.expires"] = {"Value": 1800, "Source": "config"}
    doc["data"]["reg.1.server.1.transport"] = {"Value": ["UDPOnly"]}
    doc["data"]["reg.1.outboundProxy.address"] = "91.121.129.20"  # not the documented shape
    doc["data"]["divert.fwd.1.enabled"] = {"Value": True}
    values, _ = run(Fixed(config=js(doc)).transport())
    assert values["sip.register_expires_s"] == 1800
    assert "sip.transport" not in values and "phone.outbound_proxy" not in values
    odd_network = js({"Status": "2000", "data": {"IPV4Address": "x.y"}})
    values, _ = run(Fixed(network=odd_network).transport())
    assert "phone.ip" not in values and "phone.provisioning_url" not in values


# ------------------------------------------------------------------ the lab's Poly face

STATE: dict[str, Any] = {
    "vendor": "poly",
    "model": "VVX 411",
    "firmware": "6.4.0.5060",
    "mac": "64:16:7f:ca:ce:e2",
    "ip": "10.66.0.24",
    "line": "0033972101010",
    "registrar": "sip.ovh.test",
    "admin": {"username": "Polycom", "password": PASSWORD},
    "dnd": False,
    "forward": {"always": "", "busy": "", "noanswer": ""},
    "clock_offset_s": 0,
    "provisioning_url": "http://polycom.prov.voip.ovh.test/",
    "outbound_proxy": "",
    "transport": "udp",
    "expires": 3600,
}


def lab(tmp_path: Path, **over: Any):
    return make_phone(tmp_path, **{**STATE, **over})


def lab_read(phone, logins=LOGINS) -> tuple[Any, Session]:
    return attempt(face_transport(face.handle, phone), logins, now=time.time())


def lab_call(phone, method: str, path: str, body: Any = None, password: str = PASSWORD):
    transport = face_transport(face.handle, phone)
    with httpx.Client(transport=transport, base_url="http://10.66.0.24") as client:
        return client.request(method, path, json=body, auth=("Polycom", password))


def test_lab_round_trip_every_key(tmp_path):
    values, _ = lab_read(lab(tmp_path))
    skew = values.pop("phone.clock_skew_s")
    assert abs(skew) <= 2
    assert values == {
        "sip.registered": True,
        "phone.ip": "10.66.0.24",
        "phone.provisioning_url": "http://polycom.prov.voip.ovh.test/",
        "sip.transport": "udp",
        "sip.register_expires_s": 3600,
        "phone.outbound_proxy": "",
        "phone.forward.always": False,
        "phone.forward.always_target": "",
        "phone.forward.busy": False,
        "phone.forward.noanswer": False,
    }


def test_lab_state_is_what_the_adapter_reads(tmp_path):
    phone = lab(
        tmp_path,
        dnd=True,
        forward={"always": "0033612345678", "busy": "", "noanswer": "0033600000000"},
        clock_offset_s=-3600,
        outbound_proxy="91.121.129.20:5962",
        transport="tcp",
        expires=600,
        _registration={"registered": False, "status": 403, "reason": "Wrong login or password"},
    )
    values, _ = lab_read(phone)
    assert abs(values["phone.clock_skew_s"] + 3600) <= 2
    assert "phone.dnd" not in values  # DND on is not readable through the REST API
    assert values["phone.forward.always"] is True
    assert values["phone.forward.always_target"] == "0033612345678"
    assert values["phone.forward.noanswer"] is True and values["phone.forward.busy"] is False
    assert values["sip.registered"] is False and "sip.last_status" not in values
    assert values["phone.outbound_proxy"] == "91.121.129.20:5962"
    assert values["sip.transport"] == "tcp" and values["sip.register_expires_s"] == 600


def test_lab_dnd_feature_off(tmp_path):
    values, _ = lab_read(lab(tmp_path, dnd_feature=False))
    assert values["phone.dnd"] is False


def test_lab_writes_forwarding_through_config_set(tmp_path):
    phone = lab(tmp_path)
    body = {"data": {"reg.1.fwdStatus": "1", "reg.1.fwdContact": "0033612345678"}}
    r = lab_call(phone, "POST", "/api/v1/mgmt/config/set", body)
    assert r.status_code == 200 and r.json() == {"Status": "2000"}
    saved = json.loads(phone.state_file.read_text())
    assert saved["forward"]["always"] == "0033612345678"
    values, _ = lab_read(phone)
    assert values["phone.forward.always"] is True
    assert values["phone.forward.always_target"] == "0033612345678"
    lab_call(phone, "POST", "/api/v1/mgmt/config/set", {"data": {"reg.1.fwdStatus": "0"}})
    values, _ = lab_read(phone)
    assert values["phone.forward.always"] is False


@pytest.mark.parametrize(
    "data",
    [
        {"feature.doNotDisturb.enable": "1"},  # no documented DND state to write
        {"reg.1.fwdStatus": "2"},
        {"reg.1.fwdStatus": 1},
        {},
        ["reg.1.fwdStatus"],
    ],
)
def test_lab_config_set_refuses_other_writes(tmp_path, data):
    phone = lab(tmp_path)
    before = phone.state_file.read_text()
    r = lab_call(phone, "POST", "/api/v1/mgmt/config/set", {"data": data})
    assert r.json()["Status"] == "4000"
    assert phone.state_file.read_text() == before


def test_lab_config_get_shapes(tmp_path):
    phone = lab(tmp_path)
    names = ["reg.1.server.1.transport", "no.such.param"]
    r = lab_call(phone, "POST", "/api/v1/mgmt/config/get", {"data": names})
    doc = r.json()
    assert doc["Status"] == "2000"
    assert doc["data"] == {"reg.1.server.1.transport": {"Value": "UDPOnly", "Source": "config"}}
    assert doc["InvalidParams"] == ["no.such.param"]
    r = lab_call(phone, "POST", "/api/v1/mgmt/config/get", {"data": ["x"] * 21})
    assert r.json() == {"Status": "4009"}
    r = lab_call(phone, "POST", "/api/v1/mgmt/config/get", None)
    assert r.json() == {"Status": "4000"}


def test_lab_wrong_password_is_refused_within_the_budget(tmp_path):
    phone = lab(tmp_path)
    assert lab_call(phone, "GET", "/api/v1/mgmt/lineInfo", password="wrong").status_code == 401
    result, session = lab_read(phone, (("Polycom", "a"), ("Polycom", "b"), ("Polycom", "c")))
    assert isinstance(result, HttpError) and "logins refused" in str(result)
    assert session.failed_logins == 2 and len(session.log) == 3


def test_lab_factory_password_gets_4010(tmp_path):
    phone = lab(tmp_path, admin={"username": "Polycom", "password": "456"})
    result, _ = lab_read(phone, (("Polycom", "456"),))
    assert isinstance(result, HttpError) and "4010" in str(result)


def test_lab_paths_need_basic_auth_and_unknown_paths_are_404(tmp_path):
    phone = lab(tmp_path)
    transport = face_transport(face.handle, phone)
    with httpx.Client(transport=transport, base_url="http://10.66.0.24") as client:
        r = client.get("/api/v1/mgmt/device/info")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
        assert client.get("/api/v1/mgmt/nothing").status_code == 404
        assert client.get("/api/v1/mgmt/config/get").status_code == 404  # POST only
    info = lab_call(phone, "GET", "/api/v1/mgmt/device/info").json()
    assert info["Status"] == "2000" and info["data"]["MACAddress"] == "64167fcacee2"
    v2 = lab_call(phone, "GET", "/api/v2/mgmt/lineInfo").json()
    assert v2["data"][0]["Username"] == "0033972101010@sip.ovh.test"
    assert "date" in lab_call(phone, "GET", "/api/v1/mgmt/network/info").headers


def test_lab_reading_does_not_write_the_state(tmp_path):
    phone = lab(tmp_path)
    before = phone.state_file.read_text()
    lab_read(phone)
    assert phone.state_file.read_text() == before
