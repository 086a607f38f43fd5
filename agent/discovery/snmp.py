"""SNMP sweep: sysDescr, sysObjectID and sysName of every host in scope, with each
configured v2c community and then the optional v3 user (each credential after the first
costs one more pass, one more timeout, for the hosts still silent); and, for each host
that answers, once every method's probes are out (while their answers are awaited),
ENTITY-MIB's identity of the device, the private identity objects the vendor files declare
(``[[snmp_oid]]``), and, for a responder that is not a phone (a switch), its LLDP
neighbours (:mod:`agent.discovery.lldp`). Those reads go to hosts that have just answered,
take milliseconds, and get no timeout of their own: whatever they read before the sweep's
end is kept.

Secrets (communities, v3 keys) are never put in a sighting: ``version`` says which worked.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from agent.config import Config
from agent.discovery import Context, lldp
from agent.model import Device, Sighting
from agent.net.snmp import (
    SYS_DESCR,
    SYS_NAME,
    SYS_OBJECT_ID,
    Auth,
    Pace,
    SnmpClient,
    V3User,
    printable,
)

_NAMES = {SYS_DESCR: "sysDescr", SYS_OBJECT_ID: "sysObjectID", SYS_NAME: "sysName"}

# ENTITY-MIB entPhysicalTable columns (RFC 6933)
ENT = "1.3.6.1.2.1.47.1.1.1.1"
ENT_COLUMNS = {
    "13": "entModelName",
    "10": "entSoftwareRev",
    "11": "entSerialNum",
    "12": "entMfgName",
}
ENT_CLASS = "5"  # entPhysicalClass; chassis(3) is the device itself
CHASSIS = 3
ENT_MAX_ROWS = 32  # a phone has one or two rows; a switch stack's first ones suffice
DETAIL_CONCURRENCY = 64  # responders whose details are read at once
MAX_ATTR = 256  # characters kept of one value in a sighting


def auths(cfg: Config) -> list[Auth]:
    """The credentials to try, in order: each community, then the v3 user if any."""
    out: list[Auth] = list(cfg.snmp_communities)
    if cfg.snmp_v3_user:
        out.append(
            V3User(
                cfg.snmp_v3_user,
                cfg.snmp_v3_auth_key,
                cfg.snmp_v3_priv_key,
                cfg.snmp_v3_auth_protocol,
                cfg.snmp_v3_priv_protocol,
            )
        )
    return out


async def discover(ctx: Context) -> list[Sighting]:
    """Each credential in turn asks every host not found yet (one GET, paced); a pass ends
    one timeout after its last request. A responder's details are read as soon as every
    method's probes are out (not before: they would delay them), while the sweep's
    answers are awaited, and get whatever is left until the sweep's end."""
    cfg = ctx.config
    wait = cfg.sweep_timeout
    targets = ctx.scoped(ctx.targets())
    client = SnmpClient(timeout=wait, probes=len(targets))
    found: dict[str, tuple[Auth, dict[str, str]]] = {}
    neighbours: list[Sighting] = []
    details: list[asyncio.Task[None]] = []
    sem = asyncio.Semaphore(DETAIL_CONCURRENCY)
    end = time.monotonic() + wait

    async def ask(host: str, auth: Auth) -> None:
        try:
            result = await client.get(host, auth, list(_NAMES))
        except Exception:  # a broken answer costs that host, nothing else
            return
        if not result:
            return
        attrs = {_NAMES.get(k.lstrip("."), k): v[:MAX_ATTR] for k, v in result.items()}
        attrs["version"] = "3" if isinstance(auth, V3User) else "2c"
        found[host] = (auth, attrs)
        details.append(
            asyncio.create_task(_details(ctx, client, host, auth, attrs, neighbours, sem))
        )

    try:
        if targets and any(not isinstance(a, V3User) for a in auths(cfg)):
            await client.open()  # no socket here is the step's error, not silence
        for auth in auths(cfg):  # secret: never stored in a sighting
            tasks = []
            for host in [h for h in targets if h not in found]:
                # v3 first learns the agent's engine id: two packets
                await ctx.pace(2 if isinstance(auth, V3User) else 1)
                tasks.append(asyncio.create_task(ask(host, auth)))
            end = time.monotonic() + wait
            await asyncio.gather(*tasks)
        if details:  # what the last responders are still reading gets the sweep's end
            _done, pending = await asyncio.wait(details, timeout=max(0.0, end - time.monotonic()))
            for t in pending:
                t.cancel()
            await asyncio.gather(*details, return_exceptions=True)
    finally:
        for t in details:
            t.cancel()
        client.close()
    return [Sighting("snmp", ip, attrs=attrs) for ip, (_a, attrs) in found.items()] + neighbours


