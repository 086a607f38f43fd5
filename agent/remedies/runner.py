"""Carry out a remedy: plan (read the "before" values), consent, act, read back, verify by
diagnosing again; roll back what was done when a step fails; undo later from the audit log.
Every step is written to the audit log (agent/remedies/audit.py) before the next one.

Safety: nothing is written before a recorded consent; a portal job acts only for a remedy
allow-listed in the configuration; a step that fails leaves the target as it was (the
steps done before it are put back, and the failed one too when its outcome is unknown,
each checked by reading the value again) and the outcome says so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

from agent.config import Config
from agent.model import UNKNOWN, Finding, Report
from agent.net.http import HttpError
from agent.provider.api import ProviderError
from agent.remedies import line_options, phone_reboot, phone_settings, reboot, reprovision
from agent.remedies.audit import Audit
from agent.remedies.base import Env, RemedyError, Step, Target, Why, show_values, subject_of
from agent.remedies.base import target as target_of
from agent.remedies.spec import Remedy
from agent.remedies.spec import get as get_remedy

# Remedy action -> the module that plans it; step action -> the module that runs it.
PLANNERS: dict[str, ModuleType] = {
    "line-options": line_options,
    "phone-settings": phone_settings,
    "phone-reboot": phone_reboot,
    "provider-reboot": reboot,
    "reprovision": reprovision,
}
EXECUTORS: dict[str, ModuleType] = {
    line_options.ACTION: line_options,
    phone_settings.ACTION: phone_settings,
    phone_reboot.ACTION: phone_reboot,
    reboot.ACTION: reboot,
    reprovision.ACTION: reprovision,
}
FAILURES = (ProviderError, HttpError, TimeoutError, RemedyError, ValueError, OSError)
Rediagnose = Callable[[], Awaitable[Report]]
ByHand = Callable[[list[Why]], Awaitable[None]]
FIRST_CHECK_S = 5.0  # a restarting phone is down a little after it said OK
RECHECK_S = 15.0
T = TypeVar("T")


def allowed_for_portal(cfg: Config, remedy_id: str) -> bool:
    """A portal job may run ``remedy_id`` only when ``[remedies] portal_allowed`` lists it
    and it is a remedy that acts (a manual one has nothing to run)."""
    remedy = get_remedy(remedy_id)
    return remedy is not None and not remedy.manual and remedy_id in cfg.remedies_portal_allowed


@dataclass
class Plan:
    remedy: Remedy
    target: Target
    finding: Finding | None
    steps: list[Step]
    undo_of: int | None = None  # an undo: the operation it undoes

    @property
    def undoable(self) -> bool:
        return self.undo_of is None and all(s.undoable for s in self.steps)

    def before(self) -> dict[str, Any]:
        return {k: v for s in self.steps for k, v in s.before.items()}

    def after(self) -> dict[str, Any]:
        return {k: v for s in self.steps for k, v in s.set.items()}


@dataclass
class Outcome:
    status: str  # declined | applied | failed | undone
    run: int | None
    error: Why | None = None  # why it failed (safe to show)
    verification: str | None = None  # verified | still-present | not-taken | unverified
    observed: dict[str, Any] = field(default_factory=dict)  # the verify facts afterwards
    remaining: list[str] = field(default_factory=list)  # the target's findings afterwards
    notes: list[Why] = field(default_factory=list)  # rollback, manual steps, codes
    by_hand: list[Why] = field(default_factory=list)  # steps left to a person (fallbacks)

    @property
    def fixed(self) -> bool:
        return self.status == "undone" or (
            self.status == "applied" and self.verification == "verified"
        )


class Runner:
    def __init__(
        self, cfg: Config, audit: Audit, origin: str = "cli", env: Env | None = None
    ) -> None:
        self.cfg, self.audit, self.origin = cfg, audit, origin
        self.env = env or Env(cfg)

    # -------------------------------------------------------------- plan and consent

    async def plan(self, remedy: Remedy, target: Target, finding: Finding | None) -> Plan:
        """Read what the remedy would change; RemedyError when it cannot (nothing written)."""
        module = PLANNERS.get(remedy.action)
        if module is None:
            raise RemedyError(Why("remedy.why.manual"))
        why = module.available(remedy, target, self.cfg)
        if why is not None:
            raise RemedyError(why)
        return Plan(remedy, target, finding, await module.plan(remedy, target, self.env))

    def record_plan(self, plan: Plan) -> int:
        """The ``planned`` row; its id is the operation's (``remedy undo`` takes it)."""
        return self.audit.add(
            None, "planned", plan.remedy.id, plan.target.subject, line=plan.target.line,
            rule=plan.finding.rule if plan.finding else None,
            steps=[s.to_dict() for s in plan.steps], before=plan.before(), after=plan.after(),
            origin=self.origin, undo_of=plan.undo_of,
        )  # fmt: skip

    def _row(self, run: int, plan: Plan, step: str, **kw: Any) -> int:
        return self.audit.add(
            run, step, plan.remedy.id, plan.target.subject, line=plan.target.line,
            rule=plan.finding.rule if plan.finding else None, origin=self.origin,
            undo_of=plan.undo_of, **kw,
        )  # fmt: skip

    def consent(self, run: int, plan: Plan, yes: bool, how: str) -> None:
        """Record the person's answer (or the portal's allow-list) before anything is done."""
        if yes and self.origin == "portal" and not allowed_for_portal(self.cfg, plan.remedy.id):
            self._row(
                run, plan, "consent", outcome="no", message="not in [remedies] portal_allowed"
            )
            raise RemedyError(Why("remedy.why.portal_not_allowed", {"id": plan.remedy.id}))
        self._row(run, plan, "consent", outcome="yes" if yes else "no", message=how)

    # -------------------------------------------------------------- act

    async def apply(
        self,
        run: int,
        plan: Plan,
        rediagnose: Rediagnose | None,
        settle: float | None = None,
        by_hand: ByHand | None = None,
    ) -> Outcome:
        """Carry out a consented plan, then verify it with new diagnoses for up to ``settle``
        seconds (default: the remedy's own wait, for a phone that restarts): the first a
        few seconds after, then again until the finding is gone or the time is up. A step
        left to a person is first handed to ``by_hand`` (which returns once it is done)."""
        outcome = await self._execute(run, plan, "applied")
        if outcome.status != "applied" or rediagnose is None:
            return outcome
        if outcome.by_hand and by_hand is not None:
            await by_hand(outcome.by_hand)
        wait = plan.remedy.settle_s if settle is None else settle
        start, delay = time.monotonic(), min(wait, FIRST_CHECK_S)
        while True:
            await asyncio.sleep(delay)
            try:
                report = await rediagnose()
            except Exception as e:  # the diagnosis never raises; a broken network might
                outcome.verification = "unverified"
                outcome.error = Why("remedy.error.raw", {"why": f"{type(e).__name__}: {e}"})
                break
            self._verify(plan, report, outcome)
            left = wait - (time.monotonic() - start)
            if outcome.verification == "verified" or left <= 0:
                break
            delay = min(RECHECK_S, left)
        self._row(
            run, plan, "verified", after=outcome.observed, outcome=outcome.verification or "",
            message=", ".join(outcome.remaining),
        )  # fmt: skip
        return outcome

    async def _timed(self, aw: Awaitable[T]) -> T:
        """One network operation of an action, within a deadline (each action also has its
        own, shorter timeouts: this is the safety net)."""
        async with asyncio.timeout(self.cfg.timeout * 10 + 5):
            return await aw

    async def _execute(self, run: int, plan: Plan, done_step: str) -> Outcome:
        done: list[Step] = []
        notes: list[Why] = []
        left: list[Why] = []  # steps a person must do
        results: dict[str, Any] = {}
        for planned in plan.steps:
            step = planned
            module = EXECUTORS[step.action]
            try:
                result = await self._timed(module.run(step, self.env))
                if step.undoable:  # a device's "OK" is not proof: read it again
                    now = await self._timed(module.read(step, self.env))
                    if any(now.get(k) != v for k, v in step.set.items()):
                        raise RemedyError(Why("remedy.why.not_taken", {"now": show_values(now)}))
            except FAILURES as e:
                falls_back = getattr(module, "falls_back", None)
                if step.fallback and falls_back is not None and falls_back(e):
                    tried = [_message(e)]
                    if step.alternative:  # another way to do it first (one level)
                        other = Step.from_dict(step.alternative)
                        other_module = EXECUTORS[other.action]
                        try:
                            results.update(await self._timed(other_module.run(other, self.env)))
                            done.append(other)
                            continue
                        except FAILURES as e2:
                            if not getattr(other_module, "falls_back", lambda _e: False)(e2):
                                return await self._failed(
                                    run, plan, done, other, e2, other_module, notes
                                )
                            tried.append(_message(e2))
                    left.append(Why(step.fallback, {"why": "; ".join(tried)}))
                    continue
                return await self._failed(run, plan, done, step, e, module, notes)
            code = result.pop("activation_code", None)  # shown once, never audited
            if code:
                notes.append(Why("remedy.note.activation_code", {"code": code}))
            results.update(result)
            done.append(step)
        self._row(run, plan, done_step, steps=[s.to_dict() for s in plan.steps],
                  before=plan.before(), after={**plan.after(), **results}, outcome="ok",
                  message="; ".join(n.text("en") for n in [*left, *notes]))  # fmt: skip
        return Outcome(done_step, run, notes=[*left, *notes], by_hand=left)

    async def _failed(
        self,
        run: int,
        plan: Plan,
        done: list[Step],
        step: Step,
        exc: BaseException,
        module: ModuleType,
        notes: list[Why],
    ) -> Outcome:
        error = _why(exc)
        certain = module.surely_not_applied(exc)
        self._row(run, plan, "failed", before=plan.before(), after=plan.after(),
                  outcome="failed", message=f"{step.action}: {error.text('en')}")  # fmt: skip
        undo = done + ([] if certain else [step])
        back = await self._rollback(undo) if undo else []
        if back:
            restored = {k: v for s in undo for k, v in s.before.items()}
            said = "; ".join(w.text("en") for w in back)
            self._row(run, plan, "rolled-back", before=plan.after(), after=restored,
                      outcome=_worst(back), message=said)  # fmt: skip
        notes = [*notes, *back] or [Why("remedy.note.unchanged")]
        return Outcome("failed", run, error=error, notes=notes)

    async def _rollback(self, steps: list[Step]) -> list[Why]:
        """Put back each step's "before" values, newest first, checking each by reading."""
        out: list[Why] = []
        for step in reversed(steps):
            module = EXECUTORS[step.action]
            what = step.action
            if not step.undoable:
                out.append(Why("remedy.rollback.cannot", {"what": what}))
                continue
            try:
                now = await self._timed(module.read(step, self.env))
                if all(now.get(k) == step.before.get(k) for k in step.set):
                    out.append(Why("remedy.rollback.unchanged", {"what": what}))
                    continue
                back = Step(step.action, step.where, module.undo_values(step), now, True)
                await self._timed(module.run(back, self.env))
                now = await self._timed(module.read(step, self.env))
                ok = all(now.get(k) == step.before.get(k) for k in step.set)
                out.append(Why("remedy.rollback.restored" if ok else "remedy.rollback.unknown",
                               {"what": what}))  # fmt: skip
            except FAILURES:
                out.append(Why("remedy.rollback.unknown", {"what": what}))
        return out

    # -------------------------------------------------------------- verify

    def _verify(self, plan: Plan, report: Report, outcome: Outcome) -> None:
        subject = plan.target.subject
        seen = subject == "site" or any(f.subject == subject for f in report.facts)
        after = target_of(report, subject)
        outcome.observed = {k: _plain(after.facts.get(k, UNKNOWN)) for k in plan.remedy.verify}
        outcome.remaining = [f.rule for f in after.findings]
        rule = plan.finding.rule if plan.finding else None
        still = any(f.rule == rule for f in report.findings if subject_of(f) == subject)
        if not seen or any(after.facts.get(k, UNKNOWN) is UNKNOWN for k in plan.remedy.verify):
            outcome.verification = "unverified"
        elif any(outcome.observed[k] != v for k, v in plan.remedy.verify.items()):
            outcome.verification = "not-taken"
        else:
            outcome.verification = "still-present" if still else "verified"

    # -------------------------------------------------------------- undo

    async def plan_undo(self, row_id: int) -> Plan:
        """The plan that puts back what operation ``row_id`` (or the one holding that row)
        changed; RemedyError when there is none, it cannot be undone, or the values were
        changed since (then nothing is written)."""
        run = self.audit.run_of(row_id)
        if run is None:
            raise RemedyError(Why("remedy.why.no_audit", {"id": row_id}))
        rows = self.audit.rows(run)
        first = rows[0]
        remedy = get_remedy(first.remedy)
        if first.undo_of is not None:
            raise RemedyError(Why("remedy.why.is_undo", {"run": run, "of": first.undo_of}))
        if remedy is None or not any(r.step == "applied" for r in rows):
            raise RemedyError(Why("remedy.why.not_applied", {"run": run}))
        undone = self.audit.undone_by(run)
        if undone is not None:
            raise RemedyError(Why("remedy.why.already_undone", {"run": run, "by": undone}))
        steps = [Step.from_dict(s) for s in first.steps]
        if not steps or not all(s.undoable for s in steps):
            raise RemedyError(Why("remedy.why.no_undo", {"id": remedy.id}))
        back: list[Step] = []
        for step in reversed(steps):
            module = EXECUTORS[step.action]
            try:
                now = await self._timed(module.read(step, self.env))
            except FAILURES as e:
                raise RemedyError(Why("remedy.why.cannot_read", {"why": _message(e)})) from None
            changed = {k: now.get(k) for k, v in step.set.items() if now.get(k) != v}
            if changed:
                raise RemedyError(Why("remedy.why.changed_since", {"now": show_values(changed)}))
            wanted = {k: v for k, v in module.undo_values(step).items() if now.get(k) != v}
            back.append(
                Step(step.action, step.where, wanted, {k: now.get(k) for k in wanted}, True)
            )
        target = Target(first.target, None, {"line.number": first.line} if first.line else {}, [])
        return Plan(remedy, target, None, back, undo_of=run)

    async def undo(self, run: int, plan: Plan) -> Outcome:
        """Carry out a consented undo plan (each step read back)."""
        return await self._execute(run, plan, "undone")


def _why(exc: BaseException) -> Why:
    if isinstance(exc, RemedyError):
        return exc.why
    if isinstance(exc, ProviderError) and exc.kind == "not-supported":
        return Why("remedy.why.not_supported", {"why": str(exc)})
    if isinstance(exc, ProviderError) and exc.kind == "not-granted":
        return Why("remedy.why.not_granted", {"why": str(exc)})
    return Why("remedy.error.raw", {"why": _message(exc)})


def _message(exc: BaseException) -> str:
    if isinstance(exc, RemedyError):
        return exc.why.text("en")
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__


def _worst(notes: list[Why]) -> str:
    keys = [n.key.rsplit(".", 1)[-1] for n in notes]
    for word in ("unknown", "cannot", "restored", "unchanged"):
        if word in keys:
            return word
    return ""


def _plain(value: Any) -> Any:
    return None if value is UNKNOWN else value
