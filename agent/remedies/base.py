"""What every action shares: the target, the steps of a plan (data, kept in the audit log so
an undo can replay them), the environment, and the errors.

An action module (``line_options``, ``phone_settings``, ``phone_reboot``, ``reboot``,
``reprovision``) has:

- ``available(remedy, target, cfg) -> Why | None``: why it cannot act on this target
  (no API access, a phone family without a write path...), or None;
- ``async plan(remedy, target, env) -> list[Step]``: reads the current ("before") values;
- ``async run(step, env) -> dict``: does one step; returns what to keep in the audit;
- ``async read(step, env) -> dict``: the current values of a step's keys (rollback, undo);
- ``surely_not_applied(exc) -> bool``: a failure that certainly changed nothing;
- optionally ``falls_back(exc) -> bool``: a failure after which a step with a ``fallback``
  is left to a person (its note says what to do) instead of failing the remedy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from agent.config import Config
from agent.model import LINE_PREFIX, UNKNOWN, Device, Finding, Report


def show(value: Any) -> str:
    """A value as the plans and the log print it (``true``/``false``, ``""`` when empty)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return '""' if value in (None, "") else str(value)


def show_values(values: dict[str, Any]) -> str:
    return ", ".join(f"{k} = {show(v)}" for k, v in values.items())


@dataclass(frozen=True)
class Why:
    """A reason, as an i18n key and its values (rendered in the user's language)."""

    key: str
    values: dict[str, Any] = field(default_factory=dict)

    def text(self, lang: str) -> str:
        """The reason in ``lang`` (a value that is itself a Why is rendered in ``lang`` too)."""
        from agent import i18n

        values = {k: v.text(lang) if isinstance(v, Why) else v for k, v in self.values.items()}
        return i18n.t(self.key, lang, **values)


class RemedyError(Exception):
    """A remedy cannot be planned or carried out; ``why`` says why (nothing was changed)."""

    def __init__(self, why: Why) -> None:
        super().__init__(why.key)
        self.why = why


@dataclass
class Target:
    """What a remedy acts on: a phone (its IP), a line with no phone on the LAN
    (``line:<number>``), or the site; with the facts the diagnosis gave about it."""

    subject: str
    device: Device | None
    facts: dict[str, Any]  # site facts, then the subject's own (as the rules see them)
    findings: list[Finding]

    @property
    def line(self) -> str | None:
        value = self.fact("line.number")
        return value if isinstance(value, str) else None

    def fact(self, key: str) -> Any:
        value = self.facts.get(key, UNKNOWN)
        return None if value is UNKNOWN else value

    def label(self, lang: str) -> str:
        from agent import i18n

        if self.subject == "site":
            return i18n.t("finding.site", lang)
        if self.subject.startswith(LINE_PREFIX):
            return i18n.t("finding.line_only", lang, line=self.subject.removeprefix(LINE_PREFIX))
        phone = i18n.t("finding.device", lang, ip=self.subject)
        return f"{phone}, {i18n.t('finding.line', lang, line=self.line)}" if self.line else phone


def subject_of(finding: Finding) -> str:
    """The subject a finding is about: a device IP, ``line:<number>``, or ``site``."""
    if finding.device:
        return finding.device
    return f"{LINE_PREFIX}{finding.line}" if finding.line else "site"


def view(report: Report, subject: str) -> dict[str, Any]:
    """The facts as the rules see them for ``subject``: the site's, then its own."""
    values = {f.key: f.value for f in report.facts if f.subject == "site"}
    if subject != "site":
        values.update({f.key: f.value for f in report.facts if f.subject == subject})
    return values


def target(report: Report, subject: str) -> Target:
    device = next((d for d in report.devices if d.ip == subject), None)
    findings = [f for f in report.findings if subject_of(f) == subject]
    return Target(subject, device, view(report, subject), findings)


@dataclass
class Step:
    """One change: which action, on what (``where``: line or phone, never a secret), the
    values it writes (``set``; a command's body) and the values read just before."""

    action: str
    where: dict[str, str]
    set: dict[str, Any]
    before: dict[str, Any] = field(default_factory=dict)
    undoable: bool = False
    fallback: str = ""  # an i18n key: shown instead of failing (the module's falls_back)
    alternative: dict[str, Any] | None = None  # a step tried before the fallback (to_dict)

    def after(self) -> dict[str, Any]:
        """The values once done (the ``before`` ones, with ``set`` on top)."""
        return {**self.before, **self.set}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Step:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


class Env:
    """What the actions need: the configuration, and one OVHcloud API session at most."""

    def __init__(self, cfg: Config, transport: Any = None) -> None:
        self.cfg = cfg
        self.transport = transport  # tests: an httpx.MockTransport for the phones' faces
        self._api: Any = None

    def api(self) -> Any:
        """The OVHcloud API session; RemedyError when there are no usable keys."""
        if self._api is None:
            from agent.provider.api import Api, ProviderError
            from agent.provider.credentials import MissingKeys, resolve

            try:
                self._api = Api(resolve(self.cfg), timeout=max(self.cfg.timeout * 2, 3.0))
            except MissingKeys as e:
                raise RemedyError(Why("remedy.why.no_keys", {"missing": str(e)})) from None
            except ProviderError as e:
                raise RemedyError(Why("remedy.why.api", {"why": str(e)})) from None
        return self._api
