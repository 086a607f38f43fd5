"""The v2c codec of agent.net.snmp against pysnmp's own (pyasn1) encoder and decoder:
requests pysnmp reads back as sent, answers of every value type read as plain Python, and
garbage, truncation and forgery never raising nor matching; plus the pacer's `quiet`."""

from __future__ import annotations

import asyncio
import random

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api, rfc1902, rfc1905

from agent.net import snmp
from agent.net.pacing import Pacer

V2C = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)


def response(request_id: int, varbinds, community: bytes = b"public", status: int = 0) -> bytes:
    """A Response-PDU encoded by pysnmp."""
    pdu = V2C.ResponsePDU()
    V2C.apiPDU.set_defaults(pdu)
    V2C.apiPDU.set_request_id(pdu, request_id)
    V2C.apiPDU.set_error_status(pdu, status)
    V2C.apiPDU.set_varbinds(pdu, varbinds)
    msg = V2C.Message()
    V2C.apiMessage.set_defaults(msg)
    V2C.apiMessage.set_community(msg, community)
    V2C.apiMessage.set_pdu(msg, pdu)
    return encoder.encode(msg)


@pytest.mark.parametrize("pdu", [snmp.GET_REQUEST, snmp.GET_BULK_REQUEST])
def test_requests_read_back_by_pysnmp(pdu):
    oids = [SYS_DESCR, (1, 0, 8802, 1, 1, 2, 1, 4, 1, 1, 9), (1, 3, 6, 1, 4, 1, 2**32 - 1, 300)]
    data = snmp.encode_request(b"s3cret", pdu, 2**31 - 1, oids, reps=7)
    msg, rest = decoder.decode(data, asn1Spec=V2C.Message())
    assert rest == b""
    assert bytes(V2C.apiMessage.get_community(msg)) == b"s3cret"
    got = V2C.apiMessage.get_pdu(msg)
    assert int(V2C.apiPDU.get_request_id(got)) == 2**31 - 1
    assert [tuple(o) for o, _ in V2C.apiPDU.get_varbinds(got)] == oids
    if pdu == snmp.GET_BULK_REQUEST:
        assert int(V2C.apiBulkPDU.get_max_repetitions(got)) == 7
        assert int(V2C.apiBulkPDU.get_non_repeaters(got)) == 0


def test_every_value_type_of_an_answer():
    values = [
        rfc1902.OctetString(b"Yealink SIP-T46S"),
        rfc1902.Integer32(-5),
        rfc1902.ObjectIdentifier((1, 3, 6, 1, 4, 1, 37459, 2, 1, 46)),
        rfc1902.IpAddress("10.66.0.2"),
        rfc1902.Counter32(2**32 - 1),
        rfc1902.Gauge32(7),
        rfc1902.TimeTicks(123456),
        rfc1902.Counter64(2**64 - 1),
        rfc1902.Bits(b"\x24"),
        rfc1902.OctetString(b"x" * 2000),
        rfc1905.noSuchObject,
        rfc1905.noSuchInstance,
        rfc1905.endOfMibView,
    ]
    names = [(1, 3, 6, 1, 2, 1, 1, i, 0) for i in range(1, len(values) + 1)]
    answer = snmp.decode_response(response(42, list(zip(names, values, strict=True))))
    assert answer is not None
    assert (answer.community, answer.request_id, answer.error_status) == (b"public", 42, 0)
    assert [n for n, _ in answer.varbinds] == names
    assert [v for _, v in answer.varbinds] == [
        b"Yealink SIP-T46S",
        -5,
        ".1.3.6.1.4.1.37459.2.1.46",
        "10.66.0.2",
        2**32 - 1,
        7,
        123456,
        2**64 - 1,
        b"\x24",
        b"x" * snmp.MAX_VALUE,
        None,
        None,
        snmp.END_OF_MIB,
    ]


