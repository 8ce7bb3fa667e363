#!/usr/bin/env bash
# Start or stop a real single-node Grid Engine (Son of Grid Engine 8.1.9 from Debian: sge_qmaster, sge_execd)
# without systemd or the packages' init scripts.
# Usage: local_gridengine.sh start DIR [SLOTS] | stop DIR | env DIR
#
# The cluster is a cell of its own whose files all live under DIR: the cell directory (bootstrap, act_qmaster,
# host_aliases, accounting), the BerkeleyDB spool, the qmaster and execd spools (messages, pid files), jobs'
# $TMPDIR, the configuration files given to qconf (DIR/conf) and qconf's output (DIR/setup.log). Global,
# outside DIR: a symlink /var/lib/gridengine/<cell> -> DIR/cell, the cell named after DIR (Grid Engine finds a
# cell only as $SGE_ROOT/$SGE_CELL, and SGE_ROOT is the package layout's /var/lib/gridengine), removed by
# `stop`; the qmaster and execd TCP ports
# (MORPHCPT_SGE_QMASTER_PORT / MORPHCPT_SGE_EXECD_PORT, default 6444 / 6445). The daemons run as root
# (bootstrap admin_user none), so DIR needs no permissions for sgeadmin.
# Clients need the environment `env DIR` prints (SGE_ROOT, SGE_CELL, the ports, and $SGE_ROOT/bin/lx-amd64
# first on PATH: /usr/bin/qsub may be Slurm's Torque wrapper, see scripts/install_system_deps.sh).
set -euo pipefail

die() { echo "local_gridengine: $*" >&2; exit 1; }

cmd=${1:-}; dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || die "usage: $0 start|stop|env DIR [SLOTS]"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

export SGE_ROOT=/var/lib/gridengine
SGE_CELL=morphcpt_$(printf '%s' "$dir" | cksum | cut -d' ' -f1)
export SGE_CELL
export SGE_QMASTER_PORT=${MORPHCPT_SGE_QMASTER_PORT:-6444}
export SGE_EXECD_PORT=${MORPHCPT_SGE_EXECD_PORT:-6445}
bin=$SGE_ROOT/bin/lx-amd64
export PATH="$bin:$PATH"
host=$(hostname)
cell="$dir/cell"
spool="$dir/spool"
conf="$dir/conf"

print_env() {
  local name
  for name in SGE_ROOT SGE_CELL SGE_QMASTER_PORT SGE_EXECD_PORT; do echo "export $name=${!name}"; done
  echo "export PATH=$bin:\$PATH"
}

alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
qmaster_pid="$spool/qmaster/qmaster.pid"
# The execd spools under the name the host resolves to (localhost here, through host_aliases).
execd_pid() { compgen -G "$spool/execd/*/execd.pid" | head -n1 || true; }

