"""The command line: thin commands that parse options, call the pipeline and render.

Exit codes (contract): 0 nothing wrong found, 1 problems found, 2 usage or bad
input, 3 could not diagnose (no network, no scope).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import Any

import click

from agent import __version__, aio, i18n
from agent.judge.loader import SYMPTOMS
from agent.report.schema import EXIT_INTERNAL, SCHEMA_FILE, SchemaViolation

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_CANNOT = 0, 1, 2, 3
STARTED = time.monotonic()  # a run's --deadline counts from the command's start

_common = [
    click.option("--lang", type=click.Choice(i18n.LANGS), help="fr|en (default: from the locale)."),
    click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        envvar="PHONEDIAG_CONFIG",
        help="Configuration file (TOML); also $PHONEDIAG_CONFIG.",
    ),
]
_json = click.option("--json", "as_json", is_flag=True, help="Print the JSON report.")
_scope = [
    click.option(
        "--subnet",
        "--network",
        "networks",
        multiple=True,
        metavar="CIDR",
        help="Only this directly connected private subnet (repeatable; --network is an alias).",
    ),
    click.option("--widen", is_flag=True, help="Allow networks larger than /22."),
    click.option(
        "--deadline",
        type=click.FloatRange(3, 3600),
        metavar="SECONDS",
        help="Finish within this many seconds, whatever the devices do; what is cut short"
        " is listed in the report's errors (default from the config: 60).",
    ),
]


def _options(opts: list[Any]):
    def deco(f):
        for o in reversed(opts):
            f = o(f)
        return f

    return deco


class Fail(click.ClickException):
    """A clean, one-line failure with a chosen exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code


def _setup(
    lang: str | None,
    config_path: str | None,
    networks: tuple[str, ...] = (),
    widen: bool = False,
    deadline: float | None = None,
):
    from agent import config, scope

    lang = i18n.detect(lang)
    try:
        cfg = config.load(config_path)
    except config.ConfigError as e:
        raise Fail(i18n.t("error.config", lang, why=e), EXIT_USAGE) from None
    if deadline is not None:
        cfg.deadline = deadline
    try:
        nets, _refused = scope.build(networks or cfg.networks, cfg.max_prefix, widen)
    except scope.ScopeError as e:
        if e.usage:
            raise Fail(i18n.t("scope.refused", lang, why=e.text(lang)), EXIT_USAGE) from None
        raise Fail(i18n.t("scope.none", lang, why=e.text(lang)), EXIT_CANNOT) from None
    return lang, cfg, nets


def _print(report, lang: str, as_json: bool, diagnosis: bool) -> None:
    if as_json:
        from agent.report import json as json_report

        click.echo(json_report.render(report))
    else:
        from agent.report import text

        text.render(report, lang, text.console(), diagnosis)


def _remember(
    cfg, report, command: str, lang: str, code: int, options: dict[str, Any]
) -> int | None:
    """Store the run in the history (agent/history.py); never fails the command."""
    from datetime import UTC, datetime, timedelta

    from agent import history
    from agent.report import json as json_report

    started = datetime.now(UTC) - timedelta(seconds=report.duration_s)
    return history.record(cfg, json_report.render(report), command, lang, code, started, options)


_verbose = click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Also show the evidence: SIP answers, SNMP values, pages read, failures (secrets masked).",
)


def _progress(lang: str, as_json: bool, verbose: bool, diagnosis: bool):
    """The progress display on standard error while the pipeline runs (terminal only)."""
    from agent.report import progress

    return progress.display(lang, diagnosis=diagnosis, as_json=as_json, verbose=verbose)


def _evidence(report, lang: str, cfg, as_json: bool, verbose: bool) -> None:
    """--verbose: the evidence after the report (the JSON already holds it)."""
    if verbose and not as_json:
        from agent.report import evidence, text

        evidence.render(report, lang, text.console(), cfg)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="phonediag")
def cli() -> None:
    """phonediag — find and diagnose OVHcloud Plug & Phone desk phones on this LAN.

    Trouve et diagnostique les téléphones Plug & Phone OVHcloud du réseau local.
    """


@cli.command()
@_options(_common)
@_json
@_options(_scope)
@_verbose
def discover(lang, config_path, as_json, networks, widen, deadline, verbose) -> None:
    """List the phones on the LAN (mDNS, SNMP, SIP, ARP) with vendor, model, firmware."""
    from agent import pipeline

    lang, cfg, nets = _setup(lang, config_path, networks, widen, deadline)
    with _progress(lang, as_json, verbose, diagnosis=False) as progress:
        report = aio.run(pipeline.run_discover(cfg, nets, progress, started=STARTED, signals=True))
    _print(report, lang, as_json, diagnosis=False)
    _evidence(report, lang, cfg, as_json, verbose)
    code = _interrupted(report, lang) or EXIT_OK
    _remember(cfg, report, "discover", lang, code, {"subnet": list(networks), "widen": widen})
    if code:
        sys.exit(code)


def _interrupted(report, lang: str, problems: bool = False) -> int | None:
    """A run stopped by a signal: say so on stderr; its exit code (1 with problems found
    so far, else 3: the diagnosis is incomplete), or None when it ran to its end."""
    from agent import pipeline

    why = pipeline.interrupted(report)
    if why is None:
        return None
    click.echo(f"phonediag: {i18n.t('run.interrupted', lang, why=why)}", err=True)
    return EXIT_PROBLEMS if problems else EXIT_CANNOT


