"""A rate limiter for probes: packets per second with a small burst, shared by senders.

Each call reserves the next free slot of a virtual schedule (a GCRA-style token bucket)
and sleeps until it, so concurrent senders are served in call order, a late wake-up is
caught up by the next callers rather than lost, and the long-run rate never exceeds
``rate``. Idle time earns at most ``burst`` packets sent back to back (by default 5 ms
worth: enough to catch up a late wake-up, too few to make a spike on the wire).

:meth:`Pacer.quiet` tells when the senders are done, so that work that can wait (an
import, a follow-up read) is done while the probes' answers are awaited rather than
while the probes are still being paced out, where it would delay them.
"""

from __future__ import annotations

import asyncio
import time


class Pacer:
    """``await pacer()`` before each packet; ``rate`` <= 0 means no limit."""

    def __init__(self, rate: float, burst: int | None = None) -> None:
        self.rate = float(rate)
        self.burst = max(1, burst if burst is not None else int(self.rate) // 200)
        self._free = 0.0  # monotonic time of the next free slot
        self._last = time.monotonic()  # of the last reservation (or of the start)
        self._waiting = 0  # senders sleeping until their slot
        self.sent = 0  # packets paced so far (all senders)

    @property
    def interval(self) -> float:
        return 1.0 / self.rate if self.rate > 0 else 0.0

    def reserve(self, packets: int = 1) -> float:
        """Take the next ``packets`` slots; seconds to wait before sending them."""
        self.sent += packets
        now = self._last = time.monotonic()
        if self.rate <= 0:
            return 0.0
        slot = max(self._free, now - (self.burst - 1) * self.interval)
        self._free = slot + packets * self.interval
        return max(0.0, slot - now)

    async def __call__(self, packets: int = 1) -> None:
        wait = self.reserve(packets)
        if wait > 0:
            self._waiting += 1
            try:
                await asyncio.sleep(wait)
            finally:
                self._waiting -= 1

    async def quiet(self, settle: float = 0.02) -> None:
        """Return once no sender waits for a slot, the schedule is spent and nobody has
        asked for one for ``settle`` seconds: the sweeps are out (or never started)."""
        while True:
            now = time.monotonic()
            if not self._waiting and now >= max(self._free, self._last + settle):
                return
            await asyncio.sleep(max(settle / 4, self._free - now, self._last + settle - now))
