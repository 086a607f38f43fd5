"""Read what OVHcloud holds for each line: options, last registrations, public IPs, and
the Plug & Phone record (``/telephony/{billingAccount}/line/{serviceName}/...``; fields in
``telephony.LineOptions``, ``telephony.RegistrationInformations``,
``telephony.DatetimeAndIpvalue`` and ``telephony.Phone``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from agent.config import Config
from agent.provider.api import Api, ProviderError

CONCURRENT_LINES = 8


@dataclass
class LineView:
    """One line as the provider sees it; a part that could not be read is None."""

    billing_account: str
    service_name: str
    options: dict[str, Any] | None = None
    registrations: list[dict[str, Any]] | None = None
    ips: list[dict[str, Any]] | None = None
    phone: dict[str, Any] | None = None  # None: no Plug & Phone record, or not readable
    has_phone: bool | None = None  # False: the API says the line has no phone
    errors: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        ba, sn = quote(self.billing_account, safe=""), quote(self.service_name, safe="")
        return f"/telephony/{ba}/line/{sn}"


async def _part(api: Api, view: LineView, name: str) -> Any:
    try:
        return await api.get(f"{view.path}/{name}")
    except ProviderError as e:
        if name == "phone" and e.kind == "not-found":
            view.has_phone = False
            return None
        if e.kind in ("refused", "unreachable"):
            raise  # the whole session is gone: say it once
        view.errors.append(str(e))
        return None


async def read_line(api: Api, billing_account: str, service_name: str) -> LineView:
    view = LineView(billing_account, service_name)
    options, registrations, ips, phone = await asyncio.gather(
        *(_part(api, view, n) for n in ("options", "lastRegistrations", "ips", "phone"))
    )
    view.options = options if isinstance(options, dict) else None
    view.registrations = (
        [r for r in registrations if isinstance(r, dict)]
        if isinstance(registrations, list)
        else None
    )
    view.ips = [i for i in ips if isinstance(i, dict)] if isinstance(ips, list) else None
    if isinstance(phone, dict):
        view.phone, view.has_phone = phone, True
    return view


async def _names(api: Api, path: str) -> list[str]:
    got = await api.get(path)
    if not isinstance(got, list):
        raise ProviderError("error", f"GET {path}: expected a list")
    return [str(x) for x in got]


async def read_all(api: Api, cfg: Config) -> tuple[list[LineView], list[str]]:
    """Every line to look at (the configured ones, else all), and notes on what was skipped.

    Raises ProviderError when the account itself cannot be read."""
    notes: list[str] = []
    accounts = cfg.provider_billing_accounts or await _names(api, "/telephony")
    wanted = set(cfg.provider_lines)
    pairs: list[tuple[str, str]] = []
    for ba in accounts:
        lines = await _names(api, f"/telephony/{quote(ba, safe='')}/line")
        pairs += [(ba, sn) for sn in lines if not wanted or sn in wanted]
    if len(pairs) > cfg.provider_max_lines:
        notes.append(
            f"{len(pairs)} lines: only the first {cfg.provider_max_lines} were read"
            " (provider.max_lines, or list them in provider.lines)"
        )
        pairs = pairs[: cfg.provider_max_lines]
    gate = asyncio.Semaphore(CONCURRENT_LINES)

    async def one(ba: str, sn: str) -> LineView:
        async with gate:
            return await read_line(api, ba, sn)

    return list(await asyncio.gather(*(one(ba, sn) for ba, sn in pairs))), notes
