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

kill -TERM "$pid"
wait "$pid" || { echo "server exited non-zero"; cat "$work/server.log"; exit 1; }
exit $fail
