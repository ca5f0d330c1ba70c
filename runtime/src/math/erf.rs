//! The error function, erf x = (2/√π) ∫₀ˣ e^(−t²) dt (GELU's exact form needs it).
//!
//! fdlibm's method and coefficients (`s_erf.c`, Copyright (C) 1993 by Sun Microsystems,
//! Inc.: "Permission to use, copy, modify, and distribute this software is freely
//! granted, provided that this notice is preserved"), written branch-free like the rest
//! of `math` — every interval's formula is computed and the right one selected — with
//! tensorjit's own `exp_f64` in the tail, so that code generators emitting the same
//! operations (the GPU's, `tensorjit_jit::ptx`) get the same bits:
//!
//! * |x| < 2^-28: x + x·(2/√π − 1), as `0.125·(8x + EFX8·x)` (no underflow);
//! * |x| < 0.84375: x + x·P(x²)/Q(x²);
//! * |x| < 1.25: sign·(erx + P1(s)/Q1(s)), s = |x| − 1;
//! * |x| < 6: sign·(1 − e^(−z² − 0.5625)·e^((z − |x|)(z + |x|) + R(s)/S(s)) / |x|), s =
//!   1/x², z = |x| with its low 32 bits cleared (so z² is exact), two fits split at
//!   |x| ≈ 1/0.35;
//! * beyond: sign·1; erf(±∞) = ±1, erf(NaN) = NaN.
//!
//! f32 `erf` is this function of the widened argument, rounded once.

// Coefficients as fdlibm prints them; the compiler rounds each to the intended double.
#![allow(clippy::excessive_precision)]

use super::double::exp_f64;

/// erf(1) rounded to 24 bits, and 8·(2/√π − 1).
pub const ERF_ERX: f64 = 8.45062911510467529297e-01;
pub const ERF_EFX8: f64 = 1.02703333676410069053e+00;
/// P(z) and Q(z) of |x| < 0.84375 (Q's leading 1 implied).
pub const ERF_PP: [f64; 5] = [
    1.28379167095512558561e-01,
    -3.25042107247001499370e-01,
    -2.84817495755985104766e-02,
    -5.77027029648944159157e-03,
    -2.37630166566501626084e-05,
];
pub const ERF_QQ: [f64; 5] = [
    3.97917223959155352819e-01,
    6.50222499887672944485e-02,
    5.08130628187576562776e-03,
    1.32494738004321644526e-04,
    -3.96022827877536812320e-06,
];
/// P1(s), Q1(s) of 0.84375 ≤ |x| < 1.25.
pub const ERF_PA: [f64; 7] = [
    -2.36211856075265944077e-03,
    4.14856118683748331666e-01,
    -3.72207876035701323847e-01,
    3.18346619901161753674e-01,
    -1.10894694282396677476e-01,
    3.54783043256182359371e-02,
    -2.16637559486879084300e-03,
];
pub const ERF_QA: [f64; 6] = [
    1.06420880400844228286e-01,
    5.40397917702171048937e-01,
    7.18286544141962662868e-02,
    1.26171219808761642112e-01,
    1.36370839120290507362e-02,
    1.19844998467991074170e-02,
];
/// R(s), S(s) of 1.25 ≤ |x| < 1/0.35.
pub const ERF_RA: [f64; 8] = [
    -9.86494403484714822705e-03,
    -6.93858572707181764372e-01,
    -1.05586262253232909814e+01,
    -6.23753324503260060396e+01,
    -1.62396669462573470355e+02,
    -1.84605092906711035994e+02,
    -8.12874355063065934246e+01,
    -9.81432934416914548592e+00,
];
pub const ERF_SA: [f64; 8] = [
    1.96512716674392571292e+01,
    1.37657754143519042600e+02,
    4.34565877475229228821e+02,
    6.45387271733267880336e+02,
    4.29008140027567833386e+02,
    1.08635005541779435134e+02,
    6.57024977031928170135e+00,
    -6.04244152148580987438e-02,
];
/// R(s), S(s) of 1/0.35 ≤ |x| < 6.
pub const ERF_RB: [f64; 7] = [
    -9.86494292470009928597e-03,
    -7.99283237680523006574e-01,
    -1.77579549177547519889e+01,
    -1.60636384855821916062e+02,
    -6.37566443368389627722e+02,
    -1.02509513161107724954e+03,
    -4.83519191608651397019e+02,
];
pub const ERF_SB: [f64; 7] = [
    3.03380607434824582924e+01,
    3.25792512996573918826e+02,
    1.53672958608443695994e+03,
    3.19985821950859553908e+03,
    2.55305040643316442583e+03,
    4.74528541206955367215e+02,
    -2.24409524465858183362e+01,
];

