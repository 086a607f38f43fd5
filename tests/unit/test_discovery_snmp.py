"""The SNMP sweep against real SNMP agents on 127.0.0.x (pysnmp's command responder, see
snmpagent.py): v2c and v3, ENTITY-MIB walked or read with GETs when walks are refused,
vendor identity objects, values of the wrong type or absurd length, secrets kept out."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from agent import config as configmod
from agent import identify
from agent.config import Config
from agent.discovery import Context, snmp
from agent.model import Device
from agent.net.snmp import SnmpClient, V3User, printable, text
from agent.scope import ScopedNetwork
from tests.unit import snmpagent
from tests.unit.snmpagent import V3_AUTH, V3_PRIV, V3_USER, Agent, integer, octets, oid

ENT = "1.3.6.1.2.1.47.1.1.1.1"
SYS = "1.3.6.1.2.1.1"
HT802 = Path(__file__).parent / "vendors" / "data" / "grandstream" / "ht802.snmprec"


def context(**overrides) -> Context:
    cfg = Config(sweep_timeout=0.4, mdns_window=2.0, snmp_communities=[snmpagent.COMMUNITY])
    for k, v in overrides.items():
        setattr(cfg, k, v)
    net = ScopedNetwork(ipaddress.ip_network("127.0.0.0/28"), "lo", "127.0.0.1")
    return Context(cfg, [net])


def phone_rows(descr: str, object_id: str, **entity: str) -> dict:
    rows = {
        f"{SYS}.1.0": octets(descr),
        f"{SYS}.2.0": oid(object_id),
        f"{SYS}.5.0": octets("desk-1"),
        f"{ENT}.5.1": integer(3),  # chassis
    }
    cols = {"model": 13, "software": 10, "serial": 11, "mfg": 12}
    rows.update({f"{ENT}.{cols[k]}.1": octets(v) for k, v in entity.items()})
    return rows


@pytest.fixture
async def agents():
    started: list[Agent] = []

    def start(ip: str, rows: dict, **kw) -> Agent:
        a = Agent(ip, rows, **kw)
        started.append(a)
        return a

    yield start
    for a in started:
        a.close()


def by_ip(sightings):
    return {s.ip: s for s in sightings if s.method == "snmp"}


async def test_sweep_reads_system_entity_and_identity_objects(agents):
    yealink = agents(
        "127.0.0.2",
        phone_rows(
            "Yealink SIP-T46S 66.86.0.15",
            ".1.3.6.1.4.1.37459.2.1.46",
            model="SIP-T46S",
            software="66.86.0.15",
            serial="1234",
            mfg="Yealink",
        ),
    )
    # The LibreNMS HT802 recording: generic net-snmp sysObjectID, firmware in GS-HT8XX-MIB
    agents("127.0.0.3", snmpagent.load_snmprec(HT802.read_text()))
    found = by_ip(await snmp.discover(context()))
    assert set(found) == {"127.0.0.2", "127.0.0.3"}
    y = found["127.0.0.2"].attrs
    assert y["sysDescr"] == "Yealink SIP-T46S 66.86.0.15"
    assert y["sysObjectID"] == ".1.3.6.1.4.1.37459.2.1.46"  # numeric, not a MIB name
    assert (y["entModelName"], y["entSoftwareRev"], y["entMfgName"]) == (
        "SIP-T46S",
        "66.86.0.15",
        "Yealink",
    )
    assert y["version"] == "2c"
    assert found["127.0.0.3"].attrs["gsVersionProg"] == "1.0.63.3"
    # a phone: its LLDP table is not read
    assert not yealink.walked("1.0.8802")
    d = Device("127.0.0.3", evidence={"snmp": found["127.0.0.3"].attrs})
    identify.identify(d)
    assert (d.vendor, d.model, d.firmware) == ("grandstream", "HT8XX", "1.0.63.3")


async def test_an_agent_that_refuses_walks_is_read_with_gets(agents):
    snom = agents(
        "127.0.0.4",
        phone_rows("snom D785", ".1.3.6.1.4.1.1526.11", model="D785", mfg="Snom", software="10.1"),
        refuse_walks=True,
    )
    found = by_ip(await snmp.discover(context()))
    attrs = found["127.0.0.4"].attrs
    assert (attrs["entModelName"], attrs["entMfgName"], attrs["entSoftwareRev"]) == (
        "D785",
        "Snom",
        "10.1",
    )
    row_one = {f"{ENT}.{c}.1" for c in (13, 10, 11, 12)}
    assert any(kind == "get" and row_one <= set(oids) for kind, oids in snom.asked)
    d = Device("127.0.0.4", evidence={"snmp": attrs})
    identify.identify(d)
    assert (d.vendor, d.model, d.firmware) == ("snom", "D785", "10.1")


async def test_v3_user_after_the_communities_and_no_secret_in_sightings(agents):
    agents("127.0.0.5", phone_rows("Fanvil X4U", ".1.3.6.1.4.1.99999"), community=None, v3=True)
    ctx = context(
        snmp_v3_user=V3_USER,
        snmp_v3_auth_key=V3_AUTH,
        snmp_v3_priv_key=V3_PRIV,
        snmp_v3_auth_protocol="SHA",
        snmp_v3_priv_protocol="AES",
    )
    sightings = await snmp.discover(ctx)
    found = by_ip(sightings)
    assert found["127.0.0.5"].attrs["sysDescr"] == "Fanvil X4U"
    assert found["127.0.0.5"].attrs["version"] == "3"
    dump = repr(sightings) + repr(ctx.config)
    for secret in (snmpagent.COMMUNITY, V3_AUTH, V3_PRIV):
        assert secret not in dump


async def test_wrong_v3_key_or_community_finds_nothing(agents):
    agents("127.0.0.5", phone_rows("x", ".1.3.6.1.4.1.1"), community="other", v3=True)
    ctx = context(snmp_v3_user=V3_USER, snmp_v3_auth_key="not-the-key", snmp_v3_priv_key=V3_PRIV)
    assert by_ip(await snmp.discover(ctx)) == {}


async def test_wrong_types_and_absurd_lengths_never_crash(agents):
    rows = {
        f"{SYS}.1.0": integer(42),  # sysDescr as a number
        f"{SYS}.2.0": octets(b"\x00\xff" * 40),  # sysObjectID as binary
        f"{SYS}.5.0": octets("n" * 20000),  # sysName far too long
        f"{ENT}.5.1": octets("chassis?"),
        f"{ENT}.13.1": integer(7),  # model as a number: ignored
        f"{ENT}.12.1": octets(b"\xc3\x28\x00garbage"),  # invalid UTF-8: ignored
        f"{ENT}.13.2": octets("Real-Model"),
        f"{ENT}.10.2": oid("1.2.3"),
    }
    agents("127.0.0.6", rows)
    attrs = by_ip(await snmp.discover(context()))["127.0.0.6"].attrs
    assert attrs["sysDescr"] == "42"
    assert len(attrs["sysName"]) <= snmp.MAX_ATTR
    assert attrs["entModelName"] == "Real-Model"
    assert "entMfgName" not in attrs


async def test_a_looping_agent_cannot_hold_the_walk(agents):
    agents("127.0.0.7", phone_rows("Linux box", ".1.3.6.1.4.1.8072.3.2.10"), loop_at=ENT)
    client = SnmpClient(timeout=0.4)
    try:
        table = await client.walk("127.0.0.7", snmpagent.COMMUNITY, [f"{ENT}.13"], 100, 2.0)
    finally:
        client.close()
    assert table is not None
    assert len(table[f"{ENT}.13"]) <= 1


async def test_walk_is_bounded_in_rows(agents):
    rows = {f"{ENT}.13.{i}": octets(f"m{i}") for i in range(1, 400)}
    agents("127.0.0.8", rows)
    client = SnmpClient(timeout=0.4)
    try:
        table = await client.walk("127.0.0.8", snmpagent.COMMUNITY, [f"{ENT}.13"], 25, 5.0)
        none = await client.walk("127.0.0.9", snmpagent.COMMUNITY, [f"{ENT}.13"], 25, 1.0)
    finally:
        client.close()
    assert table is not None and len(table[f"{ENT}.13"]) == 25
    assert none is None  # nobody there: no answer, no table


@pytest.mark.parametrize(
    "rows, expected",
    [
        # the first chassis row wins over an earlier module
        (
            {
                f"{ENT}.5": {"1": 9, "2": 3},
                f"{ENT}.13": {"1": b"module", "2": b"CP-8851"},
                f"{ENT}.10": {"2": b"11.0.1"},
            },
            {"entModelName": "CP-8851", "entSoftwareRev": "11.0.1"},
        ),
        # no class column: the first row naming a model
        ({f"{ENT}.13": {"3": b"", "4": b"SPA112"}}, {"entModelName": "SPA112"}),
        ({f"{ENT}.13": {"x.y": 5, "1": None}}, {}),
        ({}, {}),
    ],
)
def test_entity_row(rows, expected):
    assert snmp.entity_row(rows) == expected


def test_value_rendering():
    assert text(b"Yealink\x00") == "Yealink"
    assert text(bytes.fromhex("001565aabbcc")) == "00:15:65:aa:bb:cc"
    assert text(b"\x00\x04\x13\x01\x02\x03") == "00:04:13:01:02:03"  # ASCII-range MAC
    assert printable(b"\x00\x04\x13\x01\x02\x03") is None
    assert printable(5) is None and printable(None) is None
    assert printable(b"x" * 1000, 10) == "x" * 10


def test_auths_order_and_secrets_hidden():
    cfg = Config(snmp_communities=["public", "private"], snmp_v3_user="u", snmp_v3_auth_key="k" * 8)
    auths = snmp.auths(cfg)
    assert auths[:2] == ["public", "private"]
    assert isinstance(auths[2], V3User) and "k" * 8 not in repr(auths[2])
    assert "k" * 8 not in repr(cfg)


@pytest.mark.parametrize(
    "body, message",
    [
        ('v3_auth_key = "12345678"', "need snmp.v3_user"),
        ('v3_user = "u"\nv3_priv_key = "12345678"', "needs snmp.v3_auth_key"),
        ('v3_user = "u"\nv3_auth_key = "short"', "at least 8"),
        ('v3_user = "u"\nv3_auth_protocol = "ROT13"', "v3_auth_protocol must be one of"),
        ('v3_user = "u"\nv3_priv_protocol = "blowfish"', "v3_priv_protocol must be one of"),
        ('v3_user = ""', "must not be empty"),
        ("v3_user = 5", "must be of type str"),
    ],
)
def test_v3_config_errors_name_the_key_never_the_secret(tmp_path, body, message):
    f = tmp_path / "c.toml"
    f.write_text(f"[snmp]\n{body}\n")
    with pytest.raises(configmod.ConfigError, match=message) as e:
        configmod.load(f)
    assert "12345678" not in str(e.value) and "short" not in str(e.value)


def test_v3_config_loads(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text(
        '[snmp]\nv3_user = "ops"\nv3_auth_key = "authkey-1"\nv3_priv_key = "privkey-1"\n'
        'v3_auth_protocol = "sha256"\nv3_priv_protocol = "aes256"\n'
        "[discovery]\npnp_window = 5\n"
    )
    cfg = configmod.load(f)
    assert (cfg.snmp_v3_user, cfg.snmp_v3_auth_protocol, cfg.snmp_v3_priv_protocol) == (
        "ops",
        "SHA256",
        "AES256",
    )
    assert cfg.pnp_window == 5.0
    assert "authkey-1" not in repr(cfg) and "privkey-1" not in repr(cfg)
