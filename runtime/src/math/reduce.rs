//! Payne–Hanek reduction of large `sin`/`cos` arguments: |x| = n·π/2 + r with the bits
//! of 2/π, exact for every finite f64 (and so every f32).
//!
//! The short reduction (`double::reduce_quarter_pi`, three-part π/4) loses its integer
//! products' exactness once the quotient passes 2^30, and then the result is noise
//! (sin(1e10) was off in the 6th digit, sin(3e38) any value in [−1, 1]). Arguments from
//! [`LARGE_TRIG_ARG_F64`] (f32: [`LARGE_TRIG_ARG_F32`]) on take this path instead, as
//! glibc, SLEEF (PyTorch), Eigen (TensorFlow) and XLA (JAX) do. It is written with the
//! operations PTX has (64-bit integer products and carries, shifts that give 0 from a
//! count of 64, `clz`, exact integer → f64 conversions, one fused multiply-add), so the
//! GPU's renderer emits the same sequence and gets the same bits
//! (`tensorjit_jit::ptx`'s `trig_reduce.rs`).

/// The bits of 2/π after the binary point, 64 per word, most significant first, behind
/// one zero word (so a window may start up to 64 bits before the point). 19 words of
/// 2/π cover the largest f64: its window ends at bit 1161.
///
/// Generated with Python integers, π from Machin's formula to 1464 bits:
/// `(2 << (1400 + 64 + 64 * 19)) // pi_scaled`, split into 64-bit words.
pub const TWO_OVER_PI_BITS: [u64; 20] = [
    0,
    0xA2F9_836E_4E44_1529,
    0xFC27_57D1_F534_DDC0,
    0xDB62_9599_3C43_9041,
    0xFE51_63AB_DEBB_C561,
    0xB724_6E3A_424D_D2E0,
    0x0649_2EEA_09D1_921C,
    0xFE1D_EB1C_B129_A73E,
    0xE882_35F5_2EBB_4484,
    0xE99C_7026_B45F_7E41,
    0x3991_D639_8353_39F4,
    0x9C84_5F8B_BDF9_283B,
    0x1FF8_97FF_DE05_980F,
    0xEF2F_118B_5A0A_6D1F,
    0x6D36_7ECF_27CB_09B7,
    0x4F46_3F66_9E5F_EA2D,
    0x7527_BAC7_EBE5_F17B,
    0x3D07_39F7_8A52_92EA,
    0x6BFB_5FB1_1F8D_5D08,
    0x5603_3046_FC7B_6BAB,
];

/// |x| from which f32 `sin`/`cos` reduce with `reduce_large` (2^29: below it the
/// three-part π/4 products are exact, and the short reduction, carried out in f64, is
/// exact enough for an f32 result).
pub const LARGE_TRIG_ARG_F32: f64 = 536_870_912.0;

/// The same for f64 results (2^20): from there on, near multiples of π/2, the short
/// reduction's absolute error (≈ |x|·2^-100) is no longer small next to r.
pub const LARGE_TRIG_ARG_F64: f64 = 1_048_576.0;

/// π/2 as a double-double.
pub const PIO2_HI: f64 = core::f64::consts::FRAC_PI_2;
pub const PIO2_LO: f64 = 6.123_233_995_736_766e-17;

/// `a << n` and `a >> n` as PTX's `shl.b64`/`shr.u64` do them: a count of 64 gives 0.
#[inline(always)]
fn shl(a: u64, n: u32) -> u64 {
    a.checked_shl(n).unwrap_or(0)
}

#[inline(always)]
fn shr(a: u64, n: u32) -> u64 {
    a.checked_shr(n).unwrap_or(0)
}

