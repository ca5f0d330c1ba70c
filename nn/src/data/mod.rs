//! Input pipelines (`Dataset`), loaders (IDX files (MNIST) and the digits CSV) and
//! `pad_sequences`.

mod dataset;
mod files;
mod sequences;

pub use dataset::Dataset;
pub use files::{load_digits, load_idx, train_test_split};
pub use sequences::{pad_sequences, PadOptions, Side};

use tensorjit_runtime::random::splitmix64;
use tensorjit_runtime::Tensor;

/// Rows `idx` of `t` (along axis 0), gathered where `t` lives: the indices are moved
/// beside it, so data already on a device stays there.
pub(crate) fn take_rows(t: &Tensor, idx: &[i64]) -> crate::Result<Tensor> {
    let idx = Tensor::from_vec(idx.to_vec(), [idx.len()])?.to(t.device())?;
    Ok(t.gather(&idx, 0))
}

/// SplitMix64 on the runtime's mixing function: the host-side generator behind
/// shuffles (no `rand` dependency; the same sequence on every platform).
pub(crate) struct SplitMix(u64);

impl SplitMix {
    pub(crate) fn new(seed: u64) -> SplitMix {
        SplitMix(seed ^ 0x6A09_E667_F3BC_C908)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let z = self.0;
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix64(z)
    }

    /// Uniform in `0..n` (n > 0), by Lemire's multiply-shift.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }
}

/// A permutation of `0..n` from `seed`, different for each `epoch` (Fisher–Yates).
pub(crate) fn shuffled_indices(n: usize, seed: u64, epoch: u64) -> Vec<i64> {
    let mut rng = SplitMix::new(seed.wrapping_mul(0x1000_0000_01B3) ^ epoch.wrapping_mul(0x9E37_79B9));
    let mut v: Vec<i64> = (0..n as i64).collect();
    for i in (1..n).rev() {
        v.swap(i, rng.below(i + 1));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shuffles_are_permutations_that_repeat_by_seed_and_change_by_epoch() {
        let a = shuffled_indices(100, 7, 0);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..100).collect::<Vec<i64>>());
        assert_eq!(a, shuffled_indices(100, 7, 0));
        assert_ne!(a, shuffled_indices(100, 7, 1));
        assert_ne!(a, shuffled_indices(100, 8, 0));
    }
}
