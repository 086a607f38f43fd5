"""The troubleshooter's walk: symptom → measure → one finding at a time → solved, or the
support summary.

Findings are walked in the order the symptom's flow gives (rules/flows.toml: the measured
checks first, the guide's manual procedure last), then any other problem found on that
phone. For each: the diagnosis in one or two sentences; an automatic remedy when one is
ready (with consent, verified by a new diagnosis, as ``phonediag remedy apply``); else the
numbered steps, then « Ça fonctionne ! » / « Ça ne fonctionne toujours pas ? ».
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from agent import aio, identify, judge, pipeline
from agent.config import Config
from agent.i18n import t
from agent.judge import flows
from agent.model import LINE_PREFIX, Device, Fact, Finding, Report
from agent.remedies import offers, render
from agent.remedies.base import RemedyError, subject_of
from agent.remedies.runner import Runner
from agent.report.text import pinned_note
from agent.scope import ScopedNetwork
from agent.troubleshoot.ui import UI

DETECT = "detect"
SEVERITY = {"critical": 0, "warning": 1, "info": 2}
NOT_WALKED = {"provider-not-checked"}  # said in the summary, not a step to take


@dataclass
class Tried:
    """What was tried for a finding, and how it went (for the summary and --json)."""

    rule: str
    what: str  # remedy id, or "steps"
    outcome: str  # e.g. "applied, verified", "declined", "still not working"
    audit_run: int | None = None


@dataclass
class Result:
    solved: bool
    choice: flows.Choice | None
    device: Device | None
    report: Report | None
    walked: list[Finding] = field(default_factory=list)
    tried: list[Tried] = field(default_factory=list)
    message: str | None = None  # what the person says the screen shows


def vendor_name(vendor_id: str | None) -> str:
    v = identify.vendor(vendor_id)
    return v.name if v else (vendor_id or "")


def measured(rule_id: str) -> bool:
    """Whether a rule rests on something phonediag measured, not only on what the person
    said and which family the phone is (a guide's procedure for a symptom)."""
    from agent import catalog
    from agent.judge.engine import used_keys

    rule = next((r for r in judge.load_all()[0] if r.id == rule_id), None)
    if rule is None:
        return False
    specs = [catalog.lookup(k) for k in used_keys(rule.when)]
    return any(s is not None and s.probe not in ("user", "identify") for s in specs)


def symptom_choices() -> list[flows.Choice]:
    """The generic list (any phone), as the wizard's entry points."""
    loaded, _errors = flows.load_flows()
    generic = flows.flow_for(None, loaded)
    return list(generic.choices) if generic else []


def find_choice(choice_id: str) -> flows.Choice | None:
    """A choice by id: the generic list first, then any family's."""
    loaded, _errors = flows.load_flows()
    ordered = sorted(loaded, key=lambda f: f.family != flows.GENERIC)
    return next((c for f in ordered for c in f.choices if c.id == choice_id), None)


class Session:
    def __init__(
        self,
        cfg: Config,
        nets: list[ScopedNetwork],
        lang: str,
        ui: UI,
        device: str | None = None,
    ) -> None:
        self.cfg, self.nets, self.lang, self.ui, self.device_hint = cfg, nets, lang, ui, device
        self.answers: dict[str, Any] = {}
        self.runner: Runner | None = None

    # -------------------------------------------------------------- the walk
    def run(self, symptom: str | None) -> Result:
        ui, lang = self.ui, self.lang
        ui.heading(t("ts.welcome", lang))
        choice = self._pick_symptom(symptom)
        result = Result(False, choice, None, None)
        if choice is not None:
            self.answers = flows.user_facts(choice, flows.GENERIC)
            if choice.symptom == "error-message":
                result.message = ui.text(t("ts.ask_message", lang))
                if result.message:
                    self.answers["display.message"] = result.message
        report = self._diagnose(t("ts.measuring", lang))
        result.report = report
        result.device = self._pick_device(report, choice)
        if result.device is not None:
            report = self._with_family(report, result.device, choice)
            result.report = report
        walk = self._walk_order(report, choice, result.device)
        result.walked = walk
        self._say_found(report, result.device, walk)
        for finding in walk:
            if self._handle(finding, result):
                result.solved = True
                ui.heading(t("ts.solved", lang))
                return result
        if not walk and ui.choose(t("ts.nothing_q", lang), self._works_options()) == 0:
            result.solved = True
            ui.heading(t("ts.solved", lang))
        return result

    def _pick_symptom(self, symptom: str | None) -> flows.Choice | None:
        if symptom == DETECT:
            return None
        if symptom:
            return find_choice(symptom)  # the CLI checked it exists
        choices = symptom_choices()
        labels = [c.label(self.lang) for c in choices] + [t("ts.detect", self.lang)]
        picked = self.ui.choose(t("ts.ask_symptom", self.lang), labels)
        return choices[picked] if picked is not None and picked < len(choices) else None

    def _diagnose(self, label: str) -> Report:
        with self.ui.progress(label) as tell:
            return aio.run(
                pipeline.run_diagnose(
                    self.cfg, self.nets, self.lang, answers=self.answers, progress=tell
                )
            )

    def _pick_device(self, report: Report, choice: flows.Choice | None) -> Device | None:
        phones = report.devices
        if self.device_hint:
            return next((d for d in phones if d.ip == self.device_hint), None)
        rules = set(choice.rules) if choice else None
        with_findings = {
            f.device
            for f in report.findings
            if f.device and (rules is None or f.rule in rules) and f.severity != "info"
        }
        if len(with_findings) == 1:
            return next(d for d in phones if d.ip in with_findings)
        if len(phones) == 1:
            return phones[0]
        if len(phones) > 1:
            labels = [self._phone_label(d) for d in phones] + [t("ts.all_phones", self.lang)]
            picked = self.ui.choose(t("ts.ask_phone", self.lang), labels)
            if picked is not None and picked < len(phones):
                return phones[picked]
        return None

    def _phone_label(self, d: Device) -> str:
        name = " ".join(x for x in (vendor_name(d.vendor), d.model) if x)
        return f"{name or t('ts.unknown_phone', self.lang)} ({d.ip})"

    def _with_family(self, report: Report, device: Device, choice: flows.Choice | None) -> Report:
        """Judge again with the phone's family known: its own procedures then apply."""
        family = next(
            (f.value for f in report.facts if f.subject == device.ip and f.key == "phone.family"),
            None,
        )
        if choice is None or not isinstance(family, str) or family == flows.GENERIC:
            return report
        self.answers = flows.user_facts(choice, family) | {
            k: v for k, v in self.answers.items() if k == "display.message"
        }
        facts = [f for f in report.facts if f.source != "user"]
        facts += [Fact("site", k, v, "user") for k, v in self.answers.items()]
        rules, _errors = judge.load_all()
        lines = sorted({f.subject for f in facts if f.subject.startswith(LINE_PREFIX)})
        subjects = [d.ip for d in report.devices] + lines
        report.facts, report.findings = facts, judge.judge(rules, facts, subjects, self.lang)
        return report

    def _walk_order(
        self, report: Report, choice: flows.Choice | None, device: Device | None
    ) -> list[Finding]:
        mine = {"site"}
        if device is not None:
            mine.add(device.ip)
        rank = {rule: n for n, rule in enumerate(choice.rules)} if choice else {}
        found = [
            f
            for f in report.findings
            if f.rule not in NOT_WALKED
            and (device is None or subject_of(f) in mine)
            and (f.rule in rank or f.severity != "info")
        ]
        found.sort(key=lambda f: (rank.get(f.rule, len(rank)), SEVERITY.get(f.severity, 3)))
        # A finding another one explains (its root cause is walked first) is not walked
        # again; the guide's procedure (the flow's last rule, a checklist) comes after
        # every measured finding, whatever its rank.
        last = choice.rules[-1] if choice else None
        by_id = {r.id: r for r in judge.load_all()[0]}
        explained = {x for f in found if f.rule in by_id for x in by_id[f.rule].explains}
        found = [f for f in found if f.rule not in explained or f.rule == last]
        return [f for f in found if f.rule != last] + [f for f in found if f.rule == last]

    def _say_found(self, report: Report, device: Device | None, walk: list[Finding]) -> None:
        ui, lang = self.ui, self.lang
        ui.say(t("ts.phones_found", lang, n=len(report.devices)))
        note = pinned_note(report, lang)  # trust on first use, said
        if note is not None:
            ui.say(note)
        if device is not None:
            ui.say(t("ts.about_phone", lang, phone=self._phone_label(device)))
        if not any(measured(f.rule) for f in walk):
            ui.say(t("ts.nothing_measured", lang), "green")

    # -------------------------------------------------------------- one finding
    def _handle(self, finding: Finding, result: Result) -> bool:
        ui, lang = self.ui, self.lang
        ui.heading(finding.title)
        ui.say(t("ts.diagnosis", lang, text=finding.explanation))
        if self._remedy(finding, result):
            return True
        if finding.remedies:
            ui.say()
            ui.say(t("ts.steps", lang), "bold")
            ui.numbered(finding.remedies)
        picked = ui.choose(t("ts.works_q", lang), self._works_options())
        works = picked == 0
        result.tried.append(Tried(finding.rule, "steps", "works" if works else "still not working"))
        return works

    def _works_options(self) -> list[str]:
        return [t("ts.works", self.lang), t("ts.still", self.lang)]

    def _remedy(self, finding: Finding, result: Result) -> bool:
        """Offer the first automatic remedy ready for this finding; True when it fixed it
        (verified by a new diagnosis and, when someone is there, confirmed by them)."""
        ui, lang = self.ui, self.lang
        report = result.report
        assert report is not None
        ready = [
            o
            for o in offers.offers(report, self.cfg, subject_of(finding))
            if o.finding.rule == finding.rule and o.status == "ready"
        ]
        if not ready:
            return False
        offer = ready[0]
        runner = self._runner()
        if runner is None:
            return False
        try:
            plan = aio.run(runner.plan(offer.remedy, offer.target, offer.finding))
        except RemedyError as e:
            ui.say(t("ts.remedy_cannot", lang, why=e.why.text(lang)), "yellow")
            return False
        ui.say()
        ui.say(t("ts.remedy_offer", lang, title=offer.remedy.title(lang)), "bold")
        ui.say(render.plan(plan, lang))
        run = runner.record_plan(plan)
        yes = ui.confirm(t("ts.remedy_ask", lang))
        runner.consent(run, plan, yes, "troubleshoot --yes" if ui.decide else "troubleshoot")
        if not yes:
            result.tried.append(Tried(finding.rule, offer.remedy.id, "declined", run))
            return False

        async def rediagnose() -> Report:
            return await pipeline.run_diagnose(self.cfg, self.nets, lang, answers=self.answers)

        async def by_hand(todo: list[Any]) -> None:
            for why in todo:
                ui.say(f"→ {why.text(lang)}", "yellow")
            await asyncio.to_thread(ui.pause, t("remedy.ask_by_hand", lang))

        with ui.progress(t("ts.applying", lang)):
            outcome = aio.run(runner.apply(run, plan, rediagnose, None, by_hand))
        ui.say(render.outcome(outcome, plan, lang))
        state = outcome.status + (f", {outcome.verification}" if outcome.verification else "")
        result.tried.append(Tried(finding.rule, offer.remedy.id, state, run))
        if not outcome.fixed:
            return False
        if ui.decide is not None:
            return True  # nobody to ask: the new diagnosis is the proof
        picked = ui.choose(t("ts.check_q", lang), self._works_options())
        if picked != 0:
            result.tried[-1].outcome += ", still not working"
        return picked == 0

    def _runner(self) -> Runner | None:
        if self.runner is None:
            from agent import store
            from agent.remedies.audit import Audit

            try:
                self.runner = Runner(self.cfg, Audit(store.path_for(self.cfg.store_path)))
            except store.StoreError as e:
                self.ui.say(t("remedy.store_error", self.lang, why=e), "yellow")
                return None
        return self.runner
