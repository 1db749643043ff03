//! Servers played by hand for the client's integration tests.
#![allow(dead_code)] // each test binary uses a part

pub mod http;
pub mod scripted;
pub mod silent;
