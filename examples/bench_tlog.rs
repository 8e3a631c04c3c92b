//! Evidence-log benchmark for `bench/tlog.sh` (see bench/README-tlog.md).
//!
//! 1. **Durable appends in-process**: for each concurrency C, C tokio tasks call
//!    [`Store::put_receipt`] in a loop (unique `receiptId`, ~1 KiB canonical receipt, one audit
//!    record each, exactly like `POST /api/conductor/evidence/receipt` minus HTTP, auth and
//!    signature checks). Every call returns only after its group commit (one redb write
//!    transaction, `Durability::Immediate`, one signed checkpoint per touched log) is durable.
//!    Reports receipts/s, the mean group-commit batch size and per-call latency.
//! 2. **Proof latency at 1M leaves**: fills one evidence log with `--leaves` receipts as fast as
//!    the store takes them (timed), then times `--proofs` random inclusion proofs at the current
//!    size, as many consistency proofs, and checkpoint + inclusion proof (what every 201 of the
//!    receipt API computes); a sample of every kind is verified against the signed checkpoint.
//!    Then `--large-concurrency` tasks append for `--seconds` onto the big log (does the
//!    append rate hold at 1M leaves?).
//!
//! Databases live in fresh temp dirs (under `--dir`, default `$TMPDIR`) and are deleted at the
//! end. Output: human-readable lines plus `RESULT key=value` lines for tlog.sh.
//!
//! ```sh
//! cargo run --release --example bench_tlog -- [--concurrency 1,16,64,256] [--seconds 10]
//!     [--leaves 1000000] [--build-concurrency 2048] [--proofs 10000] [--receipt-bytes 1024]
//!     [--dir /var/tmp] [--skip-appends] [--skip-proofs] [--no-audit]
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a benchmark driver: a failed setup step should stop the run loudly"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use evidentia::audit::AuditRecord;
use evidentia::evidence::receipt::{self, ReceiptKey};
use evidentia::evidence::{ReceiptRecord, VerifiedReceipt};
use evidentia::metrics::Metrics;
use evidentia::store::{ReceiptOutcome, Store};
use evidentia::tlog::NoteSigner;
use evidentia::tlog::merkle;
use rand::Rng;

const TENANT: &str = "bench";
/// HS256 key the generated receipts are signed with.
const BENCH_SECRET: &[u8] = b"bench-evidence-signing-secret-0123456789";
const NAME: &str = "evidentia";

struct Args {
    concurrency: Vec<usize>,
    seconds: f64,
    leaves: u64,
    build_concurrency: usize,
    proofs: usize,
    receipt_bytes: usize,
    dir: Option<PathBuf>,
    appends: bool,
    proof_phase: bool,
    audit: bool,
    build_audit: bool,
    proof_threads: usize,
    large_conc: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: bench_tlog [--concurrency 1,16,64,256] [--seconds 10] [--leaves 1000000] \
         [--build-concurrency 2048] [--proofs 10000] [--proof-threads 2] [--receipt-bytes 1024] \
         [--large-concurrency 64 (0: skip appends onto the big log)] \
         [--dir DIR] [--skip-appends] [--skip-proofs] [--no-audit] [--build-audit]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        concurrency: vec![1, 16, 64, 256],
        seconds: 10.0,
        leaves: 1_000_000,
        build_concurrency: 2048,
        proofs: 10_000,
        receipt_bytes: 1024,
        dir: None,
        appends: true,
        proof_phase: true,
        audit: true,
        build_audit: false,
        proof_threads: 2,
        large_conc: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--concurrency" => {
                a.concurrency = val()
                    .split(',')
                    .map(|s| s.trim().parse().unwrap_or_else(|_| usage()))
                    .collect()
            }
            "--seconds" => a.seconds = val().parse().unwrap_or_else(|_| usage()),
            "--leaves" => a.leaves = val().parse().unwrap_or_else(|_| usage()),
            "--build-concurrency" => {
                a.build_concurrency = val().parse().unwrap_or_else(|_| usage())
            }
            "--proofs" => a.proofs = val().parse().unwrap_or_else(|_| usage()),
            "--large-concurrency" => a.large_conc = val().parse().unwrap_or_else(|_| usage()),
            "--proof-threads" => a.proof_threads = val().parse().unwrap_or_else(|_| usage()),
            "--receipt-bytes" => a.receipt_bytes = val().parse().unwrap_or_else(|_| usage()),
            "--dir" => a.dir = Some(PathBuf::from(val())),
            "--skip-appends" => a.appends = false,
            "--skip-proofs" => a.proof_phase = false,
            "--no-audit" => a.audit = false,
            "--build-audit" => a.build_audit = true,
            _ => usage(),
        }
    }
    a
}

