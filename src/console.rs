//! The embedded admin console (`web/`, compiled into the binary with rust-embed), served with a
//! strict Content-Security-Policy: no inline script, no external assets (air-gapped installs).

use poem::endpoint::{EmbeddedFileEndpoint, EmbeddedFilesEndpoint};
use poem::middleware::SetHeader;
use poem::{Endpoint, EndpointExt};
use rust_embed::RustEmbed;

/// The console's static files.
#[derive(RustEmbed)]
#[folder = "web/"]
pub struct ConsoleAssets;

/// The policy sent with every console file.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                       connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn headers() -> SetHeader {
    SetHeader::new()
        .overriding("Content-Security-Policy", CSP)
        .overriding("X-Content-Type-Options", "nosniff")
        .overriding("Referrer-Policy", "no-referrer")
        .overriding("X-Frame-Options", "DENY")
}

/// `/console/*`: the embedded files.
pub fn endpoint() -> impl Endpoint {
    EmbeddedFilesEndpoint::<ConsoleAssets>::new().with(headers())
}

/// `/`: the console's index page.
pub fn index() -> impl Endpoint {
    EmbeddedFileEndpoint::<ConsoleAssets>::new("index.html").with(headers())
}