@cli.command()
@_options(_common)
@_json
@_options(_scope)
@click.option("--symptom", type=click.Choice(SYMPTOMS), help="Only the rules for this symptom.")
@click.option(
    "--message", metavar="TEXT", help="The message the phone displays (any case/accents)."
)
@click.option("--explain", is_flag=True, help="Show why each rule matched or not.")
@click.option(
    "--nat-budget",
    type=click.FloatRange(0, 600),
    help="Seconds for the NAT lifetime test (0: skip; default from the config, 40).",
)
@click.option("--deep", is_flag=True, help="Full NAT lifetime test, up to the guide's 180 s.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(),
    metavar="FILE",
    help="Also write the HTML report (a picture of the site) to FILE; works with --json.",
)
@_verbose
def diagnose(
    lang, config_path, as_json, networks, widen, deadline, symptom, message, explain,
    nat_budget, deep, html_path, verbose,
) -> None:  # fmt: skip
    """Find the phones, check the network towards OVHcloud, and explain what is wrong."""
    from datetime import datetime

    from agent import pipeline

    lang, cfg, nets = _setup(lang, config_path, networks, widen, deadline)
    if html_path:
        _html_writable(html_path, lang)  # before the diagnosis, not after a minute of it
    started = datetime.now()
    if nat_budget is not None:
        cfg.nat_budget = nat_budget
    if deep:
        cfg.nat_budget = max(cfg.nat_budget, 200.0)
    answers: dict[str, Any] = {}
    if message:
        symptom = symptom or "error-message"
        answers["display.message"] = message
    if symptom:
        answers["user.symptom"] = symptom
    with _progress(lang, as_json, verbose, diagnosis=True) as progress:
        report = aio.run(
            pipeline.run_diagnose(cfg, nets, lang, answers, symptom, explain, progress,
                                  started=STARTED, signals=True)
        )  # fmt: skip
    for e in report.errors:
        if e.step == "rules":
            click.echo(f"phonediag: {e.reason}", err=True)
    _print(report, lang, as_json, diagnosis=True)
    if explain and not as_json:
        from agent.report import text

        text.explain(report, text.console())
    _evidence(report, lang, cfg, as_json, verbose)
    problems = any(f.severity in ("critical", "warning") for f in report.findings)
    options = {"subnet": list(networks), "widen": widen, "symptom": symptom, "message": message,
               "explain": explain, "deep": deep, "nat-budget": nat_budget}  # fmt: skip
    code = _interrupted(report, lang, problems) or (EXIT_PROBLEMS if problems else EXIT_OK)
    _remember(cfg, report, "diagnose", lang, code, options)
    if html_path:  # after the run is stored: a failed write loses nothing
        _write_html(report, lang, html_path, started, quiet=as_json)
    if code:
        sys.exit(code)


def _html_writable(path: str, lang: str) -> None:
    from agent.report import html

    try:
        html.check_writable(path)
    except OSError as e:
        why = e.strerror or str(e)
        raise Fail(i18n.t("html.cannot_write", lang, path=path, why=why), EXIT_USAGE) from None


def _write_html(report, lang: str, path: str, started, quiet: bool) -> None:
    """The HTML report, written atomically; with --json nothing more on stdout."""
    from agent.report import html

    try:
        html.write(path, html.render(report, lang, when=started))
    except OSError as e:
        why = e.strerror or str(e)
        raise Fail(i18n.t("html.cannot_write", lang, path=path, why=why), EXIT_USAGE) from None
    if not quiet:
        click.echo(i18n.t("html.written", lang, path=path))


@cli.group()
def rules() -> None:
    """The diagnosis rules: list them, show one, test them."""


_lang = click.option(
    "--lang", type=click.Choice(i18n.LANGS), help="fr|en (default: from the locale)."
)


@rules.command("list")
@_lang
@_json
@click.option("--symptom", type=click.Choice(SYMPTOMS), help="Only the rules for this symptom.")
def rules_list(lang, as_json, symptom) -> None:
    """List every rule: id, severity, title."""
    from agent import judge
    from agent.report import rules as out

    lang = i18n.detect(lang)
    loaded, errors = judge.load_all()
    for e in errors:
        click.echo(f"phonediag: {e}", err=True)
    if symptom:
        loaded = [r for r in loaded if symptom in r.symptoms]
    click.echo(out.listing(loaded, lang, as_json))


@rules.command("show")
@click.argument("rule_id")
@_lang
@_json
def rules_show(rule_id, lang, as_json) -> None:
    """Show one rule in full: explanation, steps, guide, condition."""
    from agent import judge
    from agent.report import rules as out

    lang = i18n.detect(lang)
    loaded, _errors = judge.load_all()
    rule = next((r for r in loaded if r.id == rule_id), None)
    if rule is None:
        raise Fail(i18n.t("rules.unknown", lang, id=rule_id), EXIT_USAGE)
    click.echo(out.show(rule, lang, as_json))


@rules.command("test")
@_lang
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
def rules_test(lang, files) -> None:
    """Validate rule files (default: the shipped ones) and run every embedded test case."""
    from agent import judge
    from agent.judge import flows

    lang = i18n.detect(lang)
    loaded, errors = judge.load_all(files or None)
    problems = [str(e) for e in errors] + judge.self_test(loaded)
    cases = sum(len(r.tests) for r in loaded)
    if not files:
        fl, fl_errors = flows.load_flows()
        problems += [str(e) for e in fl_errors] + flows.self_test(fl, loaded)
        cases += sum(len(f.choices) for f in fl)
    for p in problems:
        click.echo(f"phonediag: {p}", err=True)
    if problems:
        raise Fail(i18n.t("rules.failed", lang, n=len(problems)), EXIT_USAGE)
    click.echo(i18n.t("rules.ok", lang, n=len(loaded), cases=cases))


