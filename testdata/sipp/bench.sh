#!/usr/bin/env bash
# make bench-sip: call setup rate through convergo to a callee with two devices.
# A SIPp UAC calls bob at increasing rates (INVITE, 180, 200, ACK, 1 s, BYE);
# bob's device 1 (uas.xml) answers, device 2 (uas-ring.xml) rings and must be
# CANCELled every time. A step passes only if all three SIPp processes report
# zero failed calls. Prints, per rate: calls, failures (as the caller, device 1
# and device 2 counted them), server CPU per call,
# server RSS; then the highest rate with zero failures.
# RATES="200 500 ..." and SECONDS_PER_STEP override the steps. PORT_BASE
# (default 25000) moves every port, so two benches can share a machine.
# PROFILE_DIR, if set, gets a CPU profile (the middle of each step), a heap
# profile and a goroutine count per step, through the admin listener.
# SERVER_ENV="GOGC=200 ..." adds environment for the server only; BIN runs
# another convergo binary (to compare two builds).
# MEDIA_MODE (default passthrough) is media.mode: this bench measures call
# signalling, like a forking proxy without media; MEDIA_MODE=relay anchors
# every call's SDP on the relay too (port pairs per fork; widen the range).
# TARGET=kamailio runs the same steps against Kamailio as a stateful forking
# proxy (kamailio-bench.cfg; apt-get install kamailio), issue 4's yardstick,
# so the two can be compared on the same machine at the same moment; CPU and
# memory are then summed over Kamailio's processes (memory as PSS).
# KAMAILIO_ARGS adds options to Kamailio's command line: the Debian build's
# default memory manager (q_malloc with debugging) takes about half of its
# CPU here; KAMAILIO_ARGS="-x tlsf" measures the faster TLSF manager.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${BIN:-"$root/bin/convergo"}
rates=${RATES:-"100 250 500 1000 1500 2000 2500 3000 3500 4000"}
secs=${SECONDS_PER_STEP:-10}
work=$(mktemp -d)
pids=()
restore=()
# shellcheck source=../lib/sockbuf.sh
. "$here/../lib/sockbuf.sh"
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  restore_socket_buffer_caps
  [ -n "${KEEP_WORK:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

# SIPp asks for 4 MiB socket buffers (-buff_size below), which the kernel
# caps at net.core.rmem_max/wmem_max (212,992 bytes on a stock Debian). As
# root, raise the caps for this run only (restored on exit); the server
# itself is granted its socket_buffer as root whatever the caps.
raise_socket_buffer_caps $((4 << 20)) "SIPp's socket buffers are"

base=${PORT_BASE:-25000}
sip=127.0.0.1:$((base + 60)) http=127.0.0.1:$((base + 3080)) dev1=$((base + 71)) dev2=$((base + 72))
admin=127.0.0.1:$((base + 3081))
profdir=${PROFILE_DIR:-}
[ -n "$profdir" ] && mkdir -p "$profdir" && export CONVERGO_HTTP_ADMIN_LISTEN=$admin
export CONVERGO_STORE_BOLT_PATH="$work/convergo.db" CONVERGO_AUTH_AUTO_KEY_FILE="$work/jwt.pem"
export CONVERGO_HTTP_LISTEN=$http CONVERGO_SIP_LISTEN="udp:$sip" CONVERGO_LOG_LEVEL=warn
export CONVERGO_SIP_DOMAIN=convergo.test CONVERGO_AUTH_DIGEST_ALGORITHMS=MD5,SHA-256
# The load generator stands where the S-CSCF would: a trusted peer, so calls need no Digest.
export CONVERGO_ISC_TRUSTED_PEERS=127.0.0.1 CONVERGO_SIP_MAX_INFLIGHT=20000
export CONVERGO_MEDIA_MODE=${MEDIA_MODE:-passthrough} CONVERGO_MEDIA_PORT_MIN=30000 CONVERGO_MEDIA_PORT_MAX=59999
target=${TARGET:-convergo}
case $target in
convergo)
  printf 'bench-secret-1\n' | "$bin" user add -id bob -identity sip:bob@convergo.test -password-stdin >/dev/null
  env ${SERVER_ENV:-} "$bin" serve >"$work/server.log" 2>&1 &
  server=$!; pids+=("$server")
  for _ in $(seq 50); do curl -fsS "http://$http/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  ;;