# A qconf object file from `qconf -s...` output with KEY VALUE replacements given as arguments.
edit() {
  local file=$1; shift
  while (($#)); do
    sed -i "s|^$1[[:space:]].*|$1 $2|" "$file"
    grep -q "^$1 " "$file" || echo "$1 $2" >>"$file"
    shift 2
  done
}

wait_for() {
  local what=$1 seconds=$2; shift 2
  for _ in $(seq 1 $((seconds * 10))); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "$what not ready after $seconds s (logs: $spool/qmaster/messages, $spool/execd/*/messages)"
}

queue_ready() {
  # all.q@host is up once the execd reported in: its state column no longer holds u (unknown) or a (alarm;
  # the queue has no load thresholds, so this means the execd sent no load report yet).
  local line
  line=$(timeout 10 qstat -f -q all.q 2>/dev/null | grep "^all.q@") || return 1
  [[ $(awk '{print $6}' <<<"$line") != *[ua]* ]]
}

start() {
  local slots=${1:-4}
  [[ -x "$bin/sge_qmaster" && -x "$bin/sge_execd" && -x "$bin/qsub" ]] \
    || die "Grid Engine not found in $bin: run scripts/install_system_deps.sh (Debian gridengine 8.1.9)"
  if alive "$qmaster_pid" && alive "$(execd_pid)" && queue_ready; then
    echo "local_gridengine: already running (cell $SGE_CELL)" >&2
    print_env
    return 0
  fi
  mkdir -p "$cell/common" "$spool/qmaster" "$spool/execd" "$conf"
  if [[ -L "$SGE_ROOT/$SGE_CELL" || ! -e "$SGE_ROOT/$SGE_CELL" ]]; then
    ln -sfn "$cell" "$SGE_ROOT/$SGE_CELL"
  else
    die "$SGE_ROOT/$SGE_CELL exists and is not this cluster's link"
  fi
  if [[ ! -e "$spool/spooldb/sge" ]]; then
    sed -e "s|^admin_user .*|admin_user              none|" \
      -e "s|^spooling_params .*|spooling_params         $spool/spooldb|" \
      -e "s|^qmaster_spool_dir .*|qmaster_spool_dir       $spool/qmaster|" \
      /usr/share/gridengine/default-bootstrap >"$cell/common/bootstrap"
    echo "$host" >"$cell/common/act_qmaster"
    # The host name resolves to 127.0.0.1, which resolves back to "localhost": one host to Grid Engine.
    echo "$host localhost" >"$cell/common/host_aliases"
    # Root may submit (min_uid/min_gid), no mail, and accounting written at once so qacct sees a job ~1 s
    # after it ended.
    cp /usr/share/gridengine/default-configuration "$conf/global"
    edit "$conf/global" execd_spool_dir "$spool/execd" min_uid 0 min_gid 0 mailer /bin/true \
      load_report_time 00:00:05 \
      reporting_params "accounting=true reporting=false flush_time=00:00:01 joblog=false sharelog=00:00:00 accounting_flush_time=00:00:00"
    mkdir -p "$spool/spooldb"
    "$bin/spoolinit" berkeleydb libspoolb "$spool/spooldb" init >/dev/null
    "$bin/spooldefaults" configuration "$conf/global" >/dev/null
    "$bin/spooldefaults" complexes /usr/share/gridengine/util/resources/centry >/dev/null
    "$bin/spooldefaults" usersets /usr/share/gridengine/util/resources/usersets >/dev/null
    "$bin/spooldefaults" managers root >/dev/null
  fi
  alive "$qmaster_pid" || "$bin/sge_qmaster" || die "sge_qmaster failed (see $spool/qmaster/messages)"
  # Each probe is bounded: a client that reaches a qmaster still starting up can wait a minute for it.
  wait_for "sge_qmaster" 60 timeout 10 qconf -sh
  if [[ ! -e "$conf/configured" ]]; then
    exec 3>>"$dir/setup.log"
    qconf -as "$host" >&3 2>&1 || true  # already a submit host after an interrupted setup
    qconf -ssconf >"$conf/scheduler"
    edit "$conf/scheduler" schedule_interval 0:0:1 flush_submit_sec 1 flush_finish_sec 1
    qconf -Msconf "$conf/scheduler" >&3 2>&1
    cat >"$conf/exechost" <<EOF
hostname              $host
load_scaling          NONE
complex_values        NONE
user_lists            NONE
xuser_lists           NONE
projects              NONE
xprojects             NONE
usage_scaling         NONE
report_variables      NONE
EOF
    { qconf -Ae "$conf/exechost" || qconf -Me "$conf/exechost"; } >&3 2>&1
    printf 'group_name @allhosts\nhostlist %s\n' "$host" >"$conf/allhosts"
    { qconf -Ahgrp "$conf/allhosts" || qconf -Mhgrp "$conf/allhosts"; } >&3 2>&1
    # The template names PEs (make, smp, mpi) that do not exist: no parallel environment on this cluster.
    qconf -sq >"$conf/all.q"
    # Jobs' $TMPDIR under DIR too: it is named <job>.<task>.<queue>, the same in two clusters at once.
    mkdir -p "$dir/tmp"
    # No load thresholds: on a busy machine (tests beside a CPU hog, a loaded CI runner) the default
    # np_load_avg=1.75 puts the queue in alarm state and nothing is scheduled.
    edit "$conf/all.q" qname all.q hostlist @allhosts slots "$slots" pe_list NONE shell /bin/bash tmpdir "$dir/tmp" \
      load_thresholds NONE
    { qconf -Aq "$conf/all.q" || qconf -Mq "$conf/all.q"; } >&3 2>&1
    exec 3>&-
    touch "$conf/configured"
  fi
  alive "$(execd_pid)" || "$bin/sge_execd" || die "sge_execd failed (see $spool/execd/*/messages)"
  wait_for "the execution host" 60 queue_ready
  echo "local_gridengine: cell $SGE_CELL up on $host with $slots slots" >&2
  print_env
}

stop() {
  if [[ -e "$cell/common/bootstrap" ]]; then
    qconf -ke "$host" >/dev/null 2>&1 || true
    qconf -km >/dev/null 2>&1 || true
  fi
  local pidfile pid
  for pidfile in "$(execd_pid)" "$qmaster_pid"; do
    [[ -n "$pidfile" && -s "$pidfile" ]] || continue
    pid=$(cat "$pidfile")
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
  [[ -L "$SGE_ROOT/$SGE_CELL" ]] && rm -f "$SGE_ROOT/$SGE_CELL"
  return 0
}

case "$cmd" in
  start) start "${3:-4}" ;;
  stop) stop ;;
  env) print_env ;;
  *) die "unknown command '$cmd'" ;;
esac
