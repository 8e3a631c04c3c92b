//! The real binary under a slow-connection attack: thousands of connections from one peer that
//! send part of their headers and go silent, with the descriptor limit at 256. A normal client
//! from another address is still answered promptly, and the appliance idles while the attackers
//! hold their connections.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// CPU time (user + system) of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// Time for a fresh client on 127.0.0.1 to get `/healthz` answered.
fn healthz_latency(port: u16) -> Option<Duration> {
    use std::io::{Read, Write};
    let started = Instant::now();
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).ok()?;
    String::from_utf8_lossy(&buf[..n])
        .starts_with("HTTP/1.1 200")
        .then(|| started.elapsed())
}

#[test]
fn three_thousand_slow_connections_do_not_starve_a_normal_client() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED: python3 is needed to hold 3,000 connections");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("bash")
        .arg("-c")
        .arg("ulimit -n 256 && exec \"$0\" serve --listen 127.0.0.1:\"$1\" --data-dir \"$2\"")
        .arg(env!("CARGO_BIN_EXE_evidentia"))
        .arg(port.to_string())
        .arg(dir.path().join("data"))
        .env("EVIDENTIA_SERVER_MAX_CONNECTIONS_PER_PEER", "64")
        .env("EVIDENTIA_SERVER_HEADER_READ_TIMEOUT_SECS", "30")
        .env("EVIDENTIA_SERVER_IDLE_TIMEOUT_SECS", "30")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while healthz_latency(port).is_none() {
        assert!(Instant::now() < deadline, "the appliance did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The attacker: 3,000 connections from 127.0.0.2, each with half a request head, held.
    let attacker = Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
port = int(sys.argv[1]); held = []
for i in range(3000):
    s = socket.socket(); s.settimeout(0.5)
    try:
        s.bind(("127.0.0.2", 0)); s.connect(("127.0.0.1", port))
        s.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        held.append(s)
    except OSError:
        s.close()
print(len(held), flush=True)
time.sleep(12)
"#,
        )
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Let the attack establish itself.
    std::thread::sleep(Duration::from_secs(6));
    let pid = server.id();
    let ticks0 = cpu_ticks(pid);
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        let latency = healthz_latency(port).expect("a normal client is answered");
        worst = worst.max(latency);
        std::thread::sleep(Duration::from_millis(200));
    }
    let ticks = cpu_ticks(pid) - ticks0;
    let busy = ticks as f64 / ticks_per_second() as f64 / 2.0;
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = server.wait();
    let out = attacker.wait_with_output().unwrap();
    eprintln!(
        "attacker held {} connections; normal client worst {:?}; server CPU {:.2} cores",
        String::from_utf8_lossy(&out.stdout).trim(),
        worst,
        busy
    );
    assert!(
        worst < Duration::from_millis(100),
        "worst latency {worst:?}"
    );
    assert!(
        busy < 0.5,
        "the appliance used {busy:.2} cores while attackers idled"
    );
}
