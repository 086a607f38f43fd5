"""Which remedies answer the current findings, and whether each can be carried out here.

A remedy answers a finding when it lists the finding's rule in ``answers`` (or the rule
lists the remedy in its own ``actions``), fits the finding's subject (a line remedy needs
a line, a phone remedy a phone on the LAN; a site remedy fits anything) and its ``when``
is not false on the subject's facts. Then it is:

- ``ready``: phonediag can carry it out (``remedy apply``);
- ``manual``: steps for a person;
- ``unavailable``: it would fit, but not here, and ``why`` says so (no API access, a phone
  family without a write path, a state that could not be read...).
"""

from __future__ import annotations

from dataclasses import dataclass

from agent import judge
from agent.config import Config
from agent.model import Finding, Report
from agent.remedies.base import Target, Why, subject_of, target
from agent.remedies.spec import Remedy, catalogue


@dataclass
class Offer:
    finding: Finding
    target: Target
    remedy: Remedy
    status: str  # ready | manual | unavailable
    why: Why | None = None  # unavailable: why; manual: set when it may not apply


def fits(remedy: Remedy, t: Target) -> bool:
    if remedy.target == "device":
        return t.device is not None
    if remedy.target == "line":
        return t.device is not None or t.line is not None
    return True


def precondition(remedy: Remedy, t: Target) -> tuple[bool | None, list[str]]:
    """The remedy's ``when`` on the target's facts: True, False or None (unknown)."""
    if remedy.when is None:
        return True, []
    trace: list[str] = []
    return judge.evaluate_condition(remedy.when, t.facts, trace), trace


def _actions() -> dict[str, tuple[str, ...]]:
    rules, _errors = judge.load_all()
    return {r.id: r.actions for r in rules if r.actions}


def answers(remedy: Remedy, rule: str, actions: dict[str, tuple[str, ...]]) -> bool:
    return rule in remedy.answers or remedy.id in actions.get(rule, ())


def offer(remedy: Remedy, finding: Finding, t: Target, cfg: Config) -> Offer | None:
    """The offer of ``remedy`` for ``finding`` on ``t``; None when it does not apply."""
    from agent.remedies.runner import PLANNERS

    if not fits(remedy, t):
        return None
    verdict, trace = precondition(remedy, t)
    if verdict is False:
        return None
    if remedy.manual:
        why = None if verdict else Why("remedy.why.may_apply", {"trace": "; ".join(trace)})
        return Offer(finding, t, remedy, "manual", why)
    if verdict is None:
        return Offer(
            finding,
            t,
            remedy,
            "unavailable",
            Why("remedy.why.unknown", {"trace": "; ".join(trace)}),
        )
    why = PLANNERS[remedy.action].available(remedy, t, cfg)
    return Offer(finding, t, remedy, "unavailable" if why else "ready", why)


def offers(report: Report, cfg: Config, subject: str | None = None) -> list[Offer]:
    """Every offer for the report's findings (on ``subject`` only, when given), finding by
    finding in the report's order, ready ones first."""
    actions = _actions()
    order = {"ready": 0, "unavailable": 1, "manual": 2}
    out: list[Offer] = []
    for finding in report.findings:
        subj = subject_of(finding)
        if subject is not None and subj != subject:
            continue
        t = target(report, subj)
        found = [
            o
            for r in catalogue()
            if answers(r, finding.rule, actions) and (o := offer(r, finding, t, cfg))
        ]
        out += sorted(found, key=lambda o: order[o.status])
    return out


def unknown_rule_actions() -> list[str]:
    """Remedy ids named by a rule's ``actions`` that the catalogue does not have."""
    ids = {r.id for r in catalogue()}
    return sorted({a for acts in _actions().values() for a in acts} - ids)


def select(report: Report, cfg: Config, remedy: Remedy, subject: str) -> Offer:
    """The offer of ``remedy`` on ``subject`` for ``remedy apply``. RemedyError when it
    answers no finding there (``remedy.not_for``) or its precondition is false there
    (``remedy.not_applicable``); an offer that is unavailable is returned as such."""
    from agent.remedies.base import RemedyError

    t = target(report, subject)
    actions = _actions()
    mine = [f for f in t.findings if answers(remedy, f.rule, actions)]
    if remedy.target == "site" and not mine:
        mine = [f for f in report.findings if answers(remedy, f.rule, actions)]
    if not mine:
        rules = ", ".join(f.rule for f in t.findings) or "-"
        raise RemedyError(
            Why("remedy.not_for", {"id": remedy.id, "target": subject, "rules": rules})
        )
    for finding in mine:
        found = offer(remedy, finding, t, cfg)
        if found is not None:
            return found
    if not fits(remedy, t):
        why = Why("remedy.why.no_phone")
    else:
        verdict, trace = precondition(remedy, t)
        key = "remedy.why.unknown" if verdict is None else "remedy.why.precondition"
        why = Why(key, {"trace": "; ".join(trace)})
    raise RemedyError(
        Why("remedy.not_applicable", {"id": remedy.id, "target": subject, "why": why})
    )
