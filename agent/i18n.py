"""User-facing strings in French (first: OVHcloud's users) and English."""

from __future__ import annotations

import os

LANGS = ("fr", "en")

MESSAGES: dict[str, dict[str, str]] = {
    "devices.title": {"fr": "Téléphones trouvés ({n})", "en": "Phones found ({n})"},
    "devices.none": {
        "fr": "Aucun téléphone trouvé sur {scope}.",
        "en": "No phone found on {scope}.",
    },
    "col.ip": {"fr": "Adresse IP", "en": "IP address"},
    "col.mac": {"fr": "Adresse MAC", "en": "MAC address"},
    "col.vendor": {"fr": "Marque", "en": "Vendor"},
    "col.model": {"fr": "Modèle", "en": "Model"},
    "col.firmware": {"fr": "Micrologiciel", "en": "Firmware"},
    "col.found_by": {"fr": "Trouvé par", "en": "Found by"},
    "findings.title": {"fr": "Diagnostic", "en": "Diagnosis"},
    "findings.none": {
        "fr": "Aucun problème détecté.",
        "en": "No problem found.",
    },
    "finding.device": {"fr": "téléphone {ip}", "en": "phone {ip}"},
    "finding.site": {"fr": "réseau du bureau", "en": "office network"},
    "finding.line": {"fr": "ligne {line}", "en": "line {line}"},
    "finding.line_only": {
        "fr": "ligne {line}, téléphone non trouvé sur ce réseau",
        "en": "line {line}, phone not found on this network",
    },
    "finding.steps": {"fr": "Que faire :", "en": "What to do:"},
    "finding.guide": {"fr": "Guide : {guide}", "en": "Guide: {guide}"},
    "severity.critical": {"fr": "CRITIQUE", "en": "CRITICAL"},
    "severity.warning": {"fr": "ATTENTION", "en": "WARNING"},
    "severity.info": {"fr": "INFO", "en": "INFO"},
    "errors.title": {
        "fr": "Vérifications qui n'ont pas pu aboutir",
        "en": "Checks that could not complete",
    },
    "summary": {
        "fr": "Réseau analysé : {scope} — durée {duration:.1f} s",
        "en": "Network scanned: {scope} — took {duration:.1f} s",
    },
    "scope.none": {
        "fr": "Impossible de diagnostiquer : {why}. Branchez ce poste au réseau du bureau.",
        "en": "Cannot diagnose: {why}. Connect this computer to the office network.",
    },
    "scope.refused": {
        "fr": "réseau refusé : {why}",
        "en": "network refused: {why}",
    },
    "scope.public": {
        "fr": "{net} n'est pas un réseau privé",
        "en": "{net} is not a private network",
    },
    "scope.too_large": {
        "fr": "{net} est plus grand qu'un /{prefix} (--widen pour l'analyser)",
        "en": "{net} is larger than /{prefix} (use --widen to sweep it)",
    },
    "scope.never": {
        "fr": "{net} est plus grand qu'un /16, jamais analysé",
        "en": "{net} is larger than /16, never swept",
    },
    "scope.not_a_network": {"fr": "{net!r} n'est pas un réseau", "en": "not a network: {net!r}"},
    "scope.not_connected": {
        "fr": "{net} n'est pas directement relié à ce poste",
        "en": "{net} is not directly connected to this computer",
    },
    "scope.no_interface": {
        "fr": "aucune interface réseau avec une adresse IPv4 privée",
        "en": "no network interface with a private IPv4 address",
    },
    "error.config": {"fr": "configuration invalide : {why}", "en": "invalid configuration: {why}"},
    "error.rules": {"fr": "règles invalides : {why}", "en": "invalid rules: {why}"},
    "error.usage": {"fr": "erreur : {why}", "en": "error: {why}"},
    "rules.ok": {
        "fr": "{n} règles valides, {cases} cas de test réussis.",
        "en": "{n} valid rules, {cases} test cases pass.",
    },
    "rules.failed": {"fr": "{n} problème(s) dans les règles", "en": "{n} problem(s) in the rules"},
    "rules.unknown": {
        "fr": "règle inconnue : {id} (voir « phonediag rules list »)",
        "en": "unknown rule: {id} (see 'phonediag rules list')",
    },
    "explain.title": {"fr": "Pourquoi (--explain)", "en": "Why (--explain)"},
}


def detect(explicit: str | None = None) -> str:
    """``--lang`` wins; else the locale (English locales -> en); else French."""
    if explicit:
        return explicit
    for var in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = os.environ.get(var, "")
        if value:
            return "en" if value.lower().startswith("en") else "fr"
    return "fr"


def t(key: str, lang: str, **kw: object) -> str:
    text = MESSAGES[key].get(lang) or MESSAGES[key]["fr"]
    return text.format(**kw) if kw else text
