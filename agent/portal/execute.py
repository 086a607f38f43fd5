"""Carry out portal jobs: :func:`run_job` runs one checked job and returns its result body;
:class:`Worker` is what the transport (agent/portal/serve.py) calls: accept a message,
run the job, sign and spool the result, mark it delivered.

What each kind does, as the same command would on the office PC:

- ``diagnose``: ``phonediag diagnose --json [--symptom S] [--subnet ...]``: the report,
  stored in the history as ``portal:diagnose``; exit code 0 or 1;
- ``discover``: ``phonediag discover --json``: the report, stored as ``portal:discover``;
- ``remedy``: ``phonediag remedy apply ID --device D --yes --json``, consent recorded in
  the audit log with origin ``portal`` (the runner checks the allow-list again): diagnose,
  plan, apply, verify; the outcome as ``--json`` prints it; exit code 0 when fixed;
- ``report``: a stored run's JSON report (``phonediag report show ID --json``).

Every job runs within :func:`job_deadline`; whatever goes wrong becomes a ``failed``
result with its reason (never an exception out of :func:`run_job`); a refusal found while
running (a subnet no longer connected...) becomes ``rejected``. Result messages are in
English; reports and remedy outcomes are in the job's language.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from agent import i18n
from agent.portal import jobs, policy
from agent.portal.jobs import Job, Rejected
from agent.portal.state import Outgoing, State

log = logging.getLogger("agent.portal")

# The pipeline's progress callback: ("start" | "done" | "failed", step name).
Progress = Callable[[str, str], None]
EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_CANNOT = 0, 1, 2, 3  # the CLI's (agent/cli.py)
GRACE_S = 15.0  # beyond the run's own deadline: setting up, rendering, storing
REMEDY_ACTIONS_S = 120.0  # a remedy's own steps (each has its timeouts)


class Failed(Exception):
    """The job could not be carried out: ``message`` (English) and the exit code the
    same command would have given."""

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message, self.exit_code = message, exit_code


def job_deadline(job: Job, cfg: Any) -> float:
    """Seconds a job may take: a diagnosis or discovery, the run's ``[run] deadline`` (which
    the pipeline keeps itself) and :data:`GRACE_S`; a stored report, the deadline; a
    remedy, three diagnoses (before, and up to two to verify) plus the remedy's settling
    time (a phone restarting) and :data:`REMEDY_ACTIONS_S` for its own steps."""
    if job.kind == "remedy":
        from agent.remedies import get

        remedy = get(job.remedy or "")
        settle = remedy.settle_s if remedy is not None else 0.0
        return 3 * cfg.deadline + settle + REMEDY_ACTIONS_S
    if job.kind == "report":
        return cfg.deadline
    return cfg.deadline + GRACE_S


def _safe(progress: Progress | None) -> Progress:
    """A progress callback that can never break the job."""
    broken = progress is None

    def tell(event: str, step: str) -> None:
        nonlocal broken
        if broken:
            return
        try:
            progress(event, step)  # type: ignore[misc]
        except Exception:
            broken = True

    return tell


async def run_job(job: Job, cfg: Any, progress: Progress | None = None) -> dict[str, Any]:
    """Carry out ``job`` (already checked: :func:`jobs.check`) and return its result body
    (unsigned): ``done`` with the report / outcome, ``failed`` with why, or ``rejected``.
    Never raises, but for cancellation (the agent stopping: the job is then left
    ``running`` and reported ``interrupted`` at the next start)."""
    started = jobs.now_utc()
    tell = _safe(progress)
    step = f"job.{job.kind}"
    tell("start", step)
    fields: dict[str, Any] = {}
    status = "done"
    deadline = job_deadline(job, cfg)
    try:
        async with asyncio.timeout(deadline) as limit:
            fields = await _RUN[job.kind](job, cfg, i18n.detect(job.lang), tell)
    except Rejected as e:
        status, fields = "rejected", {"reason": e.code, "message": e.message}
    except Failed as e:
        status, fields = "failed", {"message": e.message, "exit_code": e.exit_code}
    except TimeoutError as e:
        status = "failed"
        why = f"did not finish within {deadline:g} s" if limit.expired() else _message(e)
        fields = {"message": why}
    except Exception as e:  # a job never crashes the agent
        log.exception("portal job %s (%s) failed", job.id, job.kind)
        status, fields = "failed", {"message": _message(e)}
    tell("done" if status == "done" else "failed", step)
    return jobs.result_body(
        job.id, job.agent, status, started_at=started, finished_at=jobs.now_utc(), **fields
    )


def _message(e: BaseException) -> str:
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _networks(job: Job, cfg: Any):
    from agent import scope

    try:
        return policy.networks(job, cfg)
    except scope.ScopeError as e:
        raise Failed(i18n.t("scope.none", "en", why=e.text("en")), EXIT_CANNOT) from None


def _store(cfg: Any, report: Any, text: str, command: str, lang: str, code: int, job: Job):
    """Keep the run in the history (never fails the job: history.record warns)."""
    from datetime import UTC, timedelta

    from agent import history

    started = datetime.now(UTC) - timedelta(seconds=report.duration_s)
    options = {"job": job.id, "subnet": job.subnets, "symptom": job.symptom}
    return history.record(cfg, text, command, lang, code, started, options)


async def _diagnose(job: Job, cfg: Any, lang: str, tell: Progress) -> dict[str, Any]:
    from agent import pipeline
    from agent.report import json as json_report

    nets = _networks(job, cfg)
    answers = {"user.symptom": job.symptom} if job.symptom else {}
    report = await pipeline.run_diagnose(cfg, nets, lang, answers, job.symptom, False, tell)
    text = json_report.render(report)
    problems = any(f.severity in ("critical", "warning") for f in report.findings)
    code = EXIT_PROBLEMS if problems else EXIT_OK
    run = _store(cfg, report, text, "portal:diagnose", lang, code, job)
    return {"report": json.loads(text), "exit_code": code, "run": run}


async def _discover(job: Job, cfg: Any, lang: str, tell: Progress) -> dict[str, Any]:
    from agent import pipeline
    from agent.report import json as json_report

    nets = _networks(job, cfg)
    report = await pipeline.run_discover(cfg, nets, tell)
    text = json_report.render(report)
    run = _store(cfg, report, text, "portal:discover", lang, EXIT_OK, job)
    return {"report": json.loads(text), "exit_code": EXIT_OK, "run": run}


async def _report(job: Job, cfg: Any, lang: str, tell: Progress) -> dict[str, Any]:
    from agent import history, store

    try:
        with history.History(store.path_for(cfg.store_path)) as h:
            run = h.resolve(str(job.run))
    except (store.StoreError, OSError, RuntimeError) as e:
        raise Failed(f"the history cannot be read: {e}", EXIT_USAGE) from None
    if run is None:
        raise Failed(f"no stored run {job.run}", EXIT_USAGE)
    message = f"run {run.id}: {run.command}, started {run.started}"
    return {"report": run.document(), "run": run.id, "exit_code": EXIT_OK, "message": message}


async def _remedy(job: Job, cfg: Any, lang: str, tell: Progress) -> dict[str, Any]:
    from agent import pipeline, scope, store
    from agent.remedies import allowed_for_portal, get, offers, render, resolve_subject
    from agent.remedies.audit import Audit
    from agent.remedies.base import RemedyError
    from agent.remedies.runner import Runner

    remedy = get(job.remedy or "")
    if remedy is None or not allowed_for_portal(cfg, remedy.id):
        raise Rejected("remedy-not-allowed", f"remedy {job.remedy!r} is not in portal_allowed")
    policy.check_device(job.device, cfg)
    try:
        nets = policy.own_scope(cfg)
    except scope.ScopeError as e:
        raise Failed(i18n.t("scope.none", "en", why=e.text("en")), EXIT_CANNOT) from None
    report = await pipeline.run_diagnose(cfg, nets, lang, progress=tell)
    device = job.device or "site"
    subject = resolve_subject(report, device)
    if subject is None:
        raise Failed(i18n.t("remedy.no_device", "en", device=device), EXIT_USAGE)
    try:
        offer = offers.select(report, cfg, remedy, subject)
    except RemedyError as e:
        raise Failed(e.why.text("en"), EXIT_USAGE) from None
    if offer.status != "ready":
        why = offer.why.text("en") if offer.why else offer.status
        raise Failed(f"remedy {remedy.id} cannot be carried out on {subject}: {why}", 1)
    try:
        audit = Audit(store.path_for(cfg.store_path))
    except (store.StoreError, OSError, RuntimeError) as e:
        raise Failed(i18n.t("remedy.store_error", "en", why=e), EXIT_PROBLEMS) from None
    try:
        runner = Runner(cfg, audit, origin="portal")
        tell("start", "remedy.plan")
        try:
            plan = await runner.plan(remedy, offer.target, offer.finding)
        except RemedyError as e:
            tell("failed", "remedy.plan")
            raise Failed(f"remedy {remedy.id} on {subject}: {e.why.text('en')}", 1) from None
        tell("done", "remedy.plan")
        run = runner.record_plan(plan)
        try:
            runner.consent(run, plan, True, f"portal job {job.id} (allow-listed)")
        except RemedyError as e:
            raise Rejected("remedy-not-allowed", e.why.text("en")) from None

        async def rediagnose():
            return await pipeline.run_diagnose(cfg, nets, lang)

        tell("start", "remedy.apply")
        outcome = await runner.apply(run, plan, rediagnose)
        tell("done" if outcome.status == "applied" else "failed", "remedy.apply")
    except store.StoreError as e:
        raise Failed(i18n.t("remedy.store_error", "en", why=e), EXIT_PROBLEMS) from None
    finally:
        audit.close()
    return {
        "remedy": render.outcome_json(outcome, plan, lang),
        "exit_code": EXIT_OK if outcome.fixed else EXIT_PROBLEMS,
    }


_RUN = {"diagnose": _diagnose, "discover": _discover, "remedy": _remedy, "report": _report}


# ------------------------------------------------------------------ the transport's glue


class Worker:
    """Everything the transport does with jobs and results, on one store.

    ``accept(raw)`` (synchronous, quick: call it before acknowledging the MQTT message)
    checks the job and records it; ``await run(job)`` carries it out (one job at a time,
    in order) and spools its signed result; ``outbox()`` lists the results to publish
    (QoS 1) and ``mark_delivered(job, seq)`` is called on each PUBACK. ``start()`` is
    called once before connecting: jobs the last process left unfinished become
    ``interrupted`` results. ``notify`` (optional) is called, with no argument, whenever
    a result is added to the outbox (from the calling thread)."""

    def __init__(
        self,
        cfg: Any,
        state: State,
        agent_id: str,
        private_key: Any,
        portal_key: Any,
        *,
        notify: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = jobs.now_utc,
    ) -> None:
        self.cfg, self.state, self.agent_id = cfg, state, agent_id
        self.private_key, self.portal_key = private_key, portal_key
        self.notify, self.clock = notify, clock
        self._lock: asyncio.Lock | None = None

    def _notify(self) -> None:
        if self.notify is not None:
            try:
                self.notify()
            except Exception:
                log.exception("portal: the outbox notification failed")

    def start(self) -> list[str]:
        """Report the jobs a previous run left unfinished; the job ids."""
        now = self.clock()
        left = self.state.interrupted(self.private_key, self.agent_id, now)
        self.state.purge(now)
        for job_id in left:
            log.warning("portal job %s was interrupted (the agent stopped)", job_id)
        if left:
            self._notify()
        return left

    def accept(self, raw: bytes) -> Job | None:
        """The job to run, or None: refused (its rejection spooled when it names a job),
        or the same job again (its result, if any, queued again)."""
        now = self.clock()
        try:
            job = jobs.check(
                raw, agent_id=self.agent_id, portal_key=self.portal_key, state=self.state,
                cfg=self.cfg, now=now,
            )  # fmt: skip
        except Rejected as e:
            self._refused(e, now)
            return None
        except Exception:  # the store failing, a bug: never run a job not recorded
            log.exception("portal: a job message could not be checked")
            return None
        log.info("portal job %s accepted: %s %s", job.id, job.kind, json.dumps(job.params))
        return job

    def _refused(self, e: Rejected, now: datetime) -> None:
        log.warning("portal job %s refused: %s", e.job_id or "(no id)", e)
        try:
            if e.duplicate:
                if e.job_id and self.state.requeue(e.job_id):
                    self._notify()
                return
            if e.job_id is None:
                return
            if not e.verified and self.state.job(e.job_id) is not None:
                return  # an unverified message never answers for a job we admitted
            body = jobs.rejection(e, self.agent_id, now)
            if body is None:
                return
            message = jobs.encode(jobs.sign_result(self.private_key, body))
            if self.state.spool(e.job_id, message, now):
                self._notify()
        except Exception:
            log.exception("portal: the rejection of job %s could not be spooled", e.job_id)

    async def run(
        self, job: Job, progress: Callable[[dict[str, Any]], None] | None = None
    ) -> dict[str, Any]:
        """Carry out an accepted job (after the one before it), spool its signed result and
        return the result message. ``progress`` gets each progress message
        (``{"job","event","step","at"}``) to publish on ``agents/{agent}/progress/{job}``.
        A job that expired while it waited for its turn is not run (``expired``)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            now = self.clock()
            if now >= job.expires_at:
                body = jobs.result_body(
                    job.id, job.agent, "rejected", started_at=now, finished_at=now,
                    reason="expired", message="the job expired while waiting for its turn",
                )  # fmt: skip
            else:
                self.state.start(job.id, now)

                def tell(event: str, step: str) -> None:
                    if progress is not None:
                        progress(jobs.progress_message(job.id, event, step, self.clock()))

                body = await run_job(job, self.cfg, tell)
            message = jobs.sign_result(self.private_key, body)
            self.state.finish(job.id, body, jobs.encode(message), self.clock())
        log.info("portal job %s: %s", job.id, body["status"])
        self._notify()
        return message

    def outbox(self, limit: int | None = None) -> list[Outgoing]:
        """The results to publish, oldest first."""
        return self.state.outbox(limit)

    def mark_delivered(self, job_id: str, seq: int | None = None) -> bool:
        """The broker acknowledged this result (PUBACK)."""
        return self.state.mark_delivered(job_id, seq, self.clock())
