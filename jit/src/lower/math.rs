//! The runtime's f32 transcendentals (`tensorjit_runtime::math`, single precision),
//! written once over [`Lower`] with exactly the runtime's operation sequence — same
//! constants, same association, a fused multiply-add ([`Lower::fma`]) exactly where the
//! runtime has a `mul_add` — so compiled kernels give the eager kernels' bits, on the
//! CPU and on the GPU.

// Coefficients are written as in math/single.rs (more digits than f32 holds); the
// compiler rounds them the same way there and here.
#![allow(clippy::excessive_precision)]

use super::{Cc, Lower};

const MAGIC: f32 = 12_582_912.0;

/// Horner's rule `((c0·r + c1)·r + c2)…`, each step one fused multiply-add (the
/// runtime's `mul_add`).
fn horner<L: Lower>(l: &mut L, r: L::V, first: f32, rest: &[f32]) -> L::V {
    let mut p = l.fconst(first);
    for &c in rest {
        let k = l.fconst(c);
        p = l.fma(p, r, k);
    }
    p
}

pub(super) fn exp<L: Lower>(l: &mut L, x: L::V) -> L::V {
    exp_clamped(l, x, true)
}

/// `exp` with the runtime's clamp to [−104, 88.8] (NaN passes); `high: false` leaves out
/// the upper clamp for an argument never above 0 (`−|x|` in `sigmoid` and `softplus`),
/// where it never fires — the same bits with two operations fewer.
fn exp_clamped<L: Lower>(l: &mut L, x: L::V, high: bool) -> L::V {
    let lo = l.fconst(-104.0);
    let below = l.fcmp(Cc::Lt, x, lo);
    let mut xc = l.sel(below, lo, x);
    if high {
        let hi = l.fconst(88.8);
        let above = l.fcmp(Cc::Gt, x, hi);
        xc = l.sel(above, hi, xc);
    }
    exp_core(l, xc, true)
}

/// `exp` after its clamp: reduction, polynomial, and the scaling by 2^k in two steps
/// (`split`, any k of the clamped range) or one (k ≤ 29: `tanh`'s argument).
fn exp_core<L: Lower>(l: &mut L, xc: L::V, split: bool) -> L::V {
    let log2e = l.fconst(core::f32::consts::LOG2_E);
    let magic = l.fconst(MAGIC);
    let t = l.fma(xc, log2e, magic);
    let tb = l.bits_of(t);
    let mb = l.iconst(MAGIC.to_bits() as i32);
    let k = l.isub(tb, mb);
    let kf = l.fsub(t, magic);
    let ln2_hi = l.fconst(-0.693_359_375);
    let r = l.fma(kf, ln2_hi, xc);
    let ln2_lo = l.fconst(2.121_944_4e-4);
    let r = l.fma(kf, ln2_lo, r);
    let z = l.fmul(r, r);
    let p =
        horner(l, r, 1.987_569_1e-4, &[1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5.000_000_1e-1]);
    let y = l.fma(p, z, r);
    let one = l.fconst(1.0);
    let y = l.fadd(y, one);
    let bias = l.iconst(127);
    if !split {
        let s = l.iadd(k, bias);
        let s = l.shl(s, 23);
        let s = l.float_of(s);
        return l.fmul(y, s);
    }
    let k1 = l.sshr(k, 1);
    let k2 = l.isub(k, k1);
    let s1 = l.iadd(k1, bias);
    let s1 = l.shl(s1, 23);
    let s1 = l.float_of(s1);
    let s2 = l.iadd(k2, bias);
    let s2 = l.shl(s2, 23);
    let s2 = l.float_of(s2);
    let y = l.fmul(y, s1);
    l.fmul(y, s2)
}

