"""The /telephony models the stand-in serves, with their JSON types.

Facts: /work/shared/knowledge/ovh-control-panel-and-api.md §2.2 (from the published v1 schema,
``telephony.json``). Values the schema does not give (defaults, the Line's offer and
infrastructure) are lab values, marked "assumed".

Line options are kept as raw strings in the store (the registrar's ``opts`` htable):
booleans ``true``/``false``, numbers as digits, ``ipRestrictions`` comma-separated, and the
empty string for null. ``decode`` and ``encode`` convert between the two.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lab.services.ovhapi.errors import bad_request

NATURES = ("fax", "number", "voicemail")
INTERCOM = ("no", "prefixed", "yes")
LANGUAGES = ("Dutch", "English (UK)", "French", "French (BE)", "German", "Italian", "Spanish")
PHONE_NUMBER = re.compile(r"^\+?[0-9]*$")  # assumed: the API's phoneNumber check is not public
TRUE, FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


@dataclass(frozen=True)
class Field:
    """One property of ``telephony.LineOptions``.

    kind: ``bool``, ``int`` (a schema long), ``str``, ``phone`` (phoneNumber), ``enum`` or
    ``ips`` (ipBlock[]).
    """

    kind: str
    nullable: bool = False
    readonly: bool = False
    choices: tuple[str, ...] = ()


_BOOL, _PHONE, _NATURE = Field("bool"), Field("phone"), Field("enum", choices=NATURES)

# Every field of telephony.LineOptions (§2.2), in the schema's order.
OPTION_FIELDS: dict[str, Field] = {
    "absentSubscriber": _BOOL,
    "anonymousCallRejection": _BOOL,
    "callRestrictionIncoming": _BOOL,
    "callRestrictionOutgoing": _BOOL,
    "callWaiting": _BOOL,
    "codecs": Field("str"),
    "defaultVoicemail": _PHONE,
    "displayNumber": _PHONE,
    "doNotDisturb": _BOOL,
    "domain": Field("str"),
    "forwardBackup": _BOOL,
    "forwardBackupNature": _NATURE,
    "forwardBackupNumber": _PHONE,
    "forwardBusy": _BOOL,
    "forwardBusyNature": _NATURE,
    "forwardBusyNumber": _PHONE,
    "forwardNoReply": _BOOL,
    "forwardNoReplyDelay": Field("int"),
    "forwardNoReplyNature": _NATURE,
    "forwardNoReplyNumber": _PHONE,
    "forwardUnconditional": _BOOL,
    "forwardUnconditionalNature": _NATURE,
    "forwardUnconditionalNumber": _PHONE,
    "identificationRestriction": _BOOL,
    "intercom": Field("enum", choices=INTERCOM),
    "ipRestrictions": Field("ips"),
    "language": Field("enum", choices=LANGUAGES),
    "lockOutCall": _BOOL,
    "lockOutCallPassword": Field("str", nullable=True),
    "recordOutgoingCallsBeta": _BOOL,
    "toneOnCallWaitingSoundId": Field("int", nullable=True),
    "toneOnHoldSoundId": Field("int", nullable=True),
    "toneRingbackSoundId": Field("int", nullable=True),
    "voicemailExternalNumber": Field("phone", readonly=True),
    "voicemailInternalNumber": Field("str", readonly=True),
}


def default_options(line: str, domain: str) -> dict[str, Any]:
    """A new line's options, typed (assumed lab values: the schema gives no defaults)."""
    return {
        "absentSubscriber": False,
        "anonymousCallRejection": False,
        "callRestrictionIncoming": False,
        "callRestrictionOutgoing": False,
        "callWaiting": True,
        "codecs": "g711a&g711u&g722",  # assumed format
        "defaultVoicemail": line,
        "displayNumber": line,
        "doNotDisturb": False,
        "domain": domain,
        "forwardBackup": False,
        "forwardBackupNature": "number",
        "forwardBackupNumber": "",
        "forwardBusy": False,
        "forwardBusyNature": "number",
        "forwardBusyNumber": "",
        "forwardNoReply": False,
        "forwardNoReplyDelay": 20,
        "forwardNoReplyNature": "number",
        "forwardNoReplyNumber": "",
        "forwardUnconditional": False,
        "forwardUnconditionalNature": "number",
        "forwardUnconditionalNumber": "",
        "identificationRestriction": False,
        "intercom": "no",
        "ipRestrictions": [],
        "language": "French",
        "lockOutCall": False,
        "lockOutCallPassword": None,
        "recordOutgoingCallsBeta": False,
        "toneOnCallWaitingSoundId": None,
        "toneOnHoldSoundId": None,
        "toneRingbackSoundId": None,
        "voicemailExternalNumber": line,
        "voicemailInternalNumber": "123",  # assumed short number
    }


