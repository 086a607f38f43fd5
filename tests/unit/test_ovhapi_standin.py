"""The OVHcloud /telephony API stand-in (lab/services/ovhapi), driven by the real ``ovh`` client.

The server runs in-process on 127.0.0.1 (a free port) with HTTPS from ``make_tls`` and a
``MemoryStore``; the official python-ovh client is pointed at it through its ENDPOINTS table
and trusts the lab CA. One test runs a throw-away Kamailio (loopback only, killed by PID)
to check ``KamailioStore`` against the real htables; it is skipped without Kamailio.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ovh
import ovh.client
import pytest
import requests
from cryptography import x509
from ovh.exceptions import (
    APIError,
    BadParametersError,
    InvalidCredential,
    InvalidKey,
    NotGrantedCall,
    ResourceNotFoundError,
)

import lab.services.ovhapi as ovhapi
from lab.services.ovhapi import (
    Account,
    ApiServer,
    KamailioStore,
    MemoryStore,
    make_server,
    make_tls,
    parse_htable_dump,
    parse_reg,
    schema,
    signature,
)
from lab.services.ovhapi.auth import Rule, full_urls
from lab.services.ovhapi.server import main

REPO = Path(__file__).resolve().parents[2]
BA, BA2 = "ovhtel-12345678-1", "ovhtel-87654321-1"
AK = "7kbG7Bk7S9Nt7ZSV"  # 16 characters, like OVHcloud's
AS = "EXEgWIz07P0HYwtQDs7cNIqCiQaWSuHF"  # 32
CK = "MtSwSrPpNjqfVSmJhLbPyr2i45lSwPU1"  # 32
CK_RO = "ReadOnlyConsumerKey0123456789abc"  # GET only

ACCOUNT: dict[str, Any] = {
    "credentials": [
        {
            "application_key": AK,
            "application_secret": AS,
            "consumer_key": CK,
            "rules": [dict(r) for r in ovhapi.DEFAULT_RULES],
        },
        {
            "application_key": AK,
            "application_secret": AS,
            "consumer_key": CK_RO,
            "rules": [{"method": "GET", "path": "/telephony/*"}],
        },
    ],
    "billing_accounts": {
        BA: {
            "description": "Bureau",
            "lines": {
                "1001": {
                    "description": "Accueil",
                    "phone": {
                        "brand": "phone.yealink.t46s",
                        "description": "Yealink T46S",
                        "macAddress": "80-5E-C0-AA-BB-CC",
                        "maxline": 16,
                    },
                },
                "1002": {"description": "Salle de réunion", "phone": None},
                "1003": {
                    "description": "Atelier",
                    "phone": {
                        "brand": "phone.gigaset.c530ip",
                        "description": "Gigaset C530 IP",
                        "macAddress": "7c2f80112233",
                        "maxline": 6,
                    },
                },
            },
        },
        BA2: {"description": "Vide", "lines": {}},
    },
}

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")

# `kamcmd htable.dump opts` / `htable.dump regs` of Kamailio 5.6.3, captured from a throw-away
# instance (tables of size=2, so keys collide and a slot holds several items). The values
# were set with `kamcmd htable.sets opts s:KEY s:VALUE`, except 1002::callWaiting, set with
# `htable.seti` (type int); 1001::lockOutCallPassword is the empty string ("value: ").
OPTS_DUMP = "\n".join(
    [
        "{",
        "\tentry: 1",
        "\tsize: 1",
        "\tslot: {",
        "\t\t{",
        "\t\t\tname: 1001::doNotDisturb",
        "\t\t\tvalue: true",
        "\t\t\ttype: str",
        "\t\t}",
        "\t}",
        "}",
        "{",
        "\tentry: 2",
        "\tsize: 3",
        "\tslot: {",
        "\t\t{",
        "\t\t\tname: 1001::forwardUnconditionalNumber",
        "\t\t\tvalue: 0612345678",
        "\t\t\ttype: str",
        "\t\t}",
        "\t\t{",
        "\t\t\tname: 1002::forwardNoReplyDelay",
        "\t\t\tvalue: 30",
        "\t\t\ttype: str",
        "\t\t}",
        "\t\t{",
        "\t\t\tname: 1001::lockOutCallPassword",
        "\t\t\tvalue: ",
        "\t\t\ttype: str",
        "\t\t}",
        "\t}",
        "}",
        "{",
        "\tentry: 3",
        "\tsize: 2",
        "\tslot: {",
        "\t\t{",
        "\t\t\tname: 1001::forwardUnconditional",
        "\t\t\tvalue: true",
        "\t\t\ttype: str",
        "\t\t}",
        "\t\t{",
        "\t\t\tname: 1002::callWaiting",
        "\t\t\tvalue: 0",
        "\t\t\ttype: int",
        "\t\t}",
        "\t}",
        "}",
    ]
)
REGS_DUMP = "\n".join(
    [
        "{",
        "\tentry: 1",
        "\tsize: 2",
        "\tslot: {",
        "\t\t{",
        "\t\t\tname: 1001::1764213000.123456",
        "\t\t\tvalue: 100.64.66.2;40001;10.66.0.11;5060;sip.ovh.test;Yealink SIP-T46S 66.86.0.15",
        "\t\t\ttype: str",
        "\t\t}",
        "\t\t{",
        "\t\t\tname: 1002::1764213001.5",
        "\t\t\tvalue: 100.64.66.2;40002;10.66.0.12;5060;sip.ovh.test;Cisco/SPA504G-7.6.2c; (lab;x)",
        "\t\t\ttype: str",
        "\t\t}",
        "\t}",
        "}",
        "{",
        "\tentry: 3",
        "\tsize: 1",
        "\tslot: {",
        "\t\t{",
        "\t\t\tname: 1001::1764214800.654321",
        "\t\t\tvalue: 100.64.66.2;40007;10.66.0.11;5060;sip.ovh.test;Yealink SIP-T46S 66.86.0.15",
        "\t\t\ttype: str",
        "\t\t}",
        "\t}",
        "}",
    ]
)


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(autouse=True)
def plain_requests_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override ``Session.verify`` (and would
    follow *_PROXY): the tests trust the lab CA only, and talk to it directly."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTPS_PROXY", "https_proxy",
                 "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_tls(tmp_path_factory.mktemp("tls"), "localhost")


@dataclass
class Harness:
    server: ApiServer
    store: Any
    ca: Path
    logs: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}/1.0"

    def client(self, ak: str = AK, secret: str = AS, ck: str = CK) -> ovh.Client:
        name = f"phonediag-lab-{self.port}"
        ovh.client.ENDPOINTS[name] = self.url
        client = ovh.Client(
            endpoint=name, application_key=ak, application_secret=secret, consumer_key=ck
        )
        client._session.verify = str(self.ca)
        return client

    def signed(
        self, method: str, path: str, body: str = "", ck: str = CK, **headers: str
    ) -> requests.Response:
        """A call signed by hand (to send bodies the client would not)."""
        url = self.url + path
        ts = str(int(time.time()))
        sent = {
            "X-Ovh-Application": AK,
            "X-Ovh-Consumer": ck,
            "X-Ovh-Timestamp": ts,
            "X-Ovh-Signature": signature(AS, ck, method, url, body, ts),
            "Content-Type": "application/json",
            **headers,
        }
        return requests.request(
            method, url, data=body.encode(), headers=sent, verify=str(self.ca), timeout=10
        )

    @property
    def api(self) -> Any:
        return self.server.api


def serve(store: Any, tls: tuple[Path, Path, Path]) -> Iterator[Harness]:
    ca, cert, key = tls
    logs: list[str] = []
    server = make_server(Account.from_dict(ACCOUNT), store, "127.0.0.1", 0, cert, key, logs.append)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    names = set(ovh.client.ENDPOINTS)
    try:
        yield Harness(server, store, ca, logs)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        for name in set(ovh.client.ENDPOINTS) - names:
            del ovh.client.ENDPOINTS[name]
    assert not [line for line in logs if "Traceback" in line], logs


@pytest.fixture
def h(tls: tuple[Path, Path, Path]) -> Iterator[Harness]:
    yield from serve(MemoryStore(), tls)


# ---------------------------------------------------------------- listing and models


def test_auth_time_is_plain_integer(h: Harness) -> None:
    resp = requests.get(h.url + "/auth/time", verify=str(h.ca), timeout=10)
    assert resp.status_code == 200
    assert re.fullmatch(rb"\d+", resp.content)
    assert abs(resp.json() - time.time()) < 5
    assert resp.headers["X-Ovh-QueryId"].startswith("LAB.")


def test_lists_billing_accounts_and_lines(h: Harness) -> None:
    client = h.client()
    assert client.get("/telephony") == [BA, BA2]
    assert client.get(f"/telephony/{BA}/line") == ["1001", "1002", "1003"]
    assert client.get(f"/telephony/{BA2}/line") == []
    with pytest.raises(ResourceNotFoundError, match=r"billingAccount = ovhtel-nope"):
        client.get("/telephony/ovhtel-nope/line")


def test_line_model(h: Harness) -> None:
    line = h.client().get(f"/telephony/{BA}/line/1001")
    assert set(line) == {
        "canChangePassword", "description", "deviceSlot", "getPublicOffer", "infrastructure",
        "isAttachedToOtherLinesPhone", "notifications", "offers", "serviceName", "serviceType",
        "simultaneousLines",
    }  # fmt: skip
    assert line["serviceName"] == "1001" and line["description"] == "Accueil"
    assert line["serviceType"] == "line" and line["notifications"] is None
    assert isinstance(line["simultaneousLines"], int) and isinstance(line["offers"], list)
    assert set(line["getPublicOffer"]) == {"description", "name", "price"}
    with pytest.raises(ResourceNotFoundError) as err:
        h.client().get(f"/telephony/{BA}/line/1999")
    assert str(err.value).startswith("The requested object (serviceName = 1999) does not exist")
    assert err.value.response.json()["class"] == "Client::NotFound"


TYPES = {"bool": bool, "int": int, "str": str, "phone": str, "enum": str, "ips": list}


def test_options_have_every_field_with_schema_types(h: Harness) -> None:
    opts = h.client().get(f"/telephony/{BA}/line/1001/options")
    assert set(opts) == set(schema.OPTION_FIELDS)
    assert len(opts) == 35
    for name, spec in schema.OPTION_FIELDS.items():
        value = opts[name]
        if value is None:
            assert spec.nullable, name
        else:
            assert type(value) is TYPES[spec.kind], (name, value)
        if spec.choices and value is not None:
            assert value in spec.choices
    assert opts["doNotDisturb"] is False and opts["forwardUnconditional"] is False
    assert opts["domain"] == "sip.ovh.test" and opts["ipRestrictions"] == []
    assert opts["forwardNoReplyDelay"] == 20
    assert opts["lockOutCallPassword"] is None and opts["toneOnHoldSoundId"] is None
    # every default is typed, and listed
    assert set(schema.default_options("1", "d")) == set(schema.OPTION_FIELDS)


def test_put_options_then_get_and_store_holds_raw_strings(h: Harness) -> None:
    client = h.client()
    path = f"/telephony/{BA}/line/1001/options"
    result = client.put(
        path,
        forwardUnconditional=True,
        forwardUnconditionalNumber="0612345678",
        forwardNoReplyDelay=35,
        lockOutCallPassword="1234",
        ipRestrictions=["192.0.2.7", "198.51.100.0/24"],
        language="English (UK)",
    )
    assert result is None
    opts = client.get(path)
    assert opts["forwardUnconditional"] is True
    assert opts["forwardUnconditionalNumber"] == "0612345678"
    assert opts["forwardNoReplyDelay"] == 35 and opts["lockOutCallPassword"] == "1234"
    assert opts["ipRestrictions"] == ["192.0.2.7/32", "198.51.100.0/24"]
    assert opts["language"] == "English (UK)"
    assert h.store.options("1001") == {
        "forwardUnconditional": "true",
        "forwardUnconditionalNumber": "0612345678",
        "forwardNoReplyDelay": "35",
        "lockOutCallPassword": "1234",
        "ipRestrictions": "192.0.2.7/32,198.51.100.0/24",
        "language": "English (UK)",
    }
    client.put(path, lockOutCallPassword=None, forwardUnconditional=False)
    opts = client.get(path)
    assert opts["lockOutCallPassword"] is None and opts["forwardUnconditional"] is False
    assert h.store.options("1001")["lockOutCallPassword"] == ""
    # other lines are untouched
    assert client.get(f"/telephony/{BA}/line/1002/options")["forwardUnconditional"] is False


def test_registrar_side_options_show_through_the_api(h: Harness) -> None:
    """A phone dialling *21*0612345678# is written by the registrar: one state."""
    h.store.set_option("1002", "forwardUnconditional", "true")
    h.store.set_option("1002", "forwardUnconditionalNumber", "0612345678")
    h.store.set_option("1002", "doNotDisturb", "1")  # int-typed htable value
    h.store.set_option("1002", "forwardNoReplyDelay", "soon")  # broken: default stays
    h.store.set_option("1002", "noSuchOption", "x")
    opts = h.client().get(f"/telephony/{BA}/line/1002/options")
    assert opts["forwardUnconditional"] is True and opts["doNotDisturb"] is True
    assert opts["forwardUnconditionalNumber"] == "0612345678"
    assert opts["forwardNoReplyDelay"] == 20
    assert any("forwardNoReplyDelay" in line for line in h.logs)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"noSuchField": True}, "Unknown body parameter noSuchField"),
        ({"doNotDisturb": "yes"}, "doNotDisturb"),
        ({"doNotDisturb": None}, "doNotDisturb"),
        ({"forwardNoReplyDelay": "20"}, "forwardNoReplyDelay"),
        ({"forwardNoReplyDelay": True}, "forwardNoReplyDelay"),
        ({"forwardUnconditionalNumber": 612345678}, "forwardUnconditionalNumber"),
        ({"forwardUnconditionalNumber": "06 12"}, "forwardUnconditionalNumber"),
        ({"forwardBusyNature": "fax2"}, "forwardBusyNature"),
        ({"intercom": "maybe"}, "intercom"),
        ({"ipRestrictions": "192.0.2.1"}, "ipRestrictions"),
        ({"ipRestrictions": ["192.0.2.300"]}, "ipRestrictions"),
        ({"voicemailExternalNumber": "0033123"}, "read-only"),
        ({"voicemailInternalNumber": "123"}, "read-only"),
    ],
)
def test_put_options_rejects_bad_bodies(h: Harness, body: dict[str, Any], message: str) -> None:
    client = h.client()
    with pytest.raises(BadParametersError, match=message) as err:
        client.put(f"/telephony/{BA}/line/1001/options", **body)
    assert err.value.response.status_code == 400
    assert err.value.response.json()["class"] == "Client::BadRequest"
    assert h.store.options("1001") == {}  # nothing half-written