fn tempdir(args: &Args, label: &str) -> tempfile::TempDir {
    let prefix = format!("evidentia-tlogbench-{label}.");
    let mut b = tempfile::Builder::new();
    b.prefix(&prefix);
    match &args.dir {
        Some(d) => b.tempdir_in(d),
        None => b.tempdir(),
    }
    .expect("temp dir")
}

/// The real time in Unix seconds, read through the appliance's clock like the server does.
fn wall_clock() -> i64 {
    use evidentia::clock::Clock as _;
    evidentia::clock::SystemClock.now_unix()
}

fn open_store(dir: &std::path::Path) -> (Store, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let signer = Arc::new(NoteSigner::new(NAME, key).expect("signer"));
    let cache = evidentia::config::StorageConfig::default().cache_bytes;
    let store = Store::open(
        &dir.join("evidentia.redb"),
        metrics.clone(),
        signer,
        cache,
        wall_clock(),
    )
    .expect("open");
    (store, metrics)
}

/// A receipt already in RFC 8785 form (members sorted, no white space, ASCII strings only), of
/// about `size` bytes: three listed artifacts plus a `summary.notes` padding string.
struct ReceiptGen {
    nonce: String,
    pad: String,
    created: String,
    created_at: i64,
}

impl ReceiptGen {
    fn new(size: usize) -> Self {
        let now = wall_clock();
        let mut nonce = [0u8; 6];
        rand::rng().fill(&mut nonce);
        let mut g = Self {
            nonce: hex::encode(nonce),
            pad: String::new(),
            created: evidentia::clock::rfc3339(now),
            created_at: now,
        };
        let base = g.make(999_999_999).0.len();
        g.pad = "x".repeat(size.saturating_sub(base));
        g
    }

    /// (canonical bytes, receiptId, runId, listed artifacts)
    fn make(&self, n: u64) -> (Vec<u8>, String, String, Vec<(String, String)>) {
        let receipt_id = format!("rcpt-{}-{n:09}", self.nonce);
        let run_id = format!("run-{}-{:08}", self.nonce, n / 8);
        let h = |tag: &str| sha256_hex(format!("{tag}-{}-{n}", self.nonce).as_bytes());
        let listed: Vec<(String, String)> = ["sbom", "attestation", "test-report"]
            .iter()
            .map(|t| (format!("{t}-{n}"), h(t)))
            .collect();
        let c = &self.created;
        let arts: Vec<String> = listed
            .iter()
            .zip(["sbom", "attestation", "test-report"])
            .map(|((id, sha), ty)| {
                format!(r#"{{"createdAt":"{c}","id":"{id}","sha256":"{sha}","type":"{ty}"}}"#)
            })
            .collect();
        let sig = &h("sig")[..43];
        let text = format!(
            concat!(
                r#"{{"codeDigest":"{code}","createdAt":"{c}","evidence":{{"artifacts":[{arts}]}},"#,
                r#""inputsHash":"{inp}","outputsHash":"{out}","receiptId":"{rid}","runId":"{run}","#,
                r#""signature":"{sig}","signer":{{"alg":"HS256","kid":"default"}},"#,
                r#""summary":{{"endedAt":"{c}","notes":"{pad}","runbook":"nightly-build","#,
                r#""startedAt":"{c}","status":"succeeded"}}}}"#
            ),
            code = &h("code")[..40],
            c = c,
            arts = arts.join(","),
            inp = h("in"),
            out = h("out"),
            rid = receipt_id,
            run = run_id,
            sig = sig,
            pad = self.pad,
        );
        // A real HS256 signature, so the receipt passes the same verification as over HTTP.
        let mut value: serde_json::Value = serde_json::from_str(&text).expect("generated JSON");
        // hs256_sign signs a receipt without `signature` (it refuses to re-sign one).
        if let Some(obj) = value.as_object_mut() {
            obj.remove("signature");
        }
        let sig = evidentia::verify::hs256_sign(BENCH_SECRET, &value).expect("sign");
        value["signature"] = serde_json::Value::String(sig);
        let canonical = evidentia::verify::jcs(&value).expect("jcs");
        (canonical, receipt_id, run_id, listed)
    }

    fn record(&self, canonical: &[u8], receipt_id: String, run_id: String) -> ReceiptRecord {
        ReceiptRecord {
            tenant: TENANT.into(),
            receipt_id,
            run_id,
            sha256: sha256_hex(canonical),
            log_index: 0,
            created_at: self.created_at,
            recorded_at: self.created_at,
        }
    }
}

/// Parses and verifies a generated receipt (the only way to get storable receipt bytes).
fn verify(canonical: &[u8]) -> VerifiedReceipt {
    let value = evidentia::verify::parse_strict_json(canonical).expect("receipt JSON");
    let parsed = receipt::parse(value).expect("receipt shape");
    receipt::verify_signature(&parsed, &ReceiptKey::Hs256(BENCH_SECRET.to_vec()))
        .expect("receipt signature")
}

fn sha256_hex(b: &[u8]) -> String {
    evidentia::ingest::sha256_hex(b)
}

fn audit_record(receipt_id: &str, n: u64) -> AuditRecord {
    AuditRecord {
        time: evidentia::clock::rfc3339(wall_clock()),
        tenant: TENANT.into(),
        actor: "token:tok_0123456789abcdef0123456789abcdef".into(),
        action: "receipt.submit".into(),
        method: "POST".into(),
        route: "/api/conductor/evidence/receipt".into(),
        status: 201,
        peer: "127.0.0.1".into(),
        request_id: format!("req-{n:016x}"),
        resource: Some(receipt_id.into()),
        ..Default::default()
    }
}

/// `evidentia_store_commit_batch_size` / `_seconds` sums and counts from the metrics text.
fn commit_stats(m: &Metrics) -> (f64, f64, f64) {
    let text = m.render();
    let val = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(f64::NAN)
    };
    let commits = val("evidentia_store_commit_batch_size_count");
    let batch_mean = val("evidentia_store_commit_batch_size_sum") / commits;
    let commit_ms = 1000.0 * val("evidentia_store_commit_seconds_sum")
        / val("evidentia_store_commit_seconds_count");
    (commits, batch_mean, commit_ms)
}

