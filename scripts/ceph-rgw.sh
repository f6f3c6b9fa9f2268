#!/usr/bin/env bash
# A throwaway single-node Ceph cluster with its S3 gateway (RADOS Gateway) on
# 127.0.0.1: one monitor, one in-memory OSD (memstore: nothing touches the
# disk), one radosgw. evidenced's object-store contract is tested against it
# as the second real S3 implementation (internal/objstore/storetest): most
# municipal object storage is Ceph.
#
# usage: scripts/ceph-rgw.sh install           install Debian's ceph-mon ceph-osd radosgw when missing
#        scripts/ceph-rgw.sh start [DIR]       start a cluster whose state lives in DIR; waits until
#                                              the gateway answers (~15-20 s) and prints the client env
#        scripts/ceph-rgw.sh stop [DIR]        stop the cluster started with DIR (by its PIDs)
#        scripts/ceph-rgw.sh env [DIR]         print the AWS_* exports for a client
#
# Environment: RGW_OWNER_PID (when set, the cluster is stopped once that
# process is gone: the tests set it), RGW_DIR (default /tmp/evidenced-rgw), RGW_PORT (gateway,
# default 7480), RGW_MON_PORT (monitor, default 3300), RGW_ACCESS_KEY /
# RGW_SECRET_KEY (default testaccess / testsecret123), RGW_MEM_BYTES (the
# in-memory OSD's capacity, default 2 GiB; RAM is used only as data arrives).
# Everything listens on 127.0.0.1 only; authentication inside the cluster is
# off (it is a test cluster), S3 requests are signed as usual.
set -euo pipefail

RGW_DIR=${RGW_DIR:-/tmp/evidenced-rgw}
RGW_PORT=${RGW_PORT:-7480}
RGW_MON_PORT=${RGW_MON_PORT:-3300}
RGW_ACCESS_KEY=${RGW_ACCESS_KEY:-testaccess}
RGW_SECRET_KEY=${RGW_SECRET_KEY:-testsecret123}
RGW_MEM_BYTES=${RGW_MEM_BYTES:-2147483648}

die() { echo "ceph-rgw: $*" >&2; exit 1; }

abs_dir() { mkdir -p "$1" && (cd "$1" && pwd); }

missing() {
  local m=()
  for c in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph; do
    command -v "$c" >/dev/null || m+=("$c")
  done
  echo "${m[*]}"
}

cmd_install() {
  if [ -z "$(missing)" ]; then
    echo "ceph-rgw: ceph-mon, ceph-osd and radosgw present"
    return
  fi
  echo "ceph-rgw: installing Debian packages ceph-mon ceph-osd radosgw (missing: $(missing))"
  export DEBIAN_FRONTEND=noninteractive
  local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  # Another apt run may hold the lock (setup scripts run side by side): wait for it.
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends ceph-mon ceph-osd radosgw >/dev/null
  [ -z "$(missing)" ] || die "still missing after install: $(missing)"
  echo "ceph-rgw: installed"
}

endpoint() { echo "http://127.0.0.1:$RGW_PORT"; }

