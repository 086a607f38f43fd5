"""ARP: the active sweep (an AF_PACKET socket on Linux, with raw-socket rights) over a veth
pair whose far end lives in a nested private namespace, reply parsing, and the quiet
fall-back to the neighbour table."""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import subprocess
import time

import pytest

from agent import platform
from agent.config import Config
from agent.discovery import Context, arp
from agent.scope import ScopedNetwork

NET = ScopedNetwork(ipaddress.ip_network("10.250.0.0/29"), "pdA", "10.250.0.1")


def ctx(**kw) -> Context:
    return Context(Config(sweep_timeout=0.4, **kw), [NET])


def test_request_frame():
    frame = arp.request("02:00:00:00:00:01", "10.250.0.1", "10.250.0.6")
    assert len(frame) == 60
    assert frame[:6] == b"\xff" * 6 and frame[6:12] == bytes.fromhex("020000000001")
    assert frame[12:14] == b"\x08\x06" and frame[20:22] == b"\x00\x01"  # ARP, who-has
    assert frame[28:32] == bytes([10, 250, 0, 1]) and frame[38:42] == bytes([10, 250, 0, 6])


async def test_without_rights_the_neighbour_table_is_read_quietly(monkeypatch):
    monkeypatch.setattr(platform, "raw_socket_rights", lambda: False)
    monkeypatch.setattr(
        platform,
        "neighbours",
        lambda: {"10.250.0.2": "80:5e:c0:00:00:02", "192.168.7.7": "80:5e:c0:00:00:07"},
    )
    c = ctx()
    swept = await arp.sweep(c)
    assert swept.sightings == [] and swept.skipped == arp.NO_RIGHTS
    found = await arp.discover(c, swept)
    assert [(s.ip, s.mac) for s in found] == [("10.250.0.2", "80:5e:c0:00:00:02")]
    assert found[0].attrs == {"via": "table", "sweep": arp.NO_RIGHTS}
    assert c.pacer.sent == 0  # no packet


async def test_a_broken_link_layer_is_a_note_not_an_error(monkeypatch):
    monkeypatch.setattr(platform, "raw_socket_rights", lambda: True)
    monkeypatch.setattr(arp, "_local_mac", lambda net: "02:00:00:00:00:01")

    async def broken(iface, heard):
        raise ImportError("No module named 'scapy'")  # the fallback's, off Linux

    monkeypatch.setattr(arp, "_open_link", broken)
    swept = await arp.sweep(ctx())
    assert swept.skipped == "skipped: ImportError: No module named 'scapy'"


def reply(sender: str, mac: str, target: str, op: int = 2) -> bytes:
    hw = bytes.fromhex(mac.replace(":", ""))
    frame = b"\x02\x00\x00\x00\x00\x01" + hw + b"\x08\x06"
    frame += bytes([0, 1, 8, 0, 6, 4, 0, op]) + hw + ipaddress.IPv4Address(sender).packed
    frame += b"\x02\x00\x00\x00\x00\x01" + ipaddress.IPv4Address(target).packed
    return frame.ljust(60, b"\x00")


def test_reply_parsing():
    frame = reply("10.250.0.2", "80:5E:C0:00:00:02", "10.250.0.1")
    assert arp.parse_reply(frame) == ("10.250.0.2", "80:5e:c0:00:00:02", "10.250.0.1")
    assert arp.parse_reply(reply("10.250.0.2", "80:5e:c0:00:00:02", "10.250.0.1", op=1)) is None
    assert arp.parse_reply(arp.request("02:00:00:00:00:01", "10.250.0.1", "10.250.0.2")) is None
    assert arp.parse_reply(frame[:41]) is None  # truncated
    assert arp.parse_reply(frame[:12] + b"\x08\x00" + frame[14:]) is None  # not ARP
    assert arp.parse_reply(b"") is None


def test_an_address_claimed_twice_is_noted():
    s = arp._sighting("10.250.0.2", ["02:00:00:00:00:02", "02:00:00:00:00:03"])
    assert s.mac == "02:00:00:00:00:02"
    assert s.attrs == {"via": "sweep", "macs": "02:00:00:00:00:02, 02:00:00:00:00:03"}


def _can_build_veth() -> bool:
    tools = all(shutil.which(t) for t in ("ip", "unshare", "nsenter"))
    return tools and platform.raw_socket_rights()


@pytest.fixture
def veth():
    """pdA (10.250.0.1/29) here; its peer pdB (10.250.0.2/29) in a nested namespace held
    by a `sleep` we start and kill. Yields pdB's MAC."""
    if not _can_build_veth():
        pytest.skip("needs root, ip, unshare and nsenter")
    holder = subprocess.Popen(["unshare", "-n", "sleep", "60"])
    try:
        time.sleep(0.2)
        pid = str(holder.pid)
        for cmd in (
            "ip link add pdA type veth peer name pdB",
            f"ip link set pdB netns {pid}",
            "ip addr add 10.250.0.1/29 dev pdA",
            "ip link set pdA up",
            f"nsenter -t {pid} -n ip addr add 10.250.0.2/29 dev pdB",
            f"nsenter -t {pid} -n ip link set pdB up",
        ):
            subprocess.run(cmd.split(), check=True, capture_output=True, timeout=10)
        show = subprocess.run(
            ["nsenter", "-t", pid, "-n", "ip", "-o", "link", "show", "pdB"],
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        )
        yield show.stdout.split("link/ether ")[1].split()[0]
    finally:
        holder.kill()
        holder.wait(timeout=10)
        subprocess.run(["ip", "link", "del", "pdA"], capture_output=True, timeout=10)


async def test_active_sweep_finds_the_host_that_answers(veth, monkeypatch):
    monkeypatch.setattr(platform, "neighbours", lambda: {})
    c = ctx()
    start = asyncio.get_running_loop().time()
    swept = await arp.sweep(c)
    elapsed = asyncio.get_running_loop().time() - start
    assert swept.skipped is None
    assert [(s.ip, s.mac, s.attrs) for s in swept.sightings] == [
        ("10.250.0.2", veth, {"via": "sweep"})
    ]
    assert c.pacer.sent == 5  # .2 to .6: every in-scope host but ourselves, paced
    # Bounded: one wait after the last request (plus slack for a loaded machine).
    assert elapsed < 3 + min(c.config.sweep_timeout, arp.MAX_WAIT)
    assert await arp.discover(c, swept) == swept.sightings
