"""Phone models (data in phones.toml) and the concrete phones of one lab."""

from __future__ import annotations

import secrets
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MODELS_FILE = Path(__file__).with_name("phones.toml")
LAN_PREFIX = "10.66.0."
FIRST_HOST = 10  # phone i gets 10.66.0.(10+i)
FIRST_LINE = 1000  # phone i gets line 1000+i
MAX_PHONES = 20
FACES = ("sip", "snmp", "mdns", "http")
EXTRA_UA_IP = f"{LAN_PREFIX}50"  # a second SIP UA on the LAN (duplicate-registration)


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


def model(model_id: str) -> dict[str, Any]:
    """One model by id."""
    for spec in models():
        if spec["id"] == model_id:
            return spec
    raise ValueError(f"no phone model {model_id!r} in {MODELS_FILE.name}")


def admin_secret(spec: Mapping[str, Any]) -> str:
    """A random web login secret for one phone: 4 digits for a PIN model, else 16 hex."""
    if spec.get("admin_secret") == "pin":
        return f"{secrets.randbelow(9999) + 1:04d}"  # never the factory 0000
    return secrets.token_hex(8)


def make_phones(count: int, replace: Mapping[int, str] | None = None) -> list[dict[str, Any]]:
    """Ground truth for ``count`` phones, cycling through the models in file order (except
    ``cycle = false`` ones); ``replace`` maps a phone number (1-based) to another model id."""
    if not 1 <= count <= MAX_PHONES:
        raise ValueError(f"--phones must be between 1 and {MAX_PHONES} (got {count})")
    catalogue = [m for m in models() if m.get("cycle", True)]
    replace = replace or {}
    phones = []
    for i in range(1, count + 1):
        spec_id = replace.get(i)
        model_spec = model(spec_id) if spec_id else catalogue[(i - 1) % len(catalogue)]
        phones.append(_phone(i, model_spec))
    return phones


def _phone(i: int, model_spec: dict[str, Any]) -> dict[str, Any]:
    """Ground truth of phone number ``i`` of model ``model_spec``."""
    mac = random_mac(model_spec["mac_prefix"])
    spec = _fill(model_spec, {"mac": mac, "machex": mac.replace(":", "").upper()})
    return {
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
        "offers": {face: face in spec["offers"] for face in FACES},
        "snmp": spec.get("snmp"),
        "mdns": spec.get("mdns"),
        "provisioning_url": spec.get("provisioning_url", ""),
        "admin_secret": spec.get("admin_secret", "password"),
        "ovh_brand": spec["ovh_brand"],
        "ovh_description": spec["ovh_description"],
        "ovh_maxline": spec["ovh_maxline"],
    }


def make_extra_ua(line: str, model_id: str, role: str = "dup") -> dict[str, Any]:
    """A second device provisioned with an office phone's ``line``: a full phone of model
    ``model_id`` (baresip and its web face) at EXTRA_UA_IP. Not one of ``lab.phones``."""
    ua = _phone(0, model(model_id))
    ua.update(role=role, ip=EXTRA_UA_IP, line=line)
    ua["offers"] = {face: face in ("sip", "http") for face in FACES}
    return ua
