//! One integration-test binary (links once): every module starts the real server, through
//! poem's TestClient or a real TCP listener on 127.0.0.1.

mod it;
