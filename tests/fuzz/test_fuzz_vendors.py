"""Vendor answers (agent/vendors/*.py): what a phone's web server sends back, INI, HTML,
XML and JSON. Each parsing helper returns what it documents for any input (or
HttpError where it says so); each adapter's ``read`` against a hostile phone (real
captures mutated, garbage, any status, redirects, lost connections) returns catalogue
facts of the right types or raises HttpError, nothing else: probes/device.py turns that
into an error entry, anything else would lose every phone's facts."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
from pathlib import Path
from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st

from agent import catalog
from agent.config import Config, Credential
from agent.model import Device
from agent.net.http import HttpError, Reply, Session
from agent.vendors import base, cisco, fanvil, gigaset, grandstream, poly, snom, yealink
from tests.fuzz.strategies import hostile_bytes, hostile_text, mutated_bytes, mutated_text, scaled

DATA = Path(__file__).parents[1] / "unit/vendors/data"
TYPES = {"bool": bool, "int": int, "float": (float, int), "str": str}


def _captures(vendor: str) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in sorted((DATA / vendor).iterdir())
        if p.is_file() and p.name != "SOURCES.md"
    }


CAPTURES = {v: _captures(v) for v in ("cisco", "fanvil", "gigaset", "grandstream", "poly",
                                      "snom", "yealink")}  # fmt: skip


def samples(vendor: str, *names: str) -> st.SearchStrategy[bytes]:
    """The vendor's captures whose names start with one of ``names`` (all: none given)."""
    files = CAPTURES[vendor]
    chosen = [b for n, b in files.items() if not names or n.startswith(names)]
    return st.sampled_from(chosen)


def text_of(seeds: st.SearchStrategy[bytes]) -> st.SearchStrategy[str]:
    """A capture as text, mutated or not, or hostile text."""
    texts = seeds.map(lambda b: b.decode("utf-8", errors="replace"))
    return st.one_of(texts, mutated_text(texts), hostile_text)


def reply_of(seeds: st.SearchStrategy[bytes]) -> st.SearchStrategy[Reply]:
    bodies = st.one_of(seeds, mutated_bytes(seeds), hostile_bytes)
    return st.builds(
        lambda body, ctype: Reply(200, {"content-type": ctype}, body, "http://10.0.0.9/x"),
        bodies,
        st.sampled_from(("text/plain", "text/html", "application/json", "text/xml")),
    )


def check_values(values: Any) -> None:
    """Catalogue facts of the catalogue's types, as an adapter must return them."""
    assert isinstance(values, dict)
    assert set(values) <= set(base.PHONE_KEYS), set(values) - set(base.PHONE_KEYS)
    for key, value in values.items():
        wanted = TYPES[catalog.lookup(key).type]
        assert isinstance(value, wanted) and not (wanted is int and isinstance(value, bool)), (
            f"{key} = {value!r}"
        )


def parsed(fn, *args) -> Any:
    """``fn(*args)``: what it returns, or the HttpError it raised (and nothing else)."""
    try:
        return fn(*args)
    except HttpError as e:
        return e


now = st.floats(0, 4e9)

# ------------------------------------------------------------------ Yealink


@given(text_of(samples("yealink", "phonecfg")))
def test_yealink_ini(text: str) -> None:
    for section in yealink.parse_ini(text).values():
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in section.items())


@given(reply_of(samples("yealink", "phonecfg")))
def test_yealink_phonecfg(reply: Reply) -> None:
    got = parsed(yealink.parse_phonecfg, reply)
    if not isinstance(got, HttpError):
        check_values(got)


@given(text_of(samples("yealink", "status", "settings", "account", "login")))
def test_yealink_pages(page: str) -> None:
    for parse in (yealink.parse_status, yealink.parse_autop, yealink.parse_account):
        check_values(parse(page))
    for name in ("Expires1", "AutoProvisionServerURL", "Transport1"):
        value = yealink.field(page, name)
        assert value is None or isinstance(value, str)


# ------------------------------------------------------------------ Cisco


@given(reply_of(samples("cisco")))
def test_cisco_documents(reply: Reply) -> None:
    try:
        doc = cisco._flatten(reply.xml())
    except HttpError:
        return
    assert all(isinstance(v, list) for v in doc.values())
    check_values(cisco.Cisco()._config(doc))
    check_values(cisco.Cisco()._status(doc, doc, 1.7e9))


times = st.one_of(
    hostile_text,
    st.from_regex(r"\d{1,2}/\d{1,2}/\d{4}\s+\d{1,2}:\d{2}:\d{2}", fullmatch=True),
    st.from_regex(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}", fullmatch=True),
)
zones = st.one_of(st.from_regex(r"(GMT|UTC)([+-]\d{1,2}(:\d{2})?)?", fullmatch=True), hostile_text)


