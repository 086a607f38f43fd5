"""UDP sockets for sweeps: send buffers sized so that a probe never waits for another.

A datagram to an address nobody answers ARP for waits in the kernel's neighbour queue
for about 3 s (three ARP requests, 1 s apart) and is charged to its socket's send buffer
meanwhile. With the default buffer (208 KiB on Linux) about a hundred such probes fill
it, and every later send, to live hosts too, waits until the oldest fail: seconds lost
(peer-benchmark.md, observation 2). So a sweep's sockets get a buffer sized for every
probe it may park (SO_SNDBUFFORCE when allowed, else up to net.core.wmem_max), and the
probes are spread over more sockets when one buffer cannot hold them all.
"""

from __future__ import annotations

import socket

from agent import platform

# Kernel memory one probe holds while parked for ARP (skb truesize of a ~500-byte
# datagram, rounded up; a smaller SNMP GET costs about as much).
PROBE_COST = 2048
MIN_SNDBUF, MAX_SNDBUF = 256 * 1024, 16 * 1024 * 1024
MAX_SOCKETS = 16


def wanted_buffer(probes: int) -> int:
    """The send buffer that holds ``probes`` parked probes (within bounds)."""
    return min(MAX_SNDBUF, max(MIN_SNDBUF, probes * PROBE_COST))


def plan_sockets(probes: int, granted: int) -> int:
    """How many sockets hold ``probes`` parked datagrams when each gets ``granted`` bytes."""
    if granted <= 0:
        return 1
    return max(1, min(MAX_SOCKETS, -(-probes * PROBE_COST // granted)))


def open_socket(local_ip: str, want: int) -> tuple[socket.socket, int]:
    """A non-blocking UDP socket bound to ``local_ip`` (any port) with a send buffer of
    about ``want`` bytes; (the socket, the bytes the OS granted)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        granted = platform.set_send_buffer(s, want)
        s.bind((local_ip, 0))
        s.setblocking(False)
    except OSError:
        s.close()
        raise
    return s, granted


def open_sockets(local_ip: str, probes: int) -> list[socket.socket]:
    """Enough sockets (see :func:`plan_sockets`) to park ``probes`` probes without a stall."""
    want = wanted_buffer(probes)
    first, granted = open_socket(local_ip, want)
    socks = [first]
    try:
        for _ in range(plan_sockets(probes, granted) - 1):
            socks.append(open_socket(local_ip, want)[0])
    except OSError:
        for s in socks:
            s.close()
        raise
    return socks
