"""Enrolment: the portal's one-time token becomes this agent's identity in the portal folder
(``[portal] dir``, by default ``portal/`` next to the local store).

The token is what the portal's web page shows once: base64url (padding optional) of the JSON
object::

    {"agent": "office-pc",                      # the agent's id: its topics, its client id
     "broker": "mqtts://mqtt.example.net:8883", # where to connect (TLS only)
     "username": "office-pc", "password": "…",  # its MQTT login (username: the agent id)
     "ca_pem": "-----BEGIN CERTIFICATE-----…",  # the CA of the broker's certificate, or null
                                                # for the system's CAs
     "portal_key_pem": "-----BEGIN PUBLIC KEY-----…"}   # the portal's Ed25519 public key

``phonediag portal enroll --broker URL --token T`` checks that the token is for that broker
(the technician typed the URL: a token pasted for another broker is refused), then writes
``agent.toml`` (0600: it holds the MQTT password), ``ca.pem``, ``portal.pub`` and, unless
there already is one, the agent's own key pair ``agent.key`` (0600) / ``agent.pub``. On
its first connection ``phonediag serve`` publishes ``agent.pub`` (retained) on
``phonediag/v1/agents/{agent}/key``, where the portal reads it to check the results.
"""

from __future__ import annotations

import binascii
import json
import os
import ssl
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.portal import keys, mqtt, valid_agent_id

CA_FILE = "ca.pem"
MAX_TOKEN = 64 * 1024  # characters: a token is a few KB (two PEMs)
_FIELDS = {"agent", "broker", "username", "password", "ca_pem", "portal_key_pem"}


class EnrolError(Exception):
    """The token is unusable, or the identity cannot be written or read (one line)."""


@dataclass(frozen=True)
class Identity:
    """This agent as the portal knows it (``agent.toml`` and the key files beside it)."""

    agent: str
    broker: str  # mqtts://host:port
    ca_file: str | None  # None: the system's CAs
    username: str
    password: str = field(repr=False)  # never printed
    directory: Path = field(default_factory=Path)

    def login(self) -> mqtt.Broker:
        host, port = mqtt.parse_url(self.broker)
        return mqtt.Broker(host, port, self.ca_file, self.username, self.password)

    @property
    def key_file(self) -> Path:
        return self.directory / keys.AGENT_KEY

    @property
    def pub_file(self) -> Path:
        return self.directory / keys.AGENT_PUB

    @property
    def portal_pub_file(self) -> Path:
        return self.directory / keys.PORTAL_PUB


def decode_token(token: str) -> dict[str, Any]:
    """The token's fields, checked (EnrolError saying what is wrong; never the password)."""
    text = "".join(token.split())  # pasted across lines
    if not text or len(text) > MAX_TOKEN:
        raise EnrolError("the token is empty or too long")
    try:
        raw = keys.b64decode(text.rstrip("="))
        doc = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise EnrolError("not an enrolment token (base64url of a JSON object)") from None
    if not isinstance(doc, dict):
        raise EnrolError("not an enrolment token (base64url of a JSON object)")
    missing = sorted(_FIELDS - {"username", "ca_pem"} - set(doc))
    if missing:
        raise EnrolError(f"the token lacks {', '.join(missing)}")
    if not valid_agent_id(doc["agent"]):
        raise EnrolError(f"the token's agent id is not valid: {doc['agent']!r}")
    doc.setdefault("username", doc["agent"])
    doc.setdefault("ca_pem", None)
    for name in ("broker", "username", "password", "portal_key_pem"):
        if not isinstance(doc[name], str) or not doc[name]:
            raise EnrolError(f"the token's {name} must be a non-empty string")
    if doc["ca_pem"] is not None and not isinstance(doc["ca_pem"], str):
        raise EnrolError("the token's ca_pem must be a PEM string or null")
    try:
        mqtt.parse_url(doc["broker"])
    except mqtt.BrokerError as e:
        raise EnrolError(f"the token's broker: {e}") from None
    return doc


def _check_ca(pem: str) -> None:
    try:
        ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError) as e:
        raise EnrolError(f"the token's CA certificate is not usable: {e}") from None


