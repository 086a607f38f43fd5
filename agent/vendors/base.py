"""What a vendor adapter is: it reads a phone's own state through the interfaces the
vendor documents and returns device facts. What a family cannot tell stays unknown.

An adapter lives in ``agent/vendors/<vendor id>.py`` and defines ``ADAPTER``; a vendor
without a module gets the generic SIP adapter. Adapters observe; rules judge.

An adapter may also *write* a few of the phone's own settings, only where the vendor
documents a write path (the remedies call it, after a person's consent): it then lists
them in ``writable`` (keys of ``WRITE_KEYS``) and has ``write(ctx, values)``. A family
without a documented write path has neither, and the remedies say so. Likewise an adapter
has ``reboot(ctx)`` only where the vendor documents a way to restart the phone over HTTP.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.config import Config, Credential
from agent.model import UNKNOWN, Device, Fact
from agent.net.http import HttpError, Session

# The device facts a phone adapter may fill (catalogue keys, agent/facts/*.toml).
PHONE_KEYS = (
    "sip.account",
    "sip.registered",
    "sip.last_status",
    "sip.last_reason",
    "sip.register_expires_s",
    "sip.transport",
    "phone.forward.always",
    "phone.forward.always_target",
    "phone.forward.busy",
    "phone.forward.noanswer",
    "phone.dnd",
    "phone.clock_skew_s",
    "phone.provisioning_url",
    "phone.outbound_proxy",
    "phone.ip",
)


@dataclass
class Context:
    """What an adapter gets: the device, the configuration, an HTTP session to it."""

    device: Device
    config: Config
    http: Session
    now: float = field(default_factory=time.time)

    def snmp_communities(self) -> list[str]:
        return self.config.snmp_communities


class Adapter(Protocol):
    vendor: str

    async def read(self, ctx: Context) -> dict[str, Any]:
        """Return {catalogue key: value}; leave out what the phone cannot tell."""
        ...


# The settings a writer may change, with the type of their value (the catalogue keys the
# adapter reads them back as). ``phone.forward.always`` False turns the forward off;
# True needs ``phone.forward.always_target`` in the same call.
WRITE_KEYS: dict[str, type] = {
    "phone.dnd": bool,
    "phone.forward.always": bool,
    "phone.forward.always_target": str,
}


class Writer(Adapter, Protocol):
    writable: frozenset[str]  # keys of WRITE_KEYS this family can write

    async def write(self, ctx: Context, values: dict[str, Any]) -> None:
        """Set ``values`` on the phone; HttpError (safe message) when it did not take."""
        ...


class Refused(HttpError):
    """The phone answered a write and refused it (HTTP 4xx, an error code): it changed
    nothing. Any other failure of a write (no answer in time, a lost connection) leaves
    the phone's state unknown until it is read again."""


def writable(adapter: Adapter) -> frozenset[str]:
    """What ``adapter`` can write (nothing for a read-only family)."""
    keys = getattr(adapter, "writable", frozenset())
    return frozenset(keys) if hasattr(adapter, "write") else frozenset()


class Rebooter(Adapter, Protocol):
    async def reboot(self, ctx: Context) -> None:
        """Ask the phone to restart; Refused when it answered no, HttpError otherwise. It
        answers before it goes down: whether it came back is for a new diagnosis to tell."""
        ...


def rebootable(adapter: Adapter) -> bool:
    """Whether ``adapter`` can restart its phones."""
    return callable(getattr(adapter, "reboot", None))


def check_write(adapter: Adapter, values: dict[str, Any]) -> None:
    """ValueError unless ``adapter`` can write every key of ``values``, with the right types,
    and a forward turned on has its target."""
    unknown = sorted(set(values) - writable(adapter))
    if unknown:
        raise ValueError(f"{adapter.vendor}: cannot write {', '.join(unknown)}")
    for key, value in values.items():
        if not isinstance(value, WRITE_KEYS[key]):
            raise ValueError(f"{key} must be a {WRITE_KEYS[key].__name__}")
    target = str(values.get("phone.forward.always_target", "")).strip()
    if values.get("phone.forward.always") is True and not target:
        raise ValueError("turning the forward on needs phone.forward.always_target")


@dataclass
class Reading:
    """An adapter's result turned into facts; keys it could not read become unknown."""

    device: Device
    source: str
    values: dict[str, Any]
    evidence: str = ""

    def facts(self) -> list[Fact]:
        out = []
        for key in PHONE_KEYS:
            value = self.values.get(key, UNKNOWN)
            why = self.evidence if value is not UNKNOWN else f"not readable from {self.source}"
            out.append(Fact(self.device.ip, key, value, self.source, why))
        return out


def logins(
    config: Config, vendor: str | None, ip: str, defaults: list[Credential]
) -> list[Credential]:
    """Configured logins first; the vendor's factory logins only when opted in."""
    mine = config.logins_for(vendor, ip)
    return mine + (defaults if config.default_logins else [])


def clock_skew(phone_epoch: float, now: float) -> float:
    return round(phone_epoch - now, 1)


_LONE_LT = re.compile(r"<(?![^<>]*>)")  # a "<" that opens no <...> tag (linear: no "<" inside)


def for_html_parser(page: str) -> str:
    """``page`` with every ``<`` that opens no ``<...>`` tag written ``&lt;``. Python's
    HTMLParser rescans the rest of the page from each tag or comment left open: quadratic,
    a 24 KB page of ``<a `` cost 7 s on Python 3.11, and a phone's page may hold 1 MB
    (tests/fuzz). What is left is parsed in linear time. A tag holding a ``<`` (in a quoted
    value) becomes text: no page of the captures does (none is changed by this)."""
    return _LONE_LT.sub("&lt;", page)


def whole_number(text: str | None, digits: int = 9) -> int | None:
    """``text`` (spaces around it allowed) as a number of at most ``digits`` ASCII digits,
    else None. A phone's text is not trusted to suit ``int()``: ``"²".isdigit()`` is true
    but ``int("²")`` raises, as does ``int()`` of more than 4300 digits (tests/fuzz)."""
    text = (text or "").strip()
    if not (0 < len(text) <= digits and text.isascii() and text.isdigit()):
        return None
    return int(text)


def account(user: str | None, registrar: str | None) -> str | None:
    """``user@registrar`` (lower-case registrar), or None when the user is not known."""
    user = (user or "").strip()
    if not user:
        return None
    host = (registrar or "").strip().lower()
    return f"{user}@{host}" if host else user
