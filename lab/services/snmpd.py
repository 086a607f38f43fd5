"""A phone's SNMP face: one net-snmp snmpd per phone, with the model's system group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab import procs
from lab.state import Proc

COMMUNITY = "public"
ALLOWED = "10.66.0.0/24"


def render(phone: dict[str, Any]) -> str:
    """snmpd.conf for one phone."""
    snmp = phone["snmp"]
    return (
        f"agentAddress udp:{phone['ip']}:161\n"
        f"rocommunity {COMMUNITY} {ALLOWED}\n"
        f"sysDescr {snmp['sys_descr']}\n"
        f"sysObjectID {snmp['sys_object_id']}\n"
        f"sysName {snmp['sys_name']}\n"
        "sysServices 72\n"
    )


def start(ns: str, phone: dict[str, Any], state_dir: Path) -> Proc:
    """Start snmpd in the foreground with its own config and persistent dir (``-C``: no others)."""
    base = state_dir / phone["role"] / "snmp"
    (base / "persist").mkdir(parents=True, exist_ok=True)
    conf = base / "snmpd.conf"
    conf.write_text(render(phone))
    argv = ["snmpd", "-f", "-Lo", "-C", "-c", str(conf), "-p", str(base / "snmpd.pid")]
    env = {"SNMP_PERSISTENT_DIR": str(base / "persist"), "MIBS": ""}
    log = state_dir / "logs" / f"{phone['role']}-snmpd.log"
    return procs.spawn("snmpd", phone["role"], ns, argv, log, env=env)
