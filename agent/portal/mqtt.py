"""The MQTT side of portal mode (paho-mqtt 2.x): broker URLs, one client set-up for the
agent (``serve``) and the portal's tools (``portal submit``), and a small blocking session
for the latter.

Every connection is MQTT 5 over TLS (``mqtts://``; there is no plain-text mode), verifies
the broker's certificate and name against the CA it was given, logs in with a user name and
password, and resumes its session after a drop (``clean_start`` false, a session expiry):
QoS 1 messages queued for it meanwhile, jobs for the agent or results for the portal, are
delivered when it is back. paho reconnects by itself with an exponential back-off
(``reconnect_delay_set``); every socket operation has a timeout (``connect_timeout``,
keep-alive).
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

DEFAULT_PORT = 8883
CONNECT_TIMEOUT_S = 10.0  # TCP connect + TLS handshake
KEEPALIVE_S = 30  # a silent broker is noticed within 1.5 x this
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 60  # exponential back-off between attempts
AGENT_SESSION_S = 7 * 24 * 3600  # jobs queued for an agent away for up to a week


# paho's own log: shown with `serve -v` only (what matters is logged by serve itself; paho
# logs an error when its thread races a clean disconnect).
_PAHO_LOG = logging.getLogger("paho")
_PAHO_LOG.addHandler(logging.NullHandler())


class BrokerError(Exception):
    """A broker URL is unusable, or the broker cannot be reached or refused us."""


@dataclass(frozen=True)
class Broker:
    """Where and how to connect: ``mqtts://host[:port]``, the CA to trust, the login."""

    host: str
    port: int
    ca_file: str | None
    username: str
    password: str

    def __repr__(self) -> str:  # never the password
        return f"Broker({url_of(self.host, self.port)!r}, user={self.username!r})"


