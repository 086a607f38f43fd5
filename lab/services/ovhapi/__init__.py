"""A local stand-in of OVHcloud's API v1, the /telephony subset the agent reads.

It is faithful to the published schema (telephony.Line, LineOptions, RegistrationInformations,
DatetimeAndIpvalue, Phone, Task, ResetPhoneInfo) and checks OVHcloud's request signature, so
the agent's real client (python-ovh) is exercised end to end. Run by the lab at the provider::

    python -m lab.services.ovhapi --listen IP --port 443 --cert CERT.pem --key KEY.pem \\
        --account ACCOUNT.json --ctl CTL_SOCKET \\
        [--provisioning-port 80 --provisioning-log FETCHES.jsonl]

Without ``--ctl`` the state lives in memory. Endpoints (under ``/1.0``): ``GET /auth/time``,
``GET /telephony``, ``GET /telephony/{ba}/line``, ``GET /telephony/{ba}/line/{sn}``,
``GET|PUT .../options``, ``GET .../lastRegistrations``, ``GET .../ips``, ``GET .../phone``,
``POST .../phone/reboot``, ``POST .../phone/resetConfig``. Details: lab/README.md. With
``--provisioning-port`` it also serves OVHcloud's provisioning server over plain HTTP on the
same address (provisioning.py): a phone's profile, only to the address given to resetConfig.

Line options and registrations are shared with the lab's Kamailio (htables ``opts`` and
``regs``, see store.py), so forwarding set through the API or by a phone is one state.

The account file (JSON, owner-only: it holds the application secrets)::

    {"credentials": [{"application_key": "...", "application_secret": "...",
                      "consumer_key": "...",
                      "rules": [{"method": "GET", "path": "/telephony"},
                                {"method": "GET", "path": "/telephony/*"},
                                {"method": "PUT", "path": "/telephony/*"},
                                {"method": "POST", "path": "/telephony/*"}]}],
     "billing_accounts": {"ovhtel-12345678-1": {"description": "Bureau", "lines": {
         "1001": {"description": "Accueil",
                  "phone": {"brand": "phone.yealink.t46s", "description": "Yealink T46S",
                            "macAddress": "80:5e:c0:aa:bb:cc", "maxline": 16}},
         "1002": {"description": "...", "phone": null}}}},
     "sip_domain": "sip.ovh.test"}

A line may also give ``sip_password`` (a string): the password the provisioning server puts
in the line's profile (``Password_1_``); the lab writes the registrar's real passwords there.

``sip_domain`` (optional, default the lab registrar's domain) is every line's default
``domain`` option. A line may also give ``infrastructure`` and ``simultaneousLines``; a phone
may give ``maxSimultaneousCalls``. A rule path ending with ``*`` is a prefix (OVHcloud's
convention): ``/telephony/*`` does not grant ``GET /telephony`` itself.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lab import procs
from lab.services import kamailio
from lab.services.ovhapi.auth import DEFAULT_RULES, Account, Credential, Rule, signature
from lab.services.ovhapi.server import ApiServer, StandIn, make_server
from lab.services.ovhapi.store import (
    KamailioStore,
    MemoryStore,
    Store,
    StoreError,
    parse_htable_dump,
    parse_reg,
)
from lab.services.ovhapi.tls import make_tls
from lab.state import Proc

__all__ = [
    "DEFAULT_RULES",
    "ENDPOINT",
    "NAME",
    "PORT",
    "PROVISIONING_PORT",
    "Account",
    "ApiServer",
    "Credential",
    "KamailioStore",
    "MemoryStore",
    "Rule",
    "StandIn",
    "Store",
    "StoreError",
    "account_file",
    "ca_file",
    "make_credentials",
    "make_server",
    "make_tls",
    "parse_htable_dump",
    "parse_reg",
    "provisioning_log",
    "signature",
    "start",
]

REPO = Path(__file__).resolve().parents[3]
NAME = "api.ovh.test"  # the lab's API host name (the certificate's name)
PORT = 443
PROVISIONING_PORT = 80  # OVHcloud's provisioning server, plain HTTP (provisioning.py)
ENDPOINT = f"https://{NAME}/1.0"
_ALNUM = string.ascii_letters + string.digits


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def make_credentials() -> dict[str, Any]:
    """A fresh credential for the account file: AK (16 chars), AS (32), CK (32), like
    OVHcloud's, with the rules the agent needs (``DEFAULT_RULES``)."""
    return {
        "application_key": _random(16),
        "application_secret": _random(32),
        "consumer_key": _random(32),
        "rules": [dict(rule) for rule in DEFAULT_RULES],
    }


def account_file(state_dir: Path) -> Path:
    return state_dir / "ovhapi-account.json"


def provisioning_log(state_dir: Path) -> Path:
    """The provisioning server's record of profile fetches (JSON lines)."""
    return state_dir / "ovhapi-provisioning.jsonl"


def ca_file(state_dir: Path) -> Path:
    """The lab CA the agent must trust (written by ``start``)."""
    return state_dir / "ovhapi-tls" / "ca.pem"


def start(ns: str, ip: str, state_dir: Path, account: Mapping[str, Any]) -> Proc:
    """Write the account file (owner-only) and a TLS certificate for ``NAME`` and ``ip``,
    then start the stand-in in namespace ``ns`` on ``ip``:443, its state in the lab's
    Kamailio, with the provisioning server on ``ip``:80. The CA is ``ca_file(state_dir)``;
    the log is ``logs/ovhapi.log``, the fetches ``provisioning_log(state_dir)``."""
    Account.from_dict(account)  # a bad account fails here, not in the daemon's log
    path = account_file(state_dir)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(account, fh, indent=2)
    path.chmod(0o600)
    _ca, cert, key = make_tls(state_dir, NAME, ips=(ip,))
    argv = [
        sys.executable, "-m", "lab.services.ovhapi",
        "--listen", ip, "--port", str(PORT), "--cert", str(cert), "--key", str(key),
        "--account", str(path), "--ctl", str(kamailio.ctl_socket(state_dir)),
        "--provisioning-port", str(PROVISIONING_PORT),
        "--provisioning-log", str(provisioning_log(state_dir)),
    ]  # fmt: skip
    log = state_dir / "logs" / "ovhapi.log"
    return procs.spawn("ovhapi", "prov", ns, argv, log, env={"PYTHONPATH": str(REPO)})