@given(times, zones, st.sampled_from(("yes", "no", "")), hostile_text, now)
def test_cisco_clock(text: str, zone: str, dst: str, rule: str, when: float) -> None:
    config = {"Time_Zone": [zone], "Daylight_Saving_Time_Enable": [dst],
              "Daylight_Saving_Time_Rule": [rule]}  # fmt: skip
    epoch = cisco._phone_epoch(text, config, when)
    assert epoch is None or isinstance(epoch, float | int)


# ------------------------------------------------------------------ Snom


@given(reply_of(samples("snom", "settings")))
def test_snom_settings(reply: Reply) -> None:
    got = parsed(snom.settings, reply)
    if not isinstance(got, HttpError):
        check_values(snom.parse_settings(got))


@given(st.dictionaries(st.sampled_from(["user_expiry1", "user_host1", "user_outbound1",
       "dnd_mode", "fwd_all_enabled1", "redirect_event", "setting_server"]) | hostile_text,
       hostile_text, max_size=10))  # fmt: skip
def test_snom_settings_values(settings: dict[str, str]) -> None:
    check_values(snom.parse_settings(settings))
    query = snom.save_query(settings, {"phone.dnd": True}) if settings else {}
    assert all(isinstance(v, str) for v in query.values())


@given(text_of(samples("snom", "info")))
def test_snom_info(page: str) -> None:
    check_values(snom.parse_info(page))


# ------------------------------------------------------------------ Gigaset


@given(reply_of(samples("gigaset")))
def test_gigaset_pages(reply: Reply) -> None:
    page = gigaset._parse(reply)
    check_values(gigaset._registration(page.rows))
    check_values(gigaset._voip(page.fields))
    gigaset._after_label(page.rows, gigaset._IP_LABELS)
    assert isinstance(gigaset._login_error(reply.text), int)
    assert isinstance(gigaset._page_name(reply), str)


@given(st.dictionaries(st.sampled_from(["reg_refresh_time", "outbound_mode", "outbound_proxy",
       "outbound_port", "sip_user_id", "sip_domain"]), hostile_text))  # fmt: skip
def test_gigaset_form_values(fields: dict[str, str]) -> None:
    check_values(gigaset._voip(fields))


# ------------------------------------------------------------------ Poly


@given(reply_of(samples("poly")), st.sampled_from((200, 401, 403, 404, 500)))
def test_poly_envelope(reply: Reply, status: int) -> None:
    reply.status = status
    got = parsed(poly.envelope, reply)
    if isinstance(got, HttpError):
        return
    code, data = got
    check_values(poly.parse_lines(code, data))
    check_values(poly.parse_network(code, data))
    if isinstance(data, dict):
        check_values(poly.parse_config({k: str(v) for k, v in data.items()}))


@given(st.dictionaries(st.sampled_from(poly.DOCUMENTED + poly.USER_FORWARD), hostile_text))
def test_poly_config_values(values: dict[str, str]) -> None:
    check_values(poly.parse_config(values))


# ------------------------------------------------------------------ Grandstream


@given(reply_of(samples("grandstream", "values", "login", "access")))
def test_grandstream_values(reply: Reply) -> None:
    got = parsed(grandstream._json, reply)
    if isinstance(got, dict) and isinstance(got.get("body"), dict):
        check_values(grandstream.parse_values(got["body"]))
    token = grandstream._token(reply)
    assert token is None or isinstance(token, str)


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), hostile_text)


@given(st.dictionaries(st.sampled_from(grandstream.KEYS) | hostile_text, json_scalars))
def test_grandstream_body(body: dict[str, Any]) -> None:
    check_values(grandstream.parse_values(body))


# ------------------------------------------------------------------ Fanvil


@given(reply_of(samples("fanvil", "config")))
def test_fanvil_config(reply: Reply) -> None:
    got = parsed(fanvil.parse_config, reply)
    if not isinstance(got, HttpError):
        check_values(fanvil.config_values(got))


@given(text_of(samples("fanvil", "information", "login", "frameset")), now)
def test_fanvil_information(page: str, when: float) -> None:
    cfg = {"time zone name": "UTC+1", "dst type": "1", "dst min offset": "60"}
    check_values(fanvil.parse_information(page, cfg, when))


@given(st.dictionaries(st.sampled_from(["sip1 register ttl", "sip1 transport", "sip1 proxy addr",
       "sip1 proxy port", "sip1 always fwd", "sip1 always fwd num", "sip1 enable dnd",
       "time zone name", "dst type", "dst min offset", "flash server ip"]), hostile_text),
       times, now)  # fmt: skip
def test_fanvil_config_values(cfg: dict[str, str], clock: str, when: float) -> None:
    check_values(fanvil.config_values(cfg))
    epoch = fanvil._phone_epoch(clock, cfg, when)
    assert epoch is None or isinstance(epoch, float | int)