@cli.command()
@_options(_common)
@_json
@_options(_scope)
@click.option(
    "--symptom",
    metavar="ID",
    help="The symptom, as the wizard lists it (no-ring, error-message, cannot-call-out, "
    "one-way-audio, ...; 'detect' to let phonediag look). Asked when not given.",
)
@click.option("--device", metavar="IP", help="The phone concerned (asked when it matters).")
@click.option("--yes", "decide", flag_value=True, default=None, help="Apply automatic fixes.")
@click.option("--no", "decide", flag_value=False, help="Never change anything; only explain.")
def troubleshoot(
    lang, config_path, as_json, networks, widen, deadline, symptom, device, decide
) -> None:
    """Guided troubleshooting in plain words: measure, explain, fix with consent.

    Dépannage guidé : phonediag mesure, explique en deux phrases, donne les étapes et
    propose les corrections automatiques (avec votre accord). Sans solution, il termine
    par un résumé prêt à coller dans une demande au support.
    Exit 0: solved; 1: not solved; 2: bad input; 3: could not diagnose.
    """
    import json

    from agent.report.text import console as make_console
    from agent.troubleshoot import session, summary
    from agent.troubleshoot.ui import UI

    lang = i18n.detect(lang)
    if symptom and symptom != session.DETECT and session.find_choice(symptom) is None:
        known = ", ".join([c.id for c in session.symptom_choices()] + [session.DETECT])
        raise Fail(i18n.t("ts.unknown_symptom", lang, symptom=symptom, known=known), EXIT_USAGE)
    lang, cfg, nets = _setup(lang, config_path, networks, widen, deadline)
    if as_json and decide is None:
        decide = False  # no one to ask: explain only, unless --yes
    ui = UI(lang, decide, make_console(sys.stderr) if as_json else None, live=not as_json)
    result = session.Session(cfg, nets, lang, ui, device).run(symptom)
    text = summary.build(result, lang)
    if result.report is not None:
        code = EXIT_OK if result.solved else EXIT_PROBLEMS
        options = {"symptom": symptom, "device": device, "subnet": list(networks)}
        _remember(cfg, result.report, "troubleshoot", lang, code, options)
    if as_json:
        findings = [f.to_dict() for f in result.walked]
        tried = [vars(x) for x in result.tried]
        doc = {"solved": result.solved, "symptom": result.choice.id if result.choice else None,
               "device": result.device.ip if result.device else None, "findings": findings,
               "tried": tried, "summary": None if result.solved else text}  # fmt: skip
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    elif not result.solved:
        ui.heading(i18n.t("ts.unsolved", lang))
        click.echo(text)
    if not result.solved:
        sys.exit(EXIT_PROBLEMS)


@cli.group()
def remedy() -> None:
    """Fix what the diagnosis found: with consent, audited, verified, undoable.

    Corriger ce que le diagnostic a trouvé : avec votre accord, journalisé, vérifié,
    annulable (docs/remedies.md).
    """


_device = click.option(
    "--device",
    metavar="IP|line:N|site",
    help="The phone (its IP), a line (line:NUMBER or its number), or site.",
)


def _diagnosis(lang, config_path, networks, widen, deadline):
    """Run the diagnosis the remedies answer; (lang, cfg, nets, report)."""
    from agent import pipeline

    lang, cfg, nets = _setup(lang, config_path, networks, widen, deadline)
    report = aio.run(pipeline.run_diagnose(cfg, nets, lang))
    return lang, cfg, nets, report


def _audit(cfg, lang: str):
    from agent import store
    from agent.remedies.audit import Audit

    try:
        return Audit(store.path_for(cfg.store_path))
    except store.StoreError as e:
        raise Fail(i18n.t("remedy.store_error", lang, why=e), EXIT_USAGE) from None


@contextlib.contextmanager
def _store_errors(lang: str):
    """The audit log failing half-way (a full disk...): one clear line, no traceback."""
    from agent import store

    try:
        yield
    except store.StoreError as e:
        raise Fail(i18n.t("remedy.store_error", lang, why=e), EXIT_PROBLEMS) from None


def _consent(lang: str, yes: bool, as_json: bool, key: str) -> tuple[bool | None, str]:
    """(answer, how): True with --yes or "oui"/"yes"; False for any other answer; None
    without an answer (end of input, --json): a dry run."""
    if yes:
        return True, "--yes"
    if as_json:
        return None, "dry run (--json without --yes)"
    click.echo(i18n.t(key, lang), nl=False)
    line = sys.stdin.readline()
    if not line:
        click.echo()
        return None, "dry run (no answer)"
    if not sys.stdin.isatty():
        click.echo()  # the answer was not echoed: end the prompt's line
    answer = line.strip().lower()
    return answer in ("oui", "o", "yes", "y"), f"answered {answer[:20]!r}"


@remedy.command("list")
@_options(_common)
@_json
@_options(_scope)
@_device
def remedy_list(lang, config_path, as_json, networks, widen, deadline, device) -> None:
    """Diagnose, then list the remedies that answer each finding (--device: one target)."""
    import json

    from agent.remedies import offers, render, resolve_subject
    from agent.remedies.base import subject_of

    lang, cfg, _nets, report = _diagnosis(lang, config_path, networks, widen, deadline)
    subject = None
    if device:
        subject = resolve_subject(report, device)
        if subject is None:
            raise Fail(i18n.t("remedy.no_device", lang, device=device), EXIT_USAGE)
    found = offers.offers(report, cfg, subject)
    shown = [f for f in report.findings if subject is None or subject_of(f) == subject]
    if as_json:
        click.echo(json.dumps(render.offers_json(found, lang), ensure_ascii=False, indent=2))
    else:
        click.echo(render.listing(found, lang, shown))
    if any(f.severity in ("critical", "warning") for f in shown):
        sys.exit(EXIT_PROBLEMS)


