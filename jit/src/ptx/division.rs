//! The f32 division of `tanh` and `sigmoid` without the general division's range check.
//!
//! ptxas compiles `div.rn.f32` to a reciprocal estimate (`MUFU.RCP`), five fused
//! multiply-adds that turn it into the correctly rounded quotient, and an `FCHK` — a
//! check of the operands' exponents, like PowerISA's `ftdiv` — that sends operands the
//! sequence cannot handle (huge, tiny, special, far apart) to a slow subroutine: a
//! check, a branch and a convergence barrier around every division (`cuobjdump -sass`
//! of the W2/W3 kernel shows the sequence). `tanh` divides 2 by e + 1 ∈ [2, 2^29] and
//! `sigmoid` 1 or e by 1 + e ∈ [1, 2] (e ∈ [0, 1]): moderate operands, for which the
//! check passes and `div.rn` *is* the five multiply-adds. `moderate` emits them without
//! the check, so its bits are `div.rn`'s — the CPU's — on the hardware's own estimate.
//! The one family member a range check might refuse, a tiny or subnormal e over
//! 1 + e = 1, is exact for every estimate PTX allows `rcp.approx` (within 1 ulp of 1,
//! the corrected reciprocal is 1 and the quotient e itself). The tests below check the
//! arithmetic with the nearest estimate (the PTX interpreter's) over every operand of
//! both families (`--ignored`; a sample otherwise); `tests/gpu` compares `tanh` and
//! `sigmoid` bit for bit with the CPU on the hardware. That check is needed: the five
//! multiply-adds are not correctly rounded for *every* estimate the PTX ISA allows
//! (within 1 ulp) — 2 / (4 − 2^-22) with the estimate 0.25, just over 0.5 ulp off, gives 0.5
//! instead of 0.5 + 2^-24 (the Newton step's correction is a tie and rounds away) — so
//! the bits rest on `rcp.approx` being the `MUFU.RCP` that `div.rn`'s own sequence
//! uses, as ptxas compiles both.

use super::emit::{Emitter, Reg};
use crate::lower::Lower;

/// `a / b` correctly rounded for the operand families above (NaN gives NaN).
pub(super) fn moderate(e: &mut Emitter, a: Reg, b: Reg) -> Reg {
    let (r0, nb) = (e.f(), e.f());
    e.ins(format_args!("rcp.approx.ftz.f32 {r0}, {b}"));
    e.ins(format_args!("neg.f32 {nb}, {b}"));
    // One Newton step on the estimate, then the quotient and one correction from its
    // exact residual a − b·q0 — `model` below, step for step.
    let one = e.fconst(1.0);
    let err = e.fma(nb, r0, one);
    let r1 = e.fma(r0, err, r0);
    let q0 = e.fmul(a, r1);
    let res = e.fma(nb, q0, a);
    e.fma(res, r1, q0)
}

#[cfg(test)]
mod tests {
    use rayon::prelude::*;

    /// What `moderate` computes, given the reciprocal estimate `r0` of `b`.
    fn model(a: f32, b: f32, r0: f32) -> f32 {
        let err = (-b).mul_add(r0, 1.0);
        let r1 = r0.mul_add(err, r0);
        let q0 = a * r1;
        let res = (-b).mul_add(q0, a);
        res.mul_add(r1, q0)
    }

    /// The first wrong quotient (a, b) among these, with the nearest estimate.
    fn first_wrong(pairs: impl ParallelIterator<Item = (f32, f32)>) -> Option<(f32, f32)> {
        pairs.find_any(|&(a, b)| model(a, b, 1.0 / b).to_bits() != (a / b).to_bits())
    }

    fn floats(lo: f32, hi: f32) -> impl IndexedParallelIterator<Item = f32> {
        (lo.to_bits()..hi.to_bits() + 1).into_par_iter().map(f32::from_bits)
    }

    /// tanh: 2 / d for d = e + 1, e ∈ [1, e^20] (every f32 d in [2, 2^29]).
    fn tanh_family(stride: usize) -> Option<(f32, f32)> {
        first_wrong(floats(2.0, 536_870_912.0).step_by(stride).map(|d| (2.0, d)))
    }

    /// sigmoid: 1 / d and e / d for d = 1 + e, e ∈ [0, 1] (every f32 e).
    fn sigmoid_family(stride: usize) -> Option<(f32, f32)> {
        let ones = first_wrong(floats(1.0, 2.0).step_by(stride).map(|d| (1.0, d)));
        ones.or_else(|| first_wrong(floats(0.0, 1.0).step_by(stride).map(|e| (e, 1.0 + e))))
    }

    #[test]
    fn the_division_is_correctly_rounded_on_a_sample_of_its_operands() {
        // Strides that are odd and not powers of two: every binade, both ends of it.
        assert_eq!(tanh_family(997), None, "(a, b) of a wrong quotient");
        assert_eq!(sigmoid_family(1999), None, "(a, b) of a wrong quotient");
        assert!(model(1.0, f32::NAN, f32::NAN).is_nan(), "NaN in, NaN out");
    }

    /// Over 1 + e = 1 (e < 2^-24, subnormal e included) the quotient is e exactly for
    /// every estimate within 1 ulp of 1 — the operands a range check could refuse.
    #[test]
    fn a_quotient_over_one_is_exact_for_any_estimate() {
        let estimates = [1.0 - f32::EPSILON / 2.0, 1.0, 1.0 + f32::EPSILON];
        let tiny = [0.0, f32::from_bits(1), 1e-40, f32::MIN_POSITIVE, 1e-30, 2f32.powi(-25), 2f32.powi(-24)];
        for e in tiny.into_iter().chain(uniform(7, 1000).map(|u| u * 2f32.powi(-24))) {
            assert_eq!(1.0 + e, 1.0);
            for r0 in estimates {
                assert_eq!(model(e, 1.0, r0).to_bits(), e.to_bits(), "e = {e:e}, estimate {r0}");
            }
        }
    }

    /// The module's caveat: an estimate within PTX's 1-ulp bound that is not the
    /// nearest can make the sequence round wrongly, so the hardware's estimate matters.
    #[test]
    fn some_estimate_within_one_ulp_rounds_wrongly() {
        let b = 4.0f32.next_down();
        assert_eq!(1.0 / b, 0.25f32.next_up(), "the nearest estimate: 1/b is 0.25 + 2^-26 + 2^-50 + …");
        assert_eq!(model(2.0, b, 1.0 / b), 2.0 / b, "correct with the nearest estimate");
        assert_eq!(model(2.0, b, 0.25), 0.5, "0.25, just over 0.5 ulp below 1/b: a tie rounds the wrong way");
        assert_eq!(2.0 / b, 0.5f32.next_up());
    }

    /// `n` uniform floats in [0, 1) from a small xorshift generator seeded with `seed`.
    fn uniform(seed: u64, n: usize) -> impl Iterator<Item = f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n).map(move |_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32
        })
    }

    /// Every operand of both families (about 1.4e9 divisions): run with
    /// `cargo test --release -p tensorjit-jit -- --ignored division`.
    #[test]
    #[ignore = "exhaustive, 1.4 G divisions: run in release (7.5 s on 2 cores), not in debug CI"]
    fn the_division_is_correctly_rounded_on_every_operand() {
        assert_eq!(tanh_family(1), None);
        assert_eq!(sigmoid_family(1), None);
    }
}