fn proc_status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix(key)?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}

/// (apparent size, allocated bytes) of the files in `p` (redb grows its file in large steps, so
/// the apparent size overstates what is written).
fn dir_bytes(p: &std::path::Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .fold((0, 0), |(a, b), m| (a + m.len(), b + m.blocks() * 512))
        })
        .unwrap_or((0, 0))
}

struct Pct {
    p50: f64,
    p99: f64,
    p999: f64,
    mean: f64,
    max: f64,
}

/// Percentiles of nanosecond samples, in microseconds.
fn pct(mut ns: Vec<u64>) -> Pct {
    ns.sort_unstable();
    if ns.is_empty() {
        return Pct {
            p50: f64::NAN,
            p99: f64::NAN,
            p999: f64::NAN,
            mean: f64::NAN,
            max: f64::NAN,
        };
    }
    let at = |q: f64| ns[((ns.len() as f64 * q).ceil() as usize).clamp(1, ns.len()) - 1] as f64;
    Pct {
        p50: at(0.50) / 1e3,
        p99: at(0.99) / 1e3,
        p999: at(0.999) / 1e3,
        mean: ns.iter().sum::<u64>() as f64 / ns.len() as f64 / 1e3,
        max: *ns.last().unwrap_or(&0) as f64 / 1e3,
    }
}

