//! The ToastyFS test harness. [`cluster`] starts and controls clusters of
//! real `toastyfs` processes on loopback (free ports, temp data
//! directories, kill -9 and restart, bounded waits); the end-to-end tests
//! and the benchmarks use it. [`history`] records what clients did as
//! Jepsen-style JSON lines, and [`linearizable`] checks such a history
//! against a register model. [`net`] puts every process in a network
//! namespace of its own so the links between them can be cut. Nemeses and
//! workloads follow; [`register`] is the first workload.

pub mod cluster;
pub mod history;
pub mod linearizable;
pub mod net;
pub mod register;
pub mod verdict;
