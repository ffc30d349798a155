#!/usr/bin/env bash
# Stops the one-node SLURM that .ci/slurm-up.sh started: cancels its jobs, stops slurmd, slurmctld and (if slurm-up.sh
# started it) munged by the PIDs recorded in $STATE, and puts /etc/slurm back as it was. The packages stay installed;
# the daemons' logs stay in $STATE. Idempotent: with nothing running it does nothing.
set -euo pipefail

STATE=${MATLABEL_SLURM_STATE:-/var/lib/matlabel-slurm-ci}
CONF_DIR=/etc/slurm
MARK=MATLABEL-CI-SLURM

alive() { [[ -s $1 ]] && [[ $(cat "/proc/$(cat "$1")/comm" 2>/dev/null) == "$2"* ]]; }
# Stops the process recorded in PID file $1 (command $2): TERM, up to 10 s, then KILL.
stop() {
    local pidfile=$1 comm=$2 pid
    if alive "$pidfile" "$comm"; then
        pid=$(cat "$pidfile")
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$pidfile"
}

[[ -d $STATE ]] || exit 0

# Jobs still queued or running on our cluster (a test that timed out) go first, so no slurmstepd outlives slurmd.
if alive "$STATE/slurmctld.pid" slurmctld && grep -qs "$MARK" "$CONF_DIR/slurm.conf"; then
    jobs=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
    if [[ -n $jobs ]]; then
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs 2>/dev/null || true
        for _ in $(seq 30); do [[ -z $(timeout 10 squeue -h -t R,CG -o %i 2>/dev/null) ]] && break; sleep 0.5; done
    fi
fi

stop "$STATE/slurmd.pid" slurmd
stop "$STATE/slurmctld.pid" slurmctld
stop "$STATE/munged.pid" munged   # absent when a munged was already running before slurm-up.sh

for name in slurm.conf gres.conf; do
    target=$CONF_DIR/$name
    if grep -qs "$MARK" "$target"; then rm -f "$target"; fi
    if [[ -e $STATE/$name.orig ]]; then mv "$STATE/$name.orig" "$target"; fi
done
