pub mod common;

mod access;
mod api;
mod authz;
mod cli;
mod contract;
mod disk;
mod evidence;
mod hardening;
mod ingest;
mod isolation;
mod lifecycle;
mod process;
mod sessions;
mod slowloris;
mod tcp;
mod tokens;
mod vectors;
