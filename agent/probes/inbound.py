"""Can this line receive a call right now? An OPTIONS for the line's address of record,
sent to the registrar, must be relayed to the phone and answered by it, back through the
NAT and any ALG, without ringing it. What no peer tool does.

Runs after the device probe (``PHASE = 2``): it needs each phone's SIP account. When the
registrar answers OPTIONS itself instead of relaying them, the result is unknown. The
registrar's answer also tells whether it holds a registration for the line
(``line.registered``: 404/480 no; relayed, or 408 after trying, yes).
"""

from __future__ import annotations

import asyncio

from agent.config import Config
from agent.model import UNKNOWN, Fact
from agent.net import sip
from agent.probes import Context
from agent.probes.registrar import resolve

PHASE = 2
SRC = "inbound"
KEY = "line.reachable_inbound"
WAIT = 6.0  # a registrar gives up on a silent phone after a few seconds (408)


def budget(config: Config) -> float:
    return WAIT + 4 * config.timeout + 5


def _port(ctx: Context) -> int | None:
    """The registrar port that answers: 5060, else OVHcloud's 5962."""
    site = {f.key: f.value for f in ctx.facts if f.subject == "site"}
    for port in ctx.config.registrar_ports:
        if site.get(f"registrar.udp.{port}.reachable") is True:
            return port
    return None


def _verdict(device_agent: str | None, reply: sip.SipReply | None) -> tuple[object, str]:
    if reply is None:
        return False, f"no answer within {WAIT:g} s: the call would not reach the phone"
    who = reply.agent or "no User-Agent"
    if reply.code == 200:
        if device_agent and reply.agent == device_agent:
            return True, f"relayed to the phone, which answered ({who})"
        return UNKNOWN, f"answered 200 by {who}, not by the phone: the registrar does not relay"
    if reply.code in (404, 480):
        return False, f"{reply.code} {reply.reason}: the registrar has no registration for it"
    if reply.code == 408:
        return False, "408 Request Timeout: the registrar could not reach the phone"
    if 200 < reply.code < 300 or reply.code in (405, 501):
        return True, f"{reply.code} {reply.reason} from the phone ({who})"
    return False, f"{reply.code} {reply.reason} ({who})"


async def probe(ctx: Context) -> list[Fact]:
    accounts = {
        f.subject: f.value
        for f in ctx.facts
        if f.key == "sip.account" and isinstance(f.value, str) and "@" in f.value
    }
    if not accounts:
        return []
    port = _port(ctx)
    if port is None:
        why = "the registrar answers on no port: inbound calls cannot be tested"
        return [Fact(ip, KEY, UNKNOWN, SRC, why) for ip in accounts]
    try:
        addrs, _ms = await resolve(ctx.config.registrar, ctx.config.timeout * 2)
    except (OSError, TimeoutError):
        return [Fact(ip, KEY, UNKNOWN, SRC, "the registrar does not resolve") for ip in accounts]
    target = (addrs[0], port)
    agents = {d.ip: d.evidence.get("sip", {}).get("agent") for d in ctx.devices}

    async def one(ip: str, account: str) -> list[Fact]:
        reply = await sip.options_to(target, f"sip:{account}", timeout=WAIT)
        value, why = _verdict(agents.get(ip), reply)
        evidence = f"OPTIONS sip:{account} via {target[0]}:{port}: {why}"
        facts = [Fact(ip, KEY, value, SRC, evidence)]
        if reply is not None and reply.code in (404, 480):
            facts.append(Fact(ip, "line.registered", False, SRC, evidence))
        elif reply is not None and (reply.code == 408 or value is True):
            facts.append(Fact(ip, "line.registered", True, SRC, evidence))
        return facts

    results = await asyncio.gather(*(one(ip, acc) for ip, acc in accounts.items()))
    return [f for r in results for f in r]