@remedy.command("apply")
@click.argument("remedy_id")
@_options(_common)
@_json
@_options(_scope)
@_device
@click.option("--yes", "-y", is_flag=True, help="Consent given: apply without asking.")
@click.option(
    "--wait",
    type=click.FloatRange(0, 600),
    help="Seconds before the verifying diagnosis (default: the remedy's, e.g. 90 for a reboot).",
)
def remedy_apply(
    lang, config_path, as_json, networks, widen, deadline, device, yes, wait, remedy_id
):
    """Show the plan, ask (or --yes), apply, diagnose again, say whether it is fixed.

    Without --yes and without the answer "oui"/"yes", nothing is changed (a dry run).
    Exit 0: fixed and verified, or nothing changed on purpose; 1: failed (the target was
    left as it was) or not fixed; 2: bad input.
    """
    from agent.remedies import get

    lang = i18n.detect(lang)
    chosen = get(remedy_id)
    if chosen is None:
        raise Fail(i18n.t("remedy.unknown", lang, id=remedy_id), EXIT_USAGE)
    if not device and chosen.target != "site":
        raise Fail(i18n.t("remedy.need_device", lang, id=remedy_id), EXIT_USAGE)
    lang, cfg, nets, report = _diagnosis(lang, config_path, networks, widen, deadline)
    with _store_errors(lang):
        fixed = _apply(chosen, report, cfg, nets, lang, device, yes, wait, as_json)
    if not fixed:
        sys.exit(EXIT_PROBLEMS)


def _apply(chosen, report, cfg, nets, lang, device, yes, wait, as_json) -> bool:
    """``remedy apply`` once the diagnosis is made; True when nothing is left to fix by it
    (fixed and verified, declined, a dry run, or manual steps shown)."""
    from agent import pipeline
    from agent.remedies import offers, render, resolve_subject
    from agent.remedies.base import RemedyError
    from agent.remedies.runner import Outcome, Runner

    subject = resolve_subject(report, device or "site")
    if subject is None:
        raise Fail(i18n.t("remedy.no_device", lang, device=device), EXIT_USAGE)
    try:
        offer = offers.select(report, cfg, chosen, subject)
    except RemedyError as e:
        raise Fail(e.why.text(lang), EXIT_USAGE) from None
    if offer.status == "manual":
        click.echo(render.manual(chosen, offer.target, lang))
        return True
    label = offer.target.label(lang)
    if offer.status == "unavailable":
        why = offer.why.text(lang) if offer.why else "?"
        raise Fail(i18n.t("remedy.cannot", lang, id=chosen.id, target=label, why=why), 1)
    runner = Runner(cfg, _audit(cfg, lang))
    try:
        plan = aio.run(runner.plan(chosen, offer.target, offer.finding))
    except RemedyError as e:
        why = e.why.text(lang)
        raise Fail(i18n.t("remedy.cannot", lang, id=chosen.id, target=label, why=why), 1) from None
    if not as_json:
        click.echo(render.plan(plan, lang))
    run = runner.record_plan(plan)
    answer, how = _consent(lang, yes, as_json, "remedy.ask")
    runner.consent(run, plan, bool(answer), how)
    if answer:

        async def rediagnose():
            return await pipeline.run_diagnose(cfg, nets, lang)

        async def by_hand(todo):  # a person is here (no --yes): wait for them
            for why in todo:
                click.echo(f"→ {why.text(lang)}")
            click.echo(i18n.t("remedy.ask_by_hand", lang), nl=False)
            await asyncio.to_thread(sys.stdin.readline)
            click.echo()

        person = by_hand if not (yes or as_json) else None
        outcome = aio.run(runner.apply(run, plan, rediagnose, wait, person))
    else:
        outcome = Outcome("declined", run)
    _print_outcome(outcome, plan, lang, as_json, answer)
    return outcome.status == "declined" or outcome.fixed


def _print_outcome(outcome, plan, lang: str, as_json: bool, answer: bool | None) -> None:
    import json

    from agent.remedies import render

    if as_json:
        click.echo(json.dumps(render.outcome_json(outcome, plan, lang), ensure_ascii=False))
    elif outcome.status == "declined":
        click.echo(i18n.t("remedy.dry_run" if answer is None else "remedy.outcome.declined", lang))
    else:
        click.echo(render.outcome(outcome, plan, lang))


# Why an undo is refused: these are bad input (exit 2); the others, a failure (exit 1).
_UNDO_USAGE = ("no_audit", "is_undo", "not_applied", "already_undone", "no_undo")


@remedy.command("undo")
@click.argument("audit_id")
@_options(_common)
@_json
@click.option("--yes", "-y", is_flag=True, help="Consent given: undo without asking.")
def remedy_undo(lang, config_path, as_json, yes, audit_id) -> None:
    """Put back what an applied remedy changed (AUDIT_ID: its operation, see remedy log)."""
    from agent.remedies.base import RemedyError
    from agent.remedies.runner import Outcome, Runner

    lang = i18n.detect(lang)
    cfg = _config(config_path, lang)
    if not audit_id.isdigit():
        raise Fail(i18n.t("remedy.bad_audit_id", lang, id=audit_id), EXIT_USAGE)
    with _store_errors(lang):
        runner = Runner(cfg, _audit(cfg, lang))
        try:
            plan = aio.run(runner.plan_undo(int(audit_id)))
        except RemedyError as e:
            usage = e.why.key.rsplit(".", 1)[-1] in _UNDO_USAGE
            raise Fail(e.why.text(lang), EXIT_USAGE if usage else EXIT_PROBLEMS) from None
        if not as_json:
            from agent.remedies import render

            click.echo(render.plan(plan, lang))
        run = runner.record_plan(plan)
        answer, how = _consent(lang, yes, as_json, "remedy.ask_undo")
        runner.consent(run, plan, bool(answer), how)
        outcome = aio.run(runner.undo(run, plan)) if answer else Outcome("declined", run)
    _print_outcome(outcome, plan, lang, as_json, answer)
    if outcome.status == "failed":
        sys.exit(EXIT_PROBLEMS)