def parse_url(url: str) -> tuple[str, int]:
    """``mqtts://host[:port]`` (port 8883 by default) -> (host, port); BrokerError otherwise.
    Only TLS: ``mqtt://`` is refused, since jobs and logins would cross the Internet in clear."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise BrokerError(f"not a broker URL: {url!r}") from None
    if parts.scheme != "mqtts":
        raise BrokerError(f"{url!r}: only mqtts:// (MQTT over TLS) is supported")
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.username:
        raise BrokerError(f"not a broker URL: {url!r} (mqtts://host[:port])")
    return parts.hostname, port or DEFAULT_PORT


def url_of(host: str, port: int) -> str:
    """The canonical URL of a broker (``mqtts://host:port``; IPv6 in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"mqtts://{shown}:{port}"


def same_broker(a: str, b: str) -> bool:
    """Whether two URLs name the same broker (host case and the default port ignored)."""
    ha, pa = parse_url(a)
    hb, pb = parse_url(b)
    return (ha.lower(), pa) == (hb.lower(), pb)


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Certificate and host name checked; the given CA (else the system's); TLS 1.2 at least."""
    try:
        ctx = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as e:
        raise BrokerError(f"cannot use the CA file {ca_file}: {e}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def client(
    client_id: str,
    broker: Broker,
    *,
    will: tuple[str, bytes] | None = None,
    manual_ack: bool = False,
) -> paho.Client:
    """A configured, not yet connected client (MQTT 5, TLS, login, back-off, ``will``: a
    retained QoS 1 last will as (topic, payload)); ``connect`` starts it."""
    c = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
        manual_ack=manual_ack,
    )
    c.enable_logger(_PAHO_LOG)  # silent unless a handler asks (serve -v)
    c.tls_set_context(tls_context(broker.ca_file))
    c.username_pw_set(broker.username, broker.password)
    c.connect_timeout = CONNECT_TIMEOUT_S
    c.reconnect_delay_set(min_delay=RECONNECT_MIN_S, max_delay=RECONNECT_MAX_S)
    if will is not None:
        c.will_set(will[0], will[1], qos=1, retain=True)
    return c  # paho queues QoS 1 messages published while away, without limit


def connect(
    c: paho.Client, broker: Broker, *, session_s: int, clean_first: bool = False
) -> str | None:
    """Connect (blocking, at most ``connect_timeout``), then run paho's own thread
    (``loop_start``), which reconnects after any drop, with back-off, until ``disconnect``.

    The broker keeps the session ``session_s`` seconds after a drop (``clean_first``: a
    fresh one at the first connection, resumed after). Returns None once the TLS connection
    is made (the broker's CONNACK follows, in ``on_connect``), else why not, in words: paho
    then keeps trying in the background."""
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = session_s
    clean = paho.MQTT_CLEAN_START_FIRST_ONLY if clean_first else False
    kwargs: dict[str, Any] = {"keepalive": KEEPALIVE_S, "clean_start": clean, "properties": props}
    why = None
    try:
        c.connect(broker.host, broker.port, **kwargs)
    except (OSError, ValueError) as e:  # ssl.SSLError, socket.timeout, gaierror are OSErrors
        why = describe(e)
        c.connect_async(broker.host, broker.port, **kwargs)  # loop_start retries it
    c.loop_start()
    return why


def describe(e: BaseException) -> str:
    """A connection failure in a few words (the certificate problem, refused, timed out)."""
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"TLS: the broker's certificate is not trusted ({e.verify_message})"
    if isinstance(e, ssl.SSLError):
        return f"TLS: {e.reason or e}"
    if isinstance(e, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT_S:g} s"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, socket.gaierror):
        return f"unknown host ({e.strerror})"
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def end_session_properties() -> Properties:
    """DISCONNECT properties that end the session at the broker at once (nothing more is
    queued for this client id)."""
    props = Properties(PacketTypes.DISCONNECT)
    props.SessionExpiryInterval = 0
    return props


def reason_text(reason: Any) -> str:
    """A paho reason code (or error code) as words: "Not authorized", "Success"..."""
    name = getattr(reason, "getName", None)
    if callable(name):
        return str(name())
    return paho.error_string(reason) if isinstance(reason, int) else str(reason)


def failed(reason: Any) -> bool:
    """Whether a CONNACK/SUBACK/PUBACK reason code says no."""
    is_failure = getattr(reason, "is_failure", None)
    if is_failure is not None:
        return bool(is_failure)
    value = getattr(reason, "value", reason)
    return isinstance(value, int) and value >= 0x80


def dumps(doc: Any) -> bytes:
    """A message's payload: compact UTF-8 JSON."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


class Session:
    """A blocking MQTT session for a short-lived tool (``portal submit``, tests): connect,
    subscribe, publish and wait, each with a deadline; messages are taken from a queue.

    Reconnects by itself after a drop (the broker restarting, say), re-subscribing; with a
    session expiry, what the broker queued meanwhile is delivered then.
    """

    def __init__(self, client_id: str, broker: Broker, session_s: int = 300) -> None:
        self.broker = broker
        self.messages: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self._session_s = session_s
        self._c = client(client_id, broker)
        self._cond = threading.Condition()
        self._connected = False
        self._refused: str | None = None
        self._subscriptions: dict[str, int] = {}
        self._subacks: dict[int, list[Any]] = {}
        self._pubacks: dict[int, Any] = {}
        self._c.on_connect = self._on_connect
        self._c.on_disconnect = self._on_disconnect
        self._c.on_subscribe = self._on_subscribe
        self._c.on_publish = self._on_publish
        self._c.on_message = lambda _c, _u, msg: self.messages.put(msg)

    # paho's thread ---------------------------------------------------------------------
    def _on_connect(self, c, _userdata, _flags, reason, _props) -> None:
        with self._cond:
            if failed(reason):
                self._refused = reason_text(reason)
            else:
                self._connected, self._refused = True, None
                for t, qos in self._subscriptions.items():
                    c.subscribe(t, qos=qos)  # again: the broker may have lost the session
            self._cond.notify_all()

    def _on_disconnect(self, _c, _userdata, _flags, _reason, _props) -> None:
        with self._cond:
            self._connected = False
            self._cond.notify_all()

    def _on_subscribe(self, _c, _userdata, mid, reasons, _props) -> None:
        with self._cond:
            self._subacks[mid] = list(reasons)
            self._cond.notify_all()

    def _on_publish(self, _c, _userdata, mid, reason, _props) -> None:
        with self._cond:
            self._pubacks[mid] = reason
            self._cond.notify_all()

    # the caller's thread ---------------------------------------------------------------
    def _wait(self, ready: Callable[[], bool], deadline: float, refusal: bool = False) -> bool:
        """Wait until ``ready()`` or ``deadline``; ``refusal``: or the broker refused us."""
        with self._cond:
            while not ready():
                left = deadline - time.monotonic()
                if left <= 0 or (refusal and self._refused):
                    return ready()
                self._cond.wait(min(left, 0.5))
            return True

    def open(self, timeout: float) -> None:
        """Connect (BrokerError if refused or not connected within ``timeout``)."""
        deadline = time.monotonic() + timeout
        # Not a clean start even the first time (a fresh client id has no session anyway):
        # mosquitto keeps across its restarts only the sessions of such clients.
        failure = connect(self._c, self.broker, session_s=self._session_s)
        if failure is not None or not self._wait(lambda: self._connected, deadline, True):
            self.close()
            why = failure or self._refused or "no answer"
            where = url_of(self.broker.host, self.broker.port)
            raise BrokerError(f"cannot connect to {where}: {why}")

    def subscribe(self, topics: list[str], timeout: float) -> None:
        """Subscribe (QoS 1) and wait for the broker's grant; BrokerError if refused."""
        for t in topics:
            self._subscriptions[t] = 1
            rc, mid = self._c.subscribe(t, qos=1)
            if rc != paho.MQTT_ERR_SUCCESS:
                raise BrokerError(f"cannot subscribe to {t}: {reason_text(rc)}")
            if not self._wait(lambda m=mid: m in self._subacks, time.monotonic() + timeout):
                raise BrokerError(f"no answer from the broker to subscribing to {t}")
            if any(failed(r) for r in self._subacks[mid]):
                why = ", ".join(reason_text(r) for r in self._subacks[mid])
                raise BrokerError(f"the broker refused the subscription to {t}: {why}")

    def publish(self, topic: str, payload: bytes, timeout: float, retain: bool = False) -> None:
        """Publish QoS 1 and wait for the broker's PUBACK (BrokerError if refused or none)."""
        info = self._c.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            raise BrokerError(f"cannot publish to {topic}: {reason_text(info.rc)}")
        if not self._wait(lambda: info.mid in self._pubacks, time.monotonic() + timeout):
            raise BrokerError(f"the broker did not acknowledge the message to {topic}")
        reason = self._pubacks[info.mid]
        if failed(reason):
            raise BrokerError(f"the broker refused the message to {topic}: {reason_text(reason)}")

    def get(self, deadline: float) -> paho.MQTTMessage | None:
        """The next message received, or None at ``deadline`` (time.monotonic())."""
        try:
            return self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return None

    def close(self, end_session: bool = True) -> None:
        """Disconnect (ending the session at the broker) and stop paho's thread."""
        props = end_session_properties() if end_session else None
        try:
            self._c.disconnect(properties=props)
        finally:
            self._c.loop_stop()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
