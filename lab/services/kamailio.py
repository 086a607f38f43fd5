"""The provider's registrar/proxy: Kamailio with digest auth (no DB) and NAT handling."""

from __future__ import annotations

import re
import string
import subprocess
from pathlib import Path
from typing import Any

from lab import procs
from lab.state import Proc

TEMPLATE = Path(__file__).with_name("kamailio.cfg.tmpl")
DOMAIN = "sip.ovh.test"
PORTS = (5060, 5962)


def ctl_socket(state_dir: Path) -> Path:
    """The kamcmd control socket of a lab."""
    return state_dir / "kamailio_ctl"


def render(ip: str, ctl: Path, passwords: dict[str, str], keepalive: bool = True) -> str:
    """Kamailio configuration for one lab (``keepalive``: OPTIONS to NATed phones every 15 s)."""
    users = "\n".join(f'\t$sht(users=>{line}) = "{pw}";' for line, pw in sorted(passwords.items()))
    return string.Template(TEMPLATE.read_text()).substitute(
        ip=ip, domain=DOMAIN, ctl=str(ctl), users=users, natping=15 if keepalive else 0
    )


def start(
    ns: str, ip: str, state_dir: Path, passwords: dict[str, str], keepalive: bool = True
) -> Proc:
    """Write the config (owner-only: it holds the passwords) and start Kamailio in foreground."""
    cfg = state_dir / "kamailio.cfg"
    cfg.touch(mode=0o600)
    cfg.write_text(render(ip, ctl_socket(state_dir), passwords, keepalive))
    argv = ["kamailio", "-DD", "-E", "-m", "32", "-M", "4", "-f", str(cfg)]
    return procs.spawn("kamailio", "prov", ns, argv, state_dir / "logs" / "kamailio.log")


def kamcmd(state_dir: Path, *args: str, timeout: float = 5) -> str:
    """Run kamcmd against the lab's control socket (a unix socket: no namespace needed)."""
    argv = ["kamcmd", "-s", f"unix:{ctl_socket(state_dir)}", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"kamcmd {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


_FIELD = re.compile(
    r"^\s*(AoR|Address|Received|User-Agent|Expires|Socket|Call-ID|Path|Last-Modified):\s*(.*?)\s*$"
)


def parse_ul_dump(text: str) -> list[dict[str, Any]]:
    """Turn ``kamcmd ul.dump`` output into one dict per contact binding.

    Keys: aor, address (the Contact), received, user_agent, expires, socket, call_id, path,
    last_modified; "[not set]" becomes None.
    """
    bindings: list[dict[str, Any]] = []
    aor = None
    for line in text.splitlines():
        match = _FIELD.match(line)
        if not match:
            continue
        key, raw = match.groups()
        value: Any = None if raw == "[not set]" else raw
        if key == "AoR":
            aor = value
        elif key == "Address":
            bindings.append({"aor": aor, "address": value, "received": None, "user_agent": None})
        elif bindings:
            if key in ("Expires", "Last-Modified") and value is not None:
                value = int(value)
            bindings[-1][key.lower().replace("-", "_")] = value
    return bindings


def registrations(state_dir: Path) -> list[dict[str, Any]]:
    """Current bindings of the registrar."""
    return parse_ul_dump(kamcmd(state_dir, "ul.dump"))