# ------------------------------------------------------------------ a whole read, hostile phone

# Which captures answer which request (a substring of the URL), per vendor; the first
# that matches wins, anything else gets any of the vendor's captures.
ROUTES = {
    "yealink": {"phonecfg": ("phonecfg",), "loginForm": ("login_form",),
                "q=login": ("login_done", "login_error"), "p=status": ("status",),
                "settings-autop": ("settings",), "account-register": ("account",)},
    "cisco": {"status.xml": ("status",), "spacfg.xml": ("spacfg", "cfg_"),
              "config.xml": ("config",)},
    "snom": {"settings.xml": ("settings",), "info.htm": ("info",)},
    "poly": {"lineInfo": ("line_info", "status_"), "network/info": ("network",),
             "config/get": ("config_get", "status_")},
    "grandstream": {"access": ("access",), "dologin": ("login",), "values.get": ("values",)},
    "gigaset": {"login.html": ("home", "login"), "status_device": ("status",),
                "connections": ("connections",), "voip": ("voip",),
                "admin_special": ("admin",), "logout": ("home",)},
    "fanvil": {"information.htm": ("information",), "config.txt": ("config",),
               "/": ("login_form", "frameset", "login_failed", "login_locked")},
}  # fmt: skip
CHALLENGES = ('Basic realm="VoIP Phone"', 'Digest realm="x", nonce="1", qop="auth"', "")
ETAGS = ("home.html", "security_advice.html", "login.html", "status_device.html")
DATES = st.one_of(
    st.floats(0, 4e9).map(lambda t: email.utils.formatdate(t, usegmt=True)),
    hostile_text,
)


class HostilePhone:
    """An httpx transport whose every answer is drawn: the right capture (or another, or
    garbage), mutated or not; any status; odd headers; a redirect; a lost connection."""

    def __init__(self, data: st.DataObject, vendor: str) -> None:
        self.data, self.vendor, self.requests = data, vendor, 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        draw = self.data.draw
        if draw(st.integers(0, 30)) == 0:
            raise draw(st.sampled_from((httpx.ConnectError, httpx.ReadTimeout)))("drawn")
        url = str(request.url)
        names = next((n for key, n in ROUTES[self.vendor].items() if key in url), ())
        seeds = samples(self.vendor, *names) if names else samples(self.vendor)
        body = draw(st.one_of(seeds, mutated_bytes(seeds), hostile_bytes, st.just(b"")))
        status = draw(st.sampled_from((200,) * 12 + (302, 401, 403, 404, 423, 429, 500, 503)))
        headers = {"Content-Type": draw(st.sampled_from(("text/html", "application/json",
                                                          "text/xml", "text/plain")))}  # fmt: skip
        if draw(st.booleans()):
            headers["Date"] = draw(DATES)
        if draw(st.booleans()):
            headers["Set-Cookie"] = draw(
                st.sampled_from(("JSESSIONID=5f3a9c0d; Path=/", "sid=1", "auth=x; JSESSIONID"))
            )
        if draw(st.booleans()):
            headers["ETag"] = draw(st.sampled_from(ETAGS))
        if status == 302 or draw(st.integers(0, 20)) == 0:
            headers["Location"] = draw(st.sampled_from(("/", "http://10.0.0.9/x", "//evil/",
                                                        "http://203.0.113.1/")))  # fmt: skip
        if status == 401:
            headers["WWW-Authenticate"] = draw(st.sampled_from(CHALLENGES))
        safe = {k: v.encode("utf-8", "replace") for k, v in headers.items()}
        return httpx.Response(status, headers=safe, content=body)