pub(super) fn log<L: Lower>(l: &mut L, x: L::V) -> L::V {
    let minpos = l.fconst(f32::MIN_POSITIVE);
    let tiny = l.fcmp(Cc::Lt, x, minpos);
    let scale = l.fconst(8_388_608.0);
    let xsc = l.fmul(x, scale);
    let xs = l.sel(tiny, xsc, x);
    let bits = l.bits_of(xs);
    let sh = l.sshr(bits, 23);
    let ff = l.iconst(0xff);
    let e = l.band(sh, ff);
    let b127 = l.iconst(127);
    let e = l.isub(e, b127);
    let (t23, t0) = (l.iconst(23), l.iconst(0));
    let adj = l.sel_int(tiny, t23, t0);
    let e = l.isub(e, adj);
    let mm = l.iconst(0x007f_ffff);
    let mb = l.band(bits, mm);
    let one_bits = l.iconst(0x3f80_0000);
    let mb = l.bor(mb, one_bits);
    let m = l.float_of(mb);
    let sqrt2 = l.fconst(core::f32::consts::SQRT_2);
    let big = l.fcmp(Cc::Gt, m, sqrt2);
    let half = l.fconst(0.5);
    let mh = l.fmul(m, half);
    let m = l.sel(big, mh, m);
    let (i1, i0) = (l.iconst(1), l.iconst(0));
    let inc = l.sel_int(big, i1, i0);
    let e = l.iadd(e, inc);
    let one = l.fconst(1.0);
    let f = l.fsub(m, one);
    let z = l.fmul(f, f);
    let p = horner(
        l,
        f,
        7.037_683_6e-2,
        &[
            -1.151_461e-1,
            1.167_699_9e-1,
            -1.242_014_1e-1,
            1.424_932_3e-1,
            -1.666_805_8e-1,
            2.000_071_4e-1,
            -2.499_999_4e-1,
            3.333_333_1e-1,
        ],
    );
    let ef = l.int_to_float(e);
    let y = l.fmul(f, z);
    let y = l.fmul(y, p);
    let c = l.fconst(-2.121_944_4e-4);
    let y = l.fma(ef, c, y);
    let minus_half = l.fconst(-0.5);
    let y = l.fma(minus_half, z, y);
    let r = l.fadd(f, y);
    let c = l.fconst(0.693_359_375);
    let r = l.fma(ef, c, r);
    let inf = l.fconst(f32::INFINITY);
    let is_inf = l.fcmp(Cc::Eq, x, inf);
    let r = l.sel(is_inf, inf, r);
    let zero = l.fconst(0.0);
    let is_zero = l.fcmp(Cc::Eq, x, zero);
    let ninf = l.fconst(f32::NEG_INFINITY);
    let r = l.sel(is_zero, ninf, r);
    let neg = l.fcmp(Cc::Lt, x, zero);
    let nan = l.fcmp(Cc::Unordered, x, x);
    let bad = l.mask_or(neg, nan);
    let qnan = l.fconst(f32::NAN);
    l.sel(bad, qnan, r)
}

pub(super) fn tanh<L: Lower>(l: &mut L, x: L::V) -> L::V {
    let ax = l.fabs(x);
    let z = l.fmul(x, x);
    let p = horner(l, z, -5.704_988_7e-3, &[2.063_908_9e-2, -5.373_971_6e-2, 1.333_144_2e-1, -3.333_328_2e-1]);
    let s = l.fmul(p, z);
    let small = l.fma(s, x, x);
    let a2 = l.fadd(ax, ax);
    let twenty = l.fconst(20.0);
    let far = l.fcmp(Cc::Gt, a2, twenty);
    let a2 = l.sel(far, twenty, a2);
    let e = exp_core(l, a2, false);
    let one = l.fconst(1.0);
    let two = l.fconst(2.0);
    let d = l.fadd(e, one);
    let q = l.fdiv_moderate(two, d);
    let m = l.fsub(one, q);
    let big = l.copysign(m, x);
    let lim = l.fconst(0.625);
    let is_small = l.fcmp(Cc::Lt, ax, lim);
    l.sel(is_small, small, big)
}

pub(super) fn sigmoid<L: Lower>(l: &mut L, x: L::V) -> L::V {
    let ax = l.fabs(x);
    let nax = l.fneg(ax);
    let e = exp_clamped(l, nax, false);
    let one = l.fconst(1.0);
    let d = l.fadd(one, e);
    let neg_c = l.fsub(d, one);
    let neg_c = l.fsub(neg_c, e);
    let zero = l.fconst(0.0);
    let neg = l.fcmp(Cc::Lt, x, zero);
    let n = l.sel(neg, e, one);
    let q = l.fdiv_moderate(n, d);
    let t = l.fmul(q, neg_c);
    let omq = l.fsub(one, q);
    let r = l.sel(neg, omq, q);
    l.fma(t, r, q)
}

pub(super) fn softplus<L: Lower>(l: &mut L, x: L::V) -> L::V {
    let ax = l.fabs(x);
    let nax = l.fneg(ax);
    let u = exp_clamped(l, nax, false);
    let one = l.fconst(1.0);
    let w = l.fadd(one, u);
    let lw = log(l, w);
    let t = l.fsub(w, one);
    let t = l.fsub(t, u);
    let t = l.fdiv(t, w);
    let r = l.fsub(lw, t);
    let w_is_one = l.fcmp(Cc::Eq, w, one);
    let r = l.sel(w_is_one, u, r);
    let zero = l.fconst(0.0);
    let pos = l.fcmp(Cc::Gt, x, zero);
    let xp = l.sel(pos, x, zero);
    l.fadd(xp, r)
}
