"""``phonediag troubleshoot``: the end user's guided troubleshooter.

Modelled on the control panel's "Dépannage Plug & Phone" wizard, but it measures before it
asks: the person picks a symptom (or lets it detect), phonediag finds the phones and runs
the probes, then walks the findings that answer the symptom — one or two sentences of
diagnosis, an automatic remedy offered with consent, or numbered steps followed by
« Ça fonctionne ! » / « Ça ne fonctionne toujours pas ? » — and ends, when nothing solved
it, with a summary ready to paste into a support request.

- ``session.py``: the walk (what to show, in which order, what to do with the answers);
- ``ui.py``: the person's side (a terminal, or scripted answers: ``--yes``/``--no``);
- ``summary.py``: the support summary.
"""
