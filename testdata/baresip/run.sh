#!/usr/bin/env bash
# Two headless baresip softphones call each other through convergo with
# SDES-SRTP (mediaenc=srtp): alice and bob register with Digest, alice dials
# bob, bob auto-answers, they talk (a 440 Hz sine) for TALK_SECONDS (3),
# alice hangs up. Prints the SDP bob got, both phones' call events and the
# server's media counters; fails unless the relay forwarded packets both
# ways with no SRTP failure while the call was up.
# Needs bin/convergo (make build) and baresip (apt-get install baresip-core).
# MEDIAENC=srtp-mand offers RTP/SAVP instead; KEEP=1 keeps configs and logs.
# Fixed loopback ports: SIP 25260, HTTP 28280, baresip control 25361/25362,
# relay 42000-42999, phones' RTP 40000-41999.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${CONVERGO:-$root/bin/convergo}
talk=${TALK_SECONDS:-3}
mediaenc=${MEDIAENC:-srtp} # or srtp-mand (RTP/SAVP only)
command -v baresip >/dev/null || { echo "baresip not installed: apt-get install baresip-core" >&2; exit 1; }
[ -x "$bin" ] || { echo "$bin missing: make build" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() { # newest first: the phones un-REGISTER while the server still answers
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; wait "${pids[i]}" 2>/dev/null || true; done
  if [ "${KEEP:-}" ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

sip=127.0.0.1:25260 http=127.0.0.1:28280
export CONVERGO_STORE_BOLT_PATH="$work/convergo.db" CONVERGO_AUTH_AUTO_KEY_FILE="$work/jwt.pem"
export CONVERGO_HTTP_LISTEN=$http CONVERGO_SIP_LISTEN="udp:$sip" CONVERGO_LOG_LEVEL=info
export CONVERGO_SIP_DOMAIN=convergo.test
# baresip 1.0 (libre 1.1) gives up on a 401 that offers anything but an MD5
# Digest: a Bearer challenge is a "Bad message", SHA-256 "not implemented".
export CONVERGO_AUTH_DIGEST_ALGORITHMS=MD5 CONVERGO_AUTH_DISABLE_SIP_BEARER=true
# Relay ports apart from the phones' own (rtp_ports below).
export CONVERGO_MEDIA_PORT_MIN=42000 CONVERGO_MEDIA_PORT_MAX=42999
for u in alice bob; do
  printf '%s-secret-1\n' "$u" | "$bin" user add -id "$u" -identity "sip:$u@convergo.test" -password-stdin >/dev/null
done
"$bin" serve >"$work/server.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -fsS "http://$http/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fsS "http://$http/readyz" >/dev/null || { echo "convergo not ready:" >&2; tail -20 "$work/server.log" >&2; exit 1; }

# phone NAME RTP_PORTS CTRL_PORT ANSWERMODE: writes $work/NAME/{config,accounts}, starts baresip.
phone() {
  mkdir -p "$work/$1"
  sed -e "s/{{NAME}}/$1/g; s/{{RTP_PORTS}}/$2/; s/{{CTRL_LISTEN}}/127.0.0.1:$3/" \
    "$here/config.tmpl" >"$work/$1/config"
  sed -e "s/{{USER}}/$1/g; s/{{DOMAIN}}/convergo.test/; s/{{PASSWORD}}/$1-secret-1/; s/{{SERVER}}/$sip/" \
    -e "s/{{MEDIAENC}}/$mediaenc/; s/{{ANSWERMODE}}/$4/" "$here/accounts.tmpl" >"$work/$1/accounts"
  baresip -f "$work/$1" -s >"$work/$1.log" 2>&1 </dev/null &
  pids+=($!)
}
phone alice 40000-40999 25361 manual
phone bob 41000-41999 25362 auto

# wait_for FILE PATTERN SECONDS
wait_for() {
  for _ in $(seq $(($3 * 10))); do grep -aq "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for $2 in $1 (KEEP=1 keeps the logs)" >&2
  exit 1
}
for u in alice bob; do wait_for "$work/$u.log" "$u@convergo.test: {0/UDP/v4} 200 OK" 5; done

# ctrl_tcp speaks JSON in netstrings; keep one connection per phone open to
# send commands on and collect its events.
exec 3<>/dev/tcp/127.0.0.1/25361 4<>/dev/tcp/127.0.0.1/25362
cat <&3 >"$work/alice.events" & pids+=($!)
cat <&4 >"$work/bob.events" & pids+=($!)
send() { local j="{\"command\":\"$2\",\"params\":\"$3\",\"token\":\"$2\"}"; printf '%d:%s,' "${#j}" "$j" >&"$1"; }

send 3 dial sip:bob@convergo.test
wait_for "$work/alice.events" '"CALL_ESTABLISHED"' 10
wait_for "$work/bob.events" '"CALL_ESTABLISHED"' 5
echo "call established; talking for ${talk}s"
sleep "$talk"
# Judge the relay while the call is up: at teardown baresip 1.0 sends its
# RTCP BYE unencrypted, which the relay rightly counts as an SRTP failure if
# it arrives before the BYE released the call.
during=$(curl -fsS "http://$http/metrics" | grep '^convergo_media_' || true)
send 3 hangup ""
wait_for "$work/bob.events" '"CALL_CLOSED"' 5

echo "--- SDP bob received (the relay's address and port, its own key):"
awk '/^INVITE sip:bob/{p=1} p&&/^(c=|m=|a=crypto)/{print} p&&/^a=crypto/{exit}' "$work/bob.log"
echo "--- events:"
for u in alice bob; do
  grep -ao '"type":"CALL_[A-Z_]*"[^}]*"param":"[^"]*"' "$work/$u.events" | sed "s/^/$u /"
done
echo "--- convergo media metrics after the call:"
curl -fsS "http://$http/metrics" | grep '^convergo_media_' || true
value() { echo "$during" | awk -v m="$1" 'index($0, m) == 1 {n += $2} END {print n + 0}'; }
a=$(value 'convergo_media_packets_total{side="a"}') b=$(value 'convergo_media_packets_total{side="b"}')
fails=$(value convergo_media_srtp_failures_total)
if [ "$a" = 0 ] || [ "$b" = 0 ] || [ "$fails" != 0 ]; then
  echo "FAIL during the call: relayed packets a=$a b=$b, srtp failures $fails" >&2
  exit 1
fi
echo "ok during the call: relayed packets a=$a (alice->bob) b=$b (bob->alice), srtp failures 0"
