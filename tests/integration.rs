//! One integration-test binary (links once): every module starts the real server, through
//! poem's TestClient or a real TCP listener on 127.0.0.1.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking: unwrap, expect and panic are its assertions"
)]

mod it;
