//! The ToastyFS test harness. Today: [`cluster`], which starts and controls
//! clusters of real `toastyfs` processes on loopback (free ports, temp data
//! directories, kill -9 and restart, bounded waits). The end-to-end tests
//! and the benchmarks use it; the Jepsen-style nemeses, workloads and
//! checker will live beside it.

pub mod cluster;
