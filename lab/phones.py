"""Phone models (data in phones.toml) and the concrete phones of one lab."""

from __future__ import annotations

import secrets
import tomllib
from pathlib import Path
from typing import Any

MODELS_FILE = Path(__file__).with_name("phones.toml")
LAN_PREFIX = "10.66.0."
FIRST_HOST = 10  # phone i gets 10.66.0.(10+i)
FIRST_LINE = 1000  # phone i gets line 1000+i
MAX_PHONES = 20


def models() -> list[dict[str, Any]]:
    """All models, in file order."""
    with MODELS_FILE.open("rb") as fh:
        return tomllib.load(fh)["model"]


def _fill(value: Any, subst: dict[str, str]) -> Any:
    """Expand {mac}/{machex} placeholders in strings, recursively."""
    if isinstance(value, str):
        return value.format(**subst)
    if isinstance(value, dict):
        return {k: _fill(v, subst) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, subst) for v in value]
    return value


def random_mac(prefix: str) -> str:
    """A MAC address with the vendor's OUI and a random device part."""
    return prefix.lower() + "".join(f":{b:02x}" for b in secrets.token_bytes(3))


def make_phones(count: int) -> list[dict[str, Any]]:
    """Ground truth for ``count`` phones, cycling through the models in file order."""
    if not 1 <= count <= MAX_PHONES:
        raise ValueError(f"--phones must be between 1 and {MAX_PHONES} (got {count})")
    catalogue = models()
    phones = []
    for i in range(1, count + 1):
        model = catalogue[(i - 1) % len(catalogue)]
        mac = random_mac(model["mac_prefix"])
        subst = {"mac": mac, "machex": mac.replace(":", "").upper()}
        spec = _fill(model, subst)
        offers = spec["offers"]
        phones.append(
            {
                "role": f"phone{i}",
                "ip": f"{LAN_PREFIX}{FIRST_HOST + i}",
                "mac": mac,
                "vendor": spec["vendor"],
                "vendor_name": spec["vendor_name"],
                "model": spec["model"],
                "firmware": spec["firmware"],
                "line": str(FIRST_LINE + i),
                "user_agent": spec["user_agent"],
                "hostname": spec["hostname"],
                "model_id": spec["id"],
                "offers": {face: face in offers for face in ("sip", "snmp", "mdns")},
                "snmp": spec.get("snmp"),
                "mdns": spec.get("mdns"),
            }
        )
    return phones
