"""A phone's SIP side: real baresip 1.0.0, with the model's User-Agent, driven over ctrl_tcp."""

from __future__ import annotations

import json
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from lab import netns, procs
from lab.state import Proc

BARESIP = Path("/usr/bin/baresip")
MODULE_PATH = "/usr/lib/baresip/modules"
# Where lab clients reach a phone's ctrl_tcp. baresip 1.0.0 serves one connection at a time,
# so a phone with a controller (lab.personalities) has baresip on BARESIP_CTRL_ADDR and the
# controller shares it on CTRL_ADDR; a bare UA (no controller) listens on CTRL_ADDR itself.
CTRL_ADDR = ("127.0.0.1", 4444)
BARESIP_CTRL_ADDR = ("127.0.0.1", 4445)
REG_INTERVAL = 1800  # what OVHcloud recommends (diagnostic_voip: 1800 s); the faces show it
PSTN_ROLE = "pstn"
PSTN_USER = "pstn"  # the gateway's account: Kamailio sends forwarded calls to this user
# libre's "software" string, sent as User-Agent/Server: "baresip v1.0.0 (x86_64/linux)\0".
UA_RE = re.compile(rb"baresip v[0-9.]+ \([^)\x00]*\)\x00")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# baresip -s: each SIP message is logged as "#", "UDP <src> -> <dst>", then the message.
TRACE_HEAD = re.compile(r"^#\n(?P<proto>UDP|TCP|TLS) (?P<src>\S+) -> (?P<dst>\S+)\n", re.M)


class PhoneError(RuntimeError):
    """A phone could not be set up or driven."""


def patched_binary(user_agent: str, dest: Path) -> Path:
    """Copy baresip to ``dest`` with its identity string replaced by ``user_agent``.

    baresip 1.0.0 cannot set its User-Agent: it is a NUL-terminated constant in the binary.
    The copy gets the model's string, NUL-padded to the same length; the SIP stack is unchanged.
    """
    if dest.exists():
        return dest
    data = BARESIP.read_bytes()
    found = UA_RE.findall(data)
    if len(found) != 1:
        raise PhoneError(f"expected one User-Agent string in {BARESIP}, found {len(found)}")
    original = found[0]
    new = user_agent.encode()
    if b"\x00" in new or len(new) + 1 > len(original):
        raise PhoneError(
            f"User-Agent {user_agent!r} is longer than baresip's ({len(original) - 1} bytes)"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data.replace(original, new.ljust(len(original), b"\x00")))
    shutil.copymode(BARESIP, dest)
    return dest


def render_config(phone: dict[str, Any], rx_file: Path, ctrl: tuple[str, int] = CTRL_ADDR) -> str:
    """baresip's ``config``: SIP on the phone's LAN address, sine tone as microphone."""
    return (
        "poll_method epoll\n"
        f"sip_listen {phone['ip']}:5060\n"
        "call_local_timeout 120\ncall_max_calls 4\n"
        f"module_path {MODULE_PATH}\n"
        "module g711.so\nmodule ausine.so\nmodule aufile.so\n"
        "module_app account.so\nmodule_app contact.so\nmodule_app menu.so\n"
        "module_app ctrl_tcp.so\n"
        f"ctrl_tcp_listen {ctrl[0]}:{ctrl[1]}\n"
        "audio_source ausine,440\nausrc_srate 48000\nausrc_channels 2\n"
        f"audio_player aufile,{rx_file}\n"
    )


def render_account(
    phone: dict[str, Any], domain: str, password: str, answermode: str = "auto"
) -> str:
    """baresip's ``accounts``: one line, registered to ``sip:<line>@<domain>``."""
    return (
        f"<sip:{phone['line']}@{domain}>;auth_pass={password};"
        f"answermode={answermode};regint={REG_INTERVAL}\n"
    )


def log_path(state_dir: Path, role: str) -> Path:
    """baresip's log (its stdout) for ``role``."""
    return state_dir / "logs" / f"{role}-baresip.log"


