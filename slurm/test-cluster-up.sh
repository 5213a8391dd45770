#!/usr/bin/env bash
# Bring up a throw-away, real Slurm cluster on this one machine, for tests:
# one slurmctld plus two virtual nodes (n1, n2: two slurmd on one host,
# which the Debian MULTIPLE_SLURMD build supports), partition "debug".
# Everything lives in STATE_DIR; nothing is written to /etc/slurm.
#
#   bash slurm/test-cluster-up.sh /tmp/slurm-test
#   eval "$(bash slurm/test-cluster-up.sh /tmp/slurm-test | tail -n1)"
#
# The last stdout line is "export SLURM_CONF=STATE_DIR/slurm.conf".
# Stop it with slurm/test-cluster-down.sh STATE_DIR. Needs root.
set -euo pipefail

die() { echo "test-cluster-up: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: $0 STATE_DIR (absolute path)"
STATE=$1
[[ $STATE == /* ]] || die "STATE_DIR must be an absolute path: $STATE"
[[ $(id -u) -eq 0 ]] || die "must run as root (SlurmUser=root, munged setup)"

CONF=$STATE/slurm.conf
RUN=$STATE/run
LOG=$STATE/log
NODES=(n1 n2)
CTLD_PORT=16817                       # not 6817: must not collide with a system Slurm
declare -A NODE_PORT=([n1]=17001 [n2]=17002)

# alive PIDFILE PATTERN: the pid in PIDFILE runs and its command line matches
# PATTERN (guards against a recycled pid belonging to someone else).
alive() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' </proc/"$pid"/cmdline | grep -q -- "$2"
}

# --- already up? -----------------------------------------------------------
n_alive=0
alive "$RUN/slurmctld.pid" "slurmctld.*$CONF" && n_alive=$((n_alive + 1))
for n in "${NODES[@]}"; do
    alive "$RUN/slurmd.$n.pid" "slurmd.*-N $n.*$CONF" && n_alive=$((n_alive + 1))
done
if ((n_alive == 1 + ${#NODES[@]})); then
    echo "test cluster already running in $STATE"
    echo "export SLURM_CONF=$CONF"
    exit 0
elif ((n_alive > 0)); then
    die "some daemons of a previous run are still alive in $STATE; run slurm/test-cluster-down.sh $STATE first"
fi

# Ports are fixed, so a second cluster (other STATE_DIR) cannot run beside
# this one; without this check its sinfo would happily report the first one.
for port in "$CTLD_PORT" "${NODE_PORT[@]}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "port $port already in use (another test cluster up? see its STATE_DIR)"
    fi
done

# --- fresh state -----------------------------------------------------------
# A munged we started earlier and that still runs stays ours to stop: keep
# its record. Old job state would be recovered by slurmctld: drop it.
our_munged=
if [[ -e $RUN/munged.started ]] && alive "$RUN/munged.pid" munged; then
    our_munged=$(<"$RUN/munged.pid")
fi
rm -rf "$STATE/state" "$STATE/spool" "$RUN" "$LOG"
mkdir -p "$STATE/state" "$RUN" "$LOG"
for n in "${NODES[@]}"; do
    # slurmd refuses to start if its spool dir is missing
    mkdir -p "$STATE/spool/$n"
    chmod 755 "$STATE/spool/$n"
done

# --- munge -----------------------------------------------------------------
# Reuse a munged that already answers (system service or another test run);
# only start our own otherwise, and remember that we did.
if [[ -n $our_munged ]]; then
    echo "$our_munged" >"$RUN/munged.pid"
    touch "$RUN/munged.started"
    echo "munged started by an earlier run still up (pid $our_munged); reusing it"
elif munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    echo "munged already answering; reusing it"
else
    if [[ ! -s /etc/munge/munge.key ]]; then
        install -d -o munge -g munge -m 700 /etc/munge
        (umask 077 && head -c 128 /dev/urandom >/etc/munge/munge.key)
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 755 /run/munge
    # munged daemonizes and writes its pid to /run/munge (it runs as munge and
    # cannot write into a root-owned STATE_DIR); copy the pid afterwards.
    rm -f /run/munge/munged.pid
    setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged
    for _ in $(seq 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.1
    done
    munge -n | unmunge >/dev/null || die "munged did not come up (see /var/log/munge/munged.log)"
    cp /run/munge/munged.pid "$RUN/munged.pid"
    touch "$RUN/munged.started"
    echo "started munged (pid $(<"$RUN/munged.pid"))"
fi

# --- slurm.conf ------------------------------------------------------------
# Settings measured to work in a container (no cgroups, no systemd):
#  proctrack/linuxproc + task/none: no cgroup plugins needed.
#  SlurmdParameters=config_overrides: both virtual nodes advertise all CPUs of
#    the one host without slurmd draining them for "low resources".
#  AuthInfo=cred_expire=10: a requeued job is held until its old credential
#    expires (default 120 s); 10 s makes requeue tests fast.
#  sched_interval/bf_interval=5: pending jobs are looked at every 5 s, not 60 s.
#  SelectTypeParameters=CR_Core: memory is not a consumable resource, so jobs
#    never pend on RealMemory (left at its default).
HOST=$(hostname -s)
CPUS=$(nproc)
cat >"$CONF" <<EOF
# Generated by slurm/test-cluster-up.sh for a single-machine test cluster.
ClusterName=cpttest
SlurmctldHost=$HOST
SlurmctldPort=$CTLD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG/jobcomp.txt
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool/%n
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.%n.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.%n.log
SlurmctldDebug=info
SlurmdDebug=info
ReturnToService=2
JobRequeue=1
KillWait=5
MinJobAge=30
SlurmdTimeout=30
InactiveLimit=0
Waittime=0
NodeName=n1 NodeHostname=$HOST NodeAddr=127.0.0.1 Port=${NODE_PORT[n1]} CPUs=$CPUS Sockets=1 CoresPerSocket=$CPUS ThreadsPerCore=1 State=UNKNOWN
NodeName=n2 NodeHostname=$HOST NodeAddr=127.0.0.1 Port=${NODE_PORT[n2]} CPUs=$CPUS Sockets=1 CoresPerSocket=$CPUS ThreadsPerCore=1 State=UNKNOWN
PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
EOF

# --- daemons ---------------------------------------------------------------
# Each daemon forks into the background and writes its pid file into $RUN;
# test-cluster-down.sh stops exactly those pids.
t0=$EPOCHREALTIME
slurmctld -f "$CONF"
for n in "${NODES[@]}"; do
    slurmd -N "$n" -f "$CONF"
done

export SLURM_CONF=$CONF
ok=0
for _ in $(seq 60); do          # ~30 s
    states=$(sinfo -h -N -p debug -o '%N %t' 2>/dev/null | sort -u || true)
    if [[ $states == $'n1 idle\nn2 idle' ]]; then ok=1; break; fi
    sleep 0.5
done
if ((ok == 0)); then
    echo "test-cluster-up: nodes not idle after 30 s; sinfo says:" >&2
    sinfo -N 2>&1 | sed 's/^/  /' >&2 || true
    for f in "$LOG"/slurmctld.log "$LOG"/slurmd.*.log; do
        [[ -e $f ]] || continue
        echo "--- tail $f" >&2
        tail -n 20 "$f" >&2
    done
    echo "(daemons left running; stop them with slurm/test-cluster-down.sh $STATE)" >&2
    exit 1
fi
awk -v a="$t0" -v b="$EPOCHREALTIME" \
    'BEGIN { printf "test cluster up in %.1f s (nodes n1 n2 idle, partition debug)\n", b - a }'
echo "export SLURM_CONF=$CONF"
