#!/usr/bin/env bash
# Load benchmark of signed ingestion (POST /ai/webhook) against a trivial poem handler, plus
# peak RSS under 64 concurrent 512 KiB bodies. Run on demand (not part of CI); see
# bench/README.md. Everything runs on loopback; every run starts from fresh data directories.
#
#   bash bench/ingest.sh
#
# Knobs (environment): DURATION (s per wrk run, default 10), THREADS (2), CONNS (the sweep of
# connection counts, "1 8 64 256"), ROUNDS (2: every connection count is measured ROUNDS times,
# ingestion and the trivial handler interleaved), CONNECTIONS (64: the run the detailed report
# shows), BODY_SIZE (1024), POOL (pre-signed unique requests, default DURATION*50000),
# BURST_CONCURRENCY (64),
# BURST_ROUNDS (4), BURST_SIZE (524288), KEEP_WORKDIR=1 keeps the temp dir (logs, data),
# PIN=1 pins wrk to CPU 0 and the server under test to CPU 1 (default: no pinning).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")

DURATION=${DURATION:-10}
THREADS=${THREADS:-2}
CONNS=${CONNS:-1 8 64 256}
ROUNDS=${ROUNDS:-2}
CONNECTIONS=${CONNECTIONS:-64}
BODY_SIZE=${BODY_SIZE:-1024}
POOL=${POOL:-$((DURATION * 50000))}
TRIVIAL_POOL=${TRIVIAL_POOL:-20000}
BURST_CONCURRENCY=${BURST_CONCURRENCY:-64}
BURST_ROUNDS=${BURST_ROUNDS:-4}
BURST_SIZE=${BURST_SIZE:-524288}
SECRET=bench-ml-webhook-secret-0123456789abcdef
RESULTS_DIR=$ROOT/bench/results

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Nothing from the caller's environment may reconfigure the appliance under test.
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^EVIDENTIA_|^ML_WEBHOOK_SECRET' || true)

# ---- tools ---------------------------------------------------------------------------------
command -v python3 >/dev/null || die "python3 is required"
command -v cargo >/dev/null || die "cargo is required"
if ! command -v wrk >/dev/null; then
    log "installing wrk (Debian package)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get install -y wrk >/dev/null 2>&1 \
        || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y wrk >/dev/null; } \
        || die "could not install wrk (apt-get install wrk)"
fi
WRK_VERSION=$(wrk -v 2>&1 | head -n1 || true)
if [ "${PIN:-0}" = 1 ]; then
    command -v taskset >/dev/null || die "PIN=1 needs taskset (util-linux)"
    PIN_LOAD=(taskset -c 0) PIN_SERVER=(taskset -c 1) PIN_NOTE="wrk pinned to CPU 0, server to CPU 1"
else
    PIN_LOAD=() PIN_SERVER=() PIN_NOTE="no CPU pinning: load generator and server share both cores"
fi

# ---- build ---------------------------------------------------------------------------------
log "building release binary and the bench_trivial example"
(cd "$ROOT" && cargo build --release --quiet --bin evidentia --example bench_trivial)
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
EVIDENTIA=$TARGET_DIR/release/evidentia
TRIVIAL=$TARGET_DIR/release/examples/bench_trivial
[ -x "$EVIDENTIA" ] && [ -x "$TRIVIAL" ] || die "built binaries not found under $TARGET_DIR"

# ---- workspace and cleanup -----------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/evidentia-bench.XXXXXX")
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

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_http PORT PATH: until GET answers 200 (30 s at most).
wait_http() {
    python3 - "$1" "$2" <<'EOF' || die "server on port $1 did not come up"
import http.client, sys, time
port, path = int(sys.argv[1]), sys.argv[2]
deadline = time.time() + 30
while time.time() < deadline:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", path)
        if c.getresponse().status == 200:
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit(1)
EOF
}