kamailio)
  command -v kamailio >/dev/null || { echo "TARGET=kamailio needs kamailio (apt-get install kamailio)" >&2; exit 1; }
  [ -z "$profdir" ] || echo "PROFILE_DIR applies to convergo only" >&2
  profdir=
  # -DD: stay in the foreground (its workers are children of $server).
  kamailio -DD -E -f "$here/kamailio-bench.cfg" -A 'BENCH_PASSWORD="bench-secret-1"' -l "udp:$sip" \
    -m 1024 -M 32 ${KAMAILIO_ARGS:-} -Y "$work" -P "$work/kamailio.pid" >"$work/server.log" 2>&1 &
  server=$!; pids+=("$server")
  for _ in $(seq 50); do ss -Hlun "sport = :$((base + 60))" | grep -q . && break; sleep 0.1; done
  ;;
*) echo "TARGET must be convergo or kamailio" >&2; exit 1 ;;
esac

# -buff_size: SIPp's own UDP buffers default to 64 KiB and overflow in bursts
# (ss -uamn shows the drops on its sockets, not the server's); the load
# generator must not be what loses messages.
common=(-i 127.0.0.1 -t u1 -nostdin -timeout_error -max_recv_loops 100000 -max_sched_loops 100000 -buff_size 4194304)
for d in 1 2; do
  port=$([ $d = 1 ] && echo $dev1 || echo $dev2)
  sipp -sf "$here/register-device.xml" "${common[@]}" -p "$port" -m 1 -timeout 10s \
    -s bob -au bob -ap bench-secret-1 -key domain convergo.test \
    -key instance "urn:uuid:00000000-0000-4000-8000-00000000000$d" "$sip" >/dev/null 2>&1 </dev/null
done

