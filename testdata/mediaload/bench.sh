#!/usr/bin/env bash
# make bench-media: G.711 load through convergo's media relay.
# Starts a server with testdata/mediaload/convergo.yaml (SIP 127.0.0.1:35060,
# HTTP 127.0.0.1:38080, relay ports 20000-59999, srtp_policy strip, bolt data
# in a temporary directory), then runs cmd/mediaload twice against it:
# CALLS calls (default 1000) set up at RATE/s (default 200), held for
# MEDIA_SECONDS (default 20; not SECONDS, which bash owns) of 20 ms G.711
# both ways once all are up: first plain RTP on both sides, then an SRTP
# caller against the plain-RTP device, so the relay bridges SRTP<->RTP.
# Prints both reports (packets/s forwarded, loss, server CPU per packet,
# RSS) and the SRTP/plain server cost ratio (target: at most 1.25).
# Exits non-zero only if a run could not take place; a missed target is
# printed (FAIL) but does not fail the script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin="$root/bin/convergo"
config="$here/convergo.yaml"
calls=${CALLS:-1000}
secs=${MEDIA_SECONDS:-20}
rate=${RATE:-200}
work=$(mktemp -d)
pids=()
restore=()
# shellcheck source=../lib/sockbuf.sh
. "$here/../lib/sockbuf.sh"
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  restore_socket_buffer_caps
  rm -rf "$work"
}
trap cleanup EXIT

# The tool's two media sockets each take 50,000 packets/s at 1,000 calls; it
# asks for 8 MiB buffers, which the kernel caps at rmem_max/wmem_max. As
# root, raise the caps for this run only (restored on exit).
raise_socket_buffer_caps $((8 << 20)) "the tool's socket buffers are"

sip=127.0.0.1:35060 http=127.0.0.1:38080
export CONVERGO_STORE_BOLT_PATH="$work/convergo.db" CONVERGO_AUTH_AUTO_KEY_FILE="$work/jwt.pem"
(cd "$root" && "${GO:-go}" build -o "$work/mediaload" ./cmd/mediaload)
printf 'bench-secret-1\n' | "$bin" user add -config "$config" -id bob -identity sip:bob@convergo.test -password-stdin >/dev/null
"$bin" serve -config "$config" >"$work/server.log" 2>&1 &
server=$!; pids+=("$server")
ready=0
for _ in $(seq 100); do curl -fsS "http://$http/readyz" >/dev/null 2>&1 && { ready=1; break; }; sleep 0.1; done
if [ $ready = 0 ]; then echo "convergo not ready on $http:"; cat "$work/server.log"; exit 1; fi

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs (the cores may be shared: figures vary)"
export MEDIALOAD_PASSWORD=bench-secret-1
common=(-server "$sip" -domain convergo.test -user bob -calls "$calls" -rate "$rate" -duration "${secs}s"
  -server-pid "$server" -metrics "http://$http/metrics")
declare -A cost
for mode in plain srtp; do
  extra=()
  [ "$mode" = srtp ] && extra=(-srtp)
  echo
  echo "== $mode: $calls calls at $rate/s, ${secs} s of media with every call up"
  echo "   $work/mediaload ${common[*]} ${extra[*]}"
  set +e
  "$work/mediaload" "${common[@]}" "${extra[@]}" | tee "$work/$mode.txt"
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" != 0 ] && [ "$rc" != 3 ] && [ "$rc" != 4 ]; then
    echo "mediaload could not run (exit $rc); server log:"; tail -20 "$work/server.log"; exit 1
  fi
  cost[$mode]=$(awk '/^server:/ { for (i = 1; i <= NF; i++) if ($i == "µs/packet,") print $(i-1) }' "$work/$mode.txt")
  sleep 1
done

echo
# Share of the nominal packet rate the tool managed to offer in a run.
offered() {
  awk '/^window:/ { for (i = 1; i <= NF; i++) { if ($i == "offered") o = $(i+1); if ($i == "(nominal") { n = $(i+1); sub(/\).*/, "", n) } } }
    END { if (n > 0) printf "%.1f", 100 * o / n }' "$1"
}
if [ -n "${cost[plain]}" ] && [ -n "${cost[srtp]}" ]; then
  awk -v p="${cost[plain]}" -v s="${cost[srtp]}" -v po="$(offered "$work/plain.txt")" -v so="$(offered "$work/srtp.txt")" 'BEGIN {
    r = s / p
    verdict = (r <= 1.25 ? "met" : "missed")
    # Per-packet cost depends on the rate; compare only runs near the nominal one.
    if (po < 90 || so < 90) verdict = "not comparable: a run offered under 90% of the nominal rate"
    printf "server CPU per forwarded packet: plain relay %.2f µs (tool offered %s%% of nominal), SRTP<->RTP bridging %.2f µs (%s%%): %.2fx (target <= 1.25: %s)\n",
      p, po, s, so, r, verdict }'
fi
for mode in plain srtp; do
  echo "$mode: $(grep '^result:' "$work/$mode.txt" | sed 's/^result: *//')"
done
kill -TERM "$server"; wait "$server" || true
