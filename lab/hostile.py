"""The hostile scenario's neighbours: devices on the office LAN that look like phones and misbehave.

``plan(phones)`` is the ground truth (data in ``hostile.toml``), saved in state.json with the
fleet's hosts (``State.fleet``: the fleet process serves them, each by its ``behaviour``, see
``lab/services/fleet_hostile.py``). ``phones`` are the office's real phones: the mDNS flood
spoofs their addresses. Each host is a dict:

- ``name`` (its behaviour), ``kind`` (``hostile``), ``behaviour``, ``ip``, ``mac`` (random,
  with the OUI of its ``model``), ``vendor``, ``vendor_name``, ``model``, ``firmware``,
  ``user_agent``, ``hostname``;
- ``methods``: ``["arp"]`` (the fleet's own services never bind for it; its behaviour does);
- ``snmp``: the system group it answers with when it answers SNMP (the model's, or one made of
  its User-Agent for a model without SNMP);
- per behaviour: ``delay_s`` (slow), ``size`` (huge), ``garbage_max`` (garbage),
  ``source`` (outscope: the out-of-scope address it answers from, also in
  ``extra_addresses``), ``flood`` (mdns-flood: see hostile.toml's ``[flood]``, with
  ``targets``: each real phone's address and the other vendors' claims made for it).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from lab import fleet, phones

HOSTILE_FILE = Path(__file__).with_name("hostile.toml")
BEHAVIOURS = ("silent", "slow", "garbage", "huge", "reset", "outscope", "mdns-flood")
KIND = "hostile"


def data() -> dict[str, Any]:
    """hostile.toml."""
    with HOSTILE_FILE.open("rb") as fh:
        return tomllib.load(fh)


def plan(office: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The hostile hosts (see the module docstring), in file order; ``office``: the real
    phones (lab.phones.make_phones), whose addresses the mDNS flood spoofs."""
    spec = data()
    taken = {p["mac"] for p in office}
    hosts = []
    for entry in spec["host"]:
        behaviour = entry["behaviour"]
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"{HOSTILE_FILE.name}: unknown behaviour {behaviour!r}")
        model = phones.model(entry["model"])
        mac = fleet.unique_mac(model["mac_prefix"], taken)
        filled = phones._fill(model, {"mac": mac, "machex": mac.replace(":", "").upper()})
        host: dict[str, Any] = {
            "name": behaviour,
            "kind": KIND,
            "behaviour": behaviour,
            "ip": entry["ip"],
            "mac": mac,
            "vendor": filled["vendor"],
            "vendor_name": filled["vendor_name"],
            "model": filled["model"],
            "firmware": filled["firmware"],
            "user_agent": filled["user_agent"],
            "hostname": filled["hostname"],
            "methods": ["arp"],
            "single_method": None,
            "snmp": dict(filled.get("snmp") or _snmp_from(filled)),
            "extra_addresses": [],
        }
        if behaviour == "slow":
            host["delay_s"] = float(spec["delay_s"])
        elif behaviour == "huge":
            host["size"] = int(spec["huge_bytes"])
        elif behaviour == "garbage":
            host["garbage_max"] = int(spec["garbage_max"])
        elif behaviour == "outscope":
            host["source"] = entry["source"]
            host["extra_addresses"] = [entry["source"]]
        elif behaviour == "mdns-flood":
            host["flood"] = _flood(spec["flood"], office)
        hosts.append(host)
    return hosts


def _snmp_from(model: dict[str, Any]) -> dict[str, str]:
    """A system group for a model that has none in phones.toml (its User-Agent)."""
    return {
        "sys_descr": model["user_agent"],
        "sys_object_id": ".1.3.6.1.4.1.8072.3.2.10",  # net-snmp's generic Linux agent
        "sys_name": model["hostname"],
    }


def _flood(spec: dict[str, Any], office: list[dict[str, Any]]) -> dict[str, Any]:
    """The flood's settings, with one target per real phone: the claims of every vendor but
    its own (a Yealink is said to be a Gigaset, a Cisco...)."""
    prefixes = {m["vendor"]: m["mac_prefix"] for m in reversed(phones.models())}
    claims = [
        {**c, "mac_prefix": prefixes.get(c["vendor"].lower(), "02:00:00")} for c in spec["spoof"]
    ]
    targets = [
        {"ip": p["ip"], "claims": [c for c in claims if c["vendor"].lower() != p["vendor"]]}
        for p in office
    ]
    return {
        "interval_s": float(spec["interval_s"]),
        "per_packet": int(spec["per_packet"]),
        "types": list(spec["types"]),
        "junk_types": int(spec["junk_types"]),
        "outside": list(spec["outside"]),
        "targets": targets,
    }


def outside_addresses() -> list[str]:
    """Every address outside the office's scope that a hostile host names or answers from."""
    spec = data()
    sources = [h["source"] for h in spec["host"] if "source" in h]
    return sorted({*spec["flood"]["outside"], *sources})
