"""Bring an office up: topology, provider, router, phones; then wait until it is ready."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from lab import netns, probes, ready, topology
from lab.scenarios import Scenario
from lab.services import (
    avahi,
    coturn,
    dnsmasq,
    face,
    kamailio,
    mosquitto,
    ovhapi,
    phone,
    reflector,
    snmpd,
    sshd,
)
from lab.services import fleet as fleet_service
from lab.state import Proc, State

AGENT_CONFIG = f"""[site]
registrar = "{kamailio.DOMAIN}"
registrar_ports = [{", ".join(str(p) for p in kamailio.PORTS)}]
stun_server = "{kamailio.DOMAIN}:{coturn.PORT}"
reflector = "{reflector.NAME}"
provisioning_hosts = ["{kamailio.DOMAIN}"]
[nat]
budget = 0  # the NAT lifetime test takes half a minute: lab tests ask for it explicitly
[snmp]
communities = ["{snmpd.COMMUNITY}"]
"""

Progress = Callable[[str], None]
BILLING_ACCOUNT = "ovhtel-12345678-1"  # the lab's one billing account at the API stand-in


def api_account(
    phones: list[dict[str, Any]], passwords: dict[str, str] | None = None
) -> dict[str, Any]:
    """The API stand-in's account: one fresh credential, and one billing account with one line
    per office phone, whose phone is that phone's real model and MAC (a second device on a
    line, as in duplicate-registration, is not a line of its own). ``passwords`` (line ->
    the registrar's password) go in as each line's ``sip_password``, for provisioning."""
    lines = {
        ph["line"]: {
            "description": f"Ligne {ph['line']}",
            **({"sip_password": passwords[ph["line"]]} if passwords else {}),
            "phone": {
                "brand": ph["ovh_brand"],
                "description": ph["ovh_description"],
                "macAddress": ph["mac"],
                "maxline": ph["ovh_maxline"],
            },
        }
        for ph in phones
    }
    return {
        "credentials": [ovhapi.make_credentials()],
        "billing_accounts": {BILLING_ACCOUNT: {"description": "Bureau (lab)", "lines": lines}},
        "sip_domain": kamailio.DOMAIN,
    }


def provider_config(state: State) -> str:
    """The agent's [provider] section: the API stand-in, its CA and the lab's credential."""
    cred = state.api["credentials"][0]
    return (
        "[provider]\n"
        f'endpoint = "{ovhapi.ENDPOINT}"\n'
        f'ca_file = "{ovhapi.ca_file(state.dir)}"\n'
        f'application_key = "{cred["application_key"]}"\n'
        f'application_secret = "{cred["application_secret"]}"\n'
        f'consumer_key = "{cred["consumer_key"]}"\n'
    )


def agent_config(state: State) -> str:
    """The agent's config: the site, the OVHcloud API, and the web login of every phone that
    has a web face."""
    creds = "".join(
        f'\n[[credentials]]\ndevice = "{ph["ip"]}"\nusername = "{face.ADMIN_USER}"\n'
        f'password = "{state.admin_passwords[ph["role"]]}"\n'
        for ph in [*state.phones, *state.extra_uas]
        if ph["offers"].get("http")
    )
    # The agent's local store (the remedies' audit log) lives in the lab, not in the
    # machine's /var/lib/phonediag: `down` removes it with the rest.
    store = f'[store]\npath = "{state.dir / "phonediag.sqlite"}"\n'
    router = sshd.agent_config(state.dir, topology.ROUTER_LAN_IP)  # read over SSH
    return AGENT_CONFIG + store + router + (provider_config(state) if state.api else "") + creds


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
    config = base / "agent.toml"
    config.touch(mode=0o600)  # it holds the API secret and the phones' web logins
    config.write_text(agent_config(state))
    fault = scenario.fault_role(len(phones))

    topology.build(
        ns,
        phones,
        scenario.router_rules,
        state.extra_uas,
        scenario.router_sysctls,
        fleet=state.fleet,
    )
    progress("topology built")
    fleet_procs: list[Proc] = []
    if state.fleet:  # its Python start-up overlaps the provider's
        fleet_procs.append(
            _record(state, fleet_service.start(ns[topology.FLEET_ROLE], state.fleet, base))
        )

    prov_ip = topology.PROVIDER_IPS[0]
    kam = _record(
        state,
        kamailio.start(
            ns["prov"],
            prov_ip,
            base,
            state.passwords,
            scenario.provider_keepalive,
            pstn=topology.PSTN_IP,
        ),
    )
    pstn = _record(state, phone.start_pstn(ns["prov"], topology.PSTN_IP, base))
    stun = _record(state, coturn.start(ns["prov"], topology.PROVIDER_IPS, base))
    dns = _record(
        state,
        dnsmasq.start(
            ns["rtr"],
            topology.ROUTER_LAN_IP,
            {
                kamailio.DOMAIN: prov_ip,
                reflector.NAME: topology.REFLECTOR_IP,
                ovhapi.NAME: topology.API_IP,
                mosquitto.NAME: topology.BROKER_IP,
            },
            base,
        ),
    )
    refl = _record(state, reflector.start(ns["prov"], topology.REFLECTOR_IP, base))
    ssh = _record(state, sshd.start(ns["rtr"], topology.ROUTER_LAN_IP, base))  # [router] ssh
    # The API stand-in keeps its state in the registrar (kamcmd over Kamailio's ctl socket).
    api = _record(state, ovhapi.start(ns["prov"], topology.API_IP, base, state.api))
    # The portal's MQTT broker: every scenario has it (a few ms of start-up).
    broker = _record(state, mosquitto.start(ns["prov"], topology.BROKER_IP, base, state.mqtt))
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

    sips, webs = [], []
    for ph in phones:
        sip_proc, web_proc = _start_phone(state, ph, scenario if ph["role"] == fault else None)
        sips.append((ph, sip_proc))
        webs.append((ph, web_proc))
    for ua in state.extra_uas:  # a second device on a phone's line, with its own face
        sip_proc, web_proc = _start_phone(state, ua, None)
        sips.append((ua, sip_proc))
        webs.append((ua, web_proc))

    checks: list[ready.Check] = [
        ("coturn", lambda: probes.stun_binding(ns["agent"], prov_ip)),
        ("pstn gateway", _ctrl_check(ns["prov"])),
        ("ovhapi", _tcp_check(ns["agent"], topology.API_IP, ovhapi.PORT)),
        ("provisioning", _tcp_check(ns["agent"], topology.API_IP, ovhapi.PROVISIONING_PORT)),
        ("mosquitto", broker_check(ns["agent"])),
    ]
    for ph, proc, kind in faces:
        if kind == "snmp":
            checks.append((f"snmpd {ph['role']}", _snmp_check(ns["agent"], ph["ip"])))
        else:
            checks.append((f"avahi {ph['role']}", _avahi_check(proc)))
    for ph, _proc in sips:
        checks.append((f"baresip {ph['role']}", _ctrl_check(ns[ph["role"]])))
    for ph, _proc in webs:
        if ph["offers"].get("http"):
            checks.append((f"web {ph['role']}", _tcp_check(ns["agent"], ph["ip"], face.PORT)))
    if scenario.phones_register:
        for ph in phones:
            if not (ph["role"] == fault and scenario.wrong_password):
                checks.append((f"registration {ph['role']}", _registered_check(state, ph["line"])))
        for ua in state.extra_uas:  # the line's phone and the extra UA: two bindings
            checks.append((f"registration {ua['role']}", _registered_check(state, ua["line"], 2)))
    checks.append(("reflector", _sip_check(ns["prov"], topology.REFLECTOR_IP, 5060)))
    checks.append(("sshd", sshd.reachable(ns["agent"], topology.ROUTER_LAN_IP)))
    for proc in fleet_procs:
        checks += _fleet_checks(ns["agent"], state.fleet, proc)
    watched = [kam, stun, dns, refl, pstn, api, broker, ssh]
    watched += [*(p for _, p, _ in faces), *(p for _, p in sips)]
    watched += fleet_procs
    watched += [p for _, p in webs]
    ready.wait(checks, watched, deadline)
    progress("phones ready")
    if fault and scenario.dial_codes:
        _dial_codes(state, fault, scenario, deadline)
        progress(f"{fault} dialled {' '.join(scenario.dial_codes)}")
    if scenario.late_router_rules:
        netns.nft(ns["rtr"], scenario.late_router_rules)


def _start_phone(state: State, ph: dict[str, Any], fault: Scenario | None) -> tuple[Proc, Proc]:
    """Write the phone's state file, start its baresip and its face/controller.

    ``fault``: the scenario, when this phone is the one with the fault.
    """
    role, base = ph["role"], state.dir
    password = state.passwords[ph["line"]]
    if fault is not None and fault.wrong_password:
        password = "wrong" + password[::-1]
    server = f"{topology.API_IP}:{ovhapi.PROVISIONING_PORT}"
    settings = face.initial_state(
        ph, kamailio.DOMAIN, state.admin_passwords[role], password, provisioning_server=server
    )
    if fault is not None:
        settings = face.merge(settings, fault.phone_state)
    face.write_state(face.state_file(base, role), settings)
    ns = state.namespaces[role]
    sip_proc = phone.start(
        ns,
        ph,
        kamailio.DOMAIN,
        password,
        base,
        ctrl=phone.BARESIP_CTRL_ADDR,
        answermode=face.answermode(settings),
    )
    _record(state, sip_proc)
    return sip_proc, _record(state, face.start(ns, ph, base))


def _dial_codes(state: State, role: str, scenario: Scenario, deadline: float) -> None:
    """The fault phone dials the scenario's feature codes through its real SIP UA; then the
    registrar must hold the scenario's line options (NotReady otherwise)."""
    line = next(p["line"] for p in state.phones if p["role"] == role)
    answers = []
    for code in scenario.dial_codes:
        left = max(1.0, deadline - time.monotonic())
        events = phone.call_events(
            state.namespaces[role], f"sip:{code}@{kamailio.DOMAIN}", timeout=min(left, 10.0)
        )
        closed = [e for e in events if e.get("type") == "CALL_CLOSED"]
        answers.append(f"{code}: {closed[-1].get('param') if closed else 'no answer'}")
    options = kamailio.line_options(state.dir, line)
    wrong = {k: options.get(k) for k, v in scenario.line_options.items() if options.get(k) != v}
    if wrong:
        raise ready.NotReady(
            f"line {line} options after {role} dialled ({'; '.join(answers)}): {wrong}"
        )


def _fleet_checks(agent_ns: str, hosts: list[dict[str, Any]], proc: Proc) -> list[ready.Check]:
    """The fleet is up when its process logged READY (every mDNS service registered, every
    hostile host's sockets bound) and, from the agent host, SIP answers over UDP on two phones
    and over TCP on one, and SNMP answers on the switch and on a phone. Hostile hosts
    (lab/hostile.py) are not asked anything: most never answer, or not in time."""
    checks: list[ready.Check] = [("fleet mdns", lambda: fleet_service.ready(proc))]
    hosts = [h for h in hosts if not h.get("behaviour")]
    udp = [h for h in hosts if "sip-udp" in h["methods"]]
    tcp = [h for h in hosts if "sip-tcp" in h["methods"] and "sip-udp" not in h["methods"]]
    snmp = [h for h in hosts if "snmp" in h["methods"] and h["kind"] in ("switch", "phone")]
    for host in [*udp[:1], *udp[-1:]]:
        checks.append((f"fleet sip {host['ip']}", _fleet_sip_check(agent_ns, host["ip"])))
    for host in tcp[:1]:
        checks.append((f"fleet sip/tcp {host['ip']}", _tcp_check(agent_ns, host["ip"], 5060)))
    for host in [*snmp[:1], *snmp[-1:]]:
        checks.append((f"fleet snmp {host['ip']}", _snmp_check(agent_ns, host["ip"])))
    return checks


def _fleet_sip_check(ns: str, ip: str) -> Callable[[], bool]:
    return lambda: probes.sip_options(ns, topology.AGENT_IP, ip).startswith("SIP/2.0 200")


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


def broker_check(ns: str) -> Callable[[], bool]:
    """The broker accepts connections, from ``ns`` (the agent host: through the NAT)."""
    return _tcp_check(ns, topology.BROKER_IP, mosquitto.PORT)


def _tcp_check(ns: str, ip: str, port: int) -> Callable[[], bool]:
    return lambda: probes.tcp_open(ns, ip, port)


def _registered_check(state: State, line: str, count: int = 1) -> Callable[[], bool]:
    def check() -> bool:
        try:
            bindings = kamailio.registrations(state.dir)
        except (RuntimeError, OSError):
            return False
        return sum(str(b["aor"]).split("@")[0] == line for b in bindings) >= count

    return check
