"""The portal's messages (docs/portal-protocol.md): jobs the portal signs, results the agent
signs, and :func:`check`, which every job goes through before anything is done for it.

A job message::

    {"job": {"v": 1, "id": "<uuid4>", "agent": "<agent id>", "kind": "diagnose|discover|
             remedy|report", "params": {...}, "issued_at": "<RFC 3339 UTC>",
             "expires_at": "...", "nonce": "<>= 16 random bytes, base64url>"},
     "sig": "<base64url Ed25519 signature of canonical(job) by the portal>"}

A result message: ``{"result": {...}, "sig": "<the agent's signature>"}``. Their JSON
Schemas are ``schemas/job-v1.schema.json`` and ``schemas/result-v1.schema.json``; the
structure is checked here by hand (``jsonschema`` is a test dependency only, and the
tests check that both accept and refuse the same messages). :func:`check` raises
:class:`Rejected` with one of :data:`REASONS`.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from agent import i18n
from agent.portal import keys, valid_agent_id

VERSION = 1
MAX_MESSAGE = 64 * 1024  # bytes: a larger job is refused unread (too-large)
MAX_AHEAD = timedelta(minutes=5)  # issued further in the future: not-yet-valid
MAX_LIFETIME = timedelta(hours=24)  # expires_at - issued_at above this: too-long
DEFAULT_TTL = timedelta(minutes=10)  # make_job's default validity
MIN_NONCE = 16  # bytes
MAX_SUBNETS = 16
MAX_RUN = 2**53 - 1  # a run id as every JSON reader reads it exactly
KINDS = ("diagnose", "discover", "remedy", "report")
STATUSES = ("done", "rejected", "failed", "interrupted")
REASONS = (
    "unsigned",
    "bad-signature",
    "malformed",
    "wrong-agent",
    "expired",
    "not-yet-valid",
    "replayed",
    "too-long",
    "out-of-scope",
    "remedy-not-allowed",
    "unknown-kind",
    "too-large",
)
# Reasons given before the job's signature was verified: the agent cannot tell the portal
# sent it, so such a rejection never settles the job it names (docs/portal-protocol.md).
UNVERIFIED = ("unsigned", "bad-signature", "malformed", "too-large")

UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
TIME = re.compile(
    r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|\+00:00)"
)
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = re.compile(rf"{_OCTET}(\.{_OCTET}){{3}}")
CIDR = re.compile(rf"{_OCTET}(\.{_OCTET}){{3}}/(3[0-2]|[12]?[0-9])")
DEVICE = re.compile(rf"site|line:[0-9]{{1,20}}|{_OCTET}(\.{_OCTET}){{3}}")
REMEDY_ID = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
NONCE = re.compile(r"([A-Za-z0-9_-]{4})*([A-Za-z0-9_-]{2,3})?")
SIG = re.compile(r"[A-Za-z0-9_-]{86}")
LANGS = ("fr", "en")


class Rejected(Exception):
    """A job refused: ``code`` (one of :data:`REASONS`), ``message`` (English, precise).

    ``job_id``: the job's id when one could be read (a uuid4; None otherwise, then no
    result can be addressed); ``verified``: whether the portal's signature was checked
    (only then is ``job_id`` known to be the portal's); ``duplicate``: the very same job
    was received before (a QoS 1 redelivery): its earlier result stands."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        job_id: str | None = None,
        agent: str | None = None,
        verified: bool = False,
        duplicate: bool = False,
    ) -> None:
        if code not in REASONS:
            raise ValueError(f"not a rejection code: {code}")
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message
        self.job_id, self.agent = job_id, agent
        self.verified, self.duplicate = verified, duplicate

    def text(self, lang: str) -> str:
        """One sentence for a person, in ``lang`` (the precise reason is ``message``)."""
        return i18n.t(f"portal.reject.{self.code}", lang)


