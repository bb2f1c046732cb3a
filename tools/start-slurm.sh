#!/usr/bin/env bash
# Installs (if needed) and starts a real single-node Slurm 22.05 cluster from
# Debian's packages on this machine (run as root), for the Slurm executor's tests
# and for trying the executor by hand. Idempotent: a second run with everything up
# only checks it and prints the summary. See docs/SLURM.md for the API facts.
#
# What runs afterwards (logs under /var/log/slurm/):
#   munged      as user munge      (key /etc/munge/munge.key, socket in /run/munge)
#   slurmctld   as root            (SlurmUser=root, state in /var/lib/slurm/slurmctld)
#   slurmd      as root            (one node = this host, partition `main`)
#   slurmrestd  as user `slurmrest` on the unix socket below, with
#               `-a rest_auth/local -s openapi/v0.0.38`.
#
# Who may use the socket: rest_auth/local authenticates a request by the Unix
# socket's peer credentials. slurmrestd 22.05 refuses to run as root, so it runs
# as the system user `slurmrest` and accepts a peer that is root (uid 0) or
# `slurmrest`; any other user gets HTTP 401 "Authentication failure". Either way
# it talks to slurmctld with its own (munge) identity, so every job submitted
# over the socket runs as `slurmrest` (uid/gid of that user; home
# /var/lib/slurmrest). A job's working directory and output files must therefore
# be writable by `slurmrest` (e.g. /tmp or its home), or the job fails with
# JobLaunchFailure. Root can also use the CLI (sbatch/squeue/scontrol/scancel);
# jobs submitted that way run as root.
#
# Output: progress goes to stderr; stdout gets only these lines (eval-able):
#   SLURM_SOCKET=/run/slurmrestd/slurmrestd.sock
#   SLURM_REST_VERSION=v0.0.38
#   SLURM_REST_USER=slurmrest
#   SLURM_NODE=<hostname -s>
#   SLURM_PARTITION=main
#   SLURM_CPUS=<nproc>
#   SLURM_MEMORY_MB=<RealMemory>
set -euo pipefail

REST_USER=slurmrest
REST_HOME=/var/lib/slurmrest
SOCK_DIR=/run/slurmrestd
SOCK="$SOCK_DIR/slurmrestd.sock"
REST_VERSION=v0.0.38
PARTITION=main
LOG_DIR=/var/log/slurm
CONF=/etc/slurm/slurm.conf

say() { echo "start-slurm: $*" >&2; }
die() {
  echo "start-slurm: error: $*" >&2
  exit 1
}
# Prints the tail of a log file to stderr (for error reports).
tail_log() {
  if [ -f "$1" ]; then
    echo "--- last lines of $1:" >&2
    tail -n 25 "$1" >&2
  fi
}
# True if the pid file names a live process with the given command name.
alive() {
  local pid
  [ -f "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$2" ]
}
# Sends SIGTERM to the process of a pid file (if alive) and waits (20 s at most;
# slurmctld takes about 3 s, saving its state) for it to go.
stop() {
  local pid
  alive "$1" "$2" || return 0
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 200); do
    [ -d "/proc/$pid" ] || return 0
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
}

[ "$(id -u)" = 0 ] || die "must run as root"
# The daemons inherit the working directory: start them from / so that deleting
# the checkout this ran from (a CI clone) cannot pull it from under them
# (slurmrestd calls getcwd on every job submission and exits when it fails).
cd /

# 1. Packages (only if missing).
missing=()
{ command -v slurmctld && command -v slurmd && command -v sinfo; } >/dev/null 2>&1 ||
  missing+=(slurm-wlm)
command -v slurmrestd >/dev/null 2>&1 || missing+=(slurmrestd)
command -v munged >/dev/null 2>&1 || missing+=(munge)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. Configuration for this host.
HOST=$(hostname -s)
CPUS=$(nproc)
total_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
# Leave headroom for the OS and the daemons: 10%, at least 512 MiB (half on tiny
# machines). slurmd drains the node if RealMemory exceeds what it detects.
headroom=$((total_mb / 10 > 512 ? total_mb / 10 : 512))
[ "$headroom" -lt "$total_mb" ] || headroom=$((total_mb / 2))
MEM_MB=$((total_mb - headroom))

mkdir -p /etc/slurm "$LOG_DIR" /var/lib/slurm/slurmctld /var/lib/slurm/slurmd
conf=$(
  cat <<EOF
# Written by suanwang's tools/start-slurm.sh: a single-node cluster.
ClusterName=local
SlurmctldHost=$HOST
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
# Schedule a submitted batch job at once (the default waits up to 3 s between runs).
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MinJobAge=3600
KillWait=5
# Without a default, a job that asks for no memory is given the whole node's.
DefMemPerCPU=$((MEM_MB / CPUS))
NodeName=$HOST CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
)
conf_changed=0
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$conf" ]; then
  say "writing $CONF (node $HOST, $CPUS CPUs, $MEM_MB MiB)"
  printf '%s\n' "$conf" >"$CONF"
  conf_changed=1
fi

# munge: key, runtime directory, daemon.
if [ ! -s /etc/munge/munge.key ]; then
  say "creating the munge key"
  mkdir -p /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge /etc/munge/munge.key
