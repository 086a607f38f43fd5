"""SNMP v2c sweep: sysDescr, sysObjectID and sysName of every host in scope."""

from __future__ import annotations

import asyncio

from agent.discovery import Context
from agent.model import Sighting
from agent.net.snmp import SYS_DESCR, SYS_NAME, SYS_OBJECT_ID, SnmpClient

_NAMES = {SYS_DESCR: "sysDescr", SYS_OBJECT_ID: "sysObjectID", SYS_NAME: "sysName"}


async def discover(ctx: Context) -> list[Sighting]:
    cfg = ctx.config
    client = SnmpClient(timeout=cfg.timeout)
    gap = 1.0 / cfg.rate if cfg.rate > 0 else 0.0
    found: dict[str, dict[str, str]] = {}
    try:
        for community in cfg.snmp_communities:  # secret: never stored in a sighting
            todo = [h for h in ctx.targets() if h not in found]
            tasks = []
            for host in todo:
                tasks.append(asyncio.create_task(client.get(host, community, list(_NAMES))))
                if gap:
                    await asyncio.sleep(gap)
            for host, result in zip(
                todo, await asyncio.gather(*tasks, return_exceptions=True), strict=True
            ):
                if isinstance(result, dict) and result:
                    found[host] = {_NAMES.get(k.lstrip("."), k): v for k, v in result.items()}
    finally:
        client.close()
    return [Sighting("snmp", ip, attrs=attrs) for ip, attrs in found.items()]
