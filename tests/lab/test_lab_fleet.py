"""The fleet scenario's office /24, checked from the agent host (the lab itself, not the agent).

One process answers for every fleet host from its own address and MAC: SIP over UDP and TCP,
SNMP v2c, mDNS, PnP SUBSCRIBEs; PCs answer ARP only; empty addresses give nothing; the switch's
LLDP-MIB lists the phones with their management addresses. Root only; run in a loopback-only
namespace, e.g.
    unshare -n sh -c 'ip link set lo up && .venv/bin/python -m pytest tests/lab -x -q'
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab import Lab, netns, phones, procs, topology
from lab.netns import NETNS_ETC_DIR, NETNS_RUN_DIR
from lab.services import fleet as fleet_service

REPO = Path(__file__).resolve().parents[2]
AGENT_IP = topology.AGENT_IP
SYS_DESCR, SYS_OBJECT_ID, SYS_NAME = "1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.5.0"
LLDP_REM = ".1.0.8802.1.1.2.1.4.1.1"
LLDP_MAN = ".1.0.8802.1.1.2.1.4.2.1"
PNP_GROUP = ("224.0.1.75", 5060)

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root (network namespaces)"),
    pytest.mark.skipif(shutil.which("ip") is None, reason="the lab needs iproute2's `ip`"),
]

# Browse mDNS from the agent host (python-zeroconf); print one JSON line per service found.
BROWSE = """
import json, socket, time, zeroconf
zc = zeroconf.Zeroconf(interfaces=["10.66.0.100"])
found = {}
class L:
    def add_service(self, zc, t, name):
        info = zc.get_service_info(t, name, timeout=1500)
        if info:
            found[name] = {
                "type": t, "addresses": info.parsed_addresses(), "port": info.port,
                "txt": {k.decode(): (v or b"").decode() for k, v in info.properties.items()},
            }
    update_service = add_service
    def remove_service(self, *a): pass
types = ["_http._tcp.local.", "_sip._udp.local.", "_ipp._tcp.local."]
browsers = [zeroconf.ServiceBrowser(zc, t, L()) for t in types]
time.sleep(2.0)
zc.close()
for name, info in sorted(found.items()):
    print(json.dumps({"name": name, **info}))
"""


@pytest.fixture(scope="module")
def fleet() -> Iterator[Lab]:
    with Lab.up("fleet", phones=12) as lab:
        yield lab


def hosts(lab: Lab, kind: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
    """The fleet's hosts of that kind and/or seen by that method."""
    return [
        h
        for h in lab.fleet_hosts
        if (kind is None or h["kind"] == kind) and (method is None or method in h["methods"])
    ]


def single(lab: Lab, method: str) -> dict[str, Any]:
    """The phone seen by ``method`` only."""
    (found,) = [h for h in lab.fleet_hosts if h["single_method"] == method]
    return found


def empty_addresses(lab: Lab) -> list[str]:
    """Addresses of the /24 nobody holds."""
    taken = {h["ip"] for h in lab.fleet_hosts} | {topology.ROUTER_LAN_IP, AGENT_IP}
    return [f"10.66.0.{i}" for i in range(2, 255) if f"10.66.0.{i}" not in taken]