def test_put_options_with_good_and_bad_fields_writes_nothing(h: Harness) -> None:
    with pytest.raises(BadParametersError):
        h.client().put(f"/telephony/{BA}/line/1001/options", doNotDisturb=True, bogus=1)
    assert h.store.options("1001") == {}


@pytest.mark.parametrize("body", ["{not json", "[1, 2]", '"text"'])
def test_malformed_bodies_are_400(h: Harness, body: str) -> None:
    resp = h.signed("PUT", f"/telephony/{BA}/line/1001/options", body)
    assert resp.status_code == 400
    assert resp.json()["class"] == "Client::BadRequest"
    assert resp.headers["X-Ovh-QueryId"]


# ---------------------------------------------------------------- registrations


def test_last_registrations_and_ips_from_store_rows(h: Harness) -> None:
    store: MemoryStore = h.store
    base = 1764213000.0
    for i in range(12):
        store.add_registration(
            "1001", "100.64.66.2", 40000 + i, "10.66.0.11", 5060, "sip.ovh.test",
            "Yealink SIP-T46S 66.86.0.15", when=base + 60 * i,
        )  # fmt: skip
    store.add_registration("1001", "203.0.113.9", 5062, "192.168.1.20", 5060, "sip.ovh.test",
                           "Yealink; odd;UA", when=base - 3600)  # fmt: skip
    store.add_row("1002::1764213001.5", "100.64.66.2;40002;10.66.0.12;5060;sip.ovh.test;x")
    store.add_row("1001::garbage", "1.2.3.4;1;2;3;4;5")  # malformed: skipped
    client = h.client()
    regs = client.get(f"/telephony/{BA}/line/1001/lastRegistrations")
    assert len(regs) == 10
    assert [r["port"] for r in regs] == [40011 - i for i in range(10)]  # newest first
    first = regs[0]
    assert set(first) == {"datetime", "domain", "ip", "localIp", "localPort", "port", "userAgent"}
    assert ISO.match(first["datetime"]) and first["datetime"] == "2025-11-27T03:21:00+00:00"
    assert first["ip"] == "100.64.66.2" and first["localIp"] == "10.66.0.11"
    assert first["localPort"] == 5060 and first["userAgent"] == "Yealink SIP-T46S 66.86.0.15"
    assert first["domain"] == "sip.ovh.test"

    ips = client.get(f"/telephony/{BA}/line/1001/ips")
    assert ips == [
        {"datetime": "2025-11-27T03:21:00+00:00", "ip": "100.64.66.2"},
        {"datetime": "2025-11-27T02:10:00+00:00", "ip": "203.0.113.9"},
    ]
    assert client.get(f"/telephony/{BA}/line/1003/lastRegistrations") == []
    assert client.get(f"/telephony/{BA}/line/1003/ips") == []


