"""The lab's scenarios: the healthy office, and the healthy office plus exactly one fault."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# nftables rulesets loaded in the router namespace.
NAT_RULES = """
table ip nat {
  chain post { type nat hook postrouting priority srcnat; oifname "wan0" masquerade; }
}
"""

# The kernel's real SIP ALG (nf_conntrack_sip + nf_nat_sip): loaded before the phones register,
# because the helper is attached to new conntracks only.
SIP_ALG_RULES = """
table ip alg {
  ct helper sip5060 { type "sip" protocol udp; l3proto ip; }
  chain pre {
    type filter hook prerouting priority filter;
    iifname "lan0" udp dport 5060 ct helper set "sip5060";
  }
}
"""

# An ISP that drops SIP's well-known port towards the internet; 5962 stays open.
BLOCK_5060_RULES = """
table ip isp {
  chain block_sip { type filter hook forward priority filter; oifname "wan0" udp dport 5060 drop; }
}
"""


# An ISP box whose resolver stops answering: queries from the LAN are dropped.
DNS_BROKEN_RULES = """
table ip dnsbroken {
  chain in { type filter hook input priority filter; iifname "lan0" udp dport 53 drop;
             iifname "lan0" tcp dport 53 drop; }
}
"""

# A router that forgets idle UDP mappings after 30 s (the guide asks at least 180 s).
SHORT_NAT_SYSCTLS = MappingProxyType(
    {
        "net.netfilter.nf_conntrack_udp_timeout": "30",
        "net.netfilter.nf_conntrack_udp_timeout_stream": "30",
    }
)


@dataclass(frozen=True)
class Scenario:
    """One office set-up. A fault on one phone names it by number (``fault_phone``, 1-based;
    with fewer phones, the last one) and says what is wrong with it."""

    name: str
    description: str
    available: bool = True
    router_rules: str = ""  # extra nftables ruleset for the router, on top of NAT_RULES
    router_sysctls: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    late_router_rules: str = ""  # nftables ruleset loaded once the office is up (a later fault)
    provider_keepalive: bool = True  # the registrar pings NATed phones every 15 s
    phones_register: bool = True  # whether `up` waits for the phones' registrations
    fault_phone: int = 0  # the phone with the fault (0: none)
    phone_state: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    wrong_password: bool = False  # its baresip has a wrong SIP password: 401, never registers
    model: str = ""  # it is this model (phones.toml id) instead of the cycle's
    duplicate_ua: str = ""  # a second SIP UA of this model registers its line (right password)
    # Feature codes (ovh-guides.md §6) its real SIP UA dials once the office is up, in order;
    # the provider's registrar applies them to its line, as OVHcloud's platform does.
    dial_codes: tuple[str, ...] = ()
    # What the registrar must then hold for its line (htable opts: LineOptions field ->
    # value); `up` fails otherwise.
    line_options: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # No baresip office: --phones lightweight phones, PCs, a printer and an LLDP switch, all
    # served by one process (lab/fleet.py, lab/services/fleet_server.py).
    fleet: bool = False
    # The office plus hostile neighbours on its LAN (lab/hostile.py: silent, slow, garbage,
    # huge, reset, outscope, mdns-flood), served by the fleet process in its namespace.
    hostile: bool = False

    def fault_index(self, count: int) -> int:
        """Number (1-based) of the faulty phone in an office of ``count`` phones; 0: none."""
        return min(self.fault_phone, count)

    def fault_role(self, count: int) -> str | None:
        """Role of the faulty phone in an office of ``count`` phones."""
        index = self.fault_index(count)
        return f"phone{index}" if index else None


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("healthy", "a working office: the provider handles NAT, every phone registered"),
        Scenario(
            "sip-alg",
            "the router's SIP ALG (kernel conntrack helper) rewrites the phones' SIP messages",
            router_rules=SIP_ALG_RULES,
        ),
        Scenario(
            "port-5060-blocked",
            "the ISP drops outgoing UDP to port 5060 (5962 open): phones cannot register",
            router_rules=BLOCK_5060_RULES,
            phones_register=False,
        ),
        Scenario(
            "forwarding-left-on",
            "phone1 (Yealink SIP-T46S) dialled *21*0612345678#: the provider forwards its"
            " line's calls to 0612345678, the phone never rings",
            fault_phone=1,
            dial_codes=("*21*0612345678#",),
            line_options=MappingProxyType(
                {"forwardUnconditional": "true", "forwardUnconditionalNumber": "0612345678"}
            ),
        ),
        Scenario(
            "dnd-on",
            "phone2 (Cisco SPA504G) has do-not-disturb on: it rejects every call (486)",
            fault_phone=2,
            phone_state=MappingProxyType({"dnd": True}),
        ),
        Scenario(
            "wrong-password",
            "phone3 (Gigaset C530 IP) has a wrong SIP password: 401, never registered",
            fault_phone=3,
            wrong_password=True,
        ),
        Scenario(
            "short-nat-timeout",
            "the router forgets idle UDP mappings after 30 s (the guide asks at least 180 s);"
            " the registrar sends no keep-alives, so phones become unreachable",
            router_sysctls=SHORT_NAT_SYSCTLS,
            provider_keepalive=False,
        ),
        Scenario(
            "outdated-firmware",
            "phone3 is a Gigaset N670 IP PRO on firmware 2.20.0 (catalogue minimum 2.26.0)",
            fault_phone=3,
            model="gigaset-n670ip-pro",
        ),
        Scenario(
            "dns-broken",
            "the router's DNS stops answering once the office is up",
            late_router_rules=DNS_BROKEN_RULES,
        ),
        Scenario(
            "duplicate-registration",
            "phone1's line is also registered by a second UA (Cisco/SPA504G) at 10.66.0.50",
            fault_phone=1,
            duplicate_ua="cisco-spa504g",
        ),
        Scenario(
            "hostile",
            "the healthy office plus hostile neighbours on its LAN with phone MAC prefixes:"
            " silent, slow (answers 4 s late), garbage, huge (60 KB answers, an endless web"
            " page), reset (TCP RST), outscope (answers from 192.0.2.77) and mdns-flood"
            " (endless spoofed mDNS: public addresses, the real phones as other vendors)",
            hostile=True,
        ),
        Scenario(
            "fleet",
            "an office /24 of --phones N lightweight phones (default 50, up to 200) spread"
            " among 20 firewalled PCs, a printer and an LLDP switch, all answered by one"
            " process; the phones do not register to the provider",
            phones_register=False,
            fleet=True,
        ),
    )
}


class ScenarioError(ValueError):
    """Unknown or not-yet-available scenario."""


def get(name: str) -> Scenario:
    """Return the scenario ``name`` or raise ScenarioError with a one-line reason."""
    ready = ", ".join(s.name for s in SCENARIOS.values() if s.available)
    scenario = SCENARIOS.get(name)
    if scenario is None:
        raise ScenarioError(f"unknown scenario {name!r}; valid: {ready}")
    if not scenario.available:
        raise ScenarioError(f"scenario {name!r} is not available yet; available: {ready}")
    return scenario
