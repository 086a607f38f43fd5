"""Any SIP device we have no vendor adapter for: nothing beyond what discovery saw.

The phone's own registration, forwarding and DND are not readable without a vendor
interface, so they stay unknown (never guessed).
"""

from __future__ import annotations

from typing import Any

from agent.vendors.base import Context


class Generic:
    vendor = "generic"

    async def read(self, ctx: Context) -> dict[str, Any]:
        return {}


ADAPTER = Generic()
