"""SNMP sweep: sysDescr, sysObjectID and sysName of every host in scope, with each
configured v2c community and then the optional v3 user; then, for the hosts that answered,
ENTITY-MIB's identity of the device, the private identity objects the vendor files declare
(``[[snmp_oid]]``), and, for a responder that is not a phone (a switch), its LLDP
neighbours (:mod:`agent.discovery.lldp`).

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
    cfg = ctx.config
    start = time.monotonic()
    client = SnmpClient(timeout=cfg.timeout)
    found: dict[str, tuple[Auth, dict[str, str]]] = {}
    try:
        for auth in auths(cfg):  # secret: never stored in a sighting
            todo = [h for h in ctx.scoped(ctx.targets()) if h not in found]
            tasks = []
            for host in todo:
                # v3 first learns the agent's engine id: two packets
                await ctx.pace(2 if isinstance(auth, V3User) else 1)
                tasks.append(asyncio.create_task(client.get(host, auth, list(_NAMES))))
            for host, result in zip(
                todo, await asyncio.gather(*tasks, return_exceptions=True), strict=True
            ):
                if isinstance(result, dict) and result:
                    attrs = {_NAMES.get(k.lstrip("."), k): v[:MAX_ATTR] for k, v in result.items()}
                    attrs["version"] = "3" if isinstance(auth, V3User) else "2c"
                    found[host] = (auth, attrs)
        # The details get what is left of an allowance kept below the pipeline's
        # per-method step timeout (mdns_window + 3 x timeout + packets / rate + 5 s);
        # whatever they read before it runs out is kept.
        budget = cfg.mdns_window + 2 * cfg.timeout + len(ctx.targets()) / max(cfg.rate, 1)
        left = max(cfg.timeout, budget - (time.monotonic() - start))
        extra = await _details(ctx, client, found, left)
    finally:
        client.close()
    return [Sighting("snmp", ip, attrs=attrs) for ip, (_a, attrs) in found.items()] + extra


async def _details(
    ctx: Context, client: SnmpClient, found: dict[str, tuple[Auth, dict[str, str]]], budget: float
) -> list[Sighting]:
    """Fill ``found``'s attributes in place; the LLDP neighbours' sightings. Whatever is
    read before ``budget`` runs out is kept."""
    sem = asyncio.Semaphore(DETAIL_CONCURRENCY)
    neighbours: list[Sighting] = []

    async def one(ip: str, auth: Auth, attrs: dict[str, str]) -> None:
        async with sem:
            attrs.update(await entity(client, ip, auth, budget, ctx.pace))
            await ctx.pace()
            attrs.update(await identity_oids(client, ip, auth))
            if not _is_phone(ip, attrs):
                neighbours.extend(
                    await lldp.neighbours(client, ip, auth, ctx.in_scope, budget, ctx.pace)
                )

    tasks = [asyncio.create_task(one(ip, a, attrs)) for ip, (a, attrs) in found.items()]
    if tasks:
        _done, pending = await asyncio.wait(tasks, timeout=budget)
        for t in pending:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return neighbours


async def entity(
    client: SnmpClient, ip: str, auth: Auth, max_time: float, pace: Pace | None = None
) -> dict[str, str]:
    """The device's own row of entPhysicalTable (the first chassis, else the first row
    naming a model or maker). Walked with GETBULK; an agent that refuses walks (Snom)
    is asked row 1 with plain GETs instead."""
    columns = [f"{ENT}.{c}" for c in (ENT_CLASS, *ENT_COLUMNS)]
    try:
        table = await client.walk(ip, auth, columns, ENT_MAX_ROWS, max_time, pace=pace)
    except Exception:  # a broken answer must not cost the sweep
        table = None
    if table is None:
        try:
            if pace is not None:
                await pace()
            values = await client.get_values(ip, auth, [f"{ENT}.{c}.1" for c in ENT_COLUMNS])
        except Exception:
            values = None
        table = {f"{ENT}.{c}": {"1": (values or {}).get(f"{ENT}.{c}.1")} for c in ENT_COLUMNS}
    return entity_row(table)


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


async def identity_oids(client: SnmpClient, ip: str, auth: Auth) -> dict[str, str]:
    """The vendor files' private identity objects this agent has (one GET)."""
    from agent import identify

    oids = identify.snmp_identity_oids()
    if not oids:
        return {}
    try:
        values = await client.get_values(ip, auth, list(oids))
    except Exception:
        return {}
    out = {}
    for oid, value in (values or {}).items():
        name, text = oids.get(oid.strip(".")), printable(value, MAX_ATTR)
        if name and text:
            out[name] = text
    return out


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