def test_registration_rows_with_empty_fields_become_null(h: Harness) -> None:
    h.store.add_row("1001::1764213000.000001", "100.64.66.2;;;;;")
    (reg,) = h.client().get(f"/telephony/{BA}/line/1001/lastRegistrations")
    assert reg == {
        "datetime": "2025-11-27T03:10:00+00:00", "domain": None, "ip": "100.64.66.2",
        "localIp": None, "localPort": None, "port": None, "userAgent": None,
    }  # fmt: skip


# ---------------------------------------------------------------- phone


def test_phone_model_and_404_without_phone(h: Harness) -> None:
    client = h.client()
    phone = client.get(f"/telephony/{BA}/line/1001/phone")
    assert phone == {
        "brand": "phone.yealink.t46s",
        "description": "Yealink T46S",
        "macAddress": "80:5e:c0:aa:bb:cc",
        "maxSimultaneousCalls": 2,
        "maxline": 16,
        "mgcpIpRestriction": None,
        "phoneConfiguration": [],
        "protocol": "sip",
        "userPassword": None,
    }
    with pytest.raises(ResourceNotFoundError, match=r"serviceName = 1002"):
        client.get(f"/telephony/{BA}/line/1002/phone")
    with pytest.raises(ResourceNotFoundError):
        client.post(f"/telephony/{BA}/line/1002/phone/reboot")