def decode(field: Field, raw: str) -> Any:
    """The typed value of a stored string; ValueError if it does not fit the field."""
    if raw == "" and field.nullable:
        return None
    if field.kind == "bool":
        low = raw.strip().lower()
        if low in TRUE or low in FALSE:
            return low in TRUE
        raise ValueError(f"not a boolean: {raw!r}")
    if field.kind == "int":
        return int(raw.strip())
    if field.kind == "ips":
        return [part for part in raw.split(",") if part]
    if field.kind == "enum" and raw not in field.choices:
        raise ValueError(f"not one of {', '.join(field.choices)}: {raw!r}")
    return raw


def encode(value: Any) -> str:
    """The stored string of a typed value (null is the empty string)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(value)
    return str(value)


def effective_options(
    defaults: Mapping[str, Any],
    overrides: Mapping[str, str],
    warn: Callable[[str], None] = lambda _msg: None,
) -> dict[str, Any]:
    """Defaults ⊕ the store's overrides, converted to the schema types.

    An override that does not fit its field (or an unknown name) is reported with ``warn``
    and ignored, so a stray htable entry cannot break the endpoint.
    """
    out = dict(defaults)
    for name, raw in overrides.items():
        field = OPTION_FIELDS.get(name)
        if field is None:
            warn(f"ignoring unknown option {name!r} in the store")
            continue
        if raw == "" and not field.nullable and field.kind in ("bool", "int", "enum"):
            continue  # cleared: the default applies
        try:
            out[name] = decode(field, raw)
        except ValueError as exc:
            warn(f"ignoring option {name}={raw!r} from the store: {exc}")
    return out


def _type_error(name: str, expected: str) -> Exception:
    # assumed wording: the real API's validation messages are not in our sources.
    return bad_request(f"Invalid value for body parameter {name}: expected {expected}")


def validate_option(name: str, value: Any) -> Any:
    """Check one property of a PUT body; return the value to store (typed). Raises ApiError."""
    field = OPTION_FIELDS.get(name)
    if field is None:
        # Wording as the API answers an unknown parameter elsewhere (assumed for this call).
        raise bad_request(f"Unknown body parameter {name}")
    if field.readonly:
        raise bad_request(f"Body parameter {name} is read-only")  # assumed wording
    if value is None:
        if field.nullable:
            return None
        raise _type_error(name, "a non-null value")
    if field.kind == "bool":
        if not isinstance(value, bool):
            raise _type_error(name, "a boolean")
    elif field.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _type_error(name, "a non-negative integer")
    elif field.kind == "ips":
        return _validate_ips(name, value)
    elif not isinstance(value, str):
        raise _type_error(name, "a string")
    elif field.kind == "phone" and not PHONE_NUMBER.match(value):
        raise _type_error(name, "a phone number")
    elif field.kind == "enum" and value not in field.choices:
        raise _type_error(name, "one of " + ", ".join(field.choices))
    elif field.kind == "str" and any(ord(c) < 32 for c in value):
        raise _type_error(name, "a string without control characters")
    return value


def _validate_ips(name: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _type_error(name, "a list of IP blocks")
    try:
        # assumed: blocks are normalised ("192.0.2.1" -> "192.0.2.1/32")
        return [str(ipaddress.ip_network(v, strict=False)) for v in value]
    except ValueError as exc:
        raise _type_error(name, "a list of IP blocks") from exc


# ---------------------------------------------------------------- Line, Phone, registrations


def line_model(service_name: str, line: Mapping[str, Any]) -> dict[str, Any]:
    """``telephony.Line`` of one account line (values not in the account file are assumed)."""
    offer = "voip.main.offer.fr"  # assumed offer name
    return {
        "canChangePassword": True,
        "description": line.get("description", service_name),
        "deviceSlot": 1 if line.get("phone") else 0,
        "getPublicOffer": {"description": "Ligne SIP", "name": offer, "price": None},
        "infrastructure": line.get("infrastructure", "lab"),
        "isAttachedToOtherLinesPhone": False,
        "notifications": None,
        "offers": [offer],
        "serviceName": service_name,
        "serviceType": "line",
        "simultaneousLines": int(line.get("simultaneousLines", 2)),
    }


def normal_mac(mac: str) -> str:
    """``80:5e:c0:aa:bb:cc`` from any usual spelling; ValueError if it is not a MAC."""
    digits = re.sub(r"[-:.]", "", mac.strip())
    if not re.fullmatch(r"[0-9A-Fa-f]{12}", digits):
        raise ValueError(f"not a MAC address: {mac!r}")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2)).lower()


def phone_model(phone: Mapping[str, Any]) -> dict[str, Any]:
    """``telephony.Phone`` of a line's Plug & Phone device."""
    return {
        "brand": phone["brand"],
        "description": phone.get("description", phone["brand"]),
        "macAddress": normal_mac(phone["macAddress"]),
        "maxSimultaneousCalls": int(phone.get("maxSimultaneousCalls", 2)),  # assumed default
        "maxline": int(phone.get("maxline", 1)),
        "mgcpIpRestriction": None,
        "phoneConfiguration": [],
        "protocol": "sip",
        "userPassword": None,
    }


