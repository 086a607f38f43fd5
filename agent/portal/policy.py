"""What a portal job may ask of this agent: the local policy, which the portal can never
widen (DESIGN §6).

- **Scope**: the agent's own scope is what ``phonediag diagnose`` would sweep with no
  option: ``[scope] networks`` or else every directly connected private subnet, each at
  most ``[scope] max_prefix`` (``scope.build``), **never widened** (``--widen`` has no
  portal equivalent; a ``widen`` parameter is refused). A job's ``subnets`` must each be
  private, no larger than ``max_prefix`` and inside one of those networks; a remedy's
  device, when it is an address, must be inside them too. Otherwise: ``out-of-scope``.
- **Remedies**: only those ``[remedies] portal_allowed`` lists (and that act: a manual
  remedy has nothing to run), :func:`agent.remedies.allowed_for_portal`; the remedies'
  runner checks it again before acting. Otherwise: ``remedy-not-allowed``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from agent import scope
from agent.portal.jobs import Job, Rejected
from agent.scope import ScopedNetwork


def own_scope(cfg: Any) -> list[ScopedNetwork]:
    """The agent's own scope (never widened). ScopeError when it has none."""
    nets, _refused = scope.build(cfg.networks, cfg.max_prefix, widen=False)
    return nets


def _shown(nets: list[ScopedNetwork]) -> str:
    return ", ".join(str(n.network) for n in nets) or "nothing"


def networks(job: Job, cfg: Any) -> list[ScopedNetwork]:
    """The networks a diagnose or discover job sweeps: the ones it asks for, each inside
    the agent's own scope (``out-of-scope`` otherwise), else the agent's own scope.
    ScopeError when the job asks for none and the agent has no scope at all."""
    if not job.subnets:
        return own_scope(cfg)
    try:
        own = own_scope(cfg)
    except scope.ScopeError as e:
        raise Rejected("out-of-scope", f"this agent has no network in scope ({e})") from None
    out: list[ScopedNetwork] = []
    for text in job.subnets:
        try:
            want = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise Rejected("malformed", f"not a network: {text!r}") from None
        why = scope.check(want, cfg.max_prefix, widen=False)
        if why is not None:
            raise Rejected("out-of-scope", f"{why.text('en')} (this agent: {_shown(own)})")
        home = next((s for s in own if want.subnet_of(s.network)), None)
        if home is None:
            raise Rejected("out-of-scope", f"{want} is outside this agent's scope ({_shown(own)})")
        out.append(ScopedNetwork(want, home.interface, home.local_ip))
    return out


def check_device(device: str | None, cfg: Any) -> None:
    """A remedy's device given as an address must be inside the agent's own scope."""
    if not device or device == "site" or device.startswith("line:"):
        return
    try:
        ip = ipaddress.ip_address(device)
    except ValueError:
        raise Rejected("malformed", f"not a device: {device!r}") from None
    try:
        own = own_scope(cfg)
    except scope.ScopeError as e:
        raise Rejected("out-of-scope", f"this agent has no network in scope ({e})") from None
    if not any(ip in s.network for s in own):
        raise Rejected("out-of-scope", f"{ip} is outside this agent's scope ({_shown(own)})")


def check(job: Job, cfg: Any) -> None:
    """Whether this agent's policy allows ``job``; Rejected (``out-of-scope``,
    ``remedy-not-allowed``) when it does not. A job that asks for no subnet is allowed
    even when the agent has no scope now: it then fails like ``diagnose`` would (exit 3)."""
    if job.kind in ("diagnose", "discover") and job.subnets:
        networks(job, cfg)
    elif job.kind == "remedy":
        from agent.remedies import allowed_for_portal

        if not allowed_for_portal(cfg, job.remedy or ""):
            raise Rejected(
                "remedy-not-allowed",
                f"remedy {job.remedy!r} is not in this agent's [remedies] portal_allowed",
            )
        check_device(job.device, cfg)
