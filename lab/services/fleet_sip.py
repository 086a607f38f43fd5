"""The fleet phones' SIP: answers to OPTIONS like a desk phone's UA, and the PnP SUBSCRIBE.

Pure functions on bytes (the fleet process does the sockets). A request is answered like a real
UA does (RFC 3261 §8.2.6, RFC 3581): every Via copied, the top one with ``received`` and a
filled ``rport``; From, Call-ID and CSeq copied; To copied with a tag added; then the phone's own
User-Agent, Allow, Accept, Supported and Contact. OPTIONS gets 200 OK, INVITE 486 Busy Here
(no call is ever set up), ACK nothing, any other method 405 with Allow. Anything that is not a
well-formed request (responses, garbage, a request without Via) gets no answer; a request
missing From, To, Call-ID or CSeq gets 400.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, MESSAGE, NOTIFY, REFER, SUBSCRIBE, UPDATE, PRACK"
COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "k": "supported",
    "c": "content-type",
    "e": "content-encoding",
    "s": "subject",
    "o": "event",
}
REQUIRED = ("from", "to", "call-id", "cseq")
MAX_HEADERS = 16 * 1024  # bytes of start line + headers accepted
REQUEST_LINE = re.compile(r"^([A-Za-z]{1,20}) (\S{1,1024}) SIP/2\.0$")
PNP_GROUP = ("224.0.1.75", 5060)


@dataclass
class Request:
    """A parsed SIP request: start line and headers (names lower-cased, long form, in order)."""

    method: str
    uri: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str) -> list[str]:
        """Every value of header ``name`` (long form, lower case)."""
        return [v for n, v in self.headers if n == name]


def split_head(data: bytes) -> tuple[bytes, bytes] | None:
    """Split a message into (start line + headers, rest); None if the blank line is missing.

    LF-only line endings (some cheap phones and tools send them) are accepted.
    """
    for sep in (b"\r\n\r\n", b"\n\n"):
        at = data.find(sep)
        if at >= 0:
            return data[:at], data[at + len(sep) :]
    return None


def parse(data: bytes) -> Request | None:
    """Parse the start line and headers of a request; None for anything else."""
    head = split_head(data)
    raw = head[0] if head else data
    if len(raw) > MAX_HEADERS:
        return None
    text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
    lines = text.split("\n")
    match = REQUEST_LINE.match(lines[0].strip())
    if not match:
        return None
    request = Request(match.group(1).upper(), match.group(2))
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and request.headers:  # folded header line
            name, value = request.headers[-1]
            request.headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        name = name.strip().lower()
        if not sep or not name or " " in name:
            continue
        request.headers.append((COMPACT.get(name, name), value.strip()))
    return request


def content_length(head: bytes) -> int:
    """The Content-Length of a message head (0 if absent or unreadable)."""
    for line in head.decode("latin-1").replace("\r\n", "\n").split("\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() in ("content-length", "l"):
            try:
                return max(0, int(value.strip()))
            except ValueError:
                return 0
    return 0


def _top_via(value: str, source: tuple[str, int]) -> str:
    """The top Via value with ``received`` (when the address differs or rport was asked) and
    ``rport`` filled with the source port (RFC 3581)."""
    first, sep, rest = value.partition(",")
    parts = [p.strip() for p in first.split(";")]
    sent_by = parts[0].split()[-1] if parts[0].split() else ""
    host = sent_by.rsplit(":", 1)[0] if sent_by.count(":") == 1 else sent_by
    params = []
    wants_rport = False
    for p in parts[1:]:
        key = p.split("=", 1)[0].strip().lower()
        if key == "received":
            continue
        if key == "rport":
            wants_rport = True
            continue
        params.append(p)
    if wants_rport or host != source[0]:
        params.append(f"received={source[0]}")
    if wants_rport:
        params.append(f"rport={source[1]}")
    top = ";".join([parts[0], *params])
    return top + (sep + rest if sep else "")


def _to_tag(request: Request, ip: str) -> str:
    """A To tag stable for one request (a retransmission gets the same answer)."""
    seed = "|".join([ip, *request.get("call-id"), *request.get("from")])
    return hashlib.sha1(seed.encode()).hexdigest()[:10]


def answer(
    data: bytes,
    *,
    ip: str,
    user_agent: str,
    source: tuple[str, int],
    transport: str = "UDP",
    allow: str = ALLOW,
) -> bytes | None:
    """The phone at ``ip``'s answer to ``data`` received from ``source``; None: say nothing."""
    request = parse(data)
    if request is None or request.method == "ACK":
        return None
    vias = request.get("via")
    if not vias:
        return None
    if any(not request.get(name) for name in REQUIRED):
        code = "400 Bad Request"
    elif request.method == "OPTIONS":
        code = "200 OK"
    elif request.method == "INVITE":
        code = "486 Busy Here"
    else:
        code = "405 Method Not Allowed"
    lines = [f"SIP/2.0 {code}", f"Via: {_top_via(vias[0], source)}"]
    lines += [f"Via: {v}" for v in vias[1:]]
    for name, label in (("from", "From"), ("to", "To"), ("call-id", "Call-ID"), ("cseq", "CSeq")):
        for value in request.get(name)[:1]:
            if name == "to" and ";tag=" not in value.replace(" ", "").lower():
                value = f"{value};tag={_to_tag(request, ip)}"
            lines.append(f"{label}: {value}")
    suffix = ";transport=tcp" if transport.upper() == "TCP" else ""
    lines += [
        f"Contact: <sip:{ip}:5060{suffix}>",
        f"User-Agent: {user_agent}",
        f"Allow: {allow}",
        "Accept: application/sdp",
        "Supported: replaces, timer",
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@dataclass
class PnpSubscriber:
    """A phone's PnP SUBSCRIBE (Event: ua-profile) to 224.0.1.75:5060, as phones send at boot
    and repeat while nobody answers. Shape of the Gigaset, PLANET and Grandstream samples
    (phone-landscape.md §2.2): the MAC in the Request-URI and From, vendor/model/version in
    Event, ``Accept: application/url``, ``Expires: 0``. One Call-ID; each retry is a new
    transaction (new branch, CSeq + 1)."""

    ip: str
    mac: str
    vendor: str
    model: str
    version: str
    user_agent: str
    port: int = 5060
    call_id: str = field(default_factory=lambda: secrets.token_hex(8))
    tag: str = field(default_factory=lambda: secrets.token_hex(4))
    cseq: int = 0

    def uri(self) -> str:
        """``sip:MAC%3a<MAC>@224.0.1.75`` (the MAC in upper-case hex)."""
        return f"sip:MAC%3a{self.mac.replace(':', '').upper()}@{PNP_GROUP[0]}"

    def event(self) -> str:
        """The Event header's value."""
        return (
            f'ua-profile;profile-type="device";vendor="{self.vendor}";'
            f'model="{self.model}";version="{self.version}"'
        )

    def next(self) -> bytes:
        """The next SUBSCRIBE."""
        self.cseq += 1
        uri = self.uri()
        lines = [
            f"SUBSCRIBE {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.ip}:{self.port};branch=z9hG4bK{secrets.token_hex(8)};rport",
            "Max-Forwards: 70",
            f"From: <{uri}>;tag={self.tag}",
            f"To: <{uri}>",
            f"Call-ID: {self.call_id}@{self.ip}",
            f"CSeq: {self.cseq} SUBSCRIBE",
            f"Contact: <sip:{self.ip}:{self.port}>",
            f"Event: {self.event()}",
            "Accept: application/url",
            f"User-Agent: {self.user_agent}",
            "Expires: 0",
            "Content-Length: 0",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()