@dataclass(frozen=True)
class Job:
    """A job whose signature, structure and dates were checked (by :func:`check`)."""

    id: str
    agent: str
    kind: str
    params: dict[str, Any]
    issued_at: datetime
    expires_at: datetime
    nonce: str
    doc: dict[str, Any] = field(repr=False)  # the signed job object, as received

    @property
    def lang(self) -> str | None:
        return self.params.get("lang")

    @property
    def symptom(self) -> str | None:
        return self.params.get("symptom")

    @property
    def subnets(self) -> list[str]:
        return list(self.params.get("subnets") or [])

    @property
    def remedy(self) -> str | None:
        return self.params.get("remedy")

    @property
    def device(self) -> str | None:
        return self.params.get("device")

    @property
    def run(self) -> int | str | None:
        """The stored run a report job asks for: its id, or ``"last"``."""
        run = self.params.get("run")
        return int(run) if isinstance(run, float) else run

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Job:
        """A Job from a job object already validated (:func:`validate_job`)."""
        return cls(
            id=doc["id"],
            agent=doc["agent"],
            kind=doc["kind"],
            params=dict(doc["params"]),
            issued_at=parse_time(doc["issued_at"]),
            expires_at=parse_time(doc["expires_at"]),
            nonce=doc["nonce"],
            doc=doc,
        )


def schema(name: str) -> dict[str, Any]:
    """A published JSON Schema: ``job``, ``result``, ``status`` or ``progress``
    (``agent/portal/schemas/NAME-v1.schema.json``)."""
    from importlib import resources

    path = resources.files("agent.portal").joinpath("schemas", f"{name}-v1.schema.json")
    return json.loads(path.read_text(encoding="utf-8"))


# ------------------------------------------------------------------ times


def now_utc() -> datetime:
    return datetime.now(UTC)


def rfc3339(when: datetime) -> str:
    """``2026-11-27T09:00:00Z`` (UTC; milliseconds when there are any)."""
    when = when.astimezone(UTC)
    if when.microsecond:
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """An RFC 3339 UTC time (``Z`` or ``+00:00``); ValueError otherwise."""
    if not isinstance(text, str) or not TIME.fullmatch(text):
        raise ValueError(f"not an RFC 3339 UTC time: {text!r}")
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


# ------------------------------------------------------------------ parsing


class Malformed(ValueError):
    """A message's structure is wrong (the text says where)."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise Malformed(f"key {k!r} appears twice")
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise Malformed(f"{name} is not JSON")


def loads(raw: bytes | str) -> Any:
    """Strict JSON: UTF-8, no duplicate keys, no NaN/Infinity. ValueError otherwise."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes | bytearray) else raw
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except Malformed as e:
        raise ValueError(str(e)) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"not JSON: {e}") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None


def encode(message: Mapping[str, Any]) -> bytes:
    """A message as sent: compact UTF-8 JSON (the signature does not depend on it)."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# ------------------------------------------------------------------ structure


def _int(value: Any) -> int | None:
    """An integer as JSON Schema sees one (``1`` or ``1.0``, never ``true``); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def _fields(obj: dict[str, Any], where: str, required: tuple[str, ...], allowed: tuple[str, ...]):
    missing = [k for k in required if k not in obj]
    if missing:
        raise Malformed(f"{where}: missing {', '.join(missing)}")
    extra = sorted(k for k in obj if k not in allowed)
    if extra:
        raise Malformed(f"{where}: unexpected {', '.join(map(repr, extra))}")


def _string(value: Any, where: str, pattern: re.Pattern[str] | None = None, what: str = "") -> str:
    if not isinstance(value, str):
        raise Malformed(f"{where}: must be a string")
    if pattern is not None and not pattern.fullmatch(value):
        raise Malformed(f"{where}: not {what}: {value[:80]!r}")
    return value


def _lang(params: dict[str, Any], where: str) -> None:
    if "lang" in params and params["lang"] not in LANGS:
        raise Malformed(f"{where}.lang: must be fr or en")


def _subnets(params: dict[str, Any], where: str) -> None:
    if "subnets" not in params:
        return
    nets = params["subnets"]
    if not isinstance(nets, list) or not 1 <= len(nets) <= MAX_SUBNETS:
        raise Malformed(f"{where}.subnets: must list 1 to {MAX_SUBNETS} networks")
    for i, n in enumerate(nets):
        _string(n, f"{where}.subnets[{i}]", CIDR, "an IPv4 network (a.b.c.d/n)")
    if len(set(nets)) != len(nets):
        raise Malformed(f"{where}.subnets: a network is listed twice")


def _symptoms() -> tuple[str, ...]:
    from agent.judge.loader import SYMPTOMS

    return SYMPTOMS


# kind -> (required, allowed) params
PARAMS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "diagnose": ((), ("symptom", "subnets", "lang")),
    "discover": ((), ("subnets", "lang")),
    "remedy": (("remedy", "device"), ("remedy", "device", "lang")),
    "report": (("run",), ("run",)),
}


