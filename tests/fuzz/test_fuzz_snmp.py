"""SNMP answers (agent/net/snmp.py, the project's own BER codec) and what is made of the
values (agent/discovery/snmp.py, lldp.py; Grandstream's MIB). Decoding returns an Answer
or None, never raises; a well-formed answer decodes to what was encoded; a table walk
ends whatever an agent answers; the tables' parsers accept values of any type."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyasn1.type import univ
from pysnmp.proto import rfc1902, rfc1905

from agent.discovery import lldp
from agent.discovery import snmp as snmp_discovery
from agent.net import snmp
from agent.net.snmp import _length, _tlv, encode_oid
from agent.vendors import grandstream
from tests.fuzz.strategies import KIB, bounded, hostile_bytes, mutated_bytes

CAPTURE = Path(__file__).parents[1] / "unit/vendors/data/grandstream/ht802.snmprec"
TAGS = (0x02, 0x04, 0x05, 0x06, 0x40, 0x41, 0x42, 0x43, 0x44, 0x46, 0x47, 0x80, 0x81, 0x82)

oids = st.builds(
    lambda first, second, rest: (first, second, *rest),
    st.integers(0, 2),
    st.integers(0, 39),
    st.lists(st.integers(0, 2**32), max_size=20),
)


def _capture() -> list[tuple[tuple[int, ...], int, bytes]]:
    """The HT802's recorded var-binds (snmpsim format) as (name, tag, value bytes)."""
    out = []
    for line in CAPTURE.read_text().splitlines():
        name, tag, value = line.split("|", 2)
        oid = tuple(int(p) for p in name.split("."))
        if tag == "4x":
            out.append((oid, 0x04, bytes.fromhex(value)))
        elif tag == "4":
            out.append((oid, 0x04, value.encode()))
        elif tag == "6":
            out.append((oid, 0x06, encode_oid(tuple(map(int, value.split("."))))[2:]))
        elif tag == "2":
            out.append((oid, 0x02, int(value).to_bytes(4, "big", signed=True)))
    return out


RECORDED = _capture()

values = st.one_of(
    st.sampled_from([(t, v) for _, t, v in RECORDED]),
    st.tuples(st.sampled_from(TAGS), st.binary(max_size=40)),
    st.tuples(st.just(0x06), oids.map(lambda o: encode_oid(o)[2:])),
)
varbinds = st.lists(
    st.one_of(
        st.sampled_from([(n, (t, v)) for n, t, v in RECORDED]),
        st.tuples(oids, values),
    ),
    max_size=12,
)


def encode_response(community: bytes, request_id: int, status: int, index: int, vbs: list) -> bytes:
    """A v2c Response-PDU, as an agent sends it (the codec encodes requests only)."""
    body = b"".join(_tlv(0x30, encode_oid(name) + _tlv(tag, value)) for name, (tag, value) in vbs)
    pdu = (
        snmp._integer(request_id) + snmp._integer(status) + snmp._integer(index) + _tlv(0x30, body)
    )
    return _tlv(0x30, snmp._integer(1) + _tlv(0x04, community) + _tlv(0xA2, pdu))


responses = st.builds(
    encode_response,
    st.binary(max_size=16),
    st.integers(-(2**31), 2**31 - 1),
    st.integers(0, 18),
    st.integers(0, 50),
    varbinds,
)
datagrams = st.one_of(responses, mutated_bytes(responses), hostile_bytes)


def _check_value(value: Any) -> None:
    if isinstance(value, bytes):
        assert len(value) <= snmp.MAX_VALUE
    else:
        assert value is None or value is snmp.END_OF_MIB or isinstance(value, int | str)


@given(datagrams)
def test_decode_response_never_raises(data: bytes) -> None:
    answer = snmp.decode_response(data)
    if answer is None:
        return
    assert isinstance(answer.community, bytes) and isinstance(answer.request_id, int)
    assert len(answer.varbinds) <= snmp.MAX_ANSWER_VARBINDS
    for name, value in answer.varbinds:
        assert 2 <= len(name) <= snmp.MAX_OID and all(isinstance(n, int) for n in name)
        _check_value(value)
        assert isinstance(snmp.text(value), str)
        snmp.printable(value)