# The gateway's port and credentials are kept in DIR/env so that `env` and
# the Go test helper read what `start` used.
cmd_env() {
  [ $# -ge 1 ] && RGW_DIR=$1
  if [ -f "$RGW_DIR/env" ]; then
    # shellcheck disable=SC1091
    . "$RGW_DIR/env"
  fi
  echo "export AWS_ENDPOINT_URL=$(endpoint) AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=$RGW_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$RGW_SECRET_KEY"
  echo "unset AWS_PROFILE AWS_SESSION_TOKEN"
}

# pid_of NAME: the PID the daemon NAME (mon.a, osd.0, client.rgw.a) wrote, if
# that process is still a ceph daemon.
pid_of() {
  local f=$RGW_DIR/run/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -Eq 'ceph-mon|ceph-osd|radosgw' \
    && echo "$pid"
}

cmd_start() {
  [ $# -ge 1 ] && RGW_DIR=$1
  [ -z "$(missing)" ] || die "not installed: $(missing) (run: $0 install)"
  RGW_DIR=$(abs_dir "$RGW_DIR")
  for d in mon.a osd.0 client.rgw.a; do
    pid_of $d >/dev/null && die "already running ($d) for $RGW_DIR"
  done
  curl -s -o /dev/null "$(endpoint)/" 2>/dev/null && die "something already answers on $(endpoint)"
  local t0=$SECONDS
  rm -rf "$RGW_DIR/mon" "$RGW_DIR/osd0" "$RGW_DIR/run" "$RGW_DIR/rgw"
  mkdir -p "$RGW_DIR/mon" "$RGW_DIR/osd0" "$RGW_DIR/log" "$RGW_DIR/run" "$RGW_DIR/rgw"
  local fsid; fsid=$(cat /proc/sys/kernel/random/uuid)
  local conf=$RGW_DIR/ceph.conf
  cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$RGW_MON_PORT
public network = 127.0.0.1/32
auth cluster required = none
auth service required = none
auth client required = none
ms bind ipv4 = true
ms bind ipv6 = false
ms mon client mode = crc
ms client mode = crc
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon allow pool delete = true
osd objectstore = memstore
memstore device bytes = $RGW_MEM_BYTES
osd crush chooseleaf type = 0
mon warn on pool no redundancy = false
log file = $RGW_DIR/log/\$name.log
admin socket = $RGW_DIR/run/\$name.asok
pid file = $RGW_DIR/run/\$name.pid
run dir = $RGW_DIR/run
mon data = $RGW_DIR/mon
osd data = $RGW_DIR/osd0
keyring = $RGW_DIR/keyring
osd max object size = 1073741824
[mon.a]
mon addr = v2:127.0.0.1:$RGW_MON_PORT
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $RGW_DIR/rgw
rgw dns name = localhost
log file = $RGW_DIR/log/rgw.log
CONF
  printf 'RGW_PORT=%s\nRGW_MON_PORT=%s\nRGW_ACCESS_KEY=%s\nRGW_SECRET_KEY=%s\n' \
    "$RGW_PORT" "$RGW_MON_PORT" "$RGW_ACCESS_KEY" "$RGW_SECRET_KEY" >"$RGW_DIR/env"
  local ceph=(ceph -c "$conf" --connect-timeout 10)
  local log=$RGW_DIR/log/start.log
  : >"$log"
  touch "$RGW_DIR/keyring"
  monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$RGW_MON_PORT]" "$RGW_DIR/monmap" >>"$log" 2>&1
  ceph-mon --mkfs -i a --monmap "$RGW_DIR/monmap" -c "$conf" >>"$log" 2>&1 || { cat "$log" >&2; die "ceph-mon --mkfs failed"; }
  ceph-mon -i a -c "$conf" >>"$log" 2>&1 || { cat "$log" >&2; die "ceph-mon failed to start"; }
  local osd_uuid; osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  "${ceph[@]}" osd new "$osd_uuid" 0 >>"$log" 2>&1 || { cat "$log" >&2; cmd_stop; die "osd new failed"; }
  ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$log" 2>&1 || { cat "$log" >&2; cmd_stop; die "ceph-osd --mkfs failed"; }
  ceph-osd -c "$conf" -i 0 >>"$log" 2>&1 || { cat "$log" >&2; cmd_stop; die "ceph-osd failed to start"; }
  "${ceph[@]}" osd crush add osd.0 1.0 root=default >>"$log" 2>&1 || true
  local up=""
  for _ in $(seq 120); do
    if "${ceph[@]}" osd stat 2>/dev/null | grep -q '1 up'; then up=1; break; fi
    sleep 0.5
  done
  [ -n "$up" ] || { tail -n 30 "$RGW_DIR/log/osd.0.log" >&2 || true; cmd_stop; die "the OSD did not come up"; }
  radosgw -c "$conf" -n client.rgw.a >>"$log" 2>&1 || { cat "$log" >&2; cmd_stop; die "radosgw failed to start"; }
  local ready=""
  for _ in $(seq 240); do
    if curl -s -o /dev/null "$(endpoint)/" 2>/dev/null; then ready=1; break; fi
    sleep 0.25
  done
  [ -n "$ready" ] || { tail -n 30 "$RGW_DIR/log/rgw.log" >&2 || true; cmd_stop; die "radosgw did not answer on $(endpoint)"; }
  radosgw-admin -c "$conf" user create --uid=evidenced-test --display-name=evidenced-test \
    --access-key="$RGW_ACCESS_KEY" --secret-key="$RGW_SECRET_KEY" >>"$log" 2>&1 \
    || { cat "$log" >&2; cmd_stop; die "radosgw-admin user create failed"; }
  if [ -n "${RGW_OWNER_PID:-}" ]; then
    # Stop the cluster when its owner (a test binary) is gone, even if it was
    # killed before it could stop it.
    local self; self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
    setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 2; done; "$2" stop "$3"' watchdog \
      "$RGW_OWNER_PID" "$self" "$RGW_DIR" </dev/null >/dev/null 2>&1 &
    echo $! >"$RGW_DIR/run/watchdog.pid"
  fi
  echo "ceph-rgw: radosgw ready on $(endpoint) in $((SECONDS - t0)) s (state $RGW_DIR)"
  echo "ceph-rgw: client environment:"
  cmd_env | sed 's/^/  /'
}

cmd_stop() {
  [ $# -ge 1 ] && RGW_DIR=$1
  local stopped=() pids=()
  # All at once, then SIGKILL after 2 s: the cluster is throwaway (its OSD
  # keeps everything in memory), so a slow clean shutdown buys nothing.
  for d in client.rgw.a osd.0 mon.a; do
    local pid
    pid=$(pid_of $d) || continue
    kill "$pid" 2>/dev/null || true
    pids+=("$pid"); stopped+=("$d:$pid")
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  done
  if [ -f "$RGW_DIR/run/watchdog.pid" ]; then
    local w; w=$(cat "$RGW_DIR/run/watchdog.pid")
    # Only the watchdog this script started (not the one running this stop).
    if [ "$w" != "$$" ] && [ "$w" != "${PPID:-}" ] && tr '\0' ' ' <"/proc/$w/cmdline" 2>/dev/null | grep -q watchdog; then
      kill "$w" 2>/dev/null || true
    fi
  fi
  rm -f "$RGW_DIR"/run/*.pid 2>/dev/null || true
  if [ ${#stopped[@]} -gt 0 ]; then echo "ceph-rgw: stopped ${stopped[*]}"; else echo "ceph-rgw: not running for $RGW_DIR"; fi
}

case "${1:-}" in
install) cmd_install ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
env) shift; cmd_env "$@" ;;
*) echo "usage: $0 install | start [DIR] | stop [DIR] | env [DIR]" >&2; exit 2 ;;
esac
