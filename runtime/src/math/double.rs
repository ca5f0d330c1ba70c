//! f64 transcendentals: the same structure as the f32 ones with longer polynomials
//! (Taylor/atanh series where the terms are exact reciprocals, Cephes' rational tanh).
//! The `exp` and `log` series are evaluated with fused multiply-adds (`mul_add`, as the
//! GPU's `fma.rn.f64`); the rest with rounded multiplies and adds.
// Coefficients are written as published (more digits than the type holds); the
// compiler rounds each to the nearest float, which is the intended value.
#![allow(clippy::excessive_precision)]

use super::reduce::{reduce_large, LARGE_TRIG_ARG_F64};

#[inline(always)]
fn sel(c: bool, a: f64, b: f64) -> f64 {
    if c {
        a
    } else {
        b
    }
}

#[inline(always)]
fn fabs(x: f64) -> f64 {
    f64::from_bits(x.to_bits() & 0x7fff_ffff_ffff_ffff)
}

#[inline(always)]
fn copysign(mag: f64, sign_of: f64) -> f64 {
    f64::from_bits((mag.to_bits() & 0x7fff_ffff_ffff_ffff) | (sign_of.to_bits() & 0x8000_0000_0000_0000))
}

/// 1.5·2^52, the f64 magic rounding constant.
pub const MAGIC: f64 = 6_755_399_441_055_744.0;
/// ln 2 split so that k·LN2_HI is exact for |k| < 2^20 (fdlibm's split).
pub const LN2_HI: f64 = 6.931_471_803_691_238_164_9e-1;
pub const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;

/// 1/n! for n = 2..=13, the Taylor coefficients of e^r − 1 − r.
pub const INV_FACT: [f64; 12] = {
    let mut c = [0.0; 12];
    let mut f = 1.0;
    let mut n = 2;
    while n <= 13 {
        f *= n as f64;
        c[n - 2] = 1.0 / f;
        n += 1;
    }
    c
};

/// e^x: x = k·ln2 + r, |r| ≤ ln2/2, Taylor series to r^13, 2^k applied in two steps.
#[inline(always)]
pub fn exp_f64(x: f64) -> f64 {
    let xc = sel(x > 709.9, 709.9, sel(x < -746.0, -746.0, x));
    let t = xc * core::f64::consts::LOG2_E + MAGIC;
    let k = (t.to_bits() as i64).wrapping_sub(MAGIC.to_bits() as i64);
    let kf = t - MAGIC;
    let r = (xc - kf * LN2_HI) - kf * LN2_LO;
    let mut p = INV_FACT[11];
    let mut i = 11;
    while i > 0 {
        i -= 1;
        p = p.mul_add(r, INV_FACT[i]);
    }
    let y = p * (r * r) + r + 1.0;
    let k1 = k >> 1;
    let k2 = k.wrapping_sub(k1);
    let s1 = f64::from_bits((k1.wrapping_add(1023) << 52) as u64);
    let s2 = f64::from_bits((k2.wrapping_add(1023) << 52) as u64);
    y * s1 * s2
}

/// 2/(2n+1) for n = 1..=11: the series of 2·atanh(s) − 2s, divided by s³.
pub const ATANH_COEF: [f64; 11] = {
    let mut c = [0.0; 11];
    let mut n = 1;
    while n <= 11 {
        c[n - 1] = 2.0 / (2 * n + 1) as f64;
        n += 1;
    }
    c
};

