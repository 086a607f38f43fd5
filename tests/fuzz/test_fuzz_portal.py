"""Portal jobs (agent/portal/jobs.py): every message that arrives on the agent's job topic
goes through ``jobs.check``, which admits a Job or raises Rejected with one of its
reasons, whatever the bytes: garbage, JSON of any shape, real jobs changed after they
were signed, and changed jobs signed again (so that the structure checks are reached).
Results read by the portal (``check_result``) likewise: a body or Rejected."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from agent.config import Config
from agent.portal import jobs, keys
from agent.portal.jobs import Rejected
from agent.portal.state import State
from tests.fuzz.strategies import hostile_bytes, hostile_text, mutated_bytes, mutated_tree

AGENT = "office-1"
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
PORTAL, AGENT_KEY, OTHER = keys.generate(), keys.generate(), keys.generate()
TMP = Path(tempfile.mkdtemp(prefix="phonediag-fuzz-portal-"))
atexit.register(shutil.rmtree, TMP, ignore_errors=True)  # leave nothing in /tmp
CFG = Config(
    store_path=str(TMP / "s.sqlite"),
    networks=["10.66.0.0/24"],
    remedies_portal_allowed=["reboot-phone"],
)
STATE = State.open(CFG)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_text, inner, max_size=4),
    max_leaves=10,
)
PARAMS = {
    "diagnose": st.fixed_dictionaries({}, optional={"symptom": st.sampled_from(["no-ring", "x"]),
                "subnets": st.lists(st.sampled_from(["10.66.0.0/24", "10.66.0.0/28",
                "192.168.1.0/24", "0.0.0.0/0", "10.66.0.1/33"]), max_size=3),
                "lang": st.sampled_from(["fr", "en", "de"])}),
    "discover": st.fixed_dictionaries({}, optional={"subnets": st.lists(st.sampled_from(
                ["10.66.0.0/24", "10.0.0.0/8"]), max_size=2)}),
    "remedy": st.fixed_dictionaries({"remedy": st.sampled_from(["reboot-phone", "dnd-off",
              "Bad"]), "device": st.sampled_from(["site", "line:0033972000001", "10.66.0.11",
              "8.8.8.8", "10.66.0.999"])}),
    "report": st.fixed_dictionaries({"run": st.sampled_from(["last", 1, 2**60, 0, -1, 1.0, "x"])}),
}  # fmt: skip


@st.composite
def signed_jobs(draw: st.DrawFn) -> dict:
    """A job the portal signed (any kind, any parameters), valid for a few minutes around
    now or not at all."""
    kind = draw(st.sampled_from(jobs.KINDS))
    ttl = timedelta(seconds=draw(st.integers(1, 24 * 3600)))
    issued = NOW + timedelta(seconds=draw(st.integers(-48 * 3600, 3600)))
    msg = jobs.make_job(PORTAL, AGENT, "discover", {}, now=issued, ttl=ttl,
                        nonce=keys.b64encode(draw(st.binary(min_size=16, max_size=24))),
                        job_id=str(draw(st.uuids(version=4))))  # fmt: skip
    msg["job"].update({"kind": kind, "params": draw(PARAMS[kind])})
    msg["job"]["agent"] = draw(st.sampled_from([AGENT, AGENT, "office-2", "X"]))
    msg["sig"] = keys.sign(PORTAL, msg["job"])
    return msg


@st.composite
def resigned(draw: st.DrawFn) -> dict:
    """A signed job changed anywhere, then signed again by the portal's key (or by another
    key, or left unsigned)."""
    msg = draw(signed_jobs())
    job = draw(mutated_tree(st.just(msg["job"]), max_ops=2, values=json_values))
    signer = draw(st.sampled_from(["portal", "portal", "other", "none"]))
    out = {"job": job}
    if signer != "none":
        out["sig"] = keys.sign(PORTAL if signer == "portal" else OTHER, job)
    return out


def _encode(msg) -> bytes:
    try:
        return jobs.encode(msg)
    except (TypeError, ValueError):  # a tree JSON cannot carry (NaN, a date): not sendable
        return b"{}"


messages = st.one_of(
    signed_jobs().map(jobs.encode),
    resigned().map(_encode),
    mutated_bytes(signed_jobs().map(jobs.encode)),
    mutated_tree(signed_jobs()).map(_encode),
    json_values.map(_encode),
    hostile_bytes,
    st.binary(min_size=jobs.MAX_MESSAGE - 8, max_size=jobs.MAX_MESSAGE + 8),
)


@given(messages, st.booleans())
def test_check_admits_a_job_or_rejects_it(raw: bytes, as_text: bool) -> None:
    if as_text:
        raw = raw.decode("utf-8", errors="replace")
    try:
        job = jobs.check(raw, agent_id=AGENT, portal_key=PORTAL.public_key(), state=STATE,
                         cfg=CFG, now=NOW)  # fmt: skip
    except Rejected as e:
        assert e.code in jobs.REASONS
        assert e.job_id is None or jobs.UUID4.fullmatch(e.job_id)
        assert e.verified or e.code in jobs.UNVERIFIED  # before the signature: no more
        return
    assert job.agent == AGENT and job.kind in jobs.KINDS
    assert job.issued_at <= NOW + jobs.MAX_AHEAD and job.expires_at > NOW


@given(st.one_of(messages, json_values.map(str)))
def test_loads_is_json_or_a_valueerror(raw) -> None:
    with contextlib.suppress(ValueError):
        jobs.loads(raw)


@st.composite
def results(draw: st.DrawFn) -> dict:
    body = jobs.result_body(
        str(draw(st.uuids(version=4))), AGENT, draw(st.sampled_from(jobs.STATUSES)),
        started_at=NOW, finished_at=NOW, reason=draw(st.none() | st.sampled_from(jobs.REASONS)),
        exit_code=draw(st.none() | st.integers(0, 3)), run=draw(st.none() | st.integers(1, 9)),
    )  # fmt: skip
    body = draw(st.just(body) | mutated_tree(st.just(body), max_ops=2, values=json_values))
    return {"result": body, "sig": keys.sign(AGENT_KEY, body)}


@given(st.one_of(results().map(_encode), mutated_bytes(results().map(_encode)), hostile_bytes))
def test_check_result(raw: bytes) -> None:
    try:
        body = jobs.check_result(raw, agent_key=AGENT_KEY.public_key(), agent_id=AGENT)
    except Rejected as e:
        assert e.code in jobs.REASONS
        return
    assert body["agent"] == AGENT
