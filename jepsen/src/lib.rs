//! The ToastyFS test harness. [`cluster`] starts and controls clusters of
//! real `toastyfs` processes on loopback (free ports, temp data
//! directories, kill -9 and restart, bounded waits); the end-to-end tests
//! and the benchmarks use it. [`history`] records what clients did as
//! Jepsen-style JSON lines, and [`linearizable`] checks such a history
//! against a register model. [`net`] puts every process in a network
//! namespace of its own so the links between them can be cut, and
//! [`netcluster`] runs a whole cluster that way; [`nemesis`] injects
//! faults into it on a schedule. The workloads: [`register`] (whole
//! small files: puts, compare-and-sets, reads), [`blocks`] (partial
//! writes at disjoint offsets of one large file), [`namespace`] (files
//! created, renamed, deleted and listed, checked against a model of each
//! directory) and [`append`] (records appended to shared logs, none
//! lost); [`paused_client`] runs client processes the nemesis stops
//! mid-write;
//! [`verdict`] writes, measures and checks a run ([`plot`] draws it), and
//! [`run`] puts them together; [`dice`] makes every choice.

pub mod append;
pub mod blocks;
pub mod cluster;
pub mod dice;
pub mod history;
pub mod linearizable;
pub mod namespace;
pub mod nemesis;
pub mod net;
pub mod netcluster;
pub mod paused_client;
pub mod plot;
pub mod register;
pub mod run;
pub mod verdict;