def test_reboot_task_and_501_for_gigaset(h: Harness) -> None:
    client = h.client()
    task = client.post(f"/telephony/{BA}/line/1001/phone/reboot")
    assert task == {
        "action": "reboot",
        "message": None,
        "objectCreated": None,
        "serviceType": "line",
        "status": "todo",
        "taskId": task["taskId"],
    }
    assert isinstance(task["taskId"], int)
    resp = h.signed("POST", f"/telephony/{BA}/line/1001/phone/reboot", "{}")  # the manager's
    assert resp.status_code == 200 and resp.json()["taskId"] != task["taskId"]
    with pytest.raises(APIError) as err:
        client.post(f"/telephony/{BA}/line/1003/phone/reboot")
    assert err.value.response.status_code == 501
    assert [a["action"] for a in h.api.actions] == ["reboot", "reboot"]
    assert h.api.actions[0]["serviceName"] == "1001"


def test_reset_config(h: Harness) -> None:
    client = h.client()
    path = f"/telephony/{BA}/line/1001/phone/resetConfig"
    assert client.post(path, ip="203.0.113.9") == {
        "resetCodeInfo": None,
        "resetPhoneMethod": "http",
    }
    assert h.api.actions[-1]["ip"] == "203.0.113.9"
    for bad in (
        {},
        {"ip": "203.0.113"},
        {"ip": "2001:db8::1"},
        {"ip": 3},
        {"ip": "1.2.3.4", "x": 1},
    ):
        with pytest.raises(BadParametersError):
            client.post(path, **bad)
    assert len(h.api.actions) == 1


