#!/usr/bin/env bash
# Starts a real multi-node Slurm 22.05 cluster on this one machine (run as root),
# for the Slurm executor's gang tests: N slurmd daemons, one per node name
# (`slurmd -N g1`, `-N g2`, …, each on its own port), one slurmctld, and a
# slurmrestd on its own unix socket. It is separate from tools/start-slurm.sh's
# single-node cluster: its own configuration, ports (16817, 16818, 16821…),
# state, logs and socket, all under one directory, so both can run at once.
# Slurm's packages and munge are set up as tools/start-slurm.sh does (run that
# first, or have slurm-wlm, slurmrestd and munge installed and munged running).
#
#   tools/start-slurm-nodes.sh [NODES [DIR]]     (default 2 nodes, /tmp/suanwang-slurm-nodes)
#   tools/start-slurm-nodes.sh stop [DIR]
#
# Each node offers CPUS_PER_NODE (default 2) CPUs and MEM_PER_NODE_MB (default
# 2000) MiB: they share this host's cores, so they are nodes to Slurm, not more
# hardware. Jobs submitted over the socket run as the user `slurmrest`.
#
# Output: stdout gets only these lines (eval-able):
#   SLURM_NODES_SOCKET=<DIR>/rest/rest.sock
#   SLURM_NODES_CONF=<DIR>/slurm.conf
#   SLURM_NODES=<N>
set -euo pipefail

say() { echo "start-slurm-nodes: $*" >&2; }
die() {
  echo "start-slurm-nodes: error: $*" >&2
  exit 1
}
[ "$(id -u)" = 0 ] || die "must run as root"
cd /

stop_pid() {
  local file=$1 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file" 2>/dev/null) || return 0
  if [ -n "$pid" ] && [ -d "/proc/$pid" ]; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
      [ -d "/proc/$pid" ] || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

if [ "${1:-}" = stop ]; then
  DIR=${2:-/tmp/suanwang-slurm-nodes}
  stop_pid "$DIR/rest/pid"
  for f in "$DIR"/slurmd-*.pid; do [ -e "$f" ] && stop_pid "$f"; done
  stop_pid "$DIR/slurmctld.pid"
  say "stopped the cluster in $DIR"
  exit 0
fi

NODES=${1:-2}
DIR=${2:-/tmp/suanwang-slurm-nodes}
CPUS=${CPUS_PER_NODE:-2}
MEM=${MEM_PER_NODE_MB:-2000}
REST_USER=slurmrest
[[ "$NODES" =~ ^[1-9][0-9]?$ ]] || die "NODES must be 1..99, not '$NODES'"
command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v slurmrestd >/dev/null ||
  die "Slurm is not installed (run tools/start-slurm.sh first)"
munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || die "munge does not work (run tools/start-slurm.sh first)"
id -u "$REST_USER" >/dev/null 2>&1 || die "no user $REST_USER (run tools/start-slurm.sh first)"

HOST=$(hostname -s)
names=()
for i in $(seq "$NODES"); do names+=("g$i"); done
mkdir -p "$DIR/state" "$DIR/log" "$DIR/rest" "$DIR/spool"
chmod 755 "$DIR"
chown "$REST_USER": "$DIR/rest"
conf=$(
  cat <<EOF
# Written by suanwang's tools/start-slurm-nodes.sh: $NODES nodes on one host.
ClusterName=suanwang-nodes
SlurmctldHost=$HOST
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MinJobAge=3600
KillWait=5
DefMemPerCPU=$((MEM / CPUS))
$(for i in $(seq "$NODES"); do
    echo "NodeName=g$i NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$((16820 + i)) CPUs=$CPUS RealMemory=$MEM State=UNKNOWN"
  done)
PartitionName=main Nodes=$(
    IFS=,
    echo "${names[*]}"
  ) Default=YES MaxTime=INFINITE State=UP
EOF
)
if [ ! -f "$DIR/slurm.conf" ] || [ "$(cat "$DIR/slurm.conf")" != "$conf" ]; then
  say "writing $DIR/slurm.conf ($NODES nodes of $CPUS CPUs, $MEM MiB)"
  stop_pid "$DIR/rest/pid"
  for f in "$DIR"/slurmd-*.pid; do [ -e "$f" ] && stop_pid "$f"; done
  stop_pid "$DIR/slurmctld.pid"
  printf '%s\n' "$conf" >"$DIR/slurm.conf"
fi
export SLURM_CONF=$DIR/slurm.conf
alive() { [ -f "$1" ] && [ -d "/proc/$(cat "$1")" ]; }
alive "$DIR/slurmctld.pid" || {
  say "starting slurmctld"
  /usr/sbin/slurmctld -f "$SLURM_CONF" || die "slurmctld did not start (see $DIR/log/slurmctld.log)"
}
for n in "${names[@]}"; do
  mkdir -p "$DIR/spool/$n"
  alive "$DIR/slurmd-$n.pid" || {
    say "starting slurmd -N $n"
    /usr/sbin/slurmd -f "$SLURM_CONF" -N "$n" || die "slurmd -N $n did not start (see $DIR/log/slurmd-$n.log)"
  }
done
for i in $(seq 60); do
  idle=$(sinfo -h -N -o '%N %T' 2>/dev/null | awk '$2 ~ /^(idle|mixed|allocated|completing)$/' | wc -l)
  [ "$idle" = "$NODES" ] && break
  for n in $(sinfo -h -N -o '%N %T' 2>/dev/null | awk '$2 ~ /^(down|drain|drained|draining)/ {print $1}'); do
    scontrol update nodename="$n" state=resume >/dev/null 2>&1 || true
  done
  [ "$i" = 60 ] && die "not all $NODES nodes are up after 30 s: $(sinfo -h -N -o '%N %T' | tr '\n' ' ')"
  sleep 0.5
done
SOCK=$DIR/rest/rest.sock
ping_rest() {
  runuser -u "$REST_USER" -- curl -sf --max-time 5 --unix-socket "$SOCK" \
    http://localhost/slurm/v0.0.38/ping >/dev/null 2>&1
}
if ! alive "$DIR/rest/pid" || ! ping_rest; then
  stop_pid "$DIR/rest/pid"
  rm -f "$SOCK"
  say "starting slurmrestd on $SOCK"
  setsid setpriv --reuid="$REST_USER" --regid="$REST_USER" --init-groups \
    env SLURM_CONF="$SLURM_CONF" /usr/sbin/slurmrestd -f "$SLURM_CONF" -a rest_auth/local \
    -s openapi/v0.0.38 "unix:$SOCK" </dev/null >>"$DIR/log/slurmrestd.log" 2>&1 &
  echo $! >"$DIR/rest/pid"
  for i in $(seq 60); do
    ping_rest && break
    [ "$i" = 60 ] && die "slurmrestd does not answer on $SOCK (see $DIR/log/slurmrestd.log)"
    sleep 0.5
  done
fi
say "up: $NODES nodes ($(sinfo -h -N -o '%N' | tr '\n' ' ')), slurmrestd on $SOCK"
cat <<EOF
SLURM_NODES_SOCKET=$SOCK
SLURM_NODES_CONF=$SLURM_CONF
SLURM_NODES=$NODES
EOF
