"""Every job goes through jobs.check(): unsigned, forged, changed, expired, not yet valid,
too long, replayed, misaddressed, out-of-scope, not allow-listed, malformed and oversized
jobs are each refused with their code; the published JSON Schemas accept and refuse the
same messages as the code."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest

from agent import platform
from agent.config import Config
from agent.judge.loader import SYMPTOMS
from agent.portal import jobs, keys
from agent.portal.jobs import Rejected
from agent.portal.state import State

AGENT = "office-1"
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
PORTAL = keys.generate()
OTHER = keys.generate()


@pytest.fixture(autouse=True)
def office(monkeypatch):
    """This PC: 10.66.0.100/24 on eth0 (and loopback); nothing else is connected."""
    monkeypatch.setattr(
        platform,
        "ipv4_addresses",
        lambda: [
            platform.Address("lo", "127.0.0.1", 8, None),
            platform.Address("eth0", "10.66.0.100", 24, None),
        ],
    )


@pytest.fixture
def cfg(tmp_path) -> Config:
    return Config(store_path=str(tmp_path / "store" / "phonediag.sqlite"))


@pytest.fixture
def state(cfg):
    with State.open(cfg) as s:
        yield s


def job(kind="diagnose", args=None, *, key=PORTAL, agent=AGENT, now=NOW, ttl=None, **over):
    """A signed job message (a dict); ``over`` replaces fields of the job before it is
    signed (make_job itself refuses to make a malformed job)."""
    ttl = ttl or timedelta(minutes=10)
    if not over:
        return jobs.make_job(key, agent, kind, args or {}, now=now, ttl=ttl)
    msg = jobs.make_job(key, AGENT, "discover", {}, now=now, ttl=ttl)
    msg["job"].update({"kind": kind, "params": args or {}, "agent": agent})
    msg["job"].update(over)
    msg["sig"] = keys.sign(key, msg["job"])
    return msg


def check(msg, state, cfg, now=NOW + timedelta(seconds=5)) -> jobs.Job:
    raw = msg if isinstance(msg, bytes | str) else jobs.encode(msg)
    return jobs.check(raw, agent_id=AGENT, portal_key=PORTAL.public_key(), state=state,
                      cfg=cfg, now=now)  # fmt: skip


def refused(msg, state, cfg, now=NOW + timedelta(seconds=5)) -> Rejected:
    with pytest.raises(Rejected) as e:
        check(msg, state, cfg, now)
    return e.value


# ------------------------------------------------------------------ accepted


def test_a_signed_job_is_accepted_and_recorded(state, cfg):
    msg = job("diagnose", {"symptom": "no-ring", "lang": "en"})
    ok = check(msg, state, cfg)
    assert (ok.kind, ok.symptom, ok.lang, ok.subnets) == ("diagnose", "no-ring", "en", [])
    assert ok.agent == AGENT and ok.id == msg["job"]["id"] and ok.doc == msg["job"]
    assert ok.expires_at == NOW + timedelta(minutes=10)
    assert state.job(ok.id).state == "received"


def test_the_wire_form_does_not_matter(state, cfg):
    msg = job("report", {"run": 3})
    pretty = json.dumps(msg, indent=3, sort_keys=False, ensure_ascii=True)
    assert check(pretty.encode(), state, cfg).run == 3


@pytest.mark.parametrize(
    "kind, params",
    [
        ("discover", {}),
        ("discover", {"subnets": ["10.66.0.0/24"], "lang": "fr"}),
        ("diagnose", {"subnets": ["10.66.0.0/25", "10.66.0.128/26"]}),
        ("report", {"run": "last"}),
        ("report", {"run": 12}),
    ],
)
def test_every_kind(state, cfg, kind, params):
    assert check(job(kind, params), state, cfg).params == params


def test_an_allow_listed_remedy_is_accepted(state, cfg):
    cfg.remedies_portal_allowed = ["disable-line-forwarding", "reboot-phone"]
    ok = check(job("remedy", {"remedy": "reboot-phone", "device": "10.66.0.11"}), state, cfg)
    assert (ok.remedy, ok.device) == ("reboot-phone", "10.66.0.11")
    params = {"remedy": "disable-line-forwarding", "device": "line:0033972000001"}
    assert check(job("remedy", params), state, cfg).device == "line:0033972000001"


# ------------------------------------------------------------------ signatures


@pytest.mark.parametrize("sig", [None, "", "absent"])
def test_unsigned(state, cfg, sig):
    msg = job()
    if sig == "absent":
        del msg["sig"]
    else:
        msg["sig"] = sig
    e = refused(msg, state, cfg)
    assert e.code == "unsigned" and not e.verified
    assert e.job_id == msg["job"]["id"]  # readable, but not trusted


def test_forged_with_another_key(state, cfg):
    e = refused(job(key=OTHER), state, cfg)
    assert e.code == "bad-signature" and not e.verified
    assert e.text("fr") == "tâche refusée : sa signature n'est pas celle du portail enregistré"
    assert e.text("en") == "job refused: its signature is not the enrolled portal's"


@pytest.mark.parametrize(
    "field, old, new",
    [
        ("kind", b'"kind":"report"', b'"kind":"repors"'),
        ("run", b'"run":1', b'"run":2'),
        ("agent", b'"agent":"office-1"', b'"agent":"office-2"'),
        ("expiry", b'"expires_at":"2026-11-27T09:10', b'"expires_at":"2026-11-27T19:10'),
    ],
)
def test_one_byte_changed(state, cfg, field, old, new):
    raw = jobs.encode(job("report", {"run": 1}))
    assert raw.count(old) == 1
    e = refused(raw.replace(old, new), state, cfg)
    assert e.code == "bad-signature", field


def test_a_signature_that_is_not_one(state, cfg):
    for sig in ("x" * 86 + "==", "!" * 86, 42, ["a"]):
        msg = job()
        msg["sig"] = sig
        assert refused(msg, state, cfg).code == "bad-signature"
    msg = job()
    msg["sig"] = keys.sign(PORTAL, {"something": "else"})
    assert refused(msg, state, cfg).code == "bad-signature"


# ------------------------------------------------------------------ dates


def test_expired(state, cfg):
    e = refused(job(), state, cfg, now=NOW + timedelta(minutes=10))
    assert e.code == "expired" and e.verified and "2026-11-27T09:10:00Z" in e.message
    assert state.job(e.job_id) is None  # a refused job is not admitted


def test_not_yet_valid(state, cfg):
    assert check(job(now=NOW + timedelta(minutes=4)), state, cfg, now=NOW).kind == "diagnose"
    e = refused(job(now=NOW + timedelta(minutes=6)), state, cfg, now=NOW)
    assert e.code == "not-yet-valid"


def test_too_long(state, cfg):
    ok = job(ttl=timedelta(hours=24))
    assert check(ok, state, cfg).kind == "diagnose"
    long = job()
    long["job"]["expires_at"] = jobs.rfc3339(NOW + timedelta(hours=24, seconds=1))
    long["sig"] = keys.sign(PORTAL, long["job"])
    assert refused(long, state, cfg).code == "too-long"
    with pytest.raises(ValueError):
        jobs.make_job(PORTAL, AGENT, "discover", ttl=timedelta(hours=25))


def test_expiring_before_being_issued(state, cfg):
    e = refused(job(expires_at=jobs.rfc3339(NOW - timedelta(seconds=1))), state, cfg)
    assert e.code == "malformed" and "expires before" in e.message


# ------------------------------------------------------------------ replays


def test_the_same_job_twice_is_a_replay(state, cfg):
    msg = job()
    check(msg, state, cfg)
    e = refused(msg, state, cfg)
    assert e.code == "replayed" and e.duplicate and e.job_id == msg["job"]["id"]


def test_another_job_with_the_same_nonce_is_a_replay(state, cfg):
    first = job()
    check(first, state, cfg)
    second = job(nonce=first["job"]["nonce"])
    assert second["job"]["id"] != first["job"]["id"]
    e = refused(second, state, cfg)
    assert e.code == "replayed" and not e.duplicate


def test_another_job_with_the_same_id_is_a_replay(state, cfg):
    first = job()
    check(first, state, cfg)
    e = refused(job("discover", id=first["job"]["id"]), state, cfg)
    assert e.code == "replayed" and not e.duplicate


def test_a_replay_is_refused_after_a_restart(cfg):
    msg = job()
    with State.open(cfg) as s:
        check(msg, s, cfg)
    with State.open(cfg) as s:
        assert refused(msg, s, cfg).code == "replayed"


def test_nonces_are_forgotten_once_their_job_expired(state, cfg):
    msg = job()
    check(msg, state, cfg)
    state.purge(NOW + timedelta(minutes=10) + timedelta(minutes=6))
    rows = state.db.execute("SELECT COUNT(*) FROM portal_nonces").fetchone()[0]
    assert rows == 0
    # the job itself can never come back: it has expired
    assert refused(msg, state, cfg, now=NOW + timedelta(minutes=16)).code == "expired"


# ------------------------------------------------------------------ addressee, policy


def test_wrong_agent(state, cfg):
    e = refused(job(agent="office-2"), state, cfg)
    assert e.code == "wrong-agent" and "office-2" in e.message


@pytest.mark.parametrize(
    "subnet",
    [
        "192.168.1.0/24",  # private, but not connected to this PC
        "10.66.1.0/24",  # next door
        "10.66.0.0/23",  # larger than the agent's own network
        "10.64.0.0/16",  # larger than /22 (never widened)
        "8.8.8.0/24",  # public
        "0.0.0.0/0",
    ],
)
def test_a_subnet_outside_the_scope(state, cfg, subnet):
    e = refused(job("diagnose", {"subnets": ["10.66.0.0/25", subnet]}), state, cfg)
    assert e.code == "out-of-scope" and e.verified
    assert state.job(e.job_id).state == "rejected"  # admitted, then refused by the policy


def test_the_configured_scope_is_the_limit(state, cfg):
    cfg.networks = ["10.66.0.0/25"]
    assert refused(job("discover", {"subnets": ["10.66.0.128/25"]}), state, cfg).code == (
        "out-of-scope"
    )
    assert check(job("discover", {"subnets": ["10.66.0.64/26"]}), state, cfg)


def test_a_portal_job_can_never_widen(state, cfg):
    e = refused(job("discover", params={"widen": True}), state, cfg)
    assert e.code == "out-of-scope" and "widen" in e.message


@pytest.mark.parametrize("remedy", ["reboot-phone", "no-such-remedy"])
def test_a_remedy_not_allow_listed(state, cfg, remedy):
    cfg.remedies_portal_allowed = ["disable-line-dnd", "no-such-remedy"]
    e = refused(job("remedy", {"remedy": remedy, "device": "10.66.0.11"}), state, cfg)
    assert e.code == "remedy-not-allowed"


def test_a_remedy_on_a_device_outside_the_scope(state, cfg):
    cfg.remedies_portal_allowed = ["reboot-phone"]
    e = refused(job("remedy", {"remedy": "reboot-phone", "device": "192.168.1.20"}), state, cfg)
    assert e.code == "out-of-scope"


# ------------------------------------------------------------------ malformed, too large


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"\xff\xfe{}",
        b"[]",
        b'{"job": 5, "sig": "x"}',
        b'{"sig": "x"}',
        b'{"job": {"v": 1}, "sig": "x", "job": {"v": 1}}',  # a key twice
        b'{"job": {"v": NaN}, "sig": "x"}',
        b"[" * 100000 + b"]" * 100000,
    ],
)
def test_malformed_json(state, cfg, raw):
    e = refused(raw[: jobs.MAX_MESSAGE], state, cfg)
    assert e.code == "malformed" and e.job_id is None


@pytest.mark.parametrize(
    "change",
    [
        {"v": 2},
        {"id": "not-a-uuid"},
        {"id": "3F2504E0-4F89-41D3-9A0C-0305E82C3301"},  # upper case
        {"agent": "Office 1"},
        {"params": []},
        {"params": {"symptom": "sad"}},
        {"params": {"subnets": []}},
        {"params": {"subnets": ["10.66.0.0/33"]}},
        {"params": {"subnets": ["10.66.0.0/24", "10.66.0.0/24"]}},
        {"params": {"lang": "de"}},
        {"params": {"surprise": 1}},
        {"issued_at": "yesterday"},
        {"issued_at": "2026-11-27T09:00:00+01:00"},  # not UTC
        {"expires_at": "2026-02-30T09:10:00Z"},  # no such day
        {"nonce": "short"},
        {"nonce": "a" * 21},
        {"nonce": "a" * 23 + "="},
        {"extra": True},
    ],
)
def test_malformed_job(state, cfg, change):
    msg = job()
    msg["job"].update(change)
    msg["sig"] = keys.sign(PORTAL, msg["job"])
    e = refused(msg, state, cfg)
    assert e.code == "malformed" and e.verified


@pytest.mark.parametrize(
    "kind, params",
    [
        ("remedy", {"remedy": "reboot-phone"}),  # no device
        ("remedy", {"remedy": "Reboot Phone", "device": "site"}),
        ("remedy", {"remedy": "reboot-phone", "device": "the one on the left"}),
        ("report", {}),
        ("report", {"run": 0}),
        ("report", {"run": True}),
        ("report", {"run": "first"}),
        ("discover", {"symptom": "no-ring"}),  # a discovery takes no symptom
    ],
)
def test_malformed_params(state, cfg, kind, params):
    assert refused(job(kind, params=params), state, cfg).code == "malformed"


def test_unknown_kind(state, cfg):
    e = refused(job("reboot-everything", params={}), state, cfg)
    assert e.code == "unknown-kind" and "reboot-everything" in e.message


def test_extra_envelope_fields(state, cfg):
    msg = job()
    msg["sig2"] = "x"
    assert refused(msg, state, cfg).code == "malformed"


def test_oversized(state, cfg):
    msg = job()
    raw = jobs.encode(msg)
    padding = b" " * (jobs.MAX_MESSAGE - len(raw))
    assert check(raw + padding, state, cfg).id == msg["job"]["id"]  # exactly 64 KiB: read
    e = refused(jobs.encode(job()) + b" " * jobs.MAX_MESSAGE, state, cfg)
    assert e.code == "too-large" and e.job_id is None


def test_rejection_codes_are_the_contract():
    assert jobs.REASONS == (
        "unsigned", "bad-signature", "malformed", "wrong-agent", "expired", "not-yet-valid",
        "replayed", "too-long", "out-of-scope", "remedy-not-allowed", "unknown-kind",
        "too-large",
    )  # fmt: skip
    for code in jobs.REASONS:
        e = Rejected(code, "x")
        assert e.text("fr") and e.text("en") and e.text("fr") != e.text("en")
    with pytest.raises(ValueError):
        Rejected("nope", "x")


# ------------------------------------------------------------------ the published schemas


def validator(name: str):
    schema = jobs.schema(name)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def structurally_valid(msg) -> bool:
    """What check() says of the structure alone (the signature is always right here)."""
    try:
        if not isinstance(msg, dict) or set(msg) != {"job", "sig"}:
            return False
        if not isinstance(msg["sig"], str) or not jobs.SIG.fullmatch(msg["sig"]):
            return False
        jobs.validate_job(msg["job"])
        return True
    except Rejected:
        return False


def corpus() -> list[dict]:
    """Job messages, good and bad (each signed, so only their structure differs)."""
    good = [
        job("diagnose", {}),
        job("diagnose", {"symptom": "one-way-audio", "subnets": ["10.66.0.0/24"], "lang": "en"}),
        job("discover", {"subnets": ["10.66.0.0/25", "10.66.0.128/25"]}),
        job("remedy", {"remedy": "reboot-phone", "device": "10.66.0.11", "lang": "fr"}),
        job("remedy", {"remedy": "disable-line-dnd", "device": "line:0033972000001"}),
        job("remedy", {"remedy": "reboot-phone", "device": "site"}),
        job("report", {"run": "last"}),
        job("report", {"run": 9007199254740991}),
        job("diagnose", nonce=keys.b64encode(bytes(64))),
        job("diagnose", issued_at="2026-11-27T09:00:00.123456+00:00"),
    ]
    bad = []
    for change in (
        {"v": 2}, {"v": True}, {"v": "1"}, {"id": "x"}, {"id": None}, {"agent": "ab"},
        {"agent": "office/1"}, {"kind": "reboot"}, {"kind": 3}, {"params": None},
        {"params": {"symptom": "sad"}}, {"params": {"subnets": "10.66.0.0/24"}},
        {"params": {"subnets": ["10.66.0.256/24"]}}, {"params": {"subnets": ["10.66.0.0"]}},
        {"params": {"subnets": ["fe80::/64"]}}, {"params": {"subnets": ["010.66.0.0/24"]}},
        {"params": {"subnets": [f"10.66.{i}.0/24" for i in range(17)]}},
        {"params": {"lang": "EN"}}, {"params": {"widen": True}},
        {"issued_at": "2026-11-27 09:00:00Z"}, {"issued_at": "2026-11-27T09:00:00"},
        {"expires_at": 1700000000}, {"nonce": ""}, {"nonce": "a" * 21}, {"nonce": "a+" * 11},
        {"nonce": "a" * 129}, {"nonce": "a" * 25},
    ):  # fmt: skip
        msg = job("diagnose")
        msg["job"].update(change)
        msg["sig"] = keys.sign(PORTAL, msg["job"])
        bad.append(msg)
    for kind, params in (
        ("discover", {"symptom": "no-ring"}), ("remedy", {"device": "site"}),
        ("remedy", {"remedy": "x", "device": "10.66.0.1/24"}),
        ("remedy", {"remedy": "", "device": "site"}),
        ("report", {"run": -1}), ("report", {"run": 1.5}), ("report", {"run": None}),
        ("report", {"run": 2**53}), ("report", {"run": 1, "lang": "fr"}),
    ):  # fmt: skip
        bad.append(job(kind, params=params))
    for msg in (job(), job(), job()):
        bad.append(msg)
    del bad[-3]["sig"]
    bad[-2]["sig"] = bad[-2]["sig"] + "=="
    bad[-1]["extra"] = 1
    missing = job()
    del missing["job"]["nonce"]
    bad.append(missing)
    return [(m, True) for m in good] + [(m, False) for m in bad]


def test_the_job_schema_and_the_code_agree():
    v = validator("job")
    for msg, expected in corpus():
        schema_ok = v.is_valid(msg)
        assert structurally_valid(msg) is expected, msg
        assert schema_ok is expected, (msg, [e.message for e in v.iter_errors(msg)])


def test_the_job_schema_lists_the_symptoms_and_kinds():
    schema = jobs.schema("job")
    assert schema["$defs"]["diagnose"]["properties"]["symptom"]["enum"] == list(SYMPTOMS)
    assert schema["$defs"]["job"]["properties"]["kind"]["enum"] == list(jobs.KINDS)
    result = jobs.schema("result")
    assert result["$defs"]["result"]["properties"]["reason"]["enum"] == list(jobs.REASONS)
    assert result["$defs"]["result"]["properties"]["status"]["enum"] == list(jobs.STATUSES)


def test_the_result_schema_and_the_code_agree():
    agent = keys.generate()
    v = validator("result")
    at = {"started_at": NOW, "finished_at": NOW + timedelta(seconds=3)}
    jid = job()["job"]["id"]
    bodies = [
        (jobs.result_body(jid, AGENT, "done", report={"devices": []}, exit_code=0, run=4, **at),
         True),
        (jobs.result_body(jid, AGENT, "failed", message="boom", exit_code=3, **at), True),
        (jobs.result_body(jid, AGENT, "rejected", reason="expired", message="late", **at), True),
        (jobs.result_body(jid, AGENT, "interrupted", message="stopped", **at), True),
        (jobs.result_body(jid, AGENT, "done", remedy={"status": "applied"}, **at), True),
    ]  # fmt: skip
    base = bodies[0][0]
    for change in (
        {"status": "rejected"}, {"status": "ok"}, {"reason": "because"}, {"v": 2},
        {"job": "x"}, {"agent": "A"}, {"exit_code": "0"}, {"report": []}, {"run": 0},
        {"started_at": "now"}, {"extra": 1}, {"message": 5},
    ):  # fmt: skip
        bodies.append(({**base, **change}, False))
    for body, expected in bodies:
        msg = jobs.sign_result(agent, body)
        assert v.is_valid(msg) is expected, (body, [e.message for e in v.iter_errors(msg)])
        raw = jobs.encode(msg)
        if expected:
            got = jobs.check_result(raw, agent_key=agent.public_key(), agent_id=AGENT, job_id=jid)
            assert got == body
        else:
            with pytest.raises(Rejected) as e:
                jobs.check_result(raw, agent_key=agent.public_key())
            assert e.value.code == "malformed"


def test_check_result_refuses_forged_and_misaddressed_results():
    agent = keys.generate()
    jid = job()["job"]["id"]
    body = jobs.result_body(jid, AGENT, "done", started_at=NOW, finished_at=NOW)
    raw = jobs.encode(jobs.sign_result(agent, body))
    for kw, code in (
        ({"agent_key": OTHER.public_key()}, "bad-signature"),
        ({"agent_key": agent.public_key(), "agent_id": "office-2"}, "wrong-agent"),
        ({"agent_key": agent.public_key(), "job_id": job()["job"]["id"]}, "malformed"),
    ):
        with pytest.raises(Rejected) as e:
            jobs.check_result(raw, **kw)
        assert e.value.code == code
    unsigned = jobs.encode({"result": body})
    with pytest.raises(Rejected) as e:
        jobs.check_result(unsigned, agent_key=agent.public_key())
    assert e.value.code == "unsigned"


def test_progress_and_status_messages_match_their_schemas():
    p = jobs.progress_message(job()["job"]["id"], "start", "probe.stun", NOW)
    assert validator("progress").is_valid(p) and p["at"] == "2026-11-27T09:00:00Z"
    for state in ("online", "offline"):
        s = jobs.status_message(AGENT, state, now=NOW)
        assert validator("status").is_valid(s) and s["version"]


def test_times_are_rfc3339_utc():
    assert jobs.rfc3339(NOW) == "2026-11-27T09:00:00Z"
    assert jobs.rfc3339(NOW + timedelta(microseconds=1500)) == "2026-11-27T09:00:00.001Z"
    assert jobs.parse_time("2026-11-27T09:00:00+00:00") == NOW
    with pytest.raises(ValueError):
        jobs.parse_time("2026-11-27T10:00:00+01:00")


def test_make_job_refuses_what_check_would():
    for args in (("Bad Agent", "discover", {}), (AGENT, "nope", {}),
                 (AGENT, "report", {"run": "first"})):  # fmt: skip
        with pytest.raises(ValueError):
            jobs.make_job(PORTAL, *args)
    msg = jobs.make_job(PORTAL, AGENT, "discover")
    assert copy.deepcopy(msg) == json.loads(jobs.encode(msg))
    assert len(keys.b64decode(msg["job"]["nonce"])) >= 16
