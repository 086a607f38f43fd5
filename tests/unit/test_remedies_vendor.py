"""The phone's own settings written through its vendor's documented interface, against the
lab's faces in-process (httpx.MockTransport, no network): Yealink's Action URI, Snom's
/dummy.htm, Fanvil's /xmlService. Every change is checked by reading the phone again with
the adapter the diagnosis uses; a refused write changes nothing and says why; families
without a documented write path write nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agent import judge
from agent.config import Config, Credential
from agent.model import Device, Report
from agent.net.http import Session
from agent.remedies import get, offers
from agent.remedies.audit import Audit
from agent.remedies.base import Env
from agent.remedies.runner import Runner
from agent.vendors import base, registry
from lab.personalities import fanvil as fanvil_face
from lab.personalities import snom as snom_face
from lab.personalities import yealink as yealink_face
from tests.unit.vendors.helpers import face_transport, make_phone

IP = "10.66.0.11"
PASSWORD = "s3cret-lab"
FACES = {"yealink": yealink_face, "snom": snom_face, "fanvil": fanvil_face}
MODELS = {"yealink": "SIP-T46S", "snom": "D785", "fanvil": "V65"}


def phone_of(tmp: Path, vendor: str, **state: Any):
    forward = {"always": "", "busy": "", "noanswer": "", **state.pop("forward", {})}
    return make_phone(
        tmp, vendor=vendor, model=MODELS[vendor], firmware="1.0", mac="00:11:22:33:44:55",
        ip=IP, line="1001", registrar="sip.ovh.test",
        admin={"username": "admin", "password": PASSWORD}, forward=forward,
        **{"dnd": False, **state},
    )  # fmt: skip


def context(vendor: str, phone, password: str = PASSWORD) -> base.Context:
    transport = face_transport(FACES[vendor].handle, phone)
    session = Session(IP, [Credential("admin", password)], timeout=2, transport=transport)
    return base.Context(Device(IP, vendor=vendor), Config(), session)


def read(vendor: str, phone) -> dict[str, Any]:
    return asyncio.run(registry.adapter_for(vendor).read(context(vendor, phone)))


def write(vendor: str, phone, values: dict[str, Any], password: str = PASSWORD) -> None:
    asyncio.run(registry.adapter_for(vendor).write(context(vendor, phone, password), values))


def seen(values: dict[str, Any]) -> tuple[Any, Any, Any]:
    return (
        values.get("phone.dnd"),
        values.get("phone.forward.always"),
        values.get("phone.forward.always_target") or "",
    )


@pytest.mark.parametrize("vendor", sorted(FACES))
def test_dnd_and_forward_written_and_read_back(vendor, tmp_path):
    phone = phone_of(tmp_path, vendor, dnd=True, forward={"always": "0612345678"})
    assert seen(read(vendor, phone)) == (True, True, "0612345678")
    write(vendor, phone, {"phone.dnd": False})
    assert seen(read(vendor, phone)) == (False, True, "0612345678")
    write(vendor, phone, {"phone.forward.always": False})
    assert seen(read(vendor, phone))[:2] == (False, False)
    write(vendor, phone, {"phone.forward.always": True, "phone.forward.always_target": "201"})
    write(vendor, phone, {"phone.dnd": True})
    assert seen(read(vendor, phone)) == (True, True, "201")
    assert phone.state["dnd"] is True and phone.state["forward"]["always"] == "201"


@pytest.mark.parametrize("vendor", sorted(FACES))
def test_a_refused_login_is_refused_and_changes_nothing(vendor, tmp_path):
    phone = phone_of(tmp_path, vendor, dnd=True)
    with pytest.raises(base.Refused):
        write(vendor, phone, {"phone.dnd": False}, password="wrong")
    assert phone.state["dnd"] is True


def test_yealink_outside_the_action_uri_allow_list(tmp_path):
    phone = phone_of(tmp_path, "yealink", dnd=True, action_uri_limit_ip="192.168.9.*")
    with pytest.raises(base.Refused, match="allow-IP list"):
        write("yealink", phone, {"phone.dnd": False})
    assert phone.state["dnd"] is True


def test_snom_with_digest_authentication(tmp_path):
    phone = phone_of(tmp_path, "snom", dnd=True, http_scheme="on")
    write("snom", phone, {"phone.dnd": False})
    assert phone.state["dnd"] is False


def test_snom_query_follows_the_firmwares_names():
    from agent.vendors.snom import save_query

    assert save_query({"dnd_mode": "on"}, {"phone.dnd": False})["dnd_mode"] == "off"  # < 8.7.3
    assert save_query({"dnd_mode1": "on"}, {"phone.dnd": False})["dnd_mode1"] == "off"
    with pytest.raises(base.Refused, match="redirect_event"):
        save_query({"redirect_event": "all"}, {"phone.forward.always": False})


def test_writes_are_checked_before_anything_is_sent():
    yealink = registry.adapter_for("yealink")
    with pytest.raises(ValueError, match=r"needs phone\.forward\.always_target"):
        base.check_write(yealink, {"phone.forward.always": True})
    with pytest.raises(ValueError, match=r"cannot write phone\.clock_skew_s"):
        base.check_write(yealink, {"phone.clock_skew_s": 0})
    with pytest.raises(ValueError, match="must be a bool"):
        base.check_write(yealink, {"phone.dnd": "off"})


@pytest.mark.parametrize("vendor", ["gigaset", "grandstream", "poly", "lg", None])
def test_families_without_a_documented_write_path_write_nothing(vendor):
    assert base.writable(registry.adapter_for(vendor)) == frozenset()
    assert not base.rebootable(registry.adapter_for(vendor))


@pytest.mark.parametrize("vendor", ["yealink", "cisco", "snom"])
def test_families_with_a_documented_restart(vendor):
    assert base.rebootable(registry.adapter_for(vendor))


def test_the_cisco_profile_holds_only_what_changes():
    from agent.vendors.cisco import flat_profile

    assert b"<DND_Setting>No</DND_Setting>" in flat_profile({"phone.dnd": False})
    assert b"Cfwd" not in flat_profile({"phone.dnd": False})
    on = flat_profile({"phone.forward.always": True, "phone.forward.always_target": "06<1>"})
    assert b"<Cfwd_All_Dest>06&lt;1&gt;</Cfwd_All_Dest>" in on and b"DND" not in on
    off = flat_profile({"phone.forward.always": False}, ata=True)
    assert b"<Cfwd_All_Dest_1_ />" in off


# ---------------------------------------------------------------- through the runner


def diagnosis(vendor: str, phone) -> Report:
    """What the device probe and the rules make of the phone."""
    device = Device(IP, vendor=vendor, model=MODELS[vendor])
    values = read(vendor, phone)
    facts = base.Reading(device, f"vendor.{vendor}", values).facts()
    rules, _ = judge.load_all()
    return Report(devices=[device], facts=facts, findings=judge.judge(rules, facts, [IP], "en"))


def test_phone_dnd_remedy_applied_verified_and_undone(tmp_path):
    phone = phone_of(tmp_path, "yealink", dnd=True)
    cfg = Config(credentials=[Credential("admin", PASSWORD, device=IP)], timeout=1)
    env = Env(cfg, transport=face_transport(yealink_face.handle, phone))
    r = Runner(cfg, Audit(tmp_path / "a.sqlite"), env=env)
    report = diagnosis("yealink", phone)
    offer = offers.select(report, cfg, get("disable-phone-dnd"), IP)
    assert (offer.remedy.id, offer.status) == ("disable-phone-dnd", "ready")
    plan = asyncio.run(r.plan(offer.remedy, offer.target, offer.finding))
    assert plan.steps[0].where == {"ip": IP, "vendor": "yealink", "model": "SIP-T46S"}
    assert (plan.steps[0].before, plan.steps[0].set) == ({"phone.dnd": True}, {"phone.dnd": False})
    run = r.record_plan(plan)
    r.consent(run, plan, True, "--yes")

    async def again() -> Report:
        return await asyncio.to_thread(diagnosis, "yealink", phone)

    outcome = asyncio.run(r.apply(run, plan, again, settle=0))
    assert (outcome.status, outcome.verification) == ("applied", "verified")
    assert phone.state["dnd"] is False
    undo = asyncio.run(r.plan_undo(run))
    run2 = r.record_plan(undo)
    r.consent(run2, undo, True, "--yes")
    assert asyncio.run(r.undo(run2, undo)).status == "undone"
    assert phone.state["dnd"] is True
    assert "dnd-on" in [f.rule for f in diagnosis("yealink", phone).findings]
    assert PASSWORD not in str([row.to_dict() for row in r.audit.rows()])
