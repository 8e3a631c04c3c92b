//! Baseline for `bench/ingest.sh`: the most trivial poem 3 server there is. It answers
//! `GET /` and `POST /` with a small JSON document and nothing else: a request body is read
//! into memory and only its length is echoed (no middleware, no signature, no storage).
//! Measuring it with the same load tool and settings as `/ai/webhook` shows how much of the
//! ingestion cost is the HTTP stack and how much is Evidentia.
//!
//! ```sh
//! cargo run --release --example bench_trivial -- 127.0.0.1:18080
//! ```

use bytes::Bytes;
use poem::{EndpointExt as _, Route, Server, get, handler, listener::TcpListener, web::Json};
use serde_json::{Value, json};

#[handler]
fn trivial(body: Bytes) -> Json<Value> {
    Json(json!({"ok": true, "bytes": body.len(), "duplicate": false}))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18080".to_string());
    let app = Route::new()
        .at("/", get(trivial).post(trivial))
        .map_to_response();
    eprintln!("bench_trivial listening on {addr}");
    Server::new(TcpListener::bind(addr))
        .run_with_graceful_shutdown(
            app,
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            None,
        )
        .await
}
