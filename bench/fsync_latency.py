#!/usr/bin/env python3
"""fsync latency of the filesystem holding --dir, for context in bench/tlog.sh.

Three loops of --count iterations on a fresh file in --dir:
  append  : write 4 KiB at the end, fsync()      (what a growing redb file sees)
  rewrite : overwrite the same 4 KiB, fsync()    (a header slot rewritten in place)
  fdata   : overwrite the same 4 KiB, fdatasync()
  scatter : 8 random 4 KiB blocks of a preallocated 64 MiB file, one fdatasync() (roughly what a
            small redb commit does: copy-on-write pages of several B-trees, then one sync_data)
Prints "RESULT fsync_<loop>=p50_us:…,p99_us:…,mean_us:…,max_us:…,per_s:…".
"""

import argparse
import os
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--count", type=int, default=2000)
    args = ap.parse_args()
    block = os.urandom(4096)
    fd, path = tempfile.mkstemp(prefix="fsync-probe.", dir=args.dir)
    try:
        for name, sync, append in (("append", os.fsync, True), ("rewrite", os.fsync, False),
                                   ("fdata", os.fdatasync, False)):
            os.ftruncate(fd, 0)
            os.pwrite(fd, block, 0)
            os.fsync(fd)
            ns = []
            for i in range(args.count):
                t = time.perf_counter_ns()
                os.pwrite(fd, block, (i + 1) * 4096 if append else 0)
                sync(fd)
                ns.append(time.perf_counter_ns() - t)
            ns.sort()
            pct = lambda q: ns[min(len(ns) - 1, int(len(ns) * q))] / 1000
            mean = sum(ns) / len(ns) / 1000
            print(f"RESULT fsync_{name}=p50_us:{pct(0.5):.0f},p99_us:{pct(0.99):.0f},"
                  f"mean_us:{mean:.0f},max_us:{ns[-1] / 1000:.0f},per_s:{1e6 / mean:.0f}")
        os.ftruncate(fd, 0)
        os.pwrite(fd, os.urandom(1 << 20) * 64, 0)
        os.fsync(fd)
        import random
        ns = []
        for _ in range(args.count):
            t = time.perf_counter_ns()
            for _ in range(8):
                os.pwrite(fd, block, random.randrange(16384) * 4096)
            os.fdatasync(fd)
            ns.append(time.perf_counter_ns() - t)
        ns.sort()
        pct = lambda q: ns[min(len(ns) - 1, int(len(ns) * q))] / 1000
        mean = sum(ns) / len(ns) / 1000
        print(f"RESULT fsync_scatter=p50_us:{pct(0.5):.0f},p99_us:{pct(0.99):.0f},"
              f"mean_us:{mean:.0f},max_us:{ns[-1] / 1000:.0f},per_s:{1e6 / mean:.0f}")
    finally:
        os.close(fd)
        os.unlink(path)


if __name__ == "__main__":
    main()