def start(
    ns: str,
    phone: dict[str, Any],
    domain: str,
    password: str,
    state_dir: Path,
    *,
    ctrl: tuple[str, int] = CTRL_ADDR,
    answermode: str = "auto",
) -> Proc:
    """Write the phone's baresip dir (owner-only: it holds the password) and start it."""
    base = state_dir / phone["role"] / "baresip"
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    binary = patched_binary(phone["user_agent"], state_dir / "bin" / f"baresip-{phone['model_id']}")
    (base / "config").write_text(render_config(phone, base / "received.wav", ctrl))
    (base / "accounts").write_text(render_account(phone, domain, password, answermode))
    (base / "contacts").write_text("")
    log = log_path(state_dir, phone["role"])
    return procs.spawn("baresip", phone["role"], ns, [str(binary), "-f", str(base)], log)


def start_pstn(ns: str, ip: str, state_dir: Path, *, ctrl: tuple[str, int] = CTRL_ADDR) -> Proc:
    """Start the PSTN gateway: a bare baresip on ``ip`` that never registers (regint=0) and
    auto-answers every call sent to its user ``pstn``.

    baresip 1.0 answers 404 "UA not found" to any other user (its catch-all is only for the
    b2bua module), so the registrar rewrites the R-URI to ``pstn`` and carries the dialled
    number in ``X-Called-Number``. It runs with ``-s``: every SIP message is in its log, which
    is what ``pstn_calls`` reads. Its ctrl_tcp is ``ctrl`` in the provider's namespace.
    """
    base = state_dir / PSTN_ROLE / "baresip"
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    (base / "config").write_text(render_config({"ip": ip}, base / "received.wav", ctrl))
    (base / "accounts").write_text(f"<sip:{PSTN_USER}@{ip}>;regint=0;answermode=auto\n")
    (base / "contacts").write_text("")
    log = log_path(state_dir, PSTN_ROLE)
    return procs.spawn("baresip", PSTN_ROLE, ns, [str(BARESIP), "-s", "-f", str(base)], log)


