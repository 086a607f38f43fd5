"""The agent's configuration: a TOML file named by ``--config`` or ``PHONEDIAG_CONFIG``.

Every key has a default, so the agent runs with no file at all. Unknown keys and
wrong types are refused with a message naming the file and the key.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid."""


@dataclass(frozen=True)
class Credential:
    """A management login; ``vendor``/``device`` say where it applies (neither: anywhere)."""

    username: str
    password: str = field(repr=False)  # never printed
    vendor: str | None = None
    device: str | None = None

    def applies(self, vendor: str | None, ip: str) -> bool:
        if self.device is not None:
            return self.device == ip
        return self.vendor is None or self.vendor == vendor


@dataclass
class Config:
    registrar: str = "sip.ovh.net"
    registrar_ports: list[int] = field(default_factory=lambda: [5060, 5962])
    stun_server: str | None = None
    reflector: str | None = None  # host running `phonediag reflector` beyond the NAT
    provisioning_hosts: list[str] = field(
        default_factory=lambda: [
            "cisco.prov.voip.ovh.net",  # ovh-guides.md §4.2 and ovh-control-panel-and-api.md §1.8
            "lk.prov.voip.ovh.net",
            "lgn.prov.voip.ovh.net",
            "th.prov.voip.ovh.net",
            "gigaset.prov.voip.ovh.net",  # ovh-guides.md §3.4 (N670 firmware URL)
            "pb.voip.ovh.net",  # the phonebook host
        ]
    )
    nat_budget: float = 40.0  # seconds the NAT-lifetime test may take (deep: 200)
    networks: list[str] = field(default_factory=list)  # explicit scope (still private-only)
    max_prefix: int = 22  # largest network swept without --widen
    sip_ports: list[int] = field(default_factory=lambda: [5060])
    snmp_communities: list[str] = field(default_factory=lambda: ["public"], repr=False)
    # An optional SNMPv3 user, tried after the communities ([snmp] v3_*; keys never printed)
    snmp_v3_user: str | None = None
    snmp_v3_auth_key: str | None = field(default=None, repr=False)
    snmp_v3_priv_key: str | None = field(default=None, repr=False)
    snmp_v3_auth_protocol: str = "SHA"  # MD5 SHA SHA224 SHA256 SHA384 SHA512
    snmp_v3_priv_protocol: str = "AES"  # DES 3DES AES (AES128) AES192 AES256
    # One network operation of the diagnosis: the registrar and the resolver over the
    # Internet, STUN, the reflector; a phone's web pages get twice as long.
    timeout: float = 1.5
    # Discovery's wait for an answer to each of its probes on the LAN, where phones answer
    # in 1-50 ms: every method ends about this long after its last packet.
    sweep_timeout: float = 1.0
    mdns_window: float = 1.0  # how long to listen for mDNS answers (resolving meanwhile)
    pnp_window: float | None = None  # how long to listen for SIP PnP SUBSCRIBEs (None: mdns_window)
    deadline: float = 60.0  # the whole run
    # Packets per second, all discovery methods together (one limiter). At 8000/s the
    # ~1000 probes of a /24 (ARP, SIP over UDP and over TCP, SNMP: one of each per
    # address) leave in 0.13 s. Less reaches the wire: a probe to an absent address never
    # leaves this host (the kernel's ARP request for it does, as for any tool), a live
    # host gets one packet of each kind (a phone answering SNMP, two or three reads
    # more). Measured in the fleet lab /24: ~1500 frames in all, at most ~5300 frames/s
    # and 4.5 Mbit/s, for a tenth of a second (0.45 % of a gigabit LAN, 4.5 % of a
    # 100 Mbit/s one); nmap's ARP ping of the same /24 peaks at ~1300 frames/s for 0.5 s.
    # README, "Performance".
    rate: int = 8000
    credentials: list[Credential] = field(default_factory=list)
    default_logins: bool = False  # opt in to the factory logins of the guides
    # The OVHcloud API ([provider]); a key left out is looked up in the environment
    # (OVH_APPLICATION_KEY, ...), the ovh.conf files, then the OS keyring.
    provider_endpoint: str | None = None  # ovh-eu | ovh-ca | ovh-us | https://... (default ovh-eu)
    provider_ca_file: str | None = None  # a CA to trust for that endpoint (default: the system's)
    provider_application_key: str | None = None
    provider_application_secret: str | None = field(default=None, repr=False)  # never printed
    provider_consumer_key: str | None = field(default=None, repr=False)  # never printed
    provider_billing_accounts: list[str] = field(default_factory=list)  # default: all
    provider_lines: list[str] = field(default_factory=list)  # default: every line read
    provider_max_lines: int = 100  # lines read per run at most
    # The local SQLite store ([store] path; default agent/store.py default_path()): the
    # remedies' audit log and the run history. Never holds a secret.
    store_path: str | None = None
    # The run history in that store ([history] keep): the newest runs kept (0: none stored).
    history_keep: int = 1000
    # Remedies a portal job may run without a person's consent ([remedies] portal_allowed;
    # default none). Checked by agent.remedies.allowed_for_portal().
    remedies_portal_allowed: list[str] = field(default_factory=list)
    # Portal mode's folder ([portal] dir): the agent's key pair, the portal's public key and
    # agent.toml, written by `phonediag portal enroll` (default: portal/ next to the store).
    portal_dir: str | None = None
    # An optional, read-only SSH look at the office router ([router]; docs: README): off
    # unless ``ssh`` is set. ``router_ssh`` is "user@host[:port]" (an IPv4 address on the
    # LAN, checked against the scope at run time); ``key`` a private key file and/or
    # ``password``; ``timeout`` (default: ``timeout``) for the connection and each command.
    router_ssh: str | None = None
    router_ssh_key: str | None = None
    router_ssh_password: str | None = field(default=None, repr=False)  # never printed
    router_ssh_timeout: float | None = None
    source: str | None = None  # the file it came from

    def logins_for(self, vendor: str | None, ip: str) -> list[Credential]:
        """Configured logins for a device, most specific first (device, vendor, site)."""
        mine = [c for c in self.credentials if c.applies(vendor, ip)]
        return sorted(mine, key=lambda c: (c.device is None, c.vendor is None))