def iso(epoch: float) -> str:
    """ISO 8601 with an offset, to the second: ``2026-11-27T10:12:33+00:00``."""
    return datetime.fromtimestamp(int(epoch), tz=UTC).isoformat()


def _int_or_none(text: str) -> int | None:
    return int(text) if text.strip().isdigit() else None


def _ip_or_none(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def registration_model(row: Mapping[str, str]) -> dict[str, Any]:
    """``telephony.RegistrationInformations`` of one raw registrar row (see store.py)."""
    return {
        "datetime": iso(float(row["time"])),
        "domain": row.get("domain") or None,
        "ip": row["ip"],
        "localIp": _ip_or_none(row.get("local_ip", "")),
        "localPort": _int_or_none(row.get("local_port", "")),
        "port": _int_or_none(row.get("port", "")),
        "userAgent": row.get("user_agent") or None,
    }


def _newest_first(rows: Iterable[Mapping[str, str]]) -> list[Mapping[str, str]]:
    return sorted(rows, key=lambda r: float(r["time"]), reverse=True)


def last_registrations(rows: Iterable[Mapping[str, str]], limit: int = 10) -> list[dict[str, Any]]:
    """The ``limit`` newest registrations, newest first."""
    return [registration_model(r) for r in _newest_first(rows)[:limit]]


def ips_model(rows: Iterable[Mapping[str, str]]) -> list[dict[str, Any]]:
    """``telephony.DatetimeAndIpvalue[]``: each public IP once, with its latest datetime.

    Newest first (assumed: the manager's autoConfig step pre-fills ``ips[0]`` as "the last
    known IP address", though its line-phone factory shows the last element).
    """
    seen: dict[str, float] = {}
    for row in _newest_first(rows):
        seen.setdefault(row["ip"], float(row["time"]))
    return [{"datetime": iso(when), "ip": ip} for ip, when in seen.items()]