@remedy.command("log")
@_options(_common)
@_json
@click.option("--limit", type=click.IntRange(1, 100000), default=100, help="Newest rows shown.")
def remedy_log(lang, config_path, as_json, limit) -> None:
    """The audit log: every step of every remedy (when, what, where, before -> after)."""
    import json

    from agent.remedies import render

    lang = i18n.detect(lang)
    cfg = _config(config_path, lang)
    with _store_errors(lang):
        rows = _audit(cfg, lang).rows(limit=limit)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in rows], ensure_ascii=False, indent=2))
    else:
        click.echo(render.log(rows, lang))


def _config(config_path: str | None, lang: str):
    from agent import config

    try:
        return config.load(config_path)
    except config.ConfigError as e:
        raise Fail(i18n.t("error.config", lang, why=e), EXIT_USAGE) from None


@cli.group()
def report() -> None:
    """The run history: every discover and diagnose, to list, show, compare, export.

    L'historique : chaque discover et diagnose est enregistré ; les lister, en revoir un,
    comparer deux passages (avant / après une correction), exporter (docs/report.md).
    """


_run_id = click.argument("run_id", metavar="ID")


def _history(cfg, lang: str):
    """The history of the configured store, opened (one clear line if it cannot be)."""
    from agent import history, store

    try:
        return history.History(store.path_for(cfg.store_path))
    except (store.StoreError, OSError, RuntimeError) as e:  # RuntimeError: no home folder
        raise Fail(i18n.t("report.store_error", lang, why=e), EXIT_USAGE) from None


@contextlib.contextmanager
def _reading(lang: str):
    from agent import store

    try:
        yield
    except store.StoreError as e:
        raise Fail(i18n.t("report.store_error", lang, why=e), EXIT_USAGE) from None


def _stored(h, ref: str, lang: str):
    """The run ``ref`` names (a number or ``last``), else exit 2 with one line."""
    run = h.resolve(ref)
    if run is None:
        raise Fail(i18n.t("report.unknown", lang, id=ref), EXIT_USAGE)
    return run


@report.command("list")
@_options(_common)
@_json
@click.option("--limit", type=click.IntRange(1, 100000), default=20, help="Newest runs shown.")
def report_list(lang, config_path, as_json, limit) -> None:
    """The stored runs, newest first: id, when, command, phones, findings by severity."""
    import json

    from agent import history

    lang = i18n.detect(lang)
    cfg = _config(config_path, lang)
    with _reading(lang), _history(cfg, lang) as h:
        runs, total = h.list(limit), h.count()
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in runs], ensure_ascii=False, indent=2))
    else:
        click.echo(history.listing(runs, total, lang))


@report.command("show")
@_run_id
@_options(_common)
@_json
def report_show(run_id, lang, config_path, as_json) -> None:
    """A stored run's report, as text (in its language unless --lang) or as its JSON."""
    from agent import history
    from agent.report import schema

    chosen = lang
    lang = i18n.detect(lang)
    cfg = _config(config_path, lang)
    with _reading(lang), _history(cfg, lang) as h:
        run = _stored(h, run_id, lang)
    if as_json:
        schema.check_text(run.report_json or "")
        click.echo(run.report_json)
        return
    lang = chosen or run.lang
    click.echo(history.header(run, lang))
    click.echo()
    _print(run.report(), lang, False, diagnosis=not run.discovery)


@report.command("diff")
@click.argument("first", metavar="ID1")
@click.argument("second", metavar="ID2")
@_options(_common)
@_json
def report_diff(first, second, lang, config_path, as_json) -> None:
    """What changed from run ID1 to run ID2: phones appeared, gone or changed (firmware,
    vendor...), findings new, resolved or still there, per phone, line and site."""
    import json

    from agent import history

    lang = i18n.detect(lang)
    cfg = _config(config_path, lang)
    with _reading(lang), _history(cfg, lang) as h:
        a, b = _stored(h, first, lang), _stored(h, second, lang)
    d = history.diff(a, b)
    click.echo(
        json.dumps(d, ensure_ascii=False, indent=2) if as_json else history.diff_text(d, lang)
    )


@report.command("export")
@_run_id
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("json", "html", "text")),
    default="json",
    show_default=True,
    help="The report's form.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE (default: stdout)."
)
@_options(_common)
def report_export(run_id, fmt, output, lang, config_path) -> None:
    """Export a stored run's report as JSON, HTML (one self-contained file) or text."""
    import io

    from agent.report import schema

    chosen = lang
    lang = i18n.detect(lang)
    cfg = _config(config_path, lang)
    with _reading(lang), _history(cfg, lang) as h:
        run = _stored(h, run_id, lang)
    shown = chosen or run.lang  # the report's own language, unless told
    if fmt == "json":
        content = run.report_json or ""
        schema.check_text(content)
    elif fmt == "html":
        content = _html_of(run, shown)
    else:
        from agent.report import text

        buf = io.StringIO()
        text.render(run.report(), shown, text.console(buf), not run.discovery)
        content = buf.getvalue()
    if output is None:
        click.echo(content, nl=not content.endswith("\n"))
        return
    try:
        with open(output, "w", encoding="utf-8") as f:
            f.write(content if content.endswith("\n") else content + "\n")
    except OSError as e:
        why = e.strerror or str(e)
        raise Fail(i18n.t("report.cannot_write", lang, path=output, why=why), EXIT_USAGE) from None
    click.echo(i18n.t("report.written", lang, id=run.id, path=output, format=fmt))


