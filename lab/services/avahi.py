"""A phone's mDNS face: one avahi-daemon per phone, no D-Bus, private /etc/avahi and /run."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from lab import procs
from lab.state import Proc

READY_MARK = "successfully established"


def render_conf(phone: dict[str, Any]) -> str:
    """avahi-daemon.conf for one phone."""
    return (
        "[server]\n"
        f"host-name={phone['hostname']}\n"
        "domain-name=local\nuse-ipv4=yes\nuse-ipv6=no\nallow-interfaces=eth0\nenable-dbus=no\n"
        "[wide-area]\nenable-wide-area=no\n"
        "[publish]\npublish-workstation=no\npublish-hinfo=no\npublish-addresses=yes\n"
    )


def render_service(phone: dict[str, Any]) -> str:
    """The phone's advertised service, as an avahi service file."""
    mdns = phone["mdns"]
    txt = "".join(
        f"    <txt-record>{escape(f'{key}={value}')}</txt-record>\n"
        for key, value in mdns["txt"].items()
    )
    return (
        '<?xml version="1.0" standalone="no"?>\n'
        '<!DOCTYPE service-group SYSTEM "avahi-service.dtd">\n'
        "<service-group>\n"
        f"  <name>{escape(mdns['name'])}</name>\n"
        "  <service>\n"
        f"    <type>{escape(mdns['type'])}</type>\n"
        f"    <port>{int(mdns['port'])}</port>\n"
        f"{txt}"
        "  </service>\n"
        "</service-group>\n"
    )


def start(ns: str, phone: dict[str, Any], state_dir: Path) -> Proc:
    """Start avahi-daemon with its own conf dir bind-mounted over /etc/avahi and a tmpfs /run.

    The mounts happen in ``ip netns exec``'s private mount namespace, so nothing leaks out.
    The conf dir is mounted first: the state dir itself lives under /run.
    """
    conf = state_dir / phone["role"] / "avahi"
    (conf / "services").mkdir(parents=True, exist_ok=True)
    (conf / "avahi-daemon.conf").write_text(render_conf(phone))
    (conf / "services" / "phone.service").write_text(render_service(phone))
    script = (
        f"mount --bind {shlex.quote(str(conf))} /etc/avahi"
        " && mount -t tmpfs tmpfs /run && mkdir /run/avahi-daemon"
        " && exec avahi-daemon --no-drop-root --no-chroot --no-rlimits --no-proc-title"
    )
    log = state_dir / "logs" / f"{phone['role']}-avahi.log"
    return procs.spawn("avahi-daemon", phone["role"], ns, ["sh", "-c", script], log)


def published(proc: Proc) -> bool:
    """True once avahi logged that the phone's service is established."""
    try:
        return READY_MARK in Path(proc.log).read_text(errors="replace")
    except FileNotFoundError:
        return False