class FakeSnmp:
    """Grandstream's SNMP fallback, answering drawn values (no network)."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    async def get(self, ip: str, community: str, oids: list[str]) -> dict[str, str] | None:
        values = st.one_of(st.sampled_from(("0", "1", "", "Registered", "1001")), hostile_text)
        return self.data.draw(st.none() | st.dictionaries(st.sampled_from(oids), values))

    def close(self) -> None:
        pass


ADAPTERS = ("yealink", "cisco", "snom", "gigaset", "poly", "grandstream", "fanvil")


@scaled(0.5)
@given(st.sampled_from(ADAPTERS), st.data())
def test_adapter_read_against_a_hostile_phone(vendor: str, data: st.DataObject) -> None:
    phone = HostilePhone(data, vendor)
    session = Session(
        "10.0.0.9", [Credential("admin", "admin"), Credential("user", "1234")],
        timeout=1.0, transport=httpx.MockTransport(phone),
    )  # fmt: skip
    device = Device("10.0.0.9", vendor=vendor, model="SPA112", found_by=["sip", "snmp"])
    adapter = {
        "yealink": yealink.ADAPTER, "cisco": cisco.ADAPTER, "snom": snom.ADAPTER,
        "gigaset": gigaset.ADAPTER, "poly": poly.ADAPTER, "fanvil": fanvil.ADAPTER,
        "grandstream": grandstream.Grandstream(snmp=lambda timeout: FakeSnmp(data)),
    }[vendor]  # fmt: skip
    ctx = base.Context(device, Config(), session, now=1.7e9)
    try:
        values = asyncio.run(asyncio.wait_for(adapter.read(ctx), 10))
    except HttpError:
        return
    check_values(values)
    assert phone.requests <= 40  # a bounded number of requests, whatever it answers


# ------------------------------------------------------------------ worst cases and regressions


def _reply(body: bytes) -> Reply:
    return Reply(200, {"content-type": "text/xml"}, body, "http://10.0.0.9/admin/status.xml")


def test_deeply_nested_xml_is_read_without_recursion() -> None:
    """Regression: Cisco's document flattening recursed once per nesting level, so a
    phone answering 100,000 nested elements (well under the 1 MB a reply may hold) raised
    RecursionError out of the adapter, losing every phone's facts."""
    body = b"<flat-status>" + b"<a>" * 100_000 + b"x" + b"</a>" * 100_000 + b"</flat-status>"
    doc = cisco._flatten(_reply(body).xml())
    assert doc["a"] == ["x"]


def test_snom_nested_settings_cost_little() -> None:
    body = b"<phone-settings>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</phone-settings>"
    assert snom.settings(_reply(body)) == {}


# 40 KB each (a reply may hold 1 MB); an open tag or comment repeated made Python's
# HTMLParser quadratic (Fanvil, Gigaset): "open tags" cost 7 s at 24 KB, 19 s at 40 KB.
HOSTILE_PAGES = {
    "tags": "<" * 40_000,
    "open tags": "<a " * 13_000,
    "open comments": "<!--" * 10_000,
    "quotes": 'g_dataAccStatus ParseJSON("' + '\\"' * 20_000,
    "inputs": '<input name="Expires1" value="' * 1_300,
    "rows": "<tr><td>" * 5_000,
    "marked sections": "<![x[" * 8_000,
}


def test_hostile_pages_cost_little() -> None:
    from tests.fuzz.strategies import bounded

    for page in HOSTILE_PAGES.values():
        bounded(yealink.parse_status, page, seconds=0.5, megabytes=64)
        bounded(yealink.parse_account, page, seconds=0.5, megabytes=64)
        bounded(snom.parse_info, page, seconds=0.5, megabytes=64)
        bounded(fanvil.parse_information, page, {}, 0.0, seconds=0.5, megabytes=64)
        reply = Reply(200, {}, page.encode(), "http://10.0.0.9/")
        bounded(gigaset._parse, reply, seconds=0.5, megabytes=64)


def test_regressions() -> None:
    """Found by the fuzzer: a phone's answer that raised something else than HttpError
    (probes/device.py only expects HttpError: anything else lost every phone's facts)."""
    # a digit int() does not read ("²".isdigit() is true), a number longer than int() reads
    for text in ("²", "9" * 5000):
        assert snom.parse_settings({"user_expiry": text}) == {}
        assert gigaset._voip({"reg_refresh_time": text}) == {}
        assert "sip.register_expires_s" not in poly.parse_config(
            {"voIpProt.server.1.expires": text}
        )
        assert "sip.register_expires_s" not in grandstream.parse_values({"P130": "0", "P32": text})
        assert fanvil.config_values({"sip1 register ttl": text}) == {}
        assert "sip.register_expires_s" not in yealink.parse_account(
            f'<input name="Expires1" value="{text}">'
        )
        assert "sip.register_expires_s" not in cisco.Cisco()._config({"Register_Expires": [text]})
        dst = {"time zone name": "UTC", "dst type": "1", "dst min offset": text}
        assert fanvil._phone_epoch("2024-05-01 10:00:00", dst, 0.0) is not None
    assert gigaset._login_error("var error = " + "9" * 5000 + ";") == 0
    # year 0 on the phone's clock
    assert cisco._phone_epoch("1/1/0000 00:00:00", {"Time_Zone": ["GMT"]}, 0.0) is None
    assert fanvil._phone_epoch("0000-01-01 00:00", {"time zone name": "UTC"}, 0.0) is None
    # markup Python's HTML parser refuses with an AssertionError
    assert fanvil.parse_information("<![foo[ x ]]><![0", {}, 0.0) == {}
    # an XML declaration naming an unknown encoding
    with contextlib.suppress(HttpError):
        _reply(b'<?xml version="1.0" encoding="T"?><flat-status/>').xml()
