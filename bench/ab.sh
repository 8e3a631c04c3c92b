#!/usr/bin/env bash
# A/B of two evidentia binaries (e.g. the same commit with and without mimalloc), interleaved
# A, B per connection count and round, fresh data dir per run, plus the 64 x 512 KiB burst:
#
#   bash bench/ab.sh A_NAME A_BINARY B_NAME B_BINARY
#
# Needs wrk and python3; writes its pool of signed requests under $WORK (default /tmp/evd-ab).
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# = 4 ] || { echo "usage: $0 A_NAME A_BINARY B_NAME B_BINARY" >&2; exit 2; }
WORK=${WORK:-/tmp/evd-ab}
if ! command -v wrk >/dev/null; then # as ingest.sh: Debian's wrk, installed when root
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get install -y wrk >/dev/null 2>&1 \
    || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y wrk >/dev/null; } \
    || { echo "could not install wrk (apt-get install wrk)" >&2; exit 1; }
fi
mkdir -p "$WORK"
S=bench-ml-webhook-secret-0123456789abcdef
[ -s "$WORK/pool.txt" ] || python3 "$HERE/gen_requests.py" --secret "$S" --count 120000 --size 1024 --out "$WORK/pool.txt"
run() { # name bin c
  local name=$1 bin=$2 c=$3 port=$((18600 + RANDOM % 1000)) d=$WORK/d-$1-$3-$RANDOM
  ML_WEBHOOK_SECRET=$S EVIDENTIA_RATELIMIT_PER_SECOND=1000000 EVIDENTIA_RATELIMIT_BURST=1000000 \
    $bin serve --data-dir $d --listen 127.0.0.1:$port >/dev/null 2>&1 &
  local pid=$!
  for i in $(seq 100); do curl -s -o /dev/null 127.0.0.1:$port/healthz && break; sleep 0.1; done
  local rps=$(wrk -t2 -c$c -d10s --latency -s $HERE/ingest.lua http://127.0.0.1:$port/ai/webhook -- $WORK/pool.txt 2 0 | sed -n 's/^RESULT rps=//p;s/^RESULT lat_p99_ms=/p99=/p' | tr '\n' ' ')
  kill -TERM $pid; wait $pid 2>/dev/null; rm -rf $d
  echo "$name c=$c $rps"
}
burst() { # name bin
  local name=$1 bin=$2 port=$((19600 + RANDOM % 1000)) d=$WORK/b-$1-$RANDOM
  ML_WEBHOOK_SECRET=$S $bin serve --data-dir $d --listen 127.0.0.1:$port >/dev/null 2>&1 &
  local pid=$!
  for i in $(seq 100); do curl -s -o /dev/null 127.0.0.1:$port/healthz && break; sleep 0.1; done
  local r=$(python3 $HERE/burst.py --port $port --pid $pid --secret $S --concurrency 64 --rounds 4 --size 524288 | grep -E "RESULT (rss_before_kib|hwm_wave1_kib|hwm_after_kib)=" | tr '\n' ' ')
  kill -TERM $pid; wait $pid 2>/dev/null; rm -rf $d
  echo "$name burst $r"
}
for round in 1 2; do
  for c in 64 256; do
    run "$1" "$2" $c
    run "$3" "$4" $c
  done
  burst "$1" "$2"
  burst "$3" "$4"
done
