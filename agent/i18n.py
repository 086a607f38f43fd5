"""User-facing strings in French (first: OVHcloud's users) and English."""

from __future__ import annotations

import os

from agent.portal.messages import MESSAGES as _PORTAL
from agent.troubleshoot.messages import MESSAGES as _TROUBLESHOOT

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
    # ---------------------------------------------------- technician's console
    "col.registration": {"fr": "Enregistré", "en": "Registered"},
    "col.findings": {"fr": "Constats", "en": "Findings"},
    "registration.yes": {"fr": "oui", "en": "yes"},
    "registration.no": {"fr": "non", "en": "no"},
    "registration.no_status": {"fr": "non ({status})", "en": "no ({status})"},
    "registration.split": {
        "fr": "téléphone : {phone}, OVHcloud : {line}",
        "en": "phone: {phone}, OVHcloud: {line}",
    },
    "findings.count": {"fr": "{n} constat(s) : {detail}", "en": "{n} finding(s): {detail}"},
    "progress.phase.discover": {"fr": "Recherche des téléphones", "en": "Finding phones"},
    "progress.phase.probe": {"fr": "Vérifications", "en": "Checks"},
    "progress.failed": {"fr": "{n} échec(s)", "en": "{n} failed"},
    "progress.plain": {
        "fr": "phonediag : {phase} : {steps}…",
        "en": "phonediag: {phase}: {steps}…",
    },
    "step.discover.arp.sweep": {"fr": "Balayage ARP", "en": "ARP sweep"},
    "step.discover.sip": {"fr": "Recherche SIP", "en": "SIP sweep"},
    "step.discover.snmp": {"fr": "Recherche SNMP", "en": "SNMP sweep"},
    "step.discover.pnp": {"fr": "Écoute SIP PnP", "en": "SIP PnP listening"},
    "step.discover.mdns": {"fr": "Recherche mDNS", "en": "mDNS browsing"},
    "step.discover.arp": {"fr": "Table ARP", "en": "ARP table"},
    "step.probe.identity": {"fr": "Identification", "en": "Identification"},
    "step.probe.device": {"fr": "État des téléphones", "en": "Phones' own state"},
    "step.probe.firmware": {"fr": "Micrologiciels", "en": "Firmware"},
    "step.probe.lan": {"fr": "Réseau local", "en": "Local network"},
    "step.probe.registrar": {"fr": "Serveur SIP OVHcloud", "en": "OVHcloud SIP server"},
    "step.probe.dns": {"fr": "Résolution DNS", "en": "DNS resolution"},
    "step.probe.stun": {"fr": "Test NAT (STUN)", "en": "NAT test (STUN)"},
    "step.probe.alg": {"fr": "Détection SIP ALG", "en": "SIP ALG detection"},
    "step.probe.nat-lifetime": {"fr": "Durée des sessions NAT", "en": "NAT binding lifetime"},
    "step.probe.rtp": {"fr": "Flux audio (RTP)", "en": "Audio path (RTP)"},
    "step.probe.inbound": {"fr": "Appels entrants", "en": "Incoming calls"},
    "step.probe.provider": {"fr": "Ligne chez OVHcloud (API)", "en": "Line at OVHcloud (API)"},
    "step.probe.router": {"fr": "Routeur (SSH)", "en": "Router (SSH)"},
    "evidence.title": {"fr": "Détails (--verbose)", "en": "Evidence (--verbose)"},
    "evidence.masked": {
        "fr": "Mots de passe, communautés SNMP et clés d'API sont masqués (***).",
        "en": "Passwords, SNMP communities and API keys are masked (***).",
    },
    "evidence.found_by": {"fr": "Vu par {method}", "en": "Seen by {method}"},
    "evidence.merge": {"fr": "Regroupement des adresses", "en": "Address merging"},
    "evidence.identified_by": {"fr": "Identifié par : {what}", "en": "Identified by: {what}"},
    "evidence.facts": {"fr": "Observations : {source}", "en": "Observations: {source}"},
    "evidence.errors": {"fr": "Échecs", "en": "Failures"},
    "evidence.other_errors": {
        "fr": "Vérifications qui n'ont pas abouti, et pourquoi",
        "en": "Checks that did not complete, and why",
    },
    "evidence.timings": {"fr": "Durée des étapes", "en": "Step durations"},
    "evidence.nothing": {"fr": "(rien de noté)", "en": "(nothing recorded)"},
    "evidence.unknown": {"fr": "inconnu", "en": "unknown"},
    "evidence.yes": {"fr": "oui", "en": "yes"},
    "evidence.no": {"fr": "non", "en": "no"},
    # ---------------------------------------------------------------- HTML report
    "html.title": {"fr": "Rapport de diagnostic phonediag", "en": "phonediag diagnosis report"},
    "html.scope": {"fr": "Réseau analysé", "en": "Network scanned"},
    "html.date": {"fr": "Date", "en": "Date"},
    "html.duration": {"fr": "Durée", "en": "Duration"},
    "html.duration_value": {"fr": "{s:.1f} s", "en": "{s:.1f} s"},
    "html.phones": {"fr": "Téléphones trouvés", "en": "Phones found"},
    "html.counts": {"fr": "Constats", "en": "Findings"},
    "html.picture.title": {"fr": "Le site", "en": "The site"},
    "html.picture.desc": {
        "fr": "Schéma du site : OVHcloud, le lien Internet, la box ou le routeur, le réseau"
        " local et chacun de ses téléphones. Un repère rouge (critique), orange (avertissement)"
        " ou bleu (information) marque l'endroit où se situe chaque problème, avec le numéro"
        " du constat détaillé plus bas.",
        "en": "Picture of the site: OVHcloud, the Internet link, the router, the local network"
        " and each of its phones. A red (critical), orange (warning) or blue (information)"
        " marker shows where each problem sits, with the number of the finding detailed below.",
    },
    "html.picture.all_clear": {
        "fr": "Aucun repère : rien d'anormal n'a été mesuré sur le chemin des téléphones à"
        " OVHcloud.",
        "en": "No marker: nothing wrong was measured on the way from the phones to OVHcloud.",
    },
    "html.legend": {"fr": "Légende :", "en": "Key:"},
    "html.legend.ok": {"fr": "rien à signaler", "en": "nothing found"},
    "html.place.phone": {"fr": "Téléphone", "en": "Phone"},
    "html.place.lan": {"fr": "Réseau local (LAN)", "en": "Local network (LAN)"},
    "html.place.router": {"fr": "Box / routeur (NAT)", "en": "Router / box (NAT)"},
    "html.place.internet": {"fr": "Internet", "en": "Internet"},
    "html.place.ovhcloud": {"fr": "OVHcloud", "en": "OVHcloud"},
    "html.where.phone": {"fr": "le téléphone", "en": "the phone"},
    "html.where.lan": {"fr": "le réseau local", "en": "the local network"},
    "html.where.router": {"fr": "la box / le routeur", "en": "the router (box)"},
    "html.where.internet": {"fr": "le lien Internet", "en": "the Internet link"},
    "html.where.ovhcloud": {
        "fr": "OVHcloud (la ligne, son enregistrement)",
        "en": "OVHcloud (the line, its registration)",
    },
    "html.node.registrar": {"fr": "serveur SIP {host}", "en": "SIP server {host}"},
    "html.node.api_ok": {"fr": "ligne lue par l'API", "en": "line read through the API"},
    "html.node.api_not": {"fr": "ligne non lue (API)", "en": "line not read (API)"},
    "html.node.internet": {"fr": "le lien vers OVHcloud", "en": "the link to OVHcloud"},
    "html.node.gateway": {"fr": "passerelle {ip}", "en": "gateway {ip}"},
    "html.node.public_ip": {"fr": "IP publique {ip}", "en": "public IP {ip}"},
    "html.node.refs": {"fr": "{severity} · n° {refs}", "en": "{severity} · no. {refs}"},
    "html.node.findings": {"fr": "constats : {n}", "en": "findings: {n}"},
    "html.node.finding": {
        "fr": "{n}. {severity} : {title} ({rule} ; {about})",
        "en": "{n}. {severity}: {title} ({rule}; {about})",
    },
    "html.node.more": {"fr": "+ {n} autre(s) téléphone(s)", "en": "+ {n} more phone(s)"},
    "html.node.more_sub": {"fr": "sans constat", "en": "nothing found"},
    "html.node.none": {"fr": "aucun téléphone trouvé", "en": "no phone found"},
    "html.card.name": {"fr": "Nom annoncé", "en": "Announced name"},
    "html.card.user_agent": {"fr": "User-Agent SIP", "en": "SIP User-Agent"},
    "html.card.registration": {"fr": "Enregistrement", "en": "Registration"},
    "html.card.line": {"fr": "Ligne", "en": "Line"},
    "html.card.findings": {"fr": "Constats", "en": "Findings"},
    "html.card.no_finding": {"fr": "Aucun constat sur ce téléphone.", "en": "No finding here."},
    "html.card.elsewhere": {"fr": "se situe : {place}", "en": "sits at: {place}"},
    "html.reg.phone": {"fr": "selon le téléphone : {state}", "en": "the phone says: {state}"},
    "html.reg.line": {"fr": "chez OVHcloud : {state}", "en": "at OVHcloud: {state}"},
    "html.reg.last": {
        "fr": "dernier vu par OVHcloud : {when}",
        "en": "last seen by OVHcloud: {when}",
    },
    "html.reg.yes": {"fr": "enregistrée", "en": "registered"},
    "html.reg.no": {"fr": "non enregistrée", "en": "not registered"},
    "html.reg.unknown": {"fr": "inconnu", "en": "unknown"},
    "html.finding.about": {"fr": "Concerne : {where}", "en": "About: {where}"},
    "html.finding.place": {
        "fr": "Où se situe le problème : {places}",
        "en": "Where the fault sits: {places}",
    },
    "html.finding.rule": {"fr": "règle {id}", "en": "rule {id}"},
    "html.remedies.title": {"fr": "Corrections", "en": "Remedies"},
    "html.remedies.none": {
        "fr": "Aucune correction automatique : suivez les étapes ci-dessus.",
        "en": "No automatic remedy: follow the steps above.",
    },
    "html.remedy.ready": {
        "fr": "automatique (phonediag l'applique avec votre accord) :",
        "en": "automatic (phonediag applies it with your consent):",
    },
    "html.remedy.manual": {"fr": "à faire à la main :", "en": "done by hand:"},
    "html.remedy.unavailable": {"fr": "impossible ici : {why}", "en": "not possible here: {why}"},
    "html.errors.step": {"fr": "{step} : {reason}", "en": "{step}: {reason}"},
    "html.footer": {
        "fr": "Produit par phonediag {version} (schéma {schema}). Ce fichier se suffit à"
        " lui-même : il s'ouvre dans tout navigateur, sans connexion, et s'imprime.",
        "en": "Made by phonediag {version} (schema {schema}). This file stands alone: it opens"
        " in any browser, offline, and prints.",
    },
    "html.cannot_write": {
        "fr": "impossible d'écrire le rapport HTML {path} : {why}",
        "en": "cannot write the HTML report {path}: {why}",
    },
    "html.written": {"fr": "Rapport HTML : {path}", "en": "HTML report: {path}"},
    # ---------------------------------------------------------------- remedies
    "remedy.unknown": {
        "fr": "correction inconnue : {id} (voir « phonediag remedy list »)",
        "en": "unknown remedy: {id} (see 'phonediag remedy list')",
    },
    "remedy.no_device": {
        "fr": "appareil introuvable dans ce diagnostic : {device} (une adresse IP, line:NUMÉRO"
        " ou site)",
        "en": "device not found in this diagnosis: {device} (an IP address, line:NUMBER or site)",
    },
    "remedy.need_device": {
        "fr": "précisez --device pour « {id} » (voir « phonediag remedy list »)",
        "en": "give --device for '{id}' (see 'phonediag remedy list')",
    },
    "remedy.not_for": {
        "fr": "« {id} » ne répond à aucun constat sur {target} (constats : {rules})",
        "en": "'{id}' answers no finding on {target} (findings: {rules})",
    },
    "remedy.not_applicable": {
        "fr": "« {id} » ne s'applique pas à {target} : {why}",
        "en": "'{id}' does not apply to {target}: {why}",
    },
    "remedy.cannot": {
        "fr": "« {id} » impossible sur {target} : {why}. Rien n'a été modifié.",
        "en": "'{id}' cannot be done on {target}: {why}. Nothing was changed.",
    },
    "remedy.bad_audit_id": {
        "fr": "numéro de journal invalide : {id}",
        "en": "invalid audit id: {id}",
    },
    "remedy.store_error": {
        "fr": "journal des corrections inutilisable ({why}) : rien n'a été modifié"
        " (réglage [store] path)",
        "en": "the remedies' audit log cannot be used ({why}): nothing was changed"
        " ([store] path setting)",
    },
    "remedy.ask": {"fr": "Appliquer cette correction ? [oui/non] ", "en": "Apply it? [yes/no] "},
    "remedy.ask_undo": {"fr": "Annuler cette correction ? [oui/non] ", "en": "Undo it? [yes/no] "},
    "remedy.dry_run": {
        "fr": "Simulation : rien n'a été modifié. Ajoutez --yes (ou répondez « oui ») pour"
        " appliquer.",
        "en": "Dry run: nothing was changed. Add --yes (or answer 'yes') to apply it.",
    },
    "remedy.manual_only": {
        "fr": "« {id} » se fait à la main ; phonediag ne modifie rien. Étapes :",
        "en": "'{id}' is done by hand; phonediag changes nothing. Steps:",
    },
    "remedy.list.none": {
        "fr": "Aucune correction à proposer : aucun constat.",
        "en": "No remedy to offer: nothing was found.",
    },
    "remedy.list.no_remedy": {
        "fr": "(aucune correction ici : suivez les étapes de « phonediag diagnose »)",
        "en": "(no remedy here: follow the steps of 'phonediag diagnose')",
    },
    "remedy.list.apply": {
        "fr": "phonediag remedy apply {id} --device {device}",
        "en": "phonediag remedy apply {id} --device {device}",
    },
    "remedy.list.unavailable": {"fr": "impossible ici : {why}", "en": "not possible here: {why}"},
    "remedy.list.legend": {
        "fr": "+ phonediag peut l'appliquer (avec votre accord)   * à faire à la main"
        "   - impossible ici",
        "en": "+ phonediag can apply it (with your consent)   * done by hand   - not possible here",
    },
    "remedy.plan.title": {"fr": "Correction « {id} » : {title}", "en": "Remedy '{id}': {title}"},
    "remedy.plan.undo_title": {
        "fr": "Annulation de l'opération {run} (« {id} »)",
        "en": "Undo of operation {run} ('{id}')",
    },
    "remedy.plan.for": {"fr": "Pour : {target} (constat {rule})", "en": "For: {target} ({rule})"},
    "remedy.plan.for_undo": {"fr": "Pour : {target}", "en": "For: {target}"},
    "remedy.plan.changes": {"fr": "Ce qui va changer :", "en": "What will change:"},
    "remedy.plan.api": {
        "fr": "API OVHcloud, {method} {path}",
        "en": "OVHcloud API, {method} {path}",
    },
    "remedy.plan.phone": {
        "fr": "le téléphone {ip} ({vendor}), par son interface d'administration",
        "en": "the phone {ip} ({vendor}), through its admin interface",
    },
    "remedy.plan.reset": {
        "fr": "API OVHcloud, POST .../phone/resetConfig : configuration régénérée pour l'IP"
        " publique {ip}",
        "en": "OVHcloud API, POST .../phone/resetConfig: configuration regenerated for the"
        " public IP {ip}",
    },
    "remedy.plan.reboot": {
        "fr": "API OVHcloud, POST .../phone/reboot : le téléphone redémarre",
        "en": "OVHcloud API, POST .../phone/reboot: the phone restarts",
    },
    "remedy.plan.kept": {"fr": "inchangé, noté : {values}", "en": "unchanged, noted: {values}"},
    "remedy.plan.verify_facts": {
        "fr": "Vérification : nouveau diagnostic ; attendu {facts}, et le constat {rule} disparu.",
        "en": "Verification: a new diagnosis; expected {facts}, and the finding {rule} gone.",
    },
    "remedy.plan.verify": {
        "fr": "Vérification : nouveau diagnostic ; le constat {rule} doit avoir disparu.",
        "en": "Verification: a new diagnosis; the finding {rule} must be gone.",
    },
    "remedy.plan.settle": {
        "fr": "Le nouveau diagnostic attend {s} s (redémarrage du téléphone ; --wait pour"
        " changer).",
        "en": "The new diagnosis waits {s} s (the phone restarting; --wait to change it).",
    },
    "remedy.plan.undo_yes": {
        "fr": "Annulation : possible (phonediag remedy undo).",
        "en": "Undo: possible (phonediag remedy undo).",
    },
    "remedy.plan.undo_no": {
        "fr": "Annulation : impossible (rien à remettre).",
        "en": "Undo: not possible (nothing to put back).",
    },
    "remedy.outcome.declined": {
        "fr": "Refusé : rien n'a été modifié.",
        "en": "Declined: nothing was changed.",
    },
    "remedy.outcome.failed": {"fr": "ÉCHEC : {why}", "en": "FAILED: {why}"},
    "remedy.outcome.applied": {"fr": "Appliqué.", "en": "Applied."},
    "remedy.outcome.undone": {
        "fr": "Annulé : les valeurs d'avant l'opération {run} sont rétablies (relues sur place).",
        "en": "Undone: the values from before operation {run} are back (read back).",
    },
    "remedy.outcome.audit": {
        "fr": "Journal : opération {run}.",
        "en": "Audit log: operation {run}.",
    },
    "remedy.outcome.audit_undo": {
        "fr": "Journal : opération {run} (pour l'annuler : phonediag remedy undo {run}).",
        "en": "Audit log: operation {run} (to undo it: phonediag remedy undo {run}).",
    },
    "remedy.verify.verified": {
        "fr": "Vérifié : le nouveau diagnostic ne montre plus le constat {rule} ({seen}).",
        "en": "Verified: the new diagnosis no longer shows {rule} ({seen}).",
    },
    "remedy.verify.still-present": {
        "fr": "Le changement est bien fait ({seen}), mais le constat {rule} est toujours là :"
        " une autre cause reste (phonediag remedy list).",
        "en": "The change is made ({seen}), but the finding {rule} is still there: another"
        " cause remains (phonediag remedy list).",
    },
    "remedy.verify.still-present-plain": {
        "fr": "Le nouveau diagnostic montre toujours le constat {rule} ({remaining}).",
        "en": "The new diagnosis still shows {rule} ({remaining}).",
    },
    "remedy.verify.not-taken": {
        "fr": "Le nouveau diagnostic voit encore l'ancienne valeur ({seen}) : le changement"
        " n'a pas pris.",
        "en": "The new diagnosis still sees the old value ({seen}): the change did not take.",
    },
    "remedy.verify.unverified": {
        "fr": "Non vérifié : le nouveau diagnostic n'a pas pu relire la cible ; relancez"
        " « phonediag diagnose » dans un moment.",
        "en": "Not verified: the new diagnosis could not read the target again; run"
        " 'phonediag diagnose' in a while.",
    },
    "remedy.log.none": {"fr": "Journal vide.", "en": "The audit log is empty."},
    "remedy.error.raw": {"fr": "{why}", "en": "{why}"},
    "remedy.note.unchanged": {
        "fr": "Rien n'a été modifié.",
        "en": "Nothing was changed.",
    },
    "remedy.note.restart_by_hand": {
        "fr": "Le téléphone n'a pas pu être redémarré à distance ({why}) : débranchez puis"
        " rebranchez son alimentation pour qu'il charge sa nouvelle configuration.",
        "en": "The phone could not be restarted remotely ({why}): unplug and plug back its"
        " power so it loads its new configuration.",
    },
    "remedy.ask_by_hand": {
        "fr": "Faites-le maintenant, attendez que le téléphone ait fini de démarrer, puis"
        " appuyez sur Entrée pour vérifier. ",
        "en": "Do it now, wait until the phone has started, then press Enter to check. ",
    },
    "remedy.note.activation_code": {
        "fr": "Gigaset/Siemens : sur le combiné, Réglages → Téléphonie → Assist VoIP, code PIN"
        " 0000, compte IP1, « code d'auto-configuration » : {code}",
        "en": "Gigaset/Siemens: on the handset, Settings → Telephony → VoIP wizard, PIN 0000,"
        " account IP1, “auto-configuration code”: {code}",
    },
    "remedy.rollback.restored": {
        "fr": "Remis comme avant ({what}), relu sur place.",
        "en": "Put back as it was ({what}), read back.",
    },
    "remedy.rollback.unchanged": {
        "fr": "Inchangé ({what}) : relu, toujours la valeur d'avant.",
        "en": "Unchanged ({what}): read back, still the value from before.",
    },
    "remedy.rollback.cannot": {
        "fr": "Déjà fait et impossible à défaire ({what}).",
        "en": "Already done and cannot be undone ({what}).",
    },
    "remedy.rollback.unknown": {
        "fr": "État inconnu ({what}) : impossible de le relire ou de le remettre ; vérifiez-le"
        " (espace client ou interface du téléphone).",
        "en": "State unknown ({what}): it could not be read back or put back; check it"
        " (control panel or the phone's interface).",
    },
    "remedy.why.no_keys": {
        "fr": "pas de clés d'API OVHcloud ({missing} introuvable(s))",
        "en": "no OVHcloud API keys ({missing} found nowhere)",
    },
    "remedy.why.api": {"fr": "API OVHcloud : {why}", "en": "OVHcloud API: {why}"},
    "remedy.why.no_line": {
        "fr": "aucune ligne OVHcloud associée (le diagnostic n'a pas lu la ligne)",
        "en": "no OVHcloud line joined to it (the diagnosis did not read the line)",
    },
    "remedy.why.no_api": {
        "fr": "la ligne n'a pas pu être lue chez OVHcloud ({why})",
        "en": "the line could not be read at OVHcloud ({why})",
    },
    "remedy.why.cannot_read": {
        "fr": "impossible de lire l'état actuel ({why})",
        "en": "the current state could not be read ({why})",
    },
    "remedy.why.already": {
        "fr": "déjà fait : {values} (modifié depuis le diagnostic ?)",
        "en": "already done: {values} (changed since the diagnosis?)",
    },
    "remedy.why.no_phone": {
        "fr": "aucun téléphone trouvé sur le réseau pour cette ligne",
        "en": "no phone found on the network for this line",
    },
    "remedy.why.no_reboot_path": {
        "fr": "ce téléphone ne se redémarre pas par son interface ({vendor} : aucune commande"
        " documentée par le fabricant) ; débranchez puis rebranchez son alimentation",
        "en": "this phone cannot be restarted through its interface ({vendor}: the maker"
        " documents no command); unplug and plug back its power",
    },
    "remedy.why.no_write_path": {
        "fr": "impossible par l'interface de ce téléphone ({vendor} : aucune écriture documentée"
        " par le fabricant) ; faites-le à la main",
        "en": "not possible through this phone's interface ({vendor}: the maker documents no"
        " way to write it); do it by hand",
    },
    "remedy.why.not_shown": {
        "fr": "le téléphone n'indique pas {keys}",
        "en": "the phone does not show {keys}",
    },
    "remedy.why.no_public_ip": {
        "fr": "adresse IP publique du bureau inconnue (ni STUN ni enregistrement vu par OVHcloud)",
        "en": "the office's public IP address is not known (neither STUN nor a registration"
        " seen by OVHcloud)",
    },
    "remedy.why.manual": {
        "fr": "correction à faire à la main",
        "en": "a remedy done by hand",
    },
    "remedy.why.portal_not_allowed": {
        "fr": "« {id} » n'est pas autorisée depuis le portail ([remedies] portal_allowed)",
        "en": "'{id}' is not allowed from the portal ([remedies] portal_allowed)",
    },
    "remedy.why.not_taken": {
        "fr": "accepté par l'appareil, mais la valeur relue n'a pas changé ({now})",
        "en": "accepted by the device, but the value read back did not change ({now})",
    },
    "remedy.why.no_audit": {
        "fr": "aucune opération n° {id} dans le journal (phonediag remedy log)",
        "en": "no operation {id} in the audit log (phonediag remedy log)",
    },
    "remedy.why.is_undo": {
        "fr": "l'opération {run} est déjà l'annulation de l'opération {of}",
        "en": "operation {run} is itself the undo of operation {of}",
    },
    "remedy.why.not_applied": {
        "fr": "l'opération {run} n'a rien modifié : rien à annuler",
        "en": "operation {run} changed nothing: nothing to undo",
    },
    "remedy.why.already_undone": {
        "fr": "l'opération {run} a déjà été annulée (opération {by})",
        "en": "operation {run} was already undone (operation {by})",
    },
    "remedy.why.no_undo": {
        "fr": "« {id} » ne s'annule pas (un redémarrage ou une reconfiguration ne se défait pas)",
        "en": "'{id}' cannot be undone (a restart or a reconfiguration cannot be taken back)",
    },
    "remedy.why.changed_since": {
        "fr": "la valeur a changé depuis l'opération ({now}) : rien n'est annulé, pour ne pas"
        " écraser ce changement",
        "en": "the value changed since the operation ({now}): nothing is undone, so as not to"
        " overwrite that change",
    },
    "remedy.why.precondition": {
        "fr": "la situation ne s'y prête pas ({trace})",
        "en": "the situation does not call for it ({trace})",
    },
    "remedy.why.not_supported": {
        "fr": "impossible de redémarrer à distance ce type de téléphone ({why}) ; redémarrez-le"
        " électriquement (phonediag remedy apply power-cycle-phone)",
        "en": "this type of phone cannot be restarted remotely ({why}); power-cycle it"
        " (phonediag remedy apply power-cycle-phone)",
    },
    "remedy.why.not_granted": {
        "fr": "les clés d'API ne permettent pas ce changement ({why}) : créez des clés avec les"
        " droits PUT et POST sur /telephony/*",
        "en": "the API keys do not allow this change ({why}): create keys with PUT and POST"
        " rights on /telephony/*",
    },
    "remedy.why.may_apply": {
        "fr": "(peut-être utile : état inconnu, {trace})",
        "en": "(may help: state unknown, {trace})",
    },
    "remedy.why.unknown": {
        "fr": "état inconnu ({trace})",
        "en": "state unknown ({trace})",
    },
    # ------------------------------------------------- run: deadline, interruption
    "run.interrupted": {
        "fr": "interrompu ({why}) : le rapport ne contient que ce qui a été vu jusque-là",
        "en": "interrupted ({why}): the report holds only what was seen until then",
    },
    # ------------------------------------------------- history, reports, bundle
    "history.not_stored": {
        "fr": "attention : ce passage n'a pas été enregistré dans l'historique ({why})",
        "en": "warning: this run was not stored in the history ({why})",
    },
    "report.store_error": {
        "fr": "historique inutilisable ({why}) (réglage [store] path)",
        "en": "the history cannot be used ({why}) ([store] path setting)",
    },
    "report.empty": {
        "fr": "Aucun rapport enregistré : chaque « phonediag diagnose » ou « phonediag discover »"
        " en enregistre un.",
        "en": "No report stored yet: every 'phonediag diagnose' or 'phonediag discover' stores"
        " one.",
    },
    "report.unknown": {
        "fr": "rapport inconnu : {id} (un numéro de « phonediag report list », ou last)",
        "en": "unknown report: {id} (a number from 'phonediag report list', or last)",
    },
    "report.list.title": {
        "fr": "Rapports enregistrés (les {shown} plus récents sur {total})",
        "en": "Stored reports (the newest {shown} of {total})",
    },
    "report.col.id": {"fr": "N°", "en": "ID"},
    "report.col.when": {"fr": "Date", "en": "When"},
    "report.col.command": {"fr": "Commande", "en": "Command"},
    "report.col.phones": {"fr": "Téléphones", "en": "Phones"},
    "report.col.critical": {"fr": "Critiques", "en": "Critical"},
    "report.col.warning": {"fr": "Attention", "en": "Warning"},
    "report.col.info": {"fr": "Info", "en": "Info"},
    "report.col.exit": {"fr": "Code", "en": "Exit"},
    "report.header": {
        "fr": "Rapport n° {id} — {when} — phonediag {command} — code de sortie {code}",
        "en": "Report {id} — {when} — phonediag {command} — exit code {code}",
    },
    "report.diff.title": {
        "fr": "Rapport n° {a} ({when_a}, {cmd_a}) → rapport n° {b} ({when_b}, {cmd_b})",
        "en": "Report {a} ({when_a}, {cmd_a}) → report {b} ({when_b}, {cmd_b})",
    },
    "report.diff.phones": {
        "fr": "Téléphones : {appeared} apparu(s), {disappeared} disparu(s), {changed} modifié(s)",
        "en": "Phones: {appeared} appeared, {disappeared} gone, {changed} changed",
    },
    "report.diff.appeared": {"fr": "apparu", "en": "appeared"},
    "report.diff.disappeared": {"fr": "disparu", "en": "gone"},
    "report.diff.changed_line": {"fr": "  ~ {phone} : {what}", "en": "  ~ {phone}: {what}"},
    "report.diff.field.vendor": {"fr": "marque", "en": "vendor"},
    "report.diff.field.model": {"fr": "modèle", "en": "model"},
    "report.diff.field.firmware": {"fr": "micrologiciel", "en": "firmware"},
    "report.diff.field.ip": {"fr": "adresse IP", "en": "IP address"},
    "report.diff.field.mac": {"fr": "adresse MAC", "en": "MAC address"},
    "report.diff.findings": {
        "fr": "Constats : {new} nouveau(x), {resolved} résolu(s), {still} toujours là",
        "en": "Findings: {new} new, {resolved} resolved, {still} still there",
    },
    "report.diff.new": {"fr": "NOUVEAU", "en": "NEW"},
    "report.diff.resolved": {"fr": "RÉSOLU", "en": "RESOLVED"},
    "report.diff.still": {"fr": "TOUJOURS", "en": "STILL"},
    "report.diff.not_compared": {
        "fr": "Constats non comparés : le rapport n° {id} est une découverte (phonediag"
        " discover), sans diagnostic.",
        "en": "Findings not compared: report {id} is a discovery (phonediag discover), with"
        " no diagnosis.",
    },
    "report.written": {
        "fr": "Rapport n° {id} écrit dans {path} ({format}).",
        "en": "Report {id} written to {path} ({format}).",
    },
    "report.cannot_write": {
        "fr": "impossible d'écrire {path} : {why}",
        "en": "cannot write {path}: {why}",
    },
    "report.html_unavailable": {
        "fr": "rapport HTML indisponible : {why}",
        "en": "the HTML report is not available: {why}",
    },
    "bundle.diagnosing": {
        "fr": "Aucun rapport enregistré : diagnostic en cours pour le dossier…",
        "en": "No stored report: running a diagnosis for the bundle…",
    },
    "bundle.written": {
        "fr": "Dossier pour le support : {path} (rapport n° {id}). Contenu : {files}."
        " Mots de passe, communautés SNMP et clés d'API y sont remplacés par ***.",
        "en": "Support bundle: {path} (report {id}). Inside: {files}. Passwords, SNMP"
        " communities and API keys are replaced by ***.",
    },
    "bundle.readme": {
        "fr": "Dossier de diagnostic phonediag, pour une demande au support\n"
        "\n"
        "Créé le {created} par phonediag {version}, à partir du rapport n° {id}\n"
        "(phonediag {command}, {when}).\n"
        "\n"
        "Contenu :\n"
        "  report.json   le rapport complet, au format JSON publié (schema_version {schema} :\n"
        "                report-v1.schema.json, docs/report.md)\n"
        "  report.html   le même rapport, à ouvrir dans un navigateur\n"
        "  report.txt    le même rapport en texte\n"
        "  evidence.json ce que chaque méthode a vu de chaque téléphone, et les vérifications\n"
        "                qui n'ont pas abouti\n"
        "  versions.txt  les versions de phonediag, de Python, du système et des bibliothèques\n"
        "  config.toml   la configuration utilisée (valeurs par défaut comprises)\n"
        "\n"
        "Aucun secret : mots de passe, communautés SNMP, clés et secrets de l'API OVHcloud\n"
        "sont remplacés par *** partout dans ce dossier.\n",
        "en": "phonediag diagnosis bundle, for a support ticket\n"
        "\n"
        "Made on {created} by phonediag {version}, from report {id}\n"
        "(phonediag {command}, {when}).\n"
        "\n"
        "Inside:\n"
        "  report.json   the full report, in the published JSON format (schema_version\n"
        "                {schema}: report-v1.schema.json, docs/report.md)\n"
        "  report.html   the same report, to open in a web browser\n"
        "  report.txt    the same report as text\n"
        "  evidence.json what each method saw of each phone, and the checks that did not\n"
        "                complete\n"
        "  versions.txt  the versions of phonediag, Python, the system and the libraries\n"
        "  config.toml   the configuration used (defaults included)\n"
        "\n"
        "No secret: passwords, SNMP communities, the OVHcloud API's keys and secrets are\n"
        "replaced by *** everywhere in this bundle.\n",
    },
    # portal mode's commands (serve, portal enroll|keygen|submit: agent/portal/)
    "portal.cannot_serve": {
        "fr": "mode portail impossible : {why}",
        "en": "cannot serve the portal: {why}",
    },
    "portal.enroll_failed": {"fr": "inscription refusée : {why}", "en": "enrolment refused: {why}"},
    "portal.enrolled": {
        "fr": "Poste inscrit : agent {agent}, courtier {broker}.\n"
        "Identité dans {dir} (empreinte de la clé de l'agent : {fingerprint}).\n"
        "Lancez maintenant : phonediag serve",
        "en": "Enrolled: agent {agent}, broker {broker}.\n"
        "Identity in {dir} (the agent's key fingerprint: {fingerprint}).\n"
        "Now run: phonediag serve",
    },
    "portal.keygen_failed": {
        "fr": "clés non créées : {why}",
        "en": "key pair not made: {why}",
    },
    "portal.keygen_done": {
        "fr": "Clés du portail écrites : {dir}/portal.key (privée) et {dir}/portal.pub "
        "(empreinte {fingerprint})",
        "en": "Portal key pair written: {dir}/portal.key (private) and {dir}/portal.pub "
        "(fingerprint {fingerprint})",
    },
    "portal.submit_bad": {"fr": "tâche non envoyée : {why}", "en": "job not sent: {why}"},
    "portal.submit_broker": {
        "fr": "courtier MQTT inutilisable : {why}",
        "en": "the MQTT broker cannot be used: {why}",
    },
    "portal.no_answer": {
        "fr": "pas de résultat de l'agent {agent} pour la tâche {job} en {timeout:g} s",
        "en": "no result from agent {agent} for job {job} within {timeout:g} s",
    },
    "portal.result": {
        "fr": "Tâche {job} ({kind}) sur {agent} : {status}",
        "en": "Job {job} ({kind}) on {agent}: {status}",
    },
    "portal.status.done": {"fr": "terminée", "en": "done"},
    "portal.status.rejected": {"fr": "refusée", "en": "rejected"},
    "portal.status.failed": {"fr": "échouée", "en": "failed"},
    "portal.status.interrupted": {"fr": "interrompue", "en": "interrupted"},
    "portal.exit_code": {
        "fr": "  code de sortie de la commande : {code}",
        "en": "  the command's exit code: {code}",
    },
    # The router read over SSH ([router] ssh) and `phonediag ssh`
    "router.hostkey_pinned": {
        "fr": "Routeur {host} : clé d'hôte SSH enregistrée à cette première connexion"
        " ({fingerprint}) ; elle sera vérifiée à chaque diagnostic.",
        "en": "Router {host}: SSH host key pinned on this first connection ({fingerprint});"
        " it will be checked on every diagnosis.",
    },
    "ssh.bad_host": {
        "fr": "hôte invalide : {why} (attendu : ADRESSE ou ADRESSE:PORT)",
        "en": "invalid host: {why} (expected: ADDRESS or ADDRESS:PORT)",
    },
    "ssh.file_error": {
        "fr": "fichier des clés d'hôtes {path} illisible : {why}",
        "en": "host keys file {path} unreadable: {why}",
    },
    "ssh.list.none": {
        "fr": "Aucune clé d'hôte SSH enregistrée ({path}).",
        "en": "No SSH host key pinned ({path}).",
    },
    "ssh.list.title": {
        "fr": "Clés d'hôtes SSH enregistrées ({path}) :",
        "en": "Pinned SSH host keys ({path}):",
    },
    "ssh.not_found": {
        "fr": "aucune clé enregistrée pour {host} dans {path}",
        "en": "no key pinned for {host} in {path}",
    },
    "ssh.forgotten": {
        "fr": "Clé oubliée pour {host} ({fingerprints}) : la prochaine connexion enregistrera"
        " la clé que présentera l'hôte, et le dira.",
        "en": "Key forgotten for {host} ({fingerprints}): the next connection pins the key the"
        " host shows, and says so.",
    },
}

MESSAGES.update(_TROUBLESHOOT)
MESSAGES.update(_PORTAL)


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
