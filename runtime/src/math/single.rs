//! f32 transcendentals. Polynomial coefficients are the classic Cephes minimax sets
//! (S. L. Moshier), evaluated in Horner form: with fused multiply-adds in `exp`, `log`
//! and `tanh` (the polynomials the code generators share, `jit/src/lower/math.rs`), with
//! a rounded multiply and a rounded add in `sin`/`cos`.
// Coefficients are written as published (more digits than the type holds); the
// compiler rounds each to the nearest float, which is the intended value.
#![allow(clippy::excessive_precision)]

#[inline(always)]
fn sel(c: bool, a: f32, b: f32) -> f32 {
    if c {
        a
    } else {
        b
    }
}

#[inline(always)]
fn copysign(mag: f32, sign_of: f32) -> f32 {
    f32::from_bits((mag.to_bits() & 0x7fff_ffff) | (sign_of.to_bits() & 0x8000_0000))
}

#[inline(always)]
fn fabs(x: f32) -> f32 {
    f32::from_bits(x.to_bits() & 0x7fff_ffff)
}

/// 1.5·2^23: adding it rounds a float of magnitude < 2^22 to an integer held in the
/// low mantissa bits (round-to-nearest-even), the "magic number" trick.
const MAGIC: f32 = 12_582_912.0;

/// e^x. Cody–Waite reduction x = k·ln2 + r, |r| ≤ ln2/2, degree-7 polynomial, scaling
/// by 2^k in two steps so results down to the subnormal range round once.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    // Clamp (NaN passes through both comparisons unchanged).
    let xc = sel(x > 88.8, 88.8, sel(x < -104.0, -104.0, x));
    let (y, k) = exp_reduced_f32(xc);
    let k1 = k >> 1;
    let k2 = k.wrapping_sub(k1);
    let s1 = f32::from_bits((k1.wrapping_add(127) << 23) as u32);
    let s2 = f32::from_bits((k2.wrapping_add(127) << 23) as u32);
    y * s1 * s2
}

/// e^x for x in [0, 20] (or NaN): `exp_f32` with no clamp and one scaling (2^k, k ≤ 29,
/// is a normal float, so y·2^k is exact either way): its bits are `exp_f32`'s there.
#[inline(always)]
fn exp_core_f32(x: f32) -> f32 {
    let (y, k) = exp_reduced_f32(x);
    y * f32::from_bits((k.wrapping_add(127) << 23) as u32)
}

/// e^r·(the reduction's k): `(y, k)` with e^x = y·2^k, x already clamped.
#[inline(always)]
fn exp_reduced_f32(xc: f32) -> (f32, i32) {
    // k = round(x·log2 e), rounded once by the magic number's addition.
    let t = xc.mul_add(core::f32::consts::LOG2_E, MAGIC);
    let k = (t.to_bits() as i32).wrapping_sub(MAGIC.to_bits() as i32);
    let kf = t - MAGIC;
    // r = x − k·ln2 in two parts: k·ln2_hi is exact (k has at most 8 bits, ln2_hi 9).
    let r = kf.mul_add(-0.693_359_375, xc);
    let r = kf.mul_add(2.121_944_4e-4, r);
    let z = r * r;
    let p = 1.987_569_1e-4f32.mul_add(r, 1.398_199_9e-3);
    let p = p.mul_add(r, 8.333_452e-3);
    let p = p.mul_add(r, 4.166_579_6e-2);
    let p = p.mul_add(r, 1.666_666_5e-1);
    let p = p.mul_add(r, 5.000_000_1e-1);
    (p.mul_add(z, r) + 1.0, k)
}

