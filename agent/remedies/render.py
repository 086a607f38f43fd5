"""The remedies as a person reads them (plain text, French or English) and as JSON."""

from __future__ import annotations

from typing import Any

from agent import i18n
from agent.model import Finding
from agent.remedies.audit import Row
from agent.remedies.base import Step, Target, Why, show, show_values
from agent.remedies.offers import Offer
from agent.remedies.runner import Outcome, Plan
from agent.remedies.spec import Remedy

MARK = {"ready": "+", "manual": "*", "unavailable": "-"}


def steps_of(remedy: Remedy, t: Target | None, lang: str) -> list[str]:
    """A manual remedy's steps, with its vendor's own step first when there is one."""
    text = remedy.text[lang]
    vendor = t.device.vendor if t and t.device else None
    extra = [text.vendor[vendor]] if vendor in text.vendor else []
    return extra + list(text.steps)


# ------------------------------------------------------------------ remedy list


def listing(offers: list[Offer], lang: str, findings: list[Finding] | None = None) -> str:
    """The offers finding by finding; ``findings`` (the diagnosis's, in its order) also
    shows those no remedy answers."""
    findings = findings if findings is not None else _unique([o.finding for o in offers])
    if not findings:
        return i18n.t("remedy.list.none", lang)
    out: list[str] = []
    for finding in findings:
        mine = [o for o in offers if o.finding is finding]
        sev = i18n.t(f"severity.{finding.severity}", lang)
        label = mine[0].target.label(lang) if mine else _where(finding, lang)
        out += ["", f"[{sev}] {finding.title}", f"  {label} ({finding.rule})"]
        if not mine:
            out.append("  " + i18n.t("remedy.list.no_remedy", lang))
        for o in mine:
            out += _offer(o, lang)
    out += ["", i18n.t("remedy.list.legend", lang)]
    return "\n".join(out).lstrip("\n")


def _offer(o: Offer, lang: str) -> list[str]:
    out = [f"  {MARK[o.status]} {o.remedy.id}: {o.remedy.title(lang)}"]
    if o.status == "ready":
        device = o.target.subject
        out.append("      " + i18n.t("remedy.list.apply", lang, id=o.remedy.id, device=device))
    elif o.status == "unavailable" and o.why:
        out.append("      " + i18n.t("remedy.list.unavailable", lang, why=o.why.text(lang)))
    else:
        if o.why:
            out.append("      " + o.why.text(lang))
        out += [f"      {n}. {s}" for n, s in enumerate(steps_of(o.remedy, o.target, lang), 1)]
    return out


def _where(finding: Finding, lang: str) -> str:
    if finding.device:
        return i18n.t("finding.device", lang, ip=finding.device)
    if finding.line:
        return i18n.t("finding.line_only", lang, line=finding.line)
    return i18n.t("finding.site", lang)


def _unique(findings: list[Finding]) -> list[Finding]:
    out: list[Finding] = []
    for f in findings:
        if not any(f is g for g in out):
            out.append(f)
    return out


def offers_json(offers: list[Offer], lang: str) -> list[dict[str, Any]]:
    return [
        {
            "rule": o.finding.rule,
            "target": o.target.subject,
            "device": o.finding.device,
            "line": o.target.line,
            "remedy": o.remedy.id,
            "kind": o.remedy.action,
            "status": o.status,
            "title": o.remedy.title(lang),
            "why": o.why.text(lang) if o.why else None,
            "steps": steps_of(o.remedy, o.target, lang) if o.remedy.manual else [],
            "undoable": o.remedy.undoable,
        }
        for o in offers
    ]


# ------------------------------------------------------------------ plan and outcome


def _change(step: Step, lang: str) -> list[str]:
    where = step.where
    if step.action == "line-options":
        head = i18n.t("remedy.plan.api", lang, method="PUT", path=_options_path(where))
    elif step.action == "phone-settings":
        head = i18n.t("remedy.plan.phone", lang, ip=where["ip"], vendor=where.get("vendor", ""))
    elif step.action == "provider-reset-config":
        head = i18n.t("remedy.plan.reset", lang, ip=step.set.get("ip", "?"))
    else:
        head = i18n.t("remedy.plan.reboot", lang)
    lines = [f"  - {head}"]
    for key, value in step.set.items():
        if step.action in ("line-options", "phone-settings"):
            lines.append(f"      {key}: {show(step.before.get(key))} -> {show(value)}")
    kept = {k: v for k, v in step.before.items() if k not in step.set and v not in (None, "")}
    if kept:
        lines.append("      " + i18n.t("remedy.plan.kept", lang, values=show_values(kept)))
    return lines