def sip_trace(text: str) -> list[dict[str, Any]]:
    """The SIP messages of a ``baresip -s`` log, in order: dicts with proto, src, dst,
    start_line, headers (name lower-cased -> first value) and body."""
    text = ANSI.sub("", text).replace("\r\n", "\n")
    heads = list(TRACE_HEAD.finditer(text))
    messages = []
    for n, head in enumerate(heads):
        end = heads[n + 1].start() if n + 1 < len(heads) else len(text)
        raw = text[head.end() : end]
        top, _, body = raw.partition("\n\n")
        lines = top.split("\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep and name.strip():
                headers.setdefault(name.strip().lower(), value.strip())
        messages.append(
            {
                "proto": head["proto"],
                "src": head["src"],
                "dst": head["dst"],
                "start_line": lines[0].strip(),
                "headers": headers,
                "body": body,
            }
        )
    return messages


def _uri(value: str) -> str:
    """The URI of a name-addr header value (``<sip:x@y>;tag=z`` -> ``sip:x@y``)."""
    match = re.search(r"<([^>]*)>", value)
    return match.group(1) if match else value.split(";")[0].strip()


def incoming_invites(text: str) -> list[dict[str, Any]]:
    """The calls a ``baresip -s`` log shows arriving, one per Call-ID: request_uri, from, to,
    called_number (X-Called-Number), diversion, call_id, and status (the UA's last final
    answer to the INVITE, e.g. 200; None if none yet)."""
    calls: dict[str, dict[str, Any]] = {}
    for msg in sip_trace(text):
        hdrs, first = msg["headers"], msg["start_line"]
        call_id = hdrs.get("call-id", "")
        if first.startswith("INVITE ") and ";tag=" not in hdrs.get("to", ""):
            calls.setdefault(
                call_id,
                {
                    "request_uri": first.split()[1],
                    "from": _uri(hdrs.get("from", "")),
                    "to": _uri(hdrs.get("to", "")),
                    "called_number": hdrs.get("x-called-number"),
                    "diversion": hdrs.get("diversion"),
                    "call_id": call_id,
                    "status": None,
                },
            )
        elif first.startswith("SIP/2.0 ") and hdrs.get("cseq", "").endswith("INVITE"):
            code = int(first.split()[1])
            if call_id in calls and code >= 200:
                calls[call_id]["status"] = code
    return list(calls.values())


class Ctrl:
    """A ctrl_tcp connection to one phone: netstring-framed JSON commands, responses, events."""

    def __init__(
        self, ns: str | None, timeout: float = 2.0, addr: tuple[str, int] = CTRL_ADDR
    ) -> None:
        if ns is None:  # this process's own namespace (already inside the phone's)
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        else:
            self.sock = netns.socket_in(ns, socket.AF_INET, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(addr)
        except OSError:
            self.sock.close()
            raise
        self.buf = b""
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()

    def __enter__(self) -> Ctrl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, command: str, params: str = "", token: str = "lab") -> None:
        """Send one command."""
        body = json.dumps({"command": command, "params": params, "token": token}).encode()
        self.sock.sendall(str(len(body)).encode() + b":" + body + b",")

    def receive(self, deadline: float) -> dict[str, Any] | None:
        """Next message before ``deadline`` (monotonic), or None."""
        while True:
            colon = self.buf.find(b":")
            if colon > 0:
                size = int(self.buf[:colon])
                end = colon + 1 + size
                if len(self.buf) > end:
                    message = json.loads(self.buf[colon + 1 : end])
                    self.buf = self.buf[end + 1 :]
                    if message.get("event"):
                        self.events.append(message)
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not chunk:
                return None
            self.buf += chunk

    def command(self, command: str, params: str = "", timeout: float = 2.0) -> dict[str, Any]:
        """Send a command and return its response (events seen meanwhile are kept)."""
        self.send(command, params)
        deadline = time.monotonic() + timeout
        while (message := self.receive(deadline)) is not None:
            if message.get("response"):
                return message
        raise PhoneError(f"no response to {command!r} from baresip")

    def wait_event(self, types: set[str], timeout: float) -> str | None:
        """Wait for one of the event ``types``; return it (None on timeout)."""
        deadline = time.monotonic() + timeout
        while (message := self.receive(deadline)) is not None:
            if message.get("event") and message.get("type") in types:
                return message["type"]
        return None


def ctrl_ready(ns: str) -> bool:
    """True once baresip's ctrl_tcp accepts connections."""
    try:
        with Ctrl(ns, timeout=0.3):
            return True
    except OSError:
        return False


def call_events(
    ns: str, uri: str, timeout: float = 10.0, hangup: bool = True
) -> list[dict[str, Any]]:
    """Dial ``uri`` from the phone in ``ns``; return baresip's events as dicts (type, param:
    e.g. CALL_CLOSED's "603 Decline", peeruri…). Hangs up after, unless ``hangup`` is False."""
    with Ctrl(ns) as ctrl:
        ctrl.command("dial", uri)
        final = ctrl.wait_event({"CALL_ESTABLISHED", "CALL_CLOSED"}, timeout)
        if final == "CALL_ESTABLISHED":
            ctrl.wait_event({"CALL_RTPESTAB"}, 1.0)
        if hangup and final != "CALL_CLOSED":  # established, or still trying after timeout
            ctrl.command("hangup")
            ctrl.wait_event({"CALL_CLOSED"}, 2.0)
        return list(ctrl.events)


def call(ns: str, uri: str, timeout: float = 10.0, hangup: bool = True) -> list[str]:
    """Dial ``uri`` from the phone in ``ns``; return the event types seen (hangs up after)."""
    return [str(e.get("type")) for e in call_events(ns, uri, timeout, hangup)]
