"""Portal mode: the agent keeps one outbound connection to an MQTT broker and carries out
jobs signed by the portal (docs/portal-protocol.md).

The core, independent of the transport:

- ``keys``: Ed25519 keys (the agent's, the portal's), the canonical JSON form, signatures;
- ``jobs``: the job and result messages (``schemas/*.json``), :func:`jobs.check` and the
  rejection codes (:class:`jobs.Rejected`);
- ``policy``: what a job may ask of this agent (its own subnets only, allow-listed remedies);
- ``state``: the jobs, the seen nonces and the outbox of results, in the local store;
- ``execute``: run one job (:func:`execute.run_job`) and the glue the transport calls
  (:class:`execute.Worker`: accept, run, spool, deliver).

The transport (``mqtt``, ``serve``, ``submit``, ``enroll``) connects these to the broker.
This module stays import-light: ``phonediag --help`` must start fast.
"""

from __future__ import annotations

import re

PREFIX = "phonediag/v1"
AGENT_ID = re.compile(r"[a-z0-9][a-z0-9-]{2,62}")


def valid_agent_id(agent: object) -> bool:
    """``[a-z0-9][a-z0-9-]{2,62}``: safe as one MQTT topic level and as a broker username."""
    return isinstance(agent, str) and AGENT_ID.fullmatch(agent) is not None


def topic(agent: str, kind: str, job: str | None = None) -> str:
    """``phonediag/v1/agents/{agent}/{kind}`` (``jobs``, ``status``, ``key``), or with a job
    (``progress``, ``results``): ``.../{kind}/{job}``. ValueError for a bad agent id."""
    if not valid_agent_id(agent):
        raise ValueError(f"not an agent id: {agent!r}")
    base = f"{PREFIX}/agents/{agent}/{kind}"
    return f"{base}/{job}" if job is not None else base