# (section, key) -> (attribute, type)
_SCHEMA: dict[tuple[str, str], tuple[str, type]] = {
    ("site", "registrar"): ("registrar", str),
    ("site", "registrar_ports"): ("registrar_ports", list),
    ("site", "stun_server"): ("stun_server", str),
    ("site", "reflector"): ("reflector", str),
    ("site", "provisioning_hosts"): ("provisioning_hosts", list),
    ("nat", "budget"): ("nat_budget", float),
    ("scope", "networks"): ("networks", list),
    ("scope", "max_prefix"): ("max_prefix", int),
    ("discovery", "sip_ports"): ("sip_ports", list),
    ("discovery", "timeout"): ("timeout", float),
    ("discovery", "sweep_timeout"): ("sweep_timeout", float),
    ("discovery", "mdns_window"): ("mdns_window", float),
    ("discovery", "pnp_window"): ("pnp_window", float),
    ("discovery", "rate"): ("rate", int),
    ("run", "deadline"): ("deadline", float),
    ("snmp", "communities"): ("snmp_communities", list),
    ("snmp", "v3_user"): ("snmp_v3_user", str),
    ("snmp", "v3_auth_key"): ("snmp_v3_auth_key", str),
    ("snmp", "v3_priv_key"): ("snmp_v3_priv_key", str),
    ("snmp", "v3_auth_protocol"): ("snmp_v3_auth_protocol", str),
    ("snmp", "v3_priv_protocol"): ("snmp_v3_priv_protocol", str),
    ("vendors", "default_logins"): ("default_logins", bool),
    ("provider", "endpoint"): ("provider_endpoint", str),
    ("provider", "ca_file"): ("provider_ca_file", str),
    ("provider", "application_key"): ("provider_application_key", str),
    ("provider", "application_secret"): ("provider_application_secret", str),
    ("provider", "consumer_key"): ("provider_consumer_key", str),
    ("provider", "billing_accounts"): ("provider_billing_accounts", list),
    ("provider", "lines"): ("provider_lines", list),
    ("provider", "max_lines"): ("provider_max_lines", int),
    ("store", "path"): ("store_path", str),
    ("history", "keep"): ("history_keep", int),
    ("remedies", "portal_allowed"): ("remedies_portal_allowed", list),
    ("portal", "dir"): ("portal_dir", str),
    ("router", "ssh"): ("router_ssh", str),
    ("router", "key"): ("router_ssh_key", str),
    ("router", "password"): ("router_ssh_password", str),
    ("router", "timeout"): ("router_ssh_timeout", float),
}


