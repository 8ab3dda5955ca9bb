#!/usr/bin/env bash
# Runs every SIPp scenario of this folder against a convergo started with
# convergo.yaml, and fails if any scenario has a failed call.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin="$root/bin/convergo"
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

export CONVERGO_STORE_BOLT_PATH="$work/convergo.db"
export CONVERGO_AUTH_AUTO_KEY_FILE="$work/jwt.pem"
# The account register.xml authenticates as (see README in this folder).
printf '%s\n' 'sipp-secret-1' | "$bin" user add -config "$here/convergo.yaml" -id sippuser \
  -identity sip:sippuser@convergo.test -password-stdin >/dev/null
# The callee of the call scenarios, with two devices registered below.
printf '%s\n' 'bob-secret-1' | "$bin" user add -config "$here/convergo.yaml" -id bob \
  -identity sip:bob@convergo.test -password-stdin >/dev/null
"$bin" serve -config "$here/convergo.yaml" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 50); do
  curl -fsS http://127.0.0.1:18080/readyz >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS http://127.0.0.1:18080/readyz >/dev/null || { cat "$work/server.log"; exit 1; }

target=127.0.0.1:15060
fail=0
# scenario transport calls [extra sipp arguments]
while read -r scenario transport calls extra; do
  [ -z "$scenario" ] && continue
  printf '%-28s %-4s ' "$scenario" "$transport"
  if sipp -sf "$here/$scenario" -t "$transport" -i 127.0.0.1 -m "$calls" -r 50 \
      -timeout 20s -timeout_error -max_recv_loops 1000 -trace_err -error_file "$work/$scenario.err" \
      -nostdin $extra "$target" >/dev/null 2>&1 </dev/null; then
    echo ok
  else
    echo FAILED; fail=1
    cat "$work/$scenario.err" 2>/dev/null | tail -20 || true
  fi
done <<'LIST'
options.xml u1 20
options.xml t1 20
options-maxfwd0.xml u1 5
register.xml u1 10 -s sippuser -au sippuser -ap sipp-secret-1 -key domain convergo.test
register.xml t1 10 -s sippuser -au sippuser -ap sipp-secret-1 -key domain convergo.test
LIST

# Calls: bob has two devices (SIPp UAS processes on dev1/dev2, registered with Digest).
common=(-i 127.0.0.1 -t u1 -nostdin -timeout 30s -timeout_error -max_recv_loops 1000)
dev1=15071 dev2=15072
for d in 1 2; do
  port=$([ $d = 1 ] && echo $dev1 || echo $dev2)
  sipp -sf "$here/register-device.xml" "${common[@]}" -p "$port" -m 1 -s bob -au bob -ap bob-secret-1 \
    -key domain convergo.test -key instance "urn:uuid:00000000-0000-4000-8000-00000000000$d" "$target" \
    >/dev/null 2>&1 </dev/null || { echo "register device $d FAILED"; fail=1; }
done
# call: uac.xml calls bob; device 1 answers (uas.xml), device 2 rings and must be CANCELled (uas-ring.xml)
# cancel: cancel.xml calls bob and cancels while both devices ring (uas-ring.xml twice)
for step in "call uas.xml uas-ring.xml uac.xml" "cancel uas-ring.xml uas-ring.xml cancel.xml"; do
  read -r name s1 s2 sc <<<"$step"
  calls=20
  sipp -sf "$here/$s1" "${common[@]}" -p $dev1 -m $calls >"$work/$name-d1.log" 2>&1 </dev/null & p1=$!
  sipp -sf "$here/$s2" "${common[@]}" -p $dev2 -m $calls >"$work/$name-d2.log" 2>&1 </dev/null & p2=$!
  sleep 0.3
  printf '%-28s %-4s ' "$name ($sc)" u1
  rc=0
  sipp -sf "$here/$sc" "${common[@]}" -s bob -key domain convergo.test -m $calls -r 20 "$target" \
    >"$work/$name-caller.log" 2>&1 </dev/null || rc=1
  wait $p1 || rc=1
  wait $p2 || rc=1
  if [ $rc = 0 ]; then echo ok; else echo FAILED; fail=1; tail -5 "$work/$name-"*.log; fi
done

kill -TERM "$pid"
wait "$pid" || { echo "server exited non-zero"; cat "$work/server.log"; exit 1; }
exit $fail
