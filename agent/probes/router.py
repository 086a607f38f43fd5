"""The office router read over SSH ([router] ssh), read-only: its UDP conntrack timeouts
and whether the kernel's SIP helper (the Linux "SIP ALG") is in use.

What the reflector and the NAT-lifetime test measure from outside, a Linux router
(OpenWrt, a Debian box) also says of itself: ``/proc/sys/net/netfilter``, the loaded
modules and the nftables ruleset. Off unless configured: no SSH attempt at all then.

The host key is pinned on first use (agent/net/ssh.py) and said (``router.ssh_hostkey_*``
facts; the text report has a line); a key that changed is refused before any login is
sent, and becomes the fact ``router.ssh_hostkey_changed`` = true (rule
``router-host-key-changed``). Every failure (refused, login failed, timeout, a command
missing or not permitted) is an error entry and UNKNOWN facts, never an exception.

Facts (agent/facts/router.toml):

- ``router.udp_timeout``: ``nf_conntrack_udp_timeout_stream``, the lifetime of an idle
  UDP mapping that has seen answers (a registered phone's); ``router.udp_timeout_unreplied``:
  ``nf_conntrack_udp_timeout``, for UDP not answered yet (and a flow's first seconds);
- ``router.sip_helper``: true when an nftables rule assigns a conntrack helper of type
  "sip" (``ct helper set``), or when the module ``nf_conntrack_sip`` is loaded with the
  old automatic helper assignment on (``nf_conntrack_helper`` = 1); false when the
  ruleset could be read and shows none, with no module loaded that legacy iptables rules
  (invisible to nft) could use; UNKNOWN otherwise (nft missing or not permitted, an
  iptables ``CT`` target nft cannot show, output cut). ``router.sip_helper_seen`` says
  where it was seen (only when it was).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from agent.config import Config
from agent.model import UNKNOWN, Fact, ProbeError
from agent.net import ssh
from agent.probes import Context

SRC = "router"
STEP = "probe.router"

# name -> command; each runs on its own with the router's timeout and the output cap.
COMMANDS = {
    "udp_timeout": "cat /proc/sys/net/netfilter/nf_conntrack_udp_timeout",
    "udp_timeout_stream": "cat /proc/sys/net/netfilter/nf_conntrack_udp_timeout_stream",
    "helper_auto": "cat /proc/sys/net/netfilter/nf_conntrack_helper",  # gone since Linux 6.0
    "modules": "cat /proc/modules",
    "iptables_tables": "cat /proc/net/ip_tables_names",  # legacy iptables tables in use
    "nft": "nft list ruleset",
}
DATA_FACTS = ("router.udp_timeout", "router.udp_timeout_unreplied", "router.sip_helper")
HOSTKEY_FACTS = (
    "router.ssh_hostkey",
    "router.ssh_hostkey_pinned",
    "router.ssh_hostkey_pinned_now",
    "router.ssh_hostkey_changed",
)
# Reads whose absence is normal: no module support (everything built in), Linux >= 6.0,
# no legacy iptables.
OPTIONAL = ("modules", "helper_auto", "iptables_tables")
MISSING = 127  # the shell's "command not found"

# nftables: `ct helper NAME { type "sip" protocol udp; ... }` and `ct helper set "NAME"`
_HELPER_OBJ = re.compile(r"ct\s+helper\s+\"?([\w.-]+)\"?\s*\{([^}]*)\}", re.S)
_SIP_TYPE = re.compile(r"type\s+\"sip\"")
_HELPER_SET = re.compile(r"ct\s+helper\s+set\s+(.+)")
_SIP_MODULE = re.compile(r"^nf_conntrack_sip\s", re.M)


def configured(cfg: Config) -> bool:
    return bool(cfg.router_ssh)


def timeout_of(cfg: Config) -> float:
    """Seconds for the connection and for each command ([router] timeout, else the
    diagnosis's one-operation timeout)."""
    return cfg.router_ssh_timeout or cfg.timeout


def budget(cfg: Config) -> float:
    """The connection, then every command, each within its timeout, and the goodbye."""
    if not configured(cfg):
        return 1.0
    return timeout_of(cfg) * (1 + len(COMMANDS)) + ssh.CLOSE_WAIT + 1


def _in_scope(ctx: Context, host: str) -> str | None:
    """Why ``host`` may not be contacted (not in a scanned network), or None."""
    ip = ipaddress.IPv4Address(host)
    for n in ctx.networks:
        if ip in n.network and ip not in (n.network.network_address, n.network.broadcast_address):
            return None
    nets = ", ".join(str(n.network) for n in ctx.networks) or "none"
    return f"[router] ssh {host} is outside the networks scanned ({nets}): not contacted"


async def probe(ctx: Context, commands: dict[str, str] | None = None) -> list[Fact]:
    """``commands``: tests only (the router's commands by name, default :data:`COMMANDS`)."""
    cfg = ctx.config
    if not configured(cfg):
        return []
    try:  # load() refused a public address; the scope check below is the one that counts
        target = ssh.parse_target(cfg.router_ssh or "", private_only=False)
    except ValueError as e:  # load() checked it; a Config built by hand may not be
        return _failed(ctx, None, f"[router] ssh: {e}")
    facts = [Fact("site", "router.ssh_host", target.where, SRC, f"[router] ssh = {cfg.router_ssh}")]
    why = _in_scope(ctx, target.host)
    if why:
        return facts + _failed(ctx, target, why)
    chosen = COMMANDS if commands is None else commands
    try:
        result = await ssh.run(
            target,
            list(chosen.values()),
            known_hosts=ssh.known_hosts_path(cfg.store_path),
            timeout=timeout_of(cfg),
            key_file=cfg.router_ssh_key or None,
            password=cfg.router_ssh_password or None,
        )
    except Exception as e:  # never a traceback: an error entry (no secret in a type name)
        return facts + _failed(ctx, target, f"SSH failed unexpectedly ({type(e).__name__})")
    facts += _hostkey_facts(result)
    if result.error is not None:
        return facts + _failed(ctx, target, result.error, hostkey=False)
    outputs = dict(zip(chosen, result.outputs, strict=False))
    facts += _data_facts(outputs, chosen)
    for name, out in outputs.items():
        # A command that timed out or was cut, or one a fact needed that failed (missing,
        # not permitted); the optional reads (modules, old sysctl, legacy tables) may fail.
        if out.error or (out.status != 0 and name not in OPTIONAL):
            ctx.errors.append(ProbeError(STEP, f"{out.command}: {_why(out)}", target.host))
    return facts


def _failed(ctx: Context, target: ssh.Target | None, why: str, hostkey: bool = True) -> list[Fact]:
    """An error entry, and every fact the router would have given as UNKNOWN."""
    ctx.errors.append(ProbeError(STEP, why, target.host if target else None))
    keys = DATA_FACTS + (("router.ssh_hostkey_changed",) if hostkey else ())
    return [Fact("site", k, UNKNOWN, SRC, why) for k in keys]


def _hostkey_facts(result: ssh.Result) -> list[Fact]:
    hk = result.hostkey
    if hk is None:  # no key exchange (unreachable, refused, silent)
        why = result.error or "no host key received"
        return [Fact("site", "router.ssh_hostkey_changed", UNKNOWN, SRC, why)]
    where = result.target.where
    pinned = ", ".join(hk.pinned)
    evidence = {
        "pinned-now": f"first connection to {where}: key pinned now in {hk.file}",
        "known": f"same key as the one pinned for {where} in {hk.file}",
        "changed": f"{where} offered {hk.offered}; pinned in {hk.file}: {pinned}."
        " Refused: nothing was sent to log in",
        "seen": f"first connection to {where}, ended before the key could be pinned",
    }[hk.status]
    facts = [
        Fact("site", "router.ssh_hostkey", hk.offered, SRC, evidence),
        Fact("site", "router.ssh_hostkey_pinned_now", hk.status == "pinned-now", SRC, evidence),
        Fact("site", "router.ssh_hostkey_changed", hk.changed, SRC, evidence),
    ]
    if hk.status == "pinned-now":
        facts.append(Fact("site", "router.ssh_hostkey_pinned", hk.offered, SRC, evidence))
    elif hk.pinned:
        facts.append(Fact("site", "router.ssh_hostkey_pinned", pinned, SRC, evidence))
    return facts


def _why(out: ssh.Output) -> str:
    """A failed command in a few words: its exit status and first line of error."""
    if out.error:
        return out.error
    first = next((ln.strip() for ln in out.stderr.splitlines() if _real_error(ln)), "")
    if out.status is None:
        return f"ended without an exit status{': ' + first if first else ''}"
    if out.status == MISSING:
        return f"command not found (exit {MISSING}){': ' + first if first else ''}"
    return f"exit status {out.status}{': ' + first if first else ''}"


def _real_error(line: str) -> bool:
    """A line of standard error that is the command's own (an sshd in debug mode writes
    ``debug1:`` lines there too)."""
    return bool(line.strip()) and not line.startswith("debug")


def _ok(out: ssh.Output | None) -> bool:
    return out is not None and out.error is None and out.status == 0


def _seconds(out: ssh.Output | None) -> int | None:
    if not _ok(out):
        return None
    assert out is not None
    text = out.stdout.strip()
    return int(text) if text.isdigit() and len(text) < 10 else None


def _shown(command: str, out: ssh.Output | None) -> str:
    """``$ command: output`` for the evidence (the first line of the output)."""
    if out is None:
        return f"$ {command}: not run"
    if not _ok(out):
        return f"$ {command}: {_why(out)}"
    text = out.stdout.strip().splitlines()
    return f"$ {command}: {text[0] if text else '(empty)'}"


def _data_facts(outputs: dict[str, ssh.Output], commands: dict[str, str]) -> list[Fact]:
    facts = []
    for key, name in (
        ("router.udp_timeout", "udp_timeout_stream"),
        ("router.udp_timeout_unreplied", "udp_timeout"),
    ):
        out = outputs.get(name)
        value = _seconds(out)
        shown = _shown(commands.get(name, name), out)
        facts.append(Fact("site", key, UNKNOWN if value is None else value, SRC, shown))
    helper = sip_helper(outputs)
    facts.append(Fact("site", "router.sip_helper", helper.value, SRC, helper.evidence))
    if helper.value is True:
        facts.append(Fact("site", "router.sip_helper_seen", helper.seen, SRC, helper.evidence))
    return facts


@dataclass
class Helper:
    value: object  # True | False | UNKNOWN
    evidence: str
    seen: str = ""


def nft_sip_helpers(ruleset: str) -> tuple[list[str], list[str]]:
    """(names of the ct helpers of type "sip", the rule lines that assign one of them)."""
    names = [m.group(1) for m in _HELPER_OBJ.finditer(ruleset) if _SIP_TYPE.search(m.group(2))]
    if not names:
        return [], []
    wanted = re.compile(r"(?<![\w.-])\"?(" + "|".join(map(re.escape, names)) + r")\"?(?![\w.-])")
    used = [
        line.strip()
        for line in ruleset.splitlines()
        if (m := _HELPER_SET.search(line)) and wanted.search(m.group(1))
    ]
    return names, used


def sip_helper(outputs: dict[str, ssh.Output]) -> Helper:
    """Whether the router's kernel SIP helper is in use (module docstring), with why."""
    nft, modules = outputs.get("nft"), outputs.get("modules")
    auto, legacy = outputs.get("helper_auto"), outputs.get("iptables_tables")
    module = _ok(modules) and modules is not None and bool(_SIP_MODULE.search(modules.stdout))
    auto_on = _ok(auto) and auto is not None and auto.stdout.strip() == "1"
    said = []
    if _ok(modules):
        state = "nf_conntrack_sip loaded" if module else "no nf_conntrack_sip"
        said.append(f"/proc/modules: {state}")
    if module and auto_on:
        seen = "nf_conntrack_sip loaded, automatic helper assignment on (nf_conntrack_helper = 1)"
        return Helper(True, "; ".join([*said, seen]), seen)
    if not _ok(nft):
        why = _why(nft) if nft is not None else "not run"
        return Helper(UNKNOWN, "; ".join([*said, f"$ nft list ruleset: {why}"]))
    assert nft is not None
    names, used = nft_sip_helpers(nft.stdout)
    if used:
        seen = f"nft: ct helper {', '.join(names)} (type sip) assigned by: {'; '.join(used[:3])}"
        return Helper(True, "; ".join([seen, *said]), seen)
    lines = len(nft.stdout.splitlines())
    if names:
        said.append(f"nft: ct helper {', '.join(names)} (type sip) defined, assigned by no rule")
    else:
        said.append(f"nft: no ct helper of type sip ({lines} lines read)")
    if re.search(r'xt target "?CT"?', nft.stdout):
        said.append('an iptables-nft "CT" target nft cannot show (it may set a helper)')
        return Helper(UNKNOWN, "; ".join(said))
    tables = legacy.stdout.split() if _ok(legacy) and legacy is not None else []
    if module and "raw" in tables:
        said.append("legacy iptables raw table in use (invisible to nft): it may set the helper")
        return Helper(UNKNOWN, "; ".join(said))
    return Helper(False, "; ".join(said))