# start_evidentia NAME -> sets EV_PID, EV_PORT (fresh data dir, raised rate limit)
start_evidentia() {
    local name=$1
    EV_PORT=$(free_port)
    mkdir -p "$WORK/$name"
    ML_WEBHOOK_SECRET=$SECRET \
    EVIDENTIA_RATELIMIT_PER_SECOND=1000000 \
    EVIDENTIA_RATELIMIT_BURST=1000000 \
        "${PIN_SERVER[@]}" "$EVIDENTIA" serve --data-dir "$WORK/$name/data" --listen "127.0.0.1:$EV_PORT" \
        >"$WORK/$name/stdout.log" 2>"$WORK/$name/stderr.log" &
    EV_PID=$!
    PIDS+=("$EV_PID")
    wait_http "$EV_PORT" /healthz
    log "evidentia ($name) pid $EV_PID on 127.0.0.1:$EV_PORT, data in $WORK/$name/data"
}

start_trivial() {
    TR_PORT=$(free_port)
    "${PIN_SERVER[@]}" "$TRIVIAL" "127.0.0.1:$TR_PORT" >"$WORK/trivial.log" 2>&1 &
    TR_PID=$!
    PIDS+=("$TR_PID")
    wait_http "$TR_PORT" /
    log "bench_trivial pid $TR_PID on 127.0.0.1:$TR_PORT"
}

stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# kv FILE KEY: value of a "RESULT KEY=value" line.
kv() { sed -n "s/^RESULT $2=//p" "$1" | head -n1; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# Ingest-route counters and group-commit statistics from /metrics.
metrics_summary() {
    python3 - "$1" <<'EOF'
import http.client, re, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
c.request("GET", "/metrics")
text = c.getresponse().read().decode()
by_status = {}
for m in re.finditer(r'^evidentia_http_requests_total\{([^}]*)\} (\d+)', text, re.M):
    labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
    if labels.get("route") == "/ai/webhook":
        by_status[labels["status"]] = by_status.get(labels["status"], 0) + int(m.group(2))
def val(name):
    m = re.search(r'^' + name + r' ([0-9.eE+-]+)', text, re.M)
    return float(m.group(1)) if m else float("nan")
bs, bc = val("evidentia_store_commit_batch_size_sum"), val("evidentia_store_commit_batch_size_count")
cs, cc = val("evidentia_store_commit_seconds_sum"), val("evidentia_store_commit_seconds_count")
print("RESULT metrics_ai_webhook_by_status=" + (",".join(f"{k}:{v}" for k, v in sorted(by_status.items())) or "-"))
print(f"RESULT commits={int(bc) if bc == bc else 'nan'}")
print(f"RESULT commit_batch_mean={bs / bc if bc else float('nan'):.1f}")
print(f"RESULT commit_ms_mean={1000 * cs / cc if cc else float('nan'):.2f}")
EOF
}

# Host CPU accounting, in clock ticks: busy time of all CPUs, and one process's user+system time.
host_busy_ticks() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }
pid_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# CPU ticks of the store-writer thread of PID (0 for servers without one; comm is cut to 15).
writer_ticks() {
    local t
    for t in /proc/"$1"/task/*; do
        if [ "$(cat "$t/comm" 2>/dev/null)" = "evidentia-store" ]; then
            awk '{print $14+$15}' "$t/stat"
            return
        fi
    done
    echo 0
}
# Bytes PID caused to be written to storage (/proc/PID/io write_bytes).
io_write_bytes() { awk '/^write_bytes:/ {print $2}' "/proc/$1/io" 2>/dev/null || echo 0; }

# run_wrk OUT SERVER_PID URL ARGS...: one wrk run; appends CPU use of the server, of wrk and of
# everything else on the host during the run ("other" near 0 means the cores were ours).
run_wrk() {
    local out=$1 spid=$2 url=$3; shift 3
    local hz h0 s0 h1 s1 w0 w1 b0 b1 wrk_cpu
    hz=$(getconf CLK_TCK)
    h0=$(host_busy_ticks) s0=$(pid_ticks "$spid") w0=$(writer_ticks "$spid") b0=$(io_write_bytes "$spid")
    local TIMEFORMAT='%U %S'
    local t=$THREADS
    (( C < t )) && t=$C
    local args=(-t"$t" -c"$C" -d"${DURATION}s" --latency --timeout 10s -s "$SCRIPT")
    # The script's arguments: POOL_FILE, its thread count, then the caller's (MAX_LINES, DELAY_MS).
    { time "${PIN_LOAD[@]}" wrk "${args[@]}" "$url" -- "$1" "$t" "${@:2}" >"$out" 2>&1; } 2>"$out.time" \
        || die "wrk failed: $(cat "$out")"
    h1=$(host_busy_ticks) s1=$(pid_ticks "$spid") w1=$(writer_ticks "$spid") b1=$(io_write_bytes "$spid")
    wrk_cpu=$(awk '{print $1+$2}' "$out.time")
    echo "RESULT connections=$C" >>"$out"
    echo "RESULT wrk_threads=$t" >>"$out"
    python3 - "$hz" "$h0" "$h1" "$s0" "$s1" "$wrk_cpu" "$(kv "$out" requests)" "$w0" "$w1" "$b0" "$b1" "$(kv "$out" ok_stored)" >>"$out" <<'EOF'
import sys
hz, h0, h1, s0, s1 = (float(x) for x in sys.argv[1:6])
wrk, reqs = float(sys.argv[6]), int(sys.argv[7])
w0, w1, b0, b1 = (float(x) for x in sys.argv[8:12])
stored = int(sys.argv[12] or 0)
host, server = (h1 - h0) / hz, (s1 - s0) / hz
print(f"RESULT writer_cpu_us_per_event={1e6 * (w1 - w0) / hz / stored if stored else float('nan'):.0f}")
print(f"RESULT bytes_written_per_event={(b1 - b0) / stored if stored else float('nan'):.0f}")
print(f"RESULT cpu_host_s={host:.1f}")
print(f"RESULT cpu_server_s={server:.1f}")
print(f"RESULT cpu_wrk_s={wrk:.1f}")
print(f"RESULT cpu_other_s={max(0.0, host - server - wrk):.1f}")
print(f"RESULT server_cpu_us_per_req={1e6 * server / reqs if reqs else float('nan'):.0f}")
EOF
}

# ---- 1. pre-signed unique requests ---------------------------------------------------------
log "pre-generating $POOL unique signed ~${BODY_SIZE}-byte bodies"
python3 "$HERE/gen_requests.py" --secret "$SECRET" --count "$POOL" --size "$BODY_SIZE" \
    --out "$WORK/pool.txt"

SCRIPT=$HERE/ingest.lua
# The paced script: ingest.lua plus wrk's delay() hook (see ingest.lua).
{ cat "$HERE/ingest.lua"; printf '\nfunction delay()\n   return pause_ms\nend\n'; } >"$WORK/paced.lua"

# ---- 2. sanity: a signed body is stored, the same body again is a duplicate ------------------
start_evidentia sanity
python3 - "$EV_PORT" "$SECRET" <<'EOF' || die "sanity check of /ai/webhook failed"
import hashlib, hmac, http.client, json, os, sys
port, secret = int(sys.argv[1]), sys.argv[2].encode()
body = json.dumps({"job_id": "sanity-" + os.urandom(4).hex(), "kind": "bench_summary"}).encode()
sig = hmac.new(secret, body, hashlib.sha256).hexdigest()
seen = []
for _ in range(2):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/ai/webhook", body=body, headers={"Content-Type": "application/json", "X-IntelGraph-Signature": sig})
    r = c.getresponse()
    seen.append((r.status, json.loads(r.read()).get("duplicate")))
assert seen == [(200, False), (200, True)], seen
EOF
stop_pid "$EV_PID"

# ingest_run OUT [DELAY_MS]: one wrk run of $C connections against a fresh appliance (so every
# run starts from the same empty database and the pool's bodies are new to it).
ingest_run() {
    local out=$1 delay=${2:-0} name
    name=ingest-$(basename "$out" .txt)
    start_evidentia "$name"
    log "wrk -c$C -d${DURATION}s (delay $delay ms) http://127.0.0.1:$EV_PORT/ai/webhook  (unique signed bodies)"
    run_wrk "$out" "$EV_PID" "http://127.0.0.1:$EV_PORT/ai/webhook" "$WORK/pool.txt" 0 "$delay"
    metrics_summary "$EV_PORT" >>"$out"
    echo "RESULT server_hwm_kib=$(hwm_kib "$EV_PID")" >>"$out"
    stop_pid "$EV_PID"
    echo "RESULT data_dir_bytes=$(du -sb "$WORK/$name/data" | cut -f1)" >>"$out"
    echo "RESULT server_log_lines=$(wc -l <"$WORK/$name/stderr.log")" >>"$out"
    echo "RESULT server_log_errors=$(grep -ciE 'error|panic' "$WORK/$name/stderr.log" || true)" >>"$out"
    rm -rf "${WORK:?}/$name/data"
}

# ---- 3. the sweep: per round, per connection count, ingestion then the trivial handler ------
start_trivial
for round in $(seq "$ROUNDS"); do
    for C in $CONNS; do
        ingest_run "$WORK/ingest-c$C-r$round.txt"
        log "wrk -c$C -d${DURATION}s http://127.0.0.1:$TR_PORT/  (trivial poem handler)"
        run_wrk "$WORK/trivial-c$C-r$round.txt" "$TR_PID" "http://127.0.0.1:$TR_PORT/" "$WORK/pool.txt" "$TRIVIAL_POOL"
        echo "RESULT server_hwm_kib=$(hwm_kib "$TR_PID")" >>"$WORK/trivial-c$C-r$round.txt"
    done
done

# ---- 4. latency at half the peak: the largest connection count, paced with delay() ----------
# The peak is the best median ingestion rate of the sweep. A calibration run measures the
# latency at the first guess of the delay; the measured run subtracts it.
PEAK=$(python3 "$HERE/sweep.py" peak "$WORK" "$CONNS" "$ROUNDS")
C=$(echo "$CONNS" | tr ' ' '\n' | sort -n | tail -n 1)
GUESS=$(python3 "$HERE/sweep.py" delay "$C" "$PEAK")
SCRIPT=$WORK/paced.lua
ingest_run "$WORK/half-calibration.txt" "$GUESS"
DELAY=$(python3 "$HERE/sweep.py" delay "$C" "$PEAK" "$GUESS" "$(kv "$WORK/half-calibration.txt" rps)")
ingest_run "$WORK/half-peak.txt" "$DELAY"
SCRIPT=$HERE/ingest.lua

# Reference: the trivial server's peak RSS under the same 512 KiB burst.
python3 "$HERE/burst.py" --port "$TR_PORT" --path / --pid "$TR_PID" --secret "$SECRET" \
    --concurrency "$BURST_CONCURRENCY" --rounds "$BURST_ROUNDS" --size "$BURST_SIZE" \
    >"$WORK/burst-trivial.txt"
stop_pid "$TR_PID"

# ---- 5. memory: BURST_CONCURRENCY concurrent BURST_SIZE-byte bodies on a fresh appliance -----
start_evidentia burst
log "burst: $BURST_CONCURRENCY concurrent x $BURST_ROUNDS rounds of $BURST_SIZE-byte unique signed bodies"
python3 "$HERE/burst.py" --port "$EV_PORT" --pid "$EV_PID" --secret "$SECRET" \
    --concurrency "$BURST_CONCURRENCY" --rounds "$BURST_ROUNDS" --size "$BURST_SIZE" \
    >"$WORK/burst-ingest.txt"
metrics_summary "$EV_PORT" >>"$WORK/burst-ingest.txt"
stop_pid "$EV_PID"
echo "RESULT server_log_errors=$(grep -ciE 'error|panic' "$WORK/burst/stderr.log" || true)" >>"$WORK/burst-ingest.txt"

# ---- 6. summary ----------------------------------------------------------------------------
# The detailed blocks show round 1 at CONNECTIONS connections (or the sweep's first count).
case " $CONNS " in *" $CONNECTIONS "*) DC=$CONNECTIONS ;; *) DC=${CONNS%% *} ;; esac
I=$WORK/ingest-c$DC-r1.txt T=$WORK/trivial-c$DC-r1.txt B=$WORK/burst-ingest.txt BT=$WORK/burst-trivial.txt
H=$WORK/half-peak.txt
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b else 'nan')" "$1" "$2"; }
mib() { python3 -c "import sys; print(f'{int(sys.argv[1])/1024:.1f}')" "$1"; }

mkdir -p "$RESULTS_DIR"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS_DIR/ingest-$STAMP.txt
{
    echo "Evidentia load benchmark — $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1), kernel $(uname -r)"
    echo "data dir filesystem: $(df -T "$WORK" | awk 'NR==2 {print $2" on "$1}')"
    echo "load tool: $WRK_VERSION; wrk -t$THREADS (-t1 at c=1) -d${DURATION}s --latency, c in $CONNS, $ROUNDS rounds interleaved; $PIN_NOTE"
    echo
    echo "== sweep: signed durable notarised ingestion (POST /ai/webhook, fresh appliance per run) vs the trivial poem handler; medians over $ROUNDS rounds =="
    python3 "$HERE/sweep.py" table "$WORK" "$CONNS" "$ROUNDS"
    echo
    echo "== half the peak: c=$(kv "$H" connections), wrk delay() $DELAY ms per request and connection (peak $PEAK req/s, target $(python3 -c "import sys; print(f'{float(sys.argv[1])/2:.0f}')" "$PEAK") req/s) =="
    echo "throughput   $(kv "$H" rps) req/s; latency p50 $(kv "$H" lat_p50_ms) ms   p90 $(kv "$H" lat_p90_ms) ms   p99 $(kv "$H" lat_p99_ms) ms   max $(kv "$H" lat_max_ms) ms; non-200 $(kv "$H" non200); $(kv "$H" commit_batch_mean) events/commit"
    echo
    echo "== detail: round 1, c=$DC =="
    echo "== signed ingestion: POST /ai/webhook, unique HMAC-signed ~${BODY_SIZE} B bodies, fsync'd group commit =="
    echo "throughput   $(kv "$I" rps) req/s   ($(kv "$I" requests) requests in $(kv "$I" duration_s) s)"
    echo "latency      p50 $(kv "$I" lat_p50_ms) ms   p90 $(kv "$I" lat_p90_ms) ms   p99 $(kv "$I" lat_p99_ms) ms   p99.9 $(kv "$I" lat_p999_ms) ms   max $(kv "$I" lat_max_ms) ms"
    echo "answers      stored (200, duplicate:false) $(kv "$I" ok_stored)   duplicate $(kv "$I" ok_duplicate)   other 200 $(kv "$I" ok_other)   non-200 $(kv "$I" non200) (429: $(kv "$I" status_429), 503: $(kv "$I" status_503), 5xx: $(kv "$I" status_5xx))"
    echo "wrk errors   connect $(kv "$I" err_connect) read $(kv "$I" err_read) write $(kv "$I" err_write) timeout $(kv "$I" err_timeout) status $(kv "$I" err_status); pool $(kv "$I" pool) bodies, wrapped $(kv "$I" pool_wraps) times"
    echo "server side  /metrics /ai/webhook by status: $(kv "$I" metrics_ai_webhook_by_status); $(kv "$I" commits) group commits, mean batch $(kv "$I" commit_batch_mean), mean commit $(kv "$I" commit_ms_mean) ms"
    echo "CPU          server $(kv "$I" cpu_server_s) s ($(kv "$I" server_cpu_us_per_req) µs/request), wrk $(kv "$I" cpu_wrk_s) s, anything else on the host $(kv "$I" cpu_other_s) s, of $(kv "$I" cpu_host_s) s busy"
    echo "write path   store-writer thread $(kv "$I" writer_cpu_us_per_event) µs CPU per stored event; $(kv "$I" bytes_written_per_event) bytes written per stored event (/proc/PID/io write_bytes)"
    echo "             peak RSS $(mib "$(kv "$I" server_hwm_kib)") MiB; data dir $(python3 -c "import sys; print(f'{int(sys.argv[1])/1048576:.0f}')" "$(kv "$I" data_dir_bytes)") MiB; log lines $(kv "$I" server_log_lines), with error/panic $(kv "$I" server_log_errors)"
    echo "first error  $(kv "$I" first_error)"
    echo
    echo "== trivial poem 3 handler (examples/bench_trivial.rs): POST /, same request bytes =="
    echo "throughput   $(kv "$T" rps) req/s   ($(kv "$T" requests) requests in $(kv "$T" duration_s) s)"
    echo "latency      p50 $(kv "$T" lat_p50_ms) ms   p90 $(kv "$T" lat_p90_ms) ms   p99 $(kv "$T" lat_p99_ms) ms   p99.9 $(kv "$T" lat_p999_ms) ms   max $(kv "$T" lat_max_ms) ms"
    echo "answers      200 $(kv "$T" ok_stored)   non-200 $(kv "$T" non200); wrk errors connect $(kv "$T" err_connect) read $(kv "$T" err_read) write $(kv "$T" err_write) timeout $(kv "$T" err_timeout)"
    echo "CPU          server $(kv "$T" cpu_server_s) s ($(kv "$T" server_cpu_us_per_req) µs/request), wrk $(kv "$T" cpu_wrk_s) s, anything else on the host $(kv "$T" cpu_other_s) s, of $(kv "$T" cpu_host_s) s busy"
    echo "             peak RSS $(mib "$(kv "$T" server_hwm_kib)") MiB"
    echo
    echo "== ratio (trivial / ingestion) =="
    echo "throughput   $(ratio "$(kv "$T" rps)" "$(kv "$I" rps)")x   (ingestion reaches $(python3 -c "import sys; print(f'{100*float(sys.argv[1])/float(sys.argv[2]):.1f}')" "$(kv "$I" rps)" "$(kv "$T" rps)") % of the trivial handler)"
    echo "p50 latency  ingestion is $(ratio "$(kv "$I" lat_p50_ms)" "$(kv "$T" lat_p50_ms)")x the trivial handler's"
    echo "p99 latency  ingestion is $(ratio "$(kv "$I" lat_p99_ms)" "$(kv "$T" lat_p99_ms)")x the trivial handler's"
    echo "server CPU   ingestion costs $(ratio "$(kv "$I" server_cpu_us_per_req)" "$(kv "$T" server_cpu_us_per_req)")x the trivial handler's CPU per request"
    echo
    echo "== memory: $(kv "$B" concurrency) concurrent $(kv "$B" body_bytes)-byte unique signed bodies x $(kv "$B" rounds) rounds, fresh appliance =="
    echo "peak RSS     $(mib "$(kv "$B" hwm_wave1_kib)") MiB after the first wave of $(kv "$B" concurrency), $(mib "$(kv "$B" hwm_after_kib)") MiB after all $(kv "$B" rounds) (VmHWM; idle before $(mib "$(kv "$B" rss_before_kib)") MiB, sampled VmRSS max $(mib "$(kv "$B" rss_sampled_max_kib)") MiB, RSS after $(mib "$(kv "$B" rss_after_kib)") MiB)"
    echo "             VmHWM by wave (KiB): $(kv "$B" hwm_by_wave_kib)"
    echo "answers      $(kv "$B" statuses)   (/metrics: $(kv "$B" metrics_ai_webhook_by_status)); $(kv "$B" commits) group commits, mean batch $(kv "$B" commit_batch_mean)"
    echo "latency      p50 $(kv "$B" lat_p50_ms) ms   p99 $(kv "$B" lat_p99_ms) ms   max $(kv "$B" lat_max_ms) ms; wall $(kv "$B" wall_s) s; log lines with error/panic $(kv "$B" server_log_errors)"
    echo "first error  $(kv "$B" first_error)"
    echo "reference    trivial poem handler under the same burst: peak RSS $(mib "$(kv "$BT" hwm_after_kib)") MiB (idle $(mib "$(kv "$BT" rss_before_kib)") MiB; answers $(kv "$BT" statuses))"
} | tee "$OUT"
mkdir -p "$RESULTS_DIR/raw-$STAMP"
cp "$WORK"/ingest-c*-r*.txt "$WORK"/trivial-c*-r*.txt "$WORK"/half-*.txt "$B" "$BT" "$RESULTS_DIR/raw-$STAMP/"
log "summary written to $OUT (raw wrk/burst output beside it)"
