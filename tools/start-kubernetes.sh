#!/usr/bin/env bash
# Builds (once, cached) and starts a real Kubernetes 1.20.2 control plane on this
# machine (run as root), for the Kubernetes executor's tests and for trying the
# executor by hand: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# plus one stand-in kubelet (crates/kube-standin) playing the node `standin-1`.
# Idempotent: a second run with everything up only checks it and prints the
# summary. `--stop` stops everything it started. See docs/KUBERNETES.md.
#
# Where the binaries come from: no kube-apiserver is packaged for Debian, but
# bookworm's *source* package (with vendor/) builds with Debian's Go 1.19. The
# script fetches it with apt through a private sources list (the machine's own
# mirror plus deb-src lines; nothing is installed system-wide), swaps the bundled
# reflect2 1.0.1 (broken on Go >= 1.18) for Debian's 1.0.2, generates the OpenAPI
# code the tarball lacks, and builds the three binaries in GOPATH mode with
# CGO_ENABLED=0. etcd 3.4 comes from Debian's etcd-server .deb (extracted, not
# installed). About 6 min cold on 2 cores; all of it is kept in the cache below, so
# a warm run starts in seconds.
#
# Environment:
#   SUANWANG_KUBE_CACHE  downloads, Go build cache, binaries
#                        (default $HOME/.cache/suanwang-kubernetes)
#   SUANWANG_KUBE_STATE  etcd data, certificates, tokens, kubeconfigs, logs, pid
#                        files, the stand-in's binary and work dir
#                        (default /tmp/suanwang-kubernetes)
#   CARGO_TARGET_DIR     honoured when building the stand-in
#
# Identities (token auth, file $STATE/tokens.csv):
#   admin           group system:masters          -> $STATE/admin.kubeconfig
#   suanwang-agent  no group (system:authenticated) -> $STATE/agent.kubeconfig,
#                   rights from deploy/kubernetes/agent-rbac.yaml, applied to the
#                   namespaces suanwang and suanwang-test-1 ... suanwang-test-12.
#
# Output: progress and phase timings go to stderr; stdout gets only these lines
# (eval-able):
#   KUBE_API=https://127.0.0.1:6443
#   KUBE_STATE=<state dir>
#   KUBE_ADMIN_KUBECONFIG=<state dir>/admin.kubeconfig
#   KUBE_AGENT_KUBECONFIG=<state dir>/agent.kubeconfig
#   KUBE_NAMESPACE=suanwang
#   KUBE_STANDIN=<state dir>/bin/suanwang-kube-standin
set -euo pipefail

K8S_SRC_VERSION=1.20.5+really1.20.2-1.1+deb12u1
K8S_VERSION=v1.20.2
BUILD_DEBS=(golang-1.19-go golang-1.19-src etcd-server golang-github-modern-go-reflect2-dev)
DEBS=("${BUILD_DEBS[@]}" kubernetes-client)
COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler)
API_PORT=6443
ETCD_CLIENT_PORT=2479
ETCD_PEER_PORT=2480
KUBE_API="https://127.0.0.1:$API_PORT"
NAMESPACE=suanwang
TEST_NAMESPACES=12
STANDIN_NODE=standin-1

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${SUANWANG_KUBE_CACHE:-$HOME/.cache/suanwang-kubernetes}
STATE=${SUANWANG_KUBE_STATE:-/tmp/suanwang-kubernetes}
BIN_DIR="$CACHE/bin/$K8S_VERSION"
LOG_DIR="$STATE/logs"
RUN_DIR="$STATE/run"

say() { echo "start-kubernetes: $*" >&2; }
die() {
  echo "start-kubernetes: error: $*" >&2
  exit 1
}
# Prints the tail of a log file to stderr (for error reports).
tail_log() {
  if [ -f "$1" ]; then
    echo "--- last lines of $1:" >&2
    tail -n 25 "$1" >&2
  fi
}
now() { date +%s.%N; }
# Seconds since a `now` stamp, one decimal.
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# True if the pid file names a live process with the given command name (as
# /proc/PID/comm shows it: at most 15 characters).
alive() {
  local pid
  [ -f "$1" ] || return 1
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "${2:0:15}" ]
}
# Sends SIGTERM to the process of a pid file (if alive), waits up to 20 s for it
# to go, then SIGKILL; removes the pid file.
stop() {
  local pid
  if alive "$1" "$2"; then
    pid=$(cat "$1")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 200); do
      [ -d "/proc/$pid" ] || break
      sleep 0.1
    done
    [ -d "/proc/$pid" ] && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

