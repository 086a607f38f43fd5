"""STUN answers (agent/net/stun.py, the project's own codec): whatever a STUN server, or
anything answering in its place, sends back is a Message or None; the response built from
any decoded message holds addresses that are addresses, and never raises."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.net import stun
from tests.fuzz.strategies import KIB, bounded, hostile_bytes, mutated_bytes

tids = st.binary(min_size=12, max_size=12)
addresses = st.tuples(st.ip_addresses().map(str), st.integers(0, 65535))
ATTRS = (
    stun.MAPPED_ADDRESS, stun.XOR_MAPPED_ADDRESS, stun.OTHER_ADDRESS, stun.CHANGED_ADDRESS,
    stun.RESPONSE_ORIGIN, stun.ERROR_CODE, stun.SOFTWARE, stun.FINGERPRINT, 0x8023, 0x0000,
)  # fmt: skip

successes = st.builds(
    lambda tid, mapped, other, origin, software: stun.binding_success(
        tid, mapped, other=other, origin=origin, software=software
    ),
    tids,
    addresses,
    st.none() | addresses,
    st.none() | addresses,
    st.none() | st.text(max_size=40),
)
errors = st.builds(stun.binding_error, tids, st.integers(300, 699), st.text(max_size=40))
messages = st.builds(
    lambda kind, tid, attrs, fp: stun.encode(stun.Message(kind, tid, attrs), fingerprint=fp),
    st.sampled_from((stun.BINDING_SUCCESS, stun.BINDING_ERROR, stun.BINDING_REQUEST, 0x0115)),
    tids,
    st.lists(st.tuples(st.sampled_from(ATTRS), st.binary(max_size=24)), max_size=6),
    st.booleans(),
)
seeds = st.one_of(successes, errors, messages)
datagrams = st.one_of(seeds, mutated_bytes(seeds), hostile_bytes)


@given(datagrams)
def test_decode_never_raises(data: bytes) -> None:
    msg = stun.decode(data)
    if msg is None:
        return
    assert len(msg.transaction_id) == 12 and not msg.type & 0xC000
    response = stun._response(msg, ("192.0.2.1", 3478), 1.0, 1)
    for address in (response.mapped, response.other, response.origin):
        if address is not None:
            assert ipaddress.ip_address(address[0]) and 0 <= address[1] <= 65535
    if response.error is not None:
        assert 0 <= response.error[0] <= 7 * 100 + 255


@given(tids, addresses, st.none() | addresses, st.none() | st.text(max_size=40))
def test_a_server_answer_decodes_to_what_it_said(tid, mapped, other, software) -> None:
    data = stun.binding_success(tid, mapped, other=other, software=software)
    msg = stun.decode(data)
    assert msg is not None and msg.transaction_id == tid
    response = stun._response(msg, ("192.0.2.1", 3478), 1.0, 1)
    assert (response.mapped, response.other) == (mapped, other)
    assert response.software == (software or None)


@given(addresses, tids, st.booleans())
def test_address_round_trip(address, tid, xor) -> None:
    assert stun.decode_address(stun.encode_address(address, tid, xor), tid, xor) == address


@given(st.none() | st.binary(max_size=40), tids, st.booleans())
def test_decode_address(value, tid, xor) -> None:
    got = stun.decode_address(value, tid, xor)
    if got is not None:
        assert ipaddress.ip_address(got[0]) and 0 <= got[1] <= 65535


@given(datagrams)
def test_client_drops_what_it_did_not_ask(data: bytes) -> None:
    protocol = stun._Protocol()
    protocol.datagram_received(data, ("192.0.2.1", 3478))
    assert protocol.pending == {}


def _many_attributes(n: int) -> bytes:
    body = struct.pack("!HH", stun.SOFTWARE, 0) * n
    return stun.HEADER.pack(stun.BINDING_SUCCESS, len(body), stun.MAGIC_COOKIE, bytes(12)) + body


WORST = {
    "16k empty attributes": _many_attributes(16 * KIB - 8),
    "length past the end": stun.HEADER.pack(0x0101, 0xFFFC, stun.MAGIC_COOKIE, bytes(12)),
    "zeros": bytes(64 * KIB),
}


@pytest.mark.parametrize("name", WORST)
def test_worst_case_answers_cost_little(name: str) -> None:
    msg = bounded(stun.decode, WORST[name], seconds=0.25)
    if msg is not None:
        bounded(stun._response, msg, ("192.0.2.1", 3478), 1.0, 1, seconds=0.25)
