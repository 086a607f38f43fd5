"""Which networks the agent may touch: the host's directly connected private subnets.

Nothing outside the scope is ever sent a packet. Public ranges are refused, and a
network larger than ``max_prefix`` (/22 by default) is refused unless widened.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from agent import i18n, platform

Net = ipaddress.IPv4Network


@dataclass(frozen=True)
class Refusal:
    """Why a network is not swept: an i18n key and its parameters."""

    key: str
    net: str = ""
    prefix: int = 0

    def text(self, lang: str = "en") -> str:
        return i18n.t(self.key, lang, net=self.net, prefix=self.prefix)

    def __str__(self) -> str:
        return self.text("en")


class ScopeError(Exception):
    """No network may be diagnosed (no interface, or only refused networks).

    ``usage`` is True when the user asked for a network that is never allowed (public,
    too large, not a network): bad input (exit 2) rather than nothing to diagnose (3)."""

    def __init__(self, refusals: list[Refusal], usage: bool = False) -> None:
        self.refusals = refusals
        self.usage = usage
        super().__init__("; ".join(map(str, refusals)))

    def text(self, lang: str) -> str:
        return "; ".join(r.text(lang) for r in self.refusals)


@dataclass(frozen=True)
class ScopedNetwork:
    network: Net
    interface: str
    local_ip: str

    def hosts(self) -> list[str]:
        return [str(h) for h in self.network.hosts() if str(h) != self.local_ip]


# RFC 1918 private ranges and RFC 6598 shared address space (carrier-grade NAT).
PRIVATE = [
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
]


def is_allowed(net: Net) -> bool:
    """Inside a private (RFC 1918) or shared (RFC 6598) range."""
    return isinstance(net, Net) and any(net.subnet_of(p) for p in PRIVATE)


def check(net: Net, max_prefix: int, widen: bool = False) -> Refusal | None:
    """Return why ``net`` is refused, or None when it may be swept."""
    if not is_allowed(net):
        return Refusal("scope.public", str(net))
    if net.prefixlen < max_prefix and not widen:
        return Refusal("scope.too_large", str(net), max_prefix)
    if net.prefixlen < 16:
        return Refusal("scope.never", str(net))
    return None


def build(
    explicit: Iterable[str] = (), max_prefix: int = 22, widen: bool = False
) -> tuple[list[ScopedNetwork], list[Refusal]]:
    """Return (networks in scope, reasons for the ones refused).

    With ``explicit`` networks (``--subnet``, ``[scope] networks``), each must be allowed
    (private, not larger than ``max_prefix`` unless widened) or the whole run is refused
    (:class:`ScopeError` with ``usage``), and must be directly connected.
    Raises :class:`ScopeError` if nothing is left.
    """
    local = [
        ScopedNetwork(ipaddress.ip_interface(f"{a.ip}/{a.prefixlen}").network, a.interface, a.ip)
        for a in platform.ipv4_addresses()
    ]
    if explicit:
        return _explicit(list(explicit), local, max_prefix, widen)
    refused: list[Refusal] = []
    scoped = []
    for s in local:
        if s.network.is_loopback:
            continue
        why = check(s.network, max_prefix, widen)
        if why:
            refused.append(why)
        else:
            scoped.append(s)
    if not scoped:
        raise ScopeError(refused or [Refusal("scope.no_interface")])
    return scoped, refused


def _explicit(
    texts: list[str], local: list[ScopedNetwork], max_prefix: int, widen: bool
) -> tuple[list[ScopedNetwork], list[Refusal]]:
    wanted: list[Net] = []
    for text in texts:
        try:
            want = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            raise ScopeError([Refusal("scope.not_a_network", text)], usage=True) from None
        why = Refusal("scope.public", str(want)) if not isinstance(want, Net) else None
        why = why or check(want, max_prefix, widen)
        if why:
            raise ScopeError([why], usage=True)
        wanted.append(want)
    scoped, refused = [], []
    for want in wanted:
        match = [s for s in local if want.subnet_of(s.network) and not s.network.is_loopback]
        if not match:
            refused.append(Refusal("scope.not_connected", str(want)))
            continue
        scoped.append(ScopedNetwork(want, match[0].interface, match[0].local_ip))
    if not scoped:
        raise ScopeError(refused)
    return scoped, refused