def _write_text(path: Path, text: str, mode: int) -> None:
    """Atomically replace ``path`` with ``text`` (``mode`` whatever the umask)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if tmp.exists():
            tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        if os.name == "posix":
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:
        raise EnrolError(f"{path}: {e.strerror or e}") from None


def _toml(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def enroll(directory: Path, broker_url: str, token: str, new_key: bool = False) -> Identity:
    """Check ``token`` against ``broker_url`` and write the identity into ``directory``;
    the agent's key pair is made unless one is there (``new_key``: replaced)."""
    doc = decode_token(token)
    try:
        matches = mqtt.same_broker(broker_url, doc["broker"])
    except mqtt.BrokerError as e:
        raise EnrolError(str(e)) from None
    if not matches:
        raise EnrolError(f"this token is for the broker {doc['broker']}, not {broker_url}")
    try:
        portal_key = keys.parse_public(doc["portal_key_pem"])
    except keys.BadKey as e:
        raise EnrolError(f"the token's portal key: {e}") from None
    ca_file = None
    if doc["ca_pem"]:
        _check_ca(doc["ca_pem"])
        ca_file = directory / CA_FILE
        _write_text(ca_file, doc["ca_pem"], 0o644)
    try:
        keys.save_public(portal_key, directory / keys.PORTAL_PUB, replace=True)
        key_file = directory / keys.AGENT_KEY
        if new_key or not _usable_key(key_file):
            private = keys.generate()
            keys.save_private(private, key_file, replace=True)
            keys.save_public(private, directory / keys.AGENT_PUB, replace=True)
        elif not (directory / keys.AGENT_PUB).exists():
            keys.save_public(keys.load_private(key_file), directory / keys.AGENT_PUB)
    except keys.KeyFileError as e:
        raise EnrolError(str(e)) from None
    host, port = mqtt.parse_url(doc["broker"])
    identity = Identity(
        agent=doc["agent"],
        broker=mqtt.url_of(host, port),
        ca_file=str(ca_file) if ca_file else None,
        username=doc["username"],
        password=doc["password"],
        directory=directory,
    )
    lines = [
        "# phonediag portal identity, written by `phonediag portal enroll`",
        f"# {datetime.now(UTC).isoformat(timespec='seconds')}; it holds the MQTT password",
        f"agent = {_toml(identity.agent)}",
        f"broker = {_toml(identity.broker)}",
        *([f"ca_file = {_toml(identity.ca_file)}"] if identity.ca_file else []),
        f"username = {_toml(identity.username)}",
        f"password = {_toml(identity.password)}",
    ]
    _write_text(directory / keys.AGENT_TOML, "\n".join(lines) + "\n", 0o600)
    return identity


def _usable_key(path: Path) -> bool:
    try:
        keys.load_private(path)
        return True
    except keys.KeyFileError:
        return False


def load(directory: Path) -> Identity:
    """The identity ``enroll`` wrote (EnrolError if not enrolled or the files are broken)."""
    path = directory / keys.AGENT_TOML
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EnrolError(
            f"not enrolled ({path} missing): run `phonediag portal enroll --broker URL "
            "--token TOKEN` first"
        ) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise EnrolError(f"{path}: {getattr(e, 'strerror', None) or e}") from None
    want = {"agent": str, "broker": str, "username": str, "password": str}
    for name, typ in want.items():
        if not isinstance(doc.get(name), typ) or not doc[name]:
            raise EnrolError(f"{path}: {name} missing or not a string")
    ca_file = doc.get("ca_file")
    if ca_file is not None and not isinstance(ca_file, str):
        raise EnrolError(f"{path}: ca_file must be a string")
    if not valid_agent_id(doc["agent"]):
        raise EnrolError(f"{path}: not a valid agent id: {doc['agent']!r}")
    try:
        mqtt.parse_url(doc["broker"])
    except mqtt.BrokerError as e:
        raise EnrolError(f"{path}: {e}") from None
    return Identity(
        doc["agent"], doc["broker"], ca_file, doc["username"], doc["password"], directory
    )
