#!/usr/bin/env python3
"""Memory test for bench/ingest.sh: CONCURRENCY clients each send ROUNDS unique signed bodies
of exactly --size bytes to /ai/webhook at the same moment (a barrier before every round), while
the server's RSS is sampled from /proc/<pid>/status. Prints "RESULT key=value" lines.

Peak RSS is VmHWM (the kernel's high-water mark of resident memory), read when every client of a
round has its answer (so per round) and after the last one; the sampled VmRSS maximum is printed
beside it as a cross-check.
"""

import argparse
import hashlib
import hmac
import http.client
import json
import os
import threading
import time


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def make_body(nonce: str, i: int, size: int) -> bytes:
    head = json.dumps({"job_id": f"burst-{nonce}-{i:06d}", "kind": "bench_blob",
                       "model": "evidentia-bench/blob-v1"}, separators=(",", ":"))[:-1]
    head += ',"blob":"'
    tail = '"}'
    pad = size - len(head) - len(tail)
    blob = os.urandom((pad + 1) // 2).hex()[:pad]
    body = (head + blob + tail).encode()
    assert len(body) == size, len(body)
    return body


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/ai/webhook")
    ap.add_argument("--pid", type=int, required=True, help="server pid (for /proc/PID/status)")
    ap.add_argument("--secret", required=True)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--size", type=int, default=512 * 1024)
    args = ap.parse_args()

    key = args.secret.encode()
    nonce = os.urandom(6).hex()
    n = args.concurrency * args.rounds
    bodies = [make_body(nonce, i, args.size) for i in range(n)]
    sigs = [hmac.new(key, b, hashlib.sha256).hexdigest() for b in bodies]

    rss_before = status_kib(args.pid, "VmRSS")
    hwm_before = status_kib(args.pid, "VmHWM")

    stop = threading.Event()
    sampled = [rss_before]

    def sampler() -> None:
        while not stop.is_set():
            try:
                sampled[0] = max(sampled[0], status_kib(args.pid, "VmRSS"))
            except (OSError, KeyError):
                return
            time.sleep(0.005)

    wave_hwm: list[int] = []

    def record_wave() -> None:
        wave_hwm.append(status_kib(args.pid, "VmHWM"))

    # Every wave starts together and ends together; the end barrier records VmHWM so far.
    barrier = threading.Barrier(args.concurrency)
    wave_end = threading.Barrier(args.concurrency, action=record_wave)
    lock = threading.Lock()
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    errors: list[str] = []

    def client(c: int) -> None:
        conn = http.client.HTTPConnection(args.host, args.port, timeout=60)
        for r in range(args.rounds):
            i = r * args.concurrency + c
            try:
                barrier.wait(timeout=120)
            except threading.BrokenBarrierError:
                pass
            t0 = time.perf_counter()
            try:
                conn.request("POST", args.path, body=bodies[i], headers={
                    "Content-Type": "application/json",
                    "X-IntelGraph-Signature": sigs[i],
                })
                resp = conn.getresponse()
                data = resp.read()
                dt = time.perf_counter() - t0
                if resp.status == 200 and b'"duplicate":false' in data:
                    k = "200_stored"
                elif resp.status == 200:
                    k = "200_other"
                else:
                    k = str(resp.status)
                    with lock:
                        errors.append(f"{resp.status} {data[:200]!r}")
                with lock:
                    statuses[k] = statuses.get(k, 0) + 1
                    latencies.append(dt)
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    statuses["exception"] = statuses.get("exception", 0) + 1
                    errors.append(repr(e))
                conn.close()
                conn = http.client.HTTPConnection(args.host, args.port, timeout=60)
            try:
                wave_end.wait(timeout=120)
            except threading.BrokenBarrierError:
                pass
        conn.close()

    st = threading.Thread(target=sampler, daemon=True)
    st.start()
    t0 = time.perf_counter()
    workers = [threading.Thread(target=client, args=(c,)) for c in range(args.concurrency)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - t0
    time.sleep(0.2)
    stop.set()
    st.join()
    hwm_after = status_kib(args.pid, "VmHWM")
    rss_after = status_kib(args.pid, "VmRSS")

    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    def out(k: str, v: object) -> None:
        print(f"RESULT {k}={v}")

    out("requests", n)
    out("body_bytes", args.size)
    out("concurrency", args.concurrency)
    out("rounds", args.rounds)
    out("wall_s", f"{wall:.3f}")
    out("statuses", ",".join(f"{k}:{v}" for k, v in sorted(statuses.items())))
    out("ok_stored", statuses.get("200_stored", 0))
    out("lat_p50_ms", f"{pct(50):.1f}")
    out("lat_p99_ms", f"{pct(99):.1f}")
    out("lat_max_ms", f"{latencies[-1] * 1000:.1f}" if latencies else "nan")
    out("rss_before_kib", rss_before)
    out("hwm_before_kib", hwm_before)
    out("rss_sampled_max_kib", sampled[0])
    out("hwm_after_kib", hwm_after)
    out("hwm_wave1_kib", wave_hwm[0] if wave_hwm else "nan")
    out("hwm_by_wave_kib", ",".join(str(h) for h in wave_hwm) or "-")
    out("rss_after_kib", rss_after)
    out("first_error", errors[0].replace("\n", " ") if errors else "-")


if __name__ == "__main__":
    main()
