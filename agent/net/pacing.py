"""A rate limiter for probes: packets per second with a small burst, shared by senders.

Each call reserves the next free slot of a virtual schedule (a GCRA-style token bucket)
and sleeps until it, so concurrent senders are served in call order, a late wake-up is
caught up by the next callers rather than lost, and the long-run rate never exceeds
``rate``. Idle time earns at most ``burst`` packets sent back to back.
"""

from __future__ import annotations

import asyncio
import time


class Pacer:
    """``await pacer()`` before each packet; ``rate`` <= 0 means no limit."""

    def __init__(self, rate: float, burst: int | None = None) -> None:
        self.rate = float(rate)
        self.burst = max(1, burst if burst is not None else int(self.rate) // 50)
        self._free = 0.0  # monotonic time of the next free slot
        self.sent = 0  # packets paced so far (all senders)

    @property
    def interval(self) -> float:
        return 1.0 / self.rate if self.rate > 0 else 0.0

    def reserve(self, packets: int = 1) -> float:
        """Take the next ``packets`` slots; seconds to wait before sending them."""
        self.sent += packets
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        slot = max(self._free, now - (self.burst - 1) * self.interval)
        self._free = slot + packets * self.interval
        return max(0.0, slot - now)

    async def __call__(self, packets: int = 1) -> None:
        wait = self.reserve(packets)
        if wait > 0:
            await asyncio.sleep(wait)