@given(st.binary(max_size=16), st.integers(-(2**31), 2**31 - 1), varbinds)
def test_a_well_formed_response_decodes_to_what_was_sent(community, request_id, vbs) -> None:
    answer = snmp.decode_response(encode_response(community, request_id, 0, 0, vbs))
    assert answer is not None
    assert (answer.community, answer.request_id) == (community, request_id)
    assert [name for name, _ in answer.varbinds] == [name for name, _ in vbs]


@given(st.one_of(st.binary(max_size=700), oids.map(lambda o: encode_oid(o)[2:])))
def test_decode_oid(body: bytes) -> None:
    try:
        oid = snmp.decode_oid(body)
    except ValueError:
        return
    assert 2 <= len(oid) <= snmp.MAX_OID and oid[0] in (0, 1, 2)
    assert snmp.decode_oid(encode_oid(oid)[2:]) == oid


@given(oids)
def test_oid_round_trip(oid: tuple[int, ...]) -> None:
    assert snmp.decode_oid(encode_oid(oid)[2:]) == oid


@given(st.integers(0, 255), st.binary(max_size=600))
def test_value_of_any_tag(tag: int, body: bytes) -> None:
    _check_value(snmp._value(tag, body))


pysnmp_values = st.one_of(
    st.binary(max_size=700).map(rfc1902.OctetString),
    st.integers(-(2**31), 2**31 - 1).map(rfc1902.Integer32),
    st.integers(0, 2**32 - 1).map(rfc1902.Counter32),
    st.integers(0, 2**64 - 1).map(rfc1902.Counter64),
    st.integers(0, 2**32 - 1).map(rfc1902.TimeTicks),
    st.binary(min_size=4, max_size=4).map(rfc1902.IpAddress),
    st.binary(max_size=64).map(rfc1902.Opaque),
    oids.map(rfc1902.ObjectIdentifier),
    st.sampled_from(
        [univ.Null(""), rfc1905.noSuchObject, rfc1905.noSuchInstance, rfc1905.endOfMibView]
    ),
    # unset values (schema objects: not even hashable, so made on demand)
    st.sampled_from([rfc1902.OctetString, rfc1902.Integer32, univ.ObjectIdentifier]).map(
        lambda kind: kind()
    ),
)


@given(pysnmp_values)
def test_pysnmp_values_become_plain(value: Any) -> None:
    """v3 answers go through pysnmp: any value it decodes becomes plain Python or None
    (an unset one, which cannot be rendered, included)."""
    _check_value(snmp.value_of(value))


@given(st.one_of(st.binary(max_size=600), st.text(max_size=600), st.integers(), st.none()))
def test_text_and_printable(value: Any) -> None:
    assert isinstance(snmp.text(value), str) and len(snmp.text(value)) <= 2 * 600 * 3
    shown = snmp.printable(value, 64)
    assert shown is None or (0 < len(shown) <= 64 and shown == shown.strip())


@given(datagrams)
def test_v2c_client_ignores_whatever_arrives(data: bytes) -> None:
    """An answer to no pending request (forged, stale, garbage) is dropped quietly."""
    client = snmp._V2cClient("127.0.0.1", 1)
    client.received(data)
    assert client._pending == {}


@st.composite
def agent_answers(draw: st.DrawFn) -> list[Any]:
    """What a broken or hostile agent answers to each GETBULK of a walk: var-binds under
    the columns or anywhere, going back, repeating, endOfMibView, nothing."""
    base = (1, 3, 6, 1, 2, 1, 47, 1, 1, 1, 1)
    names = st.one_of(
        st.lists(st.integers(0, 40), min_size=1, max_size=4).map(lambda s: (*base, 13, *s)),
        st.lists(st.integers(0, 40), min_size=1, max_size=4).map(lambda s: (*base, 10, *s)),
        oids,
    )
    value = st.one_of(st.binary(max_size=20), st.integers(), st.just(snmp.END_OF_MIB))
    answer = st.one_of(st.none(), st.lists(st.tuples(names, value), max_size=24))
    return draw(st.lists(answer, min_size=1, max_size=8))


