pub mod common;

mod api;
mod authz;
mod evidence;
mod hardening;
mod ingest;
mod lifecycle;
mod process;
mod tcp;
mod vectors;
