"""Arithmetic of bench/ingest.sh's connection sweep (standard library only).

    sweep.py peak WORK "1 8 64 256" ROUNDS   best median ingestion rate of the sweep, req/s
    sweep.py delay C PEAK [GUESS GOT]        wrk delay (ms) for C connections at PEAK/2 req/s;
                                             with a calibration run (GUESS ms gave GOT req/s)
                                             its latency is subtracted
    sweep.py table WORK "1 8 64 256" ROUNDS  the sweep table: medians over rounds, then every run

Every number comes from the "RESULT key=value" lines run_wrk and metrics_summary wrote.
"""

import statistics
import sys


def results(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("RESULT ") and "=" in line:
                    k, v = line[len("RESULT "):].rstrip("\n").split("=", 1)
                    out.setdefault(k, v)
    except FileNotFoundError:
        pass
    return out


def num(r, key):
    try:
        return float(r.get(key, "nan"))
    except ValueError:
        return float("nan")


def med(values):
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def runs(work, kind, c, rounds):
    return [results(f"{work}/{kind}-c{c}-r{r}.txt") for r in range(1, rounds + 1)]


def peak(work, conns, rounds):
    return max(med(num(r, "rps") for r in runs(work, "ingest", c, rounds)) for c in conns)


def delay(c, target_peak, guess=None, got=None):
    target = target_peak / 2
    if guess is None or not got:
        return max(1, round(1000 * c / target))
    latency = max(0.0, 1000 * c / got - guess)  # ms per request and connection beyond the delay
    return max(1, round(1000 * c / target - latency))


def table(work, conns, rounds):
    rows = []
    head = ("c", "ingest req/s", "trivial req/s", "ingest/trivial", "ingest p50 ms",
            "ingest p99 ms", "trivial p99 ms", "writer µs/event", "bytes written/event",
            "events/commit", "commit ms", "non-200")
    rows.append(head)
    for c in conns:
        i, t = runs(work, "ingest", c, rounds), runs(work, "trivial", c, rounds)
        ir, tr = med(num(r, "rps") for r in i), med(num(r, "rps") for r in t)
        rows.append((
            str(c), f"{ir:,.0f}", f"{tr:,.0f}", f"{ir / tr:.3f}" if tr else "nan",
            f"{med(num(r, 'lat_p50_ms') for r in i):.2f}",
            f"{med(num(r, 'lat_p99_ms') for r in i):.2f}",
            f"{med(num(r, 'lat_p99_ms') for r in t):.2f}",
            f"{med(num(r, 'writer_cpu_us_per_event') for r in i):.1f}",
            f"{med(num(r, 'bytes_written_per_event') for r in i):,.0f}",
            f"{med(num(r, 'commit_batch_mean') for r in i):.1f}",
            f"{med(num(r, 'commit_ms_mean') for r in i):.2f}",
            str(sum(int(num(r, 'non200')) if num(r, 'non200') == num(r, 'non200') else 0 for r in i)),
        ))
    widths = [max(len(r[k]) for r in rows) for k in range(len(head))]
    lines = ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in rows]
    lines.append("")
    lines.append("every run, in the order measured (ingest | trivial req/s, other CPU on the host s):")
    for r in range(1, rounds + 1):
        for c in conns:
            i = results(f"{work}/ingest-c{c}-r{r}.txt")
            t = results(f"{work}/trivial-c{c}-r{r}.txt")
            lines.append(
                f"  round {r} c={c}: {num(i, 'rps'):,.0f} (other {i.get('cpu_other_s', '?')} s)"
                f" | {num(t, 'rps'):,.0f} (other {t.get('cpu_other_s', '?')} s)"
            )
    return "\n".join(lines)


def main(argv):
    cmd = argv[1]
    if cmd == "peak":
        print(f"{peak(argv[2], argv[3].split(), int(argv[4])):.1f}")
    elif cmd == "delay":
        c, p = float(argv[2]), float(argv[3])
        if len(argv) > 5:
            print(delay(c, p, float(argv[4]), float(argv[5] or 0)))
        else:
            print(delay(c, p))
    elif cmd == "table":
        print(table(argv[2], argv[3].split(), int(argv[4])))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
