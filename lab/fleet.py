"""The fleet scenario's office /24: many lightweight phones, PCs, a printer and a switch.

``plan(count)`` is the ground truth, saved in state.json (``State.fleet``) and served by
``lab/services/fleet.py`` (one process for every host). Each host is a dict:

- ``name`` (``phone7``, ``pc3``, ``printer``, ``switch``), ``kind`` (phone, pc, printer, switch),
  ``ip``, ``mac`` (the vendor's OUI), ``vendor``, ``vendor_name``, ``model``, ``firmware``;
- ``methods``: how the agent can see it: ``arp`` (every host), ``sip-udp``, ``sip-tcp``
  (OPTIONS answered), ``snmp`` (v2c, community ``public``), ``mdns``, ``lldp`` (listed in the
  switch's LLDP-MIB), ``pnp`` (sends PnP SUBSCRIBEs to 224.0.1.75:5060), ``http``;
- ``single_method``: for the phones seen by one method only (besides ARP), that method;
- what it answers with: ``user_agent`` (SIP), ``snmp`` (sys_descr, sys_object_id, sys_name,
  extra OIDs), ``mdns`` (services: type, name, port, txt, server), ``lldp`` (port: the switch's
  local port number, sys_name, sys_desc, port_desc), ``http`` (printer).

The layout is deterministic for a given ``count`` (seeded): hosts are spread over the /24,
interleaved with PCs and empty addresses, so a scanner that meets empty addresses first is
delayed before it reaches later phones. MACs are random per lab.
"""

from __future__ import annotations

import ipaddress
import random
import tomllib
from pathlib import Path
from typing import Any

from lab import phones

FLEET_FILE = Path(__file__).with_name("fleet.toml")
DEFAULT_PHONES = 50
MAX_PHONES = 200
SEED = "phonediag-fleet"
METHODS = ("arp", "sip-udp", "sip-tcp", "snmp", "mdns", "lldp", "pnp", "http")
# Every LAN address but the network, the broadcast, the router (.1) and the agent (.100).
ROUTER_IP = f"{phones.LAN_PREFIX}1"
AGENT_IP = f"{phones.LAN_PREFIX}100"


def data() -> dict[str, Any]:
    """fleet.toml."""
    with FLEET_FILE.open("rb") as fh:
        return tomllib.load(fh)


def min_phones() -> int:
    """The smallest fleet: the single-method phones plus two regular ones."""
    return len(data()["single_method"]) + 2


def check_count(count: int) -> None:
    """ValueError unless ``count`` phones fit a fleet."""
    low = min_phones()
    if not low <= count <= MAX_PHONES:
        raise ValueError(f"--phones must be between {low} and {MAX_PHONES} for fleet (got {count})")


def _subst(mac: str) -> dict[str, str]:
    machex = mac.replace(":", "").upper()
    return {"mac": mac, "machex": machex, "mactail": machex[6:]}


def _ip_key(ip: str) -> int:
    return int(ipaddress.IPv4Address(ip))


def plan(count: int) -> list[dict[str, Any]]:
    """The fleet of ``count`` phones (see the module docstring), sorted by address."""
    check_count(count)
    spec = data()
    rng = random.Random(f"{SEED}-{count}")
    switch_ip = spec["switch"]["ip"]
    reserved = {ROUTER_IP, AGENT_IP, switch_ip}
    free = [f"{phones.LAN_PREFIX}{i}" for i in range(1, 255)]
    free = [ip for ip in free if ip not in reserved]
    kinds = ["phone"] * count + ["pc"] * spec["pc"]["count"] + ["printer"]
    if len(kinds) > len(free):
        raise ValueError(f"{len(kinds)} hosts do not fit the /24")
    addresses = sorted(rng.sample(free, len(kinds)), key=_ip_key)
    rng.shuffle(kinds)
    singles = list(spec["single_method"].items())
    single_at = dict(zip(rng.sample(range(count), len(singles)), singles, strict=True))

    macs: set[str] = set()
    catalogue = [m for m in phones.models() if m.get("cycle", True)]
    hosts: list[dict[str, Any]] = []
    n_phone = n_regular = n_pc = 0
    for ip, kind in zip(addresses, kinds, strict=True):
        if kind == "phone":
            single = single_at.get(n_phone)
            n_phone += 1
            if single:
                model = phones.model(single[1])
                host = _phone(f"phone{n_phone}", ip, model, macs, single[0])
            else:
                model = catalogue[n_regular % len(catalogue)]
                n_regular += 1
                host = _phone(f"phone{n_phone}", ip, model, macs, None)
        elif kind == "pc":
            host = _pc(f"pc{n_pc + 1}", ip, spec["pc"], n_pc, macs)
            n_pc += 1
        else:
            host = _device("printer", "printer", ip, spec["printer"], macs)
            host["methods"] = ["arp", "snmp", "mdns", "http", "lldp"]
            fill = _subst(host["mac"])
            host["http"] = {
                "server": spec["printer"]["http_server"],
                "title": phones._fill(spec["printer"]["http_title"], fill),
            }
            host["mdns"] = [_service(s, host["hostname"], fill) for s in spec["printer"]["mdns"]]
            host["lldp"] = dict(phones._fill(spec["printer"]["lldp"], fill))
        hosts.append(host)
    switch = _device("switch", "switch", switch_ip, spec["switch"], macs)
    switch["methods"] = ["arp", "snmp"]
    hosts.append(switch)
    hosts.sort(key=lambda h: _ip_key(h["ip"]))
    port = 0
    for host in hosts:  # the switch's local port of each LLDP neighbour, in address order
        if "lldp" in host["methods"]:
            port += 1
            host["lldp"]["port"] = port
    return hosts