def options(ip: str, port: int, transport: str) -> bytes:
    branch = "z9hG4bK" + secrets.token_hex(6)
    return (
        f"OPTIONS sip:{ip} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {AGENT_IP}:{port};branch={branch};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:probe@{AGENT_IP}>;tag={secrets.token_hex(4)}\r\n"
        f"To: <sip:{ip}>\r\n"
        f"Call-ID: {secrets.token_hex(8)}@{AGENT_IP}\r\n"
        "CSeq: 7 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def snmp_env(lab: Lab) -> dict[str, str]:
    return {"SNMP_PERSISTENT_DIR": str(lab.state.dir / "agent-snmp"), "MIBS": ""}


def udp_ask(
    lab: Lab, ip: str, port: int, payload: bytes, timeout: float = 0.5
) -> tuple[bytes, tuple[str, int], int] | None:
    """Send one datagram from the agent host; (answer, its source, our port) or None."""
    with netns.socket_in(lab.ns("agent")) as sock:
        sock.settimeout(timeout)
        sock.bind((AGENT_IP, 0))
        sock.sendto(payload, (ip, port))
        try:
            data, source = sock.recvfrom(65536)
        except TimeoutError:
            return None
        return data, source, sock.getsockname()[1]


def sip_udp(lab: Lab, ip: str, timeout: float = 0.5) -> tuple[bytes, tuple[str, int], int] | None:
    with netns.socket_in(lab.ns("agent")) as sock:
        sock.settimeout(timeout)
        sock.bind((AGENT_IP, 0))
        port = sock.getsockname()[1]
        sock.sendto(options(ip, port, "UDP"), (ip, 5060))
        try:
            data, source = sock.recvfrom(65536)
        except TimeoutError:
            return None
        return data, source, port


def sip_tcp(lab: Lab, ip: str, payload: bytes | None = None, timeout: float = 1.0) -> bytes | str:
    """OPTIONS over TCP from the agent host: the answer, or why there is none."""
    with netns.socket_in(lab.ns("agent"), socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((ip, 5060))
            sock.sendall(payload or options(ip, sock.getsockname()[1], "TCP"))
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data
        except TimeoutError:
            return "timeout"
        except ConnectionRefusedError:
            return "refused"
        except ConnectionError:  # the phone hung up on us while we were still sending
            return "reset"


def header(message: bytes, name: str) -> str:
    match = re.search(rf"^{name}:\s*(.*?)\r?$", message.decode(errors="replace"), re.M | re.I)
    assert match, message
    return match.group(1)


def snmp(
    lab: Lab, ip: str, *oids: str, walk: bool = False, hex_strings: bool = False
) -> subprocess.CompletedProcess[str]:
    """snmpget (or snmpwalk) from the agent host, numeric OIDs, 0.4 s, no retry."""
    tool = "snmpwalk" if walk else "snmpget"
    argv = [tool, "-v2c", "-c", "public", "-On", "-t", "0.4", "-r", "0", ip, *oids]
    if hex_strings:  # a MAC such as 0c:38:3e:… would else print as a STRING with a form feed
        argv.insert(1, "-Ox")
    return lab.run(argv, env=snmp_env(lab), timeout=20)


def neighbour(lab: Lab, ip: str) -> dict[str, Any]:
    """The agent host's neighbour entry for ``ip`` ({} if none)."""
    out = lab.run(["ip", "-j", "neigh", "show", "to", ip], timeout=10).stdout
    entries = json.loads(out or "[]")
    return entries[0] if entries else {}


# -- layout ------------------------------------------------------------------------------------
def test_layout_spreads_phones_pcs_and_empty_addresses(fleet: Lab) -> None:
    found = fleet.fleet_hosts
    kinds = [h["kind"] for h in found]
    assert kinds.count("phone") == 12 and kinds.count("pc") == 20
    assert kinds.count("printer") == 1 and kinds.count("switch") == 1
    ips = [h["ip"] for h in found]
    assert len(set(ips)) == len(ips) and not {topology.ROUTER_LAN_IP, AGENT_IP} & set(ips)
    assert len({h["mac"] for h in found}) == len(found)
    # Not contiguous: empty addresses and PCs come before some of the phones.
    phone_octets = [int(h["ip"].rsplit(".", 1)[1]) for h in found if h["kind"] == "phone"]
    first_empty = min(int(ip.rsplit(".", 1)[1]) for ip in empty_addresses(fleet))
    assert max(phone_octets) - min(phone_octets) > len(phone_octets)
    assert first_empty < max(phone_octets)
    # Every family, each phone with its vendor's OUI.
    prefixes = {m["id"]: m["mac_prefix"] for m in phones.models()}
    families = {h["vendor"] for h in found if h["kind"] == "phone"}
    assert families == {"yealink", "cisco", "gigaset", "poly", "grandstream", "snom", "fanvil"}
    for host in hosts(fleet, "phone"):
        assert host["mac"].startswith(prefixes[host["model_id"]]), host
    for host in hosts(fleet, "pc"):
        assert host["mac"][:8] in ("00:14:22", "00:1b:21") and host["methods"] == ["arp"]
    singles = {h["single_method"]: h["methods"] for h in found if h["single_method"]}
    assert singles == {m: ["arp", m] for m in ("sip-tcp", "snmp", "mdns", "lldp", "pnp")}
    # The fleet namespace holds one interface per host, with the host's MAC.
    links = json.loads(fleet.exec("fleet", ["ip", "-j", "link"]).stdout)
    macs = {link["address"] for link in links if link["ifname"].startswith("h")}
    assert macs == {h["mac"] for h in found}


# -- SIP ---------------------------------------------------------------------------------------
def test_phones_answer_options_over_udp_from_their_own_address(fleet: Lab) -> None:
    agents = set()
    for host in hosts(fleet, "phone", "sip-udp"):
        got = sip_udp(fleet, host["ip"])
        assert got, host
        reply, source, port = got
        assert reply.startswith(b"SIP/2.0 200 OK\r\n"), reply
        assert source == (host["ip"], 5060)
        assert header(reply, "User-Agent") == host["user_agent"]
        agents.add(host["user_agent"])
        via = header(reply, "Via")
        assert f"received={AGENT_IP}" in via and f"rport={port}" in via, via
        assert ";tag=" in header(reply, "To") and header(reply, "CSeq") == "7 OPTIONS"
        assert header(reply, "Contact") == f"<sip:{host['ip']}:5060>"
        assert "OPTIONS" in header(reply, "Allow")
        # ... and the agent learnt that address's MAC: no ARP flux between the macvlans.
        assert neighbour(fleet, host["ip"]).get("lladdr") == host["mac"]
    assert len(agents) == 7  # one per family


def test_sip_over_tcp_and_the_tcp_only_phone(fleet: Lab) -> None:
    regular = hosts(fleet, "phone", "sip-udp")[0]
    reply = sip_tcp(fleet, regular["ip"])
    assert isinstance(reply, bytes) and reply.startswith(b"SIP/2.0 200 OK"), reply
    assert header(reply, "Contact") == f"<sip:{regular['ip']}:5060;transport=tcp>"
    tcp_only = single(fleet, "sip-tcp")
    assert sip_udp(fleet, tcp_only["ip"], timeout=1.0) is None  # UDP silently dropped
    reply = sip_tcp(fleet, tcp_only["ip"])
    assert isinstance(reply, bytes) and reply.startswith(b"SIP/2.0 200 OK"), reply
    assert header(reply, "User-Agent") == tcp_only["user_agent"]


def test_only_sip_hosts_answer_sip(fleet: Lab) -> None:
    silent = [h for h in fleet.fleet_hosts if not {"sip-udp", "sip-tcp"} & set(h["methods"])]
    assert {h["single_method"] for h in silent if h["kind"] == "phone"} == {
        "snmp",
        "mdns",
        "lldp",
        "pnp",
    }
    for host in silent:
        if host["kind"] != "pc":  # the PCs' own test covers them
            assert sip_udp(fleet, host["ip"], timeout=0.3) is None, host
    for ip in empty_addresses(fleet)[:2]:
        assert sip_udp(fleet, ip, timeout=0.3) is None


# -- SNMP --------------------------------------------------------------------------------------
def test_snmp_system_group_per_address(fleet: Lab) -> None:
    descrs = set()
    for host in hosts(fleet, method="snmp"):
        out = snmp(fleet, host["ip"], SYS_DESCR, SYS_OBJECT_ID, SYS_NAME)
        assert out.returncode == 0, out
        lines = out.stdout.splitlines()
        assert lines[0] == f'.{SYS_DESCR} = STRING: "{host["snmp"]["sys_descr"]}"', out.stdout
        assert lines[1] == f".{SYS_OBJECT_ID} = OID: {host['snmp']['sys_object_id']}"
        assert host["snmp"]["sys_name"] in lines[2]
        descrs.add(host["snmp"]["sys_descr"])
    phone_descrs = {h["snmp"]["sys_descr"] for h in hosts(fleet, "phone", "snmp")}
    assert len(phone_descrs) == 2  # Yealink and Cisco: the models that offer SNMP
    printer = hosts(fleet, "printer")[0]
    assert printer["snmp"]["sys_object_id"].startswith(".1.3.6.1.4.1.11.")
    assert "JETDIRECT" in printer["snmp"]["sys_descr"]


def test_snmp_silent_where_not_offered(fleet: Lab) -> None:
    no_snmp = [h for h in hosts(fleet, "phone") if "snmp" not in h["methods"]][:3]
    pcs = hosts(fleet, "pc")[:2]
    for ip in [*(h["ip"] for h in [*no_snmp, *pcs]), empty_addresses(fleet)[0]]:
        out = snmp(fleet, ip, SYS_DESCR)
        assert out.returncode != 0 and "STRING" not in out.stdout, (ip, out)
    switch = hosts(fleet, "switch")[0]["ip"]
    argv = ["snmpget", "-v2c", "-c", "private", "-t", "0.4", "-r", "0", switch, SYS_DESCR]
    wrong = fleet.run(argv, env=snmp_env(fleet), timeout=10)
    assert wrong.returncode != 0  # a wrong community gets no answer


def test_switch_lldp_table_lists_neighbours_with_management_addresses(fleet: Lab) -> None:
    switch = hosts(fleet, "switch")[0]
    out = snmp(fleet, switch["ip"], "1.0.8802.1.1.2.1.4", walk=True)
    assert out.returncode == 0, out
    rows: dict[str, dict[str, str]] = {}
    for line in out.stdout.split("\n"):
        match = re.match(rf"^{re.escape(LLDP_REM)}\.(\d+)\.0\.(\d+)\.1 = \S+: ?(.*)$", line)
        if match:
            rows.setdefault(match.group(2), {})[match.group(1)] = match.group(3).strip('" ')
        man = rf"^{re.escape(LLDP_MAN)}\.3\.0\.(\d+)\.1\.1\.4\.([\d.]+) = INTEGER: 2"
        match = re.match(man, line)
        if match:
            rows.setdefault(match.group(1), {})["ip"] = match.group(2)
    chassis = snmp(fleet, switch["ip"], LLDP_REM + ".5", walk=True, hex_strings=True).stdout
    for port, mac in re.findall(
        rf"^{re.escape(LLDP_REM)}\.5\.0\.(\d+)\.1 = Hex-STRING: (.*)$", chassis, re.M
    ):
        rows.setdefault(port, {})["5"] = mac
    listed = hosts(fleet, method="lldp")
    assert len(rows) == len(listed) and single(fleet, "lldp") in listed
    for host in listed:
        row = rows[str(host["lldp"]["port"])]
        assert row["ip"] == host["ip"]
        assert row["10"] == host["lldp"]["sys_desc"] and row["9"] == host["lldp"]["sys_name"]
        assert row["5"].replace(" ", "").lower() == host["mac"].replace(":", "")
        assert row["4"] == "4"  # chassis id subtype macAddress
    descs = {rows[str(h["lldp"]["port"])]["10"] for h in listed if h["kind"] == "phone"}
    assert "Yealink SIP-T46S 66.86.0.15" in descs
    assert any(d.startswith("Polycom;VVX-VVX_450;") for d in descs)
    assert single(fleet, "mdns")["ip"] not in {row["ip"] for row in rows.values()}
    argv = ["snmpbulkwalk", "-v2c", "-c", "public", "-On", "-t", "0.5", "-r", "0"]
    bulk = fleet.run([*argv, switch["ip"], LLDP_REM + ".10"], env=snmp_env(fleet), timeout=10)
    assert bulk.returncode == 0 and len(bulk.stdout.splitlines()) == len(listed), bulk


# -- ARP, PCs, empty addresses -----------------------------------------------------------------
def test_pcs_answer_arp_and_drop_everything_silently(fleet: Lab) -> None:
    for pc in hosts(fleet, "pc")[:3]:
        assert udp_ask(fleet, pc["ip"], 5060, options(pc["ip"], 5060, "UDP"), 0.3) is None
        assert udp_ask(fleet, pc["ip"], 161, b"\x30\x00", 0.3) is None
        assert sip_tcp(fleet, pc["ip"], timeout=0.5) == "timeout"  # dropped, not refused
        entry = neighbour(fleet, pc["ip"])
        assert entry.get("lladdr") == pc["mac"], entry


def test_empty_addresses_do_not_answer_arp(fleet: Lab) -> None:
    empty = empty_addresses(fleet)[:3]
    for ip in empty:
        assert udp_ask(fleet, ip, 5060, b"\r\n", 0.1) is None
    time.sleep(1.2)  # the kernel asks again each second; a live host answers the first time
    for ip in empty:
        assert "lladdr" not in neighbour(fleet, ip), ip


# -- multicast: PnP and mDNS -------------------------------------------------------------------
def test_pnp_phone_subscribes_to_the_multicast_group(fleet: Lab) -> None:
    pnp = single(fleet, "pnp")
    with netns.socket_in(fleet.ns("agent")) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(PNP_GROUP)
        group = struct.pack("4s4s", socket.inet_aton(PNP_GROUP[0]), socket.inet_aton(AGENT_IP))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group)
        sock.settimeout(3.0)
        got = []
        deadline = time.monotonic() + 5.0
        while len(got) < 2 and time.monotonic() < deadline:
            data, source = sock.recvfrom(65536)
            if source[0] == pnp["ip"]:
                got.append((time.monotonic(), data, source))
    assert len(got) == 2
    (t1, first, source), (t2, second, _) = got
    assert source == (pnp["ip"], 5060)
    machex = pnp["mac"].replace(":", "").upper()
    assert first.startswith(f"SUBSCRIBE sip:MAC%3a{machex}@224.0.1.75 SIP/2.0\r\n".encode())
    assert machex in header(first, "From")
    event = header(first, "Event")
    assert event.startswith('ua-profile;profile-type="device"')
    for key in ("vendor_name", "model", "firmware"):
        assert f'"{pnp[key]}"' in event, event
    assert header(first, "Accept") == "application/url"
    assert header(first, "Call-ID") == header(second, "Call-ID")
    cseq = [int(header(m, "CSeq").split()[0]) for m in (first, second)]
    assert cseq[1] == cseq[0] + 1 and 0.25 < t2 - t1 < 1.5  # every 0.5 s
    assert sip_udp(fleet, pnp["ip"], timeout=0.3) is None  # it answers nothing


def test_mdns_services_from_their_own_addresses(fleet: Lab) -> None:
    out = fleet.run([sys.executable, "-c", BROWSE], timeout=30)
    assert out.returncode == 0, out.stderr
    found = [json.loads(line) for line in out.stdout.splitlines()]
    for host in hosts(fleet, method="mdns"):
        for svc in host["mdns"]:
            name = f"{svc['name']}.{svc['type']}.local."
            mine = [f for f in found if f["name"] == name]
            assert mine, (name, [f["name"] for f in found])
            assert mine[0]["addresses"] == [host["ip"]] and mine[0]["port"] == svc["port"]
            assert mine[0]["txt"] == svc["txt"]
    mdns_only = single(fleet, "mdns")
    types = {f["type"] for f in found if f["addresses"] == [mdns_only["ip"]]}
    assert types == {"_http._tcp.local.", "_sip._udp.local."}
    txt = next(f["txt"] for f in found if f["addresses"] == [mdns_only["ip"]])
    assert txt["mac"] == mdns_only["mac"] and txt["model"] == mdns_only["model"]
    assert {"_ipp._tcp.local."} <= {f["type"] for f in found}
    regular = [h for h in hosts(fleet, "phone", "mdns") if not h["single_method"]]
    assert {h["vendor"] for h in regular} == {"yealink", "gigaset"}  # several regular phones
    advertised = {a for f in found for a in f["addresses"]}
    assert advertised == {h["ip"] for h in hosts(fleet, method="mdns")}


# -- robustness --------------------------------------------------------------------------------
def test_garbage_does_not_hurt_the_fleet(fleet: Lab) -> None:
    phone = hosts(fleet, "phone", "snmp")[0]
    switch = hosts(fleet, "switch")[0]
    for _ in range(50):
        udp_ask(fleet, phone["ip"], 5060, secrets.token_bytes(secrets.randbelow(1400)), 0.01)
        udp_ask(fleet, switch["ip"], 161, secrets.token_bytes(secrets.randbelow(300)), 0.01)
    for junk in (
        b"OPTIONS sip:x SIP/2.0\r\n\r\n",  # no Via: no answer
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 1.2.3.4\r\n\r\n",  # a response: no answer
        b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP " + b"A" * 20000 + b"\r\n\r\n",
        b"\x00\xff" * 500,
    ):
        assert udp_ask(fleet, phone["ip"], 5060, junk, 0.2) is None, junk
    for incomplete in (  # a request with a Via but no From, To, Call-ID or CSeq: 400
        b"OPTIONS sip:x SIP/2.0\nv: SIP/2.0/UDP 10.66.0.100:9\n\n",
        b"INVITE sip:x SIP/2.0\nVia: SIP/2.0/UDP \xff\xfe;;;=\n\n",
    ):
        bad = udp_ask(fleet, phone["ip"], 5060, incomplete)
        assert bad and bad[0].startswith(b"SIP/2.0 400 Bad Request"), bad
    assert sip_tcp(fleet, phone["ip"], b"GARBAGE" * 4000, timeout=2.0) in (b"", "reset")
    huge = b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 99999999\r\n\r\n"
    assert sip_tcp(fleet, phone["ip"], huge, timeout=2.0) in (b"", "reset")
    (proc,) = [p for p in fleet.state.procs if p.name == "fleet"]
    assert procs.alive(proc)
    reply = sip_udp(fleet, phone["ip"])
    assert reply and reply[0].startswith(b"SIP/2.0 200 OK")
    assert snmp(fleet, switch["ip"], SYS_DESCR).returncode == 0
    assert "Traceback" not in Path(proc.log).read_text()


# -- the CLI, 50 phones, and down --------------------------------------------------------------
def test_fifty_phones_come_up_fast_and_go_away() -> None:
    instance = f"pytest-fleet-{secrets.token_hex(2)}"
    env = {**os.environ, "PHONEDIAG_LAB": instance}
    run = {"cwd": REPO, "env": env, "capture_output": True, "text": True, "timeout": 60}
    cli = [sys.executable, "-m", "lab"]
    started = time.monotonic()
    up = subprocess.run([*cli, "up", "--scenario", "fleet", "--phones", "50"], **run, check=False)
    elapsed = time.monotonic() - started
    names: list[str] = []
    started_procs: list[procs.Proc] = []
    try:
        assert up.returncode == 0, up.stderr
        lab = Lab.current(instance)
        names, started_procs = list(lab.namespaces.values()), list(lab.state.procs)
        kinds = [h["kind"] for h in lab.fleet_hosts]
        assert (kinds.count("phone"), kinds.count("pc"), len(kinds)) == (50, 20, 72)
        assert "50 phone, 20 pc, 1 printer" in up.stdout.replace("1 switch, ", "")
        assert "single-method phones: " in up.stdout
        assert elapsed < 10.0, up.stdout
        (proc,) = [p for p in lab.state.procs if p.name == "fleet"]
        assert fleet_service.ready(proc) and lab.phones == []
    finally:
        down = subprocess.run([*cli, "down"], **run, check=False)
    assert down.returncode == 0, down.stderr
    assert names and started_procs
    assert not [n for n in names if (NETNS_RUN_DIR / n).exists()]
    assert not [n for n in names if (NETNS_ETC_DIR / n).exists()]
    assert not [p for p in started_procs if procs.alive(p)]
    assert not (Path("/run/phonediag-lab") / instance).exists()
