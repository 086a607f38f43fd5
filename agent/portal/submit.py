"""``phonediag portal submit``: the portal's side, for technicians and tests. Sign a job with
the portal's private key, publish it (QoS 1) on ``agents/{agent}/jobs`` and wait for the
agent's signed result on ``agents/{agent}/results/{job}``.

The subscriptions (the result, the progress, the agent's retained public key on ``key``)
are made *before* the job is published, so the answer cannot slip by. A result counts only
once its signature is the agent's (:func:`jobs.check_result` with the key read from
``key``); one that is not is reported and ignored. The session outlives a broker restart
(MQTT 5 session expiry): a result the agent sends while this side is reconnecting is
queued for it by the broker.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from agent.portal import jobs, keys, mqtt, topic

SETUP_S = 15.0  # connecting, subscribing, publishing: each within this
KEY_WAIT_S = 3.0  # a result that came before the agent's key: how long to wait for the key


@dataclass
class Answer:
    """What came back: ``result`` (the verified body) or None when nothing did in time;
    ``message`` (the signed result message as received); ``job`` (the job published);
    ``progress`` (the progress messages seen); ``ignored`` (why results were refused)."""

    job: dict[str, Any]
    result: dict[str, Any] | None = None
    message: dict[str, Any] | None = None
    progress: list[dict[str, Any]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def params_for(
    kind: str,
    *,
    symptom: str | None = None,
    subnets: tuple[str, ...] | list[str] = (),
    remedy: str | None = None,
    device: str | None = None,
    run: str | None = None,
    lang: str | None = None,
) -> dict[str, Any]:
    """The job's ``params`` from the command line's options (ValueError for an option the
    kind does not take or one it needs)."""
    given = {"symptom": symptom, "subnets": list(subnets) or None, "remedy": remedy,
             "device": device, "run": run, "lang": lang}  # fmt: skip
    if kind == "report" and run is not None:
        given["run"] = int(run) if run.isdigit() else run
    required, allowed = jobs.PARAMS[kind]
    params = {k: v for k, v in given.items() if v is not None}
    extra = sorted(k for k in params if k not in allowed)
    if extra:
        raise ValueError(f"a {kind} job takes no {', '.join('--' + k for k in extra)}")
    missing = [k for k in required if k not in params]
    if missing:
        raise ValueError(f"a {kind} job needs {', '.join('--' + k for k in missing)}")
    return params


def submit(
    broker: mqtt.Broker,
    private_key: Any,
    agent: str,
    kind: str,
    params: dict[str, Any],
    *,
    expires: float = 600.0,
    timeout: float = 300.0,
    on_progress: Callable[[dict[str, Any]], None] | None = None,
) -> Answer:
    """Sign and publish a job, wait up to ``timeout`` s for its verified result. ValueError
    for a job that would be malformed; mqtt.BrokerError when the broker cannot be used."""
    message = jobs.make_job(private_key, agent, kind, params, ttl=timedelta(seconds=expires))
    answer = Answer(job=message["job"])
    job_id = message["job"]["id"]
    client_id = f"portal-submit-{uuid.uuid4().hex[:12]}"
    session_s = int(timeout + 2 * SETUP_S)
    with mqtt.Session(client_id, broker, session_s=session_s) as session:
        session.open(SETUP_S)
        key_topic = topic(agent, "key")
        results, progress = topic(agent, "results", job_id), topic(agent, "progress", job_id)
        session.subscribe([key_topic, results, progress], SETUP_S)
        session.publish(topic(agent, "jobs"), jobs.encode(message), SETUP_S)
        agent_key = None
        waiting: list[bytes] = []  # results that came before the key
        deadline = time.monotonic() + timeout
        while answer.result is None:
            now = time.monotonic()
            until = min(deadline, now + KEY_WAIT_S) if waiting else deadline
            msg = session.get(until)
            if msg is None:
                if waiting and agent_key is None and time.monotonic() < deadline:
                    answer.ignored.append("a result came, but the agent's key is unknown")
                    waiting.clear()
                    continue
                if time.monotonic() >= deadline:
                    break
                continue
            if msg.topic == key_topic:
                try:
                    agent_key = keys.parse_public(bytes(msg.payload))
                except keys.BadKey as e:
                    answer.ignored.append(f"the agent's published key is unusable: {e}")
                    continue
                pending, waiting = waiting, []
                for raw in pending:
                    _take(answer, raw, agent_key, agent, job_id)
            elif msg.topic == progress:
                doc = _json(bytes(msg.payload))
                if isinstance(doc, dict):
                    answer.progress.append(doc)
                    if on_progress is not None:
                        on_progress(doc)
            elif msg.topic == results:
                if agent_key is None:
                    waiting.append(bytes(msg.payload))
                else:
                    _take(answer, bytes(msg.payload), agent_key, agent, job_id)
    return answer


def _json(raw: bytes) -> Any:
    try:
        return jobs.loads(raw)
    except ValueError:
        return None


def _take(answer: Answer, raw: bytes, agent_key: Any, agent: str, job_id: str) -> None:
    """Keep the result if it is the agent's, for this job; else say why it was ignored."""
    if answer.result is not None:
        return
    try:
        answer.result = jobs.check_result(raw, agent_key=agent_key, agent_id=agent, job_id=job_id)
        answer.message = jobs.loads(raw)
    except jobs.Rejected as e:
        answer.ignored.append(f"a result was ignored: {e}")


