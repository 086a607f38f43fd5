"""Where the OVHcloud API keys come from: the agent's configuration, then the environment
and the ovh.conf files (the ``ovh`` client's own lookup: ``OVH_APPLICATION_KEY``, ...,
``/etc/ovh.conf``, ``~/.ovh.conf``, ``./ovh.conf``), then the OS keyring (service
``phonediag``; user names ``ovh-application-key``, ``ovh-application-secret``,
``ovh-consumer-key``, e.g. ``keyring set phonediag ovh-consumer-key``).

Secrets are never printed: they are hidden from ``repr`` and scrubbed from messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.config import Config

DEFAULT_ENDPOINT = "ovh-eu"
KEYRING_SERVICE = "phonediag"
NAMES = ("application_key", "application_secret", "consumer_key")


@dataclass(frozen=True)
class ApiKeys:
    """Everything needed to sign calls to one OVHcloud API endpoint."""

    endpoint: str
    application_key: str
    application_secret: str = field(repr=False)
    consumer_key: str = field(repr=False)
    ca_file: str | None = None
    origin: dict[str, str] = field(default_factory=dict)  # key name -> where it was found

    def scrub(self, text: str) -> str:
        """``text`` with the secrets replaced by ``***``."""
        for secret in (self.application_secret, self.consumer_key):
            if secret:
                text = text.replace(secret, "***")
        return text


class MissingKeys(Exception):
    """Some keys were found nowhere; ``missing`` names them."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(", ".join(missing))
        self.missing = missing


def _ovh_conf(section: str, name: str) -> str | None:
    """The ``ovh`` client's lookup: environment, then the ovh.conf files."""
    from ovh.config import ConfigurationManager

    try:
        return ConfigurationManager().get(section, name) or None
    except Exception:  # an unreadable ovh.conf is not our failure
        return None


def _keyring(name: str) -> str | None:
    """The OS keyring, if there is one; any keyring failure means "not there"."""
    try:
        import keyring

        return keyring.get_password(KEYRING_SERVICE, "ovh-" + name.replace("_", "-")) or None
    except Exception:
        return None


def resolve(cfg: Config) -> ApiKeys:
    """The API keys, or MissingKeys naming what was found nowhere."""
    endpoint = cfg.provider_endpoint or _ovh_conf("default", "endpoint") or DEFAULT_ENDPOINT
    found: dict[str, str] = {}
    origin: dict[str, str] = {}
    for name in NAMES:
        for where, lookup in (
            ("config", lambda n: getattr(cfg, f"provider_{n}")),
            ("environment or ovh.conf", lambda n: _ovh_conf(endpoint, n)),
            ("keyring", _keyring),
        ):
            value = lookup(name)
            if value:
                found[name], origin[name] = value, where
                break
    missing = [n for n in NAMES if n not in found]
    if missing:
        raise MissingKeys(missing)
    return ApiKeys(endpoint=endpoint, ca_file=cfg.provider_ca_file, origin=origin, **found)