def _html_of(run, lang: str) -> str:
    """The HTML report of a stored run (agent/report/html.py), dated when the run was."""
    import inspect
    from datetime import datetime

    try:
        from agent.report import html

        kwargs = {}
        if "when" in inspect.signature(html.render).parameters:
            kwargs["when"] = datetime.fromisoformat(run.started)
        return html.render(run.report(), lang, **kwargs)
    except (ImportError, AttributeError) as e:
        raise Fail(i18n.t("report.html_unavailable", lang, why=e), EXIT_INTERNAL) from None


@cli.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="The zip to write (default: phonediag-bundle-ID-DATE.zip here).",
)
@click.option("--run", "run_id", metavar="ID", help="The stored run to bundle (default: the last).")
@_options(_common)
@_options(_scope)
def bundle(output, run_id, lang, config_path, networks, widen, deadline) -> None:
    """A zip for a support ticket: the report (JSON, HTML, text), the evidence, versions
    and the configuration, with every secret replaced by ***.

    Dossier pour le support : rapport, détails, versions et configuration, sans aucun
    secret. Sans rapport enregistré, un diagnostic est fait d'abord.
    """
    from pathlib import Path

    from agent import bundle as bundle_mod

    chosen = lang
    lang = i18n.detect(lang)
    cfg = _config(config_path, lang)
    with _reading(lang), _history(cfg, lang) as h:
        run = _stored(h, run_id, lang) if run_id else h.last()
    if run is None:  # nothing stored yet: diagnose first (and store it)
        click.echo(i18n.t("bundle.diagnosing", lang), err=True)
        lang, cfg, run = _diagnose_for_bundle(lang, config_path, networks, widen, deadline)
    try:
        files = bundle_mod.contents(run, cfg, chosen or run.lang)  # the report's language
    except (ImportError, AttributeError) as e:
        raise Fail(i18n.t("report.html_unavailable", lang, why=e), EXIT_INTERNAL) from None
    path = Path(output or bundle_mod.default_name(run))
    try:
        bundle_mod.write(path, files)
    except OSError as e:
        why = e.strerror or str(e)
        raise Fail(i18n.t("report.cannot_write", lang, path=path, why=why), EXIT_USAGE) from None
    click.echo(i18n.t("bundle.written", lang, path=path, id=run.id, files=", ".join(files)))


def _diagnose_for_bundle(lang, config_path, networks, widen, deadline):
    """Run and store a diagnosis; (lang, cfg, its history.Run)."""
    from datetime import UTC, datetime, timedelta

    from agent import history, pipeline
    from agent.report import json as json_report

    lang, cfg, nets = _setup(lang, config_path, networks, widen, deadline)
    report = aio.run(pipeline.run_diagnose(cfg, nets, lang))
    problems = any(f.severity in ("critical", "warning") for f in report.findings)
    code = EXIT_PROBLEMS if problems else EXIT_OK
    text = json_report.render(report)
    started = datetime.now(UTC) - timedelta(seconds=report.duration_s)
    options = {"subnet": list(networks), "widen": widen, "by": "bundle"}
    run_id = history.record(cfg, text, "diagnose", lang, code, started, options)
    run = history.Run.unsaved(text, "diagnose", lang, code, started, options, run_id or 0)
    return lang, cfg, run


@cli.command()
@click.option("--listen", "listen_ip", required=True, metavar="IP", help="Address to listen on.")
@click.option(
    "--udp-port",
    "udp_ports",
    type=click.IntRange(1, 65535),
    multiple=True,
    metavar="N",
    help="UDP port (repeatable; default: 5060 and 5062).",
)
@click.option(
    "--tcp-port",
    "tcp_ports",
    type=click.IntRange(1, 65535),
    multiple=True,
    metavar="N",
    help="TCP port (repeatable; default: 5060).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log the source of refused requests.")
@_lang
def reflector(listen_ip, udp_ports, tcp_ports, verbose, lang) -> None:
    """Run the reflector beyond the NAT (SIP ALG and NAT lifetime tests) until Ctrl-C.

    Serveur réflecteur, à héberger hors du NAT du bureau : détection des SIP ALG et
    durée des associations NAT UDP (docs/reflector.md).
    """
    import contextlib
    import ipaddress
    import logging
    import signal

    from agent import reflector as refl
    from agent.net.reflector import format_source

    lang = i18n.detect(lang)
    try:
        ip = str(ipaddress.ip_address(listen_ip))
    except ValueError:
        raise Fail(i18n.t("reflector.bad_address", lang, ip=listen_ip), EXIT_USAGE) from None
    if verbose:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("phonediag reflector: %(message)s"))
        logging.getLogger("agent.reflector").addHandler(handler)
        logging.getLogger("agent.reflector").setLevel(logging.INFO)

    def ready(server) -> None:
        where = ", ".join(f"{t} {format_source((a, p))}" for t, a, p in server.listening)
        click.echo(i18n.t("reflector.listening", lang, where=where))

    async def run() -> dict[str, int]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, AttributeError, ValueError):
                loop.add_signal_handler(sig, stop.set)
        udp, tcp = udp_ports or (5060, 5062), tcp_ports or (5060,)
        return await refl.serve(ip, udp, tcp, stop, ready=ready)

    try:
        counters = aio.run(run())
    except OSError as e:
        why = e.strerror or str(e)
        raise Fail(i18n.t("reflector.cannot_listen", lang, ip=ip, why=why), EXIT_USAGE) from None
    shown = " ".join(f"{k}={v}" for k, v in counters.items())
    click.echo(i18n.t("reflector.counters", lang, counters=shown))


