"""Bring an office up: topology, provider, router, phones; then wait until it is ready."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lab import probes, ready, topology
from lab.scenarios import Scenario
from lab.services import avahi, coturn, dnsmasq, kamailio, phone, snmpd
from lab.state import Proc, State

AGENT_CONFIG = f"""[site]
registrar = "{kamailio.DOMAIN}"
registrar_ports = [{", ".join(str(p) for p in kamailio.PORTS)}]
stun_server = "{kamailio.DOMAIN}:{coturn.PORT}"
[snmp]
communities = ["{snmpd.COMMUNITY}"]
"""

Progress = Callable[[str], None]


def _record(state: State, proc: Proc) -> Proc:
    """Remember a started process at once, so a failure later still tears it down."""
    state.procs.append(proc)
    state.save()
    return proc


def start(state: State, scenario: Scenario, timeout: float, progress: Progress) -> None:
    """Create everything for ``state`` (already saved with its namespace names)."""
    deadline = time.monotonic() + timeout
    ns, base, phones = state.namespaces, state.dir, state.phones
    (base / "logs").mkdir(exist_ok=True)
    (base / "agent.toml").write_text(AGENT_CONFIG)

    topology.build(ns, phones, scenario.router_rules)
    progress("topology built")

    prov_ip = topology.PROVIDER_IPS[0]
    kam = _record(state, kamailio.start(ns["prov"], prov_ip, base, state.passwords))
    stun = _record(state, coturn.start(ns["prov"], topology.PROVIDER_IPS, base))
    dns = _record(
        state,
        dnsmasq.start(ns["rtr"], topology.ROUTER_LAN_IP, {kamailio.DOMAIN: prov_ip}, base),
    )
    faces: list[tuple[dict[str, Any], Proc, str]] = []
    for ph in phones:
        if ph["offers"]["snmp"]:
            faces.append((ph, _record(state, snmpd.start(ns[ph["role"]], ph, base)), "snmp"))
        if ph["offers"]["mdns"]:
            faces.append((ph, _record(state, avahi.start(ns[ph["role"]], ph, base)), "mdns"))

    # Phones register at boot: the registrar and the LAN's DNS must answer first.
    ready.wait(
        [
            *(
                (f"kamailio udp/{port}", _sip_check(ns["prov"], prov_ip, port))
                for port in kamailio.PORTS
            ),
            ("dnsmasq", _dns_check(ns["agent"], kamailio.DOMAIN, prov_ip)),
        ],
        [kam, dns],
        deadline,
    )
    progress("provider and router ready")

    sips = []
    for ph in phones:
        password = state.passwords[ph["line"]]
        proc = phone.start(ns[ph["role"]], ph, kamailio.DOMAIN, password, base)
        sips.append((ph, _record(state, proc)))

    checks: list[ready.Check] = [("coturn", lambda: probes.stun_binding(ns["agent"], prov_ip))]
    for ph, proc, face in faces:
        if face == "snmp":
            checks.append((f"snmpd {ph['role']}", _snmp_check(ns["agent"], ph["ip"])))
        else:
            checks.append((f"avahi {ph['role']}", _avahi_check(proc)))
    for ph, _proc in sips:
        checks.append((f"baresip {ph['role']}", _ctrl_check(ns[ph["role"]])))
    if scenario.phones_register:
        for ph in phones:
            checks.append((f"registration {ph['role']}", _registered_check(state, ph["line"])))
    watched = [kam, stun, dns, *(p for _, p, _ in faces), *(p for _, p in sips)]
    ready.wait(checks, watched, deadline)
    progress("phones ready")


def _sip_check(ns: str, ip: str, port: int) -> Callable[[], bool]:
    return lambda: probes.sip_options(ns, ip, ip, port).startswith("SIP/2.0 200")


def _dns_check(ns: str, name: str, expected: str) -> Callable[[], bool]:
    return lambda: probes.dns_a(ns, topology.DNS_SERVER, name) == expected


def _snmp_check(ns: str, ip: str) -> Callable[[], bool]:
    return lambda: probes.snmp_get_sysdescr(ns, ip)


def _avahi_check(proc: Proc) -> Callable[[], bool]:
    return lambda: avahi.published(proc)


def _ctrl_check(ns: str) -> Callable[[], bool]:
    return lambda: phone.ctrl_ready(ns)


def _registered_check(state: State, line: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            bindings = kamailio.registrations(state.dir)
        except (RuntimeError, OSError):
            return False
        return any(str(b["aor"]).split("@")[0] == line for b in bindings)

    return check
