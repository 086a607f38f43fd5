#!/bin/sh
# Install the Debian packages the lab and the tests need (Debian 12, as root).
# Daemons must not start in the machine's own namespace: a policy-rc.d that
# refuses every start is put in place for the install (and removed if we added it).
# chromium (+ a font, a mere recommendation of it) renders the HTML report in its test,
# driven by Playwright's Python package against /usr/bin/chromium: no browser download.
# mosquitto is the portal's MQTT broker, run by the lab at its provider only: its system
# service is also disabled, so that no boot ever starts it on the machine itself.
# openssh-server is the router's SSH face, run by the lab in the router namespace only:
# when this script installs it, /etc/ssh/sshd_not_to_be_run (honoured by Debian's unit and
# init script) and a disabled unit keep any boot from starting it on the machine itself.
set -eu

PKGS="kamailio baresip coturn snmpd snmp dnsmasq-base avahi-daemon nftables iptables
iproute2 conntrack tcpdump sipsak procps util-linux python3-venv mosquitto
openssh-server chromium fonts-liberation"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "lab/install-deps.sh: missing packages:$missing; run as root to install them" >&2
    exit 1
fi

added=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    added=yes
fi
echo "Installing:$missing"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
case "$missing" in
*" mosquitto"*)
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now mosquitto >/dev/null 2>&1 || true
    fi
    ;;
esac
case "$missing" in
*" openssh-server"*)
    touch /etc/ssh/sshd_not_to_be_run
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true
    fi
    ;;
esac
[ -n "$added" ] && rm -f /usr/sbin/policy-rc.d
exit 0
