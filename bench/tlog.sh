#!/usr/bin/env bash
# Evidence-log benchmark: durable appends in-process (examples/bench_tlog.rs), proof latency at
# 1M leaves, fsync latency of the data volume, and signed receipts/s through the real HTTP API
# (POST /api/conductor/evidence/receipt on loopback, wrk). Run on demand (not part of CI); see
# bench/README-tlog.md. Every run starts from fresh data directories and deletes them.
#
#   bash bench/tlog.sh
#
# Knobs (environment): CONCURRENCY (in-process levels, default 1,16,64,256), APPEND_SECONDS (10),
# LEAVES (1000000), BUILD_CONCURRENCY (2048), PROOFS (10000), RECEIPT_BYTES (1024),
# DURATION (HTTP, s, default 20), THREADS (2), CONNECTIONS (64), POOL (pre-signed unique
# receipts, default DURATION*15000: must outlast the run, a repeat is a 409), SKIP_EXAMPLE=1 / SKIP_HTTP=1 skip a part, KEEP_WORKDIR=1
# keeps the temp dir (logs, data). CARGO_TARGET_DIR is honoured. TMPDIR chooses the volume.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")

CONCURRENCY=${CONCURRENCY:-1,16,64,256}
APPEND_SECONDS=${APPEND_SECONDS:-10}
LEAVES=${LEAVES:-1000000}
BUILD_CONCURRENCY=${BUILD_CONCURRENCY:-2048}
PROOFS=${PROOFS:-10000}
RECEIPT_BYTES=${RECEIPT_BYTES:-1024}
DURATION=${DURATION:-20}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
POOL=${POOL:-$((DURATION * 15000))}
EV_SECRET=bench-evidence-signing-secret-0123456789abcdef
RESULTS_DIR=$ROOT/bench/results

