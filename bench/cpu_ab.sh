#!/usr/bin/env bash
# CPU per request of two or more evidentia binaries, interleaved (A, B, A, B …), per thread:
#
#   bash bench/cpu_ab.sh ROUNDS CONNECTIONS NAME1 BINARY1 NAME2 BINARY2 …
#
# Each run: a fresh appliance, 10 s of `wrk -t2 -cCONNECTIONS` signed ML webhooks (the pool of
# ab.sh), then the CPU the process spent per thread name (/proc/PID/task/*/stat, utime + stime)
# divided by the requests: `writer_us` is the store writer thread (`evidentia-store`),
# `workers_us` the tokio workers. Per-request CPU is steadier than req/s on shared cores.
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 4 ] && [ $(( ($# - 2) % 2 )) = 0 ] || { echo "usage: $0 ROUNDS C NAME BIN [NAME BIN]..." >&2; exit 2; }
R=$1; C=$2; shift 2
args=("$@")
WORK=${WORK:-/tmp/evd-ab}
mkdir -p "$WORK"
S=bench-ml-webhook-secret-0123456789abcdef
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
[ -s "$WORK/pool.txt" ] || python3 "$HERE/gen_requests.py" --secret "$S" --count 120000 --size 1024 --out "$WORK/pool.txt"
ticks() { # pid -> "thread-name ticks" summed per name
  for t in /proc/$1/task/*; do echo "$(cat "$t/comm") $(awk '{print $14+$15}' "$t/stat")"; done |
    awk '{a[$1]+=$2} END {for (k in a) print k, a[k]}' | sort
}
hz=$(getconf CLK_TCK)
for r in $(seq "$R"); do
  for ((i = 0; i < ${#args[@]}; i += 2)); do
    name=${args[i]} bin=${args[i+1]} port=$((18700 + RANDOM % 500)) d=$WORK/cab-$RANDOM
    ML_WEBHOOK_SECRET=$S EVIDENTIA_RATELIMIT_PER_SECOND=1000000 EVIDENTIA_RATELIMIT_BURST=1000000 \
      "$bin" serve --data-dir "$d" --listen 127.0.0.1:$port >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -s -o /dev/null 127.0.0.1:$port/healthz && break; sleep 0.1; done
    ticks $pid >"$WORK/c0"
    out=$(wrk -t2 -c"$C" -d10s -s "$HERE/ingest.lua" http://127.0.0.1:$port/ai/webhook -- "$WORK/pool.txt" 2 0)
    ticks $pid >"$WORK/c1"
    n=$(echo "$out" | sed -n 's/^RESULT requests=//p'); rps=$(echo "$out" | sed -n 's/^RESULT rps=//p')
    join "$WORK/c0" "$WORK/c1" | awk -v n="$n" -v hz="$hz" -v name="$name" -v rps="$rps" \
      '{d[$1]=($3-$2)*1e6/hz/n} END {printf "%s rps=%s writer_us=%.1f workers_us=%.1f\n", name, rps, d["evidentia-store"], d["tokio-rt-worker"]}'
    kill $pid; wait $pid 2>/dev/null; rm -rf "$d"
  done
done
