//! Chunk arithmetic of the read and write paths: how a new chunk is built
//! from the old one and new bytes, and which bytes of a chunk a read wants.
//! Pure functions, unit-tested.

/// The content of a chunk after writing `data` at file offset `at`:
/// the old content (never past the old end of file) zero-extended up to the
/// write, with `data` laid over it. `chunk_start` is the chunk's file offset.
pub fn patch_chunk(old: &[u8], chunk_start: u64, at: u64, data: &[u8]) -> Vec<u8> {
    let rel = (at - chunk_start) as usize;
    let end = rel + data.len();
    let mut out = old.to_vec();
    if out.len() < end {
        out.resize(end, 0);
    }
    out[rel..end].copy_from_slice(data);
    out
}

/// The bytes of `[want_start, want_start + want_len)` out of a chunk
/// stored for file offset `chunk_start`; bytes past the stored content
/// read as zeros (holes and short chunks).
pub fn slice_chunk(
    content: Option<&[u8]>,
    chunk_start: u64,
    want_start: u64,
    want_len: usize,
) -> Vec<u8> {
    let mut out = vec![0u8; want_len];
    if let Some(content) = content {
        let rel = (want_start - chunk_start) as usize;
        if rel < content.len() {
            let n = (content.len() - rel).min(want_len);
            out[..n].copy_from_slice(&content[rel..rel + n]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn patching_zero_fills_and_keeps_the_rest() {
        assert_eq!(patch_chunk(b"abcdef", 0, 2, b"XY"), b"abXYef");
        assert_eq!(patch_chunk(b"ab", 0, 4, b"Z"), b"ab\0\0Z");
        assert_eq!(patch_chunk(b"", 100, 100, b"hi"), b"hi");
    }

    #[test]
    fn slicing_pads_with_zeros() {
        assert_eq!(slice_chunk(Some(b"abc"), 0, 1, 4), b"bc\0\0");
        assert_eq!(slice_chunk(None, 0, 0, 3), vec![0; 3]);
        assert_eq!(slice_chunk(Some(b"abc"), 0, 5, 2), vec![0; 2]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]
        /// Patching then slicing the written range gives back the data, and
        /// the rest of the old content is unchanged.
        #[test]
        fn patch_then_slice(old in proptest::collection::vec(any::<u8>(), 0..64), at in 0u64..80, data in proptest::collection::vec(any::<u8>(), 0..40)) {
            let new = patch_chunk(&old, 0, at, &data);
            prop_assert_eq!(slice_chunk(Some(&new), 0, at, data.len()), data.clone());
            for (i, b) in old.iter().enumerate() {
                let i = i as u64;
                if i < at || i >= at + data.len() as u64 {
                    prop_assert_eq!(new[i as usize], *b);
                }
            }
        }
    }
}
