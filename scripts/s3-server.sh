#!/usr/bin/env bash
# A local S3 server (VersityGW, posix backend) for the demo and for manual
# testing. The Go tests do not need this script to be running: they start their
# own servers (internal/testutil/s3srv), using the binary `install` caches.
#
# usage: scripts/s3-server.sh install            build and cache versitygw (idempotent)
#        scripts/s3-server.sh start [DIR] [PORT] start on 127.0.0.1:PORT, data in DIR; waits until ready
#        scripts/s3-server.sh bucket NAME        create NAME with Object Lock and versioning
#        scripts/s3-server.sh stop [DIR]         stop the server started with DIR (by its PID)
#        scripts/s3-server.sh env                print the AWS_* exports for a client
#
# Environment: S3_DIR (default /tmp/evidenced-s3), S3_PORT (default 7070),
# BIN_DIR (default ~/.cache/evidenced/bin), VGW_VERSION (default v1.8.0),
# ROOT_ACCESS_KEY / ROOT_SECRET_KEY (default testaccess / testsecret123),
# VGW_SIDECAR=1 to keep metadata in a sidecar directory when DIR's file system
# has no user extended attributes (detected automatically when possible).
# The server listens on 127.0.0.1 only.
set -euo pipefail

VGW_VERSION=${VGW_VERSION:-v1.8.0}
BIN_DIR=${BIN_DIR:-$HOME/.cache/evidenced/bin}
VGW=$BIN_DIR/versitygw
S3_DIR=${S3_DIR:-/tmp/evidenced-s3}
S3_PORT=${S3_PORT:-7070}
export ROOT_ACCESS_KEY=${ROOT_ACCESS_KEY:-testaccess}
export ROOT_SECRET_KEY=${ROOT_SECRET_KEY:-testsecret123}
INSTALL_LOG=/tmp/vgw-install.log
ENDPOINT=http://127.0.0.1:$S3_PORT

die() { echo "s3-server: $*" >&2; exit 1; }

abs_dir() { mkdir -p "$1" && (cd "$1" && pwd); }

# A versitygw build already under way (someone else's `go install` into the
# same directory) is waited for rather than duplicated: the build takes
# minutes of CPU.
install_running() {
  pgrep -f "versitygw/cmd/versitygw@" >/dev/null 2>&1
}

log_fresh() {
  [ -f "$INSTALL_LOG" ] && [ $(( $(date +%s) - $(stat -c %Y "$INSTALL_LOG") )) -lt 120 ]
}

cmd_install() {
  command -v go >/dev/null || die "go is not on PATH"
  mkdir -p "$BIN_DIR"
  local waited=0
  while install_running || { [ ! -x "$VGW" ] && log_fresh; }; do
    [ $waited -eq 0 ] && echo "s3-server: a versitygw build is in progress ($INSTALL_LOG); waiting for it"
    [ $waited -ge 1800 ] && die "waited 30 min for the versitygw build in progress; giving up"
    sleep 5; waited=$((waited + 5))
  done
  if [ -x "$VGW" ]; then
    echo "s3-server: versitygw present at $VGW"
    return
  fi
  echo "s3-server: building versitygw $VGW_VERSION into $BIN_DIR (2-4 min; log: $INSTALL_LOG)"
  (
    flock 9
    [ -x "$VGW" ] && exit 0
    GOBIN=$BIN_DIR go install "github.com/versity/versitygw/cmd/versitygw@$VGW_VERSION" >"$INSTALL_LOG" 2>&1 \
      || { cat "$INSTALL_LOG" >&2; exit 1; }
  ) 9>"$BIN_DIR/.install.lock"
  [ -x "$VGW" ] || die "versitygw not installed at $VGW"
  echo "s3-server: installed $VGW"
}

pid_alive() {
  local pid=$1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q versitygw
}