/// ln x: x = m·2^e, m ∈ [√½, √2), f = m − 1, s = f/(2+f),
/// ln(1+f) = f − (hfsq − s·(hfsq + R)) with R = Σ 2s^{2n}/(2n+1) (fdlibm's arrangement).
#[inline(always)]
pub fn log_f64(x: f64) -> f64 {
    let tiny = x < f64::MIN_POSITIVE;
    let xs = sel(tiny, x * 18_014_398_509_481_984.0, x); // 2^54
    let bits = xs.to_bits() as i64;
    let e = ((bits >> 52) & 0x7ff) - 1023 - if tiny { 54 } else { 0 };
    let m = f64::from_bits(((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000) as u64);
    let big = m > core::f64::consts::SQRT_2;
    let m = sel(big, m * 0.5, m);
    let e = e + big as i64;
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let mut r = ATANH_COEF[10];
    let mut i = 10;
    while i > 0 {
        i -= 1;
        r = r.mul_add(z, ATANH_COEF[i]);
    }
    let r = r * z;
    let hfsq = 0.5 * f * f;
    let ef = e as f64;
    let y = ef * LN2_HI + (f - (hfsq - (s * (hfsq + r) + ef * LN2_LO)));
    let y = sel(x == f64::INFINITY, f64::INFINITY, y);
    let y = sel(x == 0.0, f64::NEG_INFINITY, y);
    sel(x < 0.0 || x.is_nan(), f64::NAN, y)
}

/// Cephes' tanh numerator `(P0·z − P1)·z − P2` and denominator `((z + Q0)·z + Q1)·z + Q2`.
pub const TANH_P: [f64; 3] = [-9.643_991_794_250_523e-1, 9.928_772_310_019_186e1, 1.614_687_684_417_084_5e3];
pub const TANH_Q: [f64; 3] = [1.128_116_784_916_329_3e2, 2.235_488_390_601_004_6e3, 4.844_063_053_251_255e3];

/// tanh x: Cephes' rational approximation for |x| < 0.625, else 1 − 2/(e^{2|x|} + 1).
#[inline(always)]
pub fn tanh_f64(x: f64) -> f64 {
    let ax = fabs(x);
    let z = x * x;
    let p = (TANH_P[0] * z - TANH_P[1]) * z - TANH_P[2];
    let q = ((z + TANH_Q[0]) * z + TANH_Q[1]) * z + TANH_Q[2];
    let small = x + x * z * (p / q);
    let e = exp_f64(ax + ax);
    let big = copysign(1.0 - 2.0 / (e + 1.0), x);
    sel(ax < 0.625, small, big)
}

/// σ(x), the same sequence as [`super::sigmoid_f32`] in f64.
#[inline(always)]
pub fn sigmoid_f64(x: f64) -> f64 {
    let e = exp_f64(-fabs(x));
    let d = 1.0 + e;
    let c = (1.0 - d) + e;
    let q = sel(x < 0.0, e, 1.0) / d;
    q - q * c / d
}

/// ln(1 + e^x) = max(x, 0) + log1p(e^{−|x|}) (compensated log1p, as for f32).
#[inline(always)]
pub fn softplus_f64(x: f64) -> f64 {
    let u = exp_f64(-fabs(x));
    let w = 1.0 + u;
    let l = log_f64(w) - ((w - 1.0) - u) / w;
    let l = sel(w == 1.0, u, l);
    sel(x > 0.0, x, 0.0) + l
}

/// (−1)^n/(2n+1)! for n = 1..=8 (sin) and (−1)^n/(2n)! for n = 1..=9 (cos).
pub const SIN_COEF: [f64; 8] = {
    let mut c = [0.0; 8];
    let mut f = 1.0;
    let mut k = 2;
    while k <= 17 {
        f *= k as f64;
        if k % 2 == 1 {
            let n = (k - 1) / 2;
            c[n - 1] = if n % 2 == 1 { -1.0 / f } else { 1.0 / f };
        }
        k += 1;
    }
    c
};
pub const COS_COEF: [f64; 9] = {
    let mut c = [0.0; 9];
    let mut f = 1.0;
    let mut k = 1;
    while k <= 18 {
        f *= k as f64;
        if k % 2 == 0 {
            let n = k / 2;
            c[n - 1] = if n % 2 == 1 { -1.0 / f } else { 1.0 / f };
        }
        k += 1;
    }
    c
};

#[inline(always)]
fn sin_poly(r: f64, z: f64) -> f64 {
    let mut p = SIN_COEF[7];
    let mut i = 7;
    while i > 0 {
        i -= 1;
        p = p * z + SIN_COEF[i];
    }
    p * z * r + r
}

#[inline(always)]
fn cos_poly(z: f64) -> f64 {
    let mut p = COS_COEF[8];
    let mut i = 8;
    while i > 1 {
        i -= 1;
        p = p * z + COS_COEF[i];
    }
    // 1 − z/2 + z²·(…)
    p * z * z - 0.5 * z + 1.0
}

/// π/4 in three parts (Cephes), for the reduction of `sin`/`cos` arguments.
pub const PIO4_PARTS: [f64; 3] = [7.853_981_256_484_985e-1, 3.774_894_707_930_798e-8, 2.695_151_429_079_059_5e-15];

/// π/4 − r reduction with Cephes' three-part π/4; returns (r, octant ∈ {0,2,4,6}).
#[inline(always)]
pub(super) fn reduce_quarter_pi(ax: f64) -> (f64, i64) {
    let q = (ax * core::f64::consts::FRAC_2_PI * 2.0) as i64;
    let q = q.wrapping_add(q & 1);
    let qf = q as f64;
    let [c1, c2, c3] = PIO4_PARTS;
    let r = ((ax - qf * c1) - qf * c2) - qf * c3;
    // Past 2^53 the reduction means nothing; keep r in range so results stay in [−1, 1].
    let pio4 = core::f64::consts::FRAC_PI_4;
    (sel(r > pio4, pio4, sel(r < -pio4, -pio4, r)), q & 7)
}

/// r and octant of |x|: the short reduction below `large`, Payne–Hanek from it on (and
/// for ±∞, whose result is replaced by NaN). The f32 `sin`/`cos` reduce with it; the f64
/// ones also check their result (`trig_needs_exact_f64`).
#[inline(always)]
pub(super) fn reduce_any(ax: f64, large: f64) -> (f64, i64) {
    if ax >= large {
        reduce_large(ax)
    } else {
        reduce_quarter_pi(ax)
    }
}

#[inline(always)]
fn sin_of(x: f64, (r, j): (f64, i64)) -> f64 {
    let z = r * r;
    let y = sel((j & 2) != 0, cos_poly(z), sin_poly(r, z));
    let y = sel((j & 4) != 0, -y, y);
    let y = sel(x < 0.0, -y, y);
    sel(x.is_finite(), y, f64::NAN)
}

#[inline(always)]
fn cos_of(x: f64, (r, j): (f64, i64)) -> f64 {
    let z = r * r;
    let y = sel((j & 2) != 0, sin_poly(r, z), cos_poly(z));
    let y = sel(j == 2 || j == 4, -y, y);
    sel(x.is_finite(), y, f64::NAN)
}

/// sin x, within 2 ulp everywhere (1.3 ulp of the correctly rounded value measured over
/// random magnitudes up to 2^1024 and at the doubles nearest multiples of π/2 below
/// 2^20; glibc itself is 8 ulp off at the hardest case, 6381956970095103·2^797).
#[inline(always)]
pub fn sin_f64(x: f64) -> f64 {
    let y = sin_f64_near(x);
    if trig_needs_exact_f64(x, y) {
        sin_of(x, reduce_large(fabs(x)))
    } else {
        y
    }
}

/// cos x (as `sin_f64`).
#[inline(always)]
pub fn cos_f64(x: f64) -> f64 {
    let y = cos_f64_near(x);
    if trig_needs_exact_f64(x, y) {
        cos_of(x, reduce_large(fabs(x)))
    } else {
        y
    }
}

/// Whether `sin_f64`/`cos_f64` of `x` redo `y`, the short reduction's result
/// (`*_f64_near`), with the exact one: from |x| = [`LARGE_TRIG_ARG_F64`] on (finite),
/// and where |y| < |x|·[`SMALL_TRIG_RESULT_F64`] — x so near a multiple of π/2 that the
/// short reduction's absolute error (≤ ~2^-87 below 2^20: the rounding of q·π/4's last
/// part) would be more than 2^-47 of the result (up to 7·10^6 ulp at x = 642615.9188844458
/// before). Such x are rare (about |x|·2^-40 of them): the branch is cold.
#[inline(always)]
pub(super) fn trig_needs_exact_f64(x: f64, y: f64) -> bool {
    let ax = fabs(x);
    (LARGE_TRIG_ARG_F64..f64::INFINITY).contains(&ax) || fabs(y) < ax * SMALL_TRIG_RESULT_F64
}

/// 2^-40: `sin_f64` and `cos_f64` redo results smaller than |x| times this (`trig_needs_exact_f64`).
pub const SMALL_TRIG_RESULT_F64: f64 = 9.094_947_017_729_282e-13;

/// `sin_f64` where `trig_needs_exact_f64` is false (everything but the rare arguments it
/// names): branch-free, so loops vectorise.
#[inline(always)]
pub fn sin_f64_near(x: f64) -> f64 {
    sin_of(x, reduce_quarter_pi(fabs(x)))
}

/// `cos_f64` where `trig_needs_exact_f64` is false.
#[inline(always)]
pub fn cos_f64_near(x: f64) -> f64 {
    cos_of(x, reduce_quarter_pi(fabs(x)))
}

/// x^y = e^{y·ln|x|} with the special cases of IEEE 754 `pow` (C99 Annex F): y = 0 → 1,
/// x = 1 → 1, (−1)^±∞ = 1, finite negative x needs an integer y (else NaN), signed zeros
/// and infinities. Relative error ≈ |y·ln x|·2^-52 (no extra-precise log). Branch-free
/// (the special cases selected last, in priority order, as the GPU's `pow` does), so loops
/// vectorise.
#[inline(always)]
pub fn pow_f64(x: f64, y: f64) -> f64 {
    let (ax, ay) = (fabs(x), fabs(y));
    let general = exp_f64(y * log_f64(ax));
    let y_pos = y > 0.0;
    let mag = sel(ax == f64::INFINITY, sel(y_pos, f64::INFINITY, 0.0), general);
    let mag = sel(x == 0.0, sel(y_pos, 0.0, f64::INFINITY), mag);
    let y_int = y.floor() == y;
    let odd = y_int && ay < 9.007_199_254_740_992e15 && (y as i64) & 1 == 1;
    let r = sel(x.is_sign_negative() && odd, -mag, mag);
    let r = sel(x < 0.0 && ax < f64::INFINITY && !y_int && ay < f64::INFINITY, f64::NAN, r);
    let r = sel(x == -1.0 && ay == f64::INFINITY, 1.0, r);
    let r = sel(x.is_nan() || y.is_nan(), f64::NAN, r);
    sel(y == 0.0 || x == 1.0, 1.0, r)
}