# The server's processes: convergo is one, Kamailio forks its workers.
procs() { echo "$server"; pgrep -P "$server" || true; }
cpu() { for p in $(procs); do awk '{print $14+$15}' "/proc/$p/stat"; done | awk '{s+=$1} END{print s}'; }  # utime+stime, ticks
rss() { for p in $(procs); do awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup"; done | awk '{s+=$1} END{print s}'; }  # KiB
# CPU seconds of this script's reaped children (the SIPp processes of the finished steps).
# UDP datagrams the kernel dropped for a full receive buffer, machine-wide.
drops() { awk '/^Udp:/ && $2 ~ /^[0-9]+$/ {print $6}' /proc/net/snmp; }
# times must run in this shell (a $(...) subshell has no reaped children).
reaped() { awk 'NR==2{split($1,u,/[ms]/); split($2,s,/[ms]/); printf "%.3f", u[1]*60+u[2]+s[1]*60+s[2]}' "$1"; }
hz=$(getconf CLK_TCK)
best=0
printf '%6s %8s %14s %12s %12s %9s %10s\n' rate calls "failed u/d1/d2" "cpu/call" "sipp/call" "rss(MiB)" "udp drops"
for r in $rates; do
  n=$((r * secs))
  sipp -sf "$here/uas.xml" "${common[@]}" -p $dev1 -m "$n" -timeout $((secs + 30))s \
    -trace_stat -stf "$work/uas1.csv" -trace_err -error_file "$work/uas1.err" >/dev/null 2>&1 </dev/null & u1=$!
  sipp -sf "$here/uas-ring.xml" "${common[@]}" -p $dev2 -m "$n" -timeout $((secs + 30))s \
    -trace_stat -stf "$work/uas2.csv" -trace_err -error_file "$work/uas2.err" >/dev/null 2>&1 </dev/null & u2=$!
  sleep 0.3
  c0=$(cpu) d0=$(drops); times >"$work/times0"
  set +e
  sipp -sf "$here/uac.xml" "${common[@]}" -s bob -key domain convergo.test -r "$r" -m "$n" -l $((r * 3)) \
    -timeout $((secs + 30))s -trace_stat -stf "$work/uac.csv" -trace_err -error_file "$work/uac.err" "$sip" >/dev/null 2>&1 </dev/null & uac=$!
  if [ -n "$profdir" ]; then
    ps=$(( secs / 4 > 1 ? secs / 4 : 1 ))
    sleep $(( secs / 3 ))
    curl -fsS -o "$profdir/cpu-$r.pb.gz" "http://$admin/debug/pprof/profile?seconds=$ps" || true
    sleep $(( secs / 3 - ps > 0 ? secs / 3 - ps : 0 ))
    curl -fsS -o "$profdir/heap-$r.pb.gz" "http://$admin/debug/pprof/heap" || true
    curl -fsS "http://$http/metrics" 2>/dev/null | grep -E '^go_(gc_duration_seconds_count|memstats_heap_inuse_bytes|goroutines|memstats_next_gc_bytes) |^convergo_calllog_dropped_total|^convergo_sip_rejected_total|^convergo_b2bua_calls' >"$profdir/metrics-$r.txt" || true
    curl -fsS "http://$admin/debug/pprof/goroutine?debug=1" 2>/dev/null | head -1 >"$profdir/goroutines-$r.txt" || true
    curl -fsS -o "$profdir/goroutine-$r.txt" "http://$admin/debug/pprof/goroutine?debug=1" || true
    echo "rss mid-step: $(( $(rss) / 1024 )) MiB" >>"$profdir/goroutines-$r.txt"
  fi
  wait $uac
  rc=$?
  wait $u1; r1=$?; wait $u2; r2=$?
  set -e
  c1=$(cpu) d1=$(drops); times >"$work/times1"
  # Failed calls as the caller and each device counted them (caller/device 1/device 2):
  # a device can fail a call the caller completed (a CANCEL for a call it had given up).
  failed=$(for f in uac uas1 uas2; do tail -1 "$work/$f.csv" 2>/dev/null | awk -F';' '{print $18}' | grep . || echo "?"; done | paste -sd/)
  percall=$(awk -v d=$((c1 - c0)) -v hz="$hz" -v n="$n" 'BEGIN{printf "%.0f µs", d / hz / n * 1e6}')
  # What the three SIPp processes used: the share of the machine left to the server.
  others=$(awk -v a="$(reaped "$work/times0")" -v b="$(reaped "$work/times1")" -v n="$n" 'BEGIN{printf "%.0f µs", (b - a) / n * 1e6}')
  printf '%6s %8s %14s %12s %12s %9s %10s\n' "$r" "$n" "${failed:-?}" "$percall" "$others" "$(( $(rss) / 1024 ))" "$((d1 - d0))"
  if [ $rc -ne 0 ] || [ $r1 -ne 0 ] || [ $r2 -ne 0 ]; then
    echo "rate $r: failures (uac rc=$rc, device1 rc=$r1, device2 rc=$r2); stopping"
    for f in uac uas1 uas2; do  # SIPp's own account of what went wrong (awk stops
      # by itself: a head closing the pipe would fail it under pipefail and end the script)
      [ -s "$work/$f.err" ] && { echo "  $f errors (first 3 of $(grep -c . "$work/$f.err")):"; awk 'NF { print "    " substr($0, 1, 200); if (++n == 3) exit }' "$work/$f.err"; }
    done
    break
  fi
  best=$r
done
echo "$target: highest rate with zero failed calls: $best calls/s (two-device callee, one CANCELled per call)"
kill -TERM "$server"; wait "$server" || true