def unique_mac(prefix: str, taken: set[str]) -> str:
    """A random MAC with ``prefix`` not in ``taken`` (then added to it)."""
    while True:
        mac = phones.random_mac(prefix)
        if mac not in taken:
            taken.add(mac)
            return mac


def _service(svc: dict[str, Any], hostname: str, fill: dict[str, str]) -> dict[str, Any]:
    """One mDNS service with its placeholders filled and its host name."""
    filled = phones._fill(svc, fill)
    return {
        "type": filled["type"],
        "name": filled["name"],
        "port": int(filled["port"]),
        "txt": {str(k): str(v) for k, v in filled.get("txt", {}).items()},
        "server": f"{hostname}.local.",
    }


def _phone(
    name: str, ip: str, model: dict[str, Any], macs: set[str], single: str | None
) -> dict[str, Any]:
    """A phone of ``model``; ``single``: the one method it is seen by (besides ARP)."""
    mac = unique_mac(model["mac_prefix"], macs)
    fill = _subst(mac)
    spec = phones._fill(model, fill)
    offers = set(spec["offers"])
    if single:
        methods = ["arp", single]
    else:
        methods = ["arp", "sip-udp", "sip-tcp", "lldp"]
        methods += [m for m in ("snmp", "mdns") if m in offers]
    host: dict[str, Any] = {
        "name": name,
        "kind": "phone",
        "ip": ip,
        "mac": mac,
        "vendor": spec["vendor"],
        "vendor_name": spec["vendor_name"],
        "model": spec["model"],
        "firmware": spec["firmware"],
        "model_id": spec["id"],
        "hostname": spec["hostname"],
        "user_agent": spec["user_agent"],
        "methods": sorted(methods, key=METHODS.index),
        "single_method": single,
        "snmp": dict(spec["snmp"]) if "snmp" in methods else None,
        "mdns": [],
        "lldp": None,
    }
    if "mdns" in methods:
        svc = dict(spec["mdns"])
        if "{machex}" not in model["mdns"]["name"]:  # several of one model on the LAN: the
            svc["name"] = f"{svc['name']} ({fill['mactail']})"  # way Bonjour renames, "Name (2)"
        host["mdns"] = [_service(svc, spec["hostname"], fill)]
        if single:  # the mDNS-only phone also says what it is and its MAC
            txt = {
                **host["mdns"][0]["txt"],
                "mac": mac,
                "vendor": spec["vendor_name"],
                "model": spec["model"],
                "fw": spec["firmware"],
            }
            host["mdns"][0]["txt"] = txt
            sip = {"type": "_sip._udp", "name": svc["name"], "port": 5060, "txt": txt}
            host["mdns"].append(_service(sip, spec["hostname"], fill))
    if "lldp" in methods:
        lldp = spec.get("lldp") or {}
        host["lldp"] = {
            "sys_name": lldp.get("sys_name", spec["hostname"]),
            "sys_desc": lldp.get("sys_desc", spec["user_agent"]),
            "port_desc": lldp.get("port_desc", "eth0"),
        }
    return host


def _pc(name: str, ip: str, spec: dict[str, Any], n: int, macs: set[str]) -> dict[str, Any]:
    """A host-firewalled PC (Dell or Intel OUI, alternately)."""
    which = n % len(spec["mac_prefixes"])
    return {
        "name": name,
        "kind": "pc",
        "ip": ip,
        "mac": unique_mac(spec["mac_prefixes"][which], macs),
        "vendor": spec["vendors"][which],
        "vendor_name": spec["vendors"][which].capitalize(),
        "model": None,
        "firmware": None,
        "methods": ["arp"],
        "single_method": None,
    }


def _device(name: str, kind: str, ip: str, spec: dict[str, Any], macs: set[str]) -> dict[str, Any]:
    """The printer or the switch: identity and SNMP data from fleet.toml."""
    mac = unique_mac(spec["mac_prefix"], macs)
    fill = _subst(mac)
    snmp = phones._fill(spec["snmp"], fill)
    return {
        "name": name,
        "kind": kind,
        "ip": ip,
        "mac": mac,
        "vendor": spec["vendor"],
        "vendor_name": spec["vendor_name"],
        "model": spec["model"],
        "firmware": spec["firmware"],
        "hostname": phones._fill(spec.get("hostname", snmp["sys_name"]), fill),
        "methods": [],
        "single_method": None,
        "snmp": snmp,
    }


def summary(hosts: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts and the single-method phones, for `lab up` and the tests."""
    kinds: dict[str, int] = {}
    for host in hosts:
        kinds[host["kind"]] = kinds.get(host["kind"], 0) + 1
    singles = {h["single_method"]: h["ip"] for h in hosts if h.get("single_method")}
    return {"kinds": kinds, "single_method": singles}
