//! The harness's one source of choices: a small deterministic generator
//! (xorshift64), seeded per process or per run, so a run's choices repeat
//! with its seed.

/// A xorshift64 generator.
pub struct Dice(u64);

impl Dice {
    /// A generator from `seed` (any value; zero is replaced, as xorshift
    /// would stay at zero forever).
    pub fn new(seed: u64) -> Dice {
        Dice(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// A number below `below` (0 when `below` is 0).
    pub fn roll(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below.max(1)
    }

    /// An index into a list of `len` items.
    pub fn pick(&mut self, len: usize) -> usize {
        self.roll(len as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolls_stay_in_range_and_repeat_with_the_seed() {
        let (mut a, mut b) = (Dice::new(7), Dice::new(7));
        for _ in 0..1000 {
            let x = a.roll(10);
            assert!(x < 10);
            assert_eq!(x, b.roll(10));
        }
        assert_eq!(Dice::new(0).roll(0), 0);
    }
}
