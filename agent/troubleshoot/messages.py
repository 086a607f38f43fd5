"""The troubleshooter's sentences (merged into agent.i18n.MESSAGES), French first: the
wording of the control panel's wizard where it has one (« Ça fonctionne ! », « Ça ne
fonctionne toujours pas ? »)."""

from __future__ import annotations

MESSAGES: dict[str, dict[str, str]] = {
    "ts.welcome": {
        "fr": "Dépannage de vos téléphones Plug & Phone : phonediag mesure avant de vous"
        " poser des questions.",
        "en": "Plug & Phone troubleshooting: phonediag measures before it asks you anything.",
    },
    "ts.ask_symptom": {"fr": "Que se passe-t-il ?", "en": "What is happening?"},
    "ts.detect": {
        "fr": "Je ne sais pas : cherchez vous-même",
        "en": "I don't know: find out yourself",
    },
    "ts.ask_message": {
        "fr": "Quel message s'affiche sur le téléphone ? (Entrée si aucun)",
        "en": "Which message does the phone show? (Enter if none)",
    },
    "ts.ask_phone": {
        "fr": "Quel téléphone est concerné ?",
        "en": "Which phone is it about?",
    },
    "ts.all_phones": {"fr": "Je ne sais pas / tous", "en": "I don't know / all of them"},
    "ts.unknown_phone": {"fr": "téléphone", "en": "phone"},
    "ts.your_choice": {"fr": "Votre choix (1-{n}) : ", "en": "Your choice (1-{n}): "},
    "ts.bad_choice": {
        "fr": "Répondez par un nombre de 1 à {n}.",
        "en": "Answer with a number from 1 to {n}.",
    },
    "ts.yes_no": {"fr": "oui/non", "en": "yes/no"},
    "ts.measuring": {
        "fr": "Recherche des téléphones et tests du réseau, de la ligne et des téléphones…",
        "en": "Finding the phones and testing the network, the line and the phones…",
    },
    "ts.applying": {
        "fr": "Correction en cours, puis nouveau diagnostic…",
        "en": "Fixing, then diagnosing again…",
    },
    "ts.phones_found": {
        "fr": "Téléphones trouvés sur le réseau : {n}.",
        "en": "Phones found on the network: {n}.",
    },
    "ts.about_phone": {"fr": "Téléphone concerné : {phone}.", "en": "The phone: {phone}."},
    "ts.nothing_measured": {
        "fr": "Les tests n'ont trouvé aucun problème sur le réseau, la ligne ni le téléphone.",
        "en": "The tests found no problem with the network, the line or the phone.",
    },
    "ts.diagnosis": {"fr": "Diagnostic : {text}", "en": "Diagnosis: {text}"},
    "ts.steps": {"fr": "Que faire :", "en": "What to do:"},
    "ts.works_q": {
        "fr": "Après ces étapes, est-ce que ça fonctionne ?",
        "en": "After these steps, does it work?",
    },
    "ts.check_q": {
        "fr": "Vérifiez : appelez la ligne depuis un autre téléphone (ou refaites ce qui ne"
        " marchait pas). Est-ce que ça fonctionne ?",
        "en": "Check it: call the line from another phone (or do again what did not work)."
        " Does it work?",
    },
    "ts.nothing_q": {
        "fr": "Est-ce que ça fonctionne maintenant ?",
        "en": "Does it work now?",
    },
    "ts.works": {"fr": "Ça fonctionne !", "en": "It works!"},
    "ts.still": {"fr": "Ça ne fonctionne toujours pas ?", "en": "It still doesn't work?"},
    "ts.solved": {
        "fr": "Ça fonctionne ! Problème résolu.",
        "en": "It works! Problem solved.",
    },
    "ts.unsolved": {
        "fr": "Le problème n'est pas résolu. Contactez le support OVHcloud avec ce résumé.",
        "en": "The problem is not solved. Contact OVHcloud support with this summary.",
    },
    "ts.remedy_offer": {
        "fr": "phonediag peut corriger cela pour vous : {title}",
        "en": "phonediag can fix this for you: {title}",
    },
    "ts.remedy_ask": {"fr": "Voulez-vous qu'il le fasse ?", "en": "Do you want it to?"},
    "ts.remedy_cannot": {
        "fr": "Correction automatique impossible ici ({why}).",
        "en": "No automatic fix here ({why}).",
    },
    "ts.unknown_symptom": {
        "fr": "symptôme inconnu « {symptom} » ; symptômes possibles : {known}",
        "en": "unknown symptom '{symptom}'; known symptoms: {known}",
    },
    "ts.sum.title": {
        "fr": "=== Résumé pour le support OVHcloud (à copier-coller) ===",
        "en": "=== Summary for OVHcloud support (copy and paste it) ===",
    },
    "ts.sum.date": {"fr": "Date : {when}", "en": "Date: {when}"},
    "ts.sum.problem": {"fr": "Problème signalé : {problem}", "en": "Problem: {problem}"},
    "ts.sum.message": {
        "fr": "Message affiché : « {message} »",
        "en": "Message on the screen: “{message}”",
    },
    "ts.sum.phone": {"fr": "Téléphone : {phone}", "en": "Phone: {phone}"},
    "ts.sum.no_phone": {
        "fr": "Téléphone : aucun trouvé sur le réseau de cet ordinateur",
        "en": "Phone: none found on this computer's network",
    },
    "ts.sum.local_ip": {"fr": "IP locale {ip}", "en": "local IP {ip}"},
    "ts.sum.firmware": {"fr": "micrologiciel {fw}", "en": "firmware {fw}"},
    "ts.sum.line": {"fr": "ligne {line}", "en": "line {line}"},
    "ts.sum.line_word": {"fr": "ligne", "en": "line"},
    "ts.sum.registered": {"fr": "ligne enregistrée", "en": "line registered"},
    "ts.sum.not_registered": {"fr": "ligne NON enregistrée", "en": "line NOT registered"},
    "ts.sum.public_ip": {
        "fr": "Adresse IP publique du réseau : {ip}",
        "en": "The network's public IP address: {ip}",
    },
    "ts.sum.tests": {
        "fr": "Tests faits par phonediag : {tests}",
        "en": "Tests run by phonediag: {tests}",
    },
    "ts.sum.ok": {"fr": "fait", "en": "done"},
    "ts.sum.failed": {"fr": "échec", "en": "failed"},
    "ts.sum.findings": {"fr": "Constats :", "en": "Findings:"},
    "ts.sum.none": {"fr": "aucun", "en": "none"},
    "ts.sum.tried": {"fr": "Déjà essayé :", "en": "Already tried:"},
    "ts.sum.audit": {"fr": "journal n° {run}", "en": "audit log #{run}"},
    "ts.sum.contact": {
        "fr": "Support OVHcloud : 1007 (lun.–ven. 8 h–20 h, sam. 9 h–17 h), ou espace client"
        " → Assistance → « Créer une demande d'assistance ».",
        "en": "OVHcloud support: 1007 (Mon–Fri 8am–8pm, Sat 9am–5pm), or the control panel"
        " → Assistance → “Create a support request”.",
    },
}