@cli.command()
@_options(_common)
@click.option("-v", "--verbose", is_flag=True, help="Also log the MQTT exchanges (debug).")
def serve(lang, config_path, verbose) -> None:
    """Portal mode: stay connected to the portal's broker, run the signed jobs it sends.

    Mode portail : ce poste garde une connexion sortante vers le portail et exécute les
    tâches signées qu'il envoie, dans les limites de sa configuration ([scope],
    [remedies] portal_allowed). D'abord : phonediag portal enroll. Arrêt : SIGTERM ou
    Ctrl-C (docs/portal-protocol.md).
    """
    from agent.portal import serve as portal_serve

    lang = i18n.detect(lang)
    cfg = _config(config_path, lang)
    try:
        identity, worker, private = portal_serve.prepare(cfg)
    except portal_serve.Unusable as e:
        raise Fail(i18n.t("portal.cannot_serve", lang, why=e), EXIT_USAGE) from None
    portal_serve.configure_logging(verbose)
    sys.exit(portal_serve.serve(identity, worker, private))


@cli.group()
def portal() -> None:
    """Portal mode: enrol this agent; the portal's side (a key pair, a job to submit).

    Mode portail : inscrire ce poste auprès du portail ; côté portail, créer ses clés et
    soumettre une tâche (docs/portal-protocol.md).
    """


@portal.command("enroll")
@click.option("--broker", required=True, metavar="URL", help="The broker, mqtts://host[:port].")
@click.option(
    "--token", required=True, metavar="TOKEN", help="The token the portal shows ('-': stdin)."
)
@click.option("--new-key", is_flag=True, help="A new key pair for this agent, even if it has one.")
@_options(_common)
def portal_enroll(broker, token, new_key, lang, config_path) -> None:
    """Enrol this agent: the portal's key and the broker's login from the token, and this
    agent's own key pair, in [portal] dir."""
    from agent.portal import enroll, keys

    lang = i18n.detect(lang)
    cfg = _config(config_path, lang)
    if token == "-":
        token = sys.stdin.read()
    directory = keys.directory(cfg)
    try:
        identity = enroll.enroll(directory, broker, token, new_key)
        fingerprint = keys.fingerprint(keys.load_public(identity.pub_file))
    except (enroll.EnrolError, keys.KeyFileError) as e:
        raise Fail(i18n.t("portal.enroll_failed", lang, why=e), EXIT_USAGE) from None
    click.echo(
        i18n.t("portal.enrolled", lang, agent=identity.agent, broker=identity.broker,
               dir=directory, fingerprint=fingerprint)
    )  # fmt: skip


@portal.command("keygen")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), metavar="DIR")
@click.option("--force", is_flag=True, help="Replace a key pair already there.")
@_lang
def portal_keygen(out_dir, force, lang) -> None:
    """Make a portal key pair: DIR/portal.key (private, 0600) and DIR/portal.pub."""
    from pathlib import Path

    from agent.portal import keys

    lang = i18n.detect(lang)
    key = keys.generate()
    out = Path(out_dir)
    try:
        keys.save_private(key, out / "portal.key", replace=force)
        keys.save_public(key, out / "portal.pub", replace=force)
    except keys.KeyFileError as e:
        raise Fail(i18n.t("portal.keygen_failed", lang, why=e), EXIT_USAGE) from None
    click.echo(i18n.t("portal.keygen_done", lang, dir=out, fingerprint=keys.fingerprint(key)))


_JOB_KINDS = ("diagnose", "discover", "remedy", "report")


@portal.command("submit")
@click.option("--agent", required=True, metavar="ID", help="The agent's id.")
@click.option("--kind", type=click.Choice(_JOB_KINDS), default="diagnose", show_default=True)
@click.option("--symptom", type=click.Choice(SYMPTOMS), help="diagnose: only this symptom.")
@click.option("--subnet", "subnets", multiple=True, metavar="CIDR", help="diagnose, discover.")
@click.option("--remedy", "remedy_id", metavar="ID", help="remedy: the remedy to apply.")
@click.option("--device", metavar="IP|line:N|site", help="remedy: where to apply it.")
@click.option("--run", "run_id", metavar="ID|last", help="report: the stored run.")
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False),
              help="The portal's private key (signs the job).")  # fmt: skip
@click.option("--broker", required=True, metavar="URL", help="mqtts://host[:port]")
@click.option("--ca", "ca_file", type=click.Path(dir_okay=False),
              help="The CA of the broker's certificate (default: the system's).")  # fmt: skip
@click.option("--username", required=True, help="The portal's MQTT user.")
@click.option("--password-file", required=True, type=click.Path(dir_okay=False),
              help="A file holding the MQTT password (first line).")  # fmt: skip
@click.option("--expires", type=click.IntRange(1, 86400), default=600, show_default=True,
              help="Seconds the job stays valid.")  # fmt: skip
@click.option("--timeout", type=click.FloatRange(1, 86400), default=300, show_default=True,
              help="Seconds to wait for the result.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the signed result as JSON.")