def test_error_status_and_other_pdus():
    answer = snmp.decode_response(response(7, [(SYS_DESCR, rfc1902.Null(""))], status=5))
    assert answer is not None and answer.error_status == 5
    request = snmp.encode_request(b"public", snmp.GET_REQUEST, 7, [SYS_DESCR])
    assert snmp.decode_response(request) is None  # a request is not an answer
    v1 = bytearray(response(7, [(SYS_DESCR, rfc1902.OctetString(b"x"))]))
    v1[4] = 0  # msgVersion 0: SNMPv1
    assert snmp.decode_response(bytes(v1)) is None


def test_garbage_and_truncation_never_raise():
    good = response(99, [(SYS_DESCR, rfc1902.OctetString(b"Cisco SPA504G"))] * 3)
    for n in range(len(good)):
        assert snmp.decode_response(good[:n]) is None
    rng = random.Random(7)
    for _ in range(3000):
        blob = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            blob[rng.randrange(len(blob))] = rng.randrange(256)
        snmp.decode_response(bytes(blob))  # any result, never an exception
        snmp.decode_response(bytes(rng.randrange(256) for _ in range(rng.randint(0, 80))))
    # lengths that claim far more than there is, indefinite lengths, multi-byte tags
    for blob in (b"\x30\x84\xff\xff\xff\xff", b"\x30\x80\x00\x00", b"\x3f\x81\x01\x00", b""):
        assert snmp.decode_response(blob) is None


def test_oids():
    assert snmp.decode_oid(snmp.encode_oid((2, 999, 3))[2:]) == (2, 999, 3)
    assert snmp.decode_oid(bytes([0x2B, 0x86, 0x8D, 0x1F])) == (1, 3, 99999)
    with pytest.raises(ValueError):
        snmp.decode_oid(b"\x2b\x86")  # truncated sub-identifier
    with pytest.raises(ValueError):
        snmp.decode_oid(b"\x2b" + b"\x01" * snmp.MAX_OID)
    with pytest.raises(ValueError):
        snmp.encode_oid((3, 1))


async def test_a_forged_community_or_request_id_is_not_an_answer():
    """The client matches answers by request id and community: a spoofed datagram with
    the wrong community, or for no request, is dropped; the real answer still counts."""
    loop = asyncio.get_running_loop()
    agent_sent: list[bytes] = []

    class Agent(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            msg, _ = decoder.decode(data, asn1Spec=V2C.Message())
            rid = int(V2C.apiPDU.get_request_id(V2C.apiMessage.get_pdu(msg)))
            value = (SYS_DESCR, rfc1902.OctetString(b"real"))
            for forged in (response(rid, [value], b"other"), response(rid + 1, [value])):
                self.transport.sendto(forged, addr)
            agent_sent.append(response(rid, [value]))
            self.transport.sendto(agent_sent[-1], addr)

    transport, _ = await loop.create_datagram_endpoint(Agent, local_addr=("127.0.0.2", 0))
    port = transport.get_extra_info("sockname")[1]
    client = snmp.SnmpClient(timeout=1.0)
    try:
        got = await client.get("127.0.0.2", "public", ["1.3.6.1.2.1.1.1.0"], port=port)
        silent = await client.get("127.0.0.3", "public", ["1.3.6.1.2.1.1.1.0"], port=port)
    finally:
        client.close()
        transport.close()
    assert got == {"1.3.6.1.2.1.1.1.0": "real"} and len(agent_sent) == 1
    assert silent is None


async def test_quiet_waits_for_the_senders_and_not_forever():
    pacer = Pacer(500, burst=1)
    done: list[str] = []

    async def sender():
        for _ in range(20):
            await pacer()
        done.append("sender")

    async def follower():
        await pacer.quiet()
        done.append("follower")

    await asyncio.gather(follower(), sender())
    assert done == ["sender", "follower"]  # not before the last packet's slot
    idle = Pacer(500)
    await asyncio.wait_for(idle.quiet(), 1.0)  # nobody sending: returns by itself


def test_printable_cut_leaves_no_trailing_space():
    """Found by the nightly fuzz run: a value cut at the limit just after a space."""
    assert snmp.printable("0" * 63 + " 0", 64) == "0" * 63
    assert snmp.printable(b"Yealink SIP-T46S  ", 64) == "Yealink SIP-T46S"
    assert snmp.printable("   ", 64) is None and snmp.printable(b"", 64) is None