def _params(kind: str, params: Any) -> None:
    where = "job.params"
    if not isinstance(params, dict):
        raise Malformed(f"{where}: must be an object")
    if "widen" in params:
        raise Rejected("out-of-scope", "a portal job can never widen the agent's scope")
    required, allowed = PARAMS[kind]
    _fields(params, where, required, allowed)
    _lang(params, where)
    _subnets(params, where)
    if "symptom" in params and params["symptom"] not in _symptoms():
        raise Malformed(f"{where}.symptom: one of {', '.join(_symptoms())}")
    if kind == "remedy":
        _string(params["remedy"], f"{where}.remedy", REMEDY_ID, "a remedy id")
        _string(params["device"], f"{where}.device", DEVICE, "IP, line:NUMBER or site")
    if kind == "report":
        run = params["run"]
        n = _int(run)
        if run != "last" and (n is None or not 1 <= n <= MAX_RUN):
            raise Malformed(f'{where}.run: a run id (1 or more) or "last"')


def validate_job(doc: Any) -> None:
    """Check a job object's structure (what ``job-v1.schema.json`` says, plus real dates
    and a nonce of at least 16 bytes). Rejected: ``malformed`` or ``unknown-kind``."""
    try:
        if not isinstance(doc, dict):
            raise Malformed("job: must be an object")
        keys_ = ("v", "id", "agent", "kind", "params", "issued_at", "expires_at", "nonce")
        _fields(doc, "job", keys_, keys_)
        if _int(doc["v"]) != VERSION:
            raise Malformed(f"job.v: version {doc['v']!r} is not supported (1)")
        _string(doc["id"], "job.id", UUID4, "a lower-case uuid4")
        if not valid_agent_id(doc["agent"]):
            raise Malformed(f"job.agent: not an agent id: {str(doc['agent'])[:80]!r}")
        kind = doc["kind"]
        if not isinstance(kind, str):
            raise Malformed("job.kind: must be a string")
        if kind not in KINDS:
            raise Rejected("unknown-kind", f"unknown kind of job {kind[:40]!r}")
        _params(kind, doc["params"])
        for k in ("issued_at", "expires_at"):
            _string(doc[k], f"job.{k}", TIME, "an RFC 3339 UTC time")
            try:
                parse_time(doc[k])
            except ValueError:
                raise Malformed(f"job.{k}: not a real date: {doc[k]!r}") from None
        nonce = _string(doc["nonce"], "job.nonce", NONCE, "base64url without padding")
        if len(keys.b64decode(nonce)) < MIN_NONCE:
            raise Malformed(f"job.nonce: fewer than {MIN_NONCE} bytes")
    except Malformed as e:
        raise Rejected("malformed", str(e)) from None


# ------------------------------------------------------------------ the check


def _envelope(raw: bytes | str, inner: str) -> tuple[dict[str, Any], Any]:
    """(the inner object, the signature or None) of ``{inner: {...}, "sig": ...}``."""
    try:
        doc = loads(raw)
    except ValueError as e:
        raise Rejected("malformed", str(e)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get(inner), dict):
        raise Rejected("malformed", f"not a {inner} message: an object with {inner!r} and 'sig'")
    return doc[inner], doc


def _readable_id(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) and UUID4.fullmatch(value) else None