log() { printf '[tlog-bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Nothing from the caller's environment may reconfigure the appliance under test.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^EVIDENTIA_|^ML_WEBHOOK_SECRET|^EVIDENCE_SIGN|^APPLIANCE_SIGNING_KEY' || true)

# ---- tools ---------------------------------------------------------------------------------
command -v python3 >/dev/null || die "python3 is required"
command -v cargo >/dev/null || die "cargo is required"
if [ "${SKIP_HTTP:-0}" != 1 ] && ! command -v wrk >/dev/null; then
    log "installing wrk (Debian package)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get install -y wrk >/dev/null 2>&1 \
        || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y wrk >/dev/null; } \
        || die "could not install wrk (apt-get install wrk)"
fi
WRK_VERSION=$( (wrk -v 2>&1 || true) | head -n1 | sed 's/ Copyright.*//')

# ---- build ---------------------------------------------------------------------------------
log "building release binary and the bench_tlog example"
(cd "$ROOT" && cargo build --release --quiet --bin evidentia --example bench_tlog)
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
EVIDENTIA=$TARGET_DIR/release/evidentia
BENCH_TLOG=$TARGET_DIR/release/examples/bench_tlog
if [ ! -x "$EVIDENTIA" ] || [ ! -x "$BENCH_TLOG" ]; then die "built binaries not found under $TARGET_DIR"; fi

# ---- workspace and cleanup -----------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/evidentia-tlogbench.XXXXXX")
PIDS=()
cleanup() {
    local rc=$?
    for pid in "${PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    if [ "${KEEP_WORKDIR:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

kv() { sed -n "s/^RESULT $2=//p" "$1" | head -n1; }
# field "a:1,b:2" b -> 2
field() { tr ',' '\n' <<<"$1" | sed -n "s/^$2://p" | head -n1; }

# ---- 1. fsync latency of the data volume ----------------------------------------------------
log "fsync latency probe in $WORK"
python3 "$HERE/fsync_latency.py" --dir "$WORK" --count 2000 >"$WORK/fsync.txt"
DD=$(cd "$WORK" && dd if=/dev/zero of=ddprobe bs=4k count=2000 oflag=dsync 2>&1 | tail -n1; rm -f ddprobe)
echo "RESULT dd_dsync=$DD" >>"$WORK/fsync.txt"

# ---- 2. in-process appends and proof latency --------------------------------------------------
if [ "${SKIP_EXAMPLE:-0}" != 1 ]; then
    log "bench_tlog: appends at C=$CONCURRENCY (${APPEND_SECONDS}s each), then a $LEAVES-leaf log and $PROOFS proofs"
    /usr/bin/time -v "$BENCH_TLOG" --dir "$WORK" --concurrency "$CONCURRENCY" --seconds "$APPEND_SECONDS" \
        --leaves "$LEAVES" --build-concurrency "$BUILD_CONCURRENCY" --proofs "$PROOFS" \
        --receipt-bytes "$RECEIPT_BYTES" >"$WORK/example.txt" 2>"$WORK/example.err" \
        || die "bench_tlog failed: $(tail -n 20 "$WORK/example.err")"
    grep -v '^RESULT' "$WORK/example.txt" >&2
    echo "RESULT example_peak_rss_kib=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$WORK/example.err")" >>"$WORK/example.txt"
fi

# ---- 3. HTTP: signed receipts through the API --------------------------------------------------
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
if [ "${SKIP_HTTP:-0}" != 1 ]; then
    ADMIN=$("$EVIDENTIA" admin new-token)
    PORT=$(free_port)
    mkdir -p "$WORK/http"
    EVIDENTIA_ADMIN_TOKEN=$ADMIN EVIDENCE_SIGNING_SECRET=$EV_SECRET \
        "$EVIDENTIA" serve --data-dir "$WORK/http/data" --listen "127.0.0.1:$PORT" \
        >"$WORK/http/stdout.log" 2>"$WORK/http/stderr.log" &
    EV_PID=$!
    PIDS+=("$EV_PID")
    # Tenant, ingest token, and a sanity round: one receipt 201 (with a proof that verifies),
    # the same again 409.
    TOKEN=$(python3 - "$PORT" "$ADMIN" "$EV_SECRET" "$HERE" <<'EOF'
import base64, hashlib, http.client, json, subprocess, sys, tempfile, time
port, admin, secret, here = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
deadline = time.time() + 30
while True:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/healthz")
        if c.getresponse().status == 200:
            break
    except OSError:
        pass
    if time.time() > deadline:
        sys.exit("server did not come up")
    time.sleep(0.1)
def call(method, path, token, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path, body=body if isinstance(body, (bytes, str)) else json.dumps(body),
              headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, r.read()
s, b = call("POST", "/api/tenants", admin, {"id": "bench", "name": "Bench tenant"})
assert s == 201, (s, b)
s, b = call("POST", "/api/tenants/bench/tokens", admin, {"name": "bench", "roles": ["ingest"]})
assert s == 201, (s, b)
token = json.loads(b)["token"]
with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as f:
    subprocess.run([sys.executable, f"{here}/gen_receipts.py", "--secret", secret, "--tenant", "bench", "--count", "1",
                    "--out", f.name], check=True)
    line = f.read().strip()
s, b = call("POST", "/api/conductor/evidence/receipt", token, line)
assert s == 201, (s, b)
log = json.loads(b)["log"]
# Verify the returned inclusion proof (RFC 9162) against the returned root.
def H(x): return hashlib.sha256(x).digest()
rec = json.loads(line)
canon = json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
h = H(b"\x00" + canon)
idx, size = log["index"], log["tree_size"]
fn, sn = idx, size - 1
for p in log["inclusion_proof"]:
    p = base64.b64decode(p)
    if sn == 0: sys.exit("proof too long")
    if fn % 2 == 1 or fn == sn:
        h = H(b"\x01" + p + h)
        while fn % 2 == 0 and fn != 0:
            fn >>= 1; sn >>= 1
    else:
        h = H(b"\x01" + h + p)
    fn >>= 1; sn >>= 1
assert sn == 0 and h == base64.b64decode(log["root"]), "inclusion proof does not verify"
s, b = call("POST", "/api/conductor/evidence/receipt", token, line)
assert s == 409, (s, b)
print(token)
EOF
) || die "HTTP setup/sanity failed: $(tail -n 5 "$WORK/http/stderr.log")"
    log "evidentia pid $EV_PID on 127.0.0.1:$PORT; pre-generating $POOL signed ~${RECEIPT_BYTES}-byte receipts"
    python3 "$HERE/gen_receipts.py" --secret "$EV_SECRET" --tenant bench --count "$POOL" --size "$RECEIPT_BYTES" \
        --out "$WORK/receipts.jsonl"
    WRK_ARGS=(-t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency --timeout 10s -s "$HERE/tlog.lua")
    log "wrk ${WRK_ARGS[*]} http://127.0.0.1:$PORT/api/conductor/evidence/receipt"
    cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
    CPU0=$(cpu_ticks "$EV_PID")
    wrk "${WRK_ARGS[@]}" "http://127.0.0.1:$PORT/api/conductor/evidence/receipt" \
        -- "$WORK/receipts.jsonl" "$THREADS" "$TOKEN" >"$WORK/wrk.txt" 2>&1 \
        || die "wrk failed: $(cat "$WORK/wrk.txt")"
    CPU1=$(cpu_ticks "$EV_PID")
    echo "RESULT server_cpu_s=$(awk -v a="$CPU0" -v b="$CPU1" -v t="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b - a) / t}')" >>"$WORK/wrk.txt"
    python3 - "$PORT" "$ADMIN" >>"$WORK/wrk.txt" <<'EOF'
import http.client, json, re, sys
port, admin = int(sys.argv[1]), sys.argv[2]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
c.request("GET", "/metrics")
text = c.getresponse().read().decode()
by_status = {}
for m in re.finditer(r'^evidentia_http_requests_total\{([^}]*)\} (\d+)', text, re.M):
    labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
    if labels.get("route") == "/api/conductor/evidence/receipt":
        by_status[labels["status"]] = by_status.get(labels["status"], 0) + int(m.group(2))
def val(name):
    m = re.search(r'^' + name + r' ([0-9.eE+-]+)', text, re.M)
    return float(m.group(1)) if m else float("nan")
bs, bc = val("evidentia_store_commit_batch_size_sum"), val("evidentia_store_commit_batch_size_count")
cs, cc = val("evidentia_store_commit_seconds_sum"), val("evidentia_store_commit_seconds_count")
print("RESULT metrics_receipt_by_status=" + (",".join(f"{k}:{v}" for k, v in sorted(by_status.items())) or "-"))
print(f"RESULT commits={int(bc)}")
print(f"RESULT commit_batch_mean={bs / bc if bc else float('nan'):.1f}")
print(f"RESULT commit_ms_mean={1000 * cs / cc if cc else float('nan'):.2f}")
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
c.request("GET", "/api/tenants/bench/logs/evidence/checkpoint", headers={"Authorization": f"Bearer {admin}"})
r = c.getresponse()
body = r.read().decode()
size = body.split("\n")[1] if r.status == 200 and "\n" in body else "?"
print(f"RESULT evidence_log_size={size}")
EOF
    echo "RESULT server_hwm_kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$EV_PID/status")" >>"$WORK/wrk.txt"
    kill -TERM "$EV_PID"
    for _ in $(seq 100); do kill -0 "$EV_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$EV_PID" 2>/dev/null || true
    wait "$EV_PID" 2>/dev/null || true
    echo "RESULT data_dir_bytes=$(du -sb "$WORK/http/data" | cut -f1)" >>"$WORK/wrk.txt"
    echo "RESULT server_log_errors=$(grep -ciE 'error|panic' "$WORK/http/stderr.log" || true)" >>"$WORK/wrk.txt"