@given(agent_answers(), st.integers(1, 40))
def test_a_walk_ends_whatever_the_agent_answers(answers: list[Any], max_rows: int) -> None:
    client = snmp.SnmpClient()
    asked = []

    async def bulk(ip, port, auth, names, reps):
        asked.append(names)
        i = len(asked) - 1
        return answers[i] if i < len(answers) else answers[-1]

    client._bulk = bulk  # the agent's answers, no network
    columns = [f"{snmp_discovery.ENT}.13", f"{snmp_discovery.ENT}.10"]
    got = asyncio.run(client.walk("10.0.0.1", "public", columns, max_rows, max_time=5.0))
    assert len(asked) <= 2 * max_rows + 2  # an agent that repeats itself ends the walk
    if got is not None:
        assert all(len(rows) <= max_rows for rows in got.values())
        snmp_discovery.entity_row(got)


indexes = st.lists(st.integers(0, 2**32), min_size=1, max_size=12).map(
    lambda p: ".".join(map(str, p))
)
any_values = st.one_of(
    st.binary(max_size=40), st.text(max_size=40), st.integers(), st.none(), st.just(snmp.END_OF_MIB)
)
tables = st.dictionaries(
    st.one_of(
        st.sampled_from(
            [f"{lldp.REM}.{c}" for c in lldp.REM_COLUMNS]
            + [f"{lldp.MED}.{c}" for c in lldp.MED_COLUMNS]
        ),
        st.text(max_size=20),
    ),
    st.dictionaries(indexes, any_values, max_size=6),
    max_size=6,
)


@given(tables, st.dictionaries(indexes, any_values, max_size=12), tables)
def test_lldp_tables(rem, man, loc) -> None:
    """A switch's LLDP-MIB rows of any shape and type: sightings, never an exception."""
    found = lldp.parse("10.0.0.2", rem, man, loc, lambda ip: ip.startswith("10."))
    for s in found:
        assert s.ip.startswith("10.") and all(isinstance(v, str) for v in s.attrs.values())


@given(st.one_of(st.binary(max_size=8), st.text(max_size=4), st.integers(), st.none()))
def test_lldp_capabilities(value: Any) -> None:
    assert set(lldp.capabilities(value)) <= set(lldp.CAPABILITIES)


@given(st.dictionaries(st.sampled_from([*snmp_discovery.ENT_COLUMNS, "5", "x"]).map(
    lambda c: f"{snmp_discovery.ENT}.{c}"), st.dictionaries(indexes | st.text(max_size=8),
    any_values, max_size=6), max_size=6))  # fmt: skip
def test_entity_row(table) -> None:
    row = snmp_discovery.entity_row(table)
    assert set(row) <= set(snmp_discovery.ENT_COLUMNS.values())


@given(
    st.dictionaries(
        st.sampled_from(list(grandstream.OIDS.values())) | st.text(max_size=30),
        st.text(max_size=30) | st.binary(max_size=8) | st.none(),
        max_size=6,
    )
)
def test_grandstream_mib_values(got) -> None:
    out = grandstream.parse_snmp(got)
    assert set(out) <= set(grandstream.SNMP_KEYS) | {"phone.forward.always_target"}


# ------------------------------------------------------------------ worst cases, 64 KiB


def _nested(depth: int) -> bytes:
    data = b"\x05\x00"
    for _ in range(depth):
        data = b"\x30" + _length(len(data)) + data
    return data


WORST = {
    "deep nesting": _nested(8000)[: 64 * KIB],
    "length past the end": b"\x30\x84\x7f\xff\xff\xff" + b"\x02\x01\x01" * 20 * KIB,
    "thousands of var-binds": encode_response(
        b"public", 1, 0, 0, [((1, 3, 6, 1), (0x04, b"x"))] * 6000
    ),
    "endless OID": encode_response(b"p", 1, 0, 0, [])[:-2]
    + b"\x30\x82\xff\xff\x06\x82\xff\xfb"
    + b"\x81" * 64 * KIB,
    "zeros": bytes(64 * KIB),
}


@pytest.mark.parametrize("name", WORST)
def test_worst_case_answers_cost_little(name: str) -> None:
    bounded(snmp.decode_response, WORST[name], seconds=0.25)
