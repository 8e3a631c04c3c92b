pub mod common;

mod api;
mod ingest;
mod lifecycle;
mod tcp;
mod vectors;
