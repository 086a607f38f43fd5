"""The reflector's safety limits (docs/reflector.md, "Safety"): values and small trackers.

The defaults are the protocol's; tests inject smaller ones (and a frozen clock) so that
they run fast and deterministically.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    rate: float = 20.0  # requests per second per source IP (token bucket refill)
    burst: int = 40  # token bucket size
    pending_per_ip: int = 16  # delayed replies waiting, per source IP
    pending_total: int = 4096  # delayed replies waiting, overall
    tcp_total: int = 64  # open TCP connections, overall
    tcp_per_ip: int = 8  # open TCP connections, per source IP
    tcp_idle_s: float = 10.0  # a TCP connection must complete a request within this
    max_request: int = 4096  # bytes; larger requests get no answer
    tracked_ips: int = 65536  # rate-limit buckets kept (least recently used evicted)


class RateLimiter:
    """Token bucket per source IP: ``rate`` tokens a second, at most ``burst`` kept.

    The table is an LRU bounded by ``max_ips``. Evicting an IP only gives it a full
    bucket again, which costs an attacker ``max_ips`` spoofed packets per ``burst``
    answers: no amplification.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        max_ips: int = 65536,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate, self.burst, self.max_ips, self.clock = rate, burst, max_ips, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, ip: str) -> bool:
        now = self.clock()
        tokens, last = self._buckets.pop(ip, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - last) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[ip] = (tokens, now)
        while len(self._buckets) > self.max_ips:
            self._buckets.popitem(last=False)
        return allowed

    def __len__(self) -> int:
        return len(self._buckets)


class Gauge:
    """How many of something are open/pending, overall and per source IP, with caps."""

    def __init__(self, per_ip: int, total: int) -> None:
        self.per_ip_cap, self.total_cap = per_ip, total
        self.total = 0
        self._per_ip: dict[str, int] = {}

    def acquire(self, ip: str) -> bool:
        """Take one slot for ``ip``; False (nothing taken) when a cap is reached."""
        n = self._per_ip.get(ip, 0)
        if self.total >= self.total_cap or n >= self.per_ip_cap:
            return False
        self._per_ip[ip] = n + 1
        self.total += 1
        return True

    def release(self, ip: str) -> None:
        n = self._per_ip.get(ip, 0)
        if n <= 0:
            return
        if n == 1:
            del self._per_ip[ip]
        else:
            self._per_ip[ip] = n - 1
        self.total -= 1

    def count(self, ip: str) -> int:
        return self._per_ip.get(ip, 0)