def check(
    raw: bytes | str,
    *,
    agent_id: str,
    portal_key: Any,
    state: Any,
    cfg: Any,
    now: datetime | None = None,
) -> Job:
    """The job in ``raw``, once it passed every check, in this order: size (too-large),
    JSON (malformed), signature (unsigned, bad-signature), structure (malformed,
    unknown-kind), addressee (wrong-agent), dates (too-long, not-yet-valid, expired),
    replay (replayed: ``state`` remembers every admitted nonce and id until the job
    expires), then this agent's policy (out-of-scope, remedy-not-allowed: policy.py).

    An admitted job is recorded in ``state`` (``received``) before this returns; one
    refused by the policy is recorded as ``rejected``. Raises :class:`Rejected`."""
    now = now or now_utc()
    size = len(raw.encode("utf-8") if isinstance(raw, str) else raw)
    if size > MAX_MESSAGE:
        raise Rejected("too-large", f"the message has {size} bytes, more than {MAX_MESSAGE}")
    job, doc = _envelope(raw, "job")
    job_id = _readable_id(job, "id")
    sig = doc.get("sig")
    if sig is None or sig == "":
        raise Rejected("unsigned", "the job has no signature ('sig')", job_id=job_id)
    extra = sorted(k for k in doc if k not in ("job", "sig"))
    if extra:
        raise Rejected("malformed", f"unexpected {', '.join(map(repr, extra))}", job_id=job_id)
    if not isinstance(sig, str) or not SIG.fullmatch(sig):
        raise Rejected("bad-signature", "'sig' is not an Ed25519 signature", job_id=job_id)
    if not keys.verify(portal_key, job, sig):
        why = "the signature is not the portal's (forged, or the job was changed)"
        raise Rejected("bad-signature", why, job_id=job_id)
    try:
        validate_job(job)
    except Rejected as e:
        e.job_id, e.verified = job_id, True
        raise
    ok = Job.from_doc(job)

    def refuse(code: str, message: str, **kw: Any) -> Rejected:
        return Rejected(code, message, job_id=ok.id, agent=ok.agent, verified=True, **kw)

    if ok.agent != agent_id:
        raise refuse("wrong-agent", f"the job is for agent {ok.agent!r}, this is {agent_id!r}")
    if ok.expires_at <= ok.issued_at:
        raise refuse("malformed", "the job expires before it is issued")
    if ok.expires_at - ok.issued_at > MAX_LIFETIME:
        hours = (ok.expires_at - ok.issued_at).total_seconds() / 3600
        raise refuse("too-long", f"valid for {hours:.1f} h, more than 24 h")
    if ok.issued_at > now + MAX_AHEAD:
        ahead = (ok.issued_at - now).total_seconds()
        raise refuse("not-yet-valid", f"issued {ahead:.0f} s in the future (more than 5 min)")
    if now >= ok.expires_at:
        raise refuse("expired", f"expired at {rfc3339(ok.expires_at)}")
    state.admit(ok, now)  # Rejected("replayed") when the id or the nonce was seen
    from agent.portal import policy

    try:
        policy.check(ok, cfg)
    except Rejected as e:
        e.job_id, e.agent, e.verified = ok.id, ok.agent, True
        state.mark_rejected(ok.id, e.code, e.message, now)
        raise
    return ok


# ------------------------------------------------------------------ the portal's side