async def _details(
    ctx: Context,
    client: SnmpClient,
    ip: str,
    auth: Auth,
    attrs: dict[str, str],
    neighbours: list[Sighting],
    sem: asyncio.Semaphore,
) -> None:
    """Add a responder's ENTITY-MIB row and identity objects to ``attrs`` as they arrive
    (so a cancelled read keeps what it got), then, unless it is a phone (a switch), add
    its LLDP neighbours to ``neighbours``.

    The entPhysicalTable is walked with GETBULK while one GET asks its row 1 and the
    vendor files' identity objects: an agent that refuses walks (Snom) never answers the
    walk, and waiting for that to time out before asking would cost a whole timeout. The
    walked row (the first chassis) replaces row 1 when the walk answers."""
    budget = ctx.config.sweep_timeout
    await ctx.quiet()  # the sweep's probes first: these reads have the wait to run in
    async with sem:
        await asyncio.gather(
            _row_one_and_identity(client, ip, auth, ctx.pace, attrs),
            _walked_entity(client, ip, auth, budget, ctx.pace, attrs),
        )
        if not _is_phone(ip, attrs):
            neighbours.extend(
                await lldp.neighbours(client, ip, auth, ctx.in_scope, budget, ctx.pace)
            )


async def _row_one_and_identity(
    client: SnmpClient, ip: str, auth: Auth, pace: Pace, attrs: dict[str, str]
) -> None:
    from agent import identify

    identity = identify.snmp_identity_oids()
    row_one = [f"{ENT}.{c}.1" for c in ENT_COLUMNS]
    try:
        await pace()
        values = await client.get_values(ip, auth, [*row_one, *identity]) or {}
    except Exception:  # a broken answer costs these values, nothing else
        return
    values = {oid.strip("."): v for oid, v in values.items()}
    for oid, name in identity.items():
        value = printable(values.get(oid.strip(".")), MAX_ATTR)
        if value:
            attrs[name] = value
    if not any(name in attrs for name in ENT_COLUMNS.values()):  # the walk did not answer yet
        table = {f"{ENT}.{c}": {"1": values.get(f"{ENT}.{c}.1")} for c in ENT_COLUMNS}
        attrs.update(entity_row(table))


async def _walked_entity(
    client: SnmpClient, ip: str, auth: Auth, max_time: float, pace: Pace, attrs: dict[str, str]
) -> None:
    columns = [f"{ENT}.{c}" for c in (ENT_CLASS, *ENT_COLUMNS)]
    try:
        table = await client.walk(ip, auth, columns, ENT_MAX_ROWS, max_time, pace=pace)
    except Exception:  # a broken answer must not cost the sweep
        return
    if table is None:  # no walk here: row 1, read by the GET, stands
        return
    for name in ENT_COLUMNS.values():
        attrs.pop(name, None)
    attrs.update(entity_row(table))


def entity_row(table: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Pick the device's row of a walked entPhysicalTable and name its readable values."""
    classes = table.get(f"{ENT}.{ENT_CLASS}", {})
    rows: list[dict[str, str]] = []
    indexes = sorted({i for c in ENT_COLUMNS for i in table.get(f"{ENT}.{c}", {})}, key=_key)
    for index in indexes:
        row = {}
        for col, name in ENT_COLUMNS.items():
            value = printable(table.get(f"{ENT}.{col}", {}).get(index), MAX_ATTR)
            if value:
                row[name] = value
        if row.get("entModelName") or row.get("entMfgName"):
            rows.append(row)
            if classes.get(index) == CHASSIS:
                return row
    return rows[0] if rows else {}


def _is_phone(ip: str, attrs: dict[str, str]) -> bool:
    """Whether the vendor data already recognises this responder as a phone (then its
    LLDP table is not read: only a switch's tells what is plugged into it)."""
    from agent import identify

    device = Device(ip, evidence={"snmp": dict(attrs)})
    identify.identify(device)
    return identify.is_phone_vendor(device)


def _key(index: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in index.split("."))
    except ValueError:
        return (1 << 31,)
