"""The account file and OVHcloud's request signature (API v1 "application keys").

A signed call carries X-Ovh-Application (AK), X-Ovh-Consumer (CK), X-Ovh-Timestamp and
X-Ovh-Signature = "$1$" + sha1_hex(AS + "+" + CK + "+" + METHOD + "+" + FULL_URL + "+" + BODY
+ "+" + TIMESTAMP), FULL_URL being the endpoint + path + query exactly as the client built it.
The checks run in this order: application key, consumer key (it must belong to that
application), timestamp window, signature, the consumer key's access rules.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.services import kamailio
from lab.services.ovhapi import errors, schema

TIME_WINDOW = 300  # seconds; assumed: OVHcloud does not publish its tolerance
METHODS = ("GET", "POST", "PUT", "DELETE")


@dataclass(frozen=True)
class Rule:
    """An access rule of a consumer key: ``{"method": "GET", "path": "/telephony/*"}``.

    A path ending with ``*`` matches every path that starts with what precedes the star;
    any other path matches itself only. So ``/telephony/*`` does not grant ``/telephony``
    (python-ovh's ``add_recursive_rules`` adds both ``/x`` and ``/x/*`` for that reason).
    """

    method: str
    path: str

    def allows(self, method: str, path: str) -> bool:
        if self.method != method:
            return False
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path


# Everything the agent needs on /telephony: the billing account list and everything below.
DEFAULT_RULES: tuple[dict[str, str], ...] = (
    {"method": "GET", "path": "/telephony"},
    {"method": "GET", "path": "/telephony/*"},
    {"method": "PUT", "path": "/telephony/*"},
    {"method": "POST", "path": "/telephony/*"},
)


@dataclass(frozen=True)
class Credential:
    application_key: str
    application_secret: str
    consumer_key: str
    rules: tuple[Rule, ...]

    def grants(self, method: str, path: str) -> bool:
        return any(rule.allows(method, path) for rule in self.rules)


@dataclass(frozen=True)
class Account:
    """The contents of the account file (shape: the package docstring)."""

    credentials: tuple[Credential, ...]
    billing_accounts: dict[str, dict[str, Any]]
    sip_domain: str = kamailio.DOMAIN

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Account:
        """Validate and load; ValueError says what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError("account: expected an object")
        creds = tuple(_credential(i, c) for i, c in enumerate(_list(data, "credentials")))
        bas = data.get("billing_accounts")
        if not isinstance(bas, Mapping):
            raise ValueError("account: billing_accounts must be an object")
        billing = {str(name): _billing_account(str(name), ba) for name, ba in bas.items()}
        domain = data.get("sip_domain", kamailio.DOMAIN)
        if not isinstance(domain, str) or not domain:
            raise ValueError("account: sip_domain must be a non-empty string")
        return cls(creds, billing, domain)

    @classmethod
    def load(cls, path: Path) -> Account:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"account file {path}: {exc}") from exc
        return cls.from_dict(data)

    def credential(self, application_key: str) -> list[Credential]:
        return [c for c in self.credentials if c.application_key == application_key]


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise ValueError(f"account: {key} must be a list")
    return value


def _credential(index: int, data: Any) -> Credential:
    where = f"account: credentials[{index}]"
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected an object")
    keys = ("application_key", "application_secret", "consumer_key")
    for key in keys:
        if not isinstance(data.get(key), str) or not data[key]:
            raise ValueError(f"{where}: {key} must be a non-empty string")
    rules = []
    for rule in data.get("rules", []):
        if (
            not isinstance(rule, Mapping)
            or rule.get("method") not in METHODS
            or not str(rule.get("path", "")).startswith("/")
        ):
            raise ValueError(f"{where}: bad rule {rule!r} (method GET|POST|PUT|DELETE, path /...)")
        rules.append(Rule(rule["method"], rule["path"]))
    return Credential(*(data[k] for k in keys), rules=tuple(rules))


def _billing_account(name: str, data: Any) -> dict[str, Any]:
    where = f"account: billing account {name!r}"
    if not isinstance(data, Mapping) or not isinstance(data.get("lines"), Mapping):
        raise ValueError(f"{where}: expected an object with 'lines'")
    lines = {}
    for sn, line in data["lines"].items():
        if not isinstance(line, Mapping):
            raise ValueError(f"{where}: line {sn!r} must be an object")
        phone = line.get("phone")
        if phone is not None:
            if not isinstance(phone, Mapping) or not isinstance(phone.get("brand"), str):
                raise ValueError(f"{where}: line {sn!r}: phone needs a brand")
            try:
                schema.normal_mac(str(phone.get("macAddress", "")))
            except ValueError as exc:
                raise ValueError(f"{where}: line {sn!r}: {exc}") from exc
        if not isinstance(line.get("sip_password", ""), str):
            raise ValueError(f"{where}: line {sn!r}: sip_password must be a string")
        lines[str(sn)] = dict(line)
    return {"description": data.get("description", name), "lines": lines}


def signature(secret: str, consumer_key: str, method: str, url: str, body: str, ts: str) -> str:
    """The X-Ovh-Signature of a call."""
    text = "+".join([secret, consumer_key, method.upper(), url, body, ts])
    return "$1$" + hashlib.sha1(text.encode("utf-8")).hexdigest()


def full_urls(scheme: str, host: str, target: str) -> list[str]:
    """The URLs the client may have signed for a request received with ``Host: host``.

    A client that named the default port (``https://h:443/1.0``) signs it, but sends
    ``Host: h``; both spellings are accepted.
    """
    urls = [f"{scheme}://{host}{target}"]
    default = {"https": 443, "http": 80}[scheme]
    if host and not host.endswith("]") and ":" not in host:
        urls.append(f"{scheme}://{host}:{default}{target}")
    elif host.endswith(f":{default}"):
        urls.append(f"{scheme}://{host[: -len(str(default)) - 1]}{target}")
    return urls


def authenticate(
    account: Account,
    method: str,
    api_path: str,
    urls: Sequence[str],
    headers: Mapping[str, str],
    body: str,
    now: float,
) -> Credential:
    """The credential that signed this call, or ApiError (INVALID_KEY, ...)."""
    creds = account.credential(headers.get("x-ovh-application", ""))
    if not creds:
        raise errors.invalid_key()
    ck = headers.get("x-ovh-consumer", "")
    ts = headers.get("x-ovh-timestamp", "")
    sig = headers.get("x-ovh-signature", "")
    if not (ck and ts and sig):
        raise errors.not_logged_in()
    cred = next((c for c in creds if c.consumer_key == ck), None)
    if cred is None:
        raise errors.invalid_credential()
    try:
        stamp = int(ts)
    except ValueError:
        raise errors.invalid_signature() from None  # assumed: a non-numeric timestamp
    if abs(stamp - now) > TIME_WINDOW:
        raise errors.query_time_out()
    expected = [signature(cred.application_secret, ck, method, url, body, ts) for url in urls]
    given = sig.encode("utf-8", "replace")
    if not any(hmac.compare_digest(given, e.encode()) for e in expected):
        raise errors.invalid_signature()
    if not cred.grants(method, api_path):
        raise errors.not_granted()
    return cred