@_lang
def portal_submit(
    agent, kind, symptom, subnets, remedy_id, device, run_id, key_path, broker, ca_file,
    username, password_file, expires, timeout, as_json, lang,
) -> None:  # fmt: skip
    """The portal's side: sign a job, publish it, wait for the agent's signed result.

    Exit 0: done; 1: rejected, failed or interrupted; 2: bad input; 3: no answer in time
    (or the broker could not be used).
    """
    from agent.portal import keys, mqtt, submit

    chosen = lang
    lang = i18n.detect(lang)
    try:
        with_lang = chosen if kind != "report" else None
        params = submit.params_for(
            kind, symptom=symptom, subnets=subnets, remedy=remedy_id, device=device,
            run=run_id, lang=with_lang,
        )  # fmt: skip
        private = keys.load_private(key_path)
        login = mqtt.Broker(*mqtt.parse_url(broker), ca_file, username,
                            submit.password(password_file))  # fmt: skip
    except (ValueError, keys.KeyFileError, mqtt.BrokerError, OSError) as e:
        raise Fail(i18n.t("portal.submit_bad", lang, why=submit.why(e)), EXIT_USAGE) from None

    def progress(doc) -> None:
        if not as_json:
            click.echo(submit.progress_line(doc), err=True)

    try:
        answer = submit.submit(login, private, agent, kind, params, expires=expires,
                               timeout=timeout, on_progress=progress)  # fmt: skip
    except ValueError as e:
        raise Fail(i18n.t("portal.submit_bad", lang, why=e), EXIT_USAGE) from None
    except mqtt.BrokerError as e:
        raise Fail(i18n.t("portal.submit_broker", lang, why=e), EXIT_CANNOT) from None
    for why in answer.ignored:
        click.echo(f"phonediag: {why}", err=True)
    if answer.result is None:
        job_id = answer.job["id"]
        raise Fail(i18n.t("portal.no_answer", lang, agent=agent, job=job_id, timeout=timeout),
                   EXIT_CANNOT)  # fmt: skip
    click.echo(submit.render(answer, lang, as_json))
    if answer.result["status"] != "done":
        sys.exit(EXIT_PROBLEMS)


@cli.group("ssh")
def ssh_group() -> None:
    """The SSH host keys pinned for the router ([router] ssh): list them, forget one.

    Les clés d'hôtes SSH enregistrées à la première connexion au routeur : les lister, en
    oublier une après vérification (routeur remplacé ou réinitialisé).
    """


def _known_hosts(config_path: str | None, lang: str):
    """The known_hosts file beside the configured store."""
    from agent.net import ssh as ssh_net

    cfg = _config(config_path, lang)
    try:
        return ssh_net.known_hosts_path(cfg.store_path)
    except (OSError, RuntimeError) as e:  # RuntimeError: no home folder
        raise Fail(i18n.t("ssh.file_error", lang, path="known_hosts", why=e), EXIT_USAGE) from None


@ssh_group.command("list")
@_options(_common)
@_json
def ssh_list(lang, config_path, as_json) -> None:
    """List the pinned host keys: host, key type, SHA256 fingerprint."""
    import json

    from agent.net import ssh as ssh_net

    lang = i18n.detect(lang)
    path = _known_hosts(config_path, lang)
    try:
        entries = [e for e in ssh_net.read_known_hosts(path) if not e.marker]
    except OSError as e:
        why = e.strerror or str(e)
        raise Fail(i18n.t("ssh.file_error", lang, path=path, why=why), EXIT_USAGE) from None
    if as_json:
        keys = [
            {"hosts": e.names(), "type": e.key_type, "fingerprint": e.fingerprint} for e in entries
        ]
        click.echo(json.dumps({"file": str(path), "keys": keys}, ensure_ascii=False, indent=2))
        return
    if not entries:
        click.echo(i18n.t("ssh.list.none", lang, path=path))
        return
    click.echo(i18n.t("ssh.list.title", lang, path=path))
    width = max(len(e.hosts) for e in entries)
    for e in entries:
        click.echo(f"  {e.hosts:<{width}}  {e.key_type}  {e.fingerprint}")


@ssh_group.command("forget")
@click.argument("host")
@_options(_common)
def ssh_forget(host, lang, config_path) -> None:
    """Forget the key pinned for HOST (ADDRESS or ADDRESS:PORT), after checking on the
    router itself that its new key is genuine: the next connection pins the new one."""
    from agent.net import ssh as ssh_net

    lang = i18n.detect(lang)
    try:
        target = ssh_net.parse_target(host, private_only=False)
    except ValueError as e:
        raise Fail(i18n.t("ssh.bad_host", lang, why=e), EXIT_USAGE) from None
    path = _known_hosts(config_path, lang)
    try:
        removed = ssh_net.forget(path, target)
    except OSError as e:
        why = e.strerror or str(e)
        raise Fail(i18n.t("ssh.file_error", lang, path=path, why=why), EXIT_USAGE) from None
    if not removed:
        raise Fail(i18n.t("ssh.not_found", lang, host=target.where, path=path), EXIT_USAGE)
    fingerprints = ", ".join(dict.fromkeys(e.fingerprint for e in removed))
    click.echo(i18n.t("ssh.forgotten", lang, host=target.where, fingerprints=fingerprints))


def main() -> None:
    """Console entry point: one-line errors, contract exit codes, no tracebacks."""
    try:
        cli.main(standalone_mode=False)
    except Fail as e:
        click.echo(f"phonediag: {e.message}", err=True)
        sys.exit(e.exit_code)
    except SchemaViolation as e:  # only with PHONEDIAG_CHECK_SCHEMA=1 (the tests)
        click.echo(f"phonediag: internal error: the {e.what} breaks {SCHEMA_FILE}:", err=True)
        for problem in e.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(EXIT_INTERNAL)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.Abort:
        click.echo("phonediag: interrupted", err=True)
        sys.exit(130)
    except click.UsageError as e:
        hint = f" (try '{e.ctx.command_path} --help')" if e.ctx else ""
        click.echo(f"phonediag: {e.format_message()}{hint}", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as e:
        click.echo(f"phonediag: {e.format_message()}", err=True)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        click.echo("phonediag: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
