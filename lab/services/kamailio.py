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


def render(
    ip: str,
    ctl: Path,
    passwords: dict[str, str],
    keepalive: bool = True,
    pstn: str = "127.0.0.1",
) -> str:
    """Kamailio configuration for one lab (``keepalive``: OPTIONS to NATed phones every 15 s;
    ``pstn``: the address of the PSTN gateway, where forwards to non-line numbers go)."""
    users = "\n".join(f'\t$sht(users=>{line}) = "{pw}";' for line, pw in sorted(passwords.items()))
    if not users:  # the fleet scenario: no line (a route block must not be empty)
        users = '\txlog("L_INFO", "no line provisioned\\n");'
    return string.Template(TEMPLATE.read_text()).substitute(
        ip=ip,
        domain=DOMAIN,
        ctl=str(ctl),
        users=users,
        natping=15 if keepalive else 0,
        pstn=pstn,
    )


def start(
    ns: str,
    ip: str,
    state_dir: Path,
    passwords: dict[str, str],
    keepalive: bool = True,
    pstn: str = "127.0.0.1",
) -> Proc:
    """Write the config (owner-only: it holds the passwords) and start Kamailio in foreground."""
    cfg = state_dir / "kamailio.cfg"
    cfg.touch(mode=0o600)
    cfg.write_text(render(ip, ctl_socket(state_dir), passwords, keepalive, pstn))
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


_HTABLE_ITEM = re.compile(
    r"^[ \t]*name:[ \t]?(?P<name>.*?)\n[ \t]*value:[ \t]?(?P<value>.*?)\n[ \t]*type:", re.M
)


def htable_dump(state_dir: Path, table: str) -> dict[str, str]:
    """Every key -> value of one of the registrar's htables (``kamcmd htable.dump``)."""
    text = kamcmd(state_dir, "htable.dump", table)
    return {m["name"]: m["value"] for m in _HTABLE_ITEM.finditer(text)}


def line_options(state_dir: Path, line: str) -> dict[str, str]:
    """The provider-side options of ``line`` (htable ``opts``): LineOptions field -> value
    ("true"/"false" for booleans). A field that is absent has its default (false or empty)."""
    prefix = f"{line}::"
    return {
        key[len(prefix) :]: value
        for key, value in htable_dump(state_dir, "opts").items()
        if key.startswith(prefix)
    }


def set_line_option(state_dir: Path, line: str, name: str, value: str | bool) -> None:
    """Set one provider-side option of ``line``, as the OVHcloud API does (``htable.sets``).
    A bool becomes "true"/"false"; "s:" keeps kamcmd from turning digits into an integer."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    kamcmd(state_dir, "htable.sets", "opts", f"s:{line}::{name}", f"s:{value}")


def last_registrations(state_dir: Path, line: str) -> list[dict[str, str]]:
    """The rows of htable ``regs`` for ``line``, oldest first: datetime (epoch "s.us"), ip,
    port, local_ip, local_port (the Contact's), domain, user_agent."""
    prefix = f"{line}::"
    rows = []
    for key, value in htable_dump(state_dir, "regs").items():
        if not key.startswith(prefix):
            continue
        parts = value.split(";", 5)
        if len(parts) < 6:
            continue
        keys = ("ip", "port", "local_ip", "local_port", "domain", "user_agent")
        rows.append({"datetime": key[len(prefix) :], **dict(zip(keys, parts, strict=True))})
    return sorted(rows, key=lambda r: float(r["datetime"]))
