"""``run(coro)``: :func:`asyncio.run`, with worker threads that cannot hold the process.

asyncio hands blocking calls to worker threads (``asyncio.to_thread``, ``getaddrinfo``
for every name lookup, the OVHcloud client's HTTPS calls). A timeout ends the await, not
the call: a lookup stuck on a resolver that does not answer goes on for the resolver's
own timeouts (5 s a try, two tries, each server). :func:`asyncio.run` then waits for such
threads when it shuts the loop down, and Python again at exit, so one silent DNS server
made ``diagnose --deadline 12`` end after 22 s. Here each call gets a daemon thread of its
own: what is still running when the command has its answer is left behind, as a command
line tool must (``--deadline``). Calls are few (a handful per run), so no pool is needed.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class DaemonExecutor(ThreadPoolExecutor):  # asyncio accepts no other kind as the default
    """Runs each call in a daemon thread of its own (never the pool's threads, which are
    joined at exit); ``shutdown`` waits for nothing."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()

        def work() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as e:  # handed to the awaiting coroutine
                future.set_exception(e)

        threading.Thread(target=work, name="phonediag-worker", daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Nothing to wait for: a call still running is left to end (or not) by itself."""


def run(main: Coroutine[Any, Any, T]) -> T:
    """:func:`asyncio.run` ``main`` with a :class:`DaemonExecutor` as the default executor."""

    async def with_executor() -> T:
        asyncio.get_running_loop().set_default_executor(DaemonExecutor())
        return await main

    return asyncio.run(with_executor())
