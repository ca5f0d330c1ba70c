//! The runtime's `erf` (`tensorjit_runtime::math`'s `erf.rs`: fdlibm's method, branch-free,
//! with tensorjit's `exp`) as PTX, operation for operation: every interval's formula,
//! then selects — the CPU's bits for f64, and for f32 (computed in f64, rounded once).

use tensorjit_runtime::math::f64_constants::{
    ERF_BIG, ERF_EFX8, ERF_ERX, ERF_MID, ERF_ONE, ERF_PA, ERF_PP, ERF_QA, ERF_QQ, ERF_RA, ERF_RB, ERF_SA, ERF_SB,
    ERF_SMALL, ERF_TINY,
};

use super::double::F64;
use super::{Emitter, Reg};
use crate::lower::{Cc, Lower};

/// The runtime's `poly`: `c[0] + t·(c[1] + t·(…))`, a rounded multiply then add per step.
fn poly(d: &mut F64<'_>, c: &[f64], t: Reg) -> Reg {
    let mut acc = d.c(c[c.len() - 1]);
    for &k in c[..c.len() - 1].iter().rev() {
        let m = d.mul(acc, t);
        acc = d.addc(m, k);
    }
    acc
}

/// The runtime's `poly1`: `1 + t·poly(c, t)`.
fn poly1(d: &mut F64<'_>, c: &[f64], t: Reg) -> Reg {
    let p = poly(d, c, t);
    let m = d.mul(p, t);
    d.addc(m, 1.0)
}

/// The runtime's `erf_f64` of the f64 register `x`.
pub(super) fn erf_f64(d: &mut F64<'_>, x: Reg) -> Reg {
    let ax = d.fabs(x);
    // |x| < 0.84375: x + x·(P/Q); tiny: 0.125·(8x + EFX8·x).
    let z = d.mul(x, x);
    let (r, s) = (poly(d, &ERF_PP, z), poly1(d, &ERF_QQ, z));
    let q = d.div(r, s);
    let xq = d.mul(x, q);
    let small = d.add(x, xq);
    let (x8, xe) = (d.mulc(x, 8.0), d.mulc(x, ERF_EFX8));
    let sum = d.add(x8, xe);
    let tiny = d.mulc(sum, 0.125);
    // |x| < 1.25: erx + P1/Q1 of |x| − 1.
    let one = d.c(1.0);
    let s1 = d.sub(ax, one);
    let (p1, q1) = (poly(d, &ERF_PA, s1), poly1(d, &ERF_QA, s1));
    let pq = d.div(p1, q1);
    let near_one = d.addc(pq, ERF_ERX);
    // |x| < 6: 1 − e^(−z² − 0.5625)·e^((z − |x|)(z + |x|) + R/S) / |x|.
    let axax = d.mul(ax, ax);
    let s2 = d.div(one, axax);
    let below_mid = d.cmpc("lt", ax, ERF_MID);
    let (ra, rb) = (poly(d, &ERF_RA, s2), poly(d, &ERF_RB, s2));
    let rr = d.sel(below_mid, ra, rb);
    let (sa, sb) = (poly1(d, &ERF_SA, s2), poly1(d, &ERF_SB, s2));
    let ss = d.sel(below_mid, sa, sb);
    let zc = d.int("and.b64", ax, "0xFFFFFFFF00000000");
    let zz = d.mul(zc, zc);
    let nzz = d.neg(zz);
    let a1 = d.addc(nzz, -0.5625);
    let e1 = d.exp(a1);
    let (zm, zp) = (d.sub(zc, ax), d.add(zc, ax));
    let zmp = d.mul(zm, zp);
    let rs = d.div(rr, ss);
    let a2 = d.add(zmp, rs);
    let e2 = d.exp(a2);
    let e12 = d.mul(e1, e2);
    let tail = d.div(e12, ax);
    let far = d.sub(one, tail);
    // The interval's value, its sign, NaN kept.
    let below_big = d.cmpc("lt", ax, ERF_BIG);
    let magnitude = d.sel(below_big, far, one);
    let below_one = d.cmpc("lt", ax, ERF_ONE);
    let magnitude = d.sel(below_one, near_one, magnitude);
    let negative = d.cmpc("lt", x, 0.0);
    let flipped = d.neg(magnitude);
    let signed = d.sel(negative, flipped, magnitude);
    let below_small = d.cmpc("lt", ax, ERF_SMALL);
    let y = d.sel(below_small, small, signed);
    let below_tiny = d.cmpc("lt", ax, ERF_TINY);
    let y = d.sel(below_tiny, tiny, y);
    let nan = d.cmp("nan", x, x);
    d.sel(nan, x, y)
}

/// The runtime's `erf_f32` of the f32 register `x`: in f64, rounded once; a NaN is the
/// argument itself (as the CPU's widening and narrowing leave a quiet NaN).
pub(super) fn erf_f32(e: &mut Emitter, x: Reg) -> Reg {
    let wide = e.rd();
    e.ins(format_args!("cvt.f64.f32 {wide}, {x}"));
    let y = erf_f64(&mut F64(e), wide);
    let narrow = e.f();
    e.ins(format_args!("cvt.rn.f32.f64 {narrow}, {y}"));
    let nan = e.fcmp(Cc::Unordered, x, x);
    e.sel(nan, x, narrow)
}
