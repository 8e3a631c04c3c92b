pub mod common;

mod api;
mod evidence;
mod ingest;
mod lifecycle;
mod tcp;
mod vectors;