def make_job(
    private: Any,
    agent: str,
    kind: str,
    params: dict[str, Any] | None = None,
    *,
    now: datetime | None = None,
    ttl: timedelta = DEFAULT_TTL,
    job_id: str | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """A signed job message (``encode`` it to publish). ValueError when it would be
    malformed (a bad agent id, kind, parameter or validity)."""
    import secrets

    now = now or now_utc()
    job = {
        "v": VERSION,
        "id": job_id or str(uuid.uuid4()),
        "agent": agent,
        "kind": kind,
        "params": dict(params or {}),
        "issued_at": rfc3339(now),
        "expires_at": rfc3339(now + ttl),
        "nonce": nonce or keys.b64encode(secrets.token_bytes(MIN_NONCE)),
    }
    try:
        validate_job(job)
    except Rejected as e:
        raise ValueError(e.message) from None
    if not timedelta(0) < ttl <= MAX_LIFETIME:
        raise ValueError("a job is valid for more than 0 s and at most 24 h")
    return {"job": job, "sig": keys.sign(private, job)}


def check_result(
    raw: bytes | str,
    *,
    agent_key: Any,
    agent_id: str | None = None,
    job_id: str | None = None,
) -> dict[str, Any]:
    """The result body in ``raw`` (a result message), once its signature is the agent's
    and its structure right (``result-v1.schema.json``); with ``agent_id`` / ``job_id``,
    also that it answers that job of that agent. Raises :class:`Rejected` (``unsigned``,
    ``bad-signature``, ``malformed``, ``wrong-agent``)."""
    body, doc = _envelope(raw, "result")
    found = _readable_id(body, "job")
    sig = doc.get("sig")
    if sig is None or sig == "":
        raise Rejected("unsigned", "the result has no signature ('sig')", job_id=found)
    if not isinstance(sig, str) or not SIG.fullmatch(sig) or not keys.verify(agent_key, body, sig):
        raise Rejected("bad-signature", "the signature is not the agent's", job_id=found)
    try:
        extra = sorted(k for k in doc if k not in ("result", "sig"))
        if extra:
            raise Malformed(f"unexpected {', '.join(map(repr, extra))}")
        validate_result(body)
    except Malformed as e:
        raise Rejected("malformed", str(e), job_id=found, verified=True) from None
    if agent_id is not None and body["agent"] != agent_id:
        raise Rejected("wrong-agent", f"the result is from {body['agent']!r}", job_id=found)
    if job_id is not None and body["job"] != job_id:
        raise Rejected("malformed", f"the result answers job {body['job']}, not {job_id}")
    return body


RESULT_FIELDS = (
    "v", "job", "agent", "status", "reason", "message", "exit_code", "report", "remedy", "run",
    "started_at", "finished_at",
)  # fmt: skip


def validate_result(body: Any) -> None:
    """Check a result object's structure (``result-v1.schema.json``); :class:`Malformed`
    (a ValueError) otherwise."""
    if not isinstance(body, dict):
        raise Malformed("result: must be an object")
    required = ("v", "job", "agent", "status", "started_at", "finished_at")
    _fields(body, "result", required, RESULT_FIELDS)
    if _int(body["v"]) != VERSION:
        raise Malformed(f"result.v: version {body['v']!r} is not supported (1)")
    _string(body["job"], "result.job", UUID4, "a lower-case uuid4")
    if not valid_agent_id(body["agent"]):
        raise Malformed("result.agent: not an agent id")
    if body["status"] not in STATUSES:
        raise Malformed(f"result.status: one of {', '.join(STATUSES)}")
    if body["status"] == "rejected" and "reason" not in body:
        raise Malformed("result.reason: required when rejected")
    if "reason" in body and body["reason"] not in REASONS:
        raise Malformed("result.reason: not a rejection code")
    if "message" in body:
        _string(body["message"], "result.message")
    if "exit_code" in body and _int(body["exit_code"]) is None:
        raise Malformed("result.exit_code: must be an integer")
    for k in ("report", "remedy"):
        if k in body and not isinstance(body[k], dict):
            raise Malformed(f"result.{k}: must be an object")
    if "run" in body and (_int(body["run"]) is None or _int(body["run"]) < 1):
        raise Malformed("result.run: must be a run id (1 or more)")
    for k in ("started_at", "finished_at"):
        _string(body[k], f"result.{k}", TIME, "an RFC 3339 UTC time")


# ------------------------------------------------------------------ the agent's side


def result_body(
    job_id: str,
    agent: str,
    status: str,
    *,
    started_at: datetime,
    finished_at: datetime,
    reason: str | None = None,
    message: str | None = None,
    exit_code: int | None = None,
    report: dict[str, Any] | None = None,
    remedy: dict[str, Any] | None = None,
    run: int | None = None,
) -> dict[str, Any]:
    """A result object (unsigned); fields left None are left out."""
    if status not in STATUSES:
        raise ValueError(f"not a result status: {status}")
    body: dict[str, Any] = {"v": VERSION, "job": job_id, "agent": agent, "status": status}
    extra = {"reason": reason, "message": message, "exit_code": exit_code, "report": report,
             "remedy": remedy, "run": run}  # fmt: skip
    body |= {k: v for k, v in extra.items() if v is not None}
    body["started_at"] = rfc3339(started_at)
    body["finished_at"] = rfc3339(finished_at)
    return body


def rejection(e: Rejected, agent: str, now: datetime | None = None) -> dict[str, Any] | None:
    """The result body that answers a refused job, or None when it names no job."""
    if e.job_id is None:
        return None
    now = now or now_utc()
    return result_body(
        e.job_id, agent, "rejected", started_at=now, finished_at=now, reason=e.code,
        message=e.message,
    )  # fmt: skip


def sign_result(private: Any, body: dict[str, Any]) -> dict[str, Any]:
    """The result message: the body and the agent's signature of it."""
    return {"result": body, "sig": keys.sign(private, body)}


def progress_message(
    job_id: str, event: str, step: str, now: datetime | None = None
) -> dict[str, Any]:
    """``agents/{agent}/progress/{job}``: a step started, ended or failed."""
    return {"job": job_id, "event": event, "step": step, "at": rfc3339(now or now_utc())}


def status_message(
    agent: str, state: str, version: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """``agents/{agent}/status`` (retained; ``offline`` is the last will)."""
    from agent import __version__

    at = rfc3339(now or now_utc())
    return {"agent": agent, "state": state, "version": version or __version__, "at": at}