ZERO_OK = {"nat_budget", "history_keep"}  # 0 means "skip this test", "keep no run"


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Load the configuration from ``path``, else ``$PHONEDIAG_CONFIG``, else defaults."""
    path = path or os.environ.get("PHONEDIAG_CONFIG") or None
    cfg = Config()
    if path is None:
        return cfg
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read: {e}") from None
    except ValueError as e:  # TOMLDecodeError; an integer of over 4300 digits (tomllib)
        raise ConfigError(f"{p}: invalid TOML: {e}") from None
    except RecursionError:  # tomllib recurses into nested arrays and tables
        raise ConfigError(f"{p}: invalid TOML: nested too deeply") from None
    _apply(cfg, data, p)
    cfg.source = str(p)
    return cfg


def _credentials(items: Any, p: Path) -> list[Credential]:
    if not isinstance(items, list):
        raise ConfigError(f"{p}: credentials must be written [[credentials]]")
    out = []
    for i, c in enumerate(items, 1):
        if not isinstance(c, dict) or set(c) - {"username", "password", "vendor", "device"}:
            raise ConfigError(f"{p}: credentials #{i}: only username, password, vendor, device")
        if not all(isinstance(c.get(k, ""), str) for k in c) or "username" not in c:
            raise ConfigError(f"{p}: credentials #{i}: username (and password) must be strings")
        out.append(
            Credential(c["username"], c.get("password", ""), c.get("vendor"), c.get("device"))
        )
    return out


def _apply(cfg: Config, data: dict[str, Any], p: Path) -> None:
    if "credentials" in data:
        cfg.credentials = _credentials(data.pop("credentials"), p)
    for section, body in data.items():
        if not isinstance(body, dict):
            raise ConfigError(f"{p}: [{section}] must be a table")
        for key, value in body.items():
            spec = _SCHEMA.get((section, key))
            if spec is None:
                raise ConfigError(f"{p}: unknown setting {section}.{key}")
            attr, typ = spec
            if typ is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value) if abs(value) < 2**1000 else math.inf  # no OverflowError
            if not isinstance(value, typ) or (isinstance(value, bool) and typ is not bool):
                raise ConfigError(f"{p}: {section}.{key} must be of type {typ.__name__}")
            if typ is float and not math.isfinite(value):  # TOML has nan and inf
                raise ConfigError(f"{p}: {section}.{key} must be a finite number")
            if typ in (int, float) and (value < 0 or (value == 0 and attr not in ZERO_OK)):
                raise ConfigError(f"{p}: {section}.{key} must be positive")
            if attr.endswith("ports") and not all(
                isinstance(v, int) and 0 < v < 65536 for v in value
            ):
                raise ConfigError(f"{p}: {section}.{key} must list port numbers")
            if (
                typ is list
                and not attr.endswith("ports")
                and not all(isinstance(v, str) for v in value)
            ):
                raise ConfigError(f"{p}: {section}.{key} must list strings")
            setattr(cfg, attr, value)
    _check_snmp_v3(cfg, p)
    _check_router(cfg, p)


def _check_snmp_v3(cfg: Config, p: Path) -> None:
    """[snmp] v3_*: a key needs a user, privacy needs authentication, protocols by name,
    keys of at least 8 characters (RFC 3414 §11.2). Never quotes a key."""
    from agent.net.snmp import AUTH_PROTOCOLS, PRIV_PROTOCOLS

    cfg.snmp_v3_auth_protocol = cfg.snmp_v3_auth_protocol.upper()
    cfg.snmp_v3_priv_protocol = cfg.snmp_v3_priv_protocol.upper()
    if cfg.snmp_v3_auth_protocol not in AUTH_PROTOCOLS:
        raise ConfigError(f"{p}: snmp.v3_auth_protocol must be one of {', '.join(AUTH_PROTOCOLS)}")
    if cfg.snmp_v3_priv_protocol not in PRIV_PROTOCOLS:
        raise ConfigError(f"{p}: snmp.v3_priv_protocol must be one of {', '.join(PRIV_PROTOCOLS)}")
    if cfg.snmp_v3_user is not None and not cfg.snmp_v3_user.strip():
        raise ConfigError(f"{p}: snmp.v3_user must not be empty")
    if (cfg.snmp_v3_auth_key or cfg.snmp_v3_priv_key) and cfg.snmp_v3_user is None:
        raise ConfigError(f"{p}: snmp.v3_auth_key and v3_priv_key need snmp.v3_user")
    if cfg.snmp_v3_priv_key is not None and cfg.snmp_v3_auth_key is None:
        raise ConfigError(f"{p}: snmp.v3_priv_key needs snmp.v3_auth_key (no privacy without auth)")
    for key in ("v3_auth_key", "v3_priv_key"):
        value = getattr(cfg, f"snmp_{key}")
        if value is not None and len(value) < 8:
            raise ConfigError(f"{p}: snmp.{key} must have at least 8 characters")


def _check_router(cfg: Config, p: Path) -> None:
    """[router]: ``ssh`` is user@host[:port] with a private IPv4 address (agent/scope's
    rule; whether it is in the scanned networks is checked at run time, when they are
    known), and needs ``key`` or ``password``; those need ``ssh``. Never quotes a password."""
    from agent.net.ssh import parse_target

    if cfg.router_ssh is None:
        extra = [k for k in ("key", "password", "timeout") if getattr(cfg, f"router_ssh_{k}")]
        if extra:
            raise ConfigError(f"{p}: router.{extra[0]} needs router.ssh (user@host[:port])")
        return
    try:
        parse_target(cfg.router_ssh, user_required=True)
    except ValueError as e:
        raise ConfigError(f"{p}: router.ssh: {e}") from None
    if not cfg.router_ssh_key and not cfg.router_ssh_password:
        raise ConfigError(f"{p}: router.ssh needs router.key (a private key file) or password")
