//! The command line as a shell pipeline uses it: a reader that stops early
//! (`evidentia openapi | head`) is not an error.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Linux's default pipe capacity: output larger than this cannot all be written before the
/// reader closes, so the writer must meet `EPIPE`.
const PIPE_CAPACITY: usize = 64 * 1024;

fn openapi() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_evidentia"));
    c.arg("openapi")
        .env_remove("EVIDENTIA_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

#[test]
fn openapi_into_a_reader_that_closes_early_exits_quietly() {
    assert!(
        evidentia::api::openapi_json().len() > PIPE_CAPACITY,
        "the spec must overflow a pipe for this test to mean anything"
    );

    // `| head -n 1`: read the first line, then close the pipe.
    let mut child = openapi().spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim_end(), "{");
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");

    // `| true`: the reader is gone before the first byte is written.
    let mut child = openapi().spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn openapi_to_a_reader_that_reads_everything_is_the_whole_spec() {
    let out = openapi().output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        evidentia::api::openapi_json() + "\n"
    );
}

/// `evidentia policy-schema` prints the schema tenant policies are validated against, with
/// every action, then the default policies.
#[test]
fn policy_schema_lists_every_action_and_the_defaults() {
    let out = Command::new(env!("CARGO_BIN_EXE_evidentia"))
        .arg("policy-schema")
        .output()
        .expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(text.contains("namespace Evidentia {"), "{text}");
    for action in evidentia::authz::Action::ALL {
        assert!(
            text.contains(&format!("action \"{}\" appliesTo", action.id())),
            "{action} missing"
        );
    }
    assert!(text.contains("@id(\"evidentia.isolation\")"));
}