/// One append run: `conc` tasks, each putting receipts until `deadline` passes or `limit`
/// receipts were handed out. Returns (stored, elapsed, latencies ns).
async fn drive(
    store: &Store,
    generator: Arc<ReceiptGen>,
    conc: usize,
    run_for: Option<Duration>,
    limit: u64,
    audit: bool,
    progress: bool,
) -> (u64, Duration, Vec<u64>) {
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut handles = Vec::with_capacity(conc);
    for _ in 0..conc {
        let (store, generator, next, stop) =
            (store.clone(), generator.clone(), next.clone(), stop.clone());
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut stored = 0u64;
            loop {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= limit {
                    break;
                }
                let (canonical, rid, run, listed) = generator.make(n);
                let audit = if audit {
                    vec![audit_record(&rid, n)]
                } else {
                    Vec::new()
                };
                let record = generator.record(&canonical, rid, run);
                let t = Instant::now();
                // Verification is part of the request task, as over HTTP.
                let verified = verify(&canonical);
                match store.put_receipt(record, verified, listed, audit).await {
                    Ok(ReceiptOutcome::Stored(_)) => stored += 1,
                    Ok(other) => panic!("unexpected outcome {other:?}"),
                    Err(e) => panic!("put_receipt failed: {e}"),
                }
                lat.push(t.elapsed().as_nanos() as u64);
            }
            (stored, lat)
        }));
    }
    let ticker = {
        let (next, stop) = (next.clone(), stop.clone());
        tokio::spawn(async move {
            let mut last = (Instant::now(), 0u64);
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                if let Some(d) = run_for
                    && started.elapsed() >= d
                {
                    stop.store(true, Ordering::Relaxed);
                }
                if stop.load(Ordering::Relaxed) || next.load(Ordering::Relaxed) >= limit {
                    break;
                }
                if progress && last.0.elapsed() >= Duration::from_secs(10) {
                    let n = next.load(Ordering::Relaxed).min(limit);
                    eprintln!(
                        "  … {n} handed out, {:.0}/s over the last {:.0} s, {:.0} s elapsed, RSS {} MiB",
                        (n - last.1) as f64 / last.0.elapsed().as_secs_f64(),
                        last.0.elapsed().as_secs_f64(),
                        started.elapsed().as_secs_f64(),
                        proc_status_kib("VmRSS:") / 1024
                    );
                    last = (Instant::now(), n);
                }
            }
        })
    };
    let mut stored = 0;
    let mut lat = Vec::new();
    for h in handles {
        let (s, l) = h.await.expect("task");
        stored += s;
        lat.extend(l);
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = ticker.await;
    (stored, elapsed, lat)
}

async fn appends(args: &Args) {
    println!(
        "== in-process durable appends: Store::put_receipt from C concurrent tasks, {:.0} s each, \
         ~{} B canonical receipts, {} ==",
        args.seconds,
        args.receipt_bytes,
        if args.audit {
            "plus one audit record each (2 log appends per receipt, as the API does)"
        } else {
            "no audit record"
        }
    );
    for &conc in &args.concurrency {
        let dir = tempdir(args, "appends");
        let (store, metrics) = open_store(dir.path());
        let generator = Arc::new(ReceiptGen::new(args.receipt_bytes));
        let (stored, elapsed, lat) = drive(
            &store,
            generator,
            conc,
            Some(Duration::from_secs_f64(args.seconds)),
            u64::MAX,
            args.audit,
            false,
        )
        .await;
        let (commits, batch, commit_ms) = commit_stats(&metrics);
        let origin = store.origin(TENANT, "evidence");
        let size = store.log_size(&origin).expect("size");
        assert_eq!(size, stored, "evidence log size != receipts stored");
        let cp = store.checkpoint(&origin).expect("cp").expect("checkpoint");
        assert_eq!(cp.size, size, "checkpoint does not cover the log");
        let rate = stored as f64 / elapsed.as_secs_f64();
        let p = pct(lat);
        let db = dir_bytes(dir.path()).1;
        store.shutdown();
        drop(store);
        println!(
            "C={conc:<4} {rate:>8.0} receipts/s ({:.0} log appends/s)  {stored} in {:.1} s  \
             {commits:.0} commits, mean batch {batch:.1}, mean commit {commit_ms:.2} ms  \
             latency p50 {:.2} ms p99 {:.2} ms max {:.2} ms  db {:.0} MiB on disk",
            rate * if args.audit { 2.0 } else { 1.0 },
            elapsed.as_secs_f64(),
            p.p50 / 1e3,
            p.p99 / 1e3,
            p.max / 1e3,
            db as f64 / 1048576.0
        );
        println!(
            "RESULT append_c{conc}=rps:{rate:.1},stored:{stored},secs:{:.2},commits:{commits:.0},\
             batch_mean:{batch:.1},commit_ms:{commit_ms:.3},p50_ms:{:.3},p99_ms:{:.3},max_ms:{:.3}",
            elapsed.as_secs_f64(),
            p.p50 / 1e3,
            p.p99 / 1e3,
            p.max / 1e3
        );
    }
}

