#!/usr/bin/env bash
# A real one-node SLURM on this machine, for tests/test_slurm.py (and anyone who wants to try profiles/slurm locally).
#   .ci/slurm-up.sh      installs slurm-wlm + munge from Debian if missing, writes /etc/slurm/{slurm,gres}.conf from
#                       .ci/*.conf.in (node "localhost": the real CPU count and memory, one fake GPU, partitions cpu + gpu),
#                       starts munged, slurmctld and slurmd, records their PIDs in $STATE and waits for the node.
#   .ci/slurm-down.sh    stops them by those PIDs and puts /etc/slurm back.
# Idempotent and quiet: a second call with the daemons up does nothing. Root and Debian only.
# Exit status: 0 up; 3 not possible here (not root, not Debian, packages not installable): callers skip;
# anything else: a real failure (the daemons' log tails are printed).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
STATE=${MATLABEL_SLURM_STATE:-/var/lib/matlabel-slurm-ci}
CONF_DIR=/etc/slurm        # the plugin drops SLURM_CONF inside jobs, so the config must be where SLURM looks by default
MARK=MATLABEL-CI-SLURM     # first line of the files we write; anything else in /etc/slurm is backed up, then restored
CTLD_PORT=${MATLABEL_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${MATLABEL_SLURM_SLURMD_PORT:-6818}
WAIT_S=60

log() { echo "slurm-up: $*" >&2; }
die() {
    local rc=$1
    shift
    log "$*"
    exit "$rc"
}
# PID file $1 names a live process whose command is $2.
alive() { [[ -s $1 ]] && [[ $(cat "/proc/$(cat "$1")/comm" 2>/dev/null) == "$2"* ]]; }
node_state() { timeout 10 sinfo -h -n localhost -o %T 2>/dev/null || true; }
ready() { [[ $(node_state) =~ ^(idle|mix|alloc) ]]; }
show_logs() {
    for f in "$STATE"/slurmctld.log "$STATE"/slurmd.log /var/log/munge/munged.log; do
        [[ -f $f ]] && { echo "--- tail $f" >&2; tail -n 20 "$f" >&2; }
    done
    return 0
}

[[ $(id -u) == 0 ]] || die 3 "needs root (installs packages, writes $CONF_DIR, runs the daemons)"
if [[ ! -r /etc/debian_version ]] || ! command -v apt-get >/dev/null; then die 3 "needs Debian (apt-get)"; fi

if alive "$STATE/slurmctld.pid" slurmctld && alive "$STATE/slurmd.pid" slurmd && ready; then
    exit 0
fi
mkdir -p "$STATE"

# --- packages -------------------------------------------------------------------------------------------------------
missing=()
for pkg in slurmctld slurmd slurm-client munge; do
    dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    log "installing slurm-wlm munge (apt-get; log in $STATE/apt.log)"
    policy=/usr/sbin/policy-rc.d   # keep the packages from starting the distribution's services with no config
    own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1
    fi
    apt_install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge; }
    ok=0
    { apt_install || { apt-get update -qq && apt_install; }; } >"$STATE/apt.log" 2>&1 && ok=1
    ((own_policy)) && rm -f "$policy"
    ((ok)) || { tail -n 5 "$STATE/apt.log" >&2; die 3 "could not install slurm-wlm and munge"; }
fi

# --- configuration --------------------------------------------------------------------------------------------------
cpus=$(nproc)
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)   # 10% left to the OS and the daemons
mkdir -p "$CONF_DIR"
for name in slurm.conf gres.conf; do
    target=$CONF_DIR/$name
    if [[ -e $target ]] && ! grep -q "$MARK" "$target" && [[ ! -e $STATE/$name.orig ]]; then
        cp -p "$target" "$STATE/$name.orig"
        log "backed up $target to $STATE/$name.orig (slurm-down.sh restores it)"
    fi
    sed -e "s|@STATE@|$STATE|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEM_MB@|$mem_mb|g" \
        -e "s|@CTLD_PORT@|$CTLD_PORT|g" -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" "$HERE/$name.in" >"$target.tmp"
    mv "$target.tmp" "$target"
done

# --- munged (reused if one already answers; only one we start is ours to stop) --------------------------------------
if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey --create --keyfile /etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
fi
if ! alive "$STATE/munged.pid" munged; then
    rm -f "$STATE/munged.pid"
    if ! timeout 5 munge -n 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; then
        install -d -o munge -g munge -m 755 /run/munge
        runuser -u munge -- /usr/sbin/munged || { show_logs; die 1 "munged did not start"; }
        for _ in $(seq 50); do [[ -s /run/munge/munged.pid ]] && break; sleep 0.1; done
        cp /run/munge/munged.pid "$STATE/munged.pid" 2>/dev/null || true
    fi
fi
timeout 5 munge -n 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1 || { show_logs; die 1 "munged does not answer"; }

# --- slurmctld, slurmd (both fork and write their PID files into $STATE) ----------------------------------------------
# start NAME COMMAND...: runs COMMAND unless NAME's recorded PID is alive, then waits (10 s at most) for its PID file.
start() {
    local name=$1
    shift
    alive "$STATE/$name.pid" "$name" && return 0
    rm -f "$STATE/$name.pid"
    "$@" || { show_logs; die 1 "$name did not start"; }
    for _ in $(seq 100); do alive "$STATE/$name.pid" "$name" && return 0; sleep 0.1; done
    show_logs
    die 1 "$name exited at start (its log is above)"
}
mkdir -p "$STATE/slurmctld" "$STATE/slurmd"
start slurmctld slurmctld -c          # -c: no jobs or node states from an earlier run
start slurmd slurmd -N localhost      # -N: the node is "localhost" whatever this machine's hostname

deadline=$((SECONDS + WAIT_S))
resumed=0
while true; do
    state=$(node_state)
    case $state in
    idle* | mix* | alloc*) break ;;
    drain* | down*)   # e.g. a state file from an earlier run: return it to service once
        ((resumed)) || timeout 10 scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true
        resumed=1 ;;
    esac
    for daemon in slurmctld slurmd; do
        alive "$STATE/$daemon.pid" "$daemon" || { show_logs; die 1 "$daemon exited (its log is above)"; }
    done
    if ((SECONDS > deadline)); then
        show_logs
        die 1 "node localhost not ready after ${WAIT_S}s (state: '${state:-no answer}')"
    fi
    sleep 1
done
log "up: node localhost, $cpus CPUs, $mem_mb MB, 1 fake GPU; partitions cpu (default) and gpu; PIDs in $STATE"
