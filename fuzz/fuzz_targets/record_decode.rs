//! Fuzz target: the record decoder must reject or decode any bytes without
//! panicking, and whatever it decodes must re-encode and decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use toastyfs_proto::namespace::{CommandResult, Proposal, Query, QueryResult};
use toastyfs_proto::record::{decode, encode, Record};

fn check<T: Record + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(value) = decode::<T>(data) {
        let again = encode(&value).expect("a decoded record re-encodes");
        assert_eq!(decode::<T>(&again).as_ref(), Ok(&value), "re-encoding changed the value");
    }
}

fuzz_target!(|data: &[u8]| {
    check::<Proposal>(data);
    check::<CommandResult>(data);
    check::<Query>(data);
    check::<QueryResult>(data);
});