cmd_start() {
  [ $# -ge 1 ] && S3_DIR=$1
  if [ $# -ge 2 ]; then S3_PORT=$2; ENDPOINT=http://127.0.0.1:$S3_PORT; fi
  [ -x "$VGW" ] || die "versitygw not installed at $VGW (run: $0 install)"
  S3_DIR=$(abs_dir "$S3_DIR")   # versitygw chdirs into the data dir: absolute paths only
  if [ -f "$S3_DIR/pid" ] && pid_alive "$(cat "$S3_DIR/pid")"; then
    die "already running (pid $(cat "$S3_DIR/pid")) for $S3_DIR"
  fi
  if curl -fsS -o /dev/null "$ENDPOINT/health" 2>/dev/null; then
    die "something already answers on $ENDPOINT"
  fi
  mkdir -p "$S3_DIR/data" "$S3_DIR/versions"
  local extra=()
  local sidecar=${VGW_SIDECAR:-}
  if [ -z "$sidecar" ] && command -v setfattr >/dev/null; then
    if setfattr -n user.evidenced-probe -v 1 "$S3_DIR/data" 2>/dev/null; then
      setfattr -x user.evidenced-probe "$S3_DIR/data" 2>/dev/null || true
    else
      sidecar=1
    fi
  fi
  if [ -n "$sidecar" ]; then mkdir -p "$S3_DIR/meta"; extra=(--sidecar "$S3_DIR/meta"); fi
  "$VGW" --port "127.0.0.1:$S3_PORT" --keep-alive --health /health --quiet \
    posix --versioning-dir "$S3_DIR/versions" "${extra[@]}" "$S3_DIR/data" \
    >>"$S3_DIR/server.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$S3_DIR/pid"
  for _ in $(seq 300); do
    if curl -fsS -o /dev/null "$ENDPOINT/health" 2>/dev/null; then
      echo "s3-server: versitygw ready on $ENDPOINT (pid $pid, data $S3_DIR)"
      echo "s3-server: client environment:"
      cmd_env | sed 's/^/  /'
      return
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "s3-server: versitygw failed to start:" >&2
  tail -n 50 "$S3_DIR/server.log" >&2 || true
  pid_alive "$pid" && kill "$pid" 2>/dev/null
  rm -f "$S3_DIR/pid"
  exit 1
}

cmd_stop() {
  [ $# -ge 1 ] && S3_DIR=$1
  [ -f "$S3_DIR/pid" ] || { echo "s3-server: not running (no $S3_DIR/pid)"; return; }
  local pid; pid=$(cat "$S3_DIR/pid")
  if pid_alive "$pid"; then
    kill "$pid"
    for _ in $(seq 100); do pid_alive "$pid" || break; sleep 0.1; done
    pid_alive "$pid" && kill -KILL "$pid"
    echo "s3-server: stopped pid $pid"
  fi
  rm -f "$S3_DIR/pid"
}

cmd_env() {
  echo "export AWS_ENDPOINT_URL=$ENDPOINT AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=$ROOT_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$ROOT_SECRET_KEY"
  echo "unset AWS_PROFILE AWS_SESSION_TOKEN"
}

cmd_bucket() {
  [ $# -eq 1 ] || die "usage: $0 bucket NAME"
  local name=$1
  curl -fsS -o /dev/null "$ENDPOINT/health" 2>/dev/null || die "no server answers on $ENDPOINT (start it first)"
  if [ -x /usr/bin/aws ]; then
    # Debian's aws; another `aws` may come first on PATH, and AWS_CA_BUNDLE
    # on these machines breaks it.
    local aws=(env -u AWS_CA_BUNDLE -u AWS_PROFILE AWS_ACCESS_KEY_ID="$ROOT_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$ROOT_SECRET_KEY"
      AWS_REGION=us-east-1 /usr/bin/aws --endpoint-url "$ENDPOINT" s3api)
    "${aws[@]}" create-bucket --bucket "$name" --object-lock-enabled-for-bucket >/dev/null
    "${aws[@]}" put-bucket-versioning --bucket "$name" --versioning-configuration Status=Enabled
  else
    # curl signs S3 requests itself (SigV4; "?versioning=" so both sides
    # canonicalise the query alike).
    local sig=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "$ROOT_ACCESS_KEY:$ROOT_SECRET_KEY")
    local empty=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 # sha256 of ""
    curl -fsS -X PUT "${sig[@]}" -H "x-amz-content-sha256: $empty" -H "x-amz-bucket-object-lock-enabled: true" \
      "$ENDPOINT/$name" >/dev/null \
      || die "create bucket $name failed"
    local body='<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>'
    curl -fsS -X PUT "${sig[@]}" -H "x-amz-content-sha256: $(printf %s "$body" | sha256sum | cut -d' ' -f1)" \
      --data-binary "$body" "$ENDPOINT/$name?versioning=" >/dev/null \
      || die "enable versioning on $name failed"
  fi
  echo "s3-server: bucket $name created with Object Lock and versioning"
}

case "${1:-}" in
install) cmd_install ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
env) cmd_env ;;
bucket) shift; cmd_bucket "$@" ;;
*) echo "usage: $0 install | start [DIR] [PORT] | bucket NAME | stop [DIR] | env" >&2; exit 2 ;;
esac
