"""The command line: thin commands that parse options, call the pipeline and render.

Exit codes (contract): 0 nothing wrong found, 1 problems found, 2 usage or bad
input, 3 could not diagnose (no network, no scope).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from agent import __version__, i18n

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_CANNOT = 0, 1, 2, 3

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
        "--network",
        "networks",
        multiple=True,
        metavar="CIDR",
        help="Only this directly connected network (repeatable).",
    ),
    click.option("--widen", is_flag=True, help="Allow networks larger than /22."),
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
    lang: str | None, config_path: str | None, networks: tuple[str, ...] = (), widen: bool = False
):
    from agent import config, scope

    lang = i18n.detect(lang)
    try:
        cfg = config.load(config_path)
    except config.ConfigError as e:
        raise Fail(i18n.t("error.config", lang, why=e), EXIT_USAGE) from None
    try:
        nets, _refused = scope.build(networks or cfg.networks, cfg.max_prefix, widen)
    except scope.ScopeError as e:
        raise Fail(i18n.t("scope.none", lang, why=e.text(lang)), EXIT_CANNOT) from None
    return lang, cfg, nets


def _print(report, lang: str, as_json: bool, diagnosis: bool) -> None:
    if as_json:
        from agent.report import json as json_report

        click.echo(json_report.render(report))
    else:
        from agent.report import text

        text.render(report, lang, text.console(), diagnosis)


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
def discover(lang, config_path, as_json, networks, widen) -> None:
    """List the phones on the LAN (mDNS, SNMP, SIP, ARP) with vendor, model, firmware."""
    from agent import pipeline

    lang, cfg, nets = _setup(lang, config_path, networks, widen)
    report = asyncio.run(pipeline.run_discover(cfg, nets))
    _print(report, lang, as_json, diagnosis=False)


@cli.command()
@_options(_common)
@_json
@_options(_scope)
def diagnose(lang, config_path, as_json, networks, widen) -> None:
    """Find the phones, check the network towards OVHcloud, and explain what is wrong."""
    from agent import judge, pipeline

    lang, cfg, nets = _setup(lang, config_path, networks, widen)
    try:
        judge.load()
    except judge.RuleError as e:
        raise Fail(i18n.t("error.rules", lang, why=e), EXIT_USAGE) from None
    report = asyncio.run(pipeline.run_diagnose(cfg, nets, lang))
    _print(report, lang, as_json, diagnosis=True)
    if any(f.severity in ("critical", "warning") for f in report.findings):
        sys.exit(EXIT_PROBLEMS)


@cli.command()
@click.option("--lang", type=click.Choice(i18n.LANGS), help="fr|en (default: from the locale).")
@_json
@click.option(
    "--check",
    "files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Validate these rule files and run their test cases instead.",
)
def rules(lang, as_json, files) -> None:
    """List the diagnosis rules, or check rule files and their embedded tests."""
    import json

    from agent import judge

    lang = i18n.detect(lang)
    try:
        loaded = judge.load(files) if files else judge.load()
    except judge.RuleError as e:
        raise Fail(i18n.t("error.rules", lang, why=e), EXIT_USAGE) from None
    failures = judge.self_test(loaded)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "severity": r.severity,
                        "symptoms": list(r.symptoms),
                        "title": r.text[lang].title,
                        "guide": r.guide,
                    }
                    for r in loaded
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        for r in loaded:
            click.echo(f"{r.id:28} {r.severity:9} {r.text[lang].title}")
    if failures:
        raise Fail("; ".join(failures), EXIT_USAGE)
    if files:
        click.echo(i18n.t("rules.ok", lang, n=len(loaded)))


def main() -> None:
    """Console entry point: one-line errors, contract exit codes, no tracebacks."""
    try:
        cli.main(standalone_mode=False)
    except Fail as e:
        click.echo(f"phonediag: {e.message}", err=True)
        sys.exit(e.exit_code)
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