/// The interval bounds (|x| below each takes the formula above it in the module docs).
pub const ERF_TINY: f64 = 3.725_290_298_461_914e-9; // 2^-28
pub const ERF_SMALL: f64 = 0.84375;
pub const ERF_ONE: f64 = 1.25;
/// fdlibm's 0x4006DB6D high word: ≈ 1/0.35.
pub const ERF_MID: f64 = 2.857_141_494_750_976_6;
pub const ERF_BIG: f64 = 6.0;

#[inline(always)]
fn sel(c: bool, a: f64, b: f64) -> f64 {
    if c {
        a
    } else {
        b
    }
}

/// erf x for f64 (within 1 ulp of the correctly rounded value over the tests' sweeps).
#[inline(always)]
pub fn erf_f64(x: f64) -> f64 {
    let ax = x.abs();
    // |x| < 0.84375.
    let z = x * x;
    let r = poly(&ERF_PP, z);
    let s = poly1(&ERF_QQ, z);
    let small = x + x * (r / s);
    let tiny = 0.125 * (8.0 * x + ERF_EFX8 * x);
    // 0.84375 ≤ |x| < 1.25.
    let s1 = ax - 1.0;
    let near_one = ERF_ERX + poly(&ERF_PA, s1) / poly1(&ERF_QA, s1);
    // 1.25 ≤ |x| < 6.
    let s2 = 1.0 / (ax * ax);
    let below_mid = ax < ERF_MID;
    let rr = sel(below_mid, poly(&ERF_RA, s2), poly(&ERF_RB, s2));
    let ss = sel(below_mid, poly1(&ERF_SA, s2), poly1(&ERF_SB, s2));
    let zc = f64::from_bits(ax.to_bits() & 0xFFFF_FFFF_0000_0000);
    let tail = exp_f64(-zc * zc - 0.5625) * exp_f64((zc - ax) * (zc + ax) + rr / ss) / ax;
    let far = 1.0 - tail;
    let magnitude = sel(ax < ERF_ONE, near_one, sel(ax < ERF_BIG, far, 1.0));
    let signed = sel(x < 0.0, -magnitude, magnitude);
    let y = sel(ax < ERF_TINY, tiny, sel(ax < ERF_SMALL, small, signed));
    sel(x.is_nan(), x, y)
}

/// erf x for f32: `erf_f64` of the widened argument, rounded once.
#[inline(always)]
pub fn erf_f32(x: f32) -> f32 {
    erf_f64(x as f64) as f32
}

/// `c[0] + t·(c[1] + t·(… + t·c[n−1]))`.
#[inline(always)]
fn poly(c: &[f64], t: f64) -> f64 {
    let mut acc = c[c.len() - 1];
    for &k in c[..c.len() - 1].iter().rev() {
        acc = acc * t + k;
    }
    acc
}

/// `1 + t·(c[0] + t·(… + t·c[n−1]))`: a polynomial with an implied leading 1.
#[inline(always)]
fn poly1(c: &[f64], t: f64) -> f64 {
    poly(c, t) * t + 1.0
}