async fn proofs(args: &Args) {
    println!(
        "== inclusion/consistency proof latency at {} leaves ==",
        args.leaves
    );
    let dir = tempdir(args, "1m");
    let (store, metrics) = open_store(dir.path());
    let generator = Arc::new(ReceiptGen::new(args.receipt_bytes));
    eprintln!(
        "building a {}-leaf evidence log in {} with {} concurrent put_receipt tasks{}",
        args.leaves,
        dir.path().display(),
        args.build_concurrency,
        if args.build_audit {
            " (with audit records)"
        } else {
            " (no audit records: one log append per receipt)"
        }
    );
    let (stored, elapsed, lat) = drive(
        &store,
        generator.clone(),
        args.build_concurrency,
        None,
        args.leaves,
        args.build_audit,
        true,
    )
    .await;
    let (commits, batch, commit_ms) = commit_stats(&metrics);
    let origin = store.origin(TENANT, "evidence");
    let size = store.log_size(&origin).expect("size");
    assert_eq!(size, args.leaves);
    assert_eq!(stored, args.leaves);
    let cp = store.checkpoint(&origin).expect("cp").expect("checkpoint");
    assert_eq!(cp.size, size);
    let (db_len, db_alloc) = dir_bytes(dir.path());
    let p = pct(lat);
    println!(
        "build      {size} leaves in {:.1} s = {:.0} receipts/s; {commits:.0} commits, mean batch \
         {batch:.1}, mean commit {commit_ms:.2} ms; put_receipt p50 {:.1} ms p99 {:.1} ms; \
         db file {:.0} MiB ({:.0} MiB allocated); RSS {} MiB (peak {} MiB)",
        elapsed.as_secs_f64(),
        size as f64 / elapsed.as_secs_f64(),
        p.p50 / 1e3,
        p.p99 / 1e3,
        db_len as f64 / 1048576.0,
        db_alloc as f64 / 1048576.0,
        proc_status_kib("VmRSS:") / 1024,
        proc_status_kib("VmHWM:") / 1024,
    );
    println!(
        "RESULT build=leaves:{size},secs:{:.1},rps:{:.0},commits:{commits:.0},batch_mean:{batch:.1},\
         commit_ms:{commit_ms:.3},db_mib:{:.0},db_alloc_mib:{:.0},rss_mib:{},hwm_mib:{}",
        elapsed.as_secs_f64(),
        size as f64 / elapsed.as_secs_f64(),
        db_len as f64 / 1048576.0,
        db_alloc as f64 / 1048576.0,
        proc_status_kib("VmRSS:") / 1024,
        proc_status_kib("VmHWM:") / 1024,
    );

    // Correctness sample: proofs verify against the signed checkpoint's root.
    let mut rng = rand::rng();
    for _ in 0..200 {
        let i = rng.random_range(0..size);
        let entry = store.log_entry(&origin, i).expect("entry");
        let proof = store.inclusion_proof(&origin, i, size).expect("proof");
        merkle::verify_inclusion(&merkle::leaf_hash(&entry), i, size, &proof, &cp.root)
            .expect("inclusion proof verifies");
        let from = rng.random_range(1..size);
        let old_root = store.log_root(&origin, from).expect("old root");
        let proof = store.consistency_proof(&origin, from, size).expect("proof");
        merkle::verify_consistency(from, size, &proof, &old_root, &cp.root)
            .expect("consistency proof verifies");
    }

    let n = args.proofs;
    let time_it = |f: &dyn Fn(&mut rand::rngs::ThreadRng) -> usize| -> (Vec<u64>, usize) {
        let mut rng = rand::rng();
        let mut ns = Vec::with_capacity(n);
        let mut hashes = 0;
        for _ in 0..n {
            let t = Instant::now();
            hashes += f(&mut rng);
            ns.push(t.elapsed().as_nanos() as u64);
        }
        (ns, hashes)
    };
    let report = |key: &str, label: &str, (ns, hashes): (Vec<u64>, usize)| {
        let p = pct(ns);
        println!(
            "{label:<34} p50 {:>7.1} µs  p99 {:>7.1} µs  p99.9 {:>7.1} µs  mean {:>7.1} µs  max {:>8.1} µs  \
             ({n} calls, {:.1} hashes/proof)",
            p.p50,
            p.p99,
            p.p999,
            p.mean,
            p.max,
            hashes as f64 / n as f64
        );
        println!(
            "RESULT {key}=p50_us:{:.1},p99_us:{:.1},p999_us:{:.1},mean_us:{:.1},max_us:{:.1},n:{n}",
            p.p50, p.p99, p.p999, p.mean, p.max
        );
    };
    let s = &store;
    let o = origin.as_str();
    // The first pass right after the build meets a redb page cache filled by the writes (the
    // entry and receipt tables, not the node pages); the later ones run warm.
    report(
        "inclusion_first",
        "inclusion proof, first pass",
        time_it(&|rng| {
            s.inclusion_proof(o, rng.random_range(0..size), size)
                .expect("proof")
                .len()
        }),
    );
    report(
        "inclusion",
        "inclusion proof (random leaf, size)",
        time_it(&|rng| {
            s.inclusion_proof(o, rng.random_range(0..size), size)
                .expect("proof")
                .len()
        }),
    );
    report(
        "consistency",
        "consistency proof (random m, size)",
        time_it(&|rng| {
            s.consistency_proof(o, rng.random_range(1..size), size)
                .expect("proof")
                .len()
        }),
    );
    report(
        "checkpoint_inclusion",
        "checkpoint + inclusion (API 201)",
        time_it(&|rng| {
            let cp = s.checkpoint(o).expect("cp").expect("checkpoint");
            s.inclusion_proof(o, rng.random_range(0..cp.size), cp.size)
                .expect("proof")
                .len()
        }),
    );
    report(
        "inclusion_old",
        "inclusion proof (random leaf, old m)",
        time_it(&|rng| {
            let m = rng.random_range(1..=size);
            s.inclusion_proof(o, rng.random_range(0..m), m)
                .expect("proof")
                .len()
        }),
    );

    // Throughput with several threads proving at once.
    let threads = args.proof_threads.max(1);
    let started = Instant::now();
    let per = n / threads;
    std::thread::scope(|sc| {
        for _ in 0..threads {
            let o = origin.clone();
            sc.spawn(move || {
                let mut rng = rand::rng();
                for _ in 0..per {
                    s.inclusion_proof(&o, rng.random_range(0..size), size)
                        .expect("proof");
                }
            });
        }
    });
    let rate = (per * threads) as f64 / started.elapsed().as_secs_f64();
    println!("inclusion proofs, {threads} threads       {rate:.0} proofs/s");
    println!("RESULT inclusion_parallel=threads:{threads},proofs_per_s:{rate:.0}");

    // Does the append rate hold on a big log? C = 64 with audit records, as on a fresh store.
    let conc = args.large_conc;
    if conc > 0 {
        let before = commit_stats(&metrics);
        let (stored, elapsed, lat) = drive(
            &store,
            Arc::new(ReceiptGen::new(args.receipt_bytes)),
            conc,
            Some(Duration::from_secs_f64(args.seconds)),
            u64::MAX,
            args.audit,
            false,
        )
        .await;
        let after = commit_stats(&metrics);
        let commits = after.0 - before.0;
        let batch = (after.1 * after.0 - before.1 * before.0) / commits;
        let r = stored as f64 / elapsed.as_secs_f64();
        let p = pct(lat);
        println!(
            "C={conc} onto the {size}-leaf log: {r:.0} receipts/s, {commits:.0} commits, mean batch \
             {batch:.1}, latency p50 {:.2} ms p99 {:.2} ms",
            p.p50 / 1e3,
            p.p99 / 1e3
        );
        println!(
            "RESULT append_large_c{conc}=rps:{r:.1},stored:{stored},commits:{commits:.0},\
             batch_mean:{batch:.1},p50_ms:{:.3},p99_ms:{:.3}",
            p.p50 / 1e3,
            p.p99 / 1e3
        );
    }
    store.shutdown();
    drop(store);
    let path = dir.path().to_path_buf();
    dir.close().expect("remove temp dir");
    eprintln!("removed {}", path.display());
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    // The generated text must be exactly what the API would store (its JCS form).
    let g = ReceiptGen::new(args.receipt_bytes);
    let (text, ..) = g.make(42);
    let v: serde_json::Value = serde_json::from_slice(&text).expect("receipt JSON");
    assert_eq!(
        evidentia::verify::jcs(&v).expect("jcs"),
        text,
        "receipt template is not canonical"
    );
    evidentia::evidence::receipt::parse(v).expect("receipt parses");
    println!(
        "RESULT receipt_bytes={} workers={}",
        text.len(),
        tokio::runtime::Handle::current().metrics().num_workers()
    );
    if args.appends {
        appends(&args).await;
    }
    if args.proof_phase {
        proofs(&args).await;
    }
}
