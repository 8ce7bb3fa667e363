#!/usr/bin/env bash
# Start or stop a real single-node Slurm cluster (munged, slurmctld, slurmd) without systemd.
# Usage: local_slurm.sh start DIR [VIRTUAL_CPUS] | stop DIR | env DIR
# All state (config, spool, logs, pid files) lives under DIR; clients need SLURM_CONF=DIR/slurm.conf.
set -euo pipefail

die() { echo "local_slurm: $*" >&2; exit 1; }

cmd=${1:-}; dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || die "usage: $0 start|stop|env DIR [VIRTUAL_CPUS]"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
conf="$dir/slurm.conf"

start() {
  local cpus=${1:-8}
  for tool in munged slurmctld slurmd sinfo; do
    command -v "$tool" >/dev/null || die "$tool not found: install Debian's slurmctld slurmd slurm-client munge (make system-deps)"
  done
  mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/munge"
  local host mem
  host=$(hostname -s)
  mem=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n1)
  # config_overrides lets the node advertise more CPUs than it has, so arrays run several tasks at once.
  cat >"$conf" <<CONF
ClusterName=morphcpt-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=${MORPHCPT_SLURMCTLD_PORT:-16817}
SlurmdPort=${MORPHCPT_SLURMD_PORT:-16818}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=100000
DependencyParameters=kill_invalid_depend
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
MpiDefault=none
SlurmdParameters=config_overrides
ReturnToService=2
MailProg=/bin/true
MaxArraySize=1001
MinJobAge=300
KillWait=5
InactiveLimit=0
SlurmdTimeout=60
MessageTimeout=20
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
  if [[ ! -S "$dir/munge/munge.socket" ]]; then
    munged --force --socket="$dir/munge/munge.socket" --pid-file="$dir/munge/munged.pid" \
      --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munge.seed" \
      || die "munged failed to start (see $dir/log/munged.log)"
  fi
  export SLURM_CONF="$conf"
  slurmctld -f "$conf" || die "slurmctld failed (see $dir/log/slurmctld.log)"
  slurmd -f "$conf" || die "slurmd failed (see $dir/log/slurmd.log)"
  local i
  for i in $(seq 1 120); do
    state=$(sinfo -h -N -o '%t' 2>/dev/null | head -n1 || true)
    case "$state" in
      idle|mix|alloc) echo "local_slurm: node $host is $state; export SLURM_CONF=$conf"; return 0 ;;
      down*|drain*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
  done
  die "node did not become idle in 60 s (state '${state:-unknown}'); logs in $dir/log"
}

stop() {
  local pidfile
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
    if [[ -s "$pidfile" ]]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
    fi
  done
  for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
    [[ -s "$pidfile" ]] || continue
    local pid; pid=$(cat "$pidfile")
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

case "$cmd" in
  start) start "${3:-8}" ;;
  stop) stop ;;
  env) echo "export SLURM_CONF=$conf" ;;
  *) die "unknown command '$cmd'" ;;
esac
