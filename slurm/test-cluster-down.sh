#!/usr/bin/env bash
# Stop the test cluster that slurm/test-cluster-up.sh STATE_DIR started:
# exactly the pids recorded in STATE_DIR/run (slurmd n1, slurmd n2, slurmctld,
# and munged only if the up-script started it). SIGTERM, then SIGKILL after
# ~10 s. Never looks processes up by name. Exit 0 if there is nothing to stop.
#
#   bash slurm/test-cluster-down.sh /tmp/slurm-test
set -euo pipefail

die() { echo "test-cluster-down: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: $0 STATE_DIR (absolute path)"
STATE=$1
[[ $STATE == /* ]] || die "STATE_DIR must be an absolute path: $STATE"
CONF=$STATE/slurm.conf
RUN=$STATE/run

# pid_of PIDFILE PATTERN: print the recorded pid if that process still runs and
# its command line matches PATTERN (a recycled pid is someone else's: skip it).
pid_of() {
    local pid
    [[ -s $1 ]] || return 0
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/cmdline ]] || return 0
    if tr '\0' ' ' </proc/"$pid"/cmdline | grep -q -- "$2"; then echo "$pid"; fi
}

# running PID: the process exists and is not a zombie (this container's init
# reaps exited daemons late, and kill -0 succeeds on a zombie).
running() {
    local state
    state=$(awk '{print $3}' /proc/"$1"/stat 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}

# stop PID...: SIGTERM all, wait up to ~10 s, then SIGKILL the survivors.
# Signalling both slurmd together halves the wait.
stop() {
    local pid left
    (($#)) || return 0
    kill -TERM "$@" 2>/dev/null || true
    for _ in $(seq 100); do
        left=()
        for pid in "$@"; do
            if running "$pid"; then left+=("$pid"); fi
        done
        ((${#left[@]})) || return 0
        sleep 0.1
    done
    echo "pids ${left[*]} ignored SIGTERM; sending SIGKILL"
    kill -KILL "${left[@]}" 2>/dev/null || true
    sleep 1
    for pid in "${left[@]}"; do
        if running "$pid"; then echo "warning: pid $pid still alive" >&2; fi
    done
}

# collect NAME PIDFILE PATTERN: add the recorded pid to PIDS if it is ours.
collect() {
    local pid
    pid=$(pid_of "$2" "$3")
    if [[ -n $pid ]]; then echo "stopping $1 (pid $pid)"; PIDS+=("$pid"); fi
}

# Cancel this cluster's jobs first: slurmstepd and job processes outlive a
# stopped slurmd, and only Slurm knows which processes are this cluster's.
if [[ -n $(pid_of "$RUN/slurmctld.pid" "slurmctld.*$CONF") ]]; then
    export SLURM_CONF=$CONF
    if [[ -n $(squeue -h -o %i 2>/dev/null) ]]; then
        echo "cancelling jobs still in the queue"
        scancel --partition=debug 2>/dev/null || true
        for _ in $(seq 20); do          # ~10 s (KillWait=5)
            [[ -z $(squeue -h -t running,completing -o %i 2>/dev/null) ]] && break
            sleep 0.5
        done
    fi
fi

# slurmd first, so they do not log errors about a vanished controller; munged
# last, since the slurm daemons use it while shutting down.
PIDS=()
collect "slurmd n1" "$RUN/slurmd.n1.pid" "slurmd.*-N n1.*$CONF"
collect "slurmd n2" "$RUN/slurmd.n2.pid" "slurmd.*-N n2.*$CONF"
stop "${PIDS[@]}"
PIDS=()
collect slurmctld "$RUN/slurmctld.pid" "slurmctld.*$CONF"
stop "${PIDS[@]}"
if [[ -e $RUN/munged.started ]]; then
    PIDS=()
    collect munged "$RUN/munged.pid" munged
    stop "${PIDS[@]}"
    rm -f "$RUN/munged.started"
fi
rm -f "$RUN"/*.pid
