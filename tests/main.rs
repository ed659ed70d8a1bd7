//! The integration tests, as one test binary (as ripgrep does): each file under `tests/` is a
//! module here, so the crate and its dependencies are linked once instead of once per file.
//! `cargo nextest run` runs every test in its own process all the same.

mod common;

mod api;
mod chaos;
mod cli;
mod cloudflare;
mod config_errors;
mod dashboard;
mod ddns;
mod ddns_interface;
mod demo;
mod dns_conformance;
mod dns_server;
mod dnssec;
mod failover;
mod fuzz_corpus;
mod install;
mod maintenance;
mod metrics;
mod mirror;
mod mirror_guess;
mod mirror_h2;
mod notify;
mod notify_matrix;
mod notify_services;
mod powerdns;
mod provider_configs;
mod provider_e2e;
mod proxy;
mod push;
mod reload;
mod replica;
mod rfc2136;
mod route53;
mod secondaries;
mod serve;
mod standby_tls;
mod state;
mod tidy;
mod watcher;