def _options_path(where: dict[str, str]) -> str:
    return f"/telephony/{where['billing_account']}/line/{where['line']}/options"


def plan(p: Plan, lang: str) -> str:
    r = p.remedy
    if p.undo_of is not None:
        out = [
            i18n.t("remedy.plan.undo_title", lang, run=p.undo_of, id=r.id),
            "  " + i18n.t("remedy.plan.for_undo", lang, target=p.target.label(lang)),
        ]
    else:
        rule = p.finding.rule if p.finding else "?"
        out = [
            i18n.t("remedy.plan.title", lang, id=r.id, title=r.title(lang)),
            "  " + i18n.t("remedy.plan.for", lang, target=p.target.label(lang), rule=rule),
            "  " + r.text[lang].effect,
        ]
    out.append("  " + i18n.t("remedy.plan.changes", lang))
    for step in p.steps:
        out += _change(step, lang)
    if p.undo_of is None:
        facts = show_values(r.verify)
        key = "remedy.plan.verify_facts" if facts else "remedy.plan.verify"
        out.append("  " + i18n.t(key, lang, rule=rule, facts=facts))
        if r.settle_s:
            out.append("  " + i18n.t("remedy.plan.settle", lang, s=f"{r.settle_s:g}"))
        out.append(
            "  " + i18n.t("remedy.plan.undo_yes" if p.undoable else "remedy.plan.undo_no", lang)
        )
    return "\n".join(out)


def outcome(o: Outcome, p: Plan, lang: str) -> str:
    out: list[str] = []
    if o.status == "declined":
        out.append(i18n.t("remedy.outcome.declined", lang))
    elif o.status == "failed":
        why = o.error.text(lang) if o.error else "?"
        out.append(i18n.t("remedy.outcome.failed", lang, why=why))
    elif o.status == "undone":
        out.append(i18n.t("remedy.outcome.undone", lang, run=p.undo_of))
    else:
        out.append(i18n.t("remedy.outcome.applied", lang))
        rule = p.finding.rule if p.finding else "?"
        if o.verification:
            plain = o.verification == "still-present" and not o.observed
            key = "still-present-plain" if plain else o.verification
            out.append(
                i18n.t(
                    f"remedy.verify.{key}",
                    lang,
                    rule=rule,
                    seen=show_values(o.observed),
                    remaining=", ".join(o.remaining),
                )
            )
        if o.verification == "unverified" and o.error:
            out.append("  " + o.error.text(lang))
    out += ["  " + n.text(lang) for n in o.notes]
    if o.run is not None:
        key = (
            "remedy.outcome.audit_undo"
            if o.status == "applied" and p.undoable
            else "remedy.outcome.audit"
        )
        out.append(i18n.t(key, lang, run=o.run))
    return "\n".join(out)


def outcome_json(o: Outcome, p: Plan | None, lang: str, why: Why | None = None) -> dict[str, Any]:
    return {
        "remedy": p.remedy.id if p else None,
        "target": p.target.subject if p else None,
        "rule": p.finding.rule if p and p.finding else None,
        "undo_of": p.undo_of if p else None,
        "steps": [s.to_dict() for s in p.steps] if p else [],
        "status": o.status,
        "audit_run": o.run,
        "error": o.error.text(lang) if o.error else (why.text(lang) if why else None),
        "verification": o.verification,
        "observed": o.observed,
        "remaining": o.remaining,
        "notes": [n.text(lang) for n in o.notes],
        "fixed": o.fixed,
    }


def manual(remedy: Remedy, t: Target | None, lang: str) -> str:
    steps = steps_of(remedy, t, lang)
    head = [i18n.t("remedy.manual_only", lang, id=remedy.id), f"  {remedy.title(lang)}"]
    return "\n".join(head + [f"  {n}. {s}" for n, s in enumerate(steps, 1)])


# ------------------------------------------------------------------ remedy log


def log(rows: list[Row], lang: str) -> str:
    if not rows:
        return i18n.t("remedy.log.none", lang)
    out = []
    for r in rows:
        change = ""
        if r.step in ("planned", "applied", "undone", "rolled-back", "verified"):
            before = show_values(r.before) if r.step != "verified" else ""
            change = (
                f" {before} -> {show_values(r.after)}" if before else f" {show_values(r.after)}"
            )
        undo = f" (undo of {r.undo_of})" if r.undo_of is not None and r.step == "planned" else ""
        what = f"#{r.id} run {r.run} {r.time} {r.step:<11} {r.remedy}{undo} {r.target}"
        tail = " ".join(x for x in (r.outcome, r.message) if x)
        out.append(f"{what}{change.rstrip()}" + (f" [{tail}]" if tail else ""))
    return "\n".join(out)