# ------------------------------------------------------------------ the command's output


def password(path: str) -> str:
    """The password in ``path`` (its first line); ValueError when there is none."""
    with open(path, encoding="utf-8") as f:
        line = f.readline().rstrip("\r\n")
    if not line:
        raise ValueError(f"{path}: no password in it")
    return line


def why(e: BaseException) -> str:
    """An input error in a few words (an OSError names its file)."""
    if isinstance(e, OSError) and e.filename:
        return f"{e.filename}: {e.strerror or e}"
    return str(e)


def progress_line(doc: dict[str, Any]) -> str:
    """One progress message for standard error: ``  [start] discover.sip``."""
    return f"  [{doc.get('event', '?')}] {doc.get('step', '?')}"


def render(answer: Answer, lang: str, as_json: bool) -> str:
    """The verified result: the signed message as JSON, or text for a person (the status,
    why, and the report or the remedy's outcome)."""
    import json

    from agent import i18n

    if as_json:
        return json.dumps(answer.message, ensure_ascii=False, indent=2)
    body = answer.result or {}
    status = body.get("status", "?")
    shown = i18n.t(f"portal.status.{status}", lang)
    job, kind, agent = body.get("job"), answer.job.get("kind"), body.get("agent")
    lines = [i18n.t("portal.result", lang, job=job, kind=kind, agent=agent, status=shown)]
    if body.get("reason"):
        lines.append(i18n.t(f"portal.reject.{body['reason']}", lang))
    if body.get("message"):
        lines.append(f"  {body['message']}")
    if "exit_code" in body:
        lines.append(i18n.t("portal.exit_code", lang, code=body["exit_code"]))
    text = "\n".join(lines)
    if isinstance(body.get("report"), dict):
        text += "\n\n" + _report_text(body["report"], lang, answer.job.get("kind") != "discover")
    if isinstance(body.get("remedy"), dict):
        text += "\n\n" + json.dumps(body["remedy"], ensure_ascii=False, indent=2)
    return text


def _report_text(doc: dict[str, Any], lang: str, diagnosis: bool) -> str:
    """A report (the agent's JSON) as ``phonediag diagnose`` prints it."""
    import io
    import json

    try:
        from agent.history import load_report
        from agent.report import text

        buf = io.StringIO()
        text.render(load_report(doc), lang, text.console(buf), diagnosis)
        return buf.getvalue().rstrip("\n")
    except Exception:  # a report of another version: show it as it came
        return json.dumps(doc, ensure_ascii=False, indent=2)
