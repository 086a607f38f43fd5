"""A phone's web face and controller: the phone state file and the process serving it.

``<state>/<role>/phone-state.json`` is the phone's own settings (keys: lab/personalities/
__init__.py), written at ``up`` from the ground truth. One process per phone,
``python -m lab.personalities.server``, serves the vendor's web interface on port 80 and, in
a thread, drives the phone's baresip from that file (DND, forwarding) and reports its
registration (lab/personalities/controller.py).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lab import procs
from lab.services import phone as sip
from lab.state import Proc

REPO = Path(__file__).resolve().parents[2]
PORT = 80
ADMIN_USER = "admin"
TRANSPORT = "udp"


def state_file(state_dir: Path, role: str) -> Path:
    """The phone state file of ``role``."""
    return state_dir / role / "phone-state.json"


def initial_state(
    phone: Mapping[str, Any],
    registrar: str,
    admin_password: str,
    sip_password: str = "",
    provisioning_server: str = "",
) -> dict[str, Any]:
    """The phone's settings as the lab starts it (a healthy phone). ``sip_password``: what
    the phone holds for its line; ``provisioning_server``: "ip:port" where it reaches
    OVHcloud's provisioning hosts (the lab has no DNS for them)."""
    return {
        "role": phone["role"],
        "vendor": phone["vendor"],
        "model": phone["model"],
        "firmware": phone["firmware"],
        "mac": phone["mac"],
        "ip": phone["ip"],
        "hostname": phone["hostname"],
        "user_agent": phone["user_agent"],
        "line": phone["line"],
        "registrar": registrar,
        "admin": {"username": ADMIN_USER, "password": admin_password},
        "dnd": False,
        "forward": {"always": "", "busy": "", "noanswer": ""},
        "clock_offset_s": 0,
        "provisioning_url": phone.get("provisioning_url", ""),
        "provisioning_server": provisioning_server,
        "sip_password": sip_password,
        "outbound_proxy": "",
        "transport": TRANSPORT,
        "expires": sip.REG_INTERVAL,
    }


def merge(state: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` with ``changes``; a dict value updates the dict it replaces (forward, admin)."""
    out = dict(state)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def write_state(path: Path, state: Mapping[str, Any]) -> None:
    """Write the state file atomically, owner-only (it holds the web login)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(state, fh, indent=2)
    tmp.replace(path)


def read_state(path: Path) -> dict[str, Any]:
    """The phone state file as a dict."""
    return json.loads(path.read_text())


def answermode(state: Mapping[str, Any]) -> str:
    """baresip's answermode at start: calls must not be auto-answered when diverted."""
    forward = state.get("forward") or {}
    return "manual" if state.get("dnd") or forward.get("always") else "auto"


def start(ns: str, phone: Mapping[str, Any], state_dir: Path) -> Proc:
    """Start the face + controller process of ``phone`` (its state file must exist); a model
    without a web interface gets the controller alone."""
    role = phone["role"]
    common = ["--state", str(state_file(state_dir, role))]
    common += ["--sip-log", str(sip.log_path(state_dir, role))]
    if phone["offers"].get("http"):
        module = "lab.personalities.server"
        common += ["--listen", f"{phone['ip']}:{PORT}", "--family", phone["vendor"]]
    else:
        module = "lab.personalities.controller"
    log = state_dir / "logs" / f"{role}-face.log"
    argv = [sys.executable, "-m", module, *common]
    return procs.spawn("face", role, ns, argv, log, env={"PYTHONPATH": str(REPO)})


def command(ns: str, name: str, params: str = "") -> str | None:
    """Send one of the controller's ``lab_*`` commands; its answer, None if not accepted."""
    try:
        with sip.Ctrl(ns, timeout=3.0) as ctrl:
            answer = ctrl.command(name, params, timeout=3.0)
    except (OSError, sip.PhoneError):
        return None
    return str(answer.get("data", "")) if answer.get("ok") else None


def reload(ns: str) -> bool:
    """Ask the phone's controller to apply its state file now; False if it did not answer."""
    try:
        with sip.Ctrl(ns, timeout=2.0) as ctrl:
            return bool(ctrl.command("lab_reload").get("ok"))
    except (OSError, sip.PhoneError):
        return False


def registration(ns: str) -> dict[str, Any] | None:
    """The controller's view of the line's registration (None if it did not answer)."""
    try:
        with sip.Ctrl(ns, timeout=3.0) as ctrl:
            answer = ctrl.command("lab_registration", timeout=3.0)
    except (OSError, sip.PhoneError):
        return None
    return json.loads(answer["data"]) if answer.get("ok") else None


def incoming_calls(ns: str) -> list[dict[str, Any]] | None:
    """The calls that reached the phone's SIP UA (CALL_INCOMING events, oldest first: time,
    peer, id), as its controller recorded them; None if it did not answer."""
    try:
        with sip.Ctrl(ns, timeout=3.0) as ctrl:
            answer = ctrl.command("lab_incoming", timeout=3.0)
    except (OSError, sip.PhoneError):
        return None
    return json.loads(answer["data"]) if answer.get("ok") else None