# ---------------------------------------------------------------- signature and rules


def test_wrong_secret_is_invalid_signature(h: Harness) -> None:
    with pytest.raises(BadParametersError, match="Invalid signature") as err:
        h.client(secret="x" * 32).get("/telephony")
    body = err.value.response.json()
    assert body["errorCode"] == "INVALID_SIGNATURE" and body["httpCode"] == "400 Bad Request"
    assert err.value.query_id.startswith("LAB.")


def test_unknown_application_key(h: Harness) -> None:
    with pytest.raises(InvalidKey, match="Invalid application key"):
        h.client(ak="A" * 16).get("/telephony")


def test_unknown_consumer_key(h: Harness) -> None:
    with pytest.raises(InvalidCredential, match="This credential does not exist"):
        h.client(ck="C" * 32).get("/telephony")


def test_rules_are_checked(h: Harness) -> None:
    ro = h.client(ck=CK_RO)
    assert ro.get(f"/telephony/{BA}/line") == ["1001", "1002", "1003"]
    with pytest.raises(NotGrantedCall, match="This call has not been granted"):
        ro.put(f"/telephony/{BA}/line/1001/options", doNotDisturb=True)
    with pytest.raises(NotGrantedCall):  # "/telephony/*" does not cover "/telephony"
        ro.get("/telephony")
    assert h.store.options("1001") == {}


def test_time_window(h: Harness) -> None:
    client = h.client()
    assert client.get("/telephony")  # the client has read /auth/time: delta 0
    h.api.clock_offset = 250
    assert client.get("/telephony")
    h.api.clock_offset = 400
    with pytest.raises(BadParametersError, match="Query out of time") as err:
        client.get("/telephony")
    assert err.value.response.json()["errorCode"] == "QUERY_TIME_OUT"
    assert h.client().get("/telephony")  # a new client syncs with /auth/time again


def test_tampered_body_or_url_breaks_the_signature(h: Harness) -> None:
    url = h.url + f"/telephony/{BA}/line/1001/options"
    ts = str(int(time.time()))
    headers = {
        "X-Ovh-Application": AK,
        "X-Ovh-Consumer": CK,
        "X-Ovh-Timestamp": ts,
        "X-Ovh-Signature": signature(AS, CK, "PUT", url, '{"doNotDisturb":false}', ts),
    }
    resp = requests.put(url, data='{"doNotDisturb":true}', headers=headers, verify=str(h.ca),
                        timeout=10)  # fmt: skip
    assert resp.status_code == 400 and resp.json()["errorCode"] == "INVALID_SIGNATURE"
    resp = requests.get(url.replace("1001", "1002"), headers=headers, verify=str(h.ca), timeout=10)
    assert resp.status_code == 400 and resp.json()["errorCode"] == "INVALID_SIGNATURE"
    assert h.store.options("1001") == {}