chmod 700 /etc/munge
chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  say "starting munged"
  rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  runuser -u munge -- /usr/sbin/munged </dev/null >/dev/null 2>&1 ||
    { tail_log /var/log/munge/munged.log; die "munged did not start"; }
  ok=0
  for _ in $(seq 50); do
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
      ok=1
      break
    fi
    sleep 0.1
  done
  [ "$ok" = 1 ] || {
    tail_log /var/log/munge/munged.log
    die "munge -n | unmunge does not succeed"
  }
fi

# 3. slurmctld and slurmd (restarted if the configuration changed).
if [ "$conf_changed" = 1 ]; then
  stop /run/slurmd.pid slurmd
  stop /run/slurmctld.pid slurmctld
fi
if ! alive /run/slurmctld.pid slurmctld; then
  say "starting slurmctld"
  /usr/sbin/slurmctld </dev/null >>"$LOG_DIR/slurmctld.stdout" 2>&1 ||
    { tail_log "$LOG_DIR/slurmctld.log"; die "slurmctld did not start"; }
fi
if ! alive /run/slurmd.pid slurmd; then
  say "starting slurmd"
  /usr/sbin/slurmd </dev/null >>"$LOG_DIR/slurmd.stdout" 2>&1 ||
    { tail_log "$LOG_DIR/slurmd.log"; die "slurmd did not start"; }
fi
state=""
resumed=0
for i in $(seq 60); do
  state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null | head -n1 || true)
  case "$state" in
  idle | mixed | allocated | completing) break ;;
  down | drained | draining | drain | fail | failing)
    # Left so by an earlier run (e.g. a killed slurmd); slurmd is up now.
    if [ "$resumed" = 0 ]; then
      say "node $HOST is $state; resuming it"
      scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
      resumed=1
    fi
    ;;
  esac
  [ "$i" = 60 ] && {
    tail_log "$LOG_DIR/slurmctld.log"
    tail_log "$LOG_DIR/slurmd.log"
    sinfo -R >&2 || true
    die "node $HOST is not idle after 30 s (state: '${state:-none}')"
  }
  sleep 0.5
done

# 4. slurmrestd as a dedicated user on a unix socket.
if ! id -u "$REST_USER" >/dev/null 2>&1; then
  say "creating system user $REST_USER"
  useradd --system --home-dir "$REST_HOME" --create-home --shell /usr/sbin/nologin "$REST_USER"
fi
mkdir -p "$REST_HOME" "$SOCK_DIR"
chown "$REST_USER": "$REST_HOME" "$SOCK_DIR"
touch "$LOG_DIR/slurmrestd.log"
chown "$REST_USER": "$LOG_DIR/slurmrestd.log"
ping_rest() {
  runuser -u "$REST_USER" -- curl -sf --max-time 5 --unix-socket "$SOCK" \
    "http://localhost/slurm/$REST_VERSION/ping" >/dev/null 2>&1
}
if [ "$conf_changed" = 1 ]; then
  stop "$SOCK_DIR/slurmrestd.pid" slurmrestd
fi
# A slurmrestd whose working directory was deleted answers pings but dies on the
# first job submission: restart it.
stale_cwd() {
  local pid
  pid=$(cat "$SOCK_DIR/slurmrestd.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && case "$(readlink "/proc/$pid/cwd" 2>/dev/null)" in *" (deleted)") true ;; *) false ;; esac
}
if ! alive "$SOCK_DIR/slurmrestd.pid" slurmrestd || ! ping_rest || stale_cwd; then
  stop "$SOCK_DIR/slurmrestd.pid" slurmrestd
  say "starting slurmrestd on $SOCK"
  rm -f "$SOCK"
  # As $REST_USER, in its own session, with its own log. setsid and setpriv both
  # exec (no fork), so $! is slurmrestd's pid.
  setsid setpriv --reuid="$REST_USER" --regid="$REST_USER" --init-groups \
    /usr/sbin/slurmrestd -a rest_auth/local -s "openapi/$REST_VERSION" "unix:$SOCK" \
    </dev/null >>"$LOG_DIR/slurmrestd.log" 2>&1 &
  echo $! >"$SOCK_DIR/slurmrestd.pid"
  ok=0
  for _ in $(seq 60); do
    if ping_rest; then
      ok=1
      break
    fi
    alive "$SOCK_DIR/slurmrestd.pid" slurmrestd || break
    sleep 0.5
  done
  [ "$ok" = 1 ] || {
    tail_log "$LOG_DIR/slurmrestd.log"
    die "slurmrestd exited, or does not answer GET /slurm/$REST_VERSION/ping on $SOCK within 30 s"
  }
fi

say "up: node $HOST ($state), slurmrestd on $SOCK (connect as root or $REST_USER)"
cat <<EOF
SLURM_SOCKET=$SOCK
SLURM_REST_VERSION=$REST_VERSION
SLURM_REST_USER=$REST_USER
SLURM_NODE=$HOST
SLURM_PARTITION=$PARTITION
SLURM_CPUS=$CPUS
SLURM_MEMORY_MB=$MEM_MB
EOF