/// ln x. x = m·2^e with m ∈ [√½, √2), ln(1+f) by a degree-9 polynomial, e·ln2 added in
/// two parts. Subnormal inputs are scaled by 2^23 first.
#[inline(always)]
pub fn log_f32(x: f32) -> f32 {
    let tiny = x < f32::MIN_POSITIVE;
    let xs = sel(tiny, x * 8_388_608.0, x);
    let bits = xs.to_bits() as i32;
    let e = ((bits >> 23) & 0xff) - 127 - if tiny { 23 } else { 0 };
    let m = f32::from_bits(((bits & 0x007f_ffff) | 0x3f80_0000) as u32);
    let big = m > core::f32::consts::SQRT_2;
    let m = sel(big, m * 0.5, m);
    let e = e + big as i32;
    let f = m - 1.0;
    let z = f * f;
    let p = 7.037_683_6e-2f32.mul_add(f, -1.151_461e-1);
    let p = p.mul_add(f, 1.167_699_9e-1);
    let p = p.mul_add(f, -1.242_014_1e-1);
    let p = p.mul_add(f, 1.424_932_3e-1);
    let p = p.mul_add(f, -1.666_805_8e-1);
    let p = p.mul_add(f, 2.000_071_4e-1);
    let p = p.mul_add(f, -2.499_999_4e-1);
    let p = p.mul_add(f, 3.333_333_1e-1);
    let ef = e as f32;
    let y = f * z * p;
    let y = ef.mul_add(-2.121_944_4e-4, y);
    // 0.5·z and e·ln2_hi (e has at most 8 bits, ln2_hi 9) are exact products.
    let y = (-0.5f32).mul_add(z, y);
    let r = f + y;
    let r = ef.mul_add(0.693_359_375, r);
    let r = sel(x == f32::INFINITY, f32::INFINITY, r);
    let r = sel(x == 0.0, f32::NEG_INFINITY, r);
    sel(x < 0.0 || x.is_nan(), f32::NAN, r)
}

/// tanh x: odd polynomial for |x| < 0.625, else 1 − 2/(e^{2|x|} + 1) with x's sign.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    let ax = fabs(x);
    let z = x * x;
    let p = (-5.704_988_7e-3f32).mul_add(z, 2.063_908_9e-2);
    let p = p.mul_add(z, -5.373_971_6e-2);
    let p = p.mul_add(z, 1.333_144_2e-1);
    let p = p.mul_add(z, -3.333_328_2e-1);
    let small = (p * z).mul_add(x, x);
    // Past 2|x| = 20, 2/(e + 1) < 2^-25 and the result rounds to ±1 anyway: the
    // clamp keeps e^{2|x|} in the range of one scaling (NaN passes through).
    let a2 = ax + ax;
    let e = exp_core_f32(sel(a2 > 20.0, 20.0, a2));
    let big = copysign(1.0 - 2.0 / (e + 1.0), x);
    sel(ax < 0.625, small, big)
}

/// σ(x): with e = e^{−|x|} (never overflows), n/(1+e) where n = 1 for x ≥ 0 and
/// n = e for x < 0. The rounding error of 1 + e is recovered exactly (Fast2Sum, its
/// negation −c = (d − 1) − e) and corrected for: q − q·c/d.
#[inline(always)]
pub fn sigmoid_f32(x: f32) -> f32 {
    let e = exp_f32(-fabs(x));
    let d = 1.0 + e;
    let neg_c = (d - 1.0) - e;
    let q = sel(x < 0.0, e, 1.0) / d;
    // The correction q·c/d needs 1/d only roughly (c/d < 2^-24): it is q for x ≥ 0 and
    // 1 − q (= 1 − e/d) for x < 0 — one division instead of two.
    (q * neg_c).mul_add(sel(x < 0.0, 1.0 - q, q), q)
}

/// ln(1 + e^x) = max(x, 0) + log1p(e^{−|x|}), with log1p(u) = ln w − ((w − 1) − u)/w,
/// w = 1 + u (the compensated form, exact enough for tiny u).
#[inline(always)]
pub fn softplus_f32(x: f32) -> f32 {
    let u = exp_f32(-fabs(x));
    let w = 1.0 + u;
    let l = log_f32(w) - ((w - 1.0) - u) / w;
    let l = sel(w == 1.0, u, l);
    sel(x > 0.0, x, 0.0) + l
}

struct Reduced {
    r: f32,
    /// Octant index j ∈ {0, 2, 4, 6} (even after rounding up).
    j: i32,
}

/// Reduction by π/4, carried out in f64 (Cephes' three-part f64 π/4) so that results
/// near the zeros of sin/cos keep their relative accuracy: q = ⌊|x|·4/π⌋ rounded up to
/// even, r = |x| − q·π/4 rounded once to f32, octant j = q mod 8 ∈ {0, 2, 4, 6}.
/// Branch-free; exact enough below `LARGE_TRIG_ARG_F32` (2^29).
#[inline(always)]
fn reduce_quarter_pi(ax: f32) -> Reduced {
    let (r, j) = super::double::reduce_quarter_pi(ax as f64);
    Reduced { r: r as f32, j: j as i32 }
}

