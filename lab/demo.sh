#!/bin/sh
# `make demo`: the lab office (three phones of three families) with one visible fault,
# an ISP blocking UDP 5060, diagnosed by phonediag from the agent host; then torn down.
# Run inside `unshare -n` (the Makefile does it).
set -u
PY=.venv/bin/python
export PHONEDIAG_LAB="demo-$$"
trap '$PY -m lab down >/dev/null 2>&1' EXIT
trap 'exit 130' INT TERM

$PY -m lab up --scenario port-5060-blocked || exit 1
echo
echo "== phonediag diagnose (sur l'hôte « agent » du labo / on the lab's agent host) =="
$PY -m lab run -- phonediag diagnose --lang "${PHONEDIAG_LANG:-fr}"
rc=$?
# 1 means "problems found": exactly what this demo is meant to show.
[ "$rc" -le 1 ] || exit "$rc"
exit 0
