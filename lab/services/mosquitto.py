"""The portal's MQTT broker at the provider: Debian's mosquitto, TLS only (port 8883).

The office PC sits behind the router's NAT, so the portal cannot call it: ``phonediag
serve`` on the agent host connects out to this broker, as a real office PC would reach
OVHcloud's (docs/portal-protocol.md). What the lab writes, under its state dir:

- ``mqtt-tls/``: a lab CA (its key never written) and the broker's certificate for
  ``mqtt.ovh.test`` and the broker's address;
- ``mqtt/``: ``mosquitto.conf``, the password file (``mosquitto_passwd -b``: one user per
  agent, named as the agent, and ``portal``), the ACL file (an agent reads only its own
  jobs and writes only its own status, key, progress and results; the portal the reverse),
  ``store/`` (``persistence true``: a QoS 1 job or result queued for a client that is away
  survives a broker restart), and the portal's side: its Ed25519 key pair (``portal.key``
  0600, ``portal.pub``) and its MQTT password (``portal.password``, 0600).

``enrolment_token`` builds what the portal's web page would show once: base64url of
``{"agent", "broker", "username", "password", "ca_pem", "portal_key_pem"}``, which
``phonediag portal enroll --broker URL --token T`` takes (agent/portal/enroll.py).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from lab import procs
from lab.services.ovhapi.tls import make_tls, tls_dir
from lab.state import Proc

NAME = "mqtt.ovh.test"  # the broker's name (in its certificate, and in the LAN's DNS)
PORT = 8883  # MQTT over TLS; there is no plain listener
AGENT_ID = "office-pc"  # the lab's one agent: its MQTT user and its client id
PORTAL_USER = "portal"
PREFIX = "phonediag/v1"
TLS_SUBDIR = "mqtt-tls"
PROC_NAME = "mosquitto"

# %u is the MQTT user name, which is the agent's id: an agent can only read its own jobs
# and write its own status, key, progress and results. Patterns apply to every user.
ACL = f"""# phonediag lab broker (lab/services/mosquitto.py)
pattern read {PREFIX}/agents/%u/jobs
pattern write {PREFIX}/agents/%u/status
pattern write {PREFIX}/agents/%u/key
pattern write {PREFIX}/agents/%u/progress/+
pattern write {PREFIX}/agents/%u/results/+

user {PORTAL_USER}
topic write {PREFIX}/agents/+/jobs
topic read {PREFIX}/agents/+/status
topic read {PREFIX}/agents/+/key
topic read {PREFIX}/agents/+/progress/+
topic read {PREFIX}/agents/+/results/+
"""


def conf_dir(state_dir: Path) -> Path:
    """The broker's configuration, store and the portal's side (owner-only)."""
    return state_dir / "mqtt"


def ca_file(state_dir: Path) -> Path:
    """The lab CA that signed the broker's certificate (what an agent is told to trust)."""
    return tls_dir(state_dir, TLS_SUBDIR) / "ca.pem"


def portal_key(state_dir: Path) -> Path:
    """The portal's Ed25519 private key (PKCS#8 PEM, 0600): it signs the jobs."""
    return conf_dir(state_dir) / "portal.key"


def portal_pub(state_dir: Path) -> Path:
    """The portal's public key (PEM): what an agent verifies jobs with."""
    return conf_dir(state_dir) / "portal.pub"


def portal_password_file(state_dir: Path) -> Path:
    """The portal's MQTT password, alone in a file (``portal submit --password-file``)."""
    return conf_dir(state_dir) / "portal.password"


def log_file(state_dir: Path) -> Path:
    """The broker's log (its own ``log_dest file``: flushed line by line, appended to across
    restarts; its standard output would be buffered)."""
    return state_dir / "logs" / "mosquitto.log"


def url(host: str) -> str:
    """The broker's URL as an agent or the portal names it."""
    return f"mqtts://{host}:{PORT}"


def new_users() -> dict[str, str]:
    """Fresh MQTT passwords: the lab's agent and the portal (user -> password)."""
    return {AGENT_ID: secrets.token_urlsafe(18), PORTAL_USER: secrets.token_urlsafe(18)}


def _write(path: Path, data: str | bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)


def _conf(state_dir: Path, ip: str, port: int, cert: Path, key: Path) -> str:
    where = conf_dir(state_dir)
    return f"""# phonediag lab broker (lab/services/mosquitto.py)
user root
per_listener_settings false
allow_anonymous false
password_file {where / "passwd"}
acl_file {where / "acl"}
persistence true
persistence_location {where / "store"}/
autosave_interval 30
log_dest file {log_file(state_dir)}
log_type error
log_type warning
log_type notice
log_type information
connection_messages true
log_timestamp_format %Y-%m-%dT%H:%M:%S
listener {port} {ip}
protocol mqtt
tls_version tlsv1.2
cafile {ca_file(state_dir)}
certfile {cert}
keyfile {key}
"""


def configure(state_dir: Path, ip: str, users: Mapping[str, str], port: int = PORT) -> Path:
    """Write the broker's TLS files, configuration, password and ACL files, and the portal's
    key pair and password file; return the configuration file (listening on ``ip``:``port``;
    the unit tests use it on loopback)."""
    where = conf_dir(state_dir)
    where.mkdir(mode=0o700, exist_ok=True)
    (where / "store").mkdir(mode=0o700, exist_ok=True)
    _ca, cert, key = make_tls(state_dir, NAME, ips=(ip,), subdir=TLS_SUBDIR)
    passwd = where / "passwd"
    _write(passwd, "", 0o600)
    for user, password in users.items():
        subprocess.run(
            ["mosquitto_passwd", "-b", str(passwd), user, password],
            check=True,
            capture_output=True,
            timeout=10,
        )
    _write(where / "acl", ACL, 0o600)
    private = ed25519.Ed25519PrivateKey.generate()
    _write(
        portal_key(state_dir),
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        0o600,
    )
    _write(
        portal_pub(state_dir),
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        0o644,
    )
    _write(portal_password_file(state_dir), users[PORTAL_USER] + "\n", 0o600)
    conf = where / "mosquitto.conf"
    _write(conf, _conf(state_dir, ip, port, cert, key), 0o600)
    return conf


def spawn(ns: str, state_dir: Path) -> Proc:
    """Start mosquitto (already configured) in the foreground in ``ns``; log
    ``logs/mosquitto.log`` (appended to across restarts)."""
    conf = conf_dir(state_dir) / "mosquitto.conf"
    return procs.spawn(PROC_NAME, "prov", ns, ["mosquitto", "-c", str(conf)], log_file(state_dir))


def start(ns: str, ip: str, state_dir: Path, users: Mapping[str, str]) -> Proc:
    """Configure the broker for ``users`` (user -> password) and start it on ``ip``:8883."""
    configure(state_dir, ip, users)
    return spawn(ns, state_dir)


def enrolment_token(state_dir: Path, agent: str, broker: str, password: str) -> str:
    """What the portal shows once to enrol ``agent``: base64url (no padding) of the JSON
    ``{"agent", "broker", "username", "password", "ca_pem", "portal_key_pem"}``."""
    doc = {
        "agent": agent,
        "broker": broker,
        "username": agent,
        "password": password,
        "ca_pem": ca_file(state_dir).read_text(),
        "portal_key_pem": portal_pub(state_dir).read_text(),
    }
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