fi

# ---- 4. summary ----------------------------------------------------------------------------
mkdir -p "$RESULTS_DIR"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS_DIR/tlog-$STAMP.txt
F=$WORK/fsync.txt E=$WORK/example.txt W=$WORK/wrk.txt
fs_line() { local v; v=$(kv "$F" "$1"); echo "p50 $(field "$v" p50_us) µs  p99 $(field "$v" p99_us) µs  mean $(field "$v" mean_us) µs  max $(field "$v" max_us) µs  (~$(field "$v" per_s)/s)"; }
{
    echo "Evidentia evidence-log benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1), kernel $(uname -r)"
    echo "data volume: $(df -T "$WORK" | awk 'NR==2 {print $2" on "$1}') ($(findmnt -no OPTIONS -T "$WORK" 2>/dev/null || echo '?'))"
    echo "reference: Tessera (transparency-dev) ~10,000 durable appends/s on NVMe"
    echo
    echo "== fsync latency of the data volume (bench/fsync_latency.py, 2000 iterations each) =="
    echo "append+fsync      $(fs_line fsync_append)"
    echo "rewrite+fsync     $(fs_line fsync_rewrite)"
    echo "rewrite+fdatasync $(fs_line fsync_fdata)"
    echo "8 scattered 4 KiB writes + fdatasync (≈ a small redb commit) $(fs_line fsync_scatter)"
    echo "dd bs=4k oflag=dsync count=2000: $(kv "$F" dd_dsync)"
    if [ -f "$E" ]; then
        echo
        grep -v '^RESULT' "$E"
        echo "(example peak RSS $(( $(kv "$E" example_peak_rss_kib) / 1024 )) MiB)"
    fi
    if [ -f "$W" ]; then
        echo
        echo "== HTTP: POST /api/conductor/evidence/receipt, unique HS256-signed ~${RECEIPT_BYTES} B receipts, wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s ($WRK_VERSION; wrk and server share the cores) =="
        echo "throughput   $(kv "$W" created_per_s) receipts/s stored (201)   ($(kv "$W" requests) requests in $(kv "$W" duration_s) s, $(kv "$W" rps) req/s)"
        echo "latency      p50 $(kv "$W" lat_p50_ms) ms   p90 $(kv "$W" lat_p90_ms) ms   p99 $(kv "$W" lat_p99_ms) ms   p99.9 $(kv "$W" lat_p999_ms) ms   max $(kv "$W" lat_max_ms) ms"
        echo "answers      201 $(kv "$W" status_201)   409 replayed $(kv "$W" status_409)   422 stale $(kv "$W" status_422_stale)   other $(kv "$W" status_other)   (pool $(kv "$W" pool), wrapped $(kv "$W" pool_wraps) times)"
        echo "wrk errors   connect $(kv "$W" err_connect) read $(kv "$W" err_read) write $(kv "$W" err_write) timeout $(kv "$W" err_timeout)"
        echo "server side  /metrics receipt route by status: $(kv "$W" metrics_receipt_by_status); $(kv "$W" commits) group commits, mean batch $(kv "$W" commit_batch_mean), mean commit $(kv "$W" commit_ms_mean) ms; evidence log size $(kv "$W" evidence_log_size)"
        echo "             server CPU $(kv "$W" server_cpu_s) s during the run = $(awk -v c="$(kv "$W" server_cpu_s)" -v n="$(kv "$W" requests)" 'BEGIN {printf "%.0f", n ? 1e6 * c / n : 0}') µs per request (wrk shares the same 2 cores)"
        echo "             peak RSS $(( $(kv "$W" server_hwm_kib) / 1024 )) MiB; data dir $(( $(kv "$W" data_dir_bytes) / 1048576 )) MiB; log lines with error/panic $(kv "$W" server_log_errors)"
        echo "first error  $(kv "$W" first_error)"
    fi
} | tee "$OUT"
for f in "$F" "$E" "$W"; do if [ -f "$f" ]; then cat "$f"; fi; done >"$RESULTS_DIR/tlog-raw-$STAMP.txt"
log "summary written to $OUT (raw RESULT lines in tlog-raw-$STAMP.txt)"
