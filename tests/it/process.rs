//! The real binary as an operator runs it: `serve` over HTTPS with a self-signed certificate,
//! SIGTERM drain and restart, `check-config`, the bootstrap token shown once.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn evidentia() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_evidentia"));
    for (k, _) in std::env::vars() {
        if k.starts_with("EVIDENTIA_") || k.ends_with("_SECRET") || k == "CREDENTIALS_DIRECTORY" {
            c.env_remove(k);
        }
    }
    c
}

fn serve(data: &Path, port: u16, tls: bool) -> Child {
    let mut c = evidentia();
    c.args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
    ])
    .arg(data)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    if tls {
        c.env("EVIDENTIA_TLS_ENABLED", "true")
            .env("EVIDENTIA_TLS_SELF_SIGNED", "true");
    }
    c.spawn().expect("spawn evidentia")
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("evidentia did not listen on {port}");
}

fn curl(args: &[&str]) -> (bool, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .args(args)
        .output()
        .expect("curl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn terminate(mut child: Child) -> (bool, String) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            return (status.success(), err);
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn https_with_a_self_signed_certificate_and_plain_http_refused() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = serve(dir.path(), port, true);
    wait_for_port(port);
    let cert = dir.path().join("tls/cert.pem");
    assert!(cert.is_file());
    let url = format!("https://localhost:{port}/healthz");
    // The listener accepts TCP a moment before its TLS configuration is loaded.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (ok, out) = loop {
        let (ok, out) = curl(&["--cacert", cert.to_str().unwrap(), &url]);
        if ok || Instant::now() > deadline {
            break (ok, out);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(ok && out.contains("\"ok\""), "{out}");
    let url = format!("https://127.0.0.1:{port}/readyz");
    let (ok, out) = curl(&["--cacert", cert.to_str().unwrap(), &url]);
    assert!(ok && out.contains("ready"), "{out}");
    // Without the CA the certificate is not trusted; plain HTTP gets no HTTP answer.
    let (ok, _) = curl(&[&format!("https://localhost:{port}/healthz")]);
    assert!(!ok);
    let (ok, out) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://127.0.0.1:{port}/healthz"),
    ]);
    assert!(!ok || out.starts_with("000"), "plain HTTP answered: {out}");
    let (clean, _) = terminate(child);
    assert!(clean, "SIGTERM exits cleanly");
    // The certificate is kept: a restart serves the same one.
    let before = std::fs::read(&cert).unwrap();
    let child = serve(dir.path(), port, true);
    wait_for_port(port);
    assert_eq!(std::fs::read(&cert).unwrap(), before);
    terminate(child);
}

#[test]
fn sigterm_drains_closes_the_database_and_the_token_is_shown_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = serve(dir.path(), port, false);
    wait_for_port(port);
    let (ok, out) = curl(&[&format!("http://127.0.0.1:{port}/healthz")]);
    assert!(ok, "{out}");
    let (clean, stderr) = terminate(child);
    assert!(clean, "{stderr}");
    let token = stderr
        .split_whitespace()
        .find(|w| w.starts_with("evd_"))
        .expect("bootstrap token printed")
        .to_string();
    assert!(stderr.contains("database closed"), "{stderr}");
    for name in [
        "ML_WEBHOOK_SECRET",
        "EVIDENCE_SIGNING_SECRET",
        "APPLIANCE_SIGNING_KEY",
    ] {
        assert!(
            dir.path().join("secrets").join(name).is_file(),
            "{name} generated"
        );
    }
    // Second start: no new token, the old one still works, the database opens at once.
    let child = serve(dir.path(), port, false);
    wait_for_port(port);
    let (ok, out) = curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!("http://127.0.0.1:{port}/api/tenants"),
    ]);
    assert!(ok && out.contains("default"), "{out}");
    let (clean, stderr) = terminate(child);
    assert!(clean);
    assert!(
        !stderr.contains("evd_"),
        "the token is shown only at first start"
    );
}

#[test]
fn check_config_validates_without_starting() {
    let dir = tempfile::tempdir().unwrap();
    let ok = evidentia()
        .args(["check-config", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        !dir.path().join("evidentia.redb").exists(),
        "nothing was started"
    );
    let short = evidentia()
        .args(["check-config", "--data-dir"])
        .arg(dir.path())
        .env("ML_WEBHOOK_SECRET", "too-short")
        .output()
        .unwrap();
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("ML_WEBHOOK_SECRET"));
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "version = 1\n[server]\nlisten = \"nowhere\"\n").unwrap();
    let bad = evidentia()
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("server.listen"));
    let tls = evidentia()
        .args(["check-config", "--data-dir"])
        .arg(dir.path())
        .env("EVIDENTIA_TLS_ENABLED", "true")
        .env("EVIDENTIA_TLS_CERT_FILE", "/nonexistent/cert.pem")
        .env("EVIDENTIA_TLS_KEY_FILE", "/nonexistent/key.pem")
        .output()
        .unwrap();
    assert!(!tls.status.success());
    assert!(String::from_utf8_lossy(&tls.stderr).contains("tls.cert_file"));
}