def test_unsigned_call(h: Harness) -> None:
    resp = requests.get(h.url + "/telephony", headers={"X-Ovh-Application": AK},
                        verify=str(h.ca), timeout=10)  # fmt: skip
    assert resp.status_code == 401
    resp = requests.get(h.url + "/telephony", verify=str(h.ca), timeout=10)
    assert resp.status_code == 403 and resp.json()["errorCode"] == "INVALID_KEY"


def test_query_string_is_signed(h: Harness) -> None:
    assert h.client().get(f"/telephony/{BA}/line", foo="bar baz") == ["1001", "1002", "1003"]


def test_rule_matching() -> None:
    star = Rule("GET", "/telephony/*")
    assert star.allows("GET", "/telephony/ba/line/1001/options")
    assert not star.allows("GET", "/telephony") and not star.allows("PUT", "/telephony/x")
    assert Rule("GET", "/telephony*").allows("GET", "/telephony")
    assert Rule("GET", "/*").allows("GET", "/me")
    assert Rule("GET", "/telephony").allows("GET", "/telephony")
    assert not Rule("GET", "/telephony").allows("GET", "/telephony/x")


def test_full_urls_accept_the_default_port_spelling() -> None:
    assert full_urls("https", "api.ovh.test", "/1.0/x?a=1") == [
        "https://api.ovh.test/1.0/x?a=1",
        "https://api.ovh.test:443/1.0/x?a=1",
    ]
    assert full_urls("https", "api.ovh.test:443", "/1.0/x") == [
        "https://api.ovh.test:443/1.0/x",
        "https://api.ovh.test/1.0/x",
    ]
    assert full_urls("https", "localhost:8443", "/1.0/x") == ["https://localhost:8443/1.0/x"]


# ---------------------------------------------------------------- bad requests


def test_invalid_urls(h: Harness) -> None:
    client = h.client()
    for path in ("/telephony/x/y", f"/telephony/{BA}/line/1001/options/nope", "/me"):
        with pytest.raises(ResourceNotFoundError, match=r"Got an invalid \(or empty\) URL"):
            client.get(path)
    with pytest.raises(ResourceNotFoundError):
        client.delete(f"/telephony/{BA}/line/1001/options")
    resp = requests.get(f"https://localhost:{h.port}/2.0/telephony", verify=str(h.ca), timeout=10)
    assert resp.status_code == 404 and resp.headers["X-Ovh-QueryId"]


