//! understudy keeps self-hosted websites online: it watches each site's primary server, and when
//! it stops answering points the site's DNS at a standby, and back once the primary is healthy
//! and stable. See ARCHITECTURE.md for the map of modules and the invariants they keep.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod control;
pub mod decide;
pub mod demo;
pub mod dns;
pub mod events;
pub mod history;
pub mod http;
pub mod ip;
pub mod maintenance;
pub mod metrics;
pub mod mirror;
pub mod net;
pub mod notify;
pub mod probe;
pub mod reconcile;
pub mod standby;
pub mod store;
pub mod tls;
pub mod util;
pub mod watcher;
