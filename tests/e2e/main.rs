//! End-to-end tests of the real `toastyfs` binary: processes on 127.0.0.1
//! with free ports and temp data directories, bounded waits, cleanup in
//! `Drop`, and the nodes' logs printed when a test fails.

mod alerts;
mod auth;
mod backup;
mod browser;
mod budgets;
mod chunks;
mod cli;
mod client;
mod collect;
mod config;
mod dav;
mod deploy;
mod dev;
mod gateway;
mod harness;
mod hostile;
mod jepsen;
mod keys;
mod meta;
mod partition;
mod rolling;
mod site;
mod teeth;
mod terminal;
mod tls;