def _raw(h: Harness, data: bytes) -> bytes:
    context = ssl.create_default_context(cafile=str(h.ca))
    with (
        socket.create_connection(("127.0.0.1", h.port), timeout=10) as plain,
        context.wrap_socket(plain, server_hostname="localhost") as sock,
    ):
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_malformed_http_gets_json_not_a_traceback(h: Harness) -> None:
    answer = _raw(h, b"GARBAGE\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"X-Ovh-QueryId" in head and json.loads(body)["class"] == "Client::BadRequest"
    answer = _raw(h, b"PUT /1.0/telephony HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 ")
    big = b"x" * (64 * 1024 + 1)
    head = b"PUT /1.0/telephony HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(big)
    assert _raw(h, head + big).startswith(b"HTTP/1.1 413 ")


def test_store_failure_is_a_json_500(tls: tuple[Path, Path, Path], tmp_path: Path) -> None:
    for h in serve(KamailioStore(tmp_path / "no-such-ctl"), tls):
        with pytest.raises(APIError) as err:
            h.client().get(f"/telephony/{BA}/line/1001/options")
        assert err.value.response.status_code == 500
        assert err.value.response.json()["message"] == "Internal server error"
        assert any("registrar" in line for line in h.logs)


# ---------------------------------------------------------------- htable parsing


def test_parse_htable_dump_of_kamailio_5_6_3() -> None:
    assert parse_htable_dump(OPTS_DUMP) == {
        "1001::doNotDisturb": "true",
        "1001::forwardUnconditionalNumber": "0612345678",
        "1002::forwardNoReplyDelay": "30",
        "1001::lockOutCallPassword": "",
        "1001::forwardUnconditional": "true",
        "1002::callWaiting": "0",
    }
    regs = parse_htable_dump(REGS_DUMP)
    assert len(regs) == 3
    assert parse_reg("1002::1764213001.5", regs["1002::1764213001.5"]) == (
        "1002",
        {
            "time": "1764213001.5",
            "ip": "100.64.66.2",
            "port": "40002",
            "local_ip": "10.66.0.12",
            "local_port": "5060",
            "domain": "sip.ovh.test",
            "user_agent": "Cisco/SPA504G-7.6.2c; (lab;x)",
        },
    )
    assert parse_htable_dump("") == {}  # an empty table prints nothing
    # a value that contained a newline, and one with leading/trailing spaces
    odd = "{\n\tslot: {\n\t\t{\n\t\t\tname: k\n\t\t\tvalue: x\ny\n\t\t\ttype: str\n\t\t}\n"
    odd += "\t\t{\n\t\t\tname: s\n\t\t\tvalue:   a  \n\t\t\ttype: str\n\t\t}\n\t}\n}\n"
    assert parse_htable_dump(odd) == {"k": "x\ny", "s": "  a  "}


def test_parse_reg_rejects_malformed_rows() -> None:
    assert parse_reg("1001::notatime", "a;b;c;d;e;f") is None
    assert parse_reg("1001", "a;b;c;d;e;f") is None
    assert parse_reg("1001::1.5", "a;b;c") is None


def test_options_from_a_captured_dump(h: Harness) -> None:
    for key, value in parse_htable_dump(OPTS_DUMP).items():
        line, _, name = key.partition("::")
        h.store.set_option(line, name, value)
    opts = h.client().get(f"/telephony/{BA}/line/1002/options")
    assert opts["callWaiting"] is False and opts["forwardNoReplyDelay"] == 30
    opts = h.client().get(f"/telephony/{BA}/line/1001/options")
    assert opts["forwardUnconditional"] is True and opts["lockOutCallPassword"] is None


# ---------------------------------------------------------------- the real registrar's htables

KAMAILIO_CFG = """#!KAMAILIO
debug=2
log_stderror=yes
children=1
auto_aliases=no
listen=udp:127.0.0.1:{port}
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "ctl.so"
loadmodule "htable.so"
modparam("ctl", "binrpc", "unix:{ctl}")
modparam("htable", "htable", "opts=>size=4;")
modparam("htable", "htable", "regs=>size=4;")
request_route {{
    sl_send_reply("200", "OK");
    exit;
}}
"""


@pytest.fixture
def kamailio(tmp_path: Path) -> Iterator[Path]:
    """A throw-away Kamailio on 127.0.0.1 with the opts and regs htables; its ctl socket."""
    if not (shutil.which("kamailio") and shutil.which("kamcmd")):
        pytest.skip("kamailio is not installed")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ctl = tmp_path / "kamailio_ctl"
    cfg = tmp_path / "kamailio.cfg"
    cfg.write_text(KAMAILIO_CFG.format(port=port, ctl=ctl))
    log = (tmp_path / "kamailio.log").open("wb")
    argv = ["kamailio", "-DD", "-E", "-m", "16", "-M", "4", "-Y", str(tmp_path), "-f", str(cfg)]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not ctl.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"kamailio did not start: {(tmp_path / 'kamailio.log').read_text()}")
            time.sleep(0.05)
        yield ctl
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # its own group: the workers too
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        log.close()


def _kamcmd(ctl: Path, *args: str) -> str:
    argv = ["kamcmd", "-s", f"unix:{ctl}", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=5, check=True).stdout


def test_kamailio_store_is_one_state_with_the_registrar(
    kamailio: Path, tls: tuple[Path, Path, Path]
) -> None:
    store = KamailioStore(kamailio)
    assert store.options("1001") == {} and store.registrations("1001") == []
    assert store.dump("nosuch") == {}  # a table the registrar does not have yet
    for h in serve(store, tls):
        client = h.client()
        path = f"/telephony/{BA}/line/1001/options"
        client.put(
            path,
            forwardUnconditional=True,
            forwardUnconditionalNumber="0612345678",  # kamcmd would make it 612345678
            lockOutCallPassword=None,  # kamcmd would make "" a 0
            forwardNoReplyDelay=25,
        )
        raw = parse_htable_dump(_kamcmd(kamailio, "htable.dump", "opts"))
        assert raw == {
            "1001::forwardUnconditional": "true",
            "1001::forwardUnconditionalNumber": "0612345678",
            "1001::lockOutCallPassword": "",
            "1001::forwardNoReplyDelay": "25",
        }
        # the registrar's own writes (a phone dialling *21*...#, an integer value)
        _kamcmd(kamailio, "htable.sets", "opts", "s:1001::doNotDisturb", "s:true")
        _kamcmd(kamailio, "htable.seti", "opts", "s:1001::callWaiting", "0")
        opts = client.get(path)
        assert opts["forwardUnconditional"] is True
        assert opts["forwardUnconditionalNumber"] == "0612345678"
        assert opts["lockOutCallPassword"] is None and opts["forwardNoReplyDelay"] == 25
        assert opts["doNotDisturb"] is True and opts["callWaiting"] is False

        value = "100.64.66.2;40001;10.66.0.11;5060;sip.ovh.test;Yealink SIP-T46S; x"
        _kamcmd(kamailio, "htable.sets", "regs", "s:1001::1764213000.123456", f"s:{value}")
        (reg,) = client.get(f"/telephony/{BA}/line/1001/lastRegistrations")
        assert reg["userAgent"] == "Yealink SIP-T46S; x" and reg["port"] == 40001
        assert reg["datetime"] == "2025-11-27T03:10:00+00:00"


