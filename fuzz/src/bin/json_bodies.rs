//! AFL target `json_bodies`: feeds each input to
//! `toastyfs_proto::fuzz_checks::json_bodies`, where the property it checks is
//! written down (and shared with the seed and regression tests).

fn main() {
    afl::fuzz!(|data: &[u8]| toastyfs_proto::fuzz_checks::json_bodies(data));
}
