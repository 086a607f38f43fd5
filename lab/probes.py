"""Tiny readiness probes, sent from inside a lab namespace: SIP OPTIONS, SNMP GET, DNS, STUN."""

from __future__ import annotations

import secrets
import socket
import struct

from lab import netns


def _ask(ns: str, addr: tuple[str, int], payload: bytes, timeout: float) -> bytes | None:
    """Send one UDP datagram from ``ns`` and return the first answer (None on timeout/error)."""
    try:
        sock = netns.socket_in(ns)
    except OSError:
        return None
    with sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(payload, addr)
            return sock.recv(65536)
        except OSError:
            return None


def sip_options(ns: str, src_ip: str, host: str, port: int = 5060, timeout: float = 0.3) -> str:
    """Send an OPTIONS to ``host:port``; return the status line ('' if no answer)."""
    branch = "z9hG4bK" + secrets.token_hex(6)
    msg = (
        f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {src_ip}:5099;branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:lab@{src_ip}>;tag={secrets.token_hex(4)}\r\n"
        f"To: <sip:{host}>\r\n"
        f"Call-ID: {secrets.token_hex(8)}@{src_ip}\r\n"
        "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    answer = _ask(ns, (host, port), msg, timeout)
    return answer.split(b"\r\n", 1)[0].decode(errors="replace") if answer else ""


def _ber(tag: int, body: bytes) -> bytes:
    """One BER TLV (short or long length form)."""
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    size = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def snmp_get_sysdescr(ns: str, host: str, community: str = "public", timeout: float = 0.3) -> bool:
    """Send an SNMPv2c GET of sysDescr.0; True if any answer came back."""
    oid = bytes([0x2B, 6, 1, 2, 1, 1, 1, 0])  # 1.3.6.1.2.1.1.1.0
    varbind = _ber(0x30, _ber(0x06, oid) + b"\x05\x00")
    pdu = _ber(
        0xA0,
        _ber(0x02, secrets.token_bytes(2)[:1])
        + _ber(0x02, b"\x00")
        + _ber(0x02, b"\x00")
        + _ber(0x30, varbind),
    )
    message = _ber(0x30, _ber(0x02, b"\x01") + _ber(0x04, community.encode()) + pdu)
    return _ask(ns, (host, 161), message, timeout) is not None


def dns_a(ns: str, server: str, name: str, timeout: float = 0.3) -> str | None:
    """Ask ``server`` for the A record of ``name``; return the first address or None."""
    qid = secrets.randbits(16)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\x00"
    query = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", 1, 1)
    answer = _ask(ns, (server, 53), query, timeout)
    if not answer or len(answer) < 12 or struct.unpack("!H", answer[6:8])[0] == 0:
        return None
    rdata = answer[-4:]  # single A answer, last record
    return socket.inet_ntoa(rdata)


def stun_binding(ns: str, host: str, port: int = 3478, timeout: float = 0.3) -> bool:
    """Send a STUN Binding request; True on a Binding success response."""
    request = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + secrets.token_bytes(12)
    answer = _ask(ns, (host, port), request, timeout)
    return bool(answer) and answer[:2] == b"\x01\x01"


def tcp_open(ns: str, ip: str, port: int, timeout: float = 0.3) -> bool:
    """Whether ``ip:port`` accepts a TCP connection, from namespace ``ns``."""
    try:
        sock = netns.socket_in(ns, socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        return False
    with sock:
        sock.settimeout(timeout)
        return sock.connect_ex((ip, port)) == 0