# ---------------------------------------------------------------- helpers of the lab


def test_make_credentials_shape() -> None:
    cred = ovhapi.make_credentials()
    assert len(cred["application_key"]) == 16 and cred["application_key"].isalnum()
    assert len(cred["application_secret"]) == 32 and len(cred["consumer_key"]) == 32
    assert {"method": "GET", "path": "/telephony"} in cred["rules"]
    assert cred != ovhapi.make_credentials()
    Account.from_dict({"credentials": [cred], "billing_accounts": {}})


@pytest.mark.parametrize(
    "change",
    [
        {"credentials": None},
        {"credentials": [{"application_key": "a"}]},
        {
            "billing_accounts": {
                "x": {"lines": {"1": {"phone": {"brand": "b", "macAddress": "zz"}}}}
            }
        },
        {"billing_accounts": {"x": {}}},
        {"credentials": [{**ACCOUNT["credentials"][0], "rules": [{"method": "GOT", "path": "/"}]}]},
    ],
)
def test_account_validation(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Account.from_dict({**ACCOUNT, **change})


def test_make_tls_files(tmp_path: Path) -> None:
    ca, cert, key = make_tls(tmp_path, "api.ovh.test", ips=("100.64.66.1",))
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["api.ovh.test"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["100.64.66.1"]
    root = x509.load_pem_x509_certificate(ca.read_bytes())
    leaf.verify_directly_issued_by(root)
    assert not list(tmp_path.rglob("*ca*key*"))


def test_start_writes_files_and_spawns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []

    def fake_spawn(*args: Any, **kwargs: Any) -> str:
        calls.append((args, kwargs))
        return "proc"

    monkeypatch.setattr(ovhapi.procs, "spawn", fake_spawn)
    (tmp_path / "logs").mkdir()
    assert ovhapi.start("pd-prov", "100.64.66.1", tmp_path, ACCOUNT) == "proc"
    account = ovhapi.account_file(tmp_path)
    assert stat.S_IMODE(account.stat().st_mode) == 0o600
    assert json.loads(account.read_text()) == ACCOUNT
    assert ovhapi.ca_file(tmp_path).exists()
    (name, role, ns, argv, log), kwargs = calls[0]
    assert (name, role, ns, log) == ("ovhapi", "prov", "pd-prov", tmp_path / "logs/ovhapi.log")
    assert argv[1:3] == ["-m", "lab.services.ovhapi"]
    assert argv[argv.index("--ctl") + 1] == str(tmp_path / "kamailio_ctl")
    assert argv[argv.index("--listen") + 1 : argv.index("--listen") + 4] == [
        "100.64.66.1", "--port", "443",
    ]  # fmt: skip
    assert kwargs["env"]["PYTHONPATH"] == str(REPO)


def test_cli_bad_account_exits_2(tmp_path: Path, tls: tuple[Path, Path, Path]) -> None:
    _ca, cert, key = tls
    (tmp_path / "a.json").write_text("{")
    args = ["--listen", "127.0.0.1", "--port", "0", "--cert", str(cert), "--key", str(key)]
    assert main([*args, "--account", str(tmp_path / "a.json")]) == 2


def test_cli_serves(tmp_path: Path, tls: tuple[Path, Path, Path]) -> None:
    """``python -m lab.services.ovhapi`` as the lab runs it (memory store), killed by PID."""
    ca, cert, key = tls
    account = tmp_path / "account.json"
    account.write_text(json.dumps(ACCOUNT))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    argv = [
        sys.executable,
        "-m",
        "lab.services.ovhapi",
        "--listen",
        "127.0.0.1",
        "--port",
        str(port),
        "--cert",
        str(cert),
        "--key",
        str(key),
        "--account",
        str(account),
    ]
    log = (tmp_path / "ovhapi.log").open("wb")
    proc = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        name = f"phonediag-cli-{port}"
        ovh.client.ENDPOINTS[name] = f"https://localhost:{port}/1.0"
        client = ovh.Client(
            endpoint=name, application_key=AK, application_secret=AS, consumer_key=CK
        )
        client._session.verify = str(ca)
        assert client.get("/telephony") == [BA, BA2]
    finally:
        ovh.client.ENDPOINTS.pop(f"phonediag-cli-{port}", None)
        proc.terminate()
        proc.wait(5)
        log.close()
    text = (tmp_path / "ovhapi.log").read_text()
    assert "GET /1.0/telephony 200" in text and "Traceback" not in text
