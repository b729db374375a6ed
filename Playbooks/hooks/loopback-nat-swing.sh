#!/usr/bin/env bash
# A cutover hook (P5) for a lab on one machine: the site address is a NAT (a socat forward) in front of the
# appliance. appliancectl runs the hook after the old appliance let go of the site address; the hook points the
# forward at the new appliance and returns once the site address listens again. appliancectl then checks that
# the site address answers with the new appliance's id and certificate.
#
# appliancectl sets APPLIANCE_SITE_ADDRESS, APPLIANCE_NEW_HOST and APPLIANCE_NEW_PORT (and APPLIANCE_OLD_ADDRESS,
# APPLIANCE_NEW_ADDRESS). CUTOVER_NAT_PIDFILE names the file holding the current forward's process id (a hook gets
# only PATH, HOME, LANG, LC_ALL, TZ, TMPDIR, those APPLIANCE_* variables and CUTOVER_* settings, never a password).
set -euo pipefail
site_host=${APPLIANCE_SITE_ADDRESS%:*}
site_port=${APPLIANCE_SITE_ADDRESS##*:}
pidfile=${CUTOVER_NAT_PIDFILE:?set CUTOVER_NAT_PIDFILE to the file that holds the process id of the forward}
if [ -s "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    sleep 0.2
fi
setsid socat "TCP-LISTEN:$site_port,bind=$site_host,reuseaddr,fork" "TCP:$APPLIANCE_NEW_HOST:$APPLIANCE_NEW_PORT" \
    </dev/null >/dev/null 2>&1 &
echo $! >"$pidfile"
for _ in $(seq 1 50); do
    if (exec 3<>"/dev/tcp/$site_host/$site_port") 2>/dev/null; then
        echo "site address $APPLIANCE_SITE_ADDRESS now forwards to $APPLIANCE_NEW_HOST:$APPLIANCE_NEW_PORT"
        exit 0
    fi
    sleep 0.1
done
echo "the forward on $APPLIANCE_SITE_ADDRESS did not start (is socat installed?)" >&2
exit 1
