# Sourced by .ci/clients and .ci/schemathesis: starts a throwaway appliance on a free loopback
# port and stops it when the sourcing script exits, however it exits.
#
# After `start_appliance`:
#   EVD_URL                  http://127.0.0.1:<port>
#   EVD_ADMIN_TOKEN          the bootstrap appliance-admin token (evidentia admin new-token)
#   ML_WEBHOOK_SECRET        the default tenant's ML webhook HMAC key
#   EVIDENCE_SIGNING_SECRET  the HS256 receipt key of signer.kid "default"
#   EVD_DATA                 the temporary data directory (deleted on exit)
# Secrets are fresh random values for every run (no fixed secrets), exported so the suites can
# sign with them. Extra EVIDENTIA_* settings for the run are taken from the caller's environment.

EVD_BIN=${EVD_BIN:-target/debug/evidentia}
EVD_PID=
EVD_DATA=

stop_appliance() {
  if [[ -n "$EVD_PID" ]] && kill -0 "$EVD_PID" 2>/dev/null; then
    kill -TERM "$EVD_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$EVD_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$EVD_PID" 2>/dev/null || true
    wait "$EVD_PID" 2>/dev/null || true
  fi
  EVD_PID=
  if [[ -n "$EVD_DATA" && -d "$EVD_DATA" ]]; then
    rm -rf "$EVD_DATA"
  fi
  EVD_DATA=
}

random_secret() {
  od -An -N32 -tx1 /dev/urandom | tr -d ' \n'
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start_appliance() {
  EVD_DATA=$(mktemp -d "${TMPDIR:-/tmp}/evidentia-ci.XXXXXX")
  trap stop_appliance EXIT
  local port
  port=$(free_port)
  EVD_URL="http://127.0.0.1:$port"
  EVD_ADMIN_TOKEN=$("$EVD_BIN" admin new-token)
  ML_WEBHOOK_SECRET=$(random_secret)
  EVIDENCE_SIGNING_SECRET=$(random_secret)
  export EVD_URL EVD_ADMIN_TOKEN ML_WEBHOOK_SECRET EVIDENCE_SIGNING_SECRET EVD_DATA
  EVIDENTIA_ADMIN_TOKEN="$EVD_ADMIN_TOKEN" EVIDENTIA_LOG="${EVIDENTIA_LOG:-warn}" \
    "$EVD_BIN" serve --data-dir "$EVD_DATA/data" --listen "127.0.0.1:$port" \
    >"$EVD_DATA/appliance.log" 2>&1 &
  EVD_PID=$!
  for _ in $(seq 1 300); do
    if curl -fsS -o /dev/null "$EVD_URL/readyz" 2>/dev/null; then
      echo "appliance ready at $EVD_URL (pid $EVD_PID)"
      return 0
    fi
    if ! kill -0 "$EVD_PID" 2>/dev/null; then
      echo "the appliance exited before it was ready:" >&2
      cat "$EVD_DATA/appliance.log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "the appliance was not ready after 30 s:" >&2
  cat "$EVD_DATA/appliance.log" >&2
  return 1
}