/// The 64 bits of 2/π that follow its first `skip` bits after the point (`skip` ≥ −64:
/// bits before the point are zeros).
#[inline(always)]
fn window(skip: i64) -> u64 {
    let i = (skip + 64) as usize;
    let (w, sh) = (i >> 6, (i & 63) as u32);
    shl(TWO_OVER_PI_BITS[w], sh) | shr(TWO_OVER_PI_BITS[w + 1], 64 - sh)
}

/// |x| = n·π/2 + r for finite `ax` ≥ 1 (any other bits give some value, never a
/// panic); returns (r ∈ [−π/4, π/4], 2n mod 8) — the octant convention of
/// the short reduction.
///
/// With ax = m·2^e (m < 2^53), ax·2/π mod 4 only needs the bits of 2/π from 2^(1−e) on:
/// 192 of them times m place the binary point at bit 190 of the 256-bit product, whose
/// bits 190–191 are n mod 4 and whose next 128 bits are the fraction (error < 2^-128, far
/// below the closest any f64 comes to a multiple of π/2, ≈ 2^-62). The fraction is
/// rounded to the nearer multiple, normalised (`clz`), split into an exact 53-bit head
/// and a tail, and multiplied by π/2 in double-double.
#[cold]
#[inline(never)]
pub fn reduce_large(ax: f64) -> (f64, i64) {
    let bits = ax.to_bits();
    let m = (bits & ((1 << 52) - 1)) | (1 << 52);
    // ax = m·2^e with e = biased − 1075; the window skips e − 2 bits.
    let skip = ((bits >> 52) & 0x7ff) as i64 - 1077;
    let mul = |w: u64| {
        let p = m as u128 * w as u128;
        ((p >> 64) as u64, p as u64)
    };
    let l0 = m.wrapping_mul(window(skip));
    let (h1, l1) = mul(window(skip + 64));
    let (h2, l2) = mul(window(skip + 128));
    // The product's limbs 0..2 (limb 3 and the high half of m·window(skip) only hold
    // multiples of 4).
    let (limb1, carry) = l1.overflowing_add(h2);
    let limb2 = l0.wrapping_add(h1).wrapping_add(carry as u64);
    let quadrant = (limb2 >> 62) as i64;
    let (fh, fl) = ((limb2 << 2) | (limb1 >> 62), (limb1 << 2) | (l2 >> 62));
    // A fraction ≥ 1/2 belongs to the next multiple: take 1 − fraction, negated.
    let up = fh >> 63;
    let (nl, borrow) = 0u64.overflowing_sub(fl);
    let nh = 0u64.wrapping_sub(fh).wrapping_sub(borrow as u64);
    let (fh, fl) = if up == 1 { (nh, nl) } else { (fh, fl) };
    let lz = fh.leading_zeros();
    let top = shl(fh, lz) | shr(fl, 64 - lz);
    let rest = shl(fl, lz);
    let head = (top & !0x7ff) as f64;
    let tail = (top & 0x7ff) as f64 + rest as f64 * (1.0 / 18_446_744_073_709_551_616.0);
    // fraction = (head + tail)·2^(−64−lz); lz = 64 (a zero fraction) scales by 2^-128.
    let scale = f64::from_bits((1023 - 64 - lz as u64) << 52);
    let (f_hi, f_lo) = (head * scale, tail * scale);
    let r_hi = f_hi * PIO2_HI;
    let r_err = f_hi.mul_add(PIO2_HI, -r_hi);
    let r = r_hi + (r_err + (f_hi * PIO2_LO + f_lo * PIO2_HI));
    let r = if up == 1 { -r } else { r };
    (r, (2 * (quadrant + up as i64)) & 7)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x mod π/2 in exact rational arithmetic over big integers: the reference.
    fn reference(x: f64) -> (f64, i64) {
        // 2/π to 1216 bits as a big integer (the table without its zero word), times m,
        // done with u128 schoolbook multiplication on 32-bit digits.
        let bits = x.to_bits();
        let m = (bits & ((1 << 52) - 1)) | (1 << 52);
        let e = ((bits >> 52) & 0x7ff) as i64 - 1075;
        let mut digits: Vec<u64> = Vec::new(); // 32-bit digits, least significant first
        for w in TWO_OVER_PI_BITS[1..].iter().rev() {
            digits.push(w & 0xffff_ffff);
            digits.push(w >> 32);
        }
        let mut prod = vec![0u64; digits.len() + 3];
        let (m_lo, m_hi) = (m & 0xffff_ffff, m >> 32);
        for (i, d) in digits.iter().enumerate() {
            for (j, mm) in [m_lo, m_hi].iter().enumerate() {
                let mut k = i + j;
                let mut c = d * mm;
                while c != 0 {
                    let s = prod[k] + (c & 0xffff_ffff);
                    prod[k] = s & 0xffff_ffff;
                    c = (c >> 32) + (s >> 32);
                    k += 1;
                }
            }
        }
        // value = prod · 2^(e − 1216); the point sits at bit p = 1216 − e.
        let p = (1216 - e) as usize;
        let bit = |i: usize| (prod[i / 32] >> (i % 32)) & 1;
        let n = (bit(p) + 2 * bit(p + 1)) as i64;
        // A fraction ≥ 1/2 is taken as −(1 − fraction), summed from the complemented bits.
        let up = bit(p - 1);
        let mut frac = 0.0f64;
        for i in (p - 200..p).rev() {
            frac += (bit(i) ^ up) as f64 * 2f64.powi(i as i32 - p as i32);
        }
        let frac = if up == 1 { -frac } else { frac };
        (frac * core::f64::consts::FRAC_PI_2, (2 * (n + up as i64)) & 7)
    }

    #[test]
    fn table_is_two_over_pi() {
        // The first words of 2/π agree with 2/π in f64 and with its tail.
        let head = TWO_OVER_PI_BITS[1] as f64 * 2f64.powi(-64);
        assert_eq!(head, core::f64::consts::FRAC_2_PI);
        assert_eq!(TWO_OVER_PI_BITS[0], 0);
    }

    #[test]
    fn large_reduction_matches_exact_arithmetic() {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut xs = vec![
            LARGE_TRIG_ARG_F64,
            LARGE_TRIG_ARG_F32,
            1e10,
            1e20,
            3.4028234663852886e38,
            f64::MAX,
            6381956970095103.0 * 2f64.powi(797),
        ];
        for _ in 0..3000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            // exponents 0..1023 (below 2^20 the f64 sin/cos take this path near the
            // multiples of π/2), random mantissas
            let e = (s % 1024) as i32;
            xs.push((1.0 + (s >> 11) as f64 / (1u64 << 53) as f64) * 2f64.powi(e));
        }
        for x in xs {
            let (r, j) = reduce_large(x);
            let (want_r, want_j) = reference(x);
            assert_eq!(j, want_j, "octant of {x:e}");
            // The reference rounds twice (its fraction, then times π/2 in f64): 2 ulp.
            let err = (r - want_r).abs();
            assert!(err <= want_r.abs() * 2f64.powi(-51), "r of {x:e}: {r:e} vs {want_r:e}");
            assert!(r.abs() <= core::f64::consts::FRAC_PI_4 * (1.0 + 1e-15), "{x:e}: {r}");
        }
    }

    #[test]
    fn hardest_known_case_keeps_its_relative_accuracy() {
        // 6381956970095103·2^797 is the f64 closest to a multiple of π/2 (Kahan &
        // McDonald): its remainder is ≈ 4.69e-19, 2^-61 of π/2.
        let x = 6381956970095103.0 * 2f64.powi(797);
        let (r, _) = reduce_large(x);
        let (want, _) = reference(x);
        assert!(r.abs() < 1e-18 && r.abs() > 1e-19, "{r:e}");
        assert!((r - want).abs() <= want.abs() * 2f64.powi(-51), "{r:e} vs {want:e}");
    }
}
