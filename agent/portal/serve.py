"""``phonediag serve``: keep one outbound MQTT connection to the portal's broker, take the
jobs it queues for this agent, run them one at a time and send back signed results.

Two threads: paho's network thread (connect, reconnect with back-off, keep-alive) only
hands events to the asyncio loop, which does everything else through the core's
:class:`~agent.portal.execute.Worker` (check and record a job, run it, spool its result):

- on each connection: ``status`` ``online`` (retained; the last will says ``offline``),
  the agent's public key (retained, on ``key``), the subscription to its ``jobs`` (QoS 1),
  then every result still in the outbox;
- a job: checked and recorded by ``Worker.accept`` *before* the broker gets its PUBACK (a
  job acknowledged is a job on disk); refused, its signed ``rejected`` result is spooled;
  accepted, it waits its turn (one job at a time, in the order received), its progress
  published on ``progress/{job}``, its signed result spooled;
- a result: published QoS 1 on ``results/{job}`` and marked delivered only on the
  broker's PUBACK. While the broker is away paho keeps it queued; if this process dies, the
  outbox in the local store still has it and the next start sends it;
- on start, ``Worker.start()`` first: a job the last process left running (killed, a power
  cut) becomes an ``interrupted`` result;
- SIGTERM or SIGINT: the running job is stopped and reported ``interrupted``, the outbox
  given a few seconds, ``offline`` published, then a clean disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.portal import jobs, keys, mqtt, topic
from agent.portal.enroll import Identity
from agent.portal.execute import Worker

log = logging.getLogger("agent.portal.serve")

FLUSH_ON_STOP_S = 5.0  # on SIGTERM: how long results still in flight may take
OFFLINE_ON_STOP_S = 2.0  # on SIGTERM: the offline status's PUBACK


@dataclass
class _Job:
    raw: bytes
    mid: int
    qos: int
    generation: int  # the connection it came on: a PUBACK only goes back on that one


class Agent:
    """One ``serve`` session (the asyncio side). ``run(stop)`` returns 0 when stopped."""

    def __init__(self, identity: Identity, worker: Worker, private_key: Any) -> None:
        self.identity = identity
        self.worker = worker
        self.agent = identity.agent
        self.public_pem = keys.public_pem(private_key)
        self.client = mqtt.client(
            identity.agent,
            identity.login(),
            will=(self._topic("status"), self._status("offline")),
            manual_ack=True,
        )
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connected = False
        self.stopping = False
        self._generation = 0  # paho's thread counts connections
        self._gen_lock = threading.Lock()
        self._accepted: asyncio.Queue[jobs.Job] = asyncio.Queue()
        self._outbox_changed = asyncio.Event()
        self._inflight: dict[int, tuple[str, int]] = {}  # mid -> (job, seq) of a result
        self._sent: set[tuple[str, int]] = set()  # results handed to paho, not acked yet
        self._last_failure: str | None = None
        self.current: asyncio.Task[Any] | None = None
        c = self.client
        c.on_connect = self._guard(self._on_connect)
        c.on_connect_fail = self._guard(self._on_connect_fail)
        c.on_disconnect = self._guard(self._on_disconnect)
        c.on_message = self._guard(self._on_message)
        c.on_publish = self._guard(self._on_publish)

    # ------------------------------------------------------------ helpers
    def _topic(self, kind: str, job: str | None = None) -> str:
        return topic(self.agent, kind, job)

    def _status(self, state: str) -> bytes:
        return jobs.encode(jobs.status_message(self.agent, state))

    @staticmethod
    def _guard(fn: Callable[..., None]) -> Callable[..., None]:
        """A paho callback that can never kill paho's thread (nor print a traceback)."""

        def call(*args: Any) -> None:
            try:
                fn(*args)
            except Exception:
                log.debug("portal: callback %s failed", fn.__name__, exc_info=True)

        return call

    def _to_loop(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` in the event loop (from paho's thread)."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closing meanwhile
                loop.call_soon_threadsafe(fn, *args)

    def notify(self) -> None:
        """The worker's hook: a result was added to the outbox (called in the loop)."""
        self._outbox_changed.set()

    # ------------------------------------------------------------ paho's thread
    def _on_connect(self, client, _userdata, flags, reason, _props) -> None:
        if mqtt.failed(reason):
            self._to_loop(self._refused, mqtt.reason_text(reason))
            return
        with self._gen_lock:
            self._generation += 1
        client.subscribe(self._topic("jobs"), qos=1)
        client.publish(self._topic("status"), self._status("online"), qos=1, retain=True)
        client.publish(self._topic("key"), self.public_pem, qos=1, retain=True)
        resumed = bool(getattr(flags, "session_present", False))
        self._to_loop(self._connected, resumed)

    def _on_connect_fail(self, _client, _userdata) -> None:
        self._to_loop(self._refused, "cannot reach the broker")

    def _on_disconnect(self, _client, _userdata, _flags, reason, _props) -> None:
        self._to_loop(self._disconnected, mqtt.reason_text(reason))

    def _on_message(self, client, _userdata, msg) -> None:
        if msg.topic != self._topic("jobs"):
            client.ack(msg.mid, msg.qos)  # nothing for us (never subscribed to): let it go
            return
        with self._gen_lock:
            generation = self._generation
        job = _Job(bytes(msg.payload), msg.mid, msg.qos, generation)
        self._to_loop(self._received, job)

    def _on_publish(self, _client, _userdata, mid, reason, _props) -> None:
        self._to_loop(self._acked, mid, reason)

    # ------------------------------------------------------------ the loop's side
    def _connected(self, resumed: bool) -> None:
        self.connected, self._last_failure = True, None
        how = "session resumed" if resumed else "new session"
        log.info("connected to %s as %s (%s)", self.identity.broker, self.agent, how)
        self._outbox_changed.set()

    def _refused(self, why: str) -> None:
        if why != self._last_failure:  # one line per kind of failure, not per attempt
            log.warning("cannot connect to %s: %s (retrying)", self.identity.broker, why)
        self._last_failure = why

    def _disconnected(self, why: str) -> None:
        if self.connected and not self.stopping:
            log.warning("connection to %s lost (%s); reconnecting", self.identity.broker, why)
        self.connected = False

    def _received(self, item: _Job) -> None:
        if self.stopping:
            return  # not acknowledged: the broker hands it over again at the next start
        job = self.worker.accept(item.raw)  # recorded (or its refusal spooled) first...
        with self._gen_lock:
            same = item.generation == self._generation
        if same and item.qos > 0:
            self.client.ack(item.mid, item.qos)  # ...then acknowledged
        if job is not None:
            self._accepted.put_nowait(job)

    def _acked(self, mid: int, reason: Any) -> None:
        result = self._inflight.pop(mid, None)
        if result is None:
            return  # a status, key or progress message
        self._sent.discard(result)
        if mqtt.failed(reason):
            log.warning("the broker refused the result of job %s: %s", result[0], reason)
            return
        self.worker.mark_delivered(*result)
        log.info("result of job %s delivered", result[0])

    def _progress(self, message: dict[str, Any]) -> None:
        if self.connected:  # progress is for now: never queued while away
            self.client.publish(self._topic("progress", message["job"]), jobs.encode(message), 1)

    def flush(self) -> int:
        """Hand every result of the outbox that paho does not hold yet to paho (QoS 1);
        how many. paho sends them now, or after reconnecting."""
        handed = 0
        for out in self.worker.outbox():
            key = (out.job, out.seq)
            if key in self._sent:
                continue
            info = self.client.publish(self._topic("results", out.job), out.message, qos=1)
            if info.rc not in (mqtt.paho.MQTT_ERR_SUCCESS, mqtt.paho.MQTT_ERR_NO_CONN):
                log.warning("result of job %s not handed over: %s", out.job, info.rc)
                continue
            self._inflight[info.mid] = key
            self._sent.add(key)
            self.worker.state.attempted(out.job)
            handed += 1
        return handed

    async def _flusher(self) -> None:
        while True:
            await self._outbox_changed.wait()
            self._outbox_changed.clear()
            if self.connected:
                try:
                    self.flush()
                except Exception as e:  # the store failing: tried again at the next change
                    log.error("the outbox cannot be read: %s", e)

    async def _runner(self) -> None:
        while True:
            job = await self._accepted.get()
            log.info("portal job %s running", job.id)
            self.current = asyncio.create_task(self.worker.run(job, self._progress))
            try:
                await self.current
            except Exception as e:  # the store failing: the next start reports it interrupted
                log.error("portal job %s could not be recorded: %s", job.id, e)
            finally:
                self.current = None

    # ------------------------------------------------------------ life
    async def run(self, stop: asyncio.Event) -> int:
        self.loop = asyncio.get_running_loop()
        self.loop.set_exception_handler(_one_line)
        left = self.worker.start()  # jobs the last process left unfinished: interrupted
        if left:
            log.warning("%d job(s) interrupted by the last stop: %s", len(left), ", ".join(left))
        tasks = [asyncio.create_task(self._flusher()), asyncio.create_task(self._runner())]
        login = self.identity.login()
        why = await asyncio.to_thread(
            mqtt.connect, self.client, login, session_s=mqtt.AGENT_SESSION_S
        )
        if why is not None:
            self._refused(why)
        await stop.wait()
        await self._shutdown(tasks)
        return 0

    async def _shutdown(self, tasks: list[asyncio.Task[Any]]) -> None:
        """Stop the running job (reported ``interrupted``), give the outbox a few seconds,
        say ``offline``, disconnect."""
        log.info("stopping")
        self.stopping = True
        running = self.current
        for task in [running, *tasks]:
            if task is not None:
                task.cancel()
        for task in [running, *tasks]:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if running is not None or not self._accepted.empty():
            self.worker.start()  # the job cut short, and those waiting: interrupted
        if self.connected:
            self.flush()
            await self._settle(lambda: not self._inflight, FLUSH_ON_STOP_S)
            info = self.client.publish(
                self._topic("status"), self._status("offline"), qos=1, retain=True
            )
            await self._settle(info.is_published, OFFLINE_ON_STOP_S)
        await asyncio.to_thread(self._disconnect)
        if self.worker.state.pending():
            log.info(
                "%d result(s) left in the outbox, sent at the next start",
                self.worker.state.pending(),
            )

    def _disconnect(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()

    @staticmethod
    async def _settle(done: Callable[[], bool], timeout: float) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout
        while not done():
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True


def _one_line(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An error in a callback of the loop (the store failing...): one line, no traceback."""
    error = context.get("exception")
    log.error("%s%s", context.get("message", "error"), f": {error}" if error else "")


def serve(identity: Identity, worker: Worker, private_key: Any) -> int:
    """Run until SIGTERM or SIGINT; 0 once stopped cleanly."""

    async def main() -> int:
        agent = Agent(identity, worker, private_key)
        worker.notify = agent.notify
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, AttributeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        return await agent.run(stop)

    from agent import store

    try:
        return asyncio.run(main())
    except (store.StoreError, OSError) as e:  # the local store unusable at start
        log.error("cannot serve: %s", e)
        return 1


class Unusable(Exception):
    """``serve`` cannot start: not enrolled, a key file or the store unusable (one line)."""


def prepare(cfg: Any) -> tuple[Identity, Worker, Any]:
    """The identity (``[portal] dir``), the keys and the worker on the local store."""
    from agent import store
    from agent.portal import enroll
    from agent.portal.state import State

    try:
        identity = enroll.load(keys.directory(cfg))
        private = keys.load_private(identity.key_file)
        portal_key = keys.load_public(identity.portal_pub_file)
        state = State.open(cfg)
    except (enroll.EnrolError, keys.KeyFileError, store.StoreError, OSError, RuntimeError) as e:
        raise Unusable(str(e)) from None  # RuntimeError: no home folder for the store
    return identity, Worker(cfg, state, identity.agent, private, portal_key), private


def configure_logging(verbose: bool = False) -> None:
    """One line per event on standard error, timestamped (a service's journal);
    ``verbose``: paho's own exchanges too."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s phonediag serve: %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    for name in ("agent.portal", "paho"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.propagate = False
    logging.getLogger("agent.portal").setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("paho").setLevel(logging.DEBUG if verbose else logging.CRITICAL)