/// Either reduction: Payne–Hanek (`reduce::reduce_large`) from `LARGE_TRIG_ARG_F32` on.
#[inline(always)]
fn reduce_any(ax: f32) -> Reduced {
    let (r, j) = super::double::reduce_any(ax as f64, super::reduce::LARGE_TRIG_ARG_F32);
    Reduced { r: r as f32, j: j as i32 }
}
/// The coefficients of `sin_poly` and `cos_poly` (public for code generators that
/// emit the same polynomials: the GPU's `sin`/`cos`).
pub const SIN_POLY: [f32; 3] = [-1.951_529_6e-4, 8.332_161e-3, -1.666_665_5e-1];
pub const COS_POLY: [f32; 3] = [2.443_315_7e-5, -1.388_731_6e-3, 4.166_664_6e-2];

#[inline(always)]
fn sin_poly(r: f32, z: f32) -> f32 {
    let p = SIN_POLY[0] * z + SIN_POLY[1];
    let p = p * z + SIN_POLY[2];
    p * z * r + r
}

#[inline(always)]
fn cos_poly(z: f32) -> f32 {
    let p = COS_POLY[0] * z + COS_POLY[1];
    let p = p * z + COS_POLY[2];
    p * z * z - 0.5 * z + 1.0
}

#[inline(always)]
fn sin_of(x: f32, Reduced { r, j }: Reduced) -> f32 {
    let z = r * r;
    let use_cos = (j & 2) != 0;
    let y = sel(use_cos, cos_poly(z), sin_poly(r, z));
    let negate = (j & 4) != 0;
    let y = sel(negate, -y, y);
    let y = sel(x < 0.0, -y, y);
    sel(x.is_finite(), y, f32::NAN)
}

#[inline(always)]
fn cos_of(x: f32, Reduced { r, j }: Reduced) -> f32 {
    let z = r * r;
    let use_sin = (j & 2) != 0;
    let y = sel(use_sin, sin_poly(r, z), cos_poly(z));
    // Sign: negative in octants 2..5 (j ∈ {2, 4} after the even rounding).
    let negate = j == 2 || j == 4;
    let y = sel(negate, -y, y);
    sel(x.is_finite(), y, f32::NAN)
}

/// sin x (within 2 ulp everywhere).
#[inline(always)]
pub fn sin_f32(x: f32) -> f32 {
    sin_of(x, reduce_any(fabs(x)))
}

/// cos x (within 2 ulp everywhere).
#[inline(always)]
pub fn cos_f32(x: f32) -> f32 {
    cos_of(x, reduce_any(fabs(x)))
}

/// Whether `sin_f32`/`cos_f32` of `x` take the exact reduction: finite |x| ≥
/// `LARGE_TRIG_ARG_F32` (the short reduction, carried out in f64, is exact enough for an
/// f32 result everywhere below, near multiples of π/2 too).
#[inline(always)]
pub(super) fn trig_needs_exact_f32(x: f32, _near: f32) -> bool {
    let ax = fabs(x);
    ax >= super::reduce::LARGE_TRIG_ARG_F32 as f32 && ax < f32::INFINITY
}

/// `sin_f32` for |x| < `LARGE_TRIG_ARG_F32` (or not finite): branch-free, so loops vectorise.
#[inline(always)]
pub fn sin_f32_near(x: f32) -> f32 {
    sin_of(x, reduce_quarter_pi(fabs(x)))
}

/// `cos_f32` for |x| < `LARGE_TRIG_ARG_F32` (or not finite).
#[inline(always)]
pub fn cos_f32_near(x: f32) -> f32 {
    cos_of(x, reduce_quarter_pi(fabs(x)))
}

/// x^y for f32, computed in f64 (exp(y·ln|x|) with tensorjit's f64 exp/log) and rounded
/// once, with IEEE `pow`'s special cases.
#[inline(always)]
pub fn pow_f32(x: f32, y: f32) -> f32 {
    super::double::pow_f64(x as f64, y as f64) as f32
}
