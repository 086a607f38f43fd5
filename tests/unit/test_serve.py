"""The one-file server a Cisco resync fetches from: only the device, only the path, only
while it runs (run under ``unshare -n``: loopback only)."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest

from agent.net.serve import OneFile


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


def test_the_device_gets_the_file_once_then_the_server_is_gone():
    async def main() -> None:
        async with OneFile("127.0.0.1", b"<flat-profile />", "spa.xml") as f:
            assert f.url.startswith("http://127.0.0.1:") and f.url.endswith("/spa.xml")
            assert not await f.fetched(0.1)
            assert await asyncio.to_thread(fetch, f.url + "x") == (404, b"")  # wrong path
            assert await asyncio.to_thread(fetch, f.url) == (200, b"<flat-profile />")
            assert await f.fetched(1)
        with pytest.raises(urllib.error.URLError):
            await asyncio.to_thread(fetch, f.url)  # closed with the context

    asyncio.run(main())


def test_another_address_gets_nothing():
    import http.client
    from urllib.parse import urlsplit

    def from_127_0_0_1(url: str) -> int:
        u = urlsplit(url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=2,
                                          source_address=("127.0.0.1", 0))  # fmt: skip
        conn.request("GET", u.path)
        return conn.getresponse().status

    async def main() -> None:
        async with OneFile("127.0.0.9", b"for the phone only", "spa.xml") as f:
            assert await asyncio.to_thread(from_127_0_0_1, f.url) == 404
            assert not await f.fetched(0.2)

    asyncio.run(main())