if [ "${1:-}" = "--stop" ]; then
  for p in standin kube-scheduler kube-controller-manager kube-apiserver etcd; do
    case $p in
    standin) comm=suanwang-kube-standin ;;
    *) comm=$p ;;
    esac
    if alive "$RUN_DIR/$p.pid" "$comm"; then
      say "stopping $p"
    fi
    stop "$RUN_DIR/$p.pid" "$comm"
  done
  exit 0
fi
BUILD_ONLY=0
case "${1:-}" in
"") ;;
--build-only) BUILD_ONLY=1 ;;
*) die "unknown argument '$1' (usage: $0 [--stop | --build-only])" ;;
esac

[ "$(id -u)" = 0 ] || die "must run as root"
for tool in curl openssl apt-get dpkg-deb dpkg-source tar; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not installed"
done
# The daemons inherit the working directory: start them from / (a deleted CI clone
# must not be their cwd).
cd /

# ---------------------------------------------------------------------------
# 1. Binaries: kube-apiserver, kube-controller-manager, kube-scheduler, etcd.
# ---------------------------------------------------------------------------
APT_DIR="$CACHE/apt"
DL_DIR="$CACHE/downloads"
apt_private() {
  apt-get -o Dir::Etc::SourceList=/dev/null -o Dir::Etc::SourceParts="$APT_DIR/sources" \
    -o Dir::State::Lists="$APT_DIR/lists" -o Dir::Cache="$APT_DIR/cache" \
    -o Debug::NoLocking=1 -o APT::Sandbox::User=root "$@"
}
# A private copy of the machine's apt sources with deb-src lines added (bookworm,
# bookworm-updates and bookworm-security on the machine's own mirrors), and its
# own package lists.
prepare_apt() {
  mkdir -p "$APT_DIR/sources" "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
  rm -f "$APT_DIR/sources/"*
  local f n=0
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    sed -E 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb deb-src/' "$f" >"$APT_DIR/sources/$(basename "$f")"
    n=$((n + 1))
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '/^deb[[:space:]]/ { print; sub(/^deb/, "deb-src"); print }' "$f" >"$APT_DIR/sources/$(basename "$f").list"
    n=$((n + 1))
  done
  [ "$n" -gt 0 ] || die "no apt sources found in /etc/apt (need a bookworm mirror)"
  say "apt-get update (private lists in $APT_DIR)"
  apt_private update -qq >"$APT_DIR/update.log" 2>&1 || {
    tail_log "$APT_DIR/update.log"
    die "apt-get update with the private sources list failed"
  }
}
download() {
  mkdir -p "$DL_DIR"
  local want_src=1 want_debs=() p
  compgen -G "$DL_DIR/kubernetes_*.dsc" >/dev/null &&
    compgen -G "$DL_DIR/kubernetes_*.orig.tar.gz" >/dev/null && want_src=0
  for p in "${DEBS[@]}"; do
    compgen -G "$DL_DIR/${p}_*.deb" >/dev/null || want_debs+=("$p")
  done
  [ "$want_src" = 0 ] && [ ${#want_debs[@]} = 0 ] && return 0
  prepare_apt
  (
    cd "$DL_DIR"
    if [ "$want_src" = 1 ]; then
      say "downloading the source package kubernetes=$K8S_SRC_VERSION (34 MB)"
      apt_private source --download-only "kubernetes=$K8S_SRC_VERSION" >"$APT_DIR/source.log" 2>&1 || {
        tail_log "$APT_DIR/source.log"
        die "apt-get source kubernetes=$K8S_SRC_VERSION failed (is bookworm main on the mirror?)"
      }
    fi
    if [ ${#want_debs[@]} -gt 0 ]; then
      say "downloading ${want_debs[*]}"
      apt_private download "${want_debs[@]}" >"$APT_DIR/download.log" 2>&1 || {
        tail_log "$APT_DIR/download.log"
        die "apt-get download ${want_debs[*]} failed"
      }
    fi
  )
}
# Extracts the .debs of the packages named after the folder into it.
extract_debs() {
  local dest=$1 p
  shift
  for p in "$@"; do
    local deb
    deb=$(compgen -G "$DL_DIR/${p}_*.deb" | head -n1)
    [ -n "$deb" ] || die "no .deb of $p in $DL_DIR"
    dpkg-deb -x "$deb" "$dest"
  done
}
build() {
  local t0 work root go gopath goroot
  t0=$(now)
  download
  work="$CACHE/work"
  rm -rf "$work"
  mkdir -p "$work/root"
  root="$work/root"
  say "extracting Go 1.19, etcd 3.4 and reflect2 1.0.2"
  extract_debs "$root" "${BUILD_DEBS[@]}"
  # (golang-1.19-go's src/ is a relative link to ../../share/go-1.19/src, which
  # golang-1.19-src fills.)
  goroot="$root/usr/lib/go-1.19"
  go="$goroot/bin/go"
  [ -x "$go" ] || die "no go binary at $go after extracting golang-1.19-go"
  say "unpacking the source package (Debian's patches applied)"
  (cd "$work" && dpkg-source --no-check -x "$DL_DIR"/kubernetes_*.dsc src >"$work/dpkg-source.log" 2>&1) || {
    tail_log "$work/dpkg-source.log"
    die "dpkg-source -x of $DL_DIR/kubernetes_*.dsc failed"
  }
  local tree="$work/src"
  rm -rf "$tree/vendor/github.com/modern-go/reflect2"
  cp -r "$root/usr/share/gocode/src/github.com/modern-go/reflect2" "$tree/vendor/github.com/modern-go/reflect2"
  rm -f "$tree/vendor/github.com/modern-go/reflect2/go.mod" "$tree/vendor/github.com/modern-go/reflect2/go.sum"
  gopath="$work/gopath"
  mkdir -p "$gopath/src/k8s.io"
  ln -s "$tree" "$gopath/src/k8s.io/kubernetes"
  export GOROOT="$goroot" GOPATH="$gopath" GO111MODULE=off CGO_ENABLED=0 GOFLAGS=
  export GOCACHE="$CACHE/go-build" PATH="$goroot/bin:$PATH"
  mkdir -p "$GOCACHE"
  local pkgdir="$gopath/src/k8s.io/kubernetes"
  say "openapi-gen (the tarball lacks pkg/generated/openapi)"
  local t1
  t1=$(now)
  (cd "$pkgdir" && go build -o "$work/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen) >"$work/build.log" 2>&1 || {
    tail_log "$work/build.log"
    die "building openapi-gen failed"
  }
  # Every package tagged +k8s:openapi-gen= (as the upstream Makefile finds them);
  # staging/src/k8s.io/X is imported as k8s.io/X (vendor/k8s.io/X links to it).
  local inputs
  inputs=$(cd "$pkgdir" && grep -rl --include='*.go' '+k8s:openapi-gen=' . |
    grep -v -e '/code-generator/' -e '/sample-apiserver/' -e '/testdata/' -e '^./_' -e '/third_party/' |
    xargs -n1 dirname | sort -u | sed -e 's|^\./vendor/||' -e 's|^\./staging/src/||' -e 's|^\./|k8s.io/kubernetes/|' | paste -sd, -)
  (cd "$pkgdir" && "$work/openapi-gen" --input-dirs "$inputs" \
    --output-package k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
    --go-header-file vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
    --output-base "$gopath/src" --report-filename /dev/null) >>"$work/build.log" 2>&1 || {
    tail_log "$work/build.log"
    die "openapi-gen failed"
  }
  say "openapi-gen done in $(since "$t1") s"
  local c
  mkdir -p "$BIN_DIR.tmp"
  for c in "${COMPONENTS[@]}"; do
    t1=$(now)
    say "go build $c (GOPATH mode, CGO_ENABLED=0; minutes when the Go cache is cold)"
    (cd "$pkgdir" && go build -o "$BIN_DIR.tmp/$c" \
      -ldflags "-s -w -X k8s.io/kubernetes/vendor/k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION" \
      "./cmd/$c") >>"$work/build.log" 2>&1 || {
      tail_log "$work/build.log"
      die "go build ./cmd/$c failed (log: $work/build.log)"
    }
    say "built $c in $(since "$t1") s"
  done
  cp "$root/usr/bin/etcd" "$BIN_DIR.tmp/etcd"
  rm -rf "$BIN_DIR"
  mv "$BIN_DIR.tmp" "$BIN_DIR"
  # The extracted tree (about 1 GB) is not needed again: the binaries and the Go
  # build cache are kept.
  rm -rf "$work"
  say "TIMING cold build: $(since "$t0") s (binaries in $BIN_DIR)"
}

have_bins=1
for c in "${COMPONENTS[@]}" etcd; do
  [ -x "$BIN_DIR/$c" ] || have_bins=0
done
if [ "$have_bins" = 0 ]; then
  build
else
  say "binaries cached in $BIN_DIR"
fi

# kubectl: Debian's kubernetes-client of the same version (extracted, not
# installed; a kubectl already on PATH may be of any version).
KUBECTL="$BIN_DIR/kubectl"
if [ ! -x "$KUBECTL" ]; then
  download
  tmp=$(mktemp -d)
  extract_debs "$tmp" kubernetes-client
  cp "$tmp/usr/bin/kubectl" "$KUBECTL"
  rm -rf "$tmp"
  say "kubectl $K8S_VERSION from Debian's kubernetes-client in $KUBECTL"
fi
[ "$BUILD_ONLY" = 1 ] && exit 0

# ---------------------------------------------------------------------------
# 2. State: certificates, keys, tokens, kubeconfigs.
# ---------------------------------------------------------------------------
mkdir -p "$STATE" "$LOG_DIR" "$RUN_DIR" "$STATE/pki" "$STATE/bin"
chmod 700 "$STATE/pki"
PKI="$STATE/pki"
if [ ! -s "$PKI/apiserver.crt" ] || [ ! -s "$PKI/sa.pub" ]; then
  say "creating a CA, the API server's serving certificate (IP:127.0.0.1) and the service-account key"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -days 3650 \
    -subj "/CN=suanwang-test-kubernetes-ca" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr" \
    -subj "/CN=kube-apiserver" 2>/dev/null
  printf '%s\n' "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc" \
    "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" >"$PKI/apiserver.ext"
  openssl x509 -req -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days 3650 -extfile "$PKI/apiserver.ext" \
    -out "$PKI/apiserver.crt" 2>/dev/null
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
fi
TOKENS="$STATE/tokens.csv"
if [ ! -s "$TOKENS" ]; then
  say "creating tokens ($TOKENS)"
  # token,user,uid,"groups"
  {
    echo "$(openssl rand -hex 24),admin,admin,\"system:masters\""
    echo "$(openssl rand -hex 24),suanwang-agent,suanwang-agent"
    echo "$(openssl rand -hex 24),system:kube-controller-manager,kube-controller-manager,\"system:masters\""
    echo "$(openssl rand -hex 24),system:kube-scheduler,kube-scheduler,\"system:masters\""
  } >"$TOKENS"
  chmod 600 "$TOKENS"
fi
token_of() { awk -F, -v u="$1" '$2 == u { print $1 }' "$TOKENS"; }
# A kubeconfig with the CA inline, token auth, and a default namespace.
write_kubeconfig() {
  local file=$1 user=$2 ns=$3
  cat >"$file.tmp" <<KC
apiVersion: v1
kind: Config
clusters:
- name: suanwang-test
  cluster:
    server: $KUBE_API
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $user
  user:
    token: $(token_of "$user")
contexts:
- name: $user@suanwang-test
  context:
    cluster: suanwang-test
    user: $user
    namespace: $ns
current-context: $user@suanwang-test
KC
  chmod 600 "$file.tmp"
  mv "$file.tmp" "$file"
}
ADMIN_KC="$STATE/admin.kubeconfig"
AGENT_KC="$STATE/agent.kubeconfig"
write_kubeconfig "$ADMIN_KC" admin "$NAMESPACE"
write_kubeconfig "$AGENT_KC" suanwang-agent "$NAMESPACE"
write_kubeconfig "$STATE/controller-manager.kubeconfig" system:kube-controller-manager kube-system
write_kubeconfig "$STATE/scheduler.kubeconfig" system:kube-scheduler kube-system

# ---------------------------------------------------------------------------
# 3. etcd, kube-apiserver, kube-controller-manager, kube-scheduler.
# ---------------------------------------------------------------------------
# Starts a daemon in its own session with its own log, its pid in $RUN_DIR.
launch() {
  local name=$1
  shift
  say "starting $name"
  setsid "$@" </dev/null >>"$LOG_DIR/$name.log" 2>&1 &
  echo $! >"$RUN_DIR/$name.pid"
}
# Waits (up to $2 s) for the command after it to succeed while the daemon lives.
wait_for() {
  local name=$1 secs=$2 comm=$3
  shift 3
  for _ in $(seq $((secs * 10))); do
    "$@" >/dev/null 2>&1 && return 0
    alive "$RUN_DIR/$name.pid" "$comm" || {
      tail_log "$LOG_DIR/$name.log"
      die "$name exited (log: $LOG_DIR/$name.log)"
    }
    sleep 0.1
  done
  tail_log "$LOG_DIR/$name.log"
  die "$name is not up after $secs s (log: $LOG_DIR/$name.log)"
}
t_start=$(now)
etcd_url="http://127.0.0.1:$ETCD_CLIENT_PORT"
if ! alive "$RUN_DIR/etcd.pid" etcd; then
  launch etcd "$BIN_DIR/etcd" --name default --data-dir "$STATE/etcd" \
    --listen-client-urls "$etcd_url" --advertise-client-urls "$etcd_url" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "default=http://127.0.0.1:$ETCD_PEER_PORT" \
    --listen-metrics-urls "" --log-level warn
fi
wait_for etcd 30 etcd curl -sf --max-time 2 "$etcd_url/health"
readyz() { curl -sf --max-time 2 --cacert "$PKI/ca.crt" "$KUBE_API/readyz"; }
started_apiserver=0
if ! alive "$RUN_DIR/kube-apiserver.pid" kube-apiserver; then
  started_apiserver=1
  launch kube-apiserver "$BIN_DIR/kube-apiserver" \
    --etcd-servers "$etcd_url" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" \
    --insecure-port 0 \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --token-auth-file "$TOKENS" \
    --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" \
    --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --allow-privileged=true --profiling=false \
    --feature-gates TTLAfterFinished=true
fi
wait_for kube-apiserver 60 kube-apiserver readyz
[ "$started_apiserver" = 1 ] && say "TIMING start to /readyz: $(since "$t_start") s"
if ! alive "$RUN_DIR/kube-controller-manager.pid" kube-controller-manager; then
  kc="$STATE/controller-manager.kubeconfig"
  launch kube-controller-manager "$BIN_DIR/kube-controller-manager" \
    --kubeconfig "$kc" --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port 10257 --port 0 \
    --controllers job,serviceaccount,serviceaccount-token,garbagecollector,namespace,ttl-after-finished,podgc \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --feature-gates TTLAfterFinished=true --profiling=false
fi
if ! alive "$RUN_DIR/kube-scheduler.pid" kube-scheduler; then
  kc="$STATE/scheduler.kubeconfig"
  launch kube-scheduler "$BIN_DIR/kube-scheduler" \
    --kubeconfig "$kc" --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port 10259 --port 0 --profiling=false
fi
# Their secure ports (10257, 10259) answer /healthz without credentials.
wait_for kube-controller-manager 30 kube-controller-manager \
  curl -skf --max-time 2 https://127.0.0.1:10257/healthz
wait_for kube-scheduler 30 kube-scheduler curl -skf --max-time 2 https://127.0.0.1:10259/healthz
kubectl_admin() { "$KUBECTL" --kubeconfig "$ADMIN_KC" "$@"; }

# ---------------------------------------------------------------------------
# 4. Namespaces and the agent's rights (deploy/kubernetes/agent-rbac.yaml).
# ---------------------------------------------------------------------------
RBAC="$REPO/deploy/kubernetes/agent-rbac.yaml"
[ -f "$RBAC" ] || die "$RBAC is missing"
namespaces=("$NAMESPACE")
for i in $(seq "$TEST_NAMESPACES"); do
  namespaces+=("$NAMESPACE-test-$i")
done
for ns in "${namespaces[@]}"; do
  printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n---\n' "$ns"
done | kubectl_admin apply -f - >"$LOG_DIR/kubectl.log" 2>&1 || {
  tail_log "$LOG_DIR/kubectl.log"
  die "creating the namespaces failed"
}
for ns in "${namespaces[@]}"; do
  kubectl_admin -n "$ns" apply -f "$RBAC" >>"$LOG_DIR/kubectl.log" 2>&1 || {
    tail_log "$LOG_DIR/kubectl.log"
    die "applying $RBAC to namespace $ns failed"
  }
done
# Pods cannot be created in a namespace before its default service account is.
for ns in "${namespaces[@]}"; do
  wait_for kube-controller-manager 30 kube-controller-manager kubectl_admin -n "$ns" get serviceaccount default
done
say "namespaces ${namespaces[0]} and ${namespaces[1]} ... ${namespaces[-1]} with the agent's Role"

# ---------------------------------------------------------------------------
# 5. The stand-in kubelet (crates/kube-standin) and its node.
# ---------------------------------------------------------------------------
command -v cargo >/dev/null 2>&1 || die "cargo is not on PATH (needed to build the stand-in kubelet)"
STANDIN="$STATE/bin/suanwang-kube-standin"
target=${CARGO_TARGET_DIR:-$REPO/target}
(cd "$REPO" && cargo build --release --quiet -p suanwang-kube-standin) >"$LOG_DIR/cargo.log" 2>&1 || {
  tail_log "$LOG_DIR/cargo.log"
  die "cargo build --release -p suanwang-kube-standin failed"
}
if ! cmp -s "$target/release/suanwang-kube-standin" "$STANDIN"; then
  cp "$target/release/suanwang-kube-standin" "$STANDIN.tmp"
  mv "$STANDIN.tmp" "$STANDIN"
fi
# A stand-in running an older binary (replaced above) is restarted.
if alive "$RUN_DIR/standin.pid" suanwang-kube-standin &&
  [ "$(readlink "/proc/$(cat "$RUN_DIR/standin.pid")/exe")" != "$STANDIN" ]; then
  say "the stand-in binary changed: restarting it"
  stop "$RUN_DIR/standin.pid" suanwang-kube-standin
fi
node_ready() {
  [ "$(kubectl_admin get node "$STANDIN_NODE" -o \
    'jsonpath={.status.conditions[?(@.type=="Ready")].status}/{.spec.taints}')" = "True/" ]
}
if ! alive "$RUN_DIR/standin.pid" suanwang-kube-standin; then
  t_node=$(now)
  launch standin "$STANDIN" --kubeconfig "$ADMIN_KC" --node "$STANDIN_NODE" \
    --cpu 4 --memory 8Gi --resource nvidia.com/gpu=2 --label suanwang.io/pool=default \
    --workdir "$STATE/nodes/$STANDIN_NODE"
  wait_for standin 30 suanwang-kube-standin node_ready
  say "TIMING stand-in node $STANDIN_NODE Ready: $(since "$t_node") s"
fi
node_ready || die "node $STANDIN_NODE is not Ready and untainted (log: $LOG_DIR/standin.log)"

say "up: $KUBE_API (Kubernetes $K8S_VERSION), node $STANDIN_NODE; state in $STATE, logs in $LOG_DIR"
cat <<OUT
KUBE_API=$KUBE_API
KUBE_STATE=$STATE
KUBE_ADMIN_KUBECONFIG=$ADMIN_KC
KUBE_AGENT_KUBECONFIG=$AGENT_KC
KUBE_NAMESPACE=$NAMESPACE
KUBE_STANDIN=$STANDIN
OUT
